//! One merged Patient per NHS number.

use crate::harness::*;

#[tokio::test]
async fn patient_is_merged_with_gp_demographics_and_everyones_identifiers() {
    let h = Harness::start().await;
    let patient = h.ok(&format!("Patient/{ALICE}")).await;
    assert_eq!(patient["id"], ALICE);
    // The GP (authoritative) has both given names and the current address.
    assert_eq!(
        patient["name"][0]["given"],
        serde_json::json!(["Alice", "Mary"])
    );
    assert_eq!(patient["address"][0]["city"], "Riverside");
    assert_eq!(patient["telecom"][0]["system"], "phone");
    let identifiers: Vec<String> = patient["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(identifiers, [ALICE, "MRN100234"]);
    assert_eq!(
        patient["generalPractitioner"][0]["identifier"]["value"],
        "A81001"
    );
    assert_eq!(
        patient["generalPractitioner"][0]["reference"],
        format!("Organization/{GP}.riverside"),
        "the GP practice by facade id, never the partner's own address"
    );
    let origins: Vec<&str> = patient["meta"]["tag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(origins, ["A81001", "RX1", "RY2"]);
    assert!(patient.get("link").is_none());
    h.stop().await;
}

#[tokio::test]
async fn fallback_demographics_when_the_authority_does_not_know_the_patient() {
    let h = Harness::start().await;
    // Farah is known to the hospital only.
    let farah = h.ok("Patient/9990000069").await;
    assert_eq!(farah["name"][0]["family"], "Khan");
    assert_eq!(farah["meta"]["tag"].as_array().unwrap().len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn patient_search_by_identifier_id_and_demographics() {
    let h = Harness::start().await;
    let by_identifier = h
        .ok(&format!(
            "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{ALICE}"
        ))
        .await;
    assert_eq!(ids(&by_identifier), [ALICE]);
    let by_id = h.ok("Patient?_id=9990000018,9990000093").await;
    assert_eq!(ids(&by_id).len(), 2);
    let q = |query: &str| {
        let h = &h;
        let path = format!("Patient?{query}");
        async move {
            let mut found = ids(&h.ok(&path).await);
            found.sort();
            found
        }
    };
    assert_eq!(q("family=jones&birthdate=1958").await, [ALICE]);
    assert_eq!(q("family=smi").await, ["9990000034"]);
    assert_eq!(q("family:exact=Smi").await, Vec::<String>::new());
    assert_eq!(q("family:contains=ORR").await, ["9990000093"]);
    assert_eq!(q("given=alice").await, [ALICE]);
    assert_eq!(q("gender=male&birthdate=lt1960").await, ["9990000093"]);
    assert_eq!(
        q("birthdate=ge1990&gender=female").await,
        ["9990000034", "9990000069"]
    );
    // A demographic search is sent to every partner, translated.
    let gp = partner_queries(h.sim(GP), "/Patient");
    assert!(
        gp.iter()
            .any(|q| q.contains(&("family".into(), "jones".into()))
                && q.contains(&("birthdate".into(), "1958".into())))
    );
    h.stop().await;
}

#[tokio::test]
async fn patient_search_needs_criteria_and_unknown_patients_are_404() {
    let h = Harness::start().await;
    let reply = h.get("Patient").await;
    assert_eq!(reply.status, 400);
    assert_eq!(outcome_issue(&reply)["code"], "invalid");
    let empty = h
        .ok("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000107")
        .await;
    assert_eq!(empty["total"], 0);
    let missing = h.get("Patient/9990000107").await;
    assert_eq!(missing.status, 404);
    assert_eq!(outcome_issue(&missing)["code"], "not-found");
    let invalid = h.get("Patient/9990000019").await;
    assert_eq!(invalid.status, 404);
    h.stop().await;
}
