//! The polling side: each cursor's keys from its watermark minus the lookback (or
//! `start_from` on a first run) to now, day folder by day folder, less those
//! already processed; they become the pass's work.

use std::collections::{BTreeMap, HashSet};

use time::OffsetDateTime;

use crate::aws::listing::{Lister, LogFolder, keys_between};
use crate::config::StartFrom;
use crate::decode::is_log_object;
use crate::state::CursorKey;

use crate::aws::keys::{self, KeyTime};
use crate::pipeline::process::Work;
use crate::pipeline::{CrawlError, Crawler, Target, TargetReport};

/// What listing found: the objects to read, and each cursor's listed key
/// times (for its watermark).
#[derive(Default)]
pub(in crate::pipeline) struct Listing {
    pub work: Vec<Work>,
    pub listed: BTreeMap<(usize, CursorKey), Vec<KeyTime>>,
}

impl Crawler {
    /// Plans and lists every target; a target or cursor that fails is
    /// reported in its target's report and skipped.
    pub(in crate::pipeline) async fn list_all(
        &self,
        targets: &[Target],
        reports: &mut [TargetReport],
        started: OffsetDateTime,
    ) -> Result<Listing, CrawlError> {
        let mut listing = Listing::default();
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
            let client = self.clients.s3(&target.bucket, &region);
            report.reachable = true;
            for cursor in cursors {
                report.cursors.push(format!(
                    "{}{}/CloudTrail/{}",
                    cursor.prefix, cursor.account, cursor.region
                ));
                match self.list_cursor(&client, &cursor, started).await {
                    Ok(keys) => {
                        report.listed += keys.len() as u64;
                        let entry = listing.listed.entry((i, cursor.clone())).or_default();
                        for (key, key_time) in keys {
                            entry.push(key_time.clone());
                            listing.work.push(Work {
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
        Ok(listing)
    }

    /// The keys of a cursor not processed yet, from its watermark minus the
    /// lookback (or `start_from` on a first run) to now, in key order.
    pub(in crate::pipeline) async fn list_cursor(
        &self,
        lister: &impl Lister,
        cursor: &CursorKey,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, KeyTime)>, CrawlError> {
        let c = cursor.clone();
        let watermark = self.blocking(move |s| s.watermark(&c)).await?;
        let from = match watermark.as_deref().and_then(keys::parse_key_time) {
            // A watermark past now was set while the clock was ahead: the
            // keys since now less the lookback are listed again (those done
            // are skipped; an object read again raises no alert twice).
            Some(w) if w > now => {
                tracing::warn!(bucket = %cursor.bucket, watermark = %w, "a watermark is in the future (the clock was ahead): listing from now");
                now - self.config.crawl.lookback
            }
            Some(w) => w - self.config.crawl.lookback,
            None => self.start_from(now),
        };
        let from_key = keys::key_time(from);
        let c = cursor.clone();
        let since = from_key.clone();
        let done = self
            .blocking(move |s| s.processed_keys_since(&c, &since))
            .await?;
        let folder = LogFolder {
            root: cursor.prefix.clone(),
            account: cursor.account.clone(),
            region: cursor.region.clone(),
        };
        let (listed, errors) = keys_between(lister, &cursor.bucket, &folder, from, now).await;
        for e in errors {
            tracing::warn!(bucket = %cursor.bucket, error = %e, "listing failed");
        }
        let out = select_keys(listed, &done, &from_key);
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
}

/// The listed keys worth reading, with their key times: CloudTrail log
/// objects not processed yet and no older than `from_key`.
fn select_keys(
    listed: Vec<String>,
    done: &HashSet<String>,
    from_key: &str,
) -> Vec<(String, KeyTime)> {
    listed
        .into_iter()
        .filter(|key| is_log_object(key) && !done.contains(key))
        .filter_map(|key| {
            let key_time = keys::object_key_time(&key)?;
            (key_time.as_str() >= from_key).then_some((key, key_time))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLDER: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/";

    fn key(stamp: &str) -> String {
        format!("{FOLDER}111122223333_CloudTrail_us-east-1_{stamp}_AbCd.json.gz")
    }

    #[test]
    fn only_new_log_objects_from_the_start_are_read() {
        let listed = vec![
            key("20261121T0955Z"),
            key("20261121T1000Z"),
            key("20261121T1005Z"),
            key("20261121T1010Z"),
            format!("{FOLDER}111122223333_CloudTrail-Digest_us-east-1_20261121T1010Z.json.gz"),
            format!("{FOLDER}notes.txt"),
        ];
        let done: HashSet<String> = [key("20261121T1005Z")].into_iter().collect();
        let chosen: Vec<String> = select_keys(listed, &done, "20261121T1000Z")
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(chosen, ["20261121T1000Z", "20261121T1010Z"]);
    }

    /// A key of the test cursor, `minutes` ago.
    fn key_at(now: OffsetDateTime, minutes: i64) -> (String, KeyTime) {
        let t = now - time::Duration::minutes(minutes);
        let stamp = keys::key_time(t);
        let key = format!(
            "AWSLogs/111122223333/CloudTrail/us-east-1/{:04}/{:02}/{:02}/111122223333_CloudTrail_us-east-1_{stamp}_m{minutes}.json.gz",
            t.year(),
            t.month() as u8,
            t.day()
        );
        (key, stamp)
    }

    /// A crawler over a state store in `dir`, with a one-hour lookback.
    async fn crawler_in(
        dir: &std::path::Path,
    ) -> (Crawler, std::sync::Arc<crate::state::StateStore>) {
        use std::sync::Arc;
        let config = crate::config::Config::from_toml(
            "[aws]\nregion = \"us-east-1\"\n[crawl]\nstart_from = \"24h\"\nlookback = \"1h\"\n",
            dir,
        )
        .expect("config");
        let state = Arc::new(crate::state::StateStore::open(&dir.join("state.db")).expect("state"));
        let crawler = Crawler::new(
            Arc::new(crate::aws::AwsClients::new(&config.aws).await),
            Arc::clone(&state),
            Arc::new(crate::rules::RuleSet::new(Vec::new()).0),
            Arc::new(config),
        );
        (crawler, state)
    }

    fn test_cursor() -> CursorKey {
        CursorKey {
            bucket: "logs".into(),
            prefix: "AWSLogs/".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
        }
    }

    #[tokio::test]
    async fn a_cursor_lists_from_its_watermark_less_the_lookback_and_skips_what_is_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (crawler, state) = crawler_in(dir.path()).await;
        let now = OffsetDateTime::now_utc();
        let minutes = [300, 180, 90, 30, 10];
        let written: Vec<(String, KeyTime)> = minutes.iter().map(|m| key_at(now, *m)).collect();
        let keys: Vec<&str> = written.iter().map(|(k, _)| k.as_str()).collect();
        let bucket = crate::aws::fake::FakeBucket::new("logs", &keys);
        let cursor = test_cursor();
        let listed = |got: Vec<(String, KeyTime)>| -> Vec<String> {
            got.into_iter().map(|(k, _)| k).collect()
        };
        // A first run: everything since `start_from`.
        let first = crawler
            .list_cursor(&bucket, &cursor, now)
            .await
            .expect("listed");
        assert_eq!(listed(first), keys);
        // One object done, the watermark 90 minutes ago: from 150 minutes
        // ago (the lookback), without the one done.
        let (done_key, done_time) = &written[3];
        state
            .commit_object(&crate::state::ObjectCommit {
                cursor: &cursor,
                key: done_key,
                key_time: done_time,
                status: crate::state::ObjectStatus::Done,
                records: 1,
                error: None,
                alerts: &[],
                activity: &[],
                correlation: None,
            })
            .expect("commit");
        state
            .advance_watermark(&cursor, &written[2].1)
            .expect("watermark");
        let next = crawler
            .list_cursor(&bucket, &cursor, now)
            .await
            .expect("listed");
        assert_eq!(listed(next), [keys[2], keys[4]]);
    }

    /// Found by the chaos suite's clock steps: with the wall clock a day
    /// ahead, a quiet pass moved the watermark to "now" less the lookback,
    /// a day ahead; once the clock was put back, every object of that day
    /// fell before the watermark and was never listed.
    #[tokio::test]
    async fn a_clock_stepped_forward_and_back_loses_no_object() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (crawler, state) = crawler_in(dir.path()).await;
        let cursor = test_cursor();
        let now = OffsetDateTime::now_utc();
        let ahead = now + time::Duration::days(1);
        let quiet = |c: &CursorKey| {
            let mut listed = BTreeMap::new();
            listed.insert((0usize, c.clone()), Vec::new());
            listed
        };
        // Two quiet passes, the second with the clock a day ahead.
        crawler
            .advance_watermarks(quiet(&cursor), &Default::default(), now)
            .await
            .expect("first pass");
        crawler
            .advance_watermarks(quiet(&cursor), &Default::default(), ahead)
            .await
            .expect("pass with the clock ahead");
        let stored = state
            .watermark(&cursor)
            .expect("read")
            .expect("a watermark");
        let stored = keys::parse_key_time(&stored).expect("a key time");
        assert!(
            stored <= now,
            "the watermark stays within the time that really passed: {stored} vs {now}"
        );
        // A watermark already in the future (the clock was ahead at start):
        // the keys of the last hour are listed all the same.
        state
            .advance_watermark(&cursor, &keys::key_time(ahead))
            .expect("watermark");
        let written = [key_at(now, 30), key_at(now, 5)];
        let keys: Vec<&str> = written.iter().map(|(k, _)| k.as_str()).collect();
        let bucket = crate::aws::fake::FakeBucket::new("logs", &keys);
        let got: Vec<String> = crawler
            .list_cursor(&bucket, &cursor, now)
            .await
            .expect("listed")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, keys);
    }
}
