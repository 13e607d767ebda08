//! Trail discovery: `DescribeTrails` (with shadow trails) in each configured
//! region, then `GetTrailStatus` in each trail's home region.

use std::collections::BTreeMap;

use aws_sdk_cloudtrail::error::DisplayErrorContext;

use super::AwsClients;

/// A trail and what its status says.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trail {
    pub name: String,
    /// The ARN, or `static:<bucket>/<prefix>` for a trail from the config.
    pub arn: String,
    pub home_region: Option<String>,
    pub bucket: String,
    pub prefix: Option<String>,
    pub kms_key_id: Option<String>,
    pub organization: bool,
    /// Known from `GetTrailStatus`; static trails are taken as logging.
    pub logging: bool,
    pub latest_delivery_error: Option<String>,
    pub latest_delivery_attempt: Option<String>,
    pub stop_logging_time: Option<String>,
    /// Where the trail came from: `discovered` or `config`.
    pub origin: String,
    /// The bucket's region when the config states it.
    pub bucket_region: Option<String>,
    /// The SNS topic the trail notifies of each object it delivers.
    #[serde(default)]
    pub sns_topic: Option<String>,
}

/// What one discovery round found, and what failed.
#[derive(Debug, Default)]
pub struct Discovery {
    pub trails: Vec<Trail>,
    /// Region -> why `DescribeTrails` failed there.
    pub errors: BTreeMap<String, String>,
}

/// Describes the trails visible from `regions`, deduplicated by ARN, with
/// their status; when `only` names trails (by name or ARN), the others are
/// left out before their status is asked for.
pub async fn discover(clients: &AwsClients, regions: &[String], only: &[String]) -> Discovery {
    let mut found: BTreeMap<String, Trail> = BTreeMap::new();
    let mut out = Discovery::default();
    for region in regions {
        let client = clients.cloudtrail(region);
        let response = match client
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("DescribeTrails: {}", DisplayErrorContext(&e));
                tracing::warn!(region = %region, error = %reason, "trail discovery failed");
                out.errors.insert(region.clone(), reason);
                continue;
            }
        };
        for t in response.trail_list() {
            let (Some(arn), Some(bucket)) = (t.trail_arn(), t.s3_bucket_name()) else {
                continue;
            };
            if !selected(only, t.name(), arn) {
                continue;
            }
            found.entry(arn.to_owned()).or_insert_with(|| Trail {
                name: t.name().unwrap_or(arn).to_owned(),
                arn: arn.to_owned(),
                home_region: t
                    .home_region()
                    .map(str::to_owned)
                    .or_else(|| Some(region.clone())),
                bucket: bucket.to_owned(),
                prefix: t
                    .s3_key_prefix()
                    .map(|p| p.trim_matches('/').to_owned())
                    .filter(|p| !p.is_empty()),
                kms_key_id: t.kms_key_id().map(str::to_owned),
                organization: t.is_organization_trail().unwrap_or(false),
                logging: false,
                latest_delivery_error: None,
                latest_delivery_attempt: None,
                stop_logging_time: None,
                origin: "discovered".into(),
                bucket_region: None,
                sns_topic: t.sns_topic_arn().map(str::to_owned),
            });
        }
    }
    for trail in found.values_mut() {
        let region = trail.home_region.clone().unwrap_or_default();
        match clients
            .cloudtrail(&region)
            .get_trail_status()
            .name(&trail.arn)
            .send()
            .await
        {
            Ok(status) => {
                trail.logging = status.is_logging().unwrap_or(false);
                trail.latest_delivery_error = status
                    .latest_delivery_error()
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned);
                trail.latest_delivery_attempt =
                    status.latest_delivery_attempt_time().map(str::to_owned);
                trail.stop_logging_time = status.stop_logging_time().map(|t| t.to_string());
            }
            Err(e) => {
                let reason = format!("GetTrailStatus {}: {}", trail.arn, DisplayErrorContext(&e));
                tracing::warn!(trail = %trail.name, error = %reason, "trail status unknown");
                // Unknown status: crawl it anyway rather than miss its logs.
                trail.logging = true;
                out.errors.insert(trail.arn.clone(), reason);
            }
        }
    }
    out.trails = found.into_values().collect();
    out
}

/// Whether a trail is one `only` asks for (an empty list asks for all).
fn selected(only: &[String], name: Option<&str>, arn: &str) -> bool {
    only.is_empty() || only.iter().any(|o| o == arn || Some(o.as_str()) == name)
}

/// A trail declared in the config.
pub fn static_trail(t: &crate::config::StaticTrail) -> Trail {
    Trail {
        name: t.name.clone(),
        arn: format!("static:{}/{}", t.bucket, t.prefix.as_deref().unwrap_or("")),
        home_region: None,
        bucket: t.bucket.clone(),
        prefix: t.prefix.clone(),
        kms_key_id: None,
        organization: false,
        logging: true,
        latest_delivery_error: None,
        latest_delivery_attempt: None,
        stop_logging_time: None,
        origin: "config".into(),
        bucket_region: t.region.clone(),
        sns_topic: None,
    }
}

/// The trails a config watches: those discovered (with their status), when
/// discovery is on, then the config's own; and the errors by region.
pub async fn all_trails(
    clients: &AwsClients,
    config: &crate::config::Config,
) -> (Vec<Trail>, BTreeMap<String, String>) {
    let mut trails = Vec::new();
    let mut errors = BTreeMap::new();
    if config.discovery.enabled && !config.discovery.regions.is_empty() {
        let found = discover(clients, &config.discovery.regions, &config.discovery.only).await;
        trails = found.trails;
        errors = found.errors;
    }
    trails.extend(config.trails.iter().map(static_trail));
    (trails, errors)
}

#[cfg(test)]
mod tests {
    use super::selected;

    #[test]
    fn only_picks_trails_by_name_or_arn() {
        let arn = "arn:aws:cloudtrail:us-east-1:111111111111:trail/main-trail";
        assert!(selected(&[], Some("main-trail"), arn));
        assert!(selected(&["main-trail".into()], Some("main-trail"), arn));
        assert!(selected(&[arn.into()], None, arn));
        assert!(!selected(&["org-trail".into()], Some("main-trail"), arn));
    }
}
