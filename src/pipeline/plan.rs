//! Plan: where a target's bucket lives (following a redirect once) and its
//! cursors, one per account and region folder; and whether a full sink
//! backlog pauses the crawl.

use std::collections::BTreeSet;

use crate::aws::listing::{ListError, list_folders};
use crate::aws::region::bucket_region;
use crate::state::CursorKey;

use super::{CrawlError, Crawler, Target};
use crate::aws::keys::{self, AwsLogsChild};

impl Crawler {
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
}
