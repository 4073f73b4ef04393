//! Who is asking: the validated token's claims turned into a `Principal`.

use serde_json::Value;

use super::scopes::Scopes;
use crate::config::RolesConfig;
use crate::fhir::NhsNumber;

/// The role the user acts in: for CIS2, the one entry of `nhsid_nrbac_roles` named
/// by `selected_roleid`; otherwise the configured plain roles claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Job role (CIS2: the last part of `role_code`, e.g. R8000) or the plain role name.
    pub code: String,
    /// ODS code of the organisation the role is held at, when the token says.
    pub organisation: Option<String>,
    pub name: Option<String>,
    /// The SDS role profile id (CIS2 `person_roleid`).
    pub profile_id: Option<String>,
}

/// Why the data is being looked at (v3-ActReason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurposeOfUse {
    /// Direct care (TREAT): the default.
    Treatment,
    /// Emergency access ("break glass", ETREAT / BTG).
    Emergency,
}

impl PurposeOfUse {
    /// The purpose a v3-ActReason code asks for: TREAT, or ETREAT / BTG for emergency
    /// access. Any other code is not a purpose the facade knows.
    pub fn parse(code: &str) -> Option<PurposeOfUse> {
        match code.trim().to_ascii_uppercase().as_str() {
            "TREAT" => Some(PurposeOfUse::Treatment),
            "ETREAT" | "BTG" => Some(PurposeOfUse::Emergency),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            PurposeOfUse::Treatment => "TREAT",
            PurposeOfUse::Emergency => "ETREAT",
        }
    }
}

/// What the principal's role allows, from the configured role sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions {
    pub clinical: bool,
    pub privacy_officer: bool,
    /// May see items labelled confidentiality `R`.
    pub restricted: bool,
    pub emergency: bool,
    /// A backend service named in `auth.audit_export_clients`: may read the audit
    /// trail (a SIEM export), nothing else of the privacy officer's.
    pub audit_export: bool,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    /// The professional's SDS user id (CIS2 `uid`), when the token carries one.
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// The token's `jti`, recorded for audit (never the token).
    pub token_id: Option<String>,
    pub scopes: Scopes,
    /// SMART launch context: this token can only ever reach this patient.
    pub patient: Option<NhsNumber>,
    /// A `patient` claim that is not an NHS number: the token reaches no one.
    pub unusable_patient_context: bool,
    pub roles: Vec<Role>,
    pub permissions: Permissions,
    pub purpose: PurposeOfUse,
    /// The request (header) or token (claim) named a purpose of use the facade does
    /// not know: nothing is allowed (400), rather than guessing direct care.
    pub unknown_purpose: bool,
}

impl Principal {
    /// Who the principal is, stable across their tokens: what page links are bound to.
    pub fn holder(&self) -> String {
        let patient = self.patient.as_ref().map_or("", |p| p.as_str());
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{}\n{}\n{}", self.issuer, self.subject, patient).as_bytes(),
        );
        digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The roles a token's claims give, per `config`.
pub fn roles_from_claims(claims: &Value, config: &RolesConfig) -> Vec<Role> {
    if let Some(entries) = claims.get("nhsid_nrbac_roles").and_then(Value::as_array) {
        // CIS2: only the selected role counts; none selected, no role.
        let Some(selected) = claims.get("selected_roleid").and_then(Value::as_str) else {
            return Vec::new();
        };
        return entries
            .iter()
            .filter(|e| e.get("person_roleid").and_then(Value::as_str) == Some(selected))
            .filter_map(|e| {
                let code = e.get("role_code")?.as_str()?.rsplit(':').next()?;
                Some(Role {
                    code: code.to_string(),
                    organisation: e
                        .get("org_code")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    name: e
                        .get("role_name")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    profile_id: Some(selected.to_string()),
                })
            })
            .take(1)
            .collect();
    }
    let organisation = claims
        .get(&config.organisation_claim)
        .and_then(Value::as_str)
        .map(str::to_string);
    let names: Vec<&str> = match claims.get(&config.claim) {
        Some(Value::String(s)) => s.split_whitespace().collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    names
        .into_iter()
        .map(|code| Role {
            code: code.to_string(),
            organisation: organisation.clone(),
            name: None,
            profile_id: None,
        })
        .collect()
}

/// What `roles` may do under `config`'s role sets; `audit_export` says whether the
/// token's client is a configured audit export client (meaningful without roles only).
pub fn permissions(roles: &[Role], config: &RolesConfig, audit_export: bool) -> Permissions {
    let any = |set: &[String]| roles.iter().any(|r| set.iter().any(|s| s == &r.code));
    Permissions {
        clinical: any(&config.clinical),
        privacy_officer: any(&config.privacy_officer),
        restricted: any(&config.restricted),
        emergency: any(&config.emergency),
        audit_export: audit_export && roles.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> RolesConfig {
        RolesConfig::default()
    }

    #[test]
    fn cis2_selected_role_only() {
        let claims = json!({
            "selected_roleid": "222",
            "nhsid_nrbac_roles": [
                {"person_roleid": "111", "org_code": "RX1", "role_code": "S0080:G0450:R0001", "role_name": "Privacy Officer"},
                {"person_roleid": "222", "org_code": "A81001", "role_code": "S8000:G8000:R8000", "role_name": "Clinical Practitioner Access Role"}
            ]
        });
        let roles = roles_from_claims(&claims, &config());
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].code, "R8000");
        assert_eq!(roles[0].organisation.as_deref(), Some("A81001"));
        let may = permissions(&roles, &config(), false);
        assert!(may.clinical);
        assert!(!may.privacy_officer, "the unselected role does not count");
    }

    #[test]
    fn cis2_without_selection_has_no_role() {
        let claims =
            json!({"nhsid_nrbac_roles": [{"person_roleid": "1", "role_code": "S:G:R8000"}]});
        assert!(roles_from_claims(&claims, &config()).is_empty());
        let claims = json!({"selected_roleid": "9", "nhsid_nrbac_roles": [{"person_roleid": "1", "role_code": "S:G:R8000"}]});
        assert!(roles_from_claims(&claims, &config()).is_empty());
    }

    #[test]
    fn plain_roles_claim() {
        let claims = json!({"roles": ["clinician"], "org": "A81001"});
        let roles = roles_from_claims(&claims, &config());
        assert_eq!(roles[0].code, "clinician");
        assert!(permissions(&roles, &config(), false).clinical);
        let claims = json!({"roles": "privacy-officer"});
        assert!(
            permissions(&roles_from_claims(&claims, &config()), &config(), false).privacy_officer
        );
        assert_eq!(permissions(&[], &config(), false), Permissions::default());
    }
}
