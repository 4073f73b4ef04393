//! The `shcr-facade` command: configuration errors, environment overrides, `check`,
//! and a demo whose printed requests work.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

const BIN: &str = env!("CARGO_BIN_EXE_shcr-facade");

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("shcr-test-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// The example configuration, its mapping file named by absolute path so that the
/// text works from any directory.
fn example_config() -> String {
    let text = std::fs::read_to_string(examples().join("shcr.toml")).unwrap();
    let mapping = "mapping = \"legacy/";
    assert!(text.contains(mapping), "the example's mapping has moved");
    text.replace(
        mapping,
        &format!("mapping = \"{}/legacy/", examples().display()),
    )
}

/// The example configuration with another database.
pub fn with_database(url: &str, connect_timeout_ms: u64) -> String {
    let config = example_config()
        .replace(
            "url = \"sqlite://shcr-facade.db\"",
            &format!("url = \"{url}\""),
        )
        .replace(
            "connect_timeout_ms = 2000",
            &format!("connect_timeout_ms = {connect_timeout_ms}"),
        );
    assert!(
        config.contains(url),
        "the example's database settings have moved"
    );
    config
}

/// The example configuration text pointed at the harness's running partners.
pub fn with_partners_of(h: &Harness, mut config: String) -> String {
    for (partner, port) in [(GP, "9001"), (ACUTE, "9002"), (COMMUNITY, "9003")] {
        config = config.replace(
            &format!("http://127.0.0.1:{port}/fhir"),
            &h.sim(partner).base_url,
        );
    }
    config
        .replace("http://127.0.0.1:9004/api/v1", &h.council().base_url)
        .replace(
            "http://127.0.0.1:9005/B82005/STU3/1/gpconnect/structured",
            &h.practice().base_url,
        )
}

#[test]
fn invalid_configuration_fails_at_start_naming_the_field() {
    let bad = write_config(
        "bad",
        &example_config().replace("ods_code = \"RX1\"", "ods_code = \"rx-1\""),
    );
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&bad)
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("partners[1].ods_code"), "{stderr}");

    let missing = Command::new(BIN)
        .args(["serve", "--config", "/no/such/file.toml"])
        .env_clear()
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn environment_variables_override_the_file() {
    let good = write_config("env", &example_config());
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&good)
        .env_clear()
        .env("SHCR_SEARCH__MAX_COUNT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("search.max_count"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&good)
        .env_clear()
        .env("SHCR_DEMOGRAPHICS_AUTHORITY", "nobody")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("demographics_authority"));
}

#[tokio::test]
async fn check_counts_code_lists_and_a_bad_one_stops_the_start() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (refset, relationships) = crate::release::write_code_lists(dir.path());
    let lists = format!(
        "\n[policy]\nsnomed_relationships = \"{}\"\n[[policy.code_lists]]\ncategory = \"sexual-health\"\nfile = \"{}\"\n",
        relationships.display(),
        refset.display()
    );
    // TOML tables must come before the partners' array of tables.
    let config = crate::cli::with_partners_of(&h, example_config()).replacen(
        "[[partners]]",
        &format!("{lists}\n[[partners]]"),
        1,
    );
    let path = write_config("code-lists", &config);
    let out = tokio::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .env_clear()
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok    codes for sexual-health: "),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("codes for sexual-health"))
        .unwrap();
    assert!(
        line.contains(&format!("1 from {}", refset.display())),
        "{line}"
    );
    assert!(
        line.contains("from bundled fhir-profiles/valueset-sensitive-sexual-health.json"),
        "{line}"
    );
    assert!(line.contains("and 2 SNOMED CT descendants"), "{line}");
    // A bad row stops the start, naming the file and line.
    std::fs::write(
        &refset,
        "id\teffectiveTime\tactive\tmoduleId\trefsetId\treferencedComponentId\n\
         a\t20240401\t1\t999000011000000103\t999004381000000103\t1234567001\n\
         b\t20240401\t1\t999000011000000103\t999004381000000103\t1.69E+16\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3: referencedComponentId '1.69E+16'",
            refset.display()
        )),
        "{stderr}"
    );
    h.stop().await;
}

#[tokio::test]
async fn check_reports_each_partner() {
    let mut h = Harness::start().await;
    h.stop_partner(COMMUNITY).await;
    let mut config = example_config();
    for (id, port) in [(GP, "9001"), (ACUTE, "9002"), (COMMUNITY, "9003")] {
        let url = if id == COMMUNITY {
            "http://127.0.0.1:1/fhir".to_string()
        } else {
            h.sim(id).base_url.clone()
        };
        config = config.replace(&format!("http://127.0.0.1:{port}/fhir"), &url);
    }
    // One issuer that answers, one that does not; a partner secret that is missing.
    config.push_str(&format!(
        "\n[auth]\n[[auth.issuers]]\nissuer = \"{}\"\n[[auth.issuers]]\nissuer = \"http://127.0.0.1:1/idp\"\n",
        h.issuer.issuer
    ));
    let config = config.replacen(
        "timeout_ms = 2000\n",
        "timeout_ms = 2000\ncredentials = { kind = \"bearer\", token_env = \"SHCR_CHECK_UNSET\" }\n",
        1,
    );
    let path = write_config("check", &config);
    let out = tokio::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .env_clear()
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "one partner is down");
    assert!(
        stdout.contains("ok    Riverside Medical Practice (A81001)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  Valley Community and Mental Health NHS Trust (RY2): unreachable"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ok    token issuer {}", h.issuer.issuer)),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  token issuer http://127.0.0.1:1/idp"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  partners 'riverside-gp' credentials: environment variable SHCR_CHECK_UNSET is not set"),
        "{stdout}"
    );
    h.stop().await;
}

/// A running `shcr-facade demo`, and the `(comment, curl line)` pairs it printed.
pub struct Demo {
    child: std::process::Child,
    requests: Vec<(String, String)>,
    /// The `export NAME='token'` lines it printed.
    exports: Vec<String>,
    /// The development issuer it printed.
    pub issuer: String,
    /// The FHIR base it printed.
    pub base: String,
}

impl Demo {
    /// Starts the demo on an ephemeral port with its own SQLite file, and reads what it
    /// prints up to its last line.
    pub fn start(extra: &[&str]) -> Demo {
        // Port 0: the demo binds an ephemeral port itself and prints its base, so no
        // other listener can take the port between choosing and binding it.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "shcr-demo-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let log = std::env::temp_dir().join(format!("{name}.log"));
        // A database left by an earlier run of the same name would carry its
        // objections into this one: every demo starts empty.
        let database = std::env::temp_dir().join(format!("{name}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
        }
        let mut child = Command::new(BIN)
            .args(["demo", "--port", "0", "--partner-latency-ms", "1"])
            .args(extra)
            .current_dir(examples().parent().unwrap())
            .env_clear()
            .env(
                "SHCR_DATABASE__URL",
                format!("sqlite://{}", database.display()),
            )
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let started = Instant::now();
        let mut requests = Vec::new();
        let mut exports = Vec::new();
        let mut issuer = String::new();
        let mut base = String::new();
        let mut comment = String::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            if line.starts_with("export ") {
                exports.push(line.clone());
            }
            if let Some(url) = line.strip_prefix("issuer   development tokens at ") {
                issuer = url.to_string();
            }
            if let Some(url) = line.strip_prefix("shcr-facade demo: FHIR base ") {
                base = url.to_string();
            }
            if let Some(c) = line.strip_prefix("# ") {
                comment = c.to_string();
            }
            if line.starts_with("curl ") {
                requests.push((comment.clone(), line.clone()));
            }
            if line.starts_with("Ctrl-C") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "demo did not finish printing"
            );
        }
        assert!(
            !requests.is_empty(),
            "demo printed no requests; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Demo {
            child,
            requests,
            exports,
            issuer,
            base,
        }
    }

    /// The token the demo put in `variable`.
    pub fn token(&self, variable: &str) -> String {
        let prefix = format!("export {variable}='");
        self.exports
            .iter()
            .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix('\''))
            .unwrap_or_else(|| panic!("{variable} printed"))
            .to_string()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn demo_prints_requests_that_work() {
    let demo = Demo::start(&["--issuer-port", "0"]);
    assert!(demo.requests.len() >= 10, "{:?}", demo.requests);
    assert_eq!(demo.exports.len(), 3, "three tokens printed");
    let exports = demo.exports.join("\n");
    for (what, command) in &demo.requests {
        // Run each line as printed, after the token lines, as a person pasting them would.
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{exports}\n{command} -o /dev/null -w '%{{http_code}}'"
            ))
            .output()
            .await
            .unwrap();
        let status = String::from_utf8_lossy(&out.stdout).to_string();
        let expected = ["400", "401", "403", "404"]
            .into_iter()
            .find(|code| what.contains(&format!("{code})")))
            .unwrap_or("200");
        assert_eq!(status, expected, "{what}: {command}");
    }

    // `shcr-facade token` mints more from the running demo's issuer.
    let minted = Command::new(BIN)
        .args(["token", "--issuer", &demo.issuer, "--profile", "smart-app"])
        .args(["--patient", "9990000026"])
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    let app = String::from_utf8(minted.stdout).unwrap().trim().to_string();
    let (_, allergies) = demo
        .requests
        .iter()
        .find(|(what, _)| what.starts_with("allergies"))
        .expect("printed");
    let base = allergies
        .split('\'')
        .nth(1)
        .unwrap()
        .split("/AllergyIntolerance")
        .next()
        .unwrap();
    let brian = client_as(&app)
        .get(format!("{base}/AllergyIntolerance?patient=9990000026"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        brian.status(),
        200,
        "the minted token is in Brian's context"
    );
    let alice = client_as(&app)
        .get(format!("{base}/AllergyIntolerance?patient=9990000018"))
        .send()
        .await
        .unwrap();
    assert_eq!(alice.status(), 403);
    let refused = Command::new(BIN)
        .args(["token", "--issuer", "http://127.0.0.1:9/dev-issuer"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("demo"));
}

#[tokio::test]
async fn demo_partners_misbehave_as_the_faults_file_says() {
    let faults = write_config("faults", "[valley-community]\nstatus = 503\n");
    let demo = Demo::start(&["--faults", faults.to_str().unwrap(), "--issuer-port", "0"]);
    let (_, observations) = demo
        .requests
        .iter()
        .find(|(what, _)| what.starts_with("her observations"))
        .expect("printed");
    let url = observations.split('\'').nth(1).unwrap();
    let bundle: serde_json::Value = serde_json::from_str(
        &client_as(&demo.token("CLINICIAN"))
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        partner_status(&bundle, "RY2").as_deref(),
        Some("error-response")
    );
    assert_eq!(bundle["total"], 21, "GP 13 + hospital 8");

    let unknown = write_config("faults-unknown", "[nobody]\nhang = true\n");
    let out = Command::new(BIN)
        .args(["demo", "--port", "1", "--faults"])
        .arg(&unknown)
        .current_dir(examples().parent().unwrap())
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'nobody' is not a partner id"));
}

#[test]
fn migrate_applies_once_and_shcr_config_names_the_file() {
    let (_dir, url) = sqlite_url();
    let config = write_config("migrate", &with_database(&url, 2000));
    let first = Command::new(BIN)
        .arg("migrate")
        .env_clear()
        .env("SHCR_CONFIG", &config)
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("applied migrations: "));
    let second = Command::new(BIN)
        .args(["migrate", "--config"])
        .arg(&config)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "database is up to date"
    );
    let unreachable = write_config(
        "migrate-pg",
        &with_database("postgres://nobody@127.0.0.1:1/x", 300),
    );
    let failed = Command::new(BIN)
        .args(["migrate", "--config"])
        .arg(&unreachable)
        .env_clear()
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("database unavailable"));
}

#[test]
fn demo_help_names_what_the_demo_starts() {
    let help = Command::new(BIN).args(["demo", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    // What starts: one partner of each kind in the demo's configuration.
    let demo_config = std::fs::read_to_string(examples().join("shcr.toml")).unwrap();
    let partners = demo_config.matches("[[partners]]").count();
    assert_eq!(
        partners, 5,
        "the demo's partners changed: say so in demo --help"
    );
    for named in [
        "a GP practice,",
        "the hospital trust",
        "the community and mental-health trust",
        "the council's legacy system",
        "a GP\n          practice over GP Connect",
        "token issuer",
        "SMART launcher",
        "SQLite",
    ] {
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let wanted = named.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(&wanted),
            "demo --help does not say '{wanted}':\n{help}"
        );
    }
    assert!(!help.contains("three"), "{help}");
}

/// Nothing but a Rust toolchain builds and runs the demo: PostgreSQL's client
/// library is built in, not linked from the system (libpq5), as `ldd` shows.
#[test]
fn the_binary_needs_no_system_postgresql_library() {
    let ldd = Command::new("ldd").arg(BIN).output().unwrap();
    assert!(
        ldd.status.success(),
        "ldd: {}",
        String::from_utf8_lossy(&ldd.stderr)
    );
    let libraries = String::from_utf8(ldd.stdout).unwrap();
    assert!(libraries.contains("libc.so"), "{libraries}");
    for system_only in ["libpq", "libssl", "libcrypto", "libsqlite3", "not found"] {
        assert!(
            !libraries.contains(system_only),
            "the binary links {system_only}:\n{libraries}"
        );
    }
}
