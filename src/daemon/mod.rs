//! `trailwatch run`: the daemon. A crawl loop (one pass every poll interval;
//! discovery refreshed every refresh interval), a delivery loop (each sink on
//! its own, so a dead one delays no other), the HTTP endpoint, and systemd's
//! notify protocol. SIGTERM/SIGINT: stop starting objects, let those in
//! flight finish and commit (up to a deadline), exit 0. SIGHUP: reload the
//! config and the rules; a config that does not validate is rejected with a
//! log line and the running one stays.

mod console;
mod crawl;
mod http;
pub mod metrics;
mod notify;
mod retention;
mod share;

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
    /// SQS mode: why the queue could not be read, if it could not.
    queue_error: Option<String>,
    /// SQS mode: the targets no notification announces (bucket/prefix).
    unannounced: Vec<String>,
}

/// State shared by the loops and the HTTP endpoint.
pub struct Shared {
    metrics: Metrics,
    /// Wakes the delivery loop as soon as a crawl cycle has committed alerts.
    delivery_wake: tokio::sync::Notify,
    readiness: Mutex<Readiness>,
    sink_count: Mutex<usize>,
    /// `[state] backend = "dynamodb"` (read at start; a reload keeps it).
    shared_state: Option<Arc<crate::state::dynamodb::SharedState>>,
    /// The state store, whose last commit's failure readiness reports at once.
    store: Option<Arc<StateStore>>,
}

impl Shared {
    /// (ready, JSON naming what is degraded).
    fn readiness(&self) -> (bool, serde_json::Value) {
        let r = self.readiness.lock().unwrap_or_else(|p| p.into_inner());
        let sinks = *self.sink_count.lock().unwrap_or_else(|p| p.into_inner());
        let all_failing = sinks > 0 && r.failing_sinks.len() >= sinks;
        let store_error = r.state_error.clone().or_else(|| {
            self.store
                .as_ref()
                .and_then(|s| s.write_failure())
                .map(|e| format!("commit failed: {e}"))
        });
        let ready = r.discovered
            && store_error.is_none()
            && !all_failing
            && r.paused_by.is_none()
            && r.queue_error.is_none();
        let mut body = serde_json::json!({
            "ready": ready,
            "discovered": r.discovered,
            "state_store": store_error.unwrap_or_else(|| "ok".into()),
            "failing_sinks": r.failing_sinks,
            "crawl_paused_by_sink": r.paused_by,
        });
        if let Some(e) = &r.queue_error {
            body["queue"] = serde_json::Value::String(e.clone());
        }
        if !r.unannounced.is_empty() {
            body["no_notification_path"] = serde_json::json!(r.unannounced);
        }
        (ready, body)
    }

    fn ready_state(&self) -> std::sync::MutexGuard<'_, Readiness> {
        self.readiness.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state_error(&self, e: Option<String>) {
        self.ready_state().state_error = e;
    }

    fn set_queue_error(&self, e: Option<String>) {
        self.ready_state().queue_error = e;
    }

    fn set_paused_by(&self, sink: Option<String>) {
        self.ready_state().paused_by = sink;
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
fn load_rules(config: &Config, state: &StateStore, reload: bool) -> Arc<RuleSet> {
    let (rules, failure, errors) = crate::app::load_rules_reporting(config, state);
    if let Some(e) = failure {
        tracing::warn!(error = %e, "the saved correlation state could not be read");
    }
    // A rule file that stops loading at a reload is a blind spot: an alert,
    // and a summary once it loads again (at start, the failures are the
    // baseline: the log says them, and the config's check does).
    match crate::pipeline::blind_spots::record_rule_failures(state, &errors, reload) {
        Ok(n) if n > 0 => {
            tracing::warn!(alerts = n, "rule files not loaded raised blind-spot alerts")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "the rules' blind spots could not be recorded"),
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
    let rules = load_rules(&config, &state, false);
    let clients = Arc::new(AwsClients::new(&config.aws).await);
    let shared_state = match crate::app::shared_state(&config, &clients, &state).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    if let Some(s) = &shared_state {
        tracing::info!(instance = %s.instance(), "shared state in DynamoDB");
    }
    let shared = Arc::new(Shared {
        metrics: Metrics::default(),
        delivery_wake: tokio::sync::Notify::new(),
        readiness: Mutex::new(Readiness::default()),
        sink_count: Mutex::new(config.sinks.len()),
        shared_state,
        store: Some(Arc::clone(&state)),
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
        Some(c) => match console::start(
            c,
            &state,
            &rules,
            config.shared_state.is_some(),
            stop_rx.clone(),
        )
        .await
        {
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

    let crawl = tokio::spawn(crawl::crawl_loop(
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
    let sharing = shared.shared_state.as_ref().map(|s| {
        tokio::spawn(share::share_loop(
            Arc::clone(&state),
            Arc::clone(s),
            stop_rx.clone(),
        ))
    });
    let leading = shared.shared_state.as_ref().map(|s| {
        tokio::spawn(share::leader_loop(
            Arc::clone(&current),
            Arc::clone(&state),
            Arc::clone(s),
            Arc::clone(&shared),
            stop_rx.clone(),
        ))
    });
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
    if let Some(l) = leading {
        // The lease goes at once, for another instance to lead.
        let _ = tokio::time::timeout(Duration::from_secs(5), l).await;
    }
    if let Some(s) = sharing {
        // One last round: what was delivered at the end is shared too.
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
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
            if config.state_path != old.state_path || config.shared_state != old.shared_state {
                tracing::warn!(
                    "state.path or the shared state changed: that takes effect at the next restart"
                );
            }
            let rules = load_rules(&config, state, true);
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

async fn delivery_loop(
    current: Arc<RwLock<Arc<Current>>>,
    state: Arc<StateStore>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    // The breaker gives up sooner here: the next tick tries again.
    let policy = Policy {
        breaker_threshold: 3,
        shared: shared.shared_state.clone(),
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
