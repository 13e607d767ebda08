//! The least-privilege IAM policy for a config's trails: exactly the calls
//! discovery, listing and fetching make, on the trails' buckets, prefixes
//! and KMS keys, in SQS mode the queue's and the buckets' notification
//! settings, and with shared state its DynamoDB tables (`trailwatch state
//! init`'s own calls are in `iam-policies/dynamodb.json` only) (the documents in `iam-policies/` explain each statement).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::discovery::Trail;
use crate::config::Config;

/// The policy document for these trails, when every call goes as one
/// identity (no role per purpose).
pub fn policy(config: &Config, trails: &[Trail]) -> Value {
    let p = super::region::partition(config.aws.region.as_deref());
    let all: Vec<&Trail> = trails.iter().collect();
    let mut statements = Vec::new();
    if config.discovery.enabled {
        statements.extend(discovery_statements(p, &all));
    }
    if config.discovery.organization.is_some() {
        statements.extend(organization_statements(p));
    }
    statements.extend(read_statements(p, config, &all));
    statements.extend(own_statements(p, config));
    document(statements)
}

pub(super) fn document(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// `DescribeTrails` and `GetTrailStatus` (on the discovered trails among
/// `trails`, or every trail when none is known yet).
pub(super) fn discovery_statements(p: &str, trails: &[&Trail]) -> Vec<Value> {
    let arns: BTreeSet<&str> = trails
        .iter()
        .filter(|t| t.origin == "discovered")
        .map(|t| t.arn.as_str())
        .collect();
    let resource: Value = if arns.is_empty() {
        json!(format!("arn:{p}:cloudtrail:*:*:trail/*"))
    } else {
        json!(arns)
    };
    vec![
        json!({
            "Sid": "DiscoverTrails", "Effect": "Allow",
            "Action": "cloudtrail:DescribeTrails", "Resource": "*"
        }),
        json!({
            "Sid": "ReadTrailStatus", "Effect": "Allow",
            "Action": "cloudtrail:GetTrailStatus", "Resource": resource
        }),
    ]
}

/// The organisation's accounts and their units (these calls take no
/// narrower resource than the organisation's own ARNs, unknown before).
pub(super) fn organization_statements(p: &str) -> Vec<Value> {
    vec![
        json!({
            "Sid": "ListOrganizationAccounts", "Effect": "Allow",
            "Action": ["organizations:ListAccounts", "organizations:ListRoots"],
            "Resource": "*"
        }),
        json!({
            "Sid": "WalkOrganizationalUnits", "Effect": "Allow",
            "Action": ["organizations:ListOrganizationalUnitsForParent",
                       "organizations:ListAccountsForParent"],
            "Resource": [format!("arn:{p}:organizations::*:root/o-*/r-*"),
                         format!("arn:{p}:organizations::*:ou/o-*/ou-*")]
        }),
    ]
}

/// Finding the buckets' regions, listing and reading the trails' logs
/// (with S3 decrypting their KMS keys), and in SQS mode the buckets'
/// notification settings.
pub(super) fn read_statements(p: &str, config: &Config, trails: &[&Trail]) -> Vec<Value> {
    let mut statements = Vec::new();
    let places: BTreeSet<(String, String)> = trails
        .iter()
        .map(|t| {
            let root = super::keys::awslogs_root(t.prefix.as_deref());
            (t.bucket.clone(), root)
        })
        .collect();
    let buckets: BTreeSet<String> = places
        .iter()
        .map(|(b, _)| format!("arn:{p}:s3:::{b}"))
        .collect();
    if !buckets.is_empty() {
        statements.push(json!({
            "Sid": "FindTrailBucketRegion", "Effect": "Allow",
            "Action": "s3:GetBucketLocation", "Resource": buckets
        }));
        for (i, (bucket, root)) in places.iter().enumerate() {
            statements.push(json!({
                "Sid": format!("ListTrailLogs{i}"), "Effect": "Allow",
                "Action": "s3:ListBucket", "Resource": format!("arn:{p}:s3:::{bucket}"),
                "Condition": {"StringLike": {"s3:prefix": format!("{root}*")}}
            }));
        }
        let objects: BTreeSet<String> = places
            .iter()
            .map(|(b, root)| format!("arn:{p}:s3:::{b}/{root}*"))
            .collect();
        statements.push(json!({
            "Sid": "ReadTrailLogs", "Effect": "Allow",
            "Action": "s3:GetObject", "Resource": objects
        }));
        if matches!(config.source, crate::config::SourceConfig::Sqs(_)) {
            statements.push(json!({
                "Sid": "FindNotificationPaths", "Effect": "Allow",
                "Action": "s3:GetBucketNotification", "Resource": buckets
            }));
        }
    }
    let keys: BTreeSet<&str> = trails
        .iter()
        .filter_map(|t| t.kms_key_id.as_deref())
        .collect();
    if !keys.is_empty() {
        statements.push(json!({
            "Sid": "DecryptTrailLogsThroughS3", "Effect": "Allow",
            "Action": "kms:Decrypt", "Resource": keys,
            "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com*"}}
        }));
    }
    statements
}

/// What the daemon always does as its own identity: its queue (SQS mode)
/// and its shared state (DynamoDB).
pub(super) fn own_statements(p: &str, config: &Config) -> Vec<Value> {
    let mut statements = Vec::new();
    if let crate::config::SourceConfig::Sqs(sqs) = &config.source {
        statements.push(json!({
            "Sid": "ReadNotifications", "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                       "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
            "Resource": super::queue::queue_arn(&sqs.queue_url)
        }));
    }
    if let Some(shared) = &config.shared_state {
        let region = config.aws.region.as_deref().unwrap_or("*");
        // The feed's index of what the leader has yet to feed is queried too.
        let tables: Vec<String> = [
            "objects",
            "deliveries",
            "alerts",
            "feed",
            "feed/index/todo",
            "rules",
        ]
        .iter()
        .map(|t| {
            format!(
                "arn:{p}:dynamodb:{region}:*:table/{}-{t}",
                shared.table_prefix
            )
        })
        .collect();
        statements.push(json!({
            "Sid": "SharedState", "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                       "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"],
            "Resource": tables
        }));
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arn_is_in_the_region_s_partition() {
        for (region, partition) in [
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
        ] {
            let text = format!(
                "[aws]\nregion = \"{region}\"\n[state]\nbackend = \"dynamodb\"\n\
                 [source]\nmode = \"sqs\"\nqueue_url = \"https://sqs.{region}.amazonaws.com/123456789012/tw\"\n"
            );
            let config = Config::from_toml(&text, std::path::Path::new("/")).expect("config");
            let trail = Trail {
                name: "t".into(),
                arn: format!("arn:{partition}:cloudtrail:{region}:123456789012:trail/t"),
                bucket: "logs".into(),
                origin: "discovered".into(),
                kms_key_id: Some(format!("arn:{partition}:kms:{region}:123456789012:key/k")),
                ..Trail::default()
            };
            let doc = policy(&config, &[trail]).to_string();
            let arns: Vec<&str> = doc.split('"').filter(|s| s.starts_with("arn:")).collect();
            assert!(arns.len() >= 6, "{doc}");
            for arn in arns {
                assert!(
                    arn.starts_with(&format!("arn:{partition}:")),
                    "{region}: {arn}"
                );
            }
        }
    }
}
