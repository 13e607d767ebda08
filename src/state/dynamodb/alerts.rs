//! Every instance's alerts, shared for lookups: `<prefix>-alerts`, keyed by
//! the day an alert was raised (`day`, `YYYY-MM-DD`, the partition) and
//! `alert` (`<raised at>#<alert id>`, the sort key). Each instance puts the
//! alerts of its own outbox and queries the days' partitions for what the
//! others raised since it last looked (`state/shared_alerts.rs` keeps them
//! in its lookup columns, out of its outbox).

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{KEEP, SharedError, SharedState, n, now, s};
use crate::alert::{Alert, AlertContext};
use crate::state::StateStore;

/// An alert as the shared table holds it.
#[derive(Debug, Clone)]
pub struct SharedAlert {
    /// The sort key: `<raised at>#<id>`.
    pub sort: String,
    /// The instance that raised it.
    pub instance: String,
    pub alert: Alert,
    pub context: AlertContext,
}

/// The partition and sort key of an alert.
pub fn keys(alert: &Alert) -> (String, String) {
    let day = alert
        .detected_at
        .get(..10)
        .unwrap_or("0000-00-00")
        .to_owned();
    (day, format!("{}#{}", alert.detected_at, alert.id))
}

impl SharedState {
    /// Puts this instance's alerts in the shared table (again is harmless:
    /// the same item).
    pub async fn publish(&self, alerts: &[(&Alert, &AlertContext)]) -> Result<(), SharedError> {
        for (alert, context) in alerts {
            let (day, sort) = keys(alert);
            let json = serde_json::to_string(alert).unwrap_or_default();
            let context = serde_json::to_string(context).unwrap_or_default();
            self.client
                .put_item()
                .table_name(&self.alerts)
                .item("day", s(day))
                .item("alert", s(sort))
                .item("json", s(json))
                .item("context", s(context))
                .item("instance", s(&self.instance))
                .item("expires", n(now() + KEEP.as_secs() as i64))
                .send()
                .await
                .map_err(|e| Self::error(&self.alerts, "PutItem", e))?;
        }
        Ok(())
    }

    /// The alerts other instances put in `day`'s partition after sort key
    /// `after`, in sort order.
    pub async fn pull(&self, day: &str, after: &str) -> Result<Vec<SharedAlert>, SharedError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.alerts)
            .key_condition_expression("#day = :day AND #alert > :after")
            .expression_attribute_names("#day", "day")
            .expression_attribute_names("#alert", "alert")
            .expression_attribute_values(":day", s(day))
            .expression_attribute_values(":after", s(after))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Self::error(&self.alerts, "Query", e))?;
            for item in page.items() {
                let text = |k: &str| match item.get(k) {
                    Some(AttributeValue::S(v)) => v.clone(),
                    _ => String::new(),
                };
                let instance = text("instance");
                if instance == self.instance {
                    continue;
                }
                let Ok(alert) = serde_json::from_str(&text("json")) else {
                    tracing::warn!(table = %self.alerts, key = %text("alert"), "a shared alert that is not an alert: skipped");
                    continue;
                };
                out.push(SharedAlert {
                    sort: text("alert"),
                    instance,
                    alert,
                    context: serde_json::from_str(&text("context")).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }
}

/// Where this instance is in the shared table (the state store's kv).
const PUBLISHED: &str = "shared_alerts_published";
const PULLED: &str = "shared_alerts_pulled";
/// Alerts put this long before the last one pulled are looked for again
/// (another instance's clock, or its put after a slow commit).
const LOOKBACK: i64 = 600;
/// Alerts put per round trip to the store.
const BATCH: usize = 200;

/// Runs `f` on the state store, on the blocking pool.
async fn on_store<T: Send + 'static>(
    store: &Arc<StateStore>,
    f: impl FnOnce(&StateStore) -> crate::state::Result<T> + Send + 'static,
) -> Result<T, String> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// One round of sharing: puts this instance's new alerts in the shared
/// table, then pulls what the others put yesterday and today into the
/// lookup columns; returns (put, pulled and new here).
pub async fn sync_alerts(
    store: &Arc<StateStore>,
    shared: &SharedState,
) -> Result<(usize, usize), String> {
    let mut put = 0;
    loop {
        let after: i64 = on_store(store, |s| s.kv(PUBLISHED))
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let batch = on_store(store, move |s| s.alerts_after(after, BATCH)).await?;
        let Some(last) = batch.last().map(|o| o.seq) else {
            break;
        };
        let items: Vec<(&Alert, &AlertContext)> =
            batch.iter().map(|o| (&o.alert, &o.context)).collect();
        shared.publish(&items).await.map_err(|e| e.to_string())?;
        put += batch.len();
        on_store(store, move |s| {
            s.set_kv_with_alerts(PUBLISHED, &last.to_string(), &[])
        })
        .await?;
        if batch.len() < BATCH {
            break;
        }
    }

    let mut marks: std::collections::BTreeMap<String, String> = on_store(store, |s| s.kv(PULLED))
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    let today = time::OffsetDateTime::now_utc();
    let days: Vec<String> = [today - time::Duration::days(1), today]
        .iter()
        .map(|d| crate::alert::rfc3339_at(d.unix_timestamp())[..10].to_owned())
        .collect();
    marks.retain(|day, _| days.contains(day));
    let mut pulled = 0;
    for day in &days {
        let after = marks
            .get(day)
            .and_then(|m| m.get(..20))
            .and_then(crate::event::time::parse_rfc3339)
            .map(|t| crate::alert::rfc3339_at(t - LOOKBACK))
            // Below every time (a key may not be empty).
            .unwrap_or_else(|| "0".into());
        let found = shared.pull(day, &after).await.map_err(|e| e.to_string())?;
        let Some(newest) = found.iter().map(|a| a.sort.clone()).max() else {
            continue;
        };
        let mut by_instance: std::collections::BTreeMap<String, Vec<(Alert, AlertContext)>> =
            Default::default();
        for a in found {
            by_instance
                .entry(a.instance)
                .or_default()
                .push((a.alert, a.context));
        }
        for (instance, alerts) in by_instance {
            pulled += on_store(store, move |s| s.index_shared(&alerts, &instance)).await?;
        }
        if marks.get(day).is_none_or(|m| *m < newest) {
            marks.insert(day.clone(), newest);
        }
    }
    let json = serde_json::to_string(&marks).unwrap_or_default();
    on_store(store, move |s| s.set_kv_with_alerts(PULLED, &json, &[])).await?;
    Ok((put, pulled))
}
