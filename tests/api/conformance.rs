//! FHIR REST conformance and operability, black-box: criteria the facade cannot
//! honour refused, the searches clients generate, versions on the wire, gzip, HEAD,
//! the audit trail by id, metrics, OpenAPI and UK Core.

use std::collections::BTreeSet;
use std::io::Read;

use serde_json::{Value, json};
use shcr_facade::fhir::ResourceType;
use shcr_facade::sim::issuer::Profile;

use crate::databases::every_backend;
use crate::harness::*;
use crate::objection::objection;

const HANNAH: &str = "9990000085";

/// The match resources (`entries` in the harness).
fn matches(bundle: &Value) -> Vec<Value> {
    entries(bundle)
}

fn id_set(bundle: &Value) -> BTreeSet<String> {
    ids(bundle).into_iter().collect()
}

#[tokio::test]
async fn criteria_the_facade_cannot_honour_are_refused_and_the_lenient_answer_is_honest() {
    let h = Harness::start().await;
    let all = h
        .ok(&format!("Observation?patient={ALICE}&_count=100"))
        .await;
    for (criterion, named) in [
        ("identifier=x", "identifier"),
        ("code:below=http://snomed.info/sct|1234", "code:below"),
        ("code:in=http://example.org/vs", "code:in"),
        ("value-quantity:above=5", "value-quantity:above"),
        ("patient.name=jones", "patient.name"),
        (
            "_has:Encounter:patient:status=finished",
            "_has:Encounter:patient:status",
        ),
        ("_include=Observation:*", "_include"),
        ("_sort=code", "_sort"),
    ] {
        let query = format!("Observation?patient={ALICE}&_count=100&{criterion}");
        let refused = h.get(&query).await;
        assert_eq!(refused.status, 400, "{criterion}: {}", refused.text);
        let issue = outcome_issue(&refused);
        assert_eq!(issue["code"], "not-supported", "{criterion}");
        assert_eq!(issue["expression"][0], named, "{criterion}");
        let lenient = h.get_with(&query, &[("prefer", "handling=lenient")]).await;
        assert_eq!(lenient.status, 200, "{criterion}");
        let bundle = lenient.fhir();
        assert_eq!(
            id_set(&bundle),
            id_set(&all),
            "{criterion}: nothing applied"
        );
        assert!(
            warnings(&bundle)
                .iter()
                .any(|w| w.contains("not supported") || w.contains("no search parameter")),
            "{criterion}: {:?}",
            warnings(&bundle)
        );
        assert_eq!(
            link(&bundle, "self"),
            link(&all, "self"),
            "{criterion}: the self link shows only what was applied"
        );
    }
    // An unknown parameter on a read, the same.
    // The objection register's search, the same.
    let officer = h.token(Profile::PrivacyOfficer);
    let register = format!("Consent?patient={ALICE}&status=active");
    let refused = h.get_as(&register, &officer).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(outcome_issue(&refused)["expression"][0], "status");
    let lenient = h
        .get_with(
            &register,
            &[
                ("authorization", &format!("Bearer {officer}")),
                ("prefer", "handling=lenient"),
            ],
        )
        .await;
    assert_eq!(lenient.status, 200);
    assert!(
        warnings(&lenient.fhir())
            .iter()
            .any(|w| w.contains("status"))
    );
    let read = "Encounter/northgate-acute.enc-alice-admission?colour=blue";
    assert_eq!(h.get(read).await.status, 400);
    let lenient = h.get_with(read, &[("prefer", "handling=lenient")]).await;
    assert_eq!(lenient.status, 200);
    h.stop().await;
}

#[tokio::test]
async fn what_used_to_widen_is_now_honoured_by_the_facade_whatever_partners_do() {
    let h = Harness::start().await;
    let all_meds = matches(&h.ok(&format!("MedicationStatement?patient={ALICE}")).await);
    assert!(all_meds.iter().any(|m| m["status"] == "active"));
    let not_active = matches(
        &h.ok(&format!(
            "MedicationStatement?patient={ALICE}&status:not=active"
        ))
        .await,
    );
    assert!(!not_active.is_empty());
    assert!(not_active.iter().all(|m| m["status"] != "active"));
    assert_eq!(
        not_active.len(),
        all_meds.iter().filter(|m| m["status"] != "active").count()
    );
    // `:not` never reaches a partner (one that dropped it would send only the active).
    for query in partner_queries(h.sim(GP), "/MedicationStatement") {
        assert!(query.iter().all(|(k, _)| !k.contains(":not")), "{query:?}");
    }

    let observations = matches(
        &h.ok(&format!("Observation?patient={ALICE}&_count=100"))
            .await,
    );
    let systolic = |o: &Value| o["code"]["coding"][0]["code"] == "8480-6";
    let over = matches(
        &h.ok(&format!(
            "Observation?patient={ALICE}&_count=100&value-quantity=gt130|http://unitsofmeasure.org|mm[Hg]"
        ))
        .await,
    );
    let expected: Vec<&Value> = observations
        .iter()
        .filter(|o| {
            o["valueQuantity"]["code"] == "mm[Hg]"
                && o["valueQuantity"]["value"]
                    .as_f64()
                    .is_some_and(|v| v > 130.0)
        })
        .collect();
    assert!(
        !over.is_empty() && over.len() == expected.len(),
        "{} vs {}",
        over.len(),
        expected.len()
    );
    let text = matches(
        &h.ok(&format!(
            "Observation?patient={ALICE}&_count=100&code:text=systolic"
        ))
        .await,
    );
    assert_eq!(
        text.len(),
        observations.iter().filter(|o| systolic(o)).count()
    );
    let not_code = matches(
        &h.ok(&format!(
            "Observation?patient={ALICE}&_count=100&code:not=8480-6"
        ))
        .await,
    );
    assert_eq!(
        not_code.len(),
        observations.iter().filter(|o| !systolic(o)).count()
    );
    let combo = matches(
        &h.ok(&format!(
            "Observation?patient={ALICE}&_count=100&combo-code=8480-6"
        ))
        .await,
    );
    assert_eq!(combo.len(), text.len());
    // `:missing` splits the records in two.
    let mut split = 0;
    for flag in ["true", "false"] {
        let bundle = h
            .ok(&format!(
                "Observation?patient={ALICE}&_count=100&encounter:missing={flag}"
            ))
            .await;
        split += matches(&bundle).len();
    }
    assert_eq!(split, observations.len());
    // The patient named every way R4 allows is the same search.
    for alias in [
        format!("subject:Patient={ALICE}"),
        format!("patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{ALICE}"),
        format!("subject:Patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{ALICE}"),
    ] {
        let bundle = h.ok(&format!("Observation?{alias}&_count=100")).await;
        assert_eq!(matches(&bundle).len(), observations.len(), "{alias}");
    }
    let other_system = h.get("Observation?patient.identifier=urn:mrn|123").await;
    assert_eq!(other_system.status, 400);
    // Patient by name (any part of it).
    let by_name = h.ok("Patient?name=jones&birthdate=1958-04-12").await;
    assert_eq!(ids(&by_name), [ALICE]);
    h.stop().await;
}

#[tokio::test]
async fn compartment_search_equals_the_patient_search_for_every_type() {
    let h = Harness::start().await;
    for t in ResourceType::clinical() {
        let compartment = h.ok(&format!("Patient/{ALICE}/{t}?_count=200")).await;
        let search = h.ok(&format!("{t}?patient={ALICE}&_count=200")).await;
        assert_eq!(id_set(&compartment), id_set(&search), "{t}");
        assert_eq!(compartment["total"], search["total"], "{t}");
    }
    let narrowed = h
        .ok(&format!("Patient/{ALICE}/Observation?code=8480-6"))
        .await;
    let direct = h
        .ok(&format!("Observation?patient={ALICE}&code=8480-6"))
        .await;
    assert_eq!(id_set(&narrowed), id_set(&direct));
    assert_eq!(
        h.get(&format!("Patient/{ALICE}/Organization")).await.status,
        400
    );
    assert_eq!(
        h.get(&format!("Patient/{ALICE}/Spaceship")).await.status,
        404
    );
    // Another patient in the query is two patients: refused.
    assert_eq!(
        h.get(&format!("Patient/{ALICE}/Observation?patient={HANNAH}"))
            .await
            .status,
        400
    );
    h.stop().await;
}

#[tokio::test]
async fn summaries_elements_and_totals() {
    let h = Harness::start().await;
    let full = h.ok(&format!("Observation?patient={ALICE}&_count=5")).await;
    let summary = h
        .ok(&format!(
            "Observation?patient={ALICE}&_count=5&_summary=true"
        ))
        .await;
    assert_eq!(ids(&summary), ids(&full));
    for resource in matches(&summary) {
        let tags = resource["meta"]["tag"].to_string();
        assert!(tags.contains("SUBSETTED"), "{resource}");
        for kept in resource.as_object().unwrap().keys() {
            assert!(
                [
                    "resourceType",
                    "id",
                    "meta",
                    "status",
                    "code",
                    "subject",
                    "effectiveDateTime",
                    "valueQuantity",
                    "issued",
                    "performer",
                    "encounter",
                    "identifier",
                    "component",
                    "basedOn",
                    "partOf",
                    "focus",
                    "hasMember",
                    "derivedFrom",
                    "implicitRules",
                    "effectivePeriod",
                    "valueString",
                    "valueCodeableConcept"
                ]
                .contains(&kept.as_str()),
                "{kept} is not a summary element"
            );
        }
    }
    let data = h
        .ok(&format!("CarePlan?patient={ALICE}&_summary=data"))
        .await;
    assert!(matches(&data).iter().all(|r| r.get("text").is_none()));
    let text = h
        .ok(&format!("CarePlan?patient={ALICE}&_summary=text"))
        .await;
    for r in matches(&text) {
        let keys: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.is_subset(&BTreeSet::from([
                "resourceType",
                "id",
                "meta",
                "text",
                "status",
                "intent",
                "subject"
            ])),
            "{keys:?}"
        );
    }
    let count = h
        .ok(&format!("Observation?patient={ALICE}&_summary=count"))
        .await;
    assert_eq!(count["total"], full["total"]);
    assert!(matches(&count).is_empty());
    let untotalled = h
        .ok(&format!("Observation?patient={ALICE}&_total=none"))
        .await;
    assert!(untotalled.get("total").is_none());
    assert_eq!(
        ids(&untotalled),
        ids(&h.ok(&format!("Observation?patient={ALICE}")).await)
    );
    let estimated = h
        .ok(&format!("Observation?patient={ALICE}&_total=estimate"))
        .await;
    assert_eq!(estimated["total"], full["total"]);
    assert_eq!(
        h.get(&format!("Observation?patient={ALICE}&_total=maybe"))
            .await
            .status,
        400
    );
    assert_eq!(
        h.get(&format!("Observation?patient={ALICE}&_summary=all"))
            .await
            .status,
        400
    );
    assert_eq!(
        h.get(&format!(
            "Observation?patient={ALICE}&_summary=true&_elements=code"
        ))
        .await
        .status,
        400
    );
    // On a read.
    let path = "Encounter/northgate-acute.enc-alice-admission";
    let read = h.ok(path).await;
    let elements = h.ok(&format!("{path}?_elements=period")).await;
    assert!(elements.get("period").is_some() && elements.get("type").is_none());
    assert!(elements["meta"]["tag"].to_string().contains("SUBSETTED"));
    assert!(read.get("type").is_some());
    let summarised = h.ok(&format!("{path}?_summary=true")).await;
    assert!(summarised["meta"]["tag"].to_string().contains("SUBSETTED"));
    assert_eq!(h.get(&format!("{path}?_summary=count")).await.status, 400);
    h.stop().await;
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn consent_request(
    h: &Harness,
    method: reqwest::Method,
    body: &Value,
    if_match: Option<&str>,
) -> reqwest::Response {
    let path = match method {
        reqwest::Method::POST => "Consent".to_string(),
        _ => format!("Consent/{HANNAH}"),
    };
    let mut request = h
        .client
        .request(method, format!("{}/{path}", h.base))
        .bearer_auth(h.token(Profile::PrivacyOfficer))
        .header("content-type", "application/fhir+json")
        .body(body.to_string());
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn versions_travel_as_etags_and_a_stale_change_is_refused() {
    let h = Harness::start().await;
    // A partner record's version and time.
    let path = format!("{}/Encounter/northgate-acute.enc-alice-admission", h.base);
    let read = h.client.get(&path).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let tag = header(&read, "etag").expect("ETag");
    assert_eq!(tag, "W/\"1\"");
    assert!(header(&read, "last-modified").is_some_and(|d| d.ends_with(" GMT")));
    let again = h
        .client
        .get(&path)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let changed = h
        .client
        .get(&path)
        .header("if-none-match", "W/\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);

    // The objection register: every version on the wire, and If-Match honoured.
    let by_patient = json!({"reference": format!("Patient/{HANNAH}")});
    let created = consent_request(
        &h,
        reqwest::Method::POST,
        &objection(HANNAH, "proposed", by_patient.clone()),
        None,
    )
    .await;
    assert_eq!(created.status(), 201);
    assert_eq!(header(&created, "etag").as_deref(), Some("W/\"1\""));
    let mut body = objection(HANNAH, "active", by_patient.clone());
    body["id"] = json!(HANNAH);
    let updated = consent_request(&h, reqwest::Method::PUT, &body, Some("W/\"1\"")).await;
    assert_eq!(updated.status(), 200);
    assert_eq!(header(&updated, "etag").as_deref(), Some("W/\"2\""));
    body["status"] = json!("inactive");
    let stale = consent_request(&h, reqwest::Method::PUT, &body, Some("W/\"1\"")).await;
    assert_eq!(stale.status(), 412);
    let outcome: Value = serde_json::from_slice(&stale.bytes().await.unwrap()).unwrap();
    assert_eq!(outcome["issue"][0]["code"], "conflict");
    let officer = h.token(Profile::PrivacyOfficer);
    let current = h.ok_as(&format!("Consent/{HANNAH}"), &officer).await;
    assert_eq!(
        current["meta"]["versionId"], "2",
        "the stale change left nothing"
    );
    assert_eq!(current["status"], "active");
    let unchanged = h
        .client
        .get(format!("{}/Consent/{HANNAH}", h.base))
        .bearer_auth(&officer)
        .header("if-none-match", "W/\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(
        consent_request(&h, reqwest::Method::PUT, &body, Some("W/\"banana\""))
            .await
            .status(),
        412
    );
    // Without If-Match it is still accepted, unless the configuration demands it.
    assert_eq!(
        consent_request(&h, reqwest::Method::PUT, &body, None)
            .await
            .status(),
        200
    );
    h.stop().await;

    let strict = Harness::with(|c| c.policy.objection_updates_need_if_match = true).await;
    let created = consent_request(
        &strict,
        reqwest::Method::POST,
        &objection(HANNAH, "proposed", by_patient.clone()),
        None,
    )
    .await;
    assert_eq!(created.status(), 201);
    let required = consent_request(&strict, reqwest::Method::PUT, &body, None).await;
    assert_eq!(required.status(), 428);
    let outcome: Value = serde_json::from_slice(&required.bytes().await.unwrap()).unwrap();
    assert_eq!(outcome["issue"][0]["code"], "required");
    assert_eq!(
        consent_request(&strict, reqwest::Method::PUT, &body, Some("W/\"1\""))
            .await
            .status(),
        200
    );
    strict.stop().await;
}

#[tokio::test]
async fn two_officers_racing_to_change_one_version_give_one_winner_and_one_412() {
    for db in every_backend("two_officers_racing_to_change_one_version") {
        let config = db.config.clone();
        let h = Harness::with(move |c| c.database = config).await;
        let by_patient = json!({"reference": format!("Patient/{HANNAH}")});
        let created = consent_request(
            &h,
            reqwest::Method::POST,
            &objection(HANNAH, "proposed", by_patient.clone()),
            None,
        )
        .await;
        assert_eq!(created.status(), 201, "{}", db.name);
        for round in 1..=5 {
            let read = format!("W/\"{round}\"");
            let mut first = objection(HANNAH, "active", by_patient.clone());
            first["id"] = json!(HANNAH);
            let mut second = first.clone();
            second["status"] = json!("inactive");
            let (a, b) = tokio::join!(
                consent_request(&h, reqwest::Method::PUT, &first, Some(&read)),
                consent_request(&h, reqwest::Method::PUT, &second, Some(&read)),
            );
            let mut statuses = [a.status().as_u16(), b.status().as_u16()];
            statuses.sort();
            assert_eq!(statuses, [200, 412], "{} round {round}", db.name);
        }
        let history = h
            .ok_as(
                &format!("Consent/{HANNAH}/_history"),
                &h.token(Profile::PrivacyOfficer),
            )
            .await;
        assert_eq!(history["total"], 6, "{}: one version per round", db.name);
        h.stop().await;
    }
}

#[tokio::test]
async fn gzip_head_and_the_audit_trail_by_id() {
    let h = Harness::start().await;
    let path = format!("{}/Observation?patient={ALICE}", h.base);
    let plain = h
        .client
        .get(&path)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let zipped = h
        .client
        .get(&path)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&zipped, "content-encoding").as_deref(), Some("gzip"));
    let compressed = zipped.bytes().await.unwrap();
    assert!(
        compressed.len() * 3 < plain.len(),
        "{} vs {}",
        compressed.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    let ids_of = |bytes: &[u8]| ids(&serde_json::from_slice(bytes).unwrap());
    assert_eq!(ids_of(&unzipped), ids_of(&plain));
    let deflated = h
        .client
        .get(&path)
        .header("accept-encoding", "deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&deflated, "content-encoding").as_deref(),
        Some("deflate")
    );

    // HEAD wherever GET is served: the same status and head, no body.
    for target in [
        format!("Patient/{ALICE}"),
        format!("Observation?patient={ALICE}"),
        "metadata".to_string(),
        "Encounter/no-such.record".to_string(),
    ] {
        let get = h
            .client
            .get(format!("{}/{target}", h.base))
            .send()
            .await
            .unwrap();
        let head = h
            .client
            .head(format!("{}/{target}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), get.status(), "{target}");
        assert_eq!(
            header(&head, "content-type"),
            header(&get, "content-type"),
            "{target}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{target}");
    }

    // The HEAD was audited as one, and an event is readable at its fullUrl.
    let officer = h.token(Profile::PrivacyOfficer);
    let trail = h
        .ok_as(&format!("AuditEvent?patient={ALICE}&_count=50"), &officer)
        .await;
    let heads: Vec<Value> = entries(&trail)
        .into_iter()
        .filter(|e| {
            e["entity"].as_array().unwrap().iter().any(|entity| {
                entity["query"]
                    .as_str()
                    .is_some_and(|q| q.starts_with(&base64_of("HEAD /")))
            })
        })
        .collect();
    assert!(!heads.is_empty(), "a HEAD is audited as HEAD");
    let first = &trail["entry"][0];
    let full_url = first["fullUrl"].as_str().unwrap();
    let event = h.ok_as(full_url, &officer).await;
    assert_eq!(event, first["resource"]);
    assert_eq!(
        h.get_as(full_url, &h.token(Profile::Clinician))
            .await
            .status,
        403
    );
    assert_eq!(h.get_as("AuditEvent/999999999", &officer).await.status, 404);
    assert_eq!(h.get_as("AuditEvent/abc", &officer).await.status, 404);
    h.stop().await;
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    // Whole groups of three bytes only: the prefix of any longer text's encoding.
    let whole = text.len() / 3 * 4;
    base64::engine::general_purpose::STANDARD.encode(text)[..whole].to_string()
}

/// Every NHS number, family and given name in the example data.
fn fixture_identifiers() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    fn walk(node: &Value, found: &mut BTreeSet<String>) {
        match node {
            Value::Object(map) => {
                if map.get("system").and_then(Value::as_str)
                    == Some("https://fhir.nhs.uk/Id/nhs-number")
                    && let Some(v) = map.get("value").and_then(Value::as_str)
                {
                    found.insert(v.to_string());
                }
                for key in ["family", "given"] {
                    match map.get(key) {
                        Some(Value::String(s)) => {
                            found.insert(s.clone());
                        }
                        Some(Value::Array(names)) => {
                            found
                                .extend(names.iter().filter_map(Value::as_str).map(str::to_string));
                        }
                        _ => {}
                    }
                }
                map.values().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    for dir in std::fs::read_dir(examples().join("data")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "json") {
                let value: Value =
                    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
                walk(&value, &mut found);
            }
        }
    }
    found
}

#[tokio::test]
async fn metrics_are_scraped_with_no_identifier_in_any_label() {
    let h = Harness::start().await;
    let clinician = h.token(Profile::Clinician);
    let patients: Vec<String> = fixture_identifiers()
        .into_iter()
        .filter(|i| i.len() == 10 && i.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    // Every patient's whole record: some of it is withheld.
    for nhs in &patients {
        h.get_as(&format!("Patient/{nhs}/$everything"), &clinician)
            .await;
    }
    for path in [
        format!("Observation?patient={ALICE}"),
        format!("Patient/{ALICE}"),
        format!("Patient/{ALICE}/$everything"),
        "Patient?family=jones&birthdate=1958-03-14".to_string(),
        format!("Patient/{HANNAH}/Observation"),
        "Observation/no-such.record".to_string(),
    ] {
        h.get_as(&path, &clinician).await;
    }
    let root = h.base.trim_end_matches("/fhir");
    let scraped = h
        .client
        .get(format!("{root}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        header(&scraped, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let page = scraped.text().await.unwrap();
    for expected in [
        "shcr_http_requests_total{route=\"/fhir/{type}\",method=\"GET\",status=\"200\"}",
        "shcr_http_requests_total{route=\"/fhir/{type}/{id}\",method=\"GET\",status=\"404\"}",
        "shcr_http_request_duration_seconds_bucket{",
        &format!("shcr_partner_request_duration_seconds_count{{partner=\"{GP}\"}}"),
        &format!("shcr_partner_requests_total{{partner=\"{ACUTE}\",outcome=\"ok\"}}"),
        "shcr_audit_commit_duration_seconds_count",
        "shcr_policy_withheld_records_total{reason=\"policy\"}",
        "shcr_database_pool_connections{state=\"max\"}",
    ] {
        assert!(page.contains(expected), "{expected} missing from:\n{page}");
    }
    let identifiers = fixture_identifiers();
    assert!(
        identifiers.contains(ALICE) && identifiers.contains("Jones"),
        "{identifiers:?}"
    );
    for identifier in identifiers.iter().chain([&clinician]) {
        assert!(
            !page.contains(identifier.as_str()),
            "the metrics name {identifier}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn openapi_and_uk_core_are_declared_from_what_is_served() {
    let h = Harness::start().await;
    let statement = h.ok("metadata").await;
    assert_eq!(
        statement["implementationGuide"][0],
        "https://fhir.hl7.org.uk/ImplementationGuide/hl7.fhir.uk.core"
    );
    let api: Value = h.get("openapi.json").await.text.parse::<Value>().unwrap();
    assert_eq!(api["openapi"], "3.0.3");
    assert_eq!(api["servers"][0]["url"], h.base.as_str());
    for resource in statement["rest"][0]["resource"].as_array().unwrap() {
        let t = resource["type"].as_str().unwrap();
        let search = &api["paths"][format!("/{t}")]["get"];
        assert!(search.is_object(), "{t}");
        for param in resource["searchParam"].as_array().unwrap() {
            assert!(
                search["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == param["name"]),
                "{t} {}",
                param["name"]
            );
        }
        if t != "Consent" && t != "AuditEvent" {
            assert_eq!(
                resource["supportedProfile"][0],
                format!("https://fhir.hl7.org.uk/StructureDefinition/UKCore-{t}")
            );
        }
    }
    // Records declare the profile; the merged Patient keeps what UK Core asks for.
    let patient = h.ok(&format!("Patient/{ALICE}")).await;
    assert_eq!(
        patient["meta"]["profile"][0],
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"
    );
    for gp in patient["generalPractitioner"].as_array().unwrap() {
        let reference = gp["reference"].as_str().unwrap();
        assert!(reference.starts_with(gp["type"].as_str().unwrap()), "{gp}");
    }
    let observations = h.ok(&format!("Observation?patient={ALICE}")).await;
    assert!(matches(&observations).iter().all(|o| {
        o["meta"]["profile"]
            .to_string()
            .contains("UKCore-Observation")
    }));
    // A GP Connect patient's verification status, as UK Core's extension.
    let ian = h.ok("Patient/9990000093").await;
    let nhs = ian["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["system"] == "https://fhir.nhs.uk/Id/nhs-number")
        .unwrap()
        .clone();
    assert_eq!(
        nhs["extension"][0]["url"],
        "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
        "{ian}"
    );
    assert_eq!(
        nhs["extension"][0]["valueCodeableConcept"]["coding"][0]["system"],
        "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
    );
    h.stop().await;
}
