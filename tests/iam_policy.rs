//! The IAM policies ask for exactly what the code calls: the set of AWS
//! actions is derived from the code (every S3, CloudTrail, SQS and DynamoDB SDK operation
//! that `src/` invokes, the role it may assume, the KMS decryption S3 does on
//! its behalf) and compared with the actions in `iam-policies/`. And
//! `trailwatch iam-policy` fills in a config's buckets and prefixes.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The platform this test was built for (`rustc -vV`'s host line).
fn host_triple() -> String {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .expect("rustc -vV names its host")
}

/// The source folder of a dependency, from `cargo metadata`. Only this
/// platform's dependencies are asked for: a fresh machine has downloaded no
/// others, and `--offline` cannot fetch them.
fn crate_dir(name: &str) -> PathBuf {
    let host = host_triple();
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --offline --filter-platform {host} failed (are the dependencies \
         downloaded? `cargo fetch` does it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "cargo metadata printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let manifest = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("{name} is not a dependency"));
    Path::new(manifest)
        .parent()
        .expect("crate dir")
        .to_path_buf()
}

/// The SDK's operations, snake case (`list_objects_v2`), from its sources.
fn operations(sdk: &str) -> Vec<String> {
    let dir = crate_dir(sdk).join("src/operation");
    let mut ops: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    ops.sort();
    ops
}

/// The source files of `src/`, each as text.
fn source_files() -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src").filter_map(|e| e.ok()) {
            let p = entry.path();
            if p.is_dir() {
                pending.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                files.push(std::fs::read_to_string(&p).expect("read"));
            }
        }
    }
    files
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// IAM action for an SDK operation (where IAM names it differently).
fn iam_action(service: &str, op: &str) -> String {
    match (service, op) {
        ("s3", "list_objects_v2" | "list_objects" | "head_bucket") => "s3:ListBucket".into(),
        ("s3", "head_object") => "s3:GetObject".into(),
        ("s3", "get_bucket_notification_configuration") => "s3:GetBucketNotification".into(),
        ("sqs", "delete_message_batch") => "sqs:DeleteMessage".into(),
        ("sqs", "change_message_visibility_batch") => "sqs:ChangeMessageVisibility".into(),
        _ => format!("{service}:{}", pascal(op)),
    }
}

/// Every action the code can cause AWS to check.
fn actions_in_code() -> BTreeSet<String> {
    let files = source_files();
    let src = files.concat();
    let mut actions = BTreeSet::new();
    for (sdk, service) in [
        ("aws-sdk-s3", "s3"),
        ("aws-sdk-cloudtrail", "cloudtrail"),
        ("aws-sdk-sqs", "sqs"),
        ("aws-sdk-dynamodb", "dynamodb"),
        ("aws-sdk-organizations", "organizations"),
    ] {
        // The files that name the SDK's crate: where its calls are (a
        // method of our own, such as `.query()`, is not DynamoDB's Query).
        let module = sdk.replace('-', "_");
        let users: Vec<&String> = files.iter().filter(|f| f.contains(&module)).collect();
        for op in operations(sdk) {
            if users.iter().any(|f| f.contains(&format!(".{op}()"))) {
                actions.insert(iam_action(service, &op));
            }
        }
    }
    if src.contains("AssumeRoleProvider") {
        actions.insert("sts:AssumeRole".into());
    }
    // GetObject on an SSE-KMS trail makes S3 call KMS with the caller's rights.
    if actions.contains("s3:GetObject") {
        actions.insert("kms:Decrypt".into());
    }
    actions
}

fn actions_in(policy: &Value, out: &mut BTreeSet<String>) {
    let statements = match &policy["Statement"] {
        Value::Array(s) => s.clone(),
        other => vec![other.clone()],
    };
    for s in statements {
        match &s["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(list) => {
                out.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned)))
            }
            _ => {}
        }
    }
}

#[test]
fn the_policies_grant_exactly_the_actions_the_code_calls() {
    let code = actions_in_code();
    assert!(
        code.contains("s3:GetObject") && code.contains("cloudtrail:DescribeTrails"),
        "{code:?}"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("iam-policies");
    let mut granted = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("iam-policies") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "json") {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            actions_in(&doc, &mut granted);
        }
    }
    assert_eq!(granted, code, "policies (left) vs the code (right)");
}

/// `trailwatch iam-policy` for a config of `text`: what it prints, as JSON
/// (it must succeed).
fn iam_policy_for(text: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("trailwatch.toml");
    std::fs::write(&config, text).expect("config");
    let out = Command::new(common::trailwatch())
        .args(["iam-policy", "--config", config.to_str().expect("utf-8")])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON policy")
}

#[test]
fn iam_policy_fills_in_the_config() {
    let policy = iam_policy_for(
        "[aws]\nregion = \"us-east-1\"\n[discovery]\nenabled = false\n\
         [[trails]]\nbucket = \"org-logs\"\nprefix = \"org\"\n[[trails]]\nbucket = \"plain-logs\"\n",
    );
    let text = policy.to_string();
    assert!(
        text.contains("arn:aws:s3:::org-logs/org/AWSLogs/*"),
        "{text}"
    );
    assert!(text.contains("arn:aws:s3:::plain-logs/AWSLogs/*"), "{text}");
    assert!(text.contains("\"s3:prefix\":\"org/AWSLogs/*\""), "{text}");
    assert!(!text.contains("cloudtrail:"), "discovery is off: {text}");
    let mut actions = BTreeSet::new();
    actions_in(&policy, &mut actions);
    let code = actions_in_code();
    assert!(
        actions.is_subset(&code),
        "{actions:?} not all called by the code"
    );
}

#[test]
fn one_policy_per_role_covers_the_calls_and_no_role_gets_another_s() {
    let printed = iam_policy_for(
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n\
         [discovery]\nregions = [\"us-east-1\"]\n\
         [[discovery.accounts]]\nrole_arn = \"arn:aws:iam::111111111111:role/trailwatch-discovery\"\n\
         [discovery.organization]\nmember_role_name = \"trailwatch-member\"\n\
         [[readers]]\nrole_arn = \"arn:aws:iam::222222222222:role/trailwatch-reader\"\nbuckets = [\"org-logs-*\"]\n\
         [state]\nbackend = \"dynamodb\"\n\
         [source]\nmode = \"sqs\"\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/444444444444/tw\"\n",
    );
    let docs = printed["roles"].as_array().expect("roles");
    let mut all = BTreeSet::new();
    for d in docs {
        let mut mine = BTreeSet::new();
        actions_in(&d["policy"], &mut mine);
        let role = d["role"].as_str().unwrap_or("");
        let foreign: Vec<&String> = mine
            .iter()
            .filter(|a| match role {
                "own identity" => {
                    !(a.starts_with("sts:") || a.starts_with("sqs:") || a.starts_with("dynamodb:"))
                }
                r if r.contains("reader") => !a.starts_with("s3:") && !a.starts_with("kms:"),
                r if r.contains("discovery") => {
                    !a.starts_with("cloudtrail:") && !a.starts_with("organizations:")
                }
                _ => {
                    !a.starts_with("cloudtrail:") && !a.starts_with("s3:") && !a.starts_with("kms:")
                }
            })
            .collect();
        assert!(foreign.is_empty(), "{role} holds {foreign:?}");
        if role != "own identity" {
            assert!(
                d["trust_policy"].to_string().contains("sts:AssumeRole"),
                "{d}"
            );
        }
        all.extend(mine);
    }
    let code = actions_in_code();
    assert!(
        all.is_subset(&code),
        "{:?} not called by the code",
        all.difference(&code).collect::<Vec<_>>()
    );
    // What no role needs here: KMS (no trail with a key is known yet) and
    // `trailwatch state init`'s table creation (iam-policies/dynamodb.json).
    let missing: Vec<&String> = code
        .difference(&all)
        .filter(|a| {
            *a != "kms:Decrypt"
                && !matches!(
                    a.as_str(),
                    "dynamodb:CreateTable"
                        | "dynamodb:DescribeTable"
                        | "dynamodb:UpdateTimeToLive"
                        | "dynamodb:DescribeTimeToLive"
                )
        })
        .collect();
    assert!(missing.is_empty(), "no role is given {missing:?}");
}
