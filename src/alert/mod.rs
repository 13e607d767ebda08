//! What detection produces and every later stage carries: the alert contract
//! (DESIGN.md), its severity scale and deterministic ids. Reads only the
//! record type; knows nothing of rules, sinks or AWS.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::Record;

pub mod activity;
pub mod builtin;
pub mod ocsf;
mod sample;
mod severity;

pub use activity::Activity;
pub use severity::Severity;

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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub id: Option<String>,
    pub name: Option<String>,
    pub source: Option<String>,
    pub time: Option<String>,
    pub account_id: Option<String>,
    /// The account's name (Organizations, or `[[accounts]]` in the
    /// config), null when unknown.
    #[serde(default)]
    pub account_name: Option<String>,
    /// The account's organisational-unit path (`Workloads/Prod`; empty
    /// under the root), null when Organizations cannot be read.
    #[serde(default)]
    pub account_ou_path: Option<String>,
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
    /// The record as compact JSON, cut at `RECORD_EXCERPT_BYTES` (the
    /// store keeps it for lookups; sinks cut it to what they carry).
    pub record: Option<String>,
    /// What the call acted on (a grouped burst's summary lists them).
    #[serde(default)]
    pub resource: Option<String>,
    /// Never grouped with repeats (trail status alerts; rules that opt out
    /// with `trailwatch.grouping: false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ungrouped: bool,
    /// Sinks this alert never goes to: a blind-spot alert about a sink
    /// whose alerts are refused is not sent to that sink.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_sinks: Vec<String>,
}

/// An alert with its context, as detection produces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub alert: Alert,
    pub context: AlertContext,
}

/// How much of the raw record an alert keeps for people to read.
pub const RECORD_EXCERPT_BYTES: usize = 128 * 1024;

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
            account_name: None,
            account_ou_path: None,
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
pub(crate) fn hashed_id_bytes(parts: &[&str]) -> [u8; 19] {
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
pub(crate) fn record_key<'r>(record: &'r Record) -> std::borrow::Cow<'r, str> {
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
    /// The severity, parsed back from the contract's string.
    pub fn severity(&self) -> Option<Severity> {
        Severity::parse(&self.rule.severity)
    }
}

/// What a call acted on: the first identifying request parameter, else all
/// of them (compact JSON); `None` when the record has none.
pub fn resource(record: &Record) -> Option<String> {
    resource_text(record).map(std::borrow::Cow::into_owned)
}

/// As `resource`, borrowing from the record where its text already is the
/// target's.
pub fn resource_text<'r>(record: &'r Record) -> Option<std::borrow::Cow<'r, str>> {
    identifying_parameter(record).or_else(|| {
        record
            .json_at("requestParameters")
            .filter(|text| text.as_ref() != "null")
    })
}

/// The request parameters that name a call's target, first wins.
const IDENTIFYING: [&str; 18] = [
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

/// The first identifying request parameter (a bucket, trail, user, role,
/// secret... name) as compact JSON; `None` when the call names none.
pub fn identifying_parameter<'r>(record: &'r Record) -> Option<std::borrow::Cow<'r, str>> {
    record.first_json_ranked("requestParameters", &IDENTIFYING, identifying_rank)
}

/// Where `key` is among `identifying_parameter`'s names (kept in the same
/// order; a test checks them against each other): asked for each request
/// parameter of every grouped match.
fn identifying_rank(key: &str) -> Option<usize> {
    Some(match key {
        "bucketName" => 0,
        "name" => 1,
        "trailName" => 2,
        "userName" => 3,
        "roleName" => 4,
        "groupName" => 5,
        "policyArn" => 6,
        "instanceId" => 7,
        "instancesSet" => 8,
        "functionName" => 9,
        "groupId" => 10,
        "secretId" => 11,
        "keyId" => 12,
        "snapshotId" => 13,
        "imageId" => 14,
        "detectorId" => 15,
        "resourceArn" => 16,
        "dBSnapshotIdentifier" => 17,
        _ => return None,
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
    fn the_identifying_rank_is_the_names_order() {
        for (i, name) in IDENTIFYING.iter().enumerate() {
            assert_eq!(identifying_rank(name), Some(i), "{name}");
        }
        for other in [
            "",
            "Name",
            "names",
            "bucketname",
            "keyID",
            "groupIds",
            "dBSnapshot",
        ] {
            assert_eq!(identifying_rank(other), None, "{other}");
        }
        // The first of the names wins, whatever the order in the record.
        let record = crate::event::Record::parse(
            r#"{"requestParameters":{"keyId":"k","roleName":"r","other":1}}"#,
        )
        .expect("valid");
        assert_eq!(identifying_parameter(&record).as_deref(), Some(r#""r""#));
    }

    #[test]
    fn now_has_the_contract_shape() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z'));
    }
}
