//! `GET /fhir/metadata`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::respond::{Output, query_pairs};

pub async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let capability_statement = state.capability_statement.as_ref().clone();
    Output::answer(&req, &query_pairs(req.query_string()), async {
        Ok(capability_statement)
    })
    .await
}
