//! The lookup store's writing side: the columns an alert is found by
//! (filled when it enters the outbox, and once for the alerts of older
//! files), and the activity index's rows, written in their object's commit.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::alert::activity::{principal_name, target_text};
use crate::alert::{Activity, Alert, AlertContext, ObjectRef};
use crate::event::Record;
use crate::event::time::parse_rfc3339;

/// What an alert is found by, besides its id and rule.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AlertKeys {
    pub at: Option<i64>,
    pub level: Option<i64>,
    pub principal_name: Option<String>,
    pub access_key: Option<String>,
    pub target: Option<String>,
}

impl AlertKeys {
    /// From the alert and its context (the record, for the principal's name
    /// and access key; the target as the alert computed it).
    pub fn of(alert: &Alert, context: &AlertContext) -> AlertKeys {
        let record = context
            .record
            .as_deref()
            .and_then(|text| Record::parse(text).ok());
        AlertKeys {
            at: alert.event.time.as_deref().and_then(parse_rfc3339),
            level: alert.severity().map(|s| s as i64),
            principal_name: record
                .as_ref()
                .and_then(|r| principal_name(r).map(str::to_owned)),
            access_key: record
                .as_ref()
                .and_then(|r| r.str_at("userIdentity.accessKeyId").map(str::to_owned)),
            target: context.resource.as_deref().map(target_text),
        }
    }
}

/// Fills the lookup columns of the alert at `seq`.
pub(super) fn index_alert(
    tx: &Transaction,
    seq: i64,
    alert: &Alert,
    context: &AlertContext,
) -> rusqlite::Result<()> {
    let keys = AlertKeys::of(alert, context);
    let e = &alert.event;
    let object = alert.object.as_ref();
    tx.prepare_cached(
        "UPDATE alerts SET at = COALESCE(?2, created_at), rule_id = ?3, level = ?4, principal = ?5, principal_name = ?6,
           access_key = ?7, account = ?8, region = ?9, source_ip = ?10, target = ?11,
           event_name = ?12, event_source = ?13, user_agent = ?14, bucket = ?15, key = ?16
         WHERE seq = ?1",
    )?
    .execute(params![
        seq,
        keys.at,
        alert.rule.id,
        keys.level,
        e.principal,
        keys.principal_name,
        keys.access_key,
        e.account_id,
        e.region,
        e.source_ip,
        keys.target,
        e.name,
        e.source,
        e.user_agent,
        object.map(|o| &o.bucket),
        object.map(|o| &o.key),
    ])?;
    Ok(())
}

/// Indexes the alerts a file held before the lookup columns existed.
pub(super) fn backfill(tx: &Transaction) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String, Option<String>)> = {
        let mut stmt = tx.prepare("SELECT seq, json, context FROM alerts WHERE rule_id IS NULL")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (seq, json, context) in rows {
        // An alert that no longer parses stays in the outbox, unindexed.
        let Ok(alert) = serde_json::from_str::<Alert>(&json) else {
            continue;
        };
        let context: AlertContext = context
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default();
        index_alert(tx, seq, &alert, &context)?;
    }
    Ok(())
}

/// Writes an object's activity rows (a record already indexed, read again
/// through another trail or after a crash, is kept once).
pub(super) fn insert_activity(
    tx: &Transaction,
    object: &ObjectRef,
    rows: &[Activity],
) -> rusqlite::Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let object_id: i64 = match tx
        .prepare_cached("SELECT id FROM activity_objects WHERE bucket = ?1 AND key = ?2")?
        .query_row(params![object.bucket, object.key], |r| r.get(0))
        .optional()?
    {
        Some(id) => id,
        None => {
            tx.prepare_cached("INSERT INTO activity_objects (bucket, key) VALUES (?1, ?2)")?
                .execute(params![object.bucket, object.key])?;
            tx.last_insert_rowid()
        }
    };
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO activity (at, event_id, principal, principal_name, access_key,
           account, region, event_name, event_source, target, source_ip, user_agent, error_code,
           object)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let newest = rows.iter().map(|a| a.at).max().unwrap_or_default();
    tx.prepare_cached(
        "UPDATE activity_objects SET last_at = max(last_at, ?2), read_at = ?3 WHERE id = ?1",
    )?
    .execute(params![object_id, newest, super::now()])?;
    let mut n = 0;
    for a in rows {
        n += insert.execute(params![
            a.at,
            a.event_id,
            a.principal,
            a.principal_name,
            a.access_key,
            a.account,
            a.region,
            a.event_name,
            a.event_source,
            a.target,
            a.source_ip,
            a.user_agent,
            a.error_code,
            object_id,
        ])?;
    }
    Ok(n)
}
