//! Group commit: every request's event is on disk before its answer leaves, and
//! requests arriving together share the commit (and its flush to disk).
//!
//! One writer thread per facade process takes the events waiting in its queue,
//! chains them one after another and writes them in one transaction; while that
//! commit is in flight, newer events wait for the next. Each request is told when
//! its own event is committed (and its sequence number), or that the commit
//! failed, in which case every answer of that group is refused (503). Instances
//! sharing a database still append to one chain: a group that loses the race for
//! the next sequence number runs again after the other instance's events.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::store::audit::{self, NewEvent};
use crate::store::{Store, StoreError};

/// Most events written in one transaction.
const MAX_GROUP: usize = 256;

struct Pending {
    event: NewEvent,
    done: tokio::sync::oneshot::Sender<Result<i64, String>>,
}

pub struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    /// How long a request waits for its commit: its own call timeout, and the
    /// commit in flight before it.
    wait: Duration,
    /// Transactions written so far (fewer than events when commits are shared).
    groups: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the writer thread. It stops once this is dropped and its queue drained.
    pub fn start(store: Store) -> std::io::Result<GroupCommit> {
        let (queue, pending) = mpsc::channel::<Pending>();
        let wait = store.call_timeout() * 2;
        let groups = Arc::new(AtomicU64::new(0));
        let counted = groups.clone();
        std::thread::Builder::new()
            .name("audit-group-commit".into())
            .spawn(move || write_groups(&store, &pending, &counted))?;
        Ok(GroupCommit {
            queue,
            wait,
            groups,
        })
    }

    /// How many transactions have been written.
    pub fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// Queues `event` and waits until it is committed: its sequence number.
    pub async fn append(&self, event: NewEvent) -> Result<i64, StoreError> {
        let (done, committed) = tokio::sync::oneshot::channel();
        self.queue
            .send(Pending { event, done })
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?;
        match tokio::time::timeout(self.wait, committed).await {
            Ok(Ok(Ok(sequence))) => Ok(sequence),
            Ok(Ok(Err(reason))) => Err(StoreError::Unavailable(reason)),
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "the audit writer has stopped".into(),
            )),
            Err(_) => Err(StoreError::Unavailable(
                "the audit event was not committed in time".into(),
            )),
        }
    }
}

fn write_groups(store: &Store, pending: &mpsc::Receiver<Pending>, groups: &AtomicU64) {
    while let Ok(first) = pending.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match pending.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (events, waiting): (Vec<NewEvent>, Vec<_>) =
            group.into_iter().map(|p| (p.event, p.done)).unzip();
        let written = store.with_conn(|conn| audit::append_all(conn, &events, super::chain::hash));
        groups.fetch_add(1, Ordering::Relaxed);
        crate::metrics::Metrics::get().audit_group(events.len());
        match written {
            Ok(sequences) => {
                for (done, sequence) in waiting.into_iter().zip(sequences) {
                    let _ = done.send(Ok(sequence));
                }
            }
            Err(e) => {
                tracing::error!(events = events.len(), error = %e, "audit group commit failed");
                for done in waiting {
                    let _ = done.send(Err(e.to_string()));
                }
            }
        }
    }
}
