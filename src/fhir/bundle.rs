//! Searchset Bundles.

use serde_json::{Map, Value, json};

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
    /// The Bundle, built by moving the resources in (`json!` would copy each one
    /// through serde, the whole page twice over).
    pub fn into_bundle(self) -> Value {
        let link = |relation: &str, url: String| {
            Value::Object(Map::from_iter([
                ("relation".to_string(), Value::from(relation)),
                ("url".to_string(), Value::String(url)),
            ]))
        };
        let mut links = vec![link("self", self.self_link)];
        if let Some(url) = self.previous_link {
            links.push(link("previous", url));
        }
        if let Some(url) = self.next_link {
            links.push(link("next", url));
        }
        let entry = |full_url: String, resource: Value, mode: &str| {
            Value::Object(Map::from_iter([
                ("fullUrl".to_string(), Value::String(full_url)),
                ("resource".to_string(), resource),
                ("search".to_string(), json!({ "mode": mode })),
            ]))
        };
        let addressed = |resource: Value, mode: &str| {
            let full_url = format!(
                "{}/{}/{}",
                self.base,
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            entry(full_url, resource, mode)
        };
        let mut entries: Vec<Value> = self
            .resources
            .into_iter()
            .map(|r| addressed(r, "match"))
            .chain(self.included.into_iter().map(|r| addressed(r, "include")))
            .collect();
        if !self.outcome.is_empty() {
            let mut outcome = operation_outcome(&self.outcome);
            let id = uuid::Uuid::new_v4().to_string();
            outcome["id"] = json!(id);
            entries.push(entry(format!("urn:uuid:{id}"), outcome, "outcome"));
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
        bundle["link"] = Value::Array(links);
        if !entries.is_empty() {
            bundle["entry"] = Value::Array(entries); // FHIR JSON forbids empty arrays
        }
        bundle
    }
}
