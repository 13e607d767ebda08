//! `trailwatch rules list` and `trailwatch rules test`

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_FAILED, RuleSources, load_rules};
use crate::rules::junit::{cases, junit_xml};

pub fn list(sources: &RuleSources) -> ExitCode {
    let set = match load_rules(sources) {
        Ok(set) => set,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    let id_width = set
        .rules()
        .iter()
        .map(|r| r.id.len())
        .chain(
            crate::pipeline::blind_spots::CHECKS
                .iter()
                .map(|c| c.0.len()),
        )
        .max()
        .unwrap_or(2)
        .max(2);
    let _ = writeln!(
        out,
        "{:<id_width$}  {:<13}  {:<60}  SOURCE",
        "ID", "LEVEL", "TITLE"
    );
    for rule in set.rules() {
        let line = writeln!(
            out,
            "{:<id_width$}  {:<13}  {:<60}  {}",
            rule.id,
            rule.meta.severity.as_str(),
            rule.meta.title,
            rule.meta.origin.label()
        );
        if line.is_err() {
            break; // stdout closed (e.g. piped into head)
        }
    }
    // The built-in checks that are no Sigma rule (trail status, blind spots).
    for (id, level, title) in crate::pipeline::blind_spots::CHECKS {
        if writeln!(out, "{id:<id_width$}  {level:<13}  {title:<60}  check").is_err() {
            break;
        }
    }
    let unindexed: Vec<&str> = set.unindexed().map(|r| r.id.as_str()).collect();
    eprintln!(
        "{} rules; {} without an eventName, eventSource, userIdentity.type or errorCode constraint, tested on every record{}{}",
        set.len(),
        unindexed.len(),
        if unindexed.is_empty() { "" } else { ": " },
        unindexed.join(", ")
    );
    ExitCode::SUCCESS
}

/// `trailwatch rules test`: runs each rule's own examples (and writes their
/// results as JUnit XML with `--junit`); exit 1 if any fails.
pub fn test(sources: &RuleSources, junit: Option<&Path>) -> ExitCode {
    let set = match load_rules(sources) {
        Ok(set) => set,
        Err(code) => return code,
    };
    let cases = cases(&set);
    let mut out = std::io::stdout().lock();
    let failed = cases.iter().filter(|c| c.failure.is_some()).count();
    for case in &cases {
        if let Some(why) = &case.failure {
            let _ = writeln!(out, "FAIL {} '{}': {why}", case.rule, case.example);
        }
    }
    let without: Vec<&str> = set
        .rules()
        .iter()
        .filter(|r| r.examples.is_empty())
        .map(|r| r.id.as_str())
        .collect();
    if !without.is_empty() {
        let _ = writeln!(out, "no examples: {}", without.join(", "));
    }
    let _ = writeln!(
        out,
        "{} examples of {} rules: {} passed, {failed} failed; {} rules without examples",
        cases.len(),
        set.len() + set.correlations().len(),
        cases.len() - failed,
        without.len()
    );
    if let Some(path) = junit
        && let Err(e) = std::fs::write(path, junit_xml(&cases))
    {
        eprintln!("error: --junit {}: {e}", path.display());
        return ExitCode::from(EXIT_FAILED);
    }
    if failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
