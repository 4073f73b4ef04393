//! The whole record: problems, immunisations, reports and their results, referrals,
//! procedures, prescriptions, medicines, the GP practice and GP. Each type is
//! searched by every parameter it lists (honoured by the facade even where partners
//! ignore them, and sent to partners in their own ids), read, merged across partners
//! and paged; includes bring what matches point at, through the release stage.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use shcr_facade::sim::issuer::{Profile, TokenRequest};
use shcr_facade::sim::{Faults, PartnerData};

use crate::harness::*;

const QUINN: &str = "9990000158";
const SCT: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const V2_0074: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
const COND_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const COND_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const COND_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";

fn cc(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn reference(to: &str) -> Value {
    json!({"reference": to})
}

fn encounter(id: &str, patient: &str, date: &str) -> Value {
    json!({"resourceType": "Encounter", "id": id, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": reference(&format!("Patient/{patient}")), "period": {"start": date}})
}

fn condition(
    id: &str,
    patient: &str,
    code: &str,
    clinical: &str,
    verification: &str,
    category: &str,
) -> Value {
    json!({"resourceType": "Condition", "id": id,
        "clinicalStatus": cc(COND_CLINICAL, clinical), "verificationStatus": cc(COND_VERIFICATION, verification),
        "category": [cc(COND_CATEGORY, category)], "code": cc(SCT, code),
        "subject": reference(&format!("Patient/{patient}"))})
}

/// Quinn's records: two of each new type that differ in every parameter, at the GP
/// (`P-q`) and the hospital (`MRN-q`), and one more of some at the other partner.
fn quinn(partner: &str) -> Vec<Value> {
    let patient = |local: &str| {
        json!({"resourceType": "Patient", "id": local,
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": QUINN}],
            "name": [{"family": "Quinn", "given": ["Morgan"]}], "birthDate": "1980-02-02"})
    };
    match partner {
        GP => {
            let mut cond_a = condition(
                "cond-a",
                "P-q",
                "44054006",
                "active",
                "confirmed",
                "problem-list-item",
            );
            cond_a["onsetDateTime"] = json!("2019-03-14");
            cond_a["recordedDate"] = json!("2019-03-20");
            cond_a["encounter"] = reference("Encounter/enc-1");
            let mut cond_b = condition(
                "cond-b",
                "P-q",
                "195967001",
                "inactive",
                "unconfirmed",
                "encounter-diagnosis",
            );
            cond_b["onsetDateTime"] = json!("2005-01-20");
            cond_b["recordedDate"] = json!("2006-01-01");
            cond_b["abatementDateTime"] = json!("2010-01-01");
            cond_b["encounter"] = reference("Encounter/enc-2");
            vec![
                patient("P-q"),
                encounter("enc-1", "P-q", "2024-01-10"),
                encounter("enc-2", "P-q", "2023-01-10"),
                cond_a,
                cond_b,
                json!({"resourceType": "Immunization", "id": "imm-a", "status": "completed",
                    "vaccineCode": cc(SCT, "1181000221105"), "patient": reference("Patient/P-q"),
                    "occurrenceDateTime": "2024-10-04"}),
                json!({"resourceType": "Immunization", "id": "imm-b", "status": "not-done",
                    "statusReason": cc(SCT, "591000119102"), "vaccineCode": cc(SCT, "1119349007"),
                    "patient": reference("Patient/P-q"), "occurrenceDateTime": "2023-10-01"}),
                json!({"resourceType": "Medication", "id": "med-x", "code": cc(SCT, "319283006")}),
                json!({"resourceType": "MedicationRequest", "id": "rx-a", "status": "active", "intent": "order",
                    "medicationReference": reference("Medication/med-x"), "subject": reference("Patient/P-q"),
                    "authoredOn": "2024-09-01", "encounter": reference("Encounter/enc-1")}),
                json!({"resourceType": "MedicationRequest", "id": "rx-b", "status": "stopped", "intent": "plan",
                    "medicationCodeableConcept": cc(SCT, "320000009"), "subject": reference("Patient/P-q"),
                    "authoredOn": "2023-01-01"}),
                json!({"resourceType": "MedicationStatement", "id": "ms-a", "status": "active",
                    "medicationReference": reference("Medication/med-x"), "subject": reference("Patient/P-q"),
                    "effectiveDateTime": "2024-09-02"}),
            ]
        }
        ACUTE => {
            let observation = |id: &str, encounter: Option<&str>, code: &str| {
                let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
                    "code": cc(SCT, code), "subject": reference("Patient/MRN-q"), "effectiveDateTime": "2024-05-18"});
                if let Some(e) = encounter {
                    o["encounter"] = reference(&format!("Encounter/{e}"));
                }
                o
            };
            let mut enc_h = encounter("enc-h", "MRN-q", "2024-02-01");
            enc_h["participant"] = json!([{"individual": reference("Practitioner/dr-hughes")}]);
            let mut enc_s = encounter("enc-s", "MRN-q", "2024-03-01");
            enc_s["serviceProvider"] = reference("Organization/org-gum");
            let mut cond_h = condition(
                "cond-h",
                "MRN-q",
                "38341003",
                "active",
                "confirmed",
                "problem-list-item",
            );
            cond_h["onsetDateTime"] = json!("2015-06-01");
            vec![
                patient("MRN-q"),
                enc_h,
                enc_s,
                json!({"resourceType": "Practitioner", "id": "dr-hughes", "name": [{"family": "Hughes"}]}),
                json!({"resourceType": "Organization", "id": "org-gum", "name": "Northgate sexual health clinic",
                    "type": [cc(SCT, "431654006")]}),
                observation("obs-r1", Some("enc-h"), "271649006"),
                observation("obs-r2", None, "271650006"),
                observation("obs-chl", None, "312099009"),
                cond_h,
                json!({"resourceType": "DiagnosticReport", "id": "rep-a", "status": "final",
                    "category": [cc(V2_0074, "CUS")], "code": cc(LOINC, "11524-6"), "subject": reference("Patient/MRN-q"),
                    "effectiveDateTime": "2024-05-18", "issued": "2024-05-18T17:00:00Z",
                    "result": [reference("Observation/obs-r1")], "encounter": reference("Encounter/enc-h")}),
                json!({"resourceType": "DiagnosticReport", "id": "rep-b", "status": "preliminary",
                    "category": [cc(V2_0074, "LAB")], "code": cc(LOINC, "24323-8"), "subject": reference("Patient/MRN-q"),
                    "effectiveDateTime": "2023-01-01", "issued": "2023-01-02T09:00:00Z",
                    "result": [reference("Observation/obs-r2")]}),
                json!({"resourceType": "DiagnosticReport", "id": "rep-c", "status": "final",
                    "category": [cc(V2_0074, "LAB")], "code": cc(LOINC, "24323-8"), "subject": reference("Patient/MRN-q"),
                    "effectiveDateTime": "2023-06-01", "result": [reference("Observation/obs-chl")]}),
                json!({"resourceType": "ServiceRequest", "id": "ref-a", "status": "active", "intent": "order",
                    "category": [cc(SCT, "3457005")], "code": cc(SCT, "183314002"), "subject": reference("Patient/MRN-q"),
                    "authoredOn": "2024-05-21", "requester": reference("Practitioner/dr-hughes"),
                    "encounter": reference("Encounter/enc-h")}),
                json!({"resourceType": "ServiceRequest", "id": "ref-b", "status": "completed", "intent": "plan",
                    "category": [cc(SCT, "409063005")], "code": cc(SCT, "306106000"), "subject": reference("Patient/MRN-q"),
                    "authoredOn": "2023-01-01"}),
                json!({"resourceType": "Procedure", "id": "proc-a", "status": "completed",
                    "category": cc(SCT, "387713003"), "code": cc(SCT, "33367005"), "subject": reference("Patient/MRN-q"),
                    "performedDateTime": "2024-05-19T10:00:00Z", "encounter": reference("Encounter/enc-h")}),
                json!({"resourceType": "Procedure", "id": "proc-b", "status": "in-progress",
                    "category": cc(SCT, "46947000"), "code": cc(SCT, "26517008"), "subject": reference("Patient/MRN-q"),
                    "performedDateTime": "2023-08-12T21:00:00Z"}),
                json!({"resourceType": "Immunization", "id": "imm-h", "status": "completed",
                    "vaccineCode": cc(SCT, "34689006"), "patient": reference("Patient/MRN-q"),
                    "occurrenceDateTime": "2022-07-06"}),
                json!({"resourceType": "MedicationRequest", "id": "rx-h", "status": "active", "intent": "order",
                    "medicationCodeableConcept": cc(SCT, "325173008"), "subject": reference("Patient/MRN-q"),
                    "authoredOn": "2022-07-08"}),
            ]
        }
        _ => Vec::new(),
    }
}

fn data(partner: &str) -> PartnerData {
    let mut data = PartnerData::load(&examples().join("data").join(partner)).unwrap();
    for record in quinn(partner) {
        data.add(record);
    }
    data
}

fn gp(id: &str) -> String {
    format!("{GP}.{id}")
}

fn acute(id: &str) -> String {
    format!("{ACUTE}.{id}")
}

/// Every match's facade id over all pages.
async fn matches(h: &Harness, path: &str) -> BTreeSet<String> {
    let mut found = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(url) = next {
        let bundle = h.ok(&url).await;
        found.extend(ids(&bundle));
        next = link(&bundle, "next");
    }
    let distinct: BTreeSet<String> = found.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        found.len(),
        "{path}: a record twice in {found:?}"
    );
    distinct
}

/// `(search, expected facade ids)` for every parameter each new type lists.
fn cases() -> Vec<(String, Vec<String>)> {
    let q = |rest: &str| format!("patient={QUINN}{rest}");
    let set = |ids: &[String]| ids.to_vec();
    vec![
        // Condition: no `date` in R4; onset-date, recorded-date, abatement-date.
        (
            format!("Condition?{}", q("")),
            set(&[gp("cond-a"), gp("cond-b"), acute("cond-h")]),
        ),
        (
            format!("Condition?subject=Patient/{QUINN}"),
            set(&[gp("cond-a"), gp("cond-b"), acute("cond-h")]),
        ),
        (
            format!("Condition?{}", q(&format!("&code={SCT}|44054006"))),
            set(&[gp("cond-a")]),
        ),
        (
            format!("Condition?{}", q("&clinical-status=inactive")),
            set(&[gp("cond-b")]),
        ),
        (
            format!("Condition?{}", q("&verification-status=unconfirmed")),
            set(&[gp("cond-b")]),
        ),
        (
            format!("Condition?{}", q("&category=encounter-diagnosis")),
            set(&[gp("cond-b")]),
        ),
        (
            format!("Condition?{}", q("&onset-date=ge2010")),
            set(&[gp("cond-a"), acute("cond-h")]),
        ),
        (
            format!("Condition?{}", q("&recorded-date=lt2010")),
            set(&[gp("cond-b")]),
        ),
        (
            format!("Condition?{}", q("&abatement-date=2010")),
            set(&[gp("cond-b")]),
        ),
        (
            format!(
                "Condition?{}",
                q(&format!("&encounter=Encounter/{}", gp("enc-1")))
            ),
            set(&[gp("cond-a")]),
        ),
        // Immunization: vaccine-code, date (occurrence), status, status-reason.
        (
            format!("Immunization?{}", q("")),
            set(&[gp("imm-a"), gp("imm-b"), acute("imm-h")]),
        ),
        (
            format!(
                "Immunization?{}",
                q(&format!("&vaccine-code={SCT}|1181000221105"))
            ),
            set(&[gp("imm-a")]),
        ),
        (
            format!("Immunization?{}", q("&date=2024")),
            set(&[gp("imm-a")]),
        ),
        (
            format!("Immunization?{}", q("&status=not-done")),
            set(&[gp("imm-b")]),
        ),
        (
            format!(
                "Immunization?{}",
                q(&format!("&status-reason={SCT}|591000119102"))
            ),
            set(&[gp("imm-b")]),
        ),
        // DiagnosticReport (rep-c points at a withheld result: never shown).
        (
            format!("DiagnosticReport?{}", q("")),
            set(&[acute("rep-a"), acute("rep-b")]),
        ),
        (
            format!("DiagnosticReport?subject={QUINN}"),
            set(&[acute("rep-a"), acute("rep-b")]),
        ),
        (
            format!("DiagnosticReport?{}", q(&format!("&code={LOINC}|11524-6"))),
            set(&[acute("rep-a")]),
        ),
        (
            format!(
                "DiagnosticReport?{}",
                q(&format!("&category={V2_0074}|CUS"))
            ),
            set(&[acute("rep-a")]),
        ),
        (
            format!("DiagnosticReport?{}", q("&date=2023")),
            set(&[acute("rep-b")]),
        ),
        (
            format!("DiagnosticReport?{}", q("&issued=ge2024")),
            set(&[acute("rep-a")]),
        ),
        (
            format!("DiagnosticReport?{}", q("&status=preliminary")),
            set(&[acute("rep-b")]),
        ),
        (
            format!(
                "DiagnosticReport?{}",
                q(&format!("&result=Observation/{}", acute("obs-r1")))
            ),
            set(&[acute("rep-a")]),
        ),
        (
            format!(
                "DiagnosticReport?{}",
                q(&format!("&encounter=Encounter/{}", acute("enc-h")))
            ),
            set(&[acute("rep-a")]),
        ),
        // ServiceRequest: authored, not date.
        (
            format!("ServiceRequest?{}", q("")),
            set(&[acute("ref-a"), acute("ref-b")]),
        ),
        (
            format!("ServiceRequest?subject=Patient/{QUINN}"),
            set(&[acute("ref-a"), acute("ref-b")]),
        ),
        (
            format!("ServiceRequest?{}", q(&format!("&code={SCT}|183314002"))),
            set(&[acute("ref-a")]),
        ),
        (
            format!("ServiceRequest?{}", q(&format!("&category={SCT}|3457005"))),
            set(&[acute("ref-a")]),
        ),
        (
            format!("ServiceRequest?{}", q("&authored=2023")),
            set(&[acute("ref-b")]),
        ),
        (
            format!("ServiceRequest?{}", q("&status=completed")),
            set(&[acute("ref-b")]),
        ),
        (
            format!("ServiceRequest?{}", q("&intent=plan")),
            set(&[acute("ref-b")]),
        ),
        (
            format!(
                "ServiceRequest?{}",
                q(&format!("&requester=Practitioner/{}", acute("dr-hughes")))
            ),
            set(&[acute("ref-a")]),
        ),
        (
            format!(
                "ServiceRequest?{}",
                q(&format!("&encounter=Encounter/{}", acute("enc-h")))
            ),
            set(&[acute("ref-a")]),
        ),
        // Procedure: date is when performed.
        (
            format!("Procedure?{}", q("")),
            set(&[acute("proc-a"), acute("proc-b")]),
        ),
        (
            format!("Procedure?subject={QUINN}"),
            set(&[acute("proc-a"), acute("proc-b")]),
        ),
        (
            format!("Procedure?{}", q(&format!("&code={SCT}|33367005"))),
            set(&[acute("proc-a")]),
        ),
        (
            format!("Procedure?{}", q("&date=2023")),
            set(&[acute("proc-b")]),
        ),
        (
            format!("Procedure?{}", q("&status=in-progress")),
            set(&[acute("proc-b")]),
        ),
        (
            format!("Procedure?{}", q(&format!("&category={SCT}|387713003"))),
            set(&[acute("proc-a")]),
        ),
        (
            format!(
                "Procedure?{}",
                q(&format!("&encounter=Encounter/{}", acute("enc-h")))
            ),
            set(&[acute("proc-a")]),
        ),
        // MedicationRequest: authoredon; code is a coded medicine, medication a Medication.
        (
            format!("MedicationRequest?{}", q("")),
            set(&[gp("rx-a"), gp("rx-b"), acute("rx-h")]),
        ),
        (
            format!("MedicationRequest?subject=Patient/{QUINN}"),
            set(&[gp("rx-a"), gp("rx-b"), acute("rx-h")]),
        ),
        (
            format!("MedicationRequest?{}", q(&format!("&code={SCT}|320000009"))),
            set(&[gp("rx-b")]),
        ),
        (
            format!("MedicationRequest?{}", q("&authoredon=ge2024")),
            set(&[gp("rx-a")]),
        ),
        (
            format!("MedicationRequest?{}", q("&status=stopped")),
            set(&[gp("rx-b")]),
        ),
        (
            format!("MedicationRequest?{}", q("&intent=plan")),
            set(&[gp("rx-b")]),
        ),
        (
            format!(
                "MedicationRequest?{}",
                q(&format!("&medication=Medication/{}", gp("med-x")))
            ),
            set(&[gp("rx-a")]),
        ),
        (
            format!(
                "MedicationRequest?{}",
                q(&format!("&encounter=Encounter/{}", gp("enc-1")))
            ),
            set(&[gp("rx-a")]),
        ),
        // Directory records: by _id, identifier, name, code; roles by who and where.
        (
            format!("Medication?_id={}", gp("med-x")),
            set(&[gp("med-x")]),
        ),
        (
            format!("Medication?code={SCT}|319283006"),
            set(&[gp("med-x"), gp("medication-amlodipine")]),
        ),
        (
            "Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|A81001".into(),
            set(&[gp("riverside")]),
        ),
        (
            "Organization?name=Riverside".into(),
            set(&[gp("riverside")]),
        ),
        (
            format!("Organization?_id={}", gp("riverside")),
            set(&[gp("riverside")]),
        ),
        (
            "Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id|G8133438".into(),
            set(&[gp("dr-okafor")]),
        ),
        ("Practitioner?name=Okafor".into(), set(&[gp("dr-okafor")])),
        (
            format!("Practitioner?_id={}", acute("dr-hughes")),
            set(&[acute("dr-hughes")]),
        ),
        (
            "PractitionerRole?identifier=https://fhir.nhs.uk/Id/sds-role-profile-id|100192515119"
                .into(),
            set(&[gp("role-okafor")]),
        ),
        (
            format!(
                "PractitionerRole?practitioner=Practitioner/{}",
                gp("dr-okafor")
            ),
            set(&[gp("role-okafor")]),
        ),
        (
            format!(
                "PractitionerRole?organization=Organization/{}",
                gp("riverside")
            ),
            set(&[gp("role-okafor")]),
        ),
    ]
}

#[tokio::test]
async fn every_new_type_is_searched_by_each_of_its_parameters() {
    let h = Harness::with_data(data, |_| {}).await;
    for (path, expected) in cases() {
        let expected: BTreeSet<String> = expected.into_iter().collect();
        assert_eq!(matches(&h, &path).await, expected, "{path}");
    }
    // The same when partners ignore every parameter but the patient: the facade
    // applies each one itself.
    h.set_faults_everywhere(Faults {
        ignore_criteria: true,
        ..Faults::default()
    });
    for (path, expected) in cases() {
        let expected: BTreeSet<String> = expected.into_iter().collect();
        assert_eq!(
            matches(&h, &path).await,
            expected,
            "{path}, partners ignoring parameters"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn parameters_reach_partners_in_their_own_ids_and_names() {
    let h = Harness::with_data(data, |_| {}).await;
    h.ok(&format!(
        "Condition?patient={QUINN}&encounter=Encounter/{}&onset-date=ge2010",
        gp("enc-1")
    ))
    .await;
    let sent = partner_queries(h.sim(GP), "/Condition");
    let query = sent.last().expect("the GP was asked");
    assert!(
        query.contains(&("encounter".into(), "Encounter/enc-1".into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("onset-date".into(), "ge2010".into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("patient".into(), "P-q".into())),
        "{query:?}"
    );
    // A reference to the GP's record is not the hospital's to match: it is not asked.
    assert!(partner_queries(h.sim(ACUTE), "/Condition").is_empty());
    h.ok(&format!(
        "MedicationRequest?patient={QUINN}&authoredon=ge2024&intent=order"
    ))
    .await;
    let query = partner_queries(h.sim(GP), "/MedicationRequest")
        .pop()
        .unwrap();
    assert!(
        query.contains(&("authoredon".into(), "ge2024".into())),
        "{query:?}"
    );
    h.ok(&format!(
        "Immunization?patient={QUINN}&vaccine-code={SCT}|1181000221105"
    ))
    .await;
    let query = partner_queries(h.sim(GP), "/Immunization").pop().unwrap();
    assert!(
        query.contains(&("vaccine-code".into(), format!("{SCT}|1181000221105"))),
        "{query:?}"
    );
    // R4 names, not look-alikes: Condition has no `date`, ServiceRequest no `authoredon`.
    for (path, param) in [
        (format!("Condition?patient={QUINN}&date=2020"), "date"),
        (
            format!("ServiceRequest?patient={QUINN}&authoredon=2020"),
            "authoredon",
        ),
        (format!("Immunization?patient={QUINN}&code={SCT}|1"), "code"),
    ] {
        let strict = h.get_with(&path, &[("prefer", "handling=strict")]).await;
        assert_eq!(strict.status, 400, "{path}");
        assert_eq!(outcome_issue(&strict)["expression"][0], param);
    }
    h.stop().await;
}

#[tokio::test]
async fn new_types_are_read_merged_paged_and_in_everything() {
    let h = Harness::with_data(data, |_| {}).await;
    for read in [
        format!("Condition/{}", gp("cond-a")),
        format!("Immunization/{}", gp("imm-a")),
        format!("DiagnosticReport/{}", acute("rep-a")),
        format!("ServiceRequest/{}", acute("ref-a")),
        format!("Procedure/{}", acute("proc-a")),
        format!("MedicationRequest/{}", gp("rx-a")),
        format!("Medication/{}", gp("med-x")),
        format!("Practitioner/{}", acute("dr-hughes")),
    ] {
        let resource = h.ok(&read).await;
        assert_eq!(
            format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            ),
            read
        );
    }
    // Merged across partners, newest first by each type's clinical date, one a page.
    let first = h.ok(&format!("Condition?patient={QUINN}&_count=1")).await;
    assert_eq!(first["total"], 3);
    let paged: Vec<String> = {
        let mut all = ids(&first);
        let mut next = link(&first, "next");
        while let Some(url) = next {
            let page = h.ok(&url).await;
            all.extend(ids(&page));
            next = link(&page, "next");
        }
        all
    };
    assert_eq!(
        paged,
        [gp("cond-a"), acute("cond-h"), gp("cond-b")],
        "by onset date, newest first"
    );
    let everything = h
        .ok(&format!("Patient/{QUINN}/$everything?_count=200"))
        .await;
    let types: BTreeSet<String> = entries(&everything)
        .iter()
        .map(|r| r["resourceType"].as_str().unwrap().to_string())
        .collect();
    for t in [
        "Condition",
        "Immunization",
        "DiagnosticReport",
        "ServiceRequest",
        "Procedure",
        "MedicationRequest",
    ] {
        assert!(types.contains(t), "{t} in $everything: {types:?}");
    }
    let included: Vec<String> = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        included.contains(&format!("Medication/{}", gp("med-x"))),
        "{included:?}"
    );
    assert!(
        included.contains(&format!("Practitioner/{}", acute("dr-hughes"))),
        "{included:?}"
    );
    assert!(
        !ids(&everything).contains(&acute("rep-c")),
        "a report whose result is withheld"
    );
    assert!(
        !included.iter().any(|i| i.contains("org-gum")),
        "a sexual health clinic's Organization"
    );
    h.stop().await;
}

fn included(bundle: &Value) -> BTreeSet<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn includes_bring_what_matches_point_at_through_the_release_stage() {
    let h = Harness::with_data(data, |_| {}).await;
    let set = |ids: &[String]| ids.iter().cloned().collect::<BTreeSet<String>>();
    for (path, expected) in [
        (
            format!("MedicationRequest?patient={QUINN}&_include=MedicationRequest:medication"),
            set(&[gp("med-x")]),
        ),
        (
            format!("MedicationStatement?patient={QUINN}&_include=MedicationStatement:medication"),
            set(&[gp("med-x")]),
        ),
        (
            format!("DiagnosticReport?patient={QUINN}&_include=DiagnosticReport:result"),
            set(&[acute("obs-r1"), acute("obs-r2")]),
        ),
        (
            format!("Condition?patient={QUINN}&_include=Condition:encounter"),
            set(&[gp("enc-1"), gp("enc-2")]),
        ),
        (
            format!("Encounter?patient={QUINN}&_include=Encounter:participant"),
            set(&[acute("dr-hughes")]),
        ),
        (
            format!("Patient?_id={ALICE}&_include=Patient:general-practitioner"),
            set(&[gp("riverside"), gp("dr-okafor")]),
        ),
        (
            format!("Encounter?patient={QUINN}&_revinclude=Observation:encounter"),
            set(&[acute("obs-r1")]),
        ),
        (
            format!(
                "DiagnosticReport?patient={QUINN}&_include=DiagnosticReport:result&_include:iterate=Observation:encounter"
            ),
            set(&[acute("obs-r1"), acute("obs-r2"), acute("enc-h")]),
        ),
        (
            format!(
                "PractitionerRole?_id={}&_include=PractitionerRole:organization",
                gp("role-okafor")
            ),
            set(&[gp("riverside")]),
        ),
    ] {
        let bundle = h.ok(&path).await;
        assert_eq!(included(&bundle), expected, "{path}");
        // Included records are not matches: the total and page size count matches only.
        assert_eq!(
            bundle["total"].as_u64().unwrap() as usize,
            ids(&bundle).len(),
            "{path}"
        );
    }
    // An encounter whose provider is a sexual health clinic is withheld, and the
    // clinic's Organization with it; the report whose result is withheld too.
    let encounters = h
        .ok(&format!(
            "Encounter?patient={QUINN}&_include=Encounter:service-provider"
        ))
        .await;
    assert!(!ids(&encounters).contains(&acute("enc-s")));
    assert!(!encounters.to_string().contains("org-gum"));
    assert_eq!(
        h.get(&format!("Organization/{}", acute("org-gum")))
            .await
            .status,
        404
    );
    assert!(
        !matches(&h, "Organization?name=Northgate")
            .await
            .contains(&acute("org-gum"))
    );
    let reports = h
        .ok(&format!(
            "DiagnosticReport?patient={QUINN}&_include=DiagnosticReport:result"
        ))
        .await;
    assert!(!reports.to_string().contains("obs-chl"));
    // An include that does not apply: 400, or a warning when lenient.
    let path = format!("Condition?patient={QUINN}&_include=MedicationRequest:medication");
    let lenient = h.get_with(&path, &[("prefer", "handling=lenient")]).await;
    assert_eq!(lenient.status, 200);
    assert!(
        warnings(&lenient.fhir())
            .iter()
            .any(|w| w.contains("_include")),
        "{:?}",
        warnings(&lenient.fhir())
    );
    let strict = h.get(&path).await;
    assert_eq!(strict.status, 400);
    h.stop().await;
}

#[tokio::test]
async fn the_gp_practice_and_gp_resolve_and_are_readable() {
    let h = Harness::start().await;
    let patient = h.ok(&format!("Patient/{ALICE}")).await;
    let gps: Vec<&str> = patient["generalPractitioner"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        gps,
        [
            format!("Organization/{}", gp("riverside")),
            format!("Practitioner/{}", gp("dr-okafor"))
        ]
    );
    assert_eq!(
        patient["managingOrganization"]["reference"],
        format!("Organization/{}", gp("riverside"))
    );
    let app = h.issuer.token(&TokenRequest {
        profile: Some(Profile::SmartApp),
        patient: Some(ALICE.into()),
        ..TokenRequest::default()
    });
    for (reference, token) in gps
        .iter()
        .map(|r| (r, h.token(Profile::Clinician)))
        .chain(gps.iter().map(|r| (r, app.clone())))
    {
        let resource = h.ok_as(reference, &token).await;
        assert_eq!(
            format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            ),
            *reference
        );
    }
    let practice = h.ok(gps[0]).await;
    assert_eq!(practice["identifier"][0]["value"], "A81001");
    h.stop().await;
}

#[tokio::test]
async fn a_sensitive_condition_and_procedure_and_what_points_at_them_are_withheld_everywhere() {
    let h = Harness::start().await;
    const BRIAN: &str = "9990000026";
    const FARAH: &str = "9990000069";
    const SAM: &str = "9990000077";
    let withheld = [
        (BRIAN, "Condition", acute("cond-brian-syphilis")),
        (BRIAN, "Encounter", acute("enc-brian-review")),
        (FARAH, "Procedure", acute("proc-farah-top")),
        (FARAH, "Observation", acute("obs-farah-hb-post")),
        (FARAH, "DiagnosticReport", acute("rep-farah-fbc")),
        (SAM, "Condition", gp("cond-sam-dysphoria")),
        (SAM, "MedicationRequest", gp("rx-sam-testosterone")),
    ];
    for (nhs, resource_type, id) in &withheld {
        let searched = matches(&h, &format!("{resource_type}?patient={nhs}")).await;
        assert!(!searched.contains(id), "{resource_type} search shows {id}");
        let everything = h.ok(&format!("Patient/{nhs}/$everything?_count=200")).await;
        assert!(
            !everything
                .to_string()
                .contains(id.split('.').nth(1).unwrap()),
            "$everything shows {id}"
        );
        let read = h.get(&format!("{resource_type}/{id}")).await;
        assert_eq!(read.status, 404, "read of {id}");
    }
    // What does not point at them is shown.
    assert!(
        matches(&h, &format!("DiagnosticReport?patient={FARAH}"))
            .await
            .contains(&acute("rep-farah-preop"))
    );
    assert!(
        matches(&h, &format!("Condition?patient={SAM}"))
            .await
            .contains(&gp("cond-sam-asthma"))
    );
    let reports = h
        .ok(&format!(
            "DiagnosticReport?patient={FARAH}&_include=DiagnosticReport:result"
        ))
        .await;
    assert!(!reports.to_string().contains("obs-farah-hb-post"));
    h.stop().await;
}
