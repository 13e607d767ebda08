//! `trailwatch scan s3://bucket[/prefix]` against LocalStack: the crawler's
//! lister (accounts, regions, organisation layouts, day folders by the time
//! in the key, digests left out), the same alerts as a local scan of the
//! same objects, the selection flags, and no state written.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use common::emulators;
use serde_json::{Value, json};

const BUCKET: &str = "tw-scan-logs";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// Stratus's StopLogging records with event ids of their own.
fn records(tag: &str) -> Vec<Value> {
    let (_, base) = common::stratus()
        .into_iter()
        .find(|(n, _)| n == "aws.defense-evasion.cloudtrail-stop")
        .expect("detonation");
    base.into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r["eventID"] = json!(format!("{tag}-{i}"));
            r
        })
        .collect()
}

/// (root under AWSLogs/, account, region, hours ago, tag): uploaded to the
/// bucket, and the ones inside the last 24 hours written under `local`.
const OBJECTS: [(&str, &str, &str, i64, &str); 5] = [
    ("", "111122223333", "us-east-1", 1, "a"),
    ("", "111122223333", "us-east-1", 2, "b"),
    ("", "111122223333", "eu-west-1", 3, "c"),
    ("o-aaaabbbbcc/", "444455556666", "us-east-1", 4, "d"),
    ("", "111122223333", "us-east-1", 72, "old"),
];

/// A prefix of this run's own, so that objects of earlier runs are not
/// listed.
fn run_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("run-{nanos}")
}

async fn upload(local: &Path, prefix: &str) {
    let s3 = emulators::s3().await;
    let _ = s3.create_bucket().bucket(BUCKET).send().await;
    let now = time::OffsetDateTime::now_utc();
    for (root, account, region, hours, tag) in OBJECTS {
        let t = now - time::Duration::hours(hours);
        let folder = format!(
            "{prefix}/AWSLogs/{root}{account}/CloudTrail/{region}/{:04}/{:02}/{:02}",
            t.year(),
            t.month() as u8,
            t.day()
        );
        let name = format!(
            "{account}_CloudTrail_{region}_{}_{tag}.json.gz",
            trailwatch::aws::keys::key_time(t)
        );
        let body = gzip(&serde_json::to_vec(&json!({ "Records": records(tag) })).expect("JSON"));
        s3.put_object()
            .bucket(BUCKET)
            .key(format!("{folder}/{name}"))
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("upload");
        if hours < 24 {
            std::fs::create_dir_all(local.join(&folder)).expect("mkdir");
            std::fs::write(local.join(&folder).join(&name), body).expect("write");
        }
    }
    // A digest: never read.
    s3.put_object()
        .bucket(BUCKET)
        .key(format!(
            "{prefix}/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/21/digest.json.gz"
        ))
        .body(ByteStream::from(gzip(b"{\"not\": \"records\"}")))
        .send()
        .await
        .expect("upload");
}

/// The alert ids and the event ids of a scan.
fn scan(args: &[&str]) -> (BTreeSet<String>, BTreeSet<String>, String) {
    let mut all = vec!["scan", "--format", "jsonl", "--no-grouping"];
    all.extend_from_slice(args);
    let out = emulators::trailwatch(&all)
        .env("AWS_ENDPOINT_URL", emulators::LOCALSTACK)
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run scan");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert JSON"))
        .collect();
    let ids = alerts
        .iter()
        .map(|a| a["id"].as_str().unwrap_or("").to_owned())
        .collect();
    let events = alerts
        .iter()
        .filter_map(|a| a["event"]["id"].as_str())
        .map(|id| id.split('-').next().unwrap_or("").to_owned())
        .collect();
    (ids, events, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trail_in_s3_is_scanned_as_its_local_copy_would_be() {
    emulators::require_emulators();
    let local = tempfile::tempdir().expect("tempdir");
    let prefix = run_prefix();
    upload(local.path(), &prefix).await;
    let cwd = tempfile::tempdir().expect("tempdir");
    let url = format!("s3://{BUCKET}/{prefix}");
    let (remote, tags, stderr) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || scan(&[&url])
    })
    .await
    .expect("task");
    assert!(stderr.contains("scanned 4 objects (0 failed)"), "{stderr}");
    assert_eq!(tags, ["a", "b", "c", "d"].map(String::from).into());
    let local_path = local.path().to_str().expect("utf-8").to_owned();
    let (copy, _, _) = tokio::task::spawn_blocking(move || scan(&[&local_path]))
        .await
        .expect("task");
    assert_eq!(remote, copy, "the same alerts as a local copy");

    let selected = |extra: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut args: Vec<&str> = extra.iter().map(String::as_str).collect();
            args.push(&url);
            scan(&args).1
        })
    };
    let by_account = selected(vec!["--account".into(), "444455556666".into()])
        .await
        .expect("task");
    assert_eq!(by_account, ["d"].map(String::from).into());
    let by_region = selected(vec!["--region".into(), "eu-west-1".into()])
        .await
        .expect("task");
    assert_eq!(by_region, ["c"].map(String::from).into());
    let older = selected(vec!["--since".into(), "4d".into()])
        .await
        .expect("task");
    assert!(older.contains("old"), "{older:?}");
    let window = selected(vec![
        "--since".into(),
        "150m".into(),
        "--until".into(),
        "30m".into(),
    ])
    .await
    .expect("task");
    assert_eq!(window, ["a", "b"].map(String::from).into());
    // Nothing is written where it ran.
    assert_eq!(std::fs::read_dir(cwd.path()).expect("dir").count(), 0);
}
