//! Property: over generated patients mixing ordinary and sensitive items, some of
//! whom object, whatever the query shape (type, `_count`, `_sort`, JSON or XML,
//! paging, `$everything`, reads by id), no withheld item and nothing of an objecting
//! patient ever appears, and every ordinary item of everyone else still does.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};
use shcr_facade::sim::PartnerData;

use crate::harness::*;
use shcr_facade::sim::issuer::Profile;

const PARTNERS: [&str; 3] = [GP, ACUTE, COMMUNITY];
const NHS: [&str; 3] = ["9990000107", "9990000115", "9990000123"];
const TYPES: [&str; 5] = [
    "Observation",
    "MedicationStatement",
    "AllergyIntolerance",
    "Encounter",
    "CarePlan",
];
const ORDINARY: [&str; 3] = ["38341003", "195967001", "271649006"];
const SCT: &str = "http://snomed.info/sct";

/// How an item is (or is not) sensitive.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ordinary,
    SensitiveCode(&'static str, &'static str),
    SecondaryCoding(&'static str),
    Confidential(&'static str),
    SensitivityLabel,
    ContainedSensitive,
    /// Refers to an encounter in a sexual health clinic.
    InWithheldEncounter,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Ordinary),
        1 => prop_oneof![
            Just((SCT, "312099009")), Just((SCT, "393132003")), Just((SCT, "93461009")), Just((SCT, "57797005")),
            Just(("http://hl7.org/fhir/sid/icd-10", "A56.0")), Just(("http://hl7.org/fhir/sid/icd-10", "O04.9")),
            Just(("http://hl7.org/fhir/sid/icd-10-uk", "F64.0")), Just(("http://hl7.org/fhir/sid/icd-10", "Z31")),
        ].prop_map(|(s, c)| Kind::SensitiveCode(s, c)),
        1 => prop_oneof![Just("431654006"), Just("75456002"), Just("1101621000000101")].prop_map(Kind::SecondaryCoding),
        1 => prop_oneof![Just("V"), Just("R")].prop_map(Kind::Confidential),
        1 => Just(Kind::SensitivityLabel),
        1 => Just(Kind::ContainedSensitive),
        1 => Just(Kind::InWithheldEncounter),
    ]
}

#[derive(Debug, Clone)]
struct Item {
    id: String,
    partner: usize,
    resource_type: &'static str,
    code: &'static str,
    year: i32,
    kind: Kind,
}

#[derive(Debug, Clone)]
struct Case {
    /// Per patient: the partners holding them, and their items.
    patients: Vec<(Vec<usize>, Vec<Item>)>,
    /// Per patient: the status of their objection, if they raised one.
    objections: Vec<Option<&'static str>>,
    count: usize,
    sort: &'static str,
    xml: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let item = (
        0usize..3,
        prop::sample::select(TYPES.to_vec()),
        prop::sample::select(ORDINARY.to_vec()),
        2019i32..2026,
        kind(),
    );
    let patient = (
        prop::sample::subsequence(vec![0usize, 1, 2], 1..=3),
        prop::collection::vec(item, 0..10),
    );
    let objection = prop::option::weighted(
        0.4,
        prop::sample::select(vec!["proposed", "active", "inactive", "rejected"]),
    );
    (
        prop::collection::vec(patient, 1..=3),
        prop::collection::vec(objection, 3),
        1usize..8,
        prop::sample::select(vec!["", "date", "-date", "_lastUpdated"]),
        any::<bool>(),
    )
        .prop_map(|(patients, objections, count, sort, xml)| {
            let mut n = 0;
            let patients = patients
                .into_iter()
                .map(|(partners, items)| {
                    let items = items
                        .into_iter()
                        .map(|(p, resource_type, code, year, kind)| {
                            n += 1;
                            Item {
                                id: format!("g{n}"),
                                partner: partners[p % partners.len()],
                                resource_type,
                                code,
                                year,
                                kind,
                            }
                        })
                        .collect();
                    (partners, items)
                })
                .collect();
            Case {
                patients,
                objections,
                count,
                sort,
                xml,
            }
        })
}

fn local_patient(patient: usize, partner: usize) -> String {
    format!("pt{patient}-{partner}")
}

fn resource(item: &Item, patient: usize) -> Value {
    let subject = json!({"reference": format!("Patient/{}", local_patient(patient, item.partner))});
    let (system, code) = match item.kind {
        Kind::SensitiveCode(system, code) => (system, code),
        _ => (SCT, item.code),
    };
    let mut concept = json!({"coding": [{"system": system, "code": code}]});
    if let Kind::SecondaryCoding(code) = item.kind {
        concept["coding"]
            .as_array_mut()
            .unwrap()
            .push(json!({"system": SCT, "code": code}));
    }
    let date = format!("{}-06-15T10:00:00Z", item.year);
    let mut r = match item.resource_type {
        "Observation" => {
            json!({"status": "final", "code": concept, "subject": subject, "effectiveDateTime": date})
        }
        "MedicationStatement" => {
            json!({"status": "active", "medicationCodeableConcept": concept, "subject": subject, "effectiveDateTime": date})
        }
        "AllergyIntolerance" => json!({"code": concept, "patient": subject, "recordedDate": date}),
        "Encounter" => {
            json!({"status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "type": [concept], "subject": subject, "period": {"start": date}})
        }
        _ => {
            json!({"status": "active", "intent": "plan", "subject": subject, "period": {"start": date}, "activity": [{"detail": {"status": "in-progress", "code": concept}}]})
        }
    };
    r["resourceType"] = json!(item.resource_type);
    r["id"] = json!(item.id);
    r["meta"] = json!({"lastUpdated": date});
    match item.kind {
        Kind::Confidential(code) => {
            r["meta"]["security"] = json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": code}])
        }
        Kind::SensitivityLabel => {
            r["meta"]["security"] = json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "STD"}])
        }
        Kind::InWithheldEncounter => {
            let link = json!({"reference": format!("Encounter/{}-gum", item.id)});
            let element = match item.resource_type {
                "MedicationStatement" => "context",
                "Encounter" => "partOf",
                _ => "encounter",
            };
            r[element] = link;
        }
        Kind::ContainedSensitive => {
            r["contained"] = json!([{"resourceType": "Condition", "id": "c1", "subject": subject, "code": {"coding": [{"system": SCT, "code": "282272009"}]}}])
        }
        _ => {}
    }
    r
}

fn partner_data(case: &Case, partner: usize) -> PartnerData {
    let mut data = PartnerData::default();
    for (p, (partners, items)) in case.patients.iter().enumerate() {
        if partners.contains(&partner) {
            data.add(json!({"resourceType": "Patient", "id": local_patient(p, partner),
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS[p]}], "name": [{"family": "Generated"}]}));
        }
        for item in items.iter().filter(|i| i.partner == partner) {
            data.add(resource(item, p));
            if item.kind == Kind::InWithheldEncounter {
                let clinic = Item {
                    id: format!("{}-gum", item.id),
                    resource_type: "Encounter",
                    kind: Kind::SensitiveCode(SCT, "431654006"),
                    ..item.clone()
                };
                data.add(resource(&clinic, p));
            }
        }
    }
    data
}

/// Is the item held by a partner configured to serve its type? (The community trust
/// does not hold allergies in examples/shcr.toml, so it is never asked for them.)
fn served(item: &Item) -> bool {
    !(PARTNERS[item.partner] == COMMUNITY && item.resource_type == "AllergyIntolerance")
}

fn facade_id(item: &Item) -> String {
    format!("{}.{}", PARTNERS[item.partner], item.id)
}

/// Every entry id over all pages, starting at `path`.
async fn all_pages(h: &Harness, path: &str, xml: bool) -> Vec<String> {
    let mut url = path.to_string();
    let mut found = Vec::new();
    for _ in 0..200 {
        let reply = h
            .get_with(
                &url,
                &[(
                    "accept",
                    if xml {
                        "application/fhir+xml"
                    } else {
                        "application/fhir+json"
                    },
                )],
            )
            .await;
        assert_eq!(reply.status, 200, "{url}: {}", reply.text);
        let bundle = if xml {
            fhir_codec::read_xml(reply.text.as_bytes()).expect("R4 XML")
        } else {
            reply.fhir()
        };
        found.extend(ids(&bundle));
        match link(&bundle, "next") {
            Some(next) => url = next,
            None => return found,
        }
    }
    panic!("paging did not end");
}

async fn check(case: &Case) {
    let h = Harness::with_data(
        |partner| partner_data(case, PARTNERS.iter().position(|p| *p == partner).unwrap()),
        |_| {},
    )
    .await;
    let sort = if case.sort.is_empty() {
        String::new()
    } else {
        format!("&_sort={}", case.sort)
    };
    for (p, (_, items)) in case.patients.iter().enumerate() {
        if let Some(status) = case.objections[p] {
            let by_patient = json!({"reference": format!("Patient/{}", NHS[p])});
            let consent = crate::objection::objection(NHS[p], status, by_patient);
            let created = h
                .client
                .post(format!("{}/Consent", h.base))
                .bearer_auth(h.token(Profile::PrivacyOfficer))
                .header("content-type", "application/fhir+json")
                .body(consent.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
            if matches!(status, "proposed" | "active") {
                assert_hidden(&h, p, items).await;
                continue;
            }
        }
        let shown = |i: &&Item| i.kind == Kind::Ordinary && served(i);
        for resource_type in TYPES {
            let path = format!(
                "{resource_type}?patient={}&_count={}{sort}",
                NHS[p], case.count
            );
            let found = all_pages(&h, &path, case.xml).await;
            let expected: BTreeSet<String> = items
                .iter()
                .filter(shown)
                .filter(|i| i.resource_type == resource_type)
                .map(facade_id)
                .collect();
            assert_eq!(
                found.len(),
                expected.len(),
                "{path}: duplicates or wrong count in {found:?}"
            );
            assert_eq!(
                found.into_iter().collect::<BTreeSet<_>>(),
                expected,
                "{path} for {case:?}"
            );
        }
        let code = ORDINARY[p % ORDINARY.len()];
        let path = format!(
            "Observation?patient={}&code={SCT}|{code}&date=ge2022&_count={}",
            NHS[p], case.count
        );
        let found: BTreeSet<String> = all_pages(&h, &path, case.xml).await.into_iter().collect();
        let expected: BTreeSet<String> = items
            .iter()
            .filter(shown)
            .filter(|i| i.resource_type == "Observation" && i.code == code && i.year >= 2022)
            .map(facade_id)
            .collect();
        assert_eq!(found, expected, "{path}");
        let everything = all_pages(
            &h,
            &format!("Patient/{}/$everything?_count={}", NHS[p], case.count),
            case.xml,
        )
        .await;
        let mut expected: BTreeSet<String> = items.iter().filter(shown).map(facade_id).collect();
        expected.insert(NHS[p].to_string());
        assert_eq!(
            everything.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "$everything"
        );
        for item in items {
            let reply = h
                .get(&format!("{}/{}", item.resource_type, facade_id(item)))
                .await;
            let expected = if item.kind == Kind::Ordinary && served(item) {
                200
            } else {
                404
            };
            assert_eq!(reply.status, expected, "read {item:?}");
        }
    }
    h.stop().await;
}

/// Nothing of an objecting patient appears: every path answers 403 (or 404 where the
/// partner does not hold that type at all).
async fn assert_hidden(h: &Harness, p: usize, items: &[Item]) {
    let mut paths: Vec<String> = TYPES
        .iter()
        .map(|t| format!("{t}?patient={}", NHS[p]))
        .collect();
    paths.push(format!("Patient/{}/$everything", NHS[p]));
    paths.push(format!("Patient/{}", NHS[p]));
    for path in paths {
        let reply = h.get(&path).await;
        assert_eq!(reply.status, 403, "{path}");
    }
    for item in items {
        let reply = h
            .get(&format!("{}/{}", item.resource_type, facade_id(item)))
            .await;
        assert_eq!(
            reply.status,
            if served(item) { 403 } else { 404 },
            "read {item:?}"
        );
        if reply.status == 403 {
            assert_eq!(outcome_issue(&reply)["code"], "suppressed");
            assert!(
                !reply.text.contains(&item.id),
                "a refusal says nothing of the record"
            );
        }
    }
}

#[tokio::test]
async fn no_withheld_item_ever_appears_and_every_ordinary_item_does() {
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 24,
        ..RunnerConfig::default()
    });
    let strategy = case();
    for _ in 0..24 {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        check(&case).await;
    }
}
