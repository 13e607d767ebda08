//! One crawl pass: discover trails, find each bucket's region, list every
//! cursor's new objects (with the lookback window), and process them with
//! bounded concurrency, committing each object's alerts with its checkpoint.

pub mod keys;
pub mod trail_alerts;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use time::OffsetDateTime;

use crate::aws::AwsClients;
use crate::aws::discovery::{self, Trail};
use crate::aws::fetch::{FetchError, fetch_and_detect};
use crate::aws::listing::{ListError, list_folders, list_keys};
use crate::aws::region::bucket_region;
use crate::config::{Config, StartFrom};
use crate::decode::is_log_object;
use crate::rules::RuleSet;
use crate::state::{CursorKey, ObjectCommit, ObjectStatus, StateStore};
use keys::{AwsLogsChild, KeyTime};

/// A bucket and prefix to crawl, and the trails that write there.
#[derive(Debug, Clone)]
pub struct Target {
    pub bucket: String,
    pub prefix: Option<String>,
    pub trails: Vec<String>,
    pub kms_key_id: Option<String>,
    /// From the config, when it states it.
    pub region: Option<String>,
}

impl Target {
    pub fn id(&self) -> String {
        format!("{}|{}", self.bucket, self.prefix.as_deref().unwrap_or(""))
    }
}

/// What became of one target in a pass.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TargetReport {
    pub bucket: String,
    pub prefix: Option<String>,
    pub trails: Vec<String>,
    pub region: Option<String>,
    /// Account-root folders with their accounts and regions (the cursors).
    pub cursors: Vec<String>,
    pub listed: u64,
    pub processed: u64,
    pub failed: u64,
    /// Objects left for the next pass (denied, throttled, broken off).
    pub retry_later: u64,
    pub records: u64,
    pub new_alerts: u64,
    /// The newest key time processed so far (this pass or an earlier one).
    pub newest_object: Option<KeyTime>,
    /// Seconds from the newest processed object's key time to now.
    pub lag_seconds: Option<i64>,
    /// Per cursor (`account/region`): the newest key time processed.
    #[serde(default)]
    pub cursor_newest: BTreeMap<String, KeyTime>,
    /// Per cursor: seconds from its newest processed object to now.
    #[serde(default)]
    pub cursor_lag_seconds: BTreeMap<String, i64>,
    pub errors: Vec<String>,
    /// Whether the bucket could be listed at all.
    pub reachable: bool,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    pub trails: Vec<Trail>,
    pub discovery_errors: BTreeMap<String, String>,
    pub targets: Vec<TargetReport>,
    pub trail_alerts: u64,
    /// Crawling paused because this sink's backlog is full (sink, pending, bound).
    pub paused_by: Option<(String, u64, u64)>,
}

impl PassReport {
    pub fn reachable_targets(&self) -> usize {
        self.targets.iter().filter(|t| t.reachable).count()
    }
}

/// Why a pass could not go on at all.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("internal task failed: {0}")]
    Task(String),
}

/// A discovery round: when it ran, the trails, and the errors by region.
type Discovered = (std::time::Instant, Vec<Trail>, BTreeMap<String, String>);

/// The crawler's long-lived parts.
pub struct Crawler {
    pub clients: Arc<AwsClients>,
    pub state: Arc<StateStore>,
    pub rules: Arc<RuleSet>,
    pub config: Arc<Config>,
    /// Set to stop starting objects (shutdown): those in flight finish and
    /// commit; the rest are listed again on the next start.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// The last discovery and when it ran (refreshed every `refresh_interval`).
    discovered: std::sync::Mutex<Option<Discovered>>,
}

/// One object to read.
struct Work {
    target: usize,
    cursor: CursorKey,
    key: String,
    key_time: KeyTime,
    region: String,
}

enum Outcome {
    Committed {
        records: u64,
        new_alerts: u64,
        /// Why the object failed (corrupt, truncated, too large), if it did.
        failed: Option<String>,
    },
    RetryLater(String),
}

impl Crawler {
    pub fn new(
        clients: Arc<AwsClients>,
        state: Arc<StateStore>,
        rules: Arc<RuleSet>,
        config: Arc<Config>,
    ) -> Crawler {
        Crawler {
            clients,
            state,
            rules,
            config,
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            discovered: std::sync::Mutex::new(None),
        }
    }

    /// The trails, discovered again when the last discovery is older than
    /// `refresh_interval` (trail status alerts need fresh status).
    pub async fn trails_cached(&self) -> (Vec<Trail>, BTreeMap<String, String>, bool) {
        {
            let cache = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, trails, errors)) = cache.as_ref()
                && at.elapsed() < self.config.discovery.refresh_interval
            {
                return (trails.clone(), errors.clone(), false);
            }
        }
        let (trails, errors) = self.discover_trails().await;
        let mut cache = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Some((std::time::Instant::now(), trails.clone(), errors.clone()));
        (trails, errors, true)
    }

    /// The trails: discovered ones (with their status) and the config's.
    pub async fn discover_trails(&self) -> (Vec<Trail>, BTreeMap<String, String>) {
        let mut trails = Vec::new();
        let mut errors = BTreeMap::new();
        if self.config.discovery.enabled && !self.config.discovery.regions.is_empty() {
            let found = discovery::discover(
                &self.clients,
                &self.config.discovery.regions,
                &self.config.discovery.only,
            )
            .await;
            trails = found.trails;
            errors = found.errors;
        }
        trails.extend(self.config.trails.iter().map(discovery::static_trail));
        (trails, errors)
    }

    /// Stores each discovered trail's status and raises the alerts its
    /// change calls for (stopped logging, delivery error); returns how many
    /// alerts were new.
    pub async fn record_trail_status(&self, trails: &[Trail]) -> Result<u64, CrawlError> {
        let mut alerts = Vec::new();
        for trail in trails.iter().filter(|t| t.origin == "discovered") {
            let arn = trail.arn.clone();
            let before: Option<Trail> = self
                .blocking(move |s| s.trail_status(&arn))
                .await?
                .and_then(|v| serde_json::from_value(v).ok());
            alerts.extend(trail_alerts::transitions(before.as_ref(), trail));
            let json = serde_json::to_value(trail).unwrap_or_default();
            let arn = trail.arn.clone();
            self.blocking(move |s| s.set_trail_status(&arn, &json))
                .await?;
        }
        if alerts.is_empty() {
            return Ok(0);
        }
        for a in &alerts {
            tracing::warn!(rule = %a.alert.rule.id, title = %a.alert.rule.title, "trail alert");
        }
        Ok(self.blocking(move |s| s.insert_alerts(&alerts)).await? as u64)
    }

    /// Runs `f` on the state store off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StateStore) -> crate::state::Result<T> + Send + 'static,
    ) -> Result<T, CrawlError> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| CrawlError::Task(e.to_string()))?
            .map_err(CrawlError::from)
    }

    /// One pass over every logging trail.
    pub async fn pass(&self) -> Result<PassReport, CrawlError> {
        let started = OffsetDateTime::now_utc();
        let (trails, discovery_errors, fresh) = self.trails_cached().await;
        let trail_alerts = if fresh {
            self.record_trail_status(&trails).await?
        } else {
            0
        };
        let targets = targets(&trails);
        for t in trails.iter().filter(|t| !t.logging) {
            tracing::info!(trail = %t.name, bucket = %t.bucket, "trail is not logging: skipped");
        }
        let mut reports: Vec<TargetReport> = targets
            .iter()
            .map(|t| TargetReport {
                bucket: t.bucket.clone(),
                prefix: t.prefix.clone(),
                trails: t.trails.clone(),
                ..TargetReport::default()
            })
            .collect();

        // Plan and list every target.
        let mut work = Vec::new();
        let mut listed_per_cursor: BTreeMap<(usize, CursorKey), Vec<KeyTime>> = BTreeMap::new();
        for (i, target) in targets.iter().enumerate() {
            let report = &mut reports[i];
            let (region, cursors) = match self.plan(target).await {
                Ok(plan) => plan,
                Err(e) => {
                    tracing::warn!(bucket = %target.bucket, error = %e, "bucket skipped");
                    report.errors.push(e);
                    continue;
                }
            };
            report.region = Some(region.clone());
            let client = self.clients.s3(&region);
            report.reachable = true;
            for cursor in cursors {
                report.cursors.push(format!(
                    "{}{}/CloudTrail/{}",
                    cursor.prefix, cursor.account, cursor.region
                ));
                match self.list_cursor(&client, &cursor, started).await {
                    Ok(keys) => {
                        report.listed += keys.len() as u64;
                        let entry = listed_per_cursor.entry((i, cursor.clone())).or_default();
                        for (key, key_time) in keys {
                            entry.push(key_time.clone());
                            work.push(Work {
                                target: i,
                                cursor: cursor.clone(),
                                key,
                                key_time,
                                region: region.clone(),
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(bucket = %target.bucket, error = %e, "listing failed");
                        report.errors.push(e.to_string());
                    }
                }
            }
        }

        // A sink whose backlog is full pauses the crawl (nothing is dropped:
        // the objects stay unprocessed and are listed again next pass).
        let paused_by = self.full_backlog().await?;
        if let Some((sink, pending, bound)) = &paused_by {
            tracing::warn!(sink = %sink, pending, bound, "crawl paused: the sink's backlog is full");
            work.clear();
            listed_per_cursor.clear();
        }

        // Process with bounded concurrency; results per cursor.
        let concurrency = self.config.crawl.concurrency;
        let results: Vec<(Work, Outcome)> = futures::stream::iter(work)
            .map(|w| async {
                let kms = targets[w.target].kms_key_id.clone();
                let outcome = self.process(&w, kms.as_deref()).await;
                (w, outcome)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;

        let mut uncommitted: BTreeMap<(usize, CursorKey), KeyTime> = BTreeMap::new();
        let mut committed: BTreeMap<(usize, CursorKey), KeyTime> = BTreeMap::new();
        for (w, outcome) in results {
            let report = &mut reports[w.target];
            let slot = (w.target, w.cursor.clone());
            match outcome {
                Outcome::Committed {
                    records,
                    new_alerts,
                    failed,
                } => {
                    report.processed += 1;
                    report.records += records;
                    report.new_alerts += new_alerts;
                    if let Some(reason) = failed {
                        report.failed += 1;
                        if report.errors.len() < 20 {
                            report.errors.push(reason);
                        }
                    }
                    if report
                        .newest_object
                        .as_ref()
                        .is_none_or(|n| *n < w.key_time)
                    {
                        report.newest_object = Some(w.key_time.clone());
                    }
                    let label = format!("{}/{}", w.cursor.account, w.cursor.region);
                    let newest = report.cursor_newest.entry(label).or_default();
                    if *newest < w.key_time {
                        *newest = w.key_time.clone();
                    }
                    let e = committed.entry(slot).or_default();
                    if *e < w.key_time {
                        *e = w.key_time.clone();
                    }
                }
                Outcome::RetryLater(reason) => {
                    report.retry_later += 1;
                    if report.errors.len() < 20 {
                        report.errors.push(reason);
                    }
                    let e = uncommitted
                        .entry(slot)
                        .or_insert_with(|| w.key_time.clone());
                    if w.key_time < *e {
                        *e = w.key_time.clone();
                    }
                }
            }
        }

        // Move each cursor's watermark and forget what left the window.
        let lookback = self.config.crawl.lookback;
        let floor = keys::key_time(started - lookback);
        for ((i, cursor), times) in listed_per_cursor {
            let slot = (i, cursor.clone());
            let newest_committed = committed.get(&slot).cloned();
            let watermark = match uncommitted.get(&slot) {
                // Up to just before the oldest object left for later.
                Some(oldest_left) => times
                    .iter()
                    .filter(|t| {
                        *t < oldest_left && newest_committed.as_ref().is_some_and(|c| *t <= c)
                    })
                    .max()
                    .cloned(),
                // Everything listed is done: at least `floor`, so that a quiet
                // cursor does not re-list ever more day folders.
                None => Some(newest_committed.map_or(floor.clone(), |c| c.max(floor.clone()))),
            };
            if let Some(w) = watermark {
                let c = cursor.clone();
                self.blocking(move |s| s.advance_watermark(&c, &w)).await?;
            }
            let stored = {
                let c = cursor.clone();
                self.blocking(move |s| s.watermark(&c)).await?
            };
            if let Some(w) = stored.as_deref().and_then(keys::parse_key_time) {
                let cutoff = keys::key_time(w - lookback - Duration::from_secs(3600));
                let c = cursor.clone();
                self.blocking(move |s| s.prune_processed(&c, &cutoff))
                    .await?;
            }
        }
        // Lag: now minus the newest object processed, this pass or before.
        for (target, report) in targets.iter().zip(reports.iter_mut()) {
            let id = target.id();
            let previous: Option<TargetReport> = self
                .blocking(move |s| s.target_status(&id))
                .await?
                .and_then(|v| serde_json::from_value(v).ok());
            if let Some(prev) = &previous {
                for (cursor, t) in &prev.cursor_newest {
                    let newest = report.cursor_newest.entry(cursor.clone()).or_default();
                    if *newest < *t {
                        *newest = t.clone();
                    }
                }
            }
            if let Some(prev) = previous.and_then(|p| p.newest_object)
                && report.newest_object.as_ref().is_none_or(|n| *n < prev)
            {
                report.newest_object = Some(prev);
            }
            let now = OffsetDateTime::now_utc();
            report.cursor_lag_seconds = report
                .cursor_newest
                .iter()
                .filter_map(|(c, t)| {
                    keys::parse_key_time(t).map(|t| (c.clone(), (now - t).whole_seconds()))
                })
                .collect();
            report.lag_seconds = report
                .newest_object
                .as_deref()
                .and_then(keys::parse_key_time)
                .map(|t| (OffsetDateTime::now_utc() - t).whole_seconds());
        }
        let summaries = self.blocking(|s| s.close_suppression_windows()).await?;
        if summaries > 0 {
            tracing::info!(summaries, "suppression windows closed with repeats");
        }
        for (target, report) in targets.iter().zip(&reports) {
            let json = serde_json::to_value(report).unwrap_or_default();
            let id = target.id();
            self.blocking(move |s| s.set_target_status(&id, &json))
                .await?;
        }
        Ok(PassReport {
            trails,
            discovery_errors,
            targets: reports,
            trail_alerts,
            paused_by,
        })
    }

    /// The first sink whose backlog has reached its bound.
    pub async fn full_backlog(&self) -> Result<Option<(String, u64, u64)>, CrawlError> {
        for sink in &self.config.sinks {
            let name = sink.name.clone();
            let pending = self.blocking(move |s| s.pending(&name)).await?;
            if pending >= sink.max_backlog {
                return Ok(Some((sink.name.clone(), pending, sink.max_backlog)));
            }
        }
        Ok(None)
    }

    /// A target's bucket region and its cursors.
    pub async fn plan(&self, target: &Target) -> Result<(String, Vec<CursorKey>), String> {
        let region = match &target.region {
            Some(r) => r.clone(),
            None => {
                let ask = self
                    .clients
                    .home_region()
                    .unwrap_or_else(|| "us-east-1".into());
                bucket_region(&self.clients, &target.bucket, &ask)
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        let client = self.clients.s3(&region);
        match self.cursors(&client, target).await {
            Ok(cursors) => Ok((region, cursors)),
            // The bucket lives elsewhere (a static trail's region was wrong,
            // or the bucket moved): follow the redirect once.
            Err(e) if e.redirect_region.as_ref().is_some_and(|r| *r != region) => {
                let region = e.redirect_region.unwrap_or_default();
                tracing::info!(bucket = %target.bucket, region = %region,
                    "the bucket answered with a redirect; following it");
                let client = self.clients.s3(&region);
                let cursors = self
                    .cursors(&client, target)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((region, cursors))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The cursors of a target: `[<prefix>/]AWSLogs/[o-<org>/]<account>/CloudTrail/<region>/`.
    pub async fn cursors(
        &self,
        client: &aws_sdk_s3::Client,
        target: &Target,
    ) -> Result<Vec<CursorKey>, ListError> {
        let awslogs = keys::awslogs_root(target.prefix.as_deref());
        let mut roots = Vec::new();
        let mut accounts = Vec::new();
        for child in list_folders(client, &target.bucket, &awslogs).await? {
            match keys::classify_awslogs_child(&child) {
                AwsLogsChild::Account => accounts.push((awslogs.clone(), child)),
                AwsLogsChild::Organization => roots.push(format!("{awslogs}{child}")),
                AwsLogsChild::Other => {}
            }
        }
        for root in roots {
            for child in list_folders(client, &target.bucket, &root).await? {
                if keys::classify_awslogs_child(&child) == AwsLogsChild::Account {
                    accounts.push((root.clone(), child));
                }
            }
        }
        let mut cursors = BTreeSet::new();
        for (root, account) in accounts {
            let account = account.trim_end_matches('/').to_owned();
            let regions_prefix = format!("{root}{account}/CloudTrail/");
            for region in list_folders(client, &target.bucket, &regions_prefix).await? {
                cursors.insert(CursorKey {
                    bucket: target.bucket.clone(),
                    prefix: root.clone(),
                    account: account.clone(),
                    region: region.trim_end_matches('/').to_owned(),
                });
            }
        }
        Ok(cursors.into_iter().collect())
    }

    /// The keys of a cursor not processed yet, from its watermark minus the
    /// lookback (or `start_from` on a first run) to now, in key order.
    async fn list_cursor(
        &self,
        client: &aws_sdk_s3::Client,
        cursor: &CursorKey,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, KeyTime)>, CrawlError> {
        let c = cursor.clone();
        let watermark = self.blocking(move |s| s.watermark(&c)).await?;
        let from = match watermark.as_deref().and_then(keys::parse_key_time) {
            Some(w) => w - self.config.crawl.lookback,
            None => self.start_from(now),
        };
        let from_key = keys::key_time(from);
        let c = cursor.clone();
        let since = from_key.clone();
        let done = self
            .blocking(move |s| s.processed_keys_since(&c, &since))
            .await?;
        let folder = keys::cursor_folder(&cursor.prefix, &cursor.account, &cursor.region);
        let mut out = Vec::new();
        for (n, day) in keys::days(from, now).into_iter().enumerate() {
            let day_prefix = keys::day_folder(&folder, day);
            let after =
                (n == 0).then(|| keys::start_after(&folder, &cursor.account, &cursor.region, from));
            let listed = match list_keys(client, &cursor.bucket, &day_prefix, after.as_deref())
                .await
            {
                Ok(keys) => keys,
                Err(e) => {
                    tracing::warn!(bucket = %cursor.bucket, prefix = %day_prefix, error = %e, "listing failed");
                    continue;
                }
            };
            for key in listed {
                if !is_log_object(&key) || done.contains(&key) {
                    continue;
                }
                let Some(key_time) = keys::object_key_time(&key) else {
                    continue;
                };
                if key_time < from_key {
                    continue;
                }
                out.push((key, key_time));
            }
        }
        Ok(out)
    }

    fn start_from(&self, now: OffsetDateTime) -> OffsetDateTime {
        match &self.config.crawl.start_from {
            StartFrom::Ago(d) => now - *d,
            StartFrom::At(text) => {
                OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .unwrap_or(now)
            }
        }
    }

    /// Closes the stateful rules' bursts and commits their summaries with
    /// the rules' state: every burst (`all`: the end of `once`'s input), or
    /// those idle for a timespan plus the lookback of wall time (the
    /// daemon). Returns how many alerts were new.
    pub async fn close_bursts(&self, all: bool) -> Result<u64, CrawlError> {
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

    /// Reads one object and commits its alerts with its checkpoint.
    async fn process(&self, w: &Work, kms_key: Option<&str>) -> Outcome {
        if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Outcome::RetryLater("stopping: left for the next start".into());
        }
        let client = self.clients.s3(&w.region);
        let fetched = fetch_and_detect(
            &client,
            &w.cursor.bucket,
            &w.key,
            kms_key,
            Arc::clone(&self.rules),
            self.config.crawl.max_decompressed_bytes,
        )
        .await;
        let (status, records, error, alerts) = match fetched {
            Ok(f) => {
                if let Some(e) = f.transient_error() {
                    let reason = format!("s3://{}/{}: {e}", w.cursor.bucket, w.key);
                    tracing::warn!(bucket = %w.cursor.bucket, key = %w.key, error = %e, "read broke off; retried next pass");
                    return Outcome::RetryLater(reason);
                }
                match &f.report.error {
                    None => (ObjectStatus::Done, f.report.records, None, f.alerts),
                    Some(e) => {
                        tracing::warn!(bucket = %w.cursor.bucket, key = %w.key, error = %e, "object failed; recorded and skipped");
                        (
                            ObjectStatus::Failed,
                            f.report.records,
                            Some(format!("s3://{}/{}: {e}", w.cursor.bucket, w.key)),
                            f.alerts,
                        )
                    }
                }
            }
            Err(FetchError::Missing { .. }) => (
                ObjectStatus::Failed,
                0,
                Some(format!(
                    "s3://{}/{}: the object is gone",
                    w.cursor.bucket, w.key
                )),
                Vec::new(),
            ),
            Err(e) => {
                tracing::warn!(bucket = %w.cursor.bucket, key = %w.key, error = %e, "object not read; retried next pass");
                return Outcome::RetryLater(e.to_string());
            }
        };
        let cursor = w.cursor.clone();
        let key = w.key.clone();
        let key_time = w.key_time.clone();
        let failed = error.clone();
        let rules = Arc::clone(&self.rules);
        let commit = move |s: &StateStore| {
            let commit =
                |alerts: &[crate::alert::Detected],
                 correlation: Option<crate::state::CorrelationCommit<'_>>| {
                    s.commit_object(&ObjectCommit {
                        cursor: &cursor,
                        key: &key,
                        key_time: &key_time,
                        status,
                        records,
                        error: error.clone(),
                        alerts,
                        correlation,
                    })
                };
            // With stateful rules, their pending alerts and their state are
            // committed with the object, under the correlator's lock, so that
            // what is committed and what the engine holds never drift apart.
            let with = rules.with_correlator(|c| {
                let mut all = alerts.clone();
                let pending = c.pending().len();
                all.extend(c.pending().iter().cloned());
                let state = c.export_state();
                let delta = c.seen_delta();
                let n = commit(
                    &all,
                    Some(crate::state::CorrelationCommit {
                        state: &state,
                        seen_new: &delta.new,
                        forget_outside: delta.forget_outside,
                    }),
                )?;
                c.committed(pending);
                Ok(n)
            });
            match with {
                Some(result) => result,
                None => commit(&alerts, None),
            }
        };
        let committed = self.blocking(commit).await;
        match committed {
            Ok(n) => {
                tracing::debug!(bucket = %w.cursor.bucket, key = %w.key, records, new_alerts = n, "object processed");
                Outcome::Committed {
                    records,
                    new_alerts: n as u64,
                    failed,
                }
            }
            Err(e) => Outcome::RetryLater(format!("commit failed: {e}")),
        }
    }
}

/// The targets of the logging trails: trails that share a bucket and prefix
/// are crawled once.
pub fn targets(trails: &[Trail]) -> Vec<Target> {
    let mut by_place: BTreeMap<(String, Option<String>), Target> = BTreeMap::new();
    for t in trails.iter().filter(|t| t.logging) {
        let entry = by_place
            .entry((t.bucket.clone(), t.prefix.clone()))
            .or_insert_with(|| Target {
                bucket: t.bucket.clone(),
                prefix: t.prefix.clone(),
                trails: Vec::new(),
                kms_key_id: None,
                region: None,
            });
        entry.trails.push(t.name.clone());
        if entry.kms_key_id.is_none() {
            entry.kms_key_id = t.kms_key_id.clone();
        }
        if entry.region.is_none() {
            entry.region = t.bucket_region.clone();
        }
    }
    by_place.into_values().collect()
}
