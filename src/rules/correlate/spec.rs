//! A correlation rule compiled for the engine: its type, the rules it
//! references, how it groups, its window and its condition, and what an
//! alert says about it. Only what trailwatch can keep in bounded state is
//! accepted (`event_count`, `value_count`, `temporal`, `temporal_ordered`
//! over sliding windows); anything else is a rule error naming the file.

use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType};

use crate::rules::rule::{RuleMeta, RuleOrigin, meta_of};

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
    /// trailwatch's first-seen extension (`type: new_value`): per group,
    /// the values of `fields` seen; a value not seen before (or not within
    /// the timespan, the values' time to live) alerts once the rule has
    /// learned for `learning` seconds of event time.
    NewValue {
        fields: Vec<String>,
        learning: i64,
        max_values: usize,
    },
}

/// The learning period of a first-seen rule without `trailwatch.learning`.
pub const DEFAULT_LEARNING: i64 = 7 * 86_400;
/// The values a first-seen rule keeps without `trailwatch.max_values`.
pub const DEFAULT_MAX_VALUES: usize = 50_000;

#[derive(Debug, Clone)]
pub struct Spec {
    pub id: String,
    pub name: Option<String>,
    pub kind: Kind,
    /// The referenced rules (ids or names, as written).
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    /// `group_by`'s fields, split once.
    pub group_paths: Vec<crate::event::FieldPath>,
    /// Seconds.
    pub timespan: i64,
    /// All must hold.
    pub predicates: Vec<(ConditionOperator, u64)>,
    /// Events (or distinct values) a group keeps: the largest threshold + 1.
    pub cap: usize,
    pub generate: bool,
    pub meta: RuleMeta,
}

impl Spec {
    /// Compiles `rule`; the error says what is not supported.
    pub fn compile(
        rule: &CorrelationRule,
        origin: &RuleOrigin,
        new_value: bool,
    ) -> Result<Spec, String> {
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
            CorrelationType::ValueCount if new_value => {
                let attr = |name: &str| rule.custom_attributes.get(name);
                let learning = match attr("trailwatch.learning") {
                    None => DEFAULT_LEARNING,
                    Some(v) => {
                        let text = v.as_str().ok_or(format!(
                            "correlation {id}: trailwatch.learning is a duration such as 7d"
                        ))?;
                        rsigma_parser::Timespan::parse(text)
                            .map_err(|e| format!("correlation {id}: trailwatch.learning: {e}"))?
                            .seconds as i64
                    }
                };
                let max_values = match attr("trailwatch.max_values") {
                    None => DEFAULT_MAX_VALUES,
                    Some(v) => v.as_u64().filter(|n| *n > 0).ok_or(format!(
                        "correlation {id}: trailwatch.max_values is a positive number"
                    ))? as usize,
                };
                Kind::NewValue {
                    fields: field
                        .clone()
                        .filter(|f| !f.is_empty())
                        .ok_or(format!("correlation {id}: new_value needs condition.field"))?,
                    learning,
                    max_values,
                }
            }
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
            group_paths: rule
                .group_by
                .iter()
                .map(|f| crate::event::FieldPath::new(f))
                .collect(),
            timespan: rule.timespan.seconds as i64,
            predicates,
            cap: (largest as usize + 1).max(1),
            generate: rule.generate,
            meta: meta_of!(rule, origin),
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
