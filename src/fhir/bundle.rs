//! Searchset Bundles.

use serde_json::{Value, json};

use super::outcome::{Issue, operation_outcome};

/// A searchset ready to be written.
pub struct SearchSet<'a> {
    /// The facade's FHIR base, e.g. `http://127.0.0.1:8080/fhir`.
    pub base: &'a str,
    pub self_link: String,
    pub next_link: Option<String>,
    pub previous_link: Option<String>,
    pub total: Option<usize>,
    pub resources: Vec<Value>,
    /// Records the matches point at (or that point at them): `search.mode = include`.
    pub included: Vec<Value>,
    /// Warnings and reports, carried in one OperationOutcome entry (search.mode = outcome).
    pub outcome: Vec<Issue>,
}

impl SearchSet<'_> {
    pub fn into_bundle(self) -> Value {
        let mut links = vec![json!({"relation": "self", "url": self.self_link})];
        if let Some(url) = self.previous_link {
            links.push(json!({"relation": "previous", "url": url}));
        }
        if let Some(url) = self.next_link {
            links.push(json!({"relation": "next", "url": url}));
        }
        let entry = |resource: Value, mode: &str| {
            let full_url = format!(
                "{}/{}/{}",
                self.base,
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": full_url, "resource": resource, "search": {"mode": mode}})
        };
        let mut entries: Vec<Value> = self
            .resources
            .into_iter()
            .map(|r| entry(r, "match"))
            .chain(self.included.into_iter().map(|r| entry(r, "include")))
            .collect();
        if !self.outcome.is_empty() {
            let mut outcome = operation_outcome(&self.outcome);
            let id = uuid::Uuid::new_v4().to_string();
            outcome["id"] = json!(id);
            entries.push(json!({"fullUrl": format!("urn:uuid:{id}"), "resource": outcome, "search": {"mode": "outcome"}}));
        }
        let mut bundle = json!({
            "resourceType": "Bundle",
            "id": uuid::Uuid::new_v4().to_string(),
            "meta": {"lastUpdated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)},
            "type": "searchset",
        });
        if let Some(total) = self.total {
            bundle["total"] = json!(total);
        }
        bundle["link"] = json!(links);
        if !entries.is_empty() {
            bundle["entry"] = json!(entries); // FHIR JSON forbids empty arrays
        }
        bundle
    }
}
