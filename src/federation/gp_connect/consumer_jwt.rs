//! GP Connect's consumer JWT: an unsigned token (the mutual TLS session authenticates
//! the facade) that tells the practice who is looking at its record, for its own
//! audit. It names the requesting professional, their organisation and this facade;
//! never a fixed system user, and never carrying the professional's own token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::federation::scope::OnBehalfOf;
use crate::fhir::ODS_ORGANISATION_SYSTEM;

pub const SDS_USER_ID_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-user-id";
pub const SDS_ROLE_PROFILE_ID_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";
/// Identifier systems of the facade's own: its deployment, and its users' subjects.
const DEVICE_SYSTEM: &str = "https://shcr-facade.example.org/Id/deployment";
const USER_SYSTEM: &str = "https://shcr-facade.example.org/Id/user-subject";
/// How long the practice may accept the token: GP Connect fixes it at five minutes.
const LIFETIME_S: i64 = 300;

/// What the JWT is for.
pub struct Audience<'a> {
    /// The practice's endpoint (service root), without any proxy prefix.
    pub endpoint: &'a str,
    /// This Shared Care Record, as `iss` and the requesting device.
    pub facade: &'a str,
    /// `patient/*.read` for records, `organization/*.read` for the capability check.
    pub scope: &'a str,
}

/// The `Authorization` value for one call made for `user` at `now` (Unix seconds).
pub fn bearer(user: &OnBehalfOf, audience: &Audience, now: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims(user, audience, now).to_string());
    format!("Bearer {header}.{claims}.")
}

pub fn claims(user: &OnBehalfOf, audience: &Audience, now: i64) -> Value {
    let practitioner_id = practitioner_id(user);
    let or_unk = |value: &Option<String>| value.clone().unwrap_or_else(|| "UNK".to_string());
    let mut practitioner = json!({
        "resourceType": "Practitioner",
        "id": practitioner_id,
        "identifier": [
            {"system": SDS_USER_ID_SYSTEM, "value": or_unk(&user.user_id)},
            {"system": SDS_ROLE_PROFILE_ID_SYSTEM, "value": or_unk(&user.role_profile_id)},
            {"system": USER_SYSTEM, "value": user.subject}
        ]
    });
    if let Some(name) = user.name.as_deref().and_then(human_name) {
        practitioner["name"] = json!([name]);
    }
    let organization = json!({
        "resourceType": "Organization",
        "identifier": [{"system": ODS_ORGANISATION_SYSTEM, "value": or_unk(&user.organisation)}]
    });
    json!({
        "iss": audience.facade,
        "sub": practitioner_id,
        "aud": audience.endpoint,
        "iat": now,
        "exp": now + LIFETIME_S,
        "reason_for_request": "directcare",
        "requested_scope": audience.scope,
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [{"system": DEVICE_SYSTEM, "value": audience.facade}],
            "model": "shcr-facade",
            "version": env!("CARGO_PKG_VERSION")
        },
        "requesting_organization": organization,
        "requesting_practitioner": practitioner
    })
}

/// The practitioner's id in the token (and its `sub`): their SDS user id where
/// known, else their subject at the identity provider when that is a FHIR id.
fn practitioner_id(user: &OnBehalfOf) -> String {
    let is_fhir_id = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    match (&user.user_id, &user.subject) {
        (Some(id), _) if is_fhir_id(id) => id.clone(),
        (_, subject) if is_fhir_id(subject) => subject.clone(),
        _ => "UNK".to_string(),
    }
}

/// A display name as a HumanName: a leading title as prefix, the last word as the
/// family name, the rest given names.
fn human_name(text: &str) -> Option<Value> {
    const TITLES: &[&str] = &[
        "dr",
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "prof",
        "professor",
        "sir",
        "dame",
    ];
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let family = words.pop()?;
    let prefix: Vec<&str> = match words.first() {
        Some(w) if TITLES.contains(&w.trim_end_matches('.').to_ascii_lowercase().as_str()) => {
            vec![words.remove(0)]
        }
        _ => Vec::new(),
    };
    let mut name = json!({"text": text, "family": family});
    if !words.is_empty() {
        name["given"] = json!(words);
    }
    if !prefix.is_empty() {
        name["prefix"] = json!(prefix);
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bearer: &str) -> (Value, Value, String) {
        let token = bearer.strip_prefix("Bearer ").unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let part = |s: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
        (part(parts[0]), part(parts[1]), parts[2].to_string())
    }

    fn audience() -> Audience<'static> {
        Audience {
            endpoint: "https://practice.example/B82005/STU3/1/gpconnect/structured",
            facade: "https://shcr.example/fhir",
            scope: "patient/*.read",
        }
    }

    #[test]
    fn names_the_requesting_professional_in_their_organisation() {
        let user = OnBehalfOf {
            subject: "f1c2".into(),
            user_id: Some("555000111222".into()),
            role_profile_id: Some("555021935107".into()),
            name: Some("Dr Ada Lovelace".into()),
            organisation: Some("RX1".into()),
            system: false,
        };
        let (header, claims, signature) = decode(&bearer(&user, &audience(), 1_800_000_000));
        assert_eq!(header, json!({"alg": "none", "typ": "JWT"}));
        assert!(signature.is_empty(), "unsigned: an empty third part");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            300
        );
        assert_eq!(claims["sub"], "555000111222");
        assert_eq!(claims["requesting_practitioner"]["id"], "555000111222");
        let ids = &claims["requesting_practitioner"]["identifier"];
        assert_eq!(ids[0]["value"], "555000111222");
        assert_eq!(ids[1]["value"], "555021935107");
        assert_eq!(
            claims["requesting_practitioner"]["name"][0]["family"],
            "Lovelace"
        );
        assert_eq!(
            claims["requesting_practitioner"]["name"][0]["prefix"][0],
            "Dr"
        );
        assert_eq!(
            claims["requesting_organization"]["identifier"][0]["value"],
            "RX1"
        );
        assert_eq!(claims["reason_for_request"], "directcare");
        assert_eq!(claims["aud"], audience().endpoint);
    }

    #[test]
    fn unknown_sds_ids_are_unk() {
        let user = OnBehalfOf {
            subject: "dev-clinician".into(),
            ..OnBehalfOf::default()
        };
        let claims = claims(&user, &audience(), 0);
        assert_eq!(claims["sub"], "dev-clinician");
        let ids = &claims["requesting_practitioner"]["identifier"];
        assert_eq!(ids[0]["value"], "UNK");
        assert_eq!(ids[1]["value"], "UNK");
    }
}
