//! A council's adult social-care system with its own JSON API (not FHIR): clients,
//! care packages, assessments and visits. Serves a file of clients with their records
//! nested, demands its API-version header, and misbehaves on request like the FHIR
//! simulator.
//!
//! ```text
//! GET /api/v1/status
//! GET /api/v1/clients?nhs_number=999 000 0018        {"count": n, "clients": [...]}
//! GET /api/v1/clients/{client_id}                     {"client": {...}}
//! GET /api/v1/clients/{client_id}/care-packages       {"packages": [...]}
//! GET /api/v1/clients/{client_id}/assessments         {"data": {"assessments": [...]}}
//! GET /api/v1/clients/{client_id}/visits              {"visits": [...]}
//! ```
//! The three lists take `from` and `to` (inclusive `YYYY-MM-DD`) and return the records
//! that overlap those days.

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use super::Faults;

/// The header (and value) every request must carry.
pub const API_VERSION_HEADER: (&str, &str) = ("x-api-version", "1");

/// The kinds of record a client has, by the name of their list in the data file.
const LISTS: [(&str, &str); 3] = [
    ("care-packages", "care_packages"),
    ("assessments", "assessments"),
    ("visits", "visits"),
];

/// The council's clients, each with its records nested.
#[derive(Debug, Clone, Default)]
pub struct CouncilData {
    clients: Vec<Value>,
}

impl CouncilData {
    /// Reads `{"clients": [...]}` from `clients.json` in `dir`.
    pub fn load(dir: &Path) -> std::io::Result<CouncilData> {
        let file = dir.join("clients.json");
        let text = std::fs::read_to_string(&file)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", file.display()),
            )
        })?;
        Ok(CouncilData {
            clients: value["clients"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// Records held in all: clients and everything nested under them.
    pub fn len(&self) -> usize {
        self.clients
            .iter()
            .map(|c| {
                1 + LISTS
                    .iter()
                    .map(|(_, key)| c[*key].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Adds a record to a client's list (`care_packages`, `assessments`, `visits`).
    pub fn add_record(&mut self, client_id: &str, list: &str, record: Value) {
        if let Some(client) = self
            .clients
            .iter_mut()
            .find(|c| c["client_id"] == client_id)
            && let Some(records) = client[list].as_array_mut()
        {
            records.push(record);
        }
    }

    fn client(&self, id: &str) -> Option<&Value> {
        self.clients.iter().find(|c| c["client_id"] == id)
    }
}

/// A client as the API returns it: without the nested lists.
fn summary(client: &Value) -> Value {
    let mut client = client.clone();
    if let Some(map) = client.as_object_mut() {
        for (_, key) in LISTS {
            map.shift_remove(key);
        }
    }
    client
}

struct LegacyState {
    data: CouncilData,
    faults: RwLock<Faults>,
    requests: Mutex<Vec<String>>,
}

/// A running council system on 127.0.0.1.
pub struct LegacyPartner {
    /// The API's base, `http://127.0.0.1:{port}/api/v1`.
    pub base_url: String,
    state: Arc<LegacyState>,
    handle: ServerHandle,
}

impl LegacyPartner {
    /// Starts on an ephemeral loopback port.
    pub fn start(data: CouncilData, faults: Faults) -> std::io::Result<LegacyPartner> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base_url = format!("http://{}/api/v1", listener.local_addr()?);
        let state = Arc::new(LegacyState {
            data,
            faults: RwLock::new(faults),
            requests: Mutex::new(Vec::new()),
        });
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(shared.clone()).service(
                web::scope("/api/v1")
                    .route("/status", web::get().to(status))
                    .route("/clients", web::get().to(clients))
                    .route("/clients/{id}", web::get().to(client))
                    .route("/clients/{id}/{list}", web::get().to(records)),
            )
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(LegacyPartner {
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
        self.state
            .requests
            .lock()
            .expect("request log lock")
            .clone()
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

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    json_response(status, &json!({"error": message}))
}

impl LegacyState {
    /// Logs the request, then applies the version check and the faults; Some(response)
    /// if the request is answered without data.
    async fn admit(&self, req: &HttpRequest) -> Result<Faults, HttpResponse> {
        self.requests
            .lock()
            .expect("request log lock")
            .push(format!("{}?{}", req.path(), req.query_string()));
        let faults = self.faults.read().expect("faults lock").clone();
        let (name, value) = API_VERSION_HEADER;
        if req.headers().get(name).and_then(|v| v.to_str().ok()) != Some(value) {
            return Err(error(StatusCode::BAD_REQUEST, "unsupported API version"));
        }
        match faults.before_answer().await {
            Some(response) => Err(response),
            None => Ok(faults),
        }
    }
}

/// The answer, cut in half if told to send garbage.
fn answer(faults: &Faults, body: &Value) -> HttpResponse {
    let text = body.to_string();
    let text = match faults.malformed {
        true => text[..text.len() / 2].to_string(),
        false => text,
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .body(text)
}

async fn status(req: HttpRequest, state: web::Data<LegacyState>) -> HttpResponse {
    match state.admit(&req).await {
        Ok(faults) => answer(&faults, &json!({"status": "up"})),
        Err(response) => response,
    }
}

fn query(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

async fn clients(req: HttpRequest, state: web::Data<LegacyState>) -> HttpResponse {
    let faults = match state.admit(&req).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let Some((_, wanted)) = query(&req).into_iter().find(|(k, _)| k == "nhs_number") else {
        return error(StatusCode::BAD_REQUEST, "nhs_number is required");
    };
    let found: Vec<Value> = state
        .data
        .clients
        .iter()
        .filter(|c| digits(c["nhs_no"].as_str().unwrap_or_default()) == digits(&wanted))
        .map(summary)
        .collect();
    answer(&faults, &json!({"count": found.len(), "clients": found}))
}

async fn client(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<LegacyState>,
) -> HttpResponse {
    let faults = match state.admit(&req).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    match state.data.client(&path) {
        Some(c) => answer(&faults, &json!({"client": summary(c)})),
        None => error(StatusCode::NOT_FOUND, "no such client"),
    }
}

async fn records(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<LegacyState>,
) -> HttpResponse {
    let faults = match state.admit(&req).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    let (client_id, list) = path.into_inner();
    let Some((_, key)) = LISTS.iter().find(|(name, _)| *name == list) else {
        return error(StatusCode::NOT_FOUND, "no such list");
    };
    let Some(client) = state.data.client(&client_id) else {
        return error(StatusCode::NOT_FOUND, "no such client");
    };
    let pairs = query(&req);
    let day = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (from, to) = (day("from"), day("to"));
    let mut found: Vec<Value> = client[*key]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| overlaps(r, from.as_deref(), to.as_deref()))
        .cloned()
        .collect();
    // Told to misbehave: another client's record of the same kind, too.
    if faults.foreign_patient
        && let Some(other) = state
            .data
            .clients
            .iter()
            .filter(|c| c["client_id"] != client_id.as_str())
            .find_map(|c| c[*key].as_array().and_then(|r| r.first()))
    {
        found.push(other.clone());
    }
    let body = match list.as_str() {
        "care-packages" => json!({"packages": found}),
        "assessments" => json!({"data": {"assessments": found}}),
        _ => json!({"visits": found}),
    };
    answer(&faults, &body)
}

/// Does the record's span of days overlap `[from, to]`? Dates compare as text
/// (`YYYY-MM-DD` prefixes); an open end runs on for ever.
fn overlaps(record: &Value, from: Option<&str>, to: Option<&str>) -> bool {
    let day = |key: &str| {
        record[key]
            .as_str()
            .map(|s| s.get(..10).unwrap_or(s).to_string())
    };
    let start = day("start_date")
        .or_else(|| day("assessment_date"))
        .or_else(|| day("visit_start"));
    let end = match record.get("end_date") {
        Some(_) => day("end_date"),
        None => start.clone(),
    };
    let starts_after = |to: &str| start.as_deref().is_some_and(|s| s > to);
    let ends_before = |from: &str| end.as_deref().is_some_and(|e| e < from);
    !to.is_some_and(starts_after) && !from.is_some_and(ends_before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_overlapping_the_days_asked_for_are_returned() {
        let package = json!({"start_date": "2024-02-05", "end_date": null});
        assert!(overlaps(&package, Some("2024-06-01"), None));
        assert!(!overlaps(&package, None, Some("2024-01-31")));
        let ended = json!({"start_date": "2023-09-01", "end_date": "2023-10-13"});
        assert!(!overlaps(&ended, Some("2024-01-01"), None));
        assert!(overlaps(&ended, Some("2023-10-13"), Some("2023-12-31")));
        let visit = json!({"visit_start": "2024-03-04T08:00:00+00:00"});
        assert!(overlaps(&visit, Some("2024-03-04"), Some("2024-03-04")));
        assert!(!overlaps(&visit, Some("2024-03-05"), None));
    }
}
