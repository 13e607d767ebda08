//! The rules' own yes-or-no evaluator must agree with rsigma's `evaluate_rule`
//! (the reference) on every rule and record: the dataset records, the rules'
//! own examples, records with their fields rewritten at random, and
//! hand-made rules for each kind of condition.

mod common;

use proptest::prelude::*;
use serde_json::{Value, json};
use trailwatch::event::Record;
use trailwatch::rules::{Rule, RuleOrigin, RuleSet, load_rule_set, load_text};

fn rules() -> &'static RuleSet {
    static SET: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let (set, errors) = load_rule_set(true, &[common::sigma_dir()]);
        assert!(errors.is_empty(), "{errors:?}");
        set
    })
}

/// The rules that disagree on `text`, as `id: ours vs reference`.
fn disagreements(rules: &[Rule], text: &str) -> Vec<String> {
    let Ok(record) = Record::parse(text) else {
        return Vec::new();
    };
    rules
        .iter()
        .filter_map(|rule| {
            let ours = rule.matches(&record);
            let reference = rule.matches_reference(&record);
            (ours != reference).then(|| format!("{}: {ours} vs {reference}", rule.id))
        })
        .collect()
}

#[test]
fn every_rule_agrees_with_rsigma_on_every_dataset_record_and_example() {
    let set = rules();
    // Every rule of the built-in pack and of SigmaHQ runs as a program.
    let without: Vec<&str> = set
        .rules()
        .iter()
        .filter(|r| !r.has_program())
        .map(|r| r.id.as_str())
        .collect();
    assert!(without.is_empty(), "rules left to rsigma: {without:?}");

    let mut texts: Vec<(String, String)> = common::all_records()
        .into_iter()
        .map(|(label, value)| (label, value.to_string()))
        .collect();
    for rule in set.rules() {
        for example in &rule.examples {
            texts.push((
                format!("{} example {}", rule.id, example.name),
                example.event.to_string(),
            ));
        }
    }
    let mut matched = 0;
    for (label, text) in &texts {
        let wrong = disagreements(set.rules(), text);
        assert!(wrong.is_empty(), "{label}: {wrong:?}");
        if let Ok(record) = Record::parse(text) {
            matched += set.rules().iter().filter(|r| r.matches(&record)).count();
        }
    }
    assert!(
        matched > 500,
        "the records should match many rules, got {matched}"
    );
}

/// Every string leaf of `value`, as a path of keys and indices.
fn string_paths(value: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match value {
        Value::String(_) => out.push(path.clone()),
        Value::Object(map) => {
            for (k, v) in map {
                path.push(json!(k));
                string_paths(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(json!(i));
                string_paths(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn slot<'v>(value: &'v mut Value, path: &[Value]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, step| match step {
        Value::String(k) => v.get_mut(k.as_str()),
        Value::Number(n) => v.get_mut(n.as_u64()? as usize),
        _ => None,
    })
}

/// What a rewrite does to one string leaf.
#[derive(Debug, Clone)]
enum Rewrite {
    Upper,
    Lower,
    Null,
    Number,
    Array,
    Empty,
    Wildcardish,
    /// Letters whose lowercase differs in length or is ASCII (İ, K as the
    /// Kelvin sign), around and inside the value.
    Unicode,
    /// Uppercased, with every K the Kelvin sign, whose lowercase is `k`.
    Kelvin,
    Long,
}

fn apply(value: &mut Value, rewrite: &Rewrite) {
    let Some(s) = value.as_str().map(str::to_owned) else {
        return;
    };
    *value = match rewrite {
        Rewrite::Upper => json!(s.to_uppercase()),
        Rewrite::Lower => json!(s.to_lowercase()),
        Rewrite::Null => Value::Null,
        Rewrite::Number => json!(42),
        Rewrite::Array => json!([s, "other"]),
        Rewrite::Empty => json!(""),
        Rewrite::Wildcardish => json!(format!("*{s}?")),
        Rewrite::Unicode => {
            let mid = s
                .char_indices()
                .nth(s.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            json!(format!(
                "\u{130}{}\u{212a}{}É",
                &s[..mid].to_uppercase(),
                &s[mid..]
            ))
        }
        Rewrite::Kelvin => json!(s.to_uppercase().replace('K', "\u{212a}")),
        Rewrite::Long => json!(format!("{}{s}{}", "X".repeat(300), "y".repeat(10))),
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn rewritten_records_get_the_same_answer(
        (base, picks) in {
            let records: Vec<Value> = common::all_records().into_iter().map(|(_, r)| r).collect();
            (
                proptest::sample::select(records),
                proptest::collection::vec(
                    (any::<proptest::sample::Index>(), prop_oneof![
                        Just(Rewrite::Upper), Just(Rewrite::Lower), Just(Rewrite::Null),
                        Just(Rewrite::Number), Just(Rewrite::Array), Just(Rewrite::Empty),
                        Just(Rewrite::Wildcardish), Just(Rewrite::Unicode), Just(Rewrite::Kelvin), Just(Rewrite::Long),
                    ]),
                    1..6,
                ),
            )
        }
    ) {
        let mut record = base;
        let mut paths = Vec::new();
        string_paths(&record, &mut Vec::new(), &mut paths);
        prop_assume!(!paths.is_empty());
        for (index, rewrite) in &picks {
            let path = index.get(&paths).clone();
            if let Some(leaf) = slot(&mut record, &path) {
                apply(leaf, rewrite);
            }
        }
        let wrong = disagreements(rules().rules(), &record.to_string());
        prop_assert!(wrong.is_empty(), "{wrong:?}");
    }
}

fn rule(detection: &str) -> Rule {
    let text = format!(
        "title: t\nid: t-1\nlogsource:\n  product: aws\n  service: cloudtrail\n\
         detection:\n{detection}\nlevel: high\n"
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
fn each_kind_of_condition_gives_the_expected_answer() {
    let records = [
        json!({"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com",
               "userAgent": "aws-cli/2", "errorCode": null}),
        json!({"eventName": "DeleteTrail", "eventSource": "cloudtrail.amazonaws.com",
               "userAgent": "Boto3", "requestParameters": {"name": "main-trail"}}),
        json!({"eventName": "GetObject", "eventSource": "s3.amazonaws.com",
               "userIdentity": {"type": "Root"}}),
    ];
    // (detection, which of the records it matches)
    let cases: [(&str, [bool; 3]); 10] = [
        (
            "  a:\n    eventName: StopLogging\n  b:\n    eventName: DeleteTrail\n  condition: a or b",
            [true, true, false],
        ),
        (
            "  sel_a:\n    eventName: StopLogging\n  sel_b:\n    eventName: DeleteTrail\n  condition: 1 of sel_*",
            [true, true, false],
        ),
        (
            "  src:\n    eventSource: cloudtrail.amazonaws.com\n  cli:\n    userAgent|startswith: aws-cli\n  condition: all of them",
            [true, false, false],
        ),
        (
            "  x:\n    eventSource: cloudtrail.amazonaws.com\n  y:\n    eventName|endswith: Trail\n  z:\n    userAgent: boto3\n  condition: 2 of them",
            [false, true, false],
        ),
        (
            "  src:\n    eventSource: cloudtrail.amazonaws.com\n  _helper:\n    eventName: Nothing\n  condition: all of them",
            [true, true, false],
        ),
        (
            "  src:\n    eventSource: cloudtrail.amazonaws.com\n  filter:\n    userAgent|contains: boto\n  condition: src and not filter",
            [true, false, false],
        ),
        (
            "  sel:\n    errorCode: null\n  condition: sel",
            [true, true, true],
        ),
        (
            "  sel:\n    requestParameters.name|exists: true\n  condition: sel",
            [false, true, false],
        ),
        (
            "  keywords:\n    - 'main-tr*'\n  condition: keywords",
            [false, true, false],
        ),
        (
            "  sel:\n    userIdentity.type: root\n  re:\n    userAgent|re: '^aws-[a-z]+/\\d'\n  condition: sel or re",
            [true, false, true],
        ),
    ];
    for (detection, expected) in cases {
        let rule = rule(detection);
        assert!(rule.has_program(), "{detection}");
        for (record, want) in records.iter().zip(expected) {
            let text = record.to_string();
            let parsed = Record::parse(&text).expect("a record");
            assert_eq!(rule.matches(&parsed), want, "{detection} on {text}");
            assert_eq!(
                rule.matches_reference(&parsed),
                want,
                "rsigma: {detection} on {text}"
            );
        }
    }
}

#[test]
fn values_that_are_not_ascii_are_lowercased_as_unicode_does() {
    // The Kelvin sign lowercases to an ASCII `k`; `İ` to two characters.
    let cases = [
        (
            "  sel:\n    userAgent|contains: kali\n  condition: sel",
            "\u{212a}ALI-linux",
            true,
        ),
        (
            "  sel:\n    userAgent|startswith: kali\n  condition: sel",
            "\u{212a}ALI",
            true,
        ),
        (
            "  sel:\n    userAgent|endswith: kali\n  condition: sel",
            "X-\u{212a}ALI",
            true,
        ),
        (
            "  sel:\n    userAgent: kali\n  condition: sel",
            "\u{212a}ALI",
            true,
        ),
        (
            "  sel:\n    userAgent: kali\n  condition: sel",
            "\u{130}KALI",
            false,
        ),
        (
            "  sel:\n    userAgent|contains:\n      - pacu\n      - kali\n      - prowler\n      - cloudfox\n  condition: sel",
            "tool \u{212a}ali",
            true,
        ),
    ];
    for (detection, agent, want) in cases {
        let rule = rule(detection);
        let text = json!({"eventName": "ListUsers", "userAgent": agent}).to_string();
        let record = Record::parse(&text).expect("a record");
        assert_eq!(
            rule.matches_reference(&record),
            want,
            "rsigma: {detection} on {agent}"
        );
        assert_eq!(rule.matches(&record), want, "{detection} on {agent}");
    }
}

#[test]
fn a_regex_with_a_required_literal_still_needs_the_whole_pattern() {
    let rule = rule("  sel:\n    userIdentity.arn|re: '.+:assumed-role/aws:.+'\n  condition: sel");
    let cases = [
        ("arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1", true),
        (":assumed-role/aws:x", false),
        ("arn:aws:sts::1:assumed-role/aws:", false),
        ("arn:aws:sts::1:assumed-role/admin/s", false),
        ("arn:aws:sts::1:ASSUMED-ROLE/aws:x", false),
    ];
    for (arn, want) in cases {
        let text = json!({"eventName": "ListUsers", "userIdentity": {"arn": arn}}).to_string();
        let record = Record::parse(&text).expect("a record");
        assert_eq!(rule.matches_reference(&record), want, "rsigma: {arn}");
        assert_eq!(rule.matches(&record), want, "{arn}");
    }
}

/// Detections that read only `eventName` and `eventSource` are remembered
/// by those two values: records that share them but differ elsewhere, or
/// hold a name that is not a string, still get each its own answer, in
/// every order, as rsigma gives it.
#[test]
fn answers_remembered_by_name_and_source_stay_each_record_s_own() {
    let rule = rule(
        "  sel:\n    eventName|startswith: List\n  filter_plane:\n    - eventSource: s3.amazonaws.com\n      eventName: ListObjects\n    - eventSource: kms.amazonaws.com\n  agent:\n    userAgent|contains: cli\n  same:\n    eventName|fieldref: userAgent\n  condition: (sel and not 1 of filter_* and agent) or same",
    );
    assert!(rule.has_program());
    let records = [
        json!({"eventName": "ListObjects", "eventSource": "s3.amazonaws.com", "userAgent": "aws-cli"}),
        json!({"eventName": "ListBuckets", "eventSource": "s3.amazonaws.com", "userAgent": "aws-cli"}),
        json!({"eventName": "ListBuckets", "eventSource": "s3.amazonaws.com", "userAgent": "console"}),
        json!({"eventName": "ListKeys", "eventSource": "kms.amazonaws.com", "userAgent": "aws-cli"}),
        json!({"eventName": "ListKeys", "eventSource": "KMS.amazonaws.com", "userAgent": "aws-cli"}),
        json!({"eventName": ["ListKeys"], "eventSource": "ec2.amazonaws.com", "userAgent": "aws-cli"}),
        json!({"eventName": 7, "eventSource": "ec2.amazonaws.com", "userAgent": "aws-cli"}),
        json!({"eventSource": "ec2.amazonaws.com", "userAgent": "aws-cli"}),
        json!({"eventName": "ListThings", "userAgent": "aws-cli"}),
        json!({"eventName": "ListThings", "eventSource": null, "userAgent": "cli"}),
        json!({"eventName": "aws-cli", "eventSource": "ec2.amazonaws.com", "userAgent": "aws-cli"}),
        json!({"eventName": "aws-cli", "eventSource": "ec2.amazonaws.com", "userAgent": "other"}),
    ];
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    let mut matched = 0;
    // Forward, backward, and each record twice in a row.
    let order: Vec<usize> = (0..texts.len())
        .chain((0..texts.len()).rev())
        .flat_map(|i| [i, i])
        .collect();
    for i in order {
        let parsed = Record::parse(&texts[i]).expect("a record");
        let (ours, reference) = (rule.matches(&parsed), rule.matches_reference(&parsed));
        assert_eq!(ours, reference, "{}", texts[i]);
        matched += usize::from(ours);
    }
    assert!(matched > 0 && matched < 4 * texts.len(), "{matched}");
}
