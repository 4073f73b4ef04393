//! Searching the audit trail (privacy officers): which stored AuditEvents match
//! `patient`, `agent`, `date`, `outcome` and `_tag` (alerts: emergency access).

use serde_json::Value;

use super::event::{Access, outcome_code};
use crate::fhir::NhsNumber;
use crate::fhir::date::{DateValue, Prefix, parse_range};
use crate::store::audit::{AuditKeys, KeySearch};

/// The parameters `GET /fhir/AuditEvent` understands.
pub const PARAMETERS: [&str; 5] = ["patient", "agent", "date", "outcome", "_tag"];

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    patient: Option<String>,
    agent: Option<String>,
    dates: Vec<DateValue>,
    outcome: Option<String>,
    tag: Option<String>,
}

impl AuditQuery {
    /// From query pairs (paging and format parameters are the caller's).
    pub fn parse(pairs: &[(String, String)]) -> Result<AuditQuery, String> {
        let mut query = AuditQuery::default();
        for (name, value) in pairs {
            match name.as_str() {
                "patient" => {
                    let id = value.trim_start_matches("Patient/");
                    let nhs = NhsNumber::parse(id)
                        .map_err(|_| format!("patient '{value}' is not Patient/{{NHS number}}"))?;
                    query.patient = Some(nhs.to_string());
                }
                "agent" => query.agent = Some(value.clone()),
                "date" => query.dates.push(DateValue::parse(value)?),
                "outcome" => {
                    if !matches!(value.as_str(), "0" | "4" | "8" | "12") {
                        return Err(format!("outcome '{value}' is not 0, 4, 8 or 12"));
                    }
                    query.outcome = Some(value.clone());
                }
                "_tag" => query.tag = Some(value.rsplit('|').next().unwrap_or_default().into()),
                _ => {}
            }
        }
        Ok(query)
    }

    /// The store search that finds at least every match (dates `ne` are left to
    /// `matches`), older than `before` (a sequence number).
    pub fn key_search(&self, before: Option<i64>) -> KeySearch {
        let mut keys = Vec::new();
        let criteria = [
            ("patient", &self.patient),
            ("agent", &self.agent),
            ("outcome", &self.outcome),
            ("tag", &self.tag),
        ];
        for (key, value) in criteria {
            if let Some(value) = value {
                keys.push((key.to_string(), value.clone()));
            }
        }
        // An event's time is one millisecond, `[t, t + 1)`; each prefix bounds it.
        let (mut from, mut until) = (i64::MIN, i64::MAX);
        for date in &self.dates {
            let (start, end) = (date.range.start, date.range.end);
            let (lo, hi) = match date.prefix {
                Prefix::Eq => (start, end),
                Prefix::Gt => (end, i64::MAX),
                Prefix::Ge => (start, i64::MAX),
                Prefix::Lt => (i64::MIN, start),
                Prefix::Le => (i64::MIN, end),
                Prefix::Ne => (i64::MIN, i64::MAX),
            };
            from = from.max(lo);
            until = until.min(hi);
        }
        KeySearch {
            keys,
            recorded_from: from,
            recorded_before: until,
            before_sequence: before.unwrap_or(i64::MAX),
        }
    }

    pub fn matches(&self, event: &Value) -> bool {
        let entities = || event["entity"].as_array().into_iter().flatten();
        let agents = || event["agent"].as_array().into_iter().flatten();
        self.patient.as_ref().is_none_or(|nhs| {
            let reference = format!("Patient/{nhs}");
            entities().any(|e| e["role"]["code"] == "1" && e["what"]["reference"] == *reference)
        }) && self.agent.as_ref().is_none_or(|agent| {
            agents().any(|a| a["who"]["identifier"]["value"] == *agent.as_str())
        }) && self
            .outcome
            .as_ref()
            .is_none_or(|o| event["outcome"] == *o.as_str())
            && self.tag.as_ref().is_none_or(|tag| {
                event["meta"]["tag"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["code"] == *tag.as_str())
            })
            && (self.dates.is_empty()
                || event["recorded"]
                    .as_str()
                    .and_then(parse_range)
                    .is_some_and(|recorded| self.dates.iter().all(|d| d.matches(&recorded))))
    }
}

/// The keys of the event written for `access`, from `access` itself: the same as
/// `keys_of` that event (a test holds them together), without reading it back.
pub fn keys_for(access: &Access) -> AuditKeys {
    let mut keys: AuditKeys = access
        .patients
        .iter()
        .map(|nhs| ("patient".to_string(), nhs.clone()))
        .collect();
    if let Some(requester) = &access.requester {
        let client = requester.client_id.as_deref().unwrap_or("unknown");
        keys.push(("agent".into(), client.to_string()));
        keys.push(("agent".into(), requester.subject.clone()));
        if requester.emergency {
            keys.push(("tag".into(), "BTG".into()));
        }
    }
    keys.push(("outcome".into(), outcome_code(access.status).into()));
    keys.sort();
    keys.dedup();
    keys
}

/// The keys an audit search finds `event` by: the same fields `AuditQuery::matches`
/// reads (the patients it was about, every agent's identifier, its outcome and tags).
pub fn keys_of(event: &Value) -> AuditKeys {
    let mut keys: AuditKeys = Vec::new();
    for entity in event["entity"].as_array().into_iter().flatten() {
        if entity["role"]["code"] == "1"
            && let Some(nhs) = entity["what"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Patient/"))
        {
            keys.push(("patient".into(), nhs.to_string()));
        }
    }
    for agent in event["agent"].as_array().into_iter().flatten() {
        if let Some(id) = agent["who"]["identifier"]["value"].as_str() {
            keys.push(("agent".into(), id.to_string()));
        }
    }
    if let Some(outcome) = event["outcome"].as_str() {
        keys.push(("outcome".into(), outcome.to_string()));
    }
    for tag in event["meta"]["tag"].as_array().into_iter().flatten() {
        if let Some(code) = tag["code"].as_str() {
            keys.push(("tag".into(), code.to_string()));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Requester, audit_event};
    use proptest::prelude::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "resourceType": "AuditEvent", "outcome": "0", "recorded": "2026-12-01T10:00:00.000Z",
            "meta": {"tag": [{"code": "BTG"}]},
            "agent": [{"who": {"display": "facade"}}, {"who": {"identifier": {"value": "client-1"}}},
                      {"who": {"identifier": {"system": "https://idp", "value": "dr-1"}}}],
            "entity": [{"role": {"code": "1"}, "what": {"reference": "Patient/9990000018"}},
                       {"role": {"code": "4"}, "what": {"reference": "Observation/gp.1"}}]
        })
    }

    fn arbitrary_access() -> impl Strategy<Value = Access> {
        let requester = proptest::option::of((
            "[a-z\"-]{0,8}",
            proptest::option::of("[a-z-]{1,6}"),
            proptest::option::of("TREAT|ETREAT"),
            proptest::option::of("R[0-9]{4}"),
            proptest::option::of("[A-Z][0-9]{2}"),
            proptest::option::of("[a-z ]{1,6}"),
            any::<bool>(),
        ));
        (
            "search-type|read|vread|create|update|operation|history-instance",
            prop_oneof![Just(200u16), Just(201), Just(304), Just(403), Just(503)],
            requester,
            proptest::collection::vec("999[0-9]{7}", 0..3),
            proptest::collection::vec("[A-Za-z]{1,8}/[a-z.-]{1,12}", 0..4),
        )
            .prop_map(
                |(interaction, status, requester, patients, returned)| Access {
                    interaction,
                    status,
                    requester: requester.map(
                        |(subject, client_id, purpose, role, organisation, name, emergency)| {
                            Requester {
                                issuer: "https://idp.example".into(),
                                subject,
                                client_id,
                                purpose,
                                role,
                                organisation,
                                name,
                                emergency,
                                token_id: Some("jti-1".into()),
                            }
                        },
                    ),
                    patients,
                    returned,
                    ..Access::default()
                },
            )
    }

    proptest! {
        /// The keys written with an event are taken from its access, not read back
        /// from it; they must be the ones a search reading the event would find.
        #[test]
        fn the_keys_of_an_access_are_the_keys_of_its_event(access in arbitrary_access()) {
            prop_assert_eq!(keys_for(&access), keys_of(&audit_event(&access)));
        }
    }

    #[test]
    fn keys_are_what_the_search_matches_on() {
        let keys = keys_of(&event());
        for (key, value) in [
            ("patient", "9990000018"),
            ("agent", "dr-1"),
            ("agent", "client-1"),
            ("outcome", "0"),
            ("tag", "BTG"),
        ] {
            assert!(keys.contains(&(key.into(), value.into())), "{key} {value}");
        }
        assert_eq!(keys.len(), 5, "{keys:?}");
        let pairs = |q: &[(&str, &str)]| -> Vec<(String, String)> {
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let query = AuditQuery::parse(&pairs(&[
            ("patient", "Patient/9990000018"),
            ("agent", "dr-1"),
            ("_tag", "BTG"),
        ]))
        .unwrap();
        assert!(query.matches(&event()));
        let search = query.key_search(None);
        assert!(
            search.keys.iter().all(|k| keys.contains(k)),
            "every key criterion is one of the event's keys"
        );
    }

    #[test]
    fn date_prefixes_bound_the_recorded_time() {
        let at = parse_range("2026-12-01T10:00:00.000Z").unwrap().start;
        for (date, inside) in [
            ("2026-12-01", true),
            ("gt2026-12-01", false),
            ("ge2026-12-01", true),
            ("lt2026-12-01", false),
            ("le2026-12-01", true),
            ("gt2026-11-30", true),
            ("lt2026-12-02", true),
            ("2026-11", false),
        ] {
            let query = AuditQuery::parse(&[("date".to_string(), date.to_string())]).unwrap();
            let search = query.key_search(None);
            let found = search.recorded_from <= at && at < search.recorded_before;
            assert_eq!(found, inside, "{date}");
            assert_eq!(query.matches(&event()), inside, "{date} by the matcher");
        }
    }
}
