//! Sigma rules: loading, the built-in pack, and the index that sends each
//! record only to the rules that can match it.

mod allow;
mod builtin;
mod index;
mod load;
mod rule;

pub use allow::Allow;
pub use builtin::builtin_rules;
pub use index::RuleIndex;
pub use load::{Loaded, load_dir, load_text, rule_files};
pub use rule::{Example, Rule, RuleError, RuleOrigin, Severity};

use std::path::PathBuf;

use crate::event::Record;

/// Loads the built-in pack (when `builtin`) and every rule under `dirs`, and
/// indexes them. Rules that do not load are returned as errors; the others run.
pub fn load_rule_set(builtin: bool, dirs: &[PathBuf]) -> (RuleSet, Vec<RuleError>) {
    let mut loaded = Loaded::default();
    if builtin {
        loaded.extend(builtin_rules());
    }
    for dir in dirs {
        loaded.extend(load_dir(dir));
    }
    let (set, mut errors) = RuleSet::new(loaded.rules);
    loaded.errors.append(&mut errors);
    (set, loaded.errors)
}

/// One example's result.
#[derive(Debug)]
pub struct ExampleOutcome<'a> {
    pub rule: &'a Rule,
    pub example: &'a Example,
    pub passed: bool,
    /// The example's event is not a valid record.
    pub error: Option<String>,
}

/// The compiled rules and their index.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: RuleIndex,
    /// Matches these entries allow are not alerts.
    allow: Vec<Allow>,
}

impl RuleSet {
    /// Indexes `rules`. Duplicate ids are refused: alert ids are derived from
    /// the rule id, so two rules with one id would collide.
    pub fn new(rules: Vec<Rule>) -> (Self, Vec<RuleError>) {
        let mut seen: std::collections::HashMap<String, (String, usize)> = Default::default();
        let mut kept = Vec::with_capacity(rules.len());
        let mut errors = Vec::new();
        for rule in rules {
            if let Some((file, line)) = seen.get(&rule.id) {
                errors.push(RuleError {
                    file: rule.origin.path().to_owned(),
                    line: rule.line,
                    reason: format!(
                        "duplicate rule id '{}' (first defined at {file}:{line})",
                        rule.id
                    ),
                });
                continue;
            }
            seen.insert(rule.id.clone(), (rule.origin.path().to_owned(), rule.line));
            kept.push(rule);
        }
        let index = RuleIndex::build(&kept);
        (
            RuleSet {
                rules: kept,
                index,
                allow: Vec::new(),
            },
            errors,
        )
    }

    /// Adds allowlist entries: matches they allow are not reported.
    pub fn with_allowlist(mut self, allow: Vec<Allow>) -> Self {
        self.allow = allow;
        self
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules the index cannot narrow down: they are tested on every record.
    pub fn unindexed(&self) -> impl Iterator<Item = &Rule> {
        self.index
            .unindexed_rules()
            .map(|i| &self.rules[i as usize])
    }

    /// Calls `hit` with each rule that matches `record`, in rule order, testing
    /// only the candidates the index gives. `scratch` is reused across calls.
    pub fn for_each_match<'s>(
        &'s self,
        record: &Record,
        scratch: &mut Vec<u32>,
        mut hit: impl FnMut(&'s Rule),
    ) {
        self.index.candidates(record, scratch);
        for &i in scratch.iter() {
            let rule = &self.rules[i as usize];
            if rule.matches(record) && !self.allow.iter().any(|a| a.allows(&rule.id, record)) {
                hit(rule);
            }
        }
    }

    /// Runs every rule's examples through the index, as records are run:
    /// one outcome per example.
    pub fn test_examples(&self) -> Vec<ExampleOutcome<'_>> {
        let mut outcomes = Vec::new();
        let mut scratch = Vec::new();
        for rule in &self.rules {
            for example in &rule.examples {
                let text = example.event.to_string();
                let fired = match Record::parse(&text) {
                    Ok(record) => {
                        let mut fired = false;
                        self.for_each_match(&record, &mut scratch, |r| fired |= r.id == rule.id);
                        Ok(fired)
                    }
                    Err(e) => Err(e.to_string()),
                };
                let passed = fired.as_ref().is_ok_and(|&f| f == example.expect_match);
                outcomes.push(ExampleOutcome {
                    rule,
                    example,
                    passed,
                    error: fired.err(),
                });
            }
        }
        outcomes
    }

    /// The matching rules, testing every rule (the reference for the index).
    pub fn matches_full_scan(&self, record: &Record) -> Vec<&Rule> {
        self.rules.iter().filter(|r| r.matches(record)).collect()
    }
}
