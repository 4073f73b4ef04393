//! GP practices through GP Connect Access Record: Structured, the national API GP
//! systems expose: one `POST [base]/Patient/$gpc.getstructuredrecord` per patient,
//! through the Spine Secure Proxy, answered with the whole structured record as one
//! FHIR STU3 `collection` Bundle.
//!
//! A request makes one call per practice and patient, for the whole record when it
//! needs any clinical type (records are judged by what they point at, across areas:
//! see `Areas::needed_for`); what came back is kept in the request's scope and
//! answers its patient lookup, its searches, its reads and the release stage's links.
//! Nothing is kept once the request ends. The call names the requesting professional
//! in GP Connect's consumer JWT (`consumer_jwt`); the records are converted to R4
//! (`convert`) and the practice's signals read (`answer`).

mod answer;
pub mod area;
pub mod consumer_jwt;
mod convert;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::{Value, json};
use url::Url;

use self::answer::Said;
use self::area::{Area, Areas};
use self::consumer_jwt::Audience;
use super::exchange::{self, Exchange};
use super::partner::{Pages, Partner, PartnerFailure};
use super::report::Notice;
use super::scope::{OnBehalfOf, RequestScope};
use crate::config::GpConnectConfig;
use crate::fhir::search::NHS_NUMBER_SYSTEM;
use crate::fhir::{NhsNumber, ResourceType};

/// The R4 types a GP Connect practice's record can give.
pub const CARRIED_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "MedicationStatement",
    "MedicationRequest",
    "Medication",
    "Condition",
    "Immunization",
    "Observation",
    "DiagnosticReport",
    "Encounter",
    "ServiceRequest",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
];

pub const STRUCTURED_INTERACTION: &str =
    "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1";
pub const METADATA_INTERACTION: &str =
    "urn:nhs:names:services:gpconnect:structured:fhir:rest:read:metadata-1";
const FHIR_JSON_UTF8: &str = "application/fhir+json;charset=utf-8";

/// How one practice is reached.
#[derive(Debug)]
pub struct Practice {
    asid: String,
    practice_asid: String,
    proxy: Option<String>,
}

/// One structured-record call's outcome, kept for the rest of the request.
struct Fetched {
    areas: Areas,
    said: Result<Arc<Said>, PartnerFailure>,
}

impl Practice {
    pub fn new(config: &GpConnectConfig) -> Practice {
        Practice {
            asid: config.asid.clone(),
            practice_asid: config.practice_asid.clone(),
            proxy: config.proxy.clone(),
        }
    }

    /// `path` at the practice, through the proxy if there is one (which takes the
    /// practice's whole endpoint after its own address).
    fn url(&self, partner: &Partner, path: &str) -> Url {
        let direct = partner.url(path, &[]);
        match &self.proxy {
            Some(proxy) => {
                let proxy = proxy.trim_end_matches('/');
                Url::parse(&format!("{proxy}/{direct}")).unwrap_or(direct)
            }
            None => direct,
        }
    }

    /// The headers Spine routes by, and the consumer JWT for `user`.
    fn headers(
        &self,
        partner: &Partner,
        interaction: &str,
        user: &OnBehalfOf,
        scope: &str,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, PartnerFailure> {
        let endpoint = partner.base_url.as_str().trim_end_matches('/');
        let audience = Audience {
            endpoint,
            facade: partner.deployment_id(),
            scope,
        };
        let now = chrono::Utc::now().timestamp();
        let value = |s: &str| {
            HeaderValue::from_str(s).map_err(|_| PartnerFailure::Malformed("a header value"))
        };
        let name = HeaderName::from_static;
        Ok(vec![
            (
                name("ssp-traceid"),
                value(&uuid::Uuid::new_v4().to_string())?,
            ),
            (name("ssp-from"), value(&self.asid)?),
            (name("ssp-to"), value(&self.practice_asid)?),
            (name("ssp-interactionid"), value(interaction)?),
            (
                AUTHORIZATION,
                value(&consumer_jwt::bearer(user, &audience, now))?,
            ),
            (ACCEPT, HeaderValue::from_static(FHIR_JSON_UTF8)),
            (CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON_UTF8)),
        ])
    }

    /// `types` of the patient's records, and what the practice said of them.
    pub async fn search(
        &self,
        partner: &Partner,
        resource_type: ResourceType,
        query: &[(String, String)],
        subject: Option<&NhsNumber>,
        scope: &RequestScope,
        max_bytes: usize,
    ) -> Result<Pages, PartnerFailure> {
        // Asked only ever for one patient, by NHS number (their local id here).
        let Some(nhs) = subject.cloned().or_else(|| named_nhs_number(query)) else {
            return Ok(Pages::default());
        };
        let said = self
            .record(partner, &nhs, &[resource_type], scope, max_bytes)
            .await?;
        let Said::Record(record) = &*said else {
            return Ok(Pages::default());
        };
        let mut notices: Vec<Notice> = record
            .warnings
            .iter()
            .map(|w| Notice::warning(w.text()))
            .collect();
        let missing: Vec<&str> = Area::holding(resource_type)
            .iter()
            .filter(|a| record.disabled.contains(**a))
            .map(|a| a.label())
            .collect();
        if !missing.is_empty() {
            notices.push(Notice::incomplete(format!(
                "the practice does not share its {} through GP Connect; {resource_type} records from it are missing",
                missing.join(" or ")
            )));
        }
        let pointing = pointing_at(resource_type, query);
        Ok(Pages {
            resources: record
                .of_type(resource_type)
                .filter(|r| {
                    pointing
                        .iter()
                        .all(|(paths, targets)| points_at(r, paths, targets))
                })
                .cloned()
                .collect(),
            truncated: false,
            unmapped: record
                .unconvertible
                .get(resource_type.as_str())
                .copied()
                .unwrap_or(0),
            notices,
            ordered: None,
        })
    }

    /// One record by local id (`{NHS number}.{id}`, or the NHS number for the patient).
    pub async fn read(
        &self,
        partner: &Partner,
        resource_type: ResourceType,
        local_id: &str,
        scope: &RequestScope,
        max_bytes: usize,
    ) -> Result<Option<Value>, PartnerFailure> {
        let held = self
            .records_of(
                partner,
                resource_type.as_str(),
                &[local_id],
                scope,
                max_bytes,
            )
            .await?;
        Ok(held
            .into_iter()
            .find(|r| r["resourceType"] == resource_type.as_str() && r["id"] == local_id))
    }

    /// The whole held record (served and judged-only, as R4) of each patient whose
    /// records `local_ids` name, fetched with the areas `type_name` needs if this
    /// request has not yet: the release stage takes the records it links to from it,
    /// and judges by the rest.
    pub async fn records_of(
        &self,
        partner: &Partner,
        type_name: &str,
        local_ids: &[&str],
        scope: &RequestScope,
        max_bytes: usize,
    ) -> Result<Vec<Value>, PartnerFailure> {
        let types: Vec<ResourceType> = type_name.parse().into_iter().collect();
        let mut found = Vec::new();
        let mut patients: Vec<NhsNumber> =
            local_ids.iter().filter_map(|l| patient_in_id(l)).collect();
        patients.sort();
        patients.dedup();
        for nhs in patients {
            let said = self.record(partner, &nhs, &types, scope, max_bytes).await?;
            if let Said::Record(record) = &*said {
                found.extend(record.all().cloned());
            }
        }
        Ok(found)
    }

    /// The patient's structured record with the areas this request needs, asked
    /// for once per request (again only if a later need is of areas not asked).
    async fn record(
        &self,
        partner: &Partner,
        nhs: &NhsNumber,
        types: &[ResourceType],
        scope: &RequestScope,
        max_bytes: usize,
    ) -> Result<Arc<Said>, PartnerFailure> {
        let user = &scope.on_behalf_of;
        if user.system || user.organisation.is_none() {
            return Err(PartnerFailure::UserRequired);
        }
        let needed = Areas::needed_for(scope.expected().into_iter().chain(types.iter().copied()));
        let fetched = scope
            .structured(
                &partner.id,
                nhs,
                |kept: &Fetched| kept.said.is_err() || kept.areas.covers(needed),
                |kept: Option<Arc<Fetched>>| async move {
                    let areas = kept.map_or(needed, |k| k.areas.union(needed));
                    let said = self
                        .call(partner, nhs, areas, user, max_bytes)
                        .await
                        .map(Arc::new);
                    Fetched { areas, said }
                },
            )
            .await;
        fetched.said.clone()
    }

    async fn call(
        &self,
        partner: &Partner,
        nhs: &NhsNumber,
        areas: Areas,
        user: &OnBehalfOf,
        max_bytes: usize,
    ) -> Result<Said, PartnerFailure> {
        let headers = self.headers(partner, STRUCTURED_INTERACTION, user, "patient/*.read")?;
        let body = parameters(nhs, areas).to_string().into_bytes();
        let answer = exchange::send(
            partner,
            Exchange {
                method: Method::POST,
                url: self.url(partner, "Patient/$gpc.getstructuredrecord"),
                headers: &headers,
                body: Some(body),
                max_bytes,
            },
        )
        .await?;
        answer::interpret(answer, nhs)
    }

    /// Reaches the practice's capability statement, as `shcr-facade check` does:
    /// it must be FHIR STU3 and offer the structured record operation.
    pub async fn check(&self, partner: &Partner) -> Result<Duration, String> {
        let checker = OnBehalfOf {
            subject: "shcr-facade-check".into(),
            ..OnBehalfOf::default()
        };
        let headers = self
            .headers(
                partner,
                METADATA_INTERACTION,
                &checker,
                "organization/*.read",
            )
            .map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let answer = exchange::send(
            partner,
            Exchange {
                method: Method::GET,
                url: self.url(partner, "metadata"),
                headers: &headers,
                body: None,
                max_bytes: 1 << 20,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        if !answer.status.is_success() {
            return Err(format!("HTTP {}", answer.status.as_u16()));
        }
        let statement = answer.body.unwrap_or_default();
        if statement["resourceType"] != "CapabilityStatement"
            || !statement["fhirVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.0"))
        {
            return Err("its metadata is not an STU3 CapabilityStatement".into());
        }
        let offers = statement.to_string().contains("gpc.getstructuredrecord");
        if !offers {
            return Err("it does not offer $gpc.getstructuredrecord".into());
        }
        Ok(started.elapsed())
    }
}

/// The operation's Parameters: the patient and each area asked for, with the parts
/// GP Connect requires. No search periods: GP Connect forbids them alongside
/// consultations, which are always asked with clinical areas (see `Areas::needed_for`);
/// the facade applies every criterion to the records itself.
pub fn parameters(nhs: &NhsNumber, areas: Areas) -> Value {
    let mut parameters = vec![json!({
        "name": "patientNHSNumber",
        "valueIdentifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs.as_str()}
    })];
    for area in areas.iter() {
        let parameter = match area {
            Area::Allergies => {
                json!({"name": area.parameter(), "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]})
            }
            Area::Medication => {
                json!({"name": area.parameter(), "part": [{"name": "includePrescriptionIssues", "valueBoolean": true}]})
            }
            _ => json!({"name": area.parameter()}),
        };
        parameters.push(parameter);
    }
    json!({"resourceType": "Parameters", "parameter": parameters})
}

/// The NHS number of a local id: the patient's own, or the prefix of a record's.
pub fn patient_in_id(local_id: &str) -> Option<NhsNumber> {
    let nhs = local_id.split_once('.').map_or(local_id, |(nhs, _)| nhs);
    NhsNumber::parse(nhs).ok()
}

/// The patient a query names: `identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}` (a
/// patient lookup), or `patient={local id}` (records pointing at others, for
/// `_revinclude`), a GP Connect patient's local id being their NHS number.
fn named_nhs_number(query: &[(String, String)]) -> Option<NhsNumber> {
    query.iter().find_map(|(name, value)| match name.as_str() {
        "identifier" => {
            NhsNumber::parse(value.strip_prefix(NHS_NUMBER_SYSTEM)?.strip_prefix('|')?).ok()
        }
        "patient" => patient_in_id(value),
        _ => None,
    })
}

/// The reference criteria of a query (`encounter=Encounter/{local id},...`), each
/// as the paths its parameter searches and the references it accepts. The practice
/// cannot search, so the records of the whole record that meet them are picked here.
fn pointing_at(
    resource_type: ResourceType,
    query: &[(String, String)],
) -> Vec<(Vec<Vec<String>>, Vec<String>)> {
    let registry = crate::fhir::search::registry::Registry::get();
    query
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "patient" | "identifier" | "_id"))
        .filter_map(|(name, value)| {
            let param = registry.lookup(resource_type, name)?;
            let targets: Vec<String> = value.split(',').map(str::to_string).collect();
            let all_references = targets.iter().all(|t| {
                t.split_once('/').is_some_and(|(ty, id)| {
                    ty.starts_with(|c: char| c.is_ascii_uppercase()) && !id.is_empty()
                })
            });
            all_references.then(|| (param.paths.clone(), targets))
        })
        .collect()
}

fn points_at(record: &Value, paths: &[Vec<String>], targets: &[String]) -> bool {
    crate::fhir::search::matcher::nodes(record, paths)
        .iter()
        .any(|node| {
            node["reference"]
                .as_str()
                .is_some_and(|r| targets.iter().any(|t| t == r))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_ask_each_area_with_its_required_parts() {
        let nhs = NhsNumber::parse("9990000018").unwrap();
        let areas = Areas::default()
            .with(Area::Allergies)
            .with(Area::Medication)
            .with(Area::Consultations);
        let p = parameters(&nhs, areas);
        let names: Vec<&str> = p["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "patientNHSNumber",
                "includeAllergies",
                "includeMedication",
                "includeConsultations"
            ]
        );
        assert_eq!(
            p["parameter"][1]["part"][0]["name"],
            "includeResolvedAllergies"
        );
        assert_eq!(p["parameter"][0]["valueIdentifier"]["value"], "9990000018");
    }

    #[test]
    fn local_ids_name_their_patient() {
        assert_eq!(
            patient_in_id("9990000018.a-1")
                .map(|n| n.to_string())
                .as_deref(),
            Some("9990000018")
        );
        assert_eq!(
            patient_in_id("9990000018")
                .map(|n| n.to_string())
                .as_deref(),
            Some("9990000018")
        );
        assert!(patient_in_id("1234567890.x").is_none());
    }
}
