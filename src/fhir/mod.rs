//! FHIR shapes: the search model, ids and references, Bundles, OperationOutcomes,
//! formats and the CapabilityStatement. No HTTP and no partner calls here.

pub mod bundle;
pub mod capability;
pub mod compartment;
pub mod date;
pub mod elements;
pub mod format;
pub mod id;
pub mod nhs_number;
pub mod openapi;
pub mod outcome;
pub mod page;
pub mod patient;
pub mod reference;
pub mod resource_type;
pub mod search;
pub mod shape;
pub mod uk_core;

pub use nhs_number::NhsNumber;
pub use resource_type::ResourceType;

/// Identifier system of ODS organisation codes.
pub const ODS_ORGANISATION_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

// The facade's own canonical URLs; fhir-profiles/ holds their definitions.
/// Extension on a searchset's OperationOutcome issue: one partner's status, latency, entries.
pub const PARTNER_REPORT_EXTENSION: &str =
    "https://shcr-facade.example.org/fhir/StructureDefinition/partner-report";
/// CodeSystem of partner statuses (ok, timeout, unreachable, ...).
pub const PARTNER_STATUS_SYSTEM: &str =
    "https://shcr-facade.example.org/fhir/CodeSystem/partner-status";
