//! Trail discovery: `DescribeTrails` (with shadow trails) in each configured
//! region, then `GetTrailStatus` in each trail's home region.

use std::collections::BTreeMap;

use aws_sdk_cloudtrail::error::DisplayErrorContext;

use crate::config::RoleConfig;

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
    /// The role `DescribeTrails` found it through; none: the daemon's own
    /// identity (or the config, for a static trail).
    #[serde(default)]
    pub discovered_by: Option<String>,
    /// The role that reads its bucket; none: the daemon's own identity.
    #[serde(default)]
    pub read_by: Option<String>,
}

/// What one discovery round found, and what failed.
#[derive(Debug, Default, Clone)]
pub struct Discovery {
    pub trails: Vec<Trail>,
    /// Where (region, or `<account>/<region>` through a role) -> why
    /// `DescribeTrails` failed there; a trail's ARN -> why its status is
    /// unknown; `organization` -> why its accounts could not be listed.
    pub errors: BTreeMap<String, String>,
    /// The organisation's accounts, when `[discovery.organization]` is set
    /// and they could be listed.
    pub organization: Option<Vec<super::organization::OrgAccount>>,
}

/// Who describes trails: a role (and the account it is in), or the
/// daemon's own identity.
#[derive(Debug, Clone)]
struct Describer {
    role: Option<RoleConfig>,
}

impl Describer {
    fn account(&self) -> Option<&str> {
        self.role
            .as_ref()
            .and_then(|r| super::organization::role_account(&r.arn))
    }

    fn place(&self, region: &str) -> String {
        match self.account() {
            Some(a) => format!("{a}/{region}"),
            None => region.to_owned(),
        }
    }
}

/// `DescribeTrails` calls in flight at once.
const DESCRIBE_AT_ONCE: usize = 16;

/// Describes the trails each describer sees in `regions`, deduplicated by
/// ARN (a trail seen from several accounts, as an organisation trail is
/// from its members, is kept as its own account describes it), with their
/// status asked through that describer; when `only` names trails (by name
/// or ARN), the others are left out before their status is asked for.
async fn discover(
    clients: &AwsClients,
    describers: &[Describer],
    regions: &[String],
    only: &[String],
    out: &mut Discovery,
) {
    use futures::StreamExt;
    // Every (describer, region) at once, a bounded number in flight (an
    // organisation has hundreds of accounts); the answers are taken in order.
    let asks: Vec<(usize, &String)> = (0..describers.len())
        .flat_map(|d| regions.iter().map(move |r| (d, r)))
        .collect();
    let calls: Vec<_> = asks
        .iter()
        .map(|(d, region)| {
            clients
                .cloudtrail(describers[*d].role.as_ref(), region)
                .describe_trails()
                .include_shadow_trails(true)
        })
        .collect();
    let answers: Vec<_> = futures::stream::iter(calls.into_iter().map(|call| call.send()))
        .buffered(DESCRIBE_AT_ONCE)
        .collect()
        .await;
    let mut found: BTreeMap<String, (Trail, usize)> = BTreeMap::new();
    for ((d, region), answer) in asks.iter().zip(answers) {
        let (d, region) = (*d, *region);
        let describer = &describers[d];
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("DescribeTrails: {}", DisplayErrorContext(&e));
                let place = describer.place(region);
                tracing::warn!(place = %place, error = %reason, "trail discovery failed");
                out.errors.insert(place, reason);
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
            let owner = arn.split(':').nth(4);
            let replace = match found.get(arn) {
                None => true,
                // The trail's own account describes it best.
                Some((_, by)) => describers[*by].account() != owner && describer.account() == owner,
            };
            if !replace {
                continue;
            }
            let trail = Trail {
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
                origin: "discovered".into(),
                sns_topic: t.sns_topic_arn().map(str::to_owned),
                discovered_by: describer.role.as_ref().map(|r| r.arn.clone()),
                ..Trail::default()
            };
            found.insert(arn.to_owned(), (trail, d));
        }
    }
    for (trail, d) in found.values_mut() {
        let region = trail.home_region.clone().unwrap_or_default();
        match clients
            .cloudtrail(describers[*d].role.as_ref(), &region)
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
    out.trails = found.into_values().map(|(t, _)| t).collect();
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
        discovered_by: None,
        read_by: None,
    }
}

/// The trails a config watches: those discovered (with their status), when
/// discovery is on, through each `[[discovery.accounts]]` role (or the
/// daemon's own identity) and, with `member_role_name`, through that role in
/// every other active account of the organisation; then the config's own.
/// Each trail's bucket is read by its `[[readers]]` role, else by the role
/// that found it, else by the daemon's own identity; the clients learn it.
pub async fn all_trails(clients: &AwsClients, config: &crate::config::Config) -> Discovery {
    let mut out = Discovery::default();
    let d = &config.discovery;
    if d.enabled && !d.regions.is_empty() {
        let mut describers: Vec<Describer> = if d.accounts.is_empty() {
            vec![Describer { role: None }]
        } else {
            d.accounts
                .iter()
                .map(|a| Describer {
                    role: Some(a.role.clone()),
                })
                .collect()
        };
        if let Some(org) = &d.organization {
            let role = org
                .role
                .as_ref()
                .or_else(|| d.accounts.first().map(|a| &a.role));
            match super::organization::accounts(clients, role).await {
                Ok(accounts) => {
                    if let Some(name) = &org.member_role_name {
                        let partition = super::region::partition(config.aws.region.as_deref());
                        for a in accounts.iter().filter(|a| a.active()) {
                            if describers.iter().any(|x| x.account() == Some(&a.id)) {
                                continue;
                            }
                            describers.push(Describer {
                                role: Some(super::organization::member_role(
                                    partition,
                                    &a.id,
                                    name,
                                    org.member_external_id.as_deref(),
                                )),
                            });
                        }
                    }
                    out.organization = Some(accounts);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the organisation's accounts could not be listed");
                    out.errors.insert("organization".into(), e);
                }
            }
        }
        discover(clients, &describers, &d.regions, &d.only, &mut out).await;
        for t in &mut out.trails {
            // A member's own trail: its role reads it unless a reader is set.
            let role = config.reader_for(&t.bucket).or_else(|| {
                let by = t.discovered_by.as_ref()?;
                describers
                    .iter()
                    .find_map(|x| x.role.as_ref().filter(|r| &r.arn == by))
            });
            t.read_by = role.map(|r| r.arn.clone());
            clients.set_reader(&t.bucket, role);
        }
    }
    for t in &config.trails {
        let mut trail = static_trail(t);
        let role = config.reader_for(&t.bucket);
        trail.read_by = role.map(|r| r.arn.clone());
        clients.set_reader(&t.bucket, role);
        out.trails.push(trail);
    }
    out
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
