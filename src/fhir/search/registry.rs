//! The search parameters the facade supports, read from
//! `fhir-profiles/search-parameters.json` (a Bundle of R4 SearchParameter resources).
//!
//! The bundle is the single source: parsing, matching, translation to partner queries
//! and the CapabilityStatement all come from it. Expressions use a small FHIRPath
//! subset: `Type.element.element` joined by ` | `; a choice element such as
//! `effective` matches `effectiveDateTime`, `effectivePeriod`, ...

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::fhir::ResourceType;

const SEARCH_PARAMETERS: &str = include_str!("../../../fhir-profiles/search-parameters.json");
const PARTNER_CODE_EXTENSION: &str = "partner-search-code";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Token,
    Date,
    String,
    Reference,
    Quantity,
}

/// One search parameter as it applies to one resource type.
#[derive(Debug, Clone)]
pub struct ParamDef {
    pub code: String,
    pub kind: ParamKind,
    /// Element paths within the resource (without the leading type name).
    pub paths: Vec<Vec<String>>,
    /// Modifiers beyond the type's defaults (`exact`, `contains` for strings).
    pub modifiers: Vec<String>,
    /// The name partners know it by, where ours is an alias.
    pub partner_code: String,
    /// Canonical URL of our SearchParameter resource.
    pub url: String,
    /// Where the definition stands in the bundle.
    pub order: usize,
    /// For references: the types the reference may point at.
    pub targets: Vec<String>,
    pub description: String,
}

impl ParamDef {
    /// `patient` or `subject`: the parameter a clinical search names its one patient
    /// by (other reference parameters name records: an encounter, a performer).
    pub fn names_patient(&self) -> bool {
        self.kind == ParamKind::Reference && matches!(self.code.as_str(), "patient" | "subject")
    }
}

pub struct Registry {
    by_type: HashMap<(ResourceType, String), ParamDef>,
    /// What every record's judging and sorting asks of its type, found once (by
    /// `ResourceType::index`): its compartment's parameters and its sort dates.
    compartments: Vec<Vec<ParamDef>>,
    sort_dates: Vec<Vec<ParamDef>>,
}

impl Registry {
    /// The registry built from the bundled profile; panics at start if the bundled
    /// file is broken, which a unit test rules out.
    pub fn get() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            Registry::from_bundle(SEARCH_PARAMETERS).expect("bundled search parameters are valid")
        })
    }

    pub fn bundle_json() -> &'static str {
        SEARCH_PARAMETERS
    }

    pub fn lookup(&self, resource_type: ResourceType, code: &str) -> Option<&ParamDef> {
        self.by_type.get(&(resource_type, code.to_string()))
    }

    /// The parameters naming a record's patient (the Patient compartment), its own
    /// patient's first.
    pub fn compartment(&self, resource_type: ResourceType) -> &[ParamDef] {
        &self.compartments[resource_type.index()]
    }

    /// The parameter naming the patient a record is about.
    pub fn patient_param(&self, resource_type: ResourceType) -> Option<&ParamDef> {
        self.compartment(resource_type).first()
    }

    /// The date parameters a record of this type sorts by, the first that gives a
    /// date winning: `date` where the type has it, else its other date parameters in
    /// the order `search-parameters.json` defines them (Condition: onset-date, then
    /// recorded-date). None for Patient and directory records (meta.lastUpdated).
    pub fn sort_dates(&self, resource_type: ResourceType) -> &[ParamDef] {
        &self.sort_dates[resource_type.index()]
    }

    fn find_compartment(
        by_type: &HashMap<(ResourceType, String), ParamDef>,
        resource_type: ResourceType,
    ) -> Vec<ParamDef> {
        resource_type
            .compartment_params()
            .iter()
            .filter_map(|code| by_type.get(&(resource_type, code.clone())).cloned())
            .collect()
    }

    fn find_sort_dates(
        by_type: &HashMap<(ResourceType, String), ParamDef>,
        resource_type: ResourceType,
    ) -> Vec<ParamDef> {
        if !resource_type.is_clinical() {
            return Vec::new();
        }
        if let Some(date) = by_type.get(&(resource_type, "date".to_string())) {
            return vec![date.clone()];
        }
        let mut dates: Vec<ParamDef> = by_type
            .iter()
            .filter(|((t, code), d)| {
                *t == resource_type && d.kind == ParamKind::Date && !code.starts_with('_')
            })
            .map(|(_, d)| d.clone())
            .collect();
        dates.sort_by_key(|d| d.order);
        dates
    }

    /// Every `(source type, parameter)` whose references may point at `target`: what
    /// `_revinclude` can bring for a search of `target`.
    pub fn pointing_at(&self, target: ResourceType) -> Vec<(ResourceType, &ParamDef)> {
        let mut found: Vec<(ResourceType, &ParamDef)> = self
            .by_type
            .iter()
            .filter(|(_, d)| {
                d.kind == ParamKind::Reference && d.targets.iter().any(|t| t == target.as_str())
            })
            .map(|((t, _), d)| (*t, d))
            .collect();
        found.sort_by(|a, b| (a.0, &a.1.code).cmp(&(b.0, &b.1.code)));
        found
    }

    /// All parameters for a type, sorted by code, for the CapabilityStatement.
    pub fn for_type(&self, resource_type: ResourceType) -> Vec<&ParamDef> {
        let mut defs: Vec<&ParamDef> = self
            .by_type
            .iter()
            .filter(|((t, _), _)| *t == resource_type)
            .map(|(_, d)| d)
            .collect();
        defs.sort_by(|a, b| a.code.cmp(&b.code));
        defs
    }

    fn from_bundle(text: &str) -> Result<Registry, String> {
        let bundle: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let entries = bundle["entry"].as_array().ok_or("bundle has no entries")?;
        let mut by_type = HashMap::new();
        for (order, entry) in entries.iter().enumerate() {
            let sp = &entry["resource"];
            let field = |name: &str| {
                sp[name]
                    .as_str()
                    .map(str::to_string)
                    .ok_or(format!("SearchParameter without {name}"))
            };
            let code = field("code")?;
            let kind = match field("type")?.as_str() {
                "token" => ParamKind::Token,
                "date" => ParamKind::Date,
                "string" => ParamKind::String,
                "reference" => ParamKind::Reference,
                "quantity" => ParamKind::Quantity,
                other => return Err(format!("unsupported parameter type {other}")),
            };
            let partner_code = sp["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| {
                    e["url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with(PARTNER_CODE_EXTENSION))
                })
                .and_then(|e| e["valueCode"].as_str())
                .unwrap_or(&code)
                .to_string();
            let modifiers = sp["modifier"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect::<Vec<_>>();
            let expression = field("expression")?;
            let targets: Vec<String> = sp["target"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
            for base in sp["base"]
                .as_array()
                .ok_or("SearchParameter without base")?
            {
                let base = base.as_str().ok_or("base is not a string")?;
                let resource_type: ResourceType = base.parse().map_err(|e| format!("{e}"))?;
                let paths = paths_for(&expression, resource_type);
                if paths.is_empty() {
                    return Err(format!("{code}: expression has no path for {base}"));
                }
                let def = ParamDef {
                    code: code.clone(),
                    kind,
                    paths,
                    modifiers: modifiers.clone(),
                    partner_code: partner_code.clone(),
                    url: field("url")?,
                    description: field("description")?,
                    order,
                    targets: targets.clone(),
                };
                if by_type.insert((resource_type, code.clone()), def).is_some() {
                    return Err(format!("{code} defined twice for {base}"));
                }
            }
        }
        let per_type = |find: fn(&_, ResourceType) -> Vec<ParamDef>| {
            let mut found = vec![Vec::new(); ResourceType::all().len()];
            for t in ResourceType::all() {
                found[t.index()] = find(&by_type, *t);
            }
            found
        };
        let compartments = per_type(Registry::find_compartment);
        let sort_dates = per_type(Registry::find_sort_dates);
        Ok(Registry {
            by_type,
            compartments,
            sort_dates,
        })
    }
}

fn paths_for(expression: &str, resource_type: ResourceType) -> Vec<Vec<String>> {
    expression
        .split('|')
        .filter_map(|alternative| {
            let mut segments = alternative.trim().split('.');
            let head = segments.next()?;
            (head == "Resource" || head == resource_type.as_str())
                .then(|| segments.map(str::to_string).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_parameters_load_and_cover_every_type() {
        let registry = Registry::get();
        for t in ResourceType::all().iter().copied() {
            assert!(registry.lookup(t, "_id").is_some(), "{t} _id");
            assert!(
                registry.lookup(t, "_lastUpdated").is_some(),
                "{t} _lastUpdated"
            );
            // Every parameter the compartment names is defined, as a reference.
            for code in t.compartment_params() {
                let def = registry
                    .lookup(t, code)
                    .unwrap_or_else(|| panic!("{t} {code}"));
                assert_eq!(def.kind, ParamKind::Reference, "{t} {code}");
            }
            if t.is_clinical() {
                assert!(
                    !registry.sort_dates(t).is_empty(),
                    "{t} has a clinical date"
                );
            }
        }
        for t in ResourceType::clinical() {
            assert!(registry.lookup(t, "patient").is_some(), "{t} patient");
            assert!(registry.patient_param(t).is_some(), "{t}");
        }
        let allergy = ResourceType::named("AllergyIntolerance");
        let subject = registry.lookup(allergy, "subject").unwrap();
        assert_eq!(subject.partner_code, "patient");
        assert_eq!(subject.paths, vec![vec!["patient".to_string()]]);
        assert!(registry.lookup(allergy, "clinical-status").is_some());
        assert!(registry.lookup(allergy, "status").is_none());
        let condition = ResourceType::named("Condition");
        assert!(
            registry.lookup(condition, "date").is_none(),
            "R4: Condition has no date"
        );
        assert!(registry.lookup(condition, "onset-date").is_some());
        let sorted_by: Vec<&str> = registry
            .sort_dates(condition)
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        assert_eq!(sorted_by, ["onset-date", "recorded-date", "abatement-date"]);
        assert!(
            registry
                .lookup(ResourceType::named("Immunization"), "vaccine-code")
                .is_some()
        );
    }

    #[test]
    fn bundled_parameters_are_valid_r4() {
        let bundle: Value = serde_json::from_str(SEARCH_PARAMETERS).unwrap();
        fhir_codec::validate_r4_json(&bundle).unwrap();
    }
}
