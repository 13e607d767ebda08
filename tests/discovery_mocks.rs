//! Discovery against mocked CloudTrail responses (aws-smithy-mocks), for what
//! moto never reports: a `LatestDeliveryError`, and a trail that stops.

mod common;

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsOutput;
use aws_sdk_cloudtrail::operation::get_trail_status::GetTrailStatusOutput;
use aws_sdk_cloudtrail::types::Trail;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use trailwatch::pipeline::Crawler;
use trailwatch::pipeline::trail_alerts::{DELIVERY_ERROR, NOT_LOGGING};

const ARN: &str = "arn:aws:cloudtrail:us-east-1:111111111111:trail/main";

fn trail() -> Trail {
    Trail::builder()
        .name("main")
        .trail_arn(ARN)
        .home_region("us-east-1")
        .s3_bucket_name("logs")
        .s3_key_prefix("org")
        .kms_key_id("arn:aws:kms:us-east-1:111111111111:key/k1")
        .is_organization_trail(true)
        .build()
}

fn cloudtrail(logging: bool, delivery_error: Option<&str>) -> Client {
    let describe = mock!(Client::describe_trails)
        .match_requests(|r| r.include_shadow_trails() == Some(true))
        .then_output(|| DescribeTrailsOutput::builder().trail_list(trail()).build());
    let error = delivery_error.map(str::to_owned);
    let status = mock!(Client::get_trail_status)
        .match_requests(|r| r.name() == Some(ARN))
        .then_output(move || {
            let mut b = GetTrailStatusOutput::builder()
                .is_logging(logging)
                .latest_delivery_attempt_time("2026-11-21T10:00:00Z");
            if let Some(e) = &error {
                b = b.latest_delivery_error(e);
            }
            b.build()
        });
    mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, [&describe, &status])
}

async fn crawler(dir: &std::path::Path) -> Crawler {
    common::offline::crawler(dir, "[discovery]\nregions = [\"us-east-1\"]\n").await
}

#[tokio::test]
async fn a_delivery_error_raises_one_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crawler = crawler(dir.path()).await;
    crawler
        .clients
        .set_cloudtrail(None, "us-east-1", cloudtrail(true, None));
    let found = crawler.discover_trails().await;
    let (trails, errors) = (found.trails, found.errors);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(trails.len(), 1);
    assert_eq!(trails[0].prefix.as_deref(), Some("org"));
    assert!(trails[0].organization && trails[0].logging);
    assert_eq!(
        crawler.record_trail_status(&trails).await.expect("record"),
        0
    );

    crawler.clients.set_cloudtrail(
        None,
        "us-east-1",
        cloudtrail(true, Some("AccessDenied: s3:PutObject on logs")),
    );
    let trails = crawler.discover_trails().await.trails;
    assert_eq!(
        crawler.record_trail_status(&trails).await.expect("record"),
        1
    );
    // Seen again: no second alert.
    assert_eq!(
        crawler.record_trail_status(&trails).await.expect("record"),
        0
    );
    let alerts = crawler.state.alerts_after(0, 10).expect("outbox");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert.rule.id, DELIVERY_ERROR);
    assert_eq!(
        alerts[0].alert.event.account_id.as_deref(),
        Some("111111111111")
    );
}

#[tokio::test]
async fn a_trail_that_stops_raises_an_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crawler = crawler(dir.path()).await;
    crawler
        .clients
        .set_cloudtrail(None, "us-east-1", cloudtrail(true, None));
    let trails = crawler.discover_trails().await.trails;
    crawler.record_trail_status(&trails).await.expect("record");
    crawler
        .clients
        .set_cloudtrail(None, "us-east-1", cloudtrail(false, None));
    let trails = crawler.discover_trails().await.trails;
    assert!(!trails[0].logging);
    assert_eq!(
        crawler.record_trail_status(&trails).await.expect("record"),
        1
    );
    let alerts = crawler.state.alerts_after(0, 10).expect("outbox");
    assert_eq!(alerts[0].alert.rule.id, NOT_LOGGING);
}
