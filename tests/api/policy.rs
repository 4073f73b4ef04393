//! Sensitive categories and confidential labels never leave the facade, on any path.

use crate::harness::*;

const CHLOE: &str = "9990000034";
const BRIAN: &str = "9990000026";
const DAVID: &str = "9990000042";
const EMMA: &str = "9990000050";
const FARAH: &str = "9990000069";
const SAM: &str = "9990000077";

/// The synthetic items that must never be shown (examples/data/README.md).
const WITHHELD: [&str; 16] = [
    "riverside-gp.obs-chloe-chlamydia",
    "riverside-gp.enc-chloe-gum",
    "riverside-gp.med-chloe-doxycycline",
    "northgate-acute.enc-brian-gum",
    "northgate-acute.cp-emma-ivf",
    "northgate-acute.enc-emma-embryo",
    "riverside-gp.med-emma-progesterone",
    "northgate-acute.enc-farah-top",
    "northgate-acute.med-farah-mifepristone",
    "northgate-acute.cp-farah-top-follow-up",
    "riverside-gp.obs-sam-dysphoria",
    "northgate-acute.enc-sam-gic",
    "riverside-gp.med-sam-testosterone",
    "riverside-gp.cp-sam-gender",
    "valley-community.enc-david-crisis",
    "valley-community.cp-david-mh",
];

#[tokio::test]
async fn sensitive_items_are_absent_from_every_search_and_everything() {
    let h = Harness::start().await;
    let mut shown = Vec::new();
    for nhs in [CHLOE, BRIAN, DAVID, EMMA, FARAH, SAM] {
        for resource_type in [
            "Observation",
            "Encounter",
            "MedicationStatement",
            "CarePlan",
            "AllergyIntolerance",
        ] {
            let bundle = h.ok(&format!("{resource_type}?patient={nhs}")).await;
            assert_eq!(
                bundle["total"].as_u64().unwrap() as usize,
                ids(&bundle).len(),
                "total counts only what is returned"
            );
            shown.extend(ids(&bundle));
        }
        let everything = h.ok(&format!("Patient/{nhs}/$everything?_count=200")).await;
        shown.extend(ids(&everything));
    }
    for id in WITHHELD {
        assert!(!shown.iter().any(|s| s == id), "{id} was shown");
    }
    // A partner's entry count is of what is shown: it must not betray a withheld record.
    let chloe = h.ok(&format!("Observation?patient={CHLOE}")).await;
    let gp_entries = issues(&chloe)
        .into_iter()
        .find_map(|i| {
            let report = i["extension"][0]["extension"].as_array()?.clone();
            (report[0]["valueIdentifier"]["value"] == "A81001")
                .then(|| report[3]["valueUnsignedInt"].clone())
        })
        .expect("the GP's report");
    assert_eq!(
        gp_entries, 1,
        "one observation shown, one withheld, and the count says 1"
    );
    // Ordinary items of the same patients are still there.
    for id in [
        "riverside-gp.obs-chloe-peak-flow",
        "riverside-gp.med-chloe-salbutamol",
        "northgate-acute.enc-brian-fracture",
        "riverside-gp.med-emma-folic",
        "northgate-acute.obs-farah-hb",
        "riverside-gp.obs-sam-bp",
        "riverside-gp.med-david-sertraline",
        "northgate-acute.enc-david-ed",
    ] {
        assert!(shown.iter().any(|s| s == id), "{id} is missing");
    }
    h.stop().await;
}

#[tokio::test]
async fn reading_a_withheld_item_is_indistinguishable_from_an_unknown_id() {
    let h = Harness::start().await;
    h.ok(&format!("Observation?patient={CHLOE}")).await;
    for id in WITHHELD {
        let resource_type = match id.split('.').nth(1).unwrap().split('-').next().unwrap() {
            "obs" => "Observation",
            "enc" => "Encounter",
            "med" => "MedicationStatement",
            _ => "CarePlan",
        };
        let withheld = h.get(&format!("{resource_type}/{id}")).await;
        let unknown = h.get(&format!("{resource_type}/{id}x")).await;
        assert_eq!(withheld.status, 404, "{id}");
        assert_eq!(
            withheld.text.replace(id, "ID"),
            unknown.text.replace(&format!("{id}x"), "ID"),
            "{id}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn every_searchset_carries_the_same_notice_whatever_was_removed() {
    let h = Harness::start().await;
    let notices: Vec<serde_json::Value> = {
        let mut all = Vec::new();
        for path in [
            format!("Observation?patient={CHLOE}"),
            format!("Observation?patient={ALICE}"),
            format!("Encounter?patient={SAM}&_count=0"),
        ] {
            let bundle = h.ok(&path).await;
            let notice = issues(&bundle)
                .into_iter()
                .find(|i| i["details"]["coding"][0]["code"] == "categories-never-shared")
                .expect("notice present");
            all.push(notice);
        }
        all
    };
    assert!(notices.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(notices[0]["severity"], "information");
    h.stop().await;
}

#[tokio::test]
async fn a_patient_outside_the_cohort_is_not_found() {
    // Over-60s only: Alice (born 1958) is in, Chloe (born 1995) is not.
    let h = Harness::with(|c| c.policy.cohort.minimum_age_years = 60).await;
    assert_eq!(
        h.ok(&format!("Observation?patient={ALICE}")).await["total"],
        27
    );
    let searched = h.ok(&format!("Observation?patient={CHLOE}")).await;
    assert_eq!(searched["total"], 0);
    assert!(
        partner_queries(h.sim(GP), "/Observation").len() == 1,
        "only Alice's search reached a partner"
    );
    for path in [
        format!("Patient/{CHLOE}"),
        format!("Patient/{CHLOE}/$everything"),
        "Observation/riverside-gp.obs-chloe-peak-flow".to_string(),
    ] {
        assert_eq!(h.get(&path).await.status, 404, "{path}");
    }
    assert!(ids(&h.ok("Patient?family=smith").await).is_empty());
    assert_eq!(
        ids(&h.ok(&format!("Patient?_id={CHLOE},{ALICE}")).await),
        [ALICE]
    );
    h.stop().await;

    let h = Harness::with(|c| c.policy.cohort.registered_practices = vec!["Y99999".into()]).await;
    assert_eq!(
        h.get(&format!("Patient/{ALICE}")).await.status,
        404,
        "registered elsewhere"
    );
    h.stop().await;
}
