//! The built-in rule pack carries a version (rules/VERSION) that changes with
//! it: this fails when the rules no longer match the sum recorded beside the
//! version, and `trailwatch --version` shows the version with the commit.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("rules/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rule_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
}

/// SHA-256 over each rule file's path under rules/ and its content, in
/// path order (as rules/VERSION says).
fn pack_sum() -> String {
    let root = rules_dir();
    let mut files = Vec::new();
    rule_files(&root, &mut files);
    let mut named: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under rules/");
            (rel.to_string_lossy().into_owned(), p)
        })
        .collect();
    named.sort();
    let mut hasher = Sha256::new();
    for (rel, path) in named {
        hasher.update(rel.as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(&path).expect("rule file"));
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn recorded(key: &str) -> String {
    let text = std::fs::read_to_string(rules_dir().join("VERSION")).expect("rules/VERSION");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("rules/VERSION has no {key}"))
        .trim()
        .to_owned()
}

#[test]
fn the_pack_version_changes_with_the_rules() {
    let sum = pack_sum();
    assert_eq!(
        recorded("sha256"),
        sum,
        "the built-in rules changed: raise `version` in rules/VERSION and set `sha256 = {sum}`"
    );
}

#[test]
fn the_version_names_the_commit_and_the_rule_pack() {
    let out = Command::new(common::trailwatch())
        .arg("--version")
        .output()
        .expect("run trailwatch --version");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "trailwatch {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("rule pack {})", recorded("version"))),
        "{text}"
    );
}
