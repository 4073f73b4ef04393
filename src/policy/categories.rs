//! The sensitive categories and the codes that reveal them: the ValueSets bundled in
//! `fhir-profiles/` (one per category, marked with its category code), and the code
//! lists a deployer loads (`code_lists`), with SNOMED CT descendants where the
//! relationships are given.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

const VALUE_SETS: [(&str, &str); 4] = [
    (
        "fhir-profiles/valueset-sensitive-sexual-health.json",
        include_str!("../../fhir-profiles/valueset-sensitive-sexual-health.json"),
    ),
    (
        "fhir-profiles/valueset-sensitive-fertility.json",
        include_str!("../../fhir-profiles/valueset-sensitive-fertility.json"),
    ),
    (
        "fhir-profiles/valueset-sensitive-gender.json",
        include_str!("../../fhir-profiles/valueset-sensitive-gender.json"),
    ),
    (
        "fhir-profiles/valueset-sensitive-termination.json",
        include_str!("../../fhir-profiles/valueset-sensitive-termination.json"),
    ),
];

pub const SNOMED: &str = "http://snomed.info/sct";

/// ICD-10 systems, whose listed codes match every code beneath them.
pub const ICD10_SYSTEMS: [&str; 2] = [
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

/// Codes of one category from one source (a bundled ValueSet, a deployer's file).
#[derive(Debug, Clone)]
pub struct CodeList {
    pub category: SensitiveCategory,
    /// Where the codes came from, for `check` and error messages.
    pub source: String,
    /// `(system, code)`.
    pub codes: Vec<(String, String)>,
}

/// How many codes each category has from each source, and from descendants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeCounts {
    pub by_source: BTreeMap<SensitiveCategory, Vec<(String, usize)>>,
    pub descendants: BTreeMap<SensitiveCategory, usize>,
}

/// Which categories each listed code reveals.
#[derive(Debug, Default)]
pub struct CodeIndex {
    exact: HashMap<(String, String), Vec<SensitiveCategory>>,
    counts: CodeCounts,
}

impl CodeIndex {
    /// The bundled lists alone.
    pub fn bundled() -> CodeIndex {
        CodeIndex::new(bundled_lists(), None)
    }

    /// The lists given, with every SNOMED CT concept's is-a descendants when
    /// `children` (parent -> children) is given.
    pub fn new(lists: Vec<CodeList>, children: Option<&HashMap<u64, Vec<u64>>>) -> CodeIndex {
        let mut index = CodeIndex::default();
        for list in lists {
            let mut added = 0;
            for (system, code) in list.codes {
                if index.add(system, normalise(&code), list.category) {
                    added += 1;
                }
            }
            index
                .counts
                .by_source
                .entry(list.category)
                .or_default()
                .push((list.source, added));
        }
        if let Some(children) = children {
            index.add_descendants(children);
        }
        index
    }

    fn add(&mut self, system: String, code: String, category: SensitiveCategory) -> bool {
        let categories = self.exact.entry((system, code)).or_default();
        let new = !categories.contains(&category);
        if new {
            categories.push(category);
        }
        new
    }

    /// Every active is-a descendant of a listed SNOMED CT concept reveals what the
    /// concept does.
    fn add_descendants(&mut self, children: &HashMap<u64, Vec<u64>>) {
        let mut listed: Vec<(u64, SensitiveCategory)> = Vec::new();
        for ((system, code), categories) in &self.exact {
            if system == SNOMED
                && let Ok(id) = code.parse::<u64>()
            {
                listed.extend(categories.iter().map(|c| (id, *c)));
            }
        }
        for (root, category) in listed {
            let mut seen = HashSet::from([root]);
            let mut stack = vec![root];
            while let Some(concept) = stack.pop() {
                for child in children.get(&concept).into_iter().flatten() {
                    if seen.insert(*child) {
                        stack.push(*child);
                        if self.add(SNOMED.to_string(), child.to_string(), category) {
                            *self.counts.descendants.entry(category).or_default() += 1;
                        }
                    }
                }
            }
        }
    }

    /// The categories a coding reveals. An ICD-10 code matches every code listed
    /// above it (`A56.0` under `A56`; dots are ignored, so `A560` too).
    pub fn categories(&self, system: &str, code: &str) -> Vec<SensitiveCategory> {
        if ICD10_SYSTEMS.contains(&system) {
            let code = normalise(code);
            let mut found = Vec::new();
            for end in (3..=code.len()).filter(|e| code.is_char_boundary(*e)) {
                for icd in ICD10_SYSTEMS {
                    if let Some(categories) =
                        self.exact.get(&(icd.to_string(), code[..end].to_string()))
                    {
                        found.extend(categories.iter().copied());
                    }
                }
            }
            found.sort();
            found.dedup();
            return found;
        }
        self.exact
            .get(&(system.to_string(), code.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.exact.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// Codes per category and source, for `shcr-facade check`.
    pub fn counts(&self) -> &CodeCounts {
        &self.counts
    }
}

/// ICD-10 codes are compared without their dot (`A56.0` = `A560`); other codes as
/// they are.
fn normalise(code: &str) -> String {
    code.trim().replace('.', "")
}

/// The ValueSets bundled in `fhir-profiles/`, one per category.
pub fn bundled_lists() -> Vec<CodeList> {
    VALUE_SETS
        .iter()
        .map(|(source, text)| {
            let value_set: Value = serde_json::from_str(text).expect("bundled ValueSet is JSON");
            let category: SensitiveCategory =
                value_set["useContext"][0]["valueCodeableConcept"]["coding"][0]["code"]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .expect("bundled ValueSet names its category");
            let codes = value_set_codes(&value_set).expect("bundled ValueSet lists concepts");
            CodeList {
                category,
                source: format!("bundled {source}"),
                codes,
            }
        })
        .collect()
}

/// `(system, code)` of every concept a ValueSet's `compose.include` and
/// `expansion.contains` list.
pub fn value_set_codes(value_set: &Value) -> Result<Vec<(String, String)>, String> {
    let mut codes = Vec::new();
    for include in value_set["compose"]["include"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let system = include["system"]
            .as_str()
            .ok_or("a compose.include without a system")?;
        if include["filter"].is_array() || include["valueSet"].is_array() {
            return Err(format!(
                "compose.include for {system} uses a filter or another ValueSet; list the concepts (load the SNOMED CT relationships to add descendants)"
            ));
        }
        for concept in include["concept"].as_array().into_iter().flatten() {
            let code = concept["code"]
                .as_str()
                .ok_or("a concept without a code (codes are strings)")?;
            codes.push((system.to_string(), code.to_string()));
        }
    }
    for contains in value_set["expansion"]["contains"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(system), Some(code)) = (contains["system"].as_str(), contains["code"].as_str())
        {
            codes.push((system.to_string(), code.to_string()));
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_codes_and_codes_are_strings_of_digits_or_icd10() {
        let index = CodeIndex::bundled();
        assert!(index.len() > 30);
        for category in SensitiveCategory::ALL {
            assert!(
                index.exact.values().any(|c| c.contains(&category)),
                "{category}"
            );
        }
        for (system, code) in index.exact.keys() {
            match system.as_str() {
                SNOMED => assert!(
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
        let icd = "http://hl7.org/fhir/sid/icd-10";
        assert_eq!(
            index.categories(icd, "A56.0"),
            [SensitiveCategory::SexualHealth]
        );
        assert_eq!(
            index.categories(icd, "A560"),
            [SensitiveCategory::SexualHealth]
        );
        assert_eq!(
            index.categories("http://hl7.org/fhir/sid/icd-10-uk", "F64.0"),
            [SensitiveCategory::Gender]
        );
        assert!(index.categories(icd, "A49").is_empty());
        assert!(index.categories(icd, "O0").is_empty());
        assert!(index.categories(icd, "\u{2603}").is_empty());
        assert_eq!(
            index.categories(SNOMED, "57797005"),
            [SensitiveCategory::Termination]
        );
        assert!(
            index.categories("http://loinc.org", "57797005").is_empty(),
            "the system must match"
        );
    }

    #[test]
    fn descendants_of_listed_concepts_are_listed_too() {
        let lists = vec![CodeList {
            category: SensitiveCategory::SexualHealth,
            source: "test".into(),
            codes: vec![(SNOMED.into(), "100".into())],
        }];
        let children = HashMap::from([(100, vec![200, 300]), (200, vec![400]), (999, vec![100])]);
        let index = CodeIndex::new(lists, Some(&children));
        for code in ["100", "200", "300", "400"] {
            assert_eq!(
                index.categories(SNOMED, code),
                [SensitiveCategory::SexualHealth],
                "{code}"
            );
        }
        assert!(
            index.categories(SNOMED, "999").is_empty(),
            "not an ancestor"
        );
        assert_eq!(
            index.counts().descendants[&SensitiveCategory::SexualHealth],
            3
        );
    }
}
