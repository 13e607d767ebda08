//! `trailwatch iam-policy --config F`: the least-privilege IAM policy for
//! that config, with its trails' buckets, prefixes and KMS keys filled in
//! (discovered with `DescribeTrails` when discovery is on, and the static
//! trails). The documents in `iam-policies/` explain each statement.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value, json};

use super::EXIT_FAILED;
use crate::aws::AwsClients;
use crate::aws::discovery::Trail;
use crate::config::Config;
use crate::crawl::Crawler;
use crate::state::StateStore;

pub fn run(path: &Path) -> ExitCode {
    let config = match super::load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    super::logging::init(&config.log);
    let runtime = match super::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let trails = runtime.block_on(async {
        let dir = tempfile_dir();
        let state = match StateStore::open(&dir.join("iam-policy.db")) {
            Ok(s) => Arc::new(s),
            Err(e) => return Err(e.to_string()),
        };
        let crawler = Crawler::new(
            Arc::new(AwsClients::new(&config.aws).await),
            state,
            Arc::new(crate::rules::RuleSet::new(Vec::new()).0),
            Arc::new(config.clone()),
        );
        let (trails, errors) = crawler.discover_trails().await;
        let _ = std::fs::remove_dir_all(&dir);
        for (where_, why) in errors {
            eprintln!("discovery: {where_}: {why} (the policy covers the trails found)");
        }
        Ok(trails)
    });
    let trails = match trails {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let policy = policy(&config, &trails);
    match serde_json::to_string_pretty(&policy) {
        Ok(text) => {
            println!("{text}");
            if let Some(role) = &config.aws.role_arn {
                eprintln!(
                    "note: this is the policy of {role}; the caller also needs sts:AssumeRole on it \
                     (iam-policies/caller-assume-role.json)"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("trailwatch-iam-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

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
            let root = crate::crawl::keys::awslogs_root(t.prefix.as_deref());
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
