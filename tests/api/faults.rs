//! A partner that is down, slow, failing or misbehaving never breaks the request:
//! the searchset is 200 with what arrived, a warning names the organisation (never
//! its URL), and the answer comes within the deadline.

use std::time::Duration;

use shcr_facade::sim::Faults;

use crate::closing_proxy::closing_on_reuse;
use crate::harness::*;

/// Searches Alice's observations with the GP misbehaving; returns the bundle.
async fn with_gp_fault(h: &Harness, faults: Faults) -> (serde_json::Value, Reply) {
    // Learn the patient's ids first, so the fault hits the clinical search itself.
    h.ok(&format!("Observation?patient={ALICE}&_summary=count"))
        .await;
    h.sim(GP).set_faults(faults);
    let reply = h
        .get(&format!("Observation?patient={ALICE}&_count=100"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        !reply.text.contains(&h.sim(GP).base_url),
        "partner URL leaked"
    );
    let port = h
        .sim(GP)
        .base_url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/fhir")
        .to_string();
    assert!(
        !reply.text.contains(&format!(":{port}")),
        "partner port leaked"
    );
    (reply.fhir(), reply)
}

fn gp_warning(bundle: &serde_json::Value) -> String {
    let w = warnings(bundle);
    w.into_iter()
        .find(|w| w.starts_with("Riverside Medical Practice (A81001)"))
        .expect("a warning naming the GP")
}

#[tokio::test]
async fn a_hanging_partner_times_out_and_the_rest_is_returned() {
    let h = Harness::start().await;
    let (bundle, reply) = with_gp_fault(
        &h,
        Faults {
            hang: true,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(bundle["total"], 14, "hospital 8 + community 6");
    assert_eq!(
        partner_status(&bundle, "A81001").as_deref(),
        Some("timeout")
    );
    assert!(gp_warning(&bundle).contains("did not answer in time"));
    let timeout = Duration::from_millis(h.config.partners[0].timeout_ms);
    assert!(
        reply.elapsed >= timeout && reply.elapsed < timeout + Duration::from_millis(500),
        "{:?}",
        reply.elapsed
    );
    h.stop().await;
}

#[tokio::test]
async fn a_slow_partner_past_its_timeout_is_left_out() {
    let h = Harness::start().await;
    let (bundle, _) = with_gp_fault(
        &h,
        Faults {
            latency_ms: 900,
            latency_jitter_ms: 100,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(
        partner_status(&bundle, "A81001").as_deref(),
        Some("timeout")
    );
    assert_eq!(bundle["total"], 14);
    h.stop().await;
}

#[tokio::test]
async fn error_statuses_and_random_errors_are_reported() {
    let h = Harness::start().await;
    for faults in [
        Faults {
            status: Some(503),
            ..Faults::default()
        },
        Faults {
            status: Some(401),
            ..Faults::default()
        },
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
    ] {
        let (bundle, _) = with_gp_fault(&h, faults.clone()).await;
        assert_eq!(bundle["total"], 14, "{faults:?}");
        assert_eq!(
            partner_status(&bundle, "A81001").as_deref(),
            Some("error-response"),
            "{faults:?}"
        );
        assert!(
            gp_warning(&bundle).contains("answered with HTTP"),
            "{faults:?}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_malformed_body_is_reported() {
    let h = Harness::start().await;
    let (bundle, _) = with_gp_fault(
        &h,
        Faults {
            malformed: true,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(
        partner_status(&bundle, "A81001").as_deref(),
        Some("malformed-response")
    );
    assert!(gp_warning(&bundle).contains("not a JSON document"));
    assert_eq!(bundle["total"], 14);
    h.stop().await;
}

#[tokio::test]
async fn wrong_types_and_other_patients_records_are_dropped() {
    let h = Harness::start().await;
    let (bundle, _) = with_gp_fault(
        &h,
        Faults {
            wrong_type: true,
            foreign_patient: true,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(
        bundle["total"], 27,
        "all of Alice's own observations still arrive"
    );
    assert!(
        entries(&bundle)
            .iter()
            .all(|r| r["resourceType"] == "Observation"
                && r["subject"]["reference"] == format!("Patient/{ALICE}"))
    );
    let w = warnings(&bundle);
    assert!(
        w.iter()
            .any(|w| w.contains("records of a resource type that was not asked for")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("records about a different patient")),
        "{w:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_partner_that_is_down_is_reported_unreachable() {
    let mut h = Harness::start().await;
    h.ok(&format!("Observation?patient={ALICE}&_summary=count"))
        .await;
    h.stop_partner(ACUTE).await;
    let bundle = h
        .ok(&format!("Observation?patient={ALICE}&_count=100"))
        .await;
    assert_eq!(bundle["total"], 19, "GP 13 + community 6");
    assert_eq!(
        partner_status(&bundle, "RX1").as_deref(),
        Some("unreachable")
    );
    assert!(
        warnings(&bundle)
            .iter()
            .any(|w| w.starts_with("Northgate Hospitals NHS Trust (RX1) could not be reached"))
    );
    // A read from it is 503, naming the organisation only.
    let read = h.get(&format!("Observation/{ACUTE}.obs-alice-hr-1")).await;
    assert_eq!(read.status, 503);
    let issue = outcome_issue(&read);
    assert_eq!(issue["code"], "transient");
    assert!(
        issue["details"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Northgate Hospitals NHS Trust (RX1)")
    );
    h.stop().await;
}

#[tokio::test]
async fn the_overall_deadline_holds_when_every_partner_hangs() {
    let h = Harness::with(|c| {
        c.search.deadline_ms = 400;
        for p in &mut c.partners {
            p.timeout_ms = 400;
        }
    })
    .await;
    h.set_faults_everywhere(Faults {
        hang: true,
        ..Faults::default()
    });
    let reply = h.get(&format!("Observation?patient={ALICE}")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.elapsed < Duration::from_millis(900),
        "{:?}",
        reply.elapsed
    );
    let bundle = reply.fhir();
    assert_eq!(bundle["total"], 0);
    assert_eq!(warnings(&bundle).len(), 3);
    // A read that cannot be answered in time is 504.
    let read = h.get(&format!("Observation/{GP}.obs-alice-hba1c")).await;
    assert_eq!(read.status, 504);
    assert_eq!(outcome_issue(&read)["code"], "timeout");
    h.stop().await;
}

/// The request's deadline bounds a partner's calls together, not one by one: a
/// patient not yet linked costs each partner a lookup and then a search, each within
/// the partner's timeout, but not both within the deadline.
#[tokio::test]
async fn the_request_deadline_bounds_a_partners_calls_together() {
    let h = Harness::with(|c| {
        c.search.deadline_ms = 600;
        for p in &mut c.partners {
            p.timeout_ms = 600;
        }
    })
    .await;
    h.set_faults_everywhere(Faults::latency(400));
    let reply = h.get(&format!("Observation?patient={ALICE}")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.elapsed < Duration::from_millis(1_000),
        "a lookup and a search of 400 ms each took {:?} against a 600 ms deadline",
        reply.elapsed
    );
    let bundle = reply.fhir();
    for ods in ["A81001", "RX1", "RY2"] {
        assert_eq!(
            partner_status(&bundle, ods).as_deref(),
            Some("timeout"),
            "{ods}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn fan_out_is_parallel() {
    let h = Harness::start().await;
    h.ok(&format!("Observation?patient={ALICE}&_summary=count"))
        .await;
    h.set_faults_everywhere(Faults::latency(300));
    let reply = h.get(&format!("Observation?patient={ALICE}")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.elapsed < Duration::from_millis(600),
        "three 300 ms partners took {:?}",
        reply.elapsed
    );
    h.stop().await;
}

/// A GET that meets a kept-alive connection the partner closes as it is reused is
/// sent once more, on a new connection: the partner is not reported unreachable.
#[tokio::test]
async fn a_kept_alive_connection_closed_as_it_is_reused_is_not_an_outage() {
    let h = Harness::start().await;
    let (proxied, received) = closing_on_reuse(&h.sim(ACUTE).base_url).await;
    let facade = h.other_facade(|config| {
        let trust = config.partners.iter_mut().find(|p| p.id == ACUTE).unwrap();
        trust.base_url = proxied;
    });
    for round in 1..=3 {
        let bundle = facade.ok("Organization?name=nobody").await;
        assert_eq!(
            partner_status(&bundle, "RX1").as_deref(),
            Some("ok"),
            "round {round}: {:?}",
            warnings(&bundle)
        );
    }
    // Rounds 2 and 3 each met a closing connection and were sent again.
    assert_eq!(received.count(), 5);
    facade.stop().await;
    h.stop().await;
}
