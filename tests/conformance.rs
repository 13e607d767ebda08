//! Conformance against an independent Sigma implementation: pySigma's DuckDB
//! backend (tests/conformance/sigma_duckdb.py, in the venv that
//! scripts/pyenv.sh builds) runs the SigmaHQ CloudTrail rules over every
//! dataset record; trailwatch must find the same matches, rule by rule and
//! record by record, except for the differences listed below with their reason.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use trailwatch::event::Record;
use trailwatch::rules::load_rule_set;

/// Rules whose matches differ from the stock DuckDB backend, and why. Each
/// entry is checked: the difference must still exist, in the direction given.
/// (rule file, rows only trailwatch matches, rows only DuckDB matches, reason)
const KNOWN_DIFFERENCES: &[(&str, usize, usize, &str)] = &[
    (
        "aws_cloudtrail_console_login_success_without_mfa.yml",
        14,
        0,
        "the rule says MFAUsed: 'NO' and CloudTrail writes 'No'; Sigma matching is \
         case-insensitive, the backend renders plain equality as SQL '=', which is not",
    ),
    (
        "aws_update_login_profile.yml",
        1,
        0,
        "`not 1 of filter_main_*` where the fieldref's field (requestParameters.userName) \
         is absent: Sigma's filter is false so its negation is true; SQL's three-valued \
         NOT NULL is NULL and drops the record",
    ),
];

fn python() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-conformance/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/pyenv.sh (make test does)",
        venv.display()
    );
    venv
}

#[test]
fn sigmahq_rules_match_what_duckdb_matches() {
    let (differing, report) = compare(false);
    let known: BTreeMap<String, (usize, usize)> = KNOWN_DIFFERENCES
        .iter()
        .map(|(f, a, b, _)| (f.to_string(), (*a, *b)))
        .collect();
    assert_eq!(differing, known, "differences:\n{}", report.join("\n"));
}

/// With the backend's SQL-isms corrected to Sigma's semantics (case-insensitive
/// equality, two-valued NOT; see sigma_duckdb.py --sigma-semantics) there is no
/// difference at all.
#[test]
fn sigmahq_rules_match_duckdb_with_sigma_semantics() {
    let (differing, report) = compare(true);
    assert!(differing.is_empty(), "differences:\n{}", report.join("\n"));
}

/// Runs the DuckDB reference and trailwatch over every dataset record:
/// (rule file -> (rows only trailwatch matches, rows only DuckDB matches)).
fn compare(sigma_semantics: bool) -> (BTreeMap<String, (usize, usize)>, Vec<String>) {
    let records = common::all_records();
    let dir = tempfile::tempdir().expect("tempdir");
    let jsonl = dir.path().join("records.jsonl");
    let lines: Vec<String> = records.iter().map(|(_, r)| r.to_string()).collect();
    std::fs::write(&jsonl, lines.join("\n") + "\n").expect("write records");
    let out = dir.path().join("duckdb.json");
    let mut command = Command::new(python());
    command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/sigma_duckdb.py"));
    if sigma_semantics {
        command.arg("--sigma-semantics");
    }
    let status = command
        .arg(common::sigma_dir())
        .arg(&jsonl)
        .arg(&out)
        .status()
        .expect("run sigma_duckdb.py");
    assert!(status.success(), "sigma_duckdb.py failed: {status}");
    let duck: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read output")).expect("JSON");

    let (set, errors) = load_rule_set(false, &[common::sigma_dir()]);
    assert!(errors.is_empty(), "{errors:?}");
    let mut ours: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let mut scratch = Vec::new();
    for (row, line) in lines.iter().enumerate() {
        let record = Record::parse(line).expect("record");
        set.for_each_match(&record, &mut scratch, |rule| {
            ours.entry(rule.id.clone()).or_default().insert(row);
        });
    }

    let rules = duck["rules"].as_object().expect("rules object");
    assert_eq!(rules.len(), 57, "every rule reported by DuckDB");
    let mut report = Vec::new();
    let mut differing = BTreeMap::new();
    for (id, entry) in rules {
        let file = Path::new(entry["file"].as_str().unwrap_or(""))
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("")
            .to_owned();
        if let Some(err) = entry["error"].as_str() {
            report.push(format!("{file}: DuckDB could not run it: {err}"));
            differing.insert(file, (usize::MAX, usize::MAX));
            continue;
        }
        let theirs: BTreeSet<usize> = entry["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(|v| v.as_u64().map(|n| n as usize))
            .collect();
        let mine = ours.get(id).cloned().unwrap_or_default();
        let only_ours: Vec<_> = mine.difference(&theirs).collect();
        let only_theirs: Vec<_> = theirs.difference(&mine).collect();
        if !only_ours.is_empty() || !only_theirs.is_empty() {
            let show = |rows: &[&usize]| -> Vec<String> {
                rows.iter()
                    .take(5)
                    .map(|&&r| records[r].0.clone())
                    .collect()
            };
            report.push(format!(
                "{file}: only trailwatch {} {:?}; only DuckDB {} {:?}",
                only_ours.len(),
                show(&only_ours),
                only_theirs.len(),
                show(&only_theirs)
            ));
            differing.insert(file, (only_ours.len(), only_theirs.len()));
        }
    }
    (differing, report)
}
