//! A GP practice's system answering GP Connect Access Record: Structured, as a real
//! provider does: it checks the Spine headers and the consumer JWT (400 `BAD_REQUEST`
//! for anything missing), the Parameters (422 `INVALID_PARAMETER`), refuses patients
//! who dissented (403 `NO_PATIENT_CONSENT`) or are not registered (404
//! `PATIENT_NOT_FOUND`), and answers with the areas asked for as one STU3 collection
//! Bundle, disabled areas reported in an OperationOutcome entry. It also stands in
//! for the Spine Secure Proxy under `/proxy/`. Misbehaves on request like the FHIR
//! simulator.

mod record;

use std::net::TcpListener;
use std::sync::{Arc, Mutex, RwLock};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub use record::{PracticeRecords, PracticeSetup};

use self::record::{Asked, answer, outcome};
use super::Faults;
use crate::federation::gp_connect::area::{Area, Areas};
use crate::federation::gp_connect::consumer_jwt::{SDS_ROLE_PROFILE_ID_SYSTEM, SDS_USER_ID_SYSTEM};
use crate::federation::gp_connect::{METADATA_INTERACTION, STRUCTURED_INTERACTION};
use crate::fhir::NhsNumber;
use crate::fhir::nhs_number::NHS_NUMBER_SYSTEM;

/// One request as the practice received it.
#[derive(Debug, Clone)]
pub struct GpcReceived {
    pub path: String,
    pub via_proxy: bool,
    /// Every header, by lower-case name.
    pub headers: Vec<(String, String)>,
    /// The consumer JWT's claims, if it could be read.
    pub claims: Option<Value>,
    /// The Parameters sent, if any.
    pub parameters: Option<Value>,
}

impl GpcReceived {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `include*` parameters asked for.
    pub fn areas(&self) -> Vec<String> {
        self.parameters
            .iter()
            .flat_map(|p| p["parameter"].as_array().into_iter().flatten())
            .filter_map(|p| p["name"].as_str())
            .filter(|n| n.starts_with("include"))
            .map(str::to_string)
            .collect()
    }
}

struct PracticeState {
    base_url: String,
    records: PracticeRecords,
    setup: RwLock<PracticeSetup>,
    faults: RwLock<Faults>,
    requests: Mutex<Vec<GpcReceived>>,
}

/// A running simulated GP Connect practice on 127.0.0.1.
pub struct GpConnectPractice {
    /// The practice's endpoint (service root), which the consumer JWT names as `aud`.
    pub base_url: String,
    /// A Spine Secure Proxy stand-in: `{proxy_url}/{base_url}/...` reaches the practice.
    pub proxy_url: String,
    state: Arc<PracticeState>,
    handle: ServerHandle,
}

impl GpConnectPractice {
    pub fn start(records: PracticeRecords, faults: Faults) -> std::io::Result<GpConnectPractice> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let root = format!("/{}/STU3/1/gpconnect/structured", ods_of(&records));
        let base_url = format!("http://{address}{root}");
        let state = Arc::new(PracticeState {
            base_url: base_url.clone(),
            setup: RwLock::new(records.setup.clone()),
            records,
            faults: RwLock::new(faults),
            requests: Mutex::new(Vec::new()),
        });
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .route(&format!("{root}/metadata"), web::get().to(metadata))
                .route(
                    &format!("{root}/Patient/$gpc.getstructuredrecord"),
                    web::post().to(structured),
                )
                .route("/proxy/{target:.*}", web::route().to(proxied))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(GpConnectPractice {
            proxy_url: format!("http://{address}/proxy"),
            base_url,
            state,
            handle,
        })
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.write().expect("faults lock") = faults;
    }

    /// Changes who has dissented and which areas are switched off.
    pub fn set_setup(&self, change: impl FnOnce(&mut PracticeSetup)) {
        change(&mut self.state.setup.write().expect("setup lock"));
    }

    pub fn received(&self) -> Vec<GpcReceived> {
        self.state
            .requests
            .lock()
            .expect("request log lock")
            .clone()
    }

    /// The structured-record requests received so far.
    pub fn record_requests(&self) -> Vec<GpcReceived> {
        self.received()
            .into_iter()
            .filter(|r| r.path.ends_with("$gpc.getstructuredrecord"))
            .collect()
    }

    pub fn clear_requests(&self) {
        self.state
            .requests
            .lock()
            .expect("request log lock")
            .clear();
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn ods_of(records: &PracticeRecords) -> String {
    records
        .records
        .values()
        .flatten()
        .filter(|r| r["resourceType"] == "Organization")
        .find_map(|o| o["identifier"][0]["value"].as_str().map(str::to_string))
        .unwrap_or_else(|| "GP0001".to_string())
}

fn fhir_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/fhir+json; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(body.to_string())
}

/// An error a provider answers with: an OperationOutcome with its Spine code.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    spine_code: &'static str,
    text: String,
}

impl Refusal {
    fn respond(&self) -> HttpResponse {
        fhir_json(
            self.status,
            &outcome("error", self.code, self.spine_code, &self.text),
        )
    }
}

fn refuse(status: StatusCode, code: &'static str, spine_code: &'static str, text: &str) -> Refusal {
    Refusal {
        status,
        code,
        spine_code,
        text: text.to_string(),
    }
}

fn bad_request(text: &str) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, "invalid", "BAD_REQUEST", text)
}

/// The Spine Secure Proxy stand-in: passes `/proxy/{practice endpoint}/...` on.
async fn proxied(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<PracticeState>,
) -> HttpResponse {
    pass_on(&req, &body, &state)
        .await
        .unwrap_or_else(|refused| refused.respond())
}

async fn pass_on(
    req: &HttpRequest,
    body: &[u8],
    state: &PracticeState,
) -> Result<HttpResponse, Refusal> {
    let target = req.match_info().query("target").to_string();
    // The URL arrives with its `//` possibly folded by the HTTP stack.
    let target = target
        .replacen("http:/", "http://", 1)
        .replacen("http:///", "http://", 1);
    let Some(path) = target.strip_prefix(&state.base_url) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "not-found",
            "NO_RECORD_FOUND",
            "no such endpoint behind the proxy",
        ));
    };
    match (req.method().as_str(), path) {
        ("GET", "/metadata") => Ok(answer_metadata(req, state, true).await),
        ("POST", "/Patient/$gpc.getstructuredrecord") => {
            Ok(answer_structured(req, body, state, true).await)
        }
        _ => Err(refuse(
            StatusCode::NOT_FOUND,
            "not-found",
            "NO_RECORD_FOUND",
            "no such operation",
        )),
    }
}

async fn metadata(req: HttpRequest, state: web::Data<PracticeState>) -> HttpResponse {
    answer_metadata(&req, &state, false).await
}

async fn structured(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<PracticeState>,
) -> HttpResponse {
    answer_structured(&req, &body, &state, false).await
}

async fn answer_metadata_or_refusal(
    req: &HttpRequest,
    state: &PracticeState,
    via_proxy: bool,
) -> Result<HttpResponse, Refusal> {
    let faults = state.record(req, via_proxy, None);
    if let Some(response) = faults.before_answer().await {
        return Ok(response);
    }
    state.check_spine(req, METADATA_INTERACTION, "organization/*.read")?;
    Ok(faults.answer(json!({
        "resourceType": "CapabilityStatement",
        "version": "1.6.0",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "fhirVersion": "3.0.1",
        "acceptUnknown": "both",
        "format": ["application/fhir+json"],
        "rest": [{"mode": "server", "operation": [{"name": "gpc.getstructuredrecord", "definition": {"reference": "https://fhir.nhs.uk/STU3/OperationDefinition/GPConnect-GetStructuredRecord-Operation-1"}}]}]
    })))
}

async fn answer_structured_or_refusal(
    req: &HttpRequest,
    body: &[u8],
    state: &PracticeState,
    via_proxy: bool,
) -> Result<HttpResponse, Refusal> {
    let parameters: Option<Value> = serde_json::from_slice(body).ok();
    let faults = state.record(req, via_proxy, parameters.clone());
    if let Some(response) = faults.before_answer().await {
        return Ok(response);
    }
    state.check_spine(req, STRUCTURED_INTERACTION, "patient/*.read")?;
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/fhir+json") {
        return Err(bad_request("Content-Type must be application/fhir+json"));
    }
    let Some(parameters) = parameters.filter(|p| p["resourceType"] == "Parameters") else {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "INVALID_RESOURCE",
            "the body is not a Parameters resource",
        ));
    };
    let (nhs, asked, unrecognised) = read_parameters(&parameters)?;
    let setup = state.setup.read().expect("setup lock").clone();
    if setup.dissented.iter().any(|d| d == nhs.as_str()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "NO_PATIENT_CONSENT",
            "Patient has not provided consent to share data",
        ));
    }
    let Some(record) = state.records.records.get(&nhs) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "not-found",
            "PATIENT_NOT_FOUND",
            "Patient not found",
        ));
    };
    let disabled = setup
        .disabled
        .iter()
        .filter_map(|p| Area::of_parameter(p))
        .fold(Areas::default(), Areas::with);
    let mut resources = answer(record, &asked, disabled);
    let mut warnings: Vec<Value> = asked
        .areas
        .iter()
        .filter(|a| disabled.contains(*a))
        .map(|a| {
            warning_issue(
                &format!("{} has been disabled", a.parameter()),
                a.parameter(),
            )
        })
        .collect();
    warnings.extend(
        unrecognised
            .iter()
            .map(|p| warning_issue(&format!("{p} is an unrecognised parameter"), p)),
    );
    if !warnings.is_empty() {
        resources.push(json!({
            "resourceType": "OperationOutcome",
            "id": uuid::Uuid::new_v4().to_string(),
            "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"]},
            "issue": warnings
        }));
    }
    let trace = req
        .headers()
        .get("ssp-traceid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(faults.answer(json!({
        "resourceType": "Bundle",
        "id": trace,
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-StructuredRecord-Bundle-1"]},
        "type": "collection",
        "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()
    })))
}

async fn answer_metadata(
    req: &HttpRequest,
    state: &PracticeState,
    via_proxy: bool,
) -> HttpResponse {
    answer_metadata_or_refusal(req, state, via_proxy)
        .await
        .unwrap_or_else(|refused| refused.respond())
}

async fn answer_structured(
    req: &HttpRequest,
    body: &[u8],
    state: &PracticeState,
    via_proxy: bool,
) -> HttpResponse {
    answer_structured_or_refusal(req, body, state, via_proxy)
        .await
        .unwrap_or_else(|refused| refused.respond())
}

fn warning_issue(text: &str, parameter: &str) -> Value {
    json!({
        "severity": "warning",
        "code": "not-supported",
        "details": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1", "code": "NOT_IMPLEMENTED", "display": "Not implemented"}], "text": text},
        "diagnostics": parameter
    })
}

/// The patient, the areas and their parts, and any parameter not recognised; or
/// the refusal a provider gives for what breaks the operation's rules.
fn read_parameters(parameters: &Value) -> Result<(NhsNumber, Asked, Vec<String>), Refusal> {
    let invalid = |text: &str| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "INVALID_PARAMETER",
            text,
        )
    };
    let list = parameters["parameter"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut nhs = None;
    let mut asked = Asked {
        prescription_issues: true,
        ..Asked::default()
    };
    let mut unrecognised = Vec::new();
    let mut filter_parts = Vec::new();
    for parameter in &list {
        let name = parameter["name"].as_str().unwrap_or_default();
        let part = |part: &str| {
            parameter["part"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == part)
        };
        if name == "patientNHSNumber" {
            let identifier = &parameter["valueIdentifier"];
            if identifier["system"] != NHS_NUMBER_SYSTEM {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "value",
                    "INVALID_NHS_NUMBER",
                    "patientNHSNumber: not an NHS number",
                ));
            }
            match identifier["value"].as_str().map(NhsNumber::parse) {
                Some(Ok(n)) => nhs = Some(n),
                _ => {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "value",
                        "INVALID_NHS_NUMBER",
                        "patientNHSNumber: invalid NHS number",
                    ));
                }
            }
            continue;
        }
        let Some(area) = Area::of_parameter(name).filter(|a| a.parameter() == name) else {
            unrecognised.push(name.to_string());
            continue;
        };
        asked.areas = asked.areas.with(area);
        match area {
            Area::Allergies => {
                match part("includeResolvedAllergies").and_then(|p| p["valueBoolean"].as_bool()) {
                    Some(resolved) => asked.resolved_allergies = resolved,
                    None => {
                        return Err(invalid(
                            "includeAllergies.includeResolvedAllergies is mandatory",
                        ));
                    }
                }
            }
            Area::Medication => {
                if let Some(issues) =
                    part("includePrescriptionIssues").and_then(|p| p["valueBoolean"].as_bool())
                {
                    asked.prescription_issues = issues;
                }
                if part("medicationSearchFromDate").is_some() {
                    filter_parts.push("includeMedication.medicationSearchFromDate");
                }
            }
            Area::Immunisations => {
                if let Some(p) = part("includeNotGiven") {
                    asked.not_given_immunisations = p["valueBoolean"].as_bool() == Some(true);
                    filter_parts.push("includeImmunisations.includeNotGiven");
                }
                if part("includeStatus").is_some() {
                    filter_parts.push("includeImmunisations.includeStatus");
                }
            }
            Area::Uncategorised if part("uncategorisedDataSearchPeriod").is_some() => {
                filter_parts.push("includeUncategorisedData.uncategorisedDataSearchPeriod");
            }
            Area::Referrals if part("referralSearchPeriod").is_some() => {
                filter_parts.push("includeReferrals.referralSearchPeriod");
            }
            _ => {}
        }
    }
    let Some(nhs) = nhs else {
        return Err(invalid("patientNHSNumber is mandatory"));
    };
    // GP Connect's forbidden combinations: filtered areas beside consultations or problems.
    let broad = asked.areas.contains(Area::Consultations) || asked.areas.contains(Area::Problems);
    if broad && let Some(part) = filter_parts.first() {
        return Err(invalid(&format!(
            "{part} is not permitted with includeConsultations or includeProblems"
        )));
    }
    Ok((nhs, asked, unrecognised))
}

impl PracticeState {
    fn record(&self, req: &HttpRequest, via_proxy: bool, parameters: Option<Value>) -> Faults {
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let claims = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(decode_unsigned);
        self.requests
            .lock()
            .expect("request log lock")
            .push(GpcReceived {
                path: req.path().to_string(),
                via_proxy,
                headers,
                claims,
                parameters,
            });
        self.faults.read().expect("faults lock").clone()
    }

    /// The Spine headers and the consumer JWT, as a provider checks them.
    fn check_spine(
        &self,
        req: &HttpRequest,
        interaction: &str,
        scope: &str,
    ) -> Result<(), Refusal> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if header("ssp-traceid")
            .and_then(|t| uuid::Uuid::parse_str(t).ok())
            .is_none()
        {
            return Err(bad_request("Ssp-TraceID is missing or not a UUID"));
        }
        if header("ssp-from").is_none_or(str::is_empty) {
            return Err(bad_request("Ssp-From is missing"));
        }
        let asid = self.setup.read().expect("setup lock").asid.clone();
        if header("ssp-to") != Some(asid.as_str()) {
            return Err(bad_request("Ssp-To is not this practice's ASID"));
        }
        if header("ssp-interactionid") != Some(interaction) {
            return Err(bad_request(
                "Ssp-InteractionID does not match the operation",
            ));
        }
        if !header("accept").is_some_and(|a| a.contains("application/fhir+json")) {
            return Err(bad_request("Accept must be application/fhir+json"));
        }
        let Some(token) = header("authorization") else {
            return Err(bad_request("Authorization is missing"));
        };
        let Some(claims) = decode_unsigned(token) else {
            return Err(bad_request("the bearer token is not an unsigned JWT"));
        };
        check_claims(&claims, &self.base_url, scope)
    }
}

/// The claims of `Bearer {header}.{claims}.` with header `{"alg":"none"}`.
fn decode_unsigned(authorization: &str) -> Option<Value> {
    let token = authorization.strip_prefix("Bearer ")?;
    let mut parts = token.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !signature.is_empty() {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header["alg"] != "none" {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
}

fn check_claims(claims: &Value, endpoint: &str, scope: &str) -> Result<(), Refusal> {
    for claim in [
        "iss",
        "sub",
        "aud",
        "iat",
        "exp",
        "reason_for_request",
        "requested_scope",
        "requesting_device",
        "requesting_organization",
        "requesting_practitioner",
    ] {
        if claims[claim].is_null() {
            return Err(bad_request(&format!("the JWT lacks {claim}")));
        }
    }
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    let now = chrono::Utc::now().timestamp();
    match (iat, exp) {
        (Some(iat), Some(exp)) if exp - iat == 300 && iat <= now + 300 && exp > now => {}
        _ => {
            return Err(bad_request(
                "the JWT's iat and exp are not a current five minutes",
            ));
        }
    }
    if claims["aud"] != endpoint {
        return Err(bad_request("the JWT's aud is not this practice's endpoint"));
    }
    if claims["reason_for_request"] != "directcare" {
        return Err(bad_request("reason_for_request must be directcare"));
    }
    if claims["requested_scope"]
        .as_str()
        .is_none_or(|s| s.split(' ').next() != Some(scope))
    {
        return Err(bad_request("requested_scope does not match the operation"));
    }
    let resource = |claim: &str, kind: &str| claims[claim]["resourceType"] == kind;
    if !resource("requesting_device", "Device")
        || !resource("requesting_organization", "Organization")
        || !resource("requesting_practitioner", "Practitioner")
    {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "INVALID_RESOURCE",
            "a JWT claim holds the wrong resource type",
        ));
    }
    let practitioner = &claims["requesting_practitioner"];
    if practitioner["id"] != claims["sub"] {
        return Err(bad_request("sub is not requesting_practitioner.id"));
    }
    let identifiers = practitioner["identifier"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for system in [SDS_USER_ID_SYSTEM, SDS_ROLE_PROFILE_ID_SYSTEM] {
        if !identifiers
            .iter()
            .any(|i| i["system"] == system && i["value"].is_string())
        {
            return Err(bad_request(&format!(
                "requesting_practitioner lacks {system}"
            )));
        }
    }
    let organisation = &claims["requesting_organization"]["identifier"][0];
    if organisation["system"] != crate::fhir::ODS_ORGANISATION_SYSTEM
        || !organisation["value"].is_string()
    {
        return Err(bad_request("requesting_organization lacks its ODS code"));
    }
    Ok(())
}
