//! The crawl, stage by stage, as one object flows: discover the trails
//! (`discover`), find each bucket's region and cursors (`plan`), learn of
//! new objects (`source`: list each cursor, or read the SQS queue of
//! notifications), read each through detection and commit its
//! alerts with its checkpoint (`process`), then move the watermarks and write
//! what became of each target (`report`). `bursts` closes the stateful
//! rules' bursts between passes. The AWS calls are `aws`'s, detection is
//! `detect`'s; this module only orders them.

pub mod blind_spots;
mod bursts;
mod discover;
mod plan;
mod process;
mod report;
pub mod rule_leader;
mod shared_feed;
pub mod silence;
mod source;
mod status;
pub mod trail_alerts;

use std::sync::Arc;

use time::OffsetDateTime;

use crate::aws::AwsClients;
use crate::config::Config;
use crate::rules::RuleSet;
use crate::state::StateStore;

pub use discover::{Target, targets};
pub use report::{PassReport, PassTotals, TargetReport};
pub use source::sqs::{Feed, QueueReport};
pub use status::TrailRow;

/// Why a pass could not go on at all.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("internal task failed: {0}")]
    Task(String),
    /// The queue of notifications could not be read.
    #[error("{0}")]
    Queue(String),
}

/// A discovery round: when it ran, the trails, and the errors by region.
type Discovered = (std::time::Instant, crate::aws::discovery::Discovery);

/// The crawler's long-lived parts.
pub struct Crawler {
    pub clients: Arc<AwsClients>,
    pub state: Arc<StateStore>,
    pub rules: Arc<RuleSet>,
    pub config: Arc<Config>,
    /// Set to stop starting objects (shutdown): those in flight finish and
    /// commit; the rest are listed again on the next start.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// What instances share (`[state] backend = "dynamodb"`): objects
    /// committed by any of them are not read again.
    pub shared: Option<Arc<crate::state::dynamodb::SharedState>>,
    /// The last discovery and when it ran (refreshed every `refresh_interval`).
    discovered: std::sync::Mutex<Option<Discovered>>,
    /// Each bucket's region, as planning found it.
    regions: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The last floor of quiet cursors' watermarks and when it was set (on
    /// the monotonic clock); kept across reloads (`carry_clock`).
    floor_clock: FloorClock,
}

type FloorClock = Arc<std::sync::Mutex<Option<(OffsetDateTime, std::time::Instant)>>>;

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
            shared: None,
            discovered: std::sync::Mutex::new(None),
            regions: std::sync::Mutex::new(std::collections::HashMap::new()),
            floor_clock: FloorClock::default(),
        }
    }

    /// Takes over `previous`'s floor clock (a reload makes a new crawler).
    pub fn carry_clock(&mut self, previous: &Crawler) {
        self.floor_clock = Arc::clone(&previous.floor_clock);
    }

    /// The region planning found for `bucket`, if it has.
    fn known_region(&self, bucket: &str) -> Option<String> {
        let regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        regions.get(bucket).cloned()
    }

    /// Runs `f` on the state store off the async threads.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StateStore) -> crate::state::Result<T> + Send + 'static,
    ) -> Result<T, CrawlError> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| CrawlError::Task(e.to_string()))?
            .map_err(CrawlError::from)
    }

    /// One pass over every logging trail: each stage in turn.
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
        let mut reports = report::blank(&targets);
        let mut listing = self.list_all(&targets, &mut reports, started).await?;
        if matches!(self.config.source, crate::config::SourceConfig::Sqs(_)) {
            self.check_notifications(&targets, &mut reports).await;
        }

        // A sink whose backlog is full pauses the crawl (nothing is dropped:
        // the objects stay unprocessed and are listed again next pass).
        let paused_by = self.full_backlog().await?;
        if let Some((sink, pending, bound)) = &paused_by {
            tracing::warn!(sink = %sink, pending, bound, "crawl paused: the sink's backlog is full");
            listing = source::poll::Listing::default();
        }

        let results = self.process_all(&targets, listing.work).await;
        let tally = report::tally(&mut reports, results);
        self.advance_watermarks(listing.listed, &tally, started)
            .await?;
        let previous = self.previous_reports(&targets).await?;
        Self::update_lag(&mut reports, &previous);
        let blind_spots = self.raise_blind_spots(&mut reports, &previous).await?;
        let summaries = self.close_windows().await?;
        if summaries > 0 {
            tracing::info!(summaries, "suppression windows closed with repeats");
        }
        self.save_status(&targets, &reports).await?;
        Ok(PassReport {
            trails,
            discovery_errors,
            targets: reports,
            // Alerts about the trails and their buckets (status, blind spots).
            trail_alerts: trail_alerts + blind_spots,
            paused_by,
        })
    }
}
