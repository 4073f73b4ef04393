//! One access as an R4 AuditEvent, shaped after IHE Basic Audit Log Patterns (Query,
//! Read, PatientQuery, PatientRead): who asked (never their token, only its `jti`),
//! what they asked and what they were shown, why, and how it ended.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;

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

/// The AuditEvent for `access`, as JSON text: what is stored and hashed.
pub fn audit_event_text(access: &Access) -> String {
    serde_json::to_string(&AuditEvent::of(access)).expect("an event of strings and numbers")
}

/// The AuditEvent for `access`, as a JSON value.
pub fn audit_event(access: &Access) -> Value {
    serde_json::to_value(AuditEvent::of(access)).expect("an event of strings and numbers")
}

// The event's shape, written straight from `Access` by borrowing: an event names
// every returned record, and building it as a `Value` tree first cost several
// times the writing (a map and key strings per element).

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent<'a> {
    resource_type: &'static str,
    #[serde(rename = "type")]
    kind: Coding<'a>,
    subtype: [Coding<'a>; 1],
    action: &'static str,
    recorded: &'a str,
    outcome: &'static str,
    outcome_desc: String,
    source: Source<'a>,
    agent: Vec<Agent<'a>>,
    entity: Vec<Entity<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose_of_event: Option<[Concept<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Meta>,
}

#[derive(Serialize)]
struct Coding<'a> {
    system: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

const fn coding<'a>(system: &'a str, code: &'a str, display: &'a str) -> Coding<'a> {
    Coding {
        system,
        code,
        display: Some(display),
    }
}

#[derive(Serialize)]
struct Concept<'a> {
    coding: [Coding<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

impl<'a> Concept<'a> {
    fn of(coding: Coding<'a>) -> Concept<'a> {
        Concept {
            coding: [coding],
            text: None,
        }
    }
}

#[derive(Serialize)]
struct Source<'a> {
    observer: Who<'a>,
    #[serde(rename = "type")]
    kind: [Coding<'a>; 1],
}

#[derive(Serialize, Default)]
struct Who<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<Identifier<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

#[derive(Serialize)]
struct Identifier<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Agent<'a> {
    #[serde(rename = "type")]
    kind: Concept<'a>,
    who: Who<'a>,
    requestor: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose_of_use: Option<[Concept<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<[Concept<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<[&'a str; 1]>,
}

#[derive(Serialize, Default)]
struct Entity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    what: Option<What<'a>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<Coding<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Coding<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    detail: Vec<Detail<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum What<'a> {
    Reference(Cow<'a, str>),
    Identifier(Identifier<'a>),
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "valueString")]
    value: Cow<'a, str>,
}

#[derive(Serialize)]
struct Meta {
    tag: [Coding<'static>; 1],
}

/// AuditEvent.outcome for an HTTP status: 0 success, 4 minor failure (the
/// client's), 8 serious failure (ours).
pub(super) fn outcome_code(status: u16) -> &'static str {
    match status {
        200..=299 => "0",
        400..=499 => "4",
        _ => "8",
    }
}

/// A v3-ActReason purpose (TREAT, ETREAT), as both the user and the event carry it.
fn purpose_of_use(code: &str) -> [Concept<'_>; 1] {
    [Concept::of(Coding {
        system: ACT_REASON,
        code,
        display: None,
    })]
}

const SYSTEM_OBJECT: Coding = coding(ENTITY_TYPE, "2", "System Object");

impl<'a> AuditEvent<'a> {
    fn of(access: &'a Access) -> AuditEvent<'a> {
        let (action, subtype) = match access.interaction.as_str() {
            "create" => ("C", "create"),
            "update" => ("U", "update"),
            "search-type" | "operation" => ("E", access.interaction.as_str()),
            other => ("R", other),
        };
        let outcome = outcome_code(access.status);
        let purpose = access.requester.as_ref().and_then(|r| r.purpose.as_deref());
        let mut agent = vec![Agent {
            kind: Concept::of(coding(DCM, "110152", "Destination Role ID")),
            who: Who {
                display: Some(&access.observer),
                ..Who::default()
            },
            requestor: false,
            purpose_of_use: None,
            role: None,
            policy: None,
        }];
        if let Some(r) = &access.requester {
            agent.push(Agent {
                kind: Concept::of(coding(DCM, "110153", "Source Role ID")),
                who: Who {
                    identifier: Some(Identifier {
                        system: None,
                        value: r.client_id.as_deref().unwrap_or("unknown"),
                    }),
                    display: None,
                },
                requestor: false,
                purpose_of_use: None,
                role: None,
                policy: None,
            });
            agent.push(Agent {
                kind: Concept::of(coding(
                    "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                    "humanuser",
                    "human user",
                )),
                who: Who {
                    identifier: Some(Identifier {
                        system: Some(&r.issuer),
                        value: &r.subject,
                    }),
                    display: r.name.as_deref(),
                },
                requestor: true,
                purpose_of_use: purpose.map(purpose_of_use),
                role: r.role.as_deref().map(|role| {
                    [Concept {
                        coding: [Coding {
                            system: "https://fhir.nhs.uk/CodeSystem/job-role",
                            code: role,
                            display: None,
                        }],
                        text: Some(match &r.organisation {
                            Some(org) => format!("{role} at {org}"),
                            None => role.to_string(),
                        }),
                    }]
                }),
                policy: r.token_id.as_deref().map(|jti| [jti]),
            });
        }
        let mut entity = Vec::with_capacity(
            3 + access.patients.len() + access.returned.len() + access.partners.len(),
        );
        entity.push(Entity {
            what: Some(What::Identifier(Identifier {
                system: None,
                value: &access.request_id,
            })),
            kind: Some(Coding {
                system: "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
                code: "XrequestId",
                display: None,
            }),
            ..Entity::default()
        });
        entity.push(Entity {
            kind: Some(SYSTEM_OBJECT),
            role: Some(coding(OBJECT_ROLE, "24", "Query")),
            query: Some(STANDARD.encode(format!("{} {}", access.method, access.target))),
            ..Entity::default()
        });
        entity.extend(access.patients.iter().map(|nhs| Entity {
            what: Some(What::Reference(Cow::Owned(format!("Patient/{nhs}")))),
            kind: Some(coding(ENTITY_TYPE, "1", "Person")),
            role: Some(coding(OBJECT_ROLE, "1", "Patient")),
            ..Entity::default()
        }));
        entity.extend(access.returned.iter().map(|returned| {
            let what = Some(What::Reference(Cow::Borrowed(returned.as_str())));
            match action {
                // A read's record is BALP's data entity, as that pattern shapes it.
                "R" => Entity {
                    what,
                    kind: Some(SYSTEM_OBJECT),
                    role: Some(coding(OBJECT_ROLE, "4", "Domain Resource")),
                    ..Entity::default()
                },
                // A search's returned records, which BALP does not list: what and
                // role alone. They are most of a search's event, kept for every
                // request: with type and displays each took about twice the bytes.
                _ => Entity {
                    what,
                    role: Some(Coding {
                        system: OBJECT_ROLE,
                        code: "4",
                        display: None,
                    }),
                    ..Entity::default()
                },
            }
        }));
        entity.extend(access.partners.iter().map(|partner| Entity {
            what: Some(What::Identifier(Identifier {
                system: Some(crate::fhir::ODS_ORGANISATION_SYSTEM),
                value: &partner.ods_code,
            })),
            kind: Some(coding(ENTITY_TYPE, "3", "Organization")),
            detail: vec![Detail {
                kind: "partner-status",
                value: Cow::Borrowed(&partner.status),
            }],
            ..Entity::default()
        }));
        // How many items the policy withheld: for investigators, never for clinicians.
        entity.push(Entity {
            kind: Some(SYSTEM_OBJECT),
            role: Some(coding(OBJECT_ROLE, "13", "Security Resource")),
            name: Some("withheld by policy"),
            detail: vec![
                Detail {
                    kind: "withheld-count",
                    value: Cow::Owned(access.withheld.to_string()),
                },
                Detail {
                    kind: "unjudged-count",
                    value: Cow::Owned(access.unjudged.to_string()),
                },
            ],
            ..Entity::default()
        });
        let emergency = access.requester.as_ref().is_some_and(|r| r.emergency);
        AuditEvent {
            resource_type: "AuditEvent",
            kind: coding(
                "http://terminology.hl7.org/CodeSystem/audit-event-type",
                "rest",
                "Restful Operation",
            ),
            subtype: [Coding {
                system: "http://hl7.org/fhir/restful-interaction",
                code: subtype,
                display: None,
            }],
            action,
            recorded: &access.recorded,
            outcome,
            outcome_desc: format!("HTTP {}", access.status),
            source: Source {
                observer: Who {
                    display: Some(&access.observer),
                    ..Who::default()
                },
                kind: [coding(
                    "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "4",
                    "Application Server",
                )],
            },
            agent,
            entity,
            purpose_of_event: purpose.map(purpose_of_use),
            meta: emergency.then_some(Meta {
                tag: [coding(ACT_REASON, "BTG", "break the glass")],
            }),
        }
    }
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
    fn an_event_with_every_part_is_valid_r4_and_its_text_is_the_event() {
        let mut full = access("search-type", 3);
        full.requester = Some(Requester {
            issuer: "https://idp.example".into(),
            subject: "user-\"1\"".into(),
            name: Some("Dr A Clinician".into()),
            client_id: Some("ehr-1".into()),
            token_id: Some("jti-1".into()),
            role: Some("R8000".into()),
            organisation: Some("RX1".into()),
            purpose: Some("ETREAT".into()),
            emergency: true,
        });
        full.partners = vec![PartnerOutcome {
            ods_code: "RX1".into(),
            status: "timeout".into(),
        }];
        full.withheld = 2;
        let event = audit_event(&full);
        fhir_codec::validate_r4_json(&event).unwrap();
        assert_eq!(event["meta"]["tag"][0]["code"], "BTG");
        assert_eq!(event["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
        let user = &event["agent"][2];
        assert_eq!(user["who"]["display"], "Dr A Clinician");
        assert_eq!(user["role"][0]["text"], "R8000 at RX1");
        assert_eq!(user["policy"][0], "jti-1");
        let text = audit_event_text(&full);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), event);
        assert_eq!(text, event.to_string(), "the same text, key order included");
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
