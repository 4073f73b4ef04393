//! What every partner call made for one request shares: its deadline, who it is made
//! for (as partners that must be told are told: GP Connect's consumer JWT names the
//! requesting clinician), and the structured records already fetched for it, so that a
//! GP Connect practice is asked once per request however many types it needs.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::fhir::NhsNumber;

/// The person (or system) a request is made for. Never their token: that is not
/// forwarded; only what a partner's protocol asks to be told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnBehalfOf {
    /// The professional's SDS user id (CIS2 `uid`), when the token carries one.
    pub user_id: Option<String>,
    /// The SDS role profile id of the role they act in (CIS2 `selected_roleid`).
    pub role_profile_id: Option<String>,
    pub name: Option<String>,
    /// The ODS code of the organisation they act for (their role's, not ours).
    pub organisation: Option<String>,
    /// A backend service with no user behind it.
    pub system: bool,
}

/// One request's partner calls.
pub struct RequestScope {
    pub deadline: Instant,
    pub on_behalf_of: OnBehalfOf,
    /// Structured records fetched for this request, by partner id and patient, each
    /// with the groups it was asked for.
    structured: Mutex<HashMap<(String, NhsNumber), Arc<dyn std::any::Any + Send + Sync>>>,
}

impl RequestScope {
    pub fn new(deadline: Instant, on_behalf_of: OnBehalfOf) -> RequestScope {
        RequestScope {
            deadline,
            on_behalf_of,
            structured: Mutex::new(HashMap::new()),
        }
    }

    /// What `fetch` gives for this partner and patient, fetched once per request
    /// unless `covers` says the record kept does not hold what is needed now.
    pub async fn structured<T, F, Fut>(
        &self,
        partner_id: &str,
        nhs: &NhsNumber,
        covers: impl Fn(&T) -> bool,
        fetch: F,
    ) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let key = (partner_id.to_string(), nhs.clone());
        let kept = self.structured.lock().await.get(&key).cloned();
        if let Some(found) = kept.and_then(|any| any.downcast::<T>().ok())
            && covers(&found)
        {
            return found;
        }
        // Not held while fetching: other partners' calls go on meanwhile.
        let fetched = Arc::new(fetch().await);
        self.structured.lock().await.insert(key, fetched.clone());
        fetched
    }
}
