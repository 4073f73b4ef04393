//! Turns everything gathered for a request into one page of a searchset: merge,
//! sort, page, subset, links, and the outcome entry with per-partner reports.

use std::cmp::Ordering;

use serde_json::Value;

use super::error::ApiError;
use super::includes::IncludePlan;
use super::{AppState, Viewer};
use crate::federation::cursor::PageToken;
use crate::federation::ordered::{self, LaterPage, Ordered, PageOrder};
use crate::federation::report::PartnerReport;
use crate::fhir::ODS_ORGANISATION_SYSTEM;
use crate::fhir::bundle::SearchSet;
use crate::fhir::elements::{subset, summarise};
use crate::fhir::outcome::Issue;
use crate::fhir::page::{Cursor, Entry, compare, dedupe, page_range, sort};
use crate::fhir::search::{SortOrder, Summary, Total};
use crate::fhir::uk_core;
use crate::policy::Policy;
use crate::policy::access::Denied;
use crate::policy::release::Released;

pub type QueryPairs = Vec<(String, String)>;

/// A page link a request came with: where it points, what earlier pages learnt of
/// the partners' order and the count, and the sealed token itself.
pub struct PageLink {
    pub cursor: Cursor,
    pub sorted_by: Vec<String>,
    pub fits_a_page: Vec<String>,
    pub total: Option<usize>,
    pub token: String,
}

impl PageLink {
    /// How a page asked with this link (or none) asks partners for its order.
    pub fn order(link: Option<&PageLink>, sort: SortOrder, count: usize) -> PageOrder {
        let later = link.and_then(|l| match &l.cursor {
            Cursor::After(key) => Some(LaterPage {
                after: key.clone(),
                count,
                sorted_by: l.sorted_by.clone(),
                fits_a_page: l.fits_a_page.clone(),
            }),
            Cursor::Before(_) => None,
        });
        PageOrder { sort, later }
    }
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
    /// How the partners' answers stand in the page's order: who sorted, and where
    /// the answer gathered in part stops being complete.
    pub ordered: Vec<(String, Ordered)>,
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
                sorted_by: token.sorted_by,
                fits_a_page: token.fits_a_page,
                total: token.total,
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
    // Gathered in part: what sorts from the frontier on may lack records not yet
    // asked for, so the page stops before it, and the count is the one carried from
    // the last page gathered whole.
    let frontier = ordered::frontier(page.ordered.iter().map(|(_, o)| *o), page.sort);
    if let Some(frontier) = &frontier {
        entries.retain(|e| compare(&e.key, frontier, page.sort) == Ordering::Less);
    }
    let total = match (&frontier, &page.link) {
        (Some(_), Some(link)) => link.total,
        _ => Some(entries.len()),
    };
    // A partner once seen not to honour the order is not trusted with it again in
    // this search, however its later answers happen to come.
    let mut sorted_by: Vec<String> = page
        .ordered
        .iter()
        .filter(|(partner, o)| {
            o.in_order()
                && page
                    .link
                    .as_ref()
                    .is_none_or(|l| l.sorted_by.contains(partner))
        })
        .map(|(partner, _)| partner.clone())
        .collect();
    sorted_by.dedup();
    let fits_a_page: Vec<String> = sorted_by
        .iter()
        .filter(|partner| {
            let answers = page.ordered.iter().filter(|(p, _)| p == *partner);
            ordered::fits_in(answers.map(|(_, o)| *o), page.count)
        })
        .cloned()
        .collect();
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
            sorted_by: sorted_by.clone(),
            fits_a_page: fits_a_page.clone(),
            total,
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
            // Past the last entry shown; or, where none shows before the frontier,
            // past everything up to it.
            let last_shown = range.end.checked_sub(1).filter(|_| !range.is_empty());
            let next_key = match (&frontier, last_shown) {
                (_, Some(last)) if range.end < entries.len() || frontier.is_some() => {
                    Some(entries[last].key.clone())
                }
                (Some(frontier), _) => Some(frontier.clone()),
                _ => None,
            };
            let next_link = next_key.map(|key| page_link(Cursor::After(key)));
            // A page gathered in part has had pages before it, whether or not what
            // sorts before its start is in hand.
            let first_shown = entries.get(range.start).map(|e| e.key.clone());
            let previous_key = match (range.start > 0 || frontier.is_some(), first_shown) {
                (true, Some(first)) => Some(first),
                (true, None) => frontier.clone(),
                (false, _) => None,
            };
            let previous_link = previous_key.map(|key| page_link(Cursor::Before(key)));
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
        total: total.filter(|_| page.total != Total::None),
        resources,
        included,
        outcome,
    }
    .into_bundle()
}
