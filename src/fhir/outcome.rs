//! OperationOutcome issues: how every error, warning and partner report is said.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One OperationOutcome issue. `code` is from http://hl7.org/fhir/issue-type.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    pub code: &'static str,
    /// The human sentence, in `details.text`.
    pub text: String,
    /// Optional coded detail `(system, code)`.
    pub detail: Option<(&'static str, &'static str)>,
    /// Search parameter or element the issue is about, in `expression`.
    pub expression: Option<String>,
    /// Extensions on the issue (used for per-partner reports).
    pub extension: Option<Value>,
}

impl Issue {
    pub fn new(severity: Severity, code: &'static str, text: impl Into<String>) -> Self {
        Issue {
            severity,
            code,
            text: text.into(),
            detail: None,
            expression: None,
            extension: None,
        }
    }

    pub fn error(code: &'static str, text: impl Into<String>) -> Self {
        Issue::new(Severity::Error, code, text)
    }

    pub fn warning(code: &'static str, text: impl Into<String>) -> Self {
        Issue::new(Severity::Warning, code, text)
    }

    pub fn information(code: &'static str, text: impl Into<String>) -> Self {
        Issue::new(Severity::Information, code, text)
    }

    pub fn with_expression(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    pub fn with_detail(mut self, system: &'static str, code: &'static str) -> Self {
        self.detail = Some((system, code));
        self
    }

    pub fn to_json(&self) -> Value {
        let mut details = json!({ "text": self.text });
        if let Some((system, code)) = self.detail {
            details["coding"] = json!([{ "system": system, "code": code }]);
        }
        let mut issue = json!({
            "severity": self.severity.as_str(),
            "code": self.code,
        });
        issue["details"] = details;
        if let Some(expression) = &self.expression {
            issue["expression"] = json!([expression]);
        }
        if let Some(extension) = &self.extension {
            issue["extension"] = extension.clone();
        }
        issue
    }
}

/// Builds an OperationOutcome resource from issues.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let mut outcome = json!({ "resourceType": "OperationOutcome" });
    outcome["issue"] = issues.iter().map(Issue::to_json).collect();
    outcome
}
