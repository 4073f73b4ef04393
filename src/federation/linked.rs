//! Records fetched by facade id because a record the request gathered points at them:
//! the policy judges a record by what it points at. Each partner is asked for its
//! records in one batch per type (`Type?_id=a,b,c`), the ones a batch did not bring
//! are read one by one, and legacy systems are asked through their mapping; all
//! partners at once, under the request's deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::Value;

use super::fan_out::{Answered, ask_each};
use super::partner::{Partner, PartnerFailure};
use super::scope::RequestScope;
use super::source::Source;
use super::{Federation, fhir, legacy};
use crate::fhir::id::split_facade_id;
use crate::fhir::reference::to_facade_form;
use crate::fhir::{NhsNumber, ResourceType};

/// Ids asked of one FHIR partner in one search.
const BATCH: usize = 50;

/// A linked record asked for: the type its reference names and its facade id.
pub type LinkedId = (String, String);

/// Each partner's local ids of the request's patient, and the NHS number they stand
/// for: references to them become `Patient/{NHS number}` in fetched records.
pub type PatientIds = HashMap<String, HashMap<String, NhsNumber>>;

/// What fetching linked records gave.
#[derive(Debug, Default)]
pub struct LinkedRecords {
    /// Found, in facade form.
    pub found: Vec<Value>,
    /// Not had: `None` when the partner says it has no such record, else the
    /// organisation that failed, as clients may see it named.
    pub missing: Vec<(LinkedId, Option<String>)>,
    /// Other records the partners gave along (a GP Connect practice gives the
    /// patient's whole record), in facade form: to judge by, never to show.
    pub context: Vec<Value>,
}

impl Federation {
    /// Whether a reference of `type_name` held by `partner_id` is followed: always to
    /// patient records (and to types the facade does not know, which it cannot
    /// assume harmless); to directory records only where the partner serves them.
    pub fn follows(&self, partner_id: &str, type_name: &str) -> bool {
        match type_name.parse::<ResourceType>() {
            Ok(t) if t.is_directory() => self
                .partner(partner_id)
                .is_some_and(|p| p.resource_types.contains(&t)),
            _ => true,
        }
    }

    /// The organisation a partner id stands for, as clients may see it named.
    pub fn organisation(&self, partner_id: &str) -> String {
        self.partner(partner_id)
            .map_or_else(|| "another system".to_string(), |p| p.label())
    }

    pub(super) fn partner(&self, partner_id: &str) -> Option<&Arc<Partner>> {
        self.partners.iter().find(|p| p.id == partner_id)
    }

    /// Fetches `wanted` from the partners that hold them.
    pub async fn fetch_linked(
        &self,
        wanted: Vec<LinkedId>,
        patients: &PatientIds,
        scope: &RequestScope,
    ) -> LinkedRecords {
        let mut by_partner: BTreeMap<String, Vec<LinkedId>> = BTreeMap::new();
        let mut records = LinkedRecords::default();
        for (type_name, id) in wanted {
            match split_facade_id(&id) {
                Some((partner, _)) if self.partner(partner).is_some() => {
                    let partner = partner.to_string();
                    by_partner.entry(partner).or_default().push((type_name, id));
                }
                _ => records.missing.push(((type_name, id), None)),
            }
        }
        let empty = HashMap::new();
        let asks = by_partner.into_iter().filter_map(|(partner_id, ids)| {
            let partner = self.partner(&partner_id)?;
            let patients = patients.get(&partner_id).unwrap_or(&empty);
            // The ids go along twice: to ask for, and to say which were found.
            let asked = ids.clone();
            let fetch = async move { self.fetch_at(partner, &asked, scope).await };
            Some((partner, (ids, patients), fetch))
        });
        for Answered {
            asked,
            with: (ids, patients),
            outcome,
        } in ask_each(scope.deadline, asks).await
        {
            let partner = asked.partner;
            // The whole exchange may have run out of time; else each type's batch
            // stands or fails alone.
            let (fetched, failed) = outcome.unwrap_or_else(|_| {
                let every: Vec<&str> = ids.iter().map(|(t, _)| t.as_str()).collect();
                (Vec::new(), every.into_iter().map(str::to_string).collect())
            });
            let context = self.context(partner, patients);
            let wanted_local = |r: &Value| {
                ids.iter().any(|(t, id)| {
                    r["resourceType"] == t.as_str()
                        && split_facade_id(id).is_some_and(|(_, local)| r["id"] == local)
                })
            };
            for mut along in fetched.iter().filter(|r| !wanted_local(r)).cloned() {
                if to_facade_form(&mut along, &context).is_ok() {
                    records.context.push(along);
                }
            }
            for (type_name, id) in ids {
                if failed.contains(&type_name) {
                    records
                        .missing
                        .push(((type_name, id), Some(partner.label())));
                    continue;
                }
                let local = split_facade_id(&id).map_or("", |(_, local)| local);
                let found = fetched
                    .iter()
                    .find(|r| r["resourceType"] == type_name.as_str() && r["id"] == local);
                let mut record = match found {
                    Some(record) => record.clone(),
                    None => {
                        records.missing.push(((type_name, id), None));
                        continue;
                    }
                };
                match to_facade_form(&mut record, &context) {
                    Ok(()) => records.found.push(record),
                    Err(_) => records.missing.push(((type_name, id), None)),
                }
            }
        }
        records
    }

    /// One partner's records among `ids` (its own local ids inside), as it sent
    /// them, and the types it failed to give.
    async fn fetch_at(
        &self,
        partner: &Arc<Partner>,
        ids: &[LinkedId],
        scope: &RequestScope,
    ) -> Result<(Vec<Value>, Vec<String>), PartnerFailure> {
        let mut by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (type_name, id) in ids {
            if let Some((_, local)) = split_facade_id(id) {
                by_type.entry(type_name).or_default().push(local);
            }
        }
        let fetches = by_type.into_iter().map(|(type_name, locals)| async move {
            let outcome = self.fetch_type(partner, type_name, &locals, scope).await;
            (type_name, outcome)
        });
        let mut found = Vec::new();
        let mut failed = Vec::new();
        for (type_name, outcome) in join_all(fetches).await {
            match outcome {
                Ok(records) => found.extend(records),
                Err(_) => failed.push(type_name.to_string()),
            }
        }
        Ok((found, failed))
    }

    /// One partner's records of one type among `locals`.
    async fn fetch_type(
        &self,
        partner: &Arc<Partner>,
        type_name: &str,
        locals: &[&str],
        scope: &RequestScope,
    ) -> Result<Vec<Value>, PartnerFailure> {
        let max = self.limits.max_response_bytes;
        let mut found = Vec::new();
        let mapping = match &partner.source {
            Source::Fhir => None,
            Source::Legacy(mapping) => Some(mapping),
            // The patient's structured record: held for this request, or fetched.
            Source::GpConnect(practice) => {
                return practice
                    .records_of(partner, type_name, locals, scope, max)
                    .await;
            }
        };
        if let Some(mapping) = mapping {
            // A legacy system has no batch read: its records of that type for each
            // patient (a legacy local id starts with the patient's), once.
            let Ok(resource_type) = type_name.parse::<ResourceType>() else {
                return Ok(found);
            };
            let mut patients: Vec<&str> = locals
                .iter()
                .filter_map(|l| partner.source.patient_in_id(l))
                .collect();
            patients.sort();
            patients.dedup();
            for patient in patients {
                let subject = self
                    .nhs_number_at(partner, scope, patient)
                    .await
                    .map_err(|_| PartnerFailure::Unreachable)?;
                let query = [("patient".to_string(), patient.to_string())];
                let pages = legacy::search(
                    partner,
                    mapping,
                    resource_type,
                    &query,
                    subject.as_ref(),
                    max,
                )
                .await?;
                found.extend(pages.resources);
            }
            return Ok(found);
        }
        for chunk in locals.chunks(BATCH) {
            let batch = fhir::search_ids(partner, type_name, chunk, max).await;
            // A partner that cannot search by `_id` is read one record at a time.
            let batch = match batch {
                Ok(batch) => batch,
                Err(PartnerFailure::HttpStatus(400 | 404 | 405 | 501)) => Vec::new(),
                Err(failure) => return Err(failure),
            };
            for local in chunk {
                let in_batch = batch
                    .iter()
                    .find(|r| r["resourceType"] == type_name && r["id"] == *local);
                match in_batch {
                    Some(record) => found.push(record.clone()),
                    None => found.extend(fhir::read_one(partner, type_name, local, max).await?),
                }
            }
        }
        Ok(found)
    }
}
