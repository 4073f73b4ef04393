//! `GET /fhir/metadata`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::respond::{Output, query_pairs};

pub async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match Output::negotiate(&req, &query_pairs(req.query_string())) {
        Ok(output) => output.result(Ok(state.capability_statement.as_ref().clone())),
        Err(e) => Output::JSON.error(e),
    }
}
