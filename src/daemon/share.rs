//! With the state shared in DynamoDB, every few seconds: this instance's
//! new alerts go to the shared alerts table, and what the other instances
//! put there comes into this instance's lookups (never its outbox), so that
//! `trailwatch alerts` and the console on any instance see every alert; and
//! every two seconds, this instance leads the stateful rules or waits its
//! turn.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::pipeline::rule_leader::Leader;
use crate::state::StateStore;
use crate::state::dynamodb::{SharedState, sync_alerts};

const EVERY: Duration = Duration::from_secs(10);

pub async fn share_loop(
    state: Arc<StateStore>,
    shared: Arc<SharedState>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match sync_alerts(&state, &shared).await {
            Ok((put, pulled)) if put + pulled > 0 => {
                tracing::debug!(put, pulled, "alerts shared");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sharing alerts failed; tried again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {
                // One last round: what was committed at the end is shared too.
                if let Err(e) = sync_alerts(&state, &shared).await {
                    tracing::warn!(error = %e, "sharing alerts at stop failed");
                }
                return;
            }
        }
    }
}

/// How often the stateful rules' leader (or who waits to lead) comes round.
const LEADER_EVERY: Duration = Duration::from_secs(2);

/// With the state shared in DynamoDB: this instance takes its turn at
/// running the stateful rules over every instance's records
/// (`src/pipeline/rule_leader.rs`), and lets the lease go at stop.
pub(super) async fn leader_loop(
    current: Arc<RwLock<Arc<super::Current>>>,
    state: Arc<StateStore>,
    shared_state: Arc<SharedState>,
    shared: Arc<super::Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut leader = Leader::new(shared_state, state);
    loop {
        let (rules, idle) = {
            let now = current.read().unwrap_or_else(|p| p.into_inner());
            (
                Arc::clone(&now.rules),
                now.config.crawl.lookback.as_secs() as i64,
            )
        };
        let mut pause = LEADER_EVERY;
        match leader.round(&rules, idle).await {
            Ok(round) => {
                let leads = if round.leading { 1.0 } else { 0.0 };
                shared
                    .metrics
                    .set("trailwatch_stateful_rules_leader", &[], leads);
                shared
                    .metrics
                    .add("trailwatch_stateful_rules_fed_total", &[], round.fed as f64);
                if round.alerts > 0 {
                    shared.delivery_wake.notify_one();
                }
                if round.more {
                    pause = Duration::ZERO;
                }
                if round.fed > 0 {
                    tracing::debug!(fed = round.fed, alerts = round.alerts, "stateful rules fed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the stateful rules' round failed; tried again later")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {
                leader.step_down().await;
                return;
            }
        }
    }
}
