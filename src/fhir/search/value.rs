//! Typed search values: how a query-string value is understood, matched and written
//! back into a partner query.

use crate::fhir::date::DateValue;

/// `system|code`, `|code` (no system), `system|` (any code), or `code` (any system).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenValue {
    pub system: Option<String>,
    pub code: Option<String>,
}

/// `Type/id`, a bare `id`, or an absolute URL ending in `Type/id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceValue {
    pub resource_type: Option<String>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SearchValue {
    Token(TokenValue),
    Date(DateValue),
    String(String),
    Reference(ReferenceValue),
    Quantity(super::quantity::QuantityValue),
    /// `:missing=true|false`.
    Missing(bool),
}

impl TokenValue {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts = split_unescaped(raw, '|');
        let unescaped = |s: &str| {
            if s.is_empty() {
                None
            } else {
                Some(unescape(s))
            }
        };
        match parts.as_slice() {
            [code] => Ok(TokenValue {
                system: None,
                code: Some(unescape(code)),
            }),
            [system, code] => {
                if system.is_empty() && code.is_empty() {
                    return Err("a token needs a system or a code".to_string());
                }
                Ok(TokenValue {
                    system: Some(unescape(system)),
                    code: unescaped(code),
                })
            }
            _ => Err(format!("'{raw}' has more than one '|'")),
        }
    }

    pub fn to_query(&self) -> String {
        match (&self.system, &self.code) {
            (None, Some(code)) => escape(code),
            (Some(system), Some(code)) => format!("{}|{}", escape(system), escape(code)),
            (Some(system), None) => format!("{}|", escape(system)),
            (None, None) => String::new(),
        }
    }
}

impl ReferenceValue {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = unescape(raw);
        let trimmed = raw.split(['?', '#']).next().unwrap_or_default();
        let mut segments = trimmed.rsplit('/');
        let id = segments.next().unwrap_or_default().to_string();
        if !is_valid_id(&id) {
            return Err(format!("'{raw}' is not a reference to a resource id"));
        }
        let resource_type = segments.next().map(str::to_string);
        if let Some(t) = &resource_type
            && !t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        {
            return Err(format!("'{raw}' is not a reference of the form Type/id"));
        }
        Ok(ReferenceValue { resource_type, id })
    }

    pub fn to_query(&self) -> String {
        match &self.resource_type {
            Some(t) => format!("{t}/{}", escape(&self.id)),
            None => escape(&self.id),
        }
    }
}

impl SearchValue {
    pub fn to_query(&self) -> String {
        match self {
            SearchValue::Token(t) => t.to_query(),
            SearchValue::Date(d) => d.to_query(),
            SearchValue::String(s) => escape(s),
            SearchValue::Reference(r) => r.to_query(),
            SearchValue::Quantity(q) => q.to_query(),
            SearchValue::Missing(missing) => missing.to_string(),
        }
    }
}

/// A FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Splits on `sep` where it is not escaped with a backslash (FHIR search escaping).
pub fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '|' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokens_parse_in_all_four_forms() {
        let t = |s| TokenValue::parse(s).unwrap();
        assert_eq!(
            t("http://snomed.info/sct|1234"),
            TokenValue {
                system: Some("http://snomed.info/sct".into()),
                code: Some("1234".into())
            }
        );
        assert_eq!(
            t("|1234"),
            TokenValue {
                system: Some(String::new()),
                code: Some("1234".into())
            }
        );
        assert_eq!(
            t("http://loinc.org|"),
            TokenValue {
                system: Some("http://loinc.org".into()),
                code: None
            }
        );
        assert_eq!(
            t("final"),
            TokenValue {
                system: None,
                code: Some("final".into())
            }
        );
        assert_eq!(
            t(r"a\|b"),
            TokenValue {
                system: None,
                code: Some("a|b".into())
            }
        );
        assert!(TokenValue::parse("a|b|c").is_err());
        assert!(TokenValue::parse("|").is_err());
    }

    #[test]
    fn references_accept_relative_bare_and_absolute() {
        let r = |s| ReferenceValue::parse(s).unwrap();
        assert_eq!(
            r("Patient/9000000009"),
            ReferenceValue {
                resource_type: Some("Patient".into()),
                id: "9000000009".into()
            }
        );
        assert_eq!(r("9000000009").resource_type, None);
        assert_eq!(
            r("https://x.example/fhir/Patient/9000000009").id,
            "9000000009"
        );
        assert!(ReferenceValue::parse("Patient/").is_err());
        assert!(ReferenceValue::parse("patient/123").is_err());
        assert!(ReferenceValue::parse("Patient/a b").is_err());
    }

    proptest! {
        #[test]
        fn escaping_round_trips(s in "[a-z,|$\\\\]{0,12}") {
            let escaped = escape(&s);
            prop_assert_eq!(split_unescaped(&escaped, ',').len(), 1);
            prop_assert_eq!(unescape(&escaped), s);
        }

        #[test]
        fn token_query_round_trips(system in "[a-z:/.|,]{1,10}", code in "[a-z0-9|,]{1,8}") {
            let token = TokenValue { system: Some(system), code: Some(code) };
            prop_assert_eq!(TokenValue::parse(&token.to_query()).unwrap(), token);
        }
    }
}
