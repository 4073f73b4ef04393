//! `GET /fhir/{type}/{id}`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::error::ApiError;
use super::links::{PartnerLinks, release};
use super::respond::{Output, is_strict, query_pairs};
use super::{AppState, Viewer, admit, audit, permit_clinical, principal};
use crate::auth::principal::Principal;
use crate::auth::scopes::Interaction;
use crate::federation::ReadFailure;
use crate::federation::linked::PatientIds;
use crate::federation::scope::RequestScope;
use crate::fhir::compartment::patient_of;
use crate::fhir::elements::{subset, summarise};
use crate::fhir::patient::merge;
use crate::fhir::search::{SearchRequest, read_controls};
use crate::fhir::{NhsNumber, ResourceType};
use crate::policy::access::Denied;

pub async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer_read(&req, &pairs, async {
        let principal = principal(&req, &state).await?;
        let (summary, elements) = read_controls(&pairs, is_strict(&req))?;
        let mut resource = read_resource(&req, &state, &principal, &path.0, &path.1).await?;
        crate::fhir::uk_core::declare(&mut resource);
        // What is shown is cut after the release stage judged the whole record.
        match &elements {
            Some(elements) => subset(&mut resource, elements),
            None => summarise(&mut resource, summary),
        }
        Ok(resource)
    })
    .await
}

/// A read passes the same release stage as a search: a withheld record, or one
/// that could not be judged, is as absent as one that does not exist.
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
    if resource_type.is_patient()
        && let Ok(nhs) = NhsNumber::parse(id)
    {
        audit::note_patients(req, [&nhs]);
        if !admit(state, principal, &nhs).await? {
            return Err(not_found());
        }
    }
    let scope = super::scope(state, principal);
    let (resource, patients) = fetch(state, resource_type, id, &scope).await?;
    match patient_of(&resource) {
        Some(nhs) => {
            audit::note_patients(req, [&nhs]);
            if !admit(state, principal, &nhs).await? {
                return Err(not_found());
            }
        }
        // A record that names no patient cannot be shown within one patient's context,
        // unless it is directory data (the patient's GP practice).
        None if principal.patient.is_some() && !resource_type.is_directory() => {
            return Err(Denied::Forbidden(
                "this access token is limited to one patient; this record cannot be shown with it"
                    .into(),
            )
            .into());
        }
        None => {}
    }
    let viewer = Viewer::new(principal, vec![(resource_type, grant)]);
    let links = PartnerLinks {
        federation: &state.federation,
        patients,
        scope: &scope,
    };
    // Withheld, not judged, or outside a fine-grained scope: as absent as an unknown
    // id (but counted for investigators in the audit trail).
    let released = release(req, state, &viewer, vec![resource], Vec::new(), links).await;
    let resource = released.into_records().pop().ok_or_else(not_found)?;
    audit::note_returned(req, [&resource]);
    Ok(resource)
}

/// The record, and what is known of its patient's ids at its partner.
async fn fetch(
    state: &AppState,
    resource_type: ResourceType,
    id: &str,
    scope: &RequestScope,
) -> Result<(Value, PatientIds), ApiError> {
    let not_found = || ApiError::NotFound(format!("{resource_type}/{id}"));
    if resource_type.is_patient() {
        let patient = read_patient(state, id, scope)
            .await?
            .ok_or_else(not_found)?;
        return Ok((patient, PatientIds::default()));
    }
    match state.federation.read(resource_type, id, scope).await {
        Ok(read) => Ok((read.resource, read.patients)),
        Err(ReadFailure::NotFound) => Err(not_found()),
        Err(ReadFailure::Store(e)) => Err(e.into()),
        Err(ReadFailure::Partner { partner, failure }) => Err(ApiError::PartnerUnavailable {
            organisation: partner.label(),
            failure,
        }),
    }
}

/// The merged Patient for an NHS number, if any partner knows them.
pub async fn read_patient(
    state: &AppState,
    id: &str,
    scope: &RequestScope,
) -> Result<Option<Value>, ApiError> {
    let Ok(nhs) = NhsNumber::parse(id) else {
        return Ok(None);
    };
    let request = SearchRequest::parse(
        ResourceType::patient(),
        &[("_id".into(), nhs.to_string())],
        true,
        state.page_limits,
    )?;
    let mut gathered = state.federation.gather_patients(&request, scope).await?;
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
