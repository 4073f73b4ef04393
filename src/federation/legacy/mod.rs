//! Legacy partner sources: systems that speak their own JSON over HTTP, joined to the
//! record through a mapping file and Liquid templates rather than code (see
//! `mapping`). Their records leave here in the same form as a FHIR partner's, so
//! merge, paging, policy and audit treat both alike.
//!
//! A legacy record's local id is `{patient id}.{record id}`: the partner's own id of
//! the patient first, so that a read by id knows whose records to fetch again.

pub mod mapping;
pub mod template;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;
use reqwest::header::{ACCEPT, HeaderValue};
use serde_json::{Value, json};

use super::fhir::fetch_json;
use super::partner::{Pages, Partner, PartnerFailure};
use crate::config::{Config, PartnerKind};
use crate::fhir::date::{DateValue, Prefix};
use crate::fhir::search::NHS_NUMBER_SYSTEM;
use crate::fhir::search::registry::{ParamKind, Registry};
use crate::fhir::search::value::is_valid_id;
use crate::fhir::{NhsNumber, ResourceType};
pub use mapping::{Mapping, Problem};
use mapping::{Request, ResourceMapping};
use template::{Globals, RecordTemplate};

/// Legacy partners' mappings by partner id, loaded once and shared by every worker.
pub type PartnerMappings = HashMap<String, Arc<Mapping>>;

/// Loads every legacy partner's mapping and templates; all problems found, if any.
pub fn load_mappings(config: &Config) -> Result<PartnerMappings, Vec<Problem>> {
    let mut mappings = HashMap::new();
    let mut problems = Vec::new();
    for partner in config
        .partners
        .iter()
        .filter(|p| p.kind == PartnerKind::Legacy)
    {
        let Some(path) = partner.mapping_path() else {
            continue;
        };
        match mapping::load(&path, &partner.resource_types) {
            Ok(mapping) => {
                mappings.insert(partner.id.clone(), Arc::new(mapping));
            }
            Err(found) => problems.extend(found),
        }
    }
    match problems.is_empty() {
        true => Ok(mappings),
        false => Err(problems),
    }
}

/// A search at a legacy partner: Patients by NHS number, or one clinical type for the
/// patient ids in the `patient` parameter, narrowed by any date range asked for. The
/// facade applies every other parameter itself.
pub async fn search(
    partner: &Partner,
    mapping: &Mapping,
    resource_type: ResourceType,
    query: &[(String, String)],
    subject: Option<&NhsNumber>,
    max_bytes: usize,
) -> Result<Pages, PartnerFailure> {
    if resource_type.is_patient() {
        return match named_nhs_number(query).or_else(|| subject.cloned()) {
            Some(nhs) => lookup(partner, mapping, &nhs, max_bytes).await,
            // Legacy systems are asked by NHS number only.
            None => Ok(Pages::default()),
        };
    }
    let patient_ids: Vec<&str> = query
        .iter()
        .filter(|(name, _)| name == "patient")
        .flat_map(|(_, ids)| ids.split(','))
        .filter(|id| is_patient_id(id))
        .collect();
    let (date_from, date_to) = date_bounds(resource_type, query);
    let (date_from, date_to) = (&date_from, &date_to);
    let nhs_number = subject.map(NhsNumber::as_str).unwrap_or_default();
    let fetches = patient_ids.iter().flat_map(|patient_id| {
        mapping.for_type(resource_type).map(move |source| {
            let globals = Globals::new(json!({
                "nhs_number": nhs_number,
                "patient": {"id": patient_id},
                "date_from": date_from,
                "date_to": date_to,
            }));
            async move {
                let records =
                    fetch_records(partner, mapping, &source.request, &globals, max_bytes).await;
                (*patient_id, source, records)
            }
        })
    });
    let mut pages = Pages::default();
    for (patient_id, source, records) in join_all(fetches).await {
        let patient = json!({"id": patient_id, "nhs_number": nhs_number});
        for record in records? {
            match clinical_resource(partner, source, &patient, &record) {
                Some(resource) => pages.resources.push(resource),
                None => pages.unmapped += 1,
            }
        }
    }
    Ok(pages)
}

/// Reads one record by its local id (`{patient id}.{record id}`): the patient's records
/// of that type, fetched again, and the one with that id.
pub async fn read(
    partner: &Partner,
    mapping: &Mapping,
    resource_type: ResourceType,
    local_id: &str,
    subject: Option<&NhsNumber>,
    max_bytes: usize,
) -> Result<Option<Value>, PartnerFailure> {
    if resource_type.is_patient() {
        return read_patient(partner, mapping, local_id, max_bytes).await;
    }
    let Some((patient_id, _)) = local_id.split_once('.') else {
        return Ok(None);
    };
    let query = [("patient".to_string(), patient_id.to_string())];
    let pages = search(partner, mapping, resource_type, &query, subject, max_bytes).await?;
    Ok(pages.resources.into_iter().find(|r| r["id"] == local_id))
}

/// The partner's Patient records for an NHS number.
async fn lookup(
    partner: &Partner,
    mapping: &Mapping,
    nhs: &NhsNumber,
    max_bytes: usize,
) -> Result<Pages, PartnerFailure> {
    let globals = Globals::new(json!({"nhs_number": nhs.as_str()}));
    let patient = &mapping.patient;
    let records = fetch_records(partner, mapping, &patient.lookup, &globals, max_bytes).await?;
    let mut pages = Pages::default();
    for record in records {
        match patient_resource(partner, &patient.template, &record) {
            Some(resource) => pages.resources.push(resource),
            None => pages.unmapped += 1,
        }
    }
    Ok(pages)
}

/// One Patient by the partner's id, if the mapping says how to fetch one.
async fn read_patient(
    partner: &Partner,
    mapping: &Mapping,
    local_id: &str,
    max_bytes: usize,
) -> Result<Option<Value>, PartnerFailure> {
    let Some(request) = &mapping.patient.read else {
        return Ok(None);
    };
    if !is_patient_id(local_id) {
        return Ok(None);
    }
    let globals = Globals::new(json!({"patient": {"id": local_id}}));
    let records = fetch_records(partner, mapping, request, &globals, max_bytes).await?;
    Ok(records
        .iter()
        .filter_map(|r| patient_resource(partner, &mapping.patient.template, r))
        .find(|p| p["id"] == local_id))
}

/// GETs what `request` describes and returns the records where the mapping says
/// they sit. An answer of 404 means no records.
async fn fetch_records(
    partner: &Partner,
    mapping: &Mapping,
    request: &Request,
    globals: &Globals,
    max_bytes: usize,
) -> Result<Vec<Value>, PartnerFailure> {
    // Every variable was rendered with sample values at load, so this does not fail.
    let unusable = |_| PartnerFailure::Malformed("a request the mapping can describe");
    let path = request.path.render(globals).map_err(unusable)?;
    let mut url = partner
        .base_url
        .join(&path)
        .map_err(|_| PartnerFailure::Malformed("a request the mapping can describe"))?;
    for (name, value) in &request.query {
        let value = value.render(globals).map_err(unusable)?;
        // An empty value (a date range not asked for) is left out.
        if !value.is_empty() {
            url.query_pairs_mut().append_pair(name, &value);
        }
    }
    if !partner.owns(&url) {
        return Err(PartnerFailure::Malformed("a request under its base URL"));
    }
    let accept = [(ACCEPT, HeaderValue::from_static("application/json"))];
    let headers: Vec<_> = accept.into_iter().chain(mapping.headers.clone()).collect();
    let Some(answer) = fetch_json(partner, &url, &headers, max_bytes).await? else {
        return Ok(Vec::new());
    };
    match answer.pointer(&request.records) {
        Some(Value::Array(records)) => Ok(records.clone()),
        Some(record @ Value::Object(_)) => Ok(vec![record.clone()]),
        _ => Err(PartnerFailure::Malformed(
            "an answer with records where the mapping says",
        )),
    }
}

fn partner_globals(partner: &Partner) -> Value {
    json!({"id": partner.id, "name": partner.name, "ods_code": partner.ods_code})
}

/// A client record as a Patient, or None (logged) if it does not map cleanly.
fn patient_resource(partner: &Partner, template: &RecordTemplate, record: &Value) -> Option<Value> {
    let resource = map_record(partner, template, None, record, ResourceType::patient())?;
    match resource["id"].as_str().is_some_and(is_patient_id) {
        true => Some(resource),
        false => {
            unmapped(partner, template, "no usable id");
            None
        }
    }
}

/// A record as a clinical resource of the patient, with the local id and references
/// to the partner's other records in `{patient id}.{record id}` form.
fn clinical_resource(
    partner: &Partner,
    source: &ResourceMapping,
    patient: &Value,
    record: &Value,
) -> Option<Value> {
    let template = &source.template;
    let mut resource = map_record(
        partner,
        template,
        Some(patient),
        record,
        source.resource_type,
    )?;
    let patient_id = patient["id"].as_str().unwrap_or_default();
    let Some(record_id) = resource["id"].as_str().filter(|id| is_patient_id(id)) else {
        unmapped(partner, template, "no usable id");
        return None;
    };
    resource["id"] = json!(format!("{patient_id}.{record_id}"));
    qualify_references(&mut resource, patient_id);
    Some(resource)
}

fn map_record(
    partner: &Partner,
    template: &RecordTemplate,
    patient: Option<&Value>,
    record: &Value,
    resource_type: ResourceType,
) -> Option<Value> {
    match template.render(record, patient, &partner_globals(partner)) {
        Ok(resource) if resource["resourceType"] == resource_type.as_str() => Some(resource),
        Ok(_) => {
            unmapped(partner, template, "another resource type");
            None
        }
        Err(e) => {
            unmapped(partner, template, e.kind());
            None
        }
    }
}

/// Logs a record left out: the partner, the template and why, never a value.
fn unmapped(partner: &Partner, template: &RecordTemplate, reason: &str) {
    tracing::warn!(
        partner = %partner.id,
        template = %template.file.display(),
        reason,
        "a legacy record did not map to FHIR R4 and was left out"
    );
}

/// References between this partner's clinical records take the patient's prefix, as
/// the records' own ids do; references to patients and other types stay as they are.
fn qualify_references(node: &mut Value, patient_id: &str) {
    match node {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| qualify_references(item, patient_id)),
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("reference")
                && let Some((resource_type, id)) = reference.split_once('/')
                && resource_type
                    .parse::<ResourceType>()
                    .is_ok_and(ResourceType::is_clinical)
                && is_patient_id(id)
            {
                *reference = format!("{resource_type}/{patient_id}.{id}");
            }
            map.values_mut()
                .for_each(|value| qualify_references(value, patient_id));
        }
        _ => {}
    }
}

/// A partner's id of a patient or record: a FHIR id without dots, so that
/// `{patient id}.{record id}` splits one way only.
fn is_patient_id(id: &str) -> bool {
    is_valid_id(id) && !id.contains('.')
}

/// The NHS number of an `identifier=https://fhir.nhs.uk/Id/nhs-number|...` parameter.
fn named_nhs_number(query: &[(String, String)]) -> Option<NhsNumber> {
    query
        .iter()
        .filter(|(name, _)| name == "identifier")
        .find_map(|(_, value)| {
            let (system, number) = value.split_once('|')?;
            (system == NHS_NUMBER_SYSTEM)
                .then(|| NhsNumber::parse(number).ok())
                .flatten()
        })
}

/// `(date_from, date_to)` for a legacy request, inclusive days (`YYYY-MM-DD`, or empty
/// when unbounded), from the search's date parameters. Always as wide as the search
/// or wider: the facade matches the precise dates itself.
fn date_bounds(resource_type: ResourceType, query: &[(String, String)]) -> (String, String) {
    let registry = Registry::get();
    let (mut from, mut to) = (i64::MIN, i64::MAX);
    for (name, value) in query {
        let is_date = registry
            .for_type(resource_type)
            .iter()
            .any(|d| d.kind == ParamKind::Date && (d.code == *name || d.partner_code == *name));
        // Several values are ORed: no one range to ask for.
        if !is_date || value.contains(',') {
            continue;
        }
        let Ok(date) = DateValue::parse(value) else {
            continue;
        };
        let range = date.range;
        match date.prefix {
            Prefix::Ge | Prefix::Gt => from = from.max(range.start),
            Prefix::Le | Prefix::Lt => to = to.min(range.end - 1),
            Prefix::Eq => {
                from = from.max(range.start);
                to = to.min(range.end - 1);
            }
            Prefix::Ne => {}
        }
    }
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    (
        if from == i64::MIN {
            String::new()
        } else {
            day(from)
        },
        if to == i64::MAX {
            String::new()
        } else {
            day(to)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn date_ranges_are_as_wide_as_the_search_or_wider() {
        let bounds = |q: &[(&str, &str)]| date_bounds(ResourceType::named("Encounter"), &pairs(q));
        assert_eq!(bounds(&[]), (String::new(), String::new()));
        assert_eq!(
            bounds(&[("date", "ge2024-03"), ("date", "lt2024-06-15")]),
            ("2024-03-01".into(), "2024-06-15".into())
        );
        assert_eq!(
            bounds(&[("date", "2024")]),
            ("2024-01-01".into(), "2024-12-31".into())
        );
        assert_eq!(
            bounds(&[("date", "ge2024,ge2025"), ("status", "finished")]),
            (String::new(), String::new())
        );
    }

    #[test]
    fn references_between_records_take_the_patient_prefix() {
        let mut r = json!({"subject": {"reference": "Patient/EC1"},
            "basedOn": [{"reference": "CarePlan/pkg-1"}],
            "serviceProvider": {"reference": "Organization/council"}});
        qualify_references(&mut r, "EC1");
        assert_eq!(r["subject"]["reference"], "Patient/EC1");
        assert_eq!(r["basedOn"][0]["reference"], "CarePlan/EC1.pkg-1");
        assert_eq!(r["serviceProvider"]["reference"], "Organization/council");
    }

    #[test]
    fn only_nhs_numbers_under_the_nhs_system_are_looked_up() {
        let q = |v: &str| named_nhs_number(&pairs(&[("identifier", v)]));
        assert!(q("https://fhir.nhs.uk/Id/nhs-number|9000000009").is_some());
        assert!(q("urn:other|9000000009").is_none());
        assert!(q("https://fhir.nhs.uk/Id/nhs-number|9000000008").is_none());
    }
}
