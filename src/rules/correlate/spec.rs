//! A correlation rule compiled for the engine: its type, the rules it
//! references, how it groups, its window and its condition, and what an
//! alert says about it. Only what trailwatch can keep in bounded state is
//! accepted (`event_count`, `value_count`, `temporal`, `temporal_ordered`
//! over sliding windows); anything else is a rule error naming the file.

use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType};

use crate::rules::rule::{RuleOrigin, Severity};

/// Thresholds above this would need unbounded state; such rules are refused.
pub const MAX_THRESHOLD: u64 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    EventCount,
    /// Distinct values of these fields (joined by U+001F when several).
    ValueCount {
        fields: Vec<String>,
    },
    Temporal,
    TemporalOrdered,
}

/// What an alert needs to say about a correlation rule.
#[derive(Debug, Clone)]
pub struct Meta {
    pub title: String,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub falsepositives: Vec<String>,
    pub origin: RuleOrigin,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub id: String,
    pub name: Option<String>,
    pub kind: Kind,
    /// The referenced rules (ids or names, as written).
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    /// Seconds.
    pub timespan: i64,
    /// All must hold.
    pub predicates: Vec<(ConditionOperator, u64)>,
    /// Events (or distinct values) a group keeps: the largest threshold + 1.
    pub cap: usize,
    pub generate: bool,
    pub meta: Meta,
}

impl Spec {
    /// Compiles `rule`; the error says what is not supported.
    pub fn compile(rule: &CorrelationRule, origin: &RuleOrigin) -> Result<Spec, String> {
        let id = rule
            .id
            .clone()
            .ok_or("a correlation rule needs an id (alert ids derive from it)")?;
        if !matches!(rule.window, rsigma_parser::WindowMode::Sliding) {
            return Err(format!(
                "correlation {id}: only sliding windows are supported, not {:?}",
                rule.window
            ));
        }
        let (predicates, field) = match &rule.condition {
            CorrelationCondition::Threshold {
                predicates, field, ..
            } => (predicates.clone(), field.clone()),
            other => {
                return Err(format!(
                    "correlation {id}: the condition {other:?} is not supported (use gte, gt, lte, lt, eq or neq)"
                ));
            }
        };
        let kind = match rule.correlation_type {
            CorrelationType::EventCount => Kind::EventCount,
            CorrelationType::ValueCount => Kind::ValueCount {
                fields: field.filter(|f| !f.is_empty()).ok_or(format!(
                    "correlation {id}: value_count needs condition.field"
                ))?,
            },
            CorrelationType::Temporal => Kind::Temporal,
            CorrelationType::TemporalOrdered => Kind::TemporalOrdered,
            other => {
                return Err(format!(
                    "correlation {id}: type {} is not supported (event_count, value_count, temporal, temporal_ordered are)",
                    other.as_str()
                ));
            }
        };
        let largest = predicates.iter().map(|(_, v)| *v).max().unwrap_or(0);
        if largest > MAX_THRESHOLD {
            return Err(format!(
                "correlation {id}: a threshold of {largest} is above {MAX_THRESHOLD}, which bounded state cannot count"
            ));
        }
        Ok(Spec {
            id,
            name: rule.name.clone(),
            kind,
            rules: rule.rules.clone(),
            group_by: rule.group_by.clone(),
            timespan: rule.timespan.seconds as i64,
            predicates,
            cap: (largest as usize + 1).max(1),
            generate: rule.generate,
            meta: Meta {
                title: rule.title.clone(),
                severity: Severity::from_sigma(rule.level),
                tags: rule.tags.clone(),
                description: rule.description.clone(),
                falsepositives: rule.falsepositives.clone(),
                origin: origin.clone(),
            },
        })
    }

    /// Whether every predicate holds for `value`.
    pub fn condition_holds(&self, value: u64) -> bool {
        self.predicates.iter().all(|(op, t)| match op {
            ConditionOperator::Lt => value < *t,
            ConditionOperator::Lte => value <= *t,
            ConditionOperator::Gt => value > *t,
            ConditionOperator::Gte => value >= *t,
            ConditionOperator::Eq => value == *t,
            ConditionOperator::Neq => value != *t,
        })
    }

    /// Whether `reference` (from another rule's `rules:`) names this one.
    pub fn is_named(&self, reference: &str) -> bool {
        self.id == reference || self.name.as_deref() == Some(reference)
    }
}
