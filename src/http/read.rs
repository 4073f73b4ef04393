//! `GET /fhir/{type}/{id}`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::error::ApiError;
use super::respond::{Output, query_pairs};
use super::{AppState, Viewer, admit, permit_clinical, principal};
use crate::auth::principal::Principal;
use crate::auth::scopes::Interaction;
use crate::federation::ReadFailure;
use crate::fhir::patient::merge;
use crate::fhir::search::SearchRequest;
use crate::fhir::search::matcher::nodes;
use crate::fhir::search::registry::Registry;
use crate::fhir::{NhsNumber, ResourceType};
use crate::policy::access::Denied;

pub async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer(&req, &pairs, async {
        let principal = principal(&req, &state).await?;
        read_resource(&req, &state, &principal, &path.0, &path.1).await
    })
    .await
}

/// A read passes the same policy filter as a search: a withheld record is as absent
/// as one that does not exist.
async fn read_resource(
    req: &HttpRequest,
    state: &AppState,
    principal: &Principal,
    type_name: &str,
    id: &str,
) -> Result<Value, ApiError> {
    let not_found = || ApiError::NotFound(format!("{type_name}/{id}"));
    let resource_type: ResourceType = type_name
        .parse()
        .map_err(|_| ApiError::UnknownType(type_name.to_string()))?;
    let grant = permit_clinical(principal, resource_type, Interaction::Read)?;
    if resource_type == ResourceType::Patient
        && let Ok(nhs) = NhsNumber::parse(id)
        && !admit(state, principal, &nhs).await?
    {
        return Err(not_found());
    }
    let resource = fetch(state, resource_type, id).await?;
    match patient_of(&resource) {
        Some(nhs) if !admit(state, principal, &nhs).await? => return Err(not_found()),
        Some(_) => {}
        // A record that names no patient cannot be shown within one patient's context.
        None if principal.patient.is_some() => {
            return Err(Denied::Forbidden(
                "this access token is limited to one patient; this record cannot be shown with it"
                    .into(),
            )
            .into());
        }
        None => {}
    }
    let context = linked_records(state, &resource).await?;
    let viewer = Viewer::new(principal, vec![(resource_type, grant)]);
    let resource = state
        .policy
        .filter(vec![resource], &context, viewer.clearance)
        .pop()
        .filter(|r| viewer.covers(r));
    // Withheld, or outside a fine-grained scope: as absent as an unknown id (but
    // counted for investigators in the audit trail).
    let Some(resource) = resource else {
        super::audit::note_withheld(req, 1);
        return Err(not_found());
    };
    Ok(resource)
}

async fn fetch(state: &AppState, resource_type: ResourceType, id: &str) -> Result<Value, ApiError> {
    let not_found = || ApiError::NotFound(format!("{resource_type}/{id}"));
    if resource_type == ResourceType::Patient {
        return read_patient(state, id).await?.ok_or_else(not_found);
    }
    match state.federation.read(resource_type, id).await {
        Ok(resource) => Ok(resource),
        Err(ReadFailure::NotFound) => Err(not_found()),
        Err(ReadFailure::Store(e)) => Err(e.into()),
        Err(ReadFailure::Partner { partner, failure }) => Err(ApiError::PartnerUnavailable {
            organisation: partner.label(),
            failure,
        }),
    }
}

/// The encounters and observations a record points at, read so that the policy can
/// judge the links. One that cannot be checked fails the read rather than pass unseen.
async fn linked_records(state: &AppState, resource: &Value) -> Result<Vec<Value>, ApiError> {
    let mut linked = Vec::new();
    for reference in references(resource) {
        let Some((type_name, id)) = reference.split_once('/') else {
            continue;
        };
        let Ok(resource_type @ (ResourceType::Encounter | ResourceType::Observation)) =
            type_name.parse()
        else {
            continue;
        };
        match state.federation.read(resource_type, id).await {
            Ok(found) => linked.push(found),
            Err(ReadFailure::NotFound) => {}
            Err(ReadFailure::Store(e)) => return Err(e.into()),
            Err(ReadFailure::Partner { partner, failure }) => {
                return Err(ApiError::PartnerUnavailable {
                    organisation: partner.label(),
                    failure,
                });
            }
        }
    }
    Ok(linked)
}

/// Every literal reference in a resource.
fn references(node: &Value) -> Vec<String> {
    match node {
        Value::Object(map) => {
            let own = map
                .get("reference")
                .and_then(Value::as_str)
                .map(str::to_string);
            own.into_iter()
                .chain(map.values().flat_map(references))
                .collect()
        }
        Value::Array(items) => items.iter().flat_map(references).collect(),
        _ => Vec::new(),
    }
}

/// The patient a resource in facade form is (a merged Patient, whose id is the NHS
/// number) or is about.
fn patient_of(resource: &Value) -> Option<NhsNumber> {
    let resource_type: ResourceType = resource["resourceType"].as_str()?.parse().ok()?;
    if resource_type == ResourceType::Patient {
        return NhsNumber::parse(resource["id"].as_str()?).ok();
    }
    let def = Registry::get().lookup(resource_type, "patient")?;
    nodes(resource, &def.paths)
        .into_iter()
        .filter_map(|n| n["reference"].as_str()?.strip_prefix("Patient/"))
        .find_map(|id| NhsNumber::parse(id).ok())
}

/// The merged Patient for an NHS number, if any partner knows them.
pub async fn read_patient(state: &AppState, id: &str) -> Result<Option<Value>, ApiError> {
    let Ok(nhs) = NhsNumber::parse(id) else {
        return Ok(None);
    };
    let request = SearchRequest::parse(
        ResourceType::Patient,
        &[("_id".into(), nhs.to_string())],
        true,
        state.page_limits,
    )?;
    let mut gathered = state.federation.gather_patients(&request).await?;
    match gathered.patients.remove(&nhs) {
        Some(sources) => Ok(merge(&nhs, sources)),
        None => {
            // Not found anywhere that answered; if a partner failed, say so rather than 404.
            let failed = gathered.reports.into_iter().find_map(|r| match r.status {
                crate::federation::report::PartnerStatus::Failed(failure) => {
                    Some((r.partner, failure))
                }
                _ => None,
            });
            match failed {
                Some((partner, failure)) => Err(ApiError::PartnerUnavailable {
                    organisation: partner.label(),
                    failure,
                }),
                None => Ok(None),
            }
        }
    }
}
