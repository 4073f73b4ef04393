//! Audit events: append-only, numbered 1, 2, 3... without gaps, each row carrying the
//! hash of the one before and its own, so the chain can be verified end to end.

use diesel::prelude::*;

use super::schema::audit_events::dsl as a;
use super::schema::audit_keys::dsl as k;
use super::{AnyConnection, StoreError, retrying, write_transaction};

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

/// What the audit search finds an event by: `(key, value)` pairs such as
/// `("patient", nhs)`, `("agent", user id)`, `("outcome", "0")`, `("tag", "BTG")`.
pub type AuditKeys = Vec<(String, String)>;

/// One event waiting to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: String,
    /// Unix ms.
    pub recorded_at: i64,
    pub keys: AuditKeys,
}

/// Appends `event`, recorded at `recorded_at` (unix ms), with its search keys in the
/// same transaction. `hash` computes the new row's hash from (previous hash,
/// sequence, event). Instances appending at the same time cannot take the same
/// sequence number: the loser retries on the next one.
pub fn append(
    conn: &mut AnyConnection,
    event: &str,
    recorded_at: i64,
    keys: &AuditKeys,
    hash: impl Fn(&str, i64, &str) -> String,
) -> Result<i64, StoreError> {
    let one = [NewEvent {
        event: event.to_string(),
        recorded_at,
        keys: keys.clone(),
    }];
    Ok(append_all(conn, &one, hash)?[0])
}

/// Appends `events` in order, chained one after another, in one transaction (one
/// commit, one flush to disk, for all of them): their sequence numbers. Either all
/// are recorded or none is.
pub fn append_all(
    conn: &mut AnyConnection,
    events: &[NewEvent],
    hash: impl Fn(&str, i64, &str) -> String,
) -> Result<Vec<i64>, StoreError> {
    retrying(|| {
        write_transaction(conn, |conn| {
            let newest: Option<i64> = a::audit_events
                .select(diesel::dsl::max(a::sequence))
                .get_result(conn)?;
            let (mut sequence, mut previous_hash) = match newest {
                Some(sequence) => {
                    let hash: String = a::audit_events
                        .filter(a::sequence.eq(sequence))
                        .select(a::hash)
                        .get_result(conn)?;
                    (sequence, hash)
                }
                None => (0, GENESIS.to_string()),
            };
            let mut sequences = Vec::with_capacity(events.len());
            for new in events {
                sequence += 1;
                let own = hash(&previous_hash, sequence, &new.event);
                diesel::insert_into(a::audit_events)
                    .values((
                        a::sequence.eq(sequence),
                        a::recorded_at.eq(new.recorded_at),
                        a::event.eq(&new.event),
                        a::previous_hash.eq(&previous_hash),
                        a::hash.eq(&own),
                    ))
                    .execute(conn)?;
                insert_keys(conn, sequence, &new.keys)?;
                previous_hash = own;
                sequences.push(sequence);
            }
            Ok::<_, diesel::result::Error>(sequences)
        })
    })
}

fn insert_keys(
    conn: &mut AnyConnection,
    sequence: i64,
    keys: &AuditKeys,
) -> Result<(), diesel::result::Error> {
    for (key, value) in keys {
        diesel::insert_into(k::audit_keys)
            .values((k::key.eq(key), k::value.eq(value), k::sequence.eq(sequence)))
            .execute(conn)?;
    }
    Ok(())
}

/// Gives the key table the keys of events recorded before it existed (or by an
/// older version still running beside a newer one): every event without an
/// `outcome` key, which every keyed event has. `keys_of` reads them from the stored
/// event. Run at start, after the migrations.
pub fn index_unkeyed(
    conn: &mut AnyConnection,
    keys_of: impl Fn(&str) -> AuditKeys,
) -> Result<usize, StoreError> {
    const BATCH: i64 = 1000;
    let mut indexed = 0;
    // Events that yield no keys at all (unreadable) are passed over, not retried.
    let mut after = 0;
    loop {
        // Two instances starting together may both index: the loser retries and
        // finds the work done.
        let done = retrying(|| {
            write_transaction(conn, |conn| {
                let keyed = k::audit_keys
                    .filter(k::key.eq("outcome"))
                    .select(k::sequence);
                let rows: Vec<(i64, String)> = a::audit_events
                    .filter(diesel::dsl::not(a::sequence.eq_any(keyed)))
                    .filter(a::sequence.gt(after))
                    .order(a::sequence.asc())
                    .limit(BATCH)
                    .select((a::sequence, a::event))
                    .load(conn)?;
                for (sequence, event) in &rows {
                    insert_keys(conn, *sequence, &keys_of(event))?;
                }
                Ok::<_, diesel::result::Error>((rows.len(), rows.last().map(|r| r.0)))
            })
        })?;
        indexed += done.0;
        match done {
            (n, Some(last)) if n == BATCH as usize => after = last,
            _ => return Ok(indexed),
        }
    }
}

/// What an audit search asks of the store: events with every one of `keys`,
/// recorded in `[recorded_from, recorded_before)`, older than `before_sequence`.
#[derive(Debug, Clone)]
pub struct KeySearch {
    pub keys: AuditKeys,
    pub recorded_from: i64,
    pub recorded_before: i64,
    pub before_sequence: i64,
}

/// Events matching `search`, newest first, at most `limit`: found through the key
/// table and the time index, never by reading the trail.
pub fn search(
    conn: &mut AnyConnection,
    search: &KeySearch,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut query = a::audit_events
        .filter(a::sequence.lt(search.before_sequence))
        .filter(a::recorded_at.ge(search.recorded_from))
        .filter(a::recorded_at.lt(search.recorded_before))
        .into_boxed();
    for (key, value) in &search.keys {
        let keyed = k::audit_keys
            .filter(k::key.eq(key.clone()))
            .filter(k::value.eq(value.clone()))
            .select(k::sequence);
        query = query.filter(a::sequence.eq_any(keyed));
    }
    Ok(query.order(a::sequence.desc()).limit(limit).load(conn)?)
}

/// The event with this sequence number, if any.
pub fn event(conn: &mut AnyConnection, sequence: i64) -> Result<Option<AuditRow>, StoreError> {
    Ok(a::audit_events
        .filter(a::sequence.eq(sequence))
        .get_result(conn)
        .optional()?)
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
