//! A legacy partner: the council's own JSON API, joined through the example mapping
//! and templates (examples/legacy), on the same paths as the FHIR partners.

use std::process::Command;

use serde_json::{Value, json};
use shcr_facade::sim::Faults;
use shcr_facade::sim::issuer::Profile;

use crate::harness::*;

const BIN: &str = env!("CARGO_BIN_EXE_shcr-facade");
const IAN: &str = "9990000093";
const SAM: &str = "9990000077";
const DAVID: &str = "9990000042";
const HANNAH: &str = "9990000085";
const COUNCIL_LABEL: &str = "Eastshire County Council Adult Social Care (LA909)";

fn council_ids(bundle: &Value) -> Vec<String> {
    let mut found: Vec<String> = ids(bundle)
        .into_iter()
        .filter(|id| id.starts_with("eastshire-asc."))
        .collect();
    found.sort();
    found
}

/// The council's requests for one of its lists, as query pairs.
fn council_queries(h: &Harness, list: &str) -> Vec<Vec<(String, String)>> {
    h.council()
        .requests()
        .iter()
        .filter_map(|r| r.split_once('?'))
        .filter(|(path, _)| path.ends_with(list))
        .map(|(_, q)| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_council_client_appears_with_care_packages_and_visits_beside_fhir_partners() {
    let h = Harness::start().await;
    let plans = h.ok(&format!("CarePlan?patient={IAN}")).await;
    assert!(ids(&plans).contains(&"valley-community.cp-ian-pressure".to_string()));
    assert_eq!(
        council_ids(&plans),
        [
            "eastshire-asc.EC10450.pkg-4873",
            "eastshire-asc.EC10450.pkg-5501"
        ]
    );
    assert_eq!(partner_status(&plans, COUNCIL_ODS).as_deref(), Some("ok"));
    let homecare = entries(&plans)
        .into_iter()
        .find(|r| r["id"] == "eastshire-asc.EC10450.pkg-5501")
        .unwrap();
    assert_eq!(homecare["status"], "active");
    assert_eq!(homecare["subject"]["reference"], format!("Patient/{IAN}"));
    assert_eq!(homecare["period"]["start"], "2024-02-05");
    assert!(homecare["meta"]["tag"].to_string().contains("LA909"));

    // The same packages as the services the council commissioned: a type added to
    // the record by a mapping entry and a template, no code.
    let services = h
        .ok(&format!("ServiceRequest?patient={IAN}&status=active"))
        .await;
    assert_eq!(council_ids(&services), ["eastshire-asc.EC10450.svc-5501"]);
    assert!(ids(&services).contains(&"valley-community.ref-ian-dietitian".to_string()));

    let encounters = h.ok(&format!("Encounter?patient={IAN}")).await;
    assert!(ids(&encounters).contains(&"valley-community.enc-ian-dn".to_string()));
    assert_eq!(
        council_ids(&encounters),
        [
            "eastshire-asc.EC10450.asmt-A-20144",
            "eastshire-asc.EC10450.asmt-A-22817",
            "eastshire-asc.EC10450.visit-V-90211",
            "eastshire-asc.EC10450.visit-V-90212",
            "eastshire-asc.EC10450.visit-V-91877",
        ]
    );
    // Sorted with the FHIR partners' records, newest first.
    let dates: Vec<String> = entries(&encounters)
        .iter()
        .map(|e| {
            e["period"]["start"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted);

    // Ids round-trip on read, through the council's API.
    let visit = entries(&encounters)
        .into_iter()
        .find(|r| r["id"] == "eastshire-asc.EC10450.visit-V-90211")
        .unwrap();
    let read = h.ok("Encounter/eastshire-asc.EC10450.visit-V-90211").await;
    assert_eq!(read, visit);
    assert_eq!(read["length"]["value"], 45);
    let everything = h.ok(&format!("Patient/{IAN}/$everything")).await;
    assert_eq!(
        council_ids(&everything).len(),
        9,
        "2 care plans, 2 services, 5 encounters"
    );

    // The council's client record joins the merged Patient.
    let found = h
        .ok(&format!(
            "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{IAN}"
        ))
        .await;
    assert_eq!(partner_status(&found, COUNCIL_ODS).as_deref(), Some("ok"));
    assert_eq!(ids(&found), [IAN]);
    // Asked by NHS number only: not by demographics.
    h.council().clear_requests();
    let by_name = h.ok("Patient?family=morris&birthdate=1949").await;
    assert_eq!(ids(&by_name), [IAN]);
    assert_eq!(partner_status(&by_name, COUNCIL_ODS), None);
    assert!(h.council().requests().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_record_is_read_by_id_even_when_the_facade_has_forgotten_whose_it_is() {
    // No search first: the facade learns the patient from the council's client read.
    let h = Harness::start().await;
    let read = h.ok("CarePlan/eastshire-asc.EC10450.pkg-5501").await;
    assert_eq!(read["subject"]["reference"], format!("Patient/{IAN}"));
    assert!(
        h.council()
            .requests()
            .iter()
            .any(|r| r.starts_with("/api/v1/clients/EC10450?")),
        "{:?}",
        h.council().requests()
    );
    for unknown in [
        "CarePlan/eastshire-asc.EC10450.pkg-9999",
        "CarePlan/eastshire-asc.EC99999.pkg-5501",
        "CarePlan/eastshire-asc.pkg-5501",
        "Observation/eastshire-asc.EC10450.pkg-5501",
    ] {
        assert_eq!(h.get(unknown).await.status, 404, "{unknown}");
    }
    h.stop().await;
}

#[tokio::test]
async fn date_ranges_reach_the_council_and_the_facade_filters_exactly() {
    let h = Harness::start().await;
    let spring = h
        .ok(&format!(
            "Encounter?patient={IAN}&date=ge2024-03-01&date=lt2024-06-01"
        ))
        .await;
    assert_eq!(
        council_ids(&spring),
        [
            "eastshire-asc.EC10450.visit-V-90211",
            "eastshire-asc.EC10450.visit-V-90212"
        ]
    );
    let asked = council_queries(&h, "/visits");
    assert!(
        asked
            .iter()
            .any(|q| q.contains(&("from".into(), "2024-03-01".into()))
                && q.contains(&("to".into(), "2024-06-01".into()))),
        "{asked:?}"
    );
    h.council().clear_requests();
    let current = h.ok(&format!("CarePlan?patient={IAN}&date=ge2024")).await;
    assert_eq!(council_ids(&current), ["eastshire-asc.EC10450.pkg-5501"]);
    let asked = council_queries(&h, "/care-packages");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains(&("from".into(), "2024-01-01".into())));
    assert!(
        !asked[0].iter().any(|(k, _)| k == "to"),
        "an empty bound is not sent"
    );
    // Parameters the council cannot filter by are applied by the facade.
    let active = h
        .ok(&format!("CarePlan?patient={IAN}&status=completed"))
        .await;
    assert_eq!(council_ids(&active), ["eastshire-asc.EC10450.pkg-4873"]);
    h.stop().await;
}

#[tokio::test]
async fn sensitive_and_restricted_council_records_are_withheld() {
    let h = Harness::start().await;
    let sam = h.ok(&format!("Encounter?patient={SAM}")).await;
    assert_eq!(
        council_ids(&sam),
        ["eastshire-asc.EC11102.asmt-A-24051"],
        "the visit for gender dysphoria is withheld"
    );
    assert_eq!(
        h.get("Encounter/eastshire-asc.EC11102.visit-V-92040")
            .await
            .status,
        404
    );
    let everything = h.ok(&format!("Patient/{SAM}/$everything")).await;
    assert!(!everything.to_string().contains("V-92040"));
    assert!(!everything.to_string().contains("93461009"));

    let david = h.ok(&format!("Encounter?patient={DAVID}")).await;
    assert_eq!(
        council_ids(&david),
        ["eastshire-asc.EC10921.asmt-A-23988"],
        "the safeguarding enquiry (confidentiality R) is not shown to this role"
    );
    h.stop().await;

    let cleared = Harness::with(|c| c.auth.roles.restricted = vec!["R8000".into()]).await;
    let david = cleared.ok(&format!("Encounter?patient={DAVID}")).await;
    assert!(council_ids(&david).contains(&"eastshire-asc.EC10921.asmt-A-23712".to_string()));
    cleared.stop().await;
}

#[tokio::test]
async fn an_objecting_patients_council_records_are_withheld_before_the_council_is_asked() {
    let h = Harness::start().await;
    let before = h.ok(&format!("CarePlan?patient={HANNAH}")).await;
    assert_eq!(council_ids(&before), ["eastshire-asc.EC10877.pkg-5630"]);
    let created = h
        .client
        .post(format!("{}/Consent", h.base))
        .bearer_auth(h.token(Profile::PrivacyOfficer))
        .header("content-type", "application/fhir+json")
        .body(
            crate::objection::objection(
                HANNAH,
                "active",
                json!({"reference": format!("Patient/{HANNAH}")}),
            )
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    h.council().clear_requests();
    for path in [
        format!("CarePlan?patient={HANNAH}"),
        format!("Encounter?patient={HANNAH}"),
        format!("Patient/{HANNAH}/$everything"),
    ] {
        let reply = h.get(&path).await;
        assert_eq!(reply.status, 403, "{path}");
        assert!(!reply.text.contains("EC10877"), "{path}");
    }
    assert!(
        h.council().requests().is_empty(),
        "no search of hers reached the council: {:?}",
        h.council().requests()
    );
    // A read by id must fetch the record to learn whose it is, as with any partner;
    // nothing of it is returned.
    let read = h.get("CarePlan/eastshire-asc.EC10877.pkg-5630").await;
    assert_eq!(read.status, 403);
    assert!(!read.text.contains("Carer"));
    h.stop().await;
}

#[tokio::test]
async fn a_council_system_that_is_down_slow_or_sends_garbage_gives_a_partial_result() {
    let mut h = Harness::start().await;
    let cases = [
        (
            Faults {
                malformed: true,
                ..Faults::default()
            },
            "malformed-response",
            "not a JSON document",
        ),
        (
            Faults {
                status: Some(500),
                ..Faults::default()
            },
            "error-response",
            "HTTP 500",
        ),
        (
            Faults {
                hang: true,
                ..Faults::default()
            },
            "timeout",
            "did not answer in time",
        ),
    ];
    for (faults, status, words) in cases {
        h.council().set_faults(faults);
        let plans = h.ok(&format!("CarePlan?patient={IAN}")).await;
        assert_eq!(partner_status(&plans, COUNCIL_ODS).as_deref(), Some(status));
        assert!(ids(&plans).contains(&"valley-community.cp-ian-pressure".to_string()));
        assert!(council_ids(&plans).is_empty());
        let warning = warnings(&plans)
            .into_iter()
            .find(|w| w.contains(COUNCIL_LABEL))
            .unwrap_or_default();
        assert!(warning.contains(words), "{status}: {warning}");
        assert!(!plans.to_string().contains(&h.council().base_url));
    }
    h.stop_council().await;
    let plans = h.ok(&format!("CarePlan?patient={IAN}")).await;
    assert_eq!(
        partner_status(&plans, COUNCIL_ODS).as_deref(),
        Some("unreachable")
    );
    assert!(ids(&plans).contains(&"valley-community.cp-ian-pressure".to_string()));
    h.stop().await;
}

#[tokio::test]
async fn records_that_do_not_map_are_left_out_with_a_warning_naming_the_council() {
    let mut council = council_data();
    let visit = |id: &str, start: &str| {
        json!({"visit_id": id, "client_id": "EC10450", "package_id": 5501,
               "visit_start": start, "duration_mins": 30, "purpose": "Evening meal",
               "reason_code": null, "restricted": "N"})
    };
    // A date in the council's own format, a field missing, a value that is not a
    // number where the template wants one, and an id that cannot be a FHIR id.
    council.add_record("EC10450", "visits", visit("V-1", "31/03/2024 17:30"));
    let mut missing = visit("V-2", "2024-03-05T17:30:00+00:00");
    missing.as_object_mut().unwrap().remove("purpose");
    council.add_record("EC10450", "visits", missing);
    let mut not_a_number = visit("V-3", "2024-03-06T17:30:00+00:00");
    not_a_number["duration_mins"] = json!("half an hour");
    council.add_record("EC10450", "visits", not_a_number);
    council.add_record(
        "EC10450",
        "visits",
        visit("V 4/../x", "2024-03-07T17:30:00+00:00"),
    );
    let h = Harness::with_council(
        |p| {
            shcr_facade::sim::PartnerData::load(&examples().join("data").join(p))
                .expect("partner data loads")
        },
        council,
        |_| {},
    )
    .await;
    let encounters = h.ok(&format!("Encounter?patient={IAN}")).await;
    assert_eq!(
        council_ids(&encounters).len(),
        5,
        "the others are all there"
    );
    assert_eq!(
        partner_status(&encounters, COUNCIL_ODS).as_deref(),
        Some("ok")
    );
    assert!(
        warnings(&encounters).contains(&format!(
            "{COUNCIL_LABEL} sent 4 records that could not be turned into FHIR R4; they were left out"
        )),
        "{:?}",
        warnings(&encounters)
    );
    // A record about another client is caught by the check every partner gets.
    h.council().set_faults(Faults {
        foreign_patient: true,
        ..Faults::default()
    });
    let plans = h.ok(&format!("CarePlan?patient={IAN}")).await;
    assert_eq!(council_ids(&plans).len(), 2);
    assert!(
        warnings(&plans)
            .iter()
            .any(|w| w.contains(COUNCIL_LABEL) && w.contains("about a different patient")),
        "{:?}",
        warnings(&plans)
    );
    h.stop().await;
}

/// The example mapping and templates copied to a directory, with `edit` applied to
/// each file's text by name.
fn broken_copy(edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = examples().join("legacy");
    std::fs::create_dir(dir.path().join("samples")).unwrap();
    for file in std::fs::read_dir(&source)
        .unwrap()
        .chain(std::fs::read_dir(source.join("samples")).unwrap())
    {
        let path = file.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let name = path.strip_prefix(&source).unwrap().to_path_buf();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = edit(&name.display().to_string(), text);
        std::fs::write(dir.path().join(&name), text).unwrap();
    }
    dir
}

#[tokio::test]
async fn broken_mappings_are_reported_with_file_and_line_and_stop_the_start() {
    let dir = broken_copy(|name, text| match name {
        "eastshire-asc.toml" => text
            .replace(
                "clients/{{ patient.id }}/visits",
                "clients/{{ client.id }}/visits",
            )
            .replace(
                "records = \"/data/assessments\"",
                "records = \"data.assessments\"",
            )
            .replace(
                "X-Api-Version = \"1\"",
                "X-Api-Version = \"1\"\nAuthorization = \"Bearer abc\"",
            ),
        // Line 10 of the template: an unclosed tag.
        "care-package.liquid" => text.replace(
            "\"intent\": \"plan\",",
            "\"intent\": \"{{ record.intent \",",
        ),
        // Valid Liquid that makes invalid JSON from the sample.
        "visit.liquid" => text.replace("\"status\": \"finished\",", "\"status\": \"finished\""),
        _ => text,
    });
    let mapping = dir.path().join("eastshire-asc.toml");
    let config_path = dir.path().join("shcr.toml");
    let config = std::fs::read_to_string(examples().join("shcr.toml"))
        .unwrap()
        .replace(
            "mapping = \"legacy/eastshire-asc.toml\"",
            &format!("mapping = \"{}\"", mapping.display()),
        );
    std::fs::write(&config_path, config).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config_path)
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let mapping_text = std::fs::read_to_string(&mapping).unwrap();
    let line_of = |needle: &str| {
        mapping_text
            .lines()
            .position(|l| l.contains(needle))
            .unwrap()
            + 1
    };
    let at = |file: &std::path::Path, line: usize| format!("{}:{line}: ", file.display());
    for expected in [
        format!(
            "{}'clients/{{{{ client.id }}}}/visits'",
            at(&mapping, line_of("client.id"))
        ),
        format!(
            "{}records 'data.assessments'",
            at(&mapping, line_of("data.assessments"))
        ),
        format!(
            "{}Authorization is not written here",
            at(&mapping, line_of("Authorization"))
        ),
        at(&dir.path().join("care-package.liquid"), 10),
        format!(
            "{}: with sample {}",
            dir.path().join("visit.liquid").display(),
            dir.path().join("samples/visit.json").display()
        ),
    ] {
        assert!(
            stdout.contains(&expected),
            "expected {expected} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("may use nhs_number, patient.id, date_from, date_to"),
        "{stdout}"
    );

    // The same problems stop the facade from starting.
    let mut config = shcr_facade::config::Config::load(Some(&config_path)).unwrap();
    let (_db, url) = sqlite_url();
    config.database.url = url;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let error = shcr_facade::server(config, listener)
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("care-package.liquid:10"),
        "{error}"
    );
}

#[tokio::test]
async fn check_reaches_the_council_with_its_headers() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shcr.toml");
    let (_db, url) = sqlite_url();
    std::fs::write(
        &path,
        crate::cli::with_partners_of(&h, crate::cli::with_database(&url, 2000)),
    )
    .unwrap();
    // Run without blocking this runtime, which serves the partners.
    let out = tokio::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .env_clear()
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok    eastshire-asc: mapping and 5 templates load"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ok    {COUNCIL_LABEL}")),
        "{stdout}"
    );
    assert!(
        h.council()
            .requests()
            .iter()
            .any(|r| r.starts_with("/api/v1/status"))
    );
    h.stop().await;
}
