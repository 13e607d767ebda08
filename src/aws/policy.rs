//! The least-privilege IAM policy for a config's trails: exactly the calls
//! discovery, listing and fetching make, on the trails' buckets, prefixes
//! and KMS keys, in SQS mode the queue's and the buckets' notification
//! settings, and with shared state its DynamoDB tables (`trailwatch state
//! init`'s own calls are in `iam-policies/dynamodb.json` only) (the documents in `iam-policies/` explain each statement).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::discovery::Trail;
use crate::config::Config;

/// The policy document for these trails.
pub fn policy(config: &Config, trails: &[Trail]) -> Value {
    let mut statements = Vec::new();
    if config.discovery.enabled {
        statements.push(json!({
            "Sid": "DiscoverTrails", "Effect": "Allow",
            "Action": "cloudtrail:DescribeTrails", "Resource": "*"
        }));
        let arns: BTreeSet<&str> = trails
            .iter()
            .filter(|t| t.origin == "discovered")
            .map(|t| t.arn.as_str())
            .collect();
        let resource: Value = if arns.is_empty() {
            json!("arn:aws:cloudtrail:*:*:trail/*")
        } else {
            json!(arns)
        };
        statements.push(json!({
            "Sid": "ReadTrailStatus", "Effect": "Allow",
            "Action": "cloudtrail:GetTrailStatus", "Resource": resource
        }));
    }
    let places: BTreeSet<(String, String)> = trails
        .iter()
        .map(|t| {
            let root = super::keys::awslogs_root(t.prefix.as_deref());
            (t.bucket.clone(), root)
        })
        .collect();
    let buckets: BTreeSet<String> = places
        .iter()
        .map(|(b, _)| format!("arn:aws:s3:::{b}"))
        .collect();
    if !buckets.is_empty() {
        statements.push(json!({
            "Sid": "FindTrailBucketRegion", "Effect": "Allow",
            "Action": "s3:GetBucketLocation", "Resource": buckets
        }));
        for (i, (bucket, root)) in places.iter().enumerate() {
            statements.push(json!({
                "Sid": format!("ListTrailLogs{i}"), "Effect": "Allow",
                "Action": "s3:ListBucket", "Resource": format!("arn:aws:s3:::{bucket}"),
                "Condition": {"StringLike": {"s3:prefix": format!("{root}*")}}
            }));
        }
        let objects: BTreeSet<String> = places
            .iter()
            .map(|(b, root)| format!("arn:aws:s3:::{b}/{root}*"))
            .collect();
        statements.push(json!({
            "Sid": "ReadTrailLogs", "Effect": "Allow",
            "Action": "s3:GetObject", "Resource": objects
        }));
    }
    if let crate::config::SourceConfig::Sqs(sqs) = &config.source {
        statements.push(json!({
            "Sid": "ReadNotifications", "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                       "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
            "Resource": super::queue::queue_arn(&sqs.queue_url)
        }));
        if !buckets.is_empty() {
            statements.push(json!({
                "Sid": "FindNotificationPaths", "Effect": "Allow",
                "Action": "s3:GetBucketNotification", "Resource": buckets
            }));
        }
    }
    if let Some(shared) = &config.shared_state {
        let region = config.aws.region.as_deref().unwrap_or("*");
        let tables: Vec<String> = ["objects", "deliveries"]
            .iter()
            .map(|t| {
                format!(
                    "arn:aws:dynamodb:{region}:*:table/{}-{t}",
                    shared.table_prefix
                )
            })
            .collect();
        statements.push(json!({
            "Sid": "SharedState", "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": tables
        }));
    }
    let keys: BTreeSet<&str> = trails
        .iter()
        .filter_map(|t| t.kms_key_id.as_deref())
        .collect();
    if !keys.is_empty() {
        statements.push(json!({
            "Sid": "DecryptTrailLogsThroughS3", "Effect": "Allow",
            "Action": "kms:Decrypt", "Resource": keys,
            "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}
