//! `_elements`: return only the named top-level elements, marked SUBSETTED.

use serde_json::{Value, json};

const MANDATORY: [&str; 3] = ["resourceType", "id", "meta"];

pub fn subset(resource: &mut Value, elements: &[String]) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    object.retain(|key, _| {
        MANDATORY.contains(&key.as_str())
            || elements.iter().any(|e| {
                key == e
                    || (key.starts_with(e.as_str())
                        && key
                            .as_bytes()
                            .get(e.len())
                            .is_some_and(u8::is_ascii_uppercase))
            })
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
    fn keeps_named_and_mandatory_elements_including_choice_types() {
        let mut obs = json!({"resourceType": "Observation", "id": "x", "status": "final", "code": {}, "effectiveDateTime": "2024", "note": []});
        subset(&mut obs, &["status".into(), "effective".into()]);
        let keys: Vec<&String> = obs.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["resourceType", "id", "status", "effectiveDateTime", "meta"]
        );
        assert_eq!(obs["meta"]["tag"][0]["code"], "SUBSETTED");
    }
}
