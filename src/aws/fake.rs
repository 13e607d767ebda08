//! A bucket in memory, for the listing's and the pipeline stages' tests: lists folders and keys as S3
//! does (delimiter listing, `StartAfter`, key order).

use std::collections::BTreeSet;

use super::listing::{ListError, Lister};

/// The keys of one bucket.
#[derive(Debug, Default)]
pub struct FakeBucket {
    pub name: String,
    pub keys: BTreeSet<String>,
}

impl FakeBucket {
    pub fn new(name: &str, keys: &[&str]) -> FakeBucket {
        FakeBucket {
            name: name.into(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    fn check(&self, bucket: &str, prefix: &str) -> Result<(), ListError> {
        if bucket == self.name {
            return Ok(());
        }
        Err(ListError {
            bucket: bucket.into(),
            prefix: prefix.into(),
            reason: "NoSuchBucket".into(),
            access_denied: false,
            redirect_region: None,
        })
    }
}

impl Lister for FakeBucket {
    async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, ListError> {
        self.check(bucket, prefix)?;
        let folders: BTreeSet<String> = self
            .keys
            .iter()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter_map(|rest| rest.find('/').map(|at| rest[..=at].to_owned()))
            .collect();
        Ok(folders.into_iter().collect())
    }

    async fn keys(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, ListError> {
        self.check(bucket, prefix)?;
        Ok(self
            .keys
            .iter()
            .filter(|k| k.starts_with(prefix) && start_after.is_none_or(|a| k.as_str() > a))
            .cloned()
            .collect())
    }
}
