//! Directory records (Medication, Organization, Practitioner, PractitionerRole,
//! Location): in no patient's compartment, searched by `_id`, identifier or name at
//! every FHIR partner that serves the type.

use std::collections::HashMap;

use super::fan_out::ask_each;
use super::partner::Partner;
use super::report::Notice;
use super::scope::RequestScope;
use super::{Federation, Gathered, partner_references};
use crate::fhir::id::split_facade_id;
use crate::fhir::reference::to_facade_form;
use crate::fhir::search::SearchRequest;
use crate::fhir::search::registry::ParamKind;
use crate::fhir::search::value::SearchValue;

impl Federation {
    /// Directory records matching `request`, from every partner that serves its type.
    pub async fn gather_directory(
        &self,
        request: &SearchRequest,
        scope: &RequestScope,
    ) -> Gathered {
        let resource_type = request.resource_type;
        let asked = self.partners.iter().filter(|p| {
            p.source.searches_by_parameter() && p.resource_types.contains(&resource_type)
        });
        let asks = asked.filter_map(|partner| {
            let query = directory_query(request, partner)?;
            let search = async move {
                partner
                    .source
                    .search(partner, resource_type, &query, None, self.limits, scope)
                    .await
            };
            Some((partner, (), search))
        });
        let mut gathered = Gathered::default();
        let no_patients = HashMap::new();
        for answered in ask_each(scope.deadline, asks).await {
            let partner = answered.asked.partner;
            let (pages, mut report, ()) = match answered.answer() {
                Ok(answer) => answer,
                Err(failed) => {
                    gathered.reports.push(failed);
                    continue;
                }
            };
            if pages.truncated {
                report.note(Notice::more_pages());
            }
            let context = self.context(partner, &no_patients);
            for mut resource in pages.resources {
                if resource["resourceType"] != resource_type.as_str() {
                    report.rejected.wrong_type += 1;
                    continue;
                }
                match to_facade_form(&mut resource, &context) {
                    Ok(()) => {
                        report.entries += 1;
                        gathered.resources.push(resource);
                    }
                    Err(_) => report.rejected.unusable += 1,
                }
            }
            gathered.reports.push(report);
        }
        gathered
    }
}

/// A directory search rebuilt for one partner: `_id` and references narrowed to its
/// own records (None when none of them are), the rest under its names.
fn directory_query(request: &SearchRequest, partner: &Partner) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for criterion in &request.criteria {
        match criterion.param.code.as_str() {
            "_id" => {
                let ids: Vec<&str> = criterion
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        SearchValue::Token(t) => t.code.as_deref().and_then(split_facade_id),
                        _ => None,
                    })
                    .filter(|(p, _)| *p == partner.id)
                    .map(|(_, local)| local)
                    .collect();
                if ids.is_empty() {
                    return None;
                }
                pairs.push(("_id".into(), ids.join(",")));
            }
            _ if criterion.modifier.is_some() => pairs.extend(criterion.partner_pair()),
            _ if criterion.param.kind == ParamKind::Reference => {
                pairs.push(partner_references(criterion, partner, None, &Vec::new())?)
            }
            _ => pairs.extend(criterion.partner_pair()),
        }
    }
    Some(pairs)
}
