//! Blind spots raised as alerts: a bucket or its KMS key that becomes
//! unreadable (AccessDenied, a KMS denial) after having been readable, and
//! a rule file that does not load (at start or at a reload). An attacker who
//! breaks delivery with a bucket or key policy change, or a rule that no
//! longer compiles, would otherwise raise nothing. One alert when it starts,
//! one resolving summary when it ends; ids by the trail-status alerts'
//! formula (rule, resource, when), never grouped (DESIGN.md).

use std::collections::BTreeMap;

use crate::alert::builtin::Builtin;
use crate::alert::{AlertEvent, Detected, alert_id, now_rfc3339};

use super::report::TargetReport;

pub const BUCKET_UNREADABLE: &str = "trailwatch-blind-bucket-unreadable";
pub const KMS_DENIED: &str = "trailwatch-blind-kms-denied";
pub const RULE_NOT_LOADED: &str = "trailwatch-blind-rule-not-loaded";

/// The built-in checks that are no Sigma rule: (id, level, title), for
/// `trailwatch rules list`.
pub const CHECKS: &[(&str, &str, &str)] = &[
    (
        super::trail_alerts::NOT_LOGGING,
        "high",
        "CloudTrail trail stopped logging (GetTrailStatus)",
    ),
    (
        super::trail_alerts::DELIVERY_ERROR,
        "high",
        "CloudTrail trail cannot deliver its logs (GetTrailStatus)",
    ),
    (
        BUCKET_UNREADABLE,
        "medium",
        "A trail's bucket became unreadable after having been read (blind spot)",
    ),
    (
        KMS_DENIED,
        "medium",
        "A trail's KMS key refuses decryption after having allowed it (blind spot)",
    ),
    (
        super::silence::CURSOR_SILENT,
        "medium",
        "A cursor (account, region) that delivered went silent past its usual gap (blind spot)",
    ),
    (
        super::silence::ACCOUNT_NO_DELIVERY,
        "medium",
        "An active organisation account from which no read trail delivers (blind spot)",
    ),
    (
        RULE_NOT_LOADED,
        "medium",
        "A rule file stopped loading at a reload (blind spot)",
    ),
    (
        crate::sinks::blind::SINK_DEAD_LETTERS,
        "medium",
        "A sink's alerts go to dead letters (blind spot; never sent to that sink)",
    ),
];

/// A rule file that does not load, since when, and the alert raised for it
/// (none for a failure already there at start: `alert_id` is empty).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleFailure {
    pub since: String,
    pub line: usize,
    pub reason: String,
    pub alert_id: String,
}

/// Where the open rule failures are kept (the state store's kv).
const RULE_FAILURES_KEY: &str = "blind_rules";

/// Compares the rule files that failed to load now with those that had
/// failed before: an alert for each new one, a summary for each that loads
/// again. Returns the alerts and the failures still open.
pub fn rule_transitions(
    open: &BTreeMap<String, RuleFailure>,
    errors: &[crate::rules::RuleError],
    reload: bool,
) -> (Vec<Detected>, BTreeMap<String, RuleFailure>) {
    let mut alerts = Vec::new();
    let mut still = BTreeMap::new();
    for e in errors {
        if still.contains_key(&e.file) {
            continue;
        }
        let failure = match open.get(&e.file) {
            Some(f) => f.clone(),
            None => {
                let since = now_rfc3339();
                let id = if reload {
                    let id = alert_id(RULE_NOT_LOADED, &format!("{}\0{since}", e.file));
                    alerts.push(rule_alert(&id, &e.file, e.line, &e.reason, &since, false));
                    id
                } else {
                    String::new()
                };
                RuleFailure {
                    since,
                    line: e.line,
                    reason: e.reason.clone(),
                    alert_id: id,
                }
            }
        };
        still.insert(e.file.clone(), failure);
    }
    for (file, f) in open
        .iter()
        .filter(|(file, f)| !still.contains_key(*file) && !f.alert_id.is_empty())
    {
        let id = alert_id(RULE_NOT_LOADED, &format!("{}\0resolved", f.alert_id));
        alerts.push(rule_alert(&id, file, f.line, &f.reason, &f.since, true));
    }
    (alerts, still)
}

/// Records the rule files that failed to load (start, reload) in the state
/// store, with the alerts their change calls for; returns how many were new.
pub fn record_rule_failures(
    state: &crate::state::StateStore,
    errors: &[crate::rules::RuleError],
    reload: bool,
) -> crate::state::Result<usize> {
    let open: BTreeMap<String, RuleFailure> = state
        .kv(RULE_FAILURES_KEY)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    let (alerts, still) = rule_transitions(&open, errors, reload);
    if alerts.is_empty() && still == open {
        return Ok(0);
    }
    let json = serde_json::to_string(&still).unwrap_or_else(|_| "{}".into());
    state.set_kv_with_alerts(RULE_FAILURES_KEY, &json, &alerts)
}

fn rule_alert(
    id: &str,
    file: &str,
    line: usize,
    reason: &str,
    since: &str,
    resolved: bool,
) -> Detected {
    let title = if resolved {
        format!("Rule file loads again: {file}")
    } else {
        format!("Blind spot: rule file not loaded: {file}, line {line}")
    };
    let description = if resolved {
        format!("The rule file loads again (it had not since {since}); its rules run.")
    } else {
        "A rule file did not load: its rules do not run, and what they would catch raises \
         nothing until it is fixed. The other rules run. Fix the file (the reason and line \
         are in the record) and reload (SIGHUP)."
            .to_owned()
    };
    Builtin {
        rule: RULE_NOT_LOADED.to_owned(),
        id: id.to_owned(),
        title,
        severity: "medium".into(),
        tags: vec!["attack.defense-evasion".into()],
        event: AlertEvent {
            time: Some(since.to_owned()),
            ..AlertEvent::default()
        },
        description,
        falsepositives: vec!["A rule being edited when the config was reloaded.".into()],
        record: Some(format!("{file}:{line}: {reason}")),
        resource: Some(file.to_owned()),
        ungrouped: true,
        ..Builtin::default()
    }
    .detected()
}

/// Why a bucket cannot be read now, while it was read before.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unreadable {
    /// The rule: bucket denied, or KMS key denied.
    pub rule: String,
    /// When it was first seen (RFC 3339).
    pub since: String,
    /// The first error that said so.
    pub reason: String,
    /// The alert raised for it (the summary's id derives from it).
    pub alert_id: String,
}

/// The denial among a pass's errors for a target, if any: (rule, reason).
fn denial(errors: &[String]) -> Option<(&'static str, &str)> {
    errors.iter().find_map(|e| {
        if e.contains("cannot decrypt") || e.contains("kms:Decrypt") {
            Some((KMS_DENIED, e.as_str()))
        } else if e.contains("access denied") || e.contains("AccessDenied") {
            Some((BUCKET_UNREADABLE, e.as_str()))
        } else {
            None
        }
    })
}

/// Whether this pass read the bucket: listed it, and read objects or had
/// none to read, without a denial.
fn read_fine(now: &TargetReport) -> bool {
    now.reachable && denial(&now.errors).is_none() && (now.processed > 0 || now.listed == 0)
}

/// Carries what `previous` knew into `now` and returns the alerts the change
/// calls for: one when a bucket that was read becomes unreadable, one
/// summary when it is read again.
pub fn transitions(previous: Option<&TargetReport>, now: &mut TargetReport) -> Vec<Detected> {
    let was_read = previous.is_some_and(|p| p.read_before);
    let open = previous.and_then(|p| p.unreadable.clone());
    now.read_before = was_read || read_fine(now);
    match (open, denial(&now.errors)) {
        (None, Some((rule, reason))) if was_read => {
            let since = now_rfc3339();
            let id = alert_id(rule, &format!("{}\0{}\0{since}", now.bucket, prefix(now)));
            let alert = alert(rule, &id, now, reason, &since, false);
            now.unreadable = Some(Unreadable {
                rule: rule.to_owned(),
                since,
                reason: reason.to_owned(),
                alert_id: id,
            });
            vec![alert]
        }
        (Some(open), None) if read_fine(now) => {
            let id = alert_id(&open.rule, &format!("{}\0resolved", open.alert_id));
            now.unreadable = None;
            vec![alert(&open.rule, &id, now, &open.reason, &open.since, true)]
        }
        (open, _) => {
            now.unreadable = open;
            Vec::new()
        }
    }
}

fn prefix(t: &TargetReport) -> &str {
    t.prefix.as_deref().unwrap_or("")
}

fn alert(
    rule: &str,
    id: &str,
    t: &TargetReport,
    reason: &str,
    since: &str,
    resolved: bool,
) -> Detected {
    let kms = rule == KMS_DENIED;
    let what = if kms {
        "cannot decrypt its objects (KMS)"
    } else {
        "cannot be read (access denied)"
    };
    let title = if resolved {
        format!("Readable again: s3://{}/{}", t.bucket, prefix(t))
    } else {
        format!("Blind spot: s3://{}/{} {what}", t.bucket, prefix(t))
    };
    let description = if resolved {
        format!(
            "trailwatch reads this trail's bucket again (unreadable since {since}). Objects \
             delivered meanwhile are read now; check what changed the policy, and back."
        )
    } else if kms {
        "The trail's objects were decrypted before and are refused now: the KMS key policy \
         or the reading role's kms:Decrypt changed. Until it is fixed, trailwatch sees \
         nothing of this trail. Check the key policy's recent changes (PutKeyPolicy) and who \
         made them."
            .to_owned()
    } else {
        "The trail's bucket was read before and refuses trailwatch now: the bucket policy or \
         the reading role changed. Until it is fixed, trailwatch sees nothing of this trail. \
         Check the bucket policy's recent changes (PutBucketPolicy) and who made them."
            .to_owned()
    };
    let account = t
        .cursors
        .first()
        .and_then(|c| c.rsplit_once("/CloudTrail/"))
        .and_then(|(root, _)| root.rsplit('/').next())
        .map(str::to_owned);
    let (source, code) = if kms {
        ("kms.amazonaws.com", "KMS.AccessDenied")
    } else {
        ("s3.amazonaws.com", "AccessDenied")
    };
    Builtin {
        rule: rule.to_owned(),
        id: id.to_owned(),
        title,
        severity: "medium".into(),
        tags: vec!["attack.defense-evasion".into(), "attack.t1562.008".into()],
        event: AlertEvent {
            name: Some(if kms { "Decrypt" } else { "GetObject" }.into()),
            source: Some(source.into()),
            time: Some(since.to_owned()),
            account_id: account,
            region: t.region.clone(),
            error_code: Some(code.into()),
            ..AlertEvent::default()
        },
        description,
        falsepositives: vec!["A bucket or key policy tightened on purpose.".into()],
        record: Some(reason.to_owned()),
        resource: Some(format!("s3://{}/{}", t.bucket, prefix(t))),
        ungrouped: true,
        ..Builtin::default()
    }
    .detected()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(processed: u64, errors: &[&str]) -> TargetReport {
        TargetReport {
            bucket: "logs".into(),
            reachable: true,
            listed: processed + errors.len() as u64,
            processed,
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
            cursors: vec!["AWSLogs/111122223333/CloudTrail/us-east-1".into()],
            ..TargetReport::default()
        }
    }

    #[test]
    fn a_bucket_that_was_read_and_is_refused_raises_one_alert_then_one_summary() {
        let mut first = pass(3, &[]);
        assert!(transitions(None, &mut first).is_empty());
        assert!(first.read_before);

        let mut denied = pass(0, &["s3://logs/k: access denied: Access Denied"]);
        let raised = transitions(Some(&first), &mut denied);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].alert.rule.id, BUCKET_UNREADABLE);
        assert_eq!(raised[0].alert.rule.severity, "medium");
        assert_eq!(
            raised[0].alert.event.account_id.as_deref(),
            Some("111122223333")
        );
        assert!(raised[0].context.ungrouped);
        let open = denied.unreadable.clone().expect("open");

        // Still denied: nothing new, the same open condition.
        let mut again = pass(0, &["s3://logs/k2: access denied: Access Denied"]);
        assert!(transitions(Some(&denied), &mut again).is_empty());
        assert_eq!(again.unreadable.as_ref(), Some(&open));

        // Readable again: one summary, its own id, and the condition ends.
        let mut back = pass(2, &[]);
        let summary = transitions(Some(&again), &mut back);
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].alert.rule.id, BUCKET_UNREADABLE);
        assert_ne!(summary[0].alert.id, raised[0].alert.id);
        assert!(summary[0].alert.rule.title.starts_with("Readable again"));
        assert!(back.unreadable.is_none());
        let mut later = pass(1, &[]);
        assert!(transitions(Some(&back), &mut later).is_empty());
    }

    #[test]
    fn a_rule_file_that_stops_loading_raises_one_alert_then_one_summary() {
        let error = |file: &str| crate::rules::RuleError {
            file: file.into(),
            line: 7,
            reason: "YAML parse error".into(),
        };
        // Failing at start: the baseline, no alert (and none when it is fixed).
        let (at_start, baseline) = rule_transitions(&BTreeMap::new(), &[error("s.yml")], false);
        assert!(at_start.is_empty());
        let (none, _) = rule_transitions(&baseline, &[], true);
        assert!(none.is_empty());
        let (raised, open) =
            rule_transitions(&BTreeMap::new(), &[error("a.yml"), error("a.yml")], true);
        assert_eq!(raised.len(), 1, "one alert per file");
        assert_eq!(raised[0].alert.rule.id, RULE_NOT_LOADED);
        assert!(raised[0].context.ungrouped);
        // Still failing at the next reload: nothing new.
        let (again, open2) = rule_transitions(&open, &[error("a.yml")], true);
        assert!(again.is_empty());
        assert_eq!(open2, open);
        // Fixed: one summary under its own id.
        let (fixed, open3) = rule_transitions(&open2, &[], true);
        assert_eq!(fixed.len(), 1);
        assert_ne!(fixed[0].alert.id, raised[0].alert.id);
        assert!(
            fixed[0]
                .alert
                .rule
                .title
                .starts_with("Rule file loads again")
        );
        assert!(open3.is_empty());
    }

    #[test]
    fn a_bucket_never_read_raises_nothing_and_a_kms_denial_is_its_own_rule() {
        // Denied from the first pass on: a configuration error, not a change.
        let mut denied = pass(0, &["s3://logs/k: access denied: no"]);
        assert!(transitions(None, &mut denied).is_empty());
        let mut still = pass(0, &["s3://logs/k: access denied: no"]);
        assert!(transitions(Some(&denied), &mut still).is_empty());

        let mut read = pass(1, &[]);
        transitions(None, &mut read);
        let mut kms = pass(
            0,
            &[
                "s3://logs/k: cannot decrypt: the caller lacks kms:Decrypt on arn:aws:kms:...: denied",
            ],
        );
        let raised = transitions(Some(&read), &mut kms);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].alert.rule.id, KMS_DENIED);
        // Throttling is no blind spot.
        let mut slow = pass(0, &["s3://logs/k: SlowDown"]);
        assert!(transitions(Some(&read), &mut slow).is_empty());
    }
}
