//! Writing FHIR responses in the negotiated format.

use std::panic::AssertUnwindSafe;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::FutureExt;
use serde_json::Value;

use super::error::ApiError;
use crate::fhir::format::{Format, negotiate};
use crate::fhir::outcome::operation_outcome;

/// Most parameters one request may carry (query and form body together); FHIR
/// searches use a handful.
const MAX_PARAMETERS: usize = 100;

/// Control parameters that may appear once only.
const SINGLE_VALUED: [&str; 9] = [
    "_cursor",
    "_count",
    "_sort",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
    "_total",
    "_type",
];

/// How the client wants the answer written.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: Format,
    pub pretty: bool,
}

impl Output {
    /// From `_format` / `_pretty` among the query pairs and the `Accept` header. A
    /// control parameter given twice (two `_cursor`s, two `_count`s) is refused here,
    /// before any work: which one the client meant cannot be guessed.
    pub fn negotiate(req: &HttpRequest, pairs: &[(String, String)]) -> Result<Output, ApiError> {
        if pairs.len() > MAX_PARAMETERS {
            return Err(ApiError::TooManyParameters(MAX_PARAMETERS));
        }
        if let Some(name) = SINGLE_VALUED
            .iter()
            .find(|name| pairs.iter().filter(|(k, _)| k == *name).count() > 1)
        {
            return Err(ApiError::BadRequest(format!(
                "'{name}' is given more than once; give it once"
            )));
        }
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let accept = req.headers().get("accept").and_then(|v| v.to_str().ok());
        let format = negotiate(param("_format"), accept)?;
        Ok(Output {
            format,
            pretty: param("_pretty") == Some("true"),
        })
    }

    pub const JSON: Output = Output {
        format: Format::Json,
        pretty: false,
    };

    /// Negotiates the format, then runs `work` and writes its result; an
    /// unacceptable format is refused before any work is done.
    pub async fn answer(
        req: &HttpRequest,
        pairs: &[(String, String)],
        work: impl std::future::Future<Output = Result<Value, ApiError>>,
    ) -> HttpResponse {
        match Output::negotiate(req, pairs) {
            Ok(output) => output.result(guarded(work).await),
            Err(error) => Output::JSON.error(error),
        }
    }

    /// `answer` for a read: with the resource's version headers, or 304 when the
    /// client already holds that version (see `versions`).
    pub async fn answer_read(
        req: &HttpRequest,
        pairs: &[(String, String)],
        work: impl std::future::Future<Output = Result<Value, ApiError>>,
    ) -> HttpResponse {
        match Output::negotiate(req, pairs) {
            Ok(output) => match guarded(work).await {
                Ok(resource) => super::versions::answer_read(output, req, resource),
                Err(error) => output.error(error),
            },
            Err(error) => Output::JSON.error(error),
        }
    }

    pub fn write(self, status: StatusCode, resource: Value) -> HttpResponse {
        match self.encode(resource) {
            Ok(body) => HttpResponseBuilder::new(status)
                .content_type(self.format.content_type())
                .body(body),
            Err(error) => Output::JSON.error(error),
        }
    }

    pub fn error(self, error: ApiError) -> HttpResponse {
        let mut response = self.write(error.status(), operation_outcome(&[error.issue()]));
        if let Some(challenge) = error
            .challenge()
            .and_then(|c| actix_web::http::header::HeaderValue::from_str(&c).ok())
        {
            response
                .headers_mut()
                .insert(actix_web::http::header::WWW_AUTHENTICATE, challenge);
        }
        if let ApiError::MethodNotAllowed { allowed, .. } = error {
            response.headers_mut().insert(
                actix_web::http::header::ALLOW,
                actix_web::http::header::HeaderValue::from_static(allowed),
            );
        }
        response
    }

    pub fn result(self, result: Result<Value, ApiError>) -> HttpResponse {
        match result {
            Ok(resource) => self.write(StatusCode::OK, resource),
            Err(error) => self.error(error),
        }
    }

    fn encode(self, resource: Value) -> Result<Vec<u8>, ApiError> {
        match (self.format, self.pretty) {
            (Format::Json, false) => {
                Ok(serde_json::to_vec(&resource).expect("JSON values serialise"))
            }
            (Format::Json, true) => {
                Ok(serde_json::to_vec_pretty(&resource).expect("JSON values serialise"))
            }
            (Format::Xml, _) => fhir_codec::write_xml(resource).map_err(|e| {
                tracing::error!(error = %e, "response not representable as XML");
                ApiError::Unrepresentable
            }),
        }
    }
}

/// Runs a handler's work; a panic in it becomes a 500 (`ApiError::Internal`) that
/// is answered and audited like any failure, its values kept out of the log.
pub async fn guarded<T>(
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let work = super::panics::Answering(AssertUnwindSafe(Box::pin(work)));
    work.catch_unwind().await.unwrap_or(Err(ApiError::Internal))
}

/// Query-string pairs, decoded, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// Is a search parameter the facade cannot honour refused (400)? Yes, unless the
/// client asks for `Prefer: handling=lenient`: for clinical records a criterion
/// dropped quietly would widen the answer, which no client library would notice.
pub fn is_strict(req: &HttpRequest) -> bool {
    !req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=lenient"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_a_handler_is_an_internal_error_not_a_lost_request() {
        let answer: Result<(), ApiError> = guarded(async {
            assert!(super::super::panics::answering(), "marked while answering");
            panic!("a value that must not be logged");
        })
        .await;
        assert!(matches!(answer, Err(ApiError::Internal)));
        assert!(!super::super::panics::answering(), "unmarked after");
        let error = ApiError::Internal;
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.issue().code, "exception");
    }
}
