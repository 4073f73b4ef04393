//! The hash chain over audit events: each row's hash covers the previous row's hash,
//! its own sequence number and its event, so an edited, removed or reordered event
//! breaks the chain at that point.

use crate::store::audit::{AuditRow, GENESIS};

/// SHA-256 (hex) of the previous hash, the sequence number and the event.
pub fn hash(previous_hash: &str, sequence: i64, event: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(previous_hash.as_bytes());
    context.update(b"\n");
    context.update(sequence.to_string().as_bytes());
    context.update(b"\n");
    context.update(event.as_bytes());
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the chain first fails to hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit event {sequence}: {reason}")]
pub struct ChainBreak {
    pub sequence: i64,
    pub reason: String,
}

/// Walks rows in order, checking each against the one before.
#[derive(Debug)]
pub struct ChainWalk {
    expected_sequence: i64,
    previous_hash: String,
}

impl Default for ChainWalk {
    fn default() -> Self {
        ChainWalk {
            expected_sequence: 1,
            previous_hash: GENESIS.to_string(),
        }
    }
}

impl ChainWalk {
    /// Checks the next row; the first failure names the first bad event.
    pub fn check(&mut self, row: &AuditRow) -> Result<(), ChainBreak> {
        let broken = |reason: &str| ChainBreak {
            sequence: self.expected_sequence,
            reason: reason.to_string(),
        };
        if row.sequence != self.expected_sequence {
            return Err(broken(&format!(
                "missing (the next event found is {}): removed or reordered",
                row.sequence
            )));
        }
        if row.previous_hash != self.previous_hash {
            return Err(broken(
                "does not follow the event before it: an earlier event was removed or reordered",
            ));
        }
        if hash(&row.previous_hash, row.sequence, &row.event) != row.hash {
            return Err(broken("its content does not match its hash: altered"));
        }
        self.expected_sequence += 1;
        self.previous_hash = row.hash.clone();
        Ok(())
    }

    /// Events checked so far.
    pub fn count(&self) -> i64 {
        self.expected_sequence - 1
    }

    /// The hash of the last event checked (the chain's head).
    pub fn head(&self) -> &str {
        &self.previous_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(events: &[&str]) -> Vec<AuditRow> {
        let mut previous = GENESIS.to_string();
        events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let sequence = i as i64 + 1;
                let own = hash(&previous, sequence, event);
                let row = AuditRow {
                    sequence,
                    recorded_at: 0,
                    event: event.to_string(),
                    previous_hash: previous.clone(),
                    hash: own.clone(),
                };
                previous = own;
                row
            })
            .collect()
    }

    fn first_break(rows: &[AuditRow]) -> Option<i64> {
        let mut walk = ChainWalk::default();
        rows.iter()
            .find_map(|r| walk.check(r).err())
            .map(|b| b.sequence)
    }

    #[test]
    fn edits_removals_and_swaps_are_named() {
        let rows = chain(&["a", "b", "c", "d"]);
        assert_eq!(first_break(&rows), None);
        let mut edited = rows.clone();
        edited[2].event = "x".into();
        assert_eq!(first_break(&edited), Some(3));
        let mut removed = rows.clone();
        removed.remove(1);
        assert_eq!(first_break(&removed), Some(2));
        let mut swapped = rows.clone();
        swapped.swap(1, 2);
        assert_eq!(first_break(&swapped), Some(2));
        // Renumbered after a removal: the link to the event before no longer holds.
        let mut renumbered = rows.clone();
        renumbered.remove(1);
        renumbered[1].sequence = 2;
        renumbered[2].sequence = 3;
        assert_eq!(first_break(&renumbered), Some(2));
    }
}
