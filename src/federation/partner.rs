//! One partner, as the facade talks to it: a FHIR server (searches with paging,
//! reads), or a legacy system read through its mapping (see `legacy`).
//!
//! Partners are untrusted: bodies are size-capped, must be JSON of the expected shape,
//! and a `next` link is followed only if it stays under the configured base URL.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use serde_json::Value;
use url::Url;

use super::credentials::Credentials;
use super::report::Notice;
use super::source::Source;
use crate::config::PartnerConfig;
use crate::fhir::ResourceType;

/// The header that lists the Shared Care Records a request has passed through, so
/// that two facades configured as each other's partners never loop.
pub const HOP_HEADER: &str = "x-shcr-hop";

/// A record's id as it may travel in a hop header (a deployment id or base URL);
/// anything else a client put there is dropped, not passed on.
pub fn is_deployment_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:/".contains(&b))
}

/// A configured partner.
#[derive(Debug)]
pub struct Partner {
    pub id: String,
    pub name: String,
    pub ods_code: String,
    pub base_url: Url,
    pub resource_types: Vec<ResourceType>,
    pub timeout: Duration,
    /// What kind of system it is, and how its records are asked for.
    pub source: Source,
    credentials: Arc<Credentials>,
    /// This worker's connection pool to the partner (with our client certificate, if any).
    client: Client,
    /// This Shared Care Record's own id, added to the hop header of every request.
    deployment_id: String,
}

impl Partner {
    pub fn from_config(
        config: &PartnerConfig,
        credentials: Arc<Credentials>,
        source: Source,
        deployment_id: &str,
    ) -> Partner {
        let mut base_url =
            Url::parse(&config.base_url).expect("partner base_url validated at start");
        if !base_url.path().ends_with('/') {
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        Partner {
            id: config.id.clone(),
            name: config.name.clone(),
            ods_code: config.ods_code.clone(),
            base_url,
            resource_types: config.resource_types.clone(),
            timeout: config.timeout(),
            source,
            client: http_client(&credentials),
            credentials,
            deployment_id: deployment_id.to_string(),
        }
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    pub(super) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub(super) fn deployment_id(&self) -> &str {
        &self.deployment_id
    }

    pub fn serves(&self, resource_type: ResourceType) -> bool {
        resource_type.is_patient() || self.resource_types.contains(&resource_type)
    }

    /// The organisation as clients may see it: name and ODS code, never a URL.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.ods_code)
    }

    pub(super) fn url(&self, path: &str, query: &[(String, String)]) -> Url {
        let mut url = self
            .base_url
            .join(path)
            .expect("resource paths are relative");
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Is `link` under this partner's base URL (same scheme, host, port and path prefix)?
    pub(super) fn owns(&self, link: &Url) -> bool {
        link.scheme() == self.base_url.scheme()
            && link.host_str() == self.base_url.host_str()
            && link.port_or_known_default() == self.base_url.port_or_known_default()
            && link.path().starts_with(self.base_url.path())
            && link.username().is_empty()
    }
}

/// A connection pool for one partner: no redirects followed, our client certificate
/// presented and the partner's CA trusted if configured.
fn http_client(credentials: &Credentials) -> Client {
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30));
    if let Some(identity) = credentials
        .client_identity
        .as_deref()
        .and_then(|pem| reqwest::Identity::from_pem(pem).ok())
    {
        builder = builder.identity(identity);
    }
    let cas = credentials
        .trusted_cas
        .as_deref()
        .and_then(|pem| reqwest::Certificate::from_pem_bundle(pem).ok())
        .unwrap_or_default();
    for ca in cas {
        builder = builder.add_root_certificate(ca);
    }
    builder.build().expect("HTTP client builds")
}

/// What went wrong talking to a partner.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PartnerFailure {
    #[error("did not answer in time")]
    TimedOut,
    #[error("could not be reached")]
    Unreachable,
    #[error("answered with HTTP {0}")]
    HttpStatus(u16),
    #[error("sent a response that is not {0}")]
    Malformed(&'static str),
    #[error("sent a response larger than the facade accepts")]
    TooLarge,
    #[error("did not give the facade an access token")]
    CredentialsRefused,
    #[error("is a Shared Care Record this request has already passed through")]
    LoopRefused,
    /// The patient dissented from sharing at the practice (GP Connect
    /// `NO_PATIENT_CONSENT`): not a fault, and not an objection recorded here.
    #[error("holds a record the patient has asked not to be shared beyond it")]
    PatientDissent,
    /// The partner's protocol must name the requesting professional and their
    /// organisation, and this request (a backend service's) names none.
    #[error(
        "shares its record only with a named professional acting for a named organisation, which this request does not give"
    )]
    UserRequired,
}

/// Limits applied to every partner exchange.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeLimits {
    pub page_size: usize,
    pub max_pages: usize,
    pub max_response_bytes: usize,
}

/// All the resources a search gathered from a partner.
#[derive(Debug, Default)]
pub struct Pages {
    pub resources: Vec<Value>,
    /// More pages were on offer than the facade follows, or a next link was refused.
    pub truncated: bool,
    /// Records that did not convert to FHIR R4 (legacy, GP Connect), left out.
    pub unmapped: usize,
    /// What the partner said of its answer that the professional should know.
    pub notices: Vec<Notice>,
    /// For a search asked in the answer's order: how the partner's answer stands.
    pub ordered: Option<super::ordered::Ordered>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(base: &str) -> Partner {
        Partner::from_config(
            &PartnerConfig {
                id: "gp".into(),
                name: "GP".into(),
                ods_code: "A81001".into(),
                kind: crate::config::PartnerKind::Fhir,
                base_url: base.into(),
                resource_types: vec![ResourceType::named("Observation")],
                timeout_ms: 100,
                mapping: None,
                credentials: Default::default(),
                gp_connect: None,
            },
            std::sync::Arc::new(crate::federation::credentials::Credentials::none()),
            crate::federation::source::Source::Fhir,
            "test",
        )
    }

    #[test]
    fn next_links_must_stay_under_the_partner_base() {
        let p = partner("http://127.0.0.1:9001/fhir");
        let ok = |s: &str| p.owns(&Url::parse(s).unwrap());
        assert!(ok("http://127.0.0.1:9001/fhir/Observation?page=2"));
        assert!(!ok("http://127.0.0.1:9002/fhir/Observation"));
        assert!(!ok("http://127.0.0.1.evil.example:9001/fhir/Observation"));
        assert!(!ok("https://127.0.0.1:9001/fhir/Observation"));
        assert!(!ok("http://127.0.0.1:9001/admin"));
        assert!(!ok("http://127.0.0.1:9001/fhirx/Observation"));
        assert!(!ok("http://user@127.0.0.1:9001/fhir/Observation"));
    }
}
