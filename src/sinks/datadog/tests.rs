use time::macros::datetime;

use super::*;
use crate::alert::{AlertEvent, AlertRule, ObjectRef};

fn alert(severity: &str, time: &str) -> Alert {
    Alert {
        id: "tw-9f2c4e1a7b3d5e60".into(),
        rule: AlertRule {
            id: "aws-cloudtrail-stop-logging".into(),
            title: "CloudTrail logging stopped".into(),
            severity: severity.into(),
            tags: vec!["attack.t1562.008".into()],
            source: "builtin".into(),
        },
        event: AlertEvent {
            id: Some("e1".into()),
            name: Some("StopLogging".into()),
            source: Some("cloudtrail.amazonaws.com".into()),
            time: Some(time.into()),
            account_id: Some("123456789012".into()),
            account_name: None,
            account_ou_path: None,
            region: Some("us-east-1".into()),
            principal: Some("arn:aws:iam::123456789012:user/Alice Smith".into()),
            principal_type: Some("IAMUser".into()),
            source_ip: Some("203.0.113.7".into()),
            user_agent: Some("aws-cli/2.15".into()),
            error_code: None,
        },
        object: Some(ObjectRef {
            bucket: "org-trail-logs".into(),
            key: "AWSLogs/1/CloudTrail/us-east-1/2026/11/21/x.json.gz".into(),
        }),
        count: 1,
        related_event_ids: vec![],
        detected_at: "2026-11-21T10:09:40Z".into(),
        burst: None,
    }
}

#[test]
fn levels_follow_the_table() {
    assert_eq!(level("critical"), ("error", "normal"));
    assert_eq!(level("high"), ("error", "normal"));
    assert_eq!(level("medium"), ("warning", "normal"));
    assert_eq!(level("low"), ("info", "low"));
    assert_eq!(level("informational"), ("info", "low"));
}

#[test]
fn the_payload_has_every_field_within_its_limits() {
    let now = datetime!(2026-11-21 12:00 UTC);
    let context = AlertContext {
        skip_sinks: Vec::new(),
        description: Some("Check who stopped the trail.".into()),
        falsepositives: vec!["Retiring a trail".into()],
        record: Some(format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000))),
        resource: None,
        ungrouped: false,
    };
    let body = event(
        &alert("high", "2026-11-21T10:04:11Z"),
        &context,
        &["env:Prod".into()],
        now,
    );
    assert_eq!(body["alert_type"], "error");
    assert_eq!(body["priority"], "normal");
    assert_eq!(body["source_type_name"], "trailwatch");
    assert_eq!(body["date_happened"], 1_795_255_451);
    let title = body["title"].as_str().expect("title");
    assert_eq!(title, "CloudTrail logging stopped by Alice Smith");
    let text = body["text"].as_str().expect("text");
    assert!(text.chars().count() <= TEXT_MAX, "{}", text.chars().count());
    assert!(text.starts_with("%%% \n") && text.ends_with("\n %%%"));
    assert!(text.contains("Check who stopped the trail."));
    assert!(text.contains("s3://org-trail-logs/AWSLogs/"));
    assert!(
        text.contains("```json") && text.contains("\n```\n %%%"),
        "the record block is closed"
    );
    assert!(body["aggregation_key"].as_str().expect("key").len() <= AGGREGATION_KEY_MAX);
    let tags: Vec<&str> = body["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(tags.contains(&"source:cloudtrail"));
    assert!(tags.contains(&"alert_id:tw-9f2c4e1a7b3d5e60"));
    assert!(tags.contains(&"rule_id:aws-cloudtrail-stop-logging"));
    assert!(tags.contains(&"severity:high"));
    assert!(tags.contains(&"aws_account:123456789012"));
    assert!(tags.contains(&"principal:arn:aws:iam::123456789012:user/alice_smith"));
    assert!(tags.contains(&"env:prod"));
    for t in tags {
        assert!(t.contains(':') && t.len() <= TAG_MAX, "{t}");
    }
}

#[test]
fn old_events_leave_date_happened_out() {
    let now = datetime!(2026-11-21 12:00 UTC);
    let body = event(
        &alert("low", "2026-11-20T17:59:59Z"),
        &AlertContext::default(),
        &[],
        now,
    );
    assert!(body.get("date_happened").is_none());
    let body = event(
        &alert("low", "2026-11-20T18:00:00Z"),
        &AlertContext::default(),
        &[],
        now,
    );
    assert!(body.get("date_happened").is_some());
    assert_eq!(body["priority"], "low");
}

#[test]
fn long_titles_and_odd_tags_are_cut_cleanly() {
    let mut a = alert("medium", "2026-11-21T10:04:11Z");
    a.rule.title = "T".repeat(300);
    assert_eq!(title(&a).chars().count(), TITLE_MAX);
    assert_eq!(
        sanitize_tag("1st:Value With Spaces!"),
        "t1st:value_with_spaces_"
    );
    assert_eq!(sanitize_tag(&"a".repeat(500)).chars().count(), TAG_MAX);
}
