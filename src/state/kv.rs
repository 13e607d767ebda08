//! Small state of the daemon's own, by key (the blind spots it keeps
//! open), written with the alerts that go with it.

use rusqlite::{OptionalExtension, params};

use super::outbox::insert_alerts;
use super::write_transaction;
use super::{Result, StateStore};
use crate::alert::Detected;

impl StateStore {
    /// A value kept under `key` (small state of the daemon's own).
    pub fn kv(&self, key: &str) -> Result<Option<String>> {
        self.conn()
            .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Keeps `value` under `key`, with `alerts` in the same transaction.
    pub fn set_kv_with_alerts(&self, key: &str, value: &str, alerts: &[Detected]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn).map_err(|e| self.err(e))?;
        let n = insert_alerts(&tx, alerts, None, &self.account_names).map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }
}
