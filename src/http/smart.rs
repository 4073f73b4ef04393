//! `GET /fhir/.well-known/smart-configuration`: SMART App Launch 2.x discovery, from
//! the first trusted issuer's own discovery document. Always JSON.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::respond::Output;

pub async fn smart_configuration(state: web::Data<AppState>) -> HttpResponse {
    match document(&state).await {
        Ok(document) => HttpResponse::Ok()
            .content_type("application/json")
            .body(document.to_string()),
        Err(error) => Output::JSON.error(error),
    }
}

async fn document(state: &AppState) -> Result<Value, ApiError> {
    let issuer = state.auth.primary_issuer().ok_or_else(|| {
        ApiError::NotFound("a SMART configuration (no identity provider is configured)".into())
    })?;
    let metadata = issuer
        .metadata()
        .await
        .map_err(|_| ApiError::Unauthenticated(crate::auth::AuthError::IssuerUnavailable))?;
    Ok(smart_document(&metadata))
}

/// The SMART configuration for an issuer's OpenID discovery document: its endpoints
/// as published, and only the capabilities this server and that issuer really have.
fn smart_document(metadata: &Value) -> Value {
    let list = |name: &str| -> Vec<String> {
        metadata[name]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let auth_methods = list("token_endpoint_auth_methods_supported");
    let grant_types = match list("grant_types_supported") {
        // OpenID Connect Discovery's default when the issuer does not say.
        g if g.is_empty() => vec!["authorization_code".to_string(), "implicit".to_string()],
        g => g,
    };
    // SMART forbids `plain`: never offered, whatever the issuer says.
    let challenge_methods: Vec<String> = list("code_challenge_methods_supported")
        .into_iter()
        .filter(|m| m != "plain")
        .collect();
    let scopes = list("scopes_supported");
    let offers = |scope: &str| scopes.iter().any(|s| s == scope);
    let authorizes = metadata["authorization_endpoint"].is_string();
    // What the facade itself honours (v1 and v2 scopes, patient and user levels),
    // and what the issuer says it has: launches, sign-in, refresh tokens.
    let mut capabilities: Vec<&str> = vec![
        "permission-v1",
        "permission-v2",
        "permission-patient",
        "permission-user",
    ];
    if authorizes && offers("launch") {
        capabilities.extend(["launch-ehr", "context-ehr-patient"]);
    }
    if authorizes && offers("launch/patient") {
        capabilities.extend(["launch-standalone", "context-standalone-patient"]);
    }
    if offers("openid") && metadata["jwks_uri"].is_string() {
        capabilities.push("sso-openid-connect");
    }
    if offers("offline_access") {
        capabilities.push("permission-offline");
    }
    if offers("online_access") {
        capabilities.push("permission-online");
    }
    if auth_methods.is_empty()
        || auth_methods
            .iter()
            .any(|m| m == "client_secret_basic" || m == "client_secret_post")
    {
        capabilities.push("client-confidential-symmetric");
    }
    if auth_methods.iter().any(|m| m == "private_key_jwt") {
        capabilities.push("client-confidential-asymmetric");
    }
    if auth_methods.iter().any(|m| m == "none") {
        capabilities.push("client-public");
    }
    let mut document = json!({
        "issuer": metadata["issuer"],
        "jwks_uri": metadata["jwks_uri"],
        "authorization_endpoint": metadata["authorization_endpoint"],
        "token_endpoint": metadata["token_endpoint"],
        "grant_types_supported": grant_types,
        "token_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": scopes,
        "response_types_supported": metadata["response_types_supported"],
        "code_challenge_methods_supported": challenge_methods,
        "capabilities": capabilities,
    });
    for optional in [
        "introspection_endpoint",
        "revocation_endpoint",
        "registration_endpoint",
        "userinfo_endpoint",
    ] {
        if let Some(url) = metadata[optional].as_str() {
            document[optional] = json!(url);
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_the_issuer() {
        let doc = smart_document(&json!({
            "issuer": "https://idp.example",
            "jwks_uri": "https://idp.example/jwks",
            "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "code_challenge_methods_supported": ["plain", "S256"],
        }));
        let capabilities: Vec<&str> = doc["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(capabilities.contains(&"client-confidential-asymmetric"));
        assert!(!capabilities.contains(&"client-confidential-symmetric"));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["token_endpoint"], "https://idp.example/token");
        // This issuer says nothing of launches or sign-in scopes: neither is claimed.
        for absent in [
            "launch-ehr",
            "launch-standalone",
            "sso-openid-connect",
            "permission-offline",
        ] {
            assert!(!capabilities.contains(&absent), "{absent}");
        }
        let launching = smart_document(&json!({
            "issuer": "https://idp.example",
            "jwks_uri": "https://idp.example/jwks",
            "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token",
            "scopes_supported": ["openid", "launch", "launch/patient", "offline_access"],
        }));
        let capabilities = launching["capabilities"].to_string();
        for present in [
            "launch-ehr",
            "context-ehr-patient",
            "launch-standalone",
            "sso-openid-connect",
            "permission-offline",
        ] {
            assert!(capabilities.contains(present), "{present}");
        }
        assert_eq!(
            launching["code_challenge_methods_supported"],
            json!([]),
            "not claimed when the issuer does not say"
        );
    }
}
