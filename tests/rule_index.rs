//! The eventName/eventSource/userIdentity.type/errorCode index must find
//! exactly the matches of testing every rule: a property test over dataset
//! records with their name, source, principal type and error code rewritten (case changes, other
//! names, non-string values, absent).

mod common;

use proptest::prelude::*;
use serde_json::{Value, json};
use trailwatch::event::Record;
use trailwatch::rules::{RuleSet, load_rule_set};

fn rules() -> RuleSet {
    let (set, errors) = load_rule_set(true, &[common::sigma_dir()]);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

fn ids_indexed(set: &RuleSet, record: &Record) -> Vec<String> {
    let mut ids = Vec::new();
    let mut scratch = Vec::new();
    set.for_each_match(record, &mut scratch, |r| ids.push(r.id.clone()));
    ids
}

fn ids_full(set: &RuleSet, record: &Record) -> Vec<String> {
    set.matches_full_scan(record)
        .into_iter()
        .map(|r| r.id.clone())
        .collect()
}

fn field_values(records: &[Value], field: &str) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .filter_map(|r| {
            field
                .split('.')
                .try_fold(r, |v, k| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A rewrite of one field: keep, another value (with its case changed or
/// not), a non-string value, or removed.
fn rewrite(pool: Vec<String>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        4 => (proptest::sample::select(pool.clone()), 0..3u8).prop_map(|(s, case)| Some(json!(match case {
            0 => s,
            1 => s.to_lowercase(),
            _ => s.to_uppercase(),
        }))),
        1 => "[A-Za-z]{1,12}".prop_map(|s| Some(json!(s))),
        // Names the prefix index keys on (`eventName|startswith`), in any case.
        1 => "(List|Describe|LIST|describe|Get|Lis)[A-Za-z]{0,8}".prop_map(|s| Some(json!(s))),
        1 => proptest::sample::select(pool.clone()).prop_map(|s| Some(json!([s, "Other"]))),
        1 => Just(Some(json!(7))),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!("__remove__"))),
    ]
}

#[test]
fn every_dataset_record_gets_the_same_matches_through_the_index() {
    let set = rules();
    let mut matched = 0;
    for (label, value) in common::all_records() {
        let text = value.to_string();
        let Ok(record) = Record::parse(&text) else {
            continue;
        };
        let full = ids_full(&set, &record);
        assert_eq!(ids_indexed(&set, &record), full, "{label}");
        matched += full.len();
    }
    assert!(
        matched > 100,
        "the datasets should match many rules, got {matched}"
    );
}

#[test]
fn rules_on_a_name_prefix_are_indexed_by_it() {
    let set = rules();
    let unindexed: Vec<&str> = set.unindexed().map(|r| r.id.as_str()).collect();
    // `eventName|startswith: [List, Describe]` or one of 21 names.
    assert!(
        !unindexed.contains(&"aws-enumeration-call"),
        "{unindexed:?}"
    );
    let names = |name: &str| {
        let text = json!({"eventName": name, "eventSource": "ec2.amazonaws.com",
            "eventTime": "2026-11-01T10:00:00Z",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"}})
        .to_string();
        let record = Record::parse(&text).expect("record");
        ids_indexed(&set, &record)
    };
    assert!(names("DescribeInstances").contains(&"aws-enumeration-call".to_owned()));
    assert!(names("listbuckets").contains(&"aws-enumeration-call".to_owned()));
    assert!(names("GetCallerIdentity").contains(&"aws-enumeration-call".to_owned()));
    assert!(!names("RunInstances").contains(&"aws-enumeration-call".to_owned()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn indexed_equals_full_scan(
        (base, name, source, principal, error) in {
            let records: Vec<Value> = common::all_records().into_iter().map(|(_, r)| r).collect();
            let names = field_values(&records, "eventName");
            let sources = field_values(&records, "eventSource");
            let types = field_values(&records, "userIdentity.type");
            let errors = field_values(&records, "errorCode");
            (
                proptest::sample::select(records),
                rewrite(names),
                rewrite(sources),
                rewrite(types),
                rewrite(errors),
            )
        }
    ) {
        let set = rules_cached();
        let mut record = base;
        for (field, new) in [("eventName", name), ("eventSource", source), ("errorCode", error)] {
            match new {
                Some(Value::String(s)) if s == "__remove__" => {
                    if let Some(o) = record.as_object_mut() { o.remove(field); }
                }
                Some(v) => record[field] = v,
                None => {}
            }
        }
        if let Some(identity) = record.get_mut("userIdentity").and_then(Value::as_object_mut) {
            match principal {
                Some(Value::String(s)) if s == "__remove__" => {
                    identity.remove("type");
                }
                Some(v) => {
                    identity.insert("type".into(), v);
                }
                None => {}
            }
        }
        let text = record.to_string();
        let parsed = Record::parse(&text).expect("record parses");
        prop_assert_eq!(ids_indexed(set, &parsed), ids_full(set, &parsed));
    }
}

fn rules_cached() -> &'static RuleSet {
    static SET: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    SET.get_or_init(rules)
}
