//! Times the facade's per-record work for one search on two tree representations
//! of the records: `serde_json::Value` as this build has it (fhirbolt switches on
//! `preserve_order` and `arbitrary_precision`, so every object is an `IndexMap`
//! hashing each key with SipHash), and a tree whose objects are vectors of entries
//! searched in order, as FHIR's small objects allow.
//!
//!     cargo run --release --example record_tree -- [--rounds 12]
//!
//! The work, alike on both: parse the three partners' searchsets of the load
//! generator's search (17 Observations each), take each record out of its entry,
//! give it its facade id, rewrite every reference, visit every coding, read its
//! patient and date, add its origin tag, build the facade's searchset around the
//! 51 records and write it. Both answers are checked equal before timing. It
//! measures a representation, not the facade: the facade's own figures are the
//! load generator's.

use std::borrow::Cow;
use std::fmt;
use std::hint::black_box;
use std::time::Instant;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value, json};

#[path = "common/bench.rs"]
mod bench;
use bench::OBSERVATIONS_PER_PARTNER;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTNERS: [&str; 3] = ["riverside-gp", "northgate-acute", "valley-community"];
/// How serde_json hands over a number under `arbitrary_precision`.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A JSON tree whose objects keep their entries in a vector, in document order.
#[derive(Debug)]
enum Tree {
    Null,
    Bool(bool),
    /// A number's digits as written.
    Number(Box<str>),
    String(String),
    Array(Vec<Tree>),
    Object(Vec<(Box<str>, Tree)>),
}

impl Tree {
    fn get(&self, key: &str) -> Option<&Tree> {
        match self {
            Tree::Object(entries) => entries.iter().find(|(k, _)| &**k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Tree> {
        match self {
            Tree::Object(entries) => entries
                .iter_mut()
                .find(|(k, _)| &**k == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn take(self, key: &str) -> Option<Tree> {
        match self {
            Tree::Object(entries) => entries
                .into_iter()
                .find(|(k, _)| &**k == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Tree::String(s) => Some(s),
            _ => None,
        }
    }

    fn object<const N: usize>(entries: [(&str, Tree); N]) -> Tree {
        Tree::Object(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn text(s: impl Into<String>) -> Tree {
        Tree::String(s.into())
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Number(v.to_string().into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Number(v.to_string().into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Number(v.to_string().into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Tree>()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries: Vec<(Box<str>, Tree)> = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == NUMBER_TOKEN {
                let digits: String = map.next_value()?;
                return Ok(Tree::Number(digits.into()));
            }
            let value: Tree = map.next_value()?;
            // A repeated name keeps its last value, as serde_json's map does.
            match entries.iter_mut().find(|(k, _)| **k == *key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key.into(), value)),
            }
        }
        Ok(Tree::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tree, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Null => serializer.serialize_unit(),
            Tree::Bool(b) => serializer.serialize_bool(*b),
            Tree::Number(digits) => {
                serde_json::Number::from_string_unchecked(digits.to_string()).serialize(serializer)
            }
            Tree::String(s) => serializer.serialize_str(s),
            Tree::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Tree::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(&**key, value)?;
                }
                map.end()
            }
        }
    }
}

fn origin(partner: &str) -> Value {
    json!([{"system": "https://shcr.example.org/CodeSystem/origin", "code": partner}])
}

fn rewrite_references(node: &mut Value, partner: &str) {
    match node {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("reference", Value::String(reference)) => {
                        *reference = format!("{partner}-{reference}")
                    }
                    (_, child) => rewrite_references(child, partner),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| rewrite_references(i, partner)),
        _ => {}
    }
}

fn codings(node: &Value) -> usize {
    match node {
        Value::Object(map) => {
            let here = map.get("system").is_some_and(Value::is_string)
                && map.get("code").is_some_and(Value::is_string);
            usize::from(here) + map.values().map(codings).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(codings).sum(),
        _ => 0,
    }
}

/// The work on `serde_json::Value`.
fn on_values(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut records = Vec::new();
    for (body, partner) in bodies.iter().zip(PARTNERS) {
        let mut bundle: Value = serde_json::from_slice(body).expect("a searchset");
        let Some(Value::Array(entries)) = bundle.as_object_mut().and_then(|b| b.remove("entry"))
        else {
            panic!("entries");
        };
        for entry in entries {
            let Value::Object(mut entry) = entry else {
                continue;
            };
            let mut record = entry.remove("resource").expect("a resource");
            let id = format!("{partner}-{}", record["id"].as_str().unwrap_or_default());
            record["id"] = Value::String(id);
            rewrite_references(&mut record, partner);
            black_box(codings(&record));
            black_box(record["subject"]["reference"].as_str());
            black_box(record["effectiveDateTime"].as_str());
            let meta = record
                .as_object_mut()
                .expect("an object")
                .entry("meta")
                .or_insert_with(|| json!({}));
            meta["tag"] = origin(partner);
            records.push(record);
        }
    }
    let entries: Vec<Value> = records
        .into_iter()
        .map(|record| {
            let full_url = format!(
                "http://127.0.0.1:8080/fhir/{}/{}",
                record["resourceType"].as_str().unwrap_or_default(),
                record["id"].as_str().unwrap_or_default()
            );
            Value::Object(Map::from_iter([
                ("fullUrl".to_string(), Value::String(full_url)),
                ("resource".to_string(), record),
                ("search".to_string(), json!({"mode": "match"})),
            ]))
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    serde_json::to_vec(&bundle).expect("JSON")
}

fn rewrite_tree_references(node: &mut Tree, partner: &str) {
    match node {
        Tree::Object(entries) => {
            for (key, child) in entries.iter_mut() {
                match (&**key, child) {
                    ("reference", Tree::String(reference)) => {
                        *reference = format!("{partner}-{reference}")
                    }
                    (_, child) => rewrite_tree_references(child, partner),
                }
            }
        }
        Tree::Array(items) => items
            .iter_mut()
            .for_each(|i| rewrite_tree_references(i, partner)),
        _ => {}
    }
}

fn tree_codings(node: &Tree) -> usize {
    match node {
        Tree::Object(entries) => {
            let here = matches!(node.get("system"), Some(Tree::String(_)))
                && matches!(node.get("code"), Some(Tree::String(_)));
            usize::from(here) + entries.iter().map(|(_, v)| tree_codings(v)).sum::<usize>()
        }
        Tree::Array(items) => items.iter().map(tree_codings).sum(),
        _ => 0,
    }
}

/// The same work on the vector-backed tree.
fn on_trees(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut records = Vec::new();
    for (body, partner) in bodies.iter().zip(PARTNERS) {
        let bundle: Tree = serde_json::from_slice(body).expect("a searchset");
        let Some(Tree::Array(entries)) = bundle.take("entry") else {
            panic!("entries");
        };
        for entry in entries {
            let mut record = entry.take("resource").expect("a resource");
            let id = record.get("id").and_then(Tree::as_str).unwrap_or_default();
            let id = Tree::text(format!("{partner}-{id}"));
            if let Some(slot) = record.get_mut("id") {
                *slot = id;
            }
            rewrite_tree_references(&mut record, partner);
            black_box(tree_codings(&record));
            black_box(
                record
                    .get("subject")
                    .and_then(|s| s.get("reference"))
                    .and_then(Tree::as_str),
            );
            black_box(record.get("effectiveDateTime").and_then(Tree::as_str));
            let tag = Tree::Array(vec![Tree::object([
                (
                    "system",
                    Tree::text("https://shcr.example.org/CodeSystem/origin"),
                ),
                ("code", Tree::text(partner)),
            ])]);
            match record.get_mut("meta") {
                Some(Tree::Object(meta)) => meta.push(("tag".into(), tag)),
                _ => {
                    if let Tree::Object(entries) = &mut record {
                        entries.push(("meta".into(), Tree::object([("tag", tag)])));
                    }
                }
            }
            records.push(record);
        }
    }
    let entries: Vec<Tree> = records
        .into_iter()
        .map(|record| {
            let full_url = format!(
                "http://127.0.0.1:8080/fhir/{}/{}",
                record
                    .get("resourceType")
                    .and_then(Tree::as_str)
                    .unwrap_or_default(),
                record.get("id").and_then(Tree::as_str).unwrap_or_default()
            );
            Tree::object([
                ("fullUrl", Tree::text(full_url)),
                ("resource", record),
                ("search", Tree::object([("mode", Tree::text("match"))])),
            ])
        })
        .collect();
    let bundle = Tree::object([
        ("resourceType", Tree::text("Bundle")),
        ("type", Tree::text("searchset")),
        ("entry", Tree::Array(entries)),
    ]);
    serde_json::to_vec(&bundle).expect("JSON")
}

/// The three partners' searchsets for the load generator's bench patient, written
/// as the simulated partners write them.
fn partner_bodies() -> Vec<Vec<u8>> {
    PARTNERS
        .iter()
        .map(|partner| {
            let local = format!("bench-{partner}");
            let entries: Vec<Value> = (0..OBSERVATIONS_PER_PARTNER)
                .map(|i| {
                    let id = format!("bench-obs-{i:02}");
                    json!({
                        "fullUrl": format!("http://127.0.0.1:9000/fhir/Observation/{id}"),
                        "resource": bench::observation(&local, i),
                        "search": {"mode": "match"}
                    })
                })
                .collect();
            serde_json::to_vec(&json!({
                "resourceType": "Bundle", "type": "searchset", "total": OBSERVATIONS_PER_PARTNER,
                "link": [{"relation": "self", "url": format!("http://127.0.0.1:9000/fhir/Observation?patient={local}")}],
                "entry": entries
            }))
            .expect("JSON")
        })
        .collect()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Times one search's record work both ways.
#[derive(clap::Parser)]
struct Args {
    /// Rounds of 2,000 searches each way, in turns; the median is printed.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
}

fn main() {
    let rounds = <Args as clap::Parser>::parse().rounds;
    let bodies = partner_bodies();
    let (by_values, by_trees) = (on_values(&bodies), on_trees(&bodies));
    let read = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).expect("JSON");
    assert_eq!(
        read(&by_values),
        read(&by_trees),
        "the same answer both ways"
    );
    println!(
        "one search: {} bytes from the partners, {} bytes answered",
        bodies.iter().map(Vec::len).sum::<usize>(),
        by_values.len()
    );
    // In turns, so that both meet the same machine.
    let searches = 2_000;
    let (mut values, mut trees) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (work, samples) in [
            (on_values as fn(&[Vec<u8>]) -> Vec<u8>, &mut values),
            (on_trees, &mut trees),
        ] {
            let started = Instant::now();
            for _ in 0..searches {
                black_box(work(black_box(&bodies)));
            }
            samples.push(started.elapsed().as_secs_f64() * 1000.0 / searches as f64);
        }
    }
    let (values, trees) = (median(values), median(trees));
    println!(
        "serde_json::Value (IndexMap, SipHash): {values:.4} ms per search (median of {rounds} rounds)"
    );
    println!(
        "objects as vectors of entries:        {trees:.4} ms per search; ratio {:.2}",
        trees / values
    );
}
