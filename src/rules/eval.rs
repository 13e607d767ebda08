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
//! compiled ones, tested item by item as its evaluator's boolean pass does,
//! with the matchers of `matcher.rs` (rsigma's, without the allocations).
//! Rules with array-scoped detections (which that public API cannot
//! evaluate) have no program and use `evaluate_rule`. A test compares the
//! two on every dataset record.

use rsigma_eval::event::EventValue;
use rsigma_eval::{CompiledDetection, CompiledDetectionItem, CompiledMatcher, CompiledRule};
use rsigma_parser::{ConditionExpr, Quantifier};

use super::matcher::Match;
use crate::event::{FieldPath, Record};
use prefilter::Prefilter;
use std::sync::LazyLock;

mod prefilter;

/// A rule's condition over its detections, ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    detections: Vec<Detection>,
    /// Per detection, its bit in the rule's remembered answers when it
    /// reads nothing but `eventName` and `eventSource` (its answer depends
    /// on those alone).
    call_bit: Vec<Option<u8>>,
    /// The rule's key in the memo table of calls, when a detection has a
    /// bit: the answers of all of them for a call are kept together, so a
    /// record costs one look-up per rule, not one per detection.
    call_owner: Option<u64>,
    /// The rule's conditions: it matches when any of them holds.
    conditions: Vec<Cond>,
    /// A test on one field that every match passes, when one is worth it.
    prefilter: Option<Prefilter>,
}

/// Where one evaluation stands with the remembered answers of its call.
enum Calls {
    NotAsked,
    /// A call field is not a string: each detection is tested.
    Tested,
    Answers(u64),
}

/// rsigma's `CompiledDetection`, less the array-scoped kinds.
#[derive(Debug, Clone)]
enum Detection {
    AllOf(Vec<Item>),
    AnyOf(Vec<Detection>),
    And(Vec<Detection>),
    Keywords(CompiledMatcher),
}

/// One `field|modifiers: values` item.
#[derive(Debug, Clone)]
struct Item {
    field: Option<FieldPath>,
    exists: Option<bool>,
    matcher: Match,
    /// The matcher is `null`, which a missing field also satisfies.
    null: bool,
    /// rsigma's matcher, for an item with no field (a keyword search).
    keyword: Option<CompiledMatcher>,
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
        let detections: Vec<Detection> = named.into_iter().map(|(_, d)| detection(d)).collect();
        let mut bits = 0u8;
        let call_bit: Vec<Option<u8>> = detections
            .iter()
            .map(|d| {
                (bits < 64 && reads_only_the_call(d)).then(|| {
                    bits += 1;
                    bits - 1
                })
            })
            .collect();
        let conditions: Vec<Cond> = rule.conditions.iter().map(|c| resolve(c, &names)).collect();
        Some(Program {
            prefilter: Prefilter::build(&detections, &conditions),
            conditions,
            call_owner: (bits > 0).then(super::memo::new_owner),
            call_bit,
            detections,
        })
    }

    /// Whether `event` matches.
    pub(crate) fn matches(&self, event: &Record) -> bool {
        if let Some(prefilter) = &self.prefilter
            && !prefilter.passes(event)
        {
            return false;
        }
        let mut calls = Calls::NotAsked;
        self.conditions
            .iter()
            .any(|c| self.holds(c, event, &mut calls))
    }

    /// The answers of the detections with a call bit for this record's
    /// (`eventName`, `eventSource`), remembered per thread; `None` when a
    /// call field is not a string (then each is tested).
    fn call_answers(&self, event: &Record) -> Option<u64> {
        let owner = self.call_owner?;
        let (Some(name), Some(source)) = (
            call_field(event, &EVENT_NAME),
            call_field(event, &EVENT_SOURCE),
        ) else {
            return None;
        };
        Some(super::memo::remembered_call(
            owner,
            name.as_deref(),
            source.as_deref(),
            || {
                self.detections
                    .iter()
                    .zip(&self.call_bit)
                    .filter_map(|(d, bit)| bit.filter(|_| detection_matches(d, event)))
                    .fold(0u64, |answers, bit| answers | 1 << bit)
            },
        ))
    }

    /// Whether detection `i` matches, remembered by the call's name and
    /// source where it reads nothing else.
    fn detection(&self, i: usize, event: &Record, calls: &mut Calls) -> bool {
        let detection = &self.detections[i];
        if let Some(Some(bit)) = self.call_bit.get(i) {
            if let Calls::NotAsked = calls {
                *calls = match self.call_answers(event) {
                    Some(answers) => Calls::Answers(answers),
                    None => Calls::Tested,
                };
            }
            if let Calls::Answers(answers) = calls {
                return *answers & (1 << bit) != 0;
            }
        }
        detection_matches(detection, event)
    }

    fn holds(&self, cond: &Cond, event: &Record, calls: &mut Calls) -> bool {
        match cond {
            Cond::Detection(i) => self.detection(*i, event, calls),
            Cond::Never => false,
            Cond::And(all) => all.iter().all(|c| self.holds(c, event, calls)),
            Cond::Or(any) => any.iter().any(|c| self.holds(c, event, calls)),
            Cond::Not(inner) => !self.holds(inner, event, calls),
            Cond::AtLeast(0, _) => true,
            Cond::AtLeast(n, of) => {
                let mut matched = 0;
                of.iter().any(|&i| {
                    if self.detection(i, event, calls) {
                        matched += 1;
                    }
                    matched >= *n
                })
            }
            Cond::All(of) => of.iter().all(|&i| self.detection(i, event, calls)),
        }
    }
}

static EVENT_NAME: LazyLock<FieldPath> = LazyLock::new(|| FieldPath::new("eventName"));
static EVENT_SOURCE: LazyLock<FieldPath> = LazyLock::new(|| FieldPath::new("eventSource"));

/// A call field (`eventName`, `eventSource`) as the memo keys it: `Some(None)`
/// when absent or null, `Some(Some(text))` for a string, `None` for any other
/// value (not remembered: tested every time).
fn call_field<'e>(
    event: &'e Record,
    field: &FieldPath,
) -> Option<Option<std::borrow::Cow<'e, str>>> {
    match event.field_at(field) {
        None | Some(EventValue::Null) => Some(None),
        Some(EventValue::Str(s)) => Some(Some(s)),
        Some(_) => None,
    }
}

/// Whether `detection` reads no field but `eventName` and `eventSource`,
/// and its matchers read nothing else of the event.
fn reads_only_the_call(detection: &Detection) -> bool {
    match detection {
        Detection::AllOf(items) => items.iter().all(|item| {
            matches!(
                item.field.as_ref().map(FieldPath::as_str),
                Some("eventName" | "eventSource")
            ) && item.keyword.is_none()
                && item.matcher.reads_only_its_value()
        }),
        Detection::AnyOf(list) | Detection::And(list) => list.iter().all(reads_only_the_call),
        Detection::Keywords(_) => false,
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

/// `detection` (one that `supported` accepts) in the evaluator's terms.
fn detection(detection: &CompiledDetection) -> Detection {
    match detection {
        CompiledDetection::AllOf(items) => Detection::AllOf(items.iter().map(item).collect()),
        CompiledDetection::AnyOf(list) => {
            Detection::AnyOf(list.iter().map(self::detection).collect())
        }
        CompiledDetection::And(list) => Detection::And(list.iter().map(self::detection).collect()),
        CompiledDetection::Keywords(matcher) => Detection::Keywords(matcher.clone()),
        // Refused by `supported`: an array-scoped detection never matches here.
        CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => {
            Detection::AnyOf(Vec::new())
        }
    }
}

fn item(item: &CompiledDetectionItem) -> Item {
    Item {
        field: item.field.as_deref().map(FieldPath::new),
        exists: item.exists,
        matcher: Match::compile(&item.matcher),
        null: matches!(item.matcher, CompiledMatcher::Null),
        keyword: item.field.is_none().then(|| item.matcher.clone()),
    }
}

fn detection_matches(detection: &Detection, event: &Record) -> bool {
    match detection {
        Detection::AllOf(items) => items.iter().all(|item| item_matches(item, event)),
        Detection::AnyOf(list) => list.iter().any(|d| detection_matches(d, event)),
        Detection::And(list) => list.iter().all(|d| detection_matches(d, event)),
        Detection::Keywords(matcher) => matcher.matches_keyword(event),
    }
}

/// One item, as rsigma tests it.
fn item_matches(item: &Item, event: &Record) -> bool {
    if let Some(expect_exists) = item.exists {
        return match &item.field {
            Some(field) => event.field_at(field).is_some_and(|v| !v.is_null()) == expect_exists,
            None => !expect_exists,
        };
    }
    match (&item.field, &item.keyword) {
        (Some(field), _) => match event.field_at(field) {
            Some(value) => item.matcher.matches(&value, event),
            None => item.null,
        },
        (None, Some(keyword)) => keyword.matches_keyword(event),
        (None, None) => false,
    }
}
