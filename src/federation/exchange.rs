//! The one way the facade talks HTTP to a partner, whatever its kind: GET or POST,
//! our credentials (never the user's token), the hop header, the partner's timeout,
//! no redirects followed (the client is built that way), and a body capped in size
//! and in shape before it is parsed.

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::partner::{HOP_HEADER, Partner, PartnerFailure};
use crate::fhir::shape::{BoundedJsonError, ShapeError, ShapeLimits, parse_json};

/// One request to a partner: always a read (the facade writes nothing to partners).
pub struct Exchange<'a> {
    pub method: Method,
    pub url: Url,
    pub headers: &'a [(HeaderName, HeaderValue)],
    /// A JSON body (POST), sent as given.
    pub body: Option<Vec<u8>>,
    pub max_bytes: usize,
}

/// What the partner answered: its status, and its body when that was JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Option<Value>,
}

/// Sends `exchange`. Any status comes back (the caller knows what its partner's
/// statuses mean); a body too large, too deep or not JSON where JSON was sent is a
/// failure, as is no answer within the partner's timeout. Timed and counted by
/// partner id for the metrics page.
pub async fn send(partner: &Partner, exchange: Exchange<'_>) -> Result<Answer, PartnerFailure> {
    let started = std::time::Instant::now();
    let answer = exchange_with(partner, exchange).await;
    let outcome = match &answer {
        Ok(answer) if answer.status.is_success() => "ok",
        Ok(answer) if answer.status.is_client_error() => "http-4xx",
        Ok(_) => "http-5xx",
        Err(PartnerFailure::TimedOut) => "timeout",
        Err(PartnerFailure::Unreachable) => "unreachable",
        Err(PartnerFailure::TooLarge) => "too-large",
        Err(PartnerFailure::Malformed(_)) => "malformed-response",
        Err(PartnerFailure::CredentialsRefused) => "credentials-refused",
        Err(_) => "refused",
    };
    crate::metrics::Metrics::get().partner_call(&partner.id, outcome, started.elapsed());
    answer
}

async fn exchange_with(
    partner: &Partner,
    exchange: Exchange<'_>,
) -> Result<Answer, PartnerFailure> {
    let mut response = match sent(partner, &exchange).await? {
        Err(error) if worth_resending(&error) => sent(partner, &exchange).await?,
        first => first,
    }
    .map_err(|e| match e.is_timeout() {
        true => PartnerFailure::TimedOut,
        false => PartnerFailure::Unreachable,
    })?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        // Our token may have been revoked: fetch a new one next time.
        partner.credentials().forget_token().await;
    }
    if response
        .content_length()
        .is_some_and(|n| n as usize > exchange.max_bytes)
    {
        return Err(PartnerFailure::TooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| PartnerFailure::Unreachable)?
    {
        if bytes.len() + chunk.len() > exchange.max_bytes {
            return Err(PartnerFailure::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    let body = match bytes.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false if status.is_success() => Some(parse_bounded_json(&bytes)?),
        // An error's body is read if it can be (an OperationOutcome); else ignored.
        false => parse_bounded_json(&bytes).ok(),
    };
    Ok(Answer { status, body })
}

/// Sends `exchange` once: the partner's response or why there was none, unless our
/// credentials could not be had.
async fn sent(
    partner: &Partner,
    exchange: &Exchange<'_>,
) -> Result<Result<reqwest::Response, reqwest::Error>, PartnerFailure> {
    let headers: reqwest::header::HeaderMap = exchange.headers.iter().cloned().collect();
    let mut request = partner
        .client()
        .request(exchange.method.clone(), exchange.url.clone())
        .headers(headers)
        .timeout(partner.timeout)
        .header(HOP_HEADER, super::outbound_hops(partner.deployment_id()));
    if let Some(body) = &exchange.body {
        request = request.body(body.clone());
    }
    let request = partner
        .credentials()
        .authorize(partner.client(), request)
        .await?;
    Ok(request.send().await)
}

/// A request that failed on a connection already made (not while connecting, not
/// for time) may have met a kept-alive connection that the partner closed as it was
/// reused, a race every HTTP client's pool has with servers' keep-alive timeouts:
/// it is sent once more (that connection has left the pool). Every exchange is a
/// read, so sending one twice changes nothing at the partner: searches and reads by
/// GET, and GP Connect's structured record, a query whose parameters go by POST.
fn worth_resending(error: &reqwest::Error) -> bool {
    error.is_request() && !error.is_connect() && !error.is_timeout()
}

/// A partner's JSON body, parsed within the facade's bounds on its shape (nesting,
/// element count), held as it is read: a hostile or broken partner cannot exhaust a
/// worker's stack or memory.
pub fn parse_bounded_json(body: &[u8]) -> Result<Value, PartnerFailure> {
    parse_json(body, ShapeLimits::PARTNER_JSON).map_err(|e| match e {
        BoundedJsonError::Shape(ShapeError::TooDeep(_)) => {
            PartnerFailure::Malformed("a JSON document within the facade's nesting bound")
        }
        BoundedJsonError::Shape(ShapeError::TooManyElements(_)) => PartnerFailure::TooLarge,
        BoundedJsonError::Malformed => PartnerFailure::Malformed("a JSON document"),
    })
}
