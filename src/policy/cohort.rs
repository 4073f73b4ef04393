//! The cohort: which patients the Shared Care Record covers. A patient outside it is
//! not found, on every path.

use serde_json::Value;

use crate::config::CohortConfig;
use crate::fhir::ODS_ORGANISATION_SYSTEM;
use crate::fhir::patient::youngest_age;

impl CohortConfig {
    /// Is there a rule at all? Without one, no demographics need fetching.
    pub fn is_active(&self) -> bool {
        self.minimum_age_years > 0 || !self.registered_practices.is_empty()
    }

    /// Does the merged Patient fall inside the cohort? Unknown age or practice does not.
    pub fn admits(&self, patient: &Value) -> bool {
        // A partial birth date counts as the youngest the patient could be.
        let old_enough = self.minimum_age_years == 0
            || youngest_age(patient, chrono::Utc::now().date_naive())
                .is_some_and(|age| age >= self.minimum_age_years);
        let registered = self.registered_practices.is_empty()
            || patient["generalPractitioner"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|gp| {
                    gp["identifier"]["system"] == ODS_ORGANISATION_SYSTEM
                        && gp["identifier"]["value"]
                            .as_str()
                            .is_some_and(|ods| self.registered_practices.iter().any(|p| p == ods))
                });
        old_enough && registered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn age_and_practice_rules() {
        let patient = json!({"birthDate": "1958-04-12", "generalPractitioner": [{"identifier": {"system": ODS_ORGANISATION_SYSTEM, "value": "A81001"}}]});
        assert!(!CohortConfig::default().is_active());
        assert!(CohortConfig::default().admits(&json!({})));
        let adults = CohortConfig {
            minimum_age_years: 18,
            registered_practices: vec![],
        };
        assert!(adults.admits(&patient));
        assert!(!adults.admits(&json!({"birthDate": "2020-01-01"})));
        assert!(
            !adults.admits(&json!({})),
            "unknown age is outside an age rule"
        );
        let practice = CohortConfig {
            minimum_age_years: 0,
            registered_practices: vec!["A81001".into()],
        };
        assert!(practice.admits(&patient));
        let elsewhere = CohortConfig {
            minimum_age_years: 0,
            registered_practices: vec!["Y99999".into()],
        };
        assert!(!elsewhere.admits(&patient));
    }
}
