//! Blind spots as alerts (issue 21, item 4), against LocalStack through the
//! fault proxy: a bucket that was read and becomes unreadable raises one
//! alert, and one summary once it is read again; a KMS denial after reads
//! is its own rule. `trailwatch once` runs the passes, the state kept.

mod common;

use common::emulators::{Proxy, put_log, require_emulators, trailwatch};
use serde_json::{Value, json};

fn alerts(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn of_rule<'a>(all: &'a [Value], rule: &str) -> Vec<&'a Value> {
    all.iter().filter(|a| a["rule"]["id"] == rule).collect()
}

fn record(id: &str) -> Value {
    json!({
        "eventVersion": "1.08", "eventID": id, "eventTime": "2026-12-01T10:00:00Z",
        "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
        "awsRegion": "us-east-1", "sourceIPAddress": "10.0.0.1",
        "recipientAccountId": "111122223333", "readOnly": true,
        "userIdentity": {"type": "AssumedRole", "accountId": "111122223333",
                         "arn": "arn:aws:sts::111122223333:assumed-role/app/i-1"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_that_becomes_unreadable_raises_one_alert_and_one_summary() {
    require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = format!("tw-blind-{}", std::process::id());
    let now = time::OffsetDateTime::now_utc();
    put_log(
        &bucket,
        "bs",
        now - time::Duration::minutes(20),
        "a",
        &[record("bs-1")],
    )
    .await;
    let proxy = Proxy::start(dir.path());
    let cfg = dir.path().join("trailwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             [discovery]\nenabled = false\n[[trails]]\nbucket = \"{bucket}\"\nprefix = \"bs\"\nregion = \"us-east-1\"\n\
             [crawl]\nstart_from = \"2h\"\n[[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\n",
            proxy.url
        ),
    )
    .expect("config");
    let once = || {
        let out = trailwatch(&["once", "--config", cfg.to_str().expect("utf-8")])
            .current_dir(dir.path())
            .output()
            .expect("once");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let bucket_rule = "trailwatch-blind-bucket-unreadable";
    let kms_rule = "trailwatch-blind-kms-denied";

    // Read fine: no blind spot.
    once();
    assert!(of_rule(&alerts(dir.path()), bucket_rule).is_empty());

    // The bucket policy changes: every request denied. One alert, however
    // many passes it lasts.
    proxy.configure(&json!({"buckets": {&bucket: {"access_denied": true}}}));
    let err = once();
    once();
    let all = alerts(dir.path());
    let raised = of_rule(&all, bucket_rule);
    assert_eq!(raised.len(), 1, "{err}\n{all:#?}");
    assert_eq!(raised[0]["rule"]["severity"], "medium");
    assert!(
        raised[0]["rule"]["title"]
            .as_str()
            .is_some_and(|t| t.contains(&bucket)),
        "{:#}",
        raised[0]
    );

    // Readable again: one summary under its own id.
    proxy.configure(&json!({}));
    put_log(
        &bucket,
        "bs",
        now - time::Duration::minutes(10),
        "b",
        &[record("bs-2")],
    )
    .await;
    once();
    once();
    let all = alerts(dir.path());
    let both = of_rule(&all, bucket_rule);
    assert_eq!(both.len(), 2, "{all:#?}");
    assert_ne!(both[0]["id"], both[1]["id"]);
    assert!(
        both[1]["rule"]["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Readable again")),
        "{:#}",
        both[1]
    );

    // The key policy changes: a new object cannot be decrypted.
    proxy.configure(&json!({"buckets": {&bucket: {"kms_denied": true}}}));
    put_log(
        &bucket,
        "bs",
        now - time::Duration::minutes(5),
        "c",
        &[record("bs-3")],
    )
    .await;
    let err = once();
    let all = alerts(dir.path());
    assert_eq!(of_rule(&all, kms_rule).len(), 1, "{err}\n{all:#?}");
}

fn wait_for(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A rule file that stops loading at a reload is a blind spot: one alert
/// through the sinks, and one summary once it loads again.
#[test]
fn a_rule_file_that_fails_at_a_reload_raises_one_alert_and_one_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    let good = "title: Mine\nid: mine\nlogsource:\n  product: aws\n  service: cloudtrail\n\
                detection:\n  sel:\n    eventName: DeleteBucket\n  condition: sel\nlevel: low\n";
    std::fs::write(rules.join("mine.yml"), good).expect("rule");
    let cfg = dir.path().join("trailwatch.toml");
    std::fs::write(
        &cfg,
        "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n\
         [discovery]\nenabled = false\n[[trails]]\nbucket = \"b\"\nregion = \"us-east-1\"\n\
         [crawl]\npoll_interval = \"1h\"\n[rules]\npaths = [\"rules\"]\n\
         [[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\nfsync = \"always\"\n",
    )
    .expect("config");
    let mut child = trailwatch(&["run", "--config", cfg.to_str().expect("utf-8")])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the daemon");
    let hup = |pid: u32| {
        std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
    };
    let rule = "trailwatch-blind-rule-not-loaded";
    let count = || of_rule(&alerts(dir.path()), rule).len();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(count(), 0, "every rule loads at start");

    std::fs::write(
        rules.join("mine.yml"),
        "title: Mine\ndetection: [unclosed\n",
    )
    .expect("break");
    hup(child.id());
    wait_for(
        "the blind-spot alert",
        std::time::Duration::from_secs(30),
        || count() == 1,
    );
    let all = alerts(dir.path());
    let raised = of_rule(&all, rule);
    assert!(
        raised[0]["rule"]["title"]
            .as_str()
            .is_some_and(|t| t.contains("mine.yml")),
        "{:#}",
        raised[0]
    );
    // Reloaded again, still broken: nothing new.
    hup(child.id());
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(count(), 1);

    std::fs::write(rules.join("mine.yml"), good).expect("fix");
    hup(child.id());
    wait_for("the summary", std::time::Duration::from_secs(30), || {
        count() == 2
    });
    let all = alerts(dir.path());
    let both = of_rule(&all, rule);
    assert_ne!(both[0]["id"], both[1]["id"]);
    let _ = child.kill();
    let _ = child.wait();
}

/// A receiver on loopback: `/a` answers 400 while `refuse` holds, else 200;
/// every other path 200. Records (path, alert rule id) of what it accepted.
async fn two_path_receiver(
    refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (seen, refuse) = (std::sync::Arc::clone(&seen), std::sync::Arc::clone(&refuse));
            tokio::spawn(async move {
                let Some((path, body)) = common::one_request::read(&mut s).await else {
                    return;
                };
                let refused = path == "/a" && refuse.load(std::sync::atomic::Ordering::SeqCst);
                if !refused {
                    let alert: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let rule = alert["rule"]["id"].as_str().unwrap_or("").to_owned();
                    seen.lock().expect("seen").push((path, rule));
                }
                let head = if refused { "400 Bad Request" } else { "200 OK" };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {head}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (base, got)
}

/// A sink whose alerts go to dead letters is a blind spot: one alert, which
/// every other sink gets and that sink never does, and one summary once it
/// delivers again.
#[tokio::test(flavor = "multi_thread")]
async fn a_sink_refusing_alerts_raises_one_alert_elsewhere_and_one_summary() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use trailwatch::sinks::deliver::{Policy, deliver_all};
    use trailwatch::state::StateStore;

    let dir = tempfile::tempdir().expect("tempdir");
    let refuse = Arc::new(AtomicBool::new(true));
    let (base, got) = two_path_receiver(Arc::clone(&refuse)).await;
    let config = trailwatch::config::Config::from_toml(
        &format!(
            "[[sinks]]\ntype = \"webhook\"\nname = \"a\"\nurl = \"{base}/a\"\n\
             [[sinks]]\ntype = \"webhook\"\nname = \"b\"\nurl = \"{base}/b\"\n\
             [[sinks]]\ntype = \"file\"\nname = \"file\"\npath = \"alerts.jsonl\"\n"
        ),
        dir.path(),
    )
    .expect("config");
    let state = Arc::new(StateStore::open(&dir.path().join("state.db")).expect("state"));
    let commit = |key: &str, ids: &[&str]| {
        let ids: Vec<String> = ids.iter().map(|i| (*i).to_owned()).collect();
        common::outbox::commit_samples(&state, key, &ids);
    };
    let policy = Policy::default();
    commit("k1", &["tw-00000000000000b1", "tw-00000000000000b2"]);
    deliver_all(&state, &config.sinks, &policy)
        .await
        .expect("round 1");
    deliver_all(&state, &config.sinks, &policy)
        .await
        .expect("round 2");
    refuse.store(false, Ordering::SeqCst);
    commit("k2", &["tw-00000000000000b3"]);
    deliver_all(&state, &config.sinks, &policy)
        .await
        .expect("round 3");
    deliver_all(&state, &config.sinks, &policy)
        .await
        .expect("round 4");

    let rule = "trailwatch-blind-sink-dead-letters";
    let got = got.lock().expect("got").clone();
    let at = |path: &str| got.iter().filter(|(p, r)| p == path && r == rule).count();
    assert_eq!(
        at("/b"),
        2,
        "the other sink gets the alert and its summary: {got:?}"
    );
    assert_eq!(at("/a"), 0, "the refusing sink never gets them: {got:?}");
    assert_eq!(
        of_rule(&alerts(dir.path()), rule).len(),
        2,
        "the file sink too"
    );
    assert!(
        got.iter().any(|(p, _)| p == "/a"),
        "a delivers again: {got:?}"
    );
}
