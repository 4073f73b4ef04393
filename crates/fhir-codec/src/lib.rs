//! The one crate that calls fhirbolt.
//!
//! fhirbolt's generic code is compiled into whichever crate instantiates it, and a
//! release build of it takes minutes. Every function here is plain and non-generic, so
//! the instantiation happens once, in this crate, and editing the facade does not
//! rebuild it.
//!
//! The facade works on `serde_json::Value` (parsed once, cheaply); this crate converts
//! that form to and from the typed R4 model where R4 conformance matters: writing XML,
//! reading XML, and proving a document is valid R4.

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::Value;

/// Why a document could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The input is not an R4 resource (unknown element, wrong type, bad value...).
    #[error("not a valid FHIR R4 resource: {0}")]
    NotR4(String),
    /// The XML is malformed or uses a construct FHIR forbids (DTD, entity, CDATA, PI).
    #[error("not acceptable FHIR XML: {0}")]
    Xml(String),
}

fn config(mode: DeserializationMode) -> Option<DeserializationConfig> {
    Some(DeserializationConfig { mode })
}

/// Checks that `resource` is a valid R4 resource in strict mode: every element known,
/// every value of the right type. Used for the facade's own artefacts and in tests.
pub fn validate_r4_json(resource: &Value) -> Result<(), CodecError> {
    fhirbolt::json::from_json_value::<Resource>(
        resource.clone(),
        config(DeserializationMode::Strict),
    )
    .map(|_| ())
    .map_err(|e| CodecError::NotR4(e.to_string()))
}

/// Writes a resource (usually a Bundle) as FHIR XML.
///
/// Compatibility mode drops elements R4 does not know, so a partner's non-standard
/// extra field cannot make a whole response unrepresentable in XML.
pub fn write_xml(resource: Value) -> Result<Vec<u8>, CodecError> {
    let resource: Resource =
        fhirbolt::json::from_json_value(resource, config(DeserializationMode::Compatibility))
            .map_err(|e| CodecError::NotR4(e.to_string()))?;
    fhirbolt::xml::to_vec(&resource, None).map_err(|e| CodecError::Xml(e.to_string()))
}

/// Reads FHIR XML into the facade's working form, in strict mode.
///
/// Document type declarations, and so any entity definition, are refused by the
/// parser: nothing is expanded and nothing external is fetched.
pub fn read_xml(bytes: &[u8]) -> Result<Value, CodecError> {
    let resource: Resource = fhirbolt::xml::from_slice(bytes, config(DeserializationMode::Strict))
        .map_err(|e| CodecError::Xml(e.to_string()))?;
    fhirbolt::json::to_json_value(resource, None).map_err(|e| CodecError::NotR4(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observation() -> Value {
        // Parsed from text: the decimal 1.50 must keep its trailing zero.
        serde_json::from_str(
            r#"{"resourceType": "Observation", "id": "bp-1", "status": "final",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "75367002"}]},
                "valueQuantity": {"value": 1.50, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn json_round_trips_through_xml() {
        let xml = write_xml(observation()).unwrap();
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(
            text.contains("<Observation xmlns=\"http://hl7.org/fhir\">"),
            "{text}"
        );
        let back = read_xml(&xml).unwrap();
        assert_eq!(back["id"], "bp-1");
        assert_eq!(back["code"]["coding"][0]["code"], "75367002");
        // Decimal precision survives: 1.50 stays 1.50.
        assert_eq!(back["valueQuantity"]["value"].to_string(), "1.50");
    }

    #[test]
    fn strict_validation_rejects_unknown_elements_and_wrong_types() {
        assert!(validate_r4_json(&observation()).is_ok());
        let mut unknown = observation();
        unknown["colour"] = json!("blue");
        assert!(validate_r4_json(&unknown).is_err());
        let mut wrong = observation();
        wrong["status"] = json!(7);
        assert!(validate_r4_json(&wrong).is_err());
    }

    #[test]
    fn xml_with_dtd_or_external_entity_is_refused() {
        let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><id value="&xxe;"/></Patient>"#;
        let err = read_xml(xxe).unwrap_err();
        assert!(matches!(err, CodecError::Xml(_)), "{err}");

        let undeclared = br#"<Patient xmlns="http://hl7.org/fhir"><id value="&xxe;"/></Patient>"#;
        assert!(read_xml(undeclared).is_err());
    }

    /// The facade refuses JSON nested deeper than 64 levels and XML deeper than 40
    /// before parsing; what it lets through must parse and write on a worker
    /// thread's default 2 MiB stack, even unoptimised (where about 55 extension
    /// levels overflow).
    #[test]
    fn bodies_at_the_facades_nesting_bounds_fit_a_worker_stack() {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let levels = 39;
                let xml = "<Consent xmlns=\"http://hl7.org/fhir\">".to_string()
                    + &"<extension url=\"http://x.example\">".repeat(levels)
                    + "<valueString value=\"x\"/>"
                    + &"</extension>".repeat(levels)
                    + "<status value=\"active\"/></Consent>";
                let _ = read_xml(xml.as_bytes());
                // 64 levels of JSON: an object and an array per extension level.
                let mut value = json!({"url": "http://x.example", "valueString": "x"});
                for _ in 0..31 {
                    value = json!({"url": "http://x.example", "extension": [value]});
                }
                let resource = json!({"resourceType": "Basic", "code": {"text": "x"}, "extension": [value]});
                let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": resource}]});
                let _ = validate_r4_json(&bundle);
                let _ = write_xml(bundle);
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
    }

    #[test]
    fn partner_extras_do_not_block_xml_output() {
        let mut extra = observation();
        extra["vendorField"] = json!({"x": 1});
        let xml = String::from_utf8(write_xml(extra).unwrap()).unwrap();
        assert!(!xml.contains("vendorField"));
    }
}
