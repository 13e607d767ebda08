//! The crawler's correlations do not depend on which object a concurrent
//! crawl happened to finish first: objects are committed, and the stateful
//! rules fed, in listing order (against LocalStack).

mod common;

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use common::emulators;
use serde_json::{Value, json};

const BUCKET: &str = "tw-order-logs";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// 40 objects a minute apart; in each, five reads of secrets by one role,
/// their event times out of key order, and in every third object 3,000
/// other calls, so that concurrent reads finish out of order.
async fn upload(prefix: &str) {
    let s3 = emulators::s3().await;
    let _ = s3.create_bucket().bucket(BUCKET).send().await;
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(60);
    for n in 0..40i64 {
        let t = now + time::Duration::minutes(n);
        let minute = (n * 7) % 40;
        let mut records: Vec<Value> = (0..5)
            .map(|i| {
                json!({
                    "eventVersion": "1.08", "eventID": format!("s{n:02}-{i}"),
                    "eventTime": format!("2026-11-21T10:{minute:02}:{:02}Z", i * 11),
                    "eventSource": "secretsmanager.amazonaws.com", "eventName": "GetSecretValue",
                    "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
                    "userIdentity": {"type": "AssumedRole",
                        "arn": "arn:aws:sts::111122223333:assumed-role/app/i-1"},
                    "requestParameters": {"secretId": format!("prod/secret-{}", (n * 5 + i) % 37)}
                })
            })
            .collect();
        if n % 3 == 0 {
            records.extend((0..3000).map(|i| {
                json!({"eventID": format!("p{n:02}-{i}"), "eventTime": "2026-11-21T10:00:00Z",
                       "eventSource": "ec2.amazonaws.com", "eventName": "DescribeRegions",
                       "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/x"}})
            }));
        }
        let key = format!(
            "{prefix}/AWSLogs/111122223333/CloudTrail/us-east-1/{:04}/{:02}/{:02}/111122223333_CloudTrail_us-east-1_{}_o{n:02}.json.gz",
            t.year(),
            t.month() as u8,
            t.day(),
            trailwatch::aws::keys::key_time(t)
        );
        let body = gzip(&serde_json::to_vec(&json!({ "Records": records })).expect("JSON"));
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .expect("upload");
    }
}

/// The correlation alerts of a fresh `once` at this concurrency.
fn correlated(prefix: &str, concurrency: usize) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("trailwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             [discovery]\nenabled = false\n[[trails]]\nbucket = \"{BUCKET}\"\nprefix = \"{prefix}\"\nregion = \"us-east-1\"\n\
             [crawl]\nstart_from = \"24h\"\nconcurrency = {concurrency}\n\
             [[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\n",
            emulators::LOCALSTACK
        ),
    )
    .expect("config");
    let out = emulators::once(&config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut alerts: Vec<String> = emulators::alerts(dir.path())
        .into_iter()
        .filter(|a| a["rule"]["id"] == "aws-secrets-mass-read-any")
        .map(|mut a| {
            a["detected_at"] = Value::Null;
            a.to_string()
        })
        .collect();
    alerts.sort();
    alerts
}

#[tokio::test(flavor = "multi_thread")]
async fn correlations_are_the_same_whatever_the_concurrency() {
    emulators::require_emulators();
    // A prefix of this run's own: objects of earlier runs are not listed.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("run-{nanos}");
    upload(&prefix).await;
    let p = prefix.clone();
    let one = tokio::task::spawn_blocking(move || correlated(&p, 1))
        .await
        .expect("task");
    assert!(!one.is_empty(), "the correlation fires");
    for _ in 0..2 {
        let p = prefix.clone();
        let many = tokio::task::spawn_blocking(move || correlated(&p, 16))
            .await
            .expect("task");
        assert_eq!(many, one, "the same whatever the concurrency");
    }
}
