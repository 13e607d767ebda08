//! `trailwatch alerts` and `trailwatch activity` over a store filled by a
//! real crawl (`once` against LocalStack): filters OR within a flag and AND
//! across flags, pages, the 90-day refusal, CSV parsed back by Python's csv
//! module with hostile cells neutralised, OCSF from the command and from a
//! file sink, activity for records that raised nothing.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::emulators;
use serde_json::{Value, json};

const BUCKET: &str = "tw-lookup-logs";
const HOSTILE_AGENT: &str = "=HYPERLINK(\"http://evil.example\",\"x\")";
const HOSTILE_TARGET: &str = "\"><img src=x onerror=alert(1)>";

fn record(i: u32, who: &str, event: &str, agent: &str, when: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "eventID": format!("lookup-{i}-{}", std::process::id()),
        "eventTime": when,
        "eventSource": if event == "StopLogging" { "cloudtrail.amazonaws.com" } else { "s3.amazonaws.com" },
        "eventName": event,
        "awsRegion": "us-east-1",
        "sourceIPAddress": if who == "alice" { "198.51.100.1" } else { "203.0.113.9" },
        "userAgent": agent,
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "IAMUser",
            "arn": format!("arn:aws:iam::111122223333:user/{who}"),
            "userName": who,
            "accessKeyId": if who == "alice" { "AKIAALICE" } else { "AKIABOB" },
            "accountId": "111122223333"
        },
        "requestParameters": if event == "StopLogging" {
            json!({"name": format!("trail-{i}")})
        } else {
            json!({"bucketName": HOSTILE_TARGET})
        }
    })
}

/// One object: bob stops three trails (one with a hostile user agent),
/// alice lists buckets four times (nothing to alert on).
async fn upload(prefix: &str) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let when = |m: i64| {
        (t - time::Duration::minutes(m))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("time")
    };
    let mut records = Vec::new();
    for i in 0..3 {
        let agent = if i == 1 {
            HOSTILE_AGENT
        } else {
            "aws-cli/2.15"
        };
        records.push(record(i, "bob", "StopLogging", agent, &when(i64::from(i))));
    }
    for i in 3..7 {
        records.push(record(
            i,
            "alice",
            "ListBuckets",
            "aws-cli/2.15",
            &when(i64::from(i)),
        ));
    }
    emulators::put_log(BUCKET, prefix, t, "lookup", &records).await
}

fn config(dir: &Path, prefix: &str) -> PathBuf {
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\n\
             endpoint_url = \"{}\"\n[discovery]\nenabled = false\n\
             [[trails]]\nbucket = \"{BUCKET}\"\nprefix = \"{prefix}\"\nregion = \"us-east-1\"\n\
             [crawl]\nstart_from = \"1h\"\n[rules.grouping]\nenabled = false\n\
             [[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\n\
             [[sinks]]\ntype = \"file\"\nname = \"ocsf\"\npath = \"ocsf.jsonl\"\nformat = \"ocsf\"\n\
             [[accounts]]\nid = \"111122223333\"\nname = \"prod-payments\"\n",
            emulators::LOCALSTACK
        ),
    )
    .expect("config");
    path
}

fn run(config: &Path, args: &[&str]) -> Output {
    let mut all = vec![args[0], "--config", config.to_str().expect("utf-8")];
    all.extend_from_slice(&args[1..]);
    emulators::trailwatch(&all)
        .output()
        .expect("run trailwatch")
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// CSV rows as Python's csv module reads them.
fn python_csv(text: &[u8]) -> Vec<Vec<String>> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import csv,json,sys; print(json.dumps(list(csv.reader(sys.stdin, strict=True))))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text)
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success(), "python's csv refused the output");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_and_activity_are_looked_up_as_the_filters_say() {
    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("lookup-{}", std::process::id());
    let key = upload(&prefix).await;
    let config = config(dir.path(), &prefix);
    let once = emulators::once(&config);
    assert!(
        once.status.success(),
        "once: {}",
        String::from_utf8_lossy(&once.stderr)
    );

    // Every alert of the crawl is in the store, newest first.
    let all = lines(&run(&config, &["alerts", "--format", "json"]));
    let delivered = emulators::alerts(dir.path());
    assert!(!all.is_empty());
    assert_eq!(
        all.len(),
        delivered.len(),
        "the store holds what was delivered"
    );
    let times: Vec<&str> = all
        .iter()
        .filter_map(|a| a["event"]["time"].as_str())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let stops: Vec<&Value> = all
        .iter()
        .filter(|a| a["rule"]["id"] == "aws-cloudtrail-stop-logging")
        .collect();
    assert_eq!(stops.len(), 3, "{all:#?}");
    for a in &stops {
        assert_eq!(a["object"]["key"], json!(key));
        // `[[accounts]]` names the account on the alert, in the store and
        // at the sink.
        assert_eq!(a["event"]["account_name"], "prod-payments", "{a}");
    }
    assert!(
        delivered
            .iter()
            .all(|a| a["event"]["account_name"] == "prod-payments")
    );
    let table = run(&config, &["alerts"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("prod-payments"),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );

    // By name, ARN or access key; OR within a flag, AND across flags.
    for who in ["bob", "arn:aws:iam::111122223333:user/bob", "AKIABOB"] {
        let found = lines(&run(
            &config,
            &["alerts", "--format", "json", "--principal", who],
        ));
        assert_eq!(found.len(), all.len(), "{who}: every alert is bob's");
    }
    assert!(
        lines(&run(
            &config,
            &["alerts", "--format", "json", "--principal", "alice"]
        ))
        .is_empty()
    );
    let either = lines(&run(
        &config,
        &[
            "alerts",
            "--format",
            "json",
            "--principal",
            "alice",
            "--principal",
            "bob",
        ],
    ));
    assert_eq!(either.len(), all.len());
    let both = lines(&run(
        &config,
        &[
            "alerts",
            "--format",
            "json",
            "--principal",
            "bob",
            "--target",
            "trail-2",
            "--rule",
            "aws-cloudtrail-stop-logging",
        ],
    ));
    assert_eq!(both.len(), 1, "{both:#?}");
    assert_eq!(
        both[0]["event"]["principal"],
        "arn:aws:iam::111122223333:user/bob"
    );

    // Activity holds every record read, those that raised nothing too.
    let alice = lines(&run(
        &config,
        &["activity", "--format", "json", "--principal", "AKIAALICE"],
    ));
    assert_eq!(alice.len(), 4, "{alice:#?}");
    for row in &alice {
        assert_eq!(row["event_name"], "ListBuckets");
        assert_eq!(row["target"], HOSTILE_TARGET);
        assert_eq!(
            (row["bucket"].as_str(), row["key"].as_str()),
            (Some(BUCKET), Some(key.as_str()))
        );
    }
    let agent = lines(&run(
        &config,
        &["activity", "--format", "json", "--user-agent", "HYPERLINK"],
    ));
    assert_eq!(agent.len(), 1);

    // CSV: RFC 4180 as Python reads it; the hostile agent neutralised.
    let csv = run(
        &config,
        &["alerts", "--format", "csv", "--event", "StopLogging"],
    );
    assert!(csv.status.success());
    let rows = python_csv(&csv.stdout);
    assert_eq!(rows.len(), 4, "a header and three alerts");
    let agent_col = rows[0]
        .iter()
        .position(|h| h == "user_agent")
        .expect("column");
    let agents: Vec<&str> = rows[1..].iter().map(|r| r[agent_col].as_str()).collect();
    assert!(
        agents.contains(&format!("'{HOSTILE_AGENT}").as_str()),
        "{agents:?}"
    );
    assert!(agents.iter().all(|a| !a.starts_with('=')));

    // Pages: one at a time, the position printed, no repeats.
    let first = run(&config, &["alerts", "--format", "json", "--limit", "1"]);
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    let token = stderr
        .lines()
        .find_map(|l| l.strip_prefix("more: --before "))
        .expect("the next page's position")
        .to_owned();
    let second = lines(&run(
        &config,
        &[
            "alerts", "--format", "json", "--limit", "1", "--before", &token,
        ],
    ));
    assert_eq!(second.len(), 1);
    assert_ne!(second[0]["id"], lines(&first)[0]["id"]);
    assert_eq!(second[0]["id"], all[1]["id"]);

    // OCSF from the command and from the file sink.
    let ocsf = lines(&run(&config, &["alerts", "--format", "ocsf"]));
    assert!(
        ocsf.iter()
            .all(|f| f["class_uid"] == 2004 && f["metadata"]["version"] == "1.1.0")
    );
    let sink_text = std::fs::read_to_string(dir.path().join("ocsf.jsonl")).expect("ocsf sink");
    let from_sink: Vec<Value> = sink_text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(from_sink.len(), delivered.len());
    assert!(from_sink.iter().all(|f| f["class_uid"] == 2004));

    // Time zones print their offset; a table escapes what it shows.
    let table = run(&config, &["alerts", "--tz", "+02:00"]);
    let table_text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success() && table_text.contains("+02:00"),
        "{table_text}"
    );

    // Refusals: exit 2, the flag named.
    for (args, flag) in [
        (vec!["alerts", "--since", "91d"], "--since"),
        (
            vec![
                "alerts",
                "--since",
                "2026-01-01T00:00:00Z",
                "--until",
                "2026-06-01T00:00:00Z",
            ],
            "--since",
        ),
        (vec!["alerts", "--level", "severe"], "--level"),
        (vec!["activity", "--format", "ocsf"], "--format"),
        (vec!["alerts", "--tz", "Mars/Olympus"], "--tz"),
    ] {
        let out = run(&config, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

/// `scan --store FILE` keeps what the hunt found: the same alerts as it
/// printed, every record's activity; `alerts`, `activity` read the file.
#[test]
fn a_scan_keeps_its_alerts_and_activity_in_a_store_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<Value> = common::stratus()
        .into_iter()
        .flat_map(|(_, records)| records)
        .collect();
    let input = dir.path().join("detonations.json");
    std::fs::write(&input, json!({ "Records": records }).to_string()).expect("write");
    let store = dir.path().join("hunt.db");
    let scan = emulators::trailwatch(&[
        "scan",
        "--format",
        "jsonl",
        "--store",
        store.to_str().expect("utf-8"),
        input.to_str().expect("utf-8"),
    ])
    .output()
    .expect("scan");
    let printed = lines(&scan);
    assert!(!printed.is_empty());
    let ids = |alerts: &[Value]| {
        let mut ids: Vec<String> = alerts
            .iter()
            .map(|a| a["id"].as_str().expect("id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    // The detonations' times span years: ask every 90 days in turn.
    let mut stored = Vec::new();
    let mut activity = 0;
    let mut from = time::macros::datetime!(2015-01-01 00:00 UTC);
    let end = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    while from < end {
        let until = from + time::Duration::days(90);
        let fmt = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .expect("time")
        };
        let window = |what: &str| {
            lines(
                &emulators::trailwatch(&[
                    what,
                    "--store",
                    store.to_str().expect("utf-8"),
                    "--format",
                    "json",
                    "--since",
                    &fmt(from),
                    "--until",
                    &fmt(until - time::Duration::seconds(1)),
                    "--limit",
                    "10000",
                ])
                .output()
                .expect("lookup"),
            )
        };
        stored.extend(window("alerts"));
        activity += window("activity").len();
        from = until;
    }
    assert_eq!(
        ids(&stored),
        ids(&printed),
        "the store holds what the scan printed"
    );
    assert_eq!(activity, records.len(), "a row per record read");
}
