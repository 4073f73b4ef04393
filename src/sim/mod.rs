//! Partner simulators: small FHIR servers that serve a directory of R4 resources,
//! answer the searches the facade sends (with paging), and misbehave on request.
//! Used by `demo`, the tests and the load generator; never by the facade itself.

pub mod authorization;
mod data;
mod faults;
pub mod gp_connect;
pub mod issuer;
pub mod legacy;

use std::net::TcpListener;
use std::sync::{Arc, Mutex, RwLock};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

pub use data::PartnerData;
pub use faults::Faults;
pub use gp_connect::{GpConnectPractice, PracticeRecords};
pub use legacy::{CouncilData, LegacyPartner};

use crate::fhir::ResourceType;
use crate::fhir::page::clinical_date;
use crate::fhir::search::matcher::matches_all;
use crate::fhir::search::parse_criterion;

struct SimState {
    base_url: String,
    data: PartnerData,
    faults: RwLock<Faults>,
    /// The `Authorization` header this partner demands (401 otherwise), if any.
    required_authorization: RwLock<Option<String>>,
    requests: Mutex<Vec<Received>>,
}

/// One request as the partner received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `path?query`
    pub target: String,
    pub authorization: Option<String>,
    /// The hop header (records the request passed through).
    pub hops: Option<String>,
}

/// A running simulated partner on 127.0.0.1.
pub struct SimPartner {
    pub base_url: String,
    state: Arc<SimState>,
    handle: ServerHandle,
}

impl SimPartner {
    /// Starts on an ephemeral loopback port.
    pub fn start(data: PartnerData, faults: Faults) -> std::io::Result<SimPartner> {
        Self::start_on(TcpListener::bind("127.0.0.1:0")?, data, faults)
    }

    pub fn start_on(
        listener: TcpListener,
        data: PartnerData,
        faults: Faults,
    ) -> std::io::Result<SimPartner> {
        let base_url = format!("http://{}/fhir", listener.local_addr()?);
        let state = Arc::new(SimState {
            base_url: base_url.clone(),
            data,
            faults: RwLock::new(faults),
            required_authorization: RwLock::new(None),
            requests: Mutex::new(Vec::new()),
        });
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(shared.clone()).service(
                web::scope("/fhir")
                    .route("/metadata", web::get().to(metadata))
                    .route("/{type}", web::get().to(search))
                    .route("/{type}/{id}", web::get().to(read)),
            )
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(SimPartner {
            base_url,
            state,
            handle,
        })
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.write().expect("faults lock") = faults;
    }

    /// Every request received so far, as `path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.target).collect()
    }

    /// Every request received so far, with the headers that matter to the tests.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .requests
            .lock()
            .expect("request log lock")
            .clone()
    }

    /// Demands this `Authorization` header of every request (None: demands nothing).
    pub fn require_authorization(&self, value: Option<&str>) {
        *self
            .state
            .required_authorization
            .write()
            .expect("authorization lock") = value.map(str::to_string);
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

fn fhir_json(status: actix_web::http::StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/fhir+json")
        .body(body.to_string())
}

async fn metadata() -> HttpResponse {
    fhir_json(
        actix_web::http::StatusCode::OK,
        &json!({"resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01", "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"]}),
    )
}

async fn search(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let faults = state.record(&req);
    if let Some(response) = state.refuse_unauthorized(&req) {
        return response;
    }
    if let Some(response) = faults.before_answer().await {
        return response;
    }
    let Ok(resource_type) = path.parse::<ResourceType>() else {
        return fhir_json(
            actix_web::http::StatusCode::NOT_FOUND,
            &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-supported"}]}),
        );
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    if faults.refuse_sort && pairs.iter().any(|(k, _)| k == "_sort") {
        return fhir_json(
            actix_web::http::StatusCode::BAD_REQUEST,
            &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "_sort is not supported"}]}),
        );
    }
    let by_id = pairs.iter().any(|(k, _)| k == "_id");
    if by_id && faults.fail_by_id.iter().any(|t| *t == path.as_str()) {
        return faults::failure("simulated failure of a search by id");
    }
    let mut criteria = Vec::new();
    let (mut count, mut offset, mut sort) = (50usize, 0usize, None);
    for (name, value) in &pairs {
        match name.as_str() {
            "_count" => count = value.parse().unwrap_or(50).max(1),
            "_sort" if !faults.ignore_sort => sort = Some(value.as_str()),
            "_offset" => offset = value.parse().unwrap_or(0),
            "patient" | "subject" | "_id" => {
                if let Ok(Some(c)) =
                    parse_criterion(resource_type, name, value, false, &mut Vec::new())
                {
                    criteria.push(c);
                }
            }
            _ if faults.ignore_criteria => {}
            _ => {
                if let Ok(Some(c)) =
                    parse_criterion(resource_type, name, value, false, &mut Vec::new())
                {
                    criteria.push(c);
                }
            }
        }
    }
    let mut matched: Vec<Value> = state
        .data
        .of_type(resource_type)
        .filter(|r| matches_all(r, &criteria))
        .cloned()
        .collect();
    matched.extend(faults.extra_entries(&state.data, resource_type, &matched));
    if let Some(sort) = sort {
        sort_by_date(&mut matched, resource_type, sort);
    }
    let page: Vec<Value> = matched.iter().skip(offset).take(count).cloned().collect();
    let mut links = vec![
        json!({"relation": "self", "url": format!("{}/{}?{}", state.base_url, resource_type, req.query_string())}),
    ];
    if offset + count < matched.len() {
        let mut next: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != "_offset")
            .cloned()
            .collect();
        next.push(("_offset".into(), (offset + count).to_string()));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&next)
            .finish();
        links.push(json!({"relation": "next", "url": format!("{}/{}?{query}", state.base_url, resource_type)}));
    }
    let entries: Vec<Value> = page
        .into_iter()
        .map(|r| json!({"fullUrl": format!("{}/{}/{}", state.base_url, r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default()), "resource": r, "search": {"mode": "match"}}))
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "searchset", "total": matched.len(), "link": links, "entry": entries});
    faults.answer(bundle)
}

/// `_sort=date` or `-date`, as a FHIR server sorts: by the records' date, undated
/// ones last (stable, so ties keep the order they are held in).
fn sort_by_date(records: &mut [Value], resource_type: ResourceType, sort: &str) {
    let descending = sort.starts_with('-');
    records.sort_by(|a, b| {
        let (a, b) = (
            clinical_date(a, resource_type),
            clinical_date(b, resource_type),
        );
        match (a, b) {
            (Some(a), Some(b)) if descending => b.cmp(&a),
            (Some(a), Some(b)) => a.cmp(&b),
            (a, b) => b.is_some().cmp(&a.is_some()),
        }
    });
}

async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let faults = state.record(&req);
    if let Some(response) = state.refuse_unauthorized(&req) {
        return response;
    }
    if let Some(response) = faults.before_answer().await {
        return response;
    }
    if faults.fail_by_id.iter().any(|t| *t == path.0) {
        return faults::failure("simulated failure of a read");
    }
    let found = path
        .0
        .parse::<ResourceType>()
        .ok()
        .and_then(|t| state.data.find(t, &path.1));
    match found {
        Some(resource) => faults.answer(resource.clone()),
        None => fhir_json(
            actix_web::http::StatusCode::NOT_FOUND,
            &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}),
        ),
    }
}

impl SimState {
    /// 401 unless the request carries the demanded `Authorization` header.
    fn refuse_unauthorized(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let required = self
            .required_authorization
            .read()
            .expect("authorization lock");
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match required.as_deref() {
            Some(required) if given != Some(required) => Some(fhir_json(
                actix_web::http::StatusCode::UNAUTHORIZED,
                &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}),
            )),
            _ => None,
        }
    }

    fn record(&self, req: &HttpRequest) -> Faults {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        self.requests
            .lock()
            .expect("request log lock")
            .push(Received {
                target: format!("{}?{}", req.path(), req.query_string()),
                authorization: header("authorization"),
                hops: header("x-shcr-hop"),
            });
        self.faults.read().expect("faults lock").clone()
    }
}
