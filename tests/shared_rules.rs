//! The stateful rules across instances (`[state] backend = "dynamodb"`),
//! against moto's DynamoDB: two instances put the records that feed a
//! correlation in the shared feed, some of them both (an object notified
//! twice, records read through two trails); one leads and raises the burst once, counting each event once;
//! the other waits; when the first steps down the second goes on from the
//! state it saved, and the burst's count is the number of distinct events
//! both read.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::emulators;
use common::shared_tables::{client, fresh};
use trailwatch::alert::ObjectRef;
use trailwatch::pipeline::rule_leader::{LEASE, Leader};
use trailwatch::rules::{RuleSet, load_rule_set};
use trailwatch::state::StateStore;
use trailwatch::state::dynamodb::{FedRecord, FeedItem, SharedState};

const STOP_RULE: &str = r#"title: Stop
id: tw-test-stop
logsource:
  product: aws
  service: cloudtrail
detection:
  sel:
    eventName: StopLogging
  condition: sel
level: medium
"#;

const MANY_STOPS: &str = r#"title: Many stops
id: tw-test-many-stops
level: high
correlation:
  type: event_count
  rules: [tw-test-stop]
  group-by: [userIdentity.arn]
  timespan: 10m
  condition:
    gte: 5
"#;

fn rules(dir: &std::path::Path) -> Arc<RuleSet> {
    let (set, errors) = load_rule_set(false, &[dir.to_path_buf()]);
    assert!(errors.is_empty(), "{errors:?}");
    Arc::new(set)
}

/// StopLogging by one user, event `n` at 10:00:0n.
fn record(n: u32) -> FedRecord {
    let record = serde_json::json!({
        "eventVersion": "1.08", "eventID": format!("ev-{n}"),
        "eventTime": format!("2026-12-06T10:00:{n:02}Z"),
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
        "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/x",
                         "accountId": "111122223333"},
    });
    FedRecord {
        text: record.to_string(),
        rules: vec!["tw-test-stop".into()],
    }
}

/// Object `key`'s records `ns`, as one feed item.
fn object(key: &str, ns: &[u32]) -> Vec<FeedItem> {
    vec![FeedItem {
        event: format!("logs/{key}#0"),
        records: ns.iter().map(|&n| record(n)).collect(),
        object: Some(ObjectRef {
            bucket: "logs".into(),
            key: key.into(),
        }),
    }]
}

/// One instance: its shared state, state store, part in leading, rules.
type Instance = (Arc<SharedState>, Arc<StateStore>, Leader, Arc<RuleSet>);

/// Two instances with the StopLogging rule and its correlation, on fresh
/// tables (`<tables>-<pid>-...`), each leading for `lease` at a time.
async fn two_instances(dir: &Path, tables: &str, lease: Duration) -> (Instance, Instance) {
    let rule_dir = dir.join("rules");
    std::fs::create_dir(&rule_dir).expect("mkdir");
    std::fs::write(rule_dir.join("stop.yml"), STOP_RULE).expect("write");
    std::fs::write(rule_dir.join("many.yml"), MANY_STOPS).expect("write");
    let config = fresh(tables, Duration::from_secs(300)).await;
    let instance = |name: &str| {
        let shared = Arc::new(SharedState::new(client(), &config, name));
        let store = Arc::new(StateStore::open(&dir.join(format!("{name}.db"))).expect("state"));
        let leader = Leader::new(Arc::clone(&shared), Arc::clone(&store)).with_lease(lease);
        (shared, store, leader, rules(&rule_dir))
    };
    (instance("tw-a"), instance("tw-b"))
}

fn outbox(store: &StateStore) -> Vec<(String, u64)> {
    store
        .alerts_after(0, 100)
        .expect("outbox")
        .into_iter()
        .map(|o| (o.alert.rule.id, o.alert.count))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_split_across_instances_is_one_alert_counting_each_event_once() {
    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let ((a, a_store, mut a_leader, a_rules), (b, b_store, mut b_leader, b_rules)) =
        two_instances(dir.path(), "tw-rules", LEASE).await;

    // Each reads an object; events 3 and 4 are in both (read through two
    // trails), and B reads A's object again (notified twice).
    assert_eq!(a.feed(&object("o1", &[1, 2, 3, 4])).await.expect("feed"), 1);
    assert_eq!(b.feed(&object("o2", &[3, 4, 5, 6])).await.expect("feed"), 1);
    assert_eq!(b.feed(&object("o1", &[1, 2, 3, 4])).await.expect("feed"), 0);

    let round = a_leader.round(&a_rules, 3600).await.expect("round");
    assert!(round.leading, "{round:?}");
    assert_eq!((round.fed, round.alerts), (8, 1), "{round:?}");
    let round = b_leader.round(&b_rules, 3600).await.expect("round");
    assert!(!round.leading, "one leader at a time: {round:?}");
    assert_eq!(
        outbox(&a_store),
        [("tw-test-many-stops".to_owned(), 5)],
        "one alert, opened at the fifth event"
    );
    assert!(outbox(&b_store).is_empty());
    // Fed once: a second round has nothing new.
    let round = a_leader.round(&a_rules, 3600).await.expect("round");
    assert_eq!((round.fed, round.alerts), (0, 0), "{round:?}");

    // A steps down; B leads from the state A saved. Two more events, and
    // an object already fed read again.
    a_leader.step_down().await;
    assert_eq!(b.feed(&object("o3", &[7, 8])).await.expect("feed"), 1);
    assert_eq!(b.feed(&object("o2", &[3, 4, 5, 6])).await.expect("feed"), 0);
    let round = b_leader.round(&b_rules, 3600).await.expect("round");
    assert!(round.leading, "{round:?}");
    assert_eq!(
        (round.fed, round.alerts),
        (2, 0),
        "the burst is open: no new alert"
    );
    assert!(outbox(&b_store).is_empty());
    let closed = b_rules
        .with_correlator(|c| {
            c.close_all();
            c.take_pending()
        })
        .expect("a correlator");
    let counts: Vec<u64> = closed.iter().map(|d| d.alert.count).collect();
    assert_eq!(counts, [8], "the summary counts each of the 8 events once");
}

/// An alert of rule `r1` for principal `p`, `id`, at 10:00 plus `minutes`.
fn repeat(id: &str, minutes: i64) -> trailwatch::alert::Detected {
    let mut alert = trailwatch::alert::Alert::sample();
    alert.id = id.to_owned();
    alert.rule.id = "r1".into();
    alert.burst = None;
    alert.event.id = Some(format!("ev-{id}"));
    alert.event.principal = Some("arn:aws:iam::111122223333:user/p".into());
    let at = time::macros::datetime!(2026-12-06 10:00 UTC) + time::Duration::minutes(minutes);
    alert.event.time = Some(trailwatch::alert::rfc3339_at(at.unix_timestamp()));
    trailwatch::alert::Detected {
        alert,
        context: Default::default(),
    }
}

fn ids(alerts: &[trailwatch::alert::Detected]) -> Vec<(String, Option<String>, u64)> {
    alerts
        .iter()
        .map(|d| {
            (
                d.alert.id.clone(),
                d.alert.burst.as_ref().map(|b| b.state.clone()),
                d.alert.count,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_dies_is_replaced_once_its_lease_lapses() {
    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let lease = Duration::from_secs(2);
    let ((a, a_store, mut a_leader, a_rules), (_b, b_store, mut b_leader, b_rules)) =
        two_instances(dir.path(), "tw-lapse", lease).await;

    a.feed(&object("o1", &[1, 2, 3, 4, 5])).await.expect("feed");
    let round = a_leader.round(&a_rules, 3600).await.expect("round");
    assert_eq!((round.leading, round.alerts), (true, 1), "{round:?}");
    // A dies without letting its lease go: B waits until it lapses.
    a.feed(&object("o2", &[6, 7])).await.expect("feed");
    let round = b_leader.round(&b_rules, 3600).await.expect("round");
    assert!(!round.leading, "A's lease still holds: {round:?}");
    tokio::time::sleep(lease + Duration::from_secs(2)).await;
    let round = b_leader.round(&b_rules, 3600).await.expect("round");
    assert_eq!(
        (round.leading, round.fed, round.alerts),
        (true, 2, 0),
        "B goes on from A's state: {round:?}"
    );
    // A comes back (its process was only paused): it does not lead again
    // while B renews, and raises nothing.
    let round = a_leader.round(&a_rules, 3600).await.expect("round");
    assert!(!round.leading, "{round:?}");
    assert_eq!(outbox(&a_store).len(), 1);
    assert!(outbox(&b_store).is_empty());
    let closed = b_rules
        .with_correlator(|c| {
            c.close_all();
            c.take_pending()
        })
        .expect("a correlator");
    let counts: Vec<u64> = closed.iter().map(|d| d.alert.count).collect();
    assert_eq!(counts, [7], "one burst of the 7 events");
}

/// Repeats of every rule grouped within ten minutes.
fn ten_minutes() -> trailwatch::config::Suppression {
    trailwatch::config::Suppression {
        window: Duration::from_secs(600),
        rules: Vec::new(),
        exclude: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repeats_read_by_two_instances_are_one_burst_counted_once() {
    emulators::require_emulators();
    let config = fresh("tw-windows", Duration::from_secs(300)).await;
    let a = SharedState::new(client(), &config, "tw-a");
    let b = SharedState::new(client(), &config, "tw-b");
    let grouping = ten_minutes();
    let open = Some("open".to_owned());

    // A reads an object of two repeats: the first opens the burst.
    let out = a
        .group(
            &grouping,
            "logs/o1",
            vec![repeat("tw-a1", 0), repeat("tw-a2", 1)],
        )
        .await
        .expect("group");
    assert_eq!(ids(&out), [("tw-a1".to_owned(), open.clone(), 1)]);
    // B reads another object, of a third: counted, nothing new opens.
    let out = b
        .group(&grouping, "logs/o2", vec![repeat("tw-a3", 2)])
        .await
        .expect("group");
    assert!(out.is_empty(), "{:?}", ids(&out));
    // B reads A's object again (notified twice): not counted again, and its
    // first alert is the same opening alert (the claims send it once).
    let out = b
        .group(
            &grouping,
            "logs/o1",
            vec![repeat("tw-a2", 1), repeat("tw-a1", 0)],
        )
        .await
        .expect("group");
    assert_eq!(ids(&out), [("tw-a1".to_owned(), open.clone(), 1)]);

    // The window ended (event time long past): one instance closes it, once.
    let closed = b.close_windows().await.expect("close");
    assert_eq!(ids(&closed).len(), 1, "{:?}", ids(&closed));
    assert_eq!(closed[0].alert.count, 3, "each repeat counted once");
    let mut related = closed[0].alert.related_event_ids.clone();
    related.sort();
    assert_eq!(related, ["ev-tw-a2", "ev-tw-a3"]);
    assert!(a.close_windows().await.expect("close").is_empty());

    // A repeat after the window ended opens a new burst; one beyond the next
    // window replaces it, raising its summary on the way.
    let out = a
        .group(
            &grouping,
            "logs/o3",
            vec![repeat("tw-a4", 60), repeat("tw-a5", 61)],
        )
        .await
        .expect("group");
    assert_eq!(ids(&out), [("tw-a4".to_owned(), open.clone(), 1)]);
    let out = b
        .group(&grouping, "logs/o4", vec![repeat("tw-a6", 180)])
        .await
        .expect("group");
    let got = ids(&out);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].1.as_deref(), got[0].2), (Some("closed"), 2));
    assert_eq!(got[1], ("tw-a6".to_owned(), open, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_grouping_one_burst_at_once_count_each_repeat_once() {
    emulators::require_emulators();
    let config = fresh("tw-race", Duration::from_secs(300)).await;
    let a = SharedState::new(client(), &config, "tw-a");
    let b = SharedState::new(client(), &config, "tw-b");
    let grouping = ten_minutes();
    // 50 repeats a minute apart in ten objects of five; A reads the even
    // objects, B the odd ones, and both read objects 4 and 5 (notified
    // twice), both at once.
    let read = |who: &SharedState, objects: Vec<i64>| {
        let (who, grouping) = (who.clone(), grouping.clone());
        async move {
            let mut out = Vec::new();
            for k in objects {
                let alerts = (5 * k..5 * k + 5)
                    .map(|m| repeat(&format!("tw-r{m:02}"), m))
                    .collect();
                let object = format!("logs/o{k}");
                out.extend(who.group(&grouping, &object, alerts).await.expect("group"));
            }
            out
        }
    };
    let objects = |odd: bool| -> Vec<i64> {
        (0..10)
            .filter(|k| (k % 2 == 1) == odd || (4..6).contains(k))
            .collect()
    };
    let (from_a, from_b) = tokio::join!(read(&a, objects(false)), read(&b, objects(true)));
    let mut opened: Vec<String> = from_a
        .iter()
        .chain(&from_b)
        .filter(|d| d.alert.burst.as_ref().is_some_and(|b| b.state == "open"))
        .map(|d| d.alert.id.clone())
        .collect();
    opened.sort();
    opened.dedup();
    let mut closed = a.close_windows().await.expect("close");
    closed.extend(b.close_windows().await.expect("close"));
    // Never ten minutes between repeats, whoever read them: one burst,
    // every repeat in it once.
    assert_eq!(opened.len(), 1, "one burst: {opened:?}");
    assert_eq!(ids(&closed).len(), 1, "{:?}", ids(&closed));
    assert_eq!(closed[0].alert.count, 50, "each repeat counted once");
}
