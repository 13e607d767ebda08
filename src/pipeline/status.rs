//! What `trailwatch trails` shows of each trail: whether it logs, where its
//! bucket is, the cursors under its prefix, its lag and its last error (from
//! the state store's last pass and the trail's own status); in SQS mode,
//! how its new objects are announced.

use super::{Crawler, TargetReport, targets};
use crate::aws::keys;
use crate::aws::notification_path::{NotificationPath, notification_path};
use crate::config::SourceConfig;

/// How `trails` names the daemon's own identity (no role assumed).
pub const OWN_IDENTITY: &str = "own identity";

/// One trail as `trails` shows it.
#[derive(Debug, Clone)]
pub struct TrailRow {
    pub name: String,
    pub logging: bool,
    pub bucket: String,
    /// The bucket's region (`?` when it could not be found, `-` for a trail
    /// that is not crawled).
    pub region: String,
    /// The cursors, `<root><account>/<region>`.
    pub prefixes: Vec<String>,
    pub lag_seconds: Option<i64>,
    pub last_error: Option<String>,
    /// SQS mode: how its new objects are announced.
    pub notification: Option<NotificationPath>,
    /// The role that described it (`own identity` when none; `config`
    /// for a static trail).
    pub discovered_by: String,
    /// The role that reads its bucket (`own identity` when none).
    pub read_by: String,
}

impl TrailRow {
    /// `discovered by: <role>; read by: <role>`.
    pub fn roles_line(&self) -> String {
        format!(
            "discovered by: {}; read by: {}",
            self.discovered_by, self.read_by
        )
    }
}

impl Crawler {
    /// Every trail discovered or configured, planned now; and the discovery
    /// errors by region.
    pub async fn trail_rows(&self) -> (Vec<TrailRow>, std::collections::BTreeMap<String, String>) {
        let found = self.discover_trails().await;
        let (trails, errors) = (found.trails, found.errors);
        let planned = targets(&trails);
        let mut rows = Vec::new();
        for trail in &trails {
            let target = planned
                .iter()
                .find(|t| t.bucket == trail.bucket && t.prefix == trail.prefix);
            let sqs = matches!(self.config.source, SourceConfig::Sqs(_));
            let mut notification = None;
            let (region, prefixes, mut error) = match target {
                Some(t) => match self.plan(t).await {
                    Ok((region, cursors)) => {
                        let p = cursors
                            .iter()
                            .map(|c| format!("{}{}/{}", c.prefix, c.account, c.region))
                            .collect();
                        if sqs {
                            let root = keys::awslogs_root(t.prefix.as_deref());
                            let client = self.clients.s3(&t.bucket, &region);
                            notification = Some(
                                notification_path(&client, &t.bucket, &root, &t.sns_topics).await,
                            );
                        }
                        (region, p, None)
                    }
                    Err(e) => ("?".into(), Vec::new(), Some(e)),
                },
                None => ("-".into(), Vec::new(), None),
            };
            let last: Option<TargetReport> = target
                .and_then(|t| self.state.target_status(&t.id()).ok().flatten())
                .and_then(|v| serde_json::from_value(v).ok());
            if error.is_none() {
                error = trail
                    .latest_delivery_error
                    .clone()
                    .or_else(|| last.as_ref().and_then(|r| r.errors.first().cloned()));
            }
            rows.push(TrailRow {
                name: trail.name.clone(),
                logging: trail.logging,
                bucket: trail.bucket.clone(),
                region,
                prefixes,
                lag_seconds: last.as_ref().and_then(|r| r.lag_seconds),
                last_error: error,
                notification,
                discovered_by: match (&trail.discovered_by, trail.origin.as_str()) {
                    (Some(role), _) => role.clone(),
                    (None, "config") => "config".into(),
                    (None, _) => OWN_IDENTITY.into(),
                },
                read_by: trail.read_by.clone().unwrap_or_else(|| OWN_IDENTITY.into()),
            });
        }
        (rows, errors)
    }
}
