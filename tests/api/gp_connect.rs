//! A GP practice over GP Connect Access Record: Structured, black-box against the
//! practice simulator (which checks the Spine headers, the consumer JWT and the
//! Parameters as a provider does): STU3 records arrive as valid R4, one call per
//! request, for the requesting professional; the practice's signals are reported;
//! and its records still pass the facade's own classifier and release stage.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;
use shcr_facade::sim::Faults;
use shcr_facade::sim::issuer::Profile;

use crate::harness::*;

const IAN: &str = "9990000093";
/// Registered last month: the previous practice's transfer is still in progress.
const GRACE: &str = "9990001006";
/// Dissented from sharing his GP record at the practice.
const KOFI: &str = "9990001014";
const SUPPRESSED: &str = "not available through the Shared Care Record";

/// Every resource of a searchset but its outcome.
fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] != "outcome")
        .map(|e| e["resource"].clone())
        .collect()
}

fn from_practice(bundle: &Value) -> Vec<Value> {
    resources(bundle)
        .into_iter()
        .filter(|r| {
            r["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("meadowbank-gp."))
        })
        .collect()
}

/// The GP Connect practice's entry in a facade's configuration.
fn practice_in(
    config: &mut shcr_facade::config::Config,
) -> &mut shcr_facade::config::PartnerConfig {
    config
        .partners
        .iter_mut()
        .find(|p| p.id == PRACTICE)
        .expect("the practice is a partner")
}

fn find<'a>(records: &'a [Value], id: &str) -> &'a Value {
    let id = format!("meadowbank-gp.{IAN}.{id}");
    records
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap_or_else(|| {
            panic!(
                "{id} is not among {:?}",
                records.iter().map(|r| &r["id"]).collect::<Vec<_>>()
            )
        })
}

#[tokio::test]
async fn every_type_arrives_as_valid_r4_from_one_call() {
    let h = Harness::start().await;
    // `ok` checks the whole searchset is strict R4.
    let everything = h.ok(&format!("Patient/{IAN}/$everything")).await;
    let calls = h.practice().record_requests();
    assert_eq!(calls.len(), 1, "one structured-record call for $everything");
    let asked: BTreeSet<String> = calls[0].areas().into_iter().collect();
    for area in [
        "includeAllergies",
        "includeMedication",
        "includeProblems",
        "includeImmunisations",
        "includeConsultations",
        "includeUncategorisedData",
        "includeInvestigations",
        "includeReferrals",
    ] {
        assert!(asked.contains(area), "{area} asked: {asked:?}");
    }
    assert_eq!(
        partner_status(&everything, PRACTICE_ODS).as_deref(),
        Some("ok")
    );
    let records = from_practice(&everything);
    let types: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r["resourceType"].as_str())
        .collect();
    for t in [
        "AllergyIntolerance",
        "MedicationStatement",
        "MedicationRequest",
        "Medication",
        "Condition",
        "Immunization",
        "Observation",
        "DiagnosticReport",
        "Encounter",
        "ServiceRequest",
        "Organization",
        "Practitioner",
    ] {
        assert!(types.contains(t), "{t} from the practice: {types:?}");
    }
    for record in &records {
        fhir_codec::validate_r4_json(record).unwrap_or_else(|e| panic!("{e}: {record}"));
    }
    // What STU3 had that R4 says otherwise.
    let penicillin = find(&records, "alg-penicillin");
    assert_eq!(penicillin["clinicalStatus"]["coding"][0]["code"], "active");
    assert_eq!(penicillin["recordedDate"], "2001-05-03");
    assert!(
        penicillin["verificationStatus"].is_null(),
        "GP Connect's is meaningless"
    );
    assert_eq!(
        penicillin["encounter"]["reference"],
        format!("Encounter/meadowbank-gp.{IAN}.cons-1")
    );
    let latex = find(&records, "alg-latex");
    assert_eq!(
        latex["clinicalStatus"]["coding"][0]["code"], "resolved",
        "the ended allergy, from inside its List"
    );
    let declined = find(&records, "imm-shingles");
    assert_eq!(declined["status"], "not-done");
    assert_eq!(
        declined["statusReason"]["coding"][0]["code"],
        "591000119102"
    );
    let flu = find(&records, "imm-flu");
    assert_eq!(flu["occurrenceDateTime"], "2024-10-12");
    assert_eq!(flu["protocolApplied"][0]["doseNumberPositiveInt"], 1);
    let statement = find(&records, "ms-ramipril");
    assert!(statement["taken"].is_null());
    assert_eq!(statement["subject"]["reference"], format!("Patient/{IAN}"));
    let plan = find(&records, "mr-ramipril-plan");
    assert_eq!(
        plan["requester"]["reference"],
        format!("Practitioner/meadowbank-gp.{IAN}.dr-rahman")
    );
    assert_eq!(
        plan["encounter"]["reference"],
        format!("Encounter/meadowbank-gp.{IAN}.cons-1")
    );
    assert_eq!(find(&records, "mr-ramipril-issue-1")["intent"], "order");
    let problem = find(&records, "prob-hypertension");
    assert_eq!(problem["clinicalStatus"]["coding"][0]["code"], "active");
    assert_eq!(problem["recordedDate"], "2019-05-01");
    assert_eq!(
        problem["encounter"]["reference"],
        format!("Encounter/meadowbank-gp.{IAN}.cons-1")
    );
    let referral = find(&records, "ref-respiratory");
    assert_eq!(referral["resourceType"], "ServiceRequest");
    assert!(
        referral.to_string().contains("3457005"),
        "categorised as a referral"
    );
    assert_eq!(
        referral["performer"][0]["reference"],
        format!("Organization/meadowbank-gp.{IAN}.northgate-resp")
    );
    assert_eq!(find(&records, "pr-fbc")["resourceType"], "ServiceRequest");
    let consultation = find(&records, "cons-1");
    assert_eq!(
        consultation["class"]["code"], "UNK",
        "R4 needs a class; GP Connect has none"
    );
    assert_eq!(
        consultation["reasonReference"][0]["reference"],
        format!("Condition/meadowbank-gp.{IAN}.prob-hypertension"),
        "the consultation's topic problem"
    );
    assert_eq!(
        find(&records, "obs-smoking")["note"][0]["text"],
        "Stopped in 2005"
    );
    assert_eq!(
        find(&records, "obs-fbc")["hasMember"][0]["reference"],
        format!("Observation/meadowbank-gp.{IAN}.obs-hb")
    );
    assert_eq!(
        find(&records, "rep-fbc")["category"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0074"
    );
    // The community trust's records of Ian are there beside the practice's.
    assert!(resources(&everything).iter().any(|r| {
        r["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("valley-community."))
    }));
    h.stop().await;
}

#[tokio::test]
async fn one_call_per_request_answers_the_lookup_searches_and_reads() {
    let h = Harness::start().await;
    let practice = h.practice();
    let allergies = h.ok(&format!("AllergyIntolerance?patient={IAN}")).await;
    assert_eq!(entries(&allergies).len(), 2, "active and ended");
    let calls = practice.record_requests();
    assert_eq!(calls.len(), 1, "the lookup and the search share one call");
    assert_eq!(
        calls[0].areas().len(),
        8,
        "every area: an allergy is judged by its consultation, that by its problems, those by their items"
    );
    // Patient links are now known: still one call, for the search alone.
    practice.clear_requests();
    let pressure = h
        .ok(&format!(
            "Observation?patient={IAN}&code=http://snomed.info/sct|75367002"
        ))
        .await;
    assert_eq!(
        ids(&pressure),
        [format!("meadowbank-gp.{IAN}.obs-bp")],
        "the facade applies the criteria"
    );
    assert_eq!(practice.record_requests().len(), 1);
    // Several types in one request (a revinclude), still one call.
    practice.clear_requests();
    let with_results = h
        .ok(&format!(
            "DiagnosticReport?patient={IAN}&_include=DiagnosticReport:result"
        ))
        .await;
    assert_eq!(practice.record_requests().len(), 1);
    assert!(
        from_practice(&with_results)
            .iter()
            .any(|r| r["id"] == format!("meadowbank-gp.{IAN}.obs-fbc").as_str())
    );
    // Records pointing at the matches come from the same held record.
    practice.clear_requests();
    let pointed = h
        .ok(&format!(
            "Encounter?patient={IAN}&_revinclude=Observation:encounter"
        ))
        .await;
    assert_eq!(practice.record_requests().len(), 1);
    let included: Vec<Value> = pointed["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"].clone())
        .collect();
    assert!(
        included
            .iter()
            .any(|r| r["id"] == format!("meadowbank-gp.{IAN}.obs-bp").as_str()),
        "the blood pressure taken in the consultation"
    );
    assert!(
        included
            .iter()
            .filter(|r| r["id"].as_str().unwrap().starts_with("meadowbank-gp."))
            .all(|r| r["encounter"]["reference"]
                .as_str()
                .is_some_and(|e| e.starts_with("Encounter/meadowbank-gp."))),
        "only records pointing at a match"
    );
    // A read by facade id asks for the record again and picks the one asked for.
    practice.clear_requests();
    let read = h
        .ok(&format!("Condition/meadowbank-gp.{IAN}.prob-copd"))
        .await;
    assert_eq!(read["code"]["coding"][0]["code"], "13645005");
    assert_eq!(practice.record_requests().len(), 1);
    let missing = h
        .get(&format!("Condition/meadowbank-gp.{IAN}.no-such-problem"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn the_call_names_the_requesting_professional_and_never_carries_their_token() {
    let h = Harness::start().await;
    let token = h.token(Profile::Clinician);
    let reply = h
        .get_as(&format!("MedicationStatement?patient={IAN}"), &token)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let calls = h.practice().record_requests();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.header("ssp-from"), Some("200000001115"));
    assert_eq!(call.header("ssp-to"), Some("918999198993"));
    assert_eq!(
        call.header("ssp-interactionid"),
        Some("urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1")
    );
    assert!(uuid::Uuid::parse_str(call.header("ssp-traceid").unwrap()).is_ok());
    assert_eq!(
        call.header("accept"),
        Some("application/fhir+json;charset=utf-8")
    );
    assert_eq!(
        call.header("content-type"),
        Some("application/fhir+json;charset=utf-8")
    );
    for (name, value) in &call.headers {
        assert!(
            !value.contains(&token),
            "the user's token is never forwarded ({name})"
        );
    }
    let claims = call.claims.as_ref().expect("a consumer JWT");
    assert_eq!(
        claims["sub"], "555000111222",
        "the professional's SDS user id"
    );
    assert_eq!(claims["aud"], h.practice().base_url.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(claims["reason_for_request"], "directcare");
    assert_eq!(claims["requested_scope"], "patient/*.read");
    let practitioner = &claims["requesting_practitioner"];
    let identifier = |system: &str| {
        practitioner["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["system"] == system)
            .map(|i| i["value"].as_str().unwrap().to_string())
    };
    assert_eq!(
        identifier("https://fhir.nhs.uk/Id/sds-user-id").as_deref(),
        Some("555000111222")
    );
    assert_eq!(
        identifier("https://fhir.nhs.uk/Id/sds-role-profile-id").as_deref(),
        Some("555021935107"),
        "the role selected"
    );
    assert_eq!(practitioner["name"][0]["family"], "Clinician");
    assert_eq!(
        claims["requesting_organization"]["identifier"][0]["value"], "RX1",
        "the professional's organisation, not the facade's host"
    );
    assert_eq!(claims["requesting_device"]["model"], "shcr-facade");
    let parameters = call.parameters.as_ref().unwrap();
    assert_eq!(parameters["parameter"][0]["valueIdentifier"]["value"], IAN);
    // A backend service names no professional: the practice is not asked at all.
    h.practice().clear_requests();
    let backend = h
        .get_as(
            &format!("MedicationStatement?patient={IAN}"),
            &h.token(Profile::Backend),
        )
        .await;
    assert_eq!(backend.status, StatusCode::OK, "{}", backend.text);
    let bundle = backend.fhir();
    assert_eq!(
        partner_status(&bundle, PRACTICE_ODS).as_deref(),
        Some("user-required")
    );
    assert!(h.practice().record_requests().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn the_practice_checks_what_it_is_sent_as_a_provider_does() {
    // Without this, the test above could pass against a simulator that checks nothing.
    let h = Harness::start().await;
    let url = format!("{}/Patient/$gpc.getstructuredrecord", h.practice().base_url);
    let body = r#"{"resourceType":"Parameters","parameter":[{"name":"patientNHSNumber","valueIdentifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990000093"}}]}"#;
    let reply = client()
        .post(&url)
        .header("content-type", "application/fhir+json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert!(reply.text().await.unwrap().contains("BAD_REQUEST"));
    h.stop().await;
}

#[tokio::test]
async fn dissent_not_known_transfers_and_disabled_areas_are_reported_with_the_others_intact() {
    let h = Harness::start().await;
    // Kofi dissented at his practice: its record is absent, and the reason given.
    let kofi = h.ok(&format!("Condition?patient={KOFI}")).await;
    assert_eq!(
        partner_status(&kofi, PRACTICE_ODS).as_deref(),
        Some("patient-dissent")
    );
    assert!(from_practice(&kofi).is_empty());
    assert!(
        warnings(&kofi)
            .iter()
            .any(|w| w.starts_with("Meadowbank Surgery (B82005): ") && w.contains(SUPPRESSED))
    );
    // Ian dissents too: the community trust's records are still shown.
    h.practice().set_setup(|s| s.dissented.push(IAN.into()));
    let ian = h.ok(&format!("Immunization?patient={IAN}")).await;
    assert_eq!(
        partner_status(&ian, PRACTICE_ODS).as_deref(),
        Some("patient-dissent")
    );
    assert_eq!(ids(&ian), ["valley-community.imm-ian-flu"]);
    let read = h
        .get(&format!("Condition/meadowbank-gp.{IAN}.prob-copd"))
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text);
    assert_eq!(outcome_issue(&read)["code"], "suppressed");
    h.practice().set_setup(|s| s.dissented.retain(|d| d != IAN));
    // Not registered there.
    let alice = h.ok(&format!("Condition?patient={ALICE}")).await;
    assert_eq!(
        partner_status(&alice, PRACTICE_ODS).as_deref(),
        Some("patient-not-known")
    );
    assert!(!entries(&alice).is_empty(), "Riverside's problems");
    // A transfer from the previous practice in progress.
    let grace = h.ok(&format!("AllergyIntolerance?patient={GRACE}")).await;
    assert_eq!(entries(&grace).len(), 1);
    assert!(
        warnings(&grace)
            .iter()
            .any(|w| w.contains("a transfer from the previous practice is in progress")),
        "{:?}",
        warnings(&grace)
    );
    // The practice's own confidential-items warning is not repeated.
    let problems = h.ok(&format!("Condition?patient={IAN}")).await;
    assert!(!problems.to_string().to_lowercase().contains("confidential"));
    assert_eq!(
        partner_status(&problems, PRACTICE_ODS).as_deref(),
        Some("ok")
    );
    // An area the practice has switched off.
    h.practice()
        .set_setup(|s| s.disabled.push("includeImmunisations".into()));
    let disabled = h.ok(&format!("Immunization?patient={IAN}")).await;
    assert_eq!(
        partner_status(&disabled, PRACTICE_ODS).as_deref(),
        Some("incomplete")
    );
    assert!(
        warnings(&disabled)
            .iter()
            .any(|w| w.contains("does not share its immunisations through GP Connect")),
        "{:?}",
        warnings(&disabled)
    );
    assert!(ids(&disabled).contains(&"valley-community.imm-ian-flu".to_string()));
    assert!(
        from_practice(&disabled).is_empty(),
        "not even from inside a consultation"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_slow_garbled_or_stopped_practice_leaves_the_others_intact() {
    let mut h = Harness::start().await;
    let search = format!("Encounter?patient={IAN}");
    let community = |bundle: &Value| {
        ids(bundle)
            .iter()
            .filter(|id| id.starts_with("valley-community."))
            .count()
    };
    let whole = h.ok(&search).await;
    let expected = community(&whole);
    assert!(expected > 0);
    for (faults, status) in [
        (Faults::latency(2000), "timeout"),
        (
            Faults {
                malformed: true,
                ..Faults::default()
            },
            "malformed-response",
        ),
        (
            Faults {
                status: Some(500),
                ..Faults::default()
            },
            "error-response",
        ),
    ] {
        h.practice().set_faults(faults);
        let reply = h.get(&search).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.elapsed.as_millis() < 1500, "bounded by the deadline");
        let bundle = reply.fhir();
        assert_eq!(
            partner_status(&bundle, PRACTICE_ODS).as_deref(),
            Some(status)
        );
        assert_eq!(
            community(&bundle),
            expected,
            "{status}: the community trust's records"
        );
        assert!(from_practice(&bundle).is_empty());
    }
    h.stop_practice().await;
    let down = h.ok(&search).await;
    assert_eq!(
        partner_status(&down, PRACTICE_ODS).as_deref(),
        Some("unreachable")
    );
    assert_eq!(community(&down), expected);
    h.stop().await;
}

#[tokio::test]
async fn sensitive_records_the_practice_sent_are_withheld_by_the_facades_own_lists() {
    let h = Harness::start().await;
    let everything = h.ok(&format!("Patient/{IAN}/$everything")).await;
    let shown: Vec<String> = from_practice(&everything)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // The syphilis problem by its code; its consultation (whose topic it is), the
    // course given there and its plan by what they point at.
    for withheld in [
        "prob-syphilis",
        "cons-2",
        "ms-benzathine",
        "mr-benzathine-plan",
    ] {
        let id = format!("meadowbank-gp.{IAN}.{withheld}");
        assert!(!shown.contains(&id), "{id} withheld");
    }
    assert!(!everything.to_string().contains("76272004"));
    // The same by search and by read.
    let problems = h.ok(&format!("Condition?patient={IAN}")).await;
    assert!(!ids(&problems).contains(&format!("meadowbank-gp.{IAN}.prob-syphilis")));
    let medicines = h.ok(&format!("MedicationStatement?patient={IAN}")).await;
    assert_eq!(
        ids(&medicines),
        [format!("meadowbank-gp.{IAN}.ms-ramipril")]
    );
    let read = h
        .get(&format!("Condition/meadowbank-gp.{IAN}.prob-syphilis"))
        .await;
    assert_ne!(read.status, StatusCode::OK);
    assert!(!read.text.contains("76272004"));
    h.stop().await;
}

#[tokio::test]
async fn through_the_spine_proxy_the_jwt_still_names_the_practice() {
    let h = Harness::start().await;
    let proxy = h.practice().proxy_url.clone();
    let facade = h.other_facade(|config| {
        practice_in(config).gp_connect.as_mut().unwrap().proxy = Some(proxy);
    });
    let bundle = facade
        .ok(&format!("AllergyIntolerance?patient={IAN}"))
        .await;
    assert_eq!(entries(&bundle).len(), 2);
    let calls = h.practice().record_requests();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].via_proxy);
    assert_eq!(
        calls[0].claims.as_ref().unwrap()["aud"],
        h.practice().base_url.as_str()
    );
    facade.stop().await;
    h.stop().await;
}

/// The structured record is asked for by POST, but it is a read: one that meets a
/// kept-alive connection the practice (or the Spine proxy) closes as it is reused is
/// sent once more, and the practice is not reported unreachable.
#[tokio::test]
async fn a_structured_record_call_on_a_connection_closed_as_it_is_reused_is_sent_again() {
    let h = Harness::start().await;
    let (proxied, received) = crate::closing_proxy::closing_on_reuse(&h.practice().proxy_url).await;
    let facade = h.other_facade(|config| {
        practice_in(config).gp_connect.as_mut().unwrap().proxy = Some(proxied);
    });
    for round in 1..=3 {
        let bundle = facade
            .ok(&format!("AllergyIntolerance?patient={IAN}"))
            .await;
        assert_eq!(
            partner_status(&bundle, PRACTICE_ODS).as_deref(),
            Some("ok"),
            "round {round}: {:?}",
            warnings(&bundle)
        );
        assert_eq!(from_practice(&bundle).len(), 2, "round {round}");
    }
    // Rounds 2 and 3 each met a closing connection and were sent again.
    assert_eq!(received.count(), 5);
    assert_eq!(h.practice().record_requests().len(), 3);
    facade.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn records_that_do_not_convert_are_left_out_and_counted() {
    let h = Harness::start().await;
    let mut records = practice_records();
    let ian = records
        .records
        .iter_mut()
        .find(|(nhs, _)| nhs.as_str() == IAN)
        .map(|(_, r)| r)
        .unwrap();
    // An allergy whose status is no code, an immunisation without its vaccine.
    for resource in ian.iter_mut() {
        match resource["id"].as_str() {
            Some("alg-penicillin") => resource["clinicalStatus"] = serde_json::json!(42),
            Some("imm-flu") => {
                resource.as_object_mut().unwrap().remove("vaccineCode");
            }
            _ => {}
        }
    }
    let practice = shcr_facade::sim::GpConnectPractice::start(records, Faults::default()).unwrap();
    let facade = h.other_facade(|config| {
        practice_in(config).base_url = practice.base_url.clone();
    });
    for (search, left_out) in [
        ("AllergyIntolerance", "alg-penicillin"),
        ("Immunization", "imm-flu"),
    ] {
        let bundle = facade.ok(&format!("{search}?patient={IAN}")).await;
        assert!(!ids(&bundle).contains(&format!("meadowbank-gp.{IAN}.{left_out}")));
        assert!(!entries(&bundle).is_empty(), "{search}: the rest are shown");
        assert!(
            warnings(&bundle)
                .iter()
                .any(|w| w == "Meadowbank Surgery (B82005) sent 1 records that could not be turned into FHIR R4; they were left out"),
            "{search}: {:?}",
            warnings(&bundle)
        );
    }
    facade.stop().await;
    practice.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn check_reaches_the_practice_as_spine_would_and_names_a_wrong_asid() {
    let h = Harness::start().await;
    let (_db, url) = sqlite_url();
    let good = crate::cli::with_partners_of(&h, crate::cli::with_database(&url, 2000));
    let dir = tempfile::tempdir().unwrap();
    let run = |text: String, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shcr-facade"))
                .args(["check", "--config"])
                .arg(&path)
                .env_clear()
                .output()
                .await
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        }
    };
    let (passed, stdout) = run(good.clone(), "good.toml").await;
    assert!(passed, "{stdout}");
    assert!(
        stdout.contains("ok    Meadowbank Surgery (B82005) GP Connect"),
        "{stdout}"
    );
    let metadata = h
        .practice()
        .received()
        .into_iter()
        .find(|r| r.path.ends_with("/metadata"))
        .expect("check asked for the capability statement");
    assert_eq!(
        metadata.header("ssp-interactionid"),
        Some("urn:nhs:names:services:gpconnect:structured:fhir:rest:read:metadata-1")
    );
    let wrong = good.replace(
        "practice_asid = \"918999198993\"",
        "practice_asid = \"111111111111\"",
    );
    assert_ne!(wrong, good);
    let (passed, stdout) = run(wrong, "wrong.toml").await;
    assert!(!passed);
    assert!(
        stdout.contains("FAIL  Meadowbank Surgery (B82005): GP Connect HTTP 400"),
        "{stdout}"
    );
    h.stop().await;
}
