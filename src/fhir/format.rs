//! Content negotiation: `_format` wins over `Accept`; JSON is the default.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/fhir+json; charset=utf-8",
            Format::Xml => "application/fhir+xml; charset=utf-8",
        }
    }

    fn from_mime(mime: &str) -> Option<Format> {
        let essence = mime
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "json"
            | "application/fhir+json"
            | "application/json"
            | "application/json+fhir"
            | "text/json"
            | "*/*"
            | "application/*" => Some(Format::Json),
            "xml"
            | "application/fhir+xml"
            | "application/xml"
            | "application/xml+fhir"
            | "text/xml" => Some(Format::Xml),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "none of the requested formats ({0}) is supported; use JSON or XML (application/fhir+json, application/fhir+xml)"
)]
pub struct NotAcceptable(pub String);

/// Chooses the response format from `_format` and the `Accept` header.
pub fn negotiate(
    format_param: Option<&str>,
    accept: Option<&str>,
) -> Result<Format, NotAcceptable> {
    if let Some(requested) = format_param.filter(|f| !f.is_empty()) {
        return Format::from_mime(requested).ok_or_else(|| NotAcceptable(requested.to_string()));
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Format::Json);
    };
    let mut ranges: Vec<(f32, &str)> = accept
        .split(',')
        .map(|range| {
            let q = range
                .split(';')
                .skip(1)
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q, range)
        })
        .filter(|(q, _)| *q > 0.0)
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges
        .iter()
        .find_map(|(_, r)| Format::from_mime(r))
        .ok_or_else(|| NotAcceptable(accept.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_real_clients_expect() {
        assert_eq!(negotiate(None, None), Ok(Format::Json));
        assert_eq!(negotiate(None, Some("*/*")), Ok(Format::Json));
        assert_eq!(negotiate(None, Some("application/json")), Ok(Format::Json));
        assert_eq!(
            negotiate(
                None,
                Some("application/fhir+xml;q=0.9, application/fhir+json;q=0.5")
            ),
            Ok(Format::Xml)
        );
        assert_eq!(
            negotiate(None, Some("text/html, application/xml;q=0.9, */*;q=0.8")),
            Ok(Format::Xml)
        );
        assert_eq!(
            negotiate(Some("json"), Some("application/fhir+xml")),
            Ok(Format::Json)
        );
        assert_eq!(
            negotiate(Some("application/fhir+xml; fhirVersion=4.0"), None),
            Ok(Format::Xml)
        );
        assert!(negotiate(None, Some("text/html")).is_err());
        assert!(negotiate(Some("turtle"), None).is_err());
        assert!(negotiate(None, Some("application/fhir+json;q=0")).is_err());
    }
}
