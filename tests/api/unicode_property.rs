//! Property: any text at all, in any search parameter of any type the facade
//! serves (the clinical types, Patient, the audit trail, the objection register), is
//! answered: a 2xx or 4xx with an OperationOutcome, never a dropped connection or a
//! 5xx.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::Value;
use shcr_facade::fhir::ResourceType;
use shcr_facade::fhir::search::registry::Registry;
use shcr_facade::sim::issuer::Profile;

use crate::harness::*;

/// Text a client might send: any characters (controls, multi-byte, lone surrogates
/// are impossible in UTF-8 but every other code point is possible), and FHIR
/// search's own syntax characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,16}",
        "(eq|ne|gt|ge|lt|le|sa|eb|ap)?[0-9\\-T:Z.+]{0,12}\\PC{0,3}[0-9]{0,6}",
        "[|,\\\\$:/%?#&=\\n\\r\\t ]{0,8}\\PC{0,4}",
    ]
}

/// Every (path, parameter) the facade reads, with the other parameters a search of
/// that path needs to reach it.
fn parameters() -> Vec<(String, String, &'static str)> {
    let mut all = Vec::new();
    for resource_type in ResourceType::all().iter().copied() {
        let needs = match resource_type.is_clinical() {
            true => "patient=9990000018&",
            false => "",
        };
        for def in Registry::get().for_type(resource_type) {
            for name in [def.code.clone(), format!("{}:exact", def.code)] {
                all.push((resource_type.to_string(), name, needs));
            }
        }
        for control in [
            "_count",
            "_sort",
            "_summary",
            "_elements",
            "_cursor",
            "_format",
        ] {
            all.push((resource_type.to_string(), control.to_string(), needs));
        }
    }
    for name in shcr_facade::audit::query::PARAMETERS {
        all.push(("AuditEvent".into(), name.to_string(), ""));
    }
    all.push(("Consent".into(), "patient".into(), ""));
    all.push(("Patient/9990000018/$everything".into(), "_type".into(), ""));
    all.push(("Patient/9990000018/$everything".into(), "_count".into(), ""));
    all
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn any_text_in_any_search_parameter_is_answered_with_an_outcome() {
    let h = Harness::start().await;
    let clinician = h.token(Profile::Clinician);
    let officer = h.token(Profile::PrivacyOfficer);
    let mut runner = TestRunner::new(RunnerConfig::default());
    let strategy = text();
    let mut asked = 0;
    for (path, name, needs) in parameters() {
        let token = match path.as_str() {
            "AuditEvent" | "Consent" => &officer,
            _ => &clinician,
        };
        for _ in 0..4 {
            let value = strategy.new_tree(&mut runner).expect("a value").current();
            let query = format!("{path}?{needs}{}={}", encode(&name), encode(&value));
            let reply = h.get_as(&query, token).await;
            asked += 1;
            let status = reply.status.as_u16();
            assert!(
                (200..300).contains(&status) || (400..500).contains(&status),
                "{query}: {status} {}",
                reply.text
            );
            let body: Value = serde_json::from_str(&reply.text)
                .or_else(|_| fhir_codec::read_xml(reply.text.as_bytes()).map_err(|e| e.to_string()))
                .unwrap_or_else(|e| panic!("{query}: not FHIR ({e}): {}", reply.text));
            let has_outcome = body["resourceType"] == "OperationOutcome"
                || body["entry"].as_array().is_some_and(|entries| {
                    entries
                        .iter()
                        .any(|e| e["resource"]["resourceType"] == "OperationOutcome")
                })
                || matches!(path.as_str(), "AuditEvent" | "Consent")
                    && body["resourceType"] == "Bundle";
            assert!(
                has_outcome,
                "{query}: {status} without an outcome: {}",
                reply.text
            );
        }
    }
    eprintln!("{asked} requests of arbitrary text, each answered");
    h.stop().await;
}
