//! The crawl loop. Polling: one pass every poll interval. SQS: rounds of
//! the queue back to back (each long-polls), a polling pass as the
//! reconciler every reconcile interval (the first at start), and the
//! stateful rules' bursts and the grouping windows closed every poll
//! interval. A reload may switch between the two.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::aws::notification_path::NotificationPath;
use crate::aws::queue::{Queue, queue_region};
use crate::config::{SourceConfig, SqsSource};
use crate::pipeline::{Crawler, Feed, PassReport, QueueReport};
use crate::state::StateStore;

use super::notify::Notifier;
use super::{Current, Shared};

/// How long the loop waits after the queue could not be read.
const QUEUE_RETRY: Duration = Duration::from_secs(5);

pub(super) async fn crawl_loop(
    current: Arc<RwLock<Arc<Current>>>,
    state: Arc<StateStore>,
    shared: Arc<Shared>,
    notifier: Arc<Notifier>,
    stopping: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ready_sent = false;
    let mut seen_seq = state.last_seq().unwrap_or(0);
    let mut crawler_for: Option<(usize, Crawler)> = None;
    let mut feed: Option<Feed> = None;
    let mut last_pass: Option<Instant> = None;
    let mut last_close = Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        let now = current.read().unwrap_or_else(|p| p.into_inner()).clone();
        // One crawler per config generation (it caches discovery).
        let generation = Arc::as_ptr(&now) as usize;
        if crawler_for.as_ref().is_none_or(|(g, _)| *g != generation) {
            let mut c = Crawler::new(
                Arc::clone(&now.clients),
                Arc::clone(&state),
                Arc::clone(&now.rules),
                Arc::clone(&now.config),
            );
            // SIGTERM stops the pass from starting more objects.
            c.stop = Arc::clone(&stopping);
            c.shared = shared.shared_state.clone();
            if let Some((_, previous)) = &crawler_for {
                c.carry_clock(previous);
            }
            crawler_for = Some((generation, c));
        }
        let Some((_, crawler)) = crawler_for.as_ref() else {
            break;
        };
        let sqs = match &now.config.source {
            SourceConfig::Poll => None,
            SourceConfig::Sqs(s) => Some(s),
        };
        let pass_due = match sqs {
            None => true,
            Some(s) => last_pass.is_none_or(|t| t.elapsed() >= s.reconcile_interval),
        };
        if pass_due {
            last_pass = Some(Instant::now());
            last_close = Instant::now();
            let mut result = crawler.pass().await;
            if result.is_ok()
                && let Err(e) = crawler.close_bursts(false).await
            {
                result = Err(e);
            }
            match result {
                Ok(report) => {
                    record_pass(&shared, &report, &state, &mut seen_seq);
                    shared.delivery_wake.notify_one();
                    let status = status_line(&report);
                    if !ready_sent {
                        notifier.ready(&status);
                        ready_sent = true;
                    } else {
                        notifier.status(&status);
                    }
                    let totals = report.totals();
                    tracing::info!(
                        trails = report.trails.len(),
                        targets = report.targets.len(),
                        processed = totals.processed,
                        records = totals.records,
                        new_alerts = totals.new_alerts,
                        reconcile = sqs.is_some(),
                        left_for_later = totals.retry_later,
                        "crawl cycle"
                    );
                    // Objects left for later are said, with why (the first
                    // reason of each target): S3 refusing or failing, or the
                    // state store not taking their commit.
                    for t in report.targets.iter().filter(|t| t.retry_later > 0) {
                        tracing::warn!(
                            bucket = %t.bucket,
                            left = t.retry_later,
                            reason = t.errors.first().map(String::as_str).unwrap_or(""),
                            "objects left for the next pass"
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "crawl cycle failed");
                    shared.set_state_error(Some(e.to_string()));
                }
            }
        }
        let Some(settings) = sqs else {
            tokio::select! {
                _ = tokio::time::sleep(now.config.crawl.poll_interval) => {}
                _ = stop.changed() => break,
            }
            continue;
        };
        if last_close.elapsed() >= now.config.crawl.poll_interval {
            last_close = Instant::now();
            if let Err(e) = crawler.close_bursts(false).await {
                tracing::error!(error = %e, "closing bursts failed");
            }
            match crawler.close_windows().await {
                Ok(n) if n > 0 => {
                    tracing::info!(summaries = n, "suppression windows closed with repeats")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "closing suppression windows failed"),
            }
        }
        let wait = queue_round(
            crawler,
            &mut feed,
            settings,
            &now,
            &shared,
            &state,
            &mut seen_seq,
        )
        .await;
        if let Some(wait) = wait {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
        }
    }
}

/// One round of the queue; how long to wait before the next, if at all.
async fn queue_round(
    crawler: &Crawler,
    feed: &mut Option<Feed>,
    settings: &SqsSource,
    now: &Current,
    shared: &Shared,
    state: &StateStore,
    seen_seq: &mut i64,
) -> Option<Duration> {
    if feed.as_ref().is_none_or(|f| f.settings != *settings) {
        let region = queue_region(&settings.queue_url);
        let client = now.clients.sqs(region.as_deref());
        *feed = Some(Feed::new(
            Queue::new(client, &settings.queue_url),
            settings.clone(),
        ));
    }
    let feed = feed.as_mut()?;
    // A sink whose backlog is full pauses the queue too (the messages wait).
    match crawler.full_backlog().await {
        Ok(Some((sink, pending, bound))) => {
            tracing::warn!(sink = %sink, pending, bound, "queue paused: the sink's backlog is full");
            shared.set_paused_by(Some(sink));
            return Some(now.config.crawl.poll_interval);
        }
        Ok(None) => shared.set_paused_by(None),
        Err(e) => {
            shared.set_state_error(Some(e.to_string()));
            return Some(QUEUE_RETRY);
        }
    }
    let targets = match crawler.current_targets().await {
        Ok(t) => t,
        Err(e) => {
            shared.set_state_error(Some(e.to_string()));
            return Some(QUEUE_RETRY);
        }
    };
    match crawler.read_queue(feed, &targets).await {
        Ok(report) => {
            shared.set_queue_error(None);
            record_queue(shared, &report, state, seen_seq);
            if report.objects > 0 {
                shared.delivery_wake.notify_one();
                tracing::info!(
                    received = report.received,
                    objects = report.objects,
                    records = report.records,
                    new_alerts = report.new_alerts,
                    deleted = report.deleted,
                    left = report.left,
                    "queue round"
                );
            }
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "the queue could not be read");
            shared.set_queue_error(Some(e.to_string()));
            Some(QUEUE_RETRY)
        }
    }
}

fn record_queue(shared: &Shared, r: &QueueReport, state: &StateStore, seen_seq: &mut i64) {
    let m = &shared.metrics;
    for (outcome, n) in [
        ("received", r.received),
        ("deleted", r.deleted),
        ("left", r.left),
        ("dead_lettered", r.dead_lettered),
    ] {
        m.add(
            "trailwatch_sqs_messages_total",
            &[("outcome", outcome)],
            n as f64,
        );
    }
    for (reason, n) in &r.skipped {
        m.add(
            "trailwatch_sqs_skipped_total",
            &[("reason", reason)],
            *n as f64,
        );
    }
    m.add(
        "trailwatch_sqs_lease_extensions_total",
        &[],
        r.extended as f64,
    );
    m.add("trailwatch_objects_processed_total", &[], r.objects as f64);
    m.add("trailwatch_objects_failed_total", &[], r.failed as f64);
    m.add("trailwatch_records_total", &[], r.records as f64);
    count_new_alerts(shared, state, seen_seq);
}
fn status_line(report: &PassReport) -> String {
    let processed = report.totals().processed;
    let lag = report.targets.iter().filter_map(|t| t.lag_seconds).max();
    let mut s = format!(
        "watching {} trails, {} buckets; last cycle {} objects",
        report.trails.iter().filter(|t| t.logging).count(),
        report.targets.len(),
        processed
    );
    if let Some(lag) = lag {
        s.push_str(&format!(", lag {lag}s"));
    }
    if let Some((sink, _, _)) = &report.paused_by {
        s.push_str(&format!("; crawl paused: sink {sink} backlog full"));
    }
    s
}

fn record_pass(shared: &Shared, report: &PassReport, state: &StateStore, seen_seq: &mut i64) {
    let m = &shared.metrics;
    m.add("trailwatch_crawl_cycles_total", &[], 1.0);
    for t in &report.targets {
        m.add("trailwatch_objects_listed_total", &[], t.listed as f64);
        m.add(
            "trailwatch_objects_processed_total",
            &[],
            t.processed as f64,
        );
        m.add("trailwatch_objects_failed_total", &[], t.failed as f64);
        m.add("trailwatch_records_total", &[], t.records as f64);
        let prefix = t.prefix.clone().unwrap_or_default();
        for (cursor, lag) in &t.cursor_lag_seconds {
            let (account, region) = cursor.split_once('/').unwrap_or((cursor.as_str(), ""));
            m.set(
                "trailwatch_cursor_lag_seconds",
                &[
                    ("bucket", &t.bucket),
                    ("prefix", &prefix),
                    ("account", account),
                    ("region", region),
                ],
                *lag as f64,
            );
        }
    }
    let logging = report.trails.iter().filter(|t| t.logging).count();
    m.set(
        "trailwatch_trails",
        &[("status", "logging")],
        logging as f64,
    );
    m.set(
        "trailwatch_trails",
        &[("status", "not_logging")],
        (report.trails.len() - logging) as f64,
    );
    count_new_alerts(shared, state, seen_seq);
    let mut r = shared.readiness.lock().unwrap_or_else(|p| p.into_inner());
    r.discovered = r.discovered || !report.trails.is_empty() || report.discovery_errors.is_empty();
    // A pass whose commits failed leaves the store degraded until one
    // commits again.
    r.state_error = report.commit_failure().map(str::to_owned);
    r.paused_by = report.paused_by.as_ref().map(|(s, _, _)| s.clone());
    r.unannounced = report
        .targets
        .iter()
        .filter(|t| t.notification == Some(NotificationPath::None))
        .map(|t| format!("s3://{}/{}", t.bucket, t.prefix.as_deref().unwrap_or("")))
        .collect();
}

/// New alerts by rule and level, read back from the outbox.
fn count_new_alerts(shared: &Shared, state: &StateStore, seen_seq: &mut i64) {
    if let Ok(new) = state.alerts_after(*seen_seq, 100_000) {
        for o in &new {
            shared.metrics.add(
                "trailwatch_alerts_total",
                &[
                    ("rule", &o.alert.rule.id),
                    ("level", &o.alert.rule.severity),
                ],
                1.0,
            );
            *seen_seq = o.seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::TargetReport;

    fn shared() -> Shared {
        Shared {
            metrics: crate::daemon::metrics::Metrics::default(),
            delivery_wake: tokio::sync::Notify::new(),
            readiness: std::sync::Mutex::new(crate::daemon::Readiness::default()),
            sink_count: std::sync::Mutex::new(1),
            shared_state: None,
            store: None,
        }
    }

    fn pass(errors: Vec<String>) -> PassReport {
        PassReport {
            trails: Vec::new(),
            discovery_errors: Default::default(),
            targets: vec![TargetReport {
                bucket: "b".into(),
                retry_later: errors.len() as u64,
                errors,
                ..TargetReport::default()
            }],
            trail_alerts: 0,
            paused_by: None,
        }
    }

    /// Found by the chaos suite: with the state's disk full, or its file
    /// locked by another process, every object's commit failed, yet passes
    /// "succeeded" with nothing processed: no warning, and /readyz said ready.
    #[test]
    fn a_pass_whose_commits_failed_leaves_readiness_degraded_until_one_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateStore::open(&dir.path().join("s.db")).expect("open");
        let shared = shared();
        let mut seq = 0;
        let full = pass(vec![
            "commit failed: state store s.db: database or disk is full".into(),
        ]);
        record_pass(&shared, &full, &state, &mut seq);
        let (ready, body) = shared.readiness();
        assert!(!ready, "{body}");
        assert!(
            body["state_store"]
                .as_str()
                .is_some_and(|s| s.contains("disk is full")),
            "{body}"
        );
        // S3 throttling leaves objects for later too, but the store is fine.
        let throttled = pass(vec!["s3://b/k: SlowDown".into()]);
        record_pass(&shared, &throttled, &state, &mut seq);
        let (ready, body) = shared.readiness();
        assert!(ready, "{body}");
    }
}
