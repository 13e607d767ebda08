use super::*;
use crate::alert::AlertEvent;

fn alert(id: &str) -> Detected {
    Detected {
        alert: alert_only(id),
        context: AlertContext {
            skip_sinks: Vec::new(),
            description: Some("check it".into()),
            falsepositives: vec![],
            record: Some("{}".into()),
            resource: None,
            ungrouped: false,
        },
    }
}

fn alert_only(id: &str) -> Alert {
    let mut alert = Alert::sample();
    alert.id = id.into();
    alert.rule.id = "r".into();
    alert.rule.title = "t".into();
    alert.rule.tags = vec![];
    alert.event = AlertEvent {
        id: Some("e".into()),
        ..AlertEvent::default()
    };
    alert.detected_at = "2026-11-21T10:00:00Z".into();
    alert
}

fn cursor() -> CursorKey {
    CursorKey {
        bucket: "b".into(),
        prefix: "".into(),
        account: "111111111111".into(),
        region: "us-east-1".into(),
    }
}

#[test]
fn reprocessing_an_object_adds_no_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(&dir.path().join("sub/state.db")).expect("open");
    let c = cursor();
    let alerts = [alert("tw-1"), alert("tw-2")];
    let commit = ObjectCommit {
        cursor: &c,
        key: "k1",
        key_time: "20261121T1000Z",
        status: ObjectStatus::Done,
        records: 10,
        error: None,
        alerts: &alerts,
        activity: &[],
        correlation: None,
    };
    assert_eq!(store.commit_object(&commit).expect("commit"), 2);
    assert_eq!(store.commit_object(&commit).expect("commit again"), 0);
    assert_eq!(store.alert_count().expect("count"), 2);
    let out = store.alerts_after(0, 10).expect("read");
    assert_eq!(
        out.iter().map(|o| o.alert.id.as_str()).collect::<Vec<_>>(),
        ["tw-1", "tw-2"]
    );
    assert_eq!(store.alerts_after(out[0].seq, 10).expect("read").len(), 1);
}

#[test]
fn processed_keys_watermarks_and_pruning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let c = cursor();
    {
        let store = StateStore::open(&path).expect("open");
        for (key, time) in [
            ("a", "20261121T0900Z"),
            ("b", "20261121T1000Z"),
            ("c", "20261121T1100Z"),
        ] {
            store
                .commit_object(&ObjectCommit {
                    cursor: &c,
                    key,
                    key_time: time,
                    status: if key == "b" {
                        ObjectStatus::Failed
                    } else {
                        ObjectStatus::Done
                    },
                    records: 1,
                    error: (key == "b").then(|| "corrupt gzip".to_owned()),
                    alerts: &[],
                    activity: &[],
                    correlation: None,
                })
                .expect("commit");
        }
        store
            .advance_watermark(&c, "20261121T1100Z")
            .expect("advance");
        store
            .advance_watermark(&c, "20261121T0800Z")
            .expect("never back");
    }
    // Reopened: everything persisted.
    let store = StateStore::open(&path).expect("reopen");
    assert_eq!(
        store.watermark(&c).expect("read").as_deref(),
        Some("20261121T1100Z")
    );
    let keys = store
        .processed_keys_since(&c, "20261121T1000Z")
        .expect("read");
    assert_eq!(keys, ["b".to_owned(), "c".to_owned()].into_iter().collect());
    let failed = store.failed_objects("b", 10).expect("read");
    assert_eq!(failed[0].key, "b");
    assert_eq!(failed[0].error, "corrupt gzip");
    assert_eq!(
        store.prune_processed(&c, "20261121T1000Z").expect("prune"),
        1
    );
    assert_eq!(store.object_status("b", "a").expect("read"), None);
}

#[test]
fn sink_offsets_and_status_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(&dir.path().join("state.db")).expect("open");
    assert_eq!(store.sink_offset("file").expect("read"), (0, None));
    store.set_sink_offset("file", 7, Some(1234)).expect("write");
    assert_eq!(store.sink_offset("file").expect("read"), (7, Some(1234)));
    store
        .set_trail_status("arn:t", &serde_json::json!({"logging": true}))
        .expect("write");
    assert_eq!(
        store.trail_status("arn:t").expect("read"),
        Some(serde_json::json!({"logging": true}))
    );
    store.check_writable().expect("writable");
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").expect("write");
    let err = StateStore::open(&blocker.join("state.db")).expect_err("cannot open under a file");
    assert!(err.to_string().contains("state.db"), "{err}");
}

#[test]
fn processes_opening_a_new_file_at_once_create_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                StateStore::open(&path)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("every open succeeds");
    }
}

#[test]
fn dead_letters_are_listed_and_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(&dir.path().join("state.db")).expect("open");
    store.insert_alerts(&[alert("tw-9")]).expect("insert");
    let seq = store.last_seq().expect("seq");
    store
        .add_dead_letter("dd", seq, Some(400), "{\"errors\":[\"bad\"]}")
        .expect("dead letter");
    let dead = store.dead_letters(Some("dd")).expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].alert_id, "tw-9");
    assert_eq!(dead[0].status, Some(400));
    assert!(store.dead_letters(Some("other")).expect("list").is_empty());
    assert!(store.remove_dead_letter("dd", seq).expect("remove"));
    assert!(store.dead_letters(None).expect("list").is_empty());
}

fn repeat(id: &str, event_id: &str, time: &str) -> Detected {
    let mut d = alert(id);
    d.alert.event.id = Some(event_id.into());
    d.alert.event.time = Some(time.into());
    d.alert.event.principal = Some("arn:aws:iam::1:user/alice".into());
    d.context.resource = Some("\"i-0abc\"".into());
    d
}

#[test]
fn the_suppression_window_counts_repeats_across_a_restart_and_summarises() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let window = Suppression {
        window: std::time::Duration::from_secs(3600),
        rules: vec![],
        exclude: vec![],
    };
    {
        let store = StateStore::open(&path)
            .expect("open")
            .with_suppression(Some(window.clone()));
        let n = store
            .insert_alerts(&[
                repeat("tw-a", "e1", "2026-11-20T10:00:00Z"),
                repeat("tw-b", "e2", "2026-11-20T10:10:00Z"),
            ])
            .expect("insert");
        assert_eq!(n, 1, "the first goes out at once, the repeat is counted");
    }
    // Restarted inside the window: the count goes on from where it was.
    let store = StateStore::open(&path)
        .expect("reopen")
        .with_suppression(Some(window));
    let again = |d| store.insert_alerts(&[d]).expect("insert");
    assert_eq!(again(repeat("tw-c", "e3", "2026-11-20T10:20:00Z")), 0);
    // The same alert again (its object read twice) is not counted twice.
    assert_eq!(again(repeat("tw-c", "e3", "2026-11-20T10:20:00Z")), 0);
    // Another resource of the same principal is a repeat, its target listed.
    let mut other = repeat("tw-d", "e4", "2026-11-20T10:25:00Z");
    other.context.resource = Some("\"i-0def\"".into());
    assert_eq!(again(other), 0);
    // Another principal is another burst.
    let mut bob = repeat("tw-e", "e5", "2026-11-20T10:26:00Z");
    bob.alert.event.principal = Some("arn:aws:iam::1:user/bob".into());
    assert_eq!(again(bob), 1);
    // The windows have ended (they are in the past): one summary, for the
    // window with repeats.
    assert_eq!(store.close_suppression_windows().expect("close"), 1);
    let all = store.alerts_after(0, 100).expect("outbox");
    let first = &all[0].alert;
    assert_eq!(first.id, "tw-a");
    let opened = first.burst.as_ref().expect("the first alert opens a burst");
    assert_eq!(
        (opened.id.as_str(), opened.state.as_str()),
        ("tw-a", "open")
    );
    let summary = all.last().expect("summary");
    assert_eq!(summary.alert.count, 4);
    assert_eq!(summary.alert.related_event_ids, ["e2", "e3", "e4"]);
    assert_eq!(summary.alert.id, crate::alert::burst_summary_id("tw-a"));
    let closed = summary.alert.burst.as_ref().expect("burst");
    assert_eq!(
        (
            closed.id.as_str(),
            closed.state.as_str(),
            closed.first.as_str(),
            closed.last.as_str()
        ),
        (
            "tw-a",
            "closed",
            "2026-11-20T10:00:00Z",
            "2026-11-20T10:25:00Z"
        )
    );
    assert_eq!(
        summary.context.resource.as_deref(),
        Some("\"i-0abc\", \"i-0def\"")
    );
    assert_eq!(all.len(), 3, "tw-a, tw-e and the summary");
    // An alert marked ungrouped, or of an excluded rule, always goes out.
    let mut status = repeat("tw-f", "e6", "2026-11-20T11:00:00Z");
    status.context.ungrouped = true;
    let mut status2 = repeat("tw-g", "e7", "2026-11-20T11:01:00Z");
    status2.context.ungrouped = true;
    assert_eq!(again(status) + again(status2), 2);
    assert_eq!(store.close_suppression_windows().expect("close again"), 0);
}

/// Found by the chaos suite: with the state file locked by another process
/// for half a minute, /readyz said degraded only at the end of a pass, after
/// the lock was gone. The store now says at once that its last commit
/// failed, and that it commits again.
#[test]
fn a_failed_commit_is_known_at_once_and_forgotten_when_one_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = StateStore::open(&path).expect("open");
    let c = cursor();
    let commit = |key: &'static str| ObjectCommit {
        cursor: &c,
        key,
        key_time: "20261121T1000Z",
        status: ObjectStatus::Done,
        records: 1,
        error: None,
        alerts: &[],
        activity: &[],
        correlation: None,
    };
    assert_eq!(store.write_failure(), None);
    let other = Connection::open(&path).expect("another connection");
    other.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    assert!(store.commit_object(&commit("k1")).is_err());
    assert!(
        store.write_failure().is_some_and(|e| e.contains("locked")),
        "{:?}",
        store.write_failure()
    );
    other.execute_batch("ROLLBACK").expect("unlock");
    store.commit_object(&commit("k2")).expect("commits again");
    assert_eq!(store.write_failure(), None);
}
