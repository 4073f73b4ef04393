//! A practice's whole structured record per patient, and what part of it answers a
//! request: the Lists of the areas asked, the records they list and everything those
//! point at, the problems linked to them, and the practice's directory; never a
//! consultation unless consultations were asked, as GP Connect providers answer.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::federation::gp_connect::area::{Area, Areas};
use crate::federation::identity::nhs_number_of;
use crate::fhir::NhsNumber;

const CONSULTATION_LISTS: [&str; 3] = ["325851000000107", "25851000000105", "24781000000107"];
const RELATED_CLINICAL_CONTENT: &str = "RelatedClinicalContent-1";

/// How the practice is set up.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PracticeSetup {
    /// The practice system's ASID: requests must be addressed to it (`Ssp-To`).
    pub asid: String,
    /// Patients who have dissented from sharing their GP record.
    pub dissented: Vec<String>,
    /// `include*` parameters the practice has switched off.
    pub disabled: Vec<String>,
}

/// Every registered patient's record, as STU3 resources.
#[derive(Debug, Clone, Default)]
pub struct PracticeRecords {
    pub records: BTreeMap<NhsNumber, Vec<Value>>,
    pub setup: PracticeSetup,
}

impl PracticeRecords {
    /// Each `*.json` Bundle in `dir` is one patient's record; `practice.json` the setup.
    pub fn load(dir: &Path) -> std::io::Result<PracticeRecords> {
        let invalid = |file: &Path, e: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", file.display()),
            )
        };
        let mut practice = PracticeRecords::default();
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let text = std::fs::read_to_string(file)?;
            if file.file_name().is_some_and(|n| n == "practice.json") {
                practice.setup =
                    serde_json::from_str(&text).map_err(|e| invalid(file, e.to_string()))?;
                continue;
            }
            let bundle: Value =
                serde_json::from_str(&text).map_err(|e| invalid(file, e.to_string()))?;
            let resources: Vec<Value> = bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"].clone())
                .collect();
            let nhs = resources
                .iter()
                .find(|r| r["resourceType"] == "Patient")
                .and_then(nhs_number_of)
                .ok_or_else(|| invalid(file, "no Patient with an NHS number".into()))?;
            practice.records.insert(nhs, resources);
        }
        Ok(practice)
    }

    /// Resources held in all.
    pub fn len(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// What was asked for, from the request's Parameters.
#[derive(Debug, Default)]
pub struct Asked {
    pub areas: Areas,
    pub resolved_allergies: bool,
    pub prescription_issues: bool,
    pub not_given_immunisations: bool,
}

/// The part of `record` that answers `asked`, minus the `disabled` areas.
pub fn answer(record: &[Value], asked: &Asked, disabled: Areas) -> Vec<Value> {
    let areas = Areas::default();
    let areas = asked
        .areas
        .iter()
        .filter(|a| !disabled.contains(*a))
        .fold(areas, Areas::with);
    let key = |r: &Value| {
        format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or_default(),
            r["id"].as_str().unwrap_or_default()
        )
    };
    let by_key: BTreeMap<String, &Value> = record.iter().map(|r| (key(r), r)).collect();
    let list_area = |l: &Value| {
        l["code"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| c["code"].as_str().and_then(Area::of_list_code))
    };
    let is_consultation_structure = |l: &Value| {
        l["code"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| CONSULTATION_LISTS.contains(&c["code"].as_str().unwrap_or_default()))
    };
    // Records of a disabled area are never sent, even from inside a consultation.
    let mut barred: HashSet<String> = HashSet::new();
    for list in record.iter().filter(|r| r["resourceType"] == "List") {
        if list_area(list).is_some_and(|a| disabled.contains(a)) {
            barred.extend(list_items(list));
        }
    }
    let mut chosen: Vec<Value> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut frontier: Vec<String> = Vec::new();
    for list in record.iter().filter(|r| r["resourceType"] == "List") {
        let Some(area) = list_area(list) else {
            continue;
        };
        if !areas.contains(area) {
            continue;
        }
        let ended = list["code"]["coding"][0]["code"] == "1103671000000101";
        if ended && !asked.resolved_allergies {
            continue;
        }
        let mut list = list.clone();
        if area == Area::Immunisations && !asked.not_given_immunisations {
            let not_given: Vec<String> = record
                .iter()
                .filter(|r| r["resourceType"] == "Immunization" && r["notGiven"] == true)
                .map(key)
                .collect();
            if let Some(entries) = list["entry"].as_array_mut() {
                entries.retain(|e| {
                    !not_given
                        .iter()
                        .any(|k| e["item"]["reference"] == k.as_str())
                });
            }
        }
        frontier.extend(list_items(&list));
        seen.insert(key(&list));
        chosen.push(list);
    }
    if areas.contains(Area::Consultations) {
        for list in record
            .iter()
            .filter(|r| r["resourceType"] == "List" && is_consultation_structure(r))
        {
            let mut list = list.clone();
            if let Some(entries) = list["entry"].as_array_mut() {
                entries.retain(|e| {
                    !barred.contains(e["item"]["reference"].as_str().unwrap_or_default())
                });
            }
            // Its items, and the problems its topics are about.
            let mut pointed = Vec::new();
            references(&list, &mut pointed);
            frontier.extend(pointed.into_iter().filter(|r| !r.starts_with("List/")));
            seen.insert(key(&list));
            chosen.push(list);
        }
    }
    let patient = record.iter().find(|r| r["resourceType"] == "Patient");
    frontier.extend(patient.map(key));
    // Everything the chosen records point at, and the problems linked to them.
    loop {
        while let Some(next) = frontier.pop() {
            if seen.contains(&next) || barred.contains(&next) {
                continue;
            }
            let Some(resource) = by_key.get(&next) else {
                continue;
            };
            if resource["resourceType"] == "Encounter" && !areas.contains(Area::Consultations) {
                continue;
            }
            if resource["resourceType"] == "MedicationRequest"
                && resource["intent"] == "order"
                && !asked.prescription_issues
            {
                continue;
            }
            seen.insert(next.clone());
            let mut pointed = Vec::new();
            references(resource, &mut pointed);
            frontier.extend(pointed);
            chosen.push((*resource).clone());
            // A plan brings its issues.
            if resource["resourceType"] == "MedicationRequest"
                && resource["intent"] == "plan"
                && asked.prescription_issues
            {
                let plan = next.clone();
                frontier.extend(
                    record
                        .iter()
                        .filter(|r| {
                            r["resourceType"] == "MedicationRequest"
                                && r["basedOn"].to_string().contains(&format!("\"{plan}\""))
                        })
                        .map(key),
                );
            }
        }
        let linked: Vec<String> = record
            .iter()
            .filter(|r| r["resourceType"] == "Condition" && !seen.contains(&key(r)))
            .filter(|c| related_content(c).iter().any(|r| seen.contains(r)))
            .map(key)
            .collect();
        if linked.is_empty() {
            break;
        }
        frontier.extend(linked);
    }
    chosen
}

fn list_items(list: &Value) -> Vec<String> {
    list["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["item"]["reference"].as_str().map(str::to_string))
        .filter(|r| !r.starts_with('#'))
        .collect()
}

fn references(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("reference")
                && !r.starts_with('#')
            {
                out.push(r.clone());
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn related_content(condition: &Value) -> Vec<String> {
    condition["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(RELATED_CLINICAL_CONTENT))
        })
        .filter_map(|e| {
            e["valueReference"]["reference"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// A GP Connect OperationOutcome.
pub fn outcome(severity: &str, code: &str, spine_code: &str, text: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"]},
        "issue": [{
            "severity": severity,
            "code": code,
            "details": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1", "code": spine_code}], "text": text},
            "diagnostics": text
        }]
    })
}
