//! What the facade presents to partners: a static bearer secret, or OAuth2 client
//! credentials from a real OpenID provider (client secret or private_key_jwt), cached
//! and renewed; never the user's own token. A refusal is a partner failure.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use shcr_facade::config::{CredentialsConfig, CredentialsKind};

use crate::harness::*;
use crate::oidc::start_provider;

const SEARCH: &str = "Observation?patient=9990000018";
const PARTNER_RESOURCE: &str = "https://partner.test/fhir";

/// The `Authorization` headers the GP partner received, in order.
fn gp_authorizations(h: &Harness) -> Vec<Option<String>> {
    h.sim(GP)
        .received()
        .into_iter()
        .map(|r| r.authorization)
        .collect()
}

/// The claims of a JWT, unverified (the test only reads what the partner was sent).
fn claims_of(bearer: &str) -> Value {
    let token = bearer.strip_prefix("Bearer ").expect("a bearer token");
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn write_secret(dir: &tempfile::TempDir, name: &str, secret: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

#[tokio::test]
async fn a_static_bearer_secret_is_sent_and_the_users_token_never_is() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(&dir, "gp-token", "s3cret-for-the-gp");
    let h = Harness::with(|c| {
        c.partners[0].credentials = CredentialsConfig {
            kind: CredentialsKind::Bearer,
            token_file: Some(secret),
            ..CredentialsConfig::default()
        };
    })
    .await;
    assert_eq!(h.config.partners[0].id, GP);
    h.sim(GP)
        .require_authorization(Some("Bearer s3cret-for-the-gp"));
    let bundle = h.ok(SEARCH).await;
    assert_eq!(partner_status(&bundle, "A81001").as_deref(), Some("ok"));
    let user_token = h.token(shcr_facade::sim::issuer::Profile::Clinician);
    for sent in gp_authorizations(&h) {
        assert_eq!(sent.as_deref(), Some("Bearer s3cret-for-the-gp"));
    }
    for partner in [ACUTE, COMMUNITY] {
        for received in h.sim(partner).received() {
            assert!(
                received.authorization.is_none(),
                "{partner}: nothing configured"
            );
        }
    }
    for partner in [GP, ACUTE, COMMUNITY] {
        for received in h.sim(partner).received() {
            assert!(
                !received
                    .authorization
                    .unwrap_or_default()
                    .contains(&user_token),
                "the user's token reached {partner}"
            );
        }
    }

    // The partner stops accepting our secret: a partial answer, never a 401 to the user.
    h.sim(GP).require_authorization(Some("Bearer rotated"));
    let reply = h.get(SEARCH).await;
    assert_eq!(reply.status, 200);
    let bundle = reply.fhir();
    assert_eq!(
        partner_status(&bundle, "A81001").as_deref(),
        Some("error-response")
    );
    assert!(
        warnings(&bundle)
            .iter()
            .any(|w| w.contains("Riverside Medical Practice"))
    );
    assert!(!entries(&bundle).is_empty(), "the other partners' records");
    h.stop().await;
}

#[tokio::test]
async fn missing_secrets_stop_the_facade_at_start() {
    let mut config = test_config();
    let (_dir, url) = sqlite_url();
    config.database.url = url;
    config.partners[0].credentials = CredentialsConfig {
        kind: CredentialsKind::Bearer,
        token_env: Some("SHCR_TEST_SECRET_THAT_IS_NOT_SET".into()),
        ..CredentialsConfig::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let error = shcr_facade::server(config.clone(), listener)
        .err()
        .expect("refused");
    assert!(
        error
            .to_string()
            .contains("SHCR_TEST_SECRET_THAT_IS_NOT_SET"),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    config.partners[0].credentials = CredentialsConfig {
        kind: CredentialsKind::Bearer,
        token_file: Some(write_secret(&dir, "gp", "x")),
        client_certificate_file: Some(write_secret(&dir, "cert.pem", "not a certificate")),
        ..CredentialsConfig::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let error = shcr_facade::server(config, listener)
        .err()
        .expect("refused");
    assert!(error.to_string().contains("cert.pem"), "{error}");
}

#[tokio::test]
async fn client_credentials_tokens_are_cached_and_renewed() {
    let test = "client_credentials_tokens_are_cached_and_renewed";
    let Some(provider) = start_provider(test, None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(&dir, "client-secret", "secret");
    let token_url = format!("{}/token", provider.issuer);
    let h = Harness::with(|c| {
        c.partners[0].credentials = CredentialsConfig {
            kind: CredentialsKind::ClientCredentials,
            token_url: Some(token_url),
            client_id: Some("shcr-outbound".into()),
            client_secret_file: Some(secret),
            scope: Some("system/*.rs".into()),
            resource: Some(PARTNER_RESOURCE.into()),
            ..CredentialsConfig::default()
        };
    })
    .await;
    h.ok(SEARCH).await;
    h.ok(SEARCH).await;
    let sent = gp_authorizations(&h);
    assert!(sent.len() >= 2);
    let first = sent[0].clone().expect("a token was sent");
    assert!(
        sent.iter().all(|s| s.as_deref() == Some(first.as_str())),
        "one token, cached"
    );
    let claims = claims_of(&first);
    assert_eq!(claims["iss"], provider.issuer);
    assert_eq!(claims["client_id"], "shcr-outbound");
    assert_eq!(claims["aud"], PARTNER_RESOURCE);
    assert_eq!(claims["scope"], "system/*.rs");

    // The provider's tokens live 4 s: renewed once 80 % of that has passed.
    tokio::time::sleep(Duration::from_millis(3400)).await;
    h.sim(GP).clear_requests();
    h.ok(SEARCH).await;
    let renewed = gp_authorizations(&h)[0].clone().unwrap();
    assert_ne!(renewed, first, "renewed before expiry");
    assert_eq!(claims_of(&renewed)["client_id"], "shcr-outbound");
    h.stop().await;
}

#[tokio::test]
async fn private_key_jwt_client_assertions_get_tokens() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-384", "kid": "facade-1", "use": "sig", "alg": "ES384",
        "x": URL_SAFE_NO_PAD.encode(&point[1..49]),
        "y": URL_SAFE_NO_PAD.encode(&point[49..97]),
    }]});
    let test = "private_key_jwt_client_assertions_get_tokens";
    let Some(provider) = start_provider(test, Some(&jwks.to_string())) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    let key_file = write_secret(&dir, "facade-key.pem", &pem);
    let token_url = format!("{}/token", provider.issuer);
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let h = Harness::with(|c| {
        let outbound = CredentialsConfig {
            kind: CredentialsKind::ClientCredentials,
            token_url: Some(token_url),
            client_id: Some("shcr-outbound-jwt".into()),
            private_key_file: Some(key_file),
            private_key_alg: Some("ES384".into()),
            private_key_id: Some("facade-1".into()),
            scope: Some("system/*.rs".into()),
            resource: Some(PARTNER_RESOURCE.into()),
            ..CredentialsConfig::default()
        };
        c.partners[0].credentials = outbound.clone();
        // The hospital's token endpoint is down.
        c.partners[1].credentials = CredentialsConfig {
            token_url: Some(format!("http://127.0.0.1:{closed_port}/token")),
            ..outbound
        };
    })
    .await;
    let bundle = h.ok(SEARCH).await;
    assert_eq!(partner_status(&bundle, "A81001").as_deref(), Some("ok"));
    let sent = gp_authorizations(&h)[0].clone().expect("a token was sent");
    assert_eq!(claims_of(&sent)["client_id"], "shcr-outbound-jwt");

    assert_eq!(
        partner_status(&bundle, "RX1").as_deref(),
        Some("credentials-refused")
    );
    assert!(
        h.sim(ACUTE).received().is_empty(),
        "not asked without a token"
    );
    assert!(
        warnings(&bundle)
            .iter()
            .any(|w| w.contains("Northgate Hospitals NHS Trust")),
        "{:?}",
        warnings(&bundle)
    );
    assert!(!bundle.to_string().contains(&closed_port.to_string()));
    h.stop().await;
}
