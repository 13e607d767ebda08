//! Retention: alerts and activity past their age are deleted a small batch
//! at a time (each batch one short transaction, so the crawler never waits
//! long for the store), and the pages they free are given back to the file
//! system (incremental vacuum), so that the file does not grow without bound.

use std::time::{Duration, Instant};

use rusqlite::{OptionalExtension, params};

use super::write_transaction;
use super::{Result, StateStore};

/// How long the lookup store keeps what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub alerts: Duration,
    pub activity: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            alerts: Duration::from_secs(90 * 86_400),
            activity: Duration::from_secs(7 * 86_400),
        }
    }
}

/// The activity index's tables of what repeats, swept by retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dictionary {
    Principals,
    Events,
}

/// What one purge step deleted, and how long it held the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub alerts: usize,
    pub activity: usize,
    pub objects: usize,
    pub held: Duration,
}

impl Purged {
    pub fn rows(&self) -> usize {
        self.alerts + self.activity + self.objects
    }
}

impl StateStore {
    /// Deletes at most `batch` alerts and `batch` activity rows past
    /// retention at `now` (Unix seconds), in one transaction.
    /// An alert goes when both its event and its detection are older than
    /// the retention, and only once every sink has passed it (a backlog is
    /// never purged); an object's activity goes when its newest record and
    /// its reading are both older than the activity retention, so that logs
    /// hunted long after the fact stay for the retention too.
    pub fn purge_step(&self, retention: &Retention, now: i64, batch: usize) -> Result<Purged> {
        let alert_cut = now.saturating_sub(retention.alerts.as_secs() as i64);
        let activity_cut = now.saturating_sub(retention.activity.as_secs() as i64);
        let mut conn = self.conn();
        let started = Instant::now();
        let tx = write_transaction(&mut conn).map_err(|e| self.err(e))?;
        let alerts = tx
            .prepare_cached(
                "DELETE FROM alerts WHERE seq IN (
                   SELECT seq FROM alerts INDEXED BY alerts_by_created
                   WHERE created_at < ?1 AND at < ?1
                     AND seq <= COALESCE((SELECT MIN(last_seq) FROM sink_offsets), seq)
                   LIMIT ?2)",
            )
            .and_then(|mut s| s.execute(params![alert_cut, batch as i64]))
            .map_err(|e| self.err(e))?;
        tx.prepare_cached("DELETE FROM alert_days WHERE day < ?1")
            .and_then(|mut s| s.execute([alert_cut.div_euclid(86_400)]))
            .map_err(|e| self.err(e))?;
        // Activity goes an object at a time, at most `batch` rows a step:
        // its rows, then (once none is left) its name.
        let (mut activity, mut objects) = (0usize, 0usize);
        while activity < batch {
            let oldest: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM activity_objects INDEXED BY activity_objects_read_at
                     WHERE read_at < ?1 AND last_at < ?1 LIMIT 1",
                )
                .and_then(|mut s| s.query_row([activity_cut], |r| r.get(0)).optional())
                .map_err(|e| self.err(e))?;
            let Some(object) = oldest else { break };
            let room = batch - activity;
            let gone = tx
                .prepare_cached(
                    "DELETE FROM activity WHERE id IN (
                       SELECT id FROM activity WHERE object = ?1 LIMIT ?2)",
                )
                .and_then(|mut s| s.execute(params![object, room as i64]))
                .map_err(|e| self.err(e))?;
            activity += gone;
            if gone < room {
                tx.prepare_cached("DELETE FROM activity_objects WHERE id = ?1")
                    .and_then(|mut s| s.execute([object]))
                    .map_err(|e| self.err(e))?;
                objects += 1;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Purged {
            alerts,
            activity,
            objects,
            held: started.elapsed(),
        })
    }

    /// Drops up to `batch` principals or events (`table`) after id `after`
    /// that no activity row names any more; returns how many went and where
    /// the next step starts (`None`: the table is done).
    pub fn sweep_dictionary(
        &self,
        table: Dictionary,
        after: i64,
        batch: usize,
    ) -> Result<(usize, Option<i64>)> {
        let (name, column) = match table {
            Dictionary::Principals => ("activity_principals", "principal"),
            Dictionary::Events => ("activity_events", "event"),
        };
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn).map_err(|e| self.err(e))?;
        let ids: Vec<i64> = tx
            .prepare_cached(&format!(
                "SELECT id FROM {name} WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))
            .and_then(|mut s| {
                s.query_map(params![after, batch as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()
            })
            .map_err(|e| self.err(e))?;
        let mut gone = 0;
        for id in &ids {
            gone += tx
                .prepare_cached(&format!(
                    "DELETE FROM {name} WHERE id = ?1
                       AND NOT EXISTS (SELECT 1 FROM activity WHERE {column} = ?1)"
                ))
                .and_then(|mut s| s.execute([id]))
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        if gone > 0 {
            // Remembered ids may name rows that are gone.
            self.dicts.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        let next = (ids.len() == batch).then(|| ids.last().copied()).flatten();
        Ok((gone, next))
    }

    /// Folds the write-ahead log into the file (tests measure the file).
    #[cfg(test)]
    pub(crate) fn checkpoint_wal(&self) {
        let _ = self.conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }

    /// Gives up to `pages` free pages back to the file system; returns how
    /// many pages are still free.
    pub fn reclaim(&self, pages: u32) -> Result<i64> {
        let conn = self.conn();
        conn.execute_batch(&format!("PRAGMA incremental_vacuum({pages})"))
            .map_err(|e| self.err(e))?;
        conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Purges everything past retention in steps of about `step` each
    /// (the batch adapts so that one step holds the store for about that
    /// long), pausing `pause` between steps, then reclaims the freed pages.
    /// Returns the total purged.
    pub fn purge(
        &self,
        retention: &Retention,
        now: i64,
        step: Duration,
        pause: Duration,
    ) -> Result<Purged> {
        let mut total = Purged::default();
        let mut batch = 256usize;
        loop {
            let done = self.purge_step(retention, now, batch)?;
            total.alerts += done.alerts;
            total.activity += done.activity;
            total.objects += done.objects;
            total.held = total.held.max(done.held);
            if done.rows() == 0 {
                break;
            }
            batch = next_batch(batch, done.held, step);
            std::thread::sleep(pause);
        }
        for table in [Dictionary::Principals, Dictionary::Events] {
            let mut after = Some(0);
            while let Some(from) = after {
                let (_, next) = self.sweep_dictionary(table, from, 500)?;
                after = next;
                std::thread::sleep(pause);
            }
        }
        while self.reclaim(500)? > 0 {
            std::thread::sleep(pause);
        }
        Ok(total)
    }
}

/// The next step's batch: doubled while a step holds the store for less
/// than half of `step`, halved when it holds it longer.
pub fn next_batch(batch: usize, held: Duration, step: Duration) -> usize {
    if held < step / 2 {
        (batch * 2).min(20_000)
    } else if held > step {
        (batch / 2).max(16)
    } else {
        batch
    }
}
