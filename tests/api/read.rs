//! Reads by facade id round-trip to the partner that holds the record.

use crate::harness::*;

#[tokio::test]
async fn every_type_found_by_search_can_be_read_back() {
    let h = Harness::start().await;
    for resource_type in [
        "MedicationStatement",
        "AllergyIntolerance",
        "Observation",
        "Encounter",
        "CarePlan",
    ] {
        let bundle = h
            .ok(&format!("{resource_type}?patient={ALICE}&_count=3"))
            .await;
        let found = entries(&bundle);
        assert!(!found.is_empty(), "{resource_type}");
        for resource in found {
            let id = resource["id"].as_str().unwrap();
            assert!(id.len() <= 64);
            let read = h.ok(&format!("{resource_type}/{id}")).await;
            assert_eq!(
                read, resource,
                "{resource_type}/{id} reads back as searched"
            );
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn read_rewrites_references_and_hides_the_partner() {
    let h = Harness::start().await;
    let encounter = h
        .ok(&format!("Encounter/{ACUTE}.enc-alice-admission"))
        .await;
    assert_eq!(
        encounter["subject"]["reference"],
        format!("Patient/{ALICE}")
    );
    assert_eq!(encounter["meta"]["tag"][0]["code"], "RX1");
    let text = encounter.to_string();
    assert!(!text.contains("MRN100234") && !text.contains(&h.sim(ACUTE).base_url));
    h.stop().await;
}

#[tokio::test]
async fn unknown_ids_and_types_are_404() {
    let h = Harness::start().await;
    for (path, code) in [
        (format!("Observation/{GP}.no-such-thing"), "not-found"),
        (
            "Observation/unknown-partner.obs-alice-hba1c".to_string(),
            "not-found",
        ),
        ("Observation/no-dot-here".to_string(), "not-found"),
        (
            format!("Observation/{GP}.med-alice-amlodipine"),
            "not-found",
        ),
        (format!("AllergyIntolerance/{COMMUNITY}.x"), "not-found"),
        ("Basic/abc".to_string(), "not-supported"),
        ("Basic?patient=9990000018".to_string(), "not-supported"),
        ("Observation/a%20b".to_string(), "not-found"),
    ] {
        let reply = h.get(&path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
        assert_eq!(outcome_issue(&reply)["code"], code, "{path}");
    }
    h.stop().await;
}
