//! The objection register as FHIR: `/fhir/Consent` create, read, update (status
//! changes), search by patient, history and vread. Every change is a new version.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::error::ApiError;
use super::read::read_patient;
use super::respond::{Output, guarded, is_strict, query_pairs};
use super::search::read_body;
use super::{AppState, principal};
use crate::auth::scopes::Interaction;
use crate::fhir::NhsNumber;
use crate::fhir::bundle::SearchSet;
use crate::fhir::outcome::Issue;
use crate::fhir::patient::youngest_age;
use crate::fhir::search::SearchError;
use crate::fhir::search::value::ReferenceValue;
use crate::fhir::shape::{ShapeLimits, check_json, check_xml};
use crate::policy::access::{Purpose, permit, permit_patient};
use crate::policy::objection::{Objection, consent_resource};
use crate::store::objections::{self, ObjectionVersion};

pub async fn create(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let output = Output::negotiate(&req, &query_pairs(req.query_string())).unwrap_or(Output::JSON);
    match guarded(record(&req, body, &state, None, Interaction::Create)).await {
        Ok(version) => {
            let location = format!(
                "{}/Consent/{}/_history/{}",
                state.base, version.nhs_number, version.version
            );
            let consent = consent_resource(&version);
            super::audit::note_returned(&req, [&consent]);
            let mut response = output.write(StatusCode::CREATED, consent.clone());
            super::versions::add_headers(&mut response, &consent);
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, value);
            }
            response
        }
        Err(e) => output.error(e),
    }
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let output = Output::negotiate(&req, &query_pairs(req.query_string())).unwrap_or(Output::JSON);
    match guarded(record(&req, body, &state, Some(&path), Interaction::Update)).await {
        Ok(version) => {
            let consent = consent_resource(&version);
            super::audit::note_returned(&req, [&consent]);
            let mut response = output.write(StatusCode::OK, consent.clone());
            super::versions::add_headers(&mut response, &consent);
            response
        }
        Err(e) => output.error(e),
    }
}

pub async fn read(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer_read(&req, &pairs, async {
        officer(&req, &state, Interaction::Read, Some(&path)).await?;
        let versions = history_of(&state, &path).await?;
        let consent = versions
            .last()
            .map(consent_resource)
            .ok_or_else(|| not_found(&path))?;
        super::audit::note_returned(&req, [&consent]);
        Ok(consent)
    })
    .await
}

pub async fn vread(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    let (id, version) = path.into_inner();
    Output::answer_read(&req, &pairs, async {
        officer(&req, &state, Interaction::Read, Some(&id)).await?;
        let versions = history_of(&state, &id).await?;
        let consent = versions
            .iter()
            .find(|v| v.version.to_string() == version)
            .map(consent_resource)
            .ok_or_else(|| ApiError::NotFound(format!("Consent/{id}/_history/{version}")))?;
        super::audit::note_returned(&req, [&consent]);
        Ok(consent)
    })
    .await
}

pub async fn history(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer(&req, &pairs, async {
        officer(&req, &state, Interaction::Read, Some(&path)).await?;
        let versions = history_of(&state, &path).await?;
        if versions.is_empty() {
            return Err(not_found(&path));
        }
        super::audit::note_returned(&req, versions.last().map(consent_resource).iter());
        let entries: Vec<Value> = versions
            .iter()
            .rev()
            .map(|v| {
                let (method, url, status) = match v.version {
                    1 => ("POST", "Consent".to_string(), "201 Created"),
                    _ => ("PUT", format!("Consent/{}", v.nhs_number), "200 OK"),
                };
                let resource = consent_resource(v);
                json!({
                    "fullUrl": format!("{}/Consent/{}", state.base, v.nhs_number),
                    "resource": resource,
                    "request": {"method": method, "url": url},
                    "response": {"status": status, "lastModified": resource["meta"]["lastUpdated"]}
                })
            })
            .collect();
        Ok(json!({"resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries}))
    })
    .await
}

pub async fn search(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer(&req, &pairs, async {
        let principal = officer(&req, &state, Interaction::Search, None).await?;
        // The register is searched by patient only; anything else is refused as a
        // clinical search's would be (or, lenient, ignored with a warning).
        let mut outcome = Vec::new();
        for (name, _) in pairs
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "patient" | "_format" | "_pretty"))
        {
            let reason = format!("a Consent search takes patient only, not '{name}'");
            if is_strict(&req) {
                return Err(SearchError::Unsupported {
                    param: name.clone(),
                    reason,
                }
                .into());
            }
            outcome.push(
                Issue::warning("not-supported", format!("{reason}; it was ignored"))
                    .with_expression(name),
            );
        }
        let patient = pairs
            .iter()
            .find(|(k, _)| k == "patient")
            .and_then(|(_, v)| ReferenceValue::parse(v).ok())
            .and_then(|r| NhsNumber::parse(&r.id).ok())
            .ok_or_else(|| {
                ApiError::BadRequest("a Consent search needs patient=Patient/{NHS number}".into())
            })?;
        permit_patient(&principal, &patient)?;
        let versions = history_of(&state, patient.as_str()).await?;
        let resources: Vec<Value> = versions.last().map(consent_resource).into_iter().collect();
        super::audit::note_returned(&req, &resources);
        let self_link = format!("{}/Consent?patient=Patient/{patient}", state.base);
        Ok(SearchSet {
            base: &state.base,
            self_link,
            next_link: None,
            previous_link: None,
            total: Some(resources.len()),
            resources,
            included: Vec::new(),
            outcome,
        }
        .into_bundle())
    })
    .await
}

/// The principal, if a privacy officer (or a backend service) whose token allows
/// `interaction` on Consent, and, for one patient's objection, that patient.
async fn officer(
    req: &HttpRequest,
    state: &AppState,
    interaction: Interaction,
    id: Option<&str>,
) -> Result<crate::auth::principal::Principal, ApiError> {
    let principal = principal(req, state).await?;
    // Objections are granted whole: a restricted Consent scope is not evaluated here.
    if permit(&principal, "Consent", interaction, Purpose::Objections)?.is_restricted() {
        return Err(crate::policy::access::Denied::InsufficientScope {
            needed: "user/Consent (without a ?restriction)".into(),
        }
        .into());
    }
    if let Some(nhs) = id.and_then(|id| NhsNumber::parse(id).ok()) {
        permit_patient(&principal, &nhs)?;
    }
    Ok(principal)
}

fn already_recorded(patient: &NhsNumber) -> ApiError {
    ApiError::Conflict(format!(
        "an objection is already recorded for this patient; change its status with PUT /fhir/Consent/{patient}"
    ))
}

fn stale(read: i32) -> ApiError {
    ApiError::StaleVersion(format!(
        "the objection has changed since version {read} was read; read it again and repeat the change"
    ))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Consent/{id}"))
}

async fn history_of(state: &AppState, id: &str) -> Result<Vec<ObjectionVersion>, ApiError> {
    let Ok(nhs) = NhsNumber::parse(id) else {
        return Ok(Vec::new());
    };
    Ok(state
        .store
        .run(move |conn| objections::history(conn, nhs.as_str()))
        .await?)
}

/// Checks and stores a new version: the first (create, `id` None) or a later one.
async fn record(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    id: Option<&str>,
    interaction: Interaction,
) -> Result<ObjectionVersion, ApiError> {
    let principal = officer(req, state, interaction, id).await?;
    // The version an update changes: checked now, and again as it is stored.
    let read_version = match id {
        Some(_) => super::versions::if_match(req)?,
        None => None,
    };
    if id.is_some() && read_version.is_none() && state.require_if_match {
        return Err(ApiError::VersionRequired(
            "a change to an objection must say which version it changes: send If-Match: W/\"{version}\" from the version read".into(),
        ));
    }
    let consent = read_resource_body(req, body, state.max_body_bytes).await?;
    if let Some(id) = id
        && consent["id"].as_str().is_some_and(|given| given != id)
    {
        return Err(ApiError::BadRequest(format!(
            "the Consent's id must be {id}, as in the URL"
        )));
    }
    let objection = Objection::from_consent(consent).map_err(ApiError::from)?;
    permit_patient(&principal, &objection.patient)?;
    let existing = history_of(state, objection.patient.as_str()).await?;
    match id {
        None if !existing.is_empty() => return Err(already_recorded(&objection.patient)),
        Some(id) if id != objection.patient.as_str() => {
            return Err(ApiError::BadRequest(
                "Consent.patient cannot change; the Consent's id is the patient's NHS number"
                    .into(),
            ));
        }
        Some(id) if existing.is_empty() => return Err(not_found(id)),
        _ => {}
    }
    if let Some(read) = read_version
        && existing
            .last()
            .is_some_and(|current| current.version != read)
    {
        return Err(stale(read));
    }
    let patient = read_patient(
        state,
        objection.patient.as_str(),
        &super::scope(state, &principal),
    )
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("Patient/{}", objection.patient)))?;
    objection
        .check_competence(
            youngest_age(&patient, chrono::Utc::now().date_naive()),
            state.competence_age,
        )
        .map_err(ApiError::from)?;
    let (nhs, status, by, body) = (
        objection.patient.to_string(),
        objection.status.clone(),
        objection.raised_by.clone(),
        objection.consent.to_string(),
    );
    let first = id.is_none();
    let objection_patient = objection.patient.clone();
    let version = state
        .store
        .run(move |conn| {
            // The first version is inserted as version 1 or not at all, so of several
            // creates at once exactly one wins.
            if first {
                if objections::create(conn, &nhs, &status, &by, &body)?.is_none() {
                    return Ok(Err(already_recorded(&objection_patient)));
                }
            } else if let Some(read) = read_version {
                if !objections::record_after(conn, &nhs, read, &status, &by, &body)? {
                    return Ok(Err(stale(read)));
                }
            } else {
                objections::record(conn, &nhs, &status, &by, &body)?;
            }
            Ok(objections::current(conn, &nhs)?.ok_or_else(|| not_found(&nhs)))
        })
        .await??;
    tracing::info!(
        version = version.version,
        status = version.status,
        "objection recorded"
    );
    Ok(version)
}

/// A FHIR resource from a request body, JSON or XML by Content-Type, checked as R4.
async fn read_resource_body(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
) -> Result<Value, ApiError> {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let is_json = matches!(
        essence.as_str(),
        "application/fhir+json" | "application/json" | "application/json+fhir"
    );
    let is_xml = matches!(
        essence.as_str(),
        "application/fhir+xml" | "application/xml" | "text/xml" | "application/xml+fhir"
    );
    if !is_json && !is_xml {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes = read_body(body, limit).await?;
    let invalid =
        |e: String| ApiError::BadRequest(format!("the body is not a valid FHIR R4 resource: {e}"));
    // Judged on the bytes before any parser recurses into them.
    let shape = match is_xml {
        true => check_xml(&bytes, ShapeLimits::CLIENT_XML),
        false => check_json(&bytes, ShapeLimits::CLIENT_JSON),
    };
    shape.map_err(ApiError::BodyShape)?;
    if is_xml {
        return fhir_codec::read_xml(&bytes).map_err(|e| invalid(e.to_string()));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    fhir_codec::validate_r4_json(&value).map_err(|e| invalid(e.to_string()))?;
    Ok(value)
}
