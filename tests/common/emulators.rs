//! The emulators started by `localstack/up.sh` (LocalStack for S3, moto for
//! CloudTrail), the seeded world, the fault proxy, and running `trailwatch`
//! against them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const LOCALSTACK: &str = "http://127.0.0.1:4566";
pub const MOTO: &str = "http://127.0.0.1:5000";

/// Tests that reseed the world run one at a time.
pub fn world_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn answers(url: &str) -> bool {
    Command::new("curl")
        .args(["-fs", "-o", "/dev/null", "--max-time", "5", url])
        .status()
        .is_ok_and(|s| s.success())
}

/// Panics with a useful message unless both emulators answer.
pub fn require_emulators() {
    assert!(
        answers(&format!("{LOCALSTACK}/_localstack/health"))
            && answers(&format!("{MOTO}/moto-api/")),
        "the emulators are not running: start them with localstack/up.sh (make test does)"
    );
}

/// Reseeds the world and returns its manifest.
pub fn seed(dir: &Path) -> Value {
    require_emulators();
    let manifest = dir.join("manifest.json");
    let out = Command::new(repo().join("localstack/seed.sh"))
        .arg("--manifest")
        .arg(&manifest)
        .output()
        .expect("run localstack/seed.sh");
    assert!(
        out.status.success(),
        "seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&manifest).expect("manifest")).expect("JSON")
}

/// A config for the seeded world: state and alerts file under `dir`.
pub fn config(dir: &Path, s3_endpoint: &str, extra: &str) -> PathBuf {
    let path = dir.join("trailwatch.toml");
    let text = format!(
        r#"[state]
path = "state.db"
[aws]
region = "us-east-1"
endpoint_url = "{s3_endpoint}"
cloudtrail_endpoint_url = "{MOTO}"
[discovery]
regions = ["us-east-1"]
# Only the seeded world's trails: the emulators may hold others (a user's
# own experiments, another test's), which this test must not count.
trails = ["main-trail", "org-trail", "old-trail"]
[crawl]
start_from = "24h"
concurrency = 8
[log]
level = "info"
[[sinks]]
type = "file"
path = "alerts.jsonl"
fsync = "always"
{extra}
"#
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// `trailwatch <args>` with the emulators' dummy credentials and nothing from
/// the developer's own AWS set-up.
pub fn trailwatch(args: &[&str]) -> Command {
    trailwatch_as(args, "test", "test")
}

/// `trailwatch <args>` with these access keys and nothing else of AWS's.
pub fn trailwatch_as(args: &[&str], key: &str, secret: &str) -> Command {
    let mut cmd = Command::new(super::trailwatch());
    cmd.args(args)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT_URL_CLOUDTRAIL")
        .env_remove("RUST_LOG");
    cmd
}

pub fn once(config: &Path) -> Output {
    trailwatch(&["once", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("run trailwatch once")
}

/// The alerts file as JSON values, in order.
pub fn alerts(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("an alert per line"))
        .collect()
}

/// Every log object key of the crawled buckets: (bucket, key).
pub fn crawled_objects(manifest: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (bucket, info) in manifest["buckets"].as_object().expect("buckets") {
        if info["crawl"].as_bool() != Some(true) {
            continue;
        }
        for o in info["objects"].as_array().expect("objects") {
            out.push((bucket.clone(), o["key"].as_str().expect("key").to_owned()));
        }
    }
    out
}

/// The fault proxy (tests/support/fault_proxy.py) in front of LocalStack.
pub struct Proxy {
    child: Child,
    pub url: String,
}

impl Proxy {
    pub fn start(dir: &Path) -> Proxy {
        Proxy::start_for(dir, LOCALSTACK)
    }

    /// A fault proxy in front of `upstream`.
    pub fn start_for(dir: &Path, upstream: &str) -> Proxy {
        let port_file = dir.join("proxy.port");
        let child = Command::new("python3")
            .arg(repo().join("tests/support/fault_proxy.py"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                upstream,
                "--port-file",
            ])
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fault proxy");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file)
                && !p.trim().is_empty()
            {
                break p.trim().to_owned();
            }
            assert!(Instant::now() < deadline, "the fault proxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn configure(&self, config: &Value) {
        let out = Command::new("curl")
            .args([
                "-fsS",
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "--data",
            ])
            .arg(config.to_string())
            .arg(format!("{}/__proxy/config", self.url))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn requests(&self, bucket: &str) -> Vec<Value> {
        let out = Command::new("curl")
            .args(["-fsS"])
            .arg(format!("{}/__proxy/requests?bucket={bucket}", self.url))
            .output()
            .expect("curl");
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["requests"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An S3 client for LocalStack (for uploads the tests make).
pub async fn s3() -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(LOCALSTACK)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Uploads `records` gzipped to `bucket` (created if need be) under the key
/// CloudTrail would give a log delivered at `t` for account 111122223333 in
/// us-east-1 below `prefix`; returns the key.
pub async fn put_log(
    bucket: &str,
    prefix: &str,
    t: time::OffsetDateTime,
    suffix: &str,
    records: &[Value],
) -> String {
    use std::io::Write;
    let s3 = s3().await;
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let key = format!(
        "{prefix}/AWSLogs/111122223333/CloudTrail/us-east-1/{:04}/{:02}/{:02}/111122223333_CloudTrail_us-east-1_{}_{suffix}.json.gz",
        t.year(),
        t.month() as u8,
        t.day(),
        trailwatch::aws::keys::key_time(t)
    );
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&serde_json::to_vec(&serde_json::json!({ "Records": records })).expect("JSON"))
        .expect("gzip");
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .body(aws_sdk_s3::primitives::ByteStream::from(
            enc.finish().expect("gzip"),
        ))
        .send()
        .await
        .expect("upload");
    key
}
