//! The outbox: alerts waiting for the sinks, each sink's position in it,
//! and its dead letters. Alerts go in with their object's checkpoint (or on
//! their own, for trail status alerts); repeats are grouped on the way in.

use rusqlite::{OptionalExtension, params};

use super::suppress;
use super::write_transaction;
use super::{DeadLetter, Outboxed, Result, StateFault, StateStore, Suppression, now};
use crate::alert::Detected;

impl StateStore {
    /// Adds alerts that belong to no object (trail status alerts); returns
    /// how many were new.
    pub fn insert_alerts(&self, alerts: &[Detected]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn).map_err(|e| self.err(e))?;
        let n = insert_alerts(&tx, alerts, self.suppression.as_ref(), &self.account_names)
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// Up to `limit` alerts after outbox position `seq`, in order.
    pub fn alerts_after(&self, seq: i64, limit: usize) -> Result<Vec<Outboxed>> {
        self.query_outbox(
            "SELECT seq, json, context FROM alerts WHERE seq > ?1 AND shared_from IS NULL
             ORDER BY seq LIMIT ?2",
            params![seq, limit as i64],
        )
    }

    /// The alert at outbox position `seq`.
    pub fn alert_at(&self, seq: i64) -> Result<Option<Outboxed>> {
        Ok(self
            .query_outbox(
                "SELECT seq, json, context FROM alerts WHERE seq = ?1 AND shared_from IS NULL",
                params![seq],
            )?
            .pop())
    }

    fn query_outbox(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Outboxed>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, json, context) = row.map_err(|e| self.err(e))?;
            let alert = serde_json::from_str(&json).map_err(|e| self.err(e))?;
            let context = context
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or_default();
            out.push(Outboxed {
                seq,
                alert,
                context,
            });
        }
        Ok(out)
    }

    /// How many alerts wait after a sink's position (its backlog, before
    /// its route filters them).
    pub fn pending(&self, sink: &str) -> Result<u64> {
        let (seq, _) = self.sink_offset(sink)?;
        self.conn()
            .query_row(
                "SELECT count(*) FROM alerts WHERE seq > ?1 AND shared_from IS NULL",
                [seq],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    // ---- dead letters ------------------------------------------------------

    /// Records that `sink` refused the alert at `seq` for good.
    pub fn add_dead_letter(
        &self,
        sink: &str,
        seq: i64,
        status: Option<u16>,
        body: &str,
    ) -> Result<()> {
        let body: String = body.chars().take(4096).collect();
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO dead_letters (sink, seq, status, body, failed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![sink, seq, status.map(i64::from), body, now()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Dead letters, of one sink or all, oldest first.
    pub fn dead_letters(&self, sink: Option<&str>) -> Result<Vec<DeadLetter>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.sink, d.seq, a.id, d.status, coalesce(d.body, ''), d.failed_at
                 FROM dead_letters d JOIN alerts a ON a.seq = d.seq
                 WHERE ?1 IS NULL OR d.sink = ?1 ORDER BY d.seq, d.sink",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![sink], |r| {
                Ok(DeadLetter {
                    sink: r.get(0)?,
                    seq: r.get(1)?,
                    alert_id: r.get(2)?,
                    status: r.get::<_, Option<i64>>(3)?.map(|s| s as u16),
                    body: r.get(4)?,
                    failed_at: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Forgets a dead letter (delivered on retry, or dropped by an operator).
    pub fn remove_dead_letter(&self, sink: &str, seq: i64) -> Result<bool> {
        self.conn()
            .execute(
                "DELETE FROM dead_letters WHERE sink = ?1 AND seq = ?2",
                params![sink, seq],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// The newest outbox position.
    pub fn last_seq(&self) -> Result<i64> {
        self.conn()
            .query_row("SELECT coalesce(max(seq), 0) FROM alerts", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// How many alerts there are in the outbox.
    pub fn alert_count(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT count(*) FROM alerts", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// A sink's delivery position and, for a file sink, the file's length then.
    pub fn sink_offset(&self, sink: &str) -> Result<(i64, Option<u64>)> {
        self.conn()
            .query_row(
                "SELECT last_seq, file_len FROM sink_offsets WHERE sink = ?1",
                [sink],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?.map(|n| n as u64),
                    ))
                },
            )
            .optional()
            .map(|o| o.unwrap_or((0, None)))
            .map_err(|e| self.err(e))
    }

    pub fn set_sink_offset(&self, sink: &str, seq: i64, file_len: Option<u64>) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO sink_offsets (sink, last_seq, file_len) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sink) DO UPDATE SET last_seq = excluded.last_seq,
                   file_len = excluded.file_len",
                params![sink, seq, file_len.map(|n| n as i64)],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The file a file sink's committed length belongs to, when known.
    pub fn sink_file_id(&self, sink: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT file_id FROM sink_offsets WHERE sink = ?1",
                [sink],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// A file sink's position: the last alert written, and the length of
    /// the file (named by `file_id`) after it.
    pub fn set_sink_file_position(
        &self,
        sink: &str,
        seq: i64,
        file_len: u64,
        file_id: &str,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO sink_offsets (sink, last_seq, file_len, file_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sink) DO UPDATE SET last_seq = excluded.last_seq,
                   file_len = excluded.file_len, file_id = excluded.file_id",
                params![sink, seq, file_len as i64, file_id],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

pub(super) fn insert_alerts(
    tx: &rusqlite::Transaction,
    alerts: &[Detected],
    suppression: Option<&Suppression>,
    names: &AccountNames,
) -> std::result::Result<usize, StateFault> {
    let mut inserted = 0;
    let now = time::OffsetDateTime::now_utc();
    for d in alerts {
        // An alert already in the outbox (an object read again) changes
        // nothing; one only pulled from another instance becomes this one's
        // (its own row, at the outbox's end: the shared claims decide who
        // sends it).
        let known: Option<Option<String>> = tx
            .query_row(
                "SELECT shared_from FROM alerts WHERE id = ?1",
                [&d.alert.id],
                |r| r.get(0),
            )
            .optional()?;
        match known {
            Some(None) => continue,
            Some(Some(_)) => {
                tx.execute(
                    "UPDATE alert_days SET n = n - 1 WHERE (day, rule_id) =
                       (SELECT COALESCE(at, created_at) / 86400, rule_id FROM alerts WHERE id = ?1)",
                    [&d.alert.id],
                )?;
                tx.execute("DELETE FROM alerts WHERE id = ?1", [&d.alert.id])?;
            }
            None => {}
        }
        if let Some(config) = suppression {
            let (verdict, summary) = suppress::admit(tx, config, d, now)?;
            if let Some(summary) = summary {
                inserted += insert_one(tx, &summary, names)?;
            }
            match verdict {
                suppress::Verdict::Counted => continue,
                suppress::Verdict::Send(Some(burst)) => {
                    let mut opening = d.clone();
                    opening.alert.burst = Some(burst);
                    inserted += insert_one(tx, &opening, names)?;
                    continue;
                }
                suppress::Verdict::Send(None) => {}
            }
        }
        inserted += insert_one(tx, d, names)?;
    }
    Ok(inserted)
}

pub use super::account_names::AccountNames;

fn insert_one(
    tx: &rusqlite::Transaction,
    d: &Detected,
    names: &AccountNames,
) -> std::result::Result<usize, StateFault> {
    let named;
    let e = &d.alert.event;
    let (name, ou) = match &e.account_id {
        Some(id) if e.account_name.is_none() || e.account_ou_path.is_none() => names.label(id),
        _ => (None, None),
    };
    let d = if name.is_some() || ou.is_some() {
        let mut copy = d.clone();
        let e = &mut copy.alert.event;
        e.account_name = e.account_name.take().or(name);
        e.account_ou_path = e.account_ou_path.take().or(ou);
        named = copy;
        &named
    } else {
        d
    };
    let json = serde_json::to_string(&d.alert)?;
    let context = serde_json::to_string(&d.context)?;
    Ok(super::index::insert_alert(
        tx,
        &d.alert,
        &d.context,
        &json,
        &context,
        now(),
    )?)
}
