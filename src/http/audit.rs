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
use crate::fhir::{NhsNumber, PARTNER_REPORT_EXTENSION};

/// Noted on the request by the handlers; read once the answer is ready.
#[derive(Debug, Clone, Default)]
struct Notes {
    requester: Option<Requester>,
    /// `Type/id` of every resource returned.
    returned: Vec<String>,
    /// Patients the returned resources are or are about.
    patients: Vec<String>,
    partners: Vec<PartnerOutcome>,
    withheld: usize,
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
    req.extensions_mut()
        .get_or_insert_with(Notes::default)
        .requester = Some(requester);
}

/// Notes what is being returned (a resource or a Bundle), before it is written: the
/// ids, patients and partners, not the records themselves.
pub fn note_answer(req: &HttpRequest, answer: &Value) {
    let resources = returned(answer);
    let mut extensions = req.extensions_mut();
    let notes = extensions.get_or_insert_with(Notes::default);
    notes.returned = resources.iter().map(|r| address(r)).collect();
    notes.patients = resources.iter().flat_map(|r| patients_of(r)).collect();
    notes.partners = partners(answer);
}

/// Notes how many items the policy withheld from the answer (never shown to the
/// client; recorded for investigators).
pub fn note_withheld(req: &HttpRequest, count: usize) {
    req.extensions_mut()
        .get_or_insert_with(Notes::default)
        .withheld += count;
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
    let discovery = req.path().ends_with("/metadata") || req.path().contains("/.well-known/");
    let notes = req.extensions().get::<Notes>().cloned().unwrap_or_default();
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
        method: req.method().to_string(),
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
    };
    match crate::audit::record(&state.store, &access).await {
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
        (_, p) if p.ends_with("/metadata") || p.contains("/.well-known/") => "capabilities",
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

/// Resources an answer returns: a Bundle's match entries, or the resource itself.
fn returned(answer: &Value) -> Vec<&Value> {
    match answer["resourceType"].as_str() {
        Some("Bundle") => answer["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["search"]["mode"] != "outcome")
            .map(|e| &e["resource"])
            .filter(|r| r["id"].is_string())
            .collect(),
        Some("OperationOutcome") | None => Vec::new(),
        Some(_) if answer["id"].is_string() => vec![answer],
        Some(_) => Vec::new(),
    }
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

/// The patient a returned resource is (a Patient) or is about.
fn patients_of(resource: &Value) -> Vec<String> {
    if resource["resourceType"] == "Patient" {
        return resource["id"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect();
    }
    ["subject", "patient"]
        .iter()
        .filter_map(|field| resource[*field]["reference"].as_str())
        .filter_map(|r| r.strip_prefix("Patient/"))
        .filter_map(|id| NhsNumber::parse(id).ok())
        .map(|n| n.to_string())
        .collect()
}

/// Each partner consulted, from the searchset's per-partner reports.
fn partners(answer: &Value) -> Vec<PartnerOutcome> {
    answer["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "outcome")
        .flat_map(|e| {
            e["resource"]["issue"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|issue| issue["extension"].as_array().cloned().unwrap_or_default())
        .filter(|x| x["url"] == PARTNER_REPORT_EXTENSION)
        .filter_map(|report| {
            let fields = report["extension"].as_array()?;
            let field = |name: &str| fields.iter().find(|f| f["url"] == name);
            Some(PartnerOutcome {
                ods_code: field("organization")?["valueIdentifier"]["value"]
                    .as_str()?
                    .to_string(),
                status: field("status")?["valueCode"].as_str()?.to_string(),
            })
        })
        .collect()
}
