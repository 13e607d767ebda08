//! The lookup store's writing side: the columns an alert is found by
//! (filled when it enters the outbox, and once for the alerts of older
//! files), and the activity index's rows, written in their object's commit.

use std::collections::HashMap;

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

/// Adds an alert to the outbox with its lookup columns, in one statement;
/// returns 1, or 0 when its id is already there.
pub(super) fn insert_alert(
    tx: &Transaction,
    alert: &Alert,
    context: &AlertContext,
    json: &str,
    context_json: &str,
    now: i64,
) -> rusqlite::Result<usize> {
    let keys = AlertKeys::of(alert, context);
    let e = &alert.event;
    let object = alert.object.as_ref();
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO alerts (id, json, context, created_at, at, rule_id, level,
           principal, principal_name, access_key, account, region, source_ip, target,
           event_name, event_source, user_agent, bucket, key)
         VALUES (?1, ?2, ?3, ?4, COALESCE(?5, ?4), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
           ?15, ?16, ?17, ?18, ?19)",
        )?
        .execute(params![
            alert.id,
            json,
            context_json,
            now,
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
    if inserted > 0 {
        count_alert(tx, keys.at.unwrap_or(now), &alert.rule.id)?;
    }
    Ok(inserted)
}

/// One more alert of `rule` on the day of `at` (the rules page's counts).
fn count_alert(tx: &Transaction, at: i64, rule: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO alert_days (day, rule_id, n) VALUES (?1, ?2, 1)
         ON CONFLICT (day, rule_id) DO UPDATE SET n = n + 1",
    )?
    .execute(params![at.div_euclid(86_400), rule])?;
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
    tx.execute_batch(
        "INSERT INTO alert_days (day, rule_id, n)
         SELECT at / 86400, rule_id, COUNT(*) FROM alerts WHERE rule_id IS NOT NULL
         GROUP BY 1, 2",
    )
}

impl super::StateStore {
    /// Runs `load` with the lookup indexes of alerts and activity dropped,
    /// then builds them again, each in one sort: for loading many rows at
    /// once (the store benchmark's millions), where keeping six B-trees in
    /// step row by row costs many times the rows themselves. The indexes
    /// come back whether `load` succeeds or not.
    pub fn bulk_load<T>(&self, load: impl FnOnce(&Self) -> super::Result<T>) -> super::Result<T> {
        let indexes: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                     AND tbl_name IN ('alerts', 'activity')",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| self.err(e))?;
            for sql in &rows {
                if let Some(name) = sql.split_whitespace().nth(2) {
                    conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))
                        .map_err(|e| self.err(e))?;
                }
            }
            rows
        };
        let loaded = load(self);
        let conn = self.conn();
        for sql in &indexes {
            conn.execute_batch(sql).map_err(|e| self.err(e))?;
        }
        loaded
    }
}

/// The ids of what repeats from record to record (principals, events,
/// places), as the file holds them: found once, then remembered.
/// Forgotten whenever a transaction that may have added some fails.
#[derive(Debug, Default)]
pub(super) struct Dicts {
    principals: HashMap<String, i64>,
    events: HashMap<String, i64>,
    places: HashMap<String, i64>,
    /// The key being looked up (its parts joined by NUL), reused.
    key: String,
}

/// Remembered ids per kind, at most; past it the kind starts afresh.
const DICT_MAX: usize = 200_000;

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// Which dictionary, and its SQL.
struct Kind {
    insert: &'static str,
    select: &'static str,
}

const PRINCIPALS: Kind = Kind {
    insert: "INSERT OR IGNORE INTO activity_principals (arn, name, access_key) VALUES (?1, ?2, ?3)",
    select: "SELECT id FROM activity_principals WHERE arn = ?1 AND name = ?2 AND access_key = ?3",
};
const EVENTS: Kind = Kind {
    insert: "INSERT OR IGNORE INTO activity_events (source, name) VALUES (?1, ?2)",
    select: "SELECT id FROM activity_events WHERE source = ?1 AND name = ?2",
};
const PLACES: Kind = Kind {
    insert: "INSERT OR IGNORE INTO activity_places (account, region) VALUES (?1, ?2)",
    select: "SELECT id FROM activity_places WHERE account = ?1 AND region = ?2",
};

/// The id of `values` in a dictionary table, added if new; `key` holds
/// them joined (a hit allocates nothing).
fn id_of(
    tx: &Transaction,
    cache: &mut HashMap<String, i64>,
    key: &mut String,
    kind: &Kind,
    values: &[&str],
) -> rusqlite::Result<i64> {
    key.clear();
    for v in values {
        key.push_str(v);
        key.push('\0');
    }
    if let Some(id) = cache.get(key.as_str()) {
        return Ok(*id);
    }
    tx.prepare_cached(kind.insert)?
        .execute(rusqlite::params_from_iter(values))?;
    let id: i64 = tx
        .prepare_cached(kind.select)?
        .query_row(rusqlite::params_from_iter(values), |r| r.get(0))?;
    if cache.len() >= DICT_MAX {
        cache.clear();
    }
    cache.insert(key.clone(), id);
    Ok(id)
}

impl Dicts {
    pub fn clear(&mut self) {
        *self = Dicts::default();
    }

    /// The principal's, the event's and the place's ids.
    fn ids(&mut self, tx: &Transaction, a: &Activity) -> rusqlite::Result<(i64, i64, i64)> {
        let principal = id_of(
            tx,
            &mut self.principals,
            &mut self.key,
            &PRINCIPALS,
            &[
                text(&a.principal),
                text(&a.principal_name),
                text(&a.access_key),
            ],
        )?;
        let event = id_of(
            tx,
            &mut self.events,
            &mut self.key,
            &EVENTS,
            &[text(&a.event_source), text(&a.event_name)],
        )?;
        let place = id_of(
            tx,
            &mut self.places,
            &mut self.key,
            &PLACES,
            &[text(&a.account), text(&a.region)],
        )?;
        Ok((principal, event, place))
    }
}

/// Writes an object's activity rows. An object already indexed (read again
/// after its checkpoint was pruned) adds nothing.
pub(super) fn insert_activity(
    tx: &Transaction,
    dicts: &mut Dicts,
    object: &ObjectRef,
    rows: &[Activity],
) -> rusqlite::Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let known: Option<i64> = tx
        .prepare_cached("SELECT id FROM activity_objects WHERE bucket = ?1 AND key = ?2")?
        .query_row(params![object.bucket, object.key], |r| r.get(0))
        .optional()?;
    if known.is_some() {
        return Ok(0);
    }
    let newest = rows.iter().map(|a| a.at).max().unwrap_or_default();
    tx.prepare_cached(
        "INSERT INTO activity_objects (bucket, key, last_at, read_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![object.bucket, object.key, newest, super::now()])?;
    let object_id = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO activity (at, event_id, principal, event, place, target, source_ip,
           user_agent, error_code, object)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for a in rows {
        let (principal, event, place) = dicts.ids(tx, a)?;
        insert.execute(params![
            a.at,
            a.event_id,
            principal,
            event,
            place,
            a.target,
            a.source_ip,
            a.user_agent,
            a.error_code,
            object_id,
        ])?;
    }
    Ok(rows.len())
}
