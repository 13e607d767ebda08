//! Alerts other instances raised (`[state] backend = "dynamodb"`), pulled
//! from the shared alerts table into this file's lookup columns, so that
//! `trailwatch alerts` and the console on any instance see them all. They
//! are marked with the instance that raised them and never enter this
//! instance's outbox: that one's sinks send them.

use super::write_transaction;
use super::{Result, StateStore};
use crate::alert::{Alert, AlertContext};

impl StateStore {
    /// Adds alerts raised by `from` for lookups only; returns how many were
    /// new here (an alert this instance holds already is left as it is).
    pub fn index_shared(&self, alerts: &[(Alert, AlertContext)], from: &str) -> Result<usize> {
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn).map_err(|e| self.err(e))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut added = 0;
        for (alert, context) in alerts {
            let json = serde_json::to_string(alert).map_err(|e| self.err(e))?;
            let context_json = serde_json::to_string(context).map_err(|e| self.err(e))?;
            let n = super::index::insert_alert(&tx, alert, context, &json, &context_json, now)
                .map_err(|e| self.err(e))?;
            if n > 0 {
                tx.execute(
                    "UPDATE alerts SET shared_from = ?1 WHERE id = ?2",
                    [from, alert.id.as_str()],
                )
                .map_err(|e| self.err(e))?;
                added += n;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(added)
    }
}
