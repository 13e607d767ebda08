//! `scan` writes alerts without building them (`rules::write_jsonl_alerts`,
//! all of a record's alerts at once); its bytes must be exactly the contract's
//! `Alert` serialised, for every record of the datasets and every rule that
//! matches one, plus awkward hand-made ones.

mod common;

use trailwatch::alert::{Alert, ObjectRef};
use trailwatch::event::Record;
use trailwatch::rules::load_rule_set;
use trailwatch::rules::{write_jsonl_alerts, write_jsonl_for};

#[test]
fn the_fast_writer_writes_the_contract_byte_for_byte() {
    let (rules, errors) = load_rule_set(true, &[common::sigma_dir()]);
    assert!(errors.is_empty(), "{errors:?}");
    let mut records: Vec<String> = common::all_records()
        .into_iter()
        .map(|(_, v)| v.to_string())
        .collect();
    // Escapes, missing fields, a missing eventID, non-ASCII, nulls.
    records.push(r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","userIdentity":{"type":"IAMUser","userName":"a\"b\\c\u00e9"},"sourceIPAddress":null}"#.into());
    records.push(r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","userAgent":"a\u0001b\u007f\u001f","awsRegion":"\u2028"}"#.into());
    records.push(r#"{"eventID":"x\ty","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","responseElements":{"ConsoleLogin":"Failure"},"userAgent":"Mozilla ☃"}"#.into());
    let object = ObjectRef {
        bucket: "b".into(),
        key: "AWSLogs/1/CloudTrail/k\"ey.json.gz".into(),
    };
    let mut scratch = Vec::new();
    let mut checked = 0;
    let mut several = 0;
    for text in &records {
        let record = Record::parse(text).expect("record");
        for object in [None, Some(&object)] {
            let mut matched = Vec::new();
            rules.for_each_match(&record, &mut scratch, |rule| matched.push(rule));
            several += usize::from(matched.len() > 1);
            let mut all_slow = Vec::new();
            for rule in &matched {
                let mut fast = Vec::new();
                write_jsonl_for(&mut fast, rule, &record, object, "2026-11-22T00:00:00Z")
                    .expect("writes");
                let alert =
                    Alert::for_match(rule, &record, object.cloned(), "2026-11-22T00:00:00Z");
                let mut slow = serde_json::to_vec(&alert).expect("serialises");
                slow.push(b'\n');
                assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&slow),
                    "rule {}",
                    rule.id
                );
                all_slow.extend_from_slice(&slow);
                checked += 1;
            }
            // All of the record's alerts at once: the same lines, in order.
            let mut all_fast = b"previous output\n".to_vec();
            write_jsonl_alerts(
                &mut all_fast,
                &matched,
                &record,
                object,
                "2026-11-22T00:00:00Z",
            )
            .expect("writes");
            assert_eq!(
                String::from_utf8_lossy(&all_fast["previous output\n".len()..]),
                String::from_utf8_lossy(&all_slow),
                "{text}"
            );
        }
    }
    assert!(checked > 1000, "only {checked} alerts compared");
    assert!(several > 10, "only {several} records with several alerts");
}
