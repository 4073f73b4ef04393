//! What a practice's answer to `$gpc.getstructuredrecord` means: its errors (the
//! patient dissented, is not known, the request was refused), and in a structured
//! record, the records as R4, the Lists' warnings and the areas it did not answer.

use std::collections::{BTreeMap, HashMap};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::area::{Area, Areas};
use super::convert::{self, Converted, Subject};
use crate::federation::exchange::Answer;
use crate::federation::identity::nhs_number_of;
use crate::federation::partner::PartnerFailure;
use crate::fhir::{NhsNumber, ResourceType};

const WARNING_CODE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-ListWarningCode-1";
/// A consultation's List, whose topics name the problems it was about.
const CONSULTATION_LIST: &str = "325851000000107";

/// A practice-wide warning, to the professional.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Warning {
    /// A GP2GP transfer from the previous practice is not complete.
    DataInTransit,
    /// Records from a previous practice are awaiting filing.
    DataAwaitingFiling,
}

impl Warning {
    pub fn text(&self) -> &'static str {
        match self {
            Warning::DataInTransit => {
                "the practice's record is incomplete: a transfer from the previous practice is in progress"
            }
            Warning::DataAwaitingFiling => {
                "the practice's record is incomplete: records from a previous practice are awaiting filing"
            }
        }
    }
}

/// A structured record, converted.
#[derive(Debug, Default)]
pub struct Record {
    pub patient: Option<Value>,
    /// Records of the types the facade serves, as R4, by local id.
    pub records: Vec<Value>,
    /// Records kept only to judge what points at them.
    pub judged_only: Vec<Value>,
    /// Records left out because they did not convert, by the type they would be.
    pub unconvertible: BTreeMap<String, usize>,
    pub warnings: Vec<Warning>,
    /// Areas the practice does not share (`NOT_IMPLEMENTED`).
    pub disabled: Areas,
}

impl Record {
    pub fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &Value> {
        let patient = self
            .patient
            .iter()
            .filter(move |_| resource_type.is_patient());
        let records = self
            .records
            .iter()
            .filter(move |r| r["resourceType"] == resource_type.as_str());
        patient.chain(records)
    }

    /// Every record, served or judged only.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.patient
            .iter()
            .chain(&self.records)
            .chain(&self.judged_only)
    }
}

/// What the practice said.
#[derive(Debug)]
pub enum Said {
    Record(Record),
    /// `PATIENT_NOT_FOUND`: not registered there (or deceased, or not to be found).
    NotKnown,
}

/// Reads the practice's `answer` to a request for `nhs`'s record.
pub fn interpret(answer: Answer, nhs: &NhsNumber) -> Result<Said, PartnerFailure> {
    if !answer.status.is_success() {
        let spine = answer.body.as_ref().and_then(spine_code);
        tracing::info!(
            status = answer.status.as_u16(),
            spine_code = spine.as_deref().unwrap_or("-"),
            "a GP Connect practice refused a structured record request"
        );
        return match (answer.status, spine.as_deref()) {
            (StatusCode::FORBIDDEN, Some("NO_PATIENT_CONSENT")) => {
                Err(PartnerFailure::PatientDissent)
            }
            (StatusCode::NOT_FOUND, Some("PATIENT_NOT_FOUND")) => Ok(Said::NotKnown),
            (StatusCode::LOOP_DETECTED, _) => Err(PartnerFailure::LoopRefused),
            (status, _) => Err(PartnerFailure::HttpStatus(status.as_u16())),
        };
    }
    let malformed = PartnerFailure::Malformed("a GP Connect structured record");
    let bundle = answer.body.ok_or(malformed.clone())?;
    if bundle["resourceType"] != "Bundle" || bundle["type"] != "collection" {
        return Err(malformed);
    }
    let resources: Vec<&Value> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r.is_object())
        .collect();
    // The record must be of the patient asked for; other patients' are never read.
    let patient = resources
        .iter()
        .find(|r| r["resourceType"] == "Patient" && nhs_number_of(r).as_ref() == Some(nhs))
        .ok_or(PartnerFailure::Malformed(
            "a structured record of the patient asked for",
        ))?;
    let patient_id = patient["id"].as_str().unwrap_or_default();
    let subject = Subject { nhs, patient_id };
    let mut record = Record::default();
    let mut lists = Vec::new();
    let mut stu3_records: Vec<&Value> = Vec::new();
    for resource in &resources {
        match resource["resourceType"].as_str() {
            Some("List") => lists.push(*resource),
            Some("OperationOutcome") => {
                record.disabled = record.disabled.union(disabled_areas(resource))
            }
            Some("Patient") if resource["id"] != patient_id => {}
            _ => stu3_records.push(resource),
        }
    }
    let mut contained = Vec::new();
    for list in &lists {
        for warning in list_warnings(list) {
            if !record.warnings.contains(&warning) {
                record.warnings.push(warning);
            }
        }
        // Ended allergies travel inside their List.
        contained.extend(list["contained"].as_array().into_iter().flatten());
    }
    record.warnings.sort();
    let reasons = consultation_problems(&lists, &subject);
    let mut seen = std::collections::HashSet::new();
    for stu3 in stu3_records.into_iter().chain(contained.iter().copied()) {
        let Some(converted) = convert::convert(stu3, &subject) else {
            continue;
        };
        match converted {
            Ok(Converted::Served(mut r4)) => {
                let key = (r4["resourceType"].to_string(), r4["id"].to_string());
                if !seen.insert(key) {
                    continue;
                }
                if r4["resourceType"] == "Encounter"
                    && let Some(problems) = r4["id"].as_str().and_then(|id| reasons.get(id))
                {
                    add_reasons(&mut r4, problems);
                }
                match r4["resourceType"] == "Patient" {
                    true => record.patient = Some(r4),
                    false => record.records.push(r4),
                }
            }
            Ok(Converted::JudgedOnly(r4)) => record.judged_only.push(r4),
            Err(why) => {
                let type_name = convert::r4_type_of(stu3["resourceType"].as_str().unwrap_or("?"));
                tracing::warn!(resource_type = type_name, reason = %why, "a GP Connect record did not convert to FHIR R4 and was left out");
                *record
                    .unconvertible
                    .entry(type_name.to_string())
                    .or_default() += 1;
            }
        }
    }
    if record.patient.is_none() {
        return Err(PartnerFailure::Malformed(
            "a structured record with a usable Patient",
        ));
    }
    Ok(Said::Record(record))
}

/// The Spine error code of an OperationOutcome.
fn spine_code(outcome: &Value) -> Option<String> {
    outcome["issue"]
        .as_array()?
        .iter()
        .flat_map(|i| i["details"]["coding"].as_array().into_iter().flatten())
        .filter(|c| {
            c["system"]
                .as_str()
                .is_some_and(|s| s.ends_with("Spine-ErrorOrWarningCode-1"))
        })
        .find_map(|c| c["code"].as_str().map(str::to_string))
}

/// The areas an OperationOutcome entry says were not answered: disabled, or a
/// parameter the practice does not recognise. A part it does not recognise leaves
/// its area answered.
fn disabled_areas(outcome: &Value) -> Areas {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            i["details"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["code"] == "NOT_IMPLEMENTED")
        })
        .filter_map(|i| {
            let named = i["diagnostics"]
                .as_str()
                .or_else(|| i["details"]["text"].as_str()?.split_whitespace().next())?;
            let name = named.split_whitespace().next()?;
            (!name.contains('.'))
                .then(|| Area::of_parameter(name))
                .flatten()
        })
        .fold(Areas::default(), Areas::with)
}

fn list_warnings(list: &Value) -> Vec<Warning> {
    list["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == WARNING_CODE)
        .filter_map(|e| match e["valueCode"].as_str()? {
            "data-in-transit" => Some(Warning::DataInTransit),
            "data-awaiting-filing" => Some(Warning::DataAwaitingFiling),
            // `confidential-items` is not repeated: the facade's constant notice
            // already says some items are never shared.
            _ => None,
        })
        .collect()
}

/// Each consultation's problems, from its topics' related problem headers, by the
/// Encounter's converted id: in R4 the Encounter's `reasonReference`, by which the
/// release stage judges it.
fn consultation_problems(lists: &[&Value], subject: &Subject) -> HashMap<String, Vec<String>> {
    let by_id: HashMap<&str, &Value> = lists
        .iter()
        .filter_map(|l| Some((l["id"].as_str()?, *l)))
        .collect();
    let mut problems: HashMap<String, Vec<String>> = HashMap::new();
    let is_consultation = |l: &Value| {
        l["code"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["code"] == CONSULTATION_LIST)
    };
    for consultation in lists.iter().filter(|l| is_consultation(l)) {
        let Some(encounter) = consultation["encounter"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Encounter/"))
        else {
            continue;
        };
        let encounter_id = format!("{}.{encounter}", subject.nhs);
        for topic in consultation["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["item"]["reference"].as_str()?.strip_prefix("List/"))
            .filter_map(|id| by_id.get(id))
        {
            for target in related_problems(topic) {
                let reference = format!("Condition/{}.{target}", subject.nhs);
                let listed = problems.entry(encounter_id.clone()).or_default();
                if !listed.contains(&reference) {
                    listed.push(reference);
                }
            }
        }
    }
    problems
}

/// The problem ids a topic List's `relatedProblemHeader` extensions name.
fn related_problems(topic: &Value) -> Vec<&str> {
    topic["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("RelatedProblemHeader-1"))
        })
        .flat_map(|e| e["extension"].as_array().into_iter().flatten())
        .filter(|part| part["url"] == "target")
        .filter_map(|part| {
            part["valueReference"]["reference"]
                .as_str()?
                .strip_prefix("Condition/")
        })
        .collect()
}

fn add_reasons(encounter: &mut Value, problems: &[String]) {
    let reasons = encounter
        .as_object_mut()
        .map(|e| e.entry("reasonReference").or_insert_with(|| json!([])));
    if let Some(Value::Array(reasons)) = reasons {
        for problem in problems {
            if !reasons.iter().any(|r| r["reference"] == problem.as_str()) {
                reasons.push(json!({"reference": problem}));
            }
        }
    }
}
