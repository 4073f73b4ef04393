//! HTTP: routes and thin handlers. Each handler parses, calls the stages in pipeline
//! order, and writes the answer; nothing here decides what data may be shown.

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
