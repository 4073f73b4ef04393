//! Faults a simulated partner can be told to show.

use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::PartnerData;
use crate::fhir::ResourceType;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Time from a request's arrival to its answer. The FHIR simulator prepares a
    /// search's or read's answer within it, as a server's latency includes its own
    /// work; the GP Connect and legacy simulators wait it out, then answer.
    pub latency_ms: u64,
    /// Extra random delay, 0 to this many ms.
    pub latency_jitter_ms: u64,
    /// Fraction of requests (0.0-1.0) answered with HTTP 500.
    pub error_rate: f64,
    /// Never answer.
    pub hang: bool,
    /// Answer with a truncated JSON body.
    pub malformed: bool,
    /// Answer every request with this HTTP status.
    pub status: Option<u16>,
    /// Add a resource of another type to search results.
    pub wrong_type: bool,
    /// Add a record about another patient to search results.
    pub foreign_patient: bool,
    /// Give every record an extension nested this many levels deep (0: none).
    pub nested_extensions: usize,
    /// Ignore every search parameter but the patient and `_id`, as a partner that
    /// does not support them does: the facade must apply them itself.
    pub ignore_criteria: bool,
    /// Ignore `_sort`, answering in the order records are held, as a partner that
    /// does not support sorting does.
    pub ignore_sort: bool,
    /// Answer 400 to a search with `_sort`, as a strict server without it does.
    pub refuse_sort: bool,
    /// Answer HTTP 500 to requests for records of these types by id (reads, and
    /// searches by `_id`), while answering searches by patient: a partner that fails
    /// while the facade fetches linked records.
    pub fail_by_id: Vec<String>,
}

/// Waits until `deadline` as closely as the OS can. The runtime's timer rounds up to
/// whole milliseconds and then some (a 10 ms sleep took about 11.6), which would be
/// counted against whoever calls this partner; so the last two milliseconds are
/// slept on a blocking thread, which overshoots by tens of microseconds (and an
/// abandoned request holds that thread for no longer).
async fn delay_until(deadline: Instant) {
    let coarse = deadline.checked_sub(Duration::from_millis(2));
    if let Some(coarse) = coarse.filter(|c| *c > Instant::now()) {
        tokio::time::sleep_until(coarse.into()).await;
    }
    let rest = deadline.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

impl Faults {
    pub fn latency(ms: u64) -> Faults {
        Faults {
            latency_ms: ms,
            ..Faults::default()
        }
    }

    /// Waits out the latency, then hangs or fails when told to: for an answer that
    /// is not prepared within the latency.
    pub async fn before_answer(&self) -> Option<HttpResponse> {
        self.in_time(Instant::now()).await;
        self.refusal()
    }

    /// Waits until the latency (and any jitter) has passed since the request
    /// `arrived`, or for ever when told to hang.
    pub async fn in_time(&self, arrived: Instant) {
        let jitter = if self.latency_jitter_ms > 0 {
            rand::thread_rng().gen_range(0..=self.latency_jitter_ms)
        } else {
            0
        };
        if self.latency_ms + jitter > 0 {
            delay_until(arrived + Duration::from_millis(self.latency_ms + jitter)).await;
        }
        if self.hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }

    /// The failure to answer with in place of any data, when told to fail.
    pub fn refusal(&self) -> Option<HttpResponse> {
        if let Some(status) = self.status {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some(outcome(status, "simulated failure"));
        }
        if self.error_rate > 0.0 && rand::thread_rng().gen_bool(self.error_rate.clamp(0.0, 1.0)) {
            return Some(outcome(
                StatusCode::INTERNAL_SERVER_ERROR,
                "simulated random failure",
            ));
        }
        None
    }

    /// Records that should not be in the answer, when told to misbehave (`first`:
    /// the first record that matched).
    pub fn extra_entries(
        &self,
        data: &PartnerData,
        resource_type: ResourceType,
        first: Option<&Value>,
    ) -> Vec<Value> {
        let mut extra = Vec::new();
        if self.wrong_type && resource_type.is_clinical() {
            let subject = first.map(|r| patient_of(r).clone()).unwrap_or(Value::Null);
            extra.push(json!({"resourceType": "Condition", "id": "sim-wrong-type", "subject": subject, "code": {"text": "not asked for"}}));
        }
        if self.foreign_patient
            && let Some(first) = first
            && let Some(other) = data
                .of_type(resource_type)
                .find(|r| patient_of(r) != patient_of(first))
        {
            extra.push(other.clone());
        }
        extra
    }

    /// Answers with a JSON document already written, misshapen as told.
    pub fn answer_json(&self, text: String) -> HttpResponse {
        if self.nested_extensions > 0 {
            let body = serde_json::from_str(&text).expect("the simulator's own JSON");
            return self.answer(body);
        }
        self.respond(text)
    }

    pub fn answer(&self, mut body: Value) -> HttpResponse {
        if self.nested_extensions > 0 {
            let resources: Vec<&mut Value> = match body["resourceType"].as_str() {
                Some("Bundle") => body["entry"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                    .map(|e| &mut e["resource"])
                    .collect(),
                _ => vec![&mut body],
            };
            for resource in resources {
                let mut nested = json!({"url": "https://sim.example/x", "valueString": "x"});
                for _ in 1..self.nested_extensions {
                    nested = json!({"url": "https://sim.example/x", "extension": [nested]});
                }
                resource["extension"] = json!([nested]);
            }
        }
        self.respond(body.to_string())
    }

    fn respond(&self, text: String) -> HttpResponse {
        let text = if self.malformed {
            text[..text.len() / 2].to_string()
        } else {
            text
        };
        HttpResponse::Ok()
            .content_type("application/fhir+json")
            .body(text)
    }
}

/// An HTTP 500 with an OperationOutcome.
pub fn failure(text: &str) -> HttpResponse {
    outcome(StatusCode::INTERNAL_SERVER_ERROR, text)
}

fn outcome(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/fhir+json")
        .body(json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception", "diagnostics": text}]}).to_string())
}

/// The element naming a clinical record's patient.
fn patient_of(resource: &Value) -> &Value {
    if resource["subject"].is_null() {
        &resource["patient"]
    } else {
        &resource["subject"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The latency runs from the request's arrival, so the time spent preparing the
    /// answer is inside it, not added to it; and it is never cut short.
    #[tokio::test]
    async fn the_latency_is_counted_from_the_arrival() {
        let faults = Faults::latency(250);
        let started = Instant::now();
        faults.in_time(started - Duration::from_millis(200)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(45) && waited < Duration::from_millis(200),
            "arrived 200 ms ago with a latency of 250 ms, waited {waited:?}"
        );
        let started = Instant::now();
        faults.in_time(started).await;
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
}
