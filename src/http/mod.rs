//! HTTP: routes and thin handlers. Each handler parses, calls the stages in pipeline
//! order, and writes the answer; nothing here decides what data may be shown.

mod consent;
mod error;
mod everything;
mod health;
mod metadata;
mod read;
mod respond;
mod search;
mod searchset;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

pub use error::ApiError;
use respond::Output;

use crate::config::CohortConfig;
use crate::federation::Federation;
use crate::federation::cursor::PageSealer;
use crate::fhir::search::PageLimits;
use crate::policy::Policy;
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
    pub partner_count: usize,
    pub policy: Arc<Policy>,
    /// Age from which a child may object for themself.
    pub competence_age: u32,
    pub cohort: CohortConfig,
}

/// May anything about this patient be shown? 403 if an objection hides them (read
/// from the register on every request); `Ok(false)` if they are outside the cohort,
/// and so not found.
pub async fn admit(state: &AppState, nhs: &crate::fhir::NhsNumber) -> Result<bool, ApiError> {
    if crate::policy::objection::objects(&state.store, nhs).await? {
        return Err(ApiError::Objection);
    }
    if !state.cohort.is_active() {
        return Ok(true);
    }
    let patient = read::read_patient(state, nhs.as_str()).await?;
    Ok(patient.is_some_and(|p| state.cohort.admits(&p)))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/fhir")
            .service(
                web::resource("/metadata")
                    .route(web::get().to(metadata::metadata))
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
                web::resource("/Patient/{id}/$everything")
                    .route(web::get().to(everything::everything))
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

async fn not_found() -> HttpResponse {
    Output::JSON.error(ApiError::NotFound("this path".into()))
}
