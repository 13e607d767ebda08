//! With the state shared in DynamoDB, every few seconds: this instance's
//! new alerts go to the shared alerts table, and what the other instances
//! put there comes into this instance's lookups (never its outbox), so that
//! `trailwatch alerts` and the console on any instance see every alert.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

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
