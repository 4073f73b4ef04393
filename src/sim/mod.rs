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
use std::time::Instant;

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
use crate::fhir::search::value::SearchValue;
use crate::fhir::search::{Criterion, parse_criterion};

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

/// Answers a search once the partner's latency has passed since it arrived, the
/// answer prepared in the meantime.
async fn search(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let arrived = Instant::now();
    let faults = state.record(&req);
    if let Some(response) = state.refuse_unauthorized(&req) {
        return response;
    }
    let response = faults
        .refusal()
        .unwrap_or_else(|| searchset_answer(&req, &path, &state, &faults));
    faults.in_time(arrived).await;
    response
}

fn searchset_answer(
    req: &HttpRequest,
    path: &str,
    state: &SimState,
    faults: &Faults,
) -> HttpResponse {
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
    if by_id && faults.fail_by_id.iter().any(|t| t == path) {
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
    let held = matching(&state.data, resource_type, &criteria);
    let extra = faults.extra_entries(&state.data, resource_type, held.first().map(|r| &r.value));
    let mut matched: Vec<Found> = held.into_iter().map(Found::Held).collect();
    matched.extend(extra.into_iter().map(Found::Extra));
    if let Some(sort) = sort {
        sort_by_date(&mut matched, resource_type, sort);
    }
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
    let page = matched.iter().skip(offset).take(count);
    faults.answer_json(searchset(&state.base_url, matched.len(), &links, page))
}

/// The records of a type that meet every criterion, in the order held. A reference
/// criterion names the ids its matches refer to: only the records that refer to one
/// of them are read, every criterion still checked on each.
fn matching<'a>(
    data: &'a PartnerData,
    resource_type: ResourceType,
    criteria: &[Criterion],
) -> Vec<&'a data::Held> {
    match criteria.iter().find_map(ids_named_by) {
        Some(ids) => data
            .referring_to(resource_type, &ids)
            .filter(|r| matches_all(&r.value, criteria))
            .collect(),
        None => data
            .held(resource_type)
            .filter(|r| matches_all(&r.value, criteria))
            .collect(),
    }
}

/// The ids a reference criterion (one without a modifier) matches records that
/// refer to; none for any other criterion.
fn ids_named_by(criterion: &Criterion) -> Option<Vec<&str>> {
    if criterion.modifier.is_some() {
        return None;
    }
    criterion
        .values
        .iter()
        .map(|value| match value {
            SearchValue::Reference(target) => Some(target.id.as_str()),
            _ => None,
        })
        .collect()
}

/// A record matched by a search: one held, or one a fault adds.
enum Found<'a> {
    Held(&'a data::Held),
    Extra(Value),
}

impl Found<'_> {
    fn value(&self) -> &Value {
        match self {
            Found::Held(held) => &held.value,
            Found::Extra(value) => value,
        }
    }
}

/// The searchset's JSON, written around each record's stored JSON (the same
/// document `json!` would make, in the same key order, without building it).
fn searchset<'a>(
    base_url: &str,
    total: usize,
    links: &[Value],
    page: impl Iterator<Item = &'a Found<'a>>,
) -> String {
    let links = serde_json::to_string(links).expect("JSON values serialise");
    let mut body = format!(
        r#"{{"resourceType":"Bundle","type":"searchset","total":{total},"link":{links},"entry":["#
    );
    for (i, found) in page.enumerate() {
        let record = found.value();
        let full_url = format!(
            "{base_url}/{}/{}",
            record["resourceType"].as_str().unwrap_or_default(),
            record["id"].as_str().unwrap_or_default()
        );
        if i > 0 {
            body.push(',');
        }
        body.push_str(r#"{"fullUrl":"#);
        body.push_str(&serde_json::to_string(&full_url).expect("a string serialises"));
        body.push_str(r#","resource":"#);
        match found {
            Found::Held(held) => body.push_str(&held.json),
            Found::Extra(value) => body.push_str(&value.to_string()),
        }
        body.push_str(r#","search":{"mode":"match"}}"#);
    }
    body.push_str("]}");
    body
}

/// `_sort=date` or `-date`, as a FHIR server sorts: by the records' date, undated
/// ones last (stable, so ties keep the order they are held in).
fn sort_by_date(records: &mut [Found], resource_type: ResourceType, sort: &str) {
    let descending = sort.starts_with('-');
    records.sort_by_cached_key(|r| {
        let date = clinical_date(r.value(), resource_type).map(i128::from);
        (
            date.is_none(),
            if descending { date.map(|d| -d) } else { date },
        )
    });
}

async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let arrived = Instant::now();
    let faults = state.record(&req);
    if let Some(response) = state.refuse_unauthorized(&req) {
        return response;
    }
    let response = faults
        .refusal()
        .unwrap_or_else(|| read_answer(&path.0, &path.1, &state, &faults));
    faults.in_time(arrived).await;
    response
}

fn read_answer(resource_type: &str, id: &str, state: &SimState, faults: &Faults) -> HttpResponse {
    if faults.fail_by_id.iter().any(|t| t == resource_type) {
        return faults::failure("simulated failure of a read");
    }
    let found = resource_type
        .parse::<ResourceType>()
        .ok()
        .and_then(|t| state.data.find(t, id));
    match found {
        Some(resource) => faults.answer_json(resource.json.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A search narrowed by the reference index finds exactly what reading every
    /// record finds, for every id the example partners' records refer to, by each
    /// reference parameter, typed or not, alone, in a list and beside a date.
    #[test]
    fn the_reference_index_finds_what_a_full_read_finds() {
        const NAMES: [&str; 6] = [
            "patient",
            "subject",
            "performer",
            "encounter",
            "requester",
            "_id",
        ];
        let mut found_something = 0;
        for partner in [
            "meadowbank-gp",
            "riverside-gp",
            "northgate-acute",
            "valley-community",
        ] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
            let mut data = PartnerData::load(&dir.join(partner)).unwrap();
            // References the index must read as the matcher does: escaped, absolute,
            // versioned, and an element that is not a reference.
            data.add(
                json!({"resourceType": "Observation", "id": "odd", "status": "final",
                "code": {"text": "x"}, "subject": {"reference": "Patient/a\\,b"},
                "performer": [{"reference": "http://elsewhere/fhir/Practitioner/p-1"},
                    {"reference": "Group/g-1/_history/2"}, {"display": "no reference"}]}),
            );
            let mut ids = vec!["nobody".to_string(), "a,b".to_string()];
            for &t in ResourceType::all() {
                data.held(t)
                    .for_each(|h| ids.extend(super::data::referred_ids(&h.value)));
            }
            ids.sort();
            ids.dedup();
            let values = ids.iter().flat_map(|id| {
                [
                    id.clone(),
                    format!("Patient/{id}"),
                    format!("Group/{id}"),
                    format!("{id},nobody"),
                ]
            });
            for value in values {
                for (&t, name) in ResourceType::all()
                    .iter()
                    .flat_map(|t| NAMES.map(|n| (t, n)))
                {
                    for dated in [false, true] {
                        let mut query = vec![(name, value.as_str())];
                        if dated {
                            query.push(("date", "ge2020-01-01"));
                        }
                        let Ok(Some(criteria)) = query
                            .iter()
                            .map(|(n, v)| parse_criterion(t, n, v, false, &mut Vec::new()))
                            .collect::<Result<Option<Vec<Criterion>>, _>>()
                        else {
                            continue;
                        };
                        let ids = |held: Vec<&data::Held>| -> Vec<String> {
                            held.iter().map(|h| h.value["id"].to_string()).collect()
                        };
                        let read_all = data
                            .held(t)
                            .filter(|r| matches_all(&r.value, &criteria))
                            .collect();
                        let read_all = ids(read_all);
                        assert_eq!(
                            ids(matching(&data, t, &criteria)),
                            read_all,
                            "{partner} {t} {query:?}"
                        );
                        found_something += usize::from(!read_all.is_empty());
                    }
                }
            }
        }
        assert!(
            found_something > 1_000,
            "only {found_something} searches found anything"
        );
    }

    /// The searchset written around stored JSON is the document built as a value,
    /// key order included, for held records and a fault's extra one alike.
    #[test]
    fn a_written_searchset_is_the_one_built_as_a_value() {
        let mut data = PartnerData::default();
        // From text, as a partner's files are read: the decimal keeps its precision.
        data.add(
            serde_json::from_str(
                r#"{"resourceType": "Observation", "id": "o-1", "status": "final",
                "code": {"text": "Heart \"rate\""}, "valueQuantity": {"value": 1.50}}"#,
            )
            .unwrap(),
        );
        data.add(json!({"resourceType": "Observation", "id": "o-2", "status": "final", "code": {"text": "é"}}));
        let mut found: Vec<Found> = data
            .held(ResourceType::named("Observation"))
            .map(Found::Held)
            .collect();
        found.push(Found::Extra(
            json!({"resourceType": "Condition", "id": "extra", "code": {"text": "x"}}),
        ));
        let links = vec![json!({"relation": "self", "url": "http://p/fhir/Observation?a=b"})];
        let written = searchset("http://p/fhir", 7, &links, found.iter());

        let entries: Vec<Value> = found
            .iter()
            .map(|f| {
                let r = f.value().clone();
                json!({"fullUrl": format!("http://p/fhir/{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()), "resource": r, "search": {"mode": "match"}})
            })
            .collect();
        let built = json!({"resourceType": "Bundle", "type": "searchset", "total": 7, "link": links, "entry": entries});
        assert_eq!(written, built.to_string());
        assert!(written.contains(r#""value":1.50"#), "{written}");
    }

    #[test]
    fn records_sort_by_date_undated_last_ties_kept_in_order() {
        let mut data = PartnerData::default();
        for (id, date) in [
            ("a", None),
            ("b", Some("2024-02-01")),
            ("c", Some("2024-01-01")),
            ("d", Some("2024-02-01")),
        ] {
            let mut record = json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"}});
            if let Some(date) = date {
                record["effectiveDateTime"] = json!(date);
            }
            data.add(record);
        }
        let observation = ResourceType::named("Observation");
        let order = |sort: &str| {
            let mut found: Vec<Found> = data.held(observation).map(Found::Held).collect();
            sort_by_date(&mut found, observation, sort);
            found
                .iter()
                .map(|f| f.value()["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join("")
        };
        assert_eq!(order("date"), "cbda");
        assert_eq!(order("-date"), "bdca");
    }
}
