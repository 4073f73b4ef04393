//! Bounds on the shape of a JSON or XML body, checked on the raw bytes before any
//! parser sees them: how deeply it nests and how many elements it holds. Parsers
//! and the code that walks what they build recurse once per level, so a body nested
//! a few thousand levels deep (10 KB is enough) would exhaust a thread's stack, and a
//! body of millions of tiny elements would exhaust memory. Clients' bodies and
//! partners' answers are both held to these bounds.

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
