//! The hop header on requests coming in: which Shared Care Records a request has
//! already passed through. One that has been here already, or through too many, is
//! refused (508), never followed; the others are carried on to partners.

use actix_web::HttpResponse;
use actix_web::dev::ServiceRequest;

use super::error::ApiError;
use super::respond::Output;
use crate::federation::MAX_HOPS;
use crate::federation::partner::{HOP_HEADER, is_deployment_id};

/// The records `req` has passed through, or None if this record (`deployment_id`) is
/// among them or they are too many. Entries that are not a record's id are dropped,
/// not passed on.
pub fn admit(req: &ServiceRequest, deployment_id: &str) -> Option<Vec<String>> {
    let visited: Vec<String> = req
        .headers()
        .get_all(HOP_HEADER)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| hop.trim().to_string())
        .filter(|hop| is_deployment_id(hop))
        .collect();
    let looped = visited.iter().any(|hop| hop == deployment_id) || visited.len() >= MAX_HOPS;
    (!looped).then_some(visited)
}

/// The answer to a request `admit` refused (508).
pub fn refused() -> HttpResponse {
    Output::JSON.error(ApiError::LoopDetected)
}
