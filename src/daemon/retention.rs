//! The store's retention on a schedule: past-age alerts and activity are
//! purged a short step at a time, on the blocking pool, pausing between
//! steps so that the crawler's commits never wait more than a step (a few
//! milliseconds); then the freed pages go back to the file system.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::StoreConfig;
use crate::state::{Dictionary, Purged, Retention, StateStore};

/// How often retention runs (and how soon after start).
const EVERY: Duration = Duration::from_secs(600);
const FIRST: Duration = Duration::from_secs(30);
/// What one step may hold the store for; the batch adapts to it.
const STEP: Duration = Duration::from_millis(5);
/// The pause between steps, for the crawler's commits.
const PAUSE: Duration = Duration::from_millis(5);

pub fn retention_of(store: &StoreConfig) -> Retention {
    Retention {
        alerts: store.retention,
        activity: store.activity_retention,
    }
}

/// Runs retention every `EVERY` until stopped; `store` is read again each
/// time (a reload may change it).
pub async fn retention_loop(
    state: Arc<StateStore>,
    store: impl Fn() -> StoreConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = FIRST;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        wait = EVERY;
        let retention = retention_of(&store());
        match purge(&state, &retention, &mut stop).await {
            Ok(p) if p.rows() > 0 => tracing::info!(
                alerts = p.alerts,
                activity = p.activity,
                objects = p.objects,
                longest_step_ms = p.held.as_secs_f64() * 1000.0,
                "retention: purged"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention: purge failed; tried again later"),
        }
    }
}

/// Purges what is past `retention` now, a step at a time; stops early when
/// the daemon stops.
pub async fn purge(
    state: &Arc<StateStore>,
    retention: &Retention,
    stop: &mut watch::Receiver<bool>,
) -> Result<Purged, String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut total = Purged::default();
    let mut batch = 256usize;
    loop {
        if *stop.borrow() {
            return Ok(total);
        }
        let (s, r) = (Arc::clone(state), *retention);
        let step = tokio::task::spawn_blocking(move || s.purge_step(&r, now, batch))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        total.alerts += step.alerts;
        total.activity += step.activity;
        total.objects += step.objects;
        total.held = total.held.max(step.held);
        if step.rows() == 0 {
            break;
        }
        batch = crate::state::next_batch(batch, step.held, STEP);
        tokio::time::sleep(PAUSE).await;
    }
    for table in [Dictionary::Principals, Dictionary::Events] {
        let mut after = Some(0);
        while let Some(from) = after {
            if *stop.borrow() {
                return Ok(total);
            }
            let s = Arc::clone(state);
            let (_, next) =
                tokio::task::spawn_blocking(move || s.sweep_dictionary(table, from, 500))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            after = next;
            tokio::time::sleep(PAUSE).await;
        }
    }
    loop {
        let s = Arc::clone(state);
        let free = tokio::task::spawn_blocking(move || s.reclaim(500))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if free == 0 || *stop.borrow() {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}
