//! A rule's prefilter: a test on one field's value that every match of the
//! rule passes, made from the rule's own items on that field and answered
//! from a table of values seen before. A rule tested on every record (the
//! index cannot narrow it) whose condition needs one of several detections,
//! each reading the same field (`userAgent` contains a scanner's name, or is
//! TruffleHog's), is then passed over with one look-up for most records,
//! instead of testing each detection.

use std::borrow::Cow;

use rsigma_eval::event::EventValue;

use super::{Cond, Detection, Item};
use crate::event::{FieldPath, Record};
use crate::rules::matcher::Match;
use crate::rules::memo;

#[derive(Debug, Clone)]
pub(super) struct Prefilter {
    field: FieldPath,
    /// One list per detection the condition needs one of: the matchers of
    /// its items on `field`, all of which a match of it passes.
    any: Vec<Vec<Match>>,
    /// Its key in the table of values seen before.
    owner: u64,
}

impl Prefilter {
    /// The prefilter of the rule with these detections and conditions (it
    /// matches when one of the conditions holds), when there is one worth
    /// its look-up.
    pub(super) fn build(detections: &[Detection], conditions: &[Cond]) -> Option<Prefilter> {
        let mut needed = Vec::new();
        for condition in conditions {
            needed.extend(required(condition)?);
        }
        needed.sort_unstable();
        needed.dedup();
        let Some(Detection::AllOf(first)) = detections.get(*needed.first()?) else {
            return None;
        };
        first.iter().filter(|i| usable(i)).find_map(|candidate| {
            let field = candidate.field.as_ref()?;
            if matches!(field.as_str(), "eventName" | "eventSource") {
                // The calls' own table answers for these.
                return None;
            }
            let any = needed
                .iter()
                .map(|&d| match detections.get(d)? {
                    Detection::AllOf(items) => {
                        let on: Vec<Match> = items
                            .iter()
                            .filter(|i| usable(i) && i.field.as_ref() == Some(field))
                            .map(|i| i.matcher.clone())
                            .collect();
                        (!on.is_empty()).then_some(on)
                    }
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            let worth = any.len() > 1 || any.iter().flatten().any(costly);
            worth.then(|| Prefilter {
                field: field.clone(),
                any,
                owner: memo::new_owner(),
            })
        })
    }

    /// Whether `record` may match: false only when no needed detection can.
    pub(super) fn passes(&self, record: &Record) -> bool {
        let Some(value) = record.field_at(&self.field) else {
            // Every item it holds needs the field.
            return false;
        };
        match &value {
            EventValue::Str(s) => memo::remembered(self.owner, s, |s| {
                self.test(&EventValue::Str(Cow::Borrowed(s)), record)
            }),
            other => self.test(other, record),
        }
    }

    fn test(&self, value: &EventValue, record: &Record) -> bool {
        self.any
            .iter()
            .any(|all| all.iter().all(|m| m.matches(value, record)))
    }
}

/// An item a prefilter can hold: it tests its field's value alone, and a
/// missing field fails it.
fn usable(item: &Item) -> bool {
    item.field.is_some()
        && item.exists.is_none()
        && item.keyword.is_none()
        && !item.null
        && item.matcher.reads_only_its_value()
}

/// Matchers that cost more than the look-up of an answer.
fn costly(m: &Match) -> bool {
    match m {
        Match::Substrings { .. } | Match::Regex { .. } => true,
        Match::AnyOf(list) | Match::AllOf(list) => list.iter().any(costly),
        Match::Lowered { children, .. } => children.iter().any(costly),
        Match::Not(inner) => costly(inner),
        Match::Str { .. } | Match::Other(_) => false,
    }
}

/// Detections one of which must match for `condition` to hold; `None`
/// when it can hold without any (under a `not`).
fn required(condition: &Cond) -> Option<Vec<usize>> {
    match condition {
        Cond::Detection(i) => Some(vec![*i]),
        Cond::Never => Some(Vec::new()),
        Cond::And(all) => all.iter().find_map(required),
        Cond::Or(any) => {
            let mut needed = Vec::new();
            for c in any {
                needed.extend(required(c)?);
            }
            Some(needed)
        }
        Cond::Not(_) => None,
        Cond::AtLeast(0, _) => None,
        Cond::AtLeast(_, of) => Some(of.clone()),
        Cond::All(of) => of.first().map(|&i| vec![i]),
    }
}

#[cfg(test)]
mod tests {
    use crate::event::Record;
    use crate::rules::{RuleOrigin, load_text};

    fn rule(detection: &str) -> crate::rules::Rule {
        let text = format!(
            "title: t\nid: t\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n{detection}\nlevel: high\n"
        );
        let mut loaded = load_text(
            &text,
            RuleOrigin::File {
                path: "t.yml".into(),
            },
        );
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        loaded.rules.remove(0)
    }

    #[test]
    fn a_rule_needing_one_of_its_user_agent_detections_is_passed_over_by_that_field() {
        let tools = rule(
            "  tools:\n    userAgent|contains: [scanner, pacu]\n  truffle:\n    eventName: GetCallerIdentity\n    userAgent|contains: trufflehog\n  filter:\n    errorCode|exists: true\n  condition: (tools or truffle) and not filter",
        );
        let prefilter = tools.program.as_ref().and_then(|p| p.prefilter.as_ref());
        assert_eq!(prefilter.map(|p| p.field.as_str()), Some("userAgent"));
        let cases = [
            (
                r#"{"userAgent":"Pacu/1.0 (a long enough user agent)","eventName":"ListUsers"}"#,
                true,
                true,
            ),
            (
                r#"{"userAgent":"TruffleHog v3 from a long enough agent","eventName":"GetCallerIdentity"}"#,
                true,
                true,
            ),
            (
                r#"{"userAgent":"TruffleHog v3 from a long enough agent","eventName":"ListUsers"}"#,
                true,
                false,
            ),
            (
                r#"{"userAgent":"aws-cli/2.15 Python/3.11 a benign agent","eventName":"ListUsers"}"#,
                false,
                false,
            ),
            (r#"{"userAgent":7,"eventName":"ListUsers"}"#, false, false),
            (r#"{"eventName":"ListUsers"}"#, false, false),
        ];
        for (text, passes, matches) in cases {
            let record = Record::parse(text).expect("valid record");
            // Twice: the second answer comes from the table.
            for _ in 0..2 {
                assert_eq!(prefilter.map(|p| p.passes(&record)), Some(passes), "{text}");
                assert_eq!(tools.matches(&record), matches, "{text}");
                assert_eq!(tools.matches_reference(&record), matches, "{text}");
            }
        }
        // The built-in scanner rule, tested on every record, is one.
        let builtin = crate::rules::builtin_rules();
        let scanner = builtin
            .rules
            .iter()
            .find(|r| r.id == "aws-attacker-tool-user-agent")
            .and_then(|r| r.program.as_ref()?.prefilter.as_ref());
        assert_eq!(scanner.map(|p| p.field.as_str()), Some("userAgent"));
        // Nothing to pass over by: a match may need no detection, only
        // `eventName`, or a single cheap test.
        for detection in [
            "  tools:\n    userAgent|contains: [scanner, pacu]\n  condition: not tools",
            "  a:\n    eventName: A\n  b:\n    eventName: B\n  condition: a or b",
            "  a:\n    userAgent: TruffleHog\n  condition: a",
            "  a:\n    userAgent|contains: pacu\n  b:\n    sourceIPAddress: 1.2.3.4\n  condition: a or b",
        ] {
            let r = rule(detection);
            assert!(
                r.program.as_ref().is_some_and(|p| p.prefilter.is_none()),
                "{detection}"
            );
        }
    }
}
