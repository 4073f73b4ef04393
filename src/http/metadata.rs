//! `GET /fhir/metadata`: the CapabilityStatement built at start, with the trusted
//! issuer's OAuth endpoints (SMART's `oauth-uris`) as its discovery document gives
//! them now; without them when it cannot be reached. `GET /fhir/openapi.json`: the
//! same API described in OpenAPI 3.

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::respond::{Output, query_pairs};
use crate::fhir::capability::oauth_uris;

pub async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut capability_statement = state.capability_statement.as_ref().clone();
    if let Some(issuer) = state.auth.primary_issuer()
        && let Ok(discovered) = issuer.metadata().await
        && let Some(extension) = oauth_uris(&discovered)
    {
        capability_statement["rest"][0]["security"]["extension"] = serde_json::json!([extension]);
    }
    Output::answer(&req, &query_pairs(req.query_string()), async {
        Ok(capability_statement)
    })
    .await
}

pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(crate::fhir::openapi::openapi(
        &state.capability_statement,
        &state.base,
    ))
}
