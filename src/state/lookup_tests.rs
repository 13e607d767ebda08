//! The lookup store against a real SQLite file: filters, pages, activity
//! written with its object, retention and the file giving pages back.

use super::*;
use crate::alert::{AlertEvent, Severity};
use crate::event::Record;

const T0: i64 = 1_795_255_200; // 2026-11-21T10:00:00Z

fn record(i: i64, who: &str, key: &str, ip: &str, event: &str) -> String {
    format!(
        r#"{{"eventID":"ev-{i}","eventTime":"{}","eventName":"{event}","eventSource":"s3.amazonaws.com",
           "awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"Terraform/1.9 ua-{i}",
           "recipientAccountId":"111111111111",
           "userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111111111111:user/{who}",
             "userName":"{who}","accessKeyId":"{key}"}},
           "requestParameters":{{"bucketName":"bucket-{i}"}}}}"#,
        crate::alert::rfc3339_at(T0 + i * 60)
    )
}

fn detected(i: i64, text: &str, level: &str) -> Detected {
    let record = Record::parse(text).expect("record");
    let mut alert = Alert::sample();
    alert.id = format!("tw-{i:016}");
    alert.rule.id = format!("rule-{}", i % 2);
    alert.rule.severity = level.into();
    alert.event = AlertEvent::from_record(&record);
    alert.object = Some(ObjectRef {
        bucket: "b".into(),
        key: format!("k{i}"),
    });
    Detected {
        alert,
        context: AlertContext {
            skip_sinks: Vec::new(),
            record: Some(text.into()),
            resource: crate::alert::resource(&record),
            ungrouped: true,
            ..AlertContext::default()
        },
    }
}

fn cursor() -> CursorKey {
    CursorKey {
        bucket: "b".into(),
        prefix: "".into(),
        account: "111111111111".into(),
        region: "us-east-1".into(),
    }
}

/// Ten records in two objects, alice (AKIA1, 10.0.0.1) and bob (AKIA2,
/// 10.0.0.2) in turn; each raises an alert, high for even, low for odd.
fn filled(store: &StateStore) {
    let c = cursor();
    for object in 0..2i64 {
        let mut alerts = Vec::new();
        let mut activity = Vec::new();
        for i in object * 5..object * 5 + 5 {
            let (who, key, ip) = if i % 2 == 0 {
                ("alice", "AKIA1", "10.0.0.1")
            } else {
                ("bob", "AKIA2", "10.0.0.2")
            };
            let text = record(
                i,
                who,
                key,
                ip,
                if i < 5 { "GetObject" } else { "PutObject" },
            );
            activity.push(Activity::of(&Record::parse(&text).expect("record")));
            alerts.push(detected(i, &text, if i % 2 == 0 { "high" } else { "low" }));
        }
        let key = format!("obj-{object}");
        store
            .commit_object(&ObjectCommit {
                cursor: &c,
                key: &key,
                key_time: "20261121T1000Z",
                status: ObjectStatus::Done,
                records: 5,
                error: None,
                alerts: &alerts,
                activity: &activity,
                correlation: None,
            })
            .expect("commit");
    }
}

fn all() -> Filter {
    Filter {
        since: T0 - 3600,
        until: T0 + 3600,
        limit: 100,
        ..Filter::default()
    }
}

#[test]
fn values_of_one_filter_or_and_filters_of_two_kinds_and() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(&dir.path().join("s.db")).expect("open");
    filled(&store);
    assert_eq!(store.lookup_alerts(&all()).expect("all").len(), 10);
    assert_eq!(store.lookup_activity(&all()).expect("all").len(), 10);

    // The principal by ARN, by name or by access key: the same five.
    for who in ["arn:aws:iam::111111111111:user/alice", "alice", "AKIA1"] {
        let f = Filter {
            principals: vec![who.into()],
            ..all()
        };
        let found = store.lookup_activity(&f).expect("lookup");
        assert_eq!(found.len(), 5, "{who}");
        assert!(
            found
                .iter()
                .all(|r| r.activity.principal_name.as_deref() == Some("alice"))
        );
    }
    // Two values of one filter: either.
    let either = Filter {
        ips: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        ..all()
    };
    assert_eq!(store.lookup_alerts(&either).expect("or").len(), 10);
    // Two filters: both. alice's PutObject calls are 6 and 8.
    let both = Filter {
        principals: vec!["alice".into()],
        events: vec!["PutObject".into()],
        ..all()
    };
    let ids: Vec<_> = store
        .lookup_activity(&both)
        .expect("and")
        .into_iter()
        .map(|r| r.activity.event_id.unwrap_or_default())
        .collect();
    assert_eq!(ids, vec!["ev-8", "ev-6"], "newest first");
    // Levels, rules, targets, user agents (any case), objects.
    let high = Filter {
        levels: vec![Severity::High],
        rules: vec!["rule-0".into()],
        ..all()
    };
    assert_eq!(store.lookup_alerts(&high).expect("level").len(), 5);
    let target = Filter {
        targets: vec!["bucket-3".into()],
        user_agents: vec!["TERRAFORM".into()],
        ..all()
    };
    let found = store.lookup_alerts(&target).expect("target");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].alert.id, "tw-0000000000000003");
    let rows = store.lookup_activity(&target).expect("target");
    assert_eq!(
        (rows[0].bucket.as_deref(), rows[0].key.as_deref()),
        (Some("b"), Some("obj-0"))
    );
    // The window: the first three minutes only.
    let early = Filter {
        since: T0,
        until: T0 + 180,
        ..all()
    };
    assert_eq!(store.lookup_activity(&early).expect("window").len(), 3);
    assert!(
        store
            .alert_by_id("tw-0000000000000003")
            .expect("by id")
            .is_some()
    );
    // Alerts per rule, counted by day as they came in.
    let mut per_rule = store
        .alerts_per_rule(T0 - 86_400, T0 + 86_400)
        .expect("per rule");
    per_rule.sort();
    assert_eq!(
        per_rule,
        vec![("rule-0".to_owned(), 5), ("rule-1".to_owned(), 5)]
    );
    assert!(
        store
            .alerts_per_rule(T0 + 2 * 86_400, T0 + 3 * 86_400)
            .expect("later")
            .is_empty()
    );
}

#[test]
fn pages_follow_one_another_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(&dir.path().join("s.db")).expect("open");
    filled(&store);
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .lookup_alerts(&Filter {
                limit: 3,
                before,
                ..all()
            })
            .expect("page");
        let Some(last) = page.last() else { break };
        before = Some(Page {
            at: last.at,
            row: last.seq,
        });
        seen.extend(page.iter().map(|a| a.alert.id.clone()));
    }
    let expected: Vec<_> = (0..10).rev().map(|i| format!("tw-{i:016}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn an_object_read_again_adds_no_activity_twice() {
    // (its checkpoint pruned, or a crash after the commit and before the ack)
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(&dir.path().join("s.db")).expect("open");
    filled(&store);
    filled(&store);
    assert_eq!(store.lookup_activity(&all()).expect("all").len(), 10);
}

#[test]
fn retention_purges_what_is_past_and_the_file_gives_pages_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = StateStore::open(&path).expect("open");
    // Many rows, so that purging them frees pages.
    let c = cursor();
    for object in 0..40i64 {
        let rows: Vec<Activity> = (0..250)
            .map(|i| {
                let n = object * 250 + i;
                let text = record(n, "carol", "AKIA3", "10.0.0.3", "ListBuckets");
                Activity::of(&Record::parse(&text).expect("record"))
            })
            .collect();
        let key = format!("o{object}");
        store
            .commit_object(&ObjectCommit {
                cursor: &c,
                key: &key,
                key_time: "20261121T1000Z",
                status: ObjectStatus::Done,
                records: 250,
                error: None,
                alerts: &[],
                activity: &rows,
                correlation: None,
            })
            .expect("commit");
    }
    let retention = Retention::default();
    // Read just now: nothing goes, whatever the events' age.
    let now = crate::state::now();
    let kept = store
        .purge(
            &retention,
            now,
            std::time::Duration::from_millis(5),
            std::time::Duration::ZERO,
        )
        .expect("purge");
    assert_eq!(kept.rows(), 0, "read within the retention");
    // Eight days on, the activity (7 days) goes and the file shrinks.
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    store.checkpoint_wal();
    let before = size(&path);
    let later = now + 8 * 86_400;
    let purged = store
        .purge(
            &retention,
            later,
            std::time::Duration::from_millis(5),
            std::time::Duration::ZERO,
        )
        .expect("purge");
    assert_eq!((purged.activity, purged.objects), (10_000, 40));
    assert_eq!(store.reclaim(100).expect("reclaim"), 0, "no free page left");
    store.checkpoint_wal();
    let after = size(&path);
    assert!(
        after * 2 < before,
        "the file gave its pages back: {before} -> {after} bytes"
    );
    let everything = Filter {
        since: 0,
        until: i64::MAX,
        limit: 10,
        ..Filter::default()
    };
    assert!(store.lookup_activity(&everything).expect("left").is_empty());
    // No principal or event is named by a row any more: they went too, and
    // a new row names them afresh.
    let left: i64 = store
        .conn()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM activity_principals) + (SELECT COUNT(*) FROM activity_events)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(left, 0);
    filled(&store);
    assert_eq!(store.lookup_activity(&all()).expect("again").len(), 10);
}

#[test]
fn an_alert_goes_only_when_old_and_past_every_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(&dir.path().join("s.db")).expect("open");
    filled(&store);
    let retention = Retention::default();
    let later = crate::state::now() + 91 * 86_400;
    // A sink that has delivered the first four holds the rest.
    store.set_sink_offset("file", 4, None).expect("offset");
    let first = store.purge_step(&retention, later, 100).expect("purge");
    assert_eq!(first.alerts, 4);
    store.set_sink_offset("file", 10, None).expect("offset");
    let step = store.purge_step(&retention, later, 4).expect("purge");
    assert_eq!(step.alerts, 4, "a step takes at most its batch");
    let rest = store.purge_step(&retention, later, 100).expect("purge");
    assert_eq!(rest.alerts, 2);
    filled(&store);
    assert_eq!(
        store.alert_count().expect("count"),
        10,
        "ids were purged, so they come back"
    );
}

#[test]
fn an_older_file_is_upgraded_and_its_alerts_indexed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let text = record(1, "dave", "AKIA4", "10.0.0.4", "StopLogging");
    let d = detected(1, &text, "high");
    schema::write_version_3_file(&path, &d).expect("old file");
    let store = StateStore::open(&path).expect("upgraded");
    let f = Filter {
        principals: vec!["AKIA4".into()],
        ..all()
    };
    let found = store.lookup_alerts(&f).expect("lookup");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].at, T0 + 60);
    assert_eq!(found[0].alert.id, d.alert.id);
    assert_eq!(
        store.alerts_per_rule(T0, T0 + 3600).expect("per rule"),
        vec![("rule-1".to_owned(), 1)]
    );
}

#[test]
fn a_bulk_load_finds_the_same_rows_through_indexes_built_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(&dir.path().join("s.db")).expect("open");
    let indexes = |s: &StateStore| -> Vec<String> {
        let conn = s.conn();
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' \
                 AND tbl_name IN ('alerts', 'activity') ORDER BY name",
            )
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<Vec<String>>>()
            .expect("rows")
    };
    let before = indexes(&store);
    assert!(before.len() >= 10, "{before:?}");
    let during = store
        .bulk_load(|s| {
            filled(s);
            Ok(indexes(s))
        })
        .expect("bulk load");
    assert!(
        during.iter().all(|n| n.starts_with("sqlite_autoindex")),
        "{during:?}"
    );
    assert_eq!(indexes(&store), before);
    let f = Filter {
        principals: vec!["AKIA1".into()],
        ..all()
    };
    assert_eq!(store.lookup_activity(&f).expect("lookup").len(), 5);
    assert_eq!(store.lookup_alerts(&f).expect("lookup").len(), 5);
}
