//! A trusted OpenID Connect issuer: its discovery document and signing keys, fetched
//! through `openidconnect` when first needed, kept, and fetched again when a token
//! names a key not seen yet (key rotation), at most once per interval, and when they
//! are older than their maximum age (so a key the issuer withdraws stops working).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use openidconnect::IssuerUrl;
use openidconnect::core::CoreProviderMetadata;
use serde_json::Value;

use crate::config::IssuerConfig;

/// Discovery and JWKS answers must come quickly: a request is waiting.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the identity provider cannot be reached")]
    Unreachable,
    #[error("the token's signing key is not one of the issuer's keys")]
    UnknownKey,
}

/// What was fetched from the issuer.
struct Fetched {
    /// The discovery document as published.
    metadata: Value,
    keys: Vec<Jwk>,
    fetched_at: Instant,
}

pub struct TrustedIssuer {
    pub config: IssuerConfig,
    fetched: RwLock<Option<Arc<Fetched>>>,
    /// Held while fetching, so that concurrent requests wait for one fetch; holds
    /// when the last fetch started, to rate-limit refetches on unknown `kid`s.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    refetch_interval: Duration,
    max_age: Duration,
}

impl TrustedIssuer {
    pub fn new(
        config: IssuerConfig,
        refetch_interval: Duration,
        max_age: Duration,
    ) -> TrustedIssuer {
        TrustedIssuer {
            config,
            fetched: RwLock::new(None),
            last_fetch: tokio::sync::Mutex::new(None),
            refetch_interval,
            max_age,
        }
    }

    /// The key a token signed with `kid` (or the only key, if `kid` is absent) must
    /// verify against.
    pub async fn key(&self, kid: Option<&str>) -> Result<IssuerKey, KeyError> {
        let fresh = |f: &Fetched| f.fetched_at.elapsed() < self.max_age;
        let cached = self.cached();
        match cached {
            Some(f) if fresh(&f) => {
                if let Some(found) = pick(&f.keys, kid) {
                    return Ok(found);
                }
                // An unknown key: perhaps a rotation, at most once per interval.
                let fetched = self.refresh(self.refetch_interval).await?;
                pick(&fetched.keys, kid).ok_or(KeyError::UnknownKey)
            }
            _ => {
                // None yet, or too old to trust: fetched now, or nothing is verified.
                let fetched = self.refresh(Duration::from_secs(1)).await?;
                if !fresh(&fetched) {
                    return Err(KeyError::Unreachable);
                }
                pick(&fetched.keys, kid).ok_or(KeyError::UnknownKey)
            }
        }
    }

    /// The issuer's discovery document (fetched if not yet).
    pub async fn metadata(&self) -> Result<Value, KeyError> {
        match self.cached() {
            Some(fetched) => Ok(fetched.metadata.clone()),
            None => Ok(self.refresh(Duration::from_secs(1)).await?.metadata.clone()),
        }
    }

    fn cached(&self) -> Option<Arc<Fetched>> {
        self.fetched.read().ok().and_then(|f| f.clone())
    }

    /// Fetches again unless a fetch started within `least_interval`; what another
    /// request fetched meanwhile is used as is.
    async fn refresh(&self, least_interval: Duration) -> Result<Arc<Fetched>, KeyError> {
        let before = self.cached();
        let mut last = self.last_fetch.lock().await;
        let current = self.cached();
        if let Some(current) = &current {
            let fetched_meanwhile = before.as_ref().is_none_or(|b| !Arc::ptr_eq(b, current));
            if fetched_meanwhile {
                return Ok(current.clone());
            }
        }
        if last.is_some_and(|t| t.elapsed() < least_interval) {
            return match current {
                Some(current) => Ok(current),
                None => Err(KeyError::Unreachable),
            };
        }
        *last = Some(Instant::now());
        let issuer = self.config.issuer.clone();
        let fetched = Arc::new(discover(&issuer).await.map_err(|reason| {
            tracing::warn!(issuer, reason, "identity provider discovery failed");
            KeyError::Unreachable
        })?);
        if let Ok(mut slot) = self.fetched.write() {
            *slot = Some(fetched.clone());
        }
        tracing::info!(
            issuer,
            keys = fetched.keys.len(),
            "identity provider keys fetched"
        );
        Ok(fetched)
    }
}

/// One of the issuer's signing keys, as published.
pub struct IssuerKey {
    pub jwk: Jwk,
}

impl IssuerKey {
    /// The key's own algorithm, if it declares one.
    pub fn algorithm(&self) -> Option<String> {
        self.jwk.common.key_algorithm.map(|a| a.to_string())
    }

    /// The key a signature is checked with (made only when one is checked).
    pub fn decoding(&self) -> Result<DecodingKey, KeyError> {
        DecodingKey::from_jwk(&self.jwk).map_err(|_| KeyError::UnknownKey)
    }
}

fn pick(keys: &[Jwk], kid: Option<&str>) -> Option<IssuerKey> {
    let jwk = match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))?,
        None if keys.len() == 1 => &keys[0],
        None => return None,
    };
    Some(IssuerKey { jwk: jwk.clone() })
}

/// Discovery document and signing keys of `issuer`.
async fn discover(issuer: &str) -> Result<Fetched, String> {
    // No redirects: the keys come from where the configuration says, nowhere else.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let issuer_url = IssuerUrl::new(issuer.to_string()).map_err(|e| e.to_string())?;
    let metadata = CoreProviderMetadata::discover_async(issuer_url, &client)
        .await
        .map_err(|e| format!("{e}"))?;
    let keys = metadata
        .jwks()
        .keys()
        .iter()
        .filter_map(|key| serde_json::to_value(key).ok())
        // Encryption keys and keys of kinds we do not verify with are left out.
        .filter(|key| {
            key.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
        .collect();
    // As published, with what OpenID Connect's core fields leave out (PKCE methods,
    // revocation and introspection endpoints), for SMART discovery to repeat.
    let mut published = serde_json::to_value(&metadata).map_err(|e| e.to_string())?;
    let document = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    if let Ok(response) = client.get(&document).send().await
        && response.status().is_success()
        && let Ok(body) = response.bytes().await
        && let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(&body)
        && let Value::Object(core) = &mut published
    {
        for (field, value) in raw {
            core.entry(field).or_insert(value);
        }
    }
    let metadata = published;
    Ok(Fetched {
        metadata,
        keys,
        fetched_at: Instant::now(),
    })
}
