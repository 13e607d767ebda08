//! Bad input to the daemon's HTTP endpoint (`[server] listen`: `/metrics`,
//! `/healthz`, `/readyz`, and the console when it shares the router): oversized
//! and malformed requests and a slowloris attack. No panic, a clear refusal,
//! and the endpoint keeps answering everyone else (issue 17, item 4).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use common::child::{KillOnDrop, free_port};
use std::time::{Duration, Instant};

struct Daemon {
    _child: KillOnDrop,
    log: std::path::PathBuf,
}

/// The daemon with only an HTTP endpoint to speak of: its one trail's
/// bucket is behind a closed port (the crawl fails, the endpoint answers).
fn start(dir: &Path, port: u16) -> Daemon {
    let cfg = dir.join("trailwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n\
             [discovery]\nenabled = false\n[[trails]]\nbucket = \"b\"\nregion = \"us-east-1\"\n\
             [crawl]\npoll_interval = \"1h\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\n"
        ),
    )
    .expect("write config");
    let log = dir.join("daemon.log");
    let child = Command::new(common::trailwatch())
        .args(["run", "--config"])
        .arg(&cfg)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start the daemon");
    let daemon = Daemon {
        _child: KillOnDrop(child),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/healthz").is_none() {
        assert!(Instant::now() < deadline, "the endpoint never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
    daemon
}

fn connect(port: u16) -> TcpStream {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// A GET on a fresh connection: the status, if any answer came in 5 s.
fn get(port: u16, path: &str) -> Option<u16> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    status_of(&mut s)
}

/// The status of the answer on `s`, if one came (none: closed or timed out).
fn status_of(s: &mut TcpStream) -> Option<u16> {
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 12 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
}

/// Sends `bytes` (ignoring a reset: the server may refuse mid-way) and
/// returns the answer's status, if any.
fn send(port: u16, bytes: &[u8]) -> Option<u16> {
    let mut s = connect(port);
    let _ = s.write_all(bytes);
    status_of(&mut s)
}

#[test]
fn oversized_and_malformed_requests_are_refused_and_the_endpoint_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let daemon = start(dir.path(), port);

    let mut huge_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge_header.extend(std::iter::repeat_n(b'a', 1 << 20));
    huge_header.extend_from_slice(b"\r\n\r\n");
    let mut many_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..5000 {
        many_headers.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let mut huge_body =
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n".to_vec();
    huge_body.extend(std::iter::repeat_n(b'x', 1 << 20));
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(200_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a 1 MB header", huge_header),
        ("5,000 headers", many_headers),
        ("a 100 MB body announced", huge_body),
        ("a 200 kB path", long_path.into_bytes()),
        ("no request line", b"GARBAGE\r\n\r\n".to_vec()),
        ("binary", vec![0u8, 159, 146, 150, 255, 13, 10, 13, 10]),
        (
            "bad percent-encoding",
            b"GET /healthz?%ff%fe%zz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "HTTP/9",
            b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "bad content-length",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".to_vec(),
        ),
        (
            "chunked garbage",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                .to_vec(),
        ),
    ];
    for (what, bytes) in &cases {
        let status = send(port, bytes);
        // A query the endpoint does not read may be answered as usual.
        let harmless = *what == "bad percent-encoding" && status == Some(200);
        assert!(
            harmless || status.is_none_or(|s| (400..500).contains(&s) || s == 505),
            "{what}: refused (4xx, 505 or closed), got {status:?}"
        );
        assert_eq!(get(port, "/healthz"), Some(200), "after {what}");
    }
    let log = std::fs::read_to_string(&daemon.log).expect("log");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_slowloris_attack_is_cut_off_and_others_are_still_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let daemon = start(dir.path(), port);

    // 300 connections, each sending a header line every second, never done.
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = connect(port);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .expect("start a request");
            s
        })
        .collect();
    let started = Instant::now();
    let mut closed = vec![false; slow.len()];
    while started.elapsed() < Duration::from_secs(40) && closed.iter().any(|c| !c) {
        for (s, c) in slow.iter_mut().zip(closed.iter_mut()) {
            if !*c && s.write_all(b"X-Slow: 1\r\n").is_err() {
                *c = true;
            }
        }
        // Everyone else is still served, promptly.
        let asked = Instant::now();
        assert_eq!(
            get(port, "/healthz"),
            Some(200),
            "others served during the attack"
        );
        assert!(asked.elapsed() < Duration::from_secs(3), "served promptly");
        std::thread::sleep(Duration::from_secs(1));
    }
    // A write into a connection the server closed fails once the peer's
    // reset is back: two writes a moment apart tell.
    std::thread::sleep(Duration::from_millis(500));
    for (s, c) in slow.iter_mut().zip(closed.iter_mut()) {
        if !*c {
            let first = s.write_all(b"X-Slow: 1\r\n");
            std::thread::sleep(Duration::from_millis(20));
            *c = first.is_err() || s.write_all(b"X-Slow: 1\r\n").is_err();
        }
    }
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(
        open, 0,
        "connections that never finish their headers are closed within 40 s"
    );
    assert_eq!(get(port, "/healthz"), Some(200));
    let log = std::fs::read_to_string(&daemon.log).expect("log");
    assert!(!log.contains("panicked"), "{log}");
}
