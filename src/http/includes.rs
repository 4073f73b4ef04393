//! `_include` and `_revinclude`: the records a page's matches point at, and the
//! records that point at them, from the partner that holds the matches. What is
//! included passes the release stage like a match, and is not counted in the total
//! or the page size. `$everything` includes the directory records its records point
//! at (the medicines, the practice, the clinicians) the same way.

use crate::federation::scope::RequestScope;
use serde_json::Value;

use super::links::{PartnerLinks, release};
use super::{AppState, Viewer};
use crate::federation::linked::PatientIds;
use crate::fhir::ResourceType;
use crate::fhir::reference::references;
use crate::fhir::search::Include;
use crate::fhir::search::matcher::nodes;
use crate::policy::release::{Released, address};

/// What to add to a page of matches.
pub struct IncludePlan<'a> {
    pub includes: &'a [Include],
    pub revincludes: &'a [Include],
    /// Every directory record the matches point at ($everything).
    pub directory: bool,
    pub patients: &'a PatientIds,
    pub scope: &'a RequestScope,
}

impl IncludePlan<'_> {
    pub fn is_empty(&self) -> bool {
        self.includes.is_empty() && self.revincludes.is_empty() && !self.directory
    }
}

/// The released records `plan` adds to `matches`, each once and none of them a match.
pub async fn included(
    req: &actix_web::HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    matches: &[Value],
    plan: &IncludePlan<'_>,
) -> Released {
    let mut released = Released::default();
    if plan.is_empty() || matches.is_empty() {
        return released;
    }
    let mut shown: Vec<String> = matches.iter().map(address).collect();
    let first = include_round(req, state, viewer, matches, plan, false, &shown).await;
    shown.extend(first.records().iter().map(address));
    // `:iterate`, once more over what the first round brought.
    let second = match plan
        .includes
        .iter()
        .chain(plan.revincludes)
        .any(|i| i.iterate)
    {
        true => {
            let brought = first.records().to_vec();
            include_round(req, state, viewer, &brought, plan, true, &shown).await
        }
        false => Released::default(),
    };
    released.extend(first);
    released.extend(second);
    released
}

async fn include_round(
    req: &actix_web::HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    from: &[Value],
    plan: &IncludePlan<'_>,
    iterating: bool,
    already: &[String],
) -> Released {
    let applies = |i: &&Include| !iterating || i.iterate;
    // Forward: the references the includes name, as linked records of the partner.
    let mut wanted: Vec<(String, String)> = Vec::new();
    for record in from {
        let Some(source) = record["resourceType"]
            .as_str()
            .and_then(|t| t.parse::<ResourceType>().ok())
        else {
            continue;
        };
        let mut targets: Vec<&str> = Vec::new();
        for include in plan
            .includes
            .iter()
            .filter(applies)
            .filter(|i| i.source == source)
        {
            for node in nodes(record, &include.param.paths) {
                if let Some(reference) = node["reference"].as_str()
                    && reference
                        .split_once('/')
                        .and_then(|(t, _)| t.parse::<ResourceType>().ok())
                        .is_some_and(|t| include.reaches(t))
                {
                    targets.push(reference);
                }
            }
        }
        if plan.directory && !iterating {
            targets.extend(references(record).into_iter().filter(|r| {
                r.split_once('/')
                    .and_then(|(t, _)| t.parse::<ResourceType>().ok())
                    .is_some_and(ResourceType::is_directory)
            }));
        }
        for reference in targets {
            if let Some((type_name, id)) = reference.split_once('/')
                && !already.iter().any(|a| a == reference)
                && !wanted.iter().any(|(t, i)| t == type_name && i == id)
            {
                wanted.push((type_name.to_string(), id.to_string()));
            }
        }
    }
    let mut candidates = state
        .federation
        .fetch_linked(wanted, plan.patients, plan.scope)
        .await
        .found;
    // Reverse: records pointing at these, asked of the partners that hold them.
    for include in plan.revincludes.iter().filter(applies) {
        let targets: Vec<String> = from
            .iter()
            .filter(|r| {
                r["resourceType"]
                    .as_str()
                    .and_then(|t| t.parse::<ResourceType>().ok())
                    .is_some_and(|t| include.reaches(t))
            })
            .map(address)
            .collect();
        if targets.is_empty() {
            continue;
        }
        let gathered = state
            .federation
            .gather_referring(
                include.source,
                include.param,
                &targets,
                plan.patients,
                plan.scope,
            )
            .await;
        candidates.extend(gathered.resources);
    }
    candidates.retain(|r| !already.contains(&address(r)));
    candidates.sort_by_key(address);
    candidates.dedup_by_key(|r| address(r));
    let links = PartnerLinks {
        federation: &state.federation,
        patients: plan.patients.clone(),
        scope: plan.scope,
    };
    release(req, state, viewer, candidates, from.to_vec(), links).await
}
