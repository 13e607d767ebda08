//! Report: what became of each target in a pass (counts, errors, lag per
//! cursor), each cursor's watermark moved up to just before the oldest
//! object left for later, and the status the `trails` command and the
//! health endpoint read.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use crate::aws::discovery::Trail;
use crate::state::CursorKey;

use super::process::{Outcome, Work};
use super::{CrawlError, Crawler, Target};
use crate::aws::keys::{self, KeyTime};

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
    /// SQS mode: how its new objects are announced (None: not checked).
    #[serde(default)]
    pub notification: Option<crate::aws::notification_path::NotificationPath>,
    /// Whether the bucket has been read, this pass or before (a denial
    /// after that is a blind spot, `blind_spots.rs`).
    #[serde(default)]
    pub read_before: bool,
    /// Since when and why it cannot be read, while it could before.
    #[serde(default)]
    pub unreadable: Option<super::blind_spots::Unreadable>,
    /// Per cursor (`account/region`): its deliveries' cadence and open
    /// silence (`silence.rs`).
    #[serde(default)]
    pub cadence: BTreeMap<String, super::silence::Cadence>,
    /// Per cursor: the key times committed in this round (learnt into
    /// `cadence`, not kept).
    #[serde(skip)]
    pub delivered: BTreeMap<String, Vec<KeyTime>>,
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

    /// Why objects could not be committed this pass (the state store could
    /// not be written: disk full, locked, read-only), if that happened.
    pub fn commit_failure(&self) -> Option<&str> {
        self.targets
            .iter()
            .flat_map(|t| &t.errors)
            .find(|e| e.starts_with(COMMIT_FAILED))
            .map(String::as_str)
    }
}

/// How far a floor may run ahead of the monotonic clock (a pass's own length).
const FLOOR_SLACK: std::time::Duration = std::time::Duration::from_secs(60);

/// How a commit's failure starts, among a target's errors.
pub const COMMIT_FAILED: &str = "commit failed: ";

/// A pass's objects and records, over every target.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassTotals {
    pub processed: u64,
    pub failed: u64,
    pub retry_later: u64,
    pub records: u64,
    pub new_alerts: u64,
}

impl PassReport {
    /// The sums over every target.
    pub fn totals(&self) -> PassTotals {
        let mut totals = PassTotals::default();
        for t in &self.targets {
            totals.processed += t.processed;
            totals.failed += t.failed;
            totals.retry_later += t.retry_later;
            totals.records += t.records;
            totals.new_alerts += t.new_alerts;
        }
        totals
    }
}

/// One line: where, what was listed and read, and what it raised.
impl std::fmt::Display for TargetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "s3://{}/{}: region {}, {} cursors, {} listed, {} processed ({} failed), {} left for later, {} records, {} new alerts",
            self.bucket,
            self.prefix.as_deref().unwrap_or(""),
            self.region.as_deref().unwrap_or("?"),
            self.cursors.len(),
            self.listed,
            self.processed,
            self.failed,
            self.retry_later,
            self.records,
            self.new_alerts
        )
    }
}

/// An empty report for each target.
pub(super) fn blank(targets: &[Target]) -> Vec<TargetReport> {
    targets
        .iter()
        .map(|t| TargetReport {
            bucket: t.bucket.clone(),
            prefix: t.prefix.clone(),
            trails: t.trails.clone(),
            ..TargetReport::default()
        })
        .collect()
}

/// A target's last report with the counts of a new round: where it is and
/// how far it has read carry over (the SQS side counts its rounds into it).
pub(super) fn carried(target: &Target, previous: Option<TargetReport>) -> TargetReport {
    let blank = blank(std::slice::from_ref(target))
        .pop()
        .unwrap_or_default();
    match previous {
        None => blank,
        Some(p) => TargetReport {
            region: p.region,
            cursors: p.cursors,
            listed: p.listed,
            newest_object: p.newest_object,
            cursor_newest: p.cursor_newest,
            cadence: p.cadence,
            reachable: p.reachable,
            notification: p.notification,
            ..blank
        },
    }
}

/// Per cursor: the newest key time committed, and the oldest left for later.
#[derive(Debug, Default)]
pub(super) struct Tally {
    committed: BTreeMap<(usize, CursorKey), KeyTime>,
    uncommitted: BTreeMap<(usize, CursorKey), KeyTime>,
}

/// Counts each object's outcome into its target's report.
pub(super) fn tally(reports: &mut [TargetReport], results: Vec<(Work, Outcome)>) -> Tally {
    let mut tally = Tally::default();
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
                let delivered = report.delivered.entry(label.clone()).or_default();
                if delivered.len() < 4096 {
                    delivered.push(w.key_time.clone());
                }
                let newest = report.cursor_newest.entry(label).or_default();
                if *newest < w.key_time {
                    *newest = w.key_time.clone();
                }
                let e = tally.committed.entry(slot).or_default();
                if *e < w.key_time {
                    *e = w.key_time.clone();
                }
            }
            Outcome::RetryLater(reason) => {
                report.retry_later += 1;
                if report.errors.len() < 20 {
                    report.errors.push(reason);
                }
                let e = tally
                    .uncommitted
                    .entry(slot)
                    .or_insert_with(|| w.key_time.clone());
                if w.key_time < *e {
                    *e = w.key_time.clone();
                }
            }
        }
    }
    tally
}

/// Where a cursor's watermark moves, given the key times listed: up to
/// just before the oldest object left for later (and no further than what
/// was committed); with nothing left, to the newest committed, and at least
/// `floor`, so that a quiet cursor does not re-list ever more day folders.
fn watermark(
    times: &[KeyTime],
    newest_committed: Option<&KeyTime>,
    oldest_left: Option<&KeyTime>,
    floor: &KeyTime,
) -> Option<KeyTime> {
    match oldest_left {
        Some(oldest_left) => times
            .iter()
            .filter(|t| *t < oldest_left && newest_committed.is_some_and(|c| *t <= c))
            .max()
            .cloned(),
        None => Some(newest_committed.map_or(floor.clone(), |c| c.max(floor).clone())),
    }
}

impl Crawler {
    /// Moves each listed cursor's watermark and forgets the processed keys
    /// that left the lookback window.
    pub(super) async fn advance_watermarks(
        &self,
        listed: BTreeMap<(usize, CursorKey), Vec<KeyTime>>,
        tally: &Tally,
        started: OffsetDateTime,
    ) -> Result<(), CrawlError> {
        let lookback = self.config.crawl.lookback;
        let floor = keys::key_time(self.bounded_floor(started - lookback));
        for ((i, cursor), times) in listed {
            let slot = (i, cursor.clone());
            let moved = watermark(
                &times,
                tally.committed.get(&slot),
                tally.uncommitted.get(&slot),
                &floor,
            );
            if let Some(w) = moved {
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
        Ok(())
    }

    /// The time a quiet cursor's watermark moves up to: `wall` (now less the
    /// lookback), but never further past the last floor than the time that
    /// really passed (the monotonic clock): a wall clock stepped forward does
    /// not carry watermarks into the future, past objects not yet written.
    fn bounded_floor(&self, wall: OffsetDateTime) -> OffsetDateTime {
        let mut last = self.floor_clock.lock().unwrap_or_else(|p| p.into_inner());
        let floor = match *last {
            Some((previous, at)) => {
                let bound = previous + at.elapsed() + FLOOR_SLACK;
                if wall > bound {
                    tracing::warn!(wall = %wall, bound = %bound, "the wall clock ran ahead of the time that passed: watermarks held back");
                    bound
                } else {
                    wall
                }
            }
            None => wall,
        };
        *last = Some((floor, std::time::Instant::now()));
        floor
    }

    /// Each target's last stored report.
    pub(super) async fn previous_reports(
        &self,
        targets: &[Target],
    ) -> Result<Vec<Option<TargetReport>>, CrawlError> {
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            let id = target.id();
            out.push(
                self.blocking(move |s| s.target_status(&id))
                    .await?
                    .and_then(|v| serde_json::from_value(v).ok()),
            );
        }
        Ok(out)
    }

    /// Lag: now minus the newest object processed, this pass or before;
    /// and each cursor's cadence learns this round's deliveries.
    pub(super) fn update_lag(reports: &mut [TargetReport], previous: &[Option<TargetReport>]) {
        for (report, previous) in reports.iter_mut().zip(previous) {
            if report.cadence.is_empty()
                && let Some(prev) = previous
            {
                report.cadence = prev.cadence.clone();
            }
            let delivered = std::mem::take(&mut report.delivered);
            super::silence::learn(&mut report.cadence, &delivered);
            if let Some(prev) = previous {
                for (cursor, t) in &prev.cursor_newest {
                    let newest = report.cursor_newest.entry(cursor.clone()).or_default();
                    if *newest < *t {
                        *newest = t.clone();
                    }
                }
            }
            if let Some(prev) = previous.as_ref().and_then(|p| p.newest_object.clone())
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
    }

    /// Raises the blind-spot alerts the change from each target's last
    /// report calls for (`blind_spots.rs`: a bucket or key refused;
    /// `silence.rs`: a cursor gone quiet, judged only while its bucket is
    /// read); returns how many were new.
    pub(super) async fn raise_blind_spots(
        &self,
        reports: &mut [TargetReport],
        previous: &[Option<TargetReport>],
    ) -> Result<u64, CrawlError> {
        let mut alerts = Vec::new();
        let now = OffsetDateTime::now_utc();
        for (report, previous) in reports.iter_mut().zip(previous) {
            alerts.extend(super::blind_spots::transitions(previous.as_ref(), report));
            if report.reachable && report.unreadable.is_none() {
                let prefix = keys::awslogs_root(report.prefix.as_deref());
                alerts.extend(super::silence::cursor_transitions(
                    &report.bucket,
                    &prefix,
                    &mut report.cadence,
                    now,
                    &self.config.blind_spots,
                ));
            }
        }
        let accounts = self.account_silence(reports, now).await?;
        if alerts.is_empty() {
            return Ok(accounts);
        }
        for a in &alerts {
            tracing::warn!(rule = %a.alert.rule.id, title = %a.alert.rule.title, "blind spot");
        }
        Ok(accounts + self.blocking(move |s| s.insert_alerts(&alerts)).await? as u64)
    }

    /// Stores each target's report for `trails` and the health endpoint.
    pub(super) async fn save_status(
        &self,
        targets: &[Target],
        reports: &[TargetReport],
    ) -> Result<(), CrawlError> {
        for (target, report) in targets.iter().zip(reports) {
            let json = serde_json::to_value(report).unwrap_or_default();
            let id = target.id();
            self.blocking(move |s| s.set_target_status(&id, &json))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> CursorKey {
        CursorKey {
            bucket: "b".into(),
            prefix: "AWSLogs/".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
        }
    }

    fn work(key_time: &str) -> Work {
        Work {
            target: 0,
            cursor: cursor(),
            key: format!("k-{key_time}"),
            key_time: key_time.into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn outcomes_are_counted_and_the_watermark_stops_before_what_is_left() {
        let mut reports = vec![TargetReport::default()];
        let committed = |t: &str| {
            (
                work(t),
                Outcome::Committed {
                    records: 10,
                    new_alerts: 1,
                    failed: None,
                },
            )
        };
        let results = vec![
            committed("20261121T1000Z"),
            committed("20261121T1010Z"),
            (
                work("20261121T1005Z"),
                Outcome::RetryLater("throttled".into()),
            ),
            committed("20261121T1002Z"),
        ];
        let tally = tally(&mut reports, results);
        let r = &reports[0];
        assert_eq!(
            (r.processed, r.retry_later, r.records, r.new_alerts),
            (3, 1, 30, 3)
        );
        assert_eq!(r.newest_object.as_deref(), Some("20261121T1010Z"));
        assert_eq!(r.errors, ["throttled"]);
        let slot = (0, cursor());
        let times: Vec<KeyTime> = [
            "20261121T1000Z",
            "20261121T1002Z",
            "20261121T1005Z",
            "20261121T1010Z",
        ]
        .map(String::from)
        .to_vec();
        let floor: KeyTime = "20261120T0000Z".into();
        let moved = watermark(
            &times,
            tally.committed.get(&slot),
            tally.uncommitted.get(&slot),
            &floor,
        );
        assert_eq!(
            moved.as_deref(),
            Some("20261121T1002Z"),
            "just before the one left"
        );
        // With nothing left: the newest committed, never below the floor.
        assert_eq!(
            watermark(&times, Some(&times[3]), None, &floor).as_deref(),
            Some("20261121T1010Z")
        );
        assert_eq!(
            watermark(&[], None, None, &floor).as_deref(),
            Some("20261120T0000Z")
        );
    }
}
