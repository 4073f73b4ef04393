//! Every search parameter is translated for partners and honoured in the answer.

use crate::harness::*;

fn count(bundle: &serde_json::Value) -> usize {
    ids(bundle).len()
}

#[tokio::test]
async fn observations_from_three_partners_are_merged_newest_first() {
    let h = Harness::start().await;
    let bundle = h
        .ok(&format!("Observation?patient=Patient/{ALICE}&_count=100"))
        .await;
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["total"], 27); // 13 GP + 8 hospital + 6 community
    let resources = entries(&bundle);
    let prefixes: std::collections::BTreeSet<&str> = resources
        .iter()
        .map(|r| r["id"].as_str().unwrap().split('.').next().unwrap())
        .collect();
    assert_eq!(
        prefixes.into_iter().collect::<Vec<_>>(),
        [ACUTE, GP, COMMUNITY]
    );
    let dates: Vec<&str> = resources
        .iter()
        .map(|r| r["effectiveDateTime"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "newest first");
    for r in &resources {
        assert_eq!(r["subject"]["reference"], format!("Patient/{ALICE}"));
        let full_url = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["id"] == r["id"])
            .unwrap()["fullUrl"]
            .clone();
        assert_eq!(
            full_url,
            format!("{}/Observation/{}", h.base, r["id"].as_str().unwrap())
        );
    }
    // Every partner consulted is reported.
    for ods in ["A81001", "RX1", "RY2"] {
        assert_eq!(partner_status(&bundle, ods).as_deref(), Some("ok"), "{ods}");
    }
    assert!(warnings(&bundle).is_empty(), "{:?}", warnings(&bundle));
    h.stop().await;
}

#[tokio::test]
async fn patient_is_translated_to_each_partners_own_id() {
    let h = Harness::start().await;
    h.ok(&format!(
        "Observation?subject={ALICE}&code=http://loinc.org|8480-6"
    ))
    .await;
    for (partner, local) in [(GP, "P1001"), (ACUTE, "MRN100234"), (COMMUNITY, "C-0007")] {
        let queries = partner_queries(h.sim(partner), "/Observation");
        assert_eq!(queries.len(), 1, "{partner}");
        let q = &queries[0];
        assert!(
            q.contains(&("patient".into(), local.into())),
            "{partner}: {q:?}"
        );
        assert!(
            q.contains(&("code".into(), "http://loinc.org|8480-6".into())),
            "{partner}: {q:?}"
        );
        let identity = partner_queries(h.sim(partner), "/Patient");
        assert_eq!(
            identity[0],
            vec![
                (
                    "identifier".to_string(),
                    format!("https://fhir.nhs.uk/Id/nhs-number|{ALICE}")
                ),
                ("_count".into(), "100".into())
            ]
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn only_partners_that_know_the_patient_are_asked() {
    let h = Harness::start().await;
    // Chloe is registered at the GP only.
    let bundle = h.ok("Observation?patient=9990000034").await;
    assert_eq!(
        count(&bundle),
        1,
        "her peak flow; the chlamydia result is never shared"
    );
    assert_eq!(
        partner_status(&bundle, "RX1").as_deref(),
        Some("patient-not-known")
    );
    assert!(partner_queries(h.sim(ACUTE), "/Observation").is_empty());
    assert!(partner_queries(h.sim(COMMUNITY), "/Observation").is_empty());
    h.stop().await;
}

#[tokio::test]
async fn token_parameters_code_category_status() {
    let h = Harness::start().await;
    let q = |rest: &str| format!("Observation?patient={ALICE}&_count=100&{rest}");
    assert_eq!(count(&h.ok(&q("code=http://loinc.org|8480-6")).await), 12);
    assert_eq!(count(&h.ok(&q("code=8867-4")).await), 8);
    assert_eq!(
        count(&h.ok(&q("code=|8867-4")).await),
        0,
        "|code means no system"
    );
    assert_eq!(count(&h.ok(&q("code=http://loinc.org|")).await), 27);
    assert_eq!(
        count(&h.ok(&q("code=8867-4,29463-7")).await),
        14,
        "comma is OR"
    );
    assert_eq!(count(&h.ok(&q("category=laboratory")).await), 1);
    assert_eq!(
        count(
            &h.ok(&q(
                "category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
            ))
            .await
        ),
        26
    );
    assert_eq!(count(&h.ok(&q("status=final")).await), 27);
    assert_eq!(count(&h.ok(&q("status=preliminary")).await), 0);
    let meds = h
        .ok(&format!(
            "MedicationStatement?patient={ALICE}&status=active"
        ))
        .await;
    assert_eq!(count(&meds), 3, "paracetamol is completed");
    let meds = h
        .ok(&format!(
            "MedicationStatement?patient={ALICE}&code=http://snomed.info/sct|319283006"
        ))
        .await;
    assert_eq!(ids(&meds), [format!("{GP}.med-alice-amlodipine")]);
    let allergies = h
        .ok(&format!(
            "AllergyIntolerance?patient={ALICE}&clinical-status=active&category=environment"
        ))
        .await;
    assert_eq!(ids(&allergies), [format!("{ACUTE}.alg-alice-latex")]);
    h.stop().await;
}

#[tokio::test]
async fn date_prefixes_and_partial_dates() {
    let h = Harness::start().await;
    let q = |rest: &str| format!("Observation?patient={ALICE}&_count=100&{rest}");
    assert_eq!(count(&h.ok(&q("date=ge2024-06")).await), 12); // 7 BP + 5 heart rate
    assert_eq!(count(&h.ok(&q("date=2024-03")).await), 2);
    assert_eq!(count(&h.ok(&q("date=eq2024-03-10")).await), 1);
    assert_eq!(count(&h.ok(&q("date=lt2024")).await), 6); // the 2023 weights
    assert_eq!(count(&h.ok(&q("date=ne2024")).await), 6);
    assert_eq!(count(&h.ok(&q("date=le2023-03-05")).await), 2);
    assert_eq!(count(&h.ok(&q("date=gt2024-10-21")).await), 2); // BP Nov, Dec
    assert_eq!(
        count(&h.ok(&q("date=ge2024-01&date=lt2024-02")).await),
        1,
        "repeated is AND"
    );
    // eq: the encounter's period lies wholly inside May; a day inside the stay is not enough.
    let encounters = h
        .ok(&format!("Encounter?patient={ALICE}&date=2024-05"))
        .await;
    assert_eq!(
        ids(&encounters),
        [
            format!("{ACUTE}.enc-alice-admission"),
            format!("{GP}.enc-alice-review")
        ]
    );
    assert_eq!(
        count(
            &h.ok(&format!("Encounter?patient={ALICE}&date=2024-05-18"))
                .await
        ),
        0
    );
    let overlapping = h
        .ok(&format!(
            "Encounter?patient={ALICE}&date=ge2024-05-18&date=le2024-05-18"
        ))
        .await;
    assert!(
        ids(&overlapping).contains(&format!("{ACUTE}.enc-alice-admission")),
        "ge and le find a stay spanning the day"
    );
    // The date is sent to partners as given.
    assert!(
        partner_queries(h.sim(GP), "/Observation")
            .iter()
            .any(|q| q.contains(&("date".into(), "ge2024-06".into())))
    );
    h.stop().await;
}

#[tokio::test]
async fn id_and_last_updated() {
    let h = Harness::start().await;
    let bundle = h
        .ok(&format!(
            "Observation?patient={ALICE}&_id={GP}.obs-alice-hba1c"
        ))
        .await;
    assert_eq!(ids(&bundle), [format!("{GP}.obs-alice-hba1c")]);
    // Only the partner that holds that id is asked, with its own id.
    assert_eq!(
        partner_queries(h.sim(GP), "/Observation")[0][1],
        ("_id".into(), "obs-alice-hba1c".into())
    );
    assert!(partner_queries(h.sim(ACUTE), "/Observation").is_empty());
    let bundle = h
        .ok(&format!(
            "Observation?patient={ALICE}&_lastUpdated=ge2024-12-01"
        ))
        .await;
    assert_eq!(ids(&bundle), [format!("{GP}.obs-alice-bp-12")]);
    h.stop().await;
}

#[tokio::test]
async fn aliases_reach_partners_under_standard_names() {
    let h = Harness::start().await;
    let bundle = h
        .ok(&format!(
            "Encounter?patient={ALICE}&code=http://snomed.info/sct|183452005"
        ))
        .await;
    assert_eq!(ids(&bundle), [format!("{ACUTE}.enc-alice-admission")]);
    assert!(
        partner_queries(h.sim(ACUTE), "/Encounter")[0]
            .contains(&("type".into(), "http://snomed.info/sct|183452005".into()))
    );
    let bundle = h
        .ok(&format!("Encounter?patient={ALICE}&category=HH"))
        .await;
    assert_eq!(ids(&bundle), [format!("{COMMUNITY}.enc-alice-dn-visit")]);
    let bundle = h
        .ok(&format!("CarePlan?patient={ALICE}&code=698360004"))
        .await;
    assert_eq!(ids(&bundle), [format!("{GP}.cp-alice-diabetes")]);
    assert!(
        partner_queries(h.sim(GP), "/CarePlan")[0]
            .contains(&("activity-code".into(), "698360004".into()))
    );
    let bundle = h
        .ok(&format!(
            "CarePlan?patient={ALICE}&status=completed&category=734163000"
        ))
        .await;
    assert_eq!(ids(&bundle), [format!("{COMMUNITY}.cp-alice-wound")]);
    let bundle = h
        .ok(&format!(
            "AllergyIntolerance?subject=Patient/{ALICE}&code=91936005"
        ))
        .await;
    assert_eq!(count(&bundle), 1);
    assert!(
        partner_queries(h.sim(GP), "/AllergyIntolerance")[0]
            .contains(&("patient".into(), "P1001".into()))
    );
    h.stop().await;
}

#[tokio::test]
async fn the_same_record_from_two_partners_is_shown_once() {
    let h = Harness::start().await;
    let bundle = h.ok(&format!("AllergyIntolerance?patient={ALICE}")).await;
    // The penicillin allergy is held by the GP and, copied, by the hospital.
    assert_eq!(
        ids(&bundle),
        [
            format!("{ACUTE}.alg-alice-latex"),
            format!("{GP}.alg-alice-penicillin")
        ]
    );
    assert_eq!(bundle["total"], 2);
    h.stop().await;
}

#[tokio::test]
async fn count_summary_elements_and_sort() {
    let h = Harness::start().await;
    let bundle = h.ok(&format!("Observation?patient={ALICE}&_count=4")).await;
    assert_eq!(count(&bundle), 4);
    assert_eq!(bundle["total"], 27);
    let bundle = h
        .ok(&format!("Observation?patient={ALICE}&_summary=count"))
        .await;
    assert_eq!(bundle["total"], 27);
    assert_eq!(count(&bundle), 0);
    let bundle = h.ok(&format!("Observation?patient={ALICE}&_count=0")).await;
    assert_eq!((bundle["total"].as_u64(), count(&bundle)), (Some(27), 0));
    let bundle = h
        .ok(&format!(
            "Observation?patient={ALICE}&_elements=effective&_count=3"
        ))
        .await;
    for r in entries(&bundle) {
        assert!(
            r.get("valueQuantity").is_none()
                && r.get("subject").is_none()
                && r.get("category").is_none()
        );
        assert!(r.get("effectiveDateTime").is_some());
        assert!(
            r.get("code").is_some() && r.get("status").is_some(),
            "mandatory elements stay"
        );
        assert!(
            r["meta"]["tag"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["code"] == "SUBSETTED")
        );
    }
    let oldest_first = h
        .ok(&format!("Observation?patient={ALICE}&_sort=date&_count=1"))
        .await;
    assert_eq!(ids(&oldest_first), [format!("{COMMUNITY}.obs-alice-wt-1")]);
    let newest = h
        .ok(&format!("Observation?patient={ALICE}&_sort=-date&_count=1"))
        .await;
    assert_eq!(ids(&newest), [format!("{GP}.obs-alice-bp-12")]);
    let updated = h
        .ok(&format!(
            "Observation?patient={ALICE}&_sort=_lastUpdated&_count=1"
        ))
        .await;
    assert_eq!(ids(&updated), [format!("{COMMUNITY}.obs-alice-wt-1")]);
    let capped = h
        .ok(&format!("Observation?patient={ALICE}&_count=100000"))
        .await;
    assert_eq!(count(&capped), 27);
    assert!(
        issues(&capped)
            .iter()
            .any(|i| i["expression"][0] == "_count")
    );
    h.stop().await;
}

#[tokio::test]
async fn unsupported_parameters_are_refused_unless_lenient_handling_is_asked_for() {
    let h = Harness::start().await;
    let query = format!("Observation?patient={ALICE}&colour=blue&_include=Observation:subject");
    for strict in [
        h.get(&query).await,
        h.get_with(&query, &[("prefer", "handling=strict")]).await,
    ] {
        assert_eq!(strict.status, 400);
        let issue = outcome_issue(&strict);
        assert_eq!(issue["code"], "not-supported");
        assert_eq!(issue["expression"][0], "colour");
    }
    let lenient = h.get_with(&query, &[("prefer", "handling=lenient")]).await;
    assert_eq!(lenient.status, 200);
    let bundle = lenient.fhir();
    assert_eq!(bundle["total"], 27, "ignored parameters do not filter");
    let w = warnings(&bundle);
    assert!(
        w.iter().any(|t| t.contains("colour")) && w.iter().any(|t| t.contains("_include")),
        "{w:?}"
    );
    // The self link shows what was applied, and only that.
    let own = link(&bundle, "self").unwrap();
    assert!(
        !own.contains("colour") && !own.contains("_include"),
        "{own}"
    );
    h.stop().await;
}

#[tokio::test]
async fn post_search_with_a_form_body_equals_get() {
    let h = Harness::start().await;
    let get = h
        .ok(&format!(
            "Observation?patient={ALICE}&code=8480-6&_count=100"
        ))
        .await;
    let post = h
        .post_form(
            "Observation/_search?_count=100",
            &format!("patient={ALICE}&code=8480-6"),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(post.status, 200, "{}", post.text);
    assert_eq!(ids(&post.fhir()), ids(&get));
    assert_eq!(ids(&get).len(), 12);
    h.stop().await;
}

#[tokio::test]
async fn every_clinical_search_needs_one_valid_patient() {
    let h = Harness::start().await;
    for path in [
        "Observation?code=8480-6",
        "MedicationStatement",
        "AllergyIntolerance?_id=x",
        "Encounter?date=2024",
        "CarePlan",
    ] {
        let reply = h.get(path).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(outcome_issue(&reply)["code"], "required", "{path}");
    }
    for path in [
        "Observation?patient=9990000019",
        "Observation?patient=12345",
        "Observation?patient=Practitioner/9990000018",
    ] {
        let reply = h.get(path).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(outcome_issue(&reply)["code"], "value", "{path}");
    }
    let two = h
        .get(&format!("Observation?patient={ALICE}&subject=9990000026"))
        .await;
    assert_eq!(two.status, 400);
    // Nobody was asked anything.
    assert!(h.sim(GP).requests().is_empty());
    h.stop().await;
}
