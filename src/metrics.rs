//! Operational metrics, scraped as Prometheus text at `GET /metrics`.
//!
//! Labels are route patterns, partner ids from the configuration, status codes and
//! fixed reason words: never a path, a query, an NHS number, a name or a token, so
//! the page can be scraped by systems that may not see patient data.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route pattern (`/fhir/{type}/{id}`), or `unmatched`.
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerLabels {
    partner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerOutcomeLabels {
    partner: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    partner_seconds: Histograms<PartnerLabels>,
    partner_outcomes: Family<PartnerOutcomeLabels, Counter>,
    audit_commit_seconds: Histogram,
    audit_failures: Counter,
    audit_group_size: Histogram,
    withheld: Family<ReasonLabels, Counter>,
    pool: Family<PoolLabels, Gauge>,
}

fn latency_buckets() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("shcr");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route pattern, method and status",
            requests.clone(),
        );
        let request_seconds: Histograms<RouteLabels> =
            Family::new_with_constructor(latency_buckets);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route pattern",
            request_seconds.clone(),
        );
        let partner_seconds: Histograms<PartnerLabels> =
            Family::new_with_constructor(latency_buckets);
        registry.register(
            "partner_request_duration_seconds",
            "Time each partner took to answer one call, by partner id",
            partner_seconds.clone(),
        );
        let partner_outcomes = Family::<PartnerOutcomeLabels, Counter>::default();
        registry.register(
            "partner_requests",
            "Calls to partners, by partner id and outcome (ok, http-4xx, http-5xx, timeout, unreachable, ...)",
            partner_outcomes.clone(),
        );
        let audit_commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "audit_commit_duration_seconds",
            "Time to write one access's audit event before its answer leaves",
            audit_commit_seconds.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_commit_failures",
            "Audit events that could not be written (their answers were replaced by 503)",
            audit_failures.clone(),
        );
        let audit_group_size = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "audit_group_events",
            "Events written per audit transaction (requests sharing one commit)",
            audit_group_size.clone(),
        );
        let withheld = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "policy_withheld_records",
            "Records the release stage withheld, by reason (policy: a category, label or link; not-judged: a link that could not be checked)",
            withheld.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "database_pool_connections",
            "Database pool connections by state (in-use, idle, max)",
            pool.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            partner_seconds,
            partner_outcomes,
            audit_commit_seconds,
            audit_failures,
            audit_group_size,
            withheld,
            pool,
        }
    }

    /// The process's metrics (one registry, shared by every worker).
    pub fn get() -> &'static Metrics {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(Metrics::new)
    }

    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn partner_call(&self, partner: &str, outcome: &str, elapsed: Duration) {
        let labels = PartnerLabels {
            partner: partner.to_string(),
        };
        self.partner_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.partner_outcomes
            .get_or_create(&PartnerOutcomeLabels {
                partner: labels.partner,
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn audit_commit(&self, elapsed: Duration, written: bool) {
        self.audit_commit_seconds.observe(elapsed.as_secs_f64());
        if !written {
            self.audit_failures.inc();
        }
    }

    pub fn audit_group(&self, events: usize) {
        self.audit_group_size.observe(events as f64);
    }

    pub fn withheld(&self, policy: usize, not_judged: usize) {
        for (reason, count) in [("policy", policy), ("not-judged", not_judged)] {
            if count > 0 {
                self.withheld
                    .get_or_create(&ReasonLabels {
                        reason: reason.to_string(),
                    })
                    .inc_by(count as u64);
            }
        }
    }

    /// The page, with the pool's state as it is now.
    pub fn render(&self, pool: crate::store::PoolState) -> String {
        for (state, value) in [
            ("in-use", pool.in_use),
            ("idle", pool.idle),
            ("max", pool.max),
        ] {
            self.pool
                .get_or_create(&PoolLabels {
                    state: state.to_string(),
                })
                .set(i64::from(value));
        }
        let mut page = String::new();
        prometheus_client::encoding::text::encode(&mut page, &self.registry)
            .expect("writing to a String cannot fail");
        page
    }
}
