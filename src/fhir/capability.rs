//! The CapabilityStatement, generated from what is really implemented: the served
//! types, the search parameters in the registry, and the operations wired in http/.

use serde_json::{Value, json};

use super::ResourceType;
use super::search::registry::{ParamKind, Registry};

const TEMPLATE: &str = include_str!("../../fhir-profiles/capability-statement.json");

/// `base`: the facade's FHIR base URL; `date`: when the server started.
pub fn capability_statement(base: &str, date: &str) -> Value {
    let mut statement: Value =
        serde_json::from_str(TEMPLATE).expect("bundled CapabilityStatement template is JSON");
    statement["date"] = json!(date);
    statement["software"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    statement["implementation"] =
        json!({ "description": "Shared Care Record FHIR facade", "url": base });
    let mut resources: Vec<Value> = ResourceType::all()
        .iter()
        .map(|t| resource_capability(*t))
        .collect();
    resources.push(consent_capability());
    resources.push(audit_event_capability());
    statement["rest"][0]["resource"] = json!(resources);
    statement["implementationGuide"] = json!([super::uk_core::IMPLEMENTATION_GUIDE]);
    statement
}

/// The SMART `oauth-uris` extension for an issuer's OpenID discovery document: its
/// authorize and token endpoints, and revoke, introspect and register where it has
/// them. None when it has no token endpoint.
pub fn oauth_uris(metadata: &Value) -> Option<Value> {
    let token = metadata["token_endpoint"].as_str()?;
    let mut uris = vec![json!({"url": "token", "valueUri": token})];
    for (name, field) in [
        ("authorize", "authorization_endpoint"),
        ("revoke", "revocation_endpoint"),
        ("introspect", "introspection_endpoint"),
        ("register", "registration_endpoint"),
    ] {
        if let Some(uri) = metadata[field].as_str() {
            uris.push(json!({"url": name, "valueUri": uri}));
        }
    }
    Some(json!({
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": uris
    }))
}

/// The objection register: Consent, kept by the facade itself with every version.
fn consent_capability() -> Value {
    json!({
        "type": "Consent",
        "documentation": "Objections to sharing (scope patient-privacy, provision deny). The id is the patient's NHS number; proposed and active hide the patient (403 suppressed), inactive and rejected do not, entered-in-error is ignored.",
        "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "update"}, {"code": "create"}, {"code": "search-type"}, {"code": "history-instance"}],
        "versioning": "versioned-update",
        "readHistory": true,
        "updateCreate": false,
        "searchParam": [{"name": "patient", "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient", "type": "reference", "documentation": "Patient/{NHS number}"}]
    })
}

/// The audit trail, for privacy officers.
fn audit_event_capability() -> Value {
    json!({
        "type": "AuditEvent",
        "documentation": "Every access to the facade, hash-chained; privacy officers only. Newest first; _tag=BTG lists emergency accesses. An event's id is its place in the chain.",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": [
            {"name": "patient", "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-patient", "type": "reference"},
            {"name": "agent", "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-agent", "type": "reference", "documentation": "a user or client id"},
            {"name": "date", "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-date", "type": "date"},
            {"name": "outcome", "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-outcome", "type": "token"},
            {"name": "_tag", "definition": "http://hl7.org/fhir/SearchParameter/Resource-tag", "type": "token"}
        ]
    })
}

fn resource_capability(resource_type: ResourceType) -> Value {
    let search_params: Vec<Value> = Registry::get()
        .for_type(resource_type)
        .into_iter()
        .map(|p| {
            let kind = match p.kind {
                ParamKind::Token => "token",
                ParamKind::Date => "date",
                ParamKind::String => "string",
                ParamKind::Reference => "reference",
                ParamKind::Quantity => "quantity",
            };
            json!({ "name": p.code, "definition": p.url, "type": kind, "documentation": p.description })
        })
        .collect();
    let registry = Registry::get();
    let includes: Vec<String> = registry
        .for_type(resource_type)
        .into_iter()
        .filter(|p| p.kind == ParamKind::Reference && !p.names_patient())
        .map(|p| format!("{resource_type}:{}", p.code))
        .collect();
    let revincludes: Vec<String> = registry
        .pointing_at(resource_type)
        .into_iter()
        .filter(|(_, p)| !p.names_patient())
        .map(|(source, p)| format!("{source}:{}", p.code))
        .collect();
    let mut resource = json!({
        "type": resource_type.as_str(),
        "interaction": [{ "code": "read" }, { "code": "search-type" }],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": search_params,
    });
    if let Some(profile) = super::uk_core::profile_for(resource_type.as_str()) {
        resource["supportedProfile"] = json!([profile]);
    }
    if !includes.is_empty() {
        resource["searchInclude"] = json!(includes);
    }
    if !revincludes.is_empty() {
        resource["searchRevInclude"] = json!(revincludes);
    }
    if resource_type.is_patient() {
        resource["operation"] = json!([{
            "name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            "documentation": "Every served record of the patient, from every partner, in one paged searchset (_count and _type are honoured)."
        }, {
            "name": "who-viewed",
            "definition": "https://shcr-facade.example.org/fhir/OperationDefinition/Patient-who-viewed",
            "documentation": "Privacy officers: every access that showed this patient's records (when, who, role and organisation, purpose, types), as Parameters."
        }]);
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_statement_is_valid_r4_and_lists_every_type() {
        let cs = capability_statement("http://127.0.0.1:8080/fhir", "2026-01-01");
        fhir_codec::validate_r4_json(&cs).unwrap();
        assert_eq!(
            cs["rest"][0]["security"]["service"][0]["coding"][0]["code"],
            "SMART-on-FHIR"
        );
        let types: Vec<&str> = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        let mut served: Vec<&str> = ResourceType::all().iter().map(|t| t.as_str()).collect();
        served.extend(["Consent", "AuditEvent"]);
        assert_eq!(types, served);
    }
}
