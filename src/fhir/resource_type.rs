//! The resource types the facade serves, read from `fhir-profiles/`: the Patient
//! CompartmentDefinition lists them (in the order the facade lists them) and says
//! how each names its patient; `search-parameters.json` says how each is searched.
//! Adding a type is an entry in each, and a line in `MANDATORY` below; no other code
//! names a type but Patient.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde_json::Value;

const PATIENT_COMPARTMENT: &str =
    include_str!("../../fhir-profiles/compartmentdefinition-patient.json");

/// The top-level elements R4 makes mandatory (minimum cardinality 1), which
/// `_elements` always keeps so that a subset is still a valid resource; a choice
/// element by its stem (`medication` for `medication[x]`).
const MANDATORY: &[(&str, &[&str])] = &[
    ("AllergyIntolerance", &["patient"]),
    ("CarePlan", &["status", "intent", "subject"]),
    ("Condition", &["subject"]),
    ("DiagnosticReport", &["status", "code"]),
    ("Encounter", &["status", "class"]),
    (
        "Immunization",
        &["status", "vaccineCode", "patient", "occurrence"],
    ),
    (
        "MedicationRequest",
        &["status", "intent", "medication", "subject"],
    ),
    ("MedicationStatement", &["status", "medication", "subject"]),
    ("Observation", &["status", "code"]),
    ("Procedure", &["status", "subject"]),
    ("ServiceRequest", &["status", "intent", "subject"]),
];

/// A resource type the facade answers for; anything else is 404 `not-supported`.
/// Ordered as the compartment definition lists them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(u8);

/// What the facade knows of a served type.
#[derive(Debug)]
struct TypeDef {
    name: &'static str,
    /// Search parameters naming the patient, the record's own patient first; empty
    /// for directory records (and for Patient, the compartment's owner).
    compartment: Vec<String>,
}

struct Types {
    defs: Vec<TypeDef>,
    by_name: HashMap<&'static str, ResourceType>,
    all: Vec<ResourceType>,
    patient: ResourceType,
}

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| load(PATIENT_COMPARTMENT).expect("the bundled compartment is valid"))
}

fn load(compartment: &str) -> Result<Types, String> {
    let compartment: Value = serde_json::from_str(compartment).map_err(|e| e.to_string())?;
    let owner = compartment["code"]
        .as_str()
        .ok_or("compartment without code")?;
    let entries = compartment["resource"].as_array().ok_or("no resources")?;
    if entries.len() > u8::MAX as usize {
        return Err("too many types".into());
    }
    let mut defs = Vec::new();
    let mut by_name = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let code = entry["code"].as_str().ok_or("resource without code")?;
        let name: &'static str = Box::leak(code.to_string().into_boxed_str());
        if by_name.insert(name, ResourceType(index as u8)).is_some() {
            return Err(format!("{name} is listed twice"));
        }
        let compartment = entry["param"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        defs.push(TypeDef { name, compartment });
    }
    let patient = *by_name
        .get(owner)
        .ok_or("the compartment's owner is not served")?;
    let all = (0..defs.len() as u8).map(ResourceType).collect();
    Ok(Types {
        defs,
        by_name,
        all,
        patient,
    })
}

impl ResourceType {
    /// Every served type, in order.
    pub fn all() -> &'static [ResourceType] {
        &types().all
    }

    /// The types that are about one patient (in the Patient compartment).
    pub fn clinical() -> impl Iterator<Item = ResourceType> {
        Self::all().iter().copied().filter(|t| t.is_clinical())
    }

    /// The compartment's owner.
    pub fn patient() -> ResourceType {
        types().patient
    }

    /// A served type by name; for types the code itself must name (tests, simulators).
    pub fn named(name: &str) -> ResourceType {
        name.parse()
            .unwrap_or_else(|_| panic!("{name} is not a served type"))
    }

    /// Where the type stands among `all()`: for tables kept per type.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    fn def(self) -> &'static TypeDef {
        &types().defs[self.0 as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.def().name
    }

    pub fn is_patient(self) -> bool {
        self == Self::patient()
    }

    /// About one patient: in the Patient compartment.
    pub fn is_clinical(self) -> bool {
        !self.def().compartment.is_empty()
    }

    /// Directory data (Medication, Organization, Practitioner...), in no patient's
    /// compartment: reached by reference.
    pub fn is_directory(self) -> bool {
        !self.is_patient() && !self.is_clinical()
    }

    /// The search parameters that name the record's patient, its own first.
    pub fn compartment_params(self) -> &'static [String] {
        &self.def().compartment
    }

    /// Top-level elements R4 makes mandatory (`_elements` keeps them).
    pub fn mandatory_elements(self) -> &'static [&'static str] {
        MANDATORY
            .iter()
            .find(|(name, _)| *name == self.as_str())
            .map_or(&[], |(_, elements)| elements)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource type {0} is not served")]
pub struct UnknownResourceType(pub String);

impl FromStr for ResourceType {
    type Err = UnknownResourceType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        types()
            .by_name
            .get(s)
            .copied()
            .ok_or_else(|| UnknownResourceType(s.to_string()))
    }
}

impl serde::Serialize for ResourceType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ResourceType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_types_and_the_compartment_agree() {
        let all: Vec<&str> = ResourceType::all().iter().map(|t| t.as_str()).collect();
        assert_eq!(all[0], "Patient");
        assert!(ResourceType::patient().is_patient());
        for t in [
            "Observation",
            "Condition",
            "Immunization",
            "MedicationRequest",
        ] {
            assert!(ResourceType::named(t).is_clinical(), "{t}");
        }
        for t in [
            "Medication",
            "Organization",
            "Practitioner",
            "PractitionerRole",
        ] {
            assert!(ResourceType::named(t).is_directory(), "{t}");
        }
        assert!("Basic".parse::<ResourceType>().is_err());
        let compartment: Value = serde_json::from_str(PATIENT_COMPARTMENT).unwrap();
        fhir_codec::validate_r4_json(&compartment).unwrap();
        for (name, _) in MANDATORY {
            assert!(name.parse::<ResourceType>().is_ok(), "{name} is served");
        }
        assert_eq!(
            ResourceType::named("Immunization")
                .mandatory_elements()
                .len(),
            4
        );
    }
}
