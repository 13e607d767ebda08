//! Shared state (`[state] backend = "dynamodb"`): who delivers each alert.
//! An HTTP sink claims a batch of alerts at once, keeps each claim alive
//! while it is still sending (a claim older than half the claim timeout is
//! renewed before the next attempt, so that a slow or retried send never
//! outlives it), and marks each alert delivered as soon as the receiver has
//! answered, before its outbox position is committed. A crash can then leave
//! at most the alert in flight sent and unmarked: the one second delivery the
//! contract allows, made by the restarted instance that still owns the claim.

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;

use super::policy::Policy;
use crate::state::Outboxed;
use crate::state::dynamodb::{Claim, SharedError};

/// How many claims are in flight at once.
const CLAIMS_AT_ONCE: usize = 16;

/// A batch's claims, by outbox sequence number, and when they were taken.
pub struct Claims {
    by_seq: HashMap<i64, Result<Claim, SharedError>>,
    taken: Instant,
}

impl Claims {
    /// Claims the delivery of each alert of `batch` the sink selects; no
    /// claims without shared state.
    pub async fn take(
        policy: &Policy,
        sink: &str,
        batch: &[Outboxed],
        selects: impl Fn(&Outboxed) -> bool,
    ) -> Claims {
        let taken = Instant::now();
        let Some(shared) = &policy.shared else {
            return Claims {
                by_seq: HashMap::new(),
                taken,
            };
        };
        let wanted: Vec<(i64, String)> = batch
            .iter()
            .filter(|o| selects(o))
            .map(|o| (o.seq, o.alert.id.clone()))
            .collect();
        let by_seq = futures::stream::iter(wanted)
            .map(|(seq, id)| async move { (seq, shared.claim(sink, &id).await) })
            .buffer_unordered(CLAIMS_AT_ONCE)
            .collect()
            .await;
        Claims { by_seq, taken }
    }

    /// This batch's claim on one alert (None without shared state), and a
    /// lease on it to keep alive while sending.
    pub fn remove(&mut self, seq: i64) -> Option<Result<(Claim, Lease), SharedError>> {
        let taken = self.taken;
        self.by_seq
            .remove(&seq)
            .map(|r| r.map(|claim| (claim, Lease { taken })))
    }
}

/// This instance's live claim on one alert.
pub struct Lease {
    taken: Instant,
}

impl Lease {
    /// Before an attempt: renews the claim once half its timeout has passed.
    /// `Elsewhere` when another instance took it over meanwhile (the claim
    /// lapsed): that instance sends it, this one must not.
    pub async fn keep(
        &mut self,
        policy: &Policy,
        sink: &str,
        alert: &str,
    ) -> Result<Claim, SharedError> {
        let Some(shared) = &policy.shared else {
            return Ok(Claim::Ours);
        };
        if self.taken.elapsed() < shared.claim_timeout() / 2 {
            return Ok(Claim::Ours);
        }
        let renewed = Instant::now();
        let claim = shared.claim(sink, alert).await?;
        if claim == Claim::Ours {
            self.taken = renewed;
        }
        Ok(claim)
    }
}

/// After the receiver answered (or refused for good): marks the alert
/// delivered, so that no other instance's claim takes it over. A mark that
/// fails leaves the claim to lapse; another instance holding the alert may
/// then send it once more (a second delivery the contract allows, as after
/// a crash between sending and committing).
pub async fn mark_delivered(policy: &Policy, sink: &str, alert: &str) {
    let Some(shared) = &policy.shared else {
        return;
    };
    if let Err(e) = shared.delivered(sink, alert).await {
        tracing::warn!(sink = %sink, alert = %alert, error = %e,
            "delivered, but not marked so in the shared state");
    }
}
