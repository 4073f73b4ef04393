//! Typed configuration: a TOML file, overridden by `SHCR_*` environment variables
//! (`__` separates levels: `SHCR_SERVER__PORT=9090`), validated before anything starts.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::fhir::ResourceType;
use crate::policy::categories::SensitiveCategory;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub search: SearchConfig,
    #[serde(default)]
    pub paging: PagingConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Id of the partner whose demographics win when partners disagree.
    pub demographics_authority: String,
    pub partners: Vec<PartnerConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// The FHIR base clients see (for fullUrl and links); defaults to http://host:port/fhir.
    pub public_base_url: Option<String>,
    /// HTTP worker threads; 0 means two per CPU (see `lib.rs`).
    pub workers: usize,
    /// Largest request body accepted (POST _search), in bytes.
    pub max_body_bytes: usize,
    /// Names this Shared Care Record in the hop header when it asks partners (so two
    /// records joined both ways never loop); shared by its instances. Defaults to
    /// `public_base_url`, else one made up at start.
    pub deployment_id: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            public_base_url: None,
            workers: 0,
            max_body_bytes: 64 * 1024,
            deployment_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    pub default_count: usize,
    pub max_count: usize,
    /// One deadline for all partner calls a request makes.
    pub deadline_ms: u64,
    /// Partner `next` pages followed per partner and type.
    pub max_partner_pages: usize,
    /// `_count` asked of partners.
    pub partner_page_size: usize,
    pub max_partner_response_bytes: usize,
    /// How long an NHS number's partner-local ids are remembered.
    pub identity_cache_ttl_s: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            default_count: 50,
            max_count: 200,
            deadline_ms: 5_000,
            max_partner_pages: 10,
            partner_page_size: 100,
            max_partner_response_bytes: 16 * 1024 * 1024,
            identity_cache_ttl_s: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagingConfig {
    /// How long a next/previous link works.
    pub token_ttl_s: u64,
    /// Base64 of 32 bytes. Instances behind one load balancer must share it; when
    /// absent a random key is made at start and links work on this instance only.
    pub key: Option<String>,
}

impl Default for PagingConfig {
    fn default() -> Self {
        PagingConfig {
            token_ttl_s: 900,
            key: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (or a plain path) for the embedded default; `postgres://...`
    /// for a database several instances share.
    pub url: String,
    pub pool_size: u32,
    /// How long a request waits for a connection before answering 503.
    pub connect_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://shcr-facade.db".into(),
            pool_size: 8,
            connect_timeout_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Categories never shared (the Information Sharing Agreement's exclusions).
    pub excluded_categories: Vec<SensitiveCategory>,
    /// Partner sensitivity labels (v3-ActCode codes in meta.security) and the
    /// category each stands for.
    pub sensitivity_labels: HashMap<String, SensitiveCategory>,
    /// Age from which a child may object for themself (younger: a parent or guardian).
    pub competence_age: u32,
    pub cohort: CohortConfig,
    /// How many links deep a record's references are followed to judge it; a record
    /// whose links go deeper is withheld as not judged.
    pub link_depth: usize,
    /// Code lists beyond the bundled ones (files relative to the configuration).
    pub code_lists: Vec<CodeListConfig>,
    /// An RF2 relationship snapshot: when given, every SNOMED CT concept listed also
    /// matches its active is-a descendants.
    pub snomed_relationships: Option<RelativePathBuf>,
    /// Whether a change to an objection (Consent PUT) must name the version it
    /// changes with `If-Match` (428 without); a stale one is 412 either way.
    pub objection_updates_need_if_match: bool,
}

/// A deployer's code list: a file of codes that reveal one category.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeListConfig {
    pub category: SensitiveCategory,
    /// An RF2 simple refset (as NHS TRUD distributes it), a FHIR R4 ValueSet (JSON)
    /// or CSV `system,code`, relative to the configuration file.
    pub file: RelativePathBuf,
}

impl CodeListConfig {
    pub fn path(&self) -> PathBuf {
        self.file.relative()
    }
}

impl PolicyConfig {
    /// The relationship file, resolved against the configuration file.
    pub fn relationships_path(&self) -> Option<PathBuf> {
        self.snomed_relationships
            .as_ref()
            .map(RelativePathBuf::relative)
    }
}

/// Which patients the record covers; the defaults (0, empty) cover everyone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CohortConfig {
    pub minimum_age_years: u32,
    /// ODS codes of GP practices whose registered patients are covered.
    pub registered_practices: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            excluded_categories: SensitiveCategory::ALL.to_vec(),
            sensitivity_labels: HashMap::from([
                ("STD".to_string(), SensitiveCategory::SexualHealth),
                ("SEX".to_string(), SensitiveCategory::SexualHealth),
            ]),
            competence_age: 13,
            cohort: CohortConfig::default(),
            link_depth: 3,
            code_lists: Vec::new(),
            snomed_relationships: None,
            objection_updates_need_if_match: false,
        }
    }
}

/// Who may call the facade: trusted token issuers and how their claims are read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The `aud` access tokens must carry; defaults to the facade's FHIR base URL.
    pub audience: Option<String>,
    /// Signature algorithms accepted (asymmetric only: `none` and HS* are refused).
    pub algorithms: Vec<String>,
    /// Leeway on `exp` and `nbf`.
    pub clock_skew_s: u64,
    /// Least time between two JWKS fetches caused by an unknown `kid`.
    pub jwks_refetch_interval_s: u64,
    /// Keys older than this are fetched again before use (a withdrawn key stops working).
    pub jwks_max_age_s: u64,
    pub issuers: Vec<IssuerConfig>,
    pub roles: RolesConfig,
    pub emergency: EmergencyConfig,
    /// Browser origins allowed by CORS on the FHIR endpoints; `*` for any.
    pub cors_allowed_origins: Vec<String>,
    /// Client ids of backend services (no user roles) that may read the audit trail,
    /// e.g. a SIEM export. Read only: never the objection register.
    pub audit_export_clients: Vec<String>,
    /// Accept development tokens (`shcr-facade demo` and the tests set this; no
    /// configuration file or environment variable can).
    #[serde(skip)]
    pub dev_mode: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            audience: None,
            algorithms: [
                "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
            ]
            .map(String::from)
            .to_vec(),
            clock_skew_s: 60,
            jwks_refetch_interval_s: 30,
            jwks_max_age_s: 3600,
            issuers: Vec::new(),
            roles: RolesConfig::default(),
            emergency: EmergencyConfig::default(),
            cors_allowed_origins: vec!["*".into()],
            audit_export_clients: Vec::new(),
            dev_mode: false,
        }
    }
}

/// One trusted OpenID Connect issuer (discovery at `{issuer}/.well-known/openid-configuration`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    pub issuer: String,
    /// Authentication assurance levels accepted; when set, a token without one of
    /// them (or without `acr`) is refused.
    #[serde(default)]
    pub acr_values: Vec<String>,
}

/// How roles are read from claims, and what each role may do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolesConfig {
    /// Claim with plain role names, used when the token has no CIS2 `nhsid_nrbac_roles`.
    pub claim: String,
    /// Claim with the organisation's ODS code, with the plain roles claim.
    pub organisation_claim: String,
    /// Roles that may view clinical records.
    pub clinical: Vec<String>,
    /// Roles that may record and change objections (and read the audit trail).
    pub privacy_officer: Vec<String>,
    /// Roles that may see items labelled confidentiality `R` (restricted).
    pub restricted: Vec<String>,
    /// Roles that may ask for emergency access ("break glass").
    pub emergency: Vec<String>,
}

impl Default for RolesConfig {
    fn default() -> Self {
        let list = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect();
        RolesConfig {
            claim: "roles".into(),
            organisation_claim: "org".into(),
            clinical: list(&["R8000", "R8001", "R8003", "clinician"]),
            privacy_officer: list(&["R0001", "R5105", "privacy-officer"]),
            restricted: Vec::new(),
            emergency: list(&["R8000", "clinician"]),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmergencyConfig {
    /// Whether emergency access sees past a patient's objection (a legal exception
    /// some agreements make; default: it does not).
    pub sees_past_objection: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartnerKind {
    /// A FHIR R4 server.
    Fhir,
    /// A system with its own JSON API, read through a mapping file and Liquid templates.
    Legacy,
    /// A GP practice answering GP Connect Access Record: Structured (FHIR STU3).
    #[serde(rename = "gp-connect")]
    GpConnect,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Short id, part of every facade id: `[a-z][a-z0-9-]{0,15}`.
    pub id: String,
    pub name: String,
    pub ods_code: String,
    pub kind: PartnerKind,
    pub base_url: String,
    pub resource_types: Vec<ResourceType>,
    pub timeout_ms: u64,
    /// `legacy` partners: the mapping file (requests and templates), relative to the
    /// configuration file that names it.
    #[serde(default)]
    pub mapping: Option<RelativePathBuf>,
    /// How the facade authenticates to the partner (never with the user's token).
    #[serde(default)]
    pub credentials: CredentialsConfig,
    /// `gp-connect` partners: the Spine addressing of the practice.
    #[serde(default)]
    pub gp_connect: Option<GpConnectConfig>,
}

/// How a GP Connect practice is addressed through Spine. The practice's endpoint
/// is the partner's `base_url` (its service root, as SDS gives it, which is also
/// the consumer JWT's audience).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpConnectConfig {
    /// Our ASID (Accredited System ID), sent as `Ssp-From`.
    pub asid: String,
    /// The practice system's ASID, sent as `Ssp-To`.
    pub practice_asid: String,
    /// The Spine Secure Proxy's URL, put before the practice's endpoint
    /// (`https://proxy/https://practice/...`); none to call the practice directly.
    #[serde(default)]
    pub proxy: Option<String>,
}

/// What the facade presents to a partner. Secrets are read from an environment
/// variable or a file, never from the configuration file itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialsConfig {
    pub kind: CredentialsKind,
    /// `bearer`: the variable or file holding the static token.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `client-credentials`: the partner's OAuth2 token endpoint and our client id.
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    /// Space-separated scopes to ask for (e.g. `system/*.rs`).
    pub scope: Option<String>,
    /// The `resource` (audience) to ask a token for, when the server wants one.
    pub resource: Option<String>,
    /// Client secret, from a variable or a file (client_secret_basic)...
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// ...or a private key (PKCS#8 PEM) for `private_key_jwt`, as SMART Backend Services.
    pub private_key_file: Option<PathBuf>,
    /// RS384 or ES384.
    pub private_key_alg: Option<String>,
    /// `kid` of that key, as registered with the partner.
    pub private_key_id: Option<String>,
    /// Mutual TLS: a PEM file with our client certificate chain and its private key.
    pub client_certificate_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for this partner's server certificate
    /// (e.g. a private network's CA), besides the usual public roots.
    pub ca_certificate_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialsKind {
    #[default]
    None,
    Bearer,
    ClientCredentials,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// Signature algorithms a token may use: public-key ones only.
pub const ASYMMETRIC_ALGORITHMS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
];

/// https, or http to this machine only (development and tests).
fn is_secure(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        },
        _ => false,
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `SHCR_*` variables, except `SHCR_CONFIG`, which names the file itself.
fn overrides() -> Env {
    Env::prefixed("SHCR_").ignore(&["CONFIG"]).split("__")
}

impl Config {
    /// Reads `path` (if given), then `SHCR_*` variables, then validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "{} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        Config::extract(figment.merge(overrides()))
    }

    fn extract(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(|e| {
            let messages: Vec<String> = e
                .into_iter()
                .map(|e| {
                    let path = e.path.join(".");
                    if path.is_empty() {
                        e.kind.to_string()
                    } else {
                        format!("{path}: {}", e.kind)
                    }
                })
                .collect();
            ConfigError::Load(messages.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.search;
        if s.max_count == 0 {
            return Err(invalid("search.max_count", "must be at least 1"));
        }
        if s.default_count == 0 || s.default_count > s.max_count {
            return Err(invalid(
                "search.default_count",
                "must be between 1 and search.max_count",
            ));
        }
        if s.deadline_ms == 0 {
            return Err(invalid("search.deadline_ms", "must be more than 0"));
        }
        if s.partner_page_size == 0 || s.max_partner_pages == 0 {
            return Err(invalid(
                "search.partner_page_size",
                "partner_page_size and max_partner_pages must be at least 1",
            ));
        }
        crate::store::parse_url(&self.database.url).map_err(|e| invalid("database.url", e))?;
        self.validate_auth()?;
        if let Some(id) = &self.server.deployment_id
            && !crate::federation::partner::is_deployment_id(id)
        {
            return Err(invalid(
                "server.deployment_id",
                "must be 1-200 of A-Z, a-z, 0-9 and - . _ : /",
            ));
        }
        if self.database.pool_size == 0 || self.database.connect_timeout_ms == 0 {
            return Err(invalid(
                "database.pool_size",
                "pool_size and connect_timeout_ms must be more than 0",
            ));
        }
        if self.paging.token_ttl_s == 0 {
            return Err(invalid("paging.token_ttl_s", "must be more than 0"));
        }
        if self.paging.key.is_some() {
            self.paging_key()?;
        }
        if let Some(base) = &self.server.public_base_url {
            let url =
                Url::parse(base).map_err(|e| invalid("server.public_base_url", e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
                return Err(invalid(
                    "server.public_base_url",
                    "must be an http(s) URL without a query",
                ));
            }
        }
        if self.partners.is_empty() {
            return Err(invalid("partners", "at least one partner is needed"));
        }
        let mut ids = HashSet::new();
        for (i, p) in self.partners.iter().enumerate() {
            let field = |name: &str| format!("partners[{i}].{name}");
            let id_ok = p.id.len() <= 16
                && p.id.starts_with(|c: char| c.is_ascii_lowercase())
                && p.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                return Err(invalid(
                    field("id"),
                    format!(
                        "'{}' must be 1-16 of a-z, 0-9 and '-', starting with a letter",
                        p.id
                    ),
                ));
            }
            if !ids.insert(p.id.as_str()) {
                return Err(invalid(
                    field("id"),
                    format!("'{}' is used by two partners", p.id),
                ));
            }
            if p.name.trim().is_empty() {
                return Err(invalid(field("name"), "must not be empty"));
            }
            p.credentials
                .validate()
                .map_err(|(name, reason)| invalid(field(&format!("credentials.{name}")), reason))?;
            if !(3..=10).contains(&p.ods_code.len())
                || !p
                    .ods_code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                return Err(invalid(
                    field("ods_code"),
                    format!("'{}' is not an ODS code (3-10 of A-Z, 0-9)", p.ods_code),
                ));
            }
            let url = Url::parse(&p.base_url)
                .map_err(|e| invalid(field("base_url"), format!("'{}': {e}", p.base_url)))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return Err(invalid(
                    field("base_url"),
                    "must be an http(s) URL with no query, fragment or credentials",
                ));
            }
            match (p.kind, &p.mapping) {
                (PartnerKind::Legacy, None) => {
                    return Err(invalid(
                        field("mapping"),
                        "a legacy partner needs a mapping file",
                    ));
                }
                (PartnerKind::Fhir | PartnerKind::GpConnect, Some(_)) => {
                    return Err(invalid(
                        field("mapping"),
                        "only a legacy partner has a mapping file",
                    ));
                }
                _ => {}
            }
            p.validate_gp_connect()
                .map_err(|(name, reason)| invalid(field(name), reason))?;
            if p.resource_types.is_empty() {
                return Err(invalid(
                    field("resource_types"),
                    "must list at least one resource type",
                ));
            }
            if p.timeout_ms == 0 || p.timeout_ms > s.deadline_ms {
                return Err(invalid(
                    field("timeout_ms"),
                    format!(
                        "must be between 1 and search.deadline_ms ({})",
                        s.deadline_ms
                    ),
                ));
            }
        }
        if !ids.contains(self.demographics_authority.as_str()) {
            return Err(invalid(
                "demographics_authority",
                format!(
                    "'{}' is not the id of a configured partner",
                    self.demographics_authority
                ),
            ));
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        for alg in &auth.algorithms {
            if !ASYMMETRIC_ALGORITHMS.contains(&alg.as_str()) {
                return Err(invalid(
                    "auth.algorithms",
                    format!(
                        "'{alg}' is not accepted; choose from {}",
                        ASYMMETRIC_ALGORITHMS.join(", ")
                    ),
                ));
            }
        }
        if auth.algorithms.is_empty() {
            return Err(invalid("auth.algorithms", "name at least one algorithm"));
        }
        for (i, issuer) in auth.issuers.iter().enumerate() {
            let url = Url::parse(&issuer.issuer)
                .map_err(|e| invalid(format!("auth.issuers[{i}].issuer"), e.to_string()))?;
            if !is_secure(&url) {
                return Err(invalid(
                    format!("auth.issuers[{i}].issuer"),
                    "must be an https URL (http only on loopback): keys fetched in clear could be replaced",
                ));
            }
        }
        if let Some(audience) = &auth.audience {
            Url::parse(audience).map_err(|e| invalid("auth.audience", e.to_string()))?;
        }
        Ok(())
    }

    /// The page-token key, if configured.
    pub fn paging_key(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let Some(key) = &self.paging.key else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|e| invalid("paging.key", format!("not base64: {e}")))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid("paging.key", "must be 32 bytes, base64-encoded"))?;
        Ok(Some(key))
    }
}

impl PartnerConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The mapping file of a legacy partner, resolved against the configuration file.
    pub fn mapping_path(&self) -> Option<PathBuf> {
        self.mapping.as_ref().map(RelativePathBuf::relative)
    }

    /// A GP Connect practice has its Spine addressing, serves only what GP Connect
    /// carries, and presents no credentials of its own in `Authorization` (that
    /// header holds the consumer JWT; mutual TLS is still configured here).
    fn validate_gp_connect(&self) -> Result<(), (&'static str, String)> {
        let gp_connect = match (self.kind, &self.gp_connect) {
            (PartnerKind::GpConnect, Some(gp_connect)) => gp_connect,
            (PartnerKind::GpConnect, None) => {
                return Err((
                    "gp_connect",
                    "a GP Connect partner needs asid and practice_asid".into(),
                ));
            }
            (_, Some(_)) => {
                return Err((
                    "gp_connect",
                    "only a gp-connect partner has Spine addressing".into(),
                ));
            }
            (_, None) => return Ok(()),
        };
        let is_asid =
            |s: &str| (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if !is_asid(&gp_connect.asid) {
            return Err((
                "gp_connect.asid",
                format!("'{}' is not an ASID (digits)", gp_connect.asid),
            ));
        }
        if !is_asid(&gp_connect.practice_asid) {
            return Err((
                "gp_connect.practice_asid",
                format!("'{}' is not an ASID (digits)", gp_connect.practice_asid),
            ));
        }
        if let Some(proxy) = &gp_connect.proxy {
            let url =
                Url::parse(proxy).map_err(|e| ("gp_connect.proxy", format!("'{proxy}': {e}")))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || !url.username().is_empty()
            {
                return Err((
                    "gp_connect.proxy",
                    "must be an http(s) URL with no query or credentials".into(),
                ));
            }
        }
        if self.credentials.kind != CredentialsKind::None {
            return Err((
                "credentials.kind",
                "a GP Connect practice takes the consumer JWT in Authorization: only mutual TLS (kind = \"none\" with a client certificate) can be configured".into(),
            ));
        }
        let carried = crate::federation::gp_connect::CARRIED_TYPES;
        if let Some(t) = self
            .resource_types
            .iter()
            .find(|t| !carried.contains(&t.as_str()))
        {
            return Err((
                "resource_types",
                format!(
                    "GP Connect does not carry {t}; it carries {}",
                    carried.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

impl CredentialsConfig {
    /// Checks that the fields the kind needs are there, and only one source per secret.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let one_of =
            |name: &'static str, sources: &[bool]| match sources.iter().filter(|s| **s).count() {
                1 => Ok(()),
                0 => Err((name, "is needed".to_string())),
                _ => Err((name, "give one source only".to_string())),
            };
        match self.kind {
            CredentialsKind::None => Ok(()),
            CredentialsKind::Bearer => one_of(
                "token_env",
                &[self.token_env.is_some(), self.token_file.is_some()],
            ),
            CredentialsKind::ClientCredentials => {
                let url = self
                    .token_url
                    .as_deref()
                    .ok_or(("token_url", "is needed".to_string()))?;
                let url = Url::parse(url).map_err(|e| ("token_url", e.to_string()))?;
                if !is_secure(&url) {
                    return Err((
                        "token_url",
                        "must be an https URL (http only on loopback): secrets would travel in clear".into(),
                    ));
                }
                if self.client_id.as_deref().is_none_or(str::is_empty) {
                    return Err(("client_id", "is needed".into()));
                }
                one_of(
                    "client_secret_env",
                    &[
                        self.client_secret_env.is_some(),
                        self.client_secret_file.is_some(),
                        self.private_key_file.is_some(),
                    ],
                )?;
                if self.private_key_file.is_some()
                    && !matches!(self.private_key_alg.as_deref(), Some("RS384" | "ES384"))
                {
                    return Err(("private_key_alg", "must be RS384 or ES384".into()));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> String {
        r#"
demographics_authority = "gp"
[[partners]]
id = "gp"
name = "Riverside Medical Practice"
ods_code = "A81001"
kind = "fhir"
base_url = "http://127.0.0.1:9001/fhir"
resource_types = ["Observation"]
timeout_ms = 1000
"#
        .to_string()
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::extract(Figment::new().merge(Toml::string(text)))
    }

    #[test]
    fn example_config_is_valid() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shcr.toml"))
                .unwrap();
        let config = load(&text).unwrap();
        assert_eq!(config.partners.len(), 5);
    }

    #[test]
    fn a_gp_connect_practice_needs_its_addressing_and_serves_what_gp_connect_carries() {
        let practice = base().replace("kind = \"fhir\"", "kind = \"gp-connect\"");
        let addressed = format!(
            "{practice}[partners.gp_connect]\nasid = \"200000001115\"\npractice_asid = \"918999198993\"\n"
        );
        assert!(load(&addressed).is_ok());
        let field_of = |text: &str| match load(text) {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(&practice), "partners[0].gp_connect");
        assert_eq!(
            field_of(&addressed.replace("\"200000001115\"", "\"ASID-1\"")),
            "partners[0].gp_connect.asid"
        );
        assert_eq!(
            field_of(&addressed.replace("[\"Observation\"]", "[\"CarePlan\"]")),
            "partners[0].resource_types"
        );
        assert_eq!(
            field_of(&format!(
                "{addressed}[partners.credentials]\nkind = \"bearer\"\ntoken_env = \"T\"\n"
            )),
            "partners[0].credentials.kind"
        );
        assert_eq!(
            field_of(&format!(
                "{}[partners.gp_connect]\nasid = \"1\"\npractice_asid = \"2\"\n",
                base()
            )),
            "partners[0].gp_connect"
        );
    }

    #[test]
    fn invalid_config_names_the_field() {
        let cases = [
            (
                base().replace("id = \"gp\"", "id = \"GP!\""),
                "partners[0].id",
            ),
            (base().replace("A81001", "a81"), "partners[0].ods_code"),
            (
                base().replace("http://127.0.0.1:9001/fhir", "ftp://x"),
                "partners[0].base_url",
            ),
            (
                base().replace("http://127.0.0.1:9001/fhir", "http://u:p@x/fhir"),
                "partners[0].base_url",
            ),
            (
                base().replace("[\"Observation\"]", "[]"),
                "partners[0].resource_types",
            ),
            (
                base().replace("[\"Observation\"]", "[\"Basic\"]"),
                "partners.0.resource_types",
            ),
            (base().replace("1000", "0"), "partners[0].timeout_ms"),
            (
                format!("{}\n[auth]\n[[auth.issuers]]\nissuer = \"http://idp.example\"\n", base()),
                "auth.issuers[0].issuer",
            ),
            (
                base().replace(
                    "timeout_ms = 1000",
                    "timeout_ms = 1000\ncredentials = { kind = \"bearer\" }",
                ),
                "partners[0].credentials.token_env",
            ),
            (
                base().replace(
                    "timeout_ms = 1000",
                    "timeout_ms = 1000\ncredentials = { kind = \"client-credentials\", token_url = \"https://idp/token\", client_id = \"f\", private_key_file = \"k.pem\", private_key_alg = \"HS256\" }",
                ),
                "partners[0].credentials.private_key_alg",
            ),
            (
                base().replace(
                    "timeout_ms = 1000",
                    "timeout_ms = 1000\ncredentials = { kind = \"client-credentials\", token_url = \"https://idp/token\", client_id = \"f\", client_secret = \"in-the-file\" }",
                ),
                "partners.0.credentials.client_secret",
            ),
            (
                base().replace(
                    "demographics_authority = \"gp\"",
                    "demographics_authority = \"acute\"",
                ),
                "demographics_authority",
            ),
            (
                base().replace("kind = \"fhir\"", "kind = \"hl7v2\""),
                "partners.0.kind",
            ),
            (
                base().replace("name = \"Riverside Medical Practice\"\n", ""),
                "name",
            ),
            (
                format!("{}[search]\nmax_count = 10\ndefault_count = 20\n", base()),
                "search.default_count",
            ),
            (
                format!("{}[paging]\nkey = \"c2hvcnQ=\"\n", base()),
                "paging.key",
            ),
            (format!("colour = 1\n{}", base()), "colour"),
            (
                format!("{}[database]\nurl = \"mysql://x\"\n", base()),
                "database.url",
            ),
            (
                format!("{}[database]\npool_size = 0\n", base()),
                "database.pool_size",
            ),
        ];
        for (text, field) in cases {
            let err = load(&text).unwrap_err().to_string();
            assert!(err.contains(field), "expected {field} in: {err}");
        }
    }
}
