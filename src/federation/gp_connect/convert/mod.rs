//! GP Connect's FHIR STU3 records as FHIR R4, for every type the facade serves, by
//! the HL7 R3 to R4 maps and GP Connect's own profiles. A record is accepted only if
//! what comes out is strict R4; anything else is left out and counted. Records of
//! types the facade does not serve (Location, Specimen, documents) are kept only to
//! judge what points at them, and are never served.
//!
//! Ids become `{NHS number}.{id}` (the patient's own is the NHS number), so that a
//! facade id says whose structured record to ask for again; references follow.

mod clinical;
mod directory;

use serde_json::{Map, Value, json};

use crate::fhir::{NhsNumber, ResourceType};

/// Why a record was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unconvertible {
    #[error("{0} has no usable id")]
    NoId(&'static str),
    #[error("{0} lacks {1}")]
    Missing(&'static str, &'static str),
    #[error("{0} is not valid FHIR R4 once converted")]
    NotR4(String),
}

/// A record converted.
pub enum Converted {
    /// A type the facade serves, valid R4.
    Served(Value),
    /// Kept to judge what points at it; never served.
    JudgedOnly(Value),
}

/// The patient whose structured record this is: their NHS number, and the id the
/// practice gave their Patient resource.
pub struct Subject<'a> {
    pub nhs: &'a NhsNumber,
    pub patient_id: &'a str,
}

/// Converts one STU3 resource of the record. `None` for what is not a record at all
/// (Lists, OperationOutcomes, the patient's other Patient resources).
pub fn convert(resource: &Value, subject: &Subject) -> Option<Result<Converted, Unconvertible>> {
    let stu3_type = resource["resourceType"].as_str()?;
    if matches!(stu3_type, "List" | "OperationOutcome" | "Bundle") {
        return None;
    }
    Some(convert_resource(resource, stu3_type, subject))
}

fn convert_resource(
    resource: &Value,
    stu3_type: &str,
    subject: &Subject,
) -> Result<Converted, Unconvertible> {
    let Value::Object(source) = resource else {
        return Err(Unconvertible::NoId("a record"));
    };
    let r4_type = r4_type_of(stu3_type);
    let served = r4_type.parse::<ResourceType>().ok();
    let type_label = served.map_or("a record of another type", ResourceType::as_str);
    let id = source
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_fhir_id(id))
        .ok_or(Unconvertible::NoId(type_label))?;
    let mut record = source.clone();
    record.insert("resourceType".into(), json!(r4_type));
    let local_id = match r4_type {
        "Patient" => subject.nhs.to_string(),
        _ => format!("{}.{id}", subject.nhs),
    };
    if local_id.len() > 64 {
        return Err(Unconvertible::NoId(type_label));
    }
    record.insert("id".into(), json!(local_id));
    strip_meta(&mut record);
    let mut value = Value::Object(record);
    rewrite(&mut value, subject);
    let Some(served) = served else {
        return Ok(Converted::JudgedOnly(value));
    };
    let Value::Object(record) = &mut value else {
        unreachable!("built as an object")
    };
    match (stu3_type, r4_type) {
        ("ReferralRequest", _) => clinical::referral(record),
        ("ProcedureRequest", _) => clinical::procedure_request(record),
        (_, "AllergyIntolerance") => clinical::allergy(record),
        (_, "Condition") => clinical::condition(record),
        (_, "Immunization") => clinical::immunization(record),
        (_, "MedicationStatement") => clinical::medication_statement(record),
        (_, "MedicationRequest") => clinical::medication_request(record),
        (_, "Observation") => clinical::observation(record),
        (_, "DiagnosticReport") => clinical::diagnostic_report(record),
        (_, "Encounter") => clinical::encounter(record),
        (_, "Medication") => directory::medication(record),
        (_, "Patient") => directory::patient(record),
        _ => {}
    }
    for field in served.mandatory_elements() {
        let present = record.contains_key(*field)
            || record
                .keys()
                .any(|k| k.starts_with(field) && k[field.len()..].starts_with(char::is_uppercase));
        if !present {
            return Err(Unconvertible::Missing(served.as_str(), field));
        }
    }
    fhir_codec::validate_r4_json(&value).map_err(|e| {
        tracing::debug!(resource_type = served.as_str(), error = %e, "a GP Connect record is not R4 once converted");
        Unconvertible::NotR4(served.as_str().to_string())
    })?;
    Ok(Converted::Served(value))
}

/// The R4 type an STU3 type became.
pub fn r4_type_of(stu3_type: &str) -> &str {
    match stu3_type {
        "ReferralRequest" | "ProcedureRequest" => "ServiceRequest",
        other => other,
    }
}

fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Entries must not carry versions or update times, and STU3 profiles do not apply
/// to what is now R4; labels and tags stay.
fn strip_meta(record: &mut Map<String, Value>) {
    if let Some(Value::Object(meta)) = record.get_mut("meta") {
        meta.remove("profile");
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            record.remove("meta");
        }
    }
}

/// References in the record's new ids, and the code systems HL7 moved between STU3
/// and R4 at their new addresses, everywhere in the record (extensions included).
fn rewrite(node: &mut Value, subject: &Subject) {
    match node {
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, subject)),
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("reference") {
                *reference = local_reference(reference, subject);
            }
            if map.contains_key("code")
                && let Some(Value::String(system)) = map.get_mut("system")
                && let Some(moved) = moved_system(system)
            {
                *system = moved;
            }
            map.values_mut().for_each(|v| rewrite(v, subject));
        }
        _ => {}
    }
}

/// `Type/id` within the Bundle as the converted record's reference: the patient by
/// NHS number, other records by their new ids. Contained (`#id`) and absolute
/// references are left as they are.
fn local_reference(reference: &str, subject: &Subject) -> String {
    let Some((stu3_type, id)) = reference.split_once('/') else {
        return reference.to_string();
    };
    let relative = stu3_type.bytes().all(|b| b.is_ascii_alphabetic()) && !id.contains('/');
    if !relative || reference.starts_with('#') {
        return reference.to_string();
    }
    match stu3_type {
        "Patient" if id == subject.patient_id => format!("Patient/{}", subject.nhs),
        _ => format!("{}/{}.{id}", r4_type_of(stu3_type), subject.nhs),
    }
}

/// STU3's addresses of HL7 code systems that R4 moved to terminology.hl7.org.
fn moved_system(system: &str) -> Option<String> {
    const TERMINOLOGY: &str = "http://terminology.hl7.org/CodeSystem/";
    if let Some(v3) = system.strip_prefix("http://hl7.org/fhir/v3/") {
        return Some(format!("{TERMINOLOGY}v3-{v3}"));
    }
    if let Some(v2) = system.strip_prefix("http://hl7.org/fhir/v2/") {
        return Some(format!("{TERMINOLOGY}v2-{}", v2.trim_end_matches('/')));
    }
    let moved = match system.strip_prefix("http://hl7.org/fhir/")? {
        "observation-category" => "observation-category",
        "condition-category" => "condition-category",
        "condition-clinical" => "condition-clinical",
        "condition-ver-status" => "condition-ver-status",
        "allergy-clinical-status" => "allergyintolerance-clinical",
        "allergy-verification-status" => "allergyintolerance-verification",
        "medication-statement-category" => "medication-statement-category",
        "medication-request-category" => "medicationrequest-category",
        "immunization-origin" => "immunization-origin",
        "diagnostic-service-sections" => "v2-0074",
        "encounter-participant-type" => "v3-ParticipationType",
        "data-absent-reason" => "data-absent-reason",
        "observation-interpretation" => "v3-ObservationInterpretation",
        _ => return None,
    };
    Some(format!("{TERMINOLOGY}{moved}"))
}

/// Moves `from` to `to`, if present.
fn rename(record: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = record.remove(from) {
        record.insert(to.into(), value);
    }
}

/// A single value where R4 has a list.
fn listed(record: &mut Map<String, Value>, field: &str) {
    if let Some(value) = record.remove(field) {
        let list = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        record.insert(field.into(), Value::Array(list));
    }
}

/// A code as a CodeableConcept of `system`.
fn coded(code: &str, system: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_ids_take_the_patients_nhs_number() {
        let nhs = NhsNumber::parse("9990000018").unwrap();
        let subject = Subject {
            nhs: &nhs,
            patient_id: "p1",
        };
        assert_eq!(
            local_reference("Patient/p1", &subject),
            "Patient/9990000018"
        );
        assert_eq!(
            local_reference("Encounter/e1", &subject),
            "Encounter/9990000018.e1"
        );
        assert_eq!(
            local_reference("ReferralRequest/r1", &subject),
            "ServiceRequest/9990000018.r1"
        );
        assert_eq!(local_reference("#a1", &subject), "#a1");
        assert_eq!(
            local_reference("https://x.example/fhir/Patient/1", &subject),
            "https://x.example/fhir/Patient/1"
        );
        assert_eq!(
            local_reference("Patient/other", &subject),
            "Patient/9990000018.other"
        );
    }

    fn converted(stu3: Value) -> Result<Value, Unconvertible> {
        let nhs = NhsNumber::parse("9990000018").unwrap();
        let subject = Subject {
            nhs: &nhs,
            patient_id: "p1",
        };
        match convert(&stu3, &subject).expect("a record") {
            Ok(Converted::Served(r4)) => Ok(r4),
            Ok(Converted::JudgedOnly(_)) => panic!("served type"),
            Err(e) => Err(e),
        }
    }

    fn code(text: &str) -> Value {
        json!({"coding": [{"system": "http://snomed.info/sct", "code": "1", "display": text}]})
    }

    #[test]
    fn stu3_elements_r4_renamed_or_listed() {
        let request = converted(json!({
            "resourceType": "MedicationRequest", "id": "m1", "status": "suspended", "intent": "order",
            "category": code("acute"), "medicationReference": {"reference": "Medication/x"},
            "subject": {"reference": "Patient/p1"}, "context": {"reference": "Encounter/e1"},
            "requester": {"agent": {"reference": "Practitioner/d"}, "onBehalfOf": {"reference": "Organization/o"}},
            "dosageInstruction": [{"text": "one", "doseQuantity": {"value": 1}}],
            "substitution": {"allowed": false}
        }))
        .unwrap();
        assert_eq!(request["status"], "on-hold");
        assert!(request["category"].is_array());
        assert_eq!(request["encounter"]["reference"], "Encounter/9990000018.e1");
        assert_eq!(
            request["requester"]["reference"],
            "Practitioner/9990000018.d"
        );
        assert!(
            request["extension"][0]["url"]
                .as_str()
                .unwrap()
                .ends_with("MedicationRequest.requester.onBehalfOf")
        );
        assert_eq!(
            request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"],
            1
        );
        assert_eq!(request["substitution"]["allowedBoolean"], false);
        let condition = converted(json!({
            "resourceType": "Condition", "id": "c1", "clinicalStatus": "active", "verificationStatus": "unknown",
            "abatementBoolean": false, "stage": {"summary": code("stage")}, "code": code("x"),
            "subject": {"reference": "Patient/p1"}
        }))
        .unwrap();
        assert!(
            condition["verificationStatus"].is_null(),
            "R4 has no 'unknown'"
        );
        assert!(condition["abatementBoolean"].is_null());
        assert!(condition["stage"].is_array());
        let not_done = converted(json!({
            "resourceType": "Immunization", "id": "i1", "status": "completed", "notGiven": false,
            "vaccineCode": code("flu"), "patient": {"reference": "Patient/p1"}, "primarySource": true
        }))
        .unwrap();
        assert_eq!(
            not_done["status"], "completed",
            "given, though without a date"
        );
        assert_eq!(not_done["occurrenceString"], "date not recorded");
        let diary = converted(json!({
            "resourceType": "ProcedureRequest", "id": "d1", "status": "cancelled", "intent": "plan",
            "code": code("review"), "subject": {"reference": "Patient/p1"}, "performer": {"reference": "Practitioner/d"}
        }))
        .unwrap();
        assert_eq!(
            (diary["resourceType"].as_str(), diary["status"].as_str()),
            (Some("ServiceRequest"), Some("revoked"))
        );
        assert!(diary["performer"].is_array());
        let visit = converted(json!({
            "resourceType": "Encounter", "id": "e1", "status": "finished", "reason": [code("cough")],
            "subject": {"reference": "Patient/p1"}
        }))
        .unwrap();
        assert_eq!(visit["class"]["code"], "UNK");
        assert!(visit["reasonCode"].is_array());
    }

    #[test]
    fn what_cannot_be_r4_is_refused() {
        let no_id = json!({"resourceType": "Observation", "status": "final", "code": code("x")});
        assert!(matches!(converted(no_id), Err(Unconvertible::NoId(_))));
        let no_medication = json!({"resourceType": "MedicationStatement", "id": "s", "status": "active", "subject": {"reference": "Patient/p1"}, "taken": "unk"});
        assert_eq!(
            converted(no_medication),
            Err(Unconvertible::Missing("MedicationStatement", "medication"))
        );
        let bad_status = json!({"resourceType": "AllergyIntolerance", "id": "a", "clinicalStatus": 42, "patient": {"reference": "Patient/p1"}});
        assert!(matches!(
            converted(bad_status),
            Err(Unconvertible::NotR4(_))
        ));
        let list = json!({"resourceType": "List", "id": "l"});
        let nhs = NhsNumber::parse("9990000018").unwrap();
        assert!(
            convert(
                &list,
                &Subject {
                    nhs: &nhs,
                    patient_id: "p1"
                }
            )
            .is_none()
        );
    }

    #[test]
    fn moved_code_systems() {
        assert_eq!(
            moved_system("http://hl7.org/fhir/v3/ParticipationType").as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/v3-ParticipationType")
        );
        assert_eq!(
            moved_system("http://hl7.org/fhir/v2/0203").as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/v2-0203")
        );
        assert_eq!(moved_system("http://snomed.info/sct"), None);
    }
}
