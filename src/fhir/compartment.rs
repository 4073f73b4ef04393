//! Which patient a record belongs to, by the Patient CompartmentDefinition in
//! `fhir-profiles/`: federation checks partners' records by it, reads and the audit
//! trail name the patient by it.

use serde_json::Value;

use super::search::matcher::nodes;
use super::search::registry::Registry;
use super::search::value::ReferenceValue;
use super::{NhsNumber, ResourceType};

/// Every `Patient` reference the record makes through its compartment parameters,
/// as written (`Patient/{id}`): all must be the one patient for the record to be
/// theirs.
pub fn patient_references(resource: &Value, resource_type: ResourceType) -> Vec<&str> {
    Registry::get()
        .compartment(resource_type)
        .into_iter()
        .flat_map(|param| nodes(resource, &param.paths))
        .filter_map(|node| node["reference"].as_str())
        .filter(|reference| {
            ReferenceValue::parse(reference)
                .is_ok_and(|r| r.resource_type.as_deref() == Some(ResourceType::patient().as_str()))
        })
        .collect()
}

/// The patient a record in facade form is (a merged Patient, whose id is the NHS
/// number) or is about (its own patient parameter).
pub fn patient_of(resource: &Value) -> Option<NhsNumber> {
    let resource_type: ResourceType = resource["resourceType"].as_str()?.parse().ok()?;
    if resource_type.is_patient() {
        return NhsNumber::parse(resource["id"].as_str()?).ok();
    }
    let param = Registry::get().patient_param(resource_type)?;
    nodes(resource, &param.paths)
        .into_iter()
        .filter_map(|n| n["reference"].as_str()?.strip_prefix("Patient/"))
        .find_map(|id| NhsNumber::parse(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_compartment_names_the_patient_of_each_type() {
        let alice = "9990000018";
        for (resource, expected) in [
            (json!({"resourceType": "Patient", "id": alice}), Some(alice)),
            (
                json!({"resourceType": "Observation", "subject": {"reference": format!("Patient/{alice}")}}),
                Some(alice),
            ),
            (
                json!({"resourceType": "AllergyIntolerance", "patient": {"reference": format!("Patient/{alice}")}}),
                Some(alice),
            ),
            (
                json!({"resourceType": "Immunization", "patient": {"reference": format!("Patient/{alice}")}}),
                Some(alice),
            ),
            (
                json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{alice}")}}),
                Some(alice),
            ),
            (
                json!({"resourceType": "Observation", "performer": [{"reference": format!("Patient/{alice}")}]}),
                None,
            ),
            (json!({"resourceType": "Organization", "id": "gp.o"}), None),
        ] {
            assert_eq!(
                patient_of(&resource).as_ref().map(NhsNumber::as_str),
                expected,
                "{resource}"
            );
        }
        let observation = json!({"resourceType": "Observation",
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Patient/p2"}, {"reference": "Practitioner/d"}]});
        assert_eq!(
            patient_references(&observation, ResourceType::named("Observation")),
            ["Patient/p1", "Patient/p2"],
            "the performer is in the compartment too"
        );
    }
}
