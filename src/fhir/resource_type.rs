//! The resource types the facade serves.

use std::fmt;
use std::str::FromStr;

/// A resource type the facade answers for. Anything else is 404 `not-supported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Patient,
    MedicationStatement,
    AllergyIntolerance,
    Observation,
    Encounter,
    CarePlan,
}

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Patient,
        ResourceType::MedicationStatement,
        ResourceType::AllergyIntolerance,
        ResourceType::Observation,
        ResourceType::Encounter,
        ResourceType::CarePlan,
    ];

    /// The five types that are always about one patient.
    pub const CLINICAL: [ResourceType; 5] = [
        ResourceType::MedicationStatement,
        ResourceType::AllergyIntolerance,
        ResourceType::Observation,
        ResourceType::Encounter,
        ResourceType::CarePlan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Patient => "Patient",
            ResourceType::MedicationStatement => "MedicationStatement",
            ResourceType::AllergyIntolerance => "AllergyIntolerance",
            ResourceType::Observation => "Observation",
            ResourceType::Encounter => "Encounter",
            ResourceType::CarePlan => "CarePlan",
        }
    }

    pub fn is_clinical(self) -> bool {
        self != ResourceType::Patient
    }
}

impl fmt::Display for ResourceType {
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
        ResourceType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
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
