//! trailwatch's correlation engine against rsigma's, the reference, on
//! inputs small enough for rsigma (whose state grows with the events in a
//! window). rsigma, left to alert on every event where a condition holds,
//! says when each group's condition holds; from that follows where each of
//! trailwatch's bursts must open (the first hold, and each hold that comes
//! more than a timespan after the group's last one). The two must agree on
//! every burst: rule, group and the event that opened it.

use std::collections::{BTreeMap, BTreeSet};

use rsigma_eval::{CorrelationAction, CorrelationConfig, CorrelationEngine, JsonEvent, ResultBody};
use serde_json::{Value, json};
use trailwatch::event::Record;
use trailwatch::rules::{Correlator, Rule, RuleOrigin, load_text};

const RULES: &str = r#"
title: A
id: d-a
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: A}
  condition: selection
---
title: B
id: d-b
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: B}
  condition: selection
---
title: C
id: d-c
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: C}
  condition: selection
---
title: count A
id: c-count
correlation:
  type: event_count
  rules: [d-a]
  group-by: [user]
  timespan: 60s
  condition: {gte: 3}
---
title: count A or B in a range
id: c-range
correlation:
  type: event_count
  rules: [d-a, d-b]
  group-by: [user]
  timespan: 30s
  condition: {gte: 2, lte: 4}
---
title: distinct targets
id: c-values
correlation:
  type: value_count
  rules: [d-a, d-b, d-c]
  group-by: [user]
  timespan: 60s
  condition: {gte: 3, field: target}
---
title: distinct targets per user and region
id: c-values2
correlation:
  type: value_count
  rules: [d-b, d-c]
  group-by: [user, region]
  timespan: 45s
  condition: {gt: 1, field: target}
---
title: A and B
id: c-temporal
correlation:
  type: temporal
  rules: [d-a, d-b]
  group-by: [user]
  timespan: 60s
  condition: {gte: 2}
---
title: A then C
id: c-ordered
correlation:
  type: temporal_ordered
  rules: [d-a, d-c]
  group-by: [user]
  timespan: 60s
---
title: many A then B
id: c-chain
correlation:
  type: temporal_ordered
  rules: [c-count, d-b]
  group-by: [user]
  timespan: 120s
"#;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

const T0: i64 = 1_767_225_600;

/// `n` events in time order (several may share a second).
fn events(seed: u64, n: usize) -> Vec<(i64, Value)> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut t = T0;
    (0..n)
        .map(|i| {
            t += rng.below(25) as i64;
            let name = ["A", "B", "C", "D"][rng.below(4) as usize];
            let user = ["u1", "u2"][rng.below(2) as usize];
            let region = ["r1", "r2"][rng.below(2) as usize];
            let mut e = json!({"id": format!("e{i}"), "eventID": format!("e{i}"),
                "eventName": name, "user": user, "region": region});
            match rng.below(6) {
                5 => {}
                4 => e["target"] = Value::Null,
                k => e["target"] = json!(["x", "y", "z", "w"][k as usize]),
            }
            (t, e)
        })
        .collect()
}

/// rsigma: the events at which each (correlation, group) holds, in order.
fn rsigma_holds(input: &[(i64, Value)]) -> BTreeMap<(String, String), Vec<(i64, String)>> {
    let collection = rsigma_parser::parse_sigma_yaml(RULES).expect("rules parse");
    let mut engine = CorrelationEngine::new(CorrelationConfig {
        action_on_match: CorrelationAction::Alert,
        ..CorrelationConfig::default()
    });
    engine.add_collection(&collection).expect("rsigma loads");
    let mut holds: BTreeMap<(String, String), Vec<(i64, String)>> = BTreeMap::new();
    for (t, e) in input {
        for result in engine.process_event_at(&JsonEvent::from(e), *t) {
            let ResultBody::Correlation(body) = &result.body else {
                continue;
            };
            let key = body
                .group_key
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let id = result.header.rule_id.clone().unwrap_or_default();
            let event = e["eventID"].as_str().unwrap_or_default().to_owned();
            let list = holds.entry((id, key)).or_default();
            // A chained correlation may report twice for one event.
            if list.last() != Some(&(*t, event.clone())) {
                list.push((*t, event));
            }
        }
    }
    holds
}

/// Where bursts open, given when a group's condition holds.
fn expected_openings(
    holds: &BTreeMap<(String, String), Vec<(i64, String)>>,
    spans: &BTreeMap<&str, i64>,
) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for ((id, key), list) in holds {
        let span = spans[id.as_str()];
        let mut last_hold: Option<i64> = None;
        for (t, event) in list {
            if last_hold.is_none_or(|h| *t > h + span) {
                out.insert((id.clone(), key.clone(), event.clone()));
            }
            last_hold = Some(*t);
        }
    }
    out
}

/// trailwatch: where its bursts opened.
fn trailwatch_openings(input: &[(i64, Value)]) -> BTreeSet<(String, String, String)> {
    let loaded = load_text(
        RULES,
        RuleOrigin::File {
            path: "differential.yml".into(),
        },
    );
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut rules = loaded.rules;
    let (engine, errors) = Correlator::build(loaded.correlations, &mut rules);
    assert!(errors.is_empty(), "{errors:?}");
    let mut engine = engine.expect("an engine");
    let mut out = BTreeSet::new();
    for (t, e) in input {
        let mut e = e.clone();
        let stamp = time::OffsetDateTime::from_unix_timestamp(*t)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        e["eventTime"] = json!(stamp);
        let text = e.to_string();
        let record = Record::parse(&text).expect("record");
        let matched: Vec<&Rule> = rules.iter().filter(|r| r.matches(&record)).collect();
        engine.process(&record, &matched, None, "2026-01-01T00:00:00Z");
        for d in engine.take_pending() {
            let burst = d
                .alert
                .burst
                .as_ref()
                .expect("a correlation alert is a burst's");
            if burst.state == "open" {
                out.insert((
                    d.alert.rule.id.clone(),
                    d.context.resource.clone().unwrap_or_default(),
                    d.alert.event.id.clone().unwrap_or_default(),
                ));
            }
        }
    }
    out
}

#[test]
fn bursts_open_where_rsigma_says_the_conditions_first_hold() {
    let spans: BTreeMap<&str, i64> = [
        ("c-count", 60),
        ("c-range", 30),
        ("c-values", 60),
        ("c-values2", 45),
        ("c-temporal", 60),
        ("c-ordered", 60),
        ("c-chain", 120),
    ]
    .into_iter()
    .collect();
    let mut fired: BTreeSet<String> = BTreeSet::new();
    for seed in 1..=200 {
        let input = events(seed, 150);
        let holds = rsigma_holds(&input);
        let expected = expected_openings(&holds, &spans);
        let got = trailwatch_openings(&input);
        let missing: Vec<_> = expected.difference(&got).collect();
        let extra: Vec<_> = got.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "seed {seed}: bursts rsigma implies but trailwatch did not open: {missing:?}; \
             opened without rsigma: {extra:?}"
        );
        fired.extend(expected.into_iter().map(|(id, _, _)| id));
    }
    // Every correlation type was exercised.
    assert_eq!(fired.len(), spans.len(), "fired: {fired:?}");
}
