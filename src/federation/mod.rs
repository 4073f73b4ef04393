//! Federation: which partners hold the patient, what to ask each, asking them all at
//! once under one deadline, and checking what comes back before anyone sees it.
//!
//! Everything returned from here is in facade form (facade ids, rewritten references,
//! origin tag). Policy is applied by the caller, never here.

pub mod cursor;
pub mod identity;
pub mod partner;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::Client;
use serde_json::Value;
use std::future::Future;

use tokio::time::{Instant, timeout_at};

use crate::config::Config;
use crate::fhir::reference::{PartnerContext, to_facade_form};
use crate::fhir::search::matcher::nodes;
use crate::fhir::search::registry::Registry;
use crate::fhir::search::value::{ReferenceValue, SearchValue};
use crate::fhir::search::{NHS_NUMBER_SYSTEM, SearchRequest};
use crate::fhir::{NhsNumber, ResourceType, id::split_facade_id};
use identity::{LocalIds, PatientLinks, nhs_number_of};
use partner::{ExchangeLimits, Partner, PartnerFailure};
use report::{PartnerReport, PartnerStatus};

/// One resource type's search at one partner.
type TypeResult = (ResourceType, Result<partner::Pages, PartnerFailure>);

/// Resources gathered for one request, in facade form, and how each partner did.
#[derive(Debug, Default)]
pub struct Gathered {
    pub resources: Vec<Value>,
    pub reports: Vec<PartnerReport>,
}

/// Patients gathered per NHS number: each partner's Patient in facade form, most
/// authoritative first.
#[derive(Debug, Default)]
pub struct GatheredPatients {
    pub patients: BTreeMap<NhsNumber, Vec<Value>>,
    pub reports: Vec<PartnerReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    #[error("no such resource")]
    NotFound,
    #[error("{} {failure}", partner.label())]
    Partner {
        partner: Arc<Partner>,
        failure: PartnerFailure,
    },
}

pub struct Federation {
    /// In configuration order, except that the demographics authority comes first.
    partners: Vec<Arc<Partner>>,
    client: Client,
    links: Arc<PatientLinks>,
    limits: ExchangeLimits,
    deadline: Duration,
}

impl Federation {
    pub fn new(config: &Config, links: Arc<PatientLinks>) -> Federation {
        let mut partners: Vec<Arc<Partner>> = config
            .partners
            .iter()
            .map(|p| Arc::new(Partner::from_config(p)))
            .collect();
        partners.sort_by_key(|p| p.id != config.demographics_authority);
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client builds");
        let s = &config.search;
        Federation {
            partners,
            client,
            links,
            limits: ExchangeLimits {
                page_size: s.partner_page_size,
                max_pages: s.max_partner_pages,
                max_response_bytes: s.max_partner_response_bytes,
            },
            deadline: Duration::from_millis(s.deadline_ms),
        }
    }

    pub fn partners(&self) -> &[Arc<Partner>] {
        &self.partners
    }

    /// Clinical resources of `types` for one patient, from every partner that holds
    /// the patient. `query` gives each partner's translated query (None: don't ask).
    pub async fn gather_clinical(
        &self,
        nhs: &NhsNumber,
        types: &[ResourceType],
        query: impl Fn(&Partner, ResourceType, &LocalIds) -> Option<Vec<(String, String)>>,
    ) -> Gathered {
        let deadline = Instant::now() + self.deadline;
        let consulted = self
            .partners
            .iter()
            .filter(|p| types.iter().any(|t| p.serves(*t)));
        let tasks = consulted.map(|partner| {
            let query = &query;
            async move {
                let start = Instant::now();
                let outcome = bounded(partner, deadline, async {
                    let ids = self.local_ids(partner, nhs).await?;
                    if ids.is_empty() {
                        return Ok(None);
                    }
                    let searches: Vec<_> = types
                        .iter()
                        .filter(|t| partner.serves(**t))
                        .filter_map(|t| query(partner, *t, &ids).map(|q| (*t, q)))
                        .map(|(t, q)| async move {
                            (
                                t,
                                partner::search(&self.client, partner, t, &q, self.limits).await,
                            )
                        })
                        .collect();
                    let results = join_all(searches).await;
                    Ok(Some((ids, results)))
                })
                .await;
                self.settle(partner, nhs, outcome, start.elapsed())
            }
        });
        let mut gathered = Gathered::default();
        for (report, resources) in join_all(tasks).await {
            gathered.reports.push(report);
            gathered.resources.extend(resources);
        }
        gathered
    }

    /// Turns one partner's exchanges for a clinical request into its report and the
    /// resources that pass the checks.
    fn settle(
        &self,
        partner: &Arc<Partner>,
        nhs: &NhsNumber,
        outcome: Result<Option<(LocalIds, Vec<TypeResult>)>, PartnerFailure>,
        latency: Duration,
    ) -> (PartnerReport, Vec<Value>) {
        let report = |status| PartnerReport::new(partner.clone(), status, latency);
        let (ids, results) = match outcome {
            Err(failure) => return (report(PartnerStatus::Failed(failure)), Vec::new()),
            Ok(None) => return (report(PartnerStatus::PatientNotKnown), Vec::new()),
            Ok(Some(found)) => found,
        };
        let patients: HashMap<String, NhsNumber> =
            ids.into_iter().map(|id| (id, nhs.clone())).collect();
        let mut summary = report(PartnerStatus::Ok);
        let mut accepted = Vec::new();
        for (resource_type, result) in results {
            match result {
                Ok(pages) => {
                    if pages.truncated {
                        summary.absorb(report(PartnerStatus::Incomplete));
                    }
                    accepted.extend(self.accept(
                        partner,
                        resource_type,
                        &patients,
                        pages.resources,
                        &mut summary,
                    ));
                }
                Err(failure) => summary.absorb(report(PartnerStatus::Failed(failure))),
            }
        }
        (summary, accepted)
    }

    /// Patients named by NHS number, or found by demographics, from every partner.
    pub async fn gather_patients(&self, request: &SearchRequest) -> GatheredPatients {
        let deadline = Instant::now() + self.deadline;
        let named = request.named_patients();
        let tasks = self.partners.iter().map(|partner| {
            let named = &named;
            async move {
                let start = Instant::now();
                let outcome = bounded(partner, deadline, async {
                    match named {
                        Some(numbers) => {
                            let lookups =
                                numbers.iter().map(|nhs| self.lookup_patient(partner, nhs));
                            let mut found = Vec::new();
                            for result in join_all(lookups).await {
                                found.extend(result?);
                            }
                            Ok(found)
                        }
                        None => self.search_patients(partner, &patient_query(request)).await,
                    }
                })
                .await;
                (partner, outcome, start.elapsed())
            }
        });
        let mut gathered = GatheredPatients::default();
        for (partner, outcome, latency) in join_all(tasks).await {
            let found = match outcome {
                Ok(found) => found,
                Err(failure) => {
                    gathered.reports.push(PartnerReport::new(
                        partner.clone(),
                        PartnerStatus::Failed(failure),
                        latency,
                    ));
                    continue;
                }
            };
            let status = if found.is_empty() && named.is_some() {
                PartnerStatus::PatientNotKnown
            } else {
                PartnerStatus::Ok
            };
            let mut report = PartnerReport::new(partner.clone(), status, latency);
            for patient in found {
                if patient["resourceType"] != "Patient" {
                    report.rejected.wrong_type += 1;
                    continue;
                }
                let (Some(nhs), Some(local_id)) = (
                    nhs_number_of(&patient),
                    patient["id"].as_str().map(str::to_string),
                ) else {
                    report.rejected.unusable += 1;
                    continue;
                };
                if named.as_ref().is_some_and(|n| !n.contains(&nhs)) {
                    report.rejected.other_patient += 1;
                    continue;
                }
                let ids = HashMap::from([(local_id, nhs.clone())]);
                let mut patient = patient;
                if to_facade_form(&mut patient, &self.context(partner, &ids)).is_ok() {
                    report.entries += 1;
                    gathered.patients.entry(nhs).or_default().push(patient);
                }
            }
            gathered.reports.push(report);
        }
        gathered
    }

    /// Reads one resource by facade id, through the partner that holds it.
    pub async fn read(
        &self,
        resource_type: ResourceType,
        facade_id: &str,
    ) -> Result<Value, ReadFailure> {
        let (partner_id, local_id) = split_facade_id(facade_id).ok_or(ReadFailure::NotFound)?;
        let partner = self
            .partners
            .iter()
            .find(|p| p.id == partner_id && p.serves(resource_type))
            .ok_or(ReadFailure::NotFound)?;
        let deadline = Instant::now() + self.deadline;
        let failed = |failure| ReadFailure::Partner {
            partner: partner.clone(),
            failure,
        };
        let outcome = bounded(partner, deadline, async {
            let Some(resource) = partner::read(
                &self.client,
                partner,
                resource_type,
                local_id,
                self.limits.max_response_bytes,
            )
            .await?
            else {
                return Ok(None);
            };
            let mut patients = HashMap::new();
            for local in patient_references(&resource, resource_type) {
                if let Some(nhs) = self.nhs_number_at(partner, &local).await? {
                    patients.insert(local, nhs);
                }
            }
            Ok(Some((resource, patients)))
        })
        .await
        .map_err(failed)?;
        // A record that cannot be tied to a patient's NHS number is not served.
        let (mut resource, patients) = outcome
            .filter(|(_, p)| !p.is_empty())
            .ok_or(ReadFailure::NotFound)?;
        to_facade_form(&mut resource, &self.context(partner, &patients))
            .map_err(|_| ReadFailure::NotFound)?;
        Ok(resource)
    }

    fn context<'a>(
        &self,
        partner: &'a Partner,
        patients: &'a HashMap<String, NhsNumber>,
    ) -> PartnerContext<'a> {
        PartnerContext {
            partner_id: &partner.id,
            partner_name: &partner.name,
            ods_code: &partner.ods_code,
            base_url: partner.base_url.as_str(),
            patients,
        }
    }

    /// Keeps what a partner sent if it is of the type asked for and about the patient.
    fn accept(
        &self,
        partner: &Partner,
        resource_type: ResourceType,
        patients: &HashMap<String, NhsNumber>,
        resources: Vec<Value>,
        report: &mut PartnerReport,
    ) -> Vec<Value> {
        let context = self.context(partner, patients);
        let mut accepted = Vec::with_capacity(resources.len());
        for mut resource in resources {
            if resource["resourceType"] != resource_type.as_str() {
                report.rejected.wrong_type += 1;
                continue;
            }
            let refs = patient_references(&resource, resource_type);
            if refs.is_empty() || !refs.iter().all(|r| patients.contains_key(r)) {
                report.rejected.other_patient += 1;
                continue;
            }
            match to_facade_form(&mut resource, &context) {
                Ok(()) => accepted.push(resource),
                Err(_) => report.rejected.unusable += 1,
            }
        }
        report.entries += accepted.len();
        accepted
    }

    /// The partner's local ids for the patient, remembered or looked up.
    async fn local_ids(
        &self,
        partner: &Partner,
        nhs: &NhsNumber,
    ) -> Result<LocalIds, PartnerFailure> {
        if let Some(ids) = self.links.local_ids(nhs, &partner.id) {
            return Ok(ids);
        }
        let patients = self.lookup_patient(partner, nhs).await?;
        Ok(patients
            .iter()
            .filter_map(|p| p["id"].as_str().map(str::to_string))
            .collect())
    }

    /// `Patient?identifier=nhs-number|{nhs}` at one partner: the Patients that really
    /// carry that NHS number. Remembers the link.
    async fn lookup_patient(
        &self,
        partner: &Partner,
        nhs: &NhsNumber,
    ) -> Result<Vec<Value>, PartnerFailure> {
        let query = [(
            "identifier".to_string(),
            format!("{NHS_NUMBER_SYSTEM}|{nhs}"),
        )];
        let patients: Vec<Value> = self
            .search_patients(partner, &query)
            .await?
            .into_iter()
            .filter(|p| {
                p["resourceType"] == "Patient"
                    && p["id"].is_string()
                    && nhs_number_of(p).as_ref() == Some(nhs)
            })
            .collect();
        let ids: LocalIds = patients
            .iter()
            .filter_map(|p| p["id"].as_str().map(str::to_string))
            .collect();
        self.links.remember(nhs, &partner.id, &ids);
        Ok(patients)
    }

    /// Patient resources matching `query` at one partner.
    async fn search_patients(
        &self,
        partner: &Partner,
        query: &[(String, String)],
    ) -> Result<Vec<Value>, PartnerFailure> {
        let pages = partner::search(
            &self.client,
            partner,
            ResourceType::Patient,
            query,
            self.limits,
        )
        .await?;
        Ok(pages.resources)
    }

    /// The NHS number behind a partner's local patient id, remembered or read.
    async fn nhs_number_at(
        &self,
        partner: &Partner,
        local_id: &str,
    ) -> Result<Option<NhsNumber>, PartnerFailure> {
        if let Some(nhs) = self.links.nhs_number(&partner.id, local_id) {
            return Ok(Some(nhs));
        }
        let patient = partner::read(
            &self.client,
            partner,
            ResourceType::Patient,
            local_id,
            self.limits.max_response_bytes,
        )
        .await?;
        let nhs = patient.as_ref().and_then(nhs_number_of);
        if let Some(nhs) = &nhs {
            self.links
                .remember(nhs, &partner.id, &vec![local_id.to_string()]);
        }
        Ok(nhs)
    }
}

/// Runs one exchange with `partner` within its own timeout and the request's deadline.
async fn bounded<T>(
    partner: &Partner,
    deadline: Instant,
    exchange: impl Future<Output = Result<T, PartnerFailure>>,
) -> Result<T, PartnerFailure> {
    timeout_at(deadline.min(Instant::now() + partner.timeout), exchange)
        .await
        .unwrap_or(Err(PartnerFailure::TimedOut))
}

/// The local patient ids a clinical resource refers to through its `patient` element.
fn patient_references(resource: &Value, resource_type: ResourceType) -> Vec<String> {
    let Some(def) = Registry::get().lookup(resource_type, "patient") else {
        return Vec::new();
    };
    nodes(resource, &def.paths)
        .into_iter()
        .filter_map(|n| n["reference"].as_str())
        .filter_map(|r| ReferenceValue::parse(r).ok())
        .filter(|r| r.resource_type.as_deref() == Some("Patient"))
        .map(|r| r.id)
        .collect()
}

/// A clinical search rebuilt for one partner from the typed request: the patient as
/// the partner's own id, `_id` narrowed to this partner's records, aliases under the
/// partner's names. None when none of the `_id`s asked for are this partner's.
pub fn clinical_query(
    request: &SearchRequest,
    partner: &Partner,
    local_ids: &LocalIds,
) -> Option<Vec<(String, String)>> {
    let mut pairs = vec![("patient".to_string(), local_ids.join(","))];
    for criterion in &request.criteria {
        match criterion.param.code.as_str() {
            "patient" | "subject" => {}
            "_id" => {
                let ids: Vec<String> = criterion
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        SearchValue::Token(t) => t.code.as_deref().and_then(split_facade_id),
                        _ => None,
                    })
                    .filter(|(p, _)| *p == partner.id)
                    .map(|(_, local)| local.to_string())
                    .collect();
                if ids.is_empty() {
                    return None;
                }
                pairs.push(("_id".into(), ids.join(",")));
            }
            _ => pairs.push(criterion.to_partner_pair()),
        }
    }
    Some(pairs)
}

/// A demographic Patient search for partners: everything but `_id`, which is ours.
fn patient_query(request: &SearchRequest) -> Vec<(String, String)> {
    request
        .criteria
        .iter()
        .filter(|c| c.param.code != "_id")
        .map(|c| c.to_partner_pair())
        .collect()
}

/// `$everything` asks each partner for all of the patient's records of a type.
pub fn everything_query(
    _partner: &Partner,
    _resource_type: ResourceType,
    local_ids: &LocalIds,
) -> Option<Vec<(String, String)>> {
    Some(vec![("patient".to_string(), local_ids.join(","))])
}
