//! An AWS organisation in the Control Tower layout on an emulator with
//! three accounts and enforced roles (issue 21, item 5): a moto server of
//! its own on a free port, without `MOTO_ACCOUNT_ID` and with IAM enforced,
//! serving STS, Organizations, CloudTrail and S3 (through the fault proxy).
//! The management account holds the organisation and its trail, the log
//! archive the bucket, a member its own trail, one account nothing at all;
//! the daemon is a user in a fourth account allowed only to assume roles.
//! The roles' policies are the ones `trailwatch iam-policy` prints: a call
//! made through the wrong role gets a real 403, and a policy that misses a
//! call fails the test. The world is `tests/support/three_accounts.py`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::child::{KillOnDrop, free_port};
use common::emulators::{Proxy, repo};
use serde_json::{Value, json};

struct Moto {
    _child: KillOnDrop,
    url: String,
}

fn python() -> PathBuf {
    let p = repo().join("localstack/.venv-moto/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run localstack/up.sh --install-only",
        p.display()
    );
    p
}

fn start_moto() -> Moto {
    let port = free_port();
    let child = Command::new(python())
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .env_remove("MOTO_ACCOUNT_ID")
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Command::new("curl")
        .args(["-fsS", "-o", "/dev/null", &format!("{url}/moto-api/")])
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        assert!(Instant::now() < deadline, "moto did not start on {url}");
        std::thread::sleep(Duration::from_millis(200));
    }
    Moto {
        _child: KillOnDrop(child),
        url,
    }
}

fn world_script(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/support/three_accounts.py"))
        .args(args)
        .output()
        .expect("three_accounts.py");
    assert!(
        out.status.success(),
        "three_accounts.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Daemon<'a> {
    dir: &'a Path,
    config: PathBuf,
    world: &'a Value,
}

impl Daemon<'_> {
    /// `trailwatch <args>` as the daemon's user, nothing else of AWS's.
    fn run(&self, args: &[&str]) -> Output {
        let key = &self.world["daemon"];
        common::emulators::trailwatch_as(
            args,
            key["access_key_id"].as_str().expect("key"),
            key["secret_access_key"].as_str().expect("secret"),
        )
        .args(["--config", self.config.to_str().expect("utf-8")])
        .current_dir(self.dir)
        .output()
        .expect("run trailwatch")
    }

    /// One pass; its log.
    fn once(&self) -> String {
        let out = self.run(&["once"]);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{log}");
        log
    }

    fn alerts(&self) -> Vec<Value> {
        common::emulators::alerts(self.dir)
    }
}

fn of_rule<'a>(all: &'a [Value], rule: &str) -> Vec<&'a Value> {
    all.iter().filter(|a| a["rule"]["id"] == rule).collect()
}

fn title(a: &Value) -> &str {
    a["rule"]["title"].as_str().unwrap_or("")
}

/// moto matches a statement's resource only for S3 and `sts:AssumeRole`;
/// every other action is checked against `*`, so those statements are
/// widened to `*` here (the actions, the S3 resources and the roles stay
/// exactly as printed).
fn for_moto(policy: &Value) -> Value {
    let mut p = policy.clone();
    if let Some(statements) = p["Statement"].as_array_mut() {
        for s in statements {
            let actions: Vec<String> = match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(l) => l
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            if actions
                .iter()
                .all(|a| !a.starts_with("s3:") && !a.starts_with("sts:"))
            {
                s["Resource"] = json!("*");
            }
        }
    }
    p
}

#[test]
fn control_tower_layout_through_a_role_per_purpose() {
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = start_moto();
    let world: Value = serde_json::from_str(&world_script(&[&moto.url])).expect("world JSON");
    let proxy = Proxy::start_for(dir.path(), &moto.url);
    let accounts = &world["accounts"];
    let id = |k: &str| accounts[k].as_str().expect("account").to_owned();
    let (management, archive, workload, empty) = (
        id("management"),
        id("log_archive"),
        id("workload"),
        id("empty"),
    );
    let discovery_role = world["roles"]["discovery"].as_str().expect("role");
    let reader_role = world["roles"]["reader"].as_str().expect("role");
    let org_bucket = world["buckets"]["org"]["name"].as_str().expect("bucket");
    let org_prefix = world["buckets"]["org"]["prefix"].as_str().expect("prefix");
    let member_bucket = world["buckets"]["member"]["name"].as_str().expect("bucket");

    let config = dir.path().join("trailwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[state]\npath = \"state.db\"\n\
             [aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             [discovery]\nregions = [\"us-east-1\"]\n\
             [[discovery.accounts]]\nname = \"management\"\nrole_arn = \"{discovery_role}\"\n\
             [discovery.organization]\nmember_role_name = \"trailwatch-member\"\n\
             [[readers]]\nrole_arn = \"{reader_role}\"\nbuckets = [\"{org_bucket}\"]\n\
             [blind_spots]\nsilence_floor = \"75s\"\nsilence_ceiling = \"75s\"\nno_delivery_after = \"10m\"\n\
             [[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\n",
            proxy.url
        ),
    )
    .expect("config");
    let daemon = Daemon {
        dir: dir.path(),
        config,
        world: &world,
    };

    // The policies `iam-policy` prints become the roles' only policies.
    let printed = daemon.run(&["iam-policy"]);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let docs: Value = serde_json::from_slice(&printed.stdout).expect("iam-policy JSON");
    let docs = docs["roles"].as_array().expect("one document per role");
    let by_role: BTreeMap<&str, &Value> = docs
        .iter()
        .map(|d| (d["role"].as_str().unwrap_or(""), d))
        .collect();
    let purposes = |role: &str| by_role[role]["purposes"].clone();
    assert_eq!(
        purposes(discovery_role),
        json!(["discover", "organization"])
    );
    assert_eq!(purposes(reader_role), json!(["read"]));
    assert_eq!(
        purposes("arn:aws:iam::*:role/trailwatch-member"),
        json!(["discover", "read"])
    );
    assert_eq!(purposes("own identity"), json!(["assume roles"]));
    let mut roles = Vec::new();
    for (role, doc) in &by_role {
        let policy = for_moto(&doc["policy"]);
        if *role == "own identity" {
            continue;
        }
        let (account, name) = role
            .split_once(":role/")
            .map(|(head, name)| (head.rsplit(':').next().unwrap_or(""), name))
            .expect("a role ARN");
        let targets: Vec<String> = if account == "*" {
            world["roles"]["member"]
                .as_object()
                .expect("member roles")
                .keys()
                .cloned()
                .collect()
        } else {
            vec![account.to_owned()]
        };
        for a in targets {
            roles.push(json!({"account": a, "name": name, "policy": policy}));
        }
        assert!(doc["trust_policy"].to_string().contains("sts:AssumeRole"));
    }
    let apply = dir.path().join("policies.json");
    std::fs::write(
        &apply,
        json!({"roles": roles, "user": for_moto(&by_role["own identity"]["policy"])}).to_string(),
    )
    .expect("policies");
    world_script(&[&moto.url, "--apply", apply.to_str().expect("utf-8")]);

    // Discovery through one role, reading through another, the member's
    // trail through the member role.
    let trails = daemon.run(&["trails"]);
    let table = String::from_utf8_lossy(&trails.stdout);
    assert!(
        table.contains(&format!(
            "discovered by: {discovery_role}; read by: {reader_role}"
        )),
        "{table}\n{}",
        String::from_utf8_lossy(&trails.stderr)
    );
    let member_role = format!("arn:aws:iam::{workload}:role/trailwatch-member");
    assert!(
        table.contains(&format!(
            "discovered by: {member_role}; read by: {member_role}"
        )),
        "{table}"
    );

    // What the pass asks of each bucket (the commands before assumed
    // their roles with sessions of their own).
    let asked_before = |bucket: &str| proxy.requests(bucket).len();
    let before = (asked_before(org_bucket), asked_before(member_bucket));
    let log = daemon.once();
    for refused in ["AccessDenied", "403", "not authorized"] {
        assert!(
            !log.contains(refused),
            "a call went through the wrong role:\n{log}"
        );
    }
    // Each bucket was read under one identity of its own, neither the
    // daemon's nor the other bucket's (the proxy saw the signing keys).
    let daemon_key = world["daemon"]["access_key_id"].as_str().expect("key");
    let keys_of = |bucket: &str, skip: usize| {
        let mut keys: Vec<String> = proxy
            .requests(bucket)
            .iter()
            .skip(skip)
            .filter_map(|r| r["access_key"].as_str().map(str::to_owned))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let (archive_keys, member_keys) = (
        keys_of(org_bucket, before.0),
        keys_of(member_bucket, before.1),
    );
    assert_eq!(archive_keys.len(), 1, "{archive_keys:?}");
    assert_eq!(member_keys.len(), 1, "{member_keys:?}");
    assert_ne!(archive_keys, member_keys);
    assert!(
        ![&archive_keys, &member_keys]
            .iter()
            .any(|k| k[0] == daemon_key)
    );

    // `scan` of the archive by URL reads it through its reader too.
    let scanned = daemon.run(&["scan", &format!("s3://{org_bucket}/")]);
    let found = String::from_utf8_lossy(&scanned.stdout);
    assert!(
        scanned.status.success() && found.contains("aws-cloudtrail-stop-logging"),
        "{found}\n{}",
        String::from_utf8_lossy(&scanned.stderr)
    );

    let all = daemon.alerts();
    let stops = of_rule(&all, "aws-cloudtrail-stop-logging");
    let mut stopped: Vec<&str> = stops
        .iter()
        .filter_map(|a| a["event"]["account_id"].as_str())
        .collect();
    stopped.sort();
    let mut want = vec![management.as_str(), workload.as_str()];
    want.sort();
    // The member's record, read through both trails, is one alert.
    assert_eq!(stopped, want, "{all:#?}");
    let of = |account: &str| {
        stops
            .iter()
            .find(|a| a["event"]["account_id"] == account)
            .copied()
            .expect("alert")
    };
    assert_eq!(of(&workload)["event"]["account_name"], "workload-prod");
    assert_eq!(of(&workload)["event"]["account_ou_path"], "Workloads/Prod");
    assert_eq!(of(&management)["event"]["account_ou_path"], "");

    // The accounts nothing arrives from: the log archive and the empty one.
    let rule = "trailwatch-blind-account-no-delivery";
    let mut silent: Vec<String> = of_rule(&all, rule)
        .iter()
        .filter_map(|a| a["event"]["account_id"].as_str().map(str::to_owned))
        .collect();
    silent.sort();
    let mut want = vec![archive.clone(), empty.clone()];
    want.sort();
    assert_eq!(silent, want, "{all:#?}");

    // Every cursor goes quiet past its allowed gap: one alert each.
    let stamp = world["stamp"].as_str().expect("stamp");
    let stamped = time::PrimitiveDateTime::parse(
        stamp,
        time::macros::format_description!("[year][month][day]T[hour][minute]Z"),
    )
    .expect("stamp")
    .assume_utc();
    let quiet_at = stamped + time::Duration::seconds(80);
    let wait = quiet_at - time::OffsetDateTime::now_utc();
    if wait.is_positive() {
        std::thread::sleep(wait.unsigned_abs());
    }
    daemon.once();
    daemon.once();
    let all = daemon.alerts();
    let quiet = "trailwatch-blind-cursor-silent";
    // The management and the member account in the archive, the member's own.
    let raised = of_rule(&all, quiet);
    let mut accounts_quiet: Vec<&str> = raised
        .iter()
        .filter_map(|a| a["event"]["account_id"].as_str())
        .collect();
    accounts_quiet.sort();
    let mut want = vec![management.as_str(), workload.as_str(), workload.as_str()];
    want.sort();
    assert_eq!(accounts_quiet, want, "{all:#?}");
    let mut ids: Vec<&str> = raised.iter().filter_map(|a| a["id"].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one alert per cursor");
    assert_eq!(of_rule(&all, quiet).len(), 3, "{all:#?}");

    // Fixed: the member delivers again, the empty account gets an object.
    world_script(&[
        &moto.url,
        "--put-log",
        member_bucket,
        "AWSLogs/",
        &workload,
        "b2",
    ]);
    world_script(&[&moto.url, "--put-log", org_bucket, org_prefix, &empty, "e1"]);
    daemon.once();
    daemon.once();
    let all = daemon.alerts();
    let quiet_alerts = of_rule(&all, quiet);
    let again: Vec<&&Value> = quiet_alerts
        .iter()
        .filter(|a| title(a).starts_with("Delivering again"))
        .collect();
    assert_eq!(again.len(), 1, "{quiet_alerts:#?}");
    assert_eq!(again[0]["event"]["account_id"], workload.as_str());
    assert_eq!(
        quiet_alerts.len(),
        4,
        "no second alert for a silence still open"
    );
    let accounts_alerts = of_rule(&all, rule);
    let back: Vec<&&Value> = accounts_alerts
        .iter()
        .filter(|a| title(a).starts_with("Logs arrive again"))
        .collect();
    assert_eq!(back.len(), 1, "{accounts_alerts:#?}");
    assert_eq!(back[0]["event"]["account_id"], empty.as_str());
    assert_eq!(accounts_alerts.len(), 3);

    // The log archive's key refuses decryption, then the member's bucket
    // refuses the member role: each its own blind spot.
    proxy.configure(&json!({"buckets": {org_bucket: {"kms_denied": true}, member_bucket: {"access_denied": true}}}));
    world_script(&[
        &moto.url,
        "--put-log",
        org_bucket,
        org_prefix,
        &management,
        "m2",
    ]);
    daemon.once();
    let all = daemon.alerts();
    assert_eq!(
        of_rule(&all, "trailwatch-blind-kms-denied").len(),
        1,
        "{all:#?}"
    );
    assert_eq!(
        of_rule(&all, "trailwatch-blind-bucket-unreadable").len(),
        1,
        "{all:#?}"
    );
}
