//! The store, against SQLite and a real PostgreSQL server alike.

use std::collections::HashSet;
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use shcr_facade::store::{Store, audit, links, now_ms, objections};

use crate::databases::every_backend;

fn open(db: &crate::databases::TestDatabase) -> Store {
    Store::open(&db.config).unwrap_or_else(|e| panic!("{}: {e}", db.name))
}

#[test]
fn migrations_apply_once_and_the_store_is_ready() {
    for db in every_backend("migrations_apply_once_and_the_store_is_ready") {
        let store = Store::connect(&db.config).unwrap();
        assert!(
            store.ready().is_err(),
            "{}: not ready before migrating",
            db.name
        );
        assert_eq!(
            store.migrate().unwrap().len(),
            4,
            "{}: tables and audit keys, then the dialect's triggers for each",
            db.name
        );
        assert!(
            store.migrate().unwrap().is_empty(),
            "{}: a second run applies nothing",
            db.name
        );
        store.ready().unwrap();
    }
}

#[test]
fn patient_links_are_replaced_expire_and_resolve_both_ways() {
    for db in every_backend("patient_links_are_replaced_expire_and_resolve_both_ways") {
        let store = open(&db);
        store
            .with_conn(|c| {
                let now = now_ms();
                links::replace(c, "9990000018", "gp", &["P1".into(), "P1b".into()], now)?;
                links::replace(c, "9990000018", "acute", &[], now)?; // not known there
                links::replace(c, "9990000018", "community", &["C1".into()], now - 60_000)?;
                let fresh = links::fresh_links(c, "9990000018", now - 1_000)?;
                assert_eq!(fresh.len(), 2, "{}: the community link is too old", db.name);
                assert_eq!(fresh[0].partner_id, "acute");
                assert!(fresh[0].local_ids.is_empty());
                assert_eq!(fresh[1].local_ids, ["P1", "P1b"]);
                assert_eq!(
                    links::nhs_number_for(c, "gp", "P1b", now - 1_000)?.as_deref(),
                    Some("9990000018")
                );
                assert_eq!(
                    links::nhs_number_for(c, "community", "C1", now - 1_000)?,
                    None
                );
                links::replace(c, "9990000018", "gp", &["P2".into()], now)?;
                assert_eq!(
                    links::fresh_links(c, "9990000018", now - 1_000)?[1].local_ids,
                    ["P2"]
                );
                assert_eq!(links::nhs_number_for(c, "gp", "P1", now - 1_000)?, None);
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn objections_keep_every_version_and_refuse_changes() {
    for db in every_backend("objections_keep_every_version_and_refuse_changes") {
        let store = Arc::new(open(&db));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    store
                        .with_conn(|c| {
                            let status = if i % 2 == 0 { "proposed" } else { "active" };
                            objections::record(
                                c,
                                "9990000085",
                                status,
                                "privacy-officer",
                                "{\"resourceType\":\"Consent\"}",
                            )
                        })
                        .unwrap()
                })
            })
            .collect();
        let mut versions: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        versions.sort();
        assert_eq!(
            versions,
            [1, 2, 3, 4, 5, 6],
            "{}: concurrent writers each get their own version",
            db.name
        );
        store
            .with_conn(|c| {
                let history = objections::history(c, "9990000085")?;
                assert_eq!(
                    history.iter().map(|v| v.version).collect::<Vec<_>>(),
                    [1, 2, 3, 4, 5, 6]
                );
                assert_eq!(objections::current(c, "9990000085")?.unwrap().version, 6);
                assert!(objections::current(c, "9990000018")?.is_none());
                for change in [
                    "UPDATE objections SET status = 'inactive'",
                    "DELETE FROM objections",
                ] {
                    assert!(
                        c.batch_execute(change).is_err(),
                        "{}: {change} must be refused",
                        db.name
                    );
                }
                assert_eq!(objections::history(c, "9990000085")?.len(), 6);
                Ok(())
            })
            .unwrap();
    }
}

/// A stand-in hash for the chain; the audit issue chooses the real one.
fn chain(previous: &str, sequence: i64, event: &str) -> String {
    format!("{:016x}", fxhash(&format!("{previous}|{sequence}|{event}")))
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn audit_events_are_numbered_without_gaps_chained_and_append_only() {
    for db in every_backend("audit_events_are_numbered_without_gaps_chained_and_append_only") {
        let store = Arc::new(open(&db));
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        store
                            .with_conn(|c| {
                                let keys = vec![("outcome".to_string(), "0".to_string())];
                                let event = format!("{{\"writer\":{w},\"n\":{i}}}");
                                audit::append(c, &event, shcr_facade::store::now_ms(), &keys, chain)
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        store
            .with_conn(|c| {
                let rows = audit::read(c, 1, 1_000)?;
                assert_eq!(rows.len(), 200, "{}", db.name);
                let mut previous = audit::GENESIS.to_string();
                for (i, row) in rows.iter().enumerate() {
                    assert_eq!(row.sequence, i as i64 + 1, "{}: no gaps", db.name);
                    assert_eq!(row.previous_hash, previous, "{}: chained", db.name);
                    assert_eq!(
                        row.hash,
                        chain(&row.previous_hash, row.sequence, &row.event)
                    );
                    previous = row.hash.clone();
                }
                assert_eq!(
                    rows.iter().map(|r| &r.event).collect::<HashSet<_>>().len(),
                    200
                );
                for change in [
                    "UPDATE audit_events SET event = '{}'",
                    "DELETE FROM audit_events WHERE sequence = 1",
                ] {
                    assert!(
                        c.batch_execute(change).is_err(),
                        "{}: {change} must be refused",
                        db.name
                    );
                }
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn an_unreachable_database_fails_fast_with_a_clear_error() {
    let config = shcr_facade::config::DatabaseConfig {
        url: "postgres://nobody@127.0.0.1:1/none".into(),
        pool_size: 2,
        connect_timeout_ms: 300,
    };
    let started = std::time::Instant::now();
    let error = Store::open(&config)
        .err()
        .expect("no server on port 1")
        .to_string();
    assert!(error.contains("unavailable"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let bad = shcr_facade::config::DatabaseConfig {
        url: "/nonexistent-dir/x/shcr.db".into(),
        ..config
    };
    assert!(Store::open(&bad).is_err());
}

/// A process kill cannot show an fsync that was skipped: the durability of every
/// commit is read back from the database itself, on the pool's connections.
#[test]
fn commits_are_flushed_to_disk_before_they_are_acknowledged() {
    for db in every_backend("commits_are_flushed_to_disk_before_they_are_acknowledged") {
        let store = open(&db);
        let expected = match db.name {
            "sqlite" => "2", // PRAGMA synchronous = FULL
            _ => "on",       // synchronous_commit
        };
        for _ in 0..3 {
            assert_eq!(store.durability().unwrap(), expected, "{}", db.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_arriving_together_share_commits_and_keep_one_unbroken_chain() {
    for db in every_backend("events_arriving_together_share_commits") {
        let store = open(&db);
        // A second writer on the same database, as another instance would be.
        let writers = [
            Arc::new(shcr_facade::audit::GroupCommit::start(store.clone()).unwrap()),
            Arc::new(shcr_facade::audit::GroupCommit::start(store.clone()).unwrap()),
        ];
        let appends: Vec<_> = (0..400)
            .map(|i| {
                let writer = writers[i % 2].clone();
                tokio::spawn(async move {
                    writer
                        .append(audit::NewEvent {
                            event: format!("{{\"n\":{i}}}"),
                            recorded_at: now_ms(),
                            keys: vec![("outcome".into(), "0".into())],
                        })
                        .await
                })
            })
            .collect();
        let mut sequences = Vec::new();
        for append in appends {
            sequences.push(append.await.unwrap().unwrap());
        }
        sequences.sort();
        assert_eq!(
            sequences,
            (1..=400).collect::<Vec<i64>>(),
            "{}: each its own number",
            db.name
        );
        let groups: u64 = writers.iter().map(|w| w.groups()).sum();
        assert!(
            groups < 400,
            "{}: {groups} transactions for 400 events",
            db.name
        );
        let verified = shcr_facade::audit::verify(&store, None).unwrap().unwrap();
        assert_eq!(verified.0, 400, "{}: one unbroken chain", db.name);
    }
}
