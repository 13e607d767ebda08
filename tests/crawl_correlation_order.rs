//! The crawler's correlations do not depend on which object a concurrent
//! crawl happened to finish first: objects are committed, and the stateful
//! rules fed, in listing order (against LocalStack).

mod common;

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use common::emulators;
use serde_json::json;

const BUCKET: &str = "tw-order-logs";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// 40 objects a minute apart (`common::secret_reads`).
async fn upload(prefix: &str) {
    let s3 = emulators::s3().await;
    let _ = s3.create_bucket().bucket(BUCKET).send().await;
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(60);
    for n in 0..40i64 {
        let t = now + time::Duration::minutes(n);
        let records = common::secret_reads(n as u32);
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
    common::of_rule_sorted(emulators::alerts(dir.path()), "aws-secrets-mass-read-any")
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
