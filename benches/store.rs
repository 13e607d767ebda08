//! The lookup store at scale (issue 15): a state file with 10 M alerts and
//! 50 M activity rows (built once through the store's own commits, its
//! lookup indexes built after the rows (`StateStore::bulk_load`), then
//! reused), and each console page asked over HTTP with varied filters:
//! p50 and p95 per page, and the file's size on disk.
//!
//!     cargo bench --bench store -- [--alerts 10000000] [--activity 50000000]
//!         [--path bench/store.db] [--runs 40]
//!
//! Alerts span 90 days, activity 7 (their retentions); 10,000 principals,
//! 5,000 source IPs, 150 event names, 120 rules, 20,000 targets.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use trailwatch::alert::{
    Activity, Alert, AlertContext, AlertEvent, AlertRule, Detected, ObjectRef,
};
use trailwatch::config::ConsoleConfig;
use trailwatch::console::{Console, router, serve};
use trailwatch::state::{CursorKey, ObjectCommit, ObjectStatus, StateStore};

const PRINCIPALS: u64 = 10_000;
const IPS: u64 = 5_000;
const EVENTS: u64 = 150;
const RULES: u64 = 120;
const TARGETS: u64 = 20_000;
const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];
/// Activity rows and alerts per commit (one "object").
const ROWS_PER_OBJECT: u64 = 5_000;

struct Args {
    alerts: u64,
    activity: u64,
    path: PathBuf,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        alerts: 10_000_000,
        activity: 50_000_000,
        path: PathBuf::from("bench/store.db"),
        runs: 40,
    };
    let list: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < list.len() {
        let value = list.get(i + 1).cloned().unwrap_or_default();
        match list[i].as_str() {
            "--alerts" => a.alerts = value.parse().unwrap_or(a.alerts),
            "--activity" => a.activity = value.parse().unwrap_or(a.activity),
            "--path" => a.path = PathBuf::from(value),
            "--runs" => a.runs = value.parse().unwrap_or(a.runs),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn principal(n: u64) -> (String, String, String) {
    (
        format!("arn:aws:iam::{:012}:user/u{n}", 100_000_000_000 + n % 50),
        format!("u{n}"),
        format!("AKIA{n:016}"),
    )
}

fn ip(n: u64) -> String {
    format!("10.{}.{}.{}", n / 65_536 % 256, n / 256 % 256, n % 256)
}

fn iso(t: i64) -> String {
    trailwatch::alert::rfc3339_at(t)
}

fn alert(rng: &mut StdRng, n: u64, now: i64, key: &str) -> Detected {
    let p = rng.random_range(0..PRINCIPALS);
    let (arn, name, access) = principal(p);
    let at = now - rng.random_range(0..90 * 86_400);
    let rule = rng.random_range(0..RULES);
    let event = format!("Event{}", rng.random_range(0..EVENTS));
    let target = format!("target-{}", rng.random_range(0..TARGETS));
    let source_ip = ip(rng.random_range(0..IPS));
    let record = serde_json::json!({
        "eventID": format!("ev-{n}"), "eventTime": iso(at), "eventName": event,
        "userIdentity": {"type": "IAMUser", "arn": arn, "userName": name, "accessKeyId": access},
        "sourceIPAddress": source_ip, "requestParameters": {"name": target},
    });
    Detected {
        alert: Alert {
            id: format!("tw-{n:016x}"),
            rule: AlertRule {
                id: format!("rule-{rule}"),
                title: format!("Rule number {rule}"),
                severity: LEVELS[(rule % 5) as usize].into(),
                tags: vec!["attack.t1000".into()],
                source: "builtin".into(),
            },
            event: AlertEvent {
                id: Some(format!("ev-{n}")),
                name: Some(event),
                source: Some("s3.amazonaws.com".into()),
                time: Some(iso(at)),
                account_id: Some(format!("{:012}", 100_000_000_000 + p % 50)),
                account_name: None,
                account_ou_path: None,
                region: Some("us-east-1".into()),
                principal: Some(arn),
                principal_type: Some("IAMUser".into()),
                source_ip: Some(source_ip),
                user_agent: Some("aws-cli/2.15 Python/3.11".into()),
                error_code: None,
            },
            object: Some(ObjectRef {
                bucket: "bench-logs".into(),
                key: key.to_owned(),
            }),
            count: 1,
            related_event_ids: Vec::new(),
            detected_at: iso(at + 60),
            burst: None,
        },
        context: AlertContext {
            skip_sinks: Vec::new(),
            record: Some(record.to_string()),
            resource: Some(format!("\"{target}\"")),
            ungrouped: true,
            ..AlertContext::default()
        },
    }
}

fn activity(rng: &mut StdRng, n: u64, now: i64) -> Activity {
    let p = rng.random_range(0..PRINCIPALS);
    let (arn, name, access) = principal(p);
    Activity {
        at: now - rng.random_range(0..7 * 86_400),
        event_id: Some(format!("act-{n}")),
        principal: Some(arn),
        principal_name: Some(name),
        access_key: Some(access),
        account: Some(format!("{:012}", 100_000_000_000 + p % 50)),
        region: Some("us-east-1".into()),
        event_name: Some(format!("Event{}", rng.random_range(0..EVENTS))),
        event_source: Some("s3.amazonaws.com".into()),
        target: Some(format!("target-{}", rng.random_range(0..TARGETS))),
        source_ip: Some(ip(rng.random_range(0..IPS))),
        user_agent: Some("aws-cli/2.15 Python/3.11".into()),
        error_code: None,
    }
}

fn build(a: &Args, store: &StateStore) {
    let started = Instant::now();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut rng = StdRng::seed_from_u64(15);
    let cursor = CursorKey {
        bucket: "bench-logs".into(),
        prefix: String::new(),
        account: "100000000000".into(),
        region: "us-east-1".into(),
    };
    let objects = a.activity.div_ceil(ROWS_PER_OBJECT).max(1);
    let alerts_per_object = a.alerts.div_ceil(objects);
    let (mut made_alerts, mut made_rows) = (0u64, 0u64);
    // The lookup indexes are built once at the end (one sort each), not
    // kept in step row by row: a 10 M / 50 M store in about an hour, not five.
    let loaded = store.bulk_load(|store| {
        for o in 0..objects {
            let key = format!("AWSLogs/100000000000/CloudTrail/us-east-1/o{o}.json.gz");
            let alerts: Vec<Detected> = (0..alerts_per_object.min(a.alerts - made_alerts))
                .map(|i| alert(&mut rng, made_alerts + i, now, &key))
                .collect();
            let rows: Vec<Activity> = (0..ROWS_PER_OBJECT.min(a.activity - made_rows))
                .map(|i| activity(&mut rng, made_rows + i, now))
                .collect();
            made_alerts += alerts.len() as u64;
            made_rows += rows.len() as u64;
            store
                .commit_object(&ObjectCommit {
                    cursor: &cursor,
                    key: &key,
                    key_time: "20261201T0000Z",
                    status: ObjectStatus::Done,
                    records: rows.len() as u64,
                    error: None,
                    alerts: &alerts,
                    activity: &rows,
                    correlation: None,
                })
                .expect("commit");
            if o % 200 == 0 {
                eprintln!(
                    "built {made_alerts} alerts, {made_rows} activity rows in {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    });
    loaded.expect("bulk load");
    eprintln!(
        "indexes built: {made_alerts} alerts, {made_rows} activity rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // The sinks have passed them all (retention's condition).
    store
        .set_sink_offset("file", i64::MAX, None)
        .expect("offset");
    eprintln!(
        "built {made_alerts} alerts and {made_rows} activity rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

fn size_on_disk(path: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` (make test)
    // runs this file too, and must not build a store of many GB.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/store.rs: run with `cargo bench --bench store` (make bench)");
        return;
    }
    let a = args();
    if let Some(dir) = a.path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let marker = a
        .path
        .with_extension(format!("{}-{}.built", a.alerts, a.activity));
    if !marker.exists() {
        let _ = std::fs::remove_file(&a.path);
        let store = StateStore::open(&a.path).expect("open");
        build(&a, &store);
        drop(store);
        std::fs::write(&marker, "built\n").expect("marker");
    }
    let store = Arc::new(StateStore::open(&a.path).expect("open"));
    let gb = size_on_disk(&a.path) as f64 / 1e9;
    println!(
        "store: {} alerts, {} activity rows, {gb:.1} GB on disk ({})",
        store.alert_count().expect("count"),
        a.activity,
        a.path.display()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(pages(store, a.runs));
}

async fn pages(store: Arc<StateStore>, runs: usize) {
    let settings = ConsoleConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        credentials_file: None,
        trusted_header: None,
        session_ttl: Duration::from_secs(3600),
        time_zone: Some("UTC".into()),
    };
    let console = Console::new(Arc::clone(&store), &settings, Box::new(Vec::new)).expect("console");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(serve(listener, router(Arc::new(console)), stop_rx));
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(7);
    // An alert id to open: the newest.
    let newest = http
        .get(format!("{base}/alerts.json?limit=1"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let id = serde_json::from_str::<serde_json::Value>(newest.lines().next().unwrap_or("{}"))
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    type Page = (&'static str, Box<dyn Fn(&mut StdRng) -> String>);
    let pages: Vec<Page> = vec![
        ("alerts, last 7 days", Box::new(|_| "/alerts".into())),
        (
            "alerts by principal name",
            Box::new(|r| format!("/alerts?principal=u{}", r.random_range(0..PRINCIPALS))),
        ),
        (
            "alerts by access key, 90 days",
            Box::new(|r| {
                format!(
                    "/alerts?principal=AKIA{:016}&since=90d",
                    r.random_range(0..PRINCIPALS)
                )
            }),
        ),
        (
            "alerts by rule and level",
            Box::new(|r| {
                format!(
                    "/alerts?rule=rule-{}&level=high%2B",
                    r.random_range(0..RULES)
                )
            }),
        ),
        (
            "alerts by two IPs (OR), 30 days",
            Box::new(|r| {
                format!(
                    "/alerts?ip={}&ip={}&since=30d",
                    ip(r.random_range(0..IPS)),
                    ip(r.random_range(0..IPS))
                )
            }),
        ),
        (
            "alerts by target and event (AND)",
            Box::new(|r| {
                format!(
                    "/alerts?target=target-{}&event=Event{}&since=90d",
                    r.random_range(0..TARGETS),
                    r.random_range(0..EVENTS)
                )
            }),
        ),
        ("alert page", Box::new(move |_| format!("/alerts/{id}"))),
        (
            "principal page",
            Box::new(|r| format!("/principal?who=u{}", r.random_range(0..PRINCIPALS))),
        ),
        ("activity, last 7 days", Box::new(|_| "/activity".into())),
        (
            "activity by principal",
            Box::new(|r| {
                format!(
                    "/activity?principal=AKIA{:016}",
                    r.random_range(0..PRINCIPALS)
                )
            }),
        ),
        (
            "activity by IP",
            Box::new(|r| format!("/activity?ip={}", ip(r.random_range(0..IPS)))),
        ),
        (
            "activity by event, 1 day",
            Box::new(|r| {
                format!(
                    "/activity?event=Event{}&since=1d",
                    r.random_range(0..EVENTS)
                )
            }),
        ),
        (
            "activity by target",
            Box::new(|r| format!("/activity?target=target-{}", r.random_range(0..TARGETS))),
        ),
        (
            "CSV export by principal, 90 days",
            Box::new(|r| {
                format!(
                    "/alerts.csv?principal=u{}&since=90d",
                    r.random_range(0..PRINCIPALS)
                )
            }),
        ),
        ("trails", Box::new(|_| "/trails".into())),
        (
            "rules (alerts per rule, 7 days)",
            Box::new(|_| "/rules".into()),
        ),
    ];
    println!("| page | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|");
    for (name, url) in &pages {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let path = url(&mut rng);
            let started = Instant::now();
            let response = http.get(format!("{base}{path}")).send().await.expect("get");
            let status = response.status();
            let _ = response.bytes().await.expect("body");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(status.is_success(), "{path}: {status}");
        }
        times.sort_by(f64::total_cmp);
        let q = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            q(0.5),
            q(0.95),
            q(1.0)
        );
    }
}
