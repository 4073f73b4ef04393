//! Who may use the development authorization server: the registered apps (the
//! shipped record app, and public and confidential clients for a developer's own app
//! on loopback) and the users one may sign in as.

use url::Url;

use crate::sim::issuer::Profile;

/// The shipped SMART app's client id.
pub const RECORD_APP: &str = "shcr-record-app";

/// A registered app.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: &'static str,
    /// A confidential client's secret (development only: printed in the README).
    pub secret: Option<&'static str>,
    redirects: Redirects,
}

#[derive(Debug, Clone)]
enum Redirects {
    /// Exactly these.
    Exact(Vec<String>),
    /// Any `http` URL on the loopback interface, as for native apps (RFC 8252): the
    /// developer's own app wherever it runs on this machine.
    Loopback,
}

impl Client {
    pub fn accepts(&self, redirect_uri: &str) -> bool {
        match &self.redirects {
            Redirects::Exact(uris) => uris.iter().any(|u| u == redirect_uri),
            Redirects::Loopback => Url::parse(redirect_uri).is_ok_and(|u| is_loopback(&u)),
        }
    }

    /// May a page at `origin` call the token endpoint from a browser (CORS)?
    pub fn allows_origin(&self, origin: &str) -> bool {
        match &self.redirects {
            Redirects::Exact(uris) => uris
                .iter()
                .filter_map(|u| Url::parse(u).ok())
                .any(|u| u.origin().ascii_serialization() == origin),
            Redirects::Loopback => Url::parse(origin).is_ok_and(|u| is_loopback(&u)),
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    url.scheme() == "http"
        && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
        && url.fragment().is_none()
}

/// The registered apps, the shipped one's page at `app_url`.
pub fn registered(app_url: &str) -> Vec<Client> {
    vec![
        Client {
            id: RECORD_APP,
            secret: None,
            redirects: Redirects::Exact(vec![format!("{app_url}index.html"), app_url.to_string()]),
        },
        Client {
            id: "dev-public-app",
            secret: None,
            redirects: Redirects::Loopback,
        },
        Client {
            id: "dev-confidential-app",
            secret: Some("dev-confidential-secret"),
            redirects: Redirects::Loopback,
        },
    ]
}

/// Someone to sign in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub key: &'static str,
    pub label: &'static str,
    pub profile: Profile,
}

pub const USERS: [User; 3] = [
    User {
        key: "clinician",
        label: "Dr Dev Clinician: Clinical Practitioner (R8000), may use emergency access",
        profile: Profile::Clinician,
    },
    User {
        key: "nurse",
        label: "Nurse Dev Nurse: Nurse (R8001), no emergency access",
        profile: Profile::Nurse,
    },
    User {
        key: "privacy-officer",
        label: "Dev Privacy Officer: Privacy Officer (R0001), objections and the audit trail",
        profile: Profile::PrivacyOfficer,
    },
];

pub fn user(key: &str) -> Option<User> {
    USERS.into_iter().find(|u| u.key == key)
}

/// The scopes `user` may be granted: clinical users read clinical records (for a
/// patient in context, or as themselves); the officer reads and writes objections
/// and reads the trail. Everyone may sign in and be given a refresh token.
pub fn may_have(user: User, scope: &str) -> bool {
    let clinical = matches!(user.profile, Profile::Clinician | Profile::Nurse);
    match scope {
        "openid" | "fhirUser" | "profile" | "offline_access" | "online_access" => true,
        "launch" | "launch/patient" => clinical,
        s if s.starts_with("patient/") || s.starts_with("user/") => {
            let (_, rest) = s.split_once('/').unwrap_or_default();
            let resource = rest.split(['.', '?']).next().unwrap_or_default();
            match user.profile {
                Profile::PrivacyOfficer => {
                    s.starts_with("user/") && matches!(resource, "Consent" | "AuditEvent")
                }
                _ => clinical && !matches!(resource, "Consent" | "AuditEvent"),
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_exact_or_loopback() {
        let clients = registered("http://127.0.0.1:8081/apps/record/");
        let app = &clients[0];
        assert!(app.accepts("http://127.0.0.1:8081/apps/record/index.html"));
        assert!(!app.accepts("http://127.0.0.1:8081/apps/record/index.html?x=1"));
        assert!(!app.accepts("http://evil.example/apps/record/index.html"));
        let own = &clients[1];
        assert!(own.accepts("http://localhost:3000/callback"));
        assert!(!own.accepts("https://localhost.evil.example/callback"));
        assert!(!own.accepts("http://10.0.0.1/callback"));
        assert!(app.allows_origin("http://127.0.0.1:8081"));
        assert!(!app.allows_origin("http://127.0.0.1:9999"));
    }

    #[test]
    fn scopes_are_limited_to_the_user() {
        let nurse = user("nurse").unwrap();
        let officer = user("privacy-officer").unwrap();
        assert!(may_have(nurse, "patient/Observation.rs"));
        assert!(!may_have(nurse, "user/Consent.cruds"));
        assert!(may_have(officer, "user/Consent.cruds"));
        assert!(!may_have(officer, "patient/*.rs"));
        assert!(!may_have(officer, "launch/patient"));
        assert!(!may_have(nurse, "system/*.rs"));
    }
}
