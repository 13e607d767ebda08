//! Shared helpers for the integration tests: the public datasets under
//! `../shared/datasets` (read in place, never copied into the project).

#![allow(dead_code)] // each test binary uses a different subset

pub mod child;
pub mod counting_receiver;
pub mod emulators;
pub mod offline;
pub mod one_request;
pub mod outbox;
pub mod receiver;
pub mod shared_tables;
pub mod webdriver;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `TRAILWATCH_DATASETS` (`make DATASETS=...` sets it), else
/// `../shared/datasets` beside the checkout; a missing folder is named.
pub fn datasets() -> PathBuf {
    let dir = match std::env::var("TRAILWATCH_DATASETS") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"),
    };
    assert!(
        dir.is_dir(),
        "the public datasets are not at {}: put them at ../shared/datasets beside the \
         checkout, or name their folder with DATASETS=... (make) or TRAILWATCH_DATASETS",
        dir.display()
    );
    dir
}

pub fn sigma_dir() -> PathBuf {
    datasets().join("sigma-cloudtrail")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Each Stratus detonation: (technique id, its records).
pub fn stratus() -> Vec<(String, Vec<Value>)> {
    let dir = datasets().join("stratus-detonations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_owned();
            let Value::Array(records) = read_json(&p) else {
                panic!("{}: not an array", p.display())
            };
            (name, records)
        })
        .collect()
}

/// One labelled Panther test: the Panther rule, whether it should fire, the record.
pub struct PantherTest {
    pub rule_id: String,
    pub test_name: String,
    pub expected: bool,
    pub event: Value,
}

pub fn panther() -> Vec<PantherTest> {
    let path = datasets().join("panther-tests/cloudtrail_tests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("panther line is JSON");
            PantherTest {
                rule_id: v["rule_id"].as_str().unwrap_or("").to_owned(),
                test_name: v["test_name"].as_str().unwrap_or("").to_owned(),
                expected: v["expected"].as_bool().unwrap_or(false),
                event: v["event"].clone(),
            }
        })
        .collect()
}

/// TrailDiscover's sample records (`*.json.cloudtrail`; the `*.json` beside
/// them are metadata): (file, record).
pub fn traildiscover() -> Vec<(String, Value)> {
    let root = datasets().join("traildiscover/events");
    let mut files = Vec::new();
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("traildiscover dir") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                pending.push(p);
            } else if p.to_string_lossy().ends_with(".json.cloudtrail") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for p in files {
        let label = p.display().to_string();
        match read_json(&p) {
            Value::Array(items) => out.extend(items.into_iter().map(|r| (label.clone(), r))),
            Value::Object(o) if o.contains_key("Records") => {
                if let Some(Value::Array(items)) = o.get("Records") {
                    out.extend(items.iter().cloned().map(|r| (label.clone(), r)));
                }
            }
            record => out.push((label, record)),
        }
    }
    out
}

/// Every record of every dataset, labelled with where it came from.
pub fn all_records() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, records) in stratus() {
        out.extend(records.into_iter().map(|r| (format!("stratus:{name}"), r)));
    }
    for t in panther() {
        out.push((format!("panther:{}:{}", t.rule_id, t.test_name), t.event));
    }
    for (file, r) in traildiscover() {
        out.push((format!("traildiscover:{file}"), r));
    }
    out
}

/// The path of the built `trailwatch` binary.
pub fn trailwatch() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trailwatch"))
}

/// Object `n` of the correlation-order tests: five reads of secrets by one
/// role, their event times out of object order (minute `7n mod 40`), and in
/// every third object 3,000 other calls, so that parallel readers finish
/// objects out of order.
pub fn secret_reads(n: u32) -> Vec<Value> {
    let minute = (n * 7) % 40;
    let mut records: Vec<Value> = (0..5u32)
        .map(|i| {
            serde_json::json!({
                "eventVersion": "1.08", "eventID": format!("s{n:02}-{i}"),
                "eventTime": format!("2026-11-21T10:{minute:02}:{:02}Z", i * 11),
                "eventSource": "secretsmanager.amazonaws.com", "eventName": "GetSecretValue",
                "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
                "userIdentity": {"type": "AssumedRole",
                    "arn": "arn:aws:sts::111122223333:assumed-role/app/i-1"},
                "requestParameters": {"secretId": format!("prod/secret-{}", (n * 5 + i) % 37)}
            })
        })
        .collect();
    if n.is_multiple_of(3) {
        records.extend((0..3000).map(|i| {
            serde_json::json!({"eventID": format!("p{n:02}-{i}"), "eventTime": "2026-11-21T10:00:00Z",
                   "eventSource": "ec2.amazonaws.com", "eventName": "DescribeRegions",
                   "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/x"}})
        }));
    }
    records
}

/// The alerts of `rule` as sorted JSON texts, without `detected_at` (the
/// one field that may differ between two runs).
pub fn of_rule_sorted(alerts: impl IntoIterator<Item = Value>, rule: &str) -> Vec<String> {
    let mut out: Vec<String> = alerts
        .into_iter()
        .filter(|a| a["rule"]["id"] == rule)
        .map(|mut a| {
            a["detected_at"] = Value::Null;
            a.to_string()
        })
        .collect();
    out.sort();
    out
}
