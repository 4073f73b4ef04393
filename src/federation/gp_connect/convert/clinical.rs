//! Clinical records, STU3 to R4: what moved, what became a CodeableConcept or a
//! list, and what R4 no longer has. Each function takes a record whose ids and
//! references are already converted.

use serde_json::{Map, Value, json};

use super::{coded, listed, rename};

const TERMINOLOGY: &str = "http://terminology.hl7.org/CodeSystem/";
const ASSOCIATED_ENCOUNTER: &str =
    "http://hl7.org/fhir/StructureDefinition/encounter-associatedEncounter";
/// Where R4 keeps an STU3 element it has no place for (the HL7 convention).
const STU3_ELEMENT: &str = "http://hl7.org/fhir/3.0/StructureDefinition/extension-";

pub fn allergy(record: &mut Map<String, Value>) {
    let entered_in_error =
        record.get("verificationStatus").and_then(Value::as_str) == Some("entered-in-error");
    // GP Connect always sends `unconfirmed` and says it means nothing: not passed on.
    record.remove("verificationStatus");
    if entered_in_error {
        record.remove("clinicalStatus");
        record.insert(
            "verificationStatus".into(),
            coded(
                "entered-in-error",
                &format!("{TERMINOLOGY}allergyintolerance-verification"),
            ),
        );
    }
    status_concept(record, "clinicalStatus", "allergyintolerance-clinical");
    rename(record, "assertedDate", "recordedDate");
    if let Some(encounter) = take_extension(record, ASSOCIATED_ENCOUNTER)
        && let Some(reference) = encounter.get("valueReference")
    {
        record.insert("encounter".into(), reference.clone());
    }
}

pub fn condition(record: &mut Map<String, Value>) {
    status_concept(record, "clinicalStatus", "condition-clinical");
    if record.get("verificationStatus").and_then(Value::as_str) == Some("unknown") {
        record.remove("verificationStatus");
    }
    status_concept(record, "verificationStatus", "condition-ver-status");
    rename(record, "assertedDate", "recordedDate");
    rename(record, "context", "encounter");
    record.remove("abatementBoolean");
    listed(record, "stage");
    // GP Connect's problem-list category, also in R4's own code system.
    if let Some(Value::Array(categories)) = record.get_mut("category") {
        for category in categories {
            let codings = category["coding"].as_array().cloned().unwrap_or_default();
            let is_problem = codings.iter().any(|c| c["code"] == "problem-list-item");
            let has_r4 = codings
                .iter()
                .any(|c| c["system"] == format!("{TERMINOLOGY}condition-category").as_str());
            if is_problem
                && !has_r4
                && let Some(Value::Array(list)) = category.get_mut("coding")
            {
                list.push(json!({"system": format!("{TERMINOLOGY}condition-category"), "code": "problem-list-item", "display": "Problem List Item"}));
            }
        }
    }
}

pub fn immunization(record: &mut Map<String, Value>) {
    let not_given = record.remove("notGiven").and_then(|v| v.as_bool()) == Some(true);
    if not_given && record.get("status").and_then(Value::as_str) == Some("completed") {
        record.insert("status".into(), json!("not-done"));
    }
    match record.remove("date") {
        Some(date) => record.insert("occurrenceDateTime".into(), date),
        None => record.insert("occurrenceString".into(), json!("date not recorded")),
    };
    if let Some(Value::Array(practitioners)) = record.remove("practitioner") {
        let performers: Vec<Value> = practitioners
            .into_iter()
            .map(|p| {
                let mut performer = json!({"actor": p["actor"]});
                if p["role"].is_object() {
                    performer["function"] = p["role"].clone();
                }
                performer
            })
            .collect();
        record.insert("performer".into(), json!(performers));
    }
    if let Some(explanation) = record.remove("explanation") {
        if let Some(reasons) = explanation.get("reason") {
            record.insert("reasonCode".into(), reasons.clone());
        }
        if let Some(first) = explanation["reasonNotGiven"].get(0) {
            record.insert("statusReason".into(), first.clone());
        }
    }
    if let Some(Value::Array(protocols)) = record.remove("vaccinationProtocol") {
        let applied: Vec<Value> = protocols
            .into_iter()
            .map(|p| {
                let mut dose = Map::new();
                match p["doseSequence"].as_u64().filter(|n| *n > 0) {
                    Some(n) => dose.insert("doseNumberPositiveInt".into(), json!(n)),
                    None => dose.insert("doseNumberString".into(), json!("unknown")),
                };
                if let Some(n) = p["seriesDoses"].as_u64().filter(|n| *n > 0) {
                    dose.insert("seriesDosesPositiveInt".into(), json!(n));
                }
                if let Some(series) = p["series"].as_str().or(p["description"].as_str()) {
                    dose.insert("series".into(), json!(series));
                }
                for field in ["authority", "targetDisease"] {
                    if !p[field].is_null() {
                        dose.insert(field.into(), p[field].clone());
                    }
                }
                listed(&mut dose, "targetDisease");
                Value::Object(dose)
            })
            .collect();
        record.insert("protocolApplied".into(), json!(applied));
    }
    // The date it was recorded: GP Connect's extension, R4's own element.
    for url in [
        "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-DateRecorded-1",
        "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-DateRecorded-1",
    ] {
        if let Some(recorded) = take_extension(record, url)
            && let Some(date) = recorded.get("valueDateTime")
        {
            record.insert("recorded".into(), date.clone());
        }
    }
}

pub fn medication_statement(record: &mut Map<String, Value>) {
    // Always `unk` in GP Connect; R4 has no such element.
    record.remove("taken");
    rename(record, "reasonNotTaken", "statusReason");
    dosages(record, "dosage");
}

pub fn medication_request(record: &mut Map<String, Value>) {
    rename(record, "context", "encounter");
    requester(record);
    record.remove("definition");
    listed(record, "category");
    if record.get("status").and_then(Value::as_str) == Some("suspended") {
        record.insert("status".into(), json!("on-hold"));
    }
    dosages(record, "dosageInstruction");
    if let Some(Value::Object(substitution)) = record.get_mut("substitution") {
        rename(substitution, "allowed", "allowedBoolean");
    }
}

pub fn observation(record: &mut Map<String, Value>) {
    rename(record, "context", "encounter");
    if let Some(comment) = record.remove("comment") {
        record.insert("note".into(), json!([{"text": comment}]));
    }
    listed(record, "interpretation");
    record.remove("valueAttachment");
    if let Some(Value::Array(components)) = record.get_mut("component") {
        for component in components.iter_mut().filter_map(Value::as_object_mut) {
            listed(component, "interpretation");
            component.remove("valueAttachment");
        }
    }
    if let Some(Value::Array(related)) = record.remove("related") {
        for link in related {
            let field = match link["type"].as_str() {
                Some("has-member") => "hasMember",
                Some("derived-from") => "derivedFrom",
                // sequel-to, replaces, qualified-by, interfered-by: no R4 element.
                _ => continue,
            };
            let list = record.entry(field).or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                list.push(link["target"].clone());
            }
        }
    }
}

pub fn diagnostic_report(record: &mut Map<String, Value>) {
    rename(record, "context", "encounter");
    listed(record, "category");
    rename(record, "codedDiagnosis", "conclusionCode");
    if let Some(Value::Array(performers)) = record.remove("performer") {
        let actors: Vec<Value> = performers.into_iter().map(|p| p["actor"].clone()).collect();
        record.insert("performer".into(), json!(actors));
    }
}

/// A consultation. R4 needs a class, which GP Connect never sends: "unknown" (a null
/// flavour) rather than a guess.
pub fn encounter(record: &mut Map<String, Value>) {
    if !record.contains_key("class") {
        record.insert(
            "class".into(),
            json!({"system": format!("{TERMINOLOGY}v3-NullFlavor"), "code": "UNK", "display": "unknown"}),
        );
    }
    rename(record, "reason", "reasonCode");
    rename(record, "incomingReferral", "basedOn");
    listed(record, "appointment");
}

/// An outbound referral: in R4 a ServiceRequest categorised as a referral.
pub fn referral(record: &mut Map<String, Value>) {
    request_status(record);
    rename(record, "type", "code");
    rename(record, "serviceRequested", "orderDetail");
    rename(record, "specialty", "performerType");
    rename(record, "recipient", "performer");
    rename(record, "context", "encounter");
    rename(record, "groupIdentifier", "requisition");
    record.remove("definition");
    requester(record);
    if let Some(description) = record.remove("description") {
        let notes = record.entry("note").or_insert_with(|| json!([]));
        if let Some(notes) = notes.as_array_mut() {
            notes.insert(0, json!({"text": description}));
        }
    }
    let category = json!({"coding": [{"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}]});
    let categories = record.entry("category").or_insert_with(|| json!([]));
    if let Some(categories) = categories.as_array_mut() {
        categories.push(category);
    }
}

/// A test request or a diary entry: an R4 ServiceRequest.
pub fn procedure_request(record: &mut Map<String, Value>) {
    request_status(record);
    rename(record, "context", "encounter");
    record.remove("definition");
    requester(record);
    listed(record, "performer");
}

/// `requester.agent` is R4's `requester`; on whose behalf goes to an extension.
fn requester(record: &mut Map<String, Value>) {
    let Some(requester) = record.remove("requester") else {
        return;
    };
    if requester["agent"].is_object() {
        record.insert("requester".into(), requester["agent"].clone());
    }
    if requester["onBehalfOf"].is_object() {
        let resource = record["resourceType"]
            .as_str()
            .unwrap_or("ServiceRequest")
            .to_string();
        push_extension(
            record,
            json!({"url": format!("{STU3_ELEMENT}{resource}.requester.onBehalfOf"), "valueReference": requester["onBehalfOf"]}),
        );
    }
}

/// STU3 request statuses R4 renamed.
fn request_status(record: &mut Map<String, Value>) {
    let renamed = match record.get("status").and_then(Value::as_str) {
        Some("suspended") => "on-hold",
        Some("cancelled") => "revoked",
        _ => return,
    };
    record.insert("status".into(), json!(renamed));
}

/// An STU3 status code as R4's CodeableConcept.
fn status_concept(record: &mut Map<String, Value>, field: &str, system: &str) {
    if let Some(Value::String(code)) = record.get(field) {
        let concept = coded(code, &format!("{TERMINOLOGY}{system}"));
        record.insert(field.into(), concept);
    }
}

/// STU3 Dosage's dose and rate are R4's `doseAndRate`.
fn dosages(record: &mut Map<String, Value>, field: &str) {
    let Some(Value::Array(dosages)) = record.get_mut(field) else {
        return;
    };
    for dosage in dosages.iter_mut().filter_map(Value::as_object_mut) {
        let mut dose_and_rate = Map::new();
        for key in [
            "doseRange",
            "doseQuantity",
            "rateRatio",
            "rateRange",
            "rateQuantity",
        ] {
            if let Some(value) = dosage.remove(key) {
                dose_and_rate.insert(key.into(), value);
            }
        }
        if !dose_and_rate.is_empty() {
            dosage.insert("doseAndRate".into(), json!([dose_and_rate]));
        }
    }
}

/// Removes and returns the first extension with `url`.
fn take_extension(record: &mut Map<String, Value>, url: &str) -> Option<Value> {
    let Some(Value::Array(extensions)) = record.get_mut("extension") else {
        return None;
    };
    let at = extensions.iter().position(|e| e["url"] == url)?;
    let found = extensions.remove(at);
    if extensions.is_empty() {
        record.remove("extension");
    }
    Some(found)
}

fn push_extension(record: &mut Map<String, Value>, extension: Value) {
    let extensions = record.entry("extension").or_insert_with(|| json!([]));
    if let Some(list) = extensions.as_array_mut() {
        list.push(extension);
    }
}
