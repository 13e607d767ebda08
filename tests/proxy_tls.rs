//! Proxies and private CAs end to end: `once` with `HTTPS_PROXY` set reads
//! LocalStack's HTTPS endpoint (its self-signed certificate trusted through
//! `AWS_CA_BUNDLE`) and delivers to a webhook behind TLS with a test CA (the
//! sink's `ca_file`), both through a CONNECT proxy on loopback that records
//! what it was asked for. Without the CA file the webhook is refused.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::emulators;
use serde_json::json;

const BUCKET: &str = "tw-proxy-logs";

struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a helper script that writes its port to `port_file`.
fn helper(script: &str, args: &[&str], port_file: &Path) -> (Helper, u16) {
    let child = Command::new("python3")
        .arg(emulators::repo().join("tests/support").join(script))
        .args(args)
        .arg("--port-file")
        .arg(port_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start helper");
    let child = Helper(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(port) = std::fs::read_to_string(port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            return (child, port);
        }
        assert!(Instant::now() < deadline, "{script} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a certificate it signs for `sink.test`: (ca.pem, cert, key).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=trailwatch test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=sink.test",
            "-keyout",
            "sink.key",
            "-out",
            "sink.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:sink.test\n").expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "sink.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "sink.pem",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("sink.pem"),
        dir.join("sink.key"),
    )
}

/// LocalStack's own (self-signed) certificate.
fn localstack_cert(dir: &Path) -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import ssl; print(ssl.get_server_certificate(('127.0.0.1', 4566)))",
        ])
        .output()
        .expect("python3");
    assert!(out.status.success(), "LocalStack serves no TLS on 4566");
    let path = dir.join("localstack.pem");
    std::fs::write(&path, &out.stdout).expect("write");
    path
}

async fn upload(prefix: &str) {
    let s3 = emulators::s3().await;
    let _ = s3.create_bucket().bucket(BUCKET).send().await;
    let (_, records) = common::stratus()
        .into_iter()
        .find(|(n, _)| n == "aws.defense-evasion.cloudtrail-stop")
        .expect("detonation");
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let key = format!(
        "{prefix}/AWSLogs/111122223333/CloudTrail/us-east-1/{:04}/{:02}/{:02}/111122223333_CloudTrail_us-east-1_{}_p.json.gz",
        t.year(),
        t.month() as u8,
        t.day(),
        trailwatch::aws::keys::key_time(t)
    );
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&serde_json::to_vec(&json!({ "Records": records })).expect("JSON"))
        .expect("gzip");
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(enc.finish().expect("gzip")))
        .send()
        .await
        .expect("upload");
}

fn config(dir: &Path, prefix: &str, sink_port: u16, ca_file: Option<&Path>) -> PathBuf {
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\n\
             endpoint_url = \"https://localhost.localstack.cloud:4566\"\n\
             [discovery]\nenabled = false\n[[trails]]\nbucket = \"{BUCKET}\"\n\
             prefix = \"{prefix}\"\nregion = \"us-east-1\"\n[crawl]\nstart_from = \"1h\"\n\
             [[sinks]]\ntype = \"webhook\"\nurl = \"https://sink.test:{sink_port}/hook\"\n{ca}"
        ),
    )
    .expect("config");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_calls_and_sinks_go_through_the_proxy_and_trust_private_cas() {
    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = test_ca(dir.path());
    let receiver_log = dir.path().join("received.jsonl");
    let (_receiver, sink_port) = helper(
        "tls_receiver.py",
        &[
            "--cert",
            cert.to_str().expect("utf-8"),
            "--key",
            key.to_str().expect("utf-8"),
            "--log",
            receiver_log.to_str().expect("utf-8"),
        ],
        &dir.path().join("receiver.port"),
    );
    let proxy_log = dir.path().join("proxy.log");
    let (_proxy, proxy_port) = helper(
        "connect_proxy.py",
        &[
            "--log",
            proxy_log.to_str().expect("utf-8"),
            "--map",
            "sink.test=127.0.0.1",
            "--map",
            "localhost.localstack.cloud=127.0.0.1",
        ],
        &dir.path().join("proxy.port"),
    );
    let bundle = localstack_cert(dir.path());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("run-{nanos}");
    upload(&prefix).await;

    let run = |work: &Path, ca_file: Option<&Path>| {
        let cfg = config(work, &prefix, sink_port, ca_file);
        emulators::trailwatch(&["once", "--config", cfg.to_str().expect("utf-8")])
            .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))
            .env("AWS_CA_BUNDLE", &bundle)
            .output()
            .expect("run once")
    };
    // Without the sink's CA: the crawl works, the webhook is refused.
    let untrusted = tempfile::tempdir().expect("tempdir");
    let out = run(untrusted.path(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 objects processed"), "{stderr}");
    assert!(
        std::fs::read_to_string(&receiver_log)
            .unwrap_or_default()
            .is_empty(),
        "nothing delivered to a certificate the sink does not trust"
    );
    // With it: delivered.
    let trusted = tempfile::tempdir().expect("tempdir");
    let out = run(trusted.path(), Some(&ca));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let received = std::fs::read_to_string(&receiver_log).unwrap_or_default();
    assert!(
        received.contains("aws-cloudtrail-stop-logging"),
        "the webhook got the alert: {received}\n{stderr}"
    );
    let targets = std::fs::read_to_string(&proxy_log).expect("proxy log");
    assert!(
        targets.contains("CONNECT localhost.localstack.cloud:4566"),
        "{targets}"
    );
    assert!(
        targets.contains(&format!("CONNECT sink.test:{sink_port}")),
        "{targets}"
    );
}
