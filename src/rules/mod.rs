//! Sigma rules: loading, the built-in pack, and the index that sends each
//! record only to the rules that can match it.

mod allow;
mod builtin;
mod correlate;
mod emit;
mod eval;
mod grouping;
mod index;
mod inline_id;
pub mod junit;
mod load;
mod matcher;
mod memo;
mod ordered_feed;
mod rule;

pub use allow::Allow;
pub use builtin::builtin_rules;
pub use correlate::{Correlator, SeenDelta, Snapshot};
pub use emit::{write_jsonl_alerts, write_jsonl_for};
pub use grouping::{Grouper, Seen};
pub use index::RuleIndex;
pub use load::{Correlation, Loaded, load_dir, load_text, rule_files};
pub use ordered_feed::{Held, OrderedFeed, feed_in_order};
pub use rule::{Example, Rule, RuleError, RuleMeta, RuleOrigin, Severity};

use std::path::PathBuf;

use crate::event::Record;

/// Loads the built-in pack (when `builtin`) and every rule under `dirs`, and
/// indexes them. Rules that do not load are returned as errors; the others run.
pub fn load_rule_set(builtin: bool, dirs: &[PathBuf]) -> (RuleSet, Vec<RuleError>) {
    let mut sources = Vec::new();
    if builtin {
        builtin::builtin_sources(&mut sources);
    }
    for dir in dirs {
        load::dir_sources(dir, &mut sources);
    }
    let mut loaded = load::load_all(&sources);
    let (set, mut errors) = RuleSet::build(loaded.rules, loaded.correlations);
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
    /// The stateful rules, when there are any.
    correlator: Option<std::sync::Mutex<Correlator>>,
    /// The correlation rules as loaded (for their examples).
    correlations: Vec<Correlation>,
}

impl RuleSet {
    /// Indexes `rules`. Duplicate ids are refused: alert ids are derived from
    /// the rule id, so two rules with one id would collide.
    pub fn new(rules: Vec<Rule>) -> (Self, Vec<RuleError>) {
        Self::build(rules, Vec::new())
    }

    /// Indexes `rules` and builds the correlation engine for `correlations`.
    pub fn build(rules: Vec<Rule>, correlations: Vec<Correlation>) -> (Self, Vec<RuleError>) {
        let mut seen: std::collections::HashMap<String, (String, usize)> = Default::default();
        let mut kept = Vec::with_capacity(rules.len());
        let mut errors = Vec::new();
        for rule in rules {
            if let Some((file, line)) = seen.get(&rule.id) {
                let reason = format!(
                    "duplicate rule id '{}' (first defined at {file}:{line})",
                    rule.id
                );
                errors.push(RuleError::at(&rule.meta.origin, rule.line, reason));
                continue;
            }
            seen.insert(
                rule.id.clone(),
                (rule.meta.origin.path().to_owned(), rule.line),
            );
            kept.push(rule);
        }
        let (correlator, mut corr_errors) = Correlator::build(correlations.clone(), &mut kept);
        errors.append(&mut corr_errors);
        let index = RuleIndex::build(&kept);
        (
            RuleSet {
                rules: kept,
                index,
                allow: Vec::new(),
                correlator: correlator.map(std::sync::Mutex::new),
                correlations,
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

    /// Feeds a record to the stateful rules when it matched rules they use.
    pub fn correlate(
        &self,
        record: &Record,
        matched: &[&Rule],
        object: Option<&crate::alert::ObjectRef>,
        detected_at: &str,
    ) {
        let Some(correlator) = &self.correlator else {
            return;
        };
        if !matched.iter().any(|r| r.feeds) {
            return;
        }
        let mut c = correlator.lock().unwrap_or_else(|p| p.into_inner());
        c.process(record, matched, object, detected_at);
    }

    /// Runs `f` on the correlator (under its lock), if there is one.
    pub fn with_correlator<T>(&self, f: impl FnOnce(&mut Correlator) -> T) -> Option<T> {
        let correlator = self.correlator.as_ref()?;
        let mut c = correlator.lock().unwrap_or_else(|p| p.into_inner());
        Some(f(&mut c))
    }

    /// The correlation rules loaded.
    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    /// Runs each correlation rule's examples (`rsigma.exemplars` with timed
    /// `events`) through a fresh engine: (rule id, example, passed, error).
    pub fn test_correlation_examples(&self) -> Vec<(String, String, bool, Option<String>)> {
        let mut out = Vec::new();
        for c in &self.correlations {
            let id = c.rule.id.clone().unwrap_or_default();
            let list = match rsigma_parser::correlation_exemplars(&c.rule) {
                Ok(list) => list,
                Err(errors) => {
                    let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                    out.push((id.clone(), "(examples)".into(), false, Some(all.join("; "))));
                    continue;
                }
            };
            for ex in list {
                let rsigma_parser::ExemplarPayload::Sequence(events) = &ex.payload else {
                    out.push((
                        id.clone(),
                        ex.name.clone(),
                        false,
                        Some("a correlation example takes `events`".into()),
                    ));
                    continue;
                };
                let mut rules = self.rules.clone();
                let (Some(mut engine), _) =
                    Correlator::build(self.correlations.clone(), &mut rules)
                else {
                    out.push((id.clone(), ex.name.clone(), false, Some("no engine".into())));
                    continue;
                };
                let base = time::macros::datetime!(2026-01-01 00:00 UTC);
                let mut fired = false;
                let mut error = None;
                let mut scratch = Vec::new();
                for (n, timed) in events.iter().enumerate() {
                    let mut event = match serde_json::to_value(&timed.event) {
                        Ok(v) => v,
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    };
                    let at = base + std::time::Duration::from_secs(timed.offset.seconds);
                    if let Some(map) = event.as_object_mut() {
                        let stamp = at
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default();
                        map.entry("eventTime")
                            .or_insert(serde_json::Value::String(stamp));
                        map.entry("eventID")
                            .or_insert(serde_json::Value::String(format!("{}-{n}", ex.name)));
                    }
                    let text = event.to_string();
                    let record = match Record::parse(&text) {
                        Ok(r) => r,
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    };
                    let mut matched = Vec::new();
                    self.index.candidates(&record, &mut scratch);
                    for &i in scratch.iter() {
                        let rule = &rules[i as usize];
                        if engine.feeds_on(&rule.id) && rule.matches(&record) {
                            matched.push(rule);
                        }
                    }
                    if !matched.is_empty() {
                        engine.process(&record, &matched, None, "2026-01-01T00:00:00Z");
                    }
                    fired |= engine.take_pending().iter().any(|d| d.alert.rule.id == id);
                }
                // The end of the example's input: first-seen values are decided.
                engine.close_all();
                fired |= engine.take_pending().iter().any(|d| d.alert.rule.id == id);
                let expect = ex.expect == rsigma_parser::Expect::Match;
                out.push((
                    id.clone(),
                    ex.name.clone(),
                    error.is_none() && fired == expect,
                    error,
                ));
            }
        }
        out
    }

    /// The matching rules, testing every rule (the reference for the index).
    pub fn matches_full_scan(&self, record: &Record) -> Vec<&Rule> {
        self.rules.iter().filter(|r| r.matches(record)).collect()
    }
}
