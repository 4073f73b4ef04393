//! Access decisions, made before any partner is asked: may this principal ask for
//! this type and interaction at all (SMART scopes, role), and about this patient
//! (launch context)?

use serde_json::Value;

use crate::auth::principal::{Principal, PurposeOfUse};
use crate::auth::scopes::{Interaction, Level, Scope};
use crate::fhir::search::matcher::matches;
use crate::fhir::search::parse_criterion;
use crate::fhir::{NhsNumber, ResourceType};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No scope of the token covers the request (`error="insufficient_scope"`).
    #[error("the access token's scopes do not allow this; it needs {needed}")]
    InsufficientScope { needed: String },
    #[error("{0}")]
    Forbidden(String),
    /// The request names a purpose of use the facade does not know (400).
    #[error(
        "X-Purpose-Of-Use (or the token's purpose_of_use) must be TREAT, or ETREAT or BTG for emergency access"
    )]
    UnknownPurpose,
}

/// What kind of records a permitted request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Clinical records: needs a clinical role (or a backend-service scope).
    Clinical,
    /// The objection register: needs a privacy officer role, whatever the scopes.
    Objections,
    /// The audit trail: needs a privacy officer role, or (read only) a backend service
    /// configured as an audit export client.
    AuditTrail,
}

/// Resources a permitted request may show: all, or only those matching one of the
/// fine-grained scopes (`patient/Observation.rs?category=laboratory`).
#[derive(Debug, Clone, Default)]
pub struct Grant {
    restrictions: Option<Vec<Vec<(String, String)>>>,
}

impl Grant {
    /// Only resources matching fine-grained restrictions are granted.
    pub fn is_restricted(&self) -> bool {
        self.restrictions.is_some()
    }

    /// Does `resource` fall within what was granted?
    pub fn covers(&self, resource: &Value) -> bool {
        let Some(restrictions) = &self.restrictions else {
            return true;
        };
        let Some(resource_type) = resource["resourceType"]
            .as_str()
            .and_then(|t| t.parse::<ResourceType>().ok())
        else {
            return false;
        };
        restrictions.iter().any(|pairs| {
            pairs.iter().all(|(name, value)| {
                // A restriction the facade cannot evaluate admits nothing.
                match parse_criterion(resource_type, name, value, true, &mut Vec::new()) {
                    Ok(Some(criterion)) => matches(resource, &criterion),
                    _ => false,
                }
            })
        })
    }
}

/// May `principal` use `interaction` on `resource_type` for `purpose`?
pub fn permit(
    principal: &Principal,
    resource_type: &str,
    interaction: Interaction,
    purpose: Purpose,
) -> Result<Grant, Denied> {
    if principal.unknown_purpose {
        return Err(Denied::UnknownPurpose);
    }
    if principal.unusable_patient_context {
        return Err(Denied::Forbidden(
            "the token's patient context is not an NHS number known here".into(),
        ));
    }
    if principal.purpose == PurposeOfUse::Emergency && !principal.permissions.emergency {
        return Err(Denied::Forbidden(
            "emergency access is not allowed for the selected role".into(),
        ));
    }
    // Patient scopes mean something only with a patient in context.
    let granting: Vec<&Scope> = principal
        .scopes
        .granting(resource_type, interaction)
        .into_iter()
        .filter(|s| s.level != Level::Patient || principal.patient.is_some())
        .collect();
    if granting.is_empty() {
        let level = match principal.patient {
            Some(_) => "patient",
            None => "user",
        };
        let letter = match interaction {
            Interaction::Create => "c",
            Interaction::Read => "r",
            Interaction::Update => "u",
            Interaction::Delete => "d",
            Interaction::Search => "s",
        };
        return Err(Denied::InsufficientScope {
            needed: format!("{level}/{resource_type}.{letter}"),
        });
    }
    // A backend service acts for its organisation on clinical records; a user acts in
    // a role, whatever scopes their client was given. The objection register and the
    // audit trail belong to privacy officers: no scope stands in for the role, and the
    // only services that may read the trail (never the register) are the audit export
    // clients named in configuration.
    let as_service =
        principal.roles.is_empty() && granting.iter().any(|s| s.level == Level::System);
    let allowed = match purpose {
        Purpose::Clinical => as_service || principal.permissions.clinical,
        Purpose::Objections => principal.permissions.privacy_officer,
        Purpose::AuditTrail => {
            principal.permissions.privacy_officer
                || (as_service
                    && principal.permissions.audit_export
                    && matches!(interaction, Interaction::Read | Interaction::Search))
        }
    };
    if !allowed {
        let what = match purpose {
            Purpose::Clinical => "the selected role may not view clinical records",
            Purpose::Objections => {
                "only a privacy officer may read or change the objection register"
            }
            Purpose::AuditTrail => "only a privacy officer may read the audit trail",
        };
        return Err(Denied::Forbidden(what.to_string()));
    }
    let restrictions = match granting.iter().all(|s| !s.restriction.is_empty()) {
        true => Some(granting.iter().map(|s| s.restriction.clone()).collect()),
        false => None,
    };
    Ok(Grant { restrictions })
}

/// A token launched in one patient's context reaches that patient only.
pub fn permit_patient(principal: &Principal, nhs: &NhsNumber) -> Result<(), Denied> {
    match &principal.patient {
        Some(context) if context != nhs => Err(Denied::Forbidden(
            "this access token is limited to another patient".into(),
        )),
        _ => Ok(()),
    }
}

/// Does an objection still hide the patient from this principal? Only emergency
/// access, where configuration allows it, sees past one.
pub fn objection_applies(principal: &Principal, emergency_sees_past: bool) -> bool {
    !(emergency_sees_past && principal.purpose == PurposeOfUse::Emergency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::principal::Permissions;
    use crate::auth::scopes::Scopes;
    use serde_json::json;

    fn principal(scopes: &str, patient: Option<&str>, permissions: Permissions) -> Principal {
        Principal {
            issuer: "https://issuer.example".into(),
            subject: "user-1".into(),
            name: None,
            user_id: None,
            client_id: None,
            token_id: None,
            scopes: Scopes::parse(scopes),
            patient: patient.map(|p| NhsNumber::parse(p).unwrap()),
            unusable_patient_context: false,
            roles: Vec::new(),
            permissions,
            purpose: PurposeOfUse::Treatment,
            unknown_purpose: false,
        }
    }

    const CLINICIAN: Permissions = Permissions {
        clinical: true,
        privacy_officer: false,
        restricted: false,
        emergency: true,
        audit_export: false,
    };

    #[test]
    fn scope_and_role_both_needed_for_users() {
        let p = principal("user/Observation.rs", None, CLINICIAN);
        assert!(permit(&p, "Observation", Interaction::Search, Purpose::Clinical).is_ok());
        assert!(matches!(
            permit(&p, "Encounter", Interaction::Search, Purpose::Clinical),
            Err(Denied::InsufficientScope { .. })
        ));
        let no_role = principal("user/*.rs", None, Permissions::default());
        assert!(matches!(
            permit(
                &no_role,
                "Observation",
                Interaction::Read,
                Purpose::Clinical
            ),
            Err(Denied::Forbidden(_))
        ));
        let service = principal("system/*.rs", None, Permissions::default());
        assert!(
            permit(
                &service,
                "Observation",
                Interaction::Read,
                Purpose::Clinical
            )
            .is_ok()
        );
    }

    #[test]
    fn register_and_trail_need_the_officer_role_whatever_the_scopes() {
        let service = principal("system/*.cruds", None, Permissions::default());
        for (resource, purpose) in [
            ("Consent", Purpose::Objections),
            ("AuditEvent", Purpose::AuditTrail),
        ] {
            for interaction in [Interaction::Read, Interaction::Search, Interaction::Update] {
                assert!(permit(&service, resource, interaction, purpose).is_err());
            }
        }
        let export = principal(
            "system/*.cruds",
            None,
            Permissions {
                audit_export: true,
                ..Permissions::default()
            },
        );
        assert!(
            permit(
                &export,
                "AuditEvent",
                Interaction::Search,
                Purpose::AuditTrail
            )
            .is_ok()
        );
        assert!(
            permit(
                &export,
                "AuditEvent",
                Interaction::Update,
                Purpose::AuditTrail
            )
            .is_err()
        );
        assert!(permit(&export, "Consent", Interaction::Read, Purpose::Objections).is_err());
        let officer = principal(
            "user/Consent.cruds",
            None,
            Permissions {
                privacy_officer: true,
                ..Permissions::default()
            },
        );
        assert!(
            permit(
                &officer,
                "Consent",
                Interaction::Update,
                Purpose::Objections
            )
            .is_ok()
        );
    }

    #[test]
    fn patient_scopes_need_a_patient_in_context() {
        let p = principal("patient/*.rs", None, CLINICIAN);
        assert!(permit(&p, "Observation", Interaction::Read, Purpose::Clinical).is_err());
        let p = principal("patient/*.rs", Some("9990000018"), CLINICIAN);
        assert!(permit(&p, "Observation", Interaction::Read, Purpose::Clinical).is_ok());
        assert!(permit_patient(&p, &NhsNumber::parse("9990000018").unwrap()).is_ok());
        assert!(permit_patient(&p, &NhsNumber::parse("9990000026").unwrap()).is_err());
    }

    #[test]
    fn fine_grained_scope_covers_its_category_only() {
        let p = principal("user/Observation.rs?category=laboratory", None, CLINICIAN);
        let grant = permit(&p, "Observation", Interaction::Search, Purpose::Clinical).unwrap();
        let lab = json!({"resourceType": "Observation", "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]});
        let vital = json!({"resourceType": "Observation", "category": [{"coding": [{"code": "vital-signs"}]}]});
        assert!(grant.covers(&lab));
        assert!(!grant.covers(&vital));
        // A plain scope beside it widens the grant again.
        let p = principal(
            "user/Observation.rs?category=laboratory user/Observation.rs",
            None,
            CLINICIAN,
        );
        let grant = permit(&p, "Observation", Interaction::Search, Purpose::Clinical).unwrap();
        assert!(grant.covers(&vital));
    }

    #[test]
    fn emergency_needs_an_emergency_role() {
        let mut p = principal(
            "user/*.rs",
            None,
            Permissions {
                emergency: false,
                ..CLINICIAN
            },
        );
        p.purpose = PurposeOfUse::Emergency;
        assert!(permit(&p, "Observation", Interaction::Read, Purpose::Clinical).is_err());
        assert!(objection_applies(&p, false));
        p.permissions.emergency = true;
        assert!(permit(&p, "Observation", Interaction::Read, Purpose::Clinical).is_ok());
        assert!(!objection_applies(&p, true));
    }
}
