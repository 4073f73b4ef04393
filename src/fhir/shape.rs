//! Bounds on the shape of a JSON or XML body: how deeply it nests and how many
//! elements it holds, checked on the raw bytes before any parser sees them or, for
//! a partner's JSON, as the parser reads it (one pass over the bytes). Parsers
//! and the code that walks what they build recurse once per level, so a body nested
//! a few thousand levels deep (10 KB is enough) would exhaust a thread's stack, and a
//! body of millions of tiny elements would exhaust memory. Clients' bodies and
//! partners' answers are both held to these bounds.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// How large a body may be, in shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeLimits {
    /// Deepest nesting: JSON objects and arrays, or XML elements.
    pub max_depth: usize,
    /// Most elements: JSON values in objects and arrays, or XML elements.
    pub max_elements: usize,
}

impl ShapeLimits {
    /// For a JSON resource a client sends (an objection). Real resources nest a dozen
    /// or two levels; the FHIR model's parser and writer overflow a 2 MiB stack at
    /// about 110 (fhir-codec's tests hold this bound against that).
    pub const CLIENT_JSON: ShapeLimits = ShapeLimits {
        max_depth: 64,
        max_elements: 20_000,
    };

    /// The same in XML, where one element is one level (about 55 overflow).
    pub const CLIENT_XML: ShapeLimits = ShapeLimits {
        max_depth: 40,
        max_elements: 20_000,
    };

    /// For a partner's JSON answer: a searchset page of many resources, as deep as a
    /// client's (so that it can still be written as XML).
    pub const PARTNER_JSON: ShapeLimits = ShapeLimits {
        max_depth: 64,
        max_elements: 1_000_000,
    };
}

/// Why a body was refused before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("the body nests more than {0} levels deep")]
    TooDeep(usize),
    #[error("the body has more than {0} elements")]
    TooManyElements(usize),
}

/// Checks a JSON body's nesting and element count. Malformed JSON is left for the
/// parser to refuse; only its shape is judged here.
pub fn check_json(bytes: &[u8], limits: ShapeLimits) -> Result<(), ShapeError> {
    let (mut depth, mut elements) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                elements += 1;
                if depth > limits.max_depth {
                    return Err(ShapeError::TooDeep(limits.max_depth));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => elements += 1,
            _ => continue,
        }
        if elements > limits.max_elements {
            return Err(ShapeError::TooManyElements(limits.max_elements));
        }
    }
    Ok(())
}

/// Why a JSON body was not parsed within its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BoundedJsonError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("the body is not a JSON document")]
    Malformed,
}

/// Parses a JSON body, holding it to `limits` as it is read: the same bounds as
/// `check_json` followed by a parse, in one pass over the bytes instead of two.
/// What it builds is what `serde_json::from_slice` builds.
pub fn parse_json(bytes: &[u8], limits: ShapeLimits) -> Result<Value, BoundedJsonError> {
    let mut budget = Budget {
        limits,
        depth: 0,
        elements: 0,
        exceeded: None,
    };
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let parsed = Bounded(&mut budget)
        .deserialize(&mut reader)
        .and_then(|value| reader.end().map(|()| value));
    match (parsed, budget.exceeded) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(exceeded)) => Err(exceeded.into()),
        (Err(_), None) => Err(BoundedJsonError::Malformed),
    }
}

/// What a body being parsed has used of its bounds.
struct Budget {
    limits: ShapeLimits,
    depth: usize,
    elements: usize,
    exceeded: Option<ShapeError>,
}

impl Budget {
    /// Counts one more value, at the current depth.
    fn count<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(self.refuse(ShapeError::TooManyElements(self.limits.max_elements)));
        }
        Ok(())
    }

    /// Goes one level down (into an object or array), before its contents are read.
    fn descend<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.refuse(ShapeError::TooDeep(self.limits.max_depth)));
        }
        Ok(())
    }

    fn refuse<E: serde::de::Error>(&mut self, exceeded: ShapeError) -> E {
        self.exceeded = Some(exceeded);
        E::custom(exceeded)
    }
}

/// Builds what serde_json's own `Value` visitor builds, spending the budget as it goes.
struct Bounded<'a>(&'a mut Budget);

/// The key under which serde_json hands a number over with `arbitrary_precision`
/// (which fhirbolt turns on): an object of one entry, its digits as a string.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::from(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.count()?;
        self.0.descend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Bounded(&mut *self.0))? {
            items.push(item);
        }
        self.0.depth -= 1;
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            // An empty object is a level, as `check_json` counts it.
            self.0.count()?;
            self.0.descend()?;
            self.0.depth -= 1;
            return Ok(Value::Object(Map::new()));
        };
        if first == NUMBER_TOKEN {
            self.0.count()?;
            let digits: String = map.next_value()?;
            return digits
                .parse::<Number>()
                .map(Value::Number)
                .map_err(serde::de::Error::custom);
        }
        self.0.count()?;
        self.0.descend()?;
        let mut object = Map::new();
        let mut key = Some(first);
        while let Some(name) = key {
            // A repeated name keeps its first place and its last value, as serde_json does.
            object.insert(name, map.next_value_seed(Bounded(&mut *self.0))?);
            key = map.next_key::<String>()?;
        }
        self.0.depth -= 1;
        Ok(Value::Object(object))
    }
}

/// Checks an XML body's element nesting and count. Comments, processing
/// instructions, CDATA and declarations are skipped over (the XML reader refuses
/// what FHIR forbids); quoted attribute values may hold `>`.
pub fn check_xml(bytes: &[u8], limits: ShapeLimits) -> Result<(), ShapeError> {
    let (mut depth, mut elements) = (0usize, 0usize);
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        at += offset + 1;
        let rest = &bytes[at..];
        if rest.starts_with(b"!--") {
            at += skip_past(rest, b"-->");
        } else if rest.starts_with(b"![CDATA[") {
            at += skip_past(rest, b"]]>");
        } else if rest.starts_with(b"?") {
            at += skip_past(rest, b"?>");
        } else if rest.starts_with(b"!") {
            at += skip_past(rest, b">");
        } else if rest.starts_with(b"/") {
            depth = depth.saturating_sub(1);
            at += skip_past(rest, b">");
        } else {
            let (length, self_closing) = tag_end(rest);
            at += length;
            elements += 1;
            if !self_closing {
                depth += 1;
            }
            if depth > limits.max_depth {
                return Err(ShapeError::TooDeep(limits.max_depth));
            }
            if elements > limits.max_elements {
                return Err(ShapeError::TooManyElements(limits.max_elements));
            }
        }
    }
    Ok(())
}

/// Bytes up to and including `end` (all of `rest` if it never comes).
fn skip_past(rest: &[u8], end: &[u8]) -> usize {
    rest.windows(end.len())
        .position(|w| w == end)
        .map_or(rest.len(), |p| p + end.len())
}

/// The length of a start tag up to and including its `>`, and whether it closes
/// itself (`/>`); `>` inside quoted attribute values does not end it.
fn tag_end(rest: &[u8]) -> (usize, bool) {
    let mut quote = None;
    for (i, &byte) in rest.iter().enumerate() {
        match (quote, byte) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(byte),
            (None, b'>') => return (i + 1, i > 0 && rest[i - 1] == b'/'),
            _ => {}
        }
    }
    (rest.len(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SMALL: ShapeLimits = ShapeLimits {
        max_depth: 4,
        max_elements: 10,
    };

    #[test]
    fn json_depth_and_elements_are_counted_outside_strings() {
        assert_eq!(check_json(br#"{"a": [{"b": 1}]}"#, SMALL), Ok(()));
        assert_eq!(
            check_json(br#"{"a": [{"b": [[1]]}]}"#, SMALL),
            Err(ShapeError::TooDeep(4))
        );
        assert_eq!(
            check_json(br#"{"a": "[[[[[[{{{{{,,,,,,,,,,,\"[[["}"#, SMALL),
            Ok(())
        );
        assert_eq!(
            check_json(b"[1,2,3,4,5,6,7,8,9,10,11]", SMALL),
            Err(ShapeError::TooManyElements(10))
        );
        let deep = "[".repeat(1500) + &"]".repeat(1500);
        assert!(check_json(deep.as_bytes(), ShapeLimits::CLIENT_JSON).is_err());
    }

    /// As parsed by serde_json itself (bounds aside).
    fn plain(bytes: &[u8]) -> Option<Value> {
        serde_json::from_slice(bytes).ok()
    }

    #[test]
    fn a_json_body_parses_as_serde_json_parses_it() {
        let body = br#"{"resourceType": "Observation", "id": "a", "valueQuantity":
            {"value": 1.50, "comparator": null}, "x": [1e3, -0.0, 12345678901234567890123,
            true, false, "\u00e9\"\\", [], {}], "id": "b", "z": {"y": [[{"w": 0}]]}}"#;
        let parsed = parse_json(body, SMALL_WIDE).expect("within bounds");
        assert_eq!(Some(&parsed), plain(body).as_ref());
        // Decimals keep their digits; a repeated name keeps its first place, last value.
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            serde_json::to_string(&plain(body).unwrap()).unwrap()
        );
        assert!(serde_json::to_string(&parsed).unwrap().contains("1.50"));
        assert_eq!(parsed["id"], "b");
        assert_eq!(parsed.as_object().unwrap().keys().nth(1).unwrap(), "id");
    }

    const SMALL_WIDE: ShapeLimits = ShapeLimits {
        max_depth: 8,
        max_elements: 1_000,
    };

    #[test]
    fn a_json_body_past_its_bounds_or_malformed_is_refused_as_such() {
        let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
        // The same depth bound as the check on raw bytes.
        for n in [4, 5] {
            assert_eq!(
                parse_json(nested(n).as_bytes(), SMALL)
                    .err()
                    .map(|e| e.to_string()),
                check_json(nested(n).as_bytes(), SMALL)
                    .err()
                    .map(|e| e.to_string()),
            );
        }
        assert_eq!(
            parse_json(br#"{"a": [{"b": [[1]]}]}"#, SMALL),
            Err(ShapeError::TooDeep(4).into())
        );
        assert_eq!(
            parse_json(br#"[[[[{}]]]]"#, SMALL),
            Err(ShapeError::TooDeep(4).into())
        );
        assert_eq!(
            check_json(br#"[[[[{}]]]]"#, SMALL),
            Err(ShapeError::TooDeep(4))
        );
        // A number is not a level, however serde_json hands it over.
        assert!(parse_json(br#"{"a": [{"b": [1.5]}]}"#, SMALL).is_ok());
        assert_eq!(
            parse_json(b"[1,2,3,4,5,6,7,8,9,10,11]", SMALL),
            Err(ShapeError::TooManyElements(10).into())
        );
        for malformed in [
            &b"{\"a\": }"[..],
            b"[1,2",
            b"{} {}",
            b"",
            b"nul",
            b"{\"a\" 1}",
        ] {
            assert_eq!(
                parse_json(malformed, SMALL_WIDE),
                Err(BoundedJsonError::Malformed)
            );
        }
        // Refused before the stack is at risk.
        let attack = nested(100_000);
        assert_eq!(
            parse_json(attack.as_bytes(), ShapeLimits::PARTNER_JSON),
            Err(ShapeError::TooDeep(64).into())
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "-?(0|[1-9][0-9]{0,2})\\.[0-9]{1,4}".prop_map(|d| serde_json::from_str(&d).unwrap()),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-z\"]{0,4}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn what_serde_json_parses_within_bounds_is_parsed_the_same(value in json_value()) {
            let body = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(parse_json(&body, ShapeLimits::PARTNER_JSON), Ok(value));
        }

        #[test]
        fn any_bytes_parse_exactly_when_serde_json_parses_them(
            body in proptest::collection::vec(proptest::sample::select(
                b"{}[]:,\" \\tn1.-e0ax".to_vec()), 0..40)
        ) {
            prop_assert_eq!(
                parse_json(&body, ShapeLimits::PARTNER_JSON).ok(),
                plain(&body)
            );
        }
    }

    #[test]
    fn xml_depth_ignores_self_closing_tags_comments_and_quoted_brackets() {
        let ok = br#"<?xml version="1.0"?><!-- <a><a><a><a><a> --><Consent xmlns="http://hl7.org/fhir"><status value="a>b"/><a><b/></a></Consent>"#;
        assert_eq!(check_xml(ok, SMALL), Ok(()));
        let deep = "<a>".repeat(5) + &"</a>".repeat(5);
        assert_eq!(
            check_xml(deep.as_bytes(), SMALL),
            Err(ShapeError::TooDeep(4))
        );
        let wide = "<a/>".repeat(11);
        assert_eq!(
            check_xml(wide.as_bytes(), SMALL),
            Err(ShapeError::TooManyElements(10))
        );
        let attack = "<Consent xmlns=\"http://hl7.org/fhir\">".to_string()
            + &"<extension url=\"x\">".repeat(1500)
            + &"</extension>".repeat(1500)
            + "</Consent>";
        assert!(check_xml(attack.as_bytes(), ShapeLimits::CLIENT_XML).is_err());
    }
}
