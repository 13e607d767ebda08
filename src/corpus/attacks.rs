//! The attack sprinkle: the built-in rules' own examples of what they must
//! fire on, copied into the background with fresh ids and times. The rules
//! each copy fires (at the manifest's level and above) are recorded, so the
//! corpus says what a scan of it must report.

use super::template::{Fill, Template};
use crate::event::Record;
use crate::rules::{RuleSet, Severity};

/// An example record of an alerting rule.
#[derive(Debug)]
pub struct Attack {
    pub rule: String,
    pub template: Template,
}

/// The lowest level counted in the manifest's expected alerts.
pub const EXPECTED_LEVEL: Severity = Severity::Medium;

/// Every built-in rule that alerts at [`EXPECTED_LEVEL`] or above contributes
/// its matching examples that still fire it once re-identified and re-timed;
/// with `feeders`, so do the rules correlations count, whatever their level.
pub fn candidates(rules: &RuleSet, feeders: bool) -> Vec<Attack> {
    let mut attacks = Vec::new();
    let probe = Fill {
        event_id: "00000000-0000-4000-8000-000000000000",
        event_time: "2026-01-01T12:00:00Z",
        request_id: "00000000-0000-4000-8000-000000000001",
    };
    for rule in rules.rules() {
        let feeds = feeders && rule.feeds;
        if !feeds && (!rule.emit || rule.meta.severity < EXPECTED_LEVEL) {
            continue;
        }
        for example in rule.examples.iter().filter(|e| e.expect_match) {
            let Ok(template) = Template::new(example.event.clone()) else {
                continue;
            };
            let mut text = Vec::new();
            template.write(&probe, &mut text);
            if feeds || fires(rules, &text).contains(&rule.id) {
                attacks.push(Attack {
                    rule: rule.id.clone(),
                    template,
                });
            }
        }
    }
    attacks
}

/// The ids of the alerting rules at [`EXPECTED_LEVEL`] or above that fire on
/// the record `text`, sorted.
pub fn fires(rules: &RuleSet, text: &[u8]) -> Vec<String> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Vec::new();
    };
    let Ok(record) = Record::parse(text) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    let mut scratch = Vec::new();
    rules.for_each_match(&record, &mut scratch, |rule| {
        if rule.emit && rule.meta.severity >= EXPECTED_LEVEL {
            ids.push(rule.id.clone());
        }
    });
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pack_offers_an_example_for_most_alerting_rules() {
        let (rules, errors) = crate::rules::load_rule_set(true, &[]);
        assert!(errors.is_empty(), "{errors:?}");
        let attacks = candidates(&rules, false);
        let mut covered: Vec<&str> = attacks.iter().map(|a| a.rule.as_str()).collect();
        covered.dedup();
        let alerting = rules
            .rules()
            .iter()
            .filter(|r| r.emit && r.meta.severity >= EXPECTED_LEVEL)
            .count();
        // Every alerting rule has a matching example (`rules test` checks it),
        // and re-identifying it must not stop it firing.
        assert_eq!(covered.len(), alerting);
    }
}
