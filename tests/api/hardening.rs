//! Defects an attack on the demo found, one test each, named after the defect: each
//! failed before its fix.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use serde_json::{Value, json};
use shcr_facade::sim::issuer::{Profile, TokenRequest};
use shcr_facade::sim::{Faults, PartnerData};
use shcr_facade::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;
use crate::objection::objection;

const HANNAH: &str = "9990000085";
const BRIAN: &str = "9990000026";
/// Not in the example data: tests add them where needed.
const CHILD: &str = "9990000131";

fn officer(h: &Harness) -> String {
    h.token(Profile::PrivacyOfficer)
}

fn backend_with(h: &Harness, scope: &str) -> String {
    h.issuer.token(&TokenRequest {
        profile: Some(Profile::Backend),
        scope: Some(scope.into()),
        ..TokenRequest::default()
    })
}

async fn send_json(h: &Harness, method: &str, path: &str, token: &str, body: &str) -> Reply {
    let started = Instant::now();
    let response = h
        .client
        .request(method.parse().unwrap(), format!("{}/{path}", h.base))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .expect("facade answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Reply {
        status,
        content_type,
        text: response.text().await.unwrap(),
        elapsed: started.elapsed(),
    }
}

fn store(h: &Harness) -> Store {
    Store::connect(&h.config.database).expect("the harness database")
}

/// Every audit event so far, oldest first.
fn events(h: &Harness) -> Vec<Value> {
    store(h)
        .with_conn(|conn| shcr_facade::store::audit::read(conn, 1, 100_000))
        .unwrap()
        .into_iter()
        .map(|row| serde_json::from_str(&row.event).unwrap())
        .collect()
}

fn outcome_desc(event: &Value) -> &str {
    event["outcomeDesc"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn backend_token_has_no_privacy_officer_powers() {
    let h = Harness::with(|config| {
        config.auth.audit_export_clients = vec!["siem-export".into()];
    })
    .await;
    let raised = send_json(
        &h,
        "POST",
        "Consent",
        &officer(&h),
        &objection(
            HANNAH,
            "active",
            json!({"reference": format!("Patient/{HANNAH}")}),
        )
        .to_string(),
    )
    .await;
    assert_eq!(raised.status, 201, "{}", raised.text);
    let backend = h.token(Profile::Backend);
    for path in [
        "AuditEvent?_count=3".to_string(),
        format!("Patient/{ALICE}/$who-viewed"),
        format!("Consent/{HANNAH}"),
        format!("Consent?patient=Patient/{HANNAH}"),
        format!("Consent/{HANNAH}/_history"),
    ] {
        let reply = h.get_as(&path, &backend).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.text);
        assert_eq!(outcome_issue(&reply)["code"], "forbidden");
    }
    // Every Consent scope does not make a service a privacy officer.
    let consent_writer = backend_with(&h, "system/Consent.cruds system/AuditEvent.rs");
    let mut lifted = objection(
        HANNAH,
        "inactive",
        json!({"reference": format!("Patient/{HANNAH}")}),
    );
    lifted["id"] = json!(HANNAH);
    let put = send_json(
        &h,
        "PUT",
        &format!("Consent/{HANNAH}"),
        &consent_writer,
        &lifted.to_string(),
    )
    .await;
    assert_eq!(put.status, 403, "{}", put.text);
    let post = send_json(
        &h,
        "POST",
        "Consent",
        &consent_writer,
        &objection(
            BRIAN,
            "active",
            json!({"reference": format!("Patient/{BRIAN}")}),
        )
        .to_string(),
    )
    .await;
    assert_eq!(post.status, 403, "{}", post.text);
    let current = h.get_as(&format!("Consent/{HANNAH}"), &officer(&h)).await;
    assert_eq!(
        current.fhir()["status"],
        "active",
        "the objection still stands"
    );
    assert_eq!(
        h.get(&format!("Observation?patient={HANNAH}")).await.status,
        403
    );
    // A configured audit export client reads the trail, and nothing else of the officer's.
    let mut claims = h.issuer.claims(&TokenRequest {
        profile: Some(Profile::Backend),
        scope: Some("system/AuditEvent.rs system/Consent.cruds".into()),
        ..TokenRequest::default()
    });
    claims["client_id"] = json!("siem-export");
    claims["sub"] = json!("siem-export");
    let siem = h.issuer.sign(&claims);
    assert_eq!(h.get_as("AuditEvent?_count=3", &siem).await.status, 200);
    assert_eq!(
        h.get_as(&format!("Consent/{HANNAH}"), &siem).await.status,
        403
    );
    assert_eq!(
        send_json(
            &h,
            "PUT",
            &format!("Consent/{HANNAH}"),
            &siem,
            &lifted.to_string()
        )
        .await
        .status,
        403
    );
    h.stop().await;
}

/// A Consent whose extensions nest `levels` deep, in XML.
fn nested_consent_xml(levels: usize) -> String {
    format!(
        "<Consent xmlns=\"http://hl7.org/fhir\">{}<valueString value=\"x\"/>{}<status value=\"active\"/></Consent>",
        "<extension>".repeat(levels),
        "</extension>".repeat(levels)
    )
}

#[tokio::test]
async fn deeply_nested_bodies_are_refused_and_the_facade_lives() {
    let h = Harness::start().await;
    let before = events(&h).len();
    for (content_type, body) in [
        ("application/fhir+xml", nested_consent_xml(1500)),
        (
            "application/fhir+json",
            format!(
                "{{\"resourceType\":\"Consent\",\"extension\":{}{}}}",
                "[{\"url\":\"x\",\"extension\":".repeat(1500),
                "[]}]".repeat(1500)
            ),
        ),
    ] {
        let reply = h
            .client
            .post(format!("{}/Consent", h.base))
            .bearer_auth(officer(&h))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the facade answers rather than dying");
        assert_eq!(reply.status(), 400, "{content_type}");
        let outcome: Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
        assert_eq!(outcome["issue"][0]["code"], "structure", "{outcome}");
    }
    assert_eq!(h.get("metadata").await.status, 200, "still serving");
    let audited: Vec<Value> = events(&h).split_off(before);
    assert_eq!(
        audited
            .iter()
            .filter(|e| outcome_desc(e) == "HTTP 400")
            .count(),
        2,
        "both refusals audited"
    );
    h.stop().await;
}

#[tokio::test]
async fn deeply_nested_partner_body_is_a_partner_failure() {
    let h = Harness::start().await;
    // Deep enough to overflow the XML writer's stack, shallow enough for the JSON parser.
    h.sim(ACUTE).set_faults(Faults {
        nested_extensions: 55,
        ..Faults::default()
    });
    for format in ["json", "xml"] {
        let reply = h
            .get(&format!("Observation?patient={ALICE}&_format={format}"))
            .await;
        assert_eq!(reply.status, 200, "{format}: {}", reply.text);
    }
    let bundle = h.ok(&format!("Observation?patient={ALICE}")).await;
    assert_eq!(
        partner_status(&bundle, "RX1").as_deref(),
        Some("malformed-response")
    );
    assert_eq!(partner_status(&bundle, "A81001").as_deref(), Some("ok"));
    assert!(!entries(&bundle).is_empty(), "the other partners' records");
    h.stop().await;
}

#[tokio::test]
async fn multi_byte_utf8_in_a_date_parameter_is_a_400_not_a_dropped_connection() {
    let h = Harness::start().await;
    let snowman = "%E2%98%831111";
    let before = events(&h).len();
    let officer = officer(&h);
    for (path, token) in [
        (format!("Observation?patient={BRIAN}&date={snowman}"), None),
        (
            format!("Observation?patient={BRIAN}&_lastUpdated={snowman}"),
            None,
        ),
        (format!("Patient?birthdate={snowman}"), None),
        ("Patient?birthdate=ge%E2%98%83".to_string(), None),
        (format!("Encounter?patient={BRIAN}&date=2024-%C3%A9"), None),
        (format!("AuditEvent?date={snowman}"), Some(officer.as_str())),
    ] {
        let reply = match token {
            Some(token) => h.get_as(&path, token).await,
            None => h.get(&path).await,
        };
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        assert_eq!(outcome_issue(&reply)["severity"], "error");
    }
    assert_eq!(events(&h).len(), before + 6, "each one audited");
    h.stop().await;
}

#[tokio::test]
async fn concurrent_first_objections_give_one_201_and_nine_409() {
    let h = Harness::start().await;
    let body = objection(
        HANNAH,
        "proposed",
        json!({"reference": format!("Patient/{HANNAH}")}),
    )
    .to_string();
    let token = officer(&h);
    let attempts = (0..10).map(|_| send_json(&h, "POST", "Consent", &token, &body));
    let replies = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        9,
        "{statuses:?}"
    );
    let history = h
        .get_as(&format!("Consent/{HANNAH}/_history"), &token)
        .await;
    assert_eq!(history.fhir()["total"], 1, "one version stored");
    h.stop().await;
}

#[tokio::test]
async fn smart_app_reads_its_own_patient_and_nobody_else() {
    let h = Harness::start().await;
    let app = h.issuer.token(&TokenRequest {
        profile: Some(Profile::SmartApp),
        patient: Some(ALICE.into()),
        ..TokenRequest::default()
    });
    let own = h.ok_as(&format!("Patient/{ALICE}"), &app).await;
    assert_eq!(own["id"], ALICE);
    assert_eq!(
        h.get_as(&format!("Patient/{BRIAN}"), &app).await.status,
        403
    );
    let searched = h.ok_as(&format!("Patient?_id={ALICE}"), &app).await;
    assert_eq!(ids(&searched), vec![ALICE.to_string()]);
    h.stop().await;
}

#[tokio::test]
async fn unknown_purposes_of_use_are_refused_not_taken_for_direct_care() {
    let h = Harness::start().await;
    let path = format!("Observation?patient={ALICE}");
    for purpose in ["HRESCH", "garbage", "TREAT,BTG", "TREAT;BTG"] {
        let before = events(&h).len();
        let reply = h.get_with(&path, &[("x-purpose-of-use", purpose)]).await;
        assert_eq!(reply.status, 400, "{purpose:?}: {}", reply.text);
        assert_eq!(outcome_issue(&reply)["code"], "value");
        let event = events(&h).pop().unwrap();
        assert_eq!(events(&h).len(), before + 1);
        assert_eq!(outcome_desc(&event), "HTTP 400");
        assert!(
            event.get("purposeOfEvent").is_none(),
            "not recorded as direct care: {event}"
        );
    }
    let mut claims = h.issuer.claims(&TokenRequest::default());
    claims["purpose_of_use"] = json!("HMARKT");
    assert_eq!(h.get_as(&path, &h.issuer.sign(&claims)).await.status, 400);
    for (purpose, recorded) in [
        ("TREAT", "TREAT"),
        ("treat", "TREAT"),
        ("BTG", "ETREAT"),
        ("ETREAT", "ETREAT"),
    ] {
        let reply = h.get_with(&path, &[("x-purpose-of-use", purpose)]).await;
        assert_eq!(reply.status, 200, "{purpose}: {}", reply.text);
        let event = events(&h).pop().unwrap();
        assert_eq!(event["purposeOfEvent"][0]["coding"][0]["code"], recorded);
    }
    h.stop().await;
}

/// The GP's data with one more patient, born on `birth_date`.
fn with_child(partner: &str, birth_date: &str) -> PartnerData {
    let mut data = PartnerData::load(&examples().join("data").join(partner)).unwrap();
    if partner == GP {
        data.add(json!({
            "resourceType": "Patient", "id": "P-child",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": CHILD}],
            "name": [{"family": "Young", "given": ["Robin"]}],
            "birthDate": birth_date
        }));
    }
    data
}

#[tokio::test]
async fn partial_birth_date_gives_the_youngest_possible_age() {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let year = today.year() - 13;
    // Born as late as the last day of the period the partial date names.
    for (birth_date, latest) in [
        (
            format!("{year}"),
            chrono::NaiveDate::from_ymd_opt(year, 12, 31).unwrap(),
        ),
        (
            format!("{year}-12"),
            chrono::NaiveDate::from_ymd_opt(year, 12, 31).unwrap(),
        ),
    ] {
        let h = Harness::with_data(|p| with_child(p, &birth_date), |_| {}).await;
        let own = objection(
            CHILD,
            "active",
            json!({"reference": format!("Patient/{CHILD}")}),
        );
        let reply = send_json(&h, "POST", "Consent", &officer(&h), &own.to_string()).await;
        let may_be_twelve = today.years_since(latest).unwrap_or(0) < 13;
        let expected = if may_be_twelve { 422 } else { 201 };
        assert_eq!(reply.status, expected, "born {birth_date}: {}", reply.text);
        // A parent can still object for them.
        let parent = objection(
            CHILD,
            "active",
            json!({"reference": "RelatedPerson/parent", "display": "Parent"}),
        );
        if may_be_twelve {
            let reply = send_json(&h, "POST", "Consent", &officer(&h), &parent.to_string()).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
        }
        h.stop().await;
    }
}

#[tokio::test]
async fn objection_about_a_foreign_patient_reference_is_refused() {
    let h = Harness::start().await;
    let token = officer(&h);
    for patient in [
        json!({"reference": format!("http://evil.example/fhir/Patient/{ALICE}")}),
        json!({"reference": format!("https://shcr.test/fhir/Patient/{ALICE}")}),
        json!({"reference": format!("Patient/{ALICE}/_history/1")}),
        json!({"identifier": {"system": "urn:oid:1.2.3", "value": ALICE}}),
        json!({"display": "Alice"}),
    ] {
        let mut consent = objection(
            ALICE,
            "active",
            json!({"reference": format!("Patient/{ALICE}")}),
        );
        consent["patient"] = patient.clone();
        let reply = send_json(&h, "POST", "Consent", &token, &consent.to_string()).await;
        assert_eq!(reply.status, 422, "{patient}: {}", reply.text);
        assert_eq!(outcome_issue(&reply)["code"], "invalid");
    }
    assert_eq!(
        h.get_as(&format!("Consent/{ALICE}"), &token).await.status,
        404,
        "nothing stored"
    );
    // The NHS number identifier is accepted, and stored as the Patient reference.
    let mut by_identifier = objection(
        ALICE,
        "proposed",
        json!({"reference": format!("Patient/{ALICE}")}),
    );
    by_identifier["patient"] =
        json!({"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": ALICE}});
    let reply = send_json(&h, "POST", "Consent", &token, &by_identifier.to_string()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.fhir()["patient"]["reference"],
        format!("Patient/{ALICE}")
    );
    h.stop().await;
}

#[tokio::test]
async fn a_locked_database_answers_503_within_the_connect_timeout() {
    let h = Harness::with(|config| config.database.connect_timeout_ms = 500).await;
    let path = h
        .config
        .database
        .url
        .strip_prefix("sqlite://")
        .unwrap()
        .to_string();
    // Another connection's exclusive transaction: writers must wait for it.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = SqliteConnection::establish(&path).unwrap();
        conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
        locked.send(()).unwrap();
        let _ = released.recv_timeout(Duration::from_secs(60));
        conn.batch_execute("ROLLBACK").unwrap();
    });
    is_locked.recv().unwrap();
    for path in [
        format!("Patient/{BRIAN}"),
        format!("Observation?patient={BRIAN}"),
        format!("Patient/{BRIAN}/$everything"),
    ] {
        let reply = h.get(&path).await;
        assert_eq!(reply.status, 503, "{path}: {}", reply.text);
        assert!(
            reply.elapsed < Duration::from_millis(4_000),
            "{path} waited {:?} for a lock",
            reply.elapsed
        );
        assert_eq!(outcome_issue(&reply)["code"], "transient");
    }
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(
        h.get(&format!("Patient/{BRIAN}")).await.status,
        200,
        "recovers"
    );
    h.stop().await;
}

#[tokio::test]
async fn repeated_paging_parameters_are_refused() {
    let h = Harness::start().await;
    let first = h.ok(&format!("Observation?patient={ALICE}&_count=2")).await;
    let next = link(&first, "next").expect("a next page");
    let cursor = next.split("_cursor=").nth(1).unwrap().to_string();
    for path in [
        format!("Observation?_cursor={cursor}&_cursor=xyz"),
        format!("Observation?_cursor=xyz&_cursor={cursor}"),
        format!("Observation?patient={ALICE}&_count=2&_count=50"),
        format!("Observation?patient={ALICE}&_sort=date&_sort=-date"),
        format!("Patient/{ALICE}/$everything?_count=2&_count=3"),
        "AuditEvent?_count=1&_count=2".to_string(),
    ] {
        let token = match path.starts_with("AuditEvent") {
            true => officer(&h),
            false => h.token(Profile::Clinician),
        };
        let reply = h.get_as(&path, &token).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        assert_eq!(outcome_issue(&reply)["code"], "invalid");
    }
    h.stop().await;
}

/// Sends raw bytes on one connection and reads the first answer's status and body.
async fn raw_exchange(base: &str, request: &[u8]) -> (u16, String) {
    let address = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The facade may answer before the whole request is sent.
    let (mut reader, mut writer) = stream.split();
    let send = async {
        let _ = writer.write_all(request).await;
    };
    let mut answer = Vec::new();
    let receive = async {
        let _ =
            tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer)).await;
    };
    tokio::join!(send, receive);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[tokio::test]
async fn oversized_request_heads_answer_fhir_and_are_audited() {
    let h = Harness::start().await;
    let token = h.token(Profile::Clinician);
    let long_value = format!(
        "GET /fhir/Observation?patient={ALICE}&code={} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let many = format!(
        "GET /fhir/Observation?{} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n",
        vec!["a=1"; 10_000].join("&")
    );
    let many_fields = format!(
        "GET /fhir/metadata HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..100)
            .map(|i| format!("x-{i}: y\r\n"))
            .collect::<String>()
    );
    let long_field = format!(
        "GET /fhir/metadata HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "y".repeat(100 * 1024)
    );
    for (request, status) in [
        (long_value, 414),
        (many, 414),
        (many_fields, 431),
        (long_field, 431),
    ] {
        let before = events(&h).len();
        let (got, body) = raw_exchange(&h.base, request.as_bytes()).await;
        assert_eq!(got, status, "{body}");
        let outcome: Value = serde_json::from_str(&body).expect("an OperationOutcome");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["code"], "too-long");
        let after = events(&h);
        assert_eq!(after.len(), before + 1, "audited");
        assert_eq!(
            outcome_desc(after.last().unwrap()),
            format!("HTTP {status}")
        );
    }
    // The refusal names who asked, when their token came with it.
    let event = events(&h)
        .into_iter()
        .find(|e| outcome_desc(e) == "HTTP 414")
        .unwrap();
    let named = event["agent"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["requestor"] == true && a["who"]["identifier"]["value"] == "dev-clinician");
    assert!(named, "{event}");
    // A request within the limits, and 100 parameters at most.
    let ok = h
        .get(&format!(
            "Observation?patient={ALICE}&code={}",
            "a".repeat(8 * 1024)
        ))
        .await;
    assert_eq!(ok.status, 200);
    let params: String = (0..150).map(|i| format!("&x{i}=1")).collect();
    let too_many = h.get(&format!("Observation?patient={ALICE}{params}")).await;
    assert_eq!(too_many.status, 400);
    assert_eq!(outcome_issue(&too_many)["code"], "too-costly");
    h.stop().await;
}

#[tokio::test]
async fn an_audit_search_matching_nothing_neither_scans_the_trail_nor_starves_clinicians() {
    let h = Harness::with(|config| config.database.pool_size = 4).await;
    // A long trail, written as the facade writes it.
    let trail = store(&h);
    let started = Instant::now();
    trail
        .with_conn(|conn| {
            for i in 0..20_000 {
                let access = shcr_facade::audit::Access {
                    request_id: format!("r-{i}"),
                    method: "GET".into(),
                    target: format!("/fhir/Observation?patient={ALICE}"),
                    interaction: "search-type".into(),
                    status: 200,
                    recorded: "2026-01-01T00:00:00.000Z".into(),
                    observer: "an earlier instance".into(),
                    requester: Some(shcr_facade::audit::Requester {
                        issuer: "https://idp.example".into(),
                        subject: format!("user-{}", i % 50),
                        purpose: Some("TREAT".into()),
                        ..Default::default()
                    }),
                    patients: vec![ALICE.into()],
                    ..Default::default()
                };
                let event = shcr_facade::audit::audit_event(&access);
                let keys = shcr_facade::audit::query::keys_of(&event);
                shcr_facade::store::audit::append(
                    conn,
                    &event.to_string(),
                    1_767_225_600_000,
                    &keys,
                    shcr_facade::audit::chain::hash,
                )?;
            }
            Ok(())
        })
        .unwrap();
    eprintln!("20,000 events written in {:?}", started.elapsed());
    let officer = officer(&h);
    let searches = (0..8).map(|_| h.get_as("AuditEvent?agent=nobody", &officer));
    let patient = format!("Patient/{ALICE}");
    let reads = (0..8).map(|_| h.get(&patient));
    let (searched, read) = tokio::join!(
        futures_util::future::join_all(searches),
        futures_util::future::join_all(reads)
    );
    for reply in &searched {
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(entries(&reply.fhir()).is_empty());
    }
    for reply in &read {
        assert_eq!(
            reply.status, 200,
            "a clinician's read beside the officers': {}",
            reply.text
        );
    }
    // The keys find what is there, newest first, across pages.
    let found = h
        .ok_as("AuditEvent?agent=user-7&_count=100", &officer)
        .await;
    assert_eq!(entries(&found).len(), 100);
    let sequences: Vec<i64> = entries(&found)
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(link(&found, "next").is_some());
    h.stop().await;
}
