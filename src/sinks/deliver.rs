//! Delivering the outbox to an HTTP sink (Datadog or a webhook): in order,
//! under the sink's rate limit, retrying transient failures with jittered
//! exponential backoff that honours the receiver's wait hints, moving
//! permanent failures to the dead-letter list, and giving up for now (the
//! circuit opens) after several failures in a row. The sink's position is
//! committed after every alert, so a crash repeats at most the alert in flight.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;

use super::claims::{Claims, mark_delivered};
use super::http::{self, Attempt};
pub use super::policy::Policy;
use super::route::selects;
use super::{datadog, webhook};
use crate::alert::{Alert, AlertContext};
use crate::config::{Route, SinkConfig, SinkKind};
use crate::state::dynamodb::Claim;
use crate::state::{StateError, StateStore};

/// A Datadog or webhook sink, ready to send.
pub struct HttpSink {
    pub name: String,
    /// The config's Datadog or webhook settings.
    kind: SinkKind,
    /// What a webhook sends when it has no template: the alert or OCSF.
    format: crate::config::AlertFormat,
    /// A webhook's method, parsed once.
    method: reqwest::Method,
    route: Route,
    client: reqwest::Client,
    /// At most `burst + per_second × T` requests in any T seconds, retries included.
    limiter: Option<DefaultDirectRateLimiter>,
}

/// After a sink's attempt came to an end: a dead letter opens its blind
/// spot (an alert for the other sinks); a delivery closes an open one.
async fn note_blind(
    policy: &Policy,
    state: &Arc<StateStore>,
    sink: &str,
    refused: Option<(String, Option<u16>)>,
) -> Result<(), StateError> {
    let name = sink.to_owned();
    let episodes = match refused {
        Some((id, status)) => {
            blocking(state, move |s| {
                super::blind::dead_lettered(s, &name, &id, status)
            })
            .await?
        }
        None => {
            let known = match policy.blind_known() {
                Some(k) => k,
                None => blocking(state, super::blind::open).await?,
            };
            if known.contains_key(sink) {
                blocking(state, move |s| super::blind::delivered(s, &name)).await?
            } else {
                known
            }
        }
    };
    policy.set_blind(episodes);
    Ok(())
}

/// What one drain did.
#[derive(Debug, Clone, Default)]
pub struct SinkReport {
    pub sink: String,
    pub delivered: u64,
    pub dead_letters: u64,
    pub retries: u64,
    /// Requests whose outcome is unknown (timed out after sending).
    pub unknown: u64,
    /// Alerts this sink has yet to deliver.
    pub pending: u64,
    /// Alerts another instance delivered (or is delivering): skipped.
    pub elsewhere: u64,
    /// Why the circuit is open, when it is.
    pub failing: Option<String>,
    /// Requests by outcome: the HTTP status (`202`, `429`, ...), `timeout`
    /// or `error` (connection refused or dropped).
    pub statuses: std::collections::BTreeMap<String, u64>,
}

/// The sink's HTTP client: the system's certificate authorities and its
/// own `ca_file`; `HTTPS_PROXY` / `HTTP_PROXY` with `NO_PROXY`, the metadata
/// addresses and loopback always direct.
fn http_client(config: &SinkConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("trailwatch/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "ca_file {}: no PEM certificate in it",
                path.display()
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let proxies = crate::config::network::Proxies::from_env();
    let direct = || reqwest::NoProxy::from_string(&proxies.no_proxy);
    if let Some(url) = &proxies.https {
        let proxy = reqwest::Proxy::https(url).map_err(|e| format!("HTTPS_PROXY: {e}"))?;
        builder = builder.proxy(proxy.no_proxy(direct()));
    }
    if let Some(url) = &proxies.http {
        let proxy = reqwest::Proxy::http(url).map_err(|e| format!("HTTP_PROXY: {e}"))?;
        builder = builder.proxy(proxy.no_proxy(direct()));
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// One line: what the drain delivered, and what is left or failing.
impl std::fmt::Display for SinkReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sink {}: {} delivered, {} dead letters, {} retries, {} pending",
            self.sink, self.delivered, self.dead_letters, self.retries, self.pending
        )?;
        match &self.failing {
            Some(e) => write!(f, " (failing: {e})"),
            None => Ok(()),
        }
    }
}

impl HttpSink {
    /// The HTTP sink for `config`, or `None` for a local (file, stdout) sink.
    pub fn new(config: &SinkConfig) -> Result<Option<HttpSink>, String> {
        let method = match &config.kind {
            SinkKind::Datadog { .. } => reqwest::Method::POST,
            SinkKind::Webhook { method, .. } => reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|e| format!("method {method}: {e}"))?,
            SinkKind::File { .. } | SinkKind::Stdout => return Ok(None),
        };
        let client = http_client(config)?;
        let limiter = config.rate_limit.map(|rl| {
            let period = Duration::from_secs_f64(1.0 / rl.per_second);
            let burst = NonZeroU32::new(rl.burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(burst);
            RateLimiter::direct(quota)
        });
        Ok(Some(HttpSink {
            name: config.name.clone(),
            kind: config.kind.clone(),
            format: config.format,
            method,
            route: config.route.clone(),
            client,
            limiter,
        }))
    }

    /// Whether this sink's route takes the alert.
    pub fn selects(&self, alert: &Alert) -> bool {
        selects(&self.route, alert)
    }

    /// Whether this sink takes an outbox item: its route selects it, and it
    /// is not an alert kept from this sink (a blind spot about it).
    fn takes(&self, item: &crate::state::Outboxed) -> bool {
        self.selects(&item.alert) && !item.context.skip_sinks.contains(&self.name)
    }

    /// One request, after the rate limiter lets it through.
    pub async fn attempt(&self, alert: &Alert, context: &AlertContext) -> Attempt {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let request = match &self.kind {
            SinkKind::Datadog { url, api_key, tags } => {
                let body = datadog::event(alert, context, tags, time::OffsetDateTime::now_utc());
                self.client
                    .post(url)
                    .header("DD-API-KEY", api_key.expose())
                    .json(&body)
            }
            SinkKind::Webhook {
                url,
                headers,
                body_template,
                signing_secret,
                ..
            } => {
                let body =
                    match webhook::render(body_template.as_deref(), self.format, alert, context) {
                        Ok(b) => b,
                        Err(e) => {
                            return Attempt::Permanent {
                                status: 0,
                                body: format!("body template: {e}"),
                            };
                        }
                    };
                let mut request = self
                    .client
                    .request(self.method.clone(), url)
                    .header("content-type", "application/json");
                for (name, value) in headers {
                    request = request.header(name, value.expose());
                }
                if let Some(secret) = signing_secret {
                    let t = time::OffsetDateTime::now_utc().unix_timestamp();
                    request = request.header(
                        webhook::SIGNATURE_HEADER,
                        webhook::signature(secret.expose().as_bytes(), t, &body),
                    );
                }
                request.body(body)
            }
            // `new` gives no sink for these.
            SinkKind::File { .. } | SinkKind::Stdout => {
                return Attempt::Permanent {
                    status: 0,
                    body: "not an HTTP sink".into(),
                };
            }
        };
        http::send(request).await
    }
}

/// Full-jitter exponential backoff for the `n`th failure in a row.
fn backoff(policy: &Policy, n: u32) -> Duration {
    let ceiling = policy
        .base
        .saturating_mul(1u32 << n.min(16))
        .min(policy.cap);
    let millis = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

async fn blocking<T: Send + 'static>(
    state: &Arc<StateStore>,
    f: impl FnOnce(&StateStore) -> Result<T, StateError> + Send + 'static,
) -> Result<T, StateError> {
    let state = Arc::clone(state);
    match tokio::task::spawn_blocking(move || f(&state)).await {
        Ok(r) => r,
        Err(e) => Err(StateError {
            path: "(task)".into(),
            source: crate::state::StateFault::Task(e.to_string()),
        }),
    }
}

/// Delivers what waits for `sink` in the outbox, until it is drained or the
/// circuit opens.
pub async fn drain(
    sink: &HttpSink,
    state: &Arc<StateStore>,
    policy: &Policy,
) -> Result<SinkReport, StateError> {
    let mut report = SinkReport {
        sink: sink.name.clone(),
        ..SinkReport::default()
    };
    let name = sink.name.clone();
    let (stored, _) = blocking(state, move |s| s.sink_offset(&name)).await?;
    let mut offset = policy.resume_from(&sink.name, stored);
    let mut failures_in_a_row = 0u32;
    'outer: loop {
        let batch = blocking(state, move |s| s.alerts_after(offset, 100)).await?;
        if batch.is_empty() {
            break;
        }
        let mut claims = Claims::take(policy, &sink.name, &batch, |o| sink.takes(o)).await;
        for item in batch {
            if !sink.takes(&item) {
                offset = item.seq;
                continue;
            }
            let mut lease = None;
            match claims.remove(item.seq) {
                None => {}
                Some(Ok((Claim::Ours, l))) => lease = Some(l),
                Some(Ok((Claim::Elsewhere, _))) => {
                    report.elsewhere += 1;
                    offset = item.seq;
                    continue;
                }
                Some(Err(e)) => {
                    tracing::warn!(sink = %sink.name, error = %e, "the shared state cannot be reached; alerts wait in the outbox");
                    report.failing = Some(e.to_string());
                    break 'outer;
                }
            }
            let mut refused = None;
            let mut ended = false;
            loop {
                if let Some(lease) = &mut lease {
                    match lease.keep(policy, &sink.name, &item.alert.id).await {
                        Ok(Claim::Ours) => {}
                        Ok(Claim::Elsewhere) => break,
                        Err(e) => {
                            tracing::warn!(sink = %sink.name, error = %e, "the shared state cannot be reached; alerts wait in the outbox");
                            report.failing = Some(e.to_string());
                            break 'outer;
                        }
                    }
                }
                let attempt = sink.attempt(&item.alert, &item.context).await;
                *report.statuses.entry(attempt.status_label()).or_default() += 1;
                match attempt {
                    Attempt::Delivered => {
                        // The receiver has it; its offset is not yet committed.
                        crate::kill_point!("sinks.http.after_answer");
                        failures_in_a_row = 0;
                        report.delivered += 1;
                        ended = true;
                        break;
                    }
                    Attempt::Permanent { status, body } => {
                        failures_in_a_row = 0;
                        report.dead_letters += 1;
                        tracing::warn!(sink = %sink.name, alert = %item.alert.id, status, "alert refused for good; kept as a dead letter");
                        let (name, seq) = (sink.name.clone(), item.seq);
                        let status = (status != 0).then_some(status);
                        blocking(state, move |s| s.add_dead_letter(&name, seq, status, &body))
                            .await?;
                        refused = Some((item.alert.id.clone(), status));
                        ended = true;
                        break;
                    }
                    Attempt::Transient {
                        reason,
                        wait,
                        outcome_unknown,
                        ..
                    } => {
                        failures_in_a_row += 1;
                        report.retries += 1;
                        if outcome_unknown {
                            report.unknown += 1;
                        }
                        let too_long = wait.is_some_and(|w| w > policy.max_wait);
                        if failures_in_a_row >= policy.breaker_threshold || too_long {
                            tracing::warn!(sink = %sink.name, error = %reason, "sink failing; alerts wait in the outbox");
                            report.failing = Some(reason);
                            break 'outer;
                        }
                        let pause = wait.unwrap_or_else(|| backoff(policy, failures_in_a_row));
                        tracing::debug!(sink = %sink.name, error = %reason, ?pause, "retrying");
                        tokio::time::sleep(pause).await;
                    }
                }
            }
            if !ended {
                // Our claim lapsed and another instance took the alert over.
                report.elsewhere += 1;
                offset = item.seq;
                continue;
            }
            // Marked before its position is committed: a crash in between
            // leaves this one alert to send again (the contract allows it).
            mark_delivered(policy, &sink.name, &item.alert.id).await;
            // Delivered (or kept as a dead letter): never sent again by this
            // process, even if its offset cannot be stored just now.
            policy.note_sent(&sink.name, item.seq);
            note_blind(policy, state, &sink.name, refused).await?;
            offset = item.seq;
            let name = sink.name.clone();
            blocking(state, move |s| s.set_sink_offset(&name, offset, None)).await?;
        }
        let name = sink.name.clone();
        blocking(state, move |s| s.set_sink_offset(&name, offset, None)).await?;
    }
    let name = sink.name.clone();
    report.pending = blocking(state, move |s| s.pending(&name)).await?;
    Ok(report)
}

/// Re-sends the dead letters (those with the given alert ids, or all) of
/// each HTTP sink of `sinks` that `chosen` picks by name; per sink, what was
/// delivered and what is still dead, or why the sink could not be built.
pub async fn retry_sinks(
    sinks: &[SinkConfig],
    chosen: impl Fn(&str) -> bool,
    state: &Arc<StateStore>,
    ids: &[String],
    policy: &Policy,
) -> Result<Vec<(String, Result<(u64, u64), String>)>, StateError> {
    let mut out = Vec::new();
    for config in sinks.iter().filter(|s| chosen(&s.name)) {
        let sink = match HttpSink::new(config) {
            Ok(Some(sink)) => sink,
            Ok(None) => continue,
            Err(e) => {
                out.push((config.name.clone(), Err(e)));
                continue;
            }
        };
        let outcome = retry_dead_letters(&sink, state, ids, policy).await?;
        out.push((config.name.clone(), Ok(outcome)));
    }
    Ok(out)
}

/// Re-sends dead letters (all of the sink's, or those with the given alert
/// ids); those delivered leave the list. Returns (delivered, still dead).
pub async fn retry_dead_letters(
    sink: &HttpSink,
    state: &Arc<StateStore>,
    ids: &[String],
    policy: &Policy,
) -> Result<(u64, u64), StateError> {
    let name = sink.name.clone();
    let dead = blocking(state, move |s| s.dead_letters(Some(&name))).await?;
    let (mut delivered, mut still) = (0, 0);
    for letter in dead
        .into_iter()
        .filter(|d| ids.is_empty() || ids.contains(&d.alert_id))
    {
        let seq = letter.seq;
        let Some(item) = blocking(state, move |s| s.alert_at(seq)).await? else {
            continue;
        };
        let mut tries = 0;
        let outcome = loop {
            match sink.attempt(&item.alert, &item.context).await {
                Attempt::Transient { wait, .. } if tries + 1 < policy.breaker_threshold => {
                    tries += 1;
                    tokio::time::sleep(wait.unwrap_or_else(|| backoff(policy, tries))).await;
                }
                other => break other,
            }
        };
        match outcome {
            Attempt::Delivered => {
                delivered += 1;
                let name = sink.name.clone();
                blocking(state, move |s| s.remove_dead_letter(&name, seq)).await?;
            }
            Attempt::Permanent { status, body } => {
                still += 1;
                let name = sink.name.clone();
                let status = (status != 0).then_some(status);
                blocking(state, move |s| s.add_dead_letter(&name, seq, status, &body)).await?;
            }
            Attempt::Transient { .. } => still += 1,
        }
    }
    Ok((delivered, still))
}

/// Delivers the outbox to every sink at once: local sinks on the blocking
/// pool, HTTP sinks each on its own, so that a slow or dead sink holds up no
/// other. Returns one report per sink, in config order.
pub async fn deliver_all(
    state: &Arc<StateStore>,
    sinks: &[SinkConfig],
    policy: &Policy,
) -> Result<Vec<SinkReport>, StateError> {
    let local_state = Arc::clone(state);
    let local_sinks = sinks.to_vec();
    let local =
        tokio::task::spawn_blocking(move || super::local::drain_local(&local_state, &local_sinks));
    let mut http_sinks = Vec::new();
    let mut broken = Vec::new();
    for config in sinks {
        match HttpSink::new(config) {
            Ok(Some(sink)) => http_sinks.push(sink),
            Ok(None) => {}
            Err(e) => broken.push(SinkReport {
                sink: config.name.clone(),
                failing: Some(e),
                ..SinkReport::default()
            }),
        }
    }
    let remote =
        futures::future::join_all(http_sinks.iter().map(|s| drain(s, state, policy))).await;
    let local = match local.await {
        Ok(r) => r.map_err(|super::local::DrainError::State(e)| e)?,
        Err(e) => {
            return Err(StateError {
                path: "(task)".into(),
                source: crate::state::StateFault::Task(e.to_string()),
            });
        }
    };
    let mut by_name: std::collections::HashMap<String, SinkReport> =
        std::collections::HashMap::new();
    for d in local {
        by_name.insert(
            d.sink.clone(),
            SinkReport {
                sink: d.sink,
                delivered: d.delivered,
                pending: d.pending,
                failing: d.error,
                ..SinkReport::default()
            },
        );
    }
    for r in remote {
        let r = r?;
        by_name.insert(r.sink.clone(), r);
    }
    for r in broken {
        by_name.insert(r.sink.clone(), r);
    }
    Ok(sinks
        .iter()
        .filter_map(|c| by_name.remove(&c.name))
        .collect())
}
