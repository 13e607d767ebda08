//! The suppression window (DESIGN.md): for the same rule, principal and
//! resource, the first alert goes out at once; later matches inside the
//! window only raise its count here; when the window closes with a count
//! above one, one summary alert follows, with its own id. The windows live in
//! the state store and change in the same transaction as the alerts, so a
//! restart neither loses nor double-counts a repeat.

use std::time::Duration;

use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use crate::alert::{Detected, correlation_alert_id};

/// Which rules are suppressed, and for how long.
#[derive(Debug, Clone)]
pub struct Suppression {
    pub window: Duration,
    /// Empty: every rule.
    pub rules: Vec<String>,
}

impl Suppression {
    fn applies(&self, rule_id: &str) -> bool {
        self.rules.is_empty() || self.rules.iter().any(|r| r == rule_id)
    }
}

/// At most this many suppressed event ids are kept for the summary.
const RELATED_MAX: usize = 100;

fn parse_time(text: Option<&str>) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text?, &time::format_description::well_known::Rfc3339).ok()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The window's key: rule, principal, resource.
fn key(d: &Detected) -> String {
    let principal = d.alert.event.principal.as_deref().unwrap_or("");
    let resource = d.context.resource.as_deref().unwrap_or("");
    let digest = Sha256::digest(format!("{}\0{principal}\0{resource}", d.alert.rule.id).as_bytes());
    hex::encode(&digest[..16])
}

/// What to do with a new alert.
pub(super) enum Verdict {
    /// Send it (it opens a window, or none applies).
    Send,
    /// A repeat inside an open window: counted, not sent.
    Counted,
}

/// Decides for one alert inside the commit's transaction; a window that has
/// expired is closed first (its summary, if any, is returned to be sent).
pub(super) fn admit(
    tx: &Transaction,
    config: &Suppression,
    d: &Detected,
    now: time::OffsetDateTime,
) -> rusqlite::Result<(Verdict, Option<Detected>)> {
    if !config.applies(&d.alert.rule.id) {
        return Ok((Verdict::Send, None));
    }
    let key = key(d);
    let at = parse_time(d.alert.event.time.as_deref()).unwrap_or(now);
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT window_start, window_end FROM suppression WHERE key = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let mut summary = None;
    if let Some((start, end)) = row {
        let (start_t, end_t) = (parse_time(Some(&start)), parse_time(Some(&end)));
        let inside = matches!((start_t, end_t), (Some(s), Some(e)) if at >= s && at < e);
        if inside {
            let fresh = tx.execute(
                "INSERT OR IGNORE INTO suppressed (alert_id, key) VALUES (?1, ?2)",
                params![d.alert.id, key],
            )?;
            if fresh == 0 {
                // Counted before (the same record read twice).
                return Ok((Verdict::Counted, None));
            }
            let event_id = d.alert.event.id.clone().unwrap_or_default();
            let related: String = tx.query_row(
                "SELECT related FROM suppression WHERE key = ?1",
                [&key],
                |r| r.get(0),
            )?;
            let mut ids: Vec<String> = serde_json::from_str(&related).unwrap_or_default();
            if ids.len() < RELATED_MAX {
                ids.push(event_id);
            }
            tx.execute(
                "UPDATE suppression SET count = count + 1, related = ?2 WHERE key = ?1",
                params![key, serde_json::to_string(&ids).unwrap_or_default()],
            )?;
            return Ok((Verdict::Counted, None));
        }
        summary = close(tx, &key)?;
    }
    let end = at + config.window;
    tx.execute(
        "INSERT OR REPLACE INTO suppression (key, rule_id, window_start, window_end, count, related, first)
         VALUES (?1, ?2, ?3, ?4, 1, '[]', ?5)",
        params![
            key,
            d.alert.rule.id,
            rfc3339(at),
            rfc3339(end),
            serde_json::to_string(&(&d.alert, &d.context)).unwrap_or_default()
        ],
    )?;
    Ok((Verdict::Send, summary))
}

/// Closes one window: its summary when it counted repeats.
fn close(tx: &Transaction, key: &str) -> rusqlite::Result<Option<Detected>> {
    let row: Option<(String, i64, String, String)> = tx
        .query_row(
            "SELECT window_start, count, related, first FROM suppression WHERE key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    tx.execute("DELETE FROM suppression WHERE key = ?1", [key])?;
    tx.execute("DELETE FROM suppressed WHERE key = ?1", [key])?;
    let Some((start, count, related, first)) = row else {
        return Ok(None);
    };
    if count <= 1 {
        return Ok(None);
    }
    let Ok((mut alert, context)) =
        serde_json::from_str::<(crate::alert::Alert, crate::alert::AlertContext)>(&first)
    else {
        return Ok(None);
    };
    alert.id = correlation_alert_id(&alert.rule.id, key, &start);
    alert.count = count as u64;
    alert.related_event_ids = serde_json::from_str(&related).unwrap_or_default();
    alert.detected_at = crate::alert::now_rfc3339();
    Ok(Some(Detected { alert, context }))
}

/// Closes every window that ended before `now`; returns their summaries.
pub(super) fn close_expired(
    tx: &Transaction,
    now: time::OffsetDateTime,
) -> rusqlite::Result<Vec<Detected>> {
    let keys: Vec<String> = {
        let mut stmt = tx.prepare("SELECT key FROM suppression WHERE window_end <= ?1")?;
        let rows = stmt.query_map([rfc3339(now)], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::new();
    for key in keys {
        if let Some(summary) = close(tx, &key)? {
            out.push(summary);
        }
    }
    Ok(out)
}
