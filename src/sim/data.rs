//! A partner's records, loaded from a directory of JSON files (each a resource or a
//! Bundle of them).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::fhir::ResourceType;

#[derive(Debug, Default, Clone)]
pub struct PartnerData {
    by_type: HashMap<ResourceType, Vec<Held>>,
}

/// A stored record, and its JSON written once as it is stored: a partner serves the
/// same bytes on every answer, as a server that keeps its records serialised does,
/// so that the simulator's own work stays small beside the facade's under load.
#[derive(Debug, Clone)]
pub struct Held {
    pub value: Value,
    pub json: Box<str>,
}

impl PartnerData {
    pub fn load(dir: &Path) -> std::io::Result<PartnerData> {
        let mut data = PartnerData::default();
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let text = std::fs::read_to_string(&file)?;
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", file.display()),
                )
            })?;
            data.add(value);
        }
        Ok(data)
    }

    /// Adds a resource, or every entry of a Bundle.
    pub fn add(&mut self, value: Value) {
        if value["resourceType"] == "Bundle" {
            for entry in value["entry"].as_array().into_iter().flatten() {
                self.add(entry["resource"].clone());
            }
        } else if let Some(t) = value["resourceType"]
            .as_str()
            .and_then(|t| t.parse::<ResourceType>().ok())
        {
            // As a FHIR server keeps it: every stored record has a version.
            let mut value = value;
            if value["meta"]["versionId"].is_null() && value.is_object() {
                value["meta"]["versionId"] = Value::String("1".into());
            }
            let json = value.to_string().into_boxed_str();
            self.by_type
                .entry(t)
                .or_default()
                .push(Held { value, json });
        }
    }

    pub fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &Value> {
        self.held(resource_type).map(|h| &h.value)
    }

    /// The records of a type, each with its JSON.
    pub fn held(&self, resource_type: ResourceType) -> impl Iterator<Item = &Held> {
        self.by_type.get(&resource_type).into_iter().flatten()
    }

    pub fn find(&self, resource_type: ResourceType, id: &str) -> Option<&Held> {
        self.held(resource_type).find(|r| r.value["id"] == id)
    }

    pub fn len(&self) -> usize {
        self.by_type.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
