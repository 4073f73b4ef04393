//! The patient and the directory records of a structured record, STU3 to R4.

use serde_json::{Map, Value};

use super::rename;

const CARE_CONNECT_VERIFICATION: &str = "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-NHSNumberVerificationStatus-1";
const CARE_CONNECT_VERIFICATION_CODES: &str =
    "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1";
const UK_CORE_VERIFICATION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const UK_CORE_VERIFICATION_CODES: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";

pub fn patient(record: &mut Map<String, Value>) {
    // Not in R4 (and never about a person).
    record.remove("animal");
    // The NHS number's verification status, as UK Core says it (the same codes, 01
    // to 08, in UK Core's code system).
    for identifier in record
        .get_mut("identifier")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for extension in identifier
            .get_mut("extension")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter(|e| e["url"] == CARE_CONNECT_VERIFICATION)
        {
            extension["url"] = Value::String(UK_CORE_VERIFICATION.into());
            for coding in extension["valueCodeableConcept"]["coding"]
                .as_array_mut()
                .into_iter()
                .flatten()
                .filter(|c| c["system"] == CARE_CONNECT_VERIFICATION_CODES)
            {
                coding["system"] = Value::String(UK_CORE_VERIFICATION_CODES.into());
            }
        }
    }
}

pub fn medication(record: &mut Map<String, Value>) {
    for gone in ["isBrand", "isOverTheCounter", "package", "image"] {
        record.remove(gone);
    }
    if let Some(Value::Array(ingredients)) = record.get_mut("ingredient") {
        for ingredient in ingredients.iter_mut().filter_map(Value::as_object_mut) {
            rename(ingredient, "amount", "strength");
        }
    }
}
