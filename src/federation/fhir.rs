//! A FHIR R4 partner: searches (following its `next` links while they stay under its
//! base URL), reads, and GETs of JSON through the shared exchange.

use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::exchange::{self, Exchange};
use super::partner::{ExchangeLimits, Pages, Partner, PartnerFailure};
use crate::fhir::ResourceType;

pub const FHIR_JSON: [(HeaderName, HeaderValue); 1] =
    [(ACCEPT, HeaderValue::from_static("application/fhir+json"))];

/// Searches one type, following the partner's `next` links up to the limit.
pub async fn search(
    partner: &Partner,
    resource_type: ResourceType,
    query: &[(String, String)],
    limits: ExchangeLimits,
) -> Result<Pages, PartnerFailure> {
    let mut query = query.to_vec();
    query.push(("_count".into(), limits.page_size.to_string()));
    let mut url = partner.url(resource_type.as_str(), &query);
    let mut pages = Pages::default();
    for page in 0.. {
        let mut bundle = fetch_json(partner, &url, &FHIR_JSON, limits.max_response_bytes)
            .await?
            .ok_or(PartnerFailure::HttpStatus(404))?;
        if bundle["resourceType"] != "Bundle" {
            return Err(PartnerFailure::Malformed("a FHIR Bundle"));
        }
        // Moved out of the parsed Bundle, not copied.
        if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
            for entry in entries {
                let mode = entry["search"]["mode"].as_str().unwrap_or("match");
                if mode == "match" && entry["resource"].is_object() {
                    pages.resources.push(entry["resource"].take());
                }
            }
        }
        let next = bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str());
        let Some(next) = next else { break };
        match Url::parse(next).or_else(|_| partner.base_url.join(next)) {
            Ok(next) if partner.owns(&next) && page + 1 < limits.max_pages => url = next,
            _ => {
                pages.truncated = true;
                break;
            }
        }
    }
    Ok(pages)
}

/// Reads one resource; `Ok(None)` when the partner says it does not exist.
pub async fn read(
    partner: &Partner,
    resource_type: ResourceType,
    local_id: &str,
    max_response_bytes: usize,
) -> Result<Option<Value>, PartnerFailure> {
    let url = partner.url(&format!("{resource_type}/{local_id}"), &[]);
    let resource = fetch_json(partner, &url, &FHIR_JSON, max_response_bytes).await?;
    match resource {
        Some(r) if r["resourceType"] == resource_type.as_str() && r["id"] == local_id => {
            Ok(Some(r))
        }
        Some(_) => Err(PartnerFailure::Malformed(
            "the resource of the type and id asked for",
        )),
        None => Ok(None),
    }
}

/// GETs `url` as JSON with `headers`: `Ok(None)` on 404/410, capped at `max_bytes`.
pub(super) async fn fetch_json(
    partner: &Partner,
    url: &Url,
    headers: &[(HeaderName, HeaderValue)],
    max_bytes: usize,
) -> Result<Option<Value>, PartnerFailure> {
    let answer = exchange::send(
        partner,
        Exchange {
            method: Method::GET,
            url: url.clone(),
            headers,
            body: None,
            max_bytes,
        },
    )
    .await?;
    match answer.status {
        StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
        StatusCode::LOOP_DETECTED => Err(PartnerFailure::LoopRefused),
        s if !s.is_success() => Err(PartnerFailure::HttpStatus(s.as_u16())),
        _ => answer
            .body
            .map(Some)
            .ok_or(PartnerFailure::Malformed("a JSON document")),
    }
}

/// `Type?_id=a,b,c` at one FHIR partner: the first page only (it holds them all).
pub async fn search_ids(
    partner: &Partner,
    type_name: &str,
    locals: &[&str],
    max_bytes: usize,
) -> Result<Vec<Value>, PartnerFailure> {
    let query = [
        ("_id".to_string(), locals.join(",")),
        ("_count".to_string(), locals.len().to_string()),
    ];
    let url = partner.url(type_name, &query);
    let mut bundle = fetch_json(partner, &url, &FHIR_JSON, max_bytes)
        .await?
        .ok_or(PartnerFailure::HttpStatus(404))?;
    if bundle["resourceType"] != "Bundle" {
        return Err(PartnerFailure::Malformed("a FHIR Bundle"));
    }
    // Moved out of the parsed Bundle, not copied.
    let entries = match bundle.get_mut("entry").map(Value::take) {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    Ok(entries
        .into_iter()
        .filter(|e| e["search"]["mode"].as_str().unwrap_or("match") == "match")
        .map(|mut e| e["resource"].take())
        .filter(|r| r.is_object())
        .collect())
}

/// `Type/id` at one FHIR partner; none if it says there is no such record.
pub async fn read_one(
    partner: &Partner,
    type_name: &str,
    local: &str,
    max_bytes: usize,
) -> Result<Option<Value>, PartnerFailure> {
    let url = partner.url(&format!("{type_name}/{local}"), &[]);
    let found = fetch_json(partner, &url, &FHIR_JSON, max_bytes).await?;
    Ok(found.filter(|r| r["resourceType"] == type_name && r["id"] == local))
}
