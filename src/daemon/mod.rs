//! `trailwatch run`: the daemon. A crawl loop (one pass every poll interval;
//! discovery refreshed every refresh interval), a delivery loop (each sink on
//! its own, so a dead one delays no other), the HTTP endpoint, and systemd's
//! notify protocol. SIGTERM/SIGINT: stop starting objects, let those in
//! flight finish and commit (up to a deadline), exit 0. SIGHUP: reload the
//! config and the rules; a config that does not validate is rejected with a
//! log line and the running one stays.

mod console;
mod http;
pub mod metrics;
mod notify;
mod retention;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::aws::AwsClients;
use crate::config::Config;
use crate::pipeline::{Crawler, PassReport};
use crate::rules::RuleSet;
use crate::sinks::deliver::{Policy, SinkReport, deliver_all};
use crate::state::StateStore;
use metrics::Metrics;
use notify::Notifier;

const EXIT_FAILED: u8 = 1;
/// How long in-flight objects get to finish on SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(60);
/// How often the outbox is drained.
const DELIVERY_TICK: Duration = Duration::from_secs(2);

/// What the readiness probe reports.
#[derive(Debug, Default)]
struct Readiness {
    discovered: bool,
    state_error: Option<String>,
    failing_sinks: BTreeSet<String>,
    paused_by: Option<String>,
}

/// State shared by the loops and the HTTP endpoint.
pub struct Shared {
    metrics: Metrics,
    /// Wakes the delivery loop as soon as a crawl cycle has committed alerts.
    delivery_wake: tokio::sync::Notify,
    readiness: Mutex<Readiness>,
    sink_count: Mutex<usize>,
}

impl Shared {
    /// (ready, JSON naming what is degraded).
    fn readiness(&self) -> (bool, serde_json::Value) {
        let r = self.readiness.lock().unwrap_or_else(|p| p.into_inner());
        let sinks = *self.sink_count.lock().unwrap_or_else(|p| p.into_inner());
        let all_failing = sinks > 0 && r.failing_sinks.len() >= sinks;
        let ready =
            r.discovered && r.state_error.is_none() && !all_failing && r.paused_by.is_none();
        let body = serde_json::json!({
            "ready": ready,
            "discovered": r.discovered,
            "state_store": r.state_error.clone().unwrap_or_else(|| "ok".into()),
            "failing_sinks": r.failing_sinks,
            "crawl_paused_by_sink": r.paused_by,
        });
        (ready, body)
    }
}

/// What a reload swaps: the config and the rules built from it.
struct Current {
    config: Arc<Config>,
    rules: Arc<RuleSet>,
    clients: Arc<AwsClients>,
}

pub fn run(path: &Path) -> ExitCode {
    let config = match crate::app::load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::app::init_logging(&config.log);
    let runtime = match crate::app::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(daemon(path.to_path_buf(), config))
}

/// The rules for `config`; a saved correlation state that cannot be read is
/// logged, and the stateful rules start afresh.
fn load_rules(config: &Config, state: &StateStore) -> Arc<RuleSet> {
    let (rules, failure) = crate::app::load_rules_for(config, state);
    if let Some(e) = failure {
        tracing::warn!(error = %e, "the saved correlation state could not be read");
    }
    rules
}

async fn daemon(path: PathBuf, config: Config) -> ExitCode {
    let notifier = Arc::new(Notifier::from_env());
    let state = match crate::app::open_state(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let rules = load_rules(&config, &state);
    let clients = Arc::new(AwsClients::new(&config.aws).await);
    let shared = Arc::new(Shared {
        metrics: Metrics::default(),
        delivery_wake: tokio::sync::Notify::new(),
        readiness: Mutex::new(Readiness::default()),
        sink_count: Mutex::new(config.sinks.len()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    let server = match &config.server {
        Some(s) => match tokio::net::TcpListener::bind(s.listen).await {
            Ok(listener) => {
                tracing::info!(listen = %s.listen, "HTTP endpoint up");
                Some(tokio::spawn(http::serve(
                    listener,
                    Arc::clone(&shared),
                    stop_rx.clone(),
                )))
            }
            Err(e) => {
                eprintln!("error: server.listen {}: {e}", s.listen);
                return ExitCode::from(EXIT_FAILED);
            }
        },
        None => None,
    };
    let console = match &config.console {
        None => None,
        Some(c) => match console::start(c, &state, &rules, stop_rx.clone()).await {
            Ok(task) => Some(task),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        },
    };
    let current = Arc::new(RwLock::new(Arc::new(Current {
        config: Arc::new(config),
        rules,
        clients,
    })));
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let crawl = tokio::spawn(crawl_loop(
        Arc::clone(&current),
        Arc::clone(&state),
        Arc::clone(&shared),
        Arc::clone(&notifier),
        Arc::clone(&stopping),
        stop_rx.clone(),
    ));
    let deliver = tokio::spawn(delivery_loop(
        Arc::clone(&current),
        Arc::clone(&state),
        Arc::clone(&shared),
        stop_rx.clone(),
    ));
    let retention = {
        let current = Arc::clone(&current);
        tokio::spawn(retention::retention_loop(
            Arc::clone(&state),
            move || {
                let now = current.read().unwrap_or_else(|p| p.into_inner());
                now.config.store.clone()
            },
            stop_rx.clone(),
        ))
    };
    let watchdog = Notifier::watchdog_interval().map(|every| {
        let notifier = Arc::clone(&notifier);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                notifier.watchdog();
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => break,
                }
            }
        })
    });

    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("error: cannot install signal handlers");
        return ExitCode::from(EXIT_FAILED);
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(&path, &current, &state, &shared, &notifier).await,
        }
    }

    tracing::info!("stopping: in-flight objects finish, the rest wait for the next start");
    notifier.stopping();
    stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(STOP_DEADLINE, crawl).await.is_err() {
        tracing::warn!(
            "in-flight objects did not finish before the deadline; they will be read again"
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), deliver).await;
    retention.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    if let Some(s) = server {
        s.abort();
    }
    if let Some(c) = console {
        c.abort();
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn reload(
    path: &Path,
    current: &RwLock<Arc<Current>>,
    state: &Arc<StateStore>,
    shared: &Shared,
    notifier: &Notifier,
) {
    notifier.send("RELOADING=1");
    match crate::app::read_config(path) {
        Err(e) => {
            tracing::error!(error = %format!("config error: {e}"), "reload rejected; the running config stays");
        }
        Ok(config) => {
            let old = current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .config
                .clone();
            if config.state_path != old.state_path {
                tracing::warn!("state.path changed: it takes effect at the next restart");
            }
            let rules = load_rules(&config, state);
            let clients = Arc::new(AwsClients::new(&config.aws).await);
            *shared.sink_count.lock().unwrap_or_else(|p| p.into_inner()) = config.sinks.len();
            *current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Current {
                config: Arc::new(config),
                rules,
                clients,
            });
            tracing::info!("config and rules reloaded");
        }
    }
    // The file sinks open their files again at the next drain (logrotate's
    // `postrotate` sends SIGHUP, whether or not the config is accepted).
    shared.delivery_wake.notify_one();
    notifier.send("READY=1\nSTATUS=reloaded");
}

async fn crawl_loop(
    current: Arc<RwLock<Arc<Current>>>,
    state: Arc<StateStore>,
    shared: Arc<Shared>,
    notifier: Arc<Notifier>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ready_sent = false;
    let mut seen_seq = state.last_seq().unwrap_or(0);
    let mut crawler_for: Option<(usize, Crawler)> = None;
    loop {
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
            crawler_for = Some((generation, c));
        }
        let Some((_, crawler)) = crawler_for.as_ref() else {
            break;
        };
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
                    "crawl cycle"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "crawl cycle failed");
                shared
                    .readiness
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .state_error = Some(e.to_string());
            }
        }
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(now.config.crawl.poll_interval) => {}
            _ = stop.changed() => break,
        }
    }
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
    // New alerts by rule and level, read back from the outbox.
    if let Ok(new) = state.alerts_after(*seen_seq, 100_000) {
        for o in &new {
            m.add(
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
    let mut r = shared.readiness.lock().unwrap_or_else(|p| p.into_inner());
    r.discovered = r.discovered || !report.trails.is_empty() || report.discovery_errors.is_empty();
    r.state_error = None;
    r.paused_by = report.paused_by.as_ref().map(|(s, _, _)| s.clone());
}

async fn delivery_loop(
    current: Arc<RwLock<Arc<Current>>>,
    state: Arc<StateStore>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    // The breaker gives up sooner here: the next tick tries again.
    let policy = Policy {
        breaker_threshold: 3,
        ..Policy::default()
    };
    loop {
        let now = current.read().unwrap_or_else(|p| p.into_inner()).clone();
        match deliver_all(&state, &now.config.sinks, &policy).await {
            Ok(reports) => record_delivery(&shared, &reports),
            Err(e) => tracing::error!(error = %e, "delivery failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(DELIVERY_TICK) => {}
            _ = shared.delivery_wake.notified() => {}
            _ = stop.changed() => break,
        }
    }
}

fn record_delivery(shared: &Shared, reports: &[SinkReport]) {
    let m = &shared.metrics;
    let mut failing = BTreeSet::new();
    for r in reports {
        let sink = [("sink", r.sink.as_str())];
        m.add("trailwatch_sink_delivered_total", &sink, r.delivered as f64);
        m.add("trailwatch_sink_retries_total", &sink, r.retries as f64);
        for (status, n) in &r.statuses {
            m.add(
                "trailwatch_sink_requests_total",
                &[("sink", r.sink.as_str()), ("status", status.as_str())],
                *n as f64,
            );
        }
        m.add(
            "trailwatch_sink_dead_letters_total",
            &sink,
            r.dead_letters as f64,
        );
        m.set("trailwatch_outbox_depth", &sink, r.pending as f64);
        m.set(
            "trailwatch_sink_failing",
            &sink,
            if r.failing.is_some() { 1.0 } else { 0.0 },
        );
        if r.failing.is_some() {
            failing.insert(r.sink.clone());
        }
    }
    shared
        .readiness
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .failing_sinks = failing;
}
