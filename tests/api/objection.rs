//! The right to object: the Consent register and its effect on every path.

use serde_json::{Value, json};
use shcr_facade::sim::PartnerData;
use shcr_facade::sim::issuer::Profile;

use crate::harness::*;

const HANNAH: &str = "9990000085";

pub fn objection(nhs: &str, status: &str, performer: Value) -> Value {
    json!({
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": format!("Patient/{nhs}")},
        "performer": [performer],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}
    })
}

fn officer(h: &Harness) -> String {
    h.token(Profile::PrivacyOfficer)
}

async fn send(h: &Harness, method: &str, path: &str, body: &Value) -> Reply {
    let request = h
        .client
        .request(method.parse().unwrap(), format!("{}/{path}", h.base))
        .bearer_auth(officer(h))
        .header("content-type", "application/fhir+json")
        .body(body.to_string());
    let started = std::time::Instant::now();
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.unwrap();
    Reply {
        status,
        content_type: format!("{content_type} location={location}"),
        text,
        elapsed: started.elapsed(),
    }
}

/// Every path about Hannah, with the status each must give.
async fn assert_every_path(h: &Harness, expected: u16, page_link: &str) {
    for path in [
        format!("Observation?patient={HANNAH}"),
        format!("CarePlan?subject=Patient/{HANNAH}"),
        format!("Patient/{HANNAH}"),
        format!("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{HANNAH}"),
        format!("Patient?_id={HANNAH}"),
        "Encounter/valley-community.enc-hannah-physio".to_string(),
        format!("Patient/{HANNAH}/$everything"),
        page_link.to_string(),
    ] {
        let reply = h.get(&path).await;
        assert_eq!(reply.status.as_u16(), expected, "{path}: {}", reply.text);
        if expected == 403 {
            let issue = outcome_issue(&reply);
            assert_eq!(issue["code"], "suppressed");
            assert_eq!(issue["details"]["coding"][0]["code"], "patient-objection");
            assert!(
                issue["details"]["text"]
                    .as_str()
                    .unwrap()
                    .contains("other channels")
            );
            assert!(
                !reply.text.contains("physio") && !reply.text.contains("Taylor"),
                "nothing about the patient: {}",
                reply.text
            );
        }
    }
}

#[tokio::test]
async fn the_objection_lifecycle_hides_and_shows_the_record_at_once() {
    let h = Harness::start().await;
    let first = h
        .ok(&format!("Patient/{HANNAH}/$everything?_count=1"))
        .await;
    let page_link = link(&first, "next").expect("more than one page");
    assert_every_path(&h, 200, &page_link).await;

    let by_patient = json!({"reference": format!("Patient/{HANNAH}")});
    let created = send(
        &h,
        "POST",
        "Consent",
        &objection(HANNAH, "proposed", by_patient.clone()),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        created
            .content_type
            .ends_with(&format!("location={}/Consent/{HANNAH}/_history/1", h.base))
    );
    let consent = created.fhir();
    assert_eq!(
        (
            consent["id"].as_str(),
            consent["meta"]["versionId"].as_str()
        ),
        (Some(HANNAH), Some("1"))
    );
    // Under review already hides: the page link issued before the objection too.
    assert_every_path(&h, 403, &page_link).await;
    let listed = h.ok("Patient?family=taylor").await;
    assert!(
        ids(&listed).is_empty(),
        "found by demographics, an objecting patient is not listed"
    );

    for (status, visible) in [
        ("active", false),
        ("inactive", true),
        ("proposed", false),
        ("rejected", true),
        ("active", false),
        ("entered-in-error", true),
    ] {
        let mut body = objection(HANNAH, status, by_patient.clone());
        body["id"] = json!(HANNAH);
        let updated = send(&h, "PUT", &format!("Consent/{HANNAH}"), &body).await;
        assert_eq!(updated.status, 200, "{status}: {}", updated.text);
        assert_every_path(&h, if visible { 200 } else { 403 }, &page_link).await;
    }
    let history = h
        .ok_as(&format!("Consent/{HANNAH}/_history"), &officer(&h))
        .await;
    let statuses: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "entered-in-error",
            "active",
            "rejected",
            "proposed",
            "inactive",
            "active",
            "proposed"
        ]
    );
    let first_version = h
        .ok_as(&format!("Consent/{HANNAH}/_history/1"), &officer(&h))
        .await;
    assert_eq!(first_version["status"], "proposed");
    let current = h.ok_as(&format!("Consent/{HANNAH}"), &officer(&h)).await;
    assert_eq!(current["meta"]["versionId"], "7");
    let search = h
        .ok_as(&format!("Consent?patient=Patient/{HANNAH}"), &officer(&h))
        .await;
    assert_eq!(ids(&search), [HANNAH]);
    h.stop().await;
}

#[tokio::test]
async fn bad_or_repeated_objections_are_refused() {
    let h = Harness::start().await;
    let by_patient = json!({"reference": format!("Patient/{HANNAH}")});
    assert_eq!(
        send(
            &h,
            "POST",
            "Consent",
            &objection(HANNAH, "active", by_patient.clone())
        )
        .await
        .status,
        201
    );
    let again = send(
        &h,
        "POST",
        "Consent",
        &objection(HANNAH, "active", by_patient.clone()),
    )
    .await;
    assert_eq!(again.status, 409);
    assert_eq!(outcome_issue(&again)["code"], "duplicate");
    let mut permit = objection(
        "9990000018",
        "active",
        json!({"reference": "Patient/9990000018"}),
    );
    permit["provision"]["type"] = json!("permit");
    for (body, what) in [
        (permit, "permit"),
        (
            objection(
                "9990000018",
                "draft",
                json!({"reference": "Patient/9990000018"}),
            ),
            "draft",
        ),
        (
            objection(
                "9990000018",
                "active",
                json!({"reference": "Practitioner/dr-1"}),
            ),
            "practitioner",
        ),
        (
            json!({"resourceType": "Consent", "status": "active", "colour": "blue"}),
            "not R4",
        ),
    ] {
        // Not R4 at all is a bad request; R4 but not an objection is unprocessable.
        let expected = if what == "not R4" { 400 } else { 422 };
        let reply = send(&h, "POST", "Consent", &body).await;
        assert_eq!(reply.status, expected, "{what}: {}", reply.text);
    }
    let unknown = send(
        &h,
        "POST",
        "Consent",
        &objection(
            "9990000107",
            "active",
            json!({"reference": "Patient/9990000107"}),
        ),
    )
    .await;
    assert_eq!(unknown.status, 404, "no partner knows the patient");
    let xxe = h
        .client
        .post(format!("{}/Consent", h.base))
        .bearer_auth(officer(&h))
        .header("content-type", "application/fhir+xml")
        .body(r#"<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><Consent xmlns="http://hl7.org/fhir"><status value="&x;"/></Consent>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(xxe.status(), 400);
    assert!(!xxe.text().await.unwrap().contains("root:"));
    assert_eq!(
        h.get_as("Consent/9990000018", &officer(&h)).await.status,
        404
    );
    h.stop().await;
}

/// Examples data plus Lily (10) and Tom (14) at the GP.
fn with_children(partner: &str) -> PartnerData {
    let mut data = PartnerData::load(&examples().join("data").join(partner)).unwrap();
    if partner == GP {
        let this_year: i32 = chrono::Utc::now().format("%Y").to_string().parse().unwrap();
        for (id, nhs, age) in [("P2001", "9990000115", 10), ("P2002", "9990000123", 14)] {
            data.add(json!({"resourceType": "Patient", "id": id, "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
                "name": [{"family": "Taylor"}], "birthDate": format!("{}-01-01", this_year - age)}));
        }
    }
    data
}

#[tokio::test]
async fn a_guardian_objects_for_a_child_and_a_competent_child_for_themself() {
    let h = Harness::with_data(with_children, |_| {}).await;
    let (lily, tom) = ("9990000115", "9990000123");
    let herself = send(
        &h,
        "POST",
        "Consent",
        &objection(
            lily,
            "active",
            json!({"reference": format!("Patient/{lily}")}),
        ),
    )
    .await;
    assert_eq!(
        herself.status, 422,
        "a 10-year-old cannot object for herself: {}",
        herself.text
    );
    assert_eq!(outcome_issue(&herself)["code"], "business-rule");
    let mother =
        json!({"reference": "RelatedPerson/lily-mother", "display": "Mrs H Taylor (mother)"});
    let by_parent = send(&h, "POST", "Consent", &objection(lily, "active", mother)).await;
    assert_eq!(by_parent.status, 201, "{}", by_parent.text);
    assert_eq!(
        by_parent.fhir()["performer"][0]["display"],
        "Mrs H Taylor (mother)"
    );
    assert_eq!(h.get(&format!("Patient/{lily}")).await.status, 403);
    let himself = send(
        &h,
        "POST",
        "Consent",
        &objection(
            tom,
            "proposed",
            json!({"reference": format!("Patient/{tom}")}),
        ),
    )
    .await;
    assert_eq!(himself.status, 201, "a 14-year-old may: {}", himself.text);
    assert_eq!(h.get(&format!("Patient/{tom}")).await.status, 403);
    h.stop().await;
}
