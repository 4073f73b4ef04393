//! Probes for load balancers: `/healthz` (the process answers) and `/readyz` (it can
//! serve: database reachable, migrations applied, partners configured); `/metrics`
//! for Prometheus.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

pub async fn alive() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "alive"}))
}

pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = state
        .store
        .run(crate::store::migrations_applied)
        .await
        .map_err(|e| e.to_string());
    if let Err(reason) = &database {
        tracing::warn!(%reason, "not ready: database");
    }
    let ready = database.is_ok() && state.partner_count > 0;
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": if database.is_ok() { "ok" } else { "unavailable" },
        "partners": state.partner_count,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text. It names no patient, user or token (see
/// `metrics`), so it is served without a token, like the health checks.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::Metrics::get().render(state.store.pool_state()))
}
