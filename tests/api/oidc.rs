//! Tokens from a real OpenID provider process (panva's oidc-provider, from npm, under
//! tests/oidc): JWT access tokens issued by client_credentials with resource
//! indicators, validated by the facade through discovery and JWKS.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;
use shcr_facade::config::IssuerConfig;
use shcr_facade::sim::issuer::Profile;

use crate::harness::*;

const SEARCH: &str = "Observation?patient=9990000018";

pub struct Provider {
    child: Child,
    /// Held open: the provider stops when it closes.
    _stdin: ChildStdin,
    pub issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Starts the provider, or says why it cannot (which fails the run under CI).
/// `outbound_jwks` is the public JWK Set of the facade's own `private_key_jwt` client.
pub fn start_provider(test: &str, outbound_jwks: Option<&str>) -> Option<Provider> {
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider").exists() {
        let reason = "oidc-provider not installed (npm ci --prefix tests/oidc)";
        assert!(std::env::var("CI").is_err(), "{test}: {reason}");
        println!("SKIPPED {test}: {reason}");
        return None;
    }
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .current_dir(&dir)
        .env("SHCR_AUDIENCE", AUDIENCE)
        .env(
            "SHCR_OUTBOUND_JWKS",
            outbound_jwks.unwrap_or(r#"{"keys":[]}"#),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(
                PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("oidc-provider-{test}.log")),
            )
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("node runs");
    let stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).expect("provider announces its issuer");
    Some(Provider {
        issuer: ready["issuer"].as_str().unwrap().to_string(),
        child,
        _stdin: stdin,
    })
}

impl Provider {
    /// The token endpoint's answer for `client` asking `scope` for `resource`.
    async fn token(&self, client: &str, scope: &str, resource: &str) -> Value {
        let text = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some("secret"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    async fn access_token(&self, client: &str, scope: &str) -> String {
        let answer = self.token(client, scope, AUDIENCE).await;
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{client}: {answer}"))
            .to_string()
    }
}

#[tokio::test]
async fn tokens_from_a_real_provider_are_validated() {
    let test = "tokens_from_a_real_provider_are_validated";
    let Some(provider) = start_provider(test, None) else {
        return;
    };
    let issuer = provider.issuer.clone();
    let h = Harness::with(move |c| {
        c.auth.dev_mode = false;
        c.auth.issuers = vec![IssuerConfig {
            issuer,
            acr_values: Vec::new(),
        }];
    })
    .await;

    let clinician = provider.access_token("shcr-ehr", "user/*.rs").await;
    let reply = h.get_as(SEARCH, &clinician).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let total = reply.fhir()["total"].clone();
    assert!(total.as_u64().unwrap() > 0);

    let backend = provider.access_token("shcr-backend", "system/*.rs").await;
    assert_eq!(h.get_as(SEARCH, &backend).await.fhir()["total"], total);

    // A SMART app's token reaches its launch patient only.
    let app = provider.access_token("shcr-smart", "patient/*.rs").await;
    assert_eq!(h.get_as(SEARCH, &app).await.status, 200);
    assert_eq!(
        h.get_as("Observation?patient=9990000026", &app)
            .await
            .status,
        403
    );

    // Narrower scopes, and a scope the client may not have (the provider drops it).
    let observations = provider
        .access_token("shcr-ehr", "user/Observation.rs")
        .await;
    assert_eq!(h.get_as(SEARCH, &observations).await.status, 200);
    assert_eq!(
        h.get_as("Encounter?patient=9990000018", &observations)
            .await
            .status,
        403
    );
    let answer = provider.token("shcr-backend", "user/*.rs", AUDIENCE).await;
    if let Some(unscoped) = answer["access_token"].as_str() {
        assert_eq!(h.get_as(SEARCH, unscoped).await.status, 403, "{answer}");
    }

    // A token meant for another server.
    let elsewhere = provider
        .token("shcr-ehr", "user/*.rs", "https://elsewhere.test/fhir")
        .await;
    let elsewhere = elsewhere["access_token"].as_str().expect("issued");
    assert_eq!(h.get_as(SEARCH, elsewhere).await.status, 401);

    // The development issuer is not trusted here, and its tokens are refused.
    assert_eq!(
        h.get_as(SEARCH, &h.token(Profile::Clinician)).await.status,
        401
    );

    // SMART discovery reflects the real provider.
    let smart: Value = serde_json::from_str(
        &client()
            .get(format!("{}/.well-known/smart-configuration", h.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(smart["issuer"], provider.issuer);
    assert_eq!(
        smart["token_endpoint"],
        format!("{}/token", provider.issuer)
    );
    h.stop().await;
}

/// A browser's part in a sign-in: follows redirects by hand, keeping cookies, and at
/// this provider's sign-in step names the patient (its own launch/patient picker).
struct Browser {
    client: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    /// GETs `url`, and each redirect after it, until one leaves `origin`; returns it.
    async fn follow(&mut self, mut url: String, origin: &str, patient: Option<&str>) -> String {
        for _ in 0..12 {
            if !url.starts_with(origin) {
                return url;
            }
            if let Some(patient) = patient
                && url.contains("/interaction/")
                && !url.contains('?')
            {
                url = format!("{url}?patient={patient}");
            }
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let response = self
                .client
                .get(&url)
                .header("cookie", jar.join("; "))
                .send()
                .await
                .unwrap();
            for cookie in response.headers().get_all("set-cookie") {
                let pair = cookie.to_str().unwrap().split(';').next().unwrap();
                if let Some((name, value)) = pair.split_once('=') {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
            let Some(next) = response.headers().get("location") else {
                panic!(
                    "{url}: {} {}",
                    response.status(),
                    response.text().await.unwrap()
                );
            };
            let next = next.to_str().unwrap();
            url = match next.starts_with("http") {
                true => next.to_string(),
                false => format!("{origin}{next}"),
            };
        }
        panic!("too many redirects")
    }
}

#[tokio::test]
async fn a_smart_launch_through_a_real_provider_reaches_the_patient_only() {
    use base64::Engine;
    let test = "a_smart_launch_through_a_real_provider_reaches_the_patient_only";
    let Some(provider) = start_provider(test, None) else {
        return;
    };
    let issuer = provider.issuer.clone();
    let h = Harness::with(move |c| {
        c.auth.dev_mode = false;
        c.auth.issuers = vec![IssuerConfig {
            issuer,
            acr_values: Vec::new(),
        }];
    })
    .await;
    // The facade's SMART discovery repeats what this provider has.
    let smart: Value =
        serde_json::from_str(&h.get(".well-known/smart-configuration").await.text).unwrap();
    assert_eq!(
        smart["authorization_endpoint"],
        format!("{}/auth", provider.issuer)
    );
    let capabilities = smart["capabilities"].to_string();
    assert!(
        capabilities.contains("launch-standalone") && capabilities.contains("launch-ehr"),
        "{capabilities}"
    );
    let verifier = "a-verifier-of-forty-three-characters-or-more-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    let redirect = "http://127.0.0.1:9/callback";
    let authorize = |scope: &str, launch: Option<&str>, method: &str| {
        let mut url = url::Url::parse(&format!("{}/auth", provider.issuer)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", "shcr-launch")
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", scope)
            .append_pair("state", "state-7")
            .append_pair("resource", AUDIENCE)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", method);
        if let Some(launch) = launch {
            url.query_pairs_mut().append_pair("launch", launch);
        }
        url.to_string()
    };
    let exchange = |code: String| {
        let token_url = format!("{}/token", provider.issuer);
        async move {
            let text = reqwest::Client::new()
                .post(token_url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect),
                    ("client_id", "shcr-launch"),
                    ("code_verifier", verifier),
                ])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    let origin = provider.issuer.clone();
    let code_of = |back: &str| -> std::collections::HashMap<String, String> {
        url::Url::parse(back)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    };
    // Standalone (the patient picked at sign-in) and EHR (the launch names her).
    for (scope, launch, patient) in [
        (
            "openid fhirUser launch/patient patient/*.rs",
            None,
            Some("9990000018"),
        ),
        (
            "openid fhirUser launch patient/*.rs",
            Some("ehr-9990000018"),
            None,
        ),
    ] {
        let back = Browser::new()
            .follow(authorize(scope, launch, "S256"), &origin, patient)
            .await;
        let answer = code_of(&back);
        assert!(back.starts_with(redirect), "{back}");
        assert_eq!(answer["state"], "state-7");
        let tokens = exchange(answer["code"].clone()).await;
        let access = tokens["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{tokens}"))
            .to_string();
        assert!(tokens["id_token"].is_string(), "openid: {tokens}");
        let alice = h.get_as(SEARCH, &access).await;
        assert_eq!(alice.status, 200, "{scope}: {}", alice.text);
        let brian = h.get_as("Observation?patient=9990000026", &access).await;
        assert_eq!(brian.status, 403, "{scope}: the launch's patient only");
    }
    // The same provider refuses PKCE's plain method.
    let refused = Browser::new()
        .follow(
            authorize("openid launch/patient patient/*.rs", None, "plain"),
            &origin,
            None,
        )
        .await;
    assert!(
        refused.starts_with(redirect) && refused.contains("error="),
        "{refused}"
    );
    assert!(!refused.contains("code="));
    h.stop().await;
}
