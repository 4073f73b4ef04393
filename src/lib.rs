//! shcr-facade: a FHIR R4 facade over the partners of a Shared Care Record.
//!
//! This file builds the HTTP server from a `Config`; the work is in the modules.

pub mod audit;
pub mod auth;
pub mod config;
pub mod federation;
pub mod fhir;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod sim;
pub mod store;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpMessage, web};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use std::panic::AssertUnwindSafe;

use config::Config;
use federation::cursor::PageSealer;
use federation::identity::PatientLinks;
use federation::{Federation, VISITED};
use fhir::search::PageLimits;
use http::AppState;
use store::Store;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// CORS for browser SMART apps: the listed origins (or any, with `*`) may call the
/// FHIR API with a bearer token; cookies are never involved.
fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT"])
        .allowed_headers([
            "authorization",
            "content-type",
            "accept",
            "prefer",
            "x-request-id",
            auth::PURPOSE_OF_USE_HEADER,
        ])
        .expose_headers(["location", "www-authenticate", "x-request-id", "etag"])
        .max_age(3600);
    for origin in origins {
        cors = match origin.as_str() {
            "*" => cors.allow_any_origin(),
            origin => cors.allowed_origin(origin),
        };
    }
    cors
}

/// Replaces the default panic message for panics while a request is being answered,
/// since it would quote whatever value the code was handling (a client's query, a
/// partner's record), by one naming only where it happened. Panics elsewhere keep
/// the usual message. Installed once per process.
fn log_panics_without_values() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let usual = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !http::panics::answering() {
                return usual(info);
            }
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(
                location,
                "a request failed unexpectedly (panic); it was answered with a 500"
            );
        }));
    });
}

/// A facade server bound to `listener`, not yet running, and its public FHIR base.
/// Opens the database and applies pending migrations first; fails if it cannot.
pub fn server(config: Config, listener: TcpListener) -> std::io::Result<(Server, String)> {
    let addr = listener.local_addr()?;
    let base = config
        .server
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/fhir"))
        .trim_end_matches('/')
        .to_string();
    let key = match config.paging_key() {
        Ok(Some(key)) => key,
        Ok(None) => {
            tracing::warn!("no paging.key configured: page links work on this instance only");
            PageSealer::random_key()
        }
        Err(e) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                e.to_string(),
            ));
        }
    };
    log_panics_without_values();
    let sealer = Arc::new(PageSealer::new(key, config.paging.token_ttl_s));
    let store = Store::open(&config.database).map_err(|e| std::io::Error::other(e.to_string()))?;
    let indexed = audit::index_unkeyed(&store).map_err(|e| std::io::Error::other(e.to_string()))?;
    if indexed > 0 {
        tracing::info!(indexed, "audit events given their search keys");
    }
    let links = PatientLinks::new(
        store.clone(),
        Duration::from_secs(config.search.identity_cache_ttl_s),
    );
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let capability_statement = Arc::new(fhir::capability::capability_statement(&base, &started));
    // A connection stays on the worker that accepted it, and a worker busy with one
    // request's records holds up the partner answers of its others while a core may
    // be idle: two workers per CPU let the kernel give that core to another.
    let workers = match config.server.workers {
        0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let policy = Arc::new(policy::Policy::new(&config.policy).map_err(|problems| {
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("policy code lists: {}", problems.join("; ")),
        )
    })?);
    let credentials = Arc::new(
        federation::load_credentials(&config)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
    );
    let mappings = Arc::new(
        federation::legacy::load_mappings(&config).map_err(|problems| {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("legacy partner mapping: {}", problems.join("; ")),
            )
        })?,
    );
    // A base URL that cannot travel in the hop header is not used as the id.
    let deployment_id: Arc<str> = config
        .server
        .deployment_id
        .clone()
        .or_else(|| config.server.public_base_url.clone())
        .filter(|id| federation::partner::is_deployment_id(id))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
        .into();
    let authenticator = Arc::new(auth::Authenticator::new(&config.auth, &base));
    if config.auth.issuers.is_empty() {
        tracing::warn!(
            "no trusted token issuer configured: every FHIR request will be refused (401)"
        );
    }
    // Audit trail searches may hold at most a quarter of the pool, so officers'
    // searches cannot starve clinical requests of connections.
    let audit_readers = Arc::new(tokio::sync::Semaphore::new(
        (config.database.pool_size as usize / 4).max(1),
    ));
    let audit = Arc::new(audit::GroupCommit::start(store.clone())?);
    // The blocking tasks are database calls (and a partner host's name look-up when a
    // connection opens): more of them at once than the pool has connections would
    // only wait for one, each on a thread of its own, and idle threads linger.
    let blocking_threads = config.database.pool_size as usize;
    let app_base = base.clone();
    let instance: Arc<str> = format!("{base} (instance {})", uuid::Uuid::new_v4()).into();
    let app = move || {
        let deployment_id = deployment_id.clone();
        let state = AppState {
            federation: Federation::new(
                &config,
                &credentials,
                &mappings,
                &deployment_id,
                links.clone(),
            ),
            sealer: sealer.clone(),
            base: app_base.clone(),
            page_limits: PageLimits {
                default_count: config.search.default_count,
                max_count: config.search.max_count,
            },
            max_body_bytes: config.server.max_body_bytes,
            capability_statement: capability_statement.clone(),
            store: store.clone(),
            audit: audit.clone(),
            partner_count: config.partners.len(),
            policy: policy.clone(),
            competence_age: config.policy.competence_age,
            cohort: config.policy.cohort.clone(),
            auth: authenticator.clone(),
            instance: instance.clone(),
            emergency_sees_past_objection: config.auth.emergency.sees_past_objection,
            require_if_match: config.policy.objection_updates_need_if_match,
            audit_readers: audit_readers.clone(),
        };
        App::new()
            .app_data(web::Data::new(state))
            .wrap(cors(&config.auth.cors_allowed_origins))
            .wrap_fn(move |mut req, srv| {
                let started = Instant::now();
                let request_id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| {
                        v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
                    .map(str::to_string)
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let method = req.method().to_string();
                // HEAD is answered as the GET it stands for (and audited as HEAD); the
                // connection sends the head without the body.
                if req.method() == actix_web::http::Method::HEAD {
                    req.extensions_mut().insert(http::audit::Head);
                    req.head_mut().method = actix_web::http::Method::GET;
                }
                // The route pattern, not the path: paths and queries carry NHS numbers.
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                // The records this request passed through go on with every partner call
                // made for it.
                let hops = http::hops::admit(&req, &deployment_id);
                let response: LocalBoxFuture<'static, Result<ServiceResponse, actix_web::Error>> =
                    match (http::head_guard::refusal_of(&req), hops) {
                        // A stand-in for a head too large to read: answered here.
                        (Some(refusal), _) => {
                            let (request, _) = req.into_parts();
                            Box::pin(async move {
                                let answer = http::refused_head(&request, refusal).await;
                                Ok(ServiceResponse::new(request, answer))
                            })
                        }
                        (None, None) => {
                            let refused = req.into_response(http::hops::refused());
                            Box::pin(async move { Ok(refused) })
                        }
                        (None, Some(visited)) => {
                            let call = srv.call(req);
                            Box::pin(VISITED.scope(visited, async move {
                                call.await.map(ServiceResponse::map_into_boxed_body)
                            }))
                        }
                    };
                async move {
                    // Handlers answer their own panics (500, audited); one anywhere
                    // else on the way still gets a 500 OperationOutcome, though no
                    // event can be written for a request that is gone.
                    let response = match http::panics::Answering(AssertUnwindSafe(response))
                        .catch_unwind()
                        .await
                    {
                        Ok(response) => response?,
                        Err(_) => return Err(http::ApiError::Internal.into()),
                    };
                    // Written before the answer leaves; an answer that cannot be
                    // audited is replaced by a 503.
                    let mut response = http::audit::record(response, &request_id).await;
                    let status = response.status().as_u16();
                    metrics::Metrics::get().request(&route, &method, status, started.elapsed());
                    tracing::info!(
                        request_id,
                        method,
                        route,
                        status,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "request"
                    );
                    if let Ok(value) = HeaderValue::from_str(&request_id) {
                        response.headers_mut().insert(REQUEST_ID, value);
                    }
                    Ok(response)
                }
            })
            .configure(http::routes)
            // Outermost: what leaves (audited, or replaced by a 503) is what is
            // compressed, when the client accepts gzip or deflate.
            .wrap(actix_web::middleware::Compress::default())
    };
    let server = http::head_guard::serve(app, listener, workers, blocking_threads)?;
    Ok((server, base))
}
