//! SMART App Launch against the demo's authorization server: the protocol played by
//! hand (errors that go back to the app and errors that must not, PKCE, codes used
//! once, refresh, scopes limited to the user, CORS, confidential clients, EHR launch),
//! the shipped app in a real browser (Debian's Chromium, driven by playwright-core),
//! and the Python SMART client's own OAuth code.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use shcr_facade::sim::authorization::PickablePatient;

use crate::cli::Demo;
use crate::harness::*;

const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn authorize_params(client_id: &str, scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", scope.into()),
        ("state", "state-123".into()),
        ("aud", AUDIENCE.into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
        ("nonce", "nonce-9".into()),
    ]
}

fn location(response: &reqwest::Response) -> url::Url {
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn claims_of(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn harness_patients(h: &Harness) {
    let data = PartnerData::load(&examples().join("data").join(GP)).unwrap();
    h.issuer.set_patients(PickablePatient::from_resources(
        data.of_type(shcr_facade::fhir::ResourceType::patient()),
    ));
}

use shcr_facade::sim::PartnerData;

/// Signs in through the pages as `user` (with `patient` where asked), returning
/// the code's redirect.
async fn sign_in(
    h: &Harness,
    params: &[(&str, String)],
    user: &str,
    patient: Option<&str>,
) -> url::Url {
    let web = browser();
    let page = web
        .get(format!("{}/authorize", h.issuer.issuer))
        .query(params)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let pending = html
        .split("name=\"pending\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a sign-in form")
        .to_string();
    let mut form = vec![
        ("pending", pending),
        ("user", user.to_string()),
        ("decision", "allow".into()),
    ];
    if let Some(patient) = patient {
        form.push(("patient", patient.to_string()));
    }
    let answer = web
        .post(format!("{}/authorize", h.issuer.issuer))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FOUND);
    location(&answer)
}

async fn exchange(
    h: &Harness,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut request = browser()
        .post(format!("{}/token", h.issuer.issuer))
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn a_standalone_launch_gives_a_patient_token_an_id_token_and_a_refresh_token() {
    let h = Harness::start().await;
    harness_patients(&h);
    let scope = "launch/patient openid fhirUser patient/*.rs user/Consent.cruds offline_access";
    let params = authorize_params("dev-public-app", scope);
    let back = sign_in(&h, &params, "clinician", Some(ALICE)).await;
    let answer = query(&back);
    assert!(back.as_str().starts_with(REDIRECT));
    assert_eq!(answer["state"], "state-123", "state echoed");
    let code = answer["code"].clone();
    let form = |code: &str, verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", REDIRECT.to_string()),
            ("client_id", "dev-public-app".to_string()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    let as_refs = |f: &Vec<(&'static str, String)>| {
        f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
    };
    let sent = as_refs(&form(&code, VERIFIER));
    let sent: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, tokens) = exchange(&h, &sent, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["patient"], ALICE);
    assert_eq!(tokens["token_type"], "Bearer");
    let granted = tokens["scope"].as_str().unwrap();
    assert!(granted.contains("patient/*.rs") && granted.contains("launch/patient"));
    assert!(
        !granted.contains("user/Consent.cruds"),
        "a clinician may not have the register: {granted}"
    );
    let id = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], "dev-public-app");
    assert_eq!(id["nonce"], "nonce-9");
    assert!(
        id["fhirUser"]
            .as_str()
            .unwrap()
            .ends_with("/Practitioner/dev-clinician")
    );
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token")
        .to_string();
    // The facade takes the token, for Alice only.
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let alice = h
        .get_as(&format!("Observation?patient={ALICE}"), &access)
        .await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.text);
    let brian = h.get_as("Observation?patient=9990000026", &access).await;
    assert_eq!(brian.status, StatusCode::FORBIDDEN);
    // The code again: refused, and the refresh token it gave revoked.
    let (status, error) = exchange(&h, &sent, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, error) = exchange(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "dev-public-app"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "revoked with the reused code"
    );
    // A fresh launch: a wrong verifier is refused; the refresh token renews.
    let back = sign_in(&h, &params, "clinician", Some(ALICE)).await;
    let code = query(&back)["code"].clone();
    let wrong = as_refs(&form(&code, &"x".repeat(43)));
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, error) = exchange(&h, &wrong, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let back = sign_in(&h, &params, "clinician", Some(ALICE)).await;
    let code = query(&back)["code"].clone();
    let right = as_refs(&form(&code, VERIFIER));
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, tokens) = exchange(&h, &right, None).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, renewed) = exchange(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "dev-public-app"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(renewed["patient"], ALICE);
    assert_ne!(renewed["refresh_token"], tokens["refresh_token"], "rotated");
    h.stop().await;
}

#[tokio::test]
async fn errors_go_back_to_the_app_only_when_its_address_is_registered() {
    let h = Harness::start().await;
    let web = browser();
    let authorize = |params: Vec<(&'static str, String)>| {
        let web = web.clone();
        let url = format!("{}/authorize", h.issuer.issuer);
        async move { web.get(url).query(&params).send().await.unwrap() }
    };
    let with = |name: &'static str, value: &str| {
        let mut params = authorize_params("dev-public-app", "launch/patient patient/*.rs");
        params.retain(|(k, _)| *k != name);
        params.push((name, value.to_string()));
        params
    };
    // Not registered: a page, never a redirect.
    for params in [
        with("client_id", "nobody"),
        with("redirect_uri", "https://evil.example/steal"),
    ] {
        let page = authorize(params).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(page.headers().get("location").is_none());
    }
    // Registered: back to the app with the error and its state.
    for (params, error) in [
        (with("code_challenge_method", "plain"), "invalid_request"),
        (with("code_challenge", ""), "invalid_request"),
        (
            with("aud", "https://another.example/fhir"),
            "invalid_request",
        ),
        (with("response_type", "token"), "unsupported_response_type"),
        (with("launch", "no-such-launch"), "invalid_request"),
    ] {
        let reply = authorize(params).await;
        assert_eq!(reply.status(), StatusCode::FOUND);
        let back = query(&location(&reply));
        assert_eq!(back["error"], error);
        assert_eq!(back["state"], "state-123");
        assert!(!back.contains_key("code"));
    }
    // The development shortcut still answers a profile; a grant it cannot honour is refused.
    let (status, error) = exchange(
        &h,
        &[
            ("grant_type", "authorization_code"),
            ("code", "invented"),
            ("client_id", "dev-public-app"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = exchange(&h, &[("grant_type", "password")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, minted) = exchange(&h, &[("profile", "clinician")], None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(minted["access_token"].is_string());
    h.stop().await;
}

#[tokio::test]
async fn scopes_are_those_the_user_may_have_and_a_confidential_client_authenticates() {
    let h = Harness::start().await;
    harness_patients(&h);
    let mut params = authorize_params(
        "dev-confidential-app",
        "openid fhirUser user/*.rs user/Consent.cruds user/AuditEvent.rs patient/*.rs launch/patient",
    );
    params.retain(|(k, _)| *k != "nonce");
    // The officer: the register and the trail, no clinical records, no patient.
    let back = sign_in(&h, &params, "privacy-officer", Some(ALICE)).await;
    let code = query(&back)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", "dev-confidential-app"),
    ];
    let (status, error) = exchange(&h, &form, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "no secret"
    );
    let back = sign_in(&h, &params, "privacy-officer", Some(ALICE)).await;
    let code = query(&back)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, tokens) = exchange(
        &h,
        &form,
        Some(("dev-confidential-app", "dev-confidential-secret")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let scope = tokens["scope"].as_str().unwrap();
    assert!(
        scope.contains("user/Consent.cruds") && scope.contains("user/AuditEvent.rs"),
        "{scope}"
    );
    assert!(
        !scope.contains("patient/") && !scope.contains("user/*.rs"),
        "{scope}"
    );
    assert!(tokens["patient"].is_null(), "no patient scopes, no patient");
    let trail = h
        .get_as(
            "AuditEvent?_count=1",
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.text);
    h.stop().await;
}

#[tokio::test]
async fn an_ehr_launch_names_patient_and_user_and_the_token_endpoint_answers_registered_origins() {
    let h = Harness::start().await;
    harness_patients(&h);
    let web = browser();
    let launcher = h.issuer.launcher_url();
    let page = web.get(&launcher).send().await.unwrap();
    assert!(page.text().await.unwrap().contains(ALICE));
    let app = "http://127.0.0.1:9/app/launch.html";
    let started = web
        .post(&launcher)
        .form(&[
            ("patient", ALICE),
            ("user", "nurse"),
            ("app", app),
            ("iss", AUDIENCE),
        ])
        .send()
        .await
        .unwrap();
    let at_app = location(&started);
    assert!(at_app.as_str().starts_with(app));
    let launch = query(&at_app);
    assert_eq!(launch["iss"], AUDIENCE);
    let mut params = authorize_params("dev-public-app", "launch openid fhirUser patient/*.rs");
    params.push(("launch", launch["launch"].clone()));
    // The EHR said who and for whom: no pages, a code at once.
    let reply = web
        .get(format!("{}/authorize", h.issuer.issuer))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::FOUND);
    let code = query(&location(&reply))["code"].clone();
    let response = web
        .post(format!("{}/token", h.issuer.issuer))
        .header("origin", "http://127.0.0.1:9")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "dev-public-app"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://127.0.0.1:9"
    );
    let tokens: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(tokens["patient"], ALICE);
    let access = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        access["selected_roleid"], "555021936108",
        "the nurse's role"
    );
    // Emergency access is not the nurse's.
    let emergency = h
        .get_with(
            &format!("Observation?patient={ALICE}"),
            &[
                (
                    "authorization",
                    &format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
                ),
                ("x-purpose-of-use", "BTG"),
            ],
        )
        .await;
    assert_eq!(
        emergency.status,
        StatusCode::FORBIDDEN,
        "{}",
        emergency.text
    );
    // No CORS for an origin no client registered.
    let preflight = web
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/token", h.issuer.issuer),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    h.stop().await;
}

#[tokio::test]
async fn the_capability_statement_carries_the_oauth_uris() {
    let h = Harness::start().await;
    let statement = h.ok("metadata").await;
    let extension = &statement["rest"][0]["security"]["extension"][0];
    assert_eq!(
        extension["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
    let uris: HashMap<String, String> = extension["extension"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["url"].as_str().unwrap().to_string(),
                e["valueUri"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(uris["authorize"], format!("{}/authorize", h.issuer.issuer));
    assert_eq!(uris["token"], format!("{}/token", h.issuer.issuer));
    let smart: Value =
        serde_json::from_str(&h.get(".well-known/smart-configuration").await.text).unwrap();
    let capabilities = smart["capabilities"].to_string();
    for c in [
        "launch-ehr",
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "sso-openid-connect",
        "permission-offline",
    ] {
        assert!(capabilities.contains(c), "{c}: {capabilities}");
    }
    assert_eq!(
        smart["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    h.stop().await;
}

fn tool(path: &str, install: &str) -> Option<PathBuf> {
    let found = PathBuf::from(path);
    if found.exists() {
        return Some(found);
    }
    assert!(std::env::var("CI").is_err(), "{path} missing ({install})");
    None
}

/// Records Hannah's objection on a running demo, as its privacy officer.
async fn hannah_objects(demo: &Demo) {
    let body = crate::objection::objection(
        "9990000085",
        "active",
        serde_json::json!({"reference": "Patient/9990000085"}),
    );
    let reply = client_as(&demo.token("OFFICER"))
        .post(format!("{}/Consent", demo.base))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_shipped_app_launches_in_a_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some(chromium) = tool(
        &std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()),
        "apt-get install chromium",
    ) else {
        return println!("SKIPPED the_shipped_app_launches_in_a_browser: no Chromium");
    };
    if tool(
        root.join("tests/browser/node_modules/playwright-core")
            .to_str()
            .unwrap(),
        "npm ci --prefix tests/browser",
    )
    .is_none()
    {
        return println!("SKIPPED the_shipped_app_launches_in_a_browser: no playwright-core");
    }
    let demo = Demo::start(&["--issuer-port", "0"]);
    hannah_objects(&demo).await;
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smart-app.png");
    let run = tokio::process::Command::new("node")
        .current_dir(root.join("tests/browser"))
        .arg("launch.mjs")
        .args([&demo.base, &demo.issuer, screenshot.to_str().unwrap()])
        .env("CHROMIUM", chromium)
        .output()
        .await
        .expect("node runs");
    let out = String::from_utf8_lossy(&run.stdout);
    println!("{out}");
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("browser: 12 passed, 0 failed"), "{out}");
    assert!(screenshot.exists());
}

#[tokio::test]
async fn the_python_smart_client_completes_the_authorization() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("SHCR_PYTHON").unwrap_or_else(|_| {
        root.join("target/smart-py/bin/python")
            .display()
            .to_string()
    });
    let Some(python) = tool(
        &python,
        "python3 -m venv target/smart-py && target/smart-py/bin/pip install -r tests/smart/requirements.txt",
    ) else {
        return println!(
            "SKIPPED the_python_smart_client_completes_the_authorization: no Python with fhirclient"
        );
    };
    let demo = Demo::start(&["--issuer-port", "0"]);
    let run = tokio::process::Command::new(python)
        .arg(root.join("tests/smart/fhirclient_launch.py"))
        .args([&demo.base])
        .output()
        .await
        .expect("python runs");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("fhirclient: 4 passed, 0 failed"), "{out}");
}

#[test]
fn the_vendored_smart_client_is_the_one_the_lock_file_pins() {
    let app = examples().join("apps/record");
    let built = app.join("node_modules/fhirclient/build/fhir-client.min.js");
    if tool(
        built.to_str().unwrap(),
        "npm ci --prefix examples/apps/record",
    )
    .is_none()
    {
        return println!(
            "SKIPPED the_vendored_smart_client_is_the_one_the_lock_file_pins: not installed"
        );
    }
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(app.join("package-lock.json")).unwrap())
            .unwrap();
    assert_eq!(
        lock["packages"]["node_modules/fhirclient"]["version"],
        "2.6.3"
    );
    assert!(
        std::fs::read(built).unwrap() == std::fs::read(app.join("vendor/fhir-client.js")).unwrap(),
        "vendor/fhir-client.js differs from the pinned package: npm run vendor --prefix examples/apps/record"
    );
}
