//! The audit trail for privacy officers: `GET /fhir/AuditEvent` (search, paged, alerts
//! by `_tag=BTG`) and `GET /fhir/Patient/{nhs}/$who-viewed` (a patient's accesses, as
//! a subject access request needs them).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::error::ApiError;
use super::respond::{Output, query_pairs};
use super::searchset::PageRequest;
use super::{AppState, Viewer, principal};
use crate::audit::query::{AuditQuery, PARAMETERS};
use crate::auth::principal::Principal;
use crate::auth::scopes::Interaction;
use crate::federation::cursor::PageToken;
use crate::fhir::NhsNumber;
use crate::fhir::bundle::SearchSet;
use crate::fhir::page::{Cursor, SortKey};
use crate::policy::access::{Purpose, permit, permit_patient};
use crate::store::audit::{self, AuditRow};

/// Events read from the store per round while searching.
const BATCH: i64 = 500;
/// Most events one search looks through beyond what the keys select.
const MAX_CANDIDATES: i64 = 200_000;
/// Most accesses one `$who-viewed` report lists.
const MAX_REPORTED: usize = 100_000;

async fn officer(
    req: &HttpRequest,
    state: &AppState,
    interaction: Interaction,
) -> Result<Principal, ApiError> {
    let principal = principal(req, state).await?;
    permit(&principal, "AuditEvent", interaction, Purpose::AuditTrail)?;
    Ok(principal)
}

/// The stored event as an AuditEvent resource: its id is its sequence number.
fn resource(row: &AuditRow) -> Value {
    let mut event: Value = serde_json::from_str(&row.event).unwrap_or_else(|_| json!({}));
    event["id"] = json!(row.sequence.to_string());
    event
}

/// Events matching `query`, newest first, older than `before`; at most `limit`.
/// Found through the audit keys and the time index, so a search that matches
/// nothing costs one indexed lookup; at most a quarter of the database pool serves
/// these searches at once, so officers cannot starve clinical requests.
async fn matching(
    state: &AppState,
    query: &AuditQuery,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditRow>, ApiError> {
    let wait = state.store.call_timeout();
    let _permit = tokio::time::timeout(wait, state.audit_readers.acquire())
        .await
        .map_err(|_| ApiError::Unavailable)?
        .map_err(|_| ApiError::Unavailable)?;
    let mut found = Vec::new();
    let mut search = query.key_search(before);
    // Candidates the keys cannot narrow (a `ne` date) are looked through in batches,
    // at most MAX_CANDIDATES a request.
    for _ in 0..MAX_CANDIDATES / BATCH {
        if found.len() >= limit {
            break;
        }
        let batch = search.clone();
        let rows = state
            .store
            .run(move |conn| audit::search(conn, &batch, BATCH))
            .await?;
        let Some(last) = rows.last() else { break };
        search.before_sequence = last.sequence;
        let exhausted = rows.len() < BATCH as usize;
        // The keys find every match; the matcher removes what they cannot say
        // (a `ne` date).
        for row in rows {
            let matches =
                serde_json::from_str::<Value>(&row.event).is_ok_and(|event| query.matches(&event));
            if matches && found.len() < limit {
                found.push(row);
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(found)
}

/// `GET /fhir/AuditEvent/{id}`: one event, by the sequence number its `fullUrl`
/// names. A token with a patient in context reads that patient's accesses only.
pub async fn read(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer(&req, &pairs, async {
        let principal = officer(&req, &state, Interaction::Read).await?;
        let not_found = || ApiError::NotFound(format!("AuditEvent/{}", path.as_str()));
        let sequence: i64 = path.parse().map_err(|_| not_found())?;
        let row = state
            .store
            .run(move |conn| audit::event(conn, sequence))
            .await?
            .ok_or_else(not_found)?;
        let event = resource(&row);
        if let Some(patient) = &principal.patient {
            let about_patient = crate::audit::query::keys_of(&event)
                .iter()
                .any(|(k, v)| k == "patient" && v == patient.as_str());
            if !about_patient {
                return Err(not_found());
            }
        }
        super::audit::note_returned(&req, [&event]);
        Ok(event)
    })
    .await
}

pub async fn search(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer(&req, &pairs, run_search(&req, &state, pairs.clone())).await
}

async fn run_search(
    req: &HttpRequest,
    state: &AppState,
    pairs: Vec<(String, String)>,
) -> Result<Value, ApiError> {
    let principal = officer(req, state, Interaction::Search).await?;
    let viewer = Viewer::new(&principal, Vec::new());
    let format_param = pairs
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.clone());
    let (pairs, link) = PageRequest::open_cursor(state, &viewer, "AuditEvent", pairs)?;
    let mut canonical = Vec::new();
    let mut count = state.page_limits.default_count;
    for (name, value) in pairs {
        match name.as_str() {
            "_count" => {
                count = value
                    .parse::<usize>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("_count '{value}' is not a positive number"))
                    })?
                    .min(state.page_limits.max_count);
            }
            "_format" | "_pretty" => {}
            known if PARAMETERS.contains(&known) => canonical.push((name, value)),
            unknown => {
                return Err(ApiError::BadRequest(format!(
                    "'{unknown}' is not an AuditEvent search parameter here (patient, agent, date, outcome, _tag, _count)"
                )));
            }
        }
    }
    canonical.push(("_count".into(), count.to_string()));
    let query = AuditQuery::parse(&canonical).map_err(ApiError::BadRequest)?;
    // A token with a patient in context sees that patient's accesses only.
    if principal.patient.is_some() {
        let asked = canonical
            .iter()
            .find(|(k, _)| k == "patient")
            .and_then(|(_, v)| NhsNumber::parse(v.trim_start_matches("Patient/")).ok())
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "a token with a patient in context must search for that patient".into(),
                )
            })?;
        permit_patient(&principal, &asked)?;
    }
    let before = match link.as_ref().map(|l| &l.cursor) {
        Some(Cursor::After(key)) => key.id.parse::<i64>().ok(),
        _ => None,
    };
    let rows = matching(state, &query, before, count + 1).await?;
    let more = rows.len() > count;
    let rows = &rows[..rows.len().min(count)];
    let encode = |query: &[(String, String)]| {
        let mut query = query.to_vec();
        if let Some(format) = &format_param {
            query.push(("_format".into(), format.clone()));
        }
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        format!("{}/AuditEvent?{encoded}", state.base)
    };
    let next_link = match (more, rows.last()) {
        (true, Some(last)) => {
            let token = PageToken {
                target: "AuditEvent".into(),
                query: canonical.clone(),
                cursor: Cursor::After(SortKey {
                    rank: 0,
                    date: None,
                    id: last.sequence.to_string(),
                }),
                holder: viewer.holder.clone(),
                expires_at: state.sealer.expiry_from_now(),
                sorted_by: Vec::new(),
                fits_a_page: Vec::new(),
                total: None,
            };
            Some(encode(&[("_cursor".into(), state.sealer.seal(&token))]))
        }
        _ => None,
    };
    let self_link = match &link {
        Some(link) => encode(&[("_cursor".into(), link.token.clone())]),
        None => encode(&canonical),
    };
    Ok(SearchSet {
        base: &state.base,
        self_link,
        next_link,
        previous_link: None,
        total: None,
        resources: {
            let resources: Vec<Value> = rows.iter().map(resource).collect();
            super::audit::note_returned(req, &resources);
            resources
        },
        included: Vec::new(),
        outcome: Vec::new(),
    }
    .into_bundle())
}

pub async fn who_viewed(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer(&req, &pairs, async {
        let principal = officer(&req, &state, Interaction::Read).await?;
        let nhs =
            NhsNumber::parse(&path).map_err(|_| ApiError::NotFound(format!("Patient/{path}")))?;
        permit_patient(&principal, &nhs)?;
        let query = AuditQuery::parse(&[
            ("patient".into(), nhs.to_string()),
            ("outcome".into(), "0".into()),
        ])
        .map_err(ApiError::BadRequest)?;
        let rows = matching(&state, &query, None, MAX_REPORTED).await?;
        let accesses: Vec<Value> = rows
            .iter()
            .rev()
            .filter_map(|row| serde_json::from_str::<Value>(&row.event).ok())
            .filter_map(|event| access(&event))
            .collect();
        Ok(json!({"resourceType": "Parameters", "parameter": accesses}))
    })
    .await
}

/// One access as a subject access request reports it: when, by which organisation
/// and role (and person), why, and what types of record were shown; None for an
/// access that showed none of the patient's records.
fn access(event: &Value) -> Option<Value> {
    let user = event["agent"]
        .as_array()?
        .iter()
        .find(|a| a["requestor"] == true)?;
    let mut types: Vec<&str> = event["entity"]
        .as_array()?
        .iter()
        .filter(|e| e["role"]["code"] == "4")
        .filter_map(|e| e["what"]["reference"].as_str()?.split('/').next())
        .collect();
    types.retain(|t| *t != "AuditEvent");
    if types.is_empty() {
        return None; // nothing of the patient's record was shown
    }
    types.sort();
    types.dedup();
    let mut parts = vec![
        json!({"name": "when", "valueDateTime": event["recorded"]}),
        json!({"name": "who", "valueString": user["who"]["display"].as_str().or(user["who"]["identifier"]["value"].as_str()).unwrap_or("unknown")}),
        json!({"name": "purpose", "valueCode": event["purposeOfEvent"][0]["coding"][0]["code"].as_str().unwrap_or("TREAT")}),
    ];
    if let Some(role) = user["role"][0]["text"].as_str() {
        parts.push(json!({"name": "role", "valueString": role}));
    }
    parts.push(json!({"name": "types", "valueString": types.join(", ")}));
    Some(json!({"name": "access", "part": parts}))
}
