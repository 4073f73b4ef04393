//! Load generator: how much the facade adds on top of its slowest partner, and what
//! it costs in CPU and memory.
//!
//!     cargo build --release && cargo run --release --example loadgen -- \
//!         [--latencies 0,10,50,100] [--requests 200] [--seconds 10] [--soak-seconds 0]
//!
//! Starts three simulated partners (examples/data plus a bench patient with 17
//! observations at each) that answer after a fixed latency L, in this process, and
//! the facade as its own process (`target/release/shcr-facade serve`, two workers
//! per CPU as by default, an SQLite database in a temporary directory, every commit
//! flushed to disk), so that its CPU time and memory can be read from /proc apart
//! from the partners' and the client's. Then:
//!
//! 1. latency: for each L, `--requests` sequential 3-partner Observation searches;
//!    p50/p99 next to a direct call to one partner with the same L (the floor);
//! 2. throughput: with L = 10 ms, 16 and then 64 clients for `--seconds` each, every
//!    request a 3-partner search returning 50 resources, token-validated,
//!    policy-filtered and audited durably; the facade's CPU ms per request (its
//!    utime + stime over the 16-client run) next to the floor of the same work
//!    (parsing the three partners' answers and writing the facade's answer with
//!    serde_json, timed here in the same run), and this process's own CPU per
//!    request (the partners and the clients, which share the cores); and what
//!    parsing the three answers within the facade's bounds on their shape costs,
//!    in one pass as the facade does, and checking the bytes first as it did;
//! 3. memory: the facade's RSS after warming up, and with `--soak-seconds N` after the
//!    first minute of N seconds of 16-client load and at its end, with throughput,
//!    RSS and the database's size minute by minute;
//! 4. the audit trail: one durable event alone, and 16 at once sharing commits;
//! 5. the release stage's cost over the same 51 resources, and the objection
//!    register read;
//! 6. a legacy partner's mapping: each example council record (examples/legacy/samples)
//!    turned into FHIR R4 through its Liquid template, parsed as strict R4 and its dates
//!    checked, the work the facade does per record a legacy system sends;
//! 7. paging: with L = 10 ms, a patient with 1,000 observations over the three
//!    partners (which honour `_sort`), page 1 and page 10 at `_count=50`: partner
//!    searches per request and p50 of `--requests` requests each, and their ratios;
//! 8. record length: with L = 5 ms, the same AllergyIntolerance search for a patient
//!    whose GP record holds 10 resources and for one whose record also holds 1,200
//!    encounters: the release stage follows what each allergy points at, so the
//!    encounters should cost nothing (the ratio of the two p50s is printed).
//!
//! Client, partners and facade share this machine's cores, so the figures are
//! conservative. Every request is checked (status 200, entry count), so a fast
//! failure cannot pass for a fast answer.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shcr_facade::config::{Config, IssuerConfig, PolicyConfig};
use shcr_facade::federation::exchange::parse_bounded_json;
use shcr_facade::federation::legacy::mapping;
use shcr_facade::fhir::ResourceType;
use shcr_facade::fhir::shape::{ShapeLimits, check_json};
use shcr_facade::policy::release::{Fetched, Link, LinkSource};
use shcr_facade::policy::{Clearance, Policy};
use shcr_facade::sim::issuer::{DevIssuer, TokenRequest};
use shcr_facade::sim::{Faults, PartnerData, SimPartner};

#[path = "common/bench.rs"]
mod bench;
use bench::OBSERVATIONS_PER_PARTNER;

/// The partners and the clients allocate as the facade does (mimalloc), so that
/// their share of the shared cores is not inflated by the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BENCH_NHS: &str = "9990000107";
/// A GP record of 10 resources, and one with the same and 1,200 encounters more.
const SHORT_NHS: &str = "9990000166";
const LONG_NHS: &str = "9990000174";
const LONG_ENCOUNTERS: usize = 1_200;
/// A patient with 1,000 observations across the three partners, for paging.
const PAGED_NHS: &str = "9990000190";
const PAGED_OBSERVATIONS: usize = 1_000;
const AUDIENCE: &str = "https://shcr.loadgen/fhir";

struct Args {
    latencies: Vec<u64>,
    requests: usize,
    seconds: u64,
    soak_seconds: u64,
}

fn args() -> Args {
    let mut args = Args {
        latencies: vec![0, 10, 50, 100],
        requests: 200,
        seconds: 10,
        soak_seconds: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--latencies" => {
                args.latencies = value
                    .split(',')
                    .map(|v| v.parse().expect("latency in ms"))
                    .collect()
            }
            "--requests" => args.requests = value.parse().expect("a number"),
            "--seconds" => args.seconds = value.parse().expect("a number"),
            "--soak-seconds" => args.soak_seconds = value.parse().expect("a number"),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// A patient registered at every partner, with 17 observations at each.
fn add_bench_patient(data: &mut PartnerData, partner: &str) {
    let local = format!("bench-{partner}");
    data.add(json!({
        "resourceType": "Patient", "id": local,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": BENCH_NHS}],
        "name": [{"family": "Bench", "given": ["Load"]}], "gender": "unknown", "birthDate": "1970-01-01"
    }));
    for i in 0..OBSERVATIONS_PER_PARTNER {
        data.add(bench::observation(&local, i));
    }
}

/// The paged patient's share of 1,000 observations at the `k`th partner, interleaved
/// in time with the others' (held oldest first).
fn add_paged_patient(data: &mut PartnerData, partner: &str, k: usize) {
    let local = format!("paged-{partner}");
    data.add(json!({
        "resourceType": "Patient", "id": local,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": PAGED_NHS}],
        "name": [{"family": "Paged", "given": ["Long"]}], "birthDate": "1950-01-01"
    }));
    let start = chrono::DateTime::parse_from_rfc3339("2015-01-01T00:00:00Z").expect("instant");
    for i in (k..PAGED_OBSERVATIONS).step_by(3) {
        let at = start + chrono::Duration::hours(7 * i as i64);
        data.add(json!({
            "resourceType": "Observation", "id": format!("paged-obs-{i:04}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": format!("Patient/{local}")},
            "effectiveDateTime": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "valueQuantity": {"value": 60 + i % 40, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
        }));
    }
}

/// At the GP: a patient with 3 allergies and 7 other records, and one with the same
/// and 1,200 encounters besides.
fn add_record_length_patients(data: &mut PartnerData) {
    for (nhs, local, encounters) in [(SHORT_NHS, "short", 0), (LONG_NHS, "long", LONG_ENCOUNTERS)] {
        data.add(json!({"resourceType": "Patient", "id": local,
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
            "name": [{"family": "Length", "given": [local]}], "birthDate": "1960-01-01"}));
        let subject = json!({"reference": format!("Patient/{local}")});
        for (i, allergen) in ["227493005", "91936005", "300916003"].iter().enumerate() {
            data.add(json!({"resourceType": "AllergyIntolerance", "id": format!("{local}-allergy-{i}"),
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": allergen}]},
                "patient": subject, "recordedDate": format!("2020-0{}-01", i + 1)}));
        }
        for i in 0..7 {
            data.add(json!({"resourceType": "Observation", "id": format!("{local}-obs-{i}"), "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": subject, "effectiveDateTime": format!("2024-01-{:02}", i + 1)}));
        }
        for i in 0..encounters {
            data.add(json!({"resourceType": "Encounter", "id": format!("{local}-enc-{i:04}"), "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": subject, "period": {"start": format!("20{:02}-{:02}-01", 10 + i % 14, i % 12 + 1)}}));
        }
    }
}

/// The facade's own process, killed when dropped.
struct Facade {
    child: Child,
}

impl Drop for Facade {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Facade {
    /// CPU time the process has used (user and system), from /proc.
    fn cpu(&self) -> Duration {
        cpu_of(&self.child.id().to_string())
    }

    /// Resident memory, in MiB.
    fn rss_mib(&self) -> f64 {
        status_mib(&self.status(), "VmRSS")
    }

    /// Resident memory by kind, in MiB: the heap and stacks (anonymous), mapped
    /// files (the binary, SQLite's write-ahead log index), shared memory; and the
    /// threads (the blocking pool's grow while database calls queue).
    fn rss_kinds(&self) -> String {
        let status = self.status();
        let threads = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .map_or("?", str::trim);
        // Of the heap, what sits in transparent huge pages (the facade turns them off).
        let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.child.id()))
            .expect("/proc smaps_rollup");
        format!(
            "anon {:.1} (huge pages {:.1}), file {:.1}, shmem {:.1}; {threads} threads",
            status_mib(&status, "RssAnon"),
            status_mib(&rollup, "AnonHugePages"),
            status_mib(&status, "RssFile"),
            status_mib(&status, "RssShmem")
        )
    }

    /// The process's `/proc/{pid}/status`.
    fn status(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status")
    }
}

/// A memory field of `/proc/{pid}/status` or `smaps_rollup` (given in KiB), in MiB.
fn status_mib(status: &str, field: &str) -> f64 {
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc"));
    kib / 1024.0
}

/// CPU time a process has used (user and system), from `/proc/{pid}/stat`
/// (`self` for this one: the partners and the clients).
fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name's closing parenthesis; utime and stime are
    // the 14th and 15th fields of the line, in clock ticks.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

/// USER_HZ: 100 on Linux for every architecture this runs on (getconf CLK_TCK).
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

struct Stack {
    base: String,
    database: shcr_facade::config::DatabaseConfig,
    partners: Vec<SimPartner>,
    _issuer: DevIssuer,
    client: reqwest::Client,
    facade: Facade,
    /// Holds the facade's SQLite database (and its WAL) for the run.
    data_dir: tempfile::TempDir,
}

impl Stack {
    /// How many audit events the facade has written, and the database's size on
    /// disk per event in KiB (keys, indexes and WAL included).
    fn audit_trail(&self) -> (i64, f64) {
        use diesel::prelude::*;
        use shcr_facade::store::schema::audit_events::dsl as a;
        let store = shcr_facade::store::Store::open(&self.database).expect("database");
        let events = store
            .with_conn(|conn| Ok(a::audit_events.count().get_result::<i64>(conn)?))
            .expect("audit events counted");
        (events, self.database_mib() * 1024.0 / events.max(1) as f64)
    }

    /// The facade's database on disk, WAL included, in MiB.
    fn database_mib(&self) -> f64 {
        let bytes: u64 = ["shcr.db", "shcr.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.data_dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum();
        bytes as f64 / (1024.0 * 1024.0)
    }
}

/// The release binary beside this example (`target/release/shcr-facade`).
fn facade_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("this program's path");
    let binary = exe
        .parent()
        .and_then(|examples| examples.parent())
        .expect("target/release/examples")
        .join("shcr-facade");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --release` first",
        binary.display()
    );
    binary
}

async fn start(latency_ms: u64) -> Stack {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut config = Config::load(Some(&examples.join("shcr.toml"))).expect("example config");
    // As deployed by default: two workers per CPU.
    config.server.workers = 0;
    let database = tempfile::tempdir().expect("temp dir");
    config.database.url = format!("sqlite://{}", database.path().join("shcr.db").display());
    // The three FHIR partners, as in every earlier run, so that figures compare.
    config
        .partners
        .retain(|p| p.kind == shcr_facade::config::PartnerKind::Fhir);
    let mut partners = Vec::new();
    for (k, partner) in config.partners.iter_mut().enumerate() {
        let mut data =
            PartnerData::load(&examples.join("data").join(&partner.id)).expect("partner data");
        add_bench_patient(&mut data, &partner.id);
        add_paged_patient(&mut data, &partner.id, k);
        if partner.id == "riverside-gp" {
            add_record_length_patients(&mut data);
        }
        let sim = SimPartner::start(data, Faults::latency(latency_ms)).expect("simulator");
        partner.base_url = sim.base_url.clone();
        partners.push(sim);
    }
    // Every search carries a clinician's token, validated as in use (ES256, JWKS cached).
    let issuer = DevIssuer::start(TcpListener::bind("127.0.0.1:0").expect("bind"), AUDIENCE)
        .expect("issuer");
    // Trusted by configuration, as a real identity provider is (a served facade
    // takes no development tokens): the token is signed without the development mark.
    config.auth.audience = Some(AUDIENCE.into());
    config.auth.issuers = vec![IssuerConfig {
        issuer: issuer.issuer.clone(),
        acr_values: Vec::new(),
    }];
    let mut headers = reqwest::header::HeaderMap::new();
    let mut claims = issuer.claims(&TokenRequest::default());
    claims
        .as_object_mut()
        .expect("claims")
        .remove(shcr_facade::auth::DEV_CLAIM);
    let token = issuer.sign(&claims);
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("port")
        .port();
    config.server.port = port;
    let base = format!("http://127.0.0.1:{port}/fhir");
    config.server.public_base_url = Some(base.clone());
    let path = database.path().join("shcr.toml");
    std::fs::write(&path, toml::to_string(&config).expect("config as TOML")).expect("config file");
    let child = Command::new(facade_binary())
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the facade process");
    let facade = Facade { child };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .default_headers(headers)
        .build()
        .expect("client");
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let started = Instant::now();
    while !client
        .get(&ready)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "facade did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Stack {
        base,
        database: config.database.clone(),
        partners,
        _issuer: issuer,
        client,
        facade,
        data_dir: database,
    }
}

/// What the clients read of each answer: how many entries are matches.
#[derive(serde::Deserialize)]
struct Searchset {
    #[serde(default)]
    entry: Vec<SearchsetEntry>,
}

#[derive(serde::Deserialize)]
struct SearchsetEntry {
    search: Option<SearchMode>,
}

#[derive(serde::Deserialize)]
struct SearchMode {
    mode: String,
}

/// GETs `url`, checks status 200 and the number of match entries (the whole answer
/// is parsed, as JSON, without keeping what is not counted).
async fn fetch(client: &reqwest::Client, url: &str, entries: usize) -> Duration {
    let started = Instant::now();
    let response = client.get(url).send().await.expect("answer");
    assert_eq!(response.status(), 200, "{url}");
    let body = response.bytes().await.expect("body");
    let bundle: Searchset = serde_json::from_slice(&body).expect("a searchset");
    let elapsed = started.elapsed();
    let found = bundle
        .entry
        .iter()
        .filter(|e| e.search.as_ref().is_some_and(|s| s.mode == "match"))
        .count();
    if found != entries {
        let bundle: Value = serde_json::from_slice(&body).expect("JSON");
        let outcome = bundle["entry"]
            .as_array()
            .and_then(|e| e.last())
            .map_or(String::new(), |o| o["resource"]["issue"].to_string());
        panic!("{url}: {found} matches, expected {entries}: {outcome}");
    }
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn series(client: &reqwest::Client, url: &str, entries: usize, n: usize) -> (f64, f64) {
    for _ in 0..10 {
        fetch(client, url, entries).await; // warm connections and the identity cache
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(fetch(client, url, entries).await);
    }
    samples.sort();
    (percentile(&samples, 0.50), percentile(&samples, 0.99))
}

/// The URL of page `n` (1-based) of a search, by following its next links.
async fn page_url(client: &reqwest::Client, first: &str, n: usize) -> String {
    let mut url = first.to_string();
    for _ in 1..n {
        let body = client.get(&url).send().await.expect("answer");
        let bundle: Value =
            serde_json::from_slice(&body.bytes().await.expect("body")).expect("JSON");
        url = bundle["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .expect("a next link")
            .to_string();
    }
    url
}

/// Observation searches the partners have received so far.
fn partner_searches(stack: &Stack) -> usize {
    stack
        .partners
        .iter()
        .map(|p| {
            p.requests()
                .iter()
                .filter(|r| r.contains("/Observation?"))
                .count()
        })
        .sum()
}

/// A page's partner searches per request and its p50, in ms.
async fn page_cost(stack: &Stack, url: &str, n: usize) -> (f64, f64) {
    let before = partner_searches(stack);
    let (p50, _) = series(&stack.client, url, 50, n).await;
    let searches = (partner_searches(stack) - before) as f64 / (n + 10) as f64;
    (searches, p50)
}

/// Mean time of one objection register read (as every request makes), in ms.
async fn register_cost(database: &shcr_facade::config::DatabaseConfig, iterations: u32) -> f64 {
    let store = shcr_facade::store::Store::open(database).expect("database");
    let nhs = shcr_facade::fhir::NhsNumber::parse(BENCH_NHS).expect("NHS number");
    let started = Instant::now();
    for _ in 0..iterations {
        let objects = shcr_facade::policy::objection::objects(&store, &nhs)
            .await
            .expect("register read");
        assert!(!objects);
    }
    started.elapsed().as_secs_f64() * 1000.0 / iterations as f64
}

/// The access a bench search is audited as: a clinician's search returning 50 records.
fn bench_access() -> shcr_facade::audit::Access {
    shcr_facade::audit::Access {
        request_id: "loadgen".into(),
        method: "GET".into(),
        target: format!("/fhir/Observation?patient={BENCH_NHS}&_count=50"),
        interaction: "search-type".into(),
        status: 200,
        recorded: "2026-01-01T00:00:00.000Z".into(),
        observer: "loadgen".into(),
        requester: Some(shcr_facade::audit::Requester {
            issuer: "http://127.0.0.1/dev-issuer".into(),
            subject: "dev-clinician".into(),
            purpose: Some("TREAT".into()),
            ..Default::default()
        }),
        patients: vec![BENCH_NHS.into()],
        returned: (0..50)
            .map(|i| format!("Observation/bench.obs-{i:02}"))
            .collect(),
        partners: Vec::new(),
        withheld: 0,
        unjudged: 0,
    }
}

/// Mean time to make a bench search's AuditEvent and its search keys, in ms: as the
/// facade does (typed, written straight to text), and through a `serde_json::Value`
/// tree that is then written and read for its keys.
fn event_making_cost(iterations: u32) -> (f64, f64) {
    let access = bench_access();
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(shcr_facade::audit::audit_event_text(&access));
        std::hint::black_box(shcr_facade::audit::query::keys_for(&access));
    }
    let typed = started.elapsed().as_secs_f64() * 1000.0 / iterations as f64;
    let started = Instant::now();
    for _ in 0..iterations {
        let event = shcr_facade::audit::audit_event(&access);
        std::hint::black_box(shcr_facade::audit::query::keys_of(&event));
        std::hint::black_box(event.to_string());
    }
    let tree = started.elapsed().as_secs_f64() * 1000.0 / iterations as f64;
    (typed, tree)
}

/// Mean time per durable audit event (hash-chained, flushed, as every request
/// writes), in ms: one at a time, and `together` at once sharing commits.
async fn audit_cost(iterations: usize, together: usize) -> (f64, f64) {
    let directory = tempfile::tempdir().expect("temp dir");
    let database = shcr_facade::config::DatabaseConfig {
        url: format!("sqlite://{}", directory.path().join("audit.db").display()),
        ..Default::default()
    };
    let store = shcr_facade::store::Store::open(&database).expect("database");
    let writer = Arc::new(shcr_facade::audit::GroupCommit::start(store).expect("writer"));
    let access = Arc::new(bench_access());
    let started = Instant::now();
    for _ in 0..iterations {
        shcr_facade::audit::record(&writer, &access)
            .await
            .expect("audit write");
    }
    let alone = started.elapsed().as_secs_f64() * 1000.0 / iterations as f64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..together)
        .map(|_| {
            let (writer, access) = (writer.clone(), access.clone());
            tokio::spawn(async move {
                for _ in 0..iterations / together {
                    shcr_facade::audit::record(&writer, &access)
                        .await
                        .expect("audit write");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
    let shared =
        started.elapsed().as_secs_f64() * 1000.0 / (iterations / together * together) as f64;
    (alone, shared)
}

/// The three partners' answers to the bench search, as the facade receives them.
async fn partner_bodies(stack: &Stack) -> Vec<Vec<u8>> {
    let mut partner_bodies = Vec::new();
    for (partner, sim) in ["riverside-gp", "northgate-acute", "valley-community"]
        .iter()
        .zip(&stack.partners)
    {
        let url = format!(
            "{}/Observation?patient=bench-{partner}&_count=100",
            sim.base_url
        );
        let body = stack
            .client
            .get(url)
            .send()
            .await
            .expect("partner")
            .bytes()
            .await
            .expect("body");
        partner_bodies.push(body.to_vec());
    }
    partner_bodies
}

/// The floor of one search's work, in ms: parsing the three partners' answers and
/// writing the facade's answer with serde_json, nothing else.
async fn floor_cost(stack: &Stack, iterations: u32) -> f64 {
    let partner_bodies = partner_bodies(stack).await;
    let answer = stack
        .client
        .get(format!(
            "{}/Observation?patient={BENCH_NHS}&_count=50",
            stack.base
        ))
        .send()
        .await
        .expect("facade")
        .bytes()
        .await
        .expect("body");
    let answer: Value = serde_json::from_slice(&answer).expect("JSON");
    let started = Instant::now();
    for _ in 0..iterations {
        for body in &partner_bodies {
            std::hint::black_box(serde_json::from_slice::<Value>(body).expect("JSON"));
        }
        std::hint::black_box(serde_json::to_vec(&answer).expect("written"));
    }
    started.elapsed().as_secs_f64() * 1000.0 / iterations as f64
}

/// The facade's parse of the three partners' answers within its bounds on their shape,
/// in ms per search: in one pass, as it parses them, and as it did before, a check
/// of the raw bytes and then serde_json's parse. The two take turns, eight rounds
/// each, and each gives the median of its rounds (the machine's speed drifts).
async fn bounded_parse_cost(stack: &Stack, iterations: u32) -> (f64, f64) {
    let bodies = partner_bodies(stack).await;
    let per_search = |parse: &dyn Fn(&[u8])| {
        let started = Instant::now();
        for _ in 0..iterations {
            bodies.iter().for_each(|body| parse(body));
        }
        started.elapsed().as_secs_f64() * 1000.0 / iterations as f64
    };
    let one_pass = |body: &[u8]| {
        std::hint::black_box(parse_bounded_json(body).expect("within bounds"));
    };
    let two_passes = |body: &[u8]| {
        check_json(body, ShapeLimits::PARTNER_JSON).expect("within bounds");
        std::hint::black_box(serde_json::from_slice::<Value>(body).expect("JSON"));
    };
    let (mut ones, mut twos) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        ones.push(per_search(&one_pass));
        twos.push(per_search(&two_passes));
    }
    let median = |mut rounds: Vec<f64>| {
        rounds.sort_by(f64::total_cmp);
        rounds[rounds.len() / 2]
    };
    (median(ones), median(twos))
}

/// `clients` clients searching for `seconds`: completed searches, req/s, p50, p99.
async fn load(stack: &Stack, url: &str, clients: usize, seconds: u64) -> (usize, f64, f64, f64) {
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, done) = (stack.client.clone(), url.to_string(), done.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < deadline {
                    samples.push(fetch(&client, &url, 50).await);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for worker in workers {
        samples.extend(worker.await.expect("worker"));
    }
    samples.sort();
    let elapsed = started.elapsed().as_secs_f64();
    let completed = done.load(Ordering::Relaxed);
    (
        completed,
        completed as f64 / elapsed,
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
    )
}

/// Links are not followed here: the release stage's own cost, over records that
/// point at nothing but their patient.
struct NoLinks;

impl LinkSource for NoLinks {
    fn follows(&self, _: &Link) -> bool {
        false
    }

    async fn fetch(&self, _: Vec<Link>) -> Fetched {
        Fetched::default()
    }

    fn organisation(&self, partner_id: &str) -> String {
        partner_id.to_string()
    }
}

/// Mean time of the release stage over one search's resources.
async fn policy_cost(iterations: u32) -> (usize, f64) {
    let mut data = PartnerData::default();
    for partner in ["riverside-gp", "northgate-acute", "valley-community"] {
        add_bench_patient(&mut data, partner);
    }
    // In facade form, as the release stage gets them: each partner's ids its own.
    let resources: Vec<Value> = data
        .of_type(ResourceType::named("Observation"))
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            let id = format!(
                "p{}.{}",
                i / OBSERVATIONS_PER_PARTNER,
                r["id"].as_str().unwrap_or_default()
            );
            r["id"] = json!(id);
            r
        })
        .collect();
    let policy = Policy::new(&PolicyConfig::default()).expect("the bundled policy");
    let started = Instant::now();
    for _ in 0..iterations {
        let kept = policy
            .release(
                std::hint::black_box(resources.clone()),
                Vec::new(),
                &NoLinks,
                Clearance::Normal,
            )
            .await;
        assert_eq!(kept.records().len(), resources.len());
    }
    let filtering = started.elapsed();
    // The copy each iteration hands the filter is not the filter's cost: take it off.
    let copying = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(resources.clone());
    }
    let per_search =
        (filtering.as_secs_f64() - copying.elapsed().as_secs_f64()).max(0.0) / iterations as f64;
    (resources.len(), per_search * 1000.0)
}

/// Milliseconds to turn each example council record into R4, by template.
fn legacy_mapping_cost(iterations: u32) -> Vec<(String, f64)> {
    let legacy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/legacy");
    let mapping = mapping::load(
        &legacy.join("eastshire-asc.toml"),
        &[
            ResourceType::named("Encounter"),
            ResourceType::named("CarePlan"),
            ResourceType::named("ServiceRequest"),
        ],
    )
    .expect("the example mapping loads");
    // Each template's sample record, as the mapping file names it.
    let text = std::fs::read_to_string(legacy.join("eastshire-asc.toml")).expect("mapping file");
    let file: toml::Value = toml::from_str(&text).expect("mapping TOML");
    let samples: std::collections::HashMap<String, String> = std::iter::once(&file["patient"])
        .chain(file["resources"].as_array().into_iter().flatten())
        .filter_map(|t| {
            Some((
                t.get("template")?.as_str()?.to_string(),
                t.get("sample")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let patient = json!({"id": "EC10450", "nhs_number": "9990000093"});
    let partner = json!({"id": "eastshire-asc", "name": "Eastshire County Council Adult Social Care", "ods_code": "LA909"});
    std::iter::once(&mapping.patient.template)
        .chain(mapping.resources.iter().map(|r| &r.template))
        .map(|template| {
            let name = template.file.file_stem().expect("a file").to_string_lossy();
            let sample = legacy.join(
                &samples[template
                    .file
                    .file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .as_ref()],
            );
            let record: Value = serde_json::from_str(
                &std::fs::read_to_string(&sample).expect("the template's sample"),
            )
            .expect("sample JSON");
            let started = Instant::now();
            for _ in 0..iterations {
                template
                    .render(std::hint::black_box(&record), Some(&patient), &partner)
                    .expect("the sample maps");
            }
            let per_record = started.elapsed().as_secs_f64() * 1000.0 / iterations as f64;
            (name.to_string(), per_record)
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let observations = 3 * OBSERVATIONS_PER_PARTNER;
    println!(
        "3-partner Observation search ({observations} matches, _count=50), {} sequential requests per L",
        args.requests
    );
    println!(
        "{:>6} {:>14} {:>14} {:>14} {:>14} {:>12}",
        "L ms", "direct p50", "facade p50", "facade p99", "p50 - L", "p50 / direct"
    );
    for latency in &args.latencies {
        let stack = start(*latency).await;
        let direct = format!(
            "{}/Observation?patient=bench-riverside-gp&_count=100",
            stack.partners[0].base_url
        );
        let facade = format!("{}/Observation?patient={BENCH_NHS}&_count=50", stack.base);
        let (direct_p50, _) = series(
            &stack.client,
            &direct,
            OBSERVATIONS_PER_PARTNER,
            args.requests,
        )
        .await;
        let (p50, p99) = series(&stack.client, &facade, 50, args.requests).await;
        println!(
            "{latency:>6} {direct_p50:>14.2} {p50:>14.2} {p99:>14.2} {:>14.2} {:>12.2}",
            p50 - *latency as f64,
            p50 / direct_p50
        );
    }

    let stack = start(10).await;
    let url = format!("{}/Observation?patient={BENCH_NHS}&_count=50", stack.base);
    for _ in 0..200 {
        fetch(&stack.client, &url, 50).await;
    }
    let rss_warm = stack.facade.rss_mib();
    let (cpu_before, own_before) = (stack.facade.cpu(), cpu_of("self"));
    let (completed, rate, p50, p99) = load(&stack, &url, 16, args.seconds).await;
    let cpu_per_request =
        (stack.facade.cpu() - cpu_before).as_secs_f64() * 1000.0 / completed as f64;
    // The partners' and the clients' share of the same cores.
    let own_per_request = (cpu_of("self") - own_before).as_secs_f64() * 1000.0 / completed as f64;
    println!(
        "\nthroughput, L = 10 ms, 16 clients, {}s: {completed} searches of 50 resources, {rate:.0} req/s, p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.seconds
    );
    let (completed, rate, p50, p99) = load(&stack, &url, 64, args.seconds).await;
    println!(
        "throughput, L = 10 ms, 64 clients, {}s: {completed} searches of 50 resources, {rate:.0} req/s, p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.seconds
    );
    let floor = floor_cost(&stack, 2_000).await;
    println!(
        "facade CPU per search (its own process, utime + stime, 16 clients): {cpu_per_request:.3} ms; floor (serde_json parse of the 3 partners' answers + writing the answer): {floor:.3} ms; ratio {:.1}",
        cpu_per_request / floor
    );
    println!(
        "this process (3 partners and the clients) CPU per search: {own_per_request:.3} ms; with the facade's, {:.3} ms of the machine's {} cores per search",
        own_per_request + cpu_per_request,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (one_pass, two_passes) = bounded_parse_cost(&stack, 250).await;
    println!(
        "the 3 partners' answers parsed within the facade's bounds on their shape: {one_pass:.3} ms in one pass; {two_passes:.3} ms checking the bytes, then parsing"
    );
    println!("facade RSS after warming up: {rss_warm:.1} MiB");
    let (events, per_event) = stack.audit_trail();
    println!(
        "audit trail so far: {events} events, {:.0} MiB on disk, {per_event:.1} KiB per event",
        stack.database_mib()
    );
    if args.soak_seconds > 0 {
        let first = args.soak_seconds.min(60);
        load(&stack, &url, 16, first).await;
        let (rss_minute, kinds_minute) = (stack.facade.rss_mib(), stack.facade.rss_kinds());
        // Minute by minute, with the database's size: where throughput goes as the
        // audit trail grows.
        let (mut completed, mut remaining) = (0, args.soak_seconds - first);
        let started = Instant::now();
        while remaining > 0 {
            let span = remaining.min(60);
            let (done, rate, p50, _) = load(&stack, &url, 16, span).await;
            completed += done;
            remaining -= span;
            println!(
                "  soak at {:>4}s: {rate:.0} req/s, p50 {p50:.1} ms, RSS {:.1} MiB ({}), database {:.0} MiB",
                first + started.elapsed().as_secs(),
                stack.facade.rss_mib(),
                stack.facade.rss_kinds(),
                stack.database_mib()
            );
        }
        let rate = completed as f64 / started.elapsed().as_secs_f64();
        let (rss_end, kinds_end) = (stack.facade.rss_mib(), stack.facade.rss_kinds());
        println!(
            "soak, 16 clients, {}s: RSS {rss_minute:.1} MiB ({kinds_minute}) after the first {first}s, {rss_end:.1} MiB ({kinds_end}) at the end ({:+.1} %); the rest of the soak {completed} searches, {rate:.0} req/s",
            args.soak_seconds,
            100.0 * (rss_end - rss_minute) / rss_minute
        );
        let (events, per_event) = stack.audit_trail();
        println!(
            "audit trail after the soak: {events} events, {:.0} MiB on disk, {per_event:.1} KiB per event",
            stack.database_mib()
        );
    }

    let register = register_cost(&stack.database, 2_000).await;
    let (resources, filter) = policy_cost(2_000).await;
    let (alone, shared) = audit_cost(2_000, 16).await;
    let (typed, tree) = event_making_cost(20_000);
    println!(
        "\nobjection register read: {register:.3} ms per request (SQLite)\npolicy filter: {filter:.3} ms per search of {resources} resources (classifier, labels, links)\naudit event, durable (SQLite synchronous = FULL, hash-chained, 50 returned ids): {alone:.3} ms one at a time; {shared:.3} ms each with 16 at once sharing commits\naudit event made, with its search keys (50 returned ids): {typed:.4} ms; through a serde_json::Value tree: {tree:.4} ms"
    );

    println!("\nlegacy mapping, per council record (Liquid, strict R4 parse, date check):");
    for (template, ms) in legacy_mapping_cost(2_000) {
        println!("  {template:<14} {ms:.3} ms");
    }
    drop(stack);

    let stack = start(10).await;
    let first = format!("{}/Observation?patient={PAGED_NHS}&_count=50", stack.base);
    let tenth = page_url(&stack.client, &first, 10).await;
    let (first_searches, first_p50) = page_cost(&stack, &first, args.requests).await;
    let (tenth_searches, tenth_p50) = page_cost(&stack, &tenth, args.requests).await;
    println!(
        "\npaging, L = 10 ms, {PAGED_OBSERVATIONS} observations over 3 partners that honour _sort, _count=50, {} requests each:\n  page 1: {first_searches:.1} partner searches, p50 {first_p50:.2} ms; page 10: {tenth_searches:.1} partner searches, p50 {tenth_p50:.2} ms; page 10 / page 1: searches {:.2}, time {:.2}",
        args.requests,
        tenth_searches / first_searches,
        tenth_p50 / first_p50
    );
    drop(stack);

    let stack = start(5).await;
    let search = |nhs: &str| format!("{}/AllergyIntolerance?patient={nhs}", stack.base);
    let (short, _) = series(&stack.client, &search(SHORT_NHS), 3, args.requests).await;
    let (long, _) = series(&stack.client, &search(LONG_NHS), 3, args.requests).await;
    println!(
        "\nrecord length, L = 5 ms, AllergyIntolerance search, {} sequential requests each:\n  10-resource record p50 {short:.2} ms; with {LONG_ENCOUNTERS} encounters more p50 {long:.2} ms; ratio {:.2}",
        args.requests,
        long / short
    );
}
