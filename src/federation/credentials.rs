//! What the facade presents to a partner: nothing, a static bearer secret, or an
//! OAuth2 client-credentials token (client secret or `private_key_jwt`, as SMART
//! Backend Services), cached and renewed before it expires. The user's own token is
//! never sent on. Secrets are read once, at start, from a variable or a file.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

use super::partner::PartnerFailure;
use crate::config::{CredentialsConfig, CredentialsKind};

/// A token is renewed once this share of its lifetime has passed (at most a minute early).
const RENEW_AT: f64 = 0.8;
/// Lifetime of a `private_key_jwt` client assertion (SMART: at most five minutes).
const ASSERTION_LIFETIME_S: i64 = 300;
/// Longest a token is kept, whatever its endpoint says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A token endpoint's answer is small; a larger one is refused.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// A token endpoint must answer within this, whatever the partner's own timeout.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialsError(String);

enum ClientAuth {
    Secret(String),
    PrivateKey {
        key: EncodingKey,
        algorithm: Algorithm,
        kid: Option<String>,
    },
}

struct TokenSource {
    token_url: String,
    client_id: String,
    scope: Option<String>,
    resource: Option<String>,
    auth: ClientAuth,
    /// The current token and when to renew it; held while fetching, so concurrent
    /// requests wait for one fetch.
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

enum Kind {
    None,
    Bearer(String),
    ClientCredentials(Box<TokenSource>),
}

/// One partner's credentials, shared by every worker (one token cache per partner).
pub struct Credentials {
    kind: Kind,
    /// PEM of our client certificate and key, for mutual TLS.
    pub client_identity: Option<Vec<u8>>,
    /// PEM of extra CA certificates to trust for the partner's server.
    pub trusted_cas: Option<Vec<u8>>,
}

/// Never shows a secret: only which kind of credentials these are.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::None => "none",
            Kind::Bearer(_) => "bearer",
            Kind::ClientCredentials(_) => "client-credentials",
        };
        write!(f, "Credentials({kind})")
    }
}

fn read_secret(
    env: &Option<String>,
    file: &Option<std::path::PathBuf>,
) -> Result<String, CredentialsError> {
    let value = match (env, file) {
        (Some(name), _) => std::env::var(name)
            .map_err(|_| CredentialsError(format!("environment variable {name} is not set")))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| CredentialsError(format!("{}: {e}", path.display())))?,
        (None, None) => return Err(CredentialsError("no secret configured".into())),
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(CredentialsError("the secret is empty".into()));
    }
    Ok(value)
}

impl Credentials {
    pub fn none() -> Credentials {
        Credentials {
            kind: Kind::None,
            client_identity: None,
            trusted_cas: None,
        }
    }

    /// Reads the secrets `config` names; fails if any is missing or unusable.
    pub fn load(config: &CredentialsConfig) -> Result<Credentials, CredentialsError> {
        let client_identity = match &config.client_certificate_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| CredentialsError(format!("{}: {e}", path.display())))?;
                reqwest::Identity::from_pem(&pem).map_err(|e| {
                    CredentialsError(format!(
                        "{}: not a certificate and key: {e}",
                        path.display()
                    ))
                })?;
                Some(pem)
            }
            None => None,
        };
        let trusted_cas = match &config.ca_certificate_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| CredentialsError(format!("{}: {e}", path.display())))?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(certificates) if !certificates.is_empty() => Some(pem),
                    _ => {
                        return Err(CredentialsError(format!(
                            "{}: no CA certificate in it",
                            path.display()
                        )));
                    }
                }
            }
            None => None,
        };
        let kind = match config.kind {
            CredentialsKind::None => Kind::None,
            CredentialsKind::Bearer => {
                Kind::Bearer(read_secret(&config.token_env, &config.token_file)?)
            }
            CredentialsKind::ClientCredentials => {
                let auth = match &config.private_key_file {
                    Some(path) => {
                        let pem = std::fs::read(path)
                            .map_err(|e| CredentialsError(format!("{}: {e}", path.display())))?;
                        let (key, algorithm) = match config.private_key_alg.as_deref() {
                            Some("ES384") => (EncodingKey::from_ec_pem(&pem), Algorithm::ES384),
                            _ => (EncodingKey::from_rsa_pem(&pem), Algorithm::RS384),
                        };
                        let key = key.map_err(|e| {
                            CredentialsError(format!(
                                "{}: not a usable private key: {e}",
                                path.display()
                            ))
                        })?;
                        ClientAuth::PrivateKey {
                            key,
                            algorithm,
                            kid: config.private_key_id.clone(),
                        }
                    }
                    None => ClientAuth::Secret(read_secret(
                        &config.client_secret_env,
                        &config.client_secret_file,
                    )?),
                };
                Kind::ClientCredentials(Box::new(TokenSource {
                    token_url: config.token_url.clone().unwrap_or_default(),
                    client_id: config.client_id.clone().unwrap_or_default(),
                    scope: config.scope.clone(),
                    resource: config.resource.clone(),
                    auth,
                    cached: tokio::sync::Mutex::new(None),
                }))
            }
        };
        Ok(Credentials {
            kind,
            client_identity,
            trusted_cas,
        })
    }

    /// `request` with our credentials attached. A token that cannot be obtained is a
    /// partner failure like any other: the user sees a partial result.
    pub async fn authorize(
        &self,
        client: &Client,
        request: RequestBuilder,
    ) -> Result<RequestBuilder, PartnerFailure> {
        match &self.kind {
            Kind::None => Ok(request),
            Kind::Bearer(token) => Ok(request.bearer_auth(token)),
            Kind::ClientCredentials(source) => Ok(request.bearer_auth(source.token(client).await?)),
        }
    }

    /// The partner refused the token we hold: the next request fetches a new one.
    pub async fn forget_token(&self) {
        if let Kind::ClientCredentials(source) = &self.kind {
            *source.cached.lock().await = None;
        }
    }
}

impl TokenSource {
    async fn token(&self, client: &Client) -> Result<String, PartnerFailure> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch(client).await?;
        let early = Duration::from_secs_f64(lifetime.as_secs_f64() * (1.0 - RENEW_AT))
            .min(Duration::from_secs(60));
        *cached = Some((token.clone(), Instant::now() + lifetime - early));
        Ok(token)
    }

    async fn fetch(&self, client: &Client) -> Result<(String, Duration), PartnerFailure> {
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        form.extend(self.scope.clone().map(|s| ("scope", s)));
        form.extend(self.resource.clone().map(|r| ("resource", r)));
        let mut request = client.post(&self.token_url);
        match &self.auth {
            ClientAuth::Secret(secret) => {
                request = request.basic_auth(&self.client_id, Some(secret));
            }
            ClientAuth::PrivateKey {
                key,
                algorithm,
                kid,
            } => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", self.assertion(key, *algorithm, kid)?));
                form.push(("client_id", self.client_id.clone()));
            }
        }
        let response = request
            .form(&form)
            .timeout(TOKEN_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(reason = %e, "partner token endpoint unreachable");
                PartnerFailure::CredentialsRefused
            })?;
        if !response.status().is_success() {
            tracing::warn!(
                status = response.status().as_u16(),
                "partner token endpoint refused"
            );
            return Err(PartnerFailure::CredentialsRefused);
        }
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_TOKEN_RESPONSE_BYTES)
        {
            return Err(PartnerFailure::CredentialsRefused);
        }
        let body = response
            .bytes()
            .await
            .map_err(|_| PartnerFailure::CredentialsRefused)?;
        if body.len() > MAX_TOKEN_RESPONSE_BYTES {
            return Err(PartnerFailure::CredentialsRefused);
        }
        let answer: Value = super::exchange::parse_bounded_json(&body)
            .map_err(|_| PartnerFailure::CredentialsRefused)?;
        let token = answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or(PartnerFailure::CredentialsRefused)?;
        let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(300).max(1));
        Ok((token.to_string(), lifetime.min(MAX_TOKEN_LIFETIME)))
    }

    /// A signed client assertion for the token endpoint (RFC 7523, SMART Backend Services).
    fn assertion(
        &self,
        key: &EncodingKey,
        algorithm: Algorithm,
        kid: &Option<String>,
    ) -> Result<String, PartnerFailure> {
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(algorithm);
        header.kid = kid.clone();
        let claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, key).map_err(|_| PartnerFailure::CredentialsRefused)
    }
}
