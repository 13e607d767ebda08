//! The `trailwatch` binary end to end: `scan` over trees of files, `validate`
//! over configs and rules, `rules list`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

fn run(args: &[&str]) -> Output {
    Command::new(common::trailwatch())
        .args(args)
        .output()
        .expect("run trailwatch")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn envelope(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "Records": records })).expect("JSON")
}

fn stratus(name: &str) -> Vec<Value> {
    common::stratus()
        .into_iter()
        .find(|(n, _)| n == name)
        .expect("detonation")
        .1
}

fn key_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21");
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// `count` copies of `template`, each with the event id (and, when given,
/// the event time) that `fill` gives for its position.
fn copies(
    template: &Value,
    count: usize,
    fill: impl Fn(usize) -> (String, Option<String>),
) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let (id, time) = fill(i);
            let mut r = template.clone();
            r["eventID"] = json!(id);
            if let Some(time) = time {
                r["eventTime"] = json!(time);
            }
            r
        })
        .collect()
}

/// Writes `records` as a gzipped CloudTrail object of key time `stamp`.
fn write_object(dir: &Path, stamp: &str, records: &[Value]) {
    let name = format!("111122223333_CloudTrail_us-east-1_{stamp}_x.json.gz");
    std::fs::write(dir.join(name), gzip(&envelope(records))).expect("write");
}

#[test]
fn scan_reports_a_corrupt_object_and_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = key_dir(tmp.path());
    // Object 1: many benign records, then StopLogging, then more; truncated
    // after the StopLogging record so that it is decoded before the fault.
    let mut records: Vec<Value> = (0..3000)
        .map(|i| {
            json!({"eventID": format!("benign-{i}"), "eventName": "DescribeInstances",
            "eventSource": "ec2.amazonaws.com", "pad": "x".repeat(i % 50)})
        })
        .collect();
    records.insert(
        10,
        stratus("aws.defense-evasion.cloudtrail-stop")[0].clone(),
    );
    let whole = gzip(&envelope(&records));
    let name_a = "111122223333_CloudTrail_us-east-1_20261121T1000Z_aaaaaaaaaaaaaaaa.json.gz";
    std::fs::write(dir.join(name_a), &whole[..whole.len() * 2 / 3]).expect("write");
    // Object 2: a DeleteTrail detonation, intact.
    let name_b = "111122223333_CloudTrail_us-east-1_20261121T1005Z_bbbbbbbbbbbbbbbb.json.gz";
    std::fs::write(
        dir.join(name_b),
        gzip(&envelope(&stratus("aws.defense-evasion.cloudtrail-delete"))),
    )
    .expect("write");
    // A digest file, which must not be read as records.
    let digest = tmp
        .path()
        .join("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/21");
    std::fs::create_dir_all(&digest).expect("mkdir");
    std::fs::write(
        digest
            .join("111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20261121T100000Z.json.gz"),
        gzip(&envelope(&stratus("aws.defense-evasion.cloudtrail-stop"))),
    )
    .expect("write");

    // Every match an alert of its own, in input order (no grouping).
    let out = run(&[
        "scan",
        "--no-grouping",
        "--format",
        "jsonl",
        tmp.path().to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(name_a),
        "the failed object is named: {stderr}"
    );
    assert!(stderr.contains("byte"), "with an offset: {stderr}");
    assert!(stderr.contains("scanned 2 objects (1 failed)"), "{stderr}");
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    // (The detonations also announce their tool in the user agent.)
    let rules: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a["rule"]["id"].as_str())
        .filter(|id| *id != "aws-attacker-tool-user-agent")
        .collect();
    assert_eq!(
        rules,
        ["aws-cloudtrail-stop-logging", "aws-cloudtrail-delete-trail"]
    );
}

#[test]
fn scan_jsonl_follows_the_alert_contract() {
    let out = run(&[
        "scan",
        "--format",
        "jsonl",
        common::datasets()
            .join("stratus-detonations/aws.defense-evasion.cloudtrail-stop.json")
            .to_str()
            .expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let lines = String::from_utf8_lossy(&out.stdout);
    let alerts: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON alert"))
        .collect();
    let alert = alerts
        .iter()
        .find(|a| a["rule"]["id"] == "aws-cloudtrail-stop-logging")
        .expect("the stop-logging alert");
    let event_id = alert["event"]["id"].as_str().expect("event id");
    let id = alert["id"].as_str().expect("id");
    assert_eq!(
        id,
        trailwatch::alert::alert_id("aws-cloudtrail-stop-logging", event_id)
    );
    assert_eq!(alert["rule"]["severity"], "high");
    assert_eq!(alert["rule"]["source"], "builtin");
    assert_eq!(alert["event"]["name"], "StopLogging");
    assert_eq!(alert["event"]["source"], "cloudtrail.amazonaws.com");
    assert_eq!(alert["event"]["principal_type"], "IAMUser");
    assert!(alert["event"]["error_code"].is_null());
    assert!(alert["object"].is_null());
    assert_eq!(alert["count"], 1);
    assert_eq!(alert["related_event_ids"], json!([]));
    for key in [
        "account_id",
        "region",
        "principal",
        "source_ip",
        "user_agent",
        "time",
    ] {
        assert!(alert["event"][key].is_string(), "event.{key}");
    }
    let tags = alert["rule"]["tags"].as_array().expect("tags");
    assert!(tags.contains(&json!("attack.t1562.008")));
}

#[test]
fn scan_raises_an_alert_for_each_trail_tampering_technique() {
    let out = run(&[
        "scan",
        "--format",
        "table",
        common::datasets()
            .join("stratus-detonations")
            .to_str()
            .expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("EVENT TIME"), "{table}");
    for rule in [
        "aws-cloudtrail-stop-logging",
        "aws-cloudtrail-delete-trail",
        "aws-cloudtrail-event-selectors-reduced",
    ] {
        assert!(table.contains(rule), "{rule} missing from\n{table}");
    }
}

#[test]
fn scan_enforces_the_decompressed_cap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("big.json.gz");
    let records: Vec<Value> = (0..2000)
        .map(|i| json!({"eventID": i, "p": "y".repeat(100)}))
        .collect();
    std::fs::write(&path, gzip(&envelope(&records))).expect("write");
    let out = run(&[
        "scan",
        "--max-decompressed-bytes",
        "64KiB",
        path.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exceeds the cap of 65536 bytes"),
        "{stderr}"
    );
}

#[test]
fn scan_of_a_missing_path_fails() {
    let out = run(&["scan", "/nonexistent/trailwatch-input"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file or directory"));
}

#[test]
fn validate_reports_config_errors_with_their_field_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("trailwatch.toml");
    std::fs::write(
        &config,
        "[[sinks]]\ntype = \"file\"\npath = \"a.jsonl\"\n[[sinks]]\ntype = \"datadog\"\napi_key_file = \"missing-key\"\n",
    )
    .expect("write");
    let out = run(&["validate", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("config error: sinks[1].api_key_file: "),
        "{stderr}"
    );
}

#[test]
fn validate_reports_rule_errors_and_strict_fails_on_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::write(
        rules.join("broken.yml"),
        "title: Broken\nid: broken\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventName: X\n  condition: sel and missing\n",
    )
    .expect("write");
    std::fs::copy(
        common::sigma_dir().join("aws_cloudtrail_disable_logging.yml"),
        rules.join("ok.yml"),
    )
    .expect("copy");
    let config = tmp.path().join("trailwatch.toml");
    std::fs::write(&config, "[rules]\npaths = [\"rules\"]\n").expect("write");
    let path = config.to_str().expect("utf-8");

    let out = run(&["validate", "--config", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("rule error: "), "{stderr}");
    assert!(stderr.contains("broken.yml:"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 failed"));

    let out = run(&["validate", "--strict", "--config", path]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_accepts_the_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trailwatch.toml");
    let out = Command::new(common::trailwatch())
        .args([
            "validate",
            "--strict",
            "--config",
            example.to_str().expect("utf-8"),
        ])
        .env("TRAILWATCH_EXAMPLE_DD_API_KEY", "example-secret-value")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("example-secret-value") && !stderr.contains("example-secret-value"));
}

#[test]
fn rules_list_shows_builtin_and_user_rules() {
    let out = run(&[
        "rules",
        "list",
        "--rules",
        common::sigma_dir().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("aws-cloudtrail-stop-logging") && text.contains("builtin"));
    assert!(text.contains("aws_cloudtrail_disable_logging.yml"));
    // The checks that are no Sigma rule (trail status, blind spots) too.
    let checks = trailwatch::pipeline::blind_spots::CHECKS;
    for (id, _, _) in checks {
        assert!(
            text.lines()
                .any(|l| l.starts_with(id) && l.ends_with("check")),
            "{id}"
        );
    }
    assert_eq!(
        text.lines().count(),
        1 + 57 + trailwatch::rules::builtin_rules().rules.len() + checks.len()
    );
}

#[test]
fn rules_test_runs_examples_and_fails_on_a_wrong_one() {
    let out = run(&["rules", "test"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("mine.yml"),
        "title: Mine\nid: mine\nlogsource:\n  product: aws\n  service: cloudtrail\n\
         detection:\n  sel:\n    eventName: DeleteBucket\n  condition: sel\nlevel: low\n\
         rsigma.exemplars:\n  - name: right\n    expect: match\n    event: {eventName: DeleteBucket}\n\
         \x20 - name: wrong\n    expect: match\n    event: {eventName: CreateBucket}\n",
    )
    .expect("write");
    let out = run(&[
        "rules",
        "test",
        "--no-builtin",
        "--rules",
        tmp.path().to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL mine") && stdout.contains("'wrong'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 examples of 1 rules: 1 passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn rules_test_writes_junit_that_parses_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("mine.yml"),
        "title: Mine\nid: mine\nlogsource:\n  product: aws\n  service: cloudtrail\n\
         detection:\n  sel:\n    eventName: DeleteBucket\n  condition: sel\nlevel: low\n\
         rsigma.exemplars:\n  - name: right <&>\n    expect: match\n    event: {eventName: DeleteBucket}\n\
         \x20 - name: wrong\n    expect: match\n    event: {eventName: CreateBucket}\n",
    )
    .expect("write");
    let junit = tmp.path().join("examples.xml");
    let out = run(&[
        "rules",
        "test",
        "--no-builtin",
        "--rules",
        tmp.path().to_str().expect("utf-8"),
        "--junit",
        junit.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // Parsed by another implementation: Python's XML parser.
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             s = E.parse(sys.argv[1]).getroot().find('testsuite')\n\
             print(s.get('tests'), s.get('failures'))\n\
             for c in s.iter('testcase'):\n\
             \x20   print(c.get('classname'), c.get('name'), c.find('failure') is not None)",
        ])
        .arg(&junit)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&parsed.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["2 1", "mine right <&> False", "mine wrong True"],
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
}

#[test]
fn scan_fail_on_exits_3_when_an_alert_reaches_the_level() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = key_dir(tmp.path());
    let stop = stratus("aws.defense-evasion.cloudtrail-stop");
    std::fs::write(dir.join("a.json.gz"), gzip(&envelope(&stop))).expect("write");
    let root = tmp.path().to_str().expect("utf-8");
    let code = |level: &str| {
        run(&["scan", "--format", "jsonl", "--fail-on", level, root])
            .status
            .code()
    };
    // StopLogging is high: critical is not reached, high and below are.
    assert_eq!(code("critical"), Some(0));
    assert_eq!(code("high"), Some(3));
    assert_eq!(code("low"), Some(3));
    assert_eq!(
        run(&["scan", "--fail-on", "severe", root]).status.code(),
        Some(2),
        "an unknown level is a usage error"
    );
    // An input that could not be read wins: exit 1.
    std::fs::write(dir.join("b.json.gz"), b"not gzip").expect("write");
    assert_eq!(code("low"), Some(1));
}

#[test]
fn scan_output_is_in_input_order_whatever_the_threads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = key_dir(tmp.path());
    let stop = stratus("aws.defense-evasion.cloudtrail-stop")[0].clone();
    // Big files (more than one output chunk) among small ones, so that
    // workers finish out of order and the head file streams in chunks.
    for file in 0..24 {
        let count = if file % 5 == 0 { 600 } else { 1 + file % 3 };
        let records = copies(&stop, count, |i| (format!("f{file:02}-{i:05}"), None));
        write_object(&dir, &format!("20261121T00{file:02}Z"), &records);
    }
    let root = tmp.path().to_str().expect("utf-8");
    let ids_of = |threads: &str| -> Vec<String> {
        let out = run(&[
            "scan",
            "--no-grouping",
            "--format",
            "jsonl",
            "--threads",
            threads,
            root,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let alert: Value = serde_json::from_str(line).expect("alert JSON");
                alert["event"]["id"].as_str().expect("event id").to_owned()
            })
            .collect()
    };
    let one = ids_of("1");
    assert!(one.len() >= 5 * 600, "{} alerts", one.len());
    assert!(one.is_sorted(), "alerts out of input order");
    assert_eq!(ids_of("4"), one);
}

#[test]
fn scan_groups_repeats_into_one_burst_whatever_the_threads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = key_dir(tmp.path());
    let stop = stratus("aws.defense-evasion.cloudtrail-stop")[0].clone();
    // 12 files of StopLogging calls by one principal, minutes apart.
    for file in 0..12 {
        let records = copies(&stop, 20, |i| {
            let time = format!("2026-11-21T10:{file:02}:{i:02}Z");
            (format!("g{file:02}-{i:03}"), Some(time))
        });
        write_object(&dir, &format!("20261121T10{file:02}Z"), &records);
    }
    let root = tmp.path().to_str().expect("utf-8");
    let alerts = |threads: &str| -> Vec<Value> {
        let out = run(&["scan", "--format", "jsonl", "--threads", threads, root]);
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("alert JSON"))
            .filter(|a| a["rule"]["id"] == "aws-cloudtrail-stop-logging")
            .map(|mut a| {
                // When it ran is the one field that may differ.
                a["detected_at"] = Value::Null;
                a
            })
            .collect()
    };
    let one = alerts("1");
    let states: Vec<(&str, u64)> = one
        .iter()
        .map(|a| {
            (
                a["burst"]["state"].as_str().unwrap_or(""),
                a["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(states, [("open", 1), ("closed", 240)]);
    assert_eq!(one[0]["event"]["id"], "g00-000", "the earliest opens it");
    assert_eq!(one[1]["burst"]["id"], one[0]["id"]);
    assert_eq!(alerts("4"), one, "the same whatever the threads");
}

#[test]
fn scan_correlations_are_the_same_whatever_the_threads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = key_dir(tmp.path());
    // 40 files of secret reads by one role, their times out of file order,
    // some files padded with other calls so that threads finish them at
    // different times: a correlation fed in finishing order would open its
    // windows at different events from run to run.
    for file in 0..40u32 {
        let records = common::secret_reads(file);
        let name = format!("111122223333_CloudTrail_us-east-1_20261121T10{file:02}Z_x.json.gz");
        std::fs::write(dir.join(name), gzip(&envelope(&records))).expect("write");
    }
    let root = tmp.path().to_str().expect("utf-8");
    let correlated = |threads: &str| -> Vec<String> {
        let out = run(&["scan", "--format", "jsonl", "--threads", threads, root]);
        assert_eq!(out.status.code(), Some(0));
        let alerts = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("alert JSON"))
            .collect::<Vec<_>>();
        common::of_rule_sorted(alerts, "aws-secrets-mass-read-any")
    };
    let one = correlated("1");
    assert!(!one.is_empty(), "the correlation fires");
    for _ in 0..3 {
        assert_eq!(correlated("4"), one, "the same whatever the threads");
    }
}

#[test]
fn scan_follows_links_to_directories_and_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let real = tempfile::tempdir().expect("tempdir");
    let dir = key_dir(real.path());
    let stop = stratus("aws.defense-evasion.cloudtrail-stop");
    std::fs::write(dir.join("a.json.gz"), gzip(&envelope(&stop))).expect("write");
    std::os::unix::fs::symlink(real.path().join("AWSLogs"), tmp.path().join("linked"))
        .expect("link a directory");
    std::os::unix::fs::symlink(dir.join("a.json.gz"), tmp.path().join("b.json.gz"))
        .expect("link a file");
    let out = run(&[
        "scan",
        "--format",
        "jsonl",
        tmp.path().to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scanned 2 objects (0 failed)"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("aws-cloudtrail-stop-logging").count(),
        2,
        "{stdout}"
    );
}
