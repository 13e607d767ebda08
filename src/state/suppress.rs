//! Grouping of single-record alerts (DESIGN.md, "Bursts"): repeats of one
//! rule for one principal are one burst. The first alert goes out at once,
//! carrying the burst's id (its own); later matches while the burst is open
//! only raise its count here, each extending the window by its length; when
//! it closes with a count above one, one summary follows, with its own id
//! derived from the burst's, the final count, first and last times, the
//! repeats' event ids and the distinct targets (both bounded). The windows
//! live in the state store and change in the same transaction as the
//! alerts, so a restart neither loses nor double-counts a repeat.
//! Correlation alerts (bursts already), alerts marked `ungrouped` (trail
//! status, rules that opt out) and the config's exclusions are never grouped.

use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use crate::alert::{BurstInfo, Detected, burst_summary_id};
pub use crate::config::Suppression;

pub(crate) fn applies(config: &Suppression, d: &Detected) -> bool {
    let rule = d.alert.rule.id.as_str();
    d.alert.burst.is_none()
        && !d.context.ungrouped
        && (config.rules.is_empty() || config.rules.iter().any(|r| r == rule))
        && !config.exclude.iter().any(|r| r == rule)
}

/// At most this many distinct targets are listed in a summary.
pub(crate) const TARGETS_MAX: usize = 20;

/// At most this many suppressed event ids are kept for the summary.
pub(crate) const RELATED_MAX: usize = 100;

pub(crate) fn parse_time(text: Option<&str>) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text?, &time::format_description::well_known::Rfc3339).ok()
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The window's key: rule, principal.
pub(crate) fn key(d: &Detected) -> String {
    let principal = d.alert.event.principal.as_deref().unwrap_or("");
    let digest = Sha256::digest(format!("{}\0{principal}", d.alert.rule.id).as_bytes());
    hex::encode(&digest[..16])
}

/// The repeats' event ids and the distinct targets (the `related` column;
/// a plain array of ids is what older versions wrote).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Related {
    pub ids: Vec<String>,
    pub targets: Vec<String>,
    /// The newest repeat's time.
    #[serde(default)]
    pub last: Option<String>,
}

pub(crate) fn read_related(text: &str) -> Related {
    serde_json::from_str::<Related>(text)
        .or_else(|_| {
            serde_json::from_str::<Vec<String>>(text).map(|ids| Related {
                ids,
                targets: Vec::new(),
                last: None,
            })
        })
        .unwrap_or_default()
}

pub(crate) fn push_bounded(list: &mut Vec<String>, value: Option<&str>, bound: usize) {
    if let Some(v) = value
        && list.len() < bound
        && !list.iter().any(|x| x == v)
    {
        list.push(v.to_owned());
    }
}

/// What to do with a new alert.
pub(super) enum Verdict {
    /// Send it (it opens a window, or none applies), as it is, or with the
    /// burst it opens.
    Send(Option<BurstInfo>),
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
    if !applies(config, d) {
        return Ok((Verdict::Send(None), None));
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
        // Objects read concurrently arrive out of time order: a repeat up
        // to a window before the burst's first event belongs to it too.
        let inside =
            matches!((start_t, end_t), (Some(s), Some(e)) if at >= s - config.window && at < e);
        if inside {
            let fresh = tx.execute(
                "INSERT OR IGNORE INTO suppressed (alert_id, key) VALUES (?1, ?2)",
                params![d.alert.id, key],
            )?;
            if fresh == 0 {
                // Counted before (the same record read twice).
                return Ok((Verdict::Counted, None));
            }
            let text: String = tx.query_row(
                "SELECT related FROM suppression WHERE key = ?1",
                [&key],
                |r| r.get(0),
            )?;
            let mut related = read_related(&text);
            if related.ids.len() < RELATED_MAX {
                related
                    .ids
                    .push(d.alert.event.id.clone().unwrap_or_default());
            }
            push_bounded(
                &mut related.targets,
                d.context.resource.as_deref(),
                TARGETS_MAX,
            );
            if parse_time(related.last.as_deref()).is_none_or(|l| l < at) {
                related.last = Some(rfc3339(at));
            }
            // The window slides: it ends a window's length after the newest repeat.
            let end = end_t.map_or(at, |e| e.max(at + config.window));
            tx.execute(
                "UPDATE suppression SET count = count + 1, related = ?2, window_end = ?3,
                   window_start = ?4 WHERE key = ?1",
                params![
                    key,
                    serde_json::to_string(&related).unwrap_or_default(),
                    rfc3339(end),
                    rfc3339(start_t.map_or(at, |s| s.min(at)))
                ],
            )?;
            return Ok((Verdict::Counted, None));
        }
        summary = close(tx, &key)?;
    }
    let end = at + config.window;
    let burst = BurstInfo {
        id: d.alert.id.clone(),
        state: "open".into(),
        first: rfc3339(at),
        last: rfc3339(at),
    };
    let mut first = d.alert.clone();
    first.burst = Some(burst.clone());
    let mut related = Related {
        last: Some(rfc3339(at)),
        ..Related::default()
    };
    push_bounded(
        &mut related.targets,
        d.context.resource.as_deref(),
        TARGETS_MAX,
    );
    tx.execute(
        "INSERT OR REPLACE INTO suppression (key, rule_id, window_start, window_end, count, related, first)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
        params![
            key,
            d.alert.rule.id,
            rfc3339(at),
            rfc3339(end),
            serde_json::to_string(&related).unwrap_or_default(),
            serde_json::to_string(&(&first, &d.context)).unwrap_or_default()
        ],
    )?;
    Ok((Verdict::Send(Some(burst)), summary))
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
    Ok(summary(start, count, &related, &first))
}

/// A closed window's summary, when it counted repeats: from its first
/// event's time, its count, its `related` text and its first alert (with
/// its context, as JSON).
pub(crate) fn summary(start: String, count: i64, related: &str, first: &str) -> Option<Detected> {
    if count <= 1 {
        return None;
    }
    let Ok((mut alert, mut context)) =
        serde_json::from_str::<(crate::alert::Alert, crate::alert::AlertContext)>(first)
    else {
        return None;
    };
    let related = read_related(related);
    let burst_id = alert.id.clone();
    let last = related.last.clone().unwrap_or_else(|| start.clone());
    alert.id = burst_summary_id(&burst_id);
    alert.count = count as u64;
    alert.related_event_ids = related.ids;
    alert.detected_at = crate::alert::now_rfc3339();
    alert.burst = Some(BurstInfo {
        id: burst_id,
        state: "closed".into(),
        first: start,
        last,
    });
    if related.targets.len() > 1 {
        context.resource = Some(related.targets.join(", "));
    }
    Some(Detected { alert, context })
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
