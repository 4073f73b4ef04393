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
    pub description: String,
}

pub struct Registry {
    by_type: HashMap<(ResourceType, String), ParamDef>,
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
        for entry in entries {
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
                };
                if by_type.insert((resource_type, code.clone()), def).is_some() {
                    return Err(format!("{code} defined twice for {base}"));
                }
            }
        }
        Ok(Registry { by_type })
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
        for t in ResourceType::ALL {
            assert!(registry.lookup(t, "_id").is_some(), "{t} _id");
            assert!(
                registry.lookup(t, "_lastUpdated").is_some(),
                "{t} _lastUpdated"
            );
        }
        for t in ResourceType::CLINICAL {
            for code in ["patient", "subject", "date", "code", "category"] {
                assert!(registry.lookup(t, code).is_some(), "{t} {code}");
            }
        }
        let subject = registry
            .lookup(ResourceType::AllergyIntolerance, "subject")
            .unwrap();
        assert_eq!(subject.partner_code, "patient");
        assert_eq!(subject.paths, vec![vec!["patient".to_string()]]);
        assert!(
            registry
                .lookup(ResourceType::AllergyIntolerance, "clinical-status")
                .is_some()
        );
        assert!(
            registry
                .lookup(ResourceType::AllergyIntolerance, "status")
                .is_none()
        );
    }

    #[test]
    fn bundled_parameters_are_valid_r4() {
        let bundle: Value = serde_json::from_str(SEARCH_PARAMETERS).unwrap();
        fhir_codec::validate_r4_json(&bundle).unwrap();
    }
}
