//! `trailwatch rules list`

use std::io::Write;
use std::process::ExitCode;

use super::{RuleSources, load_rules};

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
            rule.severity.as_str(),
            rule.title,
            rule.origin.label()
        );
        if line.is_err() {
            break; // stdout closed (e.g. piped into head)
        }
    }
    let unindexed: Vec<&str> = set.unindexed().map(|r| r.id.as_str()).collect();
    eprintln!(
        "{} rules; {} without an eventName/eventSource constraint, tested on every record{}{}",
        set.len(),
        unindexed.len(),
        if unindexed.is_empty() { "" } else { ": " },
        unindexed.join(", ")
    );
    ExitCode::SUCCESS
}
