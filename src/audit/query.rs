//! Searching the audit trail (privacy officers): which stored AuditEvents match
//! `patient`, `agent`, `date`, `outcome` and `_tag` (alerts: emergency access).

use serde_json::Value;

use crate::fhir::NhsNumber;
use crate::fhir::date::{DateValue, parse_range};

/// The parameters `GET /fhir/AuditEvent` understands.
pub const PARAMETERS: [&str; 5] = ["patient", "agent", "date", "outcome", "_tag"];

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    patient: Option<String>,
    agent: Option<String>,
    dates: Vec<DateValue>,
    outcome: Option<String>,
    tag: Option<String>,
}

impl AuditQuery {
    /// From query pairs (paging and format parameters are the caller's).
    pub fn parse(pairs: &[(String, String)]) -> Result<AuditQuery, String> {
        let mut query = AuditQuery::default();
        for (name, value) in pairs {
            match name.as_str() {
                "patient" => {
                    let id = value.trim_start_matches("Patient/");
                    let nhs = NhsNumber::parse(id)
                        .map_err(|_| format!("patient '{value}' is not Patient/{{NHS number}}"))?;
                    query.patient = Some(nhs.to_string());
                }
                "agent" => query.agent = Some(value.clone()),
                "date" => query.dates.push(DateValue::parse(value)?),
                "outcome" => {
                    if !matches!(value.as_str(), "0" | "4" | "8" | "12") {
                        return Err(format!("outcome '{value}' is not 0, 4, 8 or 12"));
                    }
                    query.outcome = Some(value.clone());
                }
                "_tag" => query.tag = Some(value.rsplit('|').next().unwrap_or_default().into()),
                _ => {}
            }
        }
        Ok(query)
    }

    pub fn matches(&self, event: &Value) -> bool {
        let entities = || event["entity"].as_array().into_iter().flatten();
        let agents = || event["agent"].as_array().into_iter().flatten();
        self.patient.as_ref().is_none_or(|nhs| {
            let reference = format!("Patient/{nhs}");
            entities().any(|e| e["role"]["code"] == "1" && e["what"]["reference"] == *reference)
        }) && self.agent.as_ref().is_none_or(|agent| {
            agents().any(|a| a["who"]["identifier"]["value"] == *agent.as_str())
        }) && self
            .outcome
            .as_ref()
            .is_none_or(|o| event["outcome"] == *o.as_str())
            && self.tag.as_ref().is_none_or(|tag| {
                event["meta"]["tag"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["code"] == *tag.as_str())
            })
            && (self.dates.is_empty()
                || event["recorded"]
                    .as_str()
                    .and_then(parse_range)
                    .is_some_and(|recorded| self.dates.iter().all(|d| d.matches(&recorded))))
    }
}
