//! Versions on the wire: `ETag` and `Last-Modified` from a resource's `meta`
//! (an objection's version, a partner record's `versionId` and `lastUpdated`), and
//! the conditional requests they answer: `If-None-Match` (304) on reads, `If-Match`
//! on an objection's update.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue, HttpDate};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::error::ApiError;
use super::respond::Output;

/// `W/"{versionId}"`, if the resource has a version.
pub fn etag(resource: &Value) -> Option<String> {
    let version = resource["meta"]["versionId"].as_str()?;
    is_version(version).then(|| format!("W/\"{version}\""))
}

/// A versionId as it may travel in a header: FHIR id characters only.
fn is_version(version: &str) -> bool {
    crate::fhir::search::value::is_valid_id(version)
}

fn last_modified(resource: &Value) -> Option<HttpDate> {
    let updated = resource["meta"]["lastUpdated"].as_str()?;
    let instant = chrono::DateTime::parse_from_rfc3339(updated).ok()?;
    let system_time = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(instant.timestamp()).ok()?);
    Some(HttpDate::from(system_time))
}

/// The versions a conditional header names (`W/"3"`, `"3"`, `*`), or None if absent.
fn named_versions(req: &HttpRequest, name: header::HeaderName) -> Option<Vec<String>> {
    let values: Vec<&str> = req
        .headers()
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|tag| {
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.trim_matches('"').to_string()
            })
            .collect(),
    )
}

/// A read's answer: 200 with `ETag` and `Last-Modified` where the resource has them,
/// or 304 (no body) when `If-None-Match` names its version. Only what the release
/// stage released reaches here, so a 304 tells nothing a 200 would not.
pub fn answer_read(output: Output, req: &HttpRequest, resource: Value) -> HttpResponse {
    let tag = etag(&resource);
    let modified = last_modified(&resource);
    let version = resource["meta"]["versionId"].as_str().map(str::to_string);
    let unchanged = match (named_versions(req, header::IF_NONE_MATCH), &version) {
        (Some(named), Some(version)) if tag.is_some() => {
            named.iter().any(|n| n == version || n == "*")
        }
        _ => false,
    };
    let mut response = match unchanged {
        true => HttpResponse::build(StatusCode::NOT_MODIFIED).finish(),
        false => output.write(StatusCode::OK, resource),
    };
    insert_headers(&mut response, tag, modified);
    response
}

/// Adds the resource's `ETag` and `Last-Modified` to an answer that carries it (a
/// created or updated objection).
pub fn add_headers(response: &mut HttpResponse, resource: &Value) {
    insert_headers(response, etag(resource), last_modified(resource));
}

fn insert_headers(response: &mut HttpResponse, tag: Option<String>, modified: Option<HttpDate>) {
    let headers = response.headers_mut();
    if let Some(value) = tag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert(header::ETAG, value);
    }
    if let Some(value) = modified.and_then(|m| HeaderValue::from_str(&m.to_string()).ok()) {
        headers.insert(header::LAST_MODIFIED, value);
    }
}

/// The version an update says it changes (`If-Match: W/"2"`): None if the header is
/// absent, 412 if it names no single version number.
pub fn if_match(req: &HttpRequest) -> Result<Option<i32>, ApiError> {
    let Some(named) = named_versions(req, header::IF_MATCH) else {
        return Ok(None);
    };
    match named.as_slice() {
        [one] => one
            .parse::<i32>()
            .ok()
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| ApiError::StaleVersion(format!("If-Match names no version: '{one}'"))),
        _ => Err(ApiError::StaleVersion(
            "If-Match must name the one version being changed".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use serde_json::json;

    #[test]
    fn versions_travel_as_weak_etags_and_dates() {
        let resource = json!({"resourceType": "Consent", "meta": {"versionId": "3", "lastUpdated": "2025-02-03T04:05:06.789Z"}});
        let req = TestRequest::default().to_http_request();
        let answer = answer_read(Output::JSON, &req, resource.clone());
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers().get("etag").unwrap(), "W/\"3\"");
        assert_eq!(
            answer.headers().get("last-modified").unwrap(),
            "Mon, 03 Feb 2025 04:05:06 GMT"
        );
        let req = TestRequest::default()
            .insert_header(("if-none-match", "W/\"3\""))
            .to_http_request();
        assert_eq!(
            answer_read(Output::JSON, &req, resource.clone()).status(),
            304
        );
        let req = TestRequest::default()
            .insert_header(("if-none-match", "W/\"2\""))
            .to_http_request();
        assert_eq!(answer_read(Output::JSON, &req, resource).status(), 200);
        let unversioned = json!({"resourceType": "Observation", "meta": {"versionId": "a b"}});
        let req = TestRequest::default()
            .insert_header(("if-none-match", "*"))
            .to_http_request();
        let answer = answer_read(Output::JSON, &req, unversioned);
        assert_eq!(answer.status(), 200);
        assert!(answer.headers().get("etag").is_none());
    }

    #[test]
    fn if_match_names_one_version() {
        let with = |v: &str| {
            if_match(
                &TestRequest::default()
                    .insert_header(("if-match", v))
                    .to_http_request(),
            )
        };
        assert_eq!(with("W/\"2\"").unwrap(), Some(2));
        assert_eq!(with("\"7\"").unwrap(), Some(7));
        assert!(with("W/\"x\"").is_err());
        assert!(with("W/\"1\", W/\"2\"").is_err());
        assert!(with("*").is_err());
        assert_eq!(
            if_match(&TestRequest::default().to_http_request()).unwrap(),
            None
        );
    }
}
