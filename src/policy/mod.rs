//! The privacy policy: what may leave the facade. One filter, applied to everything
//! gathered before it is merged, sorted and paged, on every output path.

pub mod access;
pub mod categories;
pub mod cohort;
pub mod objection;

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
}

impl Policy {
    pub fn new(config: &PolicyConfig) -> Policy {
        Policy {
            codes: CodeIndex::bundled(),
            excluded: config.excluded_categories.iter().copied().collect(),
            labels: config.sensitivity_labels.clone(),
        }
    }

    /// What may be shown of `resources` (in facade form): anything revealing an
    /// excluded category, labelled V or R, or referring to a withheld record is removed.
    /// `context` holds linked records gathered only to judge links (the encounter an
    /// observation was made in); they are never returned. Partners' own labels are not
    /// trusted to be complete: every resource is classified.
    pub fn filter(
        &self,
        resources: Vec<Value>,
        context: &[Value],
        clearance: Clearance,
    ) -> Vec<Value> {
        let mut withheld: HashSet<String> = resources
            .iter()
            .chain(context)
            .filter(|r| !self.may_show(r, clearance))
            .map(address)
            .collect();
        // A record that points at a withheld one reveals it too (an observation made
        // in a sexual health clinic encounter): withhold until nothing more changes.
        loop {
            let more: Vec<String> = resources
                .iter()
                .chain(context)
                .filter(|r| !withheld.contains(&address(r)) && refers_to_any(r, &withheld))
                .map(address)
                .collect();
            if more.is_empty() {
                break;
            }
            withheld.extend(more);
        }
        resources
            .into_iter()
            .filter(|r| !withheld.contains(&address(r)))
            .collect()
    }

    /// May this one resource, on its own, be shown?
    fn may_show(&self, resource: &Value, clearance: Clearance) -> bool {
        let mut verdict = true;
        visit_codings(resource, &mut |system, code| {
            let label_category = (system == ACT_CODE)
                .then(|| self.labels.get(code).copied())
                .flatten();
            let category = label_category.or_else(|| self.codes.category(system, code));
            // V (very restricted) is never shared; R (restricted) only to roles cleared for it.
            let confidential = system == CONFIDENTIALITY
                && (code == "V" || (code == "R" && clearance != Clearance::Restricted));
            if confidential || category.is_some_and(|c| self.excluded.contains(&c)) {
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

/// `Type/id` of a resource in facade form.
fn address(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    )
}

fn refers_to_any(node: &Value, targets: &HashSet<String>) -> bool {
    match node {
        Value::Object(map) => {
            map.get("reference")
                .and_then(Value::as_str)
                .is_some_and(|r| targets.contains(r))
                || map.values().any(|child| refers_to_any(child, targets))
        }
        Value::Array(items) => items.iter().any(|item| refers_to_any(item, targets)),
        _ => false,
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
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy::new(&PolicyConfig::default())
    }

    fn obs(id: &str, code: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]}})
    }

    #[test]
    fn codes_anywhere_labels_and_links_withhold() {
        let mut reason = obs("r", "1234");
        reason["component"] = json!([{"valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "O04.9"}]}}]);
        let mut contained = obs("c", "1234");
        contained["contained"] = json!([{"resourceType": "Condition", "id": "x", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "93461009"}]}}]);
        let mut very_restricted = obs("v", "1234");
        very_restricted["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": "V"}]});
        let mut labelled = obs("l", "1234");
        labelled["meta"] = json!({"security": [{"system": ACT_CODE, "code": "STD"}]});
        let gum = json!({"resourceType": "Encounter", "id": "e", "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "431654006"}]}]});
        let mut in_clinic = obs("linked", "1234");
        in_clinic["encounter"] = json!({"reference": "Encounter/e"});
        let mut linked_twice = obs("linked2", "1234");
        linked_twice["derivedFrom"] = json!([{"reference": "Observation/linked"}]);
        let mut normal = obs("ok", "1234");
        normal["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": "N"}]});
        let kept = policy().filter(
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
            &[gum],
            Clearance::Normal,
        );
        assert_eq!(
            kept.iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["ok"]
        );
    }

    #[test]
    fn restricted_items_only_for_cleared_roles() {
        let label = |code: &str| {
            let mut o = obs(code, "1234");
            o["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": code}]});
            o
        };
        let shown = |clearance| {
            policy()
                .filter(vec![label("R"), label("V"), label("N")], &[], clearance)
                .into_iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(Clearance::Normal), ["N"]);
        assert_eq!(shown(Clearance::Restricted), ["R", "N"]);
    }

    #[test]
    fn only_configured_categories_are_excluded() {
        let config = PolicyConfig {
            excluded_categories: vec![SensitiveCategory::Fertility],
            ..PolicyConfig::default()
        };
        let kept = Policy::new(&config).filter(
            vec![obs("ivf", "393132003"), obs("gum", "431654006")],
            &[],
            Clearance::Normal,
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["id"], "gum");
    }
}
