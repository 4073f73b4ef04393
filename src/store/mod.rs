//! Persistence: patient links, objections and audit events, on SQLite (embedded
//! default) or PostgreSQL (shared by several facade instances), through one pool.
//!
//! Every call blocks, so async callers go through [`Store::run`], which moves the
//! work to the blocking thread pool; nothing here runs on the async executor.
//!
//! Queries run for every request take their one row without `first()`: SQLite plans
//! a statement around the value bound to its `LIMIT ?`, so a cached statement with
//! one was parsed and planned again at each run (3 % of the facade's CPU under load).

pub mod audit;
pub mod links;
pub mod objections;
pub mod schema;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseConfig;

/// The tables, the same on both backends; then what each dialect writes differently.
const COMMON_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/common");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// Connections of the pool by use (for the metrics page).
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// The pool, which backend it speaks to, and how long one call may take.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
    /// The most one database call may take, waiting for a connection, a lock or a
    /// retry included (`database.connect_timeout_ms`): past it the caller is told the
    /// database is unavailable, and answers 503.
    call_timeout: Duration,
    /// SQLite only: this store's writers take turns here before they ask for the
    /// file's write lock.
    writers: Option<Arc<WriterTurns>>,
}

/// One SQLite file's writers in this process, let in one at a time, each in the
/// order it came. SQLite itself lets one writer in at a time, and its busy handler
/// waits by sleeping (up to 100 ms between tries): a writer that commits and at once
/// begins again wins against every writer asleep, so under a slow disk a waiting
/// writer could sleep through its whole call and answer 503. Here a waiting writer
/// is handed the turn when the one before it finishes. Writers of other processes
/// still meet in the busy timeout.
#[derive(Default)]
pub struct WriterTurns(parking_lot::Mutex<()>);

/// The database call running on this thread: when it must give up, and the
/// writers' turns of its store.
struct Call {
    deadline: Instant,
    writers: Option<Arc<WriterTurns>>,
}

/// Whether a queued database call was started or given up by its caller, whichever
/// came first.
#[derive(Default)]
struct CallTurn(std::sync::atomic::AtomicU8);

impl CallTurn {
    const QUEUED: u8 = 0;
    const STARTED: u8 = 1;
    const ABANDONED: u8 = 2;

    /// The call's thread may start it: its caller has not given it up.
    fn start(&self) -> bool {
        self.swap_from_queued(Self::STARTED)
    }

    /// The caller gives the call up: it had not started.
    fn abandon(&self) -> bool {
        self.swap_from_queued(Self::ABANDONED)
    }

    fn swap_from_queued(&self, to: u8) -> bool {
        use std::sync::atomic::Ordering;
        self.0
            .compare_exchange(Self::QUEUED, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

thread_local! {
    static CALL: RefCell<Option<Call>> = const { RefCell::new(None) };
}

fn call_deadline() -> Option<Instant> {
    CALL.with(|c| c.borrow().as_ref().map(|call| call.deadline))
}

/// Opens connections of the backend the URL names. Choosing by prefix (rather than
/// trying each backend in turn) keeps the real error and never turns a PostgreSQL URL
/// into an SQLite file name.
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
    target: String,
    /// How long a statement may wait for a lock (SQLite busy timeout, PostgreSQL
    /// lock and statement timeouts).
    wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("{0}")]
    Query(#[from] diesel::result::Error),
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<AnyConnection, ConnectError> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.target)?;
                let ms = self.wait.as_millis();
                // Durable commits whatever the server's default: an audit event is
                // flushed before its answer is released.
                conn.batch_execute(&format!(
                    "SET lock_timeout = {ms}; SET statement_timeout = {ms}; SET synchronous_commit = on;"
                ))?;
                Ok(AnyConnection::Postgresql(conn))
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.target)?;
                // WAL and a busy timeout let concurrent requests share the file; the
                // timeout is the call's, so a locked file answers 503 in time. It is
                // set first: turning a new file to WAL takes a lock that the pool's
                // other connections, opening at the same moment, may hold. FULL:
                // every commit is flushed (an audit event is on disk before its
                // answer leaves; NORMAL could lose the newest after a power cut).
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    self.wait.as_millis()
                ))?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1").map_err(ConnectError::from)
    }

    fn has_broken(&self, _conn: &mut AnyConnection) -> bool {
        false
    }
}

/// The backend and connection target a database URL names.
pub fn parse_url(url: &str) -> Result<(Backend, String), String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    if path.is_empty() || path.contains("://") {
        return Err(format!(
            "'{url}' is neither postgres://... nor an SQLite file (sqlite://path)"
        ));
    }
    Ok((Backend::Sqlite, path.to_string()))
}

impl Store {
    /// Connects (failing if the database cannot be reached now) and applies any
    /// pending migrations.
    pub fn open(config: &DatabaseConfig) -> Result<Store, StoreError> {
        let store = Store::connect(config)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects without migrating.
    pub fn connect(config: &DatabaseConfig) -> Result<Store, StoreError> {
        let (backend, target) = parse_url(&config.url).map_err(StoreError::Unavailable)?;
        let call_timeout = Duration::from_millis(config.connect_timeout_ms);
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(call_timeout)
            // A PostgreSQL connection may have been dropped by the server (a restart,
            // a failover) and is checked before use; an SQLite connection is a file
            // opened in this process, which nothing can close under it, so checking
            // it would only parse and run `SELECT 1` on every call.
            .test_on_check_out(backend == Backend::Postgres)
            .build(Manager {
                backend,
                target,
                wait: call_timeout,
            })
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Store {
            pool,
            backend,
            call_timeout,
            writers: (backend == Backend::Sqlite).then(Arc::default),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The most one database call may take before the caller answers 503.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// How durably a commit is written, as the database itself reports it for a
    /// pooled connection: SQLite's `synchronous` (2 = FULL), PostgreSQL's
    /// `synchronous_commit`.
    pub fn durability(&self) -> Result<String, StoreError> {
        use diesel::RunQueryDsl;
        use diesel::sql_types::Text;
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = Text)]
            value: String,
        }
        let query = match self.backend {
            Backend::Sqlite => "SELECT CAST(synchronous AS TEXT) AS value FROM pragma_synchronous",
            Backend::Postgres => {
                "SELECT setting AS value FROM pg_settings WHERE name = 'synchronous_commit'"
            }
        };
        self.with_conn(|conn| {
            let settings: Vec<Setting> = diesel::sql_query(query).load(conn)?;
            settings
                .into_iter()
                .next()
                .map(|s| s.value)
                .ok_or_else(|| StoreError::Unavailable("no durability setting".into()))
        })
    }

    /// How the pool's connections are used just now.
    pub fn pool_state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            in_use: state.connections - state.idle_connections,
            idle: state.idle_connections,
            max: self.pool.max_size(),
        }
    }

    /// Runs blocking database work on the calling thread; retries of lost races stop
    /// at the call's deadline.
    pub fn with_conn<T>(
        &self,
        work: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn_until(Instant::now() + self.call_timeout, work)
    }

    /// Runs blocking database work on the calling thread if `deadline` has not
    /// passed, waiting for a connection until then at most.
    fn with_conn_until<T>(
        &self,
        deadline: Instant,
        work: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| StoreError::Unavailable("the database call ran out of time".into()))?;
        let mut conn = self
            .pool
            .get_timeout(left)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let call = Call {
            deadline,
            writers: self.writers.clone(),
        };
        let outer = CALL.with(|c| c.replace(Some(call)));
        let result = work(&mut conn);
        CALL.with(|c| c.replace(outer));
        result
    }

    /// Runs blocking database work on the blocking thread pool. The call's time
    /// starts when it is queued: work still waiting for a thread at its deadline is
    /// not started, and the caller is told the database is unavailable. Work that did
    /// start is waited for (it stops at its lock timeout), so that what the caller
    /// answers is what happened: a Consent write is never committed behind a 503.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        let deadline = Instant::now() + self.call_timeout;
        let turn = Arc::new(CallTurn::default());
        let taken = turn.clone();
        let task = tokio::task::spawn_blocking(move || {
            if !taken.start() {
                return Err(StoreError::Unavailable(
                    "the database call waited its whole time for a thread".into(),
                ));
            }
            store.with_conn_until(deadline, work)
        });
        tokio::pin!(task);
        let joined = match tokio::time::timeout_at(deadline.into(), &mut task).await {
            Ok(joined) => joined,
            Err(_) if turn.abandon() => {
                return Err(StoreError::Unavailable(
                    "the database did not answer within the call timeout".into(),
                ));
            }
            Err(_) => task.await,
        };
        joined.map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Applies pending migrations; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|conn| {
            // Migrations (an index over a long audit trail) may take longer than a
            // request's call timeout, and wait for another instance's.
            let applied = match conn {
                AnyConnection::Sqlite(c) => {
                    c.batch_execute("PRAGMA busy_timeout = 600000")?;
                    let result = apply(c, SQLITE_MIGRATIONS);
                    c.batch_execute(&format!(
                        "PRAGMA busy_timeout = {}",
                        self.call_timeout.as_millis()
                    ))?;
                    result
                }
                AnyConnection::Postgresql(c) => {
                    // Instances starting together must not migrate at the same time.
                    c.batch_execute(
                        "SET lock_timeout = 0; SET statement_timeout = 0; SELECT pg_advisory_lock(727274)",
                    )?;
                    let result = apply(c, POSTGRES_MIGRATIONS);
                    let ms = self.call_timeout.as_millis();
                    c.batch_execute(&format!(
                        "SELECT pg_advisory_unlock(727274); SET lock_timeout = {ms}; SET statement_timeout = {ms};"
                    ))?;
                    result
                }
            };
            applied.map_err(|e| StoreError::Migration(e.to_string()))
        })
    }

    /// Is the database reachable with every migration applied?
    pub fn ready(&self) -> Result<(), StoreError> {
        self.with_conn(migrations_applied)
    }
}

/// Are all migrations applied on this connection's database?
pub fn migrations_applied(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let pending = match conn {
        AnyConnection::Sqlite(c) => pending(c, SQLITE_MIGRATIONS),
        AnyConnection::Postgresql(c) => pending(c, POSTGRES_MIGRATIONS),
    };
    match pending {
        Ok(false) => Ok(()),
        Ok(true) => Err(StoreError::Migration("migrations are pending".into())),
        Err(e) => Err(StoreError::Unavailable(e.to_string())),
    }
}

/// Applies the common migrations, then the dialect's; returns the versions applied.
fn apply<B: diesel::backend::Backend>(
    conn: &mut impl MigrationHarness<B>,
    dialect: EmbeddedMigrations,
) -> diesel::migration::Result<Vec<String>> {
    let mut applied: Vec<String> = conn
        .run_pending_migrations(COMMON_MIGRATIONS)?
        .iter()
        .map(|v| v.to_string())
        .collect();
    applied.extend(
        conn.run_pending_migrations(dialect)?
            .iter()
            .map(|v| v.to_string()),
    );
    Ok(applied)
}

fn pending<B: diesel::backend::Backend>(
    conn: &mut impl MigrationHarness<B>,
    dialect: EmbeddedMigrations,
) -> diesel::migration::Result<bool> {
    Ok(conn.has_pending_migration(COMMON_MIGRATIONS)? || conn.has_pending_migration(dialect)?)
}

/// Runs `work` in a write transaction. On SQLite the writer first waits for its
/// turn among this store's writers ([`WriterTurns`], bounded by the call's deadline),
/// then takes the write lock at its start (`BEGIN IMMEDIATE`): it waits for other
/// processes' writers in the busy timeout, where a deferred transaction that read
/// first is refused its upgrade at once whenever another writer committed
/// meanwhile, and with several writers can lose round after round.
pub fn write_transaction<T>(
    conn: &mut AnyConnection,
    work: impl FnOnce(&mut AnyConnection) -> Result<T, diesel::result::Error>,
) -> Result<T, diesel::result::Error> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <AnyConnection as Connection>::TransactionManager;
    let AnyConnection::Sqlite(inner) = conn else {
        return conn.transaction(work);
    };
    let turns = CALL.with(|c| {
        let call = c.borrow();
        let call = call.as_ref()?;
        Some((call.writers.clone()?, call.deadline))
    });
    let turn = match &turns {
        Some((turns, deadline)) => Some(
            turns
                .0
                .try_lock_until(*deadline)
                .ok_or_else(|| locked("another writer of this process held it to the deadline"))?,
        ),
        None => None,
    };
    let outcome =
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE").and_then(|()| {
            match work(conn) {
                Ok(value) => Manager::commit_transaction(conn).map(|()| value),
                Err(failed) => match Manager::rollback_transaction(conn) {
                    Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(failed),
                    Err(rollback) => Err(rollback),
                },
            }
        });
    // Handed to the writer that has waited longest, even if this one begins again.
    if let Some(turn) = turn {
        parking_lot::MutexGuard::unlock_fair(turn);
    }
    outcome
}

/// The error SQLite gives a writer that found the file locked, which [`retrying`]
/// knows as a lost race.
fn locked(why: &str) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(format!("database is locked: {why}")),
    )
}

/// Runs a write transaction again when it lost a race: another writer took the same
/// key (unique violation), PostgreSQL could not serialise it, or SQLite's file was
/// locked by a writer that started first. Gives up at the deadline of the database
/// call it runs in.
pub fn retrying<T>(
    mut attempt: impl FnMut() -> Result<T, diesel::result::Error>,
) -> Result<T, StoreError> {
    use diesel::result::{DatabaseErrorKind, Error};
    let deadline = call_deadline();
    let in_time = || deadline.is_none_or(|d| Instant::now() < d);
    for round in 0.. {
        match attempt() {
            Err(Error::DatabaseError(kind, info)) if round < 100 && in_time() => {
                let lost_race = matches!(
                    kind,
                    DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure
                ) || info.message().contains("database is locked");
                if !lost_race {
                    return Err(Error::DatabaseError(kind, info).into());
                }
                // Backing off, so that a burst of writers losing the same race
                // does not spend its hundred rounds in a few milliseconds.
                std::thread::sleep(Duration::from_millis(1 + round.min(20) * 2 + round % 7));
            }
            other => return Ok(other?),
        }
    }
    unreachable!("the loop returns")
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_comes_from_the_url_prefix() {
        assert_eq!(parse_url("postgres://u@h/db").unwrap().0, Backend::Postgres);
        assert_eq!(
            parse_url("postgresql://u@h/db").unwrap().0,
            Backend::Postgres
        );
        assert_eq!(
            parse_url("sqlite://shcr.db").unwrap(),
            (Backend::Sqlite, "shcr.db".into())
        );
        assert_eq!(
            parse_url("/var/lib/shcr.db").unwrap(),
            (Backend::Sqlite, "/var/lib/shcr.db".into())
        );
        assert!(parse_url("mysql://x").is_err());
        assert!(parse_url("").is_err());
    }

    /// A connection opening while another holds the new file's lock (the pool opens
    /// several at once) waits for it, rather than failing "database is locked".
    #[test]
    fn an_sqlite_connection_waits_for_a_lock_held_as_it_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shcr.db").to_string_lossy().into_owned();
        let mut holder = SqliteConnection::establish(&path).unwrap();
        holder.batch_execute("BEGIN EXCLUSIVE").unwrap();
        let manager = Manager {
            backend: Backend::Sqlite,
            target: path,
            wait: Duration::from_secs(5),
        };
        let opening =
            std::thread::spawn(move || r2d2::ManageConnection::connect(&manager).map(|_| ()));
        std::thread::sleep(Duration::from_millis(300));
        holder.batch_execute("COMMIT").unwrap();
        opening
            .join()
            .unwrap()
            .expect("the connection waited for the lock");
    }

    /// A call still queued for a thread when its time is up is never started (a
    /// Consent write is not committed after its caller answered 503); a call that
    /// started is waited for, and its outcome is the answer.
    #[test]
    fn a_database_call_times_out_in_the_queue_and_never_runs_late() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseConfig {
            url: dir.path().join("shcr.db").to_string_lossy().into_owned(),
            pool_size: 2,
            connect_timeout_ms: 300,
        })
        .unwrap();
        store
            .with_conn(|c| Ok(c.batch_execute("CREATE TABLE writes (writer TEXT)")?))
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let insert = |writer: &'static str, hold: Duration| {
            move |c: &mut AnyConnection| {
                std::thread::sleep(hold);
                Ok(c.batch_execute(&format!("INSERT INTO writes VALUES ('{writer}')"))?)
            }
        };
        let (slow, queued) = runtime.block_on(async {
            tokio::join!(
                store.run(insert("slow", Duration::from_millis(600))),
                async {
                    // Queued behind the slow call, which holds the only thread.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let asked = Instant::now();
                    (
                        store.run(insert("queued", Duration::ZERO)).await,
                        asked.elapsed(),
                    )
                }
            )
        });
        slow.expect("the slow call started in time: its outcome is the answer");
        let (queued, waited) = queued;
        assert!(
            matches!(queued, Err(StoreError::Unavailable(_))),
            "{queued:?}"
        );
        assert!(waited < Duration::from_millis(550), "waited {waited:?}");
        // The thread is free again: the queued call must not run now.
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
        let writers: Vec<String> = store
            .with_conn(|c| {
                use diesel::RunQueryDsl;
                #[derive(diesel::QueryableByName)]
                struct Row {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    writer: String,
                }
                let rows: Vec<Row> = diesel::sql_query("SELECT writer FROM writes").load(c)?;
                Ok(rows.into_iter().map(|r| r.writer).collect())
            })
            .unwrap();
        assert_eq!(writers, ["slow"]);
    }

    /// A writer of the store is let in between another writer's back-to-back
    /// transactions, where SQLite's busy handler, polling in its sleeps, would find
    /// the file locked at almost every try until the call timed out.
    #[test]
    fn a_waiting_sqlite_writer_gets_its_turn_between_back_to_back_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseConfig {
            url: dir.path().join("shcr.db").to_string_lossy().into_owned(),
            pool_size: 4,
            connect_timeout_ms: 1_500,
        })
        .unwrap();
        store
            .with_conn(|c| Ok(c.batch_execute("CREATE TABLE writes (writer TEXT)")?))
            .unwrap();
        let write = |store: &Store, writer: &'static str, hold: Duration| {
            store.with_conn(|c| {
                Ok(write_transaction(c, |c| {
                    std::thread::sleep(hold);
                    c.batch_execute(&format!("INSERT INTO writes VALUES ('{writer}')"))
                })?)
            })
        };
        let busy = {
            let store = store.clone();
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_millis(2_500);
                while Instant::now() < until {
                    write(&store, "busy", Duration::from_millis(50)).unwrap();
                }
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        let asked = Instant::now();
        let waiting = write(&store, "waiting", Duration::ZERO);
        let waited = asked.elapsed();
        busy.join().unwrap();
        waiting.expect("the waiting writer got its turn within its call");
        assert!(waited < Duration::from_millis(1_000), "waited {waited:?}");
    }
}
