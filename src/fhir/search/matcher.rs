//! Evaluates search criteria against a resource in its JSON form.
//!
//! The facade applies every criterion to what partners return (a partner may ignore a
//! parameter it does not know), and the simulators use the same code to answer.

use serde_json::Value;

use super::value::{ReferenceValue, SearchValue, TokenValue};
use super::{Criterion, Modifier};
use crate::fhir::date::{DateRange, parse_range};

/// Collects the nodes at `path`, flattening arrays; a choice element such as
/// `effective` matches `effectiveDateTime`, `effectivePeriod`, ...
pub fn collect<'a>(node: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match node {
        Value::Array(items) => items.iter().for_each(|item| collect(item, path, out)),
        _ if path.is_empty() => out.push(node),
        Value::Object(map) => {
            let segment = path[0].as_str();
            if let Some(child) = map.get(segment) {
                collect(child, &path[1..], out);
            } else {
                for (key, child) in map {
                    let is_choice = key.len() > segment.len()
                        && key.starts_with(segment)
                        && key.as_bytes()[segment.len()].is_ascii_uppercase();
                    if is_choice {
                        collect(child, &path[1..], out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Every node any of `paths` reaches.
pub fn nodes<'a>(resource: &'a Value, paths: &[Vec<String>]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for path in paths {
        collect(resource, path, &mut out);
    }
    out
}

/// True if the resource meets every criterion (criteria AND, values within one OR).
pub fn matches_all(resource: &Value, criteria: &[Criterion]) -> bool {
    criteria.iter().all(|c| matches(resource, c))
}

pub fn matches(resource: &Value, criterion: &Criterion) -> bool {
    let found = nodes(resource, &criterion.param.paths);
    let any_value = |value: &SearchValue| match value {
        SearchValue::Missing(missing) => found.is_empty() == *missing,
        SearchValue::String(text) if criterion.modifier == Some(Modifier::Text) => found
            .iter()
            .flat_map(|n| display_texts(n))
            .any(|s| string_matches(None, text, s)),
        SearchValue::Token(token) => found.iter().any(|n| {
            token_nodes(n)
                .iter()
                .any(|(s, c)| token_matches(token, *s, c))
        }),
        SearchValue::Date(date) => found
            .iter()
            .filter_map(|n| date_range(n))
            .any(|r| date.matches(&r)),
        SearchValue::String(text) => found
            .iter()
            .flat_map(|n| string_parts(n))
            .any(|s| string_matches(criterion.modifier, text, s)),
        SearchValue::Quantity(quantity) => found.iter().any(|n| quantity.matches(n)),
        SearchValue::Reference(target) => found
            .iter()
            .filter_map(|n| n["reference"].as_str())
            .any(|r| reference_matches(target, r)),
    };
    match criterion.modifier {
        // R4: `:not` matches every record none of whose codes is any of the values,
        // those without the element included.
        Some(Modifier::Not) => !criterion.values.iter().any(any_value),
        _ => criterion.values.iter().any(any_value),
    }
}

/// The strings a string search looks at in a node: the string itself, or each part
/// of a HumanName or Address (family, given, text, lines, city, postcode...).
fn string_parts(node: &Value) -> Vec<&str> {
    match node {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(string_parts).collect(),
        Value::Object(map) => map
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "use" | "period" | "extension" | "id"))
            .flat_map(|(_, v)| string_parts(v))
            .collect(),
        _ => Vec::new(),
    }
}

/// What `:text` looks at: a CodeableConcept's text and its codings' displays, a
/// Coding's display, an Identifier's type text.
fn display_texts(node: &Value) -> Vec<&str> {
    let mut texts: Vec<&str> = Vec::new();
    texts.extend(node["text"].as_str());
    texts.extend(node["display"].as_str());
    texts.extend(node["type"]["text"].as_str());
    for coding in node["coding"].as_array().into_iter().flatten() {
        texts.extend(coding["display"].as_str());
    }
    texts
}

/// `(system, code)` pairs a node offers to a token search: a code, a Coding, a
/// CodeableConcept or an Identifier.
pub fn token_nodes(node: &Value) -> Vec<(Option<&str>, String)> {
    match node {
        Value::String(s) => vec![(None, s.clone())],
        Value::Bool(b) => vec![(None, b.to_string())],
        Value::Object(map) => {
            if let Some(codings) = map.get("coding").and_then(Value::as_array) {
                codings.iter().flat_map(token_nodes).collect()
            } else {
                let code = map
                    .get("code")
                    .or_else(|| map.get("value"))
                    .and_then(Value::as_str);
                code.map(|c| vec![(map.get("system").and_then(Value::as_str), c.to_string())])
                    .unwrap_or_default()
            }
        }
        _ => Vec::new(),
    }
}

fn token_matches(token: &TokenValue, system: Option<&str>, code: &str) -> bool {
    let system_ok = match token.system.as_deref() {
        None => true,
        Some("") => system.is_none(),
        Some(wanted) => system == Some(wanted),
    };
    system_ok && token.code.as_deref().is_none_or(|wanted| wanted == code)
}

/// The time a date, dateTime, instant or Period covers.
pub fn date_range(node: &Value) -> Option<DateRange> {
    match node {
        Value::String(s) => parse_range(s),
        Value::Object(period) => {
            let start = period
                .get("start")
                .and_then(Value::as_str)
                .and_then(parse_range);
            let end = period
                .get("end")
                .and_then(Value::as_str)
                .and_then(parse_range);
            if start.is_none() && end.is_none() {
                return None;
            }
            Some(DateRange {
                start: start.map_or(DateRange::UNBOUNDED.start, |r| r.start),
                end: end.map_or(DateRange::UNBOUNDED.end, |r| r.end),
            })
        }
        _ => None,
    }
}

fn string_matches(modifier: Option<Modifier>, wanted: &str, actual: &str) -> bool {
    match modifier {
        Some(Modifier::Exact) => actual == wanted,
        Some(Modifier::Contains) => actual.to_lowercase().contains(&wanted.to_lowercase()),
        _ => actual.to_lowercase().starts_with(&wanted.to_lowercase()),
    }
}

fn reference_matches(target: &ReferenceValue, reference: &str) -> bool {
    match ReferenceValue::parse(reference) {
        Ok(actual) => {
            actual.id == target.id
                && match (&target.resource_type, &actual.resource_type) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        }
        Err(_) => false,
    }
}
