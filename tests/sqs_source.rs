//! `[source] mode = "sqs"` against LocalStack: the notifications of every
//! shape users have (S3 → SQS, S3 → SNS → SQS with raw delivery off and on,
//! EventBridge → SQS, a trail's own SNS topic) reach `trailwatch run`, whose
//! alerts arrive once each; digests and test events are acknowledged and
//! skipped; a corrupt object and a vanished one are reported and their
//! messages deleted; a message for a bucket no trail reads is deleted and
//! counted; one that is not a notification goes to the dead-letter queue
//! after its receive count; the reconciler reads an object that was never
//! notified. Then, through the fault proxy: one receive takes eight objects
//! that take four times the lease to read, and the lease is extended while
//! they are (a second consumer never sees their messages); and a daemon
//! killed with `kill -9` mid-object loses nothing and duplicates nothing
//! once restarted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::emulators::{self, LOCALSTACK, put_log, trailwatch};
use serde_json::{Value, json};

/// The trails' key prefix.
const PREFIX: &str = "tw";

fn repo_python() -> PathBuf {
    emulators::repo().join("localstack/.venv-moto/bin/python")
}

/// The world of `tests/support/sqs_world.py` for `tag`.
fn world(tag: &str) -> Value {
    let out = Command::new(repo_python())
        .arg(emulators::repo().join("tests/support/sqs_world.py"))
        .args(["--tag", tag])
        .output()
        .expect("run sqs_world.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn publish(topic: &str, message: &Value) {
    let out = Command::new(repo_python())
        .arg(emulators::repo().join("tests/support/sqs_world.py"))
        .arg("--publish")
        .arg(topic)
        .arg(message.to_string())
        .output()
        .expect("publish");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn sqs() -> aws_sdk_sqs::Client {
    let creds = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "tests");
    let conf = aws_sdk_sqs::config::Builder::new()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .endpoint_url(LOCALSTACK)
        .credentials_provider(creds)
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// (visible, in flight) messages of a queue.
async fn depth(queue: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs()
        .await
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let get = |a: A| {
        out.attributes()
            .and_then(|m| m.get(&a))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        get(A::ApproximateNumberOfMessages),
        get(A::ApproximateNumberOfMessagesNotVisible),
    )
}

async fn send(queue: &str, body: &str) {
    sqs()
        .await
        .send_message()
        .queue_url(queue)
        .message_body(body)
        .send()
        .await
        .expect("SendMessage");
}

/// Three StopLogging calls (an alert each, grouping off), ids tagged.
fn records(tag: &str, object: &str) -> Vec<Value> {
    let when = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    (0..3)
        .map(|i| {
            json!({
                "eventVersion": "1.08", "eventID": format!("{tag}-{object}-{i}"),
                "eventTime": when, "eventSource": "cloudtrail.amazonaws.com",
                "eventName": "StopLogging", "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15",
                "recipientAccountId": "111122223333",
                "userIdentity": {"type": "IAMUser", "userName": "mallory",
                    "arn": "arn:aws:iam::111122223333:user/mallory", "accountId": "111122223333"},
                "requestParameters": {"name": format!("trail-{object}-{i}")}
            })
        })
        .collect()
}

fn config(dir: &Path, endpoint: &str, world: &Value, lease: &str, extra: &str) -> PathBuf {
    let mut trails = String::new();
    for bucket in world["buckets"].as_object().expect("buckets").values() {
        trails.push_str(&format!(
            "[[trails]]\nbucket = \"{}\"\nprefix = \"{PREFIX}\"\nregion = \"us-east-1\"\n",
            bucket.as_str().expect("name")
        ));
    }
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[state]
path = "state.db"
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"
[discovery]
enabled = false
{trails}[crawl]
start_from = "1h"
concurrency = 4
[source]
mode = "sqs"
queue_url = "{queue}"
wait_time = "1s"
lease = "{lease}"
reconcile_interval = "1h"
[rules]
builtin = true
[rules.grouping]
enabled = false
[log]
level = "info"
[[sinks]]
type = "file"
path = "alerts.jsonl"
fsync = "always"
{extra}
"#,
            queue = world["queue_url"].as_str().expect("queue"),
        ),
    )
    .expect("config");
    path
}

fn start(dir: &Path, cfg: &Path, log: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(log))
        .expect("log");
    trailwatch(&["run", "--config", cfg.to_str().expect("utf-8")])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the daemon")
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "the daemon did not stop cleanly: {status}"
    );
}

fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn wait_for(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> bool,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Alert ids by the event id they name, and how many times each id came.
fn delivered(dir: &Path) -> (BTreeSet<String>, BTreeMap<String, usize>) {
    let mut events = BTreeSet::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for a in emulators::alerts(dir) {
        if let Some(e) = a["event"]["id"].as_str() {
            events.insert(e.to_owned());
        }
        *ids.entry(a["id"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    (events, ids)
}

fn expected_events(tag: &str, objects: &[&str]) -> BTreeSet<String> {
    objects
        .iter()
        .flat_map(|o| (0..3).map(move |i| format!("{tag}-{o}-{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_notification_shape_reaches_the_daemon_and_each_alert_arrives_once() {
    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = format!("tw-sqs-{}", std::process::id());
    let w = world(&tag);
    let bucket = |name: &str| w["buckets"][name].as_str().expect("bucket").to_owned();
    let queue = w["queue_url"].as_str().expect("queue").to_owned();
    let dlq = w["dlq_url"].as_str().expect("dlq").to_owned();
    let now = time::OffsetDateTime::now_utc();

    // Never notified: the reconciler's first pass reads it.
    put_log(
        &bucket("quiet"),
        PREFIX,
        now,
        "quiet",
        &records(&tag, "quiet"),
    )
    .await;
    // The notifications of set-up (s3:TestEvent) are in the queue already.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let server = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n");
    let cfg = config(dir.path(), LOCALSTACK, &w, "6s", &server);
    let child = start(dir.path(), &cfg, "daemon.log");
    let log = || log_of(dir.path(), "daemon.log");
    wait_for(
        "the reconciler's first pass",
        Duration::from_secs(90),
        || log().contains("crawl cycle"),
        log,
    );
    // The buckets no notification announces are named by /readyz and by
    // `trailwatch trails`, which says how the others are.
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz")
        .text()
        .await
        .expect("body");
    let ready: Value = serde_json::from_str(&ready).expect("JSON");
    let unannounced: BTreeSet<&str> = ready["no_notification_path"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let expect_unannounced: BTreeSet<String> = ["ct", "quiet"]
        .iter()
        .map(|b| format!("s3://{}/{PREFIX}", bucket(b)))
        .collect();
    assert_eq!(
        unannounced,
        expect_unannounced.iter().map(String::as_str).collect(),
        "{ready}"
    );
    let trails = trailwatch(&["trails", "--config", cfg.to_str().expect("utf-8")])
        .current_dir(dir.path())
        .output()
        .expect("trails");
    let table = String::from_utf8_lossy(&trails.stdout);
    assert_eq!(
        table.matches("notified by: S3 → SQS arn:aws:sqs:").count(),
        1,
        "{table}"
    );
    assert_eq!(
        table.matches("notified by: S3 → SNS arn:aws:sns:").count(),
        2,
        "{table}"
    );
    assert_eq!(
        table.matches("notified by: S3 → EventBridge").count(),
        1,
        "{table}"
    );
    assert_eq!(table.matches("notified by: none").count(), 2, "{table}");

    let mut objects = vec!["quiet"];
    for name in ["direct", "sns", "raw", "eb"] {
        put_log(&bucket(name), PREFIX, now, name, &records(&tag, name)).await;
        objects.push(name);
    }
    put_log(
        &bucket("direct"),
        PREFIX,
        now,
        "direct2",
        &records(&tag, "direct2"),
    )
    .await;
    objects.push("direct2");
    // A digest file and a corrupt object, notified like the rest.
    let s3 = emulators::s3().await;
    let folder = format!(
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/{:04}/{:02}/{:02}/",
        now.year(),
        now.month() as u8,
        now.day()
    );
    s3.put_object()
        .bucket(bucket("direct"))
        .key(format!(
            "{PREFIX}/{folder}111122223333_CloudTrail-Digest_us-east-1_x_us-east-1_{}.json.gz",
            trailwatch::aws::keys::key_time(now)
        ))
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
        .send()
        .await
        .expect("digest");
    let corrupt = format!(
        "{PREFIX}/AWSLogs/111122223333/CloudTrail/us-east-1/{:04}/{:02}/{:02}/111122223333_CloudTrail_us-east-1_{}_corrupt.json.gz",
        now.year(),
        now.month() as u8,
        now.day(),
        trailwatch::aws::keys::key_time(now)
    );
    s3.put_object()
        .bucket(bucket("direct"))
        .key(&corrupt)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"not gzip at all",
        ))
        .send()
        .await
        .expect("corrupt");
    // The trail's own topic: CloudTrail names two objects and one that is gone.
    let ct1 = put_log(&bucket("ct"), PREFIX, now, "ct1", &records(&tag, "ct1")).await;
    let ct2 = put_log(&bucket("ct"), PREFIX, now, "ct2", &records(&tag, "ct2")).await;
    objects.extend(["ct1", "ct2"]);
    let gone = ct1.replace("_ct1.json.gz", "_gone.json.gz");
    publish(
        w["ct_topic_arn"].as_str().expect("topic"),
        &json!({"s3Bucket": bucket("ct"), "s3ObjectKey": [ct1, ct2, gone]}),
    );
    // A bucket no trail reads, and a message that is no notification.
    send(
        &queue,
        &json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "someone-elses-bucket"},
                   "object": {"key": "AWSLogs/1/CloudTrail/x.json.gz"}}}]})
        .to_string(),
    )
    .await;
    send(&queue, "hello, not a notification").await;

    let want = expected_events(&tag, &objects);
    wait_for(
        "every alert",
        Duration::from_secs(120),
        || delivered(dir.path()).0 == want,
        log,
    );
    // The bad message reaches the dead-letter queue after its two receives.
    let deadline = Instant::now() + Duration::from_secs(90);
    while depth(&dlq).await.0 < 1 {
        assert!(
            Instant::now() < deadline,
            "nothing in the DLQ; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // What named nothing to read was deleted and counted by reason.
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    stop(child);
    let count = |reason: &str| -> f64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "trailwatch_sqs_skipped_total{{reason=\"{reason}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(count("not_ours"), 1.0, "{metrics}");
    assert_eq!(count("not_a_log"), 1.0, "{metrics}");
    assert!(count("test_event") >= 1.0, "{metrics}");

    let (events, ids) = delivered(dir.path());
    assert_eq!(events, want);
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    // The queue is drained: a queue belongs to one deployment, and a
    // notification none of its trails reads is deleted, not left.
    let (visible, hidden) = depth(&queue).await;
    assert_eq!(visible + hidden, 0, "queue depth; log:\n{}", log());
    assert_eq!(depth(&dlq).await.0, 1);
    let text = log();
    let said = |what: &str, key: &str| text.lines().any(|l| l.contains(what) && l.contains(key));
    assert!(said("object failed", &corrupt), "{text}");
    assert!(said("the object is gone", &gone), "{text}");
    assert!(text.contains("dead-letter queue"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lease_outlasts_a_slow_object_and_a_killed_daemon_loses_and_repeats_nothing() {
    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = format!("tw-sqsl-{}", std::process::id());
    let w = world(&tag);
    let direct = w["buckets"]["direct"].as_str().expect("bucket").to_owned();
    let queue = w["queue_url"].as_str().expect("queue").to_owned();
    let proxy = emulators::Proxy::start(dir.path());
    // Every request to the bucket takes 6 s: a lease of 3 s lapses twice
    // while one object is read, unless it is extended.
    proxy.configure(&json!({"buckets": {direct.clone(): {"latency_ms": 6000}}}));
    let cfg = config(dir.path(), &proxy.url, &w, "3s", "");
    let now = time::OffsetDateTime::now_utc();
    // Only the queue reads here: the reconciler starts in the future.
    let future = (now + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace("start_from = \"1h\"", &format!("start_from = \"{future}\"")),
    )
    .expect("config");
    // The set-up's test events out of the way (the first receive must hold
    // exactly the eight objects' messages).
    tokio::time::sleep(Duration::from_secs(2)).await;
    sqs()
        .await
        .purge_queue()
        .queue_url(&queue)
        .send()
        .await
        .expect("PurgeQueue");
    // Eight objects wait on the queue: one receive takes them all, and four
    // at a time they take 12 s or more to read against a lease of 3 s.
    let slow: Vec<String> = (0..8).map(|i| format!("slow{i}")).collect();
    for name in &slow {
        put_log(&direct, PREFIX, now, name, &records(&tag, name)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while depth(&queue).await.0 < 8 {
        assert!(Instant::now() < deadline, "the notifications never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let child = start(dir.path(), &cfg, "first.log");
    let log = || log_of(dir.path(), "first.log");
    // Once the daemon holds the eight messages, a second consumer polls the
    // queue while it reads: none of them is ever visible to it.
    let deadline = Instant::now() + Duration::from_secs(120);
    while depth(&queue).await.1 < 8 {
        assert!(
            Instant::now() < deadline,
            "the messages were never received; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = sqs().await;
    let want_slow = expected_events(&tag, &slow.iter().map(String::as_str).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stolen = Vec::new();
    while delivered(dir.path()).0 != want_slow && Instant::now() < deadline {
        let got = client
            .receive_message()
            .queue_url(&queue)
            .wait_time_seconds(1)
            .visibility_timeout(0)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in got.messages() {
            let body = m.body().unwrap_or_default();
            if body.contains("_slow") {
                stolen.push(body.to_owned());
            }
        }
    }
    assert!(
        stolen.is_empty(),
        "another consumer got the message being read: {stolen:?}"
    );
    assert_eq!(delivered(dir.path()).0, want_slow, "log:\n{}", log());
    assert!(!log().contains("could not be extended"), "log:\n{}", log());
    assert!(
        log().contains("queue round"),
        "the object came through the queue; log:\n{}",
        log()
    );

    // kill -9 in the middle of the next object (its message received, its
    // 6-second read under way), then start again.
    put_log(&direct, PREFIX, now, "killed", &records(&tag, "killed")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while depth(&queue).await.1 == 0 {
        assert!(Instant::now() < deadline, "the message was never received");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        delivered(dir.path())
            .0
            .iter()
            .all(|e| !e.contains("killed"))
    );
    let mut child = child;
    child.kill().expect("kill -9");
    let _ = child.wait();
    let second = start(dir.path(), &cfg, "second.log");
    let mut want = want_slow.clone();
    want.extend(expected_events(&tag, &["killed"]));
    wait_for(
        "the killed object's alerts",
        Duration::from_secs(120),
        || delivered(dir.path()).0 == want,
        || log_of(dir.path(), "second.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while depth(&queue).await != (0, 0) {
        assert!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop(second);
    let (events, ids) = delivered(dir.path());
    assert_eq!(events, want);
    assert!(ids.values().all(|n| *n == 1), "delivered twice: {ids:?}");
}
