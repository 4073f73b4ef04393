//! Puts a partner's resource into facade form: facade id, references rewritten to
//! facade ids, the originating organisation named, and nothing of the partner's own
//! addressing left behind.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::id::facade_id;
use super::{NhsNumber, ODS_ORGANISATION_SYSTEM, ResourceType};

/// What is needed to bring one partner's resources into facade form.
pub struct PartnerContext<'a> {
    pub partner_id: &'a str,
    pub partner_name: &'a str,
    /// The `meta.tag` naming the partner (see `origin_tag`), made once per answer.
    pub origin: Value,
    pub base_url: &'a str,
    /// The partner's local patient ids and the NHS number each stands for.
    pub patients: &'a HashMap<String, NhsNumber>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RewriteError {
    #[error("its id does not fit in a facade id")]
    IdTooLong,
    #[error("it has no id")]
    MissingId,
}

/// Rewrites `resource` in place. A Patient gets its NHS number as id.
pub fn to_facade_form(resource: &mut Value, ctx: &PartnerContext) -> Result<(), RewriteError> {
    let local_id = resource["id"]
        .as_str()
        .ok_or(RewriteError::MissingId)?
        .to_string();
    let id = if resource["resourceType"] == "Patient" {
        ctx.patients
            .get(&local_id)
            .map(|n| n.to_string())
            .ok_or(RewriteError::MissingId)?
    } else {
        facade_id(ctx.partner_id, &local_id).ok_or(RewriteError::IdTooLong)?
    };
    resource["id"] = json!(id);
    rewrite_references(resource, ctx);
    tag_origin(resource, ctx);
    Ok(())
}

/// Marks the organisation the resource came from, and drops the partner's own
/// `meta.source` (often an internal URL).
fn tag_origin(resource: &mut Value, ctx: &PartnerContext) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    let meta = object.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.shift_remove("source");
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(ctx.origin.clone());
        }
    }
}

/// The `meta.tag` naming an originating organisation.
pub fn origin_tag(ods_code: &str, name: &str) -> Value {
    json!({ "system": ODS_ORGANISATION_SYSTEM, "code": ods_code, "display": name })
}

/// Every literal reference in a resource, contained resources included.
pub fn references(node: &Value) -> Vec<&str> {
    let mut found = Vec::new();
    collect_references(node, &mut found);
    found
}

fn collect_references<'a>(node: &'a Value, found: &mut Vec<&'a str>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("reference") {
                found.push(reference);
            }
            map.values()
                .for_each(|child| collect_references(child, found));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_references(item, found)),
        _ => {}
    }
}

fn rewrite_references(node: &mut Value, ctx: &PartnerContext) {
    match node {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_references(item, ctx)),
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("reference") {
                let rewritten = facade_reference(reference, ctx);
                apply_reference(map, rewritten, ctx);
            }
            map.values_mut()
                .for_each(|child| rewrite_references(child, ctx));
        }
        _ => {}
    }
}

fn apply_reference(map: &mut Map<String, Value>, rewritten: Option<String>, ctx: &PartnerContext) {
    match rewritten {
        Some(reference) => {
            map.insert("reference".into(), json!(reference));
        }
        None => {
            // A reference the facade cannot serve is not followed: keep what describes it.
            let kind = map
                .get("reference")
                .and_then(Value::as_str)
                .and_then(|r| r.rsplit('/').nth(1))
                .unwrap_or("record")
                .to_string();
            map.shift_remove("reference");
            if map.is_empty() {
                map.insert(
                    "display".into(),
                    json!(format!("{kind} held by {}", ctx.partner_name)),
                );
            }
        }
    }
}

/// The facade form of a partner reference, or None if it cannot be served.
fn facade_reference(reference: &str, ctx: &PartnerContext) -> Option<String> {
    if reference.starts_with('#') {
        return Some(reference.to_string());
    }
    let relative = if reference.contains("://") {
        reference
            .strip_prefix(ctx.base_url.trim_end_matches('/'))?
            .trim_start_matches('/')
    } else {
        reference
    };
    let mut segments = relative.split('/');
    let (type_name, local_id) = (segments.next()?, segments.next()?);
    match segments.next() {
        None | Some("_history") => {}
        Some(_) => return None,
    }
    if type_name == ResourceType::patient().as_str() {
        return ctx
            .patients
            .get(local_id)
            .map(|nhs| format!("Patient/{nhs}"));
    }
    // Any type is kept, served or not: the policy follows links to judge a record.
    let is_type = type_name.starts_with(|c: char| c.is_ascii_uppercase())
        && type_name.chars().all(|c| c.is_ascii_alphanumeric());
    if !is_type {
        return None;
    }
    facade_id(ctx.partner_id, local_id).map(|id| format!("{type_name}/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(patients: &HashMap<String, NhsNumber>) -> PartnerContext<'_> {
        PartnerContext {
            partner_id: "gp",
            partner_name: "Riverside GP",
            origin: origin_tag("A81001", "Riverside GP"),
            base_url: "http://127.0.0.1:9/fhir",
            patients,
        }
    }

    #[test]
    fn rewrites_ids_and_every_kind_of_reference() {
        let patients = HashMap::from([("p1".to_string(), NhsNumber::parse("9000000009").unwrap())]);
        let mut obs = json!({
            "resourceType": "Observation", "id": "o1",
            "meta": {"source": "http://internal.gp/ehr", "tag": [{"system": "x", "code": "y"}]},
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "http://127.0.0.1:9/fhir/Encounter/e1/_history/2"},
            "performer": [{"reference": "Practitioner/dr1", "display": "Dr Who"}, {"reference": "https://elsewhere/Organization/1"}],
            "hasMember": [{"reference": "Patient/p2"}],
            "contained": [{"resourceType": "Medication", "id": "m"}],
            "derivedFrom": [{"reference": "#m"}]
        });
        to_facade_form(&mut obs, &ctx(&patients)).unwrap();
        assert_eq!(obs["id"], "gp.o1");
        assert_eq!(obs["subject"]["reference"], "Patient/9000000009");
        assert_eq!(obs["encounter"]["reference"], "Encounter/gp.e1");
        assert_eq!(
            obs["performer"][0],
            json!({"reference": "Practitioner/gp.dr1", "display": "Dr Who"})
        );
        assert_eq!(
            obs["performer"][1],
            json!({"display": "Organization held by Riverside GP"})
        );
        assert_eq!(
            obs["hasMember"][0],
            json!({"display": "Patient held by Riverside GP"})
        );
        assert_eq!(obs["derivedFrom"][0]["reference"], "#m");
        assert!(obs["meta"].get("source").is_none());
        assert_eq!(obs["meta"]["tag"][1]["code"], "A81001");
        let text = obs.to_string();
        assert!(
            !text.contains("127.0.0.1")
                && !text.contains("internal.gp")
                && !text.contains("elsewhere")
        );
    }

    #[test]
    fn patient_gets_its_nhs_number_as_id() {
        let patients = HashMap::from([("p1".to_string(), NhsNumber::parse("9000000009").unwrap())]);
        let mut patient = json!({"resourceType": "Patient", "id": "p1"});
        to_facade_form(&mut patient, &ctx(&patients)).unwrap();
        assert_eq!(patient["id"], "9000000009");
        let mut stranger = json!({"resourceType": "Patient", "id": "p9"});
        assert_eq!(
            to_facade_form(&mut stranger, &ctx(&patients)),
            Err(RewriteError::MissingId)
        );
    }
}
