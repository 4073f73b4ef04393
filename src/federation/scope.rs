//! What every partner call made for one request shares: its deadline, who it is made
//! for (as partners that must be told are told: GP Connect's consumer JWT names the
//! requesting clinician), and the structured records already fetched for it, so that a
//! GP Connect practice is asked once per request however many types it needs.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::fhir::{NhsNumber, ResourceType};

/// The person (or system) a request is made for. Never their token: that is not
/// forwarded; only what a partner's protocol asks to be told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnBehalfOf {
    /// Who the token was issued to (its `sub`), as their identity provider knows them.
    pub subject: String,
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

/// Something fetched once for a request, under its own lock while it is fetched.
type Slot = Arc<Mutex<Option<Arc<dyn Any + Send + Sync>>>>;

/// One request's partner calls.
pub struct RequestScope {
    pub deadline: Instant,
    pub on_behalf_of: OnBehalfOf,
    /// Every type the request will gather, so that a partner answering all types in
    /// one call (GP Connect) is asked for them all at once.
    expected: std::sync::Mutex<Vec<ResourceType>>,
    /// Structured records fetched for this request, by partner id and patient.
    structured: std::sync::Mutex<HashMap<(String, NhsNumber), Slot>>,
}

impl RequestScope {
    pub fn new(deadline: Instant, on_behalf_of: OnBehalfOf) -> RequestScope {
        RequestScope {
            deadline,
            on_behalf_of,
            expected: std::sync::Mutex::new(Vec::new()),
            structured: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Says that the request will gather records of `types`.
    pub fn expect(&self, types: impl IntoIterator<Item = ResourceType>) {
        let mut expected = self.expected.lock().expect("expected types lock");
        for t in types {
            if !expected.contains(&t) {
                expected.push(t);
            }
        }
    }

    pub fn expected(&self) -> Vec<ResourceType> {
        self.expected.lock().expect("expected types lock").clone()
    }

    /// What `fetch` gives for this partner and patient, fetched once per request
    /// unless `covers` says what is kept does not hold what is needed now (then
    /// `fetch` is given what is kept, to ask for more). Concurrent askers for the
    /// same partner and patient wait for the one fetch.
    pub async fn structured<T, F, Fut>(
        &self,
        partner_id: &str,
        nhs: &NhsNumber,
        covers: impl Fn(&T) -> bool,
        fetch: F,
    ) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce(Option<Arc<T>>) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let slot = self
            .structured
            .lock()
            .expect("structured records lock")
            .entry((partner_id.to_string(), nhs.clone()))
            .or_default()
            .clone();
        let mut held = slot.lock().await;
        let kept = held.clone().and_then(|any| any.downcast::<T>().ok());
        if let Some(found) = &kept
            && covers(found)
        {
            return found.clone();
        }
        let fetched = Arc::new(fetch(kept).await);
        *held = Some(fetched.clone() as Arc<dyn Any + Send + Sync>);
        fetched
    }
}
