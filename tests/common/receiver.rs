//! The test receiver (tests/support/receiver.py): a stand-in for Datadog's
//! Events API and for webhooks, with scripted faults and a record of every
//! request, validated with Datadog's official client models.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Receiver {
    child: Child,
    pub url: String,
    control: String,
}

fn python() -> std::path::PathBuf {
    let p = super::emulators::repo().join(".venv-receiver/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/receiver-venv.sh (make test does)",
        p.display()
    );
    p
}

fn curl(args: &[&str]) -> Value {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

impl Receiver {
    /// Starts the receiver; `api_key_sha256` and `webhook_secret` turn on
    /// the checks.
    pub fn start(
        dir: &Path,
        api_key_sha256: Option<&str>,
        webhook_secret: Option<&Path>,
    ) -> Receiver {
        let port_file = dir.join("receiver.port");
        let control_file = dir.join("receiver.control");
        let mut cmd = Command::new(python());
        cmd.arg(super::emulators::repo().join("tests/support/receiver.py"))
            .args(["--listen", "127.0.0.1:0", "--port-file"])
            .arg(&port_file)
            .arg("--control-port-file")
            .arg(&control_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(h) = api_key_sha256 {
            cmd.args(["--api-key-sha256", h]);
        }
        if let Some(s) = webhook_secret {
            cmd.arg("--webhook-secret-file").arg(s);
        }
        let mut receiver = Receiver {
            child: cmd.spawn().expect("start the receiver"),
            url: String::new(),
            control: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let read = |f: &Path| {
            std::fs::read_to_string(f)
                .ok()
                .filter(|p| !p.trim().is_empty())
        };
        loop {
            if let (Some(port), Some(control)) = (read(&port_file), read(&control_file)) {
                receiver.url = format!("http://127.0.0.1:{}", port.trim());
                receiver.control = format!("http://127.0.0.1:{}", control.trim());
                return receiver;
            }
            // (Dropping the receiver on this panic kills and reaps it.)
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn configure(&self, config: &Value) {
        curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data",
            &config.to_string(),
            &format!("{}/__receiver/config", self.control),
        ]);
    }

    pub fn requests(&self) -> Vec<Value> {
        curl(&[&format!("{}/__receiver/requests", self.control)])["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn accepted(&self) -> Value {
        curl(&[&format!("{}/__receiver/accepted", self.control)])
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
