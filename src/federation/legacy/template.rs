//! Liquid templates: request URLs, and records turned into FHIR R4 resources.
//!
//! A partner's values reach a record template already escaped for a JSON string, so
//! `"{{ record.name }}"` is safe whatever the partner sends: nothing it sends can
//! close the string and add or replace an element (say, a `code` the sensitive
//! classifier would have seen). Every resource made is parsed as strict R4.

use std::path::{Path, PathBuf};

use liquid::model::Object;
use serde_json::{Value, json};

use crate::fhir::date::parse_range;

/// The variables one template is rendered with.
pub struct Globals(Object);

impl Globals {
    /// `value` must be a JSON object.
    pub fn new(value: Value) -> Globals {
        match to_liquid(&value) {
            liquid::model::Value::Object(object) => Globals(object),
            _ => Globals(Object::new()),
        }
    }
}

/// JSON as Liquid values, built directly: serde's route would turn numbers into
/// objects where serde_json keeps their exact text.
fn to_liquid(value: &Value) -> liquid::model::Value {
    use liquid::model::Value as Liquid;
    match value {
        Value::Null => Liquid::Nil,
        Value::Bool(b) => Liquid::scalar(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Liquid::scalar(i),
            (None, Some(f)) => Liquid::scalar(f),
            (None, None) => Liquid::scalar(n.to_string()),
        },
        Value::String(s) => Liquid::scalar(s.clone()),
        Value::Array(items) => Liquid::Array(items.iter().map(to_liquid).collect()),
        Value::Object(map) => Liquid::Object(
            map.iter()
                .map(|(k, v)| (k.clone().into(), to_liquid(v)))
                .collect(),
        ),
    }
}

fn parser() -> liquid::Parser {
    liquid::ParserBuilder::with_stdlib()
        .build()
        .expect("the standard Liquid library builds")
}

/// Liquid's messages span several lines, with the source quoted; one line without
/// the quote reads better in a report that already names the file and line.
fn one_line(error: &liquid::Error) -> String {
    let quoted_source = |l: &str| {
        l.starts_with('|')
            || l.split_once(" |")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
    };
    error
        .to_string()
        .lines()
        .map(|l| l.split("-->").next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty() && !quoted_source(l))
        .map(|l| l.strip_prefix("= ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The line a Liquid parse error points at (`--> 3:4`).
fn error_line(error: &liquid::Error) -> Option<usize> {
    let text = error.to_string();
    let at = text.find("--> ")? + 4;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A path or query value of a request.
pub struct UrlTemplate(liquid::Template);

impl std::fmt::Debug for UrlTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlTemplate")
    }
}

impl UrlTemplate {
    pub fn parse(source: &str) -> Result<UrlTemplate, String> {
        parser()
            .parse(source)
            .map(UrlTemplate)
            .map_err(|e| one_line(&e))
    }

    pub fn render(&self, globals: &Globals) -> Result<String, String> {
        self.0.render(&globals.0).map_err(|e| one_line(&e))
    }
}

/// Why a record did not become a resource.
#[derive(Debug, thiserror::Error)]
pub enum Unmapped {
    #[error("the template failed: {0}")]
    Template(String),
    #[error("the template did not make JSON: {kind} at line {line} of its output")]
    NotJson { kind: &'static str, line: usize },
    #[error("the template did not make a valid FHIR R4 resource: {0}")]
    NotR4(String),
}

impl Unmapped {
    /// A short word for logs, which must never carry a partner's values.
    pub fn kind(&self) -> &'static str {
        match self {
            Unmapped::Template(_) => "template failed",
            Unmapped::NotJson { .. } => "not JSON",
            Unmapped::NotR4(_) => "not valid R4",
        }
    }
}

/// A template that turns one partner record into one FHIR R4 resource.
pub struct RecordTemplate {
    pub file: PathBuf,
    template: liquid::Template,
}

impl std::fmt::Debug for RecordTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordTemplate({})", self.file.display())
    }
}

impl RecordTemplate {
    /// Parses `text`; an error comes with the line it was found on, if Liquid says.
    pub fn parse(file: &Path, text: &str) -> Result<RecordTemplate, (Option<usize>, String)> {
        let template = parser().parse(text).map_err(|e| {
            let line = error_line(&e).or_else(|| filter_line(&e, text));
            (line, one_line(&e))
        })?;
        Ok(RecordTemplate {
            file: file.to_path_buf(),
            template,
        })
    }

    /// The template's output for `record`, before it is parsed.
    pub fn render_text(
        &self,
        record: &Value,
        patient: Option<&Value>,
        partner: &Value,
    ) -> Result<String, Unmapped> {
        let globals = Globals::new(json!({
            "record": escaped(record),
            "patient": patient.map(escaped).unwrap_or(Value::Null),
            "partner": escaped(partner),
        }));
        self.template
            .render(&globals.0)
            .map_err(|e| Unmapped::Template(one_line(&e)))
    }

    /// Renders `record`, with the patient it belongs to (`id`, `nhs_number`) and the
    /// partner (`id`, `name`, `ods_code`), and parses the result as strict R4.
    pub fn render(
        &self,
        record: &Value,
        patient: Option<&Value>,
        partner: &Value,
    ) -> Result<Value, Unmapped> {
        let text = self.render_text(record, patient, partner)?;
        let resource: Value = serde_json::from_str(&text).map_err(|e| Unmapped::NotJson {
            kind: json_error_kind(&e),
            line: e.line(),
        })?;
        fhir_codec::validate_r4_json(&resource).map_err(|e| Unmapped::NotR4(e.to_string()))?;
        // The R4 parser takes any text as a date; a partner's own date format must not
        // reach clients, nor escape date searches.
        if let Some(element) = misdated(&resource) {
            return Err(Unmapped::NotR4(format!("{element} is not a FHIR date")));
        }
        Ok(resource)
    }
}

fn json_error_kind(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "an early end",
    }
}

/// Elements of a date, dateTime or instant type in the resources served.
fn is_date_element(name: &str) -> bool {
    const NAMES: [&str; 12] = [
        "start",
        "end",
        "birthDate",
        "date",
        "issued",
        "created",
        "authoredOn",
        "recordedDate",
        "dateAsserted",
        "lastUpdated",
        "lastOccurrence",
        "time",
    ];
    NAMES.contains(&name) || name.ends_with("DateTime") || name.ends_with("Instant")
}

/// The name of the first date element whose value is not a FHIR date, if any.
fn misdated(node: &Value) -> Option<String> {
    match node {
        Value::Array(items) => items.iter().find_map(misdated),
        Value::Object(map) => map.iter().find_map(|(name, value)| match value {
            Value::String(text) if is_date_element(name) => {
                parse_range(text).is_none().then(|| name.clone())
            }
            other => misdated(other),
        }),
        _ => None,
    }
}

/// The line of an unknown filter, which Liquid names but does not place.
fn filter_line(error: &liquid::Error, text: &str) -> Option<usize> {
    let message = error.to_string();
    let name = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("requested filter="))?;
    text.lines()
        .position(|l| {
            l.split('|')
                .skip(1)
                .any(|f| f.trim_start().split([':', ' ', '}']).next() == Some(name))
        })
        .map(|i| i + 1)
}

/// Every string in `value` escaped for use inside a JSON string literal.
fn escaped(value: &Value) -> Value {
    match value {
        Value::String(s) => {
            let quoted = Value::String(s.clone()).to_string();
            Value::String(quoted[1..quoted.len() - 1].to_string())
        }
        Value::Array(items) => Value::Array(items.iter().map(escaped).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), escaped(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_numbers() {
        let t = RecordTemplate::parse(Path::new("t"), "{{ record.n }} {{ record.f }}").unwrap();
        let text = t.render_text(&json!({"n": 45, "f": 10.5}), None, &json!({}));
        assert_eq!(text.unwrap(), "45 10.5");
    }

    fn template(text: &str) -> RecordTemplate {
        RecordTemplate::parse(Path::new("t.liquid"), text).unwrap()
    }

    const NOTE: &str = r#"{"resourceType": "Encounter", "id": "{{ record.id }}", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "subject": {"reference": "Patient/{{ patient.id }}"},
        "reasonCode": [{"text": "{{ record.reason }}"}]}"#;

    #[test]
    fn a_record_becomes_a_resource() {
        let r = template(NOTE)
            .render(
                &json!({"id": "v1", "reason": "falls"}),
                Some(&json!({"id": "EC1"})),
                &json!({}),
            )
            .unwrap();
        assert_eq!(r["subject"]["reference"], "Patient/EC1");
        assert_eq!(r["reasonCode"][0]["text"], "falls");
    }

    #[test]
    fn partner_values_cannot_break_out_of_a_string() {
        let sneaky = r#"x"}], "code": {"text": "benign"}, "reasonCode": [{"text": "y"#;
        let r = template(NOTE)
            .render(
                &json!({"id": "v1", "reason": sneaky}),
                Some(&json!({"id": "EC1"})),
                &json!({}),
            )
            .unwrap();
        assert_eq!(r["reasonCode"][0]["text"], sneaky);
        assert!(r.get("code").is_none());
    }

    #[test]
    fn records_that_do_not_map_say_why() {
        let t = template(NOTE);
        let missing = t.render(
            &json!({"id": "v1"}),
            Some(&json!({"id": "EC1"})),
            &json!({}),
        );
        assert!(matches!(missing, Err(Unmapped::Template(_))), "{missing:?}");
        let unknown_element = template(
            r#"{"resourceType": "Encounter", "status": "finished",
            "class": {"code": "HH"}, "colour": "blue"}"#,
        )
        .render(&json!({}), None, &json!({}));
        assert!(
            matches!(unknown_element, Err(Unmapped::NotR4(_))),
            "{unknown_element:?}"
        );
        let broken =
            template(r#"{"resourceType": "Encounter", "#).render(&json!({}), None, &json!({}));
        assert!(
            matches!(broken, Err(Unmapped::NotJson { .. })),
            "{broken:?}"
        );
        let bad_date = template(
            r#"{"resourceType": "Encounter", "status": "finished",
            "class": {"code": "HH"}, "period": {"start": "{{ record.d }}"}}"#,
        )
        .render(&json!({"d": "31/02/2024"}), None, &json!({}));
        assert!(matches!(bad_date, Err(Unmapped::NotR4(_))), "{bad_date:?}");
    }

    #[test]
    fn parse_errors_name_the_line() {
        let (line, message) =
            RecordTemplate::parse(Path::new("t"), "{\n\"a\": 1,\n\"b\": {{ x \n}").unwrap_err();
        assert_eq!(line, Some(3), "{message}");
        let (line, message) =
            RecordTemplate::parse(Path::new("t"), "{\n\n\"b\": \"{{ x | shout }}\"\n}")
                .unwrap_err();
        assert_eq!(line, Some(3), "{message}");
        assert!(message.contains("shout"), "{message}");
    }
}
