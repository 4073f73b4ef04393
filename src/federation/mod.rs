//! Federation: which partners hold the patient, what to ask each, asking them all at
//! once under one deadline, and checking what comes back before anyone sees it.
//!
//! Everything returned from here is in facade form (facade ids, rewritten references,
//! origin tag). Policy is applied by the caller, never here.

pub mod credentials;
pub mod cursor;
mod directory;
pub mod exchange;
mod fan_out;
mod fhir;
pub mod gp_connect;
pub mod identity;
pub mod legacy;
pub mod linked;
pub mod ordered;
pub mod partner;
mod referring;
pub mod report;
pub mod scope;
pub mod source;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;

use tokio::time::Instant;

use crate::config::Config;
use crate::fhir::compartment;
use crate::fhir::reference::{PartnerContext, origin_tag, to_facade_form};
use crate::fhir::search::registry::ParamKind;
use crate::fhir::search::value::SearchValue;
use crate::fhir::search::{Criterion, NHS_NUMBER_SYSTEM, SearchRequest};
use crate::fhir::{NhsNumber, ResourceType, id::split_facade_id};
use crate::store::{AnyConnection, StoreError};
use credentials::Credentials;
use fan_out::{Answered, ask_each, bounded};
use identity::{Known, LocalIds, PatientLinks, nhs_number_of};
use legacy::PartnerMappings;
use linked::PatientIds;
use partner::{ExchangeLimits, Partner, PartnerFailure};
use report::{Notice, PartnerReport, PartnerStatus};
use scope::{OnBehalfOf, RequestScope};
use source::Source;

tokio::task_local! {
    /// The Shared Care Records the request being answered has already passed through
    /// (its hop header), carried on to every partner asked on its behalf.
    pub static VISITED: Vec<String>;
}

/// Most Shared Care Records one request may pass through.
pub const MAX_HOPS: usize = 4;

/// The hop header for a request this facade sends: the records already passed
/// through, then this one.
fn outbound_hops(deployment_id: &str) -> String {
    let mut hops = VISITED.try_with(|v| v.clone()).unwrap_or_default();
    hops.push(deployment_id.to_string());
    hops.join(",")
}

/// Partner credentials by partner id, loaded once and shared by every worker.
pub type PartnerCredentials = HashMap<String, Arc<Credentials>>;

/// Loads every partner's credentials; fails naming the partner whose cannot be read.
pub fn load_credentials(config: &Config) -> Result<PartnerCredentials, String> {
    config
        .partners
        .iter()
        .map(|p| {
            Credentials::load(&p.credentials)
                .map(|c| (p.id.clone(), Arc::new(c)))
                .map_err(|e| format!("partners '{}' credentials: {e}", p.id))
        })
        .collect()
}

/// Reaches a GP Connect partner's capability statement with the Spine headers, its
/// credentials and a consumer JWT, as `shcr-facade check` does.
pub async fn check_gp_connect(
    config: &crate::config::PartnerConfig,
    credentials: Arc<Credentials>,
    deployment_id: &str,
) -> Result<Duration, String> {
    let gp_connect = config
        .gp_connect
        .as_ref()
        .ok_or("no gp_connect addressing")?;
    let practice = gp_connect::Practice::new(gp_connect);
    let partner = Partner::from_config(config, credentials, Source::Fhir, deployment_id);
    practice.check(&partner).await
}

/// One resource type's search at one partner.
type TypeResult = (ResourceType, Result<partner::Pages, PartnerFailure>);

/// What one partner said during a clinical request.
struct Exchange {
    /// The patient's ids there (empty: not known there).
    ids: LocalIds,
    /// The ids were looked up now, not remembered.
    learned: bool,
    /// Legacy client records that did not map to a Patient during the look-up.
    unmapped: usize,
    results: Vec<TypeResult>,
}

/// Resources gathered for one request, in facade form, how each partner did, and
/// the patient's ids at each partner that knows them.
#[derive(Debug, Default)]
pub struct Gathered {
    pub resources: Vec<Value>,
    pub reports: Vec<PartnerReport>,
    pub patients: PatientIds,
    /// For a search asked in order: how each partner's answer stands, by partner id.
    pub ordered: Vec<(String, ordered::Ordered)>,
}

/// A record read by facade id, and its patient's id at the partner that holds it.
#[derive(Debug)]
pub struct ReadRecord {
    pub resource: Value,
    pub patients: PatientIds,
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
    #[error("{0}")]
    Store(#[from] StoreError),
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
    links: PatientLinks,
    limits: ExchangeLimits,
    deadline: Duration,
}

impl Federation {
    /// `deployment_id` names this Shared Care Record in hop headers.
    pub fn new(
        config: &Config,
        credentials: &PartnerCredentials,
        mappings: &PartnerMappings,
        deployment_id: &str,
        links: PatientLinks,
    ) -> Federation {
        let mut partners: Vec<Arc<Partner>> = config
            .partners
            .iter()
            .map(|p| {
                let credentials = credentials
                    .get(&p.id)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Credentials::none()));
                let source = match (&p.gp_connect, mappings.get(&p.id)) {
                    (Some(gp_connect), _) => {
                        Source::GpConnect(Arc::new(gp_connect::Practice::new(gp_connect)))
                    }
                    (None, Some(mapping)) => Source::Legacy(mapping.clone()),
                    (None, None) => Source::Fhir,
                };
                Arc::new(Partner::from_config(p, credentials, source, deployment_id))
            })
            .collect();
        partners.sort_by_key(|p| p.id != config.demographics_authority);
        let s = &config.search;
        Federation {
            partners,
            links,
            limits: ExchangeLimits {
                page_size: s.partner_page_size,
                max_pages: s.max_partner_pages,
                max_response_bytes: s.max_partner_response_bytes,
            },
            deadline: Duration::from_millis(s.deadline_ms),
        }
    }

    /// The scope of a request starting now, made for `on_behalf_of`: every partner
    /// call made for it, link fetches included, ends by its deadline.
    pub fn scope(&self, on_behalf_of: OnBehalfOf) -> RequestScope {
        RequestScope::new(Instant::now() + self.deadline, on_behalf_of)
    }

    /// The fresh links of `nhs` that `gather_clinical` starts from, read in the same
    /// trip to the database as `alongside` (see `PatientLinks::known_alongside`).
    pub async fn known_alongside<T: Send + 'static>(
        &self,
        nhs: &NhsNumber,
        alongside: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(T, Known), StoreError> {
        self.links.known_alongside(nhs, alongside).await
    }

    /// Clinical resources of `types` for one patient, from every partner that holds
    /// the patient, starting from what is `known` of their ids there (a partner not
    /// in it is asked who the patient is). `query` gives each partner's translated
    /// query (None: don't ask); `order`, the order a search's page is shown in (see
    /// `ordered`). Fails if the links learnt cannot be written.
    pub async fn gather_clinical(
        &self,
        nhs: &NhsNumber,
        known: Known,
        types: &[ResourceType],
        query: impl Fn(&Partner, ResourceType, &LocalIds) -> Option<Vec<(String, String)>>,
        order: Option<&ordered::PageOrder>,
        scope: &RequestScope,
    ) -> Result<Gathered, StoreError> {
        scope.expect(types.iter().copied());
        let consulted = self
            .partners
            .iter()
            .filter(|p| types.iter().any(|t| p.serves(*t)));
        let asks = consulted.map(|partner| {
            let (query, remembered) = (&query, known.get(&partner.id).cloned());
            let exchange = async move {
                let (ids, learned, unmapped) = match remembered {
                    Some(ids) => (ids, false, 0),
                    None => {
                        let found = self.lookup_patient(partner, nhs, scope).await?;
                        (ids_of(&found.resources), true, found.unmapped)
                    }
                };
                let searches: Vec<_> = types
                    .iter()
                    .filter(|t| partner.serves(**t) && !ids.is_empty())
                    .filter_map(|t| query(partner, *t, &ids).map(|q| (*t, q)))
                    .map(|(t, q)| async move {
                        let in_order = match order {
                            Some(order) => {
                                ordered::search(partner, t, &q, self.limits, order).await
                            }
                            None => None,
                        };
                        let result = match in_order {
                            Some(result) => result,
                            None => {
                                let source = &partner.source;
                                source
                                    .search(partner, t, &q, Some(nhs), self.limits, scope)
                                    .await
                            }
                        };
                        (t, result)
                    })
                    .collect();
                let results = join_all(searches).await;
                Ok(Exchange {
                    ids,
                    learned,
                    unmapped,
                    results,
                })
            };
            (partner, (), exchange)
        });
        let mut gathered = Gathered::default();
        let mut learned = Vec::new();
        for Answered { asked, outcome, .. } in ask_each(scope.deadline, asks).await {
            let partner = asked.partner;
            if let Ok(exchange) = &outcome {
                if exchange.learned {
                    learned.push((nhs.clone(), partner.id.clone(), exchange.ids.clone()));
                }
                if !exchange.ids.is_empty() {
                    let local = exchange.ids.iter().map(|id| (id.clone(), nhs.clone()));
                    gathered
                        .patients
                        .insert(partner.id.clone(), local.collect());
                }
                let ordered = exchange
                    .results
                    .iter()
                    .filter_map(|(_, r)| r.as_ref().ok()?.ordered);
                gathered
                    .ordered
                    .extend(ordered.map(|o| (partner.id.clone(), o)));
            }
            let (report, resources) = self.settle(partner, nhs, outcome, asked.latency);
            gathered.reports.push(report);
            gathered.resources.extend(resources);
        }
        self.links.remember(learned).await?;
        Ok(gathered)
    }

    /// Turns one partner's exchanges for a clinical request into its report and the
    /// resources that pass the checks.
    fn settle(
        &self,
        partner: &Arc<Partner>,
        nhs: &NhsNumber,
        outcome: Result<Exchange, PartnerFailure>,
        latency: Duration,
    ) -> (PartnerReport, Vec<Value>) {
        let report = |status| PartnerReport::new(partner.clone(), status, latency);
        let exchange = match outcome {
            Err(failure) => return (report(PartnerStatus::failed(failure)), Vec::new()),
            Ok(exchange) => exchange,
        };
        let mut summary = report(match exchange.ids.is_empty() {
            true => PartnerStatus::PatientNotKnown,
            false => PartnerStatus::Ok,
        });
        summary.rejected.unmapped = exchange.unmapped;
        if exchange.ids.is_empty() {
            return (summary, Vec::new());
        }
        let Exchange { ids, results, .. } = exchange;
        let patients: HashMap<String, NhsNumber> =
            ids.into_iter().map(|id| (id, nhs.clone())).collect();
        let mut accepted = Vec::new();
        for (resource_type, result) in results {
            match result {
                Ok(pages) => {
                    if pages.truncated {
                        summary.note(Notice::more_pages());
                    }
                    for notice in pages.notices {
                        summary.note(notice);
                    }
                    summary.rejected.unmapped += pages.unmapped;
                    accepted.extend(self.accept(
                        partner,
                        resource_type,
                        &patients,
                        pages.resources,
                        &mut summary,
                    ));
                }
                Err(failure) => summary.absorb(report(PartnerStatus::failed(failure))),
            }
        }
        (summary, accepted)
    }

    /// Patients named by NHS number, or found by demographics, from every partner.
    /// What partners said of each NHS number is remembered as patient links.
    pub async fn gather_patients(
        &self,
        request: &SearchRequest,
        scope: &RequestScope,
    ) -> Result<GatheredPatients, StoreError> {
        let named = request.named_patients();
        // Systems that cannot be searched by demographics are asked by NHS number only.
        let asked = self
            .partners
            .iter()
            .filter(|p| named.is_some() || p.source.searches_by_parameter());
        let asks = asked.map(|partner| {
            let named = &named;
            let search = async move {
                match named {
                    Some(numbers) => {
                        let lookups = numbers
                            .iter()
                            .map(|nhs| self.lookup_patient(partner, nhs, scope));
                        let mut found = partner::Pages::default();
                        for result in join_all(lookups).await {
                            let pages = result?;
                            found.resources.extend(pages.resources);
                            found.unmapped += pages.unmapped;
                            found.notices.extend(pages.notices);
                        }
                        Ok(found)
                    }
                    None => match patient_query(request, partner) {
                        Some(query) => self.search_patients(partner, &query, scope).await,
                        None => Ok(partner::Pages::default()),
                    },
                }
            };
            (partner, (), search)
        });
        let mut gathered = GatheredPatients::default();
        let mut learned: BTreeMap<(NhsNumber, String), LocalIds> = BTreeMap::new();
        for Answered { asked, outcome, .. } in ask_each(scope.deadline, asks).await {
            let partner = asked.partner;
            let found = match outcome {
                Ok(found) => found,
                Err(failure) => {
                    gathered
                        .reports
                        .push(asked.report(PartnerStatus::failed(failure)));
                    continue;
                }
            };
            let status = if found.resources.is_empty() && named.is_some() {
                PartnerStatus::PatientNotKnown
            } else {
                PartnerStatus::Ok
            };
            let mut report = asked.report(status);
            report.rejected.unmapped = found.unmapped;
            for notice in found.notices {
                report.note(notice);
            }
            // A named patient the partner did not return is not known there.
            for nhs in named.iter().flatten() {
                learned
                    .entry((nhs.clone(), partner.id.clone()))
                    .or_default();
            }
            for patient in found.resources {
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
                learned
                    .entry((nhs.clone(), partner.id.clone()))
                    .or_default()
                    .push(local_id.clone());
                let ids = HashMap::from([(local_id, nhs.clone())]);
                let mut patient = patient;
                if to_facade_form(&mut patient, &self.context(partner, &ids)).is_ok() {
                    report.entries += 1;
                    gathered.patients.entry(nhs).or_default().push(patient);
                }
            }
            gathered.reports.push(report);
        }
        self.links
            .remember(
                learned
                    .into_iter()
                    .map(|((nhs, partner), ids)| (nhs, partner, ids))
                    .collect(),
            )
            .await?;
        Ok(gathered)
    }

    /// Reads one resource by facade id, through the partner that holds it.
    pub async fn read(
        &self,
        resource_type: ResourceType,
        facade_id: &str,
        scope: &RequestScope,
    ) -> Result<ReadRecord, ReadFailure> {
        let deadline = scope.deadline;
        scope.expect([resource_type]);
        let (partner_id, local_id) = split_facade_id(facade_id).ok_or(ReadFailure::NotFound)?;
        let partner = self
            .partners
            .iter()
            .find(|p| p.id == partner_id && p.serves(resource_type))
            .ok_or(ReadFailure::NotFound)?;
        let failed = |failure| ReadFailure::Partner {
            partner: partner.clone(),
            failure,
        };
        let patient_local = partner.source.patient_in_id(local_id);
        // Directory records belong to no patient, unless they come in one patient's
        // record (GP Connect's do).
        if resource_type.is_directory() && patient_local.is_none() {
            let mut resource = bounded(
                partner,
                deadline,
                partner.source.read(
                    partner,
                    resource_type,
                    local_id,
                    None,
                    self.limits.max_response_bytes,
                    scope,
                ),
            )
            .await
            .map_err(failed)?
            .ok_or(ReadFailure::NotFound)?;
            to_facade_form(&mut resource, &self.context(partner, &HashMap::new()))
                .map_err(|_| ReadFailure::NotFound)?;
            return Ok(ReadRecord {
                resource,
                patients: PatientIds::new(),
            });
        }
        // A legacy or GP Connect record's local id starts with its patient's id
        // there: the patient whose records are fetched again to find it.
        let subject = match patient_local {
            Some(patient) => {
                let nhs = self.nhs_number_at(partner, scope, patient).await?;
                Some(nhs.ok_or(ReadFailure::NotFound)?)
            }
            None => None,
        };
        let Some(mut resource) = self
            .read_at(partner, scope, resource_type, local_id, subject.as_ref())
            .await
            .map_err(failed)?
        else {
            return Err(ReadFailure::NotFound);
        };
        let mut patients = HashMap::new();
        let references = match (resource_type.is_directory(), patient_local, &subject) {
            // A directory record in one patient's record is theirs to see.
            (true, Some(patient), Some(nhs)) => {
                patients.insert(patient.to_string(), nhs.clone());
                Vec::new()
            }
            _ => compartment::patient_ids(&resource, resource_type),
        };
        for local in &references {
            let nhs = self.nhs_number_at(partner, scope, local).await?;
            patients.extend(nhs.map(|nhs| (local.clone(), nhs)));
        }
        // A record that cannot be tied to one patient's NHS number is not served (as
        // a search would not return one naming two patients).
        let mut named: Vec<&NhsNumber> = patients.values().collect();
        named.sort();
        named.dedup();
        if named.len() != 1 || references.iter().any(|r| !patients.contains_key(r)) {
            return Err(ReadFailure::NotFound);
        }
        to_facade_form(&mut resource, &self.context(partner, &patients))
            .map_err(|_| ReadFailure::NotFound)?;
        Ok(ReadRecord {
            resource,
            patients: HashMap::from([(partner.id.clone(), patients)]),
        })
    }

    /// The NHS number behind a partner's local patient id: remembered, or read from
    /// the partner (and then remembered).
    async fn nhs_number_at(
        &self,
        partner: &Arc<Partner>,
        scope: &RequestScope,
        local: &str,
    ) -> Result<Option<NhsNumber>, ReadFailure> {
        if let Some(nhs) = partner.source.nhs_number_in(local) {
            return Ok(Some(nhs));
        }
        if let Some(nhs) = self.links.nhs_number(&partner.id, local).await? {
            return Ok(Some(nhs));
        }
        let nhs = self
            .read_at(partner, scope, ResourceType::patient(), local, None)
            .await
            .map_err(|failure| ReadFailure::Partner {
                partner: partner.clone(),
                failure,
            })?
            .as_ref()
            .and_then(nhs_number_of);
        if let Some(nhs) = &nhs {
            self.links
                .remember(vec![(
                    nhs.clone(),
                    partner.id.clone(),
                    vec![local.to_string()],
                )])
                .await?;
        }
        Ok(nhs)
    }

    /// Reads one resource from `partner` within the request's deadline.
    async fn read_at(
        &self,
        partner: &Partner,
        scope: &RequestScope,
        resource_type: ResourceType,
        local_id: &str,
        subject: Option<&NhsNumber>,
    ) -> Result<Option<Value>, PartnerFailure> {
        let max = self.limits.max_response_bytes;
        bounded(
            partner,
            scope.deadline,
            partner
                .source
                .read(partner, resource_type, local_id, subject, max, scope),
        )
        .await
    }

    fn context<'a>(
        &self,
        partner: &'a Partner,
        patients: &'a HashMap<String, NhsNumber>,
    ) -> PartnerContext<'a> {
        PartnerContext {
            partner_id: &partner.id,
            partner_name: &partner.name,
            origin: origin_tag(&partner.ods_code, &partner.name),
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
            let refs = compartment::patient_ids(&resource, resource_type);
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

    /// `Patient?identifier=nhs-number|{nhs}` at one partner: the Patients that really
    /// carry that NHS number.
    async fn lookup_patient(
        &self,
        partner: &Partner,
        nhs: &NhsNumber,
        scope: &RequestScope,
    ) -> Result<partner::Pages, PartnerFailure> {
        let query = [(
            "identifier".to_string(),
            format!("{NHS_NUMBER_SYSTEM}|{nhs}"),
        )];
        let mut pages = self.search_patients(partner, &query, scope).await?;
        pages.resources.retain(|p| {
            p["resourceType"] == "Patient"
                && p["id"].is_string()
                && nhs_number_of(p).as_ref() == Some(nhs)
        });
        Ok(pages)
    }

    /// Patient resources matching `query` at one partner.
    async fn search_patients(
        &self,
        partner: &Partner,
        query: &[(String, String)],
        scope: &RequestScope,
    ) -> Result<partner::Pages, PartnerFailure> {
        partner
            .source
            .search(
                partner,
                ResourceType::patient(),
                query,
                None,
                self.limits,
                scope,
            )
            .await
    }
}

/// The local ids of Patient resources.
fn ids_of(patients: &[Value]) -> LocalIds {
    patients
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_string))
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
            // `:missing` and the like: for the facade alone.
            _ if criterion.modifier.is_some() => pairs.extend(criterion.partner_pair()),
            _ if criterion.param.kind == ParamKind::Reference => pairs.push(partner_references(
                criterion,
                partner,
                request.patient.as_ref(),
                local_ids,
            )?),
            _ => pairs.extend(criterion.partner_pair()),
        }
    }
    Some(pairs)
}

/// A reference criterion in the partner's own ids: facade ids of its records become
/// its local ids, the patient their local patient ids; references to other
/// partners' records are dropped. None when nothing is left: no record of this
/// partner can match.
fn partner_references(
    criterion: &Criterion,
    partner: &Partner,
    patient: Option<&NhsNumber>,
    local_patient_ids: &LocalIds,
) -> Option<(String, String)> {
    let mut values = Vec::new();
    for value in &criterion.values {
        let SearchValue::Reference(reference) = value else {
            continue;
        };
        let is_patient =
            reference.resource_type.as_deref() == Some(ResourceType::patient().as_str());
        if is_patient {
            if patient.is_some_and(|nhs| nhs.as_str() == reference.id) {
                values.extend(local_patient_ids.iter().map(|id| format!("Patient/{id}")));
            }
            continue;
        }
        let Some((owner, local)) = split_facade_id(&reference.id) else {
            continue;
        };
        if owner != partner.id {
            continue;
        }
        values.push(match &reference.resource_type {
            Some(t) => format!("{t}/{local}"),
            None => local.to_string(),
        });
    }
    if values.is_empty() {
        return None;
    }
    let (name, _) = criterion.to_partner_pair();
    Some((name, values.join(",")))
}

/// A demographic Patient search for one partner: everything but `_id`, which is
/// ours, with references in its own ids. None when a reference criterion cannot
/// match anything there.
fn patient_query(request: &SearchRequest, partner: &Partner) -> Option<Vec<(String, String)>> {
    request
        .criteria
        .iter()
        .filter(|c| c.param.code != "_id")
        .filter_map(|c| match c.param.kind {
            ParamKind::Reference if c.modifier.is_none() => {
                Some(partner_references(c, partner, None, &Vec::new()))
            }
            _ => c.partner_pair().map(Some),
        })
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
