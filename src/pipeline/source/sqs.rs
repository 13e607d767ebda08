//! The SQS side: objects learned of from a queue of notifications. A round
//! receives a few messages (long polling), reads the objects they name that
//! belong to this instance's trails and are not committed yet (the same
//! `process` stage as polling), keeps the messages hidden while it reads
//! (the lease, extended every third of it), and then settles each message:
//! deleted once all its objects are committed (a corrupt or vanished object
//! is committed as failed, and reported); left for another try when one
//! could not be read now (the queue's redrive moves it to the dead-letter
//! queue after its receive count, and the last try says so). A queue
//! belongs to one deployment: what names nothing its trails read (another
//! bucket or prefix, a digest, a test event) is deleted and counted by
//! reason, never left to reach the redrive queue.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::aws::keys::{self, KeyTime};
use crate::aws::notice::{self, Notice, NoticedObject};
use crate::aws::notification_path::{NotificationPath, notification_path};
use crate::aws::queue::{Message, Queue, Redrive};
use crate::config::SqsSource;
use crate::decode::is_log_object;
use crate::pipeline::process::{Outcome, Work};
use crate::pipeline::{CrawlError, Crawler, Target, TargetReport, report};
use crate::state::CursorKey;

/// A message left for another try is visible again after this many seconds
/// per receive so far (at most the lease).
const RETRY_STEP: Duration = Duration::from_secs(15);
/// How often the queue's redrive policy is read again.
const REDRIVE_REFRESH: Duration = Duration::from_secs(3600);

/// The queue and what reading it has learned.
pub struct Feed {
    pub queue: Queue,
    pub settings: SqsSource,
    /// Messages received at once: halved after a batch whose reading took
    /// over half the lease, one more after a quicker one.
    receive_size: usize,
    redrive: Option<Redrive>,
    redrive_read: Option<Instant>,
}

impl Feed {
    pub fn new(queue: Queue, settings: SqsSource) -> Feed {
        Feed {
            queue,
            receive_size: settings.max_messages,
            settings,
            redrive: None,
            redrive_read: None,
        }
    }

    /// How many messages the next receive asks for.
    pub fn receive_size(&self) -> usize {
        self.receive_size
    }

    fn adapt(&mut self, took: Duration) {
        self.receive_size = if took > self.settings.lease / 2 {
            (self.receive_size / 2).max(1)
        } else {
            (self.receive_size + 1).min(self.settings.max_messages)
        };
    }

    async fn refresh_redrive(&mut self) {
        if self
            .redrive_read
            .is_some_and(|at| at.elapsed() < REDRIVE_REFRESH)
        {
            return;
        }
        match self.queue.redrive().await {
            Ok(r) => {
                if r.is_none() {
                    tracing::warn!(queue = %self.queue.url(),
                        "the queue has no redrive policy: a message that keeps failing is tried forever");
                }
                self.redrive = r;
                self.redrive_read = Some(Instant::now());
            }
            Err(e) => tracing::warn!(error = %e, "the queue's redrive policy could not be read"),
        }
    }
}

/// What one round of the queue did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueueReport {
    pub received: u64,
    pub deleted: u64,
    /// Objects read and committed (those that failed included).
    pub objects: u64,
    /// Objects committed as failed (corrupt, gone).
    pub failed: u64,
    /// Objects or messages with nothing to read, by reason: `committed`
    /// (already, here or by another instance), `not_a_log` (a digest,
    /// Insights or other file), `test_event`, `not_ours` (a bucket or
    /// prefix no trail of this deployment reads).
    pub skipped: std::collections::BTreeMap<&'static str, u64>,
    /// Messages left for another try.
    pub left: u64,
    /// Messages that failed at their last receive before the dead-letter queue.
    pub dead_lettered: u64,
    /// Lease extensions sent.
    pub extended: u64,
    pub records: u64,
    pub new_alerts: u64,
    pub errors: Vec<String>,
}

/// What a notified object is to this instance.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// One of ours to read: its target, cursor and key time.
    Read {
        target: usize,
        cursor: CursorKey,
        key_time: KeyTime,
    },
    /// Ours, with nothing to read (a digest, Insights, not a log object).
    Skip,
    /// In no bucket and prefix this instance reads.
    NotOurs,
}

fn fate(targets: &[Target], o: &NoticedObject) -> Fate {
    for (i, t) in targets.iter().enumerate() {
        let awslogs = keys::awslogs_root(t.prefix.as_deref());
        if t.bucket != o.bucket || !o.key.starts_with(&awslogs) {
            continue;
        }
        if !is_log_object(&o.key) {
            return Fate::Skip;
        }
        return match (
            keys::log_folder_of(&o.key, &awslogs),
            keys::object_key_time(&o.key),
        ) {
            (Some((root, account, region)), Some(key_time)) => Fate::Read {
                target: i,
                cursor: CursorKey {
                    bucket: o.bucket.clone(),
                    prefix: root,
                    account,
                    region,
                },
                key_time,
            },
            _ => Fate::Skip,
        };
    }
    Fate::NotOurs
}

/// What becomes of a message once its objects are read.
enum Plan {
    /// Nothing of ours to wait for: delete it.
    Done,
    /// Not something trailwatch can read: left (the redrive keeps it).
    Bad(String),
    /// Its objects to read (indexes into the round's work).
    Read { work: Vec<usize> },
    /// An object's bucket region, or whether another instance committed
    /// it, could not be found: left for another try.
    Unplaced(String),
}

impl Crawler {
    /// One round: receive, read, settle. A failed receive is an error; a
    /// failed read is the message's, left for another try.
    pub async fn read_queue(
        &self,
        feed: &mut Feed,
        targets: &[Target],
    ) -> Result<QueueReport, CrawlError> {
        let mut report = QueueReport::default();
        feed.refresh_redrive().await;
        let lease = feed.settings.lease;
        let messages = feed
            .queue
            .receive(feed.receive_size, feed.settings.wait_time, lease)
            .await
            .map_err(|e| CrawlError::Queue(e.to_string()))?;
        report.received = messages.len() as u64;
        if messages.is_empty() {
            return Ok(report);
        }
        let started = Instant::now();
        let mut work: Vec<Work> = Vec::new();
        let mut plans = Vec::with_capacity(messages.len());
        let mut by_key: HashMap<(String, String), usize> = HashMap::new();
        for m in &messages {
            let plan = self
                .plan_message(m, targets, &mut work, &mut by_key, &mut report)
                .await?;
            plans.push(plan);
        }

        // Read, keeping the messages being read hidden.
        let reading: Vec<&Message> = messages
            .iter()
            .zip(&plans)
            .filter(|(_, p)| matches!(p, Plan::Read { work, .. } if !work.is_empty()))
            .map(|(m, _)| m)
            .collect();
        let outcomes = {
            let read = self.process_all(targets, work);
            tokio::pin!(read);
            let every = lease / 3;
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    done = &mut read => break done,
                    _ = tick.tick() => {
                        match feed.queue.set_visibility(&reading, lease).await {
                            Ok(()) => report.extended += reading.len() as u64,
                            Err(e) => tracing::warn!(error = %e, "the lease could not be extended"),
                        }
                    }
                }
            }
        };

        // Settle each message.
        let mut delete = Vec::new();
        for (m, plan) in messages.iter().zip(plans) {
            let left = match plan {
                Plan::Done => {
                    delete.push(m);
                    continue;
                }
                Plan::Bad(reason) | Plan::Unplaced(reason) => reason,
                Plan::Read { work } => {
                    let retry = work.iter().find_map(|i| match outcomes.get(*i) {
                        Some((_, Outcome::RetryLater(reason))) => Some(reason.clone()),
                        _ => None,
                    });
                    match retry {
                        Some(reason) => reason,
                        None => {
                            delete.push(m);
                            continue;
                        }
                    }
                }
            };
            self.leave(feed, m, &left, &mut report).await;
        }
        if !delete.is_empty() {
            match feed.queue.delete(&delete).await {
                Ok(failed) => {
                    report.deleted = (delete.len() - failed.len()) as u64;
                    for f in failed {
                        tracing::warn!(message = %f, "SQS did not delete a message; its objects are committed and will be skipped");
                        report.errors.push(format!("not deleted: {f}"));
                    }
                }
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        feed.adapt(started.elapsed());
        self.record_queue_outcomes(targets, outcomes, &mut report)
            .await?;
        Ok(report)
    }

    /// Reads what a message names and adds its objects to the round's work.
    async fn plan_message(
        &self,
        m: &Message,
        targets: &[Target],
        work: &mut Vec<Work>,
        by_key: &mut HashMap<(String, String), usize>,
        report: &mut QueueReport,
    ) -> Result<Plan, CrawlError> {
        let objects = match notice::parse(&m.body) {
            Notice::Test => {
                *report.skipped.entry("test_event").or_default() += 1;
                return Ok(Plan::Done);
            }
            Notice::Unknown(reason) => return Ok(Plan::Bad(format!("message {}: {reason}", m.id))),
            Notice::Objects(objects) => objects,
        };
        let mut mine = Vec::new();
        for o in objects {
            let (target, cursor, key_time) = match fate(targets, &o) {
                Fate::NotOurs => {
                    tracing::debug!(bucket = %o.bucket, key = %o.key,
                        "notified object in no bucket or prefix of this deployment's trails: skipped");
                    *report.skipped.entry("not_ours").or_default() += 1;
                    continue;
                }
                Fate::Skip => {
                    *report.skipped.entry("not_a_log").or_default() += 1;
                    continue;
                }
                Fate::Read {
                    target,
                    cursor,
                    key_time,
                } => (target, cursor, key_time),
            };
            let slot = (o.bucket.clone(), o.key.clone());
            if let Some(i) = by_key.get(&slot) {
                mine.push(*i);
                continue;
            }
            let (bucket, key) = slot.clone();
            if self
                .blocking(move |s| s.object_status(&bucket, &key))
                .await?
                .is_some()
            {
                *report.skipped.entry("committed").or_default() += 1;
                continue;
            }
            if let Some(shared) = &self.shared {
                match shared.object_committed(&o.bucket, &o.key).await {
                    Ok(true) => {
                        *report.skipped.entry("committed").or_default() += 1;
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => return Ok(Plan::Unplaced(e.to_string())),
                }
            }
            let region = match self
                .bucket_region_of(&targets[target], o.region.as_deref())
                .await
            {
                Ok(r) => r,
                Err(e) => return Ok(Plan::Unplaced(format!("s3://{}: {e}", o.bucket))),
            };
            by_key.insert(slot, work.len());
            mine.push(work.len());
            work.push(Work {
                target,
                cursor,
                key: o.key,
                key_time,
                region,
            });
        }
        if mine.is_empty() {
            return Ok(Plan::Done);
        }
        Ok(Plan::Read { work: mine })
    }

    /// Leaves a message for another try: visible again after a step per
    /// receive so far; its last try before the dead-letter queue is reported.
    async fn leave(&self, feed: &Feed, m: &Message, reason: &str, report: &mut QueueReport) {
        report.left += 1;
        report.errors.push(reason.to_owned());
        match &feed.redrive {
            Some(r) if m.receive_count >= r.max_receive_count => {
                report.dead_lettered += 1;
                tracing::error!(message = %m.id, receives = m.receive_count,
                    dead_letter_queue = %r.dead_letter_queue, reason = %reason,
                    "message failed its last try: SQS moves it to the dead-letter queue");
            }
            _ => tracing::warn!(message = %m.id, receives = m.receive_count, reason = %reason,
                "message left for another try"),
        }
        let after = (RETRY_STEP * m.receive_count).min(feed.settings.lease);
        if let Err(e) = feed.queue.set_visibility(&[m], after).await {
            tracing::warn!(error = %e, "a message left for later keeps its lease");
        }
    }

    /// Counts the round's objects into the targets' status (lag, errors),
    /// as a pass does.
    async fn record_queue_outcomes(
        &self,
        targets: &[Target],
        outcomes: Vec<(Work, Outcome)>,
        report: &mut QueueReport,
    ) -> Result<(), CrawlError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        for (_, o) in &outcomes {
            if let Outcome::Committed {
                records,
                new_alerts,
                failed,
            } = o
            {
                report.objects += 1;
                report.records += records;
                report.new_alerts += new_alerts;
                report.failed += u64::from(failed.is_some());
            }
        }
        let previous = self.previous_reports(targets).await?;
        let mut reports: Vec<TargetReport> = targets
            .iter()
            .zip(&previous)
            .map(|(t, p)| report::carried(t, p.clone()))
            .collect();
        report::tally(&mut reports, outcomes);
        Self::update_lag(&mut reports, &previous);
        self.save_status(targets, &reports).await
    }

    /// How each reachable target's new objects are announced; a target
    /// with no way is warned of (the reconciler alone finds its objects).
    pub(in crate::pipeline) async fn check_notifications(
        &self,
        targets: &[Target],
        reports: &mut [TargetReport],
    ) {
        for (t, r) in targets.iter().zip(reports.iter_mut()) {
            let Some(region) = r.region.clone().filter(|_| r.reachable) else {
                continue;
            };
            let root = keys::awslogs_root(t.prefix.as_deref());
            let client = self.clients.s3(&t.bucket, &region);
            let path = notification_path(&client, &t.bucket, &root, &t.sns_topics).await;
            if path == NotificationPath::None {
                tracing::warn!(bucket = %t.bucket, prefix = %root,
                    "no notification announces this trail's objects: only the reconciler finds them");
            }
            r.notification = Some(path);
        }
    }

    /// A target's bucket region: the config's, the notification's, the one
    /// found before, or asked of S3.
    async fn bucket_region_of(
        &self,
        target: &Target,
        hint: Option<&str>,
    ) -> Result<String, String> {
        if let Some(r) = target.region.as_deref().or(hint) {
            return Ok(r.to_owned());
        }
        if let Some(r) = self.known_region(&target.bucket) {
            return Ok(r);
        }
        let (region, _) = self.plan(target).await?;
        Ok(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(bucket: &str, prefix: Option<&str>) -> Target {
        Target {
            bucket: bucket.into(),
            prefix: prefix.map(str::to_owned),
            trails: vec!["t".into()],
            kms_key_id: None,
            region: None,
            sns_topics: Vec::new(),
        }
    }

    fn noticed(bucket: &str, key: &str) -> NoticedObject {
        NoticedObject {
            bucket: bucket.into(),
            key: key.into(),
            region: None,
            size: None,
        }
    }

    const NAME: &str = "111122223333_CloudTrail_us-east-1_20261206T0605Z_AbCd.json.gz";

    #[test]
    fn an_object_is_read_skipped_or_not_ours() {
        let targets = [target("logs", None), target("shared", Some("team-a"))];
        let key = format!("AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/06/{NAME}");
        assert_eq!(
            fate(&targets, &noticed("logs", &key)),
            Fate::Read {
                target: 0,
                cursor: CursorKey {
                    bucket: "logs".into(),
                    prefix: "AWSLogs/".into(),
                    account: "111122223333".into(),
                    region: "us-east-1".into(),
                },
                key_time: "20261206T0605Z".into(),
            }
        );
        assert!(matches!(
            fate(&targets, &noticed("shared", &format!("team-a/{key}"))),
            Fate::Read { target: 1, .. }
        ));
        // Another team's prefix in a shared bucket, another bucket.
        assert_eq!(
            fate(&targets, &noticed("shared", &format!("team-b/{key}"))),
            Fate::NotOurs
        );
        assert_eq!(fate(&targets, &noticed("other", &key)), Fate::NotOurs);
        let digest = key.replace("/CloudTrail/", "/CloudTrail-Digest/");
        assert_eq!(fate(&targets, &noticed("logs", &digest)), Fate::Skip);
        let insight = key.replace("/CloudTrail/", "/CloudTrail-Insight/");
        assert_eq!(fate(&targets, &noticed("logs", &insight)), Fate::Skip);
        assert_eq!(
            fate(&targets, &noticed("logs", "AWSLogs/README.txt")),
            Fate::Skip
        );
    }

    #[test]
    fn slow_batches_shrink_the_next_receive() {
        let settings = SqsSource {
            queue_url: "http://q".into(),
            wait_time: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            max_messages: 10,
            reconcile_interval: Duration::from_secs(3600),
        };
        let client = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::new()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .build(),
        );
        let mut feed = Feed::new(Queue::new(client, "http://q"), settings);
        assert_eq!(feed.receive_size(), 10);
        feed.adapt(Duration::from_secs(40));
        feed.adapt(Duration::from_secs(40));
        assert_eq!(feed.receive_size(), 2);
        for _ in 0..3 {
            feed.adapt(Duration::from_secs(40));
        }
        assert_eq!(feed.receive_size(), 1);
        feed.adapt(Duration::from_secs(1));
        assert_eq!(feed.receive_size(), 2);
        for _ in 0..20 {
            feed.adapt(Duration::from_secs(1));
        }
        assert_eq!(feed.receive_size(), 10);
    }
}
