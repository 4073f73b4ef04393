//! `GET /fhir/{type}?...` and `POST /fhir/{type}/_search`.

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::Value;

use super::error::ApiError;
use super::includes::IncludePlan;
use super::links::{PartnerLinks, release};
use super::respond::{Output, is_strict, query_pairs};
use super::searchset::{PageLink, PageRequest, searchset};
use super::{
    AppState, Viewer, admit_to_gather, audit, hidden_by_objection, permit_clinical, principal,
};
use crate::auth::scopes::Interaction;
use crate::federation::clinical_query;
use crate::federation::identity::Known;
use crate::fhir::ResourceType;
use crate::fhir::patient::merge;
use crate::fhir::search::matcher::matches_all;
use crate::fhir::search::{SearchRequest, Summary};
use crate::policy::access::permit_patient;

pub async fn search_get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    respond(&req, &state, &path, pairs).await
}

/// `GET /fhir/Patient/{id}/{type}?...`: the Patient compartment search, the same
/// search as `{type}?patient=Patient/{id}&...` (and answered as that one, self link
/// and page links included).
pub async fn compartment(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (id, type_name) = path.into_inner();
    let mut pairs = query_pairs(req.query_string());
    let in_compartment = type_name
        .parse::<ResourceType>()
        .is_ok_and(|t| t.is_clinical());
    if !in_compartment {
        let output = Output::negotiate(&req, &pairs).unwrap_or(Output::JSON);
        return output.error(match type_name.parse::<ResourceType>() {
            Err(_) => ApiError::UnknownType(type_name),
            Ok(_) => ApiError::BadRequest(format!(
                "{type_name} is not in the Patient compartment; search it as /{type_name}"
            )),
        });
    }
    // Page links point at the type's own search, so a page link never comes here.
    pairs.push(("patient".into(), format!("Patient/{id}")));
    respond(&req, &state, &type_name, pairs).await
}

pub async fn search_post(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut pairs = query_pairs(req.query_string());
    let output = Output::negotiate(&req, &pairs).unwrap_or(Output::JSON);
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return output.error(ApiError::UnsupportedMediaType);
    }
    match read_body(body, state.max_body_bytes).await {
        Ok(body) => pairs.extend(query_pairs(&String::from_utf8_lossy(&body))),
        Err(e) => return output.error(e),
    }
    respond(&req, &state, &path, pairs).await
}

async fn respond(
    req: &HttpRequest,
    state: &AppState,
    type_name: &str,
    pairs: Vec<(String, String)>,
) -> HttpResponse {
    Output::answer(req, &pairs, search(req, state, type_name, pairs.clone())).await
}

async fn search(
    req: &HttpRequest,
    state: &AppState,
    type_name: &str,
    pairs: Vec<(String, String)>,
) -> Result<Value, ApiError> {
    let principal = principal(req, state).await?;
    let resource_type: ResourceType = type_name
        .parse()
        .map_err(|_| ApiError::UnknownType(type_name.to_string()))?;
    let grant = permit_clinical(&principal, resource_type, Interaction::Search)?;
    let mut viewer = Viewer::new(&principal, vec![(resource_type, grant)]);
    let format_param = pairs
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.clone());
    let (pairs, link) = PageRequest::open_cursor(state, &viewer, type_name, pairs)?;
    let request = SearchRequest::parse(resource_type, &pairs, is_strict(req), state.page_limits)?;
    // Included types show as far as the token's scopes reach (the others are not
    // shown, as a search may omit what its scopes do not cover).
    for included in request.included_types() {
        if let Ok(grant) = permit_clinical(&principal, included, Interaction::Read) {
            viewer.grant(included, grant);
        }
    }
    audit::note_patients(
        req,
        request
            .patient
            .iter()
            .chain(request.named_patients().iter().flatten()),
    );

    // An objection is checked before any partner is asked (the patient's partner
    // links read with it); a patient outside the cohort is not found.
    let (outside_cohort, known) = match &request.patient {
        Some(nhs) => match admit_to_gather(state, &principal, nhs).await? {
            Some(known) => (false, known),
            None => (true, Known::default()),
        },
        None => (false, Known::default()),
    };
    for nhs in request.named_patients().iter().flatten() {
        permit_patient(&principal, nhs)?;
        if hidden_by_objection(state, &principal, nhs).await? {
            return Err(ApiError::Objection);
        }
    }
    let scope = super::scope(state, &principal);
    let scope = &scope;
    scope.expect(std::iter::once(resource_type).chain(request.included_types()));
    // A page of records is asked of partners in its order, so that a later one need
    // not gather everything again; a count needs no order.
    let order = (request.summary != Summary::Count)
        .then(|| PageLink::order(link.as_ref(), request.sort, request.count));
    let (candidates, in_hand, reports, patients, ordered) = match &request.patient {
        Some(_) if outside_cohort => Default::default(),
        Some(nhs) => {
            let gathered = state
                .federation
                .gather_clinical(
                    nhs,
                    known,
                    &[resource_type],
                    |partner, _, ids| clinical_query(&request, partner, ids),
                    order.as_ref(),
                    scope,
                )
                .await?;
            // Partners may ignore a parameter; the facade honours every one itself.
            // What the criteria leave out is still at hand for judging links.
            let (candidates, in_hand) = gathered.resources.into_iter().partition(|r| {
                r["resourceType"] == resource_type.as_str() && matches_all(r, &request.criteria)
            });
            let (reports, patients) = (gathered.reports, gathered.patients);
            (candidates, in_hand, reports, patients, gathered.ordered)
        }
        None if resource_type.is_directory() => {
            let gathered = state.federation.gather_directory(&request, scope).await;
            let (candidates, in_hand) = gathered
                .resources
                .into_iter()
                .partition(|r| matches_all(r, &request.criteria));
            let reports = gathered.reports;
            (candidates, in_hand, reports, Default::default(), Vec::new())
        }
        None => {
            if request.criteria.is_empty() {
                return Err(ApiError::BadRequest(
                    "a Patient search needs an identifier (NHS number), _id, or demographics such as family and birthdate".into(),
                ));
            }
            let gathered = state.federation.gather_patients(&request, scope).await?;
            let mut merged = Vec::new();
            for (nhs, sources) in &gathered.patients {
                // Found by demographics: a patient who objects, or another patient than
                // a launch context's, is simply not listed.
                if permit_patient(&principal, nhs).is_err()
                    || hidden_by_objection(state, &principal, nhs).await?
                {
                    continue;
                }
                merged.extend(merge(nhs, sources.clone()).filter(|p| state.cohort.admits(p)));
            }
            let candidates = merged
                .into_iter()
                .filter(|r| matches_all(r, &request.criteria))
                .collect();
            let reports = gathered.reports;
            (
                candidates,
                Vec::new(),
                reports,
                Default::default(),
                Vec::new(),
            )
        }
    };
    let links_patients = patients.clone();
    let links = PartnerLinks {
        federation: &state.federation,
        patients,
        scope,
    };
    let released = release(req, state, &viewer, candidates, in_hand, links).await;
    let page = PageRequest {
        target: type_name.to_string(),
        query: request.to_query_pairs(),
        count: request.count,
        sort: request.sort,
        summary: request.summary,
        total: request.total,
        elements: request.elements.clone(),
        link,
        notes: request.notes.clone(),
        format_param,
        ordered,
    };
    let plan = IncludePlan {
        includes: &request.includes,
        revincludes: &request.revincludes,
        directory: false,
        patients: &links_patients,
        scope,
    };
    Ok(searchset(req, state, &viewer, page, released, &reports, plan).await)
}

/// Reads a request body up to `limit` bytes.
pub async fn read_body(mut body: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
