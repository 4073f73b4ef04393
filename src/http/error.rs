//! The one mapping from failures to HTTP status and OperationOutcome.

use actix_web::http::StatusCode;

use crate::auth::AuthError;
use crate::federation::cursor::TokenError;
use crate::federation::partner::PartnerFailure;
use crate::fhir::format::NotAcceptable;
use crate::fhir::outcome::Issue;
use crate::fhir::search::SearchError;
use crate::fhir::shape::ShapeError;
use crate::policy::access::Denied;
use crate::policy::objection::{InvalidObjection, objection_issue};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("resource type '{0}' is not served here; see /fhir/metadata")]
    UnknownType(String),
    #[error("{0} is not known")]
    NotFound(String),
    #[error("{0}")]
    Search(#[from] SearchError),
    #[error("{0}")]
    PageToken(#[from] TokenError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotAcceptable(#[from] NotAcceptable),
    #[error("a search body must be application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body was refused before parsing: {0}")]
    BodyShape(#[from] ShapeError),
    /// The request line is longer than the facade reads (the query is not read).
    #[error(
        "the request's URL is longer than {0} bytes; send a long search as POST [type]/_search with a form body"
    )]
    UriTooLong(usize),
    /// The request head (its header fields) is larger than the facade reads.
    #[error("the request's header fields are larger than {0} bytes, or more than {1} fields")]
    HeadTooLarge(usize, usize),
    #[error("the request has more than {0} parameters")]
    TooManyParameters(usize),
    #[error("{method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed {
        method: String,
        allowed: &'static str,
    },
    #[error("{organisation} {failure}{}", retry_hint(.failure))]
    PartnerUnavailable {
        organisation: String,
        failure: PartnerFailure,
    },
    #[error("the response could not be written as XML; ask for JSON")]
    Unrepresentable,
    /// The database cannot be used: nothing is answered rather than an answer that
    /// could not be checked or recorded.
    #[error(
        "the Shared Care Record is unavailable just now; try again shortly or use other channels"
    )]
    Unavailable,
    /// The patient has objected: nothing about them is shown.
    #[error("the patient has objected to sharing")]
    Objection,
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` names a version that is no longer the current one (412).
    #[error("{0}")]
    StaleVersion(String),
    /// An update without `If-Match` where the configuration demands one (428).
    #[error("{0}")]
    VersionRequired(String),
    #[error("{0}")]
    BusinessRule(String),
    /// A well-formed resource that is not acceptable here (FHIR 422).
    #[error("{0}")]
    Unprocessable(String),
    /// The request has already passed through this Shared Care Record, or through
    /// too many: two records joined both ways must not ask each other forever.
    #[error(
        "this request has already passed through this Shared Care Record, or through too many; it is not passed on again"
    )]
    LoopDetected,
    /// Every access is audited: one that cannot be recorded is not answered.
    #[error(
        "the access could not be recorded in the audit trail, so nothing is shown; try again shortly"
    )]
    AuditUnavailable,
    /// Something failed that should not have (a panic): nothing of the answer is
    /// shown.
    #[error(
        "the request could not be completed because of an internal error; nothing was returned"
    )]
    Internal,
    #[error("{0}")]
    Unauthenticated(#[from] AuthError),
    #[error("{0}")]
    Denied(#[from] Denied),
}

impl From<InvalidObjection> for ApiError {
    fn from(error: InvalidObjection) -> ApiError {
        match error {
            InvalidObjection::Invalid(text) => ApiError::Unprocessable(text),
            InvalidObjection::NotAllowed(text) => ApiError::BusinessRule(text),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        tracing::error!(%error, "database unavailable: refusing the request");
        ApiError::Unavailable
    }
}

/// Whether asking again may help: not when the patient dissented at the partner or
/// the request names no professional.
fn retry_hint(failure: &PartnerFailure) -> &'static str {
    match failure {
        PartnerFailure::PatientDissent | PartnerFailure::UserRequired => "",
        _ => "; try again later",
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownType(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Search(_)
            | ApiError::PageToken(_)
            | ApiError::BadRequest(_)
            | ApiError::BodyShape(_)
            | ApiError::TooManyParameters(_) => StatusCode::BAD_REQUEST,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadTooLarge(..) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PartnerUnavailable {
                failure: PartnerFailure::TimedOut,
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            // Not a fault to retry: the patient's choice there, or no professional named.
            ApiError::PartnerUnavailable {
                failure: PartnerFailure::PatientDissent | PartnerFailure::UserRequired,
                ..
            } => StatusCode::FORBIDDEN,
            ApiError::PartnerUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unrepresentable | ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Objection => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::StaleVersion(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::VersionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::LoopDetected => StatusCode::LOOP_DETECTED,
            ApiError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BusinessRule(_) | ApiError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthenticated(AuthError::IssuerUnavailable) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Denied(Denied::UnknownPurpose) => StatusCode::BAD_REQUEST,
            ApiError::Denied(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750) this error answers with, if any.
    pub fn challenge(&self) -> Option<String> {
        const REALM: &str = "Bearer realm=\"shcr-facade\"";
        let quoted = |s: &str| s.replace(['"', '\\'], "'");
        match self {
            ApiError::Unauthenticated(AuthError::Missing) => Some(REALM.to_string()),
            ApiError::Unauthenticated(AuthError::InvalidToken(reason)) => Some(format!(
                "{REALM}, error=\"invalid_token\", error_description=\"{}\"",
                quoted(reason)
            )),
            ApiError::Denied(Denied::InsufficientScope { needed }) => Some(format!(
                "{REALM}, error=\"insufficient_scope\", scope=\"{}\"",
                quoted(needed)
            )),
            _ => None,
        }
    }

    pub fn issue(&self) -> Issue {
        let code = match self {
            ApiError::UnknownType(_)
            | ApiError::MethodNotAllowed { .. }
            | ApiError::NotAcceptable(_)
            | ApiError::UnsupportedMediaType => "not-supported",
            ApiError::NotFound(_) => "not-found",
            ApiError::Search(SearchError::MissingPatient(_)) => "required",
            ApiError::Search(SearchError::Unsupported { .. }) => "not-supported",
            ApiError::Search(_) => "value",
            ApiError::PageToken(TokenError::Expired) => "expired",
            ApiError::PageToken(TokenError::Invalid) | ApiError::BadRequest(_) => "invalid",
            ApiError::PayloadTooLarge(_) => "too-long",
            ApiError::BodyShape(_) => "structure",
            ApiError::UriTooLong(_) | ApiError::HeadTooLarge(..) => "too-long",
            ApiError::TooManyParameters(_) => "too-costly",
            ApiError::PartnerUnavailable {
                failure: PartnerFailure::TimedOut,
                ..
            } => "timeout",
            ApiError::PartnerUnavailable {
                failure: PartnerFailure::PatientDissent,
                ..
            } => "suppressed",
            ApiError::PartnerUnavailable {
                failure: PartnerFailure::UserRequired,
                ..
            } => "forbidden",
            ApiError::PartnerUnavailable { .. } => "transient",
            ApiError::Unrepresentable | ApiError::Internal => "exception",
            ApiError::Unavailable => "transient",
            ApiError::Conflict(_) => "duplicate",
            ApiError::StaleVersion(_) => "conflict",
            ApiError::VersionRequired(_) => "required",
            ApiError::LoopDetected => "processing",
            ApiError::AuditUnavailable => "transient",
            ApiError::BusinessRule(_) => "business-rule",
            ApiError::Unprocessable(_) => "invalid",
            ApiError::Unauthenticated(AuthError::IssuerUnavailable) => "transient",
            ApiError::Unauthenticated(_) => "login",
            ApiError::Denied(Denied::UnknownPurpose) => "value",
            ApiError::Denied(_) => "forbidden",
            ApiError::Objection => return objection_issue(),
        };
        let issue = Issue::error(code, self.to_string());
        match self {
            ApiError::Search(e) => match e.param() {
                Some(param) => issue.with_expression(param),
                None => issue,
            },
            _ => issue,
        }
    }
}

/// For an error that must leave through actix rather than a handler (a panic
/// outside any handler): the same status and OperationOutcome.
impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        actix_web::HttpResponse::build(self.status())
            .content_type("application/fhir+json")
            .body(crate::fhir::outcome::operation_outcome(&[self.issue()]).to_string())
    }
}
