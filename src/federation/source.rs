//! The kinds of partner system the facade can ask, and the one place each operation
//! is told apart by kind: a FHIR R4 server, a legacy system read through its mapping,
//! and (see `gp_connect`) a GP practice answering GP Connect Access Record: Structured.

use std::sync::Arc;

use serde_json::Value;

use super::fhir;
use super::gp_connect::{self, Practice};
use super::legacy::{self, Mapping};
use super::partner::{ExchangeLimits, Pages, Partner, PartnerFailure};
use super::scope::RequestScope;
use crate::fhir::{NhsNumber, ResourceType};

/// What kind of system a partner is.
#[derive(Debug)]
pub enum Source {
    /// A FHIR R4 server answering searches and reads.
    Fhir,
    /// A system with its own JSON API, read through a mapping file and templates.
    Legacy(Arc<Mapping>),
    /// A GP practice's structured record, one call per request and patient.
    GpConnect(Arc<Practice>),
}

impl Source {
    /// As configuration names the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Fhir => "fhir",
            Source::Legacy(_) => "legacy",
            Source::GpConnect(_) => "gp-connect",
        }
    }

    /// Can it be searched by any parameter (demographics, identifiers, references),
    /// not only for one patient's records?
    pub fn searches_by_parameter(&self) -> bool {
        matches!(self, Source::Fhir)
    }

    /// Can it find a patient's records that point at some of its others (for
    /// `_revinclude`)? GP Connect can, from the patient's whole record.
    pub fn answers_references(&self) -> bool {
        matches!(self, Source::Fhir | Source::GpConnect(_))
    }

    /// One type's records: for a patient (`subject`, and their ids there in `query`),
    /// or by the criteria in `query` where the kind can be searched so.
    pub async fn search(
        &self,
        partner: &Partner,
        resource_type: ResourceType,
        query: &[(String, String)],
        subject: Option<&NhsNumber>,
        limits: ExchangeLimits,
        scope: &RequestScope,
    ) -> Result<Pages, PartnerFailure> {
        let max = limits.max_response_bytes;
        match self {
            Source::Fhir => fhir::search(partner, resource_type, query, limits).await,
            Source::Legacy(mapping) => {
                legacy::search(partner, mapping, resource_type, query, subject, max).await
            }
            Source::GpConnect(practice) => {
                practice
                    .search(partner, resource_type, query, subject, scope, max)
                    .await
            }
        }
    }

    /// One record by the partner's own id; `subject` is its patient's NHS number if
    /// known. `Ok(None)` when the partner says there is no such record.
    pub async fn read(
        &self,
        partner: &Partner,
        resource_type: ResourceType,
        local_id: &str,
        subject: Option<&NhsNumber>,
        max_bytes: usize,
        scope: &RequestScope,
    ) -> Result<Option<Value>, PartnerFailure> {
        match self {
            Source::Fhir => fhir::read(partner, resource_type, local_id, max_bytes).await,
            Source::Legacy(mapping) => {
                legacy::read(
                    partner,
                    mapping,
                    resource_type,
                    local_id,
                    subject,
                    max_bytes,
                )
                .await
            }
            Source::GpConnect(practice) => {
                practice
                    .read(partner, resource_type, local_id, scope, max_bytes)
                    .await
            }
        }
    }

    /// The local patient id a record of this kind carries in its own id, where it
    /// does (a legacy record's id starts with its patient's).
    pub fn patient_in_id<'a>(&self, local_id: &'a str) -> Option<&'a str> {
        match self {
            Source::Fhir => None,
            Source::Legacy(_) => local_id.split_once('.').map(|(patient, _)| patient),
            Source::GpConnect(_) => Some(local_id.split_once('.').map_or(local_id, |(p, _)| p)),
        }
    }

    /// The NHS number a local patient id is, where the kind makes it so (a GP
    /// Connect patient's local id is their NHS number).
    pub fn nhs_number_in(&self, local_patient_id: &str) -> Option<NhsNumber> {
        match self {
            Source::GpConnect(_) => gp_connect::patient_in_id(local_patient_id),
            _ => None,
        }
    }
}
