//! Patient identity across partners: which local patient ids stand for an NHS number.
//!
//! What partners answered is kept in the store's patient-link table, which several
//! instances share; a link older than the time to live is asked again. Only answers a
//! partner actually gave are kept: a failed look-up is asked again next time.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::fhir::NhsNumber;
use crate::fhir::nhs_number::NHS_NUMBER_SYSTEM;
use crate::store::{AnyConnection, Store, StoreError, links, now_ms};

/// Local patient ids a partner holds for one NHS number (empty: not known there).
pub type LocalIds = Vec<String>;

/// The fresh links of one NHS number, by partner id: where its records are gathered
/// from without asking the partner who the patient is.
pub type Known = HashMap<String, LocalIds>;

#[derive(Clone)]
pub struct PatientLinks {
    store: Store,
    ttl: Duration,
}

impl PatientLinks {
    pub fn new(store: Store, ttl: Duration) -> PatientLinks {
        PatientLinks { store, ttl }
    }

    fn fresh_since(&self) -> i64 {
        now_ms() - self.ttl.as_millis() as i64
    }

    /// `alongside`'s answer and the fresh links of `nhs`, read in one trip to the
    /// database: a request that needs both (the objection register, then these)
    /// waits for one blocking call instead of two.
    pub async fn known_alongside<T: Send + 'static>(
        &self,
        nhs: &NhsNumber,
        alongside: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(T, Known), StoreError> {
        let (nhs, since) = (nhs.to_string(), self.fresh_since());
        let (answer, found) = self
            .store
            .run(move |conn| {
                let answer = alongside(conn)?;
                Ok((answer, links::fresh_links(conn, &nhs, since)?))
            })
            .await?;
        let known = found
            .into_iter()
            .map(|l| (l.partner_id, l.local_ids))
            .collect();
        Ok((answer, known))
    }

    /// Records what partners answered, `(NHS number, partner id, local ids)`, in one
    /// trip to the database.
    pub async fn remember(
        &self,
        learned: Vec<(NhsNumber, String, LocalIds)>,
    ) -> Result<(), StoreError> {
        if learned.is_empty() {
            return Ok(());
        }
        self.store
            .run(move |conn| {
                let at = now_ms();
                learned.iter().try_for_each(|(nhs, partner, ids)| {
                    links::replace(conn, nhs.as_str(), partner, ids, at)
                })
            })
            .await
    }

    /// The NHS number behind a partner's local patient id, if freshly known.
    pub async fn nhs_number(
        &self,
        partner_id: &str,
        local_id: &str,
    ) -> Result<Option<NhsNumber>, StoreError> {
        let (partner_id, local_id, since) = (
            partner_id.to_string(),
            local_id.to_string(),
            self.fresh_since(),
        );
        let found = self
            .store
            .run(move |conn| links::nhs_number_for(conn, &partner_id, &local_id, since))
            .await?;
        Ok(found.and_then(|n| NhsNumber::parse(&n).ok()))
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
    fn nhs_number_must_be_valid_and_under_the_nhs_system() {
        let p =
            |system: &str, value: &str| json!({"identifier": [{"system": system, "value": value}]});
        assert!(nhs_number_of(&p(NHS_NUMBER_SYSTEM, "9000000009")).is_some());
        assert!(nhs_number_of(&p(NHS_NUMBER_SYSTEM, "9000000008")).is_none());
        assert!(nhs_number_of(&p("urn:mrn", "9000000009")).is_none());
    }
}
