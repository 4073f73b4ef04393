//! Property: over generated patients mixing ordinary and sensitive items, some of
//! whom object, whatever the query shape (type, `_count`, `_sort`, JSON or XML,
//! paging, `$everything` whole and narrowed by `_type` or by the token's scopes,
//! reads by id), no withheld item and nothing of an objecting patient ever appears,
//! and every ordinary item of everyone else still does. Items may point at records
//! two, three or four links away (the release stage judges three), at records their
//! partner fails to give, or at a clinic visit beyond the pages a long record's
//! searches gather.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};
use shcr_facade::sim::issuer::TokenRequest;
use shcr_facade::sim::{Faults, PartnerData};

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
    /// Points, through a chain of this many Conditions, at a last one that is
    /// sensitive or not; past three links it cannot be judged.
    LinkChain(usize, bool),
    /// Points at a Procedure its partner fails to give.
    FailingLink,
}

impl Kind {
    /// Shown where everything it points at could be judged and is ordinary.
    fn shown(self) -> bool {
        match self {
            Kind::Ordinary => true,
            Kind::LinkChain(depth, sensitive) => depth <= 3 && !sensitive,
            _ => false,
        }
    }
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
        2 => (2usize..=4, any::<bool>()).prop_map(|(depth, sensitive)| Kind::LinkChain(depth, sensitive)),
        1 => Just(Kind::FailingLink),
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
    /// `$everything?_type=` these (all when empty).
    everything_types: Vec<&'static str>,
    /// A token whose scopes cover this type only (and Patient).
    narrow_scope: &'static str,
    /// The first patient's GP record is long: filler encounters past what a search
    /// gathers, with a clinic visit an item points at beyond them.
    long: bool,
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
        prop::sample::subsequence(TYPES.to_vec(), 0..=3),
        prop::sample::select(TYPES.to_vec()),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(patients, objections, count, sort, xml, everything_types, narrow_scope, long)| {
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
                    everything_types,
                    narrow_scope,
                    long,
                }
            },
        )
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
        // A reference anywhere is a link, an extension's too.
        Kind::LinkChain(..) => r["extension"] = pointer(&format!("Condition/{}-c1", item.id)),
        Kind::FailingLink => r["extension"] = pointer(&format!("Procedure/{}-p", item.id)),
        _ => {}
    }
    r
}

fn pointer(reference: &str) -> Value {
    json!([{"url": "https://shcr-facade.example.org/test/related", "valueReference": {"reference": reference}}])
}

/// The Conditions a `LinkChain` item points through, the last sensitive or not.
fn chain(item: &Item, patient: usize) -> Vec<Value> {
    let Kind::LinkChain(depth, sensitive) = item.kind else {
        return Vec::new();
    };
    (1..=depth)
        .map(|n| {
            let code = if n == depth && sensitive { "312099009" } else { "38341003" };
            let mut condition = json!({"resourceType": "Condition", "id": format!("{}-c{n}", item.id),
                "subject": {"reference": format!("Patient/{}", local_patient(patient, item.partner))},
                "code": {"coding": [{"system": SCT, "code": code}]}});
            if n < depth {
                condition["evidence"] = json!([{"detail": [{"reference": format!("Condition/{}-c{}", item.id, n + 1)}]}]);
            }
            condition
        })
        .collect()
}

/// Filler encounters in a long record (more than a search gathers: the harness
/// follows 2 pages of 10).
const FILLERS: usize = 25;

fn partner_data(case: &Case, partner: usize) -> PartnerData {
    let mut data = PartnerData::default();
    for (p, (partners, items)) in case.patients.iter().enumerate() {
        if partners.contains(&partner) {
            data.add(json!({"resourceType": "Patient", "id": local_patient(p, partner),
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS[p]}], "name": [{"family": "Generated"}]}));
        }
        let mut clinics = Vec::new();
        for item in items.iter().filter(|i| i.partner == partner) {
            data.add(resource(item, p));
            for condition in chain(item, p) {
                data.add(condition);
            }
            if item.kind == Kind::InWithheldEncounter {
                let clinic = Item {
                    id: format!("{}-gum", item.id),
                    resource_type: "Encounter",
                    kind: Kind::SensitiveCode(SCT, "431654006"),
                    ..item.clone()
                };
                clinics.push(resource(&clinic, p));
            }
        }
        // A long record: the partner lists the fillers before the clinic visits.
        if case.long && p == 0 && partner == 0 && partners.contains(&0) {
            for n in 0..FILLERS {
                let filler = Item {
                    id: format!("fill-{n}"),
                    partner,
                    resource_type: "Encounter",
                    code: ORDINARY[0],
                    year: 2010,
                    kind: Kind::Ordinary,
                };
                // Undated, so that they sort last in either order: a partner asked to
                // sort lists them after the items too, and they stay beyond the pages
                // the facade gathers whole.
                let mut filler = resource(&filler, p);
                filler.as_object_mut().unwrap().remove("period");
                data.add(filler);
            }
        }
        for clinic in clinics {
            data.add(clinic);
        }
    }
    data
}

/// The ids compared: a long record's fillers are shown as far as the pages
/// gathered reach, and are not among the generated items.
fn items_only(found: Vec<String>) -> BTreeSet<String> {
    found
        .into_iter()
        .filter(|id| !id.contains(".fill-"))
        .collect()
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
    for round in 0..200 {
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
        if round > 195 {
            eprintln!(
                "DEBUG {path} {:?} {} {}",
                ids(&bundle),
                bundle["total"],
                found.len()
            );
        }
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
        |config| {
            config.search.partner_page_size = 10;
            config.search.max_partner_pages = 2;
            // Partners are searched for the generated types only: the Conditions and
            // Procedures are reached by the links alone.
            for partner in config
                .partners
                .iter_mut()
                .filter(|p| PARTNERS.contains(&p.id.as_str()))
            {
                partner
                    .resource_types
                    .retain(|t| TYPES.contains(&t.as_str()));
            }
        },
    )
    .await;
    // Every partner fails to give Procedures by id: what points at one is unjudged.
    for partner in PARTNERS {
        h.sim(partner).set_faults(Faults {
            fail_by_id: vec!["Procedure".into()],
            ..Faults::default()
        });
    }
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
        let shown = |i: &&Item| i.kind.shown() && served(i);
        for resource_type in TYPES {
            let path = format!(
                "{resource_type}?patient={}&_count={}{sort}",
                NHS[p], case.count
            );
            let found = all_pages(&h, &path, case.xml).await;
            let distinct: BTreeSet<&String> = found.iter().collect();
            assert_eq!(
                distinct.len(),
                found.len(),
                "{path}: duplicates in {found:?}"
            );
            let expected: BTreeSet<String> = items
                .iter()
                .filter(shown)
                .filter(|i| i.resource_type == resource_type)
                .map(facade_id)
                .collect();
            assert_eq!(items_only(found), expected, "{path} for {case:?}");
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
        assert_eq!(items_only(everything), expected, "$everything");
        // Narrowed by _type, or by what the token may see: the same judgement.
        if !case.everything_types.is_empty() {
            let path = format!(
                "Patient/{}/$everything?_type={}&_count={}",
                NHS[p],
                case.everything_types.join(","),
                case.count
            );
            let narrowed = items_only(all_pages(&h, &path, case.xml).await);
            let expected: BTreeSet<String> = items
                .iter()
                .filter(shown)
                .filter(|i| case.everything_types.contains(&i.resource_type))
                .map(facade_id)
                .collect();
            assert_eq!(narrowed, expected, "{path}");
        }
        let scoped = h.issuer.token(&TokenRequest {
            profile: Some(Profile::Clinician),
            scope: Some(format!("user/{}.rs user/Patient.rs", case.narrow_scope)),
            ..TokenRequest::default()
        });
        let path = format!("Patient/{}/$everything?_count=200", NHS[p]);
        let narrowed = items_only(ids(&h.ok_as(&path, &scoped).await));
        let mut expected: BTreeSet<String> = items
            .iter()
            .filter(shown)
            .filter(|i| i.resource_type == case.narrow_scope)
            .map(facade_id)
            .collect();
        expected.insert(NHS[p].to_string());
        assert_eq!(
            narrowed, expected,
            "{path} with scopes for {}",
            case.narrow_scope
        );
        for item in items {
            let reply = h
                .get(&format!("{}/{}", item.resource_type, facade_id(item)))
                .await;
            let expected = if item.kind.shown() && served(item) {
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
