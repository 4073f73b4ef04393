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
        .stderr(Stdio::null())
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
