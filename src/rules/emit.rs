//! Alerts made from rule matches: `Alert::for_match` / `Alert::detected` for
//! the outbox and sinks, and the JSON line writer `scan` uses, which writes
//! the same bytes without building the alert.

use serde::Serialize;

use crate::alert::{
    Alert, AlertContext, AlertEvent, Detected, ObjectRef, RECORD_EXCERPT_BYTES, alert_id,
    hashed_id_bytes, record_key, resource,
};
use crate::event::Record;

use super::Rule;

impl Alert {
    /// The alert for one record matching one rule.
    pub fn for_match(
        rule: &Rule,
        record: &Record,
        object: Option<ObjectRef>,
        detected_at: &str,
    ) -> Alert {
        Alert {
            id: alert_id(&rule.id, &record_key(record)),
            rule: rule.meta.alert_rule(&rule.id),
            event: AlertEvent::from_record(record),
            object,
            count: 1,
            related_event_ids: Vec::new(),
            detected_at: detected_at.to_owned(),
            burst: None,
        }
    }

    /// The alert and its context for one record matching one rule.
    pub fn detected(
        rule: &Rule,
        record: &Record,
        object: Option<ObjectRef>,
        detected_at: &str,
    ) -> Detected {
        let mut excerpt = match record.compact_text() {
            Some(text) => text.to_owned(),
            None => serde_json::to_string(record).unwrap_or_default(),
        };
        if excerpt.len() > RECORD_EXCERPT_BYTES {
            let mut cut = RECORD_EXCERPT_BYTES;
            while !excerpt.is_char_boundary(cut) {
                cut -= 1;
            }
            excerpt.truncate(cut);
            excerpt.push('…');
        }
        Detected {
            alert: Alert::for_match(rule, record, object, detected_at),
            context: AlertContext {
                skip_sinks: Vec::new(),
                description: rule.meta.description.clone(),
                falsepositives: rule.meta.falsepositives.clone(),
                record: Some(excerpt),
                resource: resource(record),
                ungrouped: !rule.grouped,
            },
        }
    }
}

/// Writes the alert for one record matching one rule as a JSON line, the
/// same bytes as `Alert::for_match` serialised, without building it: `scan`
/// writes a line per match, and a rule like SigmaHQ's AssumeRole one matches
/// most records.
pub fn write_jsonl_for(
    out: &mut Vec<u8>,
    rule: &Rule,
    record: &Record,
    object: Option<&ObjectRef>,
    detected_at: &str,
) -> serde_json::Result<()> {
    write_jsonl_alerts(out, &[rule], record, object, detected_at)
}

/// Writes the alerts of one record, one line per rule in `rules`, as
/// `write_jsonl_for` would one by one; the parts that depend only on the
/// record are made once.
pub fn write_jsonl_alerts(
    out: &mut Vec<u8>,
    rules: &[&Rule],
    record: &Record,
    object: Option<&ObjectRef>,
    detected_at: &str,
) -> serde_json::Result<()> {
    let Some((first, rest)) = rules.split_first() else {
        return Ok(());
    };
    let key = record_key(record);
    // The first line is written in full; the others copy its tail.
    let line_start = out.len();
    write_head(out, first, &key);
    let tail_start = out.len();
    out.extend_from_slice(b",\"event\":");
    write_event(out, record);
    out.extend_from_slice(b",\"object\":");
    serde_json::to_writer(&mut *out, &object)?;
    out.extend_from_slice(b",\"count\":1,\"related_event_ids\":[],\"detected_at\":");
    write_str(out, Some(detected_at));
    out.extend_from_slice(b"}\n");
    let tail = tail_start - line_start..out.len() - line_start;
    for rule in rest {
        let at = out.len();
        write_head(out, rule, &key);
        out.extend_from_within(line_start + tail.start..line_start + tail.end);
        debug_assert!(out.len() > at);
    }
    Ok(())
}

/// `{"id":…,"rule":{…}`: the part of an alert line that depends on the rule.
fn write_head(out: &mut Vec<u8>, rule: &Rule, key: &str) {
    let rule_json = rule.alert_json.get_or_init(|| {
        serde_json::to_string(&RuleView {
            id: &rule.id,
            title: &rule.meta.title,
            severity: rule.meta.severity.as_str(),
            tags: &rule.meta.tags,
            source: rule.meta.origin.label(),
        })
        .unwrap_or_default()
    });
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(&hashed_id_bytes(&[&rule.id, key]));
    out.push(b'"');
    out.extend_from_slice(b",\"rule\":");
    out.extend_from_slice(rule_json.as_bytes());
}

/// A string field and whether it is its own JSON text (`str_at_checked`).
type Checked<'r> = Option<(&'r str, bool)>;

/// The alert's `event` object, field by field in `AlertEvent`'s order.
fn write_event(out: &mut Vec<u8>, record: &Record) {
    let fields: [(&[u8], Checked); 13] = [
        (b"{\"id\":", record.str_at_checked("eventID")),
        (b",\"name\":", record.str_at_checked("eventName")),
        (b",\"source\":", record.str_at_checked("eventSource")),
        (b",\"time\":", record.str_at_checked("eventTime")),
        (b",\"account_id\":", record.account_id_checked()),
        // Named only where the config names accounts (the state store does).
        (b",\"account_name\":", None),
        (b",\"account_ou_path\":", None),
        (b",\"region\":", record.str_at_checked("awsRegion")),
        (b",\"principal\":", record.principal_checked()),
        (
            b",\"principal_type\":",
            record.str_at_checked("userIdentity.type"),
        ),
        (b",\"source_ip\":", record.str_at_checked("sourceIPAddress")),
        (b",\"user_agent\":", record.str_at_checked("userAgent")),
        (b",\"error_code\":", record.str_at_checked("errorCode")),
    ];
    for (name, value) in fields {
        out.extend_from_slice(name);
        match value {
            // Read from the record without escapes: its JSON text as it is.
            Some((s, true)) => {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            }
            Some((s, false)) => write_str(out, Some(s)),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

/// A string as serde_json writes it (`null` for `None`): copied whole when
/// nothing in it needs escaping, which is nearly always.
fn write_str(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(s) = value else {
        out.extend_from_slice(b"null");
        return;
    };
    let bytes = s.as_bytes();
    if crate::event::find_string_end(bytes, 0, true) == bytes.len() {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        // Writing a string to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[derive(Serialize)]
struct RuleView<'a> {
    id: &'a str,
    title: &'a str,
    severity: &'a str,
    tags: &'a [String],
    source: &'a str,
}
