//! Listing with the SDK paginators: child folders (delimiter listing) and the
//! keys of one day folder from a `StartAfter` key.

use aws_sdk_s3::error::DisplayErrorContext;

use super::keys::{self, AwsLogsChild};

/// A listing failure, naming the bucket and prefix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("s3://{bucket}/{prefix}: {reason}")]
pub struct ListError {
    pub bucket: String,
    pub prefix: String,
    pub reason: String,
    pub access_denied: bool,
    /// The region S3 named on a 301 PermanentRedirect: ask there instead.
    pub redirect_region: Option<String>,
}

fn list_error<E, R>(bucket: &str, prefix: &str, e: &aws_sdk_s3::error::SdkError<E, R>) -> ListError
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + super::region::HttpStatus + RawHeaders,
{
    ListError {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        reason: format!("ListObjectsV2: {}", DisplayErrorContext(e)),
        access_denied: super::region::is_access_denied(e),
        redirect_region: e
            .raw_response()
            .and_then(|r| r.raw_header("x-amz-bucket-region"))
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
    }
}

/// The names of the folders directly under `prefix` (each ends in `/`, and
/// is relative to `prefix`).
pub async fn list_folders(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, ListError> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| list_error(bucket, prefix, &e))?;
        for p in page.common_prefixes() {
            if let Some(name) = p.prefix().and_then(|full| full.strip_prefix(prefix)) {
                out.push(name.to_owned());
            }
        }
    }
    Ok(out)
}

/// Every key under `prefix` that sorts after `start_after`, in key order.
pub async fn list_keys(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    start_after: Option<&str>,
) -> Result<Vec<String>, ListError> {
    let mut request = client.list_objects_v2().bucket(bucket).prefix(prefix);
    if let Some(after) = start_after {
        request = request.start_after(after);
    }
    let mut pages = request.into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| list_error(bucket, prefix, &e))?;
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    Ok(out)
}

/// What the crawl asks of a bucket: its folders and its keys. S3's client
/// answers with the paginators above; the pipeline's tests use a fake.
pub trait Lister: Sync {
    /// The folders directly under `prefix` (as `list_folders`).
    fn folders(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl std::future::Future<Output = Result<Vec<String>, ListError>> + Send;

    /// The keys under `prefix` after `start_after`, in key order (as
    /// `list_keys`).
    fn keys(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Vec<String>, ListError>> + Send;
}

impl Lister for aws_sdk_s3::Client {
    async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, ListError> {
        list_folders(self, bucket, prefix).await
    }

    async fn keys(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, ListError> {
        list_keys(self, bucket, prefix, start_after).await
    }
}

/// One account and region folder of a trail's logs:
/// `<root><account>/CloudTrail/<region>/`, `root` being `[<prefix>/]AWSLogs/`
/// or, in an organisation trail, `[<prefix>/]AWSLogs/o-<org>/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogFolder {
    pub root: String,
    pub account: String,
    pub region: String,
}

/// The account and region folders of a trail writing under `prefix` in
/// `bucket` (organisation layouts included; digests and other folders left
/// out), in order.
pub async fn log_folders(
    lister: &impl Lister,
    bucket: &str,
    prefix: Option<&str>,
) -> Result<Vec<LogFolder>, ListError> {
    let awslogs = keys::awslogs_root(prefix);
    let mut roots = Vec::new();
    let mut accounts = Vec::new();
    for child in lister.folders(bucket, &awslogs).await? {
        match keys::classify_awslogs_child(&child) {
            AwsLogsChild::Account => accounts.push((awslogs.clone(), child)),
            AwsLogsChild::Organization => roots.push(format!("{awslogs}{child}")),
            AwsLogsChild::Other => {}
        }
    }
    for root in roots {
        for child in lister.folders(bucket, &root).await? {
            if keys::classify_awslogs_child(&child) == AwsLogsChild::Account {
                accounts.push((root.clone(), child));
            }
        }
    }
    let mut folders = std::collections::BTreeSet::new();
    for (root, account) in accounts {
        let account = account.trim_end_matches('/').to_owned();
        let regions_prefix = format!("{root}{account}/CloudTrail/");
        for region in lister.folders(bucket, &regions_prefix).await? {
            folders.insert(LogFolder {
                root: root.clone(),
                account: account.clone(),
                region: region.trim_end_matches('/').to_owned(),
            });
        }
    }
    Ok(folders.into_iter().collect())
}

/// Past this many days, the day folders that exist are found by listing the
/// year, month and day folders, rather than by asking for every day (a month
/// of a quiet region is then a handful of requests, not thirty).
const WALK_FOLDERS_PAST_DAYS: usize = 3;

/// The keys of `folder` delivered from `from` on (by the time in the key:
/// the listing starts after `from` in its day folder) up to the day of
/// `to`, day folder by day folder, in key order; with what could not be
/// listed.
pub async fn keys_between(
    lister: &impl Lister,
    bucket: &str,
    folder: &LogFolder,
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
) -> (Vec<String>, Vec<ListError>) {
    let base = keys::cursor_folder(&folder.root, &folder.account, &folder.region);
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    let mut days = keys::days(from, to);
    if days.len() > WALK_FOLDERS_PAST_DAYS {
        match existing_days(lister, bucket, &base, from.date(), to.date()).await {
            Ok(found) => days = found,
            Err(e) => return (out, vec![e]),
        }
    }
    for day in days {
        let day_prefix = keys::day_folder(&base, day);
        let after = (day == from.date())
            .then(|| keys::start_after(&base, &folder.account, &folder.region, from));
        match lister.keys(bucket, &day_prefix, after.as_deref()).await {
            Ok(keys) => out.extend(keys),
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

/// The day folders under a cursor folder (`YYYY/MM/DD/`) from `from` to
/// `to`, found by listing the year, month and day folders.
async fn existing_days(
    lister: &impl Lister,
    bucket: &str,
    base: &str,
    from: time::Date,
    to: time::Date,
) -> Result<Vec<time::Date>, ListError> {
    let number = |name: &str| name.trim_end_matches('/').parse::<u16>().ok();
    let mut out = Vec::new();
    for y in lister.folders(bucket, base).await? {
        let Some(year) = number(&y).map(i32::from) else {
            continue;
        };
        if year < from.year() || year > to.year() {
            continue;
        }
        let in_year = format!("{base}{y}");
        for m in lister.folders(bucket, &in_year).await? {
            let Some(month) = number(&m)
                .and_then(|m| u8::try_from(m).ok())
                .and_then(|m| time::Month::try_from(m).ok())
            else {
                continue;
            };
            let first = time::Date::from_calendar_date(year, month, 1);
            let (from_month, to_month) = (
                (from.year(), from.month() as u8),
                (to.year(), to.month() as u8),
            );
            if first.is_err() || (year, month as u8) < from_month || (year, month as u8) > to_month
            {
                continue;
            }
            let in_month = format!("{in_year}{m}");
            for d in lister.folders(bucket, &in_month).await? {
                let day = number(&d)
                    .and_then(|d| u8::try_from(d).ok())
                    .and_then(|d| time::Date::from_calendar_date(year, month, d).ok());
                if let Some(day) = day.filter(|d| (from..=to).contains(d)) {
                    out.push(day);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Header access on a raw response (lets `list_error` stay generic).
pub trait RawHeaders {
    fn raw_header(&self, name: &str) -> Option<&str>;
}

impl RawHeaders for aws_smithy_runtime_api::http::Response {
    fn raw_header(&self, name: &str) -> Option<&str> {
        self.headers().get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeBucket;

    fn at(text: &str) -> time::OffsetDateTime {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .expect("time")
    }

    #[tokio::test]
    async fn a_long_range_walks_the_day_folders_that_exist() {
        let key = |day: &str, stamp: &str| {
            format!(
                "AWSLogs/111122223333/CloudTrail/us-east-1/{day}/111122223333_CloudTrail_us-east-1_{stamp}_x.json.gz"
            )
        };
        let keys = [
            key("2026/10/30", "20261030T2300Z"),
            key("2026/11/02", "20261102T0955Z"),
            key("2026/11/02", "20261102T1005Z"),
            key("2026/11/20", "20261120T0000Z"),
            key("2026/12/01", "20261201T0000Z"),
        ];
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let bucket = FakeBucket::new("logs", &refs);
        let folder = LogFolder {
            root: "AWSLogs/".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
        };
        // 19 days: the folders are walked; the first day from 10:00 on.
        let (found, errors) = keys_between(
            &bucket,
            "logs",
            &folder,
            at("2026-11-02T10:00:00Z"),
            at("2026-11-20T12:00:00Z"),
        )
        .await;
        assert!(errors.is_empty());
        assert_eq!(found, [keys[2].clone(), keys[3].clone()]);
        // Two days: asked day by day, the same answer for them.
        let (short, _) = keys_between(
            &bucket,
            "logs",
            &folder,
            at("2026-11-01T00:00:00Z"),
            at("2026-11-02T23:00:00Z"),
        )
        .await;
        assert_eq!(short, [keys[1].clone(), keys[2].clone()]);
    }
}
