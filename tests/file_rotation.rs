//! The file sink under Debian's logrotate, in both modes, while the daemon
//! writes alerts: with `create` every alert is in exactly one of the files;
//! with `copytruncate` none is written twice and no NUL byte appears (the
//! lines written between logrotate's copy and its truncation are lost: the
//! README says so).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trailwatch::alert::{Alert, AlertContext, Detected};
use trailwatch::state::StateStore;

fn logrotate() -> &'static str {
    ["/usr/sbin/logrotate", "/usr/bin/logrotate"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Debian's logrotate (scripts/test.sh installs it)")
}

fn start_daemon(dir: &Path) -> Child {
    let config = dir.join("trailwatch.toml");
    std::fs::write(
        &config,
        "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\n\
         [discovery]\nenabled = false\n[crawl]\npoll_interval = \"1h\"\n\
         [log]\nlevel = \"warn\"\n\
         [[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\nfsync = \"always\"\n",
    )
    .expect("config");
    common::emulators::trailwatch(&["run", "--config", config.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon")
}

fn alerts(round: usize) -> Vec<Detected> {
    (0..40)
        .map(|i| {
            let mut alert = Alert::sample();
            alert.id = format!("tw-r{round:02}-{i:03}");
            Detected {
                alert,
                context: AlertContext {
                    skip_sinks: Vec::new(),
                    ungrouped: true,
                    ..AlertContext::default()
                },
            }
        })
        .collect()
}

/// Waits until the daemon has written every alert of the outbox.
fn wait_delivered(state: &StateStore) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = state.last_seq().expect("seq");
        let (at, _) = state.sink_offset("file").expect("offset");
        if at >= last {
            return;
        }
        assert!(Instant::now() < deadline, "the daemon stopped delivering");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every line of the alerts file and its rotations, by alert id; and
/// whether any file holds a NUL byte.
fn lines(dir: &Path) -> (BTreeMap<String, usize>, bool) {
    let mut ids = BTreeMap::new();
    let mut nul = false;
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("alerts.jsonl") {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("read");
        nul |= bytes.contains(&0);
        for line in String::from_utf8_lossy(&bytes).lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            *ids.entry(v["id"].as_str().unwrap_or("").to_owned())
                .or_insert(0) += 1;
        }
    }
    (ids, nul)
}

fn rotate_while_writing(mode: &str) -> (BTreeMap<String, usize>, bool, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut daemon = start_daemon(dir.path());
    let state = StateStore::open(&dir.path().join("state.db")).expect("state");
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{}/alerts.jsonl {{\n  {mode}\n  rotate 50\n  nocompress\n  missingok\n  \
             postrotate\n    kill -HUP {}\n  endscript\n}}\n",
            dir.path().display(),
            daemon.id()
        ),
    )
    .expect("logrotate config");
    let rounds = 6;
    for round in 0..rounds {
        state.insert_alerts(&alerts(round)).expect("insert");
        if round % 2 == 0 {
            wait_delivered(&state);
        } else {
            // Rotate while the daemon may be writing.
            std::thread::sleep(Duration::from_millis(1500));
        }
        let out = Command::new(logrotate())
            .arg("-f")
            .arg("-s")
            .arg(dir.path().join("logrotate.state"))
            .arg(&conf)
            .output()
            .expect("run logrotate");
        assert!(
            out.status.success(),
            "logrotate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    state.insert_alerts(&alerts(rounds)).expect("insert");
    wait_delivered(&state);
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
    let (ids, nul) = lines(dir.path());
    (ids, nul, (rounds + 1) * 40)
}

/// No NUL byte in any file, and no alert written twice.
fn assert_clean(ids: &BTreeMap<String, usize>, nul: bool) {
    assert!(!nul, "a NUL byte in an alerts file");
    let doubled: Vec<&String> = ids
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(i, _)| i)
        .collect();
    assert!(doubled.is_empty(), "written twice: {doubled:?}");
}

#[test]
fn logrotate_create_keeps_every_alert_exactly_once() {
    let (ids, nul, written) = rotate_while_writing("create");
    assert_clean(&ids, nul);
    assert_eq!(ids.len(), written, "every alert in one of the files");
}

#[test]
fn logrotate_copytruncate_doubles_nothing_and_leaves_no_hole() {
    let (ids, nul, written) = rotate_while_writing("copytruncate");
    assert_clean(&ids, nul);
    assert!(ids.len() <= written);
    // The rounds that waited for delivery before rotating lose nothing.
    for round in (0..=6).step_by(2) {
        for i in 0..40 {
            assert!(
                ids.contains_key(&format!("tw-r{round:02}-{i:03}")),
                "round {round} alert {i} lost"
            );
        }
    }
}
