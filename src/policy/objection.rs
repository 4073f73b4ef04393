//! The right to object: Consent resources (scope patient-privacy, provision deny) and
//! what they mean for access. The register is read on every request, so a change made
//! through one instance is honoured by all at once.

use serde_json::{Value, json};

use crate::fhir::NhsNumber;
use crate::fhir::nhs_number::NHS_NUMBER_SYSTEM;
use crate::fhir::outcome::Issue;
use crate::store::objections::ObjectionVersion;
use crate::store::{AnyConnection, Store, StoreError, objections};

use super::POLICY_OUTCOME_SYSTEM;

const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";

/// Consent.status values an objection may take, and whether each hides the record.
/// `proposed` (raised, under review) already hides: a deliberate fail-closed rule.
const STATUSES: [(&str, bool); 5] = [
    ("proposed", true),
    ("active", true),
    ("inactive", false),
    ("rejected", false),
    ("entered-in-error", false),
];

/// Why a Consent cannot be recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidObjection {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotAllowed(String),
}

/// A Consent checked to be an objection.
#[derive(Debug, Clone)]
pub struct Objection {
    pub patient: NhsNumber,
    pub status: String,
    /// Who raised it: the patient, or a related person (parent, guardian).
    pub raised_by: String,
    pub raised_by_patient: bool,
    /// The Consent as given, without id or meta.
    pub consent: Value,
}

impl Objection {
    pub fn from_consent(mut consent: Value) -> Result<Objection, InvalidObjection> {
        let invalid = |s: &str| InvalidObjection::Invalid(s.to_string());
        if consent["resourceType"] != "Consent" {
            return Err(invalid("the body must be a Consent resource"));
        }
        let status = consent["status"]
            .as_str()
            .ok_or_else(|| invalid("Consent.status is required"))?
            .to_string();
        if !STATUSES.iter().any(|(s, _)| *s == status) {
            return Err(invalid(
                "Consent.status must be proposed, active, inactive, rejected or entered-in-error",
            ));
        }
        let scope_ok = consent["scope"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["system"] == CONSENT_SCOPE && c["code"] == "patient-privacy");
        if !scope_ok {
            return Err(invalid(
                "an objection's Consent.scope is consentscope#patient-privacy",
            ));
        }
        if consent["provision"]["type"] != "deny" {
            return Err(invalid("an objection's Consent.provision.type is deny"));
        }
        let patient = objecting_patient(&consent["patient"])?;
        // Stored in one form, whichever the client used.
        consent["patient"] = json!({"reference": format!("Patient/{patient}")});
        let performers = consent["performer"].as_array().cloned().unwrap_or_default();
        let performer = match performers.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(invalid(
                    "Consent.performer must name the one person who raised the objection",
                ));
            }
        };
        let reference = performer["reference"].as_str().unwrap_or_default();
        let (raised_by, raised_by_patient) = if reference == format!("Patient/{patient}") {
            (reference.to_string(), true)
        } else if reference.starts_with("RelatedPerson/")
            || (reference.is_empty() && performer["display"].is_string())
        {
            let who = performer["display"]
                .as_str()
                .map(|d| format!("RelatedPerson: {d}"))
                .unwrap_or_else(|| reference.to_string());
            (who, false)
        } else {
            return Err(invalid(
                "Consent.performer must be the patient or a RelatedPerson (parent or guardian)",
            ));
        };
        if let Some(object) = consent.as_object_mut() {
            object.shift_remove("id");
            object.shift_remove("meta");
        }
        Ok(Objection {
            patient,
            status,
            raised_by,
            raised_by_patient,
            consent,
        })
    }

    /// A child below the competence age cannot object for themself.
    pub fn check_competence(
        &self,
        age_years: Option<u32>,
        competence_age: u32,
    ) -> Result<(), InvalidObjection> {
        match (self.raised_by_patient, age_years) {
            (true, Some(age)) if age < competence_age => {
                Err(InvalidObjection::NotAllowed(format!(
                    "a child under {competence_age} cannot object for themself; a parent or guardian can (performer: RelatedPerson)"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// The patient a Consent is about: `Patient/{NHS number}` exactly (this record's own
/// Patient, never another server's), or the NHS-number identifier; both, if given,
/// must agree.
fn objecting_patient(patient: &Value) -> Result<NhsNumber, InvalidObjection> {
    let refused = || {
        InvalidObjection::Invalid(
            "Consent.patient must be Patient/{NHS number} or the NHS number identifier (https://fhir.nhs.uk/Id/nhs-number)".into(),
        )
    };
    let by_reference = match patient.get("reference") {
        None => None,
        Some(reference) => {
            let id = reference
                .as_str()
                .and_then(|r| r.strip_prefix("Patient/"))
                .ok_or_else(refused)?;
            Some(NhsNumber::parse(id).map_err(|_| refused())?)
        }
    };
    let by_identifier = match patient.get("identifier") {
        None => None,
        Some(identifier) => {
            if identifier["system"] != NHS_NUMBER_SYSTEM {
                return Err(refused());
            }
            let value = identifier["value"].as_str().ok_or_else(refused)?;
            Some(NhsNumber::parse(value).map_err(|_| refused())?)
        }
    };
    match (by_reference, by_identifier) {
        (Some(a), Some(b)) if a != b => Err(refused()),
        (Some(nhs), _) | (None, Some(nhs)) => Ok(nhs),
        (None, None) => Err(refused()),
    }
}

/// Does this status hide the patient's records?
pub fn hides(status: &str) -> bool {
    STATUSES.iter().any(|(s, hidden)| *s == status && *hidden)
}

/// Is the patient hidden by an objection now? Read from the register every time.
pub async fn objects(store: &Store, nhs: &NhsNumber) -> Result<bool, StoreError> {
    let nhs = nhs.clone();
    store.run(move |conn| objects_in(conn, &nhs)).await
}

/// `objects`, on a connection already held (to read the register in the same trip
/// to the database as something else).
pub fn objects_in(conn: &mut AnyConnection, nhs: &NhsNumber) -> Result<bool, StoreError> {
    let current = objections::current(conn, nhs.as_str())?;
    Ok(current.is_some_and(|v| hides(&v.status)))
}

/// A stored version as the Consent resource clients see.
pub fn consent_resource(version: &ObjectionVersion) -> Value {
    let mut consent: Value = serde_json::from_str(&version.consent)
        .unwrap_or_else(|_| json!({"resourceType": "Consent"}));
    consent["id"] = json!(version.nhs_number);
    let updated = chrono::DateTime::from_timestamp_millis(version.recorded_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let meta = json!({"versionId": version.version.to_string(), "lastUpdated": updated});
    if let Some(object) = consent.as_object_mut() {
        object.shift_remove("meta");
        object.insert("meta".into(), meta);
    }
    consent
}

/// The 403 issue a professional sees while an objection hides the patient.
pub fn objection_issue() -> Issue {
    Issue::new(
        crate::fhir::outcome::Severity::Error,
        "suppressed",
        "This patient has objected to their records being shared through the Shared Care Record. Seek the information you need through other channels: phone, email or a paper request to the patient's care team.",
    )
    .with_detail(POLICY_OUTCOME_SYSTEM, "patient-objection")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(status: &str, performer: Value) -> Value {
        json!({
            "resourceType": "Consent", "status": status,
            "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/9990000085"},
            "performer": [performer],
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
            "provision": {"type": "deny"}
        })
    }

    #[test]
    fn the_lifecycle_hides_from_the_moment_it_is_raised() {
        assert!(hides("proposed") && hides("active"));
        assert!(
            !hides("inactive")
                && !hides("rejected")
                && !hides("entered-in-error")
                && !hides("draft")
        );
    }

    #[test]
    fn objections_are_checked_and_say_who_raised_them() {
        let own = Objection::from_consent(consent(
            "proposed",
            json!({"reference": "Patient/9990000085"}),
        ))
        .unwrap();
        assert!(own.raised_by_patient);
        assert!(own.check_competence(Some(12), 13).is_err());
        assert!(own.check_competence(Some(13), 13).is_ok());
        let parent = Objection::from_consent(consent(
            "active",
            json!({"reference": "RelatedPerson/mum", "display": "Mrs Taylor (mother)"}),
        ))
        .unwrap();
        assert_eq!(parent.raised_by, "RelatedPerson: Mrs Taylor (mother)");
        assert!(parent.check_competence(Some(6), 13).is_ok());
        let mut by_identifier = consent("active", json!({"reference": "Patient/9990000085"}));
        by_identifier["patient"] =
            json!({"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9990000085"}});
        let recorded = Objection::from_consent(by_identifier).unwrap();
        assert_eq!(
            recorded.consent["patient"]["reference"],
            "Patient/9990000085"
        );
        for patient in [
            json!({"reference": "http://evil.example/fhir/Patient/9990000085"}),
            json!({"reference": "Patient/9990000085?x=1"}),
            json!({"reference": "Group/9990000085"}),
            json!({"identifier": {"system": "urn:other", "value": "9990000085"}}),
            json!({"reference": "Patient/9990000085", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9990000018"}}),
            json!({"display": "Hannah"}),
        ] {
            let mut foreign = consent("active", json!({"reference": "Patient/9990000085"}));
            foreign["patient"] = patient.clone();
            assert!(Objection::from_consent(foreign).is_err(), "{patient}");
        }
        for bad in [
            consent("draft", json!({"reference": "Patient/9990000085"})),
            consent("active", json!({"reference": "Practitioner/dr"})),
            consent("active", json!({"reference": "Patient/9990000018"})),
        ] {
            assert!(Objection::from_consent(bad).is_err());
        }
        let mut permit = consent("active", json!({"reference": "Patient/9990000085"}));
        permit["provision"]["type"] = json!("permit");
        assert!(Objection::from_consent(permit).is_err());
    }
}
