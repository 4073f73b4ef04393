//! The sensitive categories and the codes that reveal them, read from the ValueSets in
//! `fhir-profiles/` (one per category, marked with its category code).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

const VALUE_SETS: [&str; 4] = [
    include_str!("../../fhir-profiles/valueset-sensitive-sexual-health.json"),
    include_str!("../../fhir-profiles/valueset-sensitive-fertility.json"),
    include_str!("../../fhir-profiles/valueset-sensitive-gender.json"),
    include_str!("../../fhir-profiles/valueset-sensitive-termination.json"),
];

/// ICD-10 systems, whose listed codes are three-character categories.
const ICD10_SYSTEMS: [&str; 2] = [
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-10-uk",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SensitiveCategory {
    SexualHealth,
    Fertility,
    Gender,
    Termination,
}

impl SensitiveCategory {
    pub const ALL: [SensitiveCategory; 4] = [
        SensitiveCategory::SexualHealth,
        SensitiveCategory::Fertility,
        SensitiveCategory::Gender,
        SensitiveCategory::Termination,
    ];

    pub fn code(self) -> &'static str {
        match self {
            SensitiveCategory::SexualHealth => "sexual-health",
            SensitiveCategory::Fertility => "fertility",
            SensitiveCategory::Gender => "gender",
            SensitiveCategory::Termination => "termination",
        }
    }
}

impl fmt::Display for SensitiveCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for SensitiveCategory {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SensitiveCategory::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or_else(|| format!("'{s}' is not a sensitive category"))
    }
}

/// Which category each listed code reveals.
pub struct CodeIndex {
    exact: HashMap<(String, String), SensitiveCategory>,
}

impl CodeIndex {
    pub fn bundled() -> CodeIndex {
        let mut exact = HashMap::new();
        for text in VALUE_SETS {
            let value_set: Value = serde_json::from_str(text).expect("bundled ValueSet is JSON");
            let category: SensitiveCategory =
                value_set["useContext"][0]["valueCodeableConcept"]["coding"][0]["code"]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .expect("bundled ValueSet names its category");
            for include in value_set["compose"]["include"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let system = include["system"].as_str().expect("include has a system");
                for concept in include["concept"].as_array().into_iter().flatten() {
                    let code = concept["code"].as_str().expect("concept has a code");
                    exact.insert((system.to_string(), code.to_string()), category);
                }
            }
        }
        CodeIndex { exact }
    }

    /// The category a coding reveals, if any. An ICD-10 code matches its listed
    /// three-character category (`A56.0` under `A56`).
    pub fn category(&self, system: &str, code: &str) -> Option<SensitiveCategory> {
        if let Some(category) = self.exact.get(&(system.to_string(), code.to_string())) {
            return Some(*category);
        }
        if ICD10_SYSTEMS.contains(&system) {
            let head = code.get(..3)?;
            return ICD10_SYSTEMS
                .iter()
                .find_map(|s| self.exact.get(&(s.to_string(), head.to_string())))
                .copied();
        }
        None
    }

    pub fn len(&self) -> usize {
        self.exact.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_codes_and_codes_are_strings_of_digits_or_icd10() {
        let index = CodeIndex::bundled();
        assert!(index.len() > 30);
        for category in SensitiveCategory::ALL {
            assert!(index.exact.values().any(|c| *c == category), "{category}");
        }
        for (system, code) in index.exact.keys() {
            match system.as_str() {
                "http://snomed.info/sct" => assert!(
                    code.chars().all(|c| c.is_ascii_digit()) && code.len() >= 6,
                    "{code}"
                ),
                _ => assert!(
                    code.len() == 3 && code.as_bytes()[0].is_ascii_uppercase(),
                    "{code}"
                ),
            }
        }
    }

    #[test]
    fn icd10_codes_match_their_category() {
        let index = CodeIndex::bundled();
        assert_eq!(
            index.category("http://hl7.org/fhir/sid/icd-10", "A56.0"),
            Some(SensitiveCategory::SexualHealth)
        );
        assert_eq!(
            index.category("http://hl7.org/fhir/sid/icd-10-uk", "F64.0"),
            Some(SensitiveCategory::Gender)
        );
        assert_eq!(
            index.category("http://hl7.org/fhir/sid/icd-10", "A49"),
            None
        );
        assert_eq!(index.category("http://hl7.org/fhir/sid/icd-10", "O0"), None);
        assert_eq!(
            index.category("http://snomed.info/sct", "57797005"),
            Some(SensitiveCategory::Termination)
        );
        assert_eq!(
            index.category("http://loinc.org", "57797005"),
            None,
            "the system must match"
        );
    }
}
