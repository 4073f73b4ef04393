//! `_elements`: return only the named top-level elements, marked SUBSETTED. The
//! elements R4 makes mandatory for the type are always kept, so the subset is still
//! a valid resource.

use serde_json::{Value, json};

use super::ResourceType;

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
}
