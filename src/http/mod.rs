//! HTTP: routes and thin handlers. Each handler parses, calls the stages in pipeline
//! order, and writes the answer; nothing here decides what data may be shown.

pub mod audit;
mod audit_trail;
mod consent;
mod error;
mod everything;
pub mod head_guard;
mod health;
pub mod hops;
mod includes;
mod links;
mod metadata;
pub mod panics;
mod read;
mod respond;
mod search;
mod searchset;
mod smart;
mod versions;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

pub use error::ApiError;
use respond::Output;

use crate::auth::principal::Principal;
use crate::auth::scopes::Interaction;
use crate::auth::{Authenticator, PURPOSE_OF_USE_HEADER};
use crate::config::CohortConfig;
use crate::federation::Federation;
use crate::federation::cursor::PageSealer;
use crate::federation::identity::Known;
use crate::federation::scope::{OnBehalfOf, RequestScope};
use crate::fhir::search::PageLimits;
use crate::fhir::{NhsNumber, ResourceType};
use crate::policy::access::{Grant, Purpose, objection_applies, permit, permit_patient};
use crate::policy::objection::objects_in;
use crate::policy::{Clearance, Policy};
use crate::store::Store;

/// What every handler needs; one per worker (the federation's HTTP client is
/// per worker), the rest shared.
pub struct AppState {
    pub federation: Federation,
    pub sealer: Arc<PageSealer>,
    /// The FHIR base URL clients see, without a trailing slash.
    pub base: String,
    pub page_limits: PageLimits,
    pub max_body_bytes: usize,
    pub capability_statement: Arc<Value>,
    pub store: Store,
    /// Where every request's audit event is committed (shared by the workers).
    pub audit: Arc<crate::audit::GroupCommit>,
    pub partner_count: usize,
    pub policy: Arc<Policy>,
    /// Age from which a child may object for themself.
    pub competence_age: u32,
    pub cohort: CohortConfig,
    pub auth: Arc<Authenticator>,
    /// This facade process, as audit events name it (its base URL and a process id).
    pub instance: Arc<str>,
    /// Whether emergency access sees past an objection (configuration, default no).
    pub emergency_sees_past_objection: bool,
    /// Whether a change to an objection must name the version it changes (If-Match).
    pub require_if_match: bool,
    /// Permits for audit trail searches, a share of the database pool.
    pub audit_readers: Arc<tokio::sync::Semaphore>,
}

/// Who is asking: the bearer token validated (401, or 503 if its issuer cannot be
/// reached).
pub async fn principal(req: &HttpRequest, state: &AppState) -> Result<Principal, ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let principal = state
        .auth
        .authenticate(header("authorization"), header(PURPOSE_OF_USE_HEADER))
        .await?;
    audit::note_requester(req, &principal);
    if principal.unknown_purpose {
        return Err(crate::policy::access::Denied::UnknownPurpose.into());
    }
    Ok(principal)
}

/// The partner calls of a request made by `principal`: its deadline, and who it is
/// made for as partners are told (never the token).
pub fn scope(state: &AppState, principal: &Principal) -> RequestScope {
    let role = principal.roles.first();
    let system = principal.roles.is_empty();
    state.federation.scope(OnBehalfOf {
        subject: principal.subject.clone(),
        user_id: principal.user_id.clone(),
        role_profile_id: role.and_then(|r| r.profile_id.clone()),
        name: principal.name.clone(),
        organisation: role.and_then(|r| r.organisation.clone()),
        system,
    })
}

/// Who an answer is written for: what page links are bound to, which confidentiality
/// levels may show, and what each resource type's scopes cover.
pub struct Viewer {
    pub holder: String,
    pub clearance: Clearance,
    grants: Vec<(ResourceType, Grant)>,
}

impl Viewer {
    pub fn new(principal: &Principal, grants: Vec<(ResourceType, Grant)>) -> Viewer {
        Viewer {
            holder: principal.holder(),
            clearance: match principal.permissions.restricted {
                true => Clearance::Restricted,
                false => Clearance::Normal,
            },
            grants,
        }
    }

    /// Adds what the token grants of another type (one a search includes).
    pub fn grant(&mut self, resource_type: ResourceType, grant: Grant) {
        if !self.permits(resource_type) {
            self.grants.push((resource_type, grant));
        }
    }

    /// May resources of this type be shown at all?
    pub fn permits(&self, resource_type: ResourceType) -> bool {
        self.grants.iter().any(|(t, _)| *t == resource_type)
    }

    /// Is the resource within what the token's scopes granted?
    pub fn covers(&self, resource: &Value) -> bool {
        self.grants
            .iter()
            .find(|(t, _)| resource["resourceType"] == t.as_str())
            .is_some_and(|(_, grant)| grant.covers(resource))
    }
}

/// May `principal` use `interaction` on clinical records (or Patients) of `resource_type`?
pub fn permit_clinical(
    principal: &Principal,
    resource_type: ResourceType,
    interaction: Interaction,
) -> Result<Grant, ApiError> {
    Ok(permit(
        principal,
        resource_type.as_str(),
        interaction,
        Purpose::Clinical,
    )?)
}

/// Does an objection hide the patient from this principal? Read from the register
/// on every request.
pub async fn hidden_by_objection(
    state: &AppState,
    principal: &Principal,
    nhs: &NhsNumber,
) -> Result<bool, ApiError> {
    if !objection_applies(principal, state.emergency_sees_past_objection) {
        return Ok(false);
    }
    Ok(crate::policy::objection::objects(&state.store, nhs).await?)
}

/// May anything about this patient be shown to `principal`? 403 if the token is
/// limited to another patient or an objection hides them (read from the register on
/// every request); `Ok(false)` if they are outside the cohort, and so not found.
pub async fn admit(
    state: &AppState,
    principal: &Principal,
    nhs: &NhsNumber,
) -> Result<bool, ApiError> {
    permit_patient(principal, nhs)?;
    let hidden = hidden_by_objection(state, principal, nhs).await?;
    in_cohort(state, principal, nhs, hidden).await
}

/// `admit`, for a request that goes on to gather the patient's records: the objection
/// register and what is known of the patient's ids at each partner are read in one
/// trip to the database, before any partner is asked. `None` if they are outside
/// the cohort.
pub async fn admit_to_gather(
    state: &AppState,
    principal: &Principal,
    nhs: &NhsNumber,
) -> Result<Option<Known>, ApiError> {
    permit_patient(principal, nhs)?;
    let applies = objection_applies(principal, state.emergency_sees_past_objection);
    let patient = nhs.clone();
    let (hidden, known) = state
        .federation
        .known_alongside(nhs, move |conn| match applies {
            true => objects_in(conn, &patient),
            false => Ok(false),
        })
        .await?;
    Ok(in_cohort(state, principal, nhs, hidden)
        .await?
        .then_some(known))
}

/// Once the register is read: 403 if an objection hides the patient; otherwise
/// whether they are in the cohort (asked of the partners only if one is set).
async fn in_cohort(
    state: &AppState,
    principal: &Principal,
    nhs: &NhsNumber,
    hidden: bool,
) -> Result<bool, ApiError> {
    if hidden {
        return Err(ApiError::Objection);
    }
    if !state.cohort.is_active() {
        return Ok(true);
    }
    let patient = read::read_patient(state, nhs.as_str(), &scope(state, principal)).await?;
    Ok(patient.is_some_and(|p| state.cohort.admits(&p)))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/fhir")
            .service(
                web::resource("/.well-known/smart-configuration")
                    .route(web::get().to(smart::smart_configuration))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/metadata")
                    .route(web::get().to(metadata::metadata))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/openapi.json")
                    .route(web::get().to(metadata::openapi))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/Consent")
                    .route(web::get().to(consent::search))
                    .route(web::post().to(consent::create))
                    .default_service(web::to(not_allowed("GET, POST"))),
            )
            .service(
                web::resource("/Consent/{id}/_history")
                    .route(web::get().to(consent::history))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/Consent/{id}/_history/{version}")
                    .route(web::get().to(consent::vread))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/Consent/{id}")
                    .route(web::get().to(consent::read))
                    .route(web::put().to(consent::update))
                    .default_service(web::to(not_allowed("GET, PUT"))),
            )
            .service(
                web::resource("/AuditEvent")
                    .route(web::get().to(audit_trail::search))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/AuditEvent/{id}")
                    .route(web::get().to(audit_trail::read))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/Patient/{id}/$who-viewed")
                    .route(web::get().to(audit_trail::who_viewed))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/Patient/{id}/$everything")
                    .route(web::get().to(everything::everything))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/Patient/{id}/{type}")
                    .route(web::get().to(search::compartment))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/{type}/_search")
                    .route(web::post().to(search::search_post))
                    .default_service(web::to(not_allowed("POST"))),
            )
            .service(
                web::resource("/{type}/{id}")
                    .route(web::get().to(read::read))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .service(
                web::resource("/{type}")
                    .route(web::get().to(search::search_get))
                    .default_service(web::to(not_allowed("GET"))),
            )
            .default_service(web::to(not_found)),
    )
    .route("/healthz", web::get().to(health::alive))
    .route("/metrics", web::get().to(health::metrics))
    .route("/readyz", web::get().to(health::ready))
    .default_service(web::to(not_found));
}

fn not_allowed(
    allowed: &'static str,
) -> impl Fn(HttpRequest) -> std::future::Ready<HttpResponse> + Clone {
    move |req: HttpRequest| {
        let error = ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allowed,
        };
        std::future::ready(Output::JSON.error(error))
    }
}

/// The answer for a request whose head was too large to read (see `head_guard`):
/// 414 or 431, naming who asked if their token is good, and audited like any other.
pub async fn refused_head(req: &HttpRequest, refusal: head_guard::Refusal) -> HttpResponse {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let _ = principal(req, state).await;
    }
    let limits = head_guard::LIMITS;
    Output::JSON.error(match refusal {
        head_guard::Refusal::UriTooLong => ApiError::UriTooLong(limits.request_line),
        head_guard::Refusal::HeadTooLarge => {
            ApiError::HeadTooLarge(limits.head, limits.header_fields)
        }
    })
}

async fn not_found() -> HttpResponse {
    Output::JSON.error(ApiError::NotFound("this path".into()))
}
