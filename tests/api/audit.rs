//! Every access audited: one AuditEvent per request, denied ones too, naming who
//! looked and what they were shown, written before the answer leaves (fail closed),
//! hash-chained and verifiable.

use std::process::Command;

use diesel::RunQueryDsl;
use serde_json::Value;
use shcr_facade::sim::issuer::Profile;
use shcr_facade::store::{AnyConnection, Store};

use crate::harness::*;

const BIN: &str = env!("CARGO_BIN_EXE_shcr-facade");

fn store(h: &Harness) -> Store {
    Store::connect(&h.config.database).expect("the harness database")
}

/// Every event so far, in order, each checked to be valid R4.
fn events(h: &Harness) -> Vec<Value> {
    store(h)
        .with_conn(|conn| shcr_facade::store::audit::read(conn, 1, 10_000))
        .unwrap()
        .into_iter()
        .map(|row| {
            let event: Value = serde_json::from_str(&row.event).unwrap();
            fhir_codec::validate_r4_json(&event)
                .unwrap_or_else(|e| panic!("not valid R4: {e}\n{event}"));
            event
        })
        .collect()
}

/// The one event a request made.
async fn one_event(
    h: &Harness,
    request: impl std::future::Future<Output = Reply>,
) -> (Reply, Value) {
    let before = events(h).len();
    let reply = request.await;
    let after = events(h);
    assert_eq!(after.len(), before + 1, "exactly one event per request");
    (reply, after.last().unwrap().clone())
}

fn references(event: &Value, role_code: &str) -> Vec<String> {
    event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"]["code"] == role_code)
        .map(|e| e["what"]["reference"].as_str().unwrap().to_string())
        .collect()
}

fn requester(event: &Value) -> Value {
    event["agent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["requestor"] == true)
        .cloned()
        .unwrap_or(Value::Null)
}

fn sql(store: &Store, statement: &str) {
    store
        .with_conn(|conn| {
            match conn {
                AnyConnection::Sqlite(c) => diesel::sql_query(statement).execute(c),
                AnyConnection::Postgresql(c) => diesel::sql_query(statement).execute(c),
            }
            .map_err(|e| shcr_facade::store::StoreError::Unavailable(e.to_string()))
        })
        .unwrap();
}

#[tokio::test]
async fn each_request_leaves_one_event_saying_who_what_and_why() {
    let h = Harness::start().await;
    let clinician = h.token(Profile::Clinician);

    // A search: the user, their role and organisation, the token's jti (never the
    // token), the patient, the query, every resource returned, each partner.
    let search = format!("Observation?patient={ALICE}&_count=100");
    let (reply, event) = one_event(&h, h.get_as(&search, &clinician)).await;
    let bundle = reply.fhir();
    assert_eq!(event["outcome"], "0");
    assert_eq!(event["subtype"][0]["code"], "search-type");
    assert_eq!(event["action"], "E");
    let user = requester(&event);
    assert_eq!(user["who"]["identifier"]["value"], "dev-clinician");
    assert_eq!(user["role"][0]["coding"][0]["code"], "R8000");
    assert!(user["role"][0]["text"].as_str().unwrap().contains("RX1"));
    assert!(
        user["policy"][0]
            .as_str()
            .is_some_and(|jti| !jti.is_empty())
    );
    assert_eq!(event["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");
    assert!(!event.to_string().contains(&clinician), "never the token");
    assert_eq!(references(&event, "1"), [format!("Patient/{ALICE}")]);
    let mut shown: Vec<String> = ids(&bundle)
        .iter()
        .map(|id| format!("Observation/{id}"))
        .collect();
    let mut audited = references(&event, "4");
    shown.sort();
    audited.sort();
    assert_eq!(audited, shown, "what they were shown");
    let partners = event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"]["code"] == "3")
        .count();
    // Every partner consulted: the four that hold Observations (the council holds
    // none, and is not asked).
    assert_eq!(partners, 4);
    let query = event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"]["code"] == "24")
        .unwrap()["query"]
        .as_str()
        .unwrap()
        .to_string();
    use base64::Engine;
    let query = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(query)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(query, format!("GET /fhir/{search}"));

    // A read, an unknown id, no token, another patient for a launch context, a
    // withheld record, emergency access.
    let (_, event) = one_event(&h, h.get("Encounter/northgate-acute.enc-alice-admission")).await;
    assert_eq!(event["subtype"][0]["code"], "read");
    assert_eq!(
        references(&event, "4"),
        ["Encounter/northgate-acute.enc-alice-admission"]
    );
    let (_, event) = one_event(&h, h.get("Encounter/northgate-acute.no-such")).await;
    assert_eq!(event["outcome"], "4");
    assert_eq!(event["outcomeDesc"], "HTTP 404");
    let (_, event) = one_event(
        &h,
        h.get_with(&search, &[("authorization", "Bearer not-a-token")]),
    )
    .await;
    assert_eq!(event["outcomeDesc"], "HTTP 401");
    assert!(requester(&event).is_null(), "nobody validated");
    assert_eq!(
        references(&event, "1"),
        [format!("Patient/{ALICE}")],
        "asked about"
    );
    let app = h.token(Profile::SmartApp);
    let (_, event) = one_event(&h, h.get_as("Observation?patient=9990000026", &app)).await;
    assert_eq!(event["outcomeDesc"], "HTTP 403");
    assert!(references(&event, "4").is_empty());
    let (_, event) = one_event(&h, h.get_with(&search, &[("x-purpose-of-use", "BTG")])).await;
    assert_eq!(event["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
    assert_eq!(
        event["meta"]["tag"][0]["code"], "BTG",
        "flagged for alerting"
    );

    // How much the policy withheld is recorded for investigators, never shown.
    let withheld = |event: &Value| {
        event["entity"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "withheld by policy")
            .unwrap()["detail"][0]["valueString"]
            .as_str()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let (reply, event) = one_event(&h, h.get("Encounter?patient=9990000034")).await;
    assert!(withheld(&event) >= 1, "Chloe's clinic encounter");
    assert!(!reply.text.contains("withheld"));
    let (_, event) = one_event(&h, h.get("Encounter/riverside-gp.enc-chloe-gum")).await;
    assert_eq!(event["outcomeDesc"], "HTTP 404");
    assert_eq!(withheld(&event), 1);
    let (_, event) = one_event(&h, h.get(&search)).await;
    assert_eq!(withheld(&event), 0);

    // Every endpoint, whatever the outcome, leaves exactly one event.
    let officer = h.token(Profile::PrivacyOfficer);
    let consent = crate::objection::objection(
        "9990000026",
        "proposed",
        serde_json::json!({"reference": "Patient/9990000026"}),
    );
    let send = |method: &str, path: &str, body: Option<String>, token: &str| {
        let mut request = h
            .client
            .request(method.parse().unwrap(), format!("{}/{path}", h.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header(
                    "content-type",
                    if path.ends_with("_search") {
                        "application/x-www-form-urlencoded"
                    } else {
                        "application/fhir+json"
                    },
                )
                .body(body);
        }
        async move {
            let response = request.send().await.unwrap();
            Reply {
                status: response.status(),
                content_type: String::new(),
                text: response.text().await.unwrap(),
                elapsed: std::time::Duration::ZERO,
            }
        }
    };
    let mut consent_update = consent.clone();
    consent_update["status"] = serde_json::json!("inactive");
    let cases: Vec<(&str, String, Option<String>, &str, u16)> = vec![
        ("GET", "metadata".into(), None, &clinician, 200),
        (
            "GET",
            ".well-known/smart-configuration".into(),
            None,
            &clinician,
            200,
        ),
        ("GET", format!("Patient/{ALICE}"), None, &clinician, 200),
        (
            "GET",
            format!("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{ALICE}"),
            None,
            &clinician,
            200,
        ),
        (
            "GET",
            format!("Patient/{ALICE}/$everything?_count=5"),
            None,
            &clinician,
            200,
        ),
        (
            "POST",
            "Observation/_search".into(),
            Some(format!("patient={ALICE}")),
            &clinician,
            200,
        ),
        (
            "GET",
            "Observation?code=8480-6".into(),
            None,
            &clinician,
            400,
        ),
        ("DELETE", format!("Patient/{ALICE}"), None, &clinician, 405),
        ("GET", "Specimen/x".into(), None, &clinician, 404),
        (
            "POST",
            "Consent".into(),
            Some(consent.to_string()),
            &officer,
            201,
        ),
        (
            "GET",
            "Observation?patient=9990000026".into(),
            None,
            &clinician,
            403,
        ),
        (
            "PUT",
            "Consent/9990000026".into(),
            Some(consent_update.to_string()),
            &officer,
            200,
        ),
        ("GET", "Consent/9990000026".into(), None, &officer, 200),
        (
            "GET",
            "Consent/9990000026/_history".into(),
            None,
            &officer,
            200,
        ),
        (
            "GET",
            "Consent/9990000026/_history/1".into(),
            None,
            &officer,
            200,
        ),
        (
            "GET",
            "Consent?patient=Patient/9990000026".into(),
            None,
            &officer,
            200,
        ),
        ("GET", "AuditEvent?_count=1".into(), None, &officer, 200),
        (
            "GET",
            format!("Patient/{ALICE}/$who-viewed"),
            None,
            &officer,
            200,
        ),
        ("GET", "AuditEvent".into(), None, &clinician, 403),
    ];
    for (method, path, body, token, status) in cases {
        let (reply, event) = one_event(&h, send(method, &path, body, token)).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path}: {}",
            reply.text
        );
        assert_eq!(
            event["outcomeDesc"],
            format!("HTTP {status}"),
            "{method} {path}"
        );
    }

    let (count, _) = shcr_facade::audit::verify(&store(&h), None)
        .unwrap()
        .unwrap();
    assert_eq!(count as usize, events(&h).len());
    h.stop().await;
}

#[tokio::test]
async fn no_audit_no_data() {
    let h = Harness::start().await;
    assert_eq!(
        h.get(&format!("Observation?patient={ALICE}")).await.status,
        200
    );
    // The audit table stops accepting events (as a full disk would).
    sql(
        &store(&h),
        "CREATE TRIGGER audit_full BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    );
    for path in [
        format!("Observation?patient={ALICE}"),
        format!("Patient/{ALICE}"),
        format!("Patient/{ALICE}/$everything"),
        "Encounter/northgate-acute.enc-alice-admission".to_string(),
    ] {
        let reply = h.get(&path).await;
        assert_eq!(reply.status, 503, "{path}");
        let issue = outcome_issue(&reply);
        assert_eq!(issue["code"], "transient");
        assert!(
            !reply.text.contains("Alice") && !reply.text.contains("enc-alice"),
            "{path}"
        );
    }
    // Requests arriving together share a commit: when it fails, every answer of the
    // group is refused.
    let path = format!("Observation?patient={ALICE}");
    let together: Vec<_> = (0..16).map(|_| h.get(&path)).collect();
    for reply in futures_util::future::join_all(together).await {
        assert_eq!(reply.status, 503);
    }
    // Writable again: answered again.
    sql(&store(&h), "DROP TRIGGER audit_full");
    assert_eq!(h.get(&path).await.status, 200);
    h.stop().await;
}

#[tokio::test]
async fn audit_verify_names_the_first_altered_removed_or_reordered_event() {
    let h = Harness::start().await;
    for _ in 0..5 {
        h.get(&format!("AllergyIntolerance?patient={ALICE}")).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shcr.toml");
    std::fs::write(
        &config,
        crate::cli::with_database(&h.config.database.url, 2000),
    )
    .unwrap();
    let verify_with = |anchor: Option<&str>| {
        let out = Command::new(BIN)
            .args(["audit", "verify", "--config"])
            .arg(&config)
            .args(anchor.map(|a| ["--anchor", a]).into_iter().flatten())
            .env_clear()
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let verify = || verify_with(None);
    let (ok, said) = verify();
    assert!(ok && said.contains("intact: 5 events"), "{said}");
    // The head, as an operator would keep it elsewhere.
    let head = said.trim().rsplit("head ").next().unwrap().to_string();
    assert!(head.starts_with("5:"), "{head}");
    assert!(verify_with(Some(&head)).0);

    // Someone with the database's own rights removes the guards and edits history.
    let store = store(&h);
    sql(&store, "DROP TRIGGER audit_events_no_update");
    sql(&store, "DROP TRIGGER audit_events_no_delete");
    sql(
        &store,
        "UPDATE audit_events SET event = replace(event, 'dev-clinician', 'someone-else') WHERE sequence = 3",
    );
    let (ok, said) = verify();
    assert!(
        !ok && said.contains("event 3") && said.contains("altered"),
        "{said}"
    );
    sql(
        &store,
        "UPDATE audit_events SET event = replace(event, 'someone-else', 'dev-clinician') WHERE sequence = 3",
    );
    assert!(verify().0, "restored");

    // Two events swapped.
    sql(
        &store,
        "UPDATE audit_events SET sequence = -2 WHERE sequence = 2",
    );
    sql(
        &store,
        "UPDATE audit_events SET sequence = 2 WHERE sequence = 4",
    );
    sql(
        &store,
        "UPDATE audit_events SET sequence = 4 WHERE sequence = -2",
    );
    let (ok, said) = verify();
    assert!(!ok && said.contains("event 2"), "{said}");
    sql(
        &store,
        "UPDATE audit_events SET sequence = -2 WHERE sequence = 2",
    );
    sql(
        &store,
        "UPDATE audit_events SET sequence = 2 WHERE sequence = 4",
    );
    sql(
        &store,
        "UPDATE audit_events SET sequence = 4 WHERE sequence = -2",
    );
    assert!(verify().0, "restored");

    // The tail truncated: the chain left still holds, but not against the anchor.
    sql(&store, "DELETE FROM audit_events WHERE sequence >= 4");
    assert!(verify().0, "a shorter chain holds by itself");
    let (ok, said) = verify_with(Some(&head));
    assert!(
        !ok && said.contains("event 4") && said.contains("truncated"),
        "{said}"
    );

    // One removed from the middle.
    sql(&store, "DELETE FROM audit_events WHERE sequence = 2");
    let (ok, said) = verify();
    assert!(
        !ok && said.contains("event 2") && said.contains("missing"),
        "{said}"
    );
    h.stop().await;
}

#[tokio::test]
async fn privacy_officers_search_the_trail_and_see_who_viewed_a_record() {
    let h = Harness::start().await;
    let officer = h.token(Profile::PrivacyOfficer);
    let search = format!("Observation?patient={ALICE}");
    h.ok(&search).await;
    h.ok("Encounter/northgate-acute.enc-alice-admission").await;
    h.get_with(&search, &[("x-purpose-of-use", "BTG")]).await;
    h.get_as(
        "Observation?patient=9990000026",
        &h.token(Profile::SmartApp),
    )
    .await;
    h.ok("AllergyIntolerance?patient=9990000026").await;

    // Clinicians may not read the trail.
    let refused = h.get("AuditEvent").await;
    assert_eq!(refused.status, 403, "{}", refused.text);

    let about_alice = h
        .ok_as(&format!("AuditEvent?patient={ALICE}"), &officer)
        .await;
    let alice_events = entries(&about_alice);
    assert_eq!(alice_events.len(), 3, "search, read, emergency search");
    let sequence = |e: &Value| e["id"].as_str().unwrap().parse::<i64>().unwrap();
    assert!(
        alice_events
            .windows(2)
            .all(|w| sequence(&w[0]) > sequence(&w[1])),
        "newest first"
    );
    let alerts = h
        .ok_as(
            "AuditEvent?_tag=http://terminology.hl7.org/CodeSystem/v3-ActReason|BTG",
            &officer,
        )
        .await;
    assert_eq!(entries(&alerts).len(), 1, "the emergency access");
    let denied = h.ok_as("AuditEvent?outcome=4", &officer).await;
    assert!(
        entries(&denied)
            .iter()
            .any(|e| e["outcomeDesc"] == "HTTP 403"),
        "the refused launch context"
    );
    let by_clinician = h.ok_as("AuditEvent?agent=dev-clinician", &officer).await;
    assert!(entries(&by_clinician).len() >= 5);
    assert!(entries(&h.ok_as("AuditEvent?date=lt2020-01-01", &officer).await).is_empty());
    assert_eq!(
        h.get_as("AuditEvent?colour=blue", &officer).await.status,
        400
    );

    // Paged, two a page, every event once.
    let mut seen = Vec::new();
    let mut page = h.ok_as("AuditEvent?_count=2", &officer).await;
    loop {
        seen.extend(ids(&page));
        let Some(next) = link(&page, "next") else {
            break;
        };
        assert_eq!(h.get(&next).await.status, 403, "bound to the officer");
        page = h.ok_as(&next, &officer).await;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len());
    assert!(seen.len() >= 9, "{seen:?}");

    // Who viewed Alice's record: her accesses, not the officer's own reviews.
    let report = h
        .ok_as(&format!("Patient/{ALICE}/$who-viewed"), &officer)
        .await;
    assert_eq!(report["resourceType"], "Parameters");
    let accesses = report["parameter"].as_array().unwrap();
    assert_eq!(accesses.len(), 3, "{report}");
    let part = |access: &Value, name: &str| {
        access["part"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(part(&accesses[0], "types")["valueString"], "Observation");
    assert!(
        part(&accesses[0], "role")["valueString"]
            .as_str()
            .unwrap()
            .contains("RX1")
    );
    assert_eq!(part(&accesses[1], "types")["valueString"], "Encounter");
    assert_eq!(part(&accesses[2], "purpose")["valueCode"], "ETREAT");
    assert_eq!(
        h.get(&format!("Patient/{ALICE}/$who-viewed")).await.status,
        403
    );
    h.stop().await;
}

#[tokio::test]
async fn two_instances_on_one_postgres_keep_one_valid_chain() {
    let Some(database) =
        crate::databases::postgres("two_instances_on_one_postgres_keep_one_valid_chain")
    else {
        return;
    };
    let config = database.config.clone();
    let h = Harness::with(move |c| c.database = config).await;
    let (other_base, other) = start_facade(h.config.clone());
    const N: usize = 40;
    let requests: Vec<_> = (0..N)
        .map(|i| {
            let base = if i % 2 == 0 {
                h.base.clone()
            } else {
                other_base.clone()
            };
            let client = h.client.clone();
            let path = match i % 3 {
                0 => format!("Observation?patient={ALICE}"),
                1 => "Encounter/northgate-acute.enc-alice-admission".to_string(),
                _ => format!("AllergyIntolerance?patient={ALICE}"),
            };
            tokio::spawn(async move {
                client
                    .get(format!("{base}/{path}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    let store = Store::connect(&database.config).unwrap();
    let (count, _) = shcr_facade::audit::verify(&store, None).unwrap().unwrap();
    assert_eq!(
        count as usize, N,
        "one event per request, one unbroken chain"
    );
    other.stop(false).await;
    h.stop().await;
}

#[tokio::test]
async fn logs_carry_request_ids_but_no_identifiers_tokens_or_bodies() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_db, url) = sqlite_url();
    let mut config = crate::cli::with_partners_of(&h, crate::cli::with_database(&url, 2000));
    config.push_str(&format!(
        "\n[auth]\naudience = \"{AUDIENCE}\"\n[[auth.issuers]]\nissuer = \"{}\"\n",
        h.issuer.issuer
    ));
    let path = dir.path().join("shcr.toml");
    std::fs::write(&path, config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("facade.log");
    let mut child = Command::new(BIN)
        .args(["serve", "--port", &port.to_string(), "--config"])
        .arg(&path)
        .env_clear()
        .env("SHCR_SERVER__WORKERS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}/fhir");
    let token = production_token(&h.issuer, Profile::Clinician);
    let started = std::time::Instant::now();
    while client()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .is_err()
    {
        assert!(started.elapsed().as_secs() < 20, "facade did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let requests = [
        format!("Observation?patient={ALICE}"),
        format!("Patient/{ALICE}"),
        "Patient?family=jones&birthdate=1958-03-14".to_string(),
        "Encounter/northgate-acute.enc-alice-admission".to_string(),
        format!("Observation?patient={ALICE}&code:text=blood"),
    ];
    for request in &requests {
        let reply = h.get_as(&format!("{base}/{request}"), &token).await;
        assert_eq!(reply.status, 200, "{request}");
    }
    let forged = h
        .get_as(&format!("{base}/Patient/{ALICE}"), "forged.token.value")
        .await;
    assert_eq!(forged.status, 401);
    // Values a client sends never reach the log, odd characters and newlines included.
    for (request, status) in [
        (
            format!("Observation?patient={ALICE}&date=%E2%98%831111%0Ainjected-line"),
            400,
        ),
        (
            format!("Observation?patient={ALICE}&code={}", "z".repeat(20_000)),
            414,
        ),
    ] {
        let reply = h.get_as(&format!("{base}/{request}"), &token).await;
        assert_eq!(reply.status, status, "{request}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("request_id"), "{logged}");
    // Written to a file, not a terminal: no colour codes.
    assert!(!logged.contains('\u{1b}'), "ANSI escapes in the log file");
    for secret in [
        ALICE,
        "Jones",
        "jones",
        "1958-03-14",
        &token,
        "forged.token",
        "enc-alice",
        "P1001",
        "injected-line",
        "\u{2603}",
        "zzzz",
    ] {
        assert!(
            !logged.contains(secret),
            "the log shows {secret}:\n{logged}"
        );
    }
    h.stop().await;
}
