//! The demo's SMART App Launch 2.x authorization server (development only, as the
//! rest of the development issuer): `authorization_code` with PKCE S256 (plain
//! refused), `state` echoed, `redirect_uri` checked against the registered client,
//! public and confidential clients, EHR launch (`launch`, from the launcher page) and
//! standalone launch (`launch/patient`, with a patient picker), a user picker,
//! `openid fhirUser` giving a signed `id_token`, refresh tokens for `offline_access`
//! and `online_access`, and CORS on the token endpoint for registered origins.
//! Errors go back to the app's redirect URI where the spec says so, and are shown on
//! a page where the client or redirect URI is not registered.
//!
//! It also serves the EHR launcher (`/launcher`) and the shipped SMART app
//! (`/apps/record/`), on the issuer's origin.

pub mod clients;
mod pages;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use url::Url;

pub use pages::PickablePatient;

use self::clients::{Client, User};
use super::issuer::{IssuerState, TokenRequest};

/// How long a code may wait to be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
const ACCESS_LIFETIME_S: i64 = 3600;

/// What an app asked for, held while the user chooses.
#[derive(Debug, Clone)]
struct Asked {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: String,
    challenge: String,
    nonce: Option<String>,
}

/// What was granted: behind a code, then behind a refresh token.
#[derive(Debug, Clone)]
struct Grant {
    asked: Asked,
    user: User,
    patient: Option<String>,
    scopes: Vec<String>,
    issued: Instant,
}

/// A launch an EHR started: who, and for which patient.
#[derive(Debug, Clone)]
struct Launch {
    user: User,
    patient: String,
}

#[derive(Default)]
pub struct Authorizations {
    pending: HashMap<String, (Asked, Option<Launch>)>,
    codes: HashMap<String, Grant>,
    /// Codes already exchanged: a second use is refused, and revokes what the first
    /// gave (RFC 6749 4.1.2).
    used: HashMap<String, Vec<String>>,
    refresh: HashMap<String, Grant>,
    launches: HashMap<String, Launch>,
    pub patients: Vec<PickablePatient>,
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/authorize", web::get().to(authorize))
        .route("/authorize", web::post().to(decide))
        .route("/token", web::post().to(token))
        .route(
            "/token",
            web::method(actix_web::http::Method::OPTIONS).to(preflight),
        );
}

/// The launcher and the shipped app, at the origin's root.
pub fn pages(config: &mut web::ServiceConfig) {
    config
        .route("/launcher", web::get().to(launcher))
        .route("/launcher", web::post().to(launch))
        .route("/apps/record/{file:.*}", web::get().to(app_file));
}

impl IssuerState {
    fn origin(&self) -> String {
        Url::parse(&self.issuer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// The shipped app's address (its redirect URI is `index.html` there).
    pub fn app_url(&self) -> String {
        format!("{}/apps/record/", self.origin())
    }

    fn clients(&self) -> Vec<Client> {
        clients::registered(&self.app_url())
    }

    fn client(&self, id: &str) -> Option<Client> {
        self.clients().into_iter().find(|c| c.id == id)
    }

    fn audience(&self) -> String {
        self.audience.read().map(|a| a.clone()).unwrap_or_default()
    }
}

/// A redirect to the app with `params` (and the `state` it sent).
fn back_to(redirect_uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    let mut url = match Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return page(400, pages::error("Invalid redirect URI", redirect_uri)),
    };
    url.query_pairs_mut().extend_pairs(params);
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn refuse_to(asked_redirect: &str, state: &str, error: &str, description: &str) -> HttpResponse {
    back_to(
        asked_redirect,
        &[
            ("error", error),
            ("error_description", description),
            ("state", state),
        ],
    )
}

fn page(status: u16, html: String) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

/// `GET /authorize`: checks the request, then asks who is signing in (and for
/// which patient), or, for an EHR launch that says both, answers at once.
async fn authorize(
    query: web::Query<HashMap<String, String>>,
    state: web::Data<IssuerState>,
) -> HttpResponse {
    let get = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let (client_id, redirect_uri) = (get("client_id"), get("redirect_uri"));
    // Not the app's: nothing may be sent to an address it did not register.
    let Some(client) = state.client(client_id) else {
        return page(
            400,
            pages::error(
                "Unknown app",
                &format!("no client is registered as '{client_id}'"),
            ),
        );
    };
    if !client.accepts(redirect_uri) {
        return page(
            400,
            pages::error(
                "Redirect URI not registered",
                &format!("'{redirect_uri}' is not registered for {client_id}"),
            ),
        );
    }
    let app_state = get("state");
    let refuse =
        |error: &str, description: &str| refuse_to(redirect_uri, app_state, error, description);
    if get("response_type") != "code" {
        return refuse(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if app_state.is_empty() {
        return refuse("invalid_request", "state is required");
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
        return refuse(
            "invalid_request",
            "PKCE is required with code_challenge_method=S256 (plain is refused)",
        );
    }
    if get("aud").trim_end_matches('/') != state.audience().trim_end_matches('/') {
        return refuse(
            "invalid_request",
            "aud must be this Shared Care Record's FHIR base URL",
        );
    }
    let scopes: Vec<String> = get("scope")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let launch = match query.get("launch") {
        Some(id) => match state
            .authorizations
            .lock()
            .expect("authorizations lock")
            .launches
            .get(id)
        {
            Some(launch) => Some(launch.clone()),
            None => return refuse("invalid_request", "unknown or expired launch"),
        },
        None => None,
    };
    let asked = Asked {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state: app_state.to_string(),
        challenge: get("code_challenge").to_string(),
        nonce: query.get("nonce").cloned(),
    };
    // An EHR launch names the user and the patient: nothing to ask.
    if let Some(launch) = &launch
        && asked.scopes.iter().any(|s| s == "launch")
    {
        return grant(
            &state,
            asked.clone(),
            launch.user,
            Some(launch.patient.clone()),
        );
    }
    let wants_patient = asked.scopes.iter().any(|s| s == "launch/patient");
    let scopes = asked.scopes.join(" ");
    let pending = random();
    let mut authorizations = state.authorizations.lock().expect("authorizations lock");
    let patients = authorizations.patients.clone();
    authorizations
        .pending
        .insert(pending.clone(), (asked, launch));
    drop(authorizations);
    page(
        200,
        pages::sign_in(
            &pending,
            client_id,
            &scopes,
            wants_patient.then_some(&patients[..]),
        ),
    )
}

/// `POST /authorize`: the person's choice on the sign-in page.
async fn decide(
    form: web::Form<HashMap<String, String>>,
    state: web::Data<IssuerState>,
) -> HttpResponse {
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let taken = state
        .authorizations
        .lock()
        .expect("authorizations lock")
        .pending
        .remove(get("pending"));
    let Some((asked, launch)) = taken else {
        return page(
            400,
            pages::error("Sign-in expired", "start the launch again from the app"),
        );
    };
    if get("decision") != "allow" {
        return refuse_to(
            &asked.redirect_uri,
            &asked.state,
            "access_denied",
            "the user did not allow the app",
        );
    }
    let Some(user) = clients::user(get("user")) else {
        return refuse_to(
            &asked.redirect_uri,
            &asked.state,
            "access_denied",
            "no such user",
        );
    };
    let patient = match (&launch, form.get("patient")) {
        (Some(launch), _) => Some(launch.patient.clone()),
        (None, Some(nhs)) => {
            let known = state
                .authorizations
                .lock()
                .expect("authorizations lock")
                .patients
                .iter()
                .any(|p| &p.nhs_number == nhs);
            if !known {
                return refuse_to(
                    &asked.redirect_uri,
                    &asked.state,
                    "invalid_request",
                    "no such patient",
                );
            }
            Some(nhs.clone())
        }
        (None, None) => None,
    };
    grant(&state, asked, user, patient)
}

/// Issues a code for what `user` may have of what was asked, back to the app.
fn grant(state: &IssuerState, asked: Asked, user: User, patient: Option<String>) -> HttpResponse {
    let scopes: Vec<String> = asked
        .scopes
        .iter()
        .filter(|s| clients::may_have(user, s))
        // Patient-level scopes need a patient in context.
        .filter(|s| patient.is_some() || !(s.starts_with("patient/") || s.starts_with("launch")))
        .cloned()
        .collect();
    // A patient in context only where patient-level scopes were granted.
    let patient = patient.filter(|_| scopes.iter().any(|s| s.starts_with("patient/")));
    let code = random();
    let (redirect_uri, app_state) = (asked.redirect_uri.clone(), asked.state.clone());
    state
        .authorizations
        .lock()
        .expect("authorizations lock")
        .codes
        .insert(
            code.clone(),
            Grant {
                asked,
                user,
                patient,
                scopes,
                issued: Instant::now(),
            },
        );
    back_to(&redirect_uri, &[("code", &code), ("state", &app_state)])
}

/// The client a token request is from: Basic credentials or `client_secret` for a
/// confidential client, `client_id` alone for a public one.
fn authenticate(
    req: &HttpRequest,
    form: &HashMap<String, String>,
    state: &IssuerState,
) -> Result<Client, Box<HttpResponse>> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(i, p)| (i.to_string(), p.to_string()))
        });
    let (id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned(),
        ),
    };
    let refused = || {
        Box::new(token_error(
            401,
            "invalid_client",
            "client authentication failed",
        ))
    };
    let client = state.client(&id).ok_or_else(refused)?;
    match (client.secret, secret.as_deref()) {
        (None, None) => Ok(client),
        // Development secrets only: a plain comparison.
        (Some(expected), Some(given)) if expected == given => Ok(client),
        _ => Err(refused()),
    }
}

fn token_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"error": error, "error_description": description}))
}

/// CORS for a registered origin, on the token endpoint.
fn cors(req: &HttpRequest, state: &IssuerState, mut response: HttpResponse) -> HttpResponse {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    if let Some(origin) = origin
        && state.clients().iter().any(|c| c.allows_origin(origin))
        && let Ok(value) = header::HeaderValue::from_str(origin)
    {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    }
    response
}

async fn preflight(req: HttpRequest, state: web::Data<IssuerState>) -> HttpResponse {
    let response = HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "authorization, content-type",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish();
    cors(&req, &state, response)
}

/// `POST /token`: `authorization_code` and `refresh_token` grants; without a
/// `grant_type`, the development shortcut (`profile`, `patient`, `scope`) that the
/// demo's printed tokens, the tests and the Postman collection use.
async fn token(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<IssuerState>,
) -> HttpResponse {
    let response = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange_code(&req, &form, &state),
        Some("refresh_token") => refresh(&req, &form, &state),
        Some(_) => token_error(
            400,
            "unsupported_grant_type",
            "authorization_code and refresh_token only",
        ),
        None if form.contains_key("profile") => super::issuer::development_token(&state, &form),
        None => token_error(400, "invalid_request", "grant_type is required"),
    };
    cors(&req, &state, response)
}

fn exchange_code(
    req: &HttpRequest,
    form: &HashMap<String, String>,
    state: &IssuerState,
) -> HttpResponse {
    let client = match authenticate(req, form, state) {
        Ok(client) => client,
        Err(refused) => return *refused,
    };
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let code = get("code");
    let mut authorizations = state.authorizations.lock().expect("authorizations lock");
    let Some(grant) = authorizations.codes.remove(code) else {
        // A code used twice: what the first use gave is revoked.
        if let Some(issued) = authorizations.used.remove(code) {
            for refresh in issued {
                authorizations.refresh.remove(&refresh);
            }
            return token_error(
                400,
                "invalid_grant",
                "the code has already been used; what it gave is revoked",
            );
        }
        return token_error(400, "invalid_grant", "unknown code");
    };
    if grant.issued.elapsed() > CODE_LIFETIME {
        return token_error(400, "invalid_grant", "the code has expired");
    }
    if grant.asked.client_id != client.id {
        return token_error(
            400,
            "invalid_grant",
            "the code was issued to another client",
        );
    }
    if get("redirect_uri") != grant.asked.redirect_uri {
        return token_error(
            400,
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        );
    }
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        get("code_verifier").as_bytes(),
    ));
    if get("code_verifier").len() < 43 || challenge != grant.asked.challenge {
        return token_error(
            400,
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        );
    }
    let (body, refresh_token) = tokens(state, &grant);
    let mut issued = Vec::new();
    if let Some(refresh_token) = refresh_token {
        issued.push(refresh_token.clone());
        authorizations.refresh.insert(refresh_token, grant);
    }
    authorizations.used.insert(code.to_string(), issued);
    token_response(body)
}

fn refresh(req: &HttpRequest, form: &HashMap<String, String>, state: &IssuerState) -> HttpResponse {
    let client = match authenticate(req, form, state) {
        Ok(client) => client,
        Err(refused) => return *refused,
    };
    let given = form.get("refresh_token").cloned().unwrap_or_default();
    let mut authorizations = state.authorizations.lock().expect("authorizations lock");
    let Some(mut grant) = authorizations.refresh.remove(&given) else {
        return token_error(400, "invalid_grant", "unknown or revoked refresh token");
    };
    if grant.asked.client_id != client.id {
        return token_error(
            400,
            "invalid_grant",
            "the refresh token was issued to another client",
        );
    }
    // A narrower scope may be asked; never a wider one.
    if let Some(asked) = form.get("scope") {
        let narrower: Vec<String> = asked
            .split_whitespace()
            .filter(|s| grant.scopes.iter().any(|g| g == s))
            .map(str::to_string)
            .collect();
        grant.scopes = narrower;
    }
    grant.asked.nonce = None;
    let (body, refresh_token) = tokens(state, &grant);
    if let Some(refresh_token) = refresh_token {
        authorizations.refresh.insert(refresh_token, grant);
    }
    token_response(body)
}

fn token_response(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// The token response for a grant, and the refresh token it carries, if any.
fn tokens(state: &IssuerState, grant: &Grant) -> (Value, Option<String>) {
    let scope = grant.scopes.join(" ");
    let mut claims = state.claims(&TokenRequest {
        profile: Some(grant.user.profile),
        patient: grant.patient.clone(),
        scope: Some(scope.clone()),
        lifetime_s: Some(ACCESS_LIFETIME_S),
    });
    claims["client_id"] = json!(grant.asked.client_id);
    let fhir_user = format!(
        "{}/Practitioner/{}",
        state.audience().trim_end_matches('/'),
        claims["sub"].as_str().unwrap_or_default()
    );
    claims["fhirUser"] = json!(fhir_user);
    match &grant.patient {
        Some(patient) => claims["patient"] = json!(patient),
        None => {
            if let Some(map) = claims.as_object_mut() {
                map.remove("patient");
            }
        }
    }
    let mut body = json!({
        "access_token": state.signer().sign(&claims),
        "token_type": "Bearer",
        "expires_in": ACCESS_LIFETIME_S,
        "scope": scope,
    });
    if let Some(patient) = &grant.patient {
        body["patient"] = json!(patient);
        body["need_patient_banner"] = json!(true);
    }
    let has = |s: &str| grant.scopes.iter().any(|g| g == s);
    if has("openid") {
        let now = chrono::Utc::now().timestamp();
        let mut id = json!({
            "iss": state.issuer,
            "sub": claims["sub"],
            "aud": grant.asked.client_id,
            "iat": now,
            "exp": now + ACCESS_LIFETIME_S,
            "name": claims["name"],
        });
        if has("fhirUser") {
            id["fhirUser"] = json!(fhir_user);
        }
        if let Some(nonce) = &grant.asked.nonce {
            id["nonce"] = json!(nonce);
        }
        body["id_token"] = json!(state.signer().sign_id_token(&id));
    }
    let refresh_token = (has("offline_access") || has("online_access")).then(random);
    if let Some(refresh_token) = &refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    (body, refresh_token)
}

async fn launcher(state: web::Data<IssuerState>) -> HttpResponse {
    let patients = state
        .authorizations
        .lock()
        .expect("authorizations lock")
        .patients
        .clone();
    page(
        200,
        pages::launcher(
            &patients,
            &format!("{}launch.html", state.app_url()),
            &state.audience(),
        ),
    )
}

/// `POST /launcher`: starts a launch and sends the browser to the app with it.
async fn launch(
    form: web::Form<HashMap<String, String>>,
    state: web::Data<IssuerState>,
) -> HttpResponse {
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let Some(user) = clients::user(get("user")) else {
        return page(400, pages::error("No such user", get("user")));
    };
    let mut authorizations = state.authorizations.lock().expect("authorizations lock");
    if !authorizations
        .patients
        .iter()
        .any(|p| p.nhs_number == get("patient"))
    {
        return page(400, pages::error("No such patient", get("patient")));
    }
    let Ok(mut app) = Url::parse(get("app")) else {
        return page(400, pages::error("Not an app URL", get("app")));
    };
    let id = random();
    authorizations.launches.insert(
        id.clone(),
        Launch {
            user,
            patient: get("patient").to_string(),
        },
    );
    app.query_pairs_mut()
        .append_pair("launch", &id)
        .append_pair("iss", get("iss"));
    HttpResponse::Found()
        .insert_header((header::LOCATION, app.to_string()))
        .finish()
}

/// The shipped app's files, built into the binary so the demo runs from anywhere.
async fn app_file(path: web::Path<String>) -> HttpResponse {
    let (body, content_type): (&str, &str) = match path.as_str() {
        "" | "index.html" => (
            include_str!("../../../examples/apps/record/index.html"),
            "text/html; charset=utf-8",
        ),
        "launch.html" => (
            include_str!("../../../examples/apps/record/launch.html"),
            "text/html; charset=utf-8",
        ),
        "app.js" => (
            include_str!("../../../examples/apps/record/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "app.css" => (
            include_str!("../../../examples/apps/record/app.css"),
            "text/css; charset=utf-8",
        ),
        "fhir-client.js" => (
            include_str!("../../../examples/apps/record/vendor/fhir-client.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
