//! Shared state: the stateful rules (correlations, first-seen rules) run at
//! one instance at a time, the leader, over the records every instance puts
//! in the shared feed (`src/state/dynamodb/feed.rs`). A window then counts
//! the events all instances read, each once, and a burst split across
//! instances is one alert.
//!
//! A round: take or renew the lease; on taking it (or after a rule reload),
//! restore the engine from the state the last leader saved and take the
//! events of its last round out of the feed's index; feed the waiting
//! events in event-time order; decide first-seen values and close idle
//! bursts; commit the alerts to this instance's outbox (the delivery claims
//! let one instance send each); save the engine's state as the next
//! generation (refused when another leader saved meanwhile: this one steps
//! back); take the round's events out of the index.
//!
//! A leader lost mid-round costs nothing: the next one restores the last
//! saved generation and feeds the same events again, raising the same
//! alerts under the same ids, which the claims send once.

use std::sync::Arc;
use std::time::Duration;

use crate::alert::ObjectRef;
use crate::alert::now_rfc3339;
use crate::rules::{RuleSet, Snapshot};
use crate::state::dynamodb::{FedRecord, SharedState};
use crate::state::{CorrelationCommit, StateStore};

/// How long the lease holds without a renewal.
pub const LEASE: Duration = Duration::from_secs(30);
/// Feed items (objects) fed per round, at most.
const BATCH: usize = 200;

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Whether this instance leads.
    pub leading: bool,
    /// Events fed to the engine.
    pub fed: usize,
    /// Alerts new in this instance's outbox.
    pub alerts: usize,
    /// The feed had more waiting than one round takes.
    pub more: bool,
}

struct Leading {
    generation: i64,
    /// How many chunks the saved generation has (let go at the next save).
    chunks: i64,
    /// The rule set the engine was restored into (a reload builds another).
    rules: Arc<RuleSet>,
}

/// This instance's part in running the stateful rules.
pub struct Leader {
    shared: Arc<SharedState>,
    state: Arc<StateStore>,
    leading: Option<Leading>,
    lease: Duration,
}

impl Leader {
    pub fn new(shared: Arc<SharedState>, state: Arc<StateStore>) -> Leader {
        Leader {
            shared,
            state,
            leading: None,
            lease: LEASE,
        }
    }

    /// With a lease of its own length (tests: a short one, to see it lapse).
    pub fn with_lease(mut self, lease: Duration) -> Leader {
        self.lease = lease;
        self
    }

    /// One round with `rules` (the current rule set); bursts idle for
    /// `idle_seconds` of wall time beyond their timespan close.
    pub async fn round(
        &mut self,
        rules: &Arc<RuleSet>,
        idle_seconds: i64,
    ) -> Result<Round, String> {
        let mut round = Round::default();
        if rules.correlations().is_empty() {
            return Ok(round);
        }
        let lead = self
            .shared
            .lead(self.lease)
            .await
            .map_err(|e| e.to_string())?;
        if !lead {
            if let Some(was) = self.leading.take() {
                was.rules.with_correlator(|c| c.reset());
                tracing::info!("another instance leads the stateful rules now");
            }
            return Ok(round);
        }
        round.leading = true;
        let restored = self
            .leading
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(&l.rules, rules));
        if !restored {
            // Nothing of an earlier leadership is trusted until restored.
            self.leading = None;
            let saved = self.shared.load_engine().await.map_err(|e| e.to_string())?;
            let fits = rules.with_correlator(|c| {
                c.reset();
                saved.state.clone().is_none_or(|state| {
                    c.import(Snapshot {
                        state,
                        seen: Vec::new(),
                    })
                })
            });
            if fits == Some(false) {
                tracing::warn!(
                    generation = saved.generation,
                    "the shared stateful rules' state does not fit the rules; starting afresh"
                );
            }
            self.shared
                .fed(&saved.done)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(
                generation = saved.generation,
                "this instance leads the stateful rules"
            );
            self.leading = Some(Leading {
                generation: saved.generation,
                chunks: saved.chunks,
                rules: Arc::clone(rules),
            });
        }
        let Some(generation) = self.leading.as_ref().map(|l| l.generation) else {
            return Ok(round);
        };
        let fed = self
            .feed_round(rules, idle_seconds, generation, round)
            .await;
        if fed.is_err()
            && let Some(was) = self.leading.take()
        {
            // What the engine holds may now differ from what was saved: it
            // is restored again next round.
            was.rules.with_correlator(|c| c.reset());
        }
        fed
    }

    /// The rest of a round, as the leader at `generation`.
    async fn feed_round(
        &mut self,
        rules: &Arc<RuleSet>,
        idle_seconds: i64,
        generation: i64,
        mut round: Round,
    ) -> Result<Round, String> {
        let batch = self
            .shared
            .waiting(BATCH)
            .await
            .map_err(|e| e.to_string())?;
        round.more = batch.len() >= BATCH;
        let events: Vec<String> = batch.iter().map(|i| i.event.clone()).collect();
        let mut records: Vec<(String, FedRecord, Option<ObjectRef>)> = batch
            .into_iter()
            .flat_map(|item| {
                let object = item.object;
                item.records
                    .into_iter()
                    .map(move |r| (event_time(&r.text), r, object.clone()))
            })
            .collect();
        // In event-time order (the put order where times tie or are missing).
        records.sort_by(|a, b| a.0.cmp(&b.0));
        round.fed = records.len();
        let (rules_now, state) = (Arc::clone(rules), Arc::clone(&self.state));
        let fed = tokio::task::spawn_blocking(move || {
            let detected_at = now_rfc3339();
            for (_, r, object) in &records {
                if !rules_now.feed_by_ids(&r.text, &r.rules, object.as_ref(), &detected_at) {
                    tracing::warn!("a shared feed record that is not a record: passed over");
                }
            }
            rules_now.with_correlator(|c| {
                c.flush_first_seen();
                c.close_idle(idle_seconds);
                let pending = c.pending().len();
                let alerts = c.pending().to_vec();
                let exported = c.export_state();
                let n = state.commit_correlation(
                    &alerts,
                    &CorrelationCommit {
                        state: &exported,
                        seen_new: &[],
                        forget_outside: None,
                    },
                )?;
                c.committed(pending);
                Ok::<_, crate::state::StateError>((n, pending, c.export_state()))
            })
        })
        .await
        .map_err(|e| e.to_string())?;
        let Some(fed) = fed else {
            return Ok(round);
        };
        let (alerts, raised, exported) = fed.map_err(|e| e.to_string())?;
        round.alerts = alerts;
        if events.is_empty() && raised == 0 {
            // Nothing fed, nothing raised: what is saved still holds (a
            // burst closed without a summary is closed again by the next
            // leader, harmlessly).
            return Ok(round);
        }
        let previous = self.leading.as_ref().map_or(0, |l| l.chunks);
        let saved = self
            .shared
            .save_engine(generation, previous, &exported, &events)
            .await
            .map_err(|e| e.to_string())?;
        let Some(chunks) = saved else {
            tracing::warn!("another instance saved the stateful rules' state: no longer leading");
            if let Some(was) = self.leading.take() {
                was.rules.with_correlator(|c| c.reset());
            }
            round.leading = false;
            return Ok(round);
        };
        if let Some(l) = self.leading.as_mut() {
            l.generation = generation + 1;
            l.chunks = chunks;
        }
        self.shared.fed(&events).await.map_err(|e| e.to_string())?;
        Ok(round)
    }

    /// Lets the lease go (at stop), so that another instance leads at once.
    pub async fn step_down(&mut self) {
        if self.leading.take().is_some()
            && let Err(e) = self.shared.step_down().await
        {
            tracing::warn!(error = %e, "could not let the stateful rules' lease go; it lapses");
        }
    }
}

/// A record's `eventTime` as written (RFC 3339 UTC sorts as text).
fn event_time(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("eventTime")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}
