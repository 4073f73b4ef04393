//! What the audit trail needs from each request, noted as the request is answered
//! (who asked, what was returned), and the event written before the answer leaves.

use actix_web::dev::ServiceResponse;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::respond::Output;
use crate::audit::{Access, PartnerOutcome, Requester};
use crate::auth::principal::{Principal, PurposeOfUse};
use crate::federation::report::PartnerReport;
use crate::fhir::NhsNumber;
use crate::fhir::compartment::patient_of;

/// Marks a HEAD request, answered as a GET: recorded as the HEAD it was.
#[derive(Debug, Clone, Copy)]
pub struct Head;

/// Noted on the request by the handlers as the pipeline's stages hand on their
/// results (never re-read from the rendered answer); read once the answer is ready.
#[derive(Debug, Default)]
struct Notes {
    requester: Option<Requester>,
    /// `Type/id` of every resource returned.
    returned: Vec<String>,
    /// Patients the request named (in its query, form body or page link) or the
    /// returned resources are about.
    patients: Vec<String>,
    partners: Vec<PartnerOutcome>,
    withheld: usize,
    unjudged: usize,
}

fn with_notes(req: &HttpRequest, note: impl FnOnce(&mut Notes)) {
    note(req.extensions_mut().get_or_insert_with(Notes::default));
}

/// Notes who is asking (once their token is validated).
pub fn note_requester(req: &HttpRequest, principal: &Principal) {
    let role = principal.roles.first();
    let requester = Requester {
        issuer: principal.issuer.clone(),
        subject: principal.subject.clone(),
        name: principal.name.clone(),
        client_id: principal.client_id.clone(),
        token_id: principal.token_id.clone(),
        role: role.map(|r| r.code.clone()),
        organisation: role.and_then(|r| r.organisation.clone()),
        // A purpose the facade does not know is recorded as none (the request is refused).
        purpose: (!principal.unknown_purpose).then(|| principal.purpose.code().to_string()),
        emergency: principal.purpose == PurposeOfUse::Emergency,
    };
    with_notes(req, |notes| notes.requester = Some(requester));
}

/// Notes the patients a request is about, as soon as its parameters are understood
/// (whatever happens next: a refusal still names them).
pub fn note_patients<'a>(req: &HttpRequest, patients: impl IntoIterator<Item = &'a NhsNumber>) {
    let named: Vec<String> = patients.into_iter().map(|n| n.to_string()).collect();
    with_notes(req, |notes| notes.patients.extend(named));
}

/// Notes the partners consulted and how each answered.
pub fn note_partners(req: &HttpRequest, reports: &[PartnerReport]) {
    let partners: Vec<PartnerOutcome> = reports
        .iter()
        .map(|r| PartnerOutcome {
            ods_code: r.partner.ods_code.clone(),
            status: r.status.code().to_string(),
        })
        .collect();
    with_notes(req, |notes| notes.partners.extend(partners));
}

/// Notes the resources being returned (ids and the patients they are about, not the
/// records themselves).
pub fn note_returned<'a>(req: &HttpRequest, resources: impl IntoIterator<Item = &'a Value>) {
    let mut returned = Vec::new();
    let mut patients = Vec::new();
    for resource in resources {
        returned.push(address(resource));
        patients.extend(patient_of(resource).map(|n| n.to_string()));
    }
    with_notes(req, |notes| {
        notes.returned.extend(returned);
        notes.patients.extend(patients);
    });
}

/// Notes how many items the release stage withheld by policy and as not judged
/// (never shown to the client; recorded for investigators).
pub fn note_withheld(req: &HttpRequest, withheld: usize, unjudged: usize) {
    with_notes(req, |notes| {
        notes.withheld += withheld;
        notes.unjudged += unjudged;
    });
}

/// Writes the event for the answered request. If it cannot be written, the answer is
/// replaced: 503 and nothing else (fail closed).
pub async fn record(response: ServiceResponse, request_id: &str) -> ServiceResponse {
    let req = response.request();
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return response;
    };
    if !req.path().starts_with("/fhir") {
        return response;
    }
    // Discovery documents (CapabilityStatement, SMART configuration) hold nothing of
    // anyone's record: audited like the rest, but answered even if that fails.
    let discovery = req.path().ends_with("/metadata")
        || req.path().ends_with("/openapi.json")
        || req.path().contains("/.well-known/");
    // Taken, not copied: nothing reads the notes after the event is made.
    let notes = req.extensions_mut().remove::<Notes>().unwrap_or_default();
    let target = match req.query_string() {
        "" => req.path().to_string(),
        query => format!("{}?{query}", req.path()),
    };
    let mut patients = patients_asked(req);
    patients.extend(notes.patients);
    patients.sort();
    patients.dedup();
    let access = Access {
        request_id: request_id.to_string(),
        method: match req.extensions().get::<Head>() {
            Some(_) => "HEAD".to_string(),
            None => req.method().to_string(),
        },
        target,
        interaction: interaction(req),
        status: response.status().as_u16(),
        recorded: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        observer: state.instance.to_string(),
        requester: notes.requester,
        patients,
        returned: notes.returned,
        partners: notes.partners,
        withheld: notes.withheld,
        unjudged: notes.unjudged,
    };
    match crate::audit::record(&state.audit, &access).await {
        Ok(_) => response,
        Err(_) if discovery => {
            tracing::warn!(
                request_id,
                "audit event for a discovery document could not be written"
            );
            response
        }
        Err(_) => {
            tracing::error!(
                request_id,
                "audit event could not be written; answer withheld"
            );
            let unavailable: HttpResponse = Output::JSON.error(ApiError::AuditUnavailable);
            response.into_response(unavailable)
        }
    }
}

/// The restful interaction, from the route matched and the method.
fn interaction(req: &HttpRequest) -> String {
    let pattern = req.match_pattern().unwrap_or_default();
    let interaction = match (req.method().as_str(), pattern.as_str()) {
        (_, p)
            if p.ends_with("/metadata")
                || p.ends_with("/openapi.json")
                || p.contains("/.well-known/") =>
        {
            "capabilities"
        }
        (_, p) if p.contains("$everything") => "operation",
        (_, p) if p.ends_with("/_history/{version}") => "vread",
        (_, p) if p.ends_with("/_history") => "history-instance",
        ("POST", p) if p.ends_with("/_search") => "search-type",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        (_, p) if p.ends_with("/{id}") => "read",
        _ => "search-type",
    };
    interaction.to_string()
}

fn address(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    )
}

/// NHS numbers named in the path or the query (asked about, whatever the answer).
fn patients_asked(req: &HttpRequest) -> Vec<String> {
    let mut named: Vec<String> = req
        .path()
        .split('/')
        .filter_map(|segment| NhsNumber::parse(segment).ok())
        .map(|n| n.to_string())
        .collect();
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if matches!(name.as_ref(), "patient" | "subject" | "identifier" | "_id") {
            for one in value.split(',') {
                let id = one.rsplit(['/', '|']).next().unwrap_or_default();
                if let Ok(nhs) = NhsNumber::parse(id) {
                    named.push(nhs.to_string());
                }
            }
        }
    }
    named
}
