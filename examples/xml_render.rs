//! Times rendering a 1 MB R4 searchset Bundle as XML through fhir-codec (fhirbolt),
//! the run-time work of the crates whose build settings trade compile time.
//!
//!     cargo run --release --example xml_render -- [--iterations 30]
//!
//! The Bundle is the example partners' Observations, repeated under new ids until
//! its JSON is at least 1 MB; each render gets its own copy, the copy timed apart.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};

fn bundle_of_a_megabyte() -> Value {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let mut observations = Vec::new();
    for partner in ["riverside-gp", "northgate-acute", "valley-community"] {
        let loaded =
            shcr_facade::sim::PartnerData::load(&data.join(partner)).expect("partner data");
        observations.extend(
            loaded
                .of_type(shcr_facade::fhir::ResourceType::named("Observation"))
                .cloned(),
        );
    }
    let mut entries = Vec::new();
    let mut size = 0;
    for round in 0.. {
        for observation in &observations {
            let mut copy = observation.clone();
            let id = format!("r{round}.{}", copy["id"].as_str().unwrap_or_default());
            copy["id"] = json!(id);
            size += copy.to_string().len();
            entries.push(json!({"fullUrl": format!("https://x.test/fhir/Observation/{id}"), "resource": copy, "search": {"mode": "match"}}));
        }
        if size >= 1_000_000 {
            break;
        }
    }
    json!({"resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries})
}

fn main() {
    let mut iterations = 30;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--iterations N")
            }
            other => panic!("unknown flag {other}"),
        }
    }
    let bundle = bundle_of_a_megabyte();
    let json_bytes = bundle.to_string().len();
    fhir_codec::validate_r4_json(&bundle).expect("valid R4");
    let xml = fhir_codec::write_xml(bundle.clone()).expect("renders");
    let copying = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(bundle.clone());
    }
    let copy = copying.elapsed().as_secs_f64() * 1000.0 / iterations as f64;
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(fhir_codec::write_xml(bundle.clone()).expect("renders"));
    }
    let per_render = started.elapsed().as_secs_f64() * 1000.0 / iterations as f64 - copy;
    println!(
        "XML rendering of a {json_bytes}-byte searchset Bundle ({} bytes of XML): {per_render:.2} ms per render, {iterations} renders",
        xml.len()
    );
}
