//! The embedded state store (SQLite in WAL mode): crawl checkpoints, the
//! alert outbox, per-sink delivery offsets, trail status, and the lookup
//! store (alerts by time, rule, principal...; the activity index of every
//! record read; their retention). It stores; it delivers nothing.
//!
//! An object's alerts and its checkpoint are committed in one transaction, so
//! a crash before the commit re-reads the object and a crash after it loses
//! nothing. Alert ids are unique here, so re-reading an object adds no alert.

mod account_names;
mod damage;
pub mod dynamodb;
mod index;
mod kv;
mod lookup;
mod outbox;
mod retention;
mod schema;
mod shared_alerts;
mod suppress;

pub use index::AlertKeys;
pub use lookup::{ActivityRow, FACET_ROWS, Facets, Filter, Page, StatusTable, StoredAlert};
pub use retention::{Dictionary, Purged, Retention, next_batch};
pub use suppress::Suppression;

use outbox::insert_alerts;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::alert::{Activity, Alert, AlertContext, Detected, ObjectRef};

/// A state store failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {source}{}", damage::hint(source))]
pub struct StateError {
    pub path: String,
    #[source]
    pub source: StateFault,
}

/// What failed: SQLite itself, the file system around it, an alert that
/// cannot be written as JSON or read back, or the task running the work.
#[derive(Debug, thiserror::Error)]
pub enum StateFault {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("alert JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the task running it failed: {0}")]
    Task(String),
    /// The file is not one SQLite can open (`damage.rs`).
    #[error("{0}")]
    Damaged(String),
    /// SQLite could not open or write the file; why, as the system says it
    /// (a read-only file system, permissions).
    #[error("{0}")]
    Unwritable(String),
}

pub type Result<T> = std::result::Result<T, StateError>;

/// One listing cursor: a (bucket, prefix, account, region) of a trail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CursorKey {
    pub bucket: String,
    pub prefix: String,
    pub account: String,
    pub region: String,
}

impl CursorKey {
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.bucket, self.prefix, self.account, self.region
        )
    }
}

/// How reading an object ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectStatus {
    Done,
    /// Read as far as it could be (corrupt, truncated, too large, denied):
    /// recorded with its reason and not retried.
    Failed,
}

/// What is committed for one object, in one transaction.
#[derive(Debug, Clone)]
pub struct ObjectCommit<'a> {
    pub cursor: &'a CursorKey,
    pub key: &'a str,
    pub key_time: &'a str,
    pub status: ObjectStatus,
    pub records: u64,
    pub error: Option<String>,
    pub alerts: &'a [Detected],
    /// Its records for the activity index (empty when the index is off).
    pub activity: &'a [Activity],
    /// The stateful rules' state after this object, kept with it.
    pub correlation: Option<CorrelationCommit<'a>>,
}

/// The stateful rules' state as one object leaves it: the engine's windows
/// and pending alerts, and what changed among the events already counted.
#[derive(Debug, Clone, Copy)]
pub struct CorrelationCommit<'a> {
    pub state: &'a serde_json::Value,
    pub seen_new: &'a [(i64, i64)],
    pub forget_outside: Option<(i64, i64)>,
}

/// An alert in the outbox, at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Outboxed {
    pub seq: i64,
    pub alert: Alert,
    pub context: AlertContext,
}

/// An alert a sink refused for good (a 4xx other than 408/429).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub sink: String,
    pub seq: i64,
    pub alert_id: String,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// The receiver's answer (cut to a few KB).
    pub body: String,
    pub failed_at: i64,
}

/// A failed object, for `trailwatch trails` and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedObject {
    pub bucket: String,
    pub key: String,
    pub error: String,
}

/// The SQLite state file.
pub struct StateStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// The suppression window, when configured.
    suppression: Option<Suppression>,
    /// `[[accounts]]`: names put on alerts as they are stored.
    account_names: outbox::AccountNames,
    /// The activity index's dictionaries (locked after `conn`).
    dicts: Mutex<index::Dicts>,
    /// Why the last object's commit failed (disk full, locked, read-only);
    /// `None` once one commits again. Readiness reads it at once.
    write_failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish()
    }
}

/// A write transaction that takes the write lock when it begins
/// (IMMEDIATE). A deferred one that reads first and then writes cannot wait
/// for another process's write: SQLite refuses its upgrade at once with
/// "database is locked" instead of calling the busy handler. A second
/// process writing beside the daemon met that (tests/file_rotation.rs).
pub(crate) fn write_transaction(
    conn: &mut Connection,
) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl StateStore {
    /// Opens (creating it and its directory if needed) the state file.
    pub fn open(path: &Path) -> Result<StateStore> {
        let wrap = |source: StateFault| StateError {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| wrap(e.into()))?;
        }
        let sql = |e: rusqlite::Error| wrap(e.into());
        if let Some(reason) = damage::check(path) {
            return Err(wrap(StateFault::Damaged(reason)));
        }
        let mut conn = Connection::open(path).map_err(|e| wrap(damage::open_error(path, e)))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        // WAL: readers never block the writer; NORMAL sync survives a crash
        // of the process (kill -9), which is what checkpoints guard against.
        // Switching a new file to WAL while another process does the same
        // can be refused as busy without the busy handler: tried again.
        let mut tries = 0;
        loop {
            let set = conn
                .execute_batch(
                    "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA cache_size = -16384;
                     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                )
                .and_then(|_| schema::migrate(&mut conn))
                .and_then(|_| schema::take_incremental_vacuum(&conn));
            match set {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy && tries < 50 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(wrap(damage::open_error(path, e))),
            }
        }
        Ok(StateStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            suppression: None,
            account_names: outbox::AccountNames::default(),
            dicts: Mutex::new(index::Dicts::default()),
            write_failure: Mutex::new(None),
        })
    }

    /// Turns the suppression window on for the alerts committed from now on.
    pub fn with_suppression(mut self, suppression: Option<Suppression>) -> Self {
        self.suppression = suppression;
        self
    }

    /// Closes the suppression windows that have ended; their summaries go to
    /// the outbox. Returns how many summaries there were.
    pub fn close_suppression_windows(&self) -> Result<usize> {
        self.close_suppression_windows_before(time::OffsetDateTime::now_utc())
    }

    /// Closes every grouping window (the end of `once`'s input); returns how
    /// many summaries were new.
    pub fn close_all_suppression_windows(&self) -> Result<usize> {
        self.close_suppression_windows_before(time::macros::datetime!(9999-12-31 00:00 UTC))
    }

    fn close_suppression_windows_before(&self, before: time::OffsetDateTime) -> Result<usize> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn).map_err(|e| self.err(e))?;
        let summaries = suppress::close_expired(&tx, before).map_err(|e| self.err(e))?;
        let n =
            insert_alerts(&tx, &summaries, None, &self.account_names).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, source: impl Into<StateFault>) -> StateError {
        StateError {
            path: self.path.display().to_string(),
            source: source.into(),
        }
    }

    /// Checks that the store can be written (for readiness and `once`).
    pub fn check_writable(&self) -> Result<()> {
        self.conn()
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(|e| self.err(e))
    }

    // ---- crawl checkpoints -------------------------------------------------

    /// The newest key time a cursor has processed, if any.
    pub fn watermark(&self, cursor: &CursorKey) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT watermark FROM cursors WHERE id = ?1",
                [cursor.id()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Moves a cursor's watermark forward (never back).
    pub fn advance_watermark(&self, cursor: &CursorKey, key_time: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO cursors (id, bucket, prefix, account, region, watermark, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET
                   watermark = max(coalesce(watermark, ''), excluded.watermark),
                   updated_at = excluded.updated_at",
                params![
                    cursor.id(),
                    cursor.bucket,
                    cursor.prefix,
                    cursor.account,
                    cursor.region,
                    key_time,
                    now()
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Keys of a cursor already processed (done or failed) at or after `since`.
    pub fn processed_keys_since(&self, cursor: &CursorKey, since: &str) -> Result<HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT key FROM objects WHERE cursor_id = ?1 AND key_time >= ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![cursor.id(), since], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<HashSet<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Commits an object's alerts and its checkpoint in one transaction;
    /// returns how many of the alerts were new.
    pub fn commit_object(&self, c: &ObjectCommit) -> Result<usize> {
        let committed = self.commit_object_once(c);
        let mut failure = self.write_failure.lock().unwrap_or_else(|p| p.into_inner());
        *failure = committed.as_ref().err().map(ToString::to_string);
        committed
    }

    /// Why the last object's commit failed, if it did.
    pub fn write_failure(&self) -> Option<String> {
        self.write_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn commit_object_once(&self, c: &ObjectCommit) -> Result<usize> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn).map_err(|e| self.err(e))?;
        let inserted = insert_alerts(
            &tx,
            c.alerts,
            self.suppression.as_ref(),
            &self.account_names,
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO objects
               (bucket, key, cursor_id, key_time, status, records, alerts, error, processed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                c.cursor.bucket,
                c.key,
                c.cursor.id(),
                c.key_time,
                match c.status {
                    ObjectStatus::Done => "done",
                    ObjectStatus::Failed => "failed",
                },
                c.records as i64,
                c.alerts.len() as i64,
                c.error,
                now()
            ],
        )
        .map_err(|e| self.err(e))?;
        if let Some(corr) = c.correlation {
            write_correlation(&tx, &corr).map_err(|e| self.err(e))?;
        }
        let object = ObjectRef {
            bucket: c.cursor.bucket.clone(),
            key: c.key.to_owned(),
        };
        let mut dicts = self.dicts.lock().unwrap_or_else(|p| p.into_inner());
        let written = index::insert_activity(&tx, &mut dicts, &object, c.activity)
            .map_err(|e| self.err(e))
            .and_then(|_| {
                crate::kill_point!("state.commit_object.before_commit");
                tx.commit().map_err(|e| self.err(e))
            });
        if written.is_err() {
            // Ids added in the failed transaction are not in the file.
            dicts.clear();
        }
        written?;
        crate::kill_point!("state.commit_object.after_commit");
        Ok(inserted)
    }

    /// Commits alerts raised outside any object (bursts closed at the end of
    /// a pass, or after idling) with the stateful rules' state; returns how
    /// many of the alerts were new.
    pub fn commit_correlation(
        &self,
        alerts: &[Detected],
        corr: &CorrelationCommit,
    ) -> Result<usize> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn).map_err(|e| self.err(e))?;
        let inserted = insert_alerts(&tx, alerts, self.suppression.as_ref(), &self.account_names)
            .map_err(|e| self.err(e))?;
        write_correlation(&tx, corr).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(inserted)
    }

    /// This state file's instance id (made once, kept in the file): who
    /// holds a claim in the shared state, the same after a restart.
    pub fn instance_id(&self) -> Result<String> {
        let conn = self.conn();
        let known: Option<String> = conn
            .query_row("SELECT value FROM kv WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(id) = known {
            return Ok(id);
        }
        let id = format!("tw-{:016x}", rand::random::<u64>());
        conn.execute(
            "INSERT OR IGNORE INTO kv (key, value) VALUES ('instance', ?1)",
            [&id],
        )
        .map_err(|e| self.err(e))?;
        conn.query_row("SELECT value FROM kv WHERE key = 'instance'", [], |r| {
            r.get(0)
        })
        .map_err(|e| self.err(e))
    }

    /// The stateful rules' state as last committed.
    pub fn correlation_state(&self) -> Result<Option<crate::rules::Snapshot>> {
        let conn = self.conn();
        let text: Option<String> = conn
            .query_row("SELECT value FROM kv WHERE key = 'correlation'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(state) = text.and_then(|t| serde_json::from_str(&t).ok()) else {
            return Ok(None);
        };
        let mut query = conn
            .prepare("SELECT key, at FROM correlation_seen ORDER BY key")
            .map_err(|e| self.err(e))?;
        let seen = query
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(i64, i64)>>>())
            .map_err(|e| self.err(e))?;
        Ok(Some(crate::rules::Snapshot { state, seen }))
    }

    /// Forgets processed keys older than `before` (outside every lookback
    /// window), so that cursor state stays bounded.
    pub fn prune_processed(&self, cursor: &CursorKey, before: &str) -> Result<usize> {
        self.conn()
            .execute(
                "DELETE FROM objects WHERE cursor_id = ?1 AND key_time < ?2",
                params![cursor.id(), before],
            )
            .map_err(|e| self.err(e))
    }

    /// How a key was processed, if it was.
    pub fn object_status(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectStatus, Option<String>)>> {
        self.conn()
            .query_row(
                "SELECT status, error FROM objects WHERE bucket = ?1 AND key = ?2",
                params![bucket, key],
                |r| {
                    let status: String = r.get(0)?;
                    Ok((
                        if status == "done" {
                            ObjectStatus::Done
                        } else {
                            ObjectStatus::Failed
                        },
                        r.get(1)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The most recent failed objects of a bucket.
    pub fn failed_objects(&self, bucket: &str, limit: usize) -> Result<Vec<FailedObject>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT bucket, key, coalesce(error, '') FROM objects
                 WHERE bucket = ?1 AND status = 'failed' ORDER BY processed_at DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![bucket, limit as i64], |r| {
                Ok(FailedObject {
                    bucket: r.get(0)?,
                    key: r.get(1)?,
                    error: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The last status stored for a trail (JSON the caller defines).
    pub fn trail_status(&self, arn: &str) -> Result<Option<serde_json::Value>> {
        self.get_json("SELECT json FROM trails WHERE arn = ?1", arn)
    }

    pub fn set_trail_status(&self, arn: &str, status: &serde_json::Value) -> Result<()> {
        self.put_json("trails", "arn", arn, status)
    }

    /// What was last seen crawling a bucket and prefix (JSON the caller defines).
    pub fn target_status(&self, id: &str) -> Result<Option<serde_json::Value>> {
        self.get_json("SELECT json FROM targets WHERE id = ?1", id)
    }

    pub fn set_target_status(&self, id: &str, status: &serde_json::Value) -> Result<()> {
        self.put_json("targets", "id", id, status)
    }

    fn get_json(&self, sql: &str, key: &str) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = self
            .conn()
            .query_row(sql, [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    fn put_json(
        &self,
        table: &str,
        key_col: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO {table} ({key_col}, json, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT ({key_col}) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at"
        );
        self.conn()
            .execute(&sql, params![key, value.to_string(), now()])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// Adds alerts to the outbox (a known id is ignored), through the
/// suppression window when one is configured; returns how many were added.
/// The stateful rules' state row and the changes to the events they counted.
fn write_correlation(tx: &rusqlite::Transaction, corr: &CorrelationCommit) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO kv (key, value) VALUES ('correlation', ?1)",
        [corr.state.to_string()],
    )?;
    if let Some((lo, hi)) = corr.forget_outside {
        tx.execute(
            "DELETE FROM correlation_seen WHERE at < ?1 OR at > ?2",
            [lo, hi],
        )?;
    }
    let mut insert =
        tx.prepare_cached("INSERT OR REPLACE INTO correlation_seen (key, at) VALUES (?1, ?2)")?;
    for (key, at) in corr.seen_new {
        insert.execute([key, at])?;
    }
    Ok(())
}

#[cfg(test)]
mod lookup_tests;
#[cfg(test)]
mod tests;
