//! Asking several partners at once: each exchange bounded by the request's deadline
//! and by the partner's own timeout, and timed, so that a slow or silent partner
//! costs the request no more than its bound and is reported, not waited for.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::{Instant, timeout_at};

use super::partner::{Partner, PartnerFailure};
use super::report::{PartnerReport, PartnerStatus};

/// One partner's part in a fan-out: whom it asked and how long that took, what the
/// caller carried alongside the exchange (`with`), and what came back or why nothing
/// did.
pub(super) struct Answered<'p, C, T> {
    pub asked: Asked<'p>,
    pub with: C,
    pub outcome: Result<T, PartnerFailure>,
}

/// A partner asked, and how long its exchange took.
#[derive(Clone, Copy)]
pub(super) struct Asked<'p> {
    pub partner: &'p Arc<Partner>,
    pub latency: Duration,
}

impl Asked<'_> {
    /// The partner's report with `status`, timed by this exchange.
    pub fn report(&self, status: PartnerStatus) -> PartnerReport {
        PartnerReport::new(self.partner.clone(), status, self.latency)
    }
}

impl<'p, C, T> Answered<'p, C, T> {
    /// What the partner answered, with its Ok report; or the report of its failure.
    pub fn answer(self) -> Result<(T, PartnerReport, C), PartnerReport> {
        match self.outcome {
            Ok(answer) => Ok((answer, self.asked.report(PartnerStatus::Ok), self.with)),
            Err(failure) => Err(self.asked.report(PartnerStatus::failed(failure))),
        }
    }
}

/// Runs every exchange of `asks` at once, each bounded by `deadline` and its
/// partner's timeout; their answers in the order asked.
pub(super) async fn ask_each<'p, C, T, F>(
    deadline: Instant,
    asks: impl IntoIterator<Item = (&'p Arc<Partner>, C, F)>,
) -> Vec<Answered<'p, C, T>>
where
    F: Future<Output = Result<T, PartnerFailure>>,
{
    join_all(
        asks.into_iter()
            .map(|(partner, with, exchange)| async move {
                let started = Instant::now();
                let outcome = bounded(partner, deadline, exchange).await;
                let asked = Asked {
                    partner,
                    latency: started.elapsed(),
                };
                Answered {
                    asked,
                    with,
                    outcome,
                }
            }),
    )
    .await
}

/// `exchange`, given up at `deadline` or after the partner's own timeout.
pub(super) async fn bounded<T>(
    partner: &Partner,
    deadline: Instant,
    exchange: impl Future<Output = Result<T, PartnerFailure>>,
) -> Result<T, PartnerFailure> {
    timeout_at(deadline.min(Instant::now() + partner.timeout), exchange)
        .await
        .unwrap_or(Err(PartnerFailure::TimedOut))
}
