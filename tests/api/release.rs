//! The release stage: every path judges a record by what it points at, fetched by
//! reference whatever was asked for, and withholds what cannot be judged. Each test
//! is one of the ways withheld records were shown before.

use serde_json::{Value, json};
use shcr_facade::sim::issuer::{Profile, TokenRequest};
use shcr_facade::sim::{Faults, PartnerData};

use crate::harness::*;

/// A patient of the tests' own, known to the GP (`P-q`) and the hospital (`MRN-q`).
const QUINN: &str = "9990000158";
const SCT: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";

fn subject(local: &str) -> Value {
    json!({"reference": format!("Patient/{local}")})
}

fn patient(local: &str) -> Value {
    json!({"resourceType": "Patient", "id": local,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": QUINN}],
        "name": [{"family": "Quinn", "given": ["Morgan"]}], "birthDate": "1980-02-02"})
}

fn observation(id: &str, system: &str, code: &str, date: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": subject("P-q"), "effectiveDateTime": date,
        "valueQuantity": {"value": 72, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}})
}

fn encounter(id: &str, local_patient: &str, date: &str) -> Value {
    json!({"resourceType": "Encounter", "id": id, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": subject(local_patient), "period": {"start": date}})
}

fn gum_encounter(id: &str, local_patient: &str, date: &str) -> Value {
    let mut gum = encounter(id, local_patient, date);
    gum["type"] = json!([{"coding": [{"system": SCT, "code": "431654006", "display": "Genitourinary medicine clinic"}]}]);
    gum
}

/// The example data, with Quinn's records added where `extra` says (GP, hospital).
fn data_with(extra: impl Fn(&str) -> Vec<Value>) -> impl Fn(&str) -> PartnerData {
    move |partner| {
        let mut data = PartnerData::load(&examples().join("data").join(partner)).unwrap();
        let records = extra(partner);
        if !records.is_empty() {
            data.add(patient(if partner == GP { "P-q" } else { "MRN-q" }));
        }
        for record in records {
            data.add(record);
        }
        data
    }
}

/// Every entry's facade id over all pages.
async fn all_ids(h: &Harness, path: &str, token: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(url) = next {
        let bundle = h.ok_as(&url, token).await;
        found.extend(ids(&bundle));
        next = link(&bundle, "next");
    }
    found
}

fn gp(id: &str) -> String {
    format!("{GP}.{id}")
}

#[tokio::test]
async fn everything_narrowed_by_type_or_by_scopes_judges_links_like_a_search() {
    let h = Harness::with_data(
        data_with(|partner| match partner {
            GP => {
                let mut a56 = encounter("enc-a56", "P-q", "2024-01-10");
                a56["reasonCode"] = json!([{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "A56.0"}]}]);
                let mut weight = observation("obs-weight", LOINC, "29463-7", "2024-01-10");
                weight["encounter"] = json!({"reference": "Encounter/enc-a56"});
                vec![a56, weight, observation("obs-bp", LOINC, "8480-6", "2024-02-01")]
            }
            _ => Vec::new(),
        }),
        |_| {},
    )
    .await;
    let clinician = h.token(Profile::Clinician);
    let observations_only = h.issuer.token(&TokenRequest {
        profile: Some(Profile::Clinician),
        scope: Some("user/Observation.rs user/Patient.rs".into()),
        ..TokenRequest::default()
    });
    for (path, token) in [
        (
            format!("Patient/{QUINN}/$everything?_type=Observation"),
            &clinician,
        ),
        (format!("Patient/{QUINN}/$everything"), &observations_only),
        (format!("Patient/{QUINN}/$everything"), &clinician),
        (format!("Observation?patient={QUINN}"), &clinician),
        (format!("Observation?patient={QUINN}"), &observations_only),
    ] {
        let shown = all_ids(&h, &path, token).await;
        assert!(shown.contains(&gp("obs-bp")), "{path}: {shown:?}");
        assert!(
            !shown.contains(&gp("obs-weight")),
            "{path} shows a reading taken in an A56.0 encounter"
        );
        assert!(!shown.contains(&gp("enc-a56")), "{path}");
    }
    for token in [&clinician, &observations_only] {
        let read = h
            .get_as(&format!("Observation/{}", gp("obs-weight")), token)
            .await;
        assert_eq!(read.status, 404);
    }
    h.stop().await;
}

#[tokio::test]
async fn a_long_record_is_judged_by_reference_beyond_any_page_cap() {
    let h = Harness::with_data(
        data_with(|partner| match partner {
            GP => {
                // 1,200 encounters; the oldest, a sexual health clinic visit, comes last
                // in the partner's answers, past the pages any search follows.
                let mut records: Vec<Value> = (1..1200)
                    .map(|i| encounter(&format!("enc-{i:04}"), "P-q", &format!("20{:02}-01-01", 10 + i % 14)))
                    .collect();
                records.push(gum_encounter("enc-0000", "P-q", "2009-06-01"));
                records.push(json!({"resourceType": "CarePlan", "id": "cp-old", "status": "completed", "intent": "plan",
                    "subject": subject("P-q"), "encounter": {"reference": "Encounter/enc-0000"},
                    "period": {"start": "2009-06-01"}, "title": "Follow-up"}));
                records.push(json!({"resourceType": "CarePlan", "id": "cp-new", "status": "active", "intent": "plan",
                    "subject": subject("P-q"), "encounter": {"reference": "Encounter/enc-0001"},
                    "period": {"start": "2023-01-01"}, "title": "Physiotherapy"}));
                records
            }
            _ => Vec::new(),
        }),
        |_| {},
    )
    .await;
    let clinician = h.token(Profile::Clinician);
    let care_plans = all_ids(&h, &format!("CarePlan?patient={QUINN}"), &clinician).await;
    assert_eq!(care_plans, [gp("cp-new")]);
    let everything = all_ids(
        &h,
        &format!("Patient/{QUINN}/$everything?_type=CarePlan,Patient"),
        &clinician,
    )
    .await;
    assert!(
        everything.contains(&gp("cp-new")) && !everything.contains(&gp("cp-old")),
        "{everything:?}"
    );
    assert_eq!(
        h.get(&format!("CarePlan/{}", gp("cp-old"))).await.status,
        404
    );
    h.stop().await;
}

#[tokio::test]
async fn links_to_types_partners_are_not_asked_for_are_judged() {
    let h = Harness::with_data(
        data_with(|partner| match partner {
            ACUTE => {
                let chlamydia = json!({"resourceType": "Condition", "id": "cond-chl", "subject": subject("MRN-q"),
                    "code": {"coding": [{"system": SCT, "code": "312099009"}]}, "recordedDate": "2023-03-01"});
                let mut visit = encounter("enc-reason", "MRN-q", "2023-03-01");
                visit["reasonReference"] = json!([{"reference": "Condition/cond-chl"}]);
                let treatment = json!({"resourceType": "MedicationStatement", "id": "ms-reason", "status": "completed",
                    "medicationCodeableConcept": {"text": "Doxycycline 100mg capsules"}, "subject": subject("MRN-q"),
                    "effectiveDateTime": "2023-03-01", "reasonReference": [{"reference": "Condition/cond-chl"}]});
                vec![chlamydia, visit, treatment, encounter("enc-plain", "MRN-q", "2023-05-01")]
            }
            GP => {
                let clinic_plan = json!({"resourceType": "CarePlan", "id": "cp-gum", "status": "active", "intent": "plan",
                    "subject": subject("P-q"), "category": [{"coding": [{"system": SCT, "code": "185180001"}]}]});
                let mut based = observation("obs-based", LOINC, "8480-6", "2024-01-01");
                based["basedOn"] = json!([{"reference": "CarePlan/cp-gum"}]);
                vec![clinic_plan, based]
            }
            _ => Vec::new(),
        }),
        |config| {
            // The hospital is not asked for Conditions: they are only pointed at.
            let acute = config.partners.iter_mut().find(|p| p.id == ACUTE).unwrap();
            acute.resource_types.retain(|t| t.as_str() != "Condition");
        },
    )
    .await;
    let encounters = all_ids(
        &h,
        &format!("Encounter?patient={QUINN}"),
        &h.token(Profile::Clinician),
    )
    .await;
    assert!(
        encounters.contains(&format!("{ACUTE}.enc-plain")),
        "{encounters:?}"
    );
    assert!(
        !encounters.contains(&format!("{ACUTE}.enc-reason")),
        "{encounters:?}"
    );
    let medications = all_ids(
        &h,
        &format!("MedicationStatement?patient={QUINN}"),
        &h.token(Profile::Clinician),
    )
    .await;
    assert!(
        !medications.contains(&format!("{ACUTE}.ms-reason")),
        "{medications:?}"
    );
    for read in [
        format!("Encounter/{ACUTE}.enc-reason"),
        format!("MedicationStatement/{ACUTE}.ms-reason"),
        format!("Observation/{}", gp("obs-based")),
    ] {
        assert_eq!(h.get(&read).await.status, 404, "{read}");
    }
    assert_eq!(
        h.get(&format!("Encounter/{ACUTE}.enc-plain")).await.status,
        200
    );
    h.stop().await;
}

#[tokio::test]
async fn a_partner_failing_while_links_are_resolved_withholds_only_what_it_could_not_check() {
    let h = Harness::with_data(
        data_with(|partner| match partner {
            GP => {
                let mut linked = observation("obs-linked", LOINC, "29463-7", "2024-01-10");
                linked["encounter"] = json!({"reference": "Encounter/enc-ok"});
                vec![encounter("enc-ok", "P-q", "2024-01-10"), linked, observation("obs-plain", LOINC, "8480-6", "2024-02-01")]
            }
            ACUTE => vec![json!({"resourceType": "Observation", "id": "obs-hospital", "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "718-7"}]}, "subject": subject("MRN-q"),
                "effectiveDateTime": "2024-03-01"})],
            _ => Vec::new(),
        }),
        |_| {},
    )
    .await;
    h.sim(GP).set_faults(Faults {
        fail_by_id: vec!["Encounter".into()],
        ..Faults::default()
    });
    let bundle = h.ok(&format!("Observation?patient={QUINN}")).await;
    let shown = ids(&bundle);
    assert!(shown.contains(&gp("obs-plain")), "{shown:?}");
    assert!(
        shown.contains(&format!("{ACUTE}.obs-hospital")),
        "the others' records intact"
    );
    assert!(
        !shown.contains(&gp("obs-linked")),
        "its encounter could not be checked"
    );
    let warning = warnings(&bundle)
        .into_iter()
        .find(|w| w.contains("could not be checked"))
        .expect("a warning");
    assert!(
        warning.contains("Riverside Medical Practice (A81001)"),
        "{warning}"
    );
    // Which organisation, never a category or how many.
    let without_ods = warning.replace("A81001", "");
    assert!(
        !without_ods.chars().any(|c| c.is_ascii_digit()),
        "{warning}"
    );
    assert!(!warning.contains("sexual"), "{warning}");
    assert_eq!(partner_status(&bundle, "A81001").as_deref(), Some("ok"));
    // The read answers as for an unknown id.
    let read = h.get(&format!("Observation/{}", gp("obs-linked"))).await;
    assert_eq!(read.status, 404);
    // The audit trail counts it apart from the policy's own withholdings.
    let trail = h
        .ok_as(
            &format!("AuditEvent?patient={QUINN}&_count=50"),
            &h.token(Profile::PrivacyOfficer),
        )
        .await;
    let search_event = entries(&trail)
        .into_iter()
        .find(|e| e["subtype"][0]["code"] == "search-type")
        .expect("the search's event");
    let details: Vec<(String, String)> = search_event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["detail"].as_array().cloned().unwrap_or_default())
        .map(|d| {
            (
                d["type"].as_str().unwrap_or_default().to_string(),
                d["valueString"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        details.contains(&("unjudged-count".into(), "1".into())),
        "{details:?}"
    );
    assert!(
        details.contains(&("withheld-count".into(), "0".into())),
        "{details:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn searches_narrowed_by_code_category_or_date_still_judge_every_link() {
    let h = Harness::with_data(
        data_with(|partner| match partner {
            GP => {
                let chlamydia = observation("obs-chl", SCT, "312099009", "2023-01-01");
                let mut systolic = observation("obs-sys", LOINC, "8480-6", "2023-01-02");
                systolic["derivedFrom"] = json!([{"reference": "Observation/obs-chl"}]);
                let mut vital = observation("obs-vital", LOINC, "8867-4", "2023-01-03");
                vital["category"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]);
                vital["hasMember"] = json!([{"reference": "Observation/obs-chl"}]);
                let mut follow_up = encounter("enc-follow", "P-q", "2024-05-01");
                follow_up["partOf"] = json!({"reference": "Encounter/enc-gum"});
                vec![
                    chlamydia,
                    systolic,
                    vital,
                    observation("obs-sys-ok", LOINC, "8480-6", "2023-02-02"),
                    gum_encounter("enc-gum", "P-q", "2019-04-01"),
                    follow_up,
                    encounter("enc-2024", "P-q", "2024-06-01"),
                ]
            }
            _ => Vec::new(),
        }),
        |_| {},
    )
    .await;
    let clinician = h.token(Profile::Clinician);
    for (path, kept, withheld) in [
        (
            format!("Observation?patient={QUINN}&code={LOINC}|8480-6"),
            "obs-sys-ok",
            "obs-sys",
        ),
        (
            format!("Observation?patient={QUINN}&category=vital-signs&_count=5"),
            "",
            "obs-vital",
        ),
        (
            format!("Encounter?patient={QUINN}&date=ge2024"),
            "enc-2024",
            "enc-follow",
        ),
    ] {
        let shown = all_ids(&h, &path, &clinician).await;
        if !kept.is_empty() {
            assert!(shown.contains(&gp(kept)), "{path}: {shown:?}");
        }
        assert!(!shown.contains(&gp(withheld)), "{path}: {shown:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_record_part_of_a_withheld_medication_statement_is_withheld() {
    let h = Harness::with_data(
        data_with(|partner| match partner {
            GP => {
                let prep = json!({"resourceType": "MedicationStatement", "id": "ms-prep", "status": "active",
                    "medicationCodeableConcept": {"text": "Emtricitabine/tenofovir 200mg/245mg tablets"},
                    "reasonCode": [{"coding": [{"system": SCT, "code": "8098009"}]}],
                    "subject": subject("P-q"), "effectiveDateTime": "2024-01-01"});
                let mut level = observation("obs-creatinine", LOINC, "2160-0", "2024-02-01");
                level["partOf"] = json!([{"reference": "MedicationStatement/ms-prep"}]);
                vec![prep, level, observation("obs-other", LOINC, "2951-2", "2024-02-01")]
            }
            _ => Vec::new(),
        }),
        |_| {},
    )
    .await;
    let shown = all_ids(
        &h,
        &format!("Observation?patient={QUINN}"),
        &h.token(Profile::Clinician),
    )
    .await;
    assert!(shown.contains(&gp("obs-other")));
    assert!(!shown.contains(&gp("obs-creatinine")), "{shown:?}");
    assert_eq!(
        h.get(&format!("Observation/{}", gp("obs-creatinine")))
            .await
            .status,
        404
    );
    let everything = all_ids(
        &h,
        &format!("Patient/{QUINN}/$everything"),
        &h.token(Profile::Clinician),
    )
    .await;
    assert!(!everything.contains(&gp("obs-creatinine")) && !everything.contains(&gp("ms-prep")));
    h.stop().await;
}

/// A code list of the deployer's: an RF2 refset naming concept 1234567001, and a
/// relationship snapshot in which 7654321001 is a kind of it.
pub fn write_code_lists(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let refset = dir.join("der2_Refset_SimpleSnapshot_GB1000000_20261001.txt");
    std::fs::write(
        &refset,
        "id\teffectiveTime\tactive\tmoduleId\trefsetId\treferencedComponentId\n\
         6b3e4a6e-0001\t20240401\t1\t999000011000000103\t999004381000000103\t1234567001\n\
         6b3e4a6e-0002\t20240401\t1\t999000011000000103\t999004381000000103\t2222222001\n\
         6b3e4a6e-0002\t20250401\t0\t999000011000000103\t999004381000000103\t2222222001\n",
    )
    .unwrap();
    let relationships = dir.join("sct2_Relationship_Snapshot_GB1000000_20261001.txt");
    std::fs::write(
        &relationships,
        "id\teffectiveTime\tactive\tmoduleId\tsourceId\tdestinationId\trelationshipGroup\ttypeId\tcharacteristicTypeId\tmodifierId\n\
         100001\t20240401\t1\t900000000000207008\t7654321001\t1234567001\t0\t116680003\t900000000000011006\t900000000000451002\n\
         100002\t20240401\t1\t900000000000207008\t8765432001\t7654321001\t0\t116680003\t900000000000011006\t900000000000451002\n",
    )
    .unwrap();
    (refset, relationships)
}

#[tokio::test]
async fn code_lists_and_descendants_loaded_from_configuration_are_withheld() {
    let dir = tempfile::tempdir().unwrap();
    let (refset, relationships) = write_code_lists(dir.path());
    let h = Harness::with_data(
        data_with(|partner| match partner {
            GP => vec![
                observation("obs-listed", SCT, "1234567001", "2024-01-01"),
                observation("obs-child", SCT, "7654321001", "2024-01-02"),
                observation("obs-grandchild", SCT, "8765432001", "2024-01-03"),
                observation("obs-retired", SCT, "2222222001", "2024-01-04"),
                observation("obs-ordinary", SCT, "271649006", "2024-01-05"),
            ],
            _ => Vec::new(),
        }),
        |config| {
            config.policy.code_lists = vec![shcr_facade::config::CodeListConfig {
                category: shcr_facade::policy::categories::SensitiveCategory::SexualHealth,
                file: refset.clone().into(),
            }];
            config.policy.snomed_relationships = Some(relationships.clone().into());
        },
    )
    .await;
    let shown = all_ids(
        &h,
        &format!("Observation?patient={QUINN}"),
        &h.token(Profile::Clinician),
    )
    .await;
    let mut shown: Vec<String> = shown.into_iter().filter(|id| id.starts_with(GP)).collect();
    shown.sort();
    // The member retired in a later release is shown again; every descendant is not.
    assert_eq!(shown, [gp("obs-ordinary"), gp("obs-retired")]);
    h.stop().await;
}
