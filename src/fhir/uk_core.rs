//! UK Core: the profile each served type is declared against (`meta.profile`, and
//! the CapabilityStatement's `supportedProfile`), where the record meets what the
//! facade can check of it.
//!
//! Every record is valid R4 by the time it is released (checked on intake). On top
//! of that the facade checks the UK Core constraints it knows: an NHS number is
//! under its system and passes its check digit, its verification-status extension
//! carries a code of the UK Core code system, and no UK Core extension is present
//! that the facade does not know. A record that fails any of them is released
//! without the claim, never with a claim that might be false.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::NhsNumber;
use super::nhs_number::NHS_NUMBER_SYSTEM;

/// The UK Core implementation guide the profiles belong to.
pub const IMPLEMENTATION_GUIDE: &str =
    "https://fhir.hl7.org.uk/ImplementationGuide/hl7.fhir.uk.core";
const PROFILE_BASE: &str = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-";
const UK_CORE_EXTENSION_BASE: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-";
const VERIFICATION_STATUS: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const VERIFICATION_STATUS_CODES: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";

/// The types UK Core profiles, among those the facade serves.
const PROFILED: [&str; 17] = [
    "AllergyIntolerance",
    "CarePlan",
    "Condition",
    "DiagnosticReport",
    "Encounter",
    "Immunization",
    "Location",
    "Medication",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "ServiceRequest",
];

/// The UK Core profile for a type, if UK Core has one.
pub fn profile_for(resource_type: &str) -> Option<String> {
    profile_url(resource_type).map(str::to_string)
}

/// The same, written once per type: `declare` runs on every record released.
fn profile_url(resource_type: &str) -> Option<&'static str> {
    static URLS: LazyLock<Vec<String>> = LazyLock::new(|| {
        PROFILED
            .iter()
            .map(|t| format!("{PROFILE_BASE}{t}"))
            .collect()
    });
    let index = PROFILED.iter().position(|t| *t == resource_type)?;
    Some(URLS[index].as_str())
}

/// Adds the UK Core profile to `meta.profile` if the record meets it.
pub fn declare(resource: &mut Value) {
    let Some(profile) = resource["resourceType"].as_str().and_then(profile_url) else {
        return;
    };
    if !meets(resource) {
        return;
    }
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    if !object.get("meta").is_some_and(Value::is_object) {
        object.insert("meta".into(), Value::Object(Map::new()));
    }
    let Some(meta) = object.get_mut("meta").and_then(Value::as_object_mut) else {
        return;
    };
    match meta.get_mut("profile").and_then(Value::as_array_mut) {
        Some(list) if list.iter().any(|p| p == profile) => {}
        Some(list) => list.push(Value::from(profile)),
        None => {
            meta.insert("profile".into(), Value::Array(vec![Value::from(profile)]));
        }
    }
}

fn meets(resource: &Value) -> bool {
    let identifiers_ok = resource["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["system"] == NHS_NUMBER_SYSTEM)
        .all(nhs_identifier_ok);
    identifiers_ok && !has_unknown_uk_core_extension(resource)
}

fn nhs_identifier_ok(identifier: &Value) -> bool {
    let number_ok = identifier["value"]
        .as_str()
        .is_some_and(|v| NhsNumber::parse(v).is_ok());
    let status_ok = identifier["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == VERIFICATION_STATUS)
        .all(|e| {
            e["valueCodeableConcept"]["coding"]
                .as_array()
                .is_some_and(|codings| {
                    codings.iter().any(|c| {
                        c["system"] == VERIFICATION_STATUS_CODES
                            && c["code"].as_str().is_some_and(|code| {
                                matches!(code.len(), 2) && code.bytes().all(|b| b.is_ascii_digit())
                            })
                    })
                })
        });
    number_ok && status_ok
}

/// Any `Extension-UKCore-*` other than those checked here, anywhere in the record.
fn has_unknown_uk_core_extension(node: &Value) -> bool {
    match node {
        Value::Object(map) => map.iter().any(|(key, value)| {
            let unknown_here = matches!(key.as_str(), "extension" | "modifierExtension")
                && value.as_array().into_iter().flatten().any(|e| {
                    e["url"].as_str().is_some_and(|url| {
                        url.starts_with(UK_CORE_EXTENSION_BASE) && url != VERIFICATION_STATUS
                    })
                });
            unknown_here || has_unknown_uk_core_extension(value)
        }),
        Value::Array(items) => items.iter().any(has_unknown_uk_core_extension),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patient(identifier: Value) -> Value {
        json!({"resourceType": "Patient", "id": "9000000009", "identifier": [identifier]})
    }

    #[test]
    fn a_record_that_meets_what_is_checked_declares_its_profile_once() {
        let mut record = json!({"resourceType": "Observation", "id": "o", "status": "final", "code": {}, "meta": {"profile": ["https://example.org/own"]}});
        declare(&mut record);
        declare(&mut record);
        assert_eq!(
            record["meta"]["profile"],
            json!([
                "https://example.org/own",
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation"
            ])
        );
        let mut consent = json!({"resourceType": "Consent"});
        declare(&mut consent);
        assert!(
            consent.get("meta").is_none(),
            "no UK Core profile for Consent"
        );
    }

    #[test]
    fn nhs_numbers_and_their_verification_status_are_checked() {
        let verified = |code: &str| json!({"url": VERIFICATION_STATUS, "valueCodeableConcept": {"coding": [{"system": VERIFICATION_STATUS_CODES, "code": code}]}});
        let declared = |mut p: Value| {
            declare(&mut p);
            p["meta"]["profile"].is_array()
        };
        assert!(declared(patient(
            json!({"system": NHS_NUMBER_SYSTEM, "value": "9000000009", "extension": [verified("01")]})
        )));
        assert!(
            !declared(patient(
                json!({"system": NHS_NUMBER_SYSTEM, "value": "9000000008"})
            )),
            "check digit"
        );
        assert!(!declared(patient(
            json!({"system": NHS_NUMBER_SYSTEM, "value": "9000000009", "extension": [verified("verified")]})
        )));
        let unknown = json!({"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-SomethingNew", "valueString": "x"});
        assert!(!declared(
            json!({"resourceType": "Patient", "id": "9000000009", "name": [{"extension": [unknown]}]})
        ));
    }
}
