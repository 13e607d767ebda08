//! `trailwatch run` against the emulators, with the test playing systemd's
//! part: it listens on `NOTIFY_SOCKET` and checks READY=1, STATUS= and the
//! watchdog pings; it reads /healthz, /readyz and /metrics; it sends SIGHUP
//! with a broken config (rejected, the daemon keeps running) and SIGTERM
//! (a clean exit 0).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::emulators::{self, config, seed, trailwatch};

fn get(port: u16, path: &str) -> (u16, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Reads notifications until `until` holds or `within` has passed.
fn recv(
    socket: &UnixDatagram,
    messages: &mut Vec<String>,
    until: &dyn Fn(&[String]) -> bool,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !until(messages) {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    until(messages)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn the_daemon_speaks_to_systemd_serves_health_and_reloads_and_stops_cleanly() {
    let _world = emulators::world_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    seed(dir.path());
    let port = free_port();
    let console = free_port();
    let cfg = config(
        dir.path(),
        emulators::LOCALSTACK,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[console]\nlisten = \"127.0.0.1:{console}\"\n"
        ),
    );
    let good = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace("concurrency = 8", "concurrency = 8\npoll_interval = \"2s\"");
    std::fs::write(&cfg, &good).expect("config");

    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let log_path = dir.path().join("daemon.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = trailwatch(&["run", "--config", cfg.to_str().expect("utf-8")])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the daemon");
    let pid = child.id();

    let mut messages: Vec<String> = Vec::new();
    let ready = recv(
        &socket,
        &mut messages,
        &|m: &[String]| m.iter().any(|s| s.contains("READY=1")),
        Duration::from_secs(90),
    );
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(ready, "no READY=1; got {messages:?}; log:\n{}", log_text());
    let ready_msg = messages
        .iter()
        .find(|s| s.contains("READY=1"))
        .expect("ready")
        .clone();
    assert!(
        ready_msg.contains("STATUS=watching 2 trails"),
        "{ready_msg}"
    );
    let pinged = recv(
        &socket,
        &mut messages,
        &|m: &[String]| m.iter().filter(|s| *s == "WATCHDOG=1").count() >= 3,
        Duration::from_secs(10),
    );
    assert!(pinged, "watchdog pings: {messages:?}");

    assert_eq!(get(port, "/healthz").0, 200);
    let (status, body) = get(port, "/readyz");
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["ready"], true);
    // Delivery runs on its own tick: the alerts reach the file.
    let deadline = Instant::now() + Duration::from_secs(20);
    while emulators::alerts(dir.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !emulators::alerts(dir.path()).is_empty(),
        "no alert delivered"
    );
    // The console in the daemon (loopback, no credentials: open) shows
    // what was committed, and refuses to change anything.
    let (status, page) = get(console, "/alerts?limit=500");
    assert_eq!(status, 200, "{page}");
    let first = &emulators::alerts(dir.path())[0];
    assert!(
        page.contains(first["id"].as_str().expect("id")),
        "the console lists the delivered alert {}",
        first["id"]
    );
    let (_, metrics) = get(port, "/metrics");
    for name in [
        "trailwatch_objects_processed_total",
        "trailwatch_records_total",
        "trailwatch_alerts_total{rule=\"aws-cloudtrail-stop-logging\",level=\"high\"}",
        "trailwatch_cursor_lag_seconds{bucket=\"tw-main-logs\"",
        "trailwatch_trails{status=\"not_logging\"} 1",
        "trailwatch_outbox_depth{sink=\"file\"} 0",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }

    // A broken config on SIGHUP is rejected; the daemon keeps running.
    std::fs::write(&cfg, format!("{good}\n[crawl2]\nx = 1\n")).expect("config");
    signal(pid, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_text().contains("reload rejected") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(log_text().contains("reload rejected"), "{}", log_text());
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the daemon died on a bad reload"
    );
    assert_eq!(get(port, "/healthz").0, 200);
    std::fs::write(&cfg, &good).expect("config");
    signal(pid, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_text().contains("config and rules reloaded") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        log_text().contains("config and rules reloaded"),
        "{}",
        log_text()
    );

    // SIGTERM: a clean stop.
    signal(pid, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "{}", log_text());
    assert!(recv(
        &socket,
        &mut messages,
        &|m: &[String]| m.iter().any(|s| s.contains("STOPPING=1")),
        Duration::from_secs(2)
    ));
    let text = log_text();
    assert!(!text.contains("panicked"), "{text}");
}
