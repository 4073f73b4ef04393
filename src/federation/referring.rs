//! Records that point at records already found (`_revinclude`): asked of the partner
//! that holds those records, by its own ids, for the same patient.

use std::collections::BTreeMap;

use super::fan_out::ask_each;
use super::linked::PatientIds;
use super::scope::RequestScope;
use super::{Federation, Gathered};
use crate::fhir::ResourceType;
use crate::fhir::id::split_facade_id;
use crate::fhir::reference::to_facade_form;
use crate::fhir::search::registry::ParamDef;

impl Federation {
    /// Records of `source` whose `param` points at any of `targets` (`Type/{facade
    /// id}`), from the partners holding the targets; clinical ones only of the patient
    /// whose ids `patients` holds.
    pub async fn gather_referring(
        &self,
        source: ResourceType,
        param: &ParamDef,
        targets: &[String],
        patients: &PatientIds,
        scope: &RequestScope,
    ) -> Gathered {
        let mut by_partner: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for target in targets {
            let Some((type_name, id)) = target.split_once('/') else {
                continue;
            };
            if let Some((partner, local)) = split_facade_id(id) {
                by_partner
                    .entry(partner)
                    .or_default()
                    .push(format!("{type_name}/{local}"));
            }
        }
        let asks = by_partner.into_iter().filter_map(|(partner_id, locals)| {
            let partner = self.partner(partner_id)?;
            if !partner.source.answers_references() || !partner.resource_types.contains(&source) {
                return None;
            }
            let mut query = vec![(param.partner_code.clone(), locals.join(","))];
            let local_patients = patients.get(partner_id);
            if source.is_clinical() {
                // Only the patient's records: without their ids there, nothing to ask.
                let ids: Vec<&str> = local_patients?.keys().map(String::as_str).collect();
                query.push(("patient".into(), ids.join(",")));
            }
            let search = async move {
                partner
                    .source
                    .search(partner, source, &query, None, self.limits, scope)
                    .await
            };
            Some((partner, local_patients, search))
        });
        let mut gathered = Gathered::default();
        let none = Default::default();
        for answered in ask_each(scope.deadline, asks).await {
            let partner = answered.asked.partner;
            let (pages, mut report, local_patients) = match answered.answer() {
                Ok(answer) => answer,
                Err(failed) => {
                    gathered.reports.push(failed);
                    continue;
                }
            };
            let local_patients = local_patients.unwrap_or(&none);
            let accepted = match source.is_clinical() {
                true => self.accept(
                    partner,
                    source,
                    local_patients,
                    pages.resources,
                    &mut report,
                ),
                false => {
                    let context = self.context(partner, local_patients);
                    pages
                        .resources
                        .into_iter()
                        .filter(|r| r["resourceType"] == source.as_str())
                        .filter_map(|mut r| to_facade_form(&mut r, &context).ok().map(|()| r))
                        .collect()
                }
            };
            gathered.resources.extend(accepted);
            gathered.reports.push(report);
        }
        gathered
    }
}
