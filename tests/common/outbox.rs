//! Alerts put in the state store's outbox as a crawl would: the sample
//! alert under the ids given, raised now, committed with one object of a
//! fixed cursor.

use trailwatch::alert::{Alert, AlertContext, Detected};
use trailwatch::state::{CursorKey, ObjectCommit, ObjectStatus, StateStore};

/// Commits object `key` with one sample alert per id.
pub fn commit_samples(state: &StateStore, key: &str, ids: &[String]) {
    let cursor = CursorKey {
        bucket: "b".into(),
        prefix: String::new(),
        account: "111122223333".into(),
        region: "us-east-1".into(),
    };
    let alerts: Vec<Detected> = ids
        .iter()
        .map(|id| {
            let mut alert = Alert::sample();
            alert.id = id.clone();
            alert.detected_at = trailwatch::alert::now_rfc3339();
            Detected {
                alert,
                context: AlertContext::default(),
            }
        })
        .collect();
    state
        .commit_object(&ObjectCommit {
            cursor: &cursor,
            key,
            key_time: "20261201T1000Z",
            status: ObjectStatus::Done,
            records: ids.len() as u64,
            error: None,
            alerts: &alerts,
            activity: &[],
            correlation: None,
        })
        .expect("commit");
}
