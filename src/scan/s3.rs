//! Hunting straight from S3: `scan s3://bucket[/prefix]` lists a trail's
//! objects as the crawler does (account and region folders, organisation
//! layouts, day folders from `--since` to `--until` by the time in the key,
//! digests skipped) and streams each object to a worker, never whole into
//! memory, without writing any state.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use time::OffsetDateTime;
use tokio_util::io::SyncIoBridge;

use crate::aws::AwsClients;
use crate::aws::fetch::open_object;
use crate::aws::keys;
use crate::aws::listing::{keys_between, log_folders};
use crate::aws::region::bucket_region;
use crate::config::AwsConfig;
use crate::config::parse_when;
use crate::decode::is_log_object;

use super::Failure;

/// Which objects of a trail to read.
#[derive(Debug, Clone)]
pub struct Selection {
    /// By the delivery time in the key, from `since` to `until`.
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    /// Only these accounts and regions (empty: all).
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

/// Where a trail writes: `s3://bucket[/prefix]`, and its KMS key if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub bucket: String,
    pub prefix: Option<String>,
    pub kms_key: Option<String>,
}

impl Place {
    /// Parses `s3://bucket[/prefix]` (the prefix is the trail's
    /// `S3KeyPrefix`, before `AWSLogs/`).
    pub fn parse(url: &str) -> Result<Place, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url}: not an s3:// URL"))?;
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, Some(p.trim_matches('/')).filter(|p| !p.is_empty())),
            None => (rest, None),
        };
        if bucket.is_empty() {
            return Err(format!("{url}: no bucket"));
        }
        if prefix.is_some_and(|p| p == "AWSLogs" || p.starts_with("AWSLogs/")) {
            return Err(format!(
                "{url}: give the trail's prefix (before AWSLogs/), and select with --since, --until, --account and --region"
            ));
        }
        Ok(Place {
            bucket: bucket.to_owned(),
            prefix: prefix.map(str::to_owned),
            kms_key: None,
        })
    }
}

/// One object to read.
#[derive(Debug, Clone)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub kms_key: Option<String>,
}

impl Object {
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// The AWS clients and the runtime their calls run on; workers (plain
/// threads) block on it for one object at a time.
pub struct Reader {
    runtime: tokio::runtime::Runtime,
    clients: AwsClients,
    /// Each bucket's region, found once.
    regions: Mutex<HashMap<String, String>>,
}

impl Reader {
    pub fn new(aws: &AwsConfig) -> Result<Reader, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let clients = runtime.block_on(AwsClients::new(aws));
        Ok(Reader {
            runtime,
            clients,
            regions: Mutex::new(HashMap::new()),
        })
    }

    /// The clients (for discovery by the caller).
    pub fn clients(&self) -> &AwsClients {
        &self.clients
    }

    /// Runs `f` on the runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    fn region_of(&self, bucket: &str) -> Result<String, String> {
        if let Some(r) = self
            .regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(bucket)
        {
            return Ok(r.clone());
        }
        let ask = self
            .clients
            .home_region()
            .unwrap_or_else(|| "us-east-1".into());
        let region = self
            .runtime
            .block_on(bucket_region(&self.clients, bucket, &ask))
            .map_err(|e| e.to_string())?;
        self.regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(bucket.to_owned(), region.clone());
        Ok(region)
    }

    /// The log objects of `place` in the selection, in key order per
    /// account and region; what could not be listed, as failures.
    pub fn list(
        &self,
        place: &Place,
        selection: &Selection,
    ) -> Result<(Vec<Object>, Vec<Failure>), String> {
        let client = self
            .clients
            .s3(&place.bucket, &self.region_of(&place.bucket)?);
        let folders = self
            .runtime
            .block_on(log_folders(&client, &place.bucket, place.prefix.as_deref()))
            .map_err(|e| e.to_string())?;
        let (from, to) = (
            keys::key_time(selection.since),
            keys::key_time(selection.until),
        );
        let wanted =
            |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        let (mut objects, mut failures) = (Vec::new(), Vec::new());
        for folder in folders.iter().filter(|f| {
            wanted(&selection.accounts, &f.account) && wanted(&selection.regions, &f.region)
        }) {
            let (listed, errors) = self.runtime.block_on(keys_between(
                &client,
                &place.bucket,
                folder,
                selection.since,
                selection.until,
            ));
            failures.extend(errors.into_iter().map(|e| Failure {
                path: format!("s3://{}/{}", e.bucket, e.prefix),
                reason: e.reason,
            }));
            objects.extend(
                listed
                    .into_iter()
                    .filter(|key| is_log_object(key))
                    .filter(|key| keys::object_key_time(key).is_some_and(|t| t >= from && t <= to))
                    .map(|key| Object {
                        bucket: place.bucket.clone(),
                        key,
                        kms_key: place.kms_key.clone(),
                    }),
            );
        }
        Ok((objects, failures))
    }

    /// Opens one object for streaming (on the calling thread, blocking).
    pub fn open(&self, object: &Object) -> std::io::Result<Box<dyn Read + Send>> {
        let region = self
            .region_of(&object.bucket)
            .map_err(std::io::Error::other)?;
        let client = self.clients.s3(&object.bucket, &region);
        let body = self
            .runtime
            .block_on(open_object(
                &client,
                &object.bucket,
                &object.key,
                object.kms_key.as_deref(),
            ))
            .map_err(std::io::Error::other)?;
        Ok(Box::new(SyncIoBridge::new_with_handle(
            body.into_async_read(),
            self.runtime.handle().clone(),
        )))
    }
}

/// The scan's source for `urls` (`s3://bucket[/prefix]`) and, with a
/// config, the trails named in `trails` (discovered or the config's own),
/// listed now.
pub fn source(
    aws: &AwsConfig,
    urls: &[String],
    trails: Option<(&crate::config::Config, &[String])>,
    selection: &Selection,
) -> Result<super::Source, String> {
    let reader = Reader::new(aws)?;
    let mut places = urls
        .iter()
        .map(|u| Place::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    // A bucket named by URL is read by the role the config gives it.
    if let Some((config, _)) = trails {
        for place in &places {
            reader
                .clients()
                .set_reader(&place.bucket, config.reader_for(&place.bucket));
        }
    }
    if let Some((config, names)) = trails.filter(|(_, n)| !n.is_empty()) {
        let discovered =
            reader.block_on(crate::aws::discovery::all_trails(reader.clients(), config));
        let (found, errors) = (discovered.trails, discovered.errors);
        for name in names {
            let Some(t) = found.iter().find(|t| &t.name == name || &t.arn == name) else {
                let why: Vec<String> = errors.iter().map(|(r, e)| format!("{r}: {e}")).collect();
                return Err(format!(
                    "--trail {name}: no such trail ({})",
                    why.join("; ")
                ));
            };
            places.push(Place {
                bucket: t.bucket.clone(),
                prefix: t.prefix.clone(),
                kms_key: t.kms_key_id.clone(),
            });
        }
    }
    let (mut objects, mut failures) = (Vec::new(), Vec::new());
    for place in &places {
        let (o, f) = reader.list(place, selection)?;
        objects.extend(o);
        failures.extend(f);
    }
    Ok(super::Source::S3 {
        reader: Box::new(reader),
        objects,
        failures,
    })
}

/// What `scan` was asked for, as given on its command line.
pub struct Wanted<'a> {
    pub paths: &'a [std::path::PathBuf],
    pub since: &'a str,
    pub until: Option<&'a str>,
    pub accounts: &'a [String],
    pub regions: &'a [String],
    pub trails: &'a [String],
    /// Its [aws] settings and trails, for `trails`.
    pub config: Option<&'a crate::config::Config>,
}

/// Local paths, or objects listed in S3 (`s3://` paths, trails).
pub fn source_for(wanted: &Wanted) -> Result<super::Source, String> {
    let urls: Vec<String> = wanted
        .paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let remote = urls.iter().filter(|u| u.starts_with("s3://")).count();
    if remote == 0 && wanted.trails.is_empty() {
        return Ok(super::Source::Paths(wanted.paths.to_vec()));
    }
    if remote < urls.len() {
        return Err("give local paths or s3:// URLs, not both".into());
    }
    let config = wanted.config;
    let now = OffsetDateTime::now_utc();
    let selection = Selection {
        since: parse_when(wanted.since, now).map_err(|e| format!("--since {e}"))?,
        until: match wanted.until {
            Some(t) => parse_when(t, now).map_err(|e| format!("--until {e}"))?,
            None => now,
        },
        accounts: wanted.accounts.to_vec(),
        regions: wanted.regions.to_vec(),
    };
    let aws = config.map(|c| c.aws.clone()).unwrap_or_default();
    let trails = config.map(|c| (c, wanted.trails));
    source(&aws, &urls, trails, &selection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_trail_prefix() {
        let place = Place::parse("s3://logs").expect("bucket");
        assert_eq!((place.bucket.as_str(), place.prefix), ("logs", None));
        let place = Place::parse("s3://logs/org/").expect("prefix");
        assert_eq!(place.prefix.as_deref(), Some("org"));
        assert!(Place::parse("logs/x").is_err());
        assert!(Place::parse("s3:///x").is_err());
        let e = Place::parse("s3://logs/AWSLogs/111122223333/").expect_err("inside AWSLogs");
        assert!(e.contains("--since"), "{e}");
    }

    #[test]
    fn times_are_durations_back_or_rfc3339() {
        let now = time::macros::datetime!(2026-11-21 10:00 UTC);
        assert_eq!(
            parse_when("2h", now).expect("ago"),
            time::macros::datetime!(2026-11-21 08:00 UTC)
        );
        assert_eq!(
            parse_when("2026-11-01T00:00:00Z", now).expect("rfc3339"),
            time::macros::datetime!(2026-11-01 00:00 UTC)
        );
        assert!(parse_when("yesterday", now).is_err());
    }
}
