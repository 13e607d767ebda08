//! Bursts: the stateful rules' bursts closed between passes (idle ones in
//! the daemon, all of them at the end of `once`), their summaries
//! committed with the rules' state.

use std::sync::Arc;

use super::{CrawlError, Crawler};

impl Crawler {
    /// Closes the stateful rules' bursts and commits their summaries with
    /// the rules' state: every burst (`all`: the end of `once`'s input), or
    /// those idle for a timespan plus the lookback of wall time (the
    /// daemon). Returns how many alerts were new.
    pub async fn close_bursts(&self, all: bool) -> Result<u64, CrawlError> {
        if self.shared.is_some() {
            // Shared state: the leader's engine closes them
            // (`src/daemon/rule_leader.rs`).
            return Ok(0);
        }
        let rules = Arc::clone(&self.rules);
        let idle = self.config.crawl.lookback.as_secs() as i64;
        let grouped = if all {
            self.blocking(|s| s.close_all_suppression_windows()).await? as u64
        } else {
            0
        };
        let correlated = self
            .blocking(move |s| {
                rules
                    .with_correlator(|c| {
                        if all {
                            c.close_all();
                        } else {
                            c.flush_first_seen();
                            c.close_idle(idle);
                        }
                        if c.pending().is_empty() {
                            return Ok(0);
                        }
                        let pending = c.pending().len();
                        let alerts = c.pending().to_vec();
                        let state = c.export_state();
                        let delta = c.seen_delta();
                        let n = s.commit_correlation(
                            &alerts,
                            &crate::state::CorrelationCommit {
                                state: &state,
                                seen_new: &delta.new,
                                forget_outside: delta.forget_outside,
                            },
                        )?;
                        c.committed(pending);
                        Ok(n as u64)
                    })
                    .unwrap_or(Ok(0))
            })
            .await?;
        Ok(grouped + correlated)
    }
}

impl Crawler {
    /// Closes the grouping windows that have ended, raising their summaries:
    /// this instance's own (SQLite), and with shared state those of every
    /// instance that this one is first to close. Returns how many alerts
    /// were new.
    pub async fn close_windows(&self) -> Result<usize, CrawlError> {
        let mut new = self.blocking(|s| s.close_suppression_windows()).await?;
        if let Some(shared) = &self.shared
            && self.config.rules.suppression.is_some()
        {
            match shared.close_windows().await {
                Ok(summaries) if !summaries.is_empty() => {
                    new += self.blocking(move |s| s.insert_alerts(&summaries)).await?;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "closing the shared grouping windows failed; tried again later");
                }
            }
        }
        Ok(new)
    }
}
