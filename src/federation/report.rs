//! What each partner consulted did, as the client sees it in the searchset's
//! OperationOutcome: one `information` issue per partner (status, latency, entries,
//! in an extension and in words), plus a `warning` for anything that went wrong.
//! Organisations are named by name and ODS code; never by URL.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::partner::{Partner, PartnerFailure};
use crate::fhir::outcome::Issue;
use crate::fhir::{ODS_ORGANISATION_SYSTEM, PARTNER_REPORT_EXTENSION, PARTNER_STATUS_SYSTEM};

#[derive(Debug, Clone, PartialEq)]
pub enum PartnerStatus {
    /// Answered in full.
    Ok,
    /// Answered, but offered more pages than the facade follows.
    Incomplete,
    /// Does not hold a record for this patient, so was not asked further.
    PatientNotKnown,
    /// The patient asked the partner (their GP practice) not to share its record.
    PatientDissent,
    Failed(PartnerFailure),
}

impl PartnerStatus {
    /// What a failed exchange makes of the partner's status: a dissent is the
    /// patient's choice, not a failure.
    pub fn failed(failure: PartnerFailure) -> PartnerStatus {
        match failure {
            PartnerFailure::PatientDissent => PartnerStatus::PatientDissent,
            other => PartnerStatus::Failed(other),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            PartnerStatus::Ok => "ok",
            PartnerStatus::Incomplete => "incomplete",
            PartnerStatus::PatientNotKnown => "patient-not-known",
            PartnerStatus::PatientDissent => "patient-dissent",
            PartnerStatus::Failed(PartnerFailure::PatientDissent) => "patient-dissent",
            PartnerStatus::Failed(PartnerFailure::UserRequired) => "user-required",
            PartnerStatus::Failed(PartnerFailure::TimedOut) => "timeout",
            PartnerStatus::Failed(PartnerFailure::Unreachable) => "unreachable",
            PartnerStatus::Failed(PartnerFailure::HttpStatus(_)) => "error-response",
            PartnerStatus::Failed(PartnerFailure::Malformed(_)) => "malformed-response",
            PartnerStatus::Failed(PartnerFailure::TooLarge) => "too-large",
            PartnerStatus::Failed(PartnerFailure::CredentialsRefused) => "credentials-refused",
            PartnerStatus::Failed(PartnerFailure::LoopRefused) => "loop-refused",
        }
    }
}

/// Why a partner's answer may not be its whole record, for the professional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    /// Records the partner holds are known to be missing from this result (its
    /// status is then `incomplete`); else the partner's own record may be.
    pub incomplete: bool,
}

impl Notice {
    pub fn warning(text: impl Into<String>) -> Notice {
        Notice {
            text: text.into(),
            incomplete: false,
        }
    }

    pub fn incomplete(text: impl Into<String>) -> Notice {
        Notice {
            text: text.into(),
            incomplete: true,
        }
    }

    /// More pages than the facade follows.
    pub fn more_pages() -> Notice {
        Notice::incomplete(
            "holds more records than the facade gathers in one search; narrow the search to see the rest",
        )
    }
}

/// Records a partner sent that the facade would not pass on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rejected {
    pub wrong_type: usize,
    pub other_patient: usize,
    pub unusable: usize,
    /// Legacy records that did not map to FHIR R4.
    pub unmapped: usize,
}

impl Rejected {
    pub fn total(&self) -> usize {
        self.wrong_type + self.other_patient + self.unusable + self.unmapped
    }
}

#[derive(Debug, Clone)]
pub struct PartnerReport {
    pub partner: Arc<Partner>,
    pub status: PartnerStatus,
    pub latency: Duration,
    pub entries: usize,
    pub rejected: Rejected,
    /// Each once, in the order said.
    pub notices: Vec<Notice>,
}

impl PartnerReport {
    pub fn new(partner: Arc<Partner>, status: PartnerStatus, latency: Duration) -> PartnerReport {
        PartnerReport {
            partner,
            status,
            latency,
            entries: 0,
            rejected: Rejected::default(),
            notices: Vec::new(),
        }
    }

    /// Takes note of what the partner said; an incomplete answer makes the partner's
    /// status incomplete unless it is already worse.
    pub fn note(&mut self, notice: Notice) {
        if notice.incomplete && matches!(self.status, PartnerStatus::Ok) {
            self.status = PartnerStatus::Incomplete;
        }
        if !self.notices.contains(&notice) {
            self.notices.push(notice);
        }
    }

    /// Folds another exchange with the same partner into this report (several types).
    pub fn absorb(&mut self, other: PartnerReport) {
        self.latency = self.latency.max(other.latency);
        self.entries += other.entries;
        self.rejected.wrong_type += other.rejected.wrong_type;
        self.rejected.other_patient += other.rejected.other_patient;
        self.rejected.unusable += other.rejected.unusable;
        self.rejected.unmapped += other.rejected.unmapped;
        for notice in other.notices {
            if !self.notices.contains(&notice) {
                self.notices.push(notice);
            }
        }
        let rank = |s: &PartnerStatus| match s {
            PartnerStatus::Failed(_) => 3,
            PartnerStatus::Incomplete => 2,
            PartnerStatus::Ok => 1,
            PartnerStatus::PatientNotKnown | PartnerStatus::PatientDissent => 0,
        };
        if rank(&other.status) > rank(&self.status) {
            self.status = other.status;
        }
    }

    pub fn issues(&self) -> Vec<Issue> {
        let label = self.partner.label();
        let latency_ms = self.latency.as_millis() as u64;
        let mut summary = Issue::information(
            "informational",
            format!(
                "{label}: {}, {latency_ms} ms, {} entries",
                self.status.code(),
                self.entries
            ),
        )
        .with_detail(PARTNER_STATUS_SYSTEM, self.status.code());
        summary.extension = Some(json!([{
            "url": PARTNER_REPORT_EXTENSION,
            "extension": [
                {"url": "organization", "valueIdentifier": {"system": ODS_ORGANISATION_SYSTEM, "value": self.partner.ods_code}},
                {"url": "status", "valueCode": self.status.code()},
                {"url": "latency", "valueDuration": {"value": latency_ms, "unit": "ms", "system": "http://unitsofmeasure.org", "code": "ms"}},
                {"url": "entries", "valueUnsignedInt": self.entries}
            ]
        }]));
        let mut issues = vec![summary];
        match &self.status {
            PartnerStatus::Failed(failure) => {
                let code = match failure {
                    PartnerFailure::TimedOut => "timeout",
                    PartnerFailure::TooLarge => "too-costly",
                    PartnerFailure::UserRequired => "security",
                    _ => "transient",
                };
                issues.push(Issue::warning(code, format!("{label} {failure}; its records are missing from this result")));
            }
            PartnerStatus::PatientDissent => issues.push(Issue::warning(
                "suppressed",
                format!("{label}: the patient has asked their GP practice not to share their GP record, so it is not available through the Shared Care Record; records from other organisations are shown as usual"),
            )),
            _ => {}
        }
        for notice in &self.notices {
            issues.push(Issue::warning(
                "incomplete",
                format!("{label}: {}", notice.text),
            ));
        }
        let r = self.rejected;
        for (count, what) in [
            (r.wrong_type, "of a resource type that was not asked for"),
            (r.other_patient, "about a different patient"),
            (r.unusable, "that could not be identified"),
            (r.unmapped, "that could not be turned into FHIR R4"),
        ] {
            if count > 0 {
                issues.push(Issue::warning(
                    "processing",
                    format!("{label} sent {count} records {what}; they were left out"),
                ));
            }
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner() -> Arc<Partner> {
        Arc::new(Partner::from_config(
            &crate::config::PartnerConfig {
                id: "gp".into(),
                name: "Riverside Medical Practice".into(),
                ods_code: "A81001".into(),
                kind: crate::config::PartnerKind::Fhir,
                base_url: "http://127.0.0.1:9/fhir".into(),
                resource_types: vec![crate::fhir::ResourceType::named("Observation")],
                timeout_ms: 100,
                mapping: None,
                credentials: Default::default(),
                gp_connect: None,
            },
            std::sync::Arc::new(crate::federation::credentials::Credentials::none()),
            crate::federation::source::Source::Fhir,
            "test",
        ))
    }

    #[test]
    fn a_failure_outranks_partial_and_full_answers_whatever_the_order() {
        let report = |status| PartnerReport::new(partner(), status, Duration::from_millis(5));
        let failed = PartnerStatus::Failed(PartnerFailure::TimedOut);
        for order in [
            [failed.clone(), PartnerStatus::Incomplete],
            [PartnerStatus::Incomplete, failed.clone()],
        ] {
            let mut summary = report(PartnerStatus::Ok);
            for status in order {
                summary.absorb(report(status));
            }
            assert_eq!(summary.status, failed);
        }
        let mut summary = report(PartnerStatus::Ok);
        summary.note(Notice::more_pages());
        assert_eq!(summary.status, PartnerStatus::Incomplete);
        let issues = summary.issues();
        assert_eq!(issues.len(), 2, "the report and a warning");
        assert!(
            !format!("{issues:?}").contains("127.0.0.1"),
            "no partner URL"
        );
    }

    #[test]
    fn every_status_reported_is_defined_in_the_code_system() {
        let text = include_str!("../../fhir-profiles/codesystem-partner-status.json");
        let code_system: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(code_system["url"], PARTNER_STATUS_SYSTEM);
        let defined: Vec<&str> = code_system["concept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["code"].as_str().unwrap())
            .collect();
        let statuses = [
            PartnerStatus::Ok,
            PartnerStatus::Incomplete,
            PartnerStatus::PatientNotKnown,
            PartnerStatus::Failed(PartnerFailure::TimedOut),
            PartnerStatus::Failed(PartnerFailure::Unreachable),
            PartnerStatus::Failed(PartnerFailure::HttpStatus(500)),
            PartnerStatus::Failed(PartnerFailure::Malformed("Bundle")),
            PartnerStatus::Failed(PartnerFailure::TooLarge),
            PartnerStatus::Failed(PartnerFailure::CredentialsRefused),
            PartnerStatus::Failed(PartnerFailure::LoopRefused),
            PartnerStatus::PatientDissent,
            PartnerStatus::Failed(PartnerFailure::UserRequired),
        ];
        for status in statuses {
            assert!(defined.contains(&status.code()), "{}", status.code());
        }
        assert_eq!(defined.len(), 12);
    }
}
