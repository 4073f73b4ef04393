//! A partner's records, loaded from a directory of JSON files (each a resource or a
//! Bundle of them).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::fhir::ResourceType;
use crate::fhir::reference::references;
use crate::fhir::search::value::ReferenceValue;

#[derive(Debug, Default, Clone)]
pub struct PartnerData {
    by_type: HashMap<ResourceType, Vec<Held>>,
    /// Which records of a type refer to a given id anywhere in them (positions in
    /// `by_type`, in the order held): as a server indexes its references, so that a
    /// search for one patient's records does not read every record of the type.
    referring: HashMap<ResourceType, HashMap<String, Vec<usize>>>,
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
            let held = self.by_type.entry(t).or_default();
            let position = held.len();
            let mut ids = referred_ids(&value);
            ids.sort_unstable();
            ids.dedup();
            let referring = self.referring.entry(t).or_default();
            for id in ids {
                referring.entry(id).or_default().push(position);
            }
            held.push(Held { value, json });
        }
    }

    pub fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &Value> {
        self.held(resource_type).map(|h| &h.value)
    }

    /// The records of a type, each with its JSON.
    pub fn held(&self, resource_type: ResourceType) -> impl Iterator<Item = &Held> {
        self.by_type.get(&resource_type).into_iter().flatten()
    }

    /// The records of a type that refer, anywhere in them, to any of `ids` (a
    /// reference's id, whatever its type), in the order held: every record a
    /// reference criterion for those ids can match, and perhaps more.
    pub fn referring_to<'a>(
        &'a self,
        resource_type: ResourceType,
        ids: &[&str],
    ) -> impl Iterator<Item = &'a Held> {
        let referring = self.referring.get(&resource_type);
        let mut positions: Vec<usize> = ids
            .iter()
            .filter_map(|id| referring?.get(*id))
            .flatten()
            .copied()
            .collect();
        positions.sort_unstable();
        positions.dedup();
        let held = self.by_type.get(&resource_type);
        positions
            .into_iter()
            .filter_map(move |p| held.and_then(|h| h.get(p)))
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

/// The id of every reference in `record`, at any depth, as a reference criterion
/// reads it.
pub(super) fn referred_ids(record: &Value) -> Vec<String> {
    references(record)
        .into_iter()
        .filter_map(|reference| ReferenceValue::parse(reference).ok())
        .map(|reference| reference.id)
        .collect()
}
