//! Patient identity across partners: which local patient ids stand for an NHS number.
//!
//! Answers are remembered for a short time so that a clinical search costs one round
//! of partner calls, not two. Only answers a partner actually gave are remembered;
//! a failed look-up is asked again next time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fhir::NhsNumber;
use crate::fhir::nhs_number::NHS_NUMBER_SYSTEM;

/// Local patient ids a partner holds for one NHS number (empty: not known there).
pub type LocalIds = Vec<String>;

pub struct PatientLinks {
    ttl: Duration,
    forward: Mutex<HashMap<(NhsNumber, String), (Instant, LocalIds)>>,
    reverse: Mutex<HashMap<(String, String), (Instant, NhsNumber)>>,
}

impl PatientLinks {
    pub fn new(ttl: Duration) -> PatientLinks {
        PatientLinks {
            ttl,
            forward: Mutex::new(HashMap::new()),
            reverse: Mutex::new(HashMap::new()),
        }
    }

    /// The remembered local ids of `nhs` at `partner_id`, if still fresh.
    pub fn local_ids(&self, nhs: &NhsNumber, partner_id: &str) -> Option<LocalIds> {
        let forward = self.forward.lock().expect("link cache lock");
        let (at, ids) = forward.get(&(nhs.clone(), partner_id.to_string()))?;
        (at.elapsed() < self.ttl).then(|| ids.clone())
    }

    /// The remembered NHS number behind a partner's local patient id.
    pub fn nhs_number(&self, partner_id: &str, local_id: &str) -> Option<NhsNumber> {
        let reverse = self.reverse.lock().expect("link cache lock");
        let (at, nhs) = reverse.get(&(partner_id.to_string(), local_id.to_string()))?;
        (at.elapsed() < self.ttl).then(|| nhs.clone())
    }

    pub fn remember(&self, nhs: &NhsNumber, partner_id: &str, ids: &LocalIds) {
        let now = Instant::now();
        let mut forward = self.forward.lock().expect("link cache lock");
        forward.retain(|_, (at, _)| at.elapsed() < self.ttl);
        forward.insert((nhs.clone(), partner_id.to_string()), (now, ids.clone()));
        drop(forward);
        let mut reverse = self.reverse.lock().expect("link cache lock");
        reverse.retain(|_, (at, _)| at.elapsed() < self.ttl);
        for id in ids {
            reverse.insert((partner_id.to_string(), id.clone()), (now, nhs.clone()));
        }
    }
}

/// The NHS number a partner's Patient resource carries, if valid.
pub fn nhs_number_of(patient: &Value) -> Option<NhsNumber> {
    patient["identifier"]
        .as_array()?
        .iter()
        .filter(|i| i["system"] == NHS_NUMBER_SYSTEM)
        .find_map(|i| NhsNumber::parse(i["value"].as_str()?).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remembers_both_ways_until_the_ttl() {
        let nhs = NhsNumber::parse("9000000009").unwrap();
        let links = PatientLinks::new(Duration::from_secs(60));
        links.remember(&nhs, "gp", &vec!["p1".into()]);
        assert_eq!(links.local_ids(&nhs, "gp"), Some(vec!["p1".to_string()]));
        assert_eq!(links.nhs_number("gp", "p1"), Some(nhs.clone()));
        assert_eq!(links.local_ids(&nhs, "acute"), None);
        let expired = PatientLinks::new(Duration::ZERO);
        expired.remember(&nhs, "gp", &vec!["p1".into()]);
        assert_eq!(expired.local_ids(&nhs, "gp"), None);
    }

    #[test]
    fn nhs_number_must_be_valid_and_under_the_nhs_system() {
        let p =
            |system: &str, value: &str| json!({"identifier": [{"system": system, "value": value}]});
        assert!(nhs_number_of(&p(NHS_NUMBER_SYSTEM, "9000000009")).is_some());
        assert!(nhs_number_of(&p(NHS_NUMBER_SYSTEM, "9000000008")).is_none());
        assert!(nhs_number_of(&p("urn:mrn", "9000000009")).is_none());
    }
}
