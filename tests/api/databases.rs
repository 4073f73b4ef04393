//! Databases for tests: SQLite files always; PostgreSQL when TEST_DATABASE_URL
//! names a server (`.ci/run` makes sure it does). Each test gets a database of its own.

use std::io::Write;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use shcr_facade::config::DatabaseConfig;

pub const POSTGRES_ENV: &str = "TEST_DATABASE_URL";

/// A database that exists for one test.
pub struct TestDatabase {
    pub name: &'static str,
    pub config: DatabaseConfig,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
            && let Ok(mut conn) = PgConnection::establish(admin_url)
        {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
        }
    }
}

fn config(url: String) -> DatabaseConfig {
    DatabaseConfig {
        url,
        pool_size: 8,
        connect_timeout_ms: 2_000,
    }
}

pub fn sqlite() -> TestDatabase {
    let (dir, url) = crate::harness::sqlite_url();
    TestDatabase {
        name: "sqlite",
        config: config(url),
        cleanup: Cleanup::Sqlite(dir),
    }
}

/// A fresh PostgreSQL database, or None (with the reason printed) where no server is
/// configured. Under CI a missing server is a failure, never a skip.
pub fn postgres(test: &str) -> Option<TestDatabase> {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run the PostgreSQL tests: set {POSTGRES_ENV}"
        );
        // Written past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test} on PostgreSQL: {POSTGRES_ENV} is not set (bash .ci/run sets it)"
        );
        return None;
    };
    let database = format!("shcr_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn =
        PgConnection::establish(&admin_url).unwrap_or_else(|e| panic!("{POSTGRES_ENV}: {e}"));
    conn.batch_execute(&format!("CREATE DATABASE {database}"))
        .expect("create test database");
    let url = match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("{POSTGRES_ENV} must end in /database"),
    };
    Some(TestDatabase {
        name: "postgres",
        config: config(url),
        cleanup: Cleanup::Postgres {
            admin_url,
            database,
        },
    })
}

/// SQLite, and PostgreSQL where available.
pub fn every_backend(test: &str) -> Vec<TestDatabase> {
    let mut all = vec![sqlite()];
    all.extend(postgres(test));
    all
}
