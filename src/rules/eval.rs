//! The yes-or-no evaluation of a compiled rule against a record.
//!
//! rsigma's `evaluate_rule` builds a match report on every match: it runs the
//! condition a second time to name the selections that matched, reads their
//! fields again, and clones the rule's title, id and tags into the result.
//! Scanning needs only whether the rule matched, and one of SigmaHQ's rules
//! (`aws_sts_assumerole_misuse`) matches most records of a real account, so
//! that report cost more than the matching itself.
//!
//! A [`Program`] is the rule's condition with each detection name resolved,
//! once at load time, to the detection it names; the detections are rsigma's
//! own compiled ones, and each item is tested by rsigma's own matchers, in the
//! same way as its evaluator's boolean pass. Rules with array-scoped
//! detections (which that public API cannot evaluate) have no program and
//! use `evaluate_rule`. A test compares the two on every dataset record.

use rsigma_eval::event::Event;
use rsigma_eval::{CompiledDetection, CompiledDetectionItem, CompiledMatcher, CompiledRule};
use rsigma_parser::{ConditionExpr, Quantifier};

/// A rule's condition over its detections, ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    detections: Vec<CompiledDetection>,
    /// The rule's conditions: it matches when any of them holds.
    conditions: Vec<Cond>,
}

#[derive(Debug, Clone)]
enum Cond {
    Detection(usize),
    /// A name with no detection behind it.
    Never,
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// `N of pattern` (1 for `1 of`, `any of`), over the detections it names.
    AtLeast(u64, Vec<usize>),
    /// `all of pattern`.
    All(Vec<usize>),
}

impl Program {
    /// The program for `rule`, or `None` when it uses detections this
    /// evaluator does not handle.
    pub(crate) fn compile(rule: &CompiledRule) -> Option<Program> {
        // A fixed order, so that a program is the same from run to run.
        let mut named: Vec<(&String, &CompiledDetection)> = rule.detections.iter().collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        if !named.iter().all(|(_, d)| supported(d)) {
            return None;
        }
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        Some(Program {
            conditions: rule.conditions.iter().map(|c| resolve(c, &names)).collect(),
            detections: named.into_iter().map(|(_, d)| d.clone()).collect(),
        })
    }

    /// Whether `event` matches.
    pub(crate) fn matches(&self, event: &impl Event) -> bool {
        self.conditions.iter().any(|c| self.holds(c, event))
    }

    fn holds(&self, cond: &Cond, event: &impl Event) -> bool {
        match cond {
            Cond::Detection(i) => detection_matches(&self.detections[*i], event),
            Cond::Never => false,
            Cond::And(all) => all.iter().all(|c| self.holds(c, event)),
            Cond::Or(any) => any.iter().any(|c| self.holds(c, event)),
            Cond::Not(inner) => !self.holds(inner, event),
            Cond::AtLeast(0, _) => true,
            Cond::AtLeast(n, of) => {
                let mut matched = 0;
                of.iter().any(|&i| {
                    if detection_matches(&self.detections[i], event) {
                        matched += 1;
                    }
                    matched >= *n
                })
            }
            Cond::All(of) => of
                .iter()
                .all(|&i| detection_matches(&self.detections[i], event)),
        }
    }
}

fn supported(detection: &CompiledDetection) -> bool {
    match detection {
        CompiledDetection::AllOf(_) | CompiledDetection::Keywords(_) => true,
        CompiledDetection::AnyOf(list) | CompiledDetection::And(list) => list.iter().all(supported),
        CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => false,
    }
}

fn resolve(expr: &ConditionExpr, names: &[&str]) -> Cond {
    match expr {
        ConditionExpr::Identifier(name) => names
            .iter()
            .position(|n| n == name)
            .map_or(Cond::Never, Cond::Detection),
        ConditionExpr::And(list) => Cond::And(list.iter().map(|c| resolve(c, names)).collect()),
        ConditionExpr::Or(list) => Cond::Or(list.iter().map(|c| resolve(c, names)).collect()),
        ConditionExpr::Not(inner) => Cond::Not(Box::new(resolve(inner, names))),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let of: Vec<usize> = (0..names.len())
                .filter(|&i| pattern.matches_detection_name(names[i]))
                .collect();
            match quantifier {
                Quantifier::Any => Cond::AtLeast(1, of),
                Quantifier::Count(n) => Cond::AtLeast(*n, of),
                Quantifier::All => Cond::All(of),
            }
        }
    }
}

fn detection_matches(detection: &CompiledDetection, event: &impl Event) -> bool {
    match detection {
        CompiledDetection::AllOf(items) => items.iter().all(|item| item_matches(item, event)),
        CompiledDetection::AnyOf(list) => list.iter().any(|d| detection_matches(d, event)),
        CompiledDetection::And(list) => list.iter().all(|d| detection_matches(d, event)),
        CompiledDetection::Keywords(matcher) => matcher.matches_keyword(event),
        // Refused by `supported`; never reached.
        CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => false,
    }
}

/// One `field|modifiers: values` item, as rsigma tests it.
fn item_matches(item: &CompiledDetectionItem, event: &impl Event) -> bool {
    if let Some(expect_exists) = item.exists {
        return match &item.field {
            Some(field) => event.get_field(field).is_some_and(|v| !v.is_null()) == expect_exists,
            None => !expect_exists,
        };
    }
    match &item.field {
        Some(field) => match event.get_field(field) {
            Some(value) => item.matcher.matches(&value, event),
            None => matches!(item.matcher, CompiledMatcher::Null),
        },
        None => item.matcher.matches_keyword(event),
    }
}
