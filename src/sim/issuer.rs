//! A development OpenID Connect issuer on loopback: an ephemeral ES256 signing key,
//! discovery, JWKS and a token endpoint that mints access tokens for named profiles
//! (clinician, SMART app in one patient's context, privacy officer, backend service).
//! Used by `demo` and the tests. Its tokens carry the `shcr_dev` claim, which a facade
//! refuses unless it runs in development mode, and its key dies with the process.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authorization::{self, Authorizations, PickablePatient};
use crate::auth::DEV_CLAIM;

/// Who a development token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// A hospital clinician, CIS2-style role R8000 selected, `user/*.rs`.
    Clinician,
    /// A SMART app launched in one patient's context, `patient/*.rs`.
    SmartApp,
    /// A privacy officer, role R0001: objections (Consent) and the audit trail.
    PrivacyOfficer,
    /// A nurse, role R8001 selected: clinical records, no emergency access.
    Nurse,
    /// A backend service, `system/*.rs`, no user.
    Backend,
}

/// What a minted token says, beyond the profile's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    pub profile: Option<Profile>,
    /// NHS number in launch context (SMART app profile).
    pub patient: Option<String>,
    /// Space-separated scopes instead of the profile's.
    pub scope: Option<String>,
    /// Lifetime in seconds (default 3600).
    pub lifetime_s: Option<i64>,
}

pub(in crate::sim) struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    /// The public key as a JWK.
    jwk: Value,
}

pub(in crate::sim) struct IssuerState {
    pub(in crate::sim) issuer: String,
    /// Every key published; the last one signs. Rotation appends.
    keys: std::sync::RwLock<Vec<Arc<SigningKey>>>,
    pub(in crate::sim) audience: std::sync::RwLock<String>,
    /// SMART App Launch: pending sign-ins, codes, refresh tokens, launches.
    pub(in crate::sim) authorizations: std::sync::Mutex<Authorizations>,
}

/// A running development issuer.
pub struct DevIssuer {
    pub issuer: String,
    state: Arc<IssuerState>,
    handle: ServerHandle,
}

impl DevIssuer {
    /// Starts on `listener` (loopback); tokens are for `audience` (a facade base URL,
    /// settable later with `set_audience` when the facade's port is not yet known).
    pub fn start(listener: TcpListener, audience: &str) -> std::io::Result<DevIssuer> {
        let issuer = format!("http://{}/dev-issuer", listener.local_addr()?);
        let state = Arc::new(IssuerState {
            issuer: issuer.clone(),
            keys: std::sync::RwLock::new(vec![Arc::new(SigningKey::generate()?)]),
            audience: std::sync::RwLock::new(audience.to_string()),
            authorizations: std::sync::Mutex::new(Authorizations::default()),
        });
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .service(
                    web::scope("/dev-issuer")
                        .route(
                            "/.well-known/openid-configuration",
                            web::get().to(discovery),
                        )
                        .route("/jwks", web::get().to(jwks))
                        .configure(authorization::routes),
                )
                .configure(authorization::pages)
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(DevIssuer {
            issuer,
            state,
            handle,
        })
    }

    /// The patients the sign-in and launcher pages offer.
    pub fn set_patients(&self, patients: Vec<PickablePatient>) {
        if let Ok(mut authorizations) = self.state.authorizations.lock() {
            authorizations.patients = patients;
        }
    }

    /// The EHR launcher page.
    pub fn launcher_url(&self) -> String {
        format!(
            "{}launcher",
            self.state.app_url().trim_end_matches("apps/record/")
        )
    }

    /// The shipped SMART app (its `launch.html` starts a standalone launch).
    pub fn app_url(&self) -> String {
        self.state.app_url()
    }

    pub fn set_audience(&self, audience: &str) {
        if let Ok(mut slot) = self.state.audience.write() {
            *slot = audience.to_string();
        }
    }

    /// A token for `request`, signed with this issuer's key.
    pub fn token(&self, request: &TokenRequest) -> String {
        self.state.mint(request)
    }

    /// The claims a token for `request` carries, to be changed and signed with `sign`
    /// (tests make expired, foreign and malformed tokens this way).
    pub fn claims(&self, request: &TokenRequest) -> Value {
        self.state.claims(request)
    }

    /// Signs any claims with this issuer's current key and `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.state.signer().sign(claims)
    }

    /// The key id tokens name in their header.
    pub fn kid(&self) -> String {
        self.state.signer().kid.clone()
    }

    /// Stops publishing the oldest key (as after a compromise); the others stay.
    pub fn withdraw_oldest_key(&self) {
        if let Ok(mut keys) = self.state.keys.write()
            && keys.len() > 1
        {
            keys.remove(0);
        }
    }

    /// Publishes a new signing key beside the old ones and signs with it from now on.
    pub fn rotate_key(&self) -> std::io::Result<()> {
        let key = Arc::new(SigningKey::generate()?);
        self.state
            .keys
            .write()
            .map_err(|_| std::io::Error::other("key lock"))?
            .push(key);
        Ok(())
    }

    /// Replaces the signing key with a new one published under the same `kid` (an
    /// issuer that re-keys without renaming): tokens signed before no longer verify.
    pub fn replace_key_keeping_kid(&self) -> std::io::Result<()> {
        let mut keys = self
            .state
            .keys
            .write()
            .map_err(|_| std::io::Error::other("key lock"))?;
        let kid = keys
            .last()
            .map(|k| k.kid.clone())
            .ok_or_else(|| std::io::Error::other("no key"))?;
        let mut key = SigningKey::generate()?;
        key.jwk["kid"] = json!(kid);
        key.kid = kid;
        keys.pop();
        keys.push(Arc::new(key));
        Ok(())
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl SigningKey {
    fn generate() -> std::io::Result<SigningKey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| std::io::Error::other("cannot generate a signing key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| std::io::Error::other("cannot read the signing key"))?;
        // An uncompressed P-256 point: 0x04, then x and y, 32 bytes each.
        let point = pair.public_key().as_ref();
        let kid = format!("dev-{}", uuid::Uuid::new_v4().simple());
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Ok(SigningKey {
            kid,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        })
    }

    pub(in crate::sim) fn sign(&self, claims: &Value) -> String {
        self.sign_as(claims, "at+jwt")
    }

    /// An OpenID Connect ID token.
    pub(in crate::sim) fn sign_id_token(&self, claims: &Value) -> String {
        self.sign_as(claims, "JWT")
    }

    fn sign_as(&self, claims: &Value, typ: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.into());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("ES256 signing")
    }
}

impl IssuerState {
    pub(in crate::sim) fn signer(&self) -> Arc<SigningKey> {
        let keys = self.keys.read().expect("key lock");
        keys.last().expect("at least one key").clone()
    }

    pub(in crate::sim) fn claims(&self, request: &TokenRequest) -> Value {
        let now = chrono::Utc::now().timestamp();
        let profile = request.profile.unwrap_or(Profile::Clinician);
        let audience = self.audience.read().map(|a| a.clone()).unwrap_or_default();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + request.lifetime_s.unwrap_or(3600),
            "jti": uuid::Uuid::new_v4().to_string(),
            "client_id": "shcr-dev-client",
            "acr": "AAL3_ANY",
            DEV_CLAIM: true,
        });
        let (subject, scope) = match profile {
            Profile::Clinician => ("dev-clinician", "openid fhirUser user/*.rs"),
            Profile::Nurse => ("dev-nurse", "openid fhirUser user/*.rs"),
            Profile::SmartApp => ("dev-clinician", "openid fhirUser launch patient/*.rs"),
            Profile::PrivacyOfficer => (
                "dev-privacy-officer",
                "openid fhirUser user/Consent.cruds user/AuditEvent.rs",
            ),
            Profile::Backend => ("shcr-dev-client", "system/*.rs"),
        };
        claims["sub"] = json!(subject);
        claims["scope"] = json!(request.scope.as_deref().unwrap_or(scope));
        match profile {
            Profile::Clinician | Profile::SmartApp => {
                claims["name"] = json!("Dr Dev Clinician");
                claims["uid"] = json!("555000111222");
                claims["selected_roleid"] = json!("555021935107");
                claims["nhsid_nrbac_roles"] = json!([
                    {"person_roleid": "555021935107", "org_code": "RX1",
                     "role_code": "S8000:G8000:R8000", "role_name": "Clinical Practitioner Access Role"},
                    {"person_roleid": "555021936108", "org_code": "RX1",
                     "role_code": "S8002:G8003:R8001", "role_name": "Nurse Access Role"}
                ]);
            }
            Profile::Nurse => {
                claims["name"] = json!("Nurse Dev Nurse");
                claims["uid"] = json!("555000111444");
                claims["selected_roleid"] = json!("555021936108");
                claims["nhsid_nrbac_roles"] = json!([
                    {"person_roleid": "555021936108", "org_code": "RX1",
                     "role_code": "S8002:G8003:R8001", "role_name": "Nurse Access Role"}
                ]);
            }
            Profile::PrivacyOfficer => {
                claims["name"] = json!("Dev Privacy Officer");
                claims["uid"] = json!("555000111333");
                claims["selected_roleid"] = json!("555021937109");
                claims["nhsid_nrbac_roles"] = json!([
                    {"person_roleid": "555021937109", "org_code": "RX1",
                     "role_code": "S0080:G0450:R0001", "role_name": "Privacy Officer"}
                ]);
            }
            Profile::Backend => {}
        }
        if profile == Profile::SmartApp {
            claims["patient"] = json!(request.patient.as_deref().unwrap_or("9990000018"));
            claims["fhirUser"] = json!("Practitioner/dev-clinician");
        }
        claims
    }

    fn mint(&self, request: &TokenRequest) -> String {
        self.signer().sign(&self.claims(request))
    }
}

async fn discovery(state: web::Data<IssuerState>) -> HttpResponse {
    let issuer = &state.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access", "patient/*.rs", "user/*.rs", "user/Consent.cruds", "user/AuditEvent.rs"],
    }))
}

async fn jwks(state: web::Data<IssuerState>) -> HttpResponse {
    let keys: Vec<Value> = match state.keys.read() {
        Ok(keys) => keys.iter().map(|k| k.jwk.clone()).collect(),
        Err(_) => Vec::new(),
    };
    HttpResponse::Ok().json(json!({ "keys": keys }))
}

/// The development shortcut: `POST /token` with a form of `profile`, and optionally
/// `patient`, `scope` and `lifetime_s`, and no `grant_type`. No client
/// authentication: this issuer is for development only.
pub(in crate::sim) fn development_token(
    state: &IssuerState,
    form: &std::collections::HashMap<String, String>,
) -> HttpResponse {
    let request = TokenRequest {
        profile: form
            .get("profile")
            .and_then(|p| serde_json::from_value(json!(p)).ok()),
        patient: form.get("patient").cloned(),
        scope: form.get("scope").cloned(),
        lifetime_s: form.get("lifetime_s").and_then(|s| s.parse().ok()),
    };
    if request.profile.is_none() {
        return HttpResponse::BadRequest()
            .json(json!({"error": "invalid_request", "error_description": "unknown profile"}));
    }
    let claims = state.claims(&request);
    HttpResponse::Ok().json(json!({
        "access_token": state.signer().sign(&claims),
        "token_type": "Bearer",
        "expires_in": claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        "scope": claims["scope"],
        "patient": claims.get("patient"),
    }))
}
