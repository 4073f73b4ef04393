//! Auth: a bearer access token, validated against a trusted issuer's keys, becomes a
//! `Principal`. What the principal may see is decided by `policy::access`.

pub mod issuer;
pub mod principal;
pub mod scopes;
pub mod verified;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use crate::config::{AuthConfig, RolesConfig};
use crate::fhir::NhsNumber;
use issuer::{KeyError, TrustedIssuer};
use principal::{Principal, PurposeOfUse, permissions, roles_from_claims};
use scopes::Scopes;
use verified::{Verified, VerifiedTokens};

/// The request header by which a user asks for emergency access (v3-ActReason
/// `ETREAT` or `BTG`); the `purpose_of_use` claim may say the same.
pub const PURPOSE_OF_USE_HEADER: &str = "x-purpose-of-use";

/// The claim that marks a token minted by the development issuer (`demo`, tests):
/// refused unless the facade runs in development mode.
pub const DEV_CLAIM: &str = "shcr_dev";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials at all (RFC 6750: no error code in the challenge).
    #[error("this request needs a bearer access token")]
    Missing,
    #[error("{0}")]
    InvalidToken(String),
    /// The issuer's keys cannot be fetched: nothing can be checked, nothing is shown.
    #[error("the identity provider cannot be reached; try again shortly")]
    IssuerUnavailable,
}

pub struct Authenticator {
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway_s: u64,
    issuers: Vec<TrustedIssuer>,
    roles: RolesConfig,
    /// Client ids of backend services that may read (export) the audit trail.
    audit_export_clients: Vec<String>,
    dev_mode: bool,
    verified: VerifiedTokens,
}

impl Authenticator {
    /// `audience` is used when the configuration names none (the facade's base URL).
    pub fn new(config: &AuthConfig, audience: &str) -> Authenticator {
        let refetch = Duration::from_secs(config.jwks_refetch_interval_s);
        let max_age = Duration::from_secs(config.jwks_max_age_s);
        Authenticator {
            audience: config
                .audience
                .clone()
                .unwrap_or_else(|| audience.to_string()),
            algorithms: config
                .algorithms
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            leeway_s: config.clock_skew_s,
            issuers: config
                .issuers
                .iter()
                .map(|i| TrustedIssuer::new(i.clone(), refetch, max_age))
                .collect(),
            roles: config.roles.clone(),
            audit_export_clients: config.audit_export_clients.clone(),
            dev_mode: config.dev_mode,
            verified: VerifiedTokens::default(),
        }
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn issuers(&self) -> &[TrustedIssuer] {
        &self.issuers
    }

    /// The first trusted issuer: the one advertised to SMART apps.
    pub fn primary_issuer(&self) -> Option<&TrustedIssuer> {
        self.issuers.first()
    }

    /// Validates the `Authorization` header's bearer token and reads who it names.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        purpose_header: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("the Authorization header must be 'Bearer <token>'"))?;
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(seen) = self.verified.get(token) {
            let issuer = &self.issuers[seen.issuer];
            let key = issuer.key(seen.kid.as_deref()).await.map_err(key_error)?;
            if key.jwk == seen.jwk && seen.in_time(now, self.leeway_s) {
                return self.accept(issuer, &seen.claims, purpose_header);
            }
        }
        let jose = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid("the access token is not a signed JWT with an accepted algorithm")
        })?;
        if !self.algorithms.contains(&jose.alg) {
            return Err(invalid(format!(
                "the token's algorithm {:?} is not accepted",
                jose.alg
            )));
        }
        let claimed_issuer = unverified_issuer(token)?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.config.issuer == claimed_issuer)
            .ok_or_else(|| invalid("the token's issuer is not trusted here"))?;
        let key = issuer.key(jose.kid.as_deref()).await.map_err(key_error)?;
        // A key that declares its algorithm is used with that one only.
        if key
            .algorithm()
            .is_some_and(|a| a != format!("{:?}", jose.alg))
        {
            return Err(invalid("the token's algorithm does not match its key"));
        }
        let mut validation = Validation::new(jose.alg);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway_s;
        let claims =
            jsonwebtoken::decode::<Value>(token, &key.decoding().map_err(key_error)?, &validation)
                .map_err(|e| invalid(rejection(e.kind())))?
                .claims;
        let principal = self.accept(issuer, &claims, purpose_header)?;
        let verified = Verified {
            issuer: index,
            kid: jose.kid,
            jwk: key.jwk,
            claims,
        };
        self.verified.insert(token, verified, now, self.leeway_s);
        Ok(principal)
    }

    /// The principal a verified token's claims name, if the facade accepts them.
    fn accept(
        &self,
        issuer: &TrustedIssuer,
        claims: &Value,
        purpose_header: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if claims.get(DEV_CLAIM).is_some() && !self.dev_mode {
            return Err(invalid(
                "development tokens are accepted only by a facade in development mode",
            ));
        }
        if !issuer.config.acr_values.is_empty() {
            let acr = claims.get("acr").and_then(Value::as_str);
            if !acr.is_some_and(|a| issuer.config.acr_values.iter().any(|v| v == a)) {
                return Err(invalid(
                    "the token's authentication assurance level (acr) is missing or not accepted",
                ));
            }
        }
        // Page links are bound to who holds the token: it must say who that is.
        let named = ["sub", "client_id"].iter().any(|c| {
            claims
                .get(*c)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        });
        if !named {
            return Err(invalid("the token names no subject (sub or client_id)"));
        }
        Ok(self.principal(&issuer.config.issuer, claims, purpose_header))
    }

    fn principal(&self, issuer: &str, claims: &Value, purpose_header: Option<&str>) -> Principal {
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let scope = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        // Any `patient` claim limits the token; one that is not an NHS number (or not
        // text at all) limits it to nobody.
        let patient_claim = claims.get("patient").filter(|p| !p.is_null());
        let patient = patient_claim
            .and_then(Value::as_str)
            .and_then(|p| NhsNumber::parse(p.trim_start_matches("Patient/")).ok());
        let roles = roles_from_claims(claims, &self.roles);
        let purpose_claim = text("purpose_of_use");
        // An empty header says nothing; any other value must be a purpose known here.
        let purpose_header = purpose_header.filter(|p| !p.trim().is_empty());
        let asked: Vec<Option<PurposeOfUse>> = [purpose_header, purpose_claim.as_deref()]
            .into_iter()
            .flatten()
            .map(PurposeOfUse::parse)
            .collect();
        let unknown_purpose = asked.iter().any(Option::is_none);
        let emergency = asked.contains(&Some(PurposeOfUse::Emergency));
        let audit_export = principal_client(claims)
            .is_some_and(|client| self.audit_export_clients.iter().any(|c| *c == client));
        Principal {
            issuer: issuer.to_string(),
            subject: text("sub")
                .or_else(|| text("client_id"))
                .unwrap_or_default(),
            name: text("name"),
            user_id: text("uid"),
            client_id: text("client_id").or_else(|| text("azp")),
            token_id: text("jti"),
            scopes: Scopes::parse(&scope),
            unusable_patient_context: patient_claim.is_some() && patient.is_none(),
            patient,
            permissions: permissions(&roles, &self.roles, audit_export),
            roles,
            purpose: match emergency {
                true => PurposeOfUse::Emergency,
                false => PurposeOfUse::Treatment,
            },
            unknown_purpose,
        }
    }
}

/// The client a token was issued to: `client_id`, else `azp`.
fn principal_client(claims: &Value) -> Option<&str> {
    ["client_id", "azp"]
        .iter()
        .find_map(|c| claims.get(*c).and_then(Value::as_str))
        .filter(|c| !c.is_empty())
}

fn key_error(error: KeyError) -> AuthError {
    match error {
        KeyError::Unreachable => AuthError::IssuerUnavailable,
        KeyError::UnknownKey => invalid("the token's signing key is not known to its issuer"),
    }
}

fn invalid(reason: impl Into<String>) -> AuthError {
    AuthError::InvalidToken(reason.into())
}

/// The `iss` claim, read before the signature is checked only to choose whose keys
/// check it; the checked claims are read again after.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .ok_or_else(|| invalid("the access token is not a signed JWT"))?;
    payload
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| invalid("the token has no issuer"))
}

fn rejection(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet",
        ErrorKind::InvalidAudience => "the token is not meant for this server (audience)",
        ErrorKind::InvalidIssuer => "the token's issuer is not trusted here",
        ErrorKind::InvalidSignature => "the token's signature does not verify",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's algorithm does not match its key"
        }
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (exp, iss, aud)",
        _ => "the access token could not be validated",
    }
}
