//! The shared state (`[state] backend = "dynamodb"`) against moto's
//! DynamoDB: `trailwatch state init` creates the tables (and says so again,
//! harmlessly); an object committed by one instance is seen by another;
//! one alert's delivery is claimed by one instance at a time, by the same
//! one again after a restart, by another only once a claim has lapsed
//! without a delivery, and never after it was delivered; every instance
//! looks up every instance's alerts (the shared alerts table, by day) and
//! sends only its own.

mod common;

use std::time::Duration;

use common::emulators::{self, MOTO, trailwatch};
use common::shared_tables::{client, fresh};
use trailwatch::config::SharedStateConfig;
use trailwatch::state::dynamodb::{Claim, SharedState};

#[tokio::test(flavor = "multi_thread")]
async fn one_instance_delivers_each_alert_and_a_lapsed_claim_passes_on() {
    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("tw-shared-{}", std::process::id());
    let cfg = dir.path().join("trailwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[state]\npath = \"state.db\"\nbackend = \"dynamodb\"\ntable_prefix = \"{prefix}\"\n\
             [aws]\nregion = \"us-east-1\"\ndynamodb_endpoint_url = \"{MOTO}\"\n\
             [discovery]\nenabled = false\n"
        ),
    )
    .expect("config");
    for want in ["created", "exists"] {
        let out = trailwatch(&["state", "init", "--config", cfg.to_str().expect("utf-8")])
            .output()
            .expect("state init");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                format!("{prefix}-objects: {want}"),
                format!("{prefix}-deliveries: {want}"),
                format!("{prefix}-alerts: {want}"),
                format!("{prefix}-feed: {want}"),
                format!("{prefix}-rules: {want}")
            ],
        );
    }

    let settings = SharedStateConfig {
        table_prefix: prefix.clone(),
        claim_timeout: Duration::from_secs(2),
    };
    let a = SharedState::new(client(), &settings, "tw-a");
    let b = SharedState::new(client(), &settings, "tw-b");

    assert!(!b.object_committed("logs", "k1").await.expect("get"));
    a.mark_committed("logs", "k1", "done", 3)
        .await
        .expect("mark");
    assert!(b.object_committed("logs", "k1").await.expect("get"));

    // One at a time; the holder again after a restart.
    assert_eq!(a.claim("dd", "tw-1").await.expect("claim"), Claim::Ours);
    assert_eq!(
        b.claim("dd", "tw-1").await.expect("claim"),
        Claim::Elsewhere
    );
    assert_eq!(a.claim("dd", "tw-1").await.expect("claim"), Claim::Ours);
    // Per sink: the same alert to another sink is a claim of its own.
    assert_eq!(b.claim("hook", "tw-1").await.expect("claim"), Claim::Ours);
    // Delivered: nobody takes it over, however long after.
    a.delivered("dd", "tw-1").await.expect("delivered");
    // A claim that lapses without a delivery passes on.
    assert_eq!(a.claim("dd", "tw-2").await.expect("claim"), Claim::Ours);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        b.claim("dd", "tw-1").await.expect("claim"),
        Claim::Elsewhere
    );
    assert_eq!(b.claim("dd", "tw-2").await.expect("claim"), Claim::Ours);
    assert_eq!(
        a.claim("dd", "tw-2").await.expect("claim"),
        Claim::Elsewhere
    );
    // The first holder's late mark does not overwrite the new holder's claim.
    a.delivered("dd", "tw-2")
        .await
        .expect("late mark is ignored");
    assert_eq!(
        a.claim("dd", "tw-2").await.expect("claim"),
        Claim::Elsewhere
    );
}

#[test]
fn state_init_without_dynamodb_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("trailwatch.toml");
    std::fs::write(&cfg, "[state]\npath = \"state.db\"\n").expect("config");
    let out = trailwatch(&["state", "init", "--config", cfg.to_str().expect("utf-8")])
        .output()
        .expect("state init");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("state.backend"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_instance_looks_up_every_alert_and_sends_only_its_own() {
    use std::sync::Arc;
    use trailwatch::state::StateStore;
    use trailwatch::state::dynamodb::sync_alerts;

    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = fresh("tw-lookup", Duration::from_secs(300)).await;
    let open = |name: &str| Arc::new(StateStore::open(&dir.path().join(name)).expect("state"));
    let (a_store, b_store) = (open("a.db"), open("b.db"));
    let a = SharedState::new(client(), &config, "instance-a");
    let b = SharedState::new(client(), &config, "instance-b");
    let ids = |list: &[&str]| list.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>();
    common::outbox::commit_samples(
        &a_store,
        "k1",
        &ids(&["tw-00000000000000c1", "tw-00000000000000c2"]),
    );
    common::outbox::commit_samples(&b_store, "k2", &ids(&["tw-00000000000000c3"]));

    assert_eq!(sync_alerts(&a_store, &a).await.expect("a"), (2, 0));
    assert_eq!(sync_alerts(&b_store, &b).await.expect("b"), (1, 2));
    assert_eq!(sync_alerts(&a_store, &a).await.expect("a again"), (0, 1));
    // Again: nothing new either way.
    assert_eq!(sync_alerts(&b_store, &b).await.expect("b again"), (0, 0));

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let all = trailwatch::state::Filter {
        since: 0,
        until: now + 86_400,
        limit: 100,
        ..Default::default()
    };
    let looked_up = |s: &StateStore| {
        let mut found: Vec<String> = s
            .lookup_alerts(&all)
            .expect("lookup")
            .into_iter()
            .map(|a| a.alert.id)
            .collect();
        found.sort();
        found
    };
    let every = ids(&[
        "tw-00000000000000c1",
        "tw-00000000000000c2",
        "tw-00000000000000c3",
    ]);
    assert_eq!(looked_up(&a_store), every);
    assert_eq!(looked_up(&b_store), every);
    let outbox = |s: &StateStore| {
        s.alerts_after(0, 100)
            .expect("outbox")
            .into_iter()
            .map(|o| o.alert.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        outbox(&a_store),
        ids(&["tw-00000000000000c1", "tw-00000000000000c2"])
    );
    assert_eq!(
        outbox(&b_store),
        ids(&["tw-00000000000000c3"]),
        "the others' alerts are not b's to send"
    );

    // B reads A's object again (a lease that lapsed): the alert becomes B's
    // to offer its sinks (the delivery claims decide), still one alert.
    common::outbox::commit_samples(&b_store, "k1", &ids(&["tw-00000000000000c1"]));
    assert_eq!(
        outbox(&b_store),
        ids(&["tw-00000000000000c3", "tw-00000000000000c1"])
    );
    assert_eq!(looked_up(&b_store), every);
}

/// Found by the scale-out check: an instance kept its claims for a whole
/// batch and marked them delivered only after the batch, so a send retried
/// (or a batch sent) for longer than the claim timeout let another instance
/// holding the same alert take the claim over and send it too. The claim is
/// now renewed while its send is retried, and marked as soon as it is sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_is_kept_alive_while_its_send_is_retried() {
    use std::sync::Arc;
    use trailwatch::state::StateStore;

    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = fresh("tw-lease", Duration::from_secs(4)).await;
    let a = Arc::new(SharedState::new(client(), &settings, "tw-a"));
    let b = SharedState::new(client(), &settings, "tw-b");

    // The receiver refuses for three claim timeouts, then takes the alert.
    let open_at = std::time::Instant::now() + Duration::from_secs(12);
    let (url, counts) = common::counting_receiver::start(open_at).await;
    let config = trailwatch::config::Config::from_toml(
        &format!("[[sinks]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"{url}\"\n"),
        dir.path(),
    )
    .expect("config");
    let store = Arc::new(StateStore::open(&dir.path().join("a.db")).expect("state"));
    let id = "tw-00000000000000d1".to_owned();
    common::outbox::commit_samples(&store, "k", std::slice::from_ref(&id));
    let policy = trailwatch::sinks::deliver::Policy {
        breaker_threshold: 1000,
        base: Duration::from_millis(200),
        cap: Duration::from_millis(400),
        shared: Some(Arc::clone(&a)),
        ..Default::default()
    };
    let sinks = config.sinks.clone();
    let sending = tokio::spawn(async move {
        trailwatch::sinks::deliver::deliver_all(&store, &sinks, &policy).await
    });

    // Once A is sending (it claimed first), instance B holds the same alert
    // and keeps asking for it.
    while !counts.lock().expect("counts").contains_key("requests") {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while std::time::Instant::now() < open_at + Duration::from_secs(1) {
        assert_eq!(
            b.claim("hook", &id).await.expect("claim"),
            Claim::Elsewhere,
            "B took over a claim A still holds"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let report = sending.await.expect("join").expect("delivered");
    assert!(!report.is_empty(), "{report:?}");
    assert_eq!(
        counts.lock().expect("counts").get(&id).copied(),
        Some(1),
        "sent once"
    );
    // Marked delivered at once: nobody takes it over after the timeout.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(b.claim("hook", &id).await.expect("claim"), Claim::Elsewhere);
}
