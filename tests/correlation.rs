//! Stateful rules survive a restart in the middle of a window: the state
//! exported (and committed with each object) is restored, a record read a
//! second time is not counted twice, and no event is lost.

use serde_json::json;
use trailwatch::event::Record;
use trailwatch::rules::{RuleSet, builtin_rules};

fn pack() -> RuleSet {
    let loaded = builtin_rules();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let (set, errors) = RuleSet::build(loaded.rules, loaded.correlations);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

fn read(n: u32) -> String {
    json!({
        "eventID": format!("read-{n}"),
        "eventTime": format!("2026-11-21T10:0{n}:00Z"),
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "GetSecretValue",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory"},
        "requestParameters": {"secretId": format!("secret-{n}")}
    })
    .to_string()
}

/// Feeds one record; returns the ids of the correlation alerts it completes.
fn feed(set: &RuleSet, text: &str) -> Vec<String> {
    let record = Record::parse(text).expect("record");
    let mut matched = Vec::new();
    let mut scratch = Vec::new();
    set.for_each_match(&record, &mut scratch, |r| matched.push(r));
    set.correlate(&record, &matched, None, "2026-11-21T10:10:00Z");
    set.with_correlator(|c| c.take_pending())
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.alert.rule.id == "aws-secrets-mass-read")
        .map(|d| d.alert.id)
        .collect()
}

#[test]
fn a_restart_inside_a_window_neither_loses_nor_double_counts() {
    // Three reads, then the process stops; its state was kept.
    let before = pack();
    for n in 1..=3 {
        assert!(feed(&before, &read(n)).is_empty());
    }
    let saved = before.with_correlator(|c| c.export()).expect("correlator");
    drop(before);

    // Restarted: the state comes back. The third read arrives again (its
    // object was read a second time): not counted. Two more reads complete
    // the window of five exactly once.
    let after = pack();
    assert_eq!(
        after.with_correlator(|c| c.import(saved.clone())),
        Some(true)
    );
    assert!(
        feed(&after, &read(3)).is_empty(),
        "a repeat completed the window"
    );
    assert!(
        feed(&after, &read(4)).is_empty(),
        "counted twice: fired at four"
    );
    let fired = feed(&after, &read(5));
    assert_eq!(fired.len(), 1, "the fifth read completes the window");

    // Without the state, the same two reads are not enough: the restart
    // would have lost the first three.
    let forgetful = pack();
    assert!(feed(&forgetful, &read(4)).is_empty());
    assert!(feed(&forgetful, &read(5)).is_empty());

    // The alert's id is stable: the same events give the same id.
    let again = pack();
    assert_eq!(again.with_correlator(|c| c.import(saved)), Some(true));
    feed(&again, &read(4));
    assert_eq!(feed(&again, &read(5)), fired);
}

#[test]
fn the_state_is_committed_with_the_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = trailwatch::state::StateStore::open(&dir.path().join("state.db")).expect("open");
    let cursor = trailwatch::state::CursorKey {
        bucket: "b".into(),
        prefix: "AWSLogs/".into(),
        account: "111122223333".into(),
        region: "us-east-1".into(),
    };
    let set = pack();
    for n in 1..=2 {
        feed(&set, &read(n));
    }
    let state = set.with_correlator(|c| c.export()).expect("correlator");
    store
        .commit_object(&trailwatch::state::ObjectCommit {
            cursor: &cursor,
            key: "k",
            key_time: "20261121T1000Z",
            status: trailwatch::state::ObjectStatus::Done,
            records: 2,
            error: None,
            alerts: &[],
            activity: &[],
            correlation: Some(trailwatch::state::CorrelationCommit {
                state: &state.state,
                seen_new: &state.seen,
                forget_outside: None,
            }),
        })
        .expect("commit");
    drop(store);
    let store = trailwatch::state::StateStore::open(&dir.path().join("state.db")).expect("reopen");
    assert_eq!(store.correlation_state().expect("read"), Some(state));
}
