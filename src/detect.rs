//! One object from bytes to alerts: decode records one at a time, run the
//! rule set over each, and report what happened. Runs the same over a file on
//! disk and an S3 body; knows nothing of either.

use std::io::Read;

use crate::decode::{DecodeError, RecordReader};
use crate::event::{MemberStore, Record};
use crate::rules::{Rule, RuleSet};

/// What reading one object produced.
#[derive(Debug, Default)]
pub struct ObjectReport {
    pub records: u64,
    pub alerts: u64,
    pub decompressed_bytes: u64,
    /// Why decoding stopped early; the records before it were still detected.
    pub error: Option<DecodeError>,
}

/// Decodes `input` and calls `on_alerts` for every record that matches rules
/// that alert, with those rules in rule order; the caller builds what it needs
/// from them and the record (`Alert::detected` for the outbox,
/// `rules::write_jsonl_alerts` for `scan`). Every record that matched any
/// rule goes to `on_matched` with all its matches, for the stateful rules:
/// fed at once (`RuleSet::correlate`) or held to be fed in order
/// (`OrderedFeed`).
pub fn detect_object(
    input: impl Read,
    rules: &RuleSet,
    max_decompressed_bytes: u64,
    on_alerts: impl FnMut(&[&Rule], &Record),
    on_matched: impl FnMut(&[&Rule], &Record),
) -> ObjectReport {
    detect_object_seeing(
        input,
        rules,
        max_decompressed_bytes,
        |_| {},
        on_alerts,
        on_matched,
    )
}

/// As `detect_object`, and every record goes to `on_record` first (the
/// activity index), matched or not.
pub fn detect_object_seeing(
    input: impl Read,
    rules: &RuleSet,
    max_decompressed_bytes: u64,
    mut on_record: impl FnMut(&Record),
    mut on_alerts: impl FnMut(&[&Rule], &Record),
    mut on_matched: impl FnMut(&[&Rule], &Record),
) -> ObjectReport {
    let mut report = ObjectReport::default();
    let mut reader = match RecordReader::new(input, max_decompressed_bytes) {
        Ok(reader) => reader,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let mut scratch = Vec::new();
    let mut matched = Vec::new();
    let mut alerting: Vec<&Rule> = Vec::new();
    let mut store = MemberStore::default();
    loop {
        match reader.next_record_in(&mut store) {
            Ok(Some(record)) => {
                report.records += 1;
                on_record(&record);
                matched.clear();
                rules.for_each_match(&record, &mut scratch, |rule| matched.push(rule));
                // A rule a correlation uses with `generate: false` only feeds it.
                alerting.clear();
                alerting.extend(matched.iter().copied().filter(|r| r.emit));
                if !alerting.is_empty() {
                    report.alerts += alerting.len() as u64;
                    on_alerts(&alerting, &record);
                }
                if !matched.is_empty() {
                    // Stateful rules: their alerts wait in the correlator until
                    // the caller commits (or takes) them.
                    on_matched(&matched, &record);
                }
                store.recycle(record);
            }
            Ok(None) => break,
            Err(e) => {
                report.error = Some(e);
                break;
            }
        }
    }
    report.decompressed_bytes = reader.decompressed_bytes();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_is_detected_and_a_broken_one_stops_only_what_follows() {
        let (rules, _) = crate::rules::load_rule_set(true, &[]);
        let text = br#"{"Records":[
            {"eventID":"e1","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging",
             "eventTime":"2026-11-21T10:00:00Z","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}},
            {"eventID":"e2","eventSource":"s3.amazonaws.com","eventName":"GetObject",
             "eventTime":"2026-11-21T10:00:01Z"},
            {"eventID":"e3", "eventName": }
        ]}"#;
        let (mut alerted, mut matched) = (Vec::new(), 0);
        let report = detect_object(
            &text[..],
            &rules,
            u64::MAX,
            |rules, record| {
                for rule in rules {
                    alerted.push((rule.id.clone(), record.event_id().map(str::to_owned)));
                }
            },
            |_, _| matched += 1,
        );
        assert_eq!(report.records, 2, "the two records before the broken one");
        assert!(report.error.is_some(), "the broken record is reported");
        assert!(
            alerted.contains(&("aws-cloudtrail-stop-logging".into(), Some("e1".into()))),
            "{alerted:?}"
        );
        assert!(alerted.iter().all(|(_, id)| id.as_deref() == Some("e1")));
        assert!(matched >= 1);
    }
}
