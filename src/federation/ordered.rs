//! Partner searches asked in the search's order, so that a later page need not
//! gather every record again.
//!
//! A first page asks a FHIR partner with `_sort` and gathers its answer whole, and
//! checks that the answer came in that order. A later page asks a partner seen to
//! sort only for what sorts from the page key on (the date filter, and `_count` =
//! page size + 1), and checks the answer again: in order, and every record inside
//! the filter. Everything the partner holds that sorts before its last record's date
//! is then in hand, and the page is cut there. A partner that fails either check, a
//! partner that is not a FHIR server, and a page whose key has no date are gathered
//! whole, as without ordering.

use chrono::{DateTime, SecondsFormat};
use serde_json::Value;

use super::partner::{ExchangeLimits, Pages, Partner, PartnerFailure};
use super::source::Source;
use crate::fhir::ResourceType;
use crate::fhir::date::DateValue;
use crate::fhir::page::{SortKey, clinical_date};
use crate::fhir::search::matcher::matches;
use crate::fhir::search::registry::{ParamDef, ParamKind, Registry};
use crate::fhir::search::value::SearchValue;
use crate::fhir::search::{Criterion, SortField, SortOrder};

/// The order a search's answer is shown in, and where a later page starts.
#[derive(Debug, Clone)]
pub struct PageOrder {
    pub sort: SortOrder,
    pub later: Option<LaterPage>,
}

/// A later page going forward: what it starts after, how many it shows, and the
/// partners an earlier page of the same search saw answering in order.
#[derive(Debug, Clone)]
pub struct LaterPage {
    pub after: SortKey,
    pub count: usize,
    pub sorted_by: Vec<String>,
    /// Of those, the partners whose whole answer an earlier page found to fit in a
    /// page: asked for the whole again, in one request, rather than for a window
    /// that would run out and need a second.
    pub fits_a_page: Vec<String>,
}

/// How a partner's answer to an ordered search stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordered {
    /// Everything it holds that matches was asked for; `in_order` if it came sorted;
    /// `records`, how many it gave, None if it held more than the facade follows
    /// (its pages past `max_partner_pages`).
    Whole {
        in_order: bool,
        records: Option<usize>,
    },
    /// Only what sorts from the page key on, up to (not including) this date: the
    /// partner may hold more at and after it.
    Until(i64),
}

impl Ordered {
    pub fn in_order(self) -> bool {
        matches!(
            self,
            Ordered::Until(_) | Ordered::Whole { in_order: true, .. }
        )
    }
}

/// The date parameter a partner can sort `resource_type` by, if the facade's own
/// order for it is that one parameter's date (Condition's, from three, is not).
fn sort_param(resource_type: ResourceType, sort: SortOrder) -> Option<&'static ParamDef> {
    if sort.field != SortField::Date {
        return None;
    }
    match Registry::get().sort_dates(resource_type) {
        [one] if one.kind == ParamKind::Date => Some(one),
        _ => None,
    }
}

/// Searches one type at one FHIR partner in `order`, saying in the answer's
/// `ordered` how it stands; None if the partner cannot be asked to sort the type.
pub(super) async fn search(
    partner: &Partner,
    resource_type: ResourceType,
    query: &[(String, String)],
    limits: ExchangeLimits,
    order: &PageOrder,
) -> Option<Result<Pages, PartnerFailure>> {
    let param = sort_param(resource_type, order.sort)?;
    if !matches!(partner.source, Source::Fhir) {
        return None;
    }
    Some(ordered_search(partner, resource_type, query, limits, order, param).await)
}

async fn ordered_search(
    partner: &Partner,
    resource_type: ResourceType,
    query: &[(String, String)],
    limits: ExchangeLimits,
    order: &PageOrder,
    param: &'static ParamDef,
) -> Result<Pages, PartnerFailure> {
    let name = &param.partner_code;
    let mut sorted_query = query.to_vec();
    sorted_query.push((
        "_sort".into(),
        match order.sort.descending {
            true => format!("-{name}"),
            false => name.clone(),
        },
    ));
    let asked_after = order
        .later
        .as_ref()
        .filter(|l| l.sorted_by.contains(&partner.id) && !l.fits_a_page.contains(&partner.id));
    if let Some((later, date)) = asked_after.and_then(|l| Some((l, l.after.date?))) {
        let filter = window_filter(param, date, order.sort);
        let mut asked = sorted_query.clone();
        asked.extend(filter.partner_pair());
        let page_limits = ExchangeLimits {
            page_size: later.count + 1,
            max_pages: 1,
            ..limits
        };
        let answer = super::fhir::search(partner, resource_type, &asked, page_limits).await;
        let mut pages = match answer {
            Err(PartnerFailure::HttpStatus(400)) => {
                return unordered(partner, resource_type, query, limits).await;
            }
            answer => answer?,
        };
        match window(
            &pages,
            resource_type,
            &filter,
            date,
            later.count,
            order.sort,
        ) {
            Window::Until(until) => {
                // The page asked for only one of the partner's pages: more is expected.
                pages.truncated = false;
                pages.ordered = Some(Ordered::Until(until));
                return Ok(pages);
            }
            Window::NotHonoured => return unordered(partner, resource_type, query, limits).await,
            Window::RunOut => {}
        }
    }
    match super::fhir::search(partner, resource_type, &sorted_query, limits).await {
        Ok(mut pages) => {
            let in_order = sorted(&pages.resources, resource_type, order.sort);
            pages.ordered = Some(whole(in_order, &pages));
            Ok(pages)
        }
        Err(PartnerFailure::HttpStatus(400)) => {
            unordered(partner, resource_type, query, limits).await
        }
        Err(failure) => Err(failure),
    }
}

/// The search as without ordering, from a partner that refused or did not honour
/// `_sort` or the filter: gathered whole, and not asked in order again.
async fn unordered(
    partner: &Partner,
    resource_type: ResourceType,
    query: &[(String, String)],
    limits: ExchangeLimits,
) -> Result<Pages, PartnerFailure> {
    let mut pages = super::fhir::search(partner, resource_type, query, limits).await?;
    pages.ordered = Some(whole(false, &pages));
    Ok(pages)
}

/// A whole answer: how many records it gave, unless it held more than was followed.
fn whole(in_order: bool, pages: &Pages) -> Ordered {
    Ordered::Whole {
        in_order,
        records: (!pages.truncated).then_some(pages.resources.len()),
    }
}

/// What sorts from `date` on: `date` itself included, whatever its records' ids.
fn window_filter(param: &'static ParamDef, date: i64, sort: SortOrder) -> Criterion {
    // Newest first: records starting at or before `date`, i.e. before the next
    // millisecond. Oldest first: records reaching `date` or later.
    let (prefix, at) = match sort.descending {
        true => ("lt", date + 1),
        false => ("ge", date),
    };
    let instant = DateTime::from_timestamp_millis(at)
        .expect("a sort key's date is a valid instant")
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let value = DateValue::parse(&format!("{prefix}{instant}")).expect("an instant parses");
    Criterion {
        param,
        modifier: None,
        values: vec![SearchValue::Date(value)],
    }
}

/// How a later page's answer from one partner stands.
#[derive(Debug, PartialEq, Eq)]
enum Window {
    /// In order, inside the filter: everything from the page key up to this date.
    Until(i64),
    /// Out of order or outside the filter: the partner does not honour them.
    NotHonoured,
    /// Honoured, but no use: the dated records ran out (the filter cannot say
    /// whether undated ones, which sort last, remain), or the answer does not reach
    /// past the key's own date.
    RunOut,
}

fn window(
    pages: &Pages,
    resource_type: ResourceType,
    filter: &Criterion,
    date: i64,
    count: usize,
    sort: SortOrder,
) -> Window {
    let records = &pages.resources;
    if !records.iter().all(|r| matches(r, filter)) || !sorted(records, resource_type, sort) {
        return Window::NotHonoured;
    }
    if records.len() <= count && !pages.truncated {
        return Window::RunOut;
    }
    // The last record must sort past the key's date, or the page would not move on:
    // every record at that date, or (oldest first, where `ge` also takes periods
    // begun earlier and still open) records that began before it.
    match records.last().and_then(|r| clinical_date(r, resource_type)) {
        Some(last) if sort.descending && last < date => Window::Until(last),
        Some(last) if !sort.descending && last > date => Window::Until(last),
        _ => Window::RunOut,
    }
}

/// Are the records in `sort` order by date, undated ones last?
fn sorted(records: &[Value], resource_type: ResourceType, sort: SortOrder) -> bool {
    let dates: Vec<Option<i64>> = records
        .iter()
        .map(|r| clinical_date(r, resource_type))
        .collect();
    dates.windows(2).all(|pair| match (pair[0], pair[1]) {
        (Some(a), Some(b)) if sort.descending => a >= b,
        (Some(a), Some(b)) => a <= b,
        (Some(_), None) | (None, None) => true,
        (None, Some(_)) => false,
    })
}

/// Did one partner's answers give no more than `count` records in all, each whole
/// and holding no more than it gave? Then a later page asks it for the whole again,
/// in one request. One that held more than it gave is asked for windows, which can
/// reach past its last page.
pub fn fits_in(answers: impl IntoIterator<Item = Ordered>, count: usize) -> bool {
    let mut total = 0;
    for answer in answers {
        match answer {
            Ordered::Whole {
                records: Some(records),
                ..
            } => total += records,
            _ => return false,
        }
    }
    total <= count
}

/// The earliest point (in `sort` order) up to which every ordered partner's answer is
/// complete: what sorts at or after it may be missing. None: every answer is whole.
pub fn frontier(answers: impl IntoIterator<Item = Ordered>, sort: SortOrder) -> Option<SortKey> {
    answers
        .into_iter()
        .filter_map(|a| match a {
            Ordered::Until(date) => Some(date),
            Ordered::Whole { .. } => None,
        })
        .reduce(|a, b| match sort.descending {
            true => a.max(b),
            false => a.min(b),
        })
        .map(|date| SortKey {
            rank: 1,
            date: Some(date),
            // Sorts before every id at that date.
            id: String::new(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NEWEST_FIRST: SortOrder = SortOrder {
        field: SortField::Date,
        descending: true,
    };
    const OLDEST_FIRST: SortOrder = SortOrder {
        field: SortField::Date,
        descending: false,
    };

    fn observation(date: Option<&str>) -> Value {
        let mut r = json!({"resourceType": "Observation", "id": "x"});
        if let Some(d) = date {
            r["effectiveDateTime"] = json!(d);
        }
        r
    }

    fn ms(s: &str) -> i64 {
        crate::fhir::date::parse_range(s).unwrap().start
    }

    fn pages(dates: &[Option<&str>], truncated: bool) -> Pages {
        Pages {
            resources: dates.iter().map(|d| observation(*d)).collect(),
            truncated,
            ..Pages::default()
        }
    }

    #[test]
    fn only_types_sorted_by_one_date_parameter_are_asked_in_order() {
        let observation = ResourceType::named("Observation");
        assert_eq!(sort_param(observation, NEWEST_FIRST).unwrap().code, "date");
        assert!(sort_param(ResourceType::named("Condition"), NEWEST_FIRST).is_none());
        let by_update = SortOrder {
            field: SortField::LastUpdated,
            descending: true,
        };
        assert!(sort_param(observation, by_update).is_none());
    }

    #[test]
    fn the_window_filter_takes_the_key_date_itself_and_what_sorts_after_it() {
        let param = sort_param(ResourceType::named("Observation"), NEWEST_FIRST).unwrap();
        let at = ms("2024-03-05T10:00:00Z");
        let newest_first = window_filter(param, at, NEWEST_FIRST);
        assert_eq!(
            newest_first.partner_pair().unwrap(),
            ("date".into(), "lt2024-03-05T10:00:00.001Z".into())
        );
        let takes = |c: &Criterion, d: &str| matches(&observation(Some(d)), c);
        assert!(takes(&newest_first, "2024-03-05T10:00:00Z"));
        assert!(takes(&newest_first, "2024-03-05T09:59:59Z"));
        assert!(!takes(&newest_first, "2024-03-05T10:00:01Z"));
        // A day-precision record starting at the key's instant is inside.
        let midnight = window_filter(param, ms("2024-03-05"), NEWEST_FIRST);
        assert!(takes(&midnight, "2024-03-05"));
        let oldest_first = window_filter(param, at, OLDEST_FIRST);
        assert!(takes(&oldest_first, "2024-03-05T10:00:00Z"));
        assert!(takes(&oldest_first, "2024-03-06"));
        assert!(!takes(&oldest_first, "2024-03-05T09:00:00Z"));
    }

    #[test]
    fn a_window_answer_is_trusted_only_in_order_inside_the_filter_and_moving_on() {
        let param = sort_param(ResourceType::named("Observation"), NEWEST_FIRST).unwrap();
        let filter = window_filter(param, ms("2024-03-10"), NEWEST_FIRST);
        let end = |p: &Pages| {
            window(
                p,
                ResourceType::named("Observation"),
                &filter,
                ms("2024-03-10"),
                2,
                NEWEST_FIRST,
            )
        };
        let good = pages(
            &[Some("2024-03-10"), Some("2024-03-08"), Some("2024-03-07")],
            false,
        );
        assert_eq!(end(&good), Window::Until(ms("2024-03-07")));
        // Out of order, outside the filter, or undated: gathered whole.
        let unsorted = pages(
            &[Some("2024-03-07"), Some("2024-03-08"), Some("2024-03-01")],
            false,
        );
        assert_eq!(end(&unsorted), Window::NotHonoured);
        let unfiltered = pages(
            &[Some("2024-03-12"), Some("2024-03-08"), Some("2024-03-07")],
            false,
        );
        assert_eq!(end(&unfiltered), Window::NotHonoured);
        let undated = pages(&[Some("2024-03-08"), Some("2024-03-07"), None], false);
        assert_eq!(end(&undated), Window::NotHonoured);
        // Run out (undated ones may remain), or stuck at the key's date.
        let short = pages(&[Some("2024-03-08"), Some("2024-03-07")], false);
        assert_eq!(end(&short), Window::RunOut);
        let stuck = pages(
            &[Some("2024-03-10"), Some("2024-03-10"), Some("2024-03-10")],
            false,
        );
        assert_eq!(end(&stuck), Window::RunOut);
        // Oldest first, periods begun before the key and still open match `ge`: an
        // answer that does not reach past the key does not move the page on.
        let open = |start: &str| json!({"resourceType": "Encounter", "id": "e", "period": {"start": start}});
        let encounter = ResourceType::named("Encounter");
        let param = sort_param(encounter, OLDEST_FIRST).unwrap();
        let from = ms("2024-03-10");
        let filter = window_filter(param, from, OLDEST_FIRST);
        let open_periods = Pages {
            resources: vec![open("2024-03-01"), open("2024-03-02"), open("2024-03-03")],
            ..Pages::default()
        };
        assert!(open_periods.resources.iter().all(|r| matches(r, &filter)));
        let reached = window(&open_periods, encounter, &filter, from, 2, OLDEST_FIRST);
        assert_eq!(reached, Window::RunOut);
        // A partner whose pages are smaller than asked still moves the page on.
        let smaller = pages(&[Some("2024-03-09"), Some("2024-03-08")], true);
        assert_eq!(end(&smaller), Window::Until(ms("2024-03-08")));
    }

    #[test]
    fn sorted_puts_undated_records_last() {
        let t = ResourceType::named("Observation");
        let rs = |ds: &[Option<&str>]| pages(ds, false).resources;
        assert!(sorted(
            &rs(&[Some("2024-02"), Some("2024-01"), None]),
            t,
            NEWEST_FIRST
        ));
        assert!(!sorted(&rs(&[None, Some("2024-02")]), t, NEWEST_FIRST));
        assert!(!sorted(
            &rs(&[Some("2024-01"), Some("2024-02")]),
            t,
            NEWEST_FIRST
        ));
        assert!(sorted(
            &rs(&[Some("2024-01"), Some("2024-02")]),
            t,
            OLDEST_FIRST
        ));
    }

    #[test]
    fn a_partner_fits_a_page_only_if_every_answer_was_whole_and_small_enough() {
        let whole = |records| Ordered::Whole {
            in_order: true,
            records,
        };
        assert!(fits_in([whole(Some(3)), whole(Some(4))], 7));
        assert!(!fits_in([whole(Some(3)), whole(Some(4))], 6));
        assert!(!fits_in([whole(Some(3)), whole(None)], 60), "held more");
        assert!(
            !fits_in([whole(Some(3)), Ordered::Until(0)], 60),
            "a window"
        );
        assert!(fits_in([], 10));
    }

    #[test]
    fn the_frontier_is_the_first_point_any_answer_stops_at() {
        let answers = [
            Ordered::Until(ms("2024-03-07")),
            Ordered::Whole {
                in_order: false,
                records: Some(3),
            },
            Ordered::Until(ms("2024-03-04")),
        ];
        let newest_first = frontier(answers, NEWEST_FIRST).unwrap();
        assert_eq!(newest_first.date, Some(ms("2024-03-07")));
        assert_eq!(
            frontier(answers, OLDEST_FIRST).unwrap().date,
            Some(ms("2024-03-04"))
        );
        assert_eq!(
            frontier(
                [Ordered::Whole {
                    in_order: true,
                    records: Some(3)
                }],
                NEWEST_FIRST
            ),
            None
        );
    }
}
