//! What the chaos suite (`scripts/chaos.sh`, issue 17) asks of the daemon's
//! start and its faults, one test each, named after the fault.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n\
         [discovery]\nenabled = false\n[[trails]]\nbucket = \"b\"\nregion = \"us-east-1\"\n\
         [[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\n",
    )
    .expect("write config");
    path
}

fn trailwatch(dir: &Path, command: &str) -> Output {
    Command::new(common::trailwatch())
        .args([command, "--config", "trailwatch.toml"])
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run trailwatch")
}

/// A state file to damage: one `once` run leaves a real one.
fn real_state(dir: &Path) -> Vec<u8> {
    let conn = rusqlite::Connection::open(dir.join("state.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; CREATE TABLE filler (x);
         INSERT INTO filler SELECT zeroblob(4000) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4);",
    )
    .expect("fill");
    drop(conn);
    std::fs::read(dir.join("state.db")).expect("read")
}

#[test]
fn corrupt_or_truncated_state_file_at_start_names_the_file_and_the_way_to_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    let sound = real_state(dir.path());
    let cases: [(&str, Vec<u8>, &str); 2] = [
        ("garbage", vec![0xa5; 8192], "not a SQLite database"),
        ("truncated", sound[..sound.len() / 2].to_vec(), "truncated"),
    ];
    for (what, bytes, reason) in cases {
        std::fs::write(dir.path().join("state.db"), &bytes).expect("write");
        for command in ["once", "run"] {
            let out = trailwatch(dir.path(), command);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}, {command}: must not start");
            assert!(
                err.contains("state.db") && err.contains(reason),
                "{what}, {command}: names the file and why: {err}"
            );
            assert!(
                err.contains("the state file is damaged") && err.contains("A damaged state file"),
                "{what}, {command}: says how to recover: {err}"
            );
        }
        // Nothing was written over the damaged file (kept for a post-mortem).
        assert_eq!(
            std::fs::read(dir.path().join("state.db")).expect("read"),
            bytes
        );
    }
}

/// Found by the chaos suite: started on a read-only disk, the daemon said
/// only "unable to open database file" (SQLite's words), not why.
#[test]
fn a_read_only_state_disk_at_start_names_the_file_and_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path());
    let root = nix_is_root();
    let out = if root {
        // A read-only tmpfs over the folder, in a mount namespace of its own.
        let script = format!(
            "mount -t tmpfs -o ro,size=1m tmpfs '{d}' && cd '{d}' && exec '{bin}' once --config '{cfg}'",
            d = dir.path().display(),
            bin = common::trailwatch().display(),
            cfg = dir.path().join("trailwatch.toml").display(),
        );
        let cfg_text = std::fs::read_to_string(dir.path().join("trailwatch.toml")).expect("config");
        // The config is read from the folder the tmpfs covers: keep a copy beside.
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            outside.path().join("trailwatch.toml"),
            cfg_text.replace(
                "path = \"state.db\"",
                &format!("path = \"{}\"", dir.path().join("state.db").display()),
            ),
        )
        .expect("config");
        let script = script.replace(
            &dir.path().join("trailwatch.toml").display().to_string(),
            &outside.path().join("trailwatch.toml").display().to_string(),
        );
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("unshare")
    } else {
        let mut perms = std::fs::metadata(dir.path()).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        std::fs::set_permissions(dir.path(), perms).expect("chmod");
        trailwatch(dir.path(), "once")
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("state.db"), "names the file: {err}");
    assert!(
        err.contains("Read-only file system") || err.contains("Permission denied"),
        "says why: {err}"
    );
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Found by the chaos suite: with the state's disk full (or its file locked)
/// while alerts were being delivered, a sink's offset could not be stored
/// after a delivery, and the next round sent those alerts again (15 alerts
/// twice to each HTTP sink in a five-minute run).
#[tokio::test(flavor = "multi_thread")]
async fn a_sink_offset_that_cannot_be_stored_does_not_send_alerts_again() {
    use std::sync::Arc;
    use trailwatch::state::StateStore;

    let dir = tempfile::tempdir().expect("tempdir");
    let (url, counts) = common::counting_receiver::start(std::time::Instant::now()).await;
    let config = trailwatch::config::Config::from_toml(
        &format!("[[sinks]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"{url}\"\n"),
        dir.path(),
    )
    .expect("config");
    let path = dir.path().join("state.db");
    let state = Arc::new(StateStore::open(&path).expect("state"));
    let ids: Vec<String> = (0..3).map(|i| format!("tw-00000000000000a{i}")).collect();
    common::outbox::commit_samples(&state, "k", &ids);

    // Another process holds the write lock: every offset write fails (after
    // SQLite's busy timeout), reads still work.
    let blocker = rusqlite::Connection::open(&path).expect("open");
    blocker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let policy = trailwatch::sinks::deliver::Policy::default();
    let first = trailwatch::sinks::deliver::deliver_all(&state, &config.sinks, &policy).await;
    assert!(first.is_err(), "the offset could not be stored: {first:?}");
    blocker.execute_batch("ROLLBACK").expect("unlock");

    // Once the store takes writes again, the rest go out, none twice.
    trailwatch::sinks::deliver::deliver_all(&state, &config.sinks, &policy)
        .await
        .expect("delivered");
    let mut counts = counts.lock().expect("counts").clone();
    counts.remove("requests");
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}
