//! One access as an R4 AuditEvent, shaped after IHE Basic Audit Log Patterns (Query,
//! Read, PatientQuery, PatientRead): who asked (never their token, only its `jti`),
//! what they asked and what they were shown, why, and how it ended.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// Who asked, as far as their token said (absent when it could not be validated).
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub token_id: Option<String>,
    /// Selected role (job role code) and its organisation (ODS code).
    pub role: Option<String>,
    pub organisation: Option<String>,
    /// v3-ActReason: TREAT, or ETREAT for emergency access; None when the request
    /// named a purpose the facade does not know.
    pub purpose: Option<String>,
    pub emergency: bool,
}

/// A partner consulted, and how it answered.
#[derive(Debug, Clone)]
pub struct PartnerOutcome {
    pub ods_code: String,
    pub status: String,
}

/// Everything known about one request when its answer is ready.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub request_id: String,
    pub method: String,
    /// The path and query as received.
    pub target: String,
    /// The restful interaction (search-type, read, vread, create, update, ...).
    pub interaction: String,
    pub status: u16,
    pub recorded: String,
    /// This facade instance.
    pub observer: String,
    pub requester: Option<Requester>,
    /// NHS numbers the request was about or that the answer concerned.
    pub patients: Vec<String>,
    /// `Type/id` of every resource returned.
    pub returned: Vec<String>,
    pub partners: Vec<PartnerOutcome>,
    /// Items the policy withheld from the answer.
    pub withheld: usize,
    /// Items withheld because a record they point at could not be judged.
    pub unjudged: usize,
}

/// The AuditEvent for `access`.
pub fn audit_event(access: &Access) -> Value {
    let (action, subtype) = match access.interaction.as_str() {
        "create" => ("C", "create"),
        "update" => ("U", "update"),
        "search-type" | "operation" => ("E", access.interaction.as_str()),
        other => ("R", other),
    };
    // 0 success, 4 minor failure (the client's), 8 serious failure (ours).
    let outcome = match access.status {
        200..=299 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let mut agents = vec![json!({
        "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"display": access.observer},
        "requestor": false
    })];
    let mut purpose = Vec::new();
    if let Some(r) = &access.requester {
        if let Some(code) = &r.purpose {
            purpose.push(json!({"coding": [{"system": ACT_REASON, "code": code}]}));
        }
        agents.push(json!({
            "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
            "who": {"identifier": {"value": r.client_id.clone().unwrap_or_else(|| "unknown".into())}},
            "requestor": false
        }));
        let mut user = json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser", "display": "human user"}]},
            "who": {"identifier": {"system": r.issuer, "value": r.subject}},
            "requestor": true,
        });
        if !purpose.is_empty() {
            user["purposeOfUse"] = Value::Array(purpose.clone());
        }
        if let Some(name) = &r.name {
            user["who"]["display"] = json!(name);
        }
        if let Some(role) = &r.role {
            let text = match &r.organisation {
                Some(org) => format!("{role} at {org}"),
                None => role.clone(),
            };
            user["role"] = json!([{"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/job-role", "code": role}], "text": text}]);
        }
        if let Some(jti) = &r.token_id {
            user["policy"] = json!([jti]);
        }
        agents.push(user);
    }
    let mut entities = vec![
        json!({
            "what": {"identifier": {"value": access.request_id}},
            "type": {"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "code": "XrequestId"}
        }),
        json!({
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
            "query": STANDARD.encode(format!("{} {}", access.method, access.target)),
        }),
    ];
    for nhs in &access.patients {
        entities.push(json!({
            "what": {"reference": format!("Patient/{nhs}")},
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}
        }));
    }
    for returned in &access.returned {
        entities.push(match action {
            // A read's record is BALP's data entity, as that pattern shapes it.
            "R" => json!({
                "what": {"reference": returned},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}
            }),
            // A search's returned records, which BALP does not list: what and role
            // alone. They are most of a search's event, kept for every request: with
            // type and displays each took about twice the bytes.
            _ => json!({
                "what": {"reference": returned},
                "role": {"system": OBJECT_ROLE, "code": "4"}
            }),
        });
    }
    for partner in &access.partners {
        entities.push(json!({
            "what": {"identifier": {"system": crate::fhir::ODS_ORGANISATION_SYSTEM, "value": partner.ods_code}},
            "type": {"system": ENTITY_TYPE, "code": "3", "display": "Organization"},
            "detail": [{"type": "partner-status", "valueString": partner.status}]
        }));
    }
    // How many items the policy withheld: for investigators, never for clinicians.
    entities.push(json!({
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "13", "display": "Security Resource"},
        "name": "withheld by policy",
        "detail": [
            {"type": "withheld-count", "valueString": access.withheld.to_string()},
            {"type": "unjudged-count", "valueString": access.unjudged.to_string()}
        ]
    }));
    let mut event = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": access.recorded,
        "outcome": outcome,
        "outcomeDesc": format!("HTTP {}", access.status),
        "source": {
            "observer": {"display": access.observer},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        },
    });
    // Moved in: `json!` would copy each of them (the returned resources' entities
    // dominate an event).
    event["agent"] = Value::Array(agents);
    event["entity"] = Value::Array(entities);
    if !purpose.is_empty() {
        event["purposeOfEvent"] = Value::Array(purpose);
    }
    if access.requester.as_ref().is_some_and(|r| r.emergency) {
        event["meta"] =
            json!({"tag": [{"system": ACT_REASON, "code": "BTG", "display": "break the glass"}]});
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(interaction: &str, returned: usize) -> Access {
        Access {
            request_id: "r-1".into(),
            method: "GET".into(),
            target: "/fhir/Observation?patient=9990000018".into(),
            interaction: interaction.into(),
            status: 200,
            recorded: "2026-01-01T00:00:00.000Z".into(),
            observer: "http://127.0.0.1:8080/fhir (instance 1)".into(),
            requester: Some(Requester {
                issuer: "https://idp.example".into(),
                subject: "user-1".into(),
                purpose: Some("TREAT".into()),
                ..Default::default()
            }),
            patients: vec!["9990000018".into()],
            returned: (0..returned)
                .map(|i| format!("Observation/northgate-acute.obs-{i}"))
                .collect(),
            ..Default::default()
        }
    }

    fn returned_entities(event: &Value) -> Vec<&Value> {
        event["entity"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["role"]["code"] == "4")
            .collect()
    }

    #[test]
    fn a_search_names_every_returned_record_by_what_and_role_only() {
        let event = audit_event(&access("search-type", 50));
        fhir_codec::validate_r4_json(&event).unwrap();
        let returned = returned_entities(&event);
        assert_eq!(returned.len(), 50);
        for entity in returned {
            let keys: Vec<&String> = entity.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["what", "role"]);
            assert_eq!(entity["role"]["system"], OBJECT_ROLE);
        }
        // The returned records are most of a search's event; each costs this much.
        let per_record = (event.to_string().len()
            - audit_event(&access("search-type", 0)).to_string().len())
            / 50;
        assert!(per_record < 160, "{per_record} bytes per returned record");
    }

    #[test]
    fn a_read_names_its_record_as_balps_data_entity() {
        let event = audit_event(&access("read", 1));
        fhir_codec::validate_r4_json(&event).unwrap();
        let [record] = returned_entities(&event)[..] else {
            panic!("one record")
        };
        assert_eq!(record["type"]["code"], "2");
        assert_eq!(record["role"]["display"], "Domain Resource");
    }
}
