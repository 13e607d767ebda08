//! `scan --store FILE`: what a hunt finds, kept for lookups (`trailwatch
//! alerts --store FILE`, the console). Each input's alerts and activity go in
//! with one commit, as the crawler commits an object; the bursts closed at
//! the end of the input follow. Without `--store` a scan writes nothing.

use std::path::Path;
use std::sync::Arc;

use crate::alert::{Activity, Detected, ObjectRef};
use crate::state::{CursorKey, ObjectCommit, ObjectStatus, StateStore};

/// The store a scan writes to.
#[derive(Debug, Clone)]
pub struct ScanStore {
    store: Arc<StateStore>,
}

/// Where an input came from, as the store names it: an S3 object's bucket
/// and key, or a local file's path (no bucket).
pub fn place_of(path: &Path) -> ObjectRef {
    let text = path.display().to_string();
    match text
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((bucket, key)) => ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        },
        None => ObjectRef {
            bucket: String::new(),
            key: text,
        },
    }
}

impl ScanStore {
    /// Opens (creating) the store file.
    pub fn open(path: &Path) -> Result<ScanStore, String> {
        StateStore::open(path)
            .map(|store| ScanStore {
                store: Arc::new(store),
            })
            .map_err(|e| e.to_string())
    }

    /// Commits one input's alerts and activity.
    pub fn commit(
        &self,
        place: &ObjectRef,
        records: u64,
        failed: Option<String>,
        alerts: &[Detected],
        activity: &[Activity],
    ) -> Result<(), String> {
        let cursor = CursorKey {
            bucket: place.bucket.clone(),
            prefix: "scan".into(),
            account: String::new(),
            region: String::new(),
        };
        self.store
            .commit_object(&ObjectCommit {
                cursor: &cursor,
                key: &place.key,
                key_time: "",
                status: if failed.is_some() {
                    ObjectStatus::Failed
                } else {
                    ObjectStatus::Done
                },
                records,
                error: failed,
                alerts,
                activity,
                correlation: None,
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Adds alerts that belong to no one input (bursts closed at the end).
    pub fn insert(&self, alerts: &[Detected]) -> Result<(), String> {
        self.store
            .insert_alerts(alerts)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }
}
