//! Plan: where a target's bucket lives (following a redirect once) and its
//! cursors, one per account and region folder; and whether a full sink
//! backlog pauses the crawl.

use crate::aws::listing::{ListError, Lister, log_folders};
use crate::aws::region::bucket_region;
use crate::state::CursorKey;

use super::{CrawlError, Crawler, Target};

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

    /// A target's bucket region and its cursors (the region remembered).
    pub async fn plan(&self, target: &Target) -> Result<(String, Vec<CursorKey>), String> {
        let planned = self.plan_uncached(target).await;
        if let Ok((region, _)) = &planned {
            let mut regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
            regions.insert(target.bucket.clone(), region.clone());
        }
        planned
    }

    async fn plan_uncached(&self, target: &Target) -> Result<(String, Vec<CursorKey>), String> {
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
        let client = self.clients.s3(&target.bucket, &region);
        match cursors(&client, target).await {
            Ok(cursors) => Ok((region, cursors)),
            // The bucket lives elsewhere (a static trail's region was wrong,
            // or the bucket moved): follow the redirect once.
            Err(e) if e.redirect_region.as_ref().is_some_and(|r| *r != region) => {
                let region = e.redirect_region.unwrap_or_default();
                tracing::info!(bucket = %target.bucket, region = %region,
                    "the bucket answered with a redirect; following it");
                let client = self.clients.s3(&target.bucket, &region);
                let cursors = cursors(&client, target).await.map_err(|e| e.to_string())?;
                Ok((region, cursors))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The cursors of a target: `[<prefix>/]AWSLogs/[o-<org>/]<account>/CloudTrail/<region>/`.
pub async fn cursors(lister: &impl Lister, target: &Target) -> Result<Vec<CursorKey>, ListError> {
    let folders = log_folders(lister, &target.bucket, target.prefix.as_deref()).await?;
    Ok(folders
        .into_iter()
        .map(|f| CursorKey {
            bucket: target.bucket.clone(),
            prefix: f.root,
            account: f.account,
            region: f.region,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeBucket;

    fn target(prefix: Option<&str>) -> Target {
        Target {
            bucket: "logs".into(),
            prefix: prefix.map(str::to_owned),
            trails: vec!["t".into()],
            kms_key_id: None,
            region: Some("us-east-1".into()),
            sns_topics: Vec::new(),
        }
    }

    #[tokio::test]
    async fn cursors_are_every_account_and_region_folder_of_a_trail() {
        let bucket = FakeBucket::new(
            "logs",
            &[
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/a.json.gz",
                "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/21/b.json.gz",
                "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/21/d.json.gz",
                "AWSLogs/o-abc123def4/444455556666/CloudTrail/us-east-1/2026/11/21/c.json.gz",
                "AWSLogs/notes/readme.txt",
                "org/AWSLogs/777788889999/CloudTrail/ap-south-1/2026/11/21/e.json.gz",
            ],
        );
        let found: Vec<String> = cursors(&bucket, &target(None))
            .await
            .expect("listed")
            .into_iter()
            .map(|c| format!("{}|{}|{}", c.prefix, c.account, c.region))
            .collect();
        assert_eq!(
            found,
            [
                "AWSLogs/|111122223333|eu-west-1",
                "AWSLogs/|111122223333|us-east-1",
                "AWSLogs/o-abc123def4/|444455556666|us-east-1",
            ]
        );
        let prefixed = cursors(&bucket, &target(Some("org")))
            .await
            .expect("listed");
        assert_eq!(prefixed.len(), 1);
        assert_eq!(prefixed[0].prefix, "org/AWSLogs/");
        let missing = Target {
            bucket: "elsewhere".into(),
            ..target(None)
        };
        let e = cursors(&bucket, &missing)
            .await
            .expect_err("no such bucket");
        assert!(e.to_string().contains("s3://elsewhere/"), "{e}");
    }
}
