//! Which patient a record belongs to, by the Patient CompartmentDefinition in
//! `fhir-profiles/`: federation checks partners' records by it, reads and the audit
//! trail name the patient by it.

use serde_json::Value;

use super::search::matcher::nodes;
use super::search::registry::Registry;
use super::search::value::ReferenceValue;
use super::{NhsNumber, ResourceType};

/// The local id of every `Patient` the record refers to through its compartment
/// parameters (`Patient/{id}`, relative or absolute): all must be the one patient
/// for the record to be theirs.
pub fn patient_ids(resource: &Value, resource_type: ResourceType) -> Vec<String> {
    Registry::get()
        .compartment(resource_type)
        .iter()
        .flat_map(|param| nodes(resource, &param.paths))
        .filter_map(|node| ReferenceValue::parse(node["reference"].as_str()?).ok())
        .filter(|r| r.resource_type.as_deref() == Some(ResourceType::patient().as_str()))
        .map(|r| r.id)
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
            patient_ids(&observation, ResourceType::named("Observation")),
            ["p1", "p2"],
            "the performer is in the compartment too"
        );
    }
}
