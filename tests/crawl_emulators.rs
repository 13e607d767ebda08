//! The crawler against real emulators (LocalStack for S3, moto for
//! CloudTrail), over the world `localstack/seed.sh` builds: discovery, the
//! inactive trail, the bucket in another region, organisation and prefixed
//! layouts, digests, late objects, exactly-once checkpoints, corrupt objects.

// The world lock serialises whole tests (each owns its runtime), not tasks
// within one: holding it across awaits is the point.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use common::emulators::{self, alerts, config, crawled_objects, once, seed};
use serde_json::{Value, json};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn ids(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The ids of alerts from single-record rules. (Correlation alerts depend on
/// the order records arrive in, which concurrency changes from run to run; for
/// them the checks are that each id appears once and that nothing counted
/// twice, see tests/correlation.rs.)
fn single_record_ids(alerts: &[Value]) -> BTreeSet<String> {
    let correlations: BTreeSet<String> = trailwatch::rules::builtin_rules()
        .correlations
        .iter()
        .filter_map(|c| c.rule.id.clone())
        .collect();
    alerts
        .iter()
        .filter(|a| !correlations.contains(a["rule"]["id"].as_str().unwrap_or("")))
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect()
}

fn assert_unique(alerts: &[Value]) {
    let all = ids(alerts);
    let set: BTreeSet<_> = all.iter().collect();
    assert_eq!(set.len(), all.len(), "an alert id appears twice");
}

/// A CloudTrail key of `bucket`'s main cursor for a time `minutes_ago`.
fn key_for(account: &str, region: &str, minutes_ago: i64, suffix: &str) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago);
    format!(
        "AWSLogs/{account}/CloudTrail/{region}/{:04}/{:02}/{:02}/{account}_CloudTrail_{region}_{}_{suffix}.json.gz",
        t.year(),
        t.month() as u8,
        t.day(),
        trailwatch::aws::keys::key_time(t)
    )
}

fn delete_trail_record(event_id: &str) -> Value {
    json!({"eventVersion": "1.09", "eventID": event_id, "eventTime": "2026-11-21T10:00:00Z",
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "DeleteTrail",
        "awsRegion": "us-east-1", "recipientAccountId": "111111111111",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/mallory",
            "accountId": "111111111111"},
        "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15",
        "requestParameters": {"name": "main-trail"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn crawl_discovers_reads_everything_once_and_checkpoints() {
    let _world = emulators::world_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = seed(dir.path());
    let cfg = config(dir.path(), emulators::LOCALSTACK, "");

    let out = once(&cfg);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let expected = crawled_objects(&manifest);
    let total = manifest["totals"]["crawled_objects"]
        .as_u64()
        .expect("total");
    assert_eq!(expected.len() as u64, total);
    assert!(
        err.contains(&format!(
            "{total} objects processed (0 failed, 0 left for later)"
        )),
        "{err}"
    );
    assert!(
        err.contains("trail old-trail is not logging: skipped"),
        "{err}"
    );
    assert!(
        err.contains("s3://tw-main-logs/: region eu-west-1"),
        "the bucket's own region: {err}"
    );

    let first = alerts(dir.path());
    assert!(!first.is_empty());
    assert_unique(&first);
    let known: BTreeSet<(String, String)> = expected.into_iter().collect();
    for a in &first {
        let bucket = a["object"]["bucket"].as_str().expect("bucket").to_owned();
        let key = a["object"]["key"].as_str().expect("key").to_owned();
        assert_ne!(
            bucket, "tw-old-logs",
            "the inactive trail's bucket was crawled"
        );
        assert!(
            !key.contains("CloudTrail-Digest") && !key.contains("CloudTrail-Insight"),
            "{key}"
        );
        assert!(
            known.contains(&(bucket, key.clone())),
            "alert from an unknown object {key}"
        );
    }
    // Organisation layout under a prefix, both accounts.
    assert!(first.iter().any(|a| {
        a["object"]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("org/AWSLogs/o-exampleorg1/222222222222/"))
    }));
    // The trail-tampering detonations fire where the seed put them.
    for (technique, rule) in [
        (
            "aws.defense-evasion.cloudtrail-stop",
            "aws-cloudtrail-stop-logging",
        ),
        (
            "aws.defense-evasion.cloudtrail-delete",
            "aws-cloudtrail-delete-trail",
        ),
    ] {
        let placed = &manifest["stratus"][technique];
        let event_ids: BTreeSet<&str> = placed["event_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let hits = first
            .iter()
            .filter(|a| {
                a["rule"]["id"] == rule
                    && event_ids.contains(a["event"]["id"].as_str().unwrap_or(""))
            })
            .count();
        assert_eq!(hits, 1, "{rule} on {technique}");
    }

    // A second pass reads nothing and adds nothing.
    let out = once(&cfg);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("0 objects processed"), "{err}");
    assert_eq!(alerts(dir.path()).len(), first.len());

    // An object delivered late, with a key older than the newest one seen
    // (inside the lookback window), is processed exactly once.
    let s3 = emulators::s3().await;
    let late_key = key_for("111111111111", "us-east-1", 20, "LateLateLate0001");
    let body = gzip(
        &serde_json::to_vec(&json!({"Records": [delete_trail_record("late-delete-1")]}))
            .expect("JSON"),
    );
    s3.put_object()
        .bucket("tw-main-logs")
        .key(&late_key)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("upload the late object");
    let out = once(&cfg);
    let err = stderr(&out);
    assert!(err.contains("1 objects processed"), "{err}");
    let out = once(&cfg);
    assert!(stderr(&out).contains("0 objects processed"));
    let after = alerts(dir.path());
    assert_unique(&after);
    let late: Vec<_> = after
        .iter()
        .filter(|a| a["event"]["id"] == "late-delete-1")
        .collect();
    assert_eq!(late.len(), 1, "the late object's alert, exactly once");
    assert_eq!(late[0]["object"]["key"], late_key.as_str());

    // A corrupt object is recorded with its reason and skipped; the rest goes on.
    let corrupt_key = key_for("111111111111", "eu-west-1", 5, "CorruptCorrupt01");
    let good = gzip(
        &serde_json::to_vec(&json!({"Records": [delete_trail_record("before-corruption")]}))
            .expect("JSON"),
    );
    let mut broken = good.clone();
    broken.truncate(good.len() - 12);
    let good_key = key_for("111111111111", "eu-west-1", 4, "GoodGoodGood0001");
    for (key, body) in [
        (&corrupt_key, broken),
        (
            &good_key,
            gzip(
                &serde_json::to_vec(&json!({"Records": [delete_trail_record("after-corruption")]}))
                    .expect("JSON"),
            ),
        ),
    ] {
        s3.put_object()
            .bucket("tw-main-logs")
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .expect("upload");
    }
    let out = once(&cfg);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a corrupt object is not a failed run: {err}"
    );
    assert!(err.contains("2 objects processed (1 failed"), "{err}");
    assert!(
        err.contains(&corrupt_key),
        "the corrupt object is named: {err}"
    );
    let ids_now: Vec<String> = alerts(dir.path())
        .iter()
        .filter_map(|a| a["event"]["id"].as_str().map(str::to_owned))
        .collect();
    assert!(ids_now.contains(&"after-corruption".to_owned()));
    // `trails` shows it as the bucket's last error.
    let trails = emulators::trailwatch(&["trails", "--config", cfg.to_str().expect("utf-8")])
        .output()
        .expect("trails");
    let table = String::from_utf8_lossy(&trails.stdout);
    assert!(
        table.contains("old-trail") && table.contains("eu-west-1"),
        "{table}"
    );
    assert!(table.contains("CorruptCorrupt01"), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_in_the_middle_of_a_crawl_loses_and_repeats_nothing() {
    let _world = emulators::world_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    seed(dir.path());
    // The reference: a clean crawl of the same world.
    let reference_dir = tempfile::tempdir().expect("tempdir");
    let out = once(&config(reference_dir.path(), emulators::LOCALSTACK, ""));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reference: BTreeSet<String> = single_record_ids(&alerts(reference_dir.path()));

    // A slow crawl through the proxy, killed part way.
    let proxy = emulators::Proxy::start(dir.path());
    proxy.configure(&json!({"latency_ms": 150}));
    let cfg = config(dir.path(), &proxy.url, "");
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace("concurrency = 8", "concurrency = 2");
    std::fs::write(&cfg, text).expect("config");
    let mut child = emulators::trailwatch(&["once", "--config", cfg.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start once");
    // Wait until some objects are committed, then kill -9.
    let state = dir.path().join("state.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let done = trailwatch::state::StateStore::open(&state)
            .ok()
            .and_then(|s| s.alert_count().ok())
            .unwrap_or(0);
        if done > 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the crawl never got going"
        );
        if let Some(status) = child.try_wait().expect("wait") {
            let mut log = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut log);
            }
            panic!("the crawl ended ({status}) before it was killed, with {done} alerts: {log}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let partial = alerts(dir.path()).len();

    proxy.configure(&json!({}));
    let out = once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = alerts(dir.path());
    assert_unique(&after);
    let got: BTreeSet<String> = single_record_ids(&after);
    assert_eq!(
        got, reference,
        "every alert exactly once (killed with {partial} delivered)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_through_the_proxy_do_not_stop_the_rest() {
    let _world = emulators::world_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = seed(dir.path());
    let kms_key = "arn:aws:kms:us-east-1:111111111111:key/0f1e2d3c-aaaa-bbbb-cccc-111111111111";
    // The org trail is encrypted with a key the caller may not use for
    // account 222222222222's objects (moto keeps the KmsKeyId as given).
    let ct = aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::config::Builder::new()
            .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
            .endpoint_url(emulators::MOTO)
            .credentials_provider(aws_sdk_cloudtrail::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .build(),
    );
    ct.update_trail()
        .name("org-trail")
        .kms_key_id(kms_key)
        .send()
        .await
        .expect("UpdateTrail");

    let proxy = emulators::Proxy::start(dir.path());
    proxy.configure(&json!({
        "kms_key_arn": kms_key,
        "buckets": {
            "tw-main-logs": {"region": "eu-west-1", "wrong_region": "redirect", "slow_down": 4},
            "tw-org-logs": {"region": "us-east-1", "kms_denied": ["org/AWSLogs/o-exampleorg1/222222222222/*"]},
            "tw-denied-logs": {"region": "us-east-1", "access_denied": true}
        }
    }));
    // A bucket shared by another account that denies us, declared
    // statically; and the eu-west-1 bucket declared with the wrong region.
    let cfg = config(
        dir.path(),
        &proxy.url,
        "[[trails]]\nbucket = \"tw-denied-logs\"\nname = \"partner-trail\"\n\
         [[trails]]\nbucket = \"tw-main-logs\"\nname = \"main-static\"\nregion = \"us-east-1\"\n",
    );
    let out = once(&cfg);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "one denied bucket is not a failed run: {err}"
    );

    // The denied bucket is reported; the others are crawled.
    assert!(
        err.contains("tw-denied-logs") && err.contains("AccessDenied"),
        "{err}"
    );
    let main_objects = manifest["buckets"]["tw-main-logs"]["object_count"]
        .as_u64()
        .expect("count");
    assert!(
        err.contains(&format!("s3://tw-main-logs/: region eu-west-1, 3 cursors, {main_objects} listed, {main_objects} processed (0 failed), 0 left for later")),
        "redirect resolved and throttling survived: {err}"
    );
    // KMS denial: reported with the key, those objects left for the next pass.
    let denied = manifest["buckets"]["tw-org-logs"]["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter(|o| o["account"] == "222222222222")
        .count();
    assert!(denied > 0);
    assert!(err.contains(&format!("{denied} left for later")), "{err}");
    assert!(
        err.contains("kms:Decrypt") && err.contains(kms_key),
        "{err}"
    );

    // Every request to the eu-west-1 bucket was signed for eu-west-1, but for
    // the one the 301 answered (asked from the configured, wrong region) and
    // the SlowDown replies before it (the proxy throttles before it checks
    // the region).
    let requests = proxy.requests("tw-main-logs");
    let mut by_region: BTreeMap<String, usize> = BTreeMap::new();
    let mut redirects = 0;
    for r in &requests {
        if r["status"] == 301 {
            redirects += 1;
            continue;
        }
        if r["status"] == 503 {
            continue;
        }
        let region = r["region"].as_str().unwrap_or("").to_owned();
        *by_region.entry(region).or_default() += 1;
    }
    assert!((1..=2).contains(&redirects), "{redirects} redirects");
    assert_eq!(
        by_region.keys().collect::<Vec<_>>(),
        ["eu-west-1"],
        "{by_region:?}"
    );
    assert!(by_region["eu-west-1"] as u64 > main_objects);
    let throttled = requests.iter().filter(|r| r["status"] == 503).count();
    assert_eq!(throttled, 4, "the SlowDown replies were retried");

    // Once the key policy is fixed, the next pass reads what was left.
    proxy.configure(&json!({}));
    let cfg = config(dir.path(), emulators::LOCALSTACK, "");
    let out = once(&cfg);
    let err = stderr(&out);
    assert!(err.contains(&format!("{denied} processed")), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assumed_role_with_an_external_id_signs_every_request() {
    let _world = emulators::world_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    seed(dir.path());
    let proxy = emulators::Proxy::start(dir.path());
    let cfg = config(dir.path(), &proxy.url, "");
    let text = std::fs::read_to_string(&cfg).expect("config").replace(
        "region = \"us-east-1\"\nendpoint_url",
        "region = \"us-east-1\"\nrole_arn = \"arn:aws:iam::111111111111:role/trailwatch\"\n\
         external_id = \"tw-external-id\"\nendpoint_url",
    );
    std::fs::write(&cfg, text).expect("config");
    let out = once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = proxy.requests("tw-main-logs");
    assert!(!requests.is_empty());
    for r in &requests {
        let key = r["access_key"].as_str().unwrap_or("");
        assert!(
            !key.is_empty() && key != "test",
            "a request signed with the base credentials: {r}"
        );
    }
}
