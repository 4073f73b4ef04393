//! Audit events: append-only, numbered 1, 2, 3... without gaps, each row carrying the
//! hash of the one before and its own, so the chain can be verified end to end.

use diesel::prelude::*;

use super::schema::audit_events::dsl as a;
use super::{AnyConnection, StoreError, now_ms, retrying};

/// The `previous_hash` of the first event.
pub const GENESIS: &str = "";

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AuditRow {
    pub sequence: i64,
    pub recorded_at: i64,
    pub event: String,
    pub previous_hash: String,
    pub hash: String,
}

/// Appends `event`. `hash` computes the new row's hash from (previous hash, sequence,
/// event). Instances appending at the same time cannot take the same sequence number:
/// the loser retries on the next one.
pub fn append(
    conn: &mut AnyConnection,
    event: &str,
    hash: impl Fn(&str, i64, &str) -> String,
) -> Result<i64, StoreError> {
    retrying(|| {
        conn.transaction(|conn| {
            let last: Option<(i64, String)> = a::audit_events
                .order(a::sequence.desc())
                .select((a::sequence, a::hash))
                .first(conn)
                .optional()?;
            let (sequence, previous_hash) = match last {
                Some((sequence, hash)) => (sequence + 1, hash),
                None => (1, GENESIS.to_string()),
            };
            let own = hash(&previous_hash, sequence, event);
            diesel::insert_into(a::audit_events)
                .values((
                    a::sequence.eq(sequence),
                    a::recorded_at.eq(now_ms()),
                    a::event.eq(event),
                    a::previous_hash.eq(&previous_hash),
                    a::hash.eq(&own),
                ))
                .execute(conn)?;
            Ok::<_, diesel::result::Error>(sequence)
        })
    })
}

/// Events from `from_sequence` on, in order, at most `limit`.
pub fn read(
    conn: &mut AnyConnection,
    from_sequence: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    Ok(a::audit_events
        .filter(a::sequence.ge(from_sequence))
        .order(a::sequence.asc())
        .limit(limit)
        .load(conn)?)
}

/// Events before `before` (all, if None), newest first, at most `limit`.
pub fn read_newest(
    conn: &mut AnyConnection,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    Ok(a::audit_events
        .filter(a::sequence.lt(before.unwrap_or(i64::MAX)))
        .order(a::sequence.desc())
        .limit(limit)
        .load(conn)?)
}
