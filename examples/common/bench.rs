//! The load generator's bench records, shared with the examples that time the work
//! done on them, so that every timing is of the same records.

use serde_json::{Value, json};

/// The bench patient's Observations at each partner.
pub const OBSERVATIONS_PER_PARTNER: usize = 17;

/// The `i`th bench Observation about the patient a partner knows as `local`.
pub fn observation(local: &str, i: usize) -> Value {
    json!({
        "resourceType": "Observation", "id": format!("bench-obs-{i:02}"), "status": "final",
        "meta": {"lastUpdated": "2025-01-01T00:00:00Z"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}], "text": "Heart rate"},
        "subject": {"reference": format!("Patient/{local}")},
        "performer": [{"display": "Dr A Clinician"}],
        "effectiveDateTime": format!("2024-{:02}-{:02}T10:00:00Z", i % 12 + 1, i + 1),
        "valueQuantity": {"value": 60 + i, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
    })
}
