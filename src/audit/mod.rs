//! Audit: one AuditEvent for every request, written to the hash-chained store before
//! the answer is released (fail closed), and the chain's verification.

pub mod chain;
pub mod event;
pub mod query;

pub use event::{Access, PartnerOutcome, Requester, audit_event};

use crate::store::{Store, StoreError, audit};

/// Appends the event for `access`; its sequence number.
pub async fn record(store: &Store, access: &Access) -> Result<i64, StoreError> {
    let event = audit_event(access).to_string();
    store
        .run(move |conn| audit::append(conn, &event, chain::hash))
        .await
}

/// Walks the whole chain in order; the number of events, or the first bad one.
pub fn verify(store: &Store) -> Result<Result<(i64, String), chain::ChainBreak>, StoreError> {
    const BATCH: i64 = 1000;
    let mut walk = chain::ChainWalk::default();
    let mut from = 1;
    loop {
        let rows = store.with_conn(|conn| audit::read(conn, from, BATCH))?;
        for row in &rows {
            if let Err(broken) = walk.check(row) {
                return Ok(Err(broken));
            }
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == BATCH => from = last.sequence + 1,
            _ => return Ok(Ok((walk.count(), walk.head().to_string()))),
        }
    }
}
