//! `trailwatch gen` end to end: a background day from scripts/benign_day.py,
//! replayed into a corpus that is deterministic, laid out and named as
//! CloudTrail does, and whose manifest says exactly which alerts a scan
//! raises at medium or above.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn trailwatch(args: &[&str]) -> std::process::Output {
    let out = Command::new(common::trailwatch())
        .args(args)
        .output()
        .expect("run trailwatch");
    assert!(
        out.status.success(),
        "trailwatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small benign day (no Panther records), written once per test.
fn background(dir: &Path) -> PathBuf {
    let path = dir.join("day.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/benign_day.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--records", "3000", "--seed", "3", "--no-panther", "--out"])
        .arg(&path)
        .arg("--datasets")
        .arg(common::datasets())
        .output()
        .expect("run benign_day.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn manifest(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("corpus.manifest")).expect("manifest");
    serde_json::from_str(&text).expect("manifest is JSON")
}

#[test]
fn gen_is_deterministic_named_like_cloudtrail_and_says_what_scan_finds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let day = background(tmp.path());
    let day = day.to_str().expect("utf-8 path");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let jsonl = tmp.path().join("a.jsonl");
    let common_args = [
        "gen",
        "--background",
        day,
        "--size",
        "12MB",
        "--seed",
        "7",
        "--attack-every",
        "500",
        "--date",
        "2026-03-01",
    ];
    let mut args_a = common_args.to_vec();
    args_a.extend(["--out", a.to_str().expect("path"), "--jsonl"]);
    args_a.push(jsonl.to_str().expect("path"));
    trailwatch(&args_a);
    let mut args_b = common_args.to_vec();
    args_b.extend(["--out", b.to_str().expect("path"), "--threads", "1"]);
    trailwatch(&args_b);

    // The same arguments give the same bytes, whatever the threads.
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.strip_prefix(&a).ok(), y.strip_prefix(&b).ok());
        assert_eq!(
            std::fs::read(x).ok(),
            std::fs::read(y).ok(),
            "{}",
            x.display()
        );
    }

    // Named and laid out as CloudTrail does; sizes as asked; every record
    // of the JSON lines copy is in the objects.
    let m = manifest(&a);
    let objects: Vec<&PathBuf> = fa
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect();
    assert_eq!(
        objects.len() as u64,
        m["objects"].as_u64().expect("objects")
    );
    for path in &objects {
        let rel = path
            .strip_prefix(&a)
            .expect("inside")
            .to_str()
            .expect("utf-8");
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 8, "{rel}");
        assert_eq!((parts[0], parts[2]), ("AWSLogs", "CloudTrail"), "{rel}");
        let name = parts[7];
        let expected_prefix = format!(
            "{}_CloudTrail_{}_{}{}{}T",
            parts[1], parts[3], parts[4], parts[5], parts[6]
        );
        assert!(
            name.starts_with(&expected_prefix) && name.ends_with(".json.gz"),
            "{rel}"
        );
        assert_eq!(
            name.len(),
            expected_prefix.len() + "HHMMZ_".len() + 16 + ".json.gz".len(),
            "{rel}"
        );
    }
    let bytes = m["decompressed_bytes"].as_u64().expect("bytes");
    assert!((12_000_000..13_000_000).contains(&bytes), "{bytes}");
    let lines = std::fs::read_to_string(&jsonl).expect("jsonl");
    assert_eq!(
        lines.lines().count() as u64,
        m["records"].as_u64().expect("records")
    );
    let attacks = m["attacks"].as_array().expect("attacks");
    assert_eq!(
        attacks.len() as u64,
        m["records"].as_u64().expect("records") / 501
    );

    // scan finds at medium or above exactly what the manifest expects.
    // Every match, as the manifest lists them (no grouping of repeats).
    let out = trailwatch(&[
        "scan",
        "--no-grouping",
        "--format",
        "jsonl",
        a.to_str().expect("path"),
    ]);
    let level = |s: &str| {
        ["informational", "low", "medium", "high", "critical"]
            .iter()
            .position(|l| *l == s)
    };
    let got: BTreeSet<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("alert"))
        .filter(|a| level(a["rule"]["severity"].as_str().unwrap_or("")) >= level("medium"))
        .map(|a| {
            (
                a["rule"]["id"].as_str().unwrap_or("").to_owned(),
                a["event"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = attacks
        .iter()
        .flat_map(|a| {
            let id = a["event_id"].as_str().unwrap_or("").to_owned();
            a["fires"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |r| (r.as_str().unwrap_or("").to_owned(), id.clone()))
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    assert_eq!(
        expected.len() as u64,
        m["expected_alerts"].as_u64().expect("expected")
    );

    // One object holding everything: the same records.
    let single = tmp.path().join("single");
    let mut args_s = common_args.to_vec();
    args_s.extend(["--out", single.to_str().expect("path"), "--single-object"]);
    trailwatch(&args_s);
    let ms = manifest(&single);
    assert_eq!(ms["objects"], 1);
    assert_eq!(ms["records"], m["records"]);
    assert_eq!(ms["expected_alerts"], m["expected_alerts"]);
}

#[test]
fn gen_names_a_bad_background_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let day = tmp.path().join("day.jsonl");
    std::fs::write(&day, "{\"eventTime\":\"2026-01-01T00:00:00Z\"}\nnot json\n").expect("write");
    let out = Command::new(common::trailwatch())
        .args(["gen", "--background"])
        .arg(&day)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("day.jsonl:2: not JSON"), "{err}");
}
