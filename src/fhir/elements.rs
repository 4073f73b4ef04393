//! `_elements` and `_summary`: return only some top-level elements, marked
//! SUBSETTED. The elements R4 makes mandatory for the type are always kept, so the
//! subset is still a valid resource.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::ResourceType;
use super::search::Summary;

/// The R4 summary elements of each type (`isSummary`), from the R4 definitions.
const SUMMARY_ELEMENTS: &str =
    include_str!("../../fhir-profiles/definitions/summary-elements.json");

fn summary_elements(resource_type: &str) -> &'static [String] {
    static TABLE: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let doc: Value = serde_json::from_str(SUMMARY_ELEMENTS).expect("bundled summary elements");
        serde_json::from_value(doc["summary"].clone()).expect("summary elements by type")
    });
    table.get(resource_type).map_or(&[], Vec::as_slice)
}

/// `_summary`: `true` keeps the summary elements, `text` the narrative and what is
/// mandatory, `data` all but the narrative; `false` and `count` change nothing here.
pub fn summarise(resource: &mut Value, summary: Summary) {
    let keep: Vec<String> = match summary {
        Summary::False | Summary::Count => return,
        Summary::True => {
            let type_name = resource["resourceType"].as_str().unwrap_or_default();
            summary_elements(type_name).to_vec()
        }
        Summary::Text => vec!["text".to_string()],
        Summary::Data => {
            let Some(object) = resource.as_object_mut() else {
                return;
            };
            object.remove("text");
            mark_subsetted(object);
            return;
        }
    };
    subset(resource, &keep);
}

const ALWAYS: [&str; 3] = ["resourceType", "id", "meta"];

/// Is `key` the element `name`, or a choice form of it (`effective` -> `effectiveDateTime`)?
fn is_element(key: &str, name: &str) -> bool {
    key == name
        || (key.starts_with(name)
            && key
                .as_bytes()
                .get(name.len())
                .is_some_and(u8::is_ascii_uppercase))
}

pub fn subset(resource: &mut Value, elements: &[String]) {
    let required = resource["resourceType"]
        .as_str()
        .and_then(|t| t.parse::<ResourceType>().ok())
        .map(ResourceType::mandatory_elements)
        .unwrap_or(&[]);
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    object.retain(|key, _| {
        ALWAYS.contains(&key.as_str())
            || required.iter().any(|m| is_element(key, m))
            || elements.iter().any(|e| is_element(key, e))
    });
    mark_subsetted(object);
}

fn mark_subsetted(object: &mut serde_json::Map<String, Value>) {
    let meta = object.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_named_mandatory_and_choice_elements() {
        let mut obs = json!({"resourceType": "Observation", "id": "x", "status": "final", "code": {}, "effectiveDateTime": "2024", "note": [], "subject": {}});
        subset(&mut obs, &["effective".into()]);
        let keys: Vec<&String> = obs.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "resourceType",
                "id",
                "status",
                "code",
                "effectiveDateTime",
                "meta"
            ]
        );
        assert_eq!(obs["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    #[test]
    fn summaries_keep_what_r4_says() {
        let full = json!({"resourceType": "Observation", "id": "x", "text": {"status": "generated", "div": "<div/>"},
            "status": "final", "code": {}, "note": [{"text": "n"}], "valueString": "v", "interpretation": []});
        let keys = |summary| {
            let mut obs = full.clone();
            summarise(&mut obs, summary);
            let mut keys: Vec<String> = obs.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(
            keys(Summary::True),
            [
                "code",
                "id",
                "meta",
                "resourceType",
                "status",
                "valueString"
            ]
        );
        assert_eq!(
            keys(Summary::Text),
            ["code", "id", "meta", "resourceType", "status", "text"]
        );
        assert_eq!(
            keys(Summary::Data),
            [
                "code",
                "id",
                "interpretation",
                "meta",
                "note",
                "resourceType",
                "status",
                "valueString"
            ]
        );
        assert_eq!(keys(Summary::False).len(), 8);
        for t in ResourceType::all() {
            assert!(!summary_elements(t.as_str()).is_empty(), "{t}");
        }
    }
}
