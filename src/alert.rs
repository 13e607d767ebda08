//! The alert contract (DESIGN.md) and its deterministic id.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::Record;
use crate::rules::{Rule, Severity};

/// One alert: what the JSONL sink, `scan --format jsonl` and webhooks carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `tw-` and 16 hex digits; receivers deduplicate on it.
    pub id: String,
    pub rule: AlertRule,
    pub event: AlertEvent,
    /// The S3 object the record came from; null for `scan` over plain files.
    pub object: Option<ObjectRef>,
    pub count: u64,
    pub related_event_ids: Vec<String>,
    pub detected_at: String,
    /// The burst this alert opens or sums up (repeats of a correlation, or
    /// of one rule for one principal); absent for an alert of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<BurstInfo>,
}

/// A burst as an alert reports it: its id (the opening alert's), whether it
/// is `open` (the first alert) or `closed` (the summary), and the times of
/// its first and last events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurstInfo {
    pub id: String,
    pub state: String,
    pub first: String,
    pub last: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub tags: Vec<String>,
    /// `builtin`, or the path of the user's rule file.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub id: Option<String>,
    pub name: Option<String>,
    pub source: Option<String>,
    pub time: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub principal: Option<String>,
    pub principal_type: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
}

/// What a sink may show besides the alert contract: the rule's description
/// (what to check) and false positives, and an excerpt of the raw record.
/// Kept beside the alert in the outbox, so that sinks need not know rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertContext {
    pub description: Option<String>,
    pub falsepositives: Vec<String>,
    /// The record as compact JSON, cut at `RECORD_EXCERPT_BYTES`.
    pub record: Option<String>,
    /// What the call acted on (a grouped burst's summary lists them).
    #[serde(default)]
    pub resource: Option<String>,
    /// Never grouped with repeats (trail status alerts; rules that opt out
    /// with `trailwatch.grouping: false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ungrouped: bool,
}

/// An alert with its context, as detection produces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub alert: Alert,
    pub context: AlertContext,
}

/// How much of the raw record an alert keeps for people to read.
pub const RECORD_EXCERPT_BYTES: usize = 2000;

impl AlertEvent {
    /// The record's who, what, where and when.
    pub fn from_record(record: &Record) -> AlertEvent {
        let own = |s: Option<&str>| s.map(str::to_owned);
        AlertEvent {
            id: own(record.event_id()),
            name: own(record.event_name()),
            source: own(record.event_source()),
            time: own(record.event_time()),
            account_id: own(record.account_id()),
            region: own(record.region()),
            principal: own(record.principal()),
            principal_type: own(record.principal_type()),
            source_ip: own(record.source_ip()),
            user_agent: own(record.user_agent()),
            error_code: own(record.error_code()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// The id of a single-record alert: `tw-` and the first 16 hex digits of
/// SHA-256 over `rule id \0 eventID`.
pub fn alert_id(rule_id: &str, event_id: &str) -> String {
    hashed_id(&[rule_id, event_id])
}

/// The id of a correlation alert: over `rule id \0 group key \0 window start`.
pub fn correlation_alert_id(rule_id: &str, group_key: &str, window_start: &str) -> String {
    hashed_id(&[rule_id, group_key, window_start])
}

/// POSIX seconds as RFC 3339 (UTC); empty when out of range.
pub fn rfc3339_at(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The id of a burst's closing summary: over `burst id \0 summary`.
pub fn burst_summary_id(burst_id: &str) -> String {
    hashed_id(&[burst_id, "summary"])
}

fn hashed_id(parts: &[&str]) -> String {
    let id = hashed_id_bytes(parts);
    // Hex digits and `tw-`: ASCII.
    String::from_utf8_lossy(&id).into_owned()
}

/// `tw-` and the first 16 hex digits of SHA-256 over `parts` joined by `\0`.
fn hashed_id_bytes(parts: &[&str]) -> [u8; 19] {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = *b"tw-0000000000000000";
    for (i, byte) in digest[..8].iter().enumerate() {
        id[3 + 2 * i] = HEX[usize::from(byte >> 4)];
        id[4 + 2 * i] = HEX[usize::from(byte & 0xf)];
    }
    id
}

/// A stable identity for a record without `eventID` (rare; synthetic data):
/// a hash of its JSON text, so the alert id is still deterministic.
fn record_key<'r>(record: &'r Record) -> std::borrow::Cow<'r, str> {
    match record.event_id() {
        Some(id) => std::borrow::Cow::Borrowed(id),
        None => {
            let text = serde_json::to_string(&record.to_value()).unwrap_or_default();
            let digest = Sha256::digest(text.as_bytes());
            std::borrow::Cow::Owned(format!("sha256:{}", hex::encode(digest)))
        }
    }
}

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
            rule: AlertRule {
                id: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity.as_str().to_owned(),
                tags: rule.tags.clone(),
                source: rule.origin.label().to_owned(),
            },
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
        let mut excerpt = serde_json::to_string(record).unwrap_or_default();
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
                description: rule.description.clone(),
                falsepositives: rule.falsepositives.clone(),
                record: Some(excerpt),
                resource: resource(record),
                ungrouped: !rule.grouped,
            },
        }
    }

    /// The severity, parsed back from the contract's string.
    pub fn severity(&self) -> Option<Severity> {
        Severity::parse(&self.rule.severity)
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
            title: &rule.title,
            severity: rule.severity.as_str(),
            tags: &rule.tags,
            source: rule.origin.label(),
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
    let fields: [(&[u8], Checked); 11] = [
        (b"{\"id\":", record.str_at_checked("eventID")),
        (b",\"name\":", record.str_at_checked("eventName")),
        (b",\"source\":", record.str_at_checked("eventSource")),
        (b",\"time\":", record.str_at_checked("eventTime")),
        (b",\"account_id\":", record.account_id_checked()),
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

/// What a call acted on: the first identifying request parameter, else all
/// of them (compact JSON); `None` when the record has none.
pub fn resource(record: &Record) -> Option<String> {
    resource_text(record).map(std::borrow::Cow::into_owned)
}

/// As `resource`, borrowing from the record where its text already is the
/// target's.
pub fn resource_text<'r>(record: &'r Record) -> Option<std::borrow::Cow<'r, str>> {
    const NAMES: [&str; 18] = [
        "bucketName",
        "name",
        "trailName",
        "userName",
        "roleName",
        "groupName",
        "policyArn",
        "instanceId",
        "instancesSet",
        "functionName",
        "groupId",
        "secretId",
        "keyId",
        "snapshotId",
        "imageId",
        "detectorId",
        "resourceArn",
        "dBSnapshotIdentifier",
    ];
    record
        .first_json_among("requestParameters", &NAMES)
        .or_else(|| {
            record
                .json_at("requestParameters")
                .filter(|text| text.as_ref() != "null")
        })
}

/// Now, in the contract's format (`2026-11-21T10:09:40Z`).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    now.format(&format)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_contract() {
        // Computed independently: python3 -c "hashlib.sha256(b'r\\0e').hexdigest()[:16]"
        let id = alert_id(
            "aws-cloudtrail-stop-logging",
            "3f5e2c1a-0000-4000-8000-000000000001",
        );
        assert!(id.starts_with("tw-") && id.len() == 19, "{id}");
        assert_eq!(
            id,
            alert_id(
                "aws-cloudtrail-stop-logging",
                "3f5e2c1a-0000-4000-8000-000000000001"
            )
        );
        assert_ne!(
            id,
            alert_id(
                "aws-cloudtrail-delete-trail",
                "3f5e2c1a-0000-4000-8000-000000000001"
            )
        );
        // The separator matters: ("ab","c") and ("a","bc") differ.
        assert_ne!(alert_id("ab", "c"), alert_id("a", "bc"));
        assert_eq!(alert_id("r", "e"), "tw-7a8d860a5a26126b");
    }

    #[test]
    fn now_has_the_contract_shape() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z'));
    }
}
