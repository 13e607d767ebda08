//! The Datadog Events API v1 payload for an alert (DESIGN.md: levels,
//! limits; Datadog's client models: title and text required, text at most
//! 4,000 characters, aggregation_key at most 100, date_happened only for
//! events at most 18 hours old).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::alert::{Alert, AlertContext};

pub const TITLE_MAX: usize = 100;
pub const TEXT_MAX: usize = 4000;
pub const AGGREGATION_KEY_MAX: usize = 100;
pub const TAG_MAX: usize = 200;
/// Datadog accepts `date_happened` only this far back.
pub const DATE_HAPPENED_MAX_AGE: i64 = 18 * 3600;
pub const SOURCE_TYPE_NAME: &str = "trailwatch";

const MARKDOWN_OPEN: &str = "%%% \n";
const MARKDOWN_CLOSE: &str = "\n %%%";

/// `alert_type` and `priority` for a Sigma level (DESIGN.md's table).
pub fn level(severity: &str) -> (&'static str, &'static str) {
    match severity {
        "critical" | "high" => ("error", "normal"),
        "medium" => ("warning", "normal"),
        _ => ("info", "low"),
    }
}

/// The event body for `POST /api/v1/events`.
pub fn event(
    alert: &Alert,
    context: &AlertContext,
    user_tags: &[String],
    now: OffsetDateTime,
) -> Value {
    let (alert_type, priority) = level(&alert.rule.severity);
    let mut body = json!({
        "title": title(alert),
        "text": text(alert, context),
        "alert_type": alert_type,
        "priority": priority,
        "aggregation_key": aggregation_key(alert),
        "source_type_name": SOURCE_TYPE_NAME,
        "tags": tags(alert, user_tags),
    });
    if let Some(t) = date_happened(alert, now) {
        body["date_happened"] = json!(t);
    }
    body
}

/// The rule title and who did it, at most 100 characters.
pub fn title(alert: &Alert) -> String {
    let who = alert.event.principal.as_deref().map(short_principal);
    let full = match who {
        Some(who) => format!("{} by {who}", alert.rule.title),
        None => alert.rule.title.clone(),
    };
    truncate_chars(&full, TITLE_MAX)
}

/// `arn:aws:sts::1:assumed-role/Admin/alice` -> `Admin/alice`; names stay.
fn short_principal(principal: &str) -> &str {
    match principal.split_once('/') {
        Some((_, rest)) if principal.starts_with("arn:") => rest,
        _ => principal,
    }
}

/// Markdown: who, what, where, when, from where, the rule's description
/// (what to check), the S3 object, and an excerpt of the record; cut so that
/// the whole text stays within 4,000 characters, record first.
pub fn text(alert: &Alert, context: &AlertContext) -> String {
    let e = &alert.event;
    let code = |v: &Option<String>| match v {
        Some(v) if !v.is_empty() => format!("`{}`", v.replace('`', "'")),
        _ => "-".to_owned(),
    };
    let mut head = format!(
        "**{}** ({})\n\n| | |\n|---|---|\n| Who | {} ({}) |\n| What | {} {}{} |\n| Where | account {}, region {} |\n| When | {} |\n| Source IP | {} |\n| User agent | {} |\n",
        alert.rule.title,
        alert.rule.severity,
        code(&e.principal),
        e.principal_type.as_deref().unwrap_or("-"),
        code(&e.source),
        code(&e.name),
        e.error_code
            .as_deref()
            .map(|c| format!(", failed: `{c}`"))
            .unwrap_or_default(),
        code(&e.account_id),
        code(&e.region),
        e.time.as_deref().unwrap_or("-"),
        code(&e.source_ip),
        code(&e.user_agent),
    );
    if let Some(o) = &alert.object {
        head.push_str(&format!("| S3 object | `s3://{}/{}` |\n", o.bucket, o.key));
    }
    head.push_str(&format!(
        "| Rule | `{}` ({}) |\n| Alert | `{}` |\n",
        alert.rule.id, alert.rule.source, alert.id
    ));
    if alert.count > 1 {
        head.push_str(&format!("| Count | {} |\n", alert.count));
    }
    let mut middle = String::new();
    if let Some(d) = &context.description {
        middle.push_str(&format!("\n**What to check:** {}\n", d.trim()));
    }
    if !context.falsepositives.is_empty() {
        middle.push_str(&format!(
            "\n**Known false positives:** {}\n",
            context.falsepositives.join("; ")
        ));
    }
    let budget = TEXT_MAX - MARKDOWN_OPEN.chars().count() - MARKDOWN_CLOSE.chars().count();
    let mut body = head;
    let fits = |s: &str| s.chars().count() <= budget;
    if !fits(&format!("{body}{middle}")) {
        middle = truncate_chars(&middle, budget.saturating_sub(body.chars().count()));
    }
    body.push_str(&middle);
    if let Some(record) = &context.record {
        let open = "\n**Record:**\n```json\n";
        let close = "\n```";
        let room = budget
            .saturating_sub(body.chars().count())
            .saturating_sub(open.len() + close.len());
        if room > 40 {
            body.push_str(open);
            body.push_str(&truncate_chars(&record.replace("```", "'''"), room));
            body.push_str(close);
        }
    }
    let body = truncate_chars(&body, budget);
    format!("{MARKDOWN_OPEN}{body}{MARKDOWN_CLOSE}")
}

/// A burst's alerts (its opening and its summary) share the burst's id as
/// their key; other alerts of one rule and principal share a key, so that
/// Datadog groups them.
pub fn aggregation_key(alert: &Alert) -> String {
    if let Some(burst) = &alert.burst {
        return truncate_chars(&burst.id, AGGREGATION_KEY_MAX);
    }
    let principal = alert.event.principal.as_deref().unwrap_or("");
    let digest = Sha256::digest(format!("{}\0{principal}", alert.rule.id).as_bytes());
    let key = format!("tw-{}", hex::encode(&digest[..8]));
    truncate_chars(&key, AGGREGATION_KEY_MAX)
}

/// The event time as POSIX seconds, when Datadog accepts it (at most 18 h old).
pub fn date_happened(alert: &Alert, now: OffsetDateTime) -> Option<i64> {
    let t = OffsetDateTime::parse(
        alert.event.time.as_deref()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    let age = (now - t).whole_seconds();
    (0..=DATE_HAPPENED_MAX_AGE)
        .contains(&age)
        .then(|| t.unix_timestamp())
}

/// `source:cloudtrail`, `alert_id:`, `rule_id:`, `severity:`, `aws_account:`,
/// `aws_account_name:`, `aws_account_ou:` (when known), `region:`, `event_name:`,
/// `principal:`, then the user's own.
pub fn tags(alert: &Alert, user_tags: &[String]) -> Vec<String> {
    let e = &alert.event;
    let mut out = vec![
        "source:cloudtrail".to_owned(),
        tag("alert_id", &alert.id),
        tag("rule_id", &alert.rule.id),
        tag("severity", &alert.rule.severity),
    ];
    for (k, v) in [
        ("aws_account", &e.account_id),
        ("aws_account_name", &e.account_name),
        ("aws_account_ou", &e.account_ou_path),
        ("region", &e.region),
        ("event_name", &e.name),
        ("principal", &e.principal),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            out.push(tag(k, v));
        }
    }
    out.extend(user_tags.iter().map(|t| sanitize_tag(t)));
    out
}

fn tag(key: &str, value: &str) -> String {
    sanitize_tag(&format!("{key}:{value}"))
}

/// Datadog's tag rules: lowercase; letters, digits, `_ - : . /` only (others
/// become `_`); starts with a letter; at most 200 characters.
pub fn sanitize_tag(tag: &str) -> String {
    let mut out: String = tag
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.chars().next().is_some_and(|c| c.is_alphabetic()) {
        out.insert(0, 't');
    }
    truncate_chars(&out, TAG_MAX)
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
