use super::*;
use crate::rules::{RuleOrigin, load_text};

const RULES: &str = r#"
title: Secret read
id: t-secret-read
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: GetSecretValue}
  condition: selection
level: informational
---
title: Many secrets read
id: t-secrets-burst
correlation:
  type: event_count
  rules: [t-secret-read]
  group-by: [userIdentity.arn]
  timespan: 10m
  condition: {gte: 5}
level: medium
---
title: Enumeration call
id: t-enum-call
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName|startswith: [List, Describe]}
  condition: selection
level: informational
---
title: Broad enumeration
id: t-enum-burst
correlation:
  type: value_count
  rules: [t-enum-call]
  group-by: [userIdentity.arn]
  timespan: 10m
  condition: {gte: 3, field: eventName}
level: medium
---
title: Console failure
id: t-login-fail
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: ConsoleLogin, responseElements.ConsoleLogin: Failure}
  condition: selection
level: informational
---
title: Console success
id: t-login-ok
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: ConsoleLogin, responseElements.ConsoleLogin: Success}
  condition: selection
level: informational
---
title: Brute force
id: t-brute
correlation:
  type: event_count
  rules: [t-login-fail]
  group-by: [sourceIPAddress]
  timespan: 10m
  condition: {gte: 3}
level: medium
---
title: Success after brute force
id: t-brute-success
correlation:
  type: temporal_ordered
  rules: [t-brute, t-login-ok]
  group-by: [sourceIPAddress]
  timespan: 30m
level: high
"#;

fn engine() -> (Correlator, Vec<Rule>) {
    let loaded = load_text(
        RULES,
        RuleOrigin::File {
            path: "test.yml".into(),
        },
    );
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut rules = loaded.rules;
    let (c, errors) = Correlator::build(loaded.correlations, &mut rules);
    assert!(errors.is_empty(), "{errors:?}");
    (c.expect("an engine"), rules)
}

fn record(n: usize, t: i64, name: &str, arn: &str, extra: &str) -> String {
    format!(
        r#"{{"eventID":"e{n}","eventTime":"{}","eventName":"{name}","sourceIPAddress":"198.51.100.7","userIdentity":{{"type":"IAMUser","arn":"{arn}"}}{extra}}}"#,
        rfc3339(t)
    )
}

/// Feeds `text` to the engine through the rules it matches.
fn feed(c: &mut Correlator, rules: &[Rule], text: &str) {
    let record = Record::parse(text).expect("record");
    let matched: Vec<&Rule> = rules.iter().filter(|r| r.matches(&record)).collect();
    c.process(&record, &matched, None, "2026-01-01T00:00:00Z");
}

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

#[test]
fn seen_keys_are_stable() {
    // Stored in the state store: they must never change. Computed
    // independently (FNV-1a 64 of `aws-access-denied \0 e1` in Python).
    assert_eq!(
        seen_key("aws-access-denied", "e1"),
        -7_072_197_006_818_108_883
    );
    assert_ne!(seen_key("ab", "c"), seen_key("a", "bc"));
}

#[test]
fn a_burst_is_one_alert_then_one_summary_and_its_state_stays_bounded() {
    let (mut c, rules) = engine();
    // 20,000 reads by one principal over five minutes.
    for n in 0..20_000 {
        let t = T0 + (n as i64 * 300) / 20_000;
        feed(&mut c, &rules, &record(n, t, "GetSecretValue", "arn:a", ""));
    }
    let open = c.take_pending();
    assert_eq!(open.len(), 1, "one alert for the burst");
    let alert = &open[0].alert;
    assert_eq!(alert.rule.id, "t-secrets-burst");
    assert_eq!(alert.count, 5);
    assert_eq!(alert.related_event_ids, ["e0", "e1", "e2", "e3"]);
    assert_eq!(alert.event.id.as_deref(), Some("e4"));
    let burst = alert.burst.as_ref().expect("burst");
    assert_eq!(
        (burst.id.as_str(), burst.state.as_str()),
        (alert.id.as_str(), "open")
    );
    assert_eq!(
        alert.id,
        correlation_alert_id("t-secrets-burst", "userIdentity.arn=arn:a", &rfc3339(T0))
    );
    // Bounded: the window holds the newest `cap` events, the sample 100.
    let group = c.groups.values().next().expect("a group");
    match &group.window {
        Window::Count(hits) => assert_eq!(hits.len(), 6),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        group.burst.as_ref().map(|b| b.sample.len()),
        Some(SAMPLE_MAX)
    );

    c.close_all();
    let summary = c.take_pending();
    assert_eq!(summary.len(), 1);
    let s = &summary[0].alert;
    assert_eq!(s.count, 20_000);
    assert_eq!(s.id, crate::alert::burst_summary_id(&alert.id));
    assert!(s.related_event_ids.len() < SAMPLE_MAX + 1);
    let b = s.burst.as_ref().expect("burst");
    assert_eq!(
        (b.id.as_str(), b.state.as_str()),
        (alert.id.as_str(), "closed")
    );
    assert_eq!(b.first, rfc3339(T0));
    assert_eq!(b.last, rfc3339(T0 + 299));
    assert_eq!(c.group_count(), 0);
}

#[test]
fn a_burst_closes_after_a_timespan_without_the_condition_and_a_new_one_opens() {
    let (mut c, rules) = engine();
    for n in 0..5 {
        feed(
            &mut c,
            &rules,
            &record(n, T0 + n as i64, "GetSecretValue", "arn:a", ""),
        );
    }
    // Two more inside the burst, then quiet for more than ten minutes.
    feed(
        &mut c,
        &rules,
        &record(5, T0 + 100, "GetSecretValue", "arn:a", ""),
    );
    feed(
        &mut c,
        &rules,
        &record(6, T0 + 200, "GetSecretValue", "arn:a", ""),
    );
    for n in 7..12 {
        feed(
            &mut c,
            &rules,
            &record(n, T0 + 2000 + n as i64, "GetSecretValue", "arn:a", ""),
        );
    }
    let alerts = c.take_pending();
    let kinds: Vec<(&str, u64)> = alerts
        .iter()
        .map(|d| {
            (
                d.alert.burst.as_ref().map_or("", |b| b.state.as_str()),
                d.alert.count,
            )
        })
        .collect();
    assert_eq!(kinds, [("open", 5), ("closed", 7), ("open", 5)]);
    assert_ne!(alerts[0].alert.id, alerts[2].alert.id);
}

#[test]
fn groups_are_separate_and_a_burst_that_did_not_grow_has_no_summary() {
    let (mut c, rules) = engine();
    for n in 0..10 {
        let arn = if n % 2 == 0 { "arn:a" } else { "arn:b" };
        feed(
            &mut c,
            &rules,
            &record(n, T0 + n as i64, "GetSecretValue", arn, ""),
        );
    }
    c.close_all();
    let alerts = c.take_pending();
    assert_eq!(alerts.len(), 2, "one per principal, no summaries");
    assert!(alerts.iter().all(|d| d.alert.count == 5));
}

#[test]
fn value_count_counts_distinct_values_in_bounded_state() {
    let (mut c, rules) = engine();
    // The same call many times: one distinct value.
    for n in 0..50 {
        feed(
            &mut c,
            &rules,
            &record(n, T0 + n as i64, "ListUsers", "arn:a", ""),
        );
    }
    assert!(c.take_pending().is_empty());
    feed(
        &mut c,
        &rules,
        &record(50, T0 + 60, "ListRoles", "arn:a", ""),
    );
    assert!(c.take_pending().is_empty());
    feed(
        &mut c,
        &rules,
        &record(51, T0 + 61, "DescribeVpcs", "arn:a", ""),
    );
    let alerts = c.take_pending();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert.count, 3);
    let group = c.groups.values().next().expect("a group");
    match &group.window {
        Window::Values(values) => assert!(values.len() <= 4),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_correlation_of_a_correlation_fires_in_order_only() {
    let fail = r#","responseElements":{"ConsoleLogin":"Failure"}"#;
    let ok = r#","responseElements":{"ConsoleLogin":"Success"}"#;
    // Success first, then failures: not in order.
    let (mut c, rules) = engine();
    feed(&mut c, &rules, &record(0, T0, "ConsoleLogin", "arn:a", ok));
    for n in 1..4 {
        feed(
            &mut c,
            &rules,
            &record(n, T0 + n as i64, "ConsoleLogin", "arn:a", fail),
        );
    }
    let ids: Vec<String> = c
        .take_pending()
        .into_iter()
        .map(|d| d.alert.rule.id)
        .collect();
    assert_eq!(ids, ["t-brute"]);
    // Then a success: the ordered correlation fires.
    feed(
        &mut c,
        &rules,
        &record(9, T0 + 60, "ConsoleLogin", "arn:a", ok),
    );
    let alerts = c.take_pending();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert.rule.id, "t-brute-success");
    assert_eq!(alerts[0].alert.event.id.as_deref(), Some("e9"));
}

#[test]
fn a_restart_inside_a_burst_neither_alerts_again_nor_counts_twice() {
    let (mut c, rules) = engine();
    for n in 0..8 {
        feed(
            &mut c,
            &rules,
            &record(n, T0 + n as i64, "GetSecretValue", "arn:a", ""),
        );
    }
    assert_eq!(c.take_pending().len(), 1);
    let saved = c.export();
    let (mut again, rules) = engine();
    assert!(again.import(saved));
    // The same records again (an object re-read), then two new ones.
    for n in 0..10 {
        feed(
            &mut again,
            &rules,
            &record(n, T0 + n as i64, "GetSecretValue", "arn:a", ""),
        );
    }
    assert!(again.take_pending().is_empty());
    again.close_all();
    let summary = again.take_pending();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].alert.count, 10);
}

#[test]
fn a_state_from_another_version_is_refused() {
    let (mut c, _) = engine();
    let old = Snapshot {
        state: serde_json::json!({"engine": {}, "pending": []}),
        seen: Vec::new(),
    };
    assert!(!c.import(old));
}

#[test]
fn in_scan_a_burst_whose_events_come_back_resumes_under_its_id() {
    let (mut c, rules) = engine();
    c.hold_summaries_to_end();
    // A region's burst, then a day later (another region's tree comes
    // first in key order), then the first region's burst again.
    let burst = |c: &mut Correlator, from: usize| {
        for n in from..from + 10 {
            let t = T0 + (n % 10) as i64;
            feed(c, &rules, &record(n, t, "GetSecretValue", "arn:a", ""));
        }
    };
    burst(&mut c, 0);
    for n in 100..110 {
        feed(
            &mut c,
            &rules,
            &record(n, T0 + 86_400 + n as i64, "GetSecretValue", "arn:a", ""),
        );
    }
    burst(&mut c, 200);
    c.close_all();
    let alerts = c.take_pending();
    let ids: Vec<&str> = alerts.iter().map(|d| d.alert.id.as_str()).collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an id was used twice: {ids:?}");
    // Two bursts (the day apart), each opened once and summed up once.
    let opened = alerts
        .iter()
        .filter(|d| d.alert.burst.as_ref().is_some_and(|b| b.state == "open"))
        .count();
    assert_eq!(opened, 2);
    let counts: Vec<u64> = alerts
        .iter()
        .filter(|d| d.alert.burst.as_ref().is_some_and(|b| b.state == "closed"))
        .map(|d| d.alert.count)
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 30, "{counts:?}");
}

const FIRST_SEEN: &str = r#"
title: Sensitive call
id: t-sensitive
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: [CreateUser, AttachUserPolicy, CreateAccessKey]}
  condition: selection
level: informational
---
title: First sensitive call
id: t-first-sensitive
correlation:
  type: new_value
  rules: [t-sensitive]
  group-by: [userIdentity.arn]
  timespan: 30d
  condition:
    field: eventName
trailwatch.learning: 7d
trailwatch.max_values: 3
level: medium
"#;

fn first_seen_engine() -> (Correlator, Vec<Rule>) {
    let loaded = load_text(
        FIRST_SEEN,
        RuleOrigin::File {
            path: "first.yml".into(),
        },
    );
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert!(loaded.correlations[0].new_value);
    let mut rules = loaded.rules;
    let (c, errors) = Correlator::build(loaded.correlations, &mut rules);
    assert!(errors.is_empty(), "{errors:?}");
    (c.expect("an engine"), rules)
}

const DAY: i64 = 86_400;

#[test]
fn first_seen_alerts_on_new_values_after_learning_whatever_the_order() {
    let events = [
        (0, T0, "CreateUser", "arn:alice"),
        (1, T0 + DAY, "AttachUserPolicy", "arn:alice"),
        // After the week: alice's known call, her new call twice, and a new
        // principal (new, so its call alerts too).
        (2, T0 + 8 * DAY, "CreateUser", "arn:alice"),
        (3, T0 + 8 * DAY + 5, "CreateAccessKey", "arn:alice"),
        (4, T0 + 8 * DAY + 9, "CreateAccessKey", "arn:alice"),
        (5, T0 + 9 * DAY, "CreateUser", "arn:mallory"),
    ];
    let run = |order: &[usize]| -> Vec<(String, String)> {
        let (mut c, rules) = first_seen_engine();
        for &i in order {
            let (n, t, name, who) = events[i];
            feed(&mut c, &rules, &record(n, t, name, who, ""));
        }
        assert!(c.take_pending().is_empty(), "nothing before the flush");
        c.flush_first_seen();
        c.take_pending()
            .into_iter()
            .map(|d| {
                (
                    d.alert.event.id.unwrap_or_default(),
                    d.context.resource.unwrap_or_default(),
                )
            })
            .collect()
    };
    let forward = run(&[0, 1, 2, 3, 4, 5]);
    assert_eq!(
        forward,
        [
            (
                "e3".to_owned(),
                "userIdentity.arn=arn:alice: CreateAccessKey".to_owned()
            ),
            (
                "e5".to_owned(),
                "userIdentity.arn=arn:mallory: CreateUser".to_owned()
            ),
        ]
    );
    assert_eq!(
        run(&[5, 4, 3, 2, 1, 0]),
        forward,
        "the order records came in"
    );
}

#[test]
fn first_seen_state_survives_a_restart_and_stays_bounded() {
    let (mut c, rules) = first_seen_engine();
    // Learning: five distinct calls by five principals (max_values is 3).
    for (n, who) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        feed(
            &mut c,
            &rules,
            &record(n, T0 + n as i64, "CreateUser", who, ""),
        );
    }
    c.flush_first_seen();
    assert!(c.take_pending().is_empty(), "still learning");
    let saved = c.export();
    let text = saved.state.to_string();
    assert_eq!(text.matches("CreateUser").count(), 3, "bounded: {text}");
    let (mut again, rules) = first_seen_engine();
    assert!(again.import(saved));
    // "e" was kept (among the newest): its call is known; "a" was forgotten.
    feed(
        &mut again,
        &rules,
        &record(10, T0 + 8 * DAY, "CreateUser", "e", ""),
    );
    feed(
        &mut again,
        &rules,
        &record(11, T0 + 8 * DAY, "CreateUser", "a", ""),
    );
    again.flush_first_seen();
    let ids: Vec<String> = again
        .take_pending()
        .into_iter()
        .filter_map(|d| d.alert.event.id)
        .collect();
    assert_eq!(ids, ["e11"]);
}

#[test]
fn a_new_value_rule_without_a_field_is_refused_with_its_file() {
    let text = FIRST_SEEN.replace("  condition:\n    field: eventName\n", "");
    let loaded = load_text(
        &text,
        RuleOrigin::File {
            path: "first.yml".into(),
        },
    );
    let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("first.yml") && e.contains("condition")),
        "{errors:?}"
    );
}
