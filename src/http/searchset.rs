//! Turns everything gathered for a request into one page of a searchset: merge,
//! sort, page, subset, links, and the outcome entry with per-partner reports.

use serde_json::Value;

use super::error::ApiError;
use super::includes::IncludePlan;
use super::{AppState, Viewer};
use crate::federation::cursor::PageToken;
use crate::federation::report::PartnerReport;
use crate::fhir::ODS_ORGANISATION_SYSTEM;
use crate::fhir::bundle::SearchSet;
use crate::fhir::elements::{subset, summarise};
use crate::fhir::outcome::Issue;
use crate::fhir::page::{Cursor, Entry, dedupe, page_range, sort};
use crate::fhir::search::{SortOrder, Summary, Total};
use crate::fhir::uk_core;
use crate::policy::Policy;
use crate::policy::access::Denied;
use crate::policy::release::Released;

pub type QueryPairs = Vec<(String, String)>;

/// A page link a request came with: where it points, and the sealed token itself.
pub struct PageLink {
    pub cursor: Cursor,
    pub token: String,
}

/// A page being answered.
pub struct PageRequest {
    /// The path searched, relative to the FHIR base: `Observation`, `Patient/{nhs}/$everything`.
    pub target: String,
    /// The search as understood, canonical; what page tokens carry.
    pub query: Vec<(String, String)>,
    pub count: usize,
    pub sort: SortOrder,
    pub summary: Summary,
    pub total: Total,
    pub elements: Option<Vec<String>>,
    /// The page link this page was asked with, if any.
    pub link: Option<PageLink>,
    pub notes: Vec<Issue>,
    /// `_format` as the client gave it, kept on page links.
    pub format_param: Option<String>,
}

impl PageRequest {
    /// Reads `_cursor` if present: the search state then comes from the token.
    pub fn open_cursor(
        state: &AppState,
        viewer: &Viewer,
        target: &str,
        pairs: Vec<(String, String)>,
    ) -> Result<(QueryPairs, Option<PageLink>), ApiError> {
        let Some((_, sealed)) = pairs.iter().find(|(k, _)| k == "_cursor") else {
            return Ok((pairs, None));
        };
        let token = state.sealer.open(sealed)?;
        if token.holder != viewer.holder {
            return Err(Denied::Forbidden(
                "this page link was issued to someone else; repeat the search".into(),
            )
            .into());
        }
        if token.target != target {
            return Err(ApiError::BadRequest(
                "this page link belongs to a different search; repeat the search".into(),
            ));
        }
        if let Some((name, _)) = pairs
            .iter()
            .find(|(k, _)| !matches!(k.as_str(), "_cursor" | "_format" | "_pretty"))
        {
            return Err(ApiError::BadRequest(format!(
                "a page link is used as given; '{name}' cannot be added to it"
            )));
        }
        Ok((
            token.query,
            Some(PageLink {
                cursor: token.cursor,
                token: sealed.clone(),
            }),
        ))
    }
}

/// Does the resource carry the origin tag of this organisation?
fn comes_from(resource: &Value, ods_code: &str) -> bool {
    resource["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["system"] == ODS_ORGANISATION_SYSTEM && t["code"] == ods_code)
}

/// Every searchset is made here, and only from what the release stage released:
/// merged, sorted, counted and paged after the policy, never before; then what the
/// page's matches include, released the same way.
pub async fn searchset(
    req: &actix_web::HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    page: PageRequest,
    released: Released,
    reports: &[PartnerReport],
    plan: IncludePlan<'_>,
) -> Value {
    super::audit::note_partners(req, reports);
    let mut unjudged_at = released.unjudged_at().to_vec();
    let mut entries = dedupe(
        released
            .into_records()
            .into_iter()
            .map(|r| Entry::new(r, page.sort))
            .collect(),
    );
    sort(&mut entries, page.sort);
    let total = entries.len();
    // Each partner's count is of what this answer holds from it, after the policy:
    // counting before would tell how many records were withheld.
    let from_partner: Vec<usize> = reports
        .iter()
        .map(|r| {
            entries
                .iter()
                .filter(|e| comes_from(&e.resource, &r.partner.ods_code))
                .count()
        })
        .collect();

    let link = |query: Vec<(String, String)>| {
        let mut query = query;
        if let Some(format) = &page.format_param {
            query.push(("_format".into(), format.clone()));
        }
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        format!("{}/{}?{encoded}", state.base, page.target)
    };
    let page_link = |cursor: Cursor| {
        let token = PageToken {
            target: page.target.clone(),
            query: page.query.clone(),
            cursor,
            holder: viewer.holder.clone(),
            expires_at: state.sealer.expiry_from_now(),
        };
        link(vec![("_cursor".into(), state.sealer.seal(&token))])
    };
    let self_link = match &page.link {
        Some(asked) => link(vec![("_cursor".into(), asked.token.clone())]),
        None => link(page.query.clone()),
    };
    let (resources, next_link, previous_link) = match page.summary == Summary::Count {
        true => (Vec::new(), None, None),
        false => {
            let range = page_range(
                &entries,
                page.link.as_ref().map(|l| &l.cursor),
                page.count,
                page.sort,
            );
            let next_link = (range.end < total)
                .then(|| page_link(Cursor::After(entries[range.end - 1].key.clone())));
            let previous_link = (range.start > 0)
                .then(|| page_link(Cursor::Before(entries[range.start].key.clone())));
            let resources: Vec<Value> = entries.drain(range).map(|e| e.resource).collect();
            (resources, next_link, previous_link)
        }
    };
    let included = super::includes::included(req, state, viewer, &resources, &plan).await;
    for organisation in included.unjudged_at() {
        if !unjudged_at.contains(organisation) {
            unjudged_at.push(organisation.clone());
        }
    }
    let mut included = included.into_records();
    included.iter_mut().for_each(uk_core::declare);
    let resources: Vec<Value> = resources
        .into_iter()
        .map(|mut resource| {
            uk_core::declare(&mut resource);
            if let Some(elements) = &page.elements {
                subset(&mut resource, elements);
            }
            summarise(&mut resource, page.summary);
            resource
        })
        .collect();
    super::audit::note_returned(req, resources.iter().chain(&included));

    let mut outcome = page.notes.clone();
    outcome.push(Policy::notice());
    for (report, entries) in reports.iter().zip(from_partner) {
        let mut report = report.clone();
        report.entries = entries;
        outcome.extend(report.issues());
    }
    // Records left out because what they point at could not be checked: which
    // organisation, never which category or how many.
    for organisation in unjudged_at {
        outcome.push(Issue::warning(
            "incomplete",
            format!(
                "{organisation}: some records could not be checked against the sharing rules (a record they refer to could not be fetched) and were left out; try again later"
            ),
        ));
    }
    SearchSet {
        base: &state.base,
        self_link,
        next_link,
        previous_link,
        total: (page.total != Total::None).then_some(total),
        resources,
        included,
        outcome,
    }
    .into_bundle()
}
