//! Process: read each object (streamed from S3 through `detect`, on the
//! blocking pool) and commit its alerts, with the stateful rules' pending
//! alerts and state, and its checkpoint in one transaction. Objects are
//! processed with bounded concurrency; one that cannot be read now is left
//! for the next pass, one that is corrupt is recorded as failed.

use std::sync::Arc;

use futures::StreamExt;
use tokio_util::io::SyncIoBridge;

use crate::alert::{Activity, Alert, Detected, ObjectRef, now_rfc3339};
use crate::aws::fetch::{FetchError, open_object};
use crate::decode::DecodeError;
use crate::detect::{ObjectReport, detect_object_seeing};
use crate::rules::Held;
use crate::state::{CursorKey, ObjectCommit, ObjectStatus, StateStore};

use super::{Crawler, Target};
use crate::aws::keys::KeyTime;

/// One object to read.
pub(super) struct Work {
    pub target: usize,
    pub cursor: CursorKey,
    pub key: String,
    pub key_time: KeyTime,
    pub region: String,
}

pub(super) enum Outcome {
    Committed {
        records: u64,
        new_alerts: u64,
        /// Why the object failed (corrupt, truncated, too large), if it did.
        failed: Option<String>,
    },
    RetryLater(String),
}

/// What reading one object produced.
#[derive(Debug)]
struct Fetched {
    report: ObjectReport,
    alerts: Vec<Detected>,
    /// Its records that feed a correlation, fed when it is committed.
    held: Vec<Held>,
    /// Its records for the activity index (none when it is off).
    activity: Vec<Activity>,
}

/// What reading an object calls for.
enum Step {
    Commit {
        status: ObjectStatus,
        error: Option<String>,
        fetched: Option<Fetched>,
    },
    RetryLater(String),
}

/// How reading an object ends: committed with a status (and why it failed,
/// if it did), or left for the next pass.
#[derive(Debug, PartialEq)]
enum Judged {
    Commit {
        status: ObjectStatus,
        error: Option<String>,
    },
    RetryLater(String),
}

/// A read that broke off on the wire (not in the data), a denial or
/// throttling is retried; a corrupt object or one that is gone is committed
/// as failed, so that it does not hold its cursor back.
fn judge(bucket: &str, key: &str, read: &Result<Fetched, FetchError>) -> Judged {
    match read {
        Ok(f) => match &f.report.error {
            None => Judged::Commit {
                status: ObjectStatus::Done,
                error: None,
            },
            Some(e @ DecodeError::Io { .. }) => {
                tracing::warn!(bucket = %bucket, key = %key, error = %e, "read broke off; retried next pass");
                Judged::RetryLater(format!("s3://{bucket}/{key}: {e}"))
            }
            Some(e) => {
                tracing::warn!(bucket = %bucket, key = %key, error = %e, "object failed; recorded and skipped");
                Judged::Commit {
                    status: ObjectStatus::Failed,
                    error: Some(format!("s3://{bucket}/{key}: {e}")),
                }
            }
        },
        Err(FetchError::Missing { .. }) => {
            tracing::warn!(bucket = %bucket, key = %key, "the object is gone; recorded and skipped");
            Judged::Commit {
                status: ObjectStatus::Failed,
                error: Some(format!("s3://{bucket}/{key}: the object is gone")),
            }
        }
        Err(e) => {
            tracing::warn!(bucket = %bucket, key = %key, error = %e, "object not read; retried next pass");
            Judged::RetryLater(e.to_string())
        }
    }
}

impl Crawler {
    /// Processes the pass's work: objects are read with bounded
    /// concurrency, and committed one by one in the order they were listed
    /// (key order within each cursor), whichever read finished first. The
    /// stateful rules are fed each object's records at its commit, so what
    /// they find does not depend on which read was faster.
    pub(super) async fn process_all(
        &self,
        targets: &[Target],
        work: Vec<Work>,
    ) -> Vec<(Work, Outcome)> {
        let mut reads = futures::stream::iter(work)
            .map(|w| async {
                let kms = targets[w.target].kms_key_id.clone();
                let read = self.read_step(&w, kms.as_deref()).await;
                (w, read)
            })
            .buffered(self.config.crawl.concurrency);
        let mut out = Vec::new();
        while let Some((w, read)) = reads.next().await {
            let outcome = match read {
                Step::RetryLater(reason) => Outcome::RetryLater(reason),
                Step::Commit {
                    status,
                    error,
                    fetched,
                } => self.commit(&w, status, error, fetched).await,
            };
            out.push((w, outcome));
        }
        out
    }

    /// Streams one object through detection on the blocking pool.
    async fn read(&self, w: &Work, kms_key: Option<&str>) -> Result<Fetched, FetchError> {
        let client = self.clients.s3(&w.cursor.bucket, &w.region);
        let (bucket, key) = (&w.cursor.bucket, &w.key);
        let body = open_object(&client, bucket, key, kms_key).await?;
        let rules = Arc::clone(&self.rules);
        let max_decompressed_bytes = self.config.crawl.max_decompressed_bytes;
        let object = ObjectRef {
            bucket: bucket.clone(),
            key: key.clone(),
        };
        let index_activity = self.config.store.activity;
        let handle = tokio::task::spawn_blocking(move || {
            let reader = SyncIoBridge::new(body.into_async_read());
            let (mut alerts, mut held, mut activity) = (Vec::new(), Vec::new(), Vec::new());
            let detected_at = now_rfc3339();
            let report = detect_object_seeing(
                reader,
                &rules,
                max_decompressed_bytes,
                |record| {
                    if index_activity {
                        activity.push(Activity::of(record));
                    }
                },
                |matched, record| {
                    for rule in matched {
                        alerts.push(Alert::detected(
                            rule,
                            record,
                            Some(object.clone()),
                            &detected_at,
                        ))
                    }
                },
                |matched, record| held.extend(rules.hold_for_correlation(record, matched)),
            );
            Fetched {
                report,
                alerts,
                held,
                activity,
            }
        });
        handle.await.map_err(|e| FetchError::Transient {
            bucket: bucket.clone(),
            key: key.clone(),
            reason: format!("decoder task failed: {e}"),
        })
    }

    /// Reads one object (unless the crawl is stopping) and judges the read.
    async fn read_step(&self, w: &Work, kms_key: Option<&str>) -> Step {
        if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Step::RetryLater("stopping: left for the next start".into());
        }
        let read = self.read(w, kms_key).await;
        match judge(&w.cursor.bucket, &w.key, &read) {
            Judged::Commit { status, error } => Step::Commit {
                status,
                error,
                fetched: read.ok(),
            },
            Judged::RetryLater(reason) => Step::RetryLater(reason),
        }
    }

    /// Feeds the object's held records to the stateful rules, then commits
    /// its alerts, theirs and their state with its checkpoint.
    async fn commit(
        &self,
        w: &Work,
        status: ObjectStatus,
        error: Option<String>,
        fetched: Option<Fetched>,
    ) -> Outcome {
        let (records, alerts, held, activity) = match fetched {
            Some(f) => (f.report.records, f.alerts, f.held, f.activity),
            None => (0, Vec::new(), Vec::new(), Vec::new()),
        };
        let object = ObjectRef {
            bucket: w.cursor.bucket.clone(),
            key: w.key.clone(),
        };
        // Shared state: the stateful rules' records go to the shared feed
        // (before the commit, so that a crash re-reads and puts them again,
        // harmlessly), for the leader's engine; none is fed here.
        let local_engine = self.shared.is_none();
        if let Some(shared) = &self.shared
            && !held.is_empty()
        {
            let items = super::shared_feed::items(&self.rules, &held, &object);
            if let Err(e) = shared.feed(&items).await {
                return Outcome::RetryLater(format!("{}{e}", super::report::COMMIT_FAILED));
            }
        }
        let held = if local_engine { held } else { Vec::new() };
        // Shared state: repeats are grouped with every instance's.
        let alerts = match (&self.shared, &self.config.rules.suppression) {
            (Some(shared), Some(config)) if !alerts.is_empty() => {
                match shared
                    .group(config, &format!("{}/{}", object.bucket, object.key), alerts)
                    .await
                {
                    Ok(alerts) => alerts,
                    Err(e) => {
                        return Outcome::RetryLater(format!("{}{e}", super::report::COMMIT_FAILED));
                    }
                }
            }
            (_, _) => alerts,
        };
        let cursor = w.cursor.clone();
        let key = w.key.clone();
        let key_time = w.key_time.clone();
        let failed = error.clone();
        let rules = Arc::clone(&self.rules);
        let commit = move |s: &StateStore| {
            let detected_at = now_rfc3339();
            for h in &held {
                rules.feed_held(h, Some(&object), &detected_at);
            }
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
                        activity: &activity,
                        correlation,
                    })
                };
            // With stateful rules, their pending alerts and their state are
            // committed with the object, under the correlator's lock, so that
            // what is committed and what the engine holds never drift apart.
            // (With shared state the leader's engine has them instead.)
            let with = local_engine.then(|| {
                rules.with_correlator(|c| {
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
                })
            });
            match with.flatten() {
                Some(result) => result,
                None => commit(&alerts, None),
            }
        };
        let committed = self.blocking(commit).await;
        if committed.is_ok()
            && let Some(shared) = &self.shared
        {
            let status = if failed.is_some() { "failed" } else { "done" };
            if let Err(e) = shared
                .mark_committed(&w.cursor.bucket, &w.key, status, records)
                .await
            {
                tracing::warn!(bucket = %w.cursor.bucket, key = %w.key, error = %e,
                    "committed here, but not marked in the shared state; another instance may read it again (its alerts are delivered once)");
            }
        }
        match committed {
            Ok(n) => {
                tracing::debug!(bucket = %w.cursor.bucket, key = %w.key, records, new_alerts = n, "object processed");
                Outcome::Committed {
                    records,
                    new_alerts: n as u64,
                    failed,
                }
            }
            Err(e) => Outcome::RetryLater(format!("{}{e}", super::report::COMMIT_FAILED)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(error: Option<DecodeError>) -> Result<Fetched, FetchError> {
        Ok(Fetched {
            report: ObjectReport {
                records: 3,
                error,
                ..ObjectReport::default()
            },
            alerts: Vec::new(),
            held: Vec::new(),
            activity: Vec::new(),
        })
    }

    #[test]
    fn a_broken_read_is_retried_and_a_corrupt_object_recorded() {
        assert_eq!(
            judge("b", "k", &read(None)),
            Judged::Commit {
                status: ObjectStatus::Done,
                error: None
            }
        );
        let wire = DecodeError::Io {
            offset: 10,
            source: std::io::Error::other("connection reset"),
        };
        assert!(matches!(
            judge("b", "k", &read(Some(wire))),
            Judged::RetryLater(reason) if reason.starts_with("s3://b/k: ")
        ));
        let corrupt = DecodeError::Json {
            offset: 5,
            reason: "malformed JSON".into(),
        };
        assert!(matches!(
            judge("b", "k", &read(Some(corrupt))),
            Judged::Commit { status: ObjectStatus::Failed, error: Some(e) } if e.contains("s3://b/k")
        ));
        let gone = Err(FetchError::Missing {
            bucket: "b".into(),
            key: "k".into(),
        });
        assert!(matches!(
            judge("b", "k", &gone),
            Judged::Commit { status: ObjectStatus::Failed, error: Some(e) } if e.ends_with("the object is gone")
        ));
        let denied = Err(FetchError::AccessDenied {
            bucket: "b".into(),
            key: "k".into(),
            reason: "no".into(),
        });
        assert!(matches!(judge("b", "k", &denied), Judged::RetryLater(_)));
    }
}
