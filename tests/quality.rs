//! The built-in pack's measured quality (issue: detection content):
//! - every Stratus technique caught at medium or above, with an ordinary
//!   client's user agent (the attacker-tool rule does not count);
//! - on Panther's labelled records, precision >= 0.9 and recall >= 0.8 over
//!   the Panther rules the pack covers (tests/quality/panther_mapping.toml);
//! - at most 2 alerts of medium or above over a day of >= 200,000 benign
//!   records (scripts/benign_day.py).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use trailwatch::event::Record;
use trailwatch::rules::{RuleSet, Severity, builtin_rules};

const ATTACKER_TOOL_RULE: &str = "aws-attacker-tool-user-agent";
const PLAIN_USER_AGENT: &str = "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.ubuntu.22";

/// Techniques the pack cannot catch at medium or above, and why.
const NOT_CAUGHT: &[(&str, &str)] = &[];

fn pack() -> RuleSet {
    let loaded = builtin_rules();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let (set, errors) = RuleSet::build(loaded.rules, loaded.correlations);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

/// The rules that alert on a record (not those that only feed a
/// correlation); the record also goes to the stateful rules.
fn fired(set: &RuleSet, record: &Value) -> Vec<(String, Severity)> {
    let text = record.to_string();
    let record = Record::parse(&text).expect("record");
    let mut matched = Vec::new();
    let mut scratch = Vec::new();
    set.for_each_match(&record, &mut scratch, |r| matched.push(r));
    set.correlate(&record, &matched, None, "2026-11-21T00:00:00Z");
    matched
        .iter()
        .filter(|r| r.emit)
        .map(|r| (r.id.clone(), r.meta.severity))
        .collect()
}

#[test]
fn every_stratus_technique_is_caught_at_medium_or_above() {
    let mut missed = Vec::new();
    let mut table = Vec::new();
    for (technique, records) in common::stratus() {
        // Each detonation on its own, stateful rules included.
        let set = pack();
        let mut caught = BTreeSet::new();
        for mut r in records {
            r["userAgent"] = json!(PLAIN_USER_AGENT);
            for (id, sev) in fired(&set, &r) {
                if sev >= Severity::Medium && id != ATTACKER_TOOL_RULE {
                    caught.insert(id);
                }
            }
        }
        let correlated = set
            .with_correlator(|c| c.take_pending())
            .unwrap_or_default();
        for d in correlated {
            if Severity::parse(&d.alert.rule.severity).is_some_and(|s| s >= Severity::Medium) {
                caught.insert(d.alert.rule.id);
            }
        }
        if caught.is_empty() {
            missed.push(technique.clone());
        }
        table.push(format!("{technique}: {caught:?}"));
    }
    eprintln!("{}", table.join("\n"));
    let expected: Vec<String> = NOT_CAUGHT.iter().map(|(t, _)| t.to_string()).collect();
    assert_eq!(missed, expected, "techniques not caught at medium or above");
}

#[derive(serde::Deserialize)]
struct Mapping {
    covered: Vec<String>,
    reason: Option<String>,
}

#[test]
fn panther_precision_and_recall_over_covered_rules() {
    let set = pack();
    let ids: BTreeSet<&str> = set.rules().iter().map(|r| r.id.as_str()).collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/quality/panther_mapping.toml");
    let mapping: BTreeMap<String, Mapping> =
        toml::from_str(&std::fs::read_to_string(&path).expect("mapping")).expect("TOML");
    let tests = common::panther();
    let in_file: BTreeSet<&str> = tests.iter().map(|t| t.rule_id.as_str()).collect();
    let mapped: BTreeSet<&str> = mapping.keys().map(String::as_str).collect();
    assert_eq!(
        in_file, mapped,
        "every Panther rule in the file, and no other, is mapped"
    );
    for (panther, m) in &mapping {
        for id in &m.covered {
            assert!(
                ids.contains(id.as_str()),
                "{panther} maps to unknown rule {id}"
            );
        }
        if m.covered.is_empty() {
            assert!(
                m.reason.as_deref().is_some_and(|r| !r.trim().is_empty()),
                "{panther} needs a reason"
            );
        }
    }
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for t in &tests {
        let m = &mapping[&t.rule_id];
        if m.covered.is_empty() {
            continue;
        }
        let hit = fired(&set, &t.event)
            .iter()
            .any(|(id, _)| m.covered.contains(id));
        match (hit, t.expected) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    let covered = mapping.values().filter(|m| !m.covered.is_empty()).count();
    eprintln!(
        "Panther: {covered} of {} rules covered; TP {tp}, FP {fp}, FN {fn_}; precision {precision:.3}, recall {recall:.3}",
        mapping.len()
    );
    assert!(precision >= 0.9, "precision {precision:.3}");
    assert!(recall >= 0.8, "recall {recall:.3}");
}

#[test]
fn a_benign_day_raises_at_most_two_medium_alerts() {
    let set = pack();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("benign.jsonl");
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/benign_day.py"))
        .args([
            "--records",
            "200000",
            "--seed",
            "1",
            "--panther-exclude-contested",
            "--out",
        ])
        .arg(&out)
        .env("TRAILWATCH_DATASETS", common::datasets())
        .status()
        .expect("run benign_day.py");
    assert!(status.success());
    let file = std::fs::File::open(&out).expect("open");
    let mut reader = trailwatch::decode::RecordReader::new(file, u64::MAX).expect("reader");
    let mut records = 0u64;
    let mut loud: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_level: BTreeMap<Severity, u64> = BTreeMap::new();
    let mut scratch = Vec::new();
    while let Some(record) = reader.next_record().expect("valid JSON lines") {
        records += 1;
        let mut matched = Vec::new();
        set.for_each_match(&record, &mut scratch, |r| matched.push(r));
        for r in matched.iter().filter(|r| r.emit) {
            *by_level.entry(r.meta.severity).or_default() += 1;
            if r.meta.severity >= Severity::Medium {
                *loud.entry(r.id.clone()).or_default() += 1;
            }
        }
        set.correlate(&record, &matched, None, "2026-11-21T00:00:00Z");
    }
    for d in set
        .with_correlator(|c| c.take_pending())
        .unwrap_or_default()
    {
        let sev = Severity::parse(&d.alert.rule.severity).unwrap_or(Severity::Informational);
        *by_level.entry(sev).or_default() += 1;
        if sev >= Severity::Medium {
            *loud.entry(d.alert.rule.id).or_default() += 1;
        }
    }
    assert!(records >= 200_000, "{records} records");
    let medium_plus: u64 = loud.values().sum();
    eprintln!(
        "benign day: {records} records; by level {by_level:?}; medium+ {medium_plus} {loud:?}"
    );
    assert!(
        medium_plus <= 2,
        "{medium_plus} alerts of medium or above: {loud:?}"
    );
}

/// A burst (20,000 records by one principal within five minutes, over a
/// background) raises one alert per rule and group: its opening, and one
/// summary when it closes.
#[test]
fn a_burst_raises_one_alert_per_rule_and_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let background = dir.path().join("background.jsonl");
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/benign_day.py"))
        .args(["--records", "20000", "--seed", "2", "--no-panther", "--out"])
        .arg(&background)
        .env("TRAILWATCH_DATASETS", common::datasets())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run benign_day.py");
    assert!(status.success());
    let corpus = dir.path().join("corpus");
    let out = Command::new(common::trailwatch())
        .args([
            "gen",
            "--size",
            "20MB",
            "--profile",
            "burst",
            "--burst-events",
            "20000",
        ])
        .arg("--background")
        .arg(&background)
        .arg("--out")
        .arg(&corpus)
        .output()
        .expect("gen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(common::trailwatch())
        .args(["scan", "--format", "jsonl"])
        .arg(&corpus)
        .output()
        .expect("scan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut per_rule: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let alert: Value = serde_json::from_str(line).expect("alert");
        if alert["event"]["principal"] != trailwatch::corpus::BURST_PRINCIPAL {
            continue;
        }
        let entry = per_rule
            .entry(alert["rule"]["id"].as_str().unwrap_or("").to_owned())
            .or_default();
        match alert["burst"]["state"].as_str() {
            Some("open") => entry.0 += 1,
            Some("closed") => entry.1 += alert["count"].as_u64().unwrap_or(0),
            _ => entry.2 += 1,
        }
    }
    eprintln!("burst principal's alerts (opened, summed count, ungrouped): {per_rule:?}");
    for rule in ["aws-secrets-mass-read", "aws-access-denied-burst"] {
        assert!(
            per_rule.contains_key(rule),
            "{rule} did not fire: {per_rule:?}"
        );
    }
    for (rule, (opened, _, ungrouped)) in &per_rule {
        assert_eq!((*opened, *ungrouped), (1, 0), "{rule}: {per_rule:?}");
    }
}
