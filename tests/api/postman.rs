//! The Postman collection in examples/postman, run by newman (from npm) against two
//! real `shcr-facade demo` processes: one as it starts, one whose community trust
//! hangs (examples/demo-faults.toml) for the partner-outage folder.

use std::path::PathBuf;

use serde_json::Value;

use crate::cli::Demo;
use crate::harness::examples;

/// Fewer assertions than this means the collection lost folders, not that it passed.
const LEAST_ASSERTIONS: u64 = 350;

fn newman() -> PathBuf {
    examples().join("postman/node_modules/.bin/newman")
}

/// `N passed, N failed`, then one line per failed assertion.
fn summary(report: &Value) -> (u64, String) {
    let assertions = &report["run"]["stats"]["assertions"];
    let total = assertions["total"].as_u64().unwrap_or(0);
    let failed = assertions["failed"].as_u64().unwrap_or(0);
    let mut text = format!(
        "postman collection: {} passed, {failed} failed",
        total - failed
    );
    for failure in report["run"]["failures"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  {}: {}: {}",
            failure["source"]["name"].as_str().unwrap_or("?"),
            failure["error"]["test"].as_str().unwrap_or("?"),
            failure["error"]["message"].as_str().unwrap_or("?"),
        ));
    }
    (total, text)
}

#[tokio::test]
async fn the_postman_collection_passes_against_the_demo() {
    if !newman().exists() {
        let reason = "newman not installed (npm ci --prefix examples/postman)";
        assert!(std::env::var("CI").is_err(), "{reason}");
        println!("SKIPPED the_postman_collection_passes_against_the_demo: {reason}");
        return;
    }
    let demo = Demo::start(&["--issuer-port", "0"]);
    let faults = examples().join("demo-faults.toml");
    let outage = Demo::start(&["--issuer-port", "0", "--faults", faults.to_str().unwrap()]);

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let report_path = dir.join("newman-report.json");
    let _ = std::fs::remove_file(&report_path);
    let postman = examples().join("postman");
    let run = tokio::process::Command::new(newman())
        .current_dir(&postman)
        .args([
            "run",
            "shcr-facade.postman_collection.json",
            "--environment",
            "shcr-facade-demo.postman_environment.json",
        ])
        .args(["--env-var", &format!("base_url={}", demo.base)])
        .args(["--env-var", &format!("issuer_url={}", demo.issuer)])
        .args(["--env-var", &format!("outage_base_url={}", outage.base)])
        .args(["--env-var", &format!("outage_issuer_url={}", outage.issuer)])
        .args(["--reporters", "cli,json", "--reporter-json-export"])
        .arg(&report_path)
        .args(["--color", "off", "--timeout-request", "30000"])
        .output()
        .await
        .expect("newman runs");
    let cli = String::from_utf8_lossy(&run.stdout);
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap_or_else(|e| {
        panic!(
            "no newman report ({e}): {cli}\n{}",
            String::from_utf8_lossy(&run.stderr)
        )
    }))
    .expect("newman's JSON report");
    let (total, text) = summary(&report);
    // .ci/run prints this line after the suite, whatever the outcome.
    std::fs::write(dir.join("newman-summary.txt"), format!("{text}\n")).unwrap();
    println!("{text}");
    assert!(run.status.success(), "{text}\n\n{cli}");
    assert_eq!(report["run"]["stats"]["assertions"]["failed"], 0, "{text}");
    assert_eq!(report["run"]["stats"]["requests"]["failed"], 0, "{cli}");
    assert!(
        total >= LEAST_ASSERTIONS,
        "only {total} assertions ran: {text}"
    );
}
