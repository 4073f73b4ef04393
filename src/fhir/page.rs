//! Merging, ordering and paging a result set gathered from several partners.
//!
//! Pages are cut by keyset, not offset: a page link carries the sort key of the last
//! (or first) entry shown, and the next page is whatever sorts strictly after it. Every
//! entry has a distinct key (the id breaks ties), so a page never repeats an entry and
//! never skips one that was there before, even though each page re-asks the partners.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ResourceType;
use super::search::SortField;
use super::search::SortOrder;
use super::search::matcher::{date_range, nodes};
use super::search::registry::Registry;

/// Where an entry sorts. `rank` groups entries ($everything puts the Patient first);
/// `id` is `Type/id`, unique within a result set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    pub rank: u8,
    pub date: Option<i64>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cursor {
    After(SortKey),
    Before(SortKey),
}

/// A resource in facade form with its sort key.
#[derive(Debug, Clone)]
pub struct Entry {
    pub resource: Value,
    pub key: SortKey,
}

impl Entry {
    pub fn new(resource: Value, order: SortOrder) -> Entry {
        let resource_type: Option<ResourceType> = resource["resourceType"]
            .as_str()
            .and_then(|t| t.parse().ok());
        let rank = u8::from(!resource_type.is_some_and(ResourceType::is_patient));
        let date = match (order.field, resource_type) {
            (SortField::Date, Some(t)) => clinical_date(&resource, t),
            _ => resource["meta"]["lastUpdated"]
                .as_str()
                .and_then(super::date::parse_range)
                .map(|r| r.start),
        };
        let id = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap_or_default(),
            resource["id"].as_str().unwrap_or_default()
        );
        Entry {
            resource,
            key: SortKey { rank, date, id },
        }
    }
}

/// The start of the resource's clinical date: the earliest its type's sort dates
/// (the `date` parameter's elements, or Condition's onset and recording...) give.
pub fn clinical_date(resource: &Value, resource_type: ResourceType) -> Option<i64> {
    Registry::get()
        .sort_dates(resource_type)
        .iter()
        .find_map(|def| {
            nodes(resource, &def.paths)
                .into_iter()
                .filter_map(date_range)
                .map(|r| r.start)
                .min()
        })
}

/// Orders by rank, then date in the requested direction (undated last), then id.
pub fn compare(a: &SortKey, b: &SortKey, order: SortOrder) -> Ordering {
    a.rank
        .cmp(&b.rank)
        .then_with(|| match (a.date, b.date) {
            (Some(x), Some(y)) if order.descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.id.cmp(&b.id))
}

/// Drops repeats: the same facade id twice (a partner repeating itself across pages),
/// or a record another partner already supplied with the same business identifier.
/// The first seen wins; partners are consulted in configuration order.
pub fn dedupe(entries: Vec<Entry>) -> Vec<Entry> {
    let mut ids = HashSet::new();
    let mut identifiers = HashSet::new();
    entries
        .into_iter()
        .filter(|entry| {
            if !ids.insert(entry.key.id.clone()) {
                return false;
            }
            let own: Vec<String> = entry.resource["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    Some(format!(
                        "{}|{}|{}",
                        entry.resource["resourceType"],
                        i["system"].as_str()?,
                        i["value"].as_str()?
                    ))
                })
                .collect();
            if own.iter().any(|i| identifiers.contains(i)) {
                return false;
            }
            identifiers.extend(own);
            true
        })
        .collect()
}

/// Sorts entries into the requested order.
pub fn sort(entries: &mut [Entry], order: SortOrder) {
    entries.sort_by(|a, b| compare(&a.key, &b.key, order));
}

/// The slice of a sorted set that a page shows.
pub fn page_range(
    sorted: &[Entry],
    cursor: Option<&Cursor>,
    count: usize,
    order: SortOrder,
) -> Range<usize> {
    match cursor {
        None => 0..count.min(sorted.len()),
        Some(Cursor::After(key)) => {
            let start =
                sorted.partition_point(|e| compare(&e.key, key, order) != Ordering::Greater);
            start..(start + count).min(sorted.len())
        }
        Some(Cursor::Before(key)) => {
            let end = sorted.partition_point(|e| compare(&e.key, key, order) == Ordering::Less);
            end.saturating_sub(count)..end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NEWEST_FIRST: SortOrder = SortOrder {
        field: SortField::Date,
        descending: true,
    };

    fn obs(id: &str, date: Option<&str>) -> Entry {
        let mut r = json!({"resourceType": "Observation", "id": id});
        if let Some(d) = date {
            r["effectiveDateTime"] = json!(d);
        }
        Entry::new(r, NEWEST_FIRST)
    }

    #[test]
    fn pages_cover_the_set_once_forward_and_backward() {
        let mut entries: Vec<Entry> = (0..23)
            .map(|i| {
                obs(
                    &format!("o{i:02}"),
                    (i % 4 != 0)
                        .then(|| format!("2024-01-{:02}", i % 7 + 1))
                        .as_deref(),
                )
            })
            .collect();
        sort(&mut entries, NEWEST_FIRST);
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = Vec::new();
        loop {
            let range = page_range(&entries, cursor.as_ref(), 5, NEWEST_FIRST);
            pages.push(range.clone());
            seen.extend(entries[range.clone()].iter().map(|e| e.key.id.clone()));
            if range.end == entries.len() {
                break;
            }
            cursor = Some(Cursor::After(entries[range.end - 1].key.clone()));
        }
        assert_eq!(seen.len(), 23);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 23);
        // Walking back from the last page gives the same pages.
        let last = pages.last().unwrap().clone();
        let back = page_range(
            &entries,
            Some(&Cursor::Before(entries[last.start].key.clone())),
            5,
            NEWEST_FIRST,
        );
        assert_eq!(back, pages[pages.len() - 2]);
        // Undated entries sort last.
        assert!(entries[18..].iter().all(|e| e.key.date.is_none()));
    }

    #[test]
    fn duplicates_by_id_or_identifier_are_dropped() {
        let mut a = obs("gp.1", None);
        a.resource["identifier"] = json!([{"system": "urn:x", "value": "42"}]);
        let mut b = obs("acute.9", None);
        b.resource["identifier"] = json!([{"system": "urn:x", "value": "42"}]);
        let kept = dedupe(vec![a.clone(), b, a, obs("gp.2", None)]);
        assert_eq!(
            kept.iter().map(|e| e.key.id.as_str()).collect::<Vec<_>>(),
            ["Observation/gp.1", "Observation/gp.2"]
        );
    }
}
