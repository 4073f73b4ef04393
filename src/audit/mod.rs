//! Audit: one AuditEvent for every request, written to the hash-chained store before
//! the answer is released (fail closed), and the chain's verification.

pub mod chain;
pub mod event;
pub mod group_commit;
pub mod query;

pub use event::{Access, PartnerOutcome, Requester, audit_event, audit_event_text};
pub use group_commit::GroupCommit;

use crate::store::{Store, StoreError, audit};

/// Appends the event for `access`, with the keys the audit search finds it by, and
/// returns once it is committed (durably, shared with the events arriving with it):
/// its sequence number.
pub async fn record(writer: &GroupCommit, access: &Access) -> Result<i64, StoreError> {
    let event = audit_event_text(access);
    let keys = query::keys_for(access);
    let recorded_at = chrono::DateTime::parse_from_rfc3339(&access.recorded)
        .map_or_else(|_| crate::store::now_ms(), |t| t.timestamp_millis());
    let started = std::time::Instant::now();
    let written = writer
        .append(audit::NewEvent {
            event,
            recorded_at,
            keys,
        })
        .await;
    crate::metrics::Metrics::get().audit_commit(started.elapsed(), written.is_ok());
    written
}

/// Gives the audit search keys to events stored without them (by an earlier
/// version); run at start. The number of events indexed.
pub fn index_unkeyed(store: &Store) -> Result<usize, StoreError> {
    store.with_conn(|conn| {
        audit::index_unkeyed(conn, |text| {
            serde_json::from_str::<serde_json::Value>(text)
                .map(|event| query::keys_of(&event))
                .unwrap_or_default()
        })
    })
}

/// A point of the chain recorded elsewhere (`audit verify` prints it): the event with
/// this sequence number had this hash. Without one, removing the newest events
/// leaves a shorter chain that still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub sequence: i64,
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = String;

    /// `SEQUENCE:HASH`, as `audit verify` prints the head.
    fn from_str(s: &str) -> Result<Anchor, String> {
        let (sequence, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}' is not SEQUENCE:HASH"))?;
        Ok(Anchor {
            sequence: sequence
                .parse()
                .map_err(|_| format!("'{sequence}' is not a sequence number"))?,
            hash: hash.to_string(),
        })
    }
}

/// Walks the whole chain in order; the number of events and the head hash, or the
/// first bad event. With an anchor, the chain must still reach it unchanged.
pub fn verify(
    store: &Store,
    anchor: Option<&Anchor>,
) -> Result<Result<(i64, String), chain::ChainBreak>, StoreError> {
    const BATCH: i64 = 1000;
    let mut walk = chain::ChainWalk::default();
    let mut from = 1;
    loop {
        let rows = store.with_conn(|conn| audit::read(conn, from, BATCH))?;
        for row in &rows {
            if let Err(broken) = walk.check(row) {
                return Ok(Err(broken));
            }
            if let Some(anchor) = anchor
                && row.sequence == anchor.sequence
                && row.hash != anchor.hash
            {
                return Ok(Err(chain::ChainBreak {
                    sequence: row.sequence,
                    reason: "differs from the anchor recorded for it: the chain was rewritten"
                        .into(),
                }));
            }
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == BATCH => from = last.sequence + 1,
            _ => break,
        }
    }
    if let Some(anchor) = anchor
        && walk.count() < anchor.sequence
    {
        return Ok(Err(chain::ChainBreak {
            sequence: walk.count() + 1,
            reason: format!(
                "missing: the chain ends at {} but the anchor says event {} existed (truncated)",
                walk.count(),
                anchor.sequence
            ),
        }));
    }
    Ok(Ok((walk.count(), walk.head().to_string())))
}
