//! Who may look: token validation, SMART scopes, launch context, roles, purpose of
//! use, SMART discovery and CORS, against a development issuer on loopback.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shcr_facade::sim::PartnerData;
use shcr_facade::sim::issuer::{DevIssuer, Profile, TokenRequest};

use crate::harness::*;

const BRIAN: &str = "9990000026";
const SEARCH: &str = "Observation?patient=9990000018";

fn claims(h: &Harness, profile: Profile) -> Value {
    h.issuer.claims(&TokenRequest {
        profile: Some(profile),
        ..TokenRequest::default()
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` with the given parts, signature as raw bytes.
fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// Asserts a 401 `invalid_token` with a challenge and an OperationOutcome `login`.
async fn assert_invalid(h: &Harness, token: &str, why: &str) {
    let response = client()
        .get(format!("{}/{SEARCH}", h.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "{why}");
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{why}: {challenge}"
    );
    let outcome: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{why}");
    assert_eq!(outcome["issue"][0]["code"], "login", "{why}");
}

#[tokio::test]
async fn no_token_is_401_with_a_challenge() {
    let h = Harness::start().await;
    for path in [
        SEARCH.to_string(),
        "Patient/9990000018".into(),
        "Patient/9990000018/$everything".into(),
        "Encounter/northgate-acute.enc-alice-admission".into(),
        "Consent/9990000018".into(),
    ] {
        let response = client()
            .get(format!("{}/{path}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer realm=")
        );
    }
    // Discovery documents need no token.
    for open in ["metadata", ".well-known/smart-configuration"] {
        let response = client()
            .get(format!("{}/{open}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{open}");
    }
    assert!(
        h.sim(GP).requests().is_empty(),
        "no partner is asked for a refused request"
    );
    h.stop().await;
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let h = Harness::start().await;
    let good = claims(&h, Profile::Clinician);
    assert_eq!(h.get_as(SEARCH, &h.issuer.sign(&good)).await.status, 200);

    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        change(&mut c);
        h.issuer.sign(&c)
    };
    assert_invalid(
        &h,
        &with(&|c| {
            c["exp"] = json!(now() - 600);
            c["iat"] = json!(now() - 4000);
        }),
        "expired",
    )
    .await;
    assert_invalid(
        &h,
        &with(&|c| c["nbf"] = json!(now() + 600)),
        "not yet valid",
    )
    .await;
    assert_invalid(
        &h,
        &with(&|c| c["aud"] = json!("https://elsewhere.test/fhir")),
        "wrong audience",
    )
    .await;
    assert_invalid(
        &h,
        &with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        "no expiry",
    )
    .await;

    assert_invalid(
        &h,
        &with(&|c| {
            let c = c.as_object_mut().unwrap();
            c.remove("sub");
            c.remove("client_id");
        }),
        "no subject",
    )
    .await;

    // Another issuer, not trusted; and its key used under the trusted issuer's name.
    let stranger = start_issuer();
    assert_invalid(&h, &token(&stranger, Profile::Clinician), "wrong issuer").await;
    assert_invalid(&h, &stranger.sign(&good), "unknown kid").await;

    // A valid signature over other claims.
    let valid = h.issuer.sign(&good);
    let mut parts: Vec<&str> = valid.split('.').collect();
    let mut tampered = good.clone();
    tampered["sub"] = json!("someone-else");
    let payload = b64(tampered.to_string().as_bytes());
    parts[1] = &payload;
    assert_invalid(&h, &parts.join("."), "bad signature").await;

    let kid = h.issuer.kid();
    assert_invalid(
        &h,
        &compact(&json!({"alg": "none", "typ": "JWT"}), &good, b""),
        "alg none",
    )
    .await;
    // HS256 keyed with the issuer's public key, the classic confusion attack.
    let jwks: Value = client()
        .get(format!("{}/jwks", h.issuer.issuer))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let public = jwks["keys"][0].to_string();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(good.to_string().as_bytes())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes());
    let mac = ring::hmac::sign(&key, signing_input.as_bytes());
    assert_invalid(
        &h,
        &format!("{signing_input}.{}", b64(mac.as_ref())),
        "HS256 with the public key",
    )
    .await;
    assert_invalid(&h, "not-a-jwt", "garbage").await;
    let basic = client()
        .get(format!("{}/{SEARCH}", h.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401, "not a bearer token");
    stranger.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn development_tokens_need_development_mode() {
    let h = Harness::with(|c| c.auth.dev_mode = false).await;
    assert_invalid(&h, &h.token(Profile::Clinician), "development token").await;
    let ordinary = production_token(&h.issuer, Profile::Clinician);
    assert_eq!(h.get_as(SEARCH, &ordinary).await.status, 200);
    h.stop().await;
}

#[tokio::test]
async fn a_token_verified_before_is_refused_once_it_expires() {
    // Validated tokens are remembered; their time claims are judged on every use.
    let h = Harness::with(|c| c.auth.clock_skew_s = 0).await;
    let mut short = claims(&h, Profile::Clinician);
    short["exp"] = json!(now() + 2);
    let token = h.issuer.sign(&short);
    assert_eq!(h.get_as(SEARCH, &token).await.status, 200);
    assert_eq!(
        h.get_as(SEARCH, &token).await.status,
        200,
        "again, remembered"
    );
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    assert_invalid(&h, &token, "expired since it was first verified").await;
    h.stop().await;
}

#[tokio::test]
async fn rotated_keys_are_fetched_without_restart() {
    let h = Harness::with(|c| c.auth.jwks_refetch_interval_s = 1).await;
    assert_eq!(h.get(SEARCH).await.status, 200, "keys fetched");
    h.issuer.rotate_key().unwrap();
    let rotated = h.token(Profile::Clinician);
    // Within the refetch interval an unknown kid does not make the facade fetch again.
    let _ = h.get_as(SEARCH, &rotated).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(h.get_as(SEARCH, &rotated).await.status, 200);
    h.stop().await;
}

/// A token accepted before `change` to the issuer's keys is refused once the keys
/// are fetched again, and a new token is accepted.
async fn old_token_refused_after(change: impl FnOnce(&DevIssuer), why: &str) {
    let h = Harness::with(|c| c.auth.jwks_max_age_s = 1).await;
    let old = h.token(Profile::Clinician);
    assert_eq!(h.get_as(SEARCH, &old).await.status, 200);
    change(&h.issuer);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_invalid(&h, &old, why).await;
    let new = h.token(Profile::Clinician);
    assert_eq!(h.get_as(SEARCH, &new).await.status, 200, "the new key");
    h.stop().await;
}

#[tokio::test]
async fn a_withdrawn_key_stops_working_once_keys_are_refetched() {
    let withdraw = |issuer: &DevIssuer| {
        issuer.rotate_key().unwrap();
        issuer.withdraw_oldest_key();
    };
    old_token_refused_after(withdraw, "withdrawn key").await;
}

#[tokio::test]
async fn a_token_verified_before_is_refused_once_its_kid_names_another_key() {
    let replace = |issuer: &DevIssuer| issuer.replace_key_keeping_kid().unwrap();
    old_token_refused_after(replace, "signed by the key the kid named before").await;
}

#[tokio::test]
async fn scopes_decide_types_and_interactions() {
    let h = Harness::start().await;
    let with_scope = |scope: &str| {
        h.issuer.token(&TokenRequest {
            profile: Some(Profile::Clinician),
            scope: Some(scope.into()),
            ..TokenRequest::default()
        })
    };
    let encounters_only = with_scope("user/Encounter.rs");
    let refused = client()
        .get(format!("{}/{SEARCH}", h.base))
        .bearer_auth(&encounters_only)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    let outcome: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(outcome["issue"][0]["code"], "forbidden");
    assert_eq!(
        h.get_as("Encounter?patient=9990000018", &encounters_only)
            .await
            .status,
        200
    );

    // v1 scopes; read without search; no clinical scope at all.
    let v1 = with_scope("user/Observation.read");
    assert_eq!(h.get_as(SEARCH, &v1).await.status, 200);
    let read_only = with_scope("user/Encounter.r");
    assert_eq!(
        h.get_as("Encounter?patient=9990000018", &read_only)
            .await
            .status,
        403
    );
    assert_eq!(
        h.get_as("Encounter/northgate-acute.enc-alice-admission", &read_only)
            .await
            .status,
        200
    );
    assert_eq!(h.get_as(SEARCH, &with_scope("openid")).await.status, 403);

    // A fine-grained scope shows only its category.
    let labs = with_scope("user/Observation.rs?category=laboratory");
    let reply = h.get_as(SEARCH, &labs).await;
    assert_eq!(reply.status, 200);
    let shown = entries(&reply.fhir());
    assert!(!shown.is_empty());
    for observation in &shown {
        assert!(
            observation["category"]
                .to_string()
                .contains("\"laboratory\""),
            "{observation}"
        );
    }
    let all = entries(&h.ok(SEARCH).await);
    assert!(all.len() > shown.len());
    // A read outside the granted category is as absent as an unknown id.
    let vital = all
        .iter()
        .find(|o| !o["category"].to_string().contains("\"laboratory\""))
        .expect("a non-laboratory observation");
    let path = format!("Observation/{}", vital["id"].as_str().unwrap());
    assert_eq!(h.get(&path).await.status, 200);
    assert_eq!(h.get_as(&path, &labs).await.status, 404);
    h.stop().await;
}

#[tokio::test]
async fn a_patient_context_reaches_that_patient_only() {
    let h = Harness::start().await;
    let app = h.token(Profile::SmartApp); // in Alice's context
    let mine = h.get_as(SEARCH, &app).await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.fhir()["total"], h.ok(SEARCH).await["total"]);

    for path in [
        format!("Observation?patient={BRIAN}"),
        format!("AllergyIntolerance?patient=Patient/{BRIAN}"),
        format!("Patient/{BRIAN}"),
        format!("Patient/{BRIAN}/$everything"),
        format!("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{BRIAN}"),
        "AllergyIntolerance/riverside-gp.alg-brian-peanut".into(),
        format!("Consent/{BRIAN}"),
    ] {
        let reply = h.get_as(&path, &app).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.text);
        assert!(!reply.text.contains("peanut"), "{path}");
    }
    // Found by demographics: Brian is not listed to Alice's app.
    let listed = h.get_as("Patient?family=patel", &app).await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(BRIAN));

    // A page link is bound to whom it was issued.
    let clinician_page = h.ok(&format!("{SEARCH}&_count=2")).await;
    let next = link(&clinician_page, "next").expect("a next page");
    assert_eq!(h.get(&next).await.status, 200);
    assert_eq!(h.get_as(&next, &app).await.status, 403);
    let app_page = h.get_as(&format!("{SEARCH}&_count=2"), &app).await.fhir();
    let app_next = link(&app_page, "next").expect("a next page");
    assert_eq!(h.get_as(&app_next, &app).await.status, 200);
    assert_eq!(h.get(&app_next).await.status, 403);

    // A context that is not an NHS number (or not text) reaches nobody.
    let mut numeric = claims(&h, Profile::SmartApp);
    numeric["patient"] = json!(9990000018u64);
    numeric["scope"] = json!("patient/*.rs user/*.rs");
    assert_eq!(h.get_as(SEARCH, &h.issuer.sign(&numeric)).await.status, 403);
    let odd = h.issuer.token(&TokenRequest {
        profile: Some(Profile::SmartApp),
        patient: Some("not-a-number".into()),
        ..TokenRequest::default()
    });
    assert_eq!(h.get_as(SEARCH, &odd).await.status, 403);
    h.stop().await;
}

#[tokio::test]
async fn only_the_selected_role_counts() {
    let h = Harness::start().await;
    let mut no_selection = claims(&h, Profile::Clinician);
    no_selection
        .as_object_mut()
        .unwrap()
        .remove("selected_roleid");
    let reply = h.get_as(SEARCH, &h.issuer.sign(&no_selection)).await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(outcome_issue(&reply)["code"], "forbidden");

    // The privacy officer role may not view clinical records even with the scope.
    let mut officer = claims(&h, Profile::PrivacyOfficer);
    officer["scope"] = json!("user/*.rs");
    assert_eq!(h.get_as(SEARCH, &h.issuer.sign(&officer)).await.status, 403);
    // A clinician may not manage objections.
    let mut clinician = claims(&h, Profile::Clinician);
    clinician["scope"] = json!("user/Consent.cruds");
    assert_eq!(
        h.get_as("Consent/9990000018", &h.issuer.sign(&clinician))
            .await
            .status,
        403
    );
    // A plain roles claim works where there is no CIS2 claim.
    let plain = json!({
        "iss": h.issuer.issuer, "aud": AUDIENCE, "sub": "u1", "exp": now() + 300,
        "scope": "user/*.rs", "roles": ["clinician"], "shcr_dev": true
    });
    assert_eq!(h.get_as(SEARCH, &h.issuer.sign(&plain)).await.status, 200);
    // System scopes given to a user's client do not stand in for the user's role.
    let mut officer_as_system = claims(&h, Profile::PrivacyOfficer);
    officer_as_system["scope"] = json!("system/*.rs");
    assert_eq!(
        h.get_as(SEARCH, &h.issuer.sign(&officer_as_system))
            .await
            .status,
        403
    );
    // A backend service acts without a user role.
    assert_eq!(
        h.get_as(SEARCH, &h.token(Profile::Backend)).await.status,
        200
    );
    h.stop().await;
}

#[tokio::test]
async fn an_issuer_that_asserts_assurance_must_say_which() {
    let h = Harness::with(|c| c.auth.issuers[0].acr_values = vec!["AAL3_ANY".into()]).await;
    assert_eq!(h.get(SEARCH).await.status, 200, "acr AAL3_ANY");
    let mut missing = claims(&h, Profile::Clinician);
    missing.as_object_mut().unwrap().remove("acr");
    assert_invalid(&h, &h.issuer.sign(&missing), "no acr").await;
    missing["acr"] = json!("AAL1_USERPASS");
    assert_invalid(&h, &h.issuer.sign(&missing), "weak acr").await;
    h.stop().await;
}

async fn object(h: &Harness, nhs: &str) {
    let consent = crate::objection::objection(
        nhs,
        "active",
        json!({"reference": format!("Patient/{nhs}")}),
    );
    let created = h
        .client
        .post(format!("{}/Consent", h.base))
        .bearer_auth(h.token(Profile::PrivacyOfficer))
        .header("content-type", "application/fhir+json")
        .body(consent.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn emergency_access_is_for_configured_roles_and_not_past_an_objection() {
    let h = Harness::start().await;
    let emergency = [("x-purpose-of-use", "BTG")];
    assert_eq!(h.get_with(SEARCH, &emergency).await.status, 200);
    // The nurse role is not configured for emergency access.
    let mut nurse = claims(&h, Profile::Clinician);
    nurse["selected_roleid"] = json!("555021936108");
    let nurse = format!("Bearer {}", h.issuer.sign(&nurse));
    assert_eq!(
        h.get_with(SEARCH, &[("authorization", &nurse)])
            .await
            .status,
        200
    );
    let refused = h
        .get_with(SEARCH, &[("authorization", &nurse), emergency[0]])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);

    object(&h, ALICE).await;
    let reply = h.get_with(SEARCH, &emergency).await;
    assert_eq!(
        reply.status, 403,
        "break glass does not see past an objection"
    );
    assert_eq!(outcome_issue(&reply)["code"], "suppressed");
    h.stop().await;

    let h = Harness::with(|c| c.auth.emergency.sees_past_objection = true).await;
    object(&h, ALICE).await;
    assert_eq!(h.get(SEARCH).await.status, 403);
    assert_eq!(h.get_with(SEARCH, &emergency).await.status, 200);
    h.stop().await;
}

#[tokio::test]
async fn restricted_items_only_for_roles_cleared_for_them() {
    let data = |partner: &str| {
        let mut data = PartnerData::load(&examples().join("data").join(partner)).unwrap();
        if partner == GP {
            data.add(json!({
                "resourceType": "Observation", "id": "obs-alice-restricted", "status": "final",
                "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/P1001"},
                "effectiveDateTime": "2024-02-02T10:00:00Z",
                "valueQuantity": {"value": 70, "unit": "/min"}
            }));
        }
        data
    };
    let restricted = "riverside-gp.obs-alice-restricted";
    let h = Harness::with_data(data, |_| {}).await;
    assert!(!ids(&h.ok(&format!("{SEARCH}&_count=100")).await).contains(&restricted.into()));
    assert_eq!(
        h.get(&format!("Observation/{restricted}")).await.status,
        404
    );
    h.stop().await;

    let h = Harness::with_data(data, |c| c.auth.roles.restricted = vec!["R8000".into()]).await;
    assert!(ids(&h.ok(&format!("{SEARCH}&_count=100")).await).contains(&restricted.into()));
    assert_eq!(
        h.get(&format!("Observation/{restricted}")).await.status,
        200
    );
    h.stop().await;
}

#[tokio::test]
async fn smart_configuration_and_cors() {
    let h = Harness::start().await;
    let reply = client()
        .get(format!("{}/.well-known/smart-configuration", h.base))
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert!(
        reply.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let smart: Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
    assert_eq!(smart["issuer"], h.issuer.issuer);
    for url in ["token_endpoint", "jwks_uri", "authorization_endpoint"] {
        assert!(
            smart[url]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:"),
            "{url} is absolute"
        );
    }
    assert!(
        !smart["grant_types_supported"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let methods = smart["code_challenge_methods_supported"].to_string();
    assert!(methods.contains("S256") && !methods.contains("plain"));
    let capabilities = smart["capabilities"].to_string();
    for c in [
        "permission-v2",
        "permission-patient",
        "context-ehr-patient",
        "sso-openid-connect",
    ] {
        assert!(capabilities.contains(c), "{c}");
    }

    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{}/{SEARCH}", h.base))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert!(
        preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    h.stop().await;
}
