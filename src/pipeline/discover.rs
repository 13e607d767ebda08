//! Discover: the trails (found by `DescribeTrails` with their status, and
//! the config's), the alerts a change of status raises, and the targets
//! (bucket and prefix) the logging ones write to.

use std::collections::BTreeMap;

use crate::aws::discovery::{self, Trail};

use super::{CrawlError, Crawler, trail_alerts};

/// A bucket and prefix to crawl, and the trails that write there.
#[derive(Debug, Clone)]
pub struct Target {
    pub bucket: String,
    pub prefix: Option<String>,
    pub trails: Vec<String>,
    pub kms_key_id: Option<String>,
    /// From the config, when it states it.
    pub region: Option<String>,
    /// The SNS topics its trails notify of new objects.
    pub sns_topics: Vec<String>,
}

impl Target {
    pub fn id(&self) -> String {
        format!("{}|{}", self.bucket, self.prefix.as_deref().unwrap_or(""))
    }
}

impl Crawler {
    /// The trails, discovered again when the last discovery is older than
    /// `refresh_interval` (trail status alerts need fresh status).
    pub async fn trails_cached(&self) -> (Vec<Trail>, BTreeMap<String, String>, bool) {
        {
            let cache = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, found)) = cache.as_ref()
                && at.elapsed() < self.config.discovery.refresh_interval
            {
                return (found.trails.clone(), found.errors.clone(), false);
            }
        }
        let found = self.discover_trails().await;
        if let Some(accounts) = &found.organization {
            self.state.name_organization_accounts(accounts);
        }
        let (trails, errors) = (found.trails.clone(), found.errors.clone());
        let mut cache = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Some((std::time::Instant::now(), found));
        (trails, errors, true)
    }

    /// The organisation's accounts as the last discovery listed them.
    pub fn organization(&self) -> Option<Vec<crate::aws::organization::OrgAccount>> {
        let cache = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .as_ref()
            .and_then(|(_, found)| found.organization.clone())
    }

    /// The targets to read now (discovery refreshed when it is due, with
    /// the alerts a change of a trail's status raises).
    pub async fn current_targets(&self) -> Result<Vec<Target>, CrawlError> {
        let (trails, _, fresh) = self.trails_cached().await;
        if fresh {
            self.record_trail_status(&trails).await?;
        }
        Ok(targets(&trails))
    }

    /// The trails: discovered ones (with their status) and the config's;
    /// the organisation's accounts; what failed.
    pub async fn discover_trails(&self) -> discovery::Discovery {
        discovery::all_trails(&self.clients, &self.config).await
    }

    /// Stores each discovered trail's status and raises the alerts its
    /// change calls for (stopped logging, delivery error); returns how many
    /// alerts were new.
    pub async fn record_trail_status(&self, trails: &[Trail]) -> Result<u64, CrawlError> {
        let mut alerts = Vec::new();
        for trail in trails.iter().filter(|t| t.origin == "discovered") {
            let arn = trail.arn.clone();
            let before: Option<Trail> = self
                .blocking(move |s| s.trail_status(&arn))
                .await?
                .and_then(|v| serde_json::from_value(v).ok());
            alerts.extend(trail_alerts::transitions(before.as_ref(), trail));
            let json = serde_json::to_value(trail).unwrap_or_default();
            let arn = trail.arn.clone();
            self.blocking(move |s| s.set_trail_status(&arn, &json))
                .await?;
        }
        if alerts.is_empty() {
            return Ok(0);
        }
        for a in &alerts {
            tracing::warn!(rule = %a.alert.rule.id, title = %a.alert.rule.title, "trail alert");
        }
        Ok(self.blocking(move |s| s.insert_alerts(&alerts)).await? as u64)
    }
}

/// The targets of the logging trails: trails that share a bucket and prefix
/// are crawled once.
pub fn targets(trails: &[Trail]) -> Vec<Target> {
    let mut by_place: BTreeMap<(String, Option<String>), Target> = BTreeMap::new();
    for t in trails.iter().filter(|t| t.logging) {
        let entry = by_place
            .entry((t.bucket.clone(), t.prefix.clone()))
            .or_insert_with(|| Target {
                bucket: t.bucket.clone(),
                prefix: t.prefix.clone(),
                trails: Vec::new(),
                kms_key_id: None,
                region: None,
                sns_topics: Vec::new(),
            });
        entry.trails.push(t.name.clone());
        if let Some(topic) = &t.sns_topic {
            entry.sns_topics.push(topic.clone());
        }
        if entry.kms_key_id.is_none() {
            entry.kms_key_id = t.kms_key_id.clone();
        }
        if entry.region.is_none() {
            entry.region = t.bucket_region.clone();
        }
    }
    by_place.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(name: &str, bucket: &str, prefix: Option<&str>, logging: bool) -> Trail {
        Trail {
            name: name.into(),
            arn: format!("arn:aws:cloudtrail:us-east-1:111122223333:trail/{name}"),
            bucket: bucket.into(),
            prefix: prefix.map(str::to_owned),
            logging,
            ..Trail::default()
        }
    }

    #[test]
    fn trails_sharing_a_place_are_one_target_and_silent_ones_none() {
        let trails = [
            trail("a", "logs", None, true),
            trail("b", "logs", None, true),
            trail("c", "logs", Some("org"), true),
            trail("d", "other", None, false),
        ];
        let found = targets(&trails);
        let places: Vec<(String, Option<String>, Vec<String>)> = found
            .iter()
            .map(|t| (t.bucket.clone(), t.prefix.clone(), t.trails.clone()))
            .collect();
        assert_eq!(
            places,
            [
                ("logs".into(), None, vec!["a".into(), "b".into()]),
                ("logs".into(), Some("org".into()), vec!["c".into()]),
            ]
        );
        assert_eq!(found[0].id(), "logs|");
        assert_eq!(found[1].id(), "logs|org");
    }
}
