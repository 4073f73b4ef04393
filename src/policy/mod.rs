//! The privacy policy: what may leave the facade. One release stage (`release`),
//! applied to everything gathered before it is merged, sorted and paged, on every
//! output path.

pub mod access;
pub mod categories;
pub mod code_lists;
pub mod cohort;
pub mod objection;
pub mod release;

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::config::PolicyConfig;
use crate::fhir::outcome::Issue;
use categories::{CodeIndex, SensitiveCategory};

const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const POLICY_OUTCOME_SYSTEM: &str =
    "https://shcr-facade.example.org/fhir/CodeSystem/policy-outcome";

/// Which confidentiality levels the viewer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearance {
    /// Normal and below.
    Normal,
    /// Also `R` (restricted), for roles configured for it.
    Restricted,
}

pub struct Policy {
    codes: CodeIndex,
    excluded: HashSet<SensitiveCategory>,
    /// Partner sensitivity labels (v3-ActCode) and the category each stands for.
    labels: HashMap<String, SensitiveCategory>,
    /// How many links deep a record's references are followed to judge it.
    link_depth: usize,
}

impl Policy {
    /// The policy `config` describes: the bundled code lists, the deployer's, and
    /// SNOMED CT descendants if relationships are given. Every file problem found.
    pub fn new(config: &PolicyConfig) -> Result<Policy, Vec<code_lists::Problem>> {
        let mut lists = categories::bundled_lists();
        let mut problems = Vec::new();
        for list in &config.code_lists {
            match code_lists::load(&list.path(), list.category) {
                Ok(list) => lists.push(list),
                Err(problem) => problems.push(problem),
            }
        }
        let children = match config.relationships_path() {
            Some(path) => match code_lists::load_relationships(&path) {
                Ok(children) => Some(children),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
            None => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Policy {
            codes: CodeIndex::new(lists, children.as_ref()),
            excluded: config.excluded_categories.iter().copied().collect(),
            labels: config.sensitivity_labels.clone(),
            link_depth: config.link_depth,
        })
    }

    /// Codes per category and source, for `shcr-facade check`.
    pub fn code_counts(&self) -> &categories::CodeCounts {
        self.codes.counts()
    }

    /// May this one resource, on its own, be shown?
    fn may_show(&self, resource: &Value, clearance: Clearance) -> bool {
        let mut verdict = true;
        visit_codings(resource, &mut |system, code| {
            let label_category = (system == ACT_CODE)
                .then(|| self.labels.get(code).copied())
                .flatten();
            let mut categories = self.codes.categories(system, code);
            categories.extend(label_category);
            // V (very restricted) is never shared; R (restricted) only to roles cleared for it.
            let confidential = system == CONFIDENTIALITY
                && (code == "V" || (code == "R" && clearance != Clearance::Restricted));
            if confidential || categories.iter().any(|c| self.excluded.contains(c)) {
                verdict = false;
            }
        });
        verdict
    }

    /// The notice every searchset carries, whatever was or was not removed.
    pub fn notice() -> Issue {
        Issue::information(
            "informational",
            "Some categories of information are never shared through the Shared Care Record; seek them from the patient's care team through other channels.",
        )
        .with_detail(POLICY_OUTCOME_SYSTEM, "categories-never-shared")
    }
}

/// Calls `seen(system, code)` for every Coding anywhere in the resource: codes,
/// values, types, reasons, categories, medications, activities, contained resources,
/// and `meta.security` labels.
fn visit_codings(node: &Value, seen: &mut impl FnMut(&str, &str)) {
    match node {
        Value::Object(map) => {
            if let (Some(Value::String(system)), Some(Value::String(code))) =
                (map.get("system"), map.get("code"))
            {
                seen(system, code);
            }
            map.values().for_each(|child| visit_codings(child, seen));
        }
        Value::Array(items) => items.iter().for_each(|item| visit_codings(item, seen)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::release::{Fetched, Link, LinkSource};
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy::new(&PolicyConfig::default()).unwrap()
    }

    /// A partner that holds `records` and serves every type.
    struct Holding(Vec<Value>);

    impl LinkSource for Holding {
        fn follows(&self, _: &Link) -> bool {
            true
        }

        async fn fetch(&self, links: Vec<Link>) -> Fetched {
            let records = self
                .0
                .iter()
                .filter(|r| {
                    links
                        .iter()
                        .any(|l| release::address(r) == format!("{}/{}", l.type_name, l.id))
                })
                .cloned()
                .collect();
            Fetched {
                records,
                unavailable: Vec::new(),
            }
        }

        fn organisation(&self, partner_id: &str) -> String {
            format!("partner {partner_id}")
        }
    }

    fn obs(id: &str, code: &str) -> Value {
        json!({"resourceType": "Observation", "id": format!("gp.{id}"), "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]}})
    }

    fn shown(released: &release::Released) -> Vec<&str> {
        released
            .records()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect()
    }

    async fn release_now(
        candidates: Vec<Value>,
        held: Vec<Value>,
        clearance: Clearance,
    ) -> release::Released {
        policy()
            .release(candidates, Vec::new(), &Holding(held), clearance)
            .await
    }

    #[tokio::test]
    async fn codes_anywhere_labels_and_links_withhold() {
        let mut reason = obs("r", "1234");
        reason["component"] = json!([{"valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "O04.9"}]}}]);
        let mut contained = obs("c", "1234");
        contained["contained"] = json!([{"resourceType": "Condition", "id": "x", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "93461009"}]}}]);
        let mut very_restricted = obs("v", "1234");
        very_restricted["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": "V"}]});
        let mut labelled = obs("l", "1234");
        labelled["meta"] = json!({"security": [{"system": ACT_CODE, "code": "STD"}]});
        let gum = json!({"resourceType": "Encounter", "id": "gp.e", "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "431654006"}]}]});
        let mut in_clinic = obs("linked", "1234");
        in_clinic["encounter"] = json!({"reference": "Encounter/gp.e"});
        let mut linked_twice = obs("linked2", "1234");
        linked_twice["derivedFrom"] = json!([{"reference": "Observation/gp.linked"}]);
        let mut normal = obs("ok", "1234");
        normal["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": "N"}]});
        normal["subject"] = json!({"reference": "Patient/9000000009"});
        let released = release_now(
            vec![
                reason,
                contained,
                very_restricted,
                labelled,
                in_clinic,
                linked_twice,
                normal,
                obs("dx", "312099009"),
            ],
            vec![gum],
            Clearance::Normal,
        )
        .await;
        assert_eq!(shown(&released), ["gp.ok"]);
        assert_eq!(released.withheld(), 7);
        assert_eq!(released.unjudged(), 0);
    }

    #[tokio::test]
    async fn links_follow_to_the_depth_bound_and_what_cannot_be_judged_is_withheld() {
        let chain = |id: &str, to: &str| {
            let mut o = obs(id, "1234");
            o["derivedFrom"] = json!([{"reference": format!("Observation/gp.{to}")}]);
            o
        };
        // a -> b -> c -> d -> e: judging a needs e, four links away.
        let held = vec![
            chain("b", "c"),
            chain("c", "d"),
            chain("d", "e"),
            obs("e", "1234"),
        ];
        let released = release_now(vec![chain("a", "b")], held.clone(), Clearance::Normal).await;
        assert!(
            released.records().is_empty(),
            "past the depth bound: not judged"
        );
        assert_eq!(released.unjudged(), 1);
        assert_eq!(released.unjudged_at(), ["partner gp"]);
        // Three links away is judged, and a sensitive record there withholds all.
        let released = release_now(vec![chain("b", "c")], held.clone(), Clearance::Normal).await;
        assert_eq!(shown(&released), ["gp.b"]);
        let mut sensitive = held.clone();
        sensitive[3] = obs("e", "312099009");
        let released = release_now(vec![chain("b", "c")], sensitive, Clearance::Normal).await;
        assert_eq!((released.withheld(), released.unjudged()), (1, 0));
        // A link to a record the partner does not have cannot be judged.
        let released = release_now(vec![chain("x", "missing")], held, Clearance::Normal).await;
        assert_eq!(released.unjudged(), 1);
        // Cycles end.
        let released = release_now(
            vec![chain("p", "q")],
            vec![chain("q", "p")],
            Clearance::Normal,
        )
        .await;
        assert_eq!(shown(&released), ["gp.p"]);
    }

    #[tokio::test]
    async fn restricted_items_only_for_cleared_roles() {
        let label = |code: &str| {
            let mut o = obs(code, "1234");
            o["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": code}]});
            o
        };
        for (clearance, expected) in [
            (Clearance::Normal, vec!["gp.N"]),
            (Clearance::Restricted, vec!["gp.R", "gp.N"]),
        ] {
            let released =
                release_now(vec![label("R"), label("V"), label("N")], vec![], clearance).await;
            assert_eq!(shown(&released), expected);
        }
    }

    #[tokio::test]
    async fn only_configured_categories_are_excluded() {
        let config = PolicyConfig {
            excluded_categories: vec![SensitiveCategory::Fertility],
            ..PolicyConfig::default()
        };
        let released = Policy::new(&config)
            .unwrap()
            .release(
                vec![obs("ivf", "393132003"), obs("gum", "431654006")],
                Vec::new(),
                &Holding(Vec::new()),
                Clearance::Normal,
            )
            .await;
        assert_eq!(shown(&released), ["gp.gum"]);
    }
}
