//! Delivery end to end: the crawler's alerts through the outbox to a real
//! HTTP receiver on loopback (tests/support/receiver.py), which validates
//! every Datadog payload with Datadog's official client models and injects
//! 429s with Retry-After, 500s, timeouts, dropped connections, a 400 and
//! outages.

// The world lock serialises whole tests (each owns its runtime), not tasks.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::emulators::{self, config, once, seed, trailwatch};
use common::receiver::Receiver;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const API_KEY: &str = "dd-test-key-5c1e9a7f03b24d68";
const WEBHOOK_SECRET: &str = "whsec-test-8d2f61a0c4e7";
const WEBHOOK_TOKEN: &str = "hook-token-77e0b1d9";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every alert id in the outbox of the state file under `dir`.
fn outbox_ids(dir: &Path) -> BTreeSet<String> {
    outbox(dir).into_iter().map(|o| o.alert.id).collect()
}

fn outbox(dir: &Path) -> Vec<trailwatch::state::Outboxed> {
    let state = trailwatch::state::StateStore::open(&dir.join("state.db")).expect("state");
    state.alerts_after(0, 1_000_000).expect("outbox")
}

fn accepted(receiver: &Receiver) -> (BTreeMap<String, u64>, BTreeSet<String>) {
    let a = receiver.accepted();
    let counts = a["accepted"]
        .as_object()
        .expect("accepted")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect();
    let timed_out = a["timed_out"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    (counts, timed_out)
}

/// The most requests seen in any window of `t` seconds.
fn max_in_window(times: &[f64], t: f64) -> usize {
    let mut best = 0;
    let mut j = 0;
    for i in 0..times.len() {
        while j < times.len() && times[j] <= times[i] + t {
            j += 1;
        }
        best = best.max(j - i);
    }
    best
}

fn datadog_sink(receiver: &Receiver, dir: &Path) -> String {
    std::fs::write(dir.join("dd-key"), format!("{API_KEY}\n")).expect("key file");
    format!(
        "[[sinks]]\ntype = \"datadog\"\nname = \"dd\"\nurl = \"{}/api/v1/events\"\napi_key_file = \"dd-key\"\n\
         rate_limit = {{ per_second = 40, burst = 10 }}\ntimeout = \"2s\"\ntags = [\"env:test\"]\n",
        receiver.url
    )
}

#[test]
fn datadog_gets_every_alert_valid_within_its_rate_limit() {
    let _world = emulators::world_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    seed(dir.path());
    let key_sha = hex::encode(Sha256::digest(API_KEY.as_bytes()));
    let receiver = Receiver::start(dir.path(), Some(&key_sha), None);
    // Faults on the first requests: 429 with Retry-After, 500, a timeout
    // after the body was sent, a dropped connection; then a 400 for the
    // next alert.
    let p = "/api/v1/events";
    receiver.configure(&json!({"faults": [
        {"path": p, "status": 429, "retry_after": 1},
        {"path": p, "status": 500},
        {"path": p, "action": "timeout", "seconds": 4},
        {"path": p, "action": "close"},
        {"path": p, "status": 429, "rate_limit_reset": 1},
        {"path": p, "status": 400, "body": {"errors": ["Event too strange"]}}
    ]}));
    let cfg = config(
        dir.path(),
        emulators::LOCALSTACK,
        &datadog_sink(&receiver, dir.path()),
    );
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace("level = \"info\"", "level = \"debug\"");
    std::fs::write(&cfg, text).expect("config");

    let started = Instant::now();
    let out = once(&cfg);
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains(API_KEY), "the API key appears in the logs");
    assert!(err.contains("sink dd: "), "{err}");

    let expected = outbox_ids(dir.path());
    assert!(expected.len() > 100, "{} alerts", expected.len());
    let requests = receiver.requests();
    for r in &requests {
        let problems = r["problems"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(problems, 0, "an invalid payload: {}", r["problems"]);
        assert_eq!(r["api_key"], "ok");
    }
    let (counts, timed_out) = accepted(&receiver);
    let dead: Vec<&Value> = requests.iter().filter(|r| r["status"] == 400).collect();
    assert_eq!(dead.len(), 1);
    let dead_id = dead[0]["alert_id"].as_str().expect("id").to_owned();
    let delivered: BTreeSet<String> = counts.keys().cloned().collect();
    let mut want = expected.clone();
    want.remove(&dead_id);
    // The refusal is a blind spot: an alert (and, once dd delivered again,
    // its summary) for every sink but dd, which never gets them.
    let blind: BTreeSet<String> = outbox(dir.path())
        .into_iter()
        .filter(|o| o.alert.rule.id == "trailwatch-blind-sink-dead-letters")
        .map(|o| o.alert.id)
        .collect();
    assert_eq!(blind.len(), 2, "one blind-spot alert and its summary");
    assert!(
        delivered.is_disjoint(&blind),
        "never sent to the refusing sink"
    );
    want.retain(|id| !blind.contains(id));
    assert_eq!(delivered, want, "every alert but the refused one, accepted");
    for (id, n) in &counts {
        assert!(
            *n == 1 || timed_out.contains(id),
            "{id} accepted {n} times without a timeout"
        );
    }

    // The rate limit holds at the receiver: burst + per_second × T in any T.
    let mut times: Vec<f64> = requests
        .iter()
        .filter_map(|r| r["time_monotonic"].as_f64())
        .collect();
    times.sort_by(f64::total_cmp);
    for t in [0.5, 1.0, 2.0, 5.0] {
        let allowed = 10 + (40.0 * (t + 0.05)) as usize;
        let seen = max_in_window(&times, t);
        assert!(seen <= allowed, "{seen} requests in {t}s, limit {allowed}");
    }
    let rate = requests.len() as f64 / elapsed.as_secs_f64();
    eprintln!(
        "delivered {} alerts in {:.1}s ({} requests, {:.1}/s against a limit of 40/s + burst 10; {} retries)",
        counts.len(),
        elapsed.as_secs_f64(),
        requests.len(),
        rate,
        requests.len() - counts.values().sum::<u64>() as usize
    );

    // The 400 is a dead letter; `outbox retry` delivers it once accepted.
    let c = cfg.to_str().expect("utf-8");
    let list = trailwatch(&["outbox", "list", "--config", c])
        .output()
        .expect("list");
    let table = String::from_utf8_lossy(&list.stdout);
    assert!(table.contains(&dead_id) && table.contains("400"), "{table}");
    let retry = trailwatch(&["outbox", "retry", "--config", c])
        .output()
        .expect("retry");
    assert_eq!(retry.status.code(), Some(0), "{}", stderr(&retry));
    let (counts, _) = accepted(&receiver);
    assert_eq!(counts.get(&dead_id), Some(&1));
    let list = trailwatch(&["outbox", "list", "--config", c])
        .output()
        .expect("list");
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&dead_id));
    // A second once sends nothing again.
    let before = receiver.requests().len();
    let out = once(&cfg);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(receiver.requests().len(), before);
}

#[test]
fn webhooks_are_templated_signed_and_authorised() {
    let _world = emulators::world_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    seed(dir.path());
    let secret_file = dir.path().join("hook-secret");
    std::fs::write(&secret_file, format!("{WEBHOOK_SECRET}\n")).expect("secret");
    let receiver = Receiver::start(dir.path(), None, Some(&secret_file));
    let sink = format!(
        "[[sinks]]\ntype = \"webhook\"\nname = \"torq\"\nurl = \"{}/hook/torq\"\nsecret_file = \"hook-secret\"\n\
         min_level = \"high\"\nheaders = {{ \"Authorization\" = {{ env = \"TW_TEST_HOOK_TOKEN\" }} }}\n\
         body_template = '{{\"id\": $ALERT_ID, \"text\": \"$EVENT_TITLE at $DATE\", \"alert\": $ALERT_JSON}}'\n",
        receiver.url
    );
    let cfg = config(dir.path(), emulators::LOCALSTACK, &sink);
    let out = trailwatch(&["once", "--config", cfg.to_str().expect("utf-8")])
        .env("TW_TEST_HOOK_TOKEN", WEBHOOK_TOKEN)
        .env("RUST_LOG", "trailwatch=debug")
        .output()
        .expect("once");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains(WEBHOOK_SECRET) && !err.contains(WEBHOOK_TOKEN),
        "a secret in the logs"
    );
    let requests = receiver.requests();
    assert!(!requests.is_empty());
    let token_sha = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(WEBHOOK_TOKEN.as_bytes()))
    );
    for r in &requests {
        assert_eq!(r["status"], 200, "{}", r);
        assert_eq!(r["headers"]["authorization"], token_sha.as_str());
        let body = &r["body"];
        assert_eq!(body["id"], body["alert"]["id"]);
        let sev = body["alert"]["rule"]["severity"]
            .as_str()
            .expect("severity");
        assert!(
            sev == "high" || sev == "critical",
            "the route lets only high and up through"
        );
        assert!(body["text"].as_str().is_some_and(|t| t.contains(" at 20")));
    }
    // The route: exactly the high and critical alerts of the outbox.
    let state = trailwatch::state::StateStore::open(&dir.path().join("state.db")).expect("state");
    let high = state
        .alerts_after(0, 1_000_000)
        .expect("outbox")
        .into_iter()
        .filter(|o| matches!(o.alert.rule.severity.as_str(), "high" | "critical"))
        .count();
    assert_eq!(requests.len(), high);
}

#[test]
fn an_outage_with_a_kill_9_loses_nothing_and_delays_no_other_sink() {
    let _world = emulators::world_lock();
    let outage = Duration::from_secs(
        std::env::var("TW_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    seed(dir.path());
    let key_sha = hex::encode(Sha256::digest(API_KEY.as_bytes()));
    let receiver = Receiver::start(dir.path(), Some(&key_sha), None);
    receiver.configure(&json!({"down": true}));
    let down_at = Instant::now();
    let cfg = config(
        dir.path(),
        emulators::LOCALSTACK,
        &datadog_sink(&receiver, dir.path()),
    );

    // Datadog is down: the file sink still gets every alert, at once.
    let started = Instant::now();
    let out = once(&cfg);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "a dead sink held up the run"
    );
    let expected = outbox_ids(dir.path());
    let file_ids: Vec<String> = emulators::alerts(dir.path())
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(file_ids.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let depth = trailwatch::state::StateStore::open(&dir.path().join("state.db"))
        .expect("state")
        .pending("dd")
        .expect("pending");
    assert_eq!(
        depth as usize,
        expected.len(),
        "the Datadog backlog holds every alert"
    );
    assert!(
        err.contains("sink dd: 0 delivered") && err.contains("failing"),
        "{err}"
    );

    // Killed while it retries the dead sink.
    let mut child = trailwatch(&["once", "--config", cfg.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start once");
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    // The outage ends; the next run delivers everything, once.
    if let Some(rest) = outage.checked_sub(down_at.elapsed()) {
        std::thread::sleep(rest);
    }
    receiver.configure(&json!({"down": false}));
    let out = once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (counts, timed_out) = accepted(&receiver);
    assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for (id, n) in &counts {
        assert!(*n == 1 || timed_out.contains(id), "{id} accepted {n} times");
    }
    assert_eq!(
        emulators::alerts(dir.path()).len(),
        file_ids.len(),
        "no second line in the file"
    );
    eprintln!(
        "outage of {:.0}s: outbox depth reached {depth}; {} accepted after it",
        outage.as_secs_f64(),
        counts.len()
    );
}

#[test]
fn a_full_backlog_pauses_the_crawl_and_readiness_names_the_sink() {
    let _world = emulators::world_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = seed(dir.path());
    let receiver = Receiver::start(dir.path(), None, None);
    receiver.configure(&json!({"down": true}));
    let sink = datadog_sink(&receiver, dir.path())
        .replace("name = \"dd\"", "name = \"dd\"\nmax_backlog = 10");
    let cfg = config(dir.path(), emulators::LOCALSTACK, &sink);
    // The first pass fills the backlog past its bound (it was empty when the
    // pass began); nothing is dropped.
    let out = once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = outbox_ids(dir.path()).len();
    assert!(before > 10);
    // A late object arrives; with the backlog full, the crawl pauses.
    let late = manifest["buckets"]["tw-main-logs"]["objects"][0]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let s3 = emulators::s3().await;
        // Filed under a delivery time a few minutes ago (inside the lookback).
        let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
        let key = format!(
            "AWSLogs/111111111111/CloudTrail/us-east-1/{:04}/{:02}/{:02}/111111111111_CloudTrail_us-east-1_{}_BacklogBacklog01.json.gz",
            t.year(),
            t.month() as u8,
            t.day(),
            trailwatch::aws::keys::key_time(t)
        );
        let body = s3.get_object().bucket("tw-main-logs").key(&late).send().await.expect("get");
        let bytes = body.body.collect().await.expect("body").into_bytes();
        s3.put_object()
            .bucket("tw-main-logs")
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .expect("put");
    });
    let out = once(&cfg);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("crawl paused: sink dd"), "{err}");
    assert!(err.contains("0 objects processed"), "{err}");
    assert_eq!(
        outbox_ids(dir.path()).len(),
        before,
        "nothing new while paused"
    );
    // The sink comes back and drains its backlog (this run's crawl was
    // already paused when it began); the next pass goes on and reads the
    // late object.
    receiver.configure(&json!({"down": false}));
    let out = once(&cfg);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("sink dd: {before} delivered")),
        "{err}"
    );
    let out = once(&cfg);
    let err = stderr(&out);
    assert!(
        err.contains("1 objects processed"),
        "the paused object is read after: {err}"
    );
}
