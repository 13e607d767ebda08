//! `trailwatch rules list`

use std::io::Write;
use std::process::ExitCode;

use super::{EXIT_FAILED, RuleSources, load_rules};

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
            rule.meta.severity.as_str(),
            rule.meta.title,
            rule.meta.origin.label()
        );
        if line.is_err() {
            break; // stdout closed (e.g. piped into head)
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

/// `trailwatch rules test`: runs each rule's own examples; exit 1 if any fails.
pub fn test(sources: &RuleSources) -> ExitCode {
    let set = match load_rules(sources) {
        Ok(set) => set,
        Err(code) => return code,
    };
    let outcomes = set.test_examples();
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for o in &outcomes {
        if o.passed {
            continue;
        }
        failed += 1;
        let expected = if o.example.expect_match {
            "match"
        } else {
            "no match"
        };
        let got = match &o.error {
            Some(e) => format!("the event is not a valid record: {e}"),
            None if o.example.expect_match => "it did not fire".to_owned(),
            None => "it fired".to_owned(),
        };
        let _ = writeln!(
            out,
            "FAIL {} ({}:{}): example '{}' expects {expected}, but {got}",
            o.rule.id,
            o.rule.meta.origin.path(),
            o.rule.line,
            o.example.name
        );
    }
    let correlation = set.test_correlation_examples();
    for (rule, example, passed, error) in &correlation {
        if !passed {
            failed += 1;
            let why = error
                .clone()
                .unwrap_or_else(|| "it did not behave as expected".into());
            let _ = writeln!(out, "FAIL {rule}: correlation example '{example}': {why}");
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
        outcomes.len() + correlation.len(),
        set.len() + set.correlations().len(),
        outcomes.len() + correlation.len() - failed,
        without.len()
    );
    if failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
