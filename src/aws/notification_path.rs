//! Whether new objects under a trail's prefix are announced anywhere a queue
//! can hear: the trail's own SNS topic, or the bucket's event notifications
//! (to a queue, to a topic, or to EventBridge) for created objects whose
//! prefix filter covers the trail's. A trail with none is only found by
//! the reconciler, late; `trailwatch trails` and `/readyz` name it.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{Event, FilterRuleName, NotificationConfigurationFilter};

/// How a target's objects are announced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NotificationPath {
    /// Each way found, e.g. `S3 → SQS arn:aws:sqs:…`.
    Found(Vec<String>),
    /// None: only the reconciler finds these objects.
    None,
    /// The bucket's configuration could not be read (the reason).
    Unknown(String),
}

impl std::fmt::Display for NotificationPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotificationPath::Found(ways) => write!(f, "{}", ways.join(", ")),
            NotificationPath::None => write!(f, "none"),
            NotificationPath::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

/// Whether a notification of `events` with `filter` covers new objects
/// under `root` (`[<prefix>/]AWSLogs/`).
fn covers(events: &[Event], filter: Option<&NotificationConfigurationFilter>, root: &str) -> bool {
    // CloudTrail writes each object with one PutObject.
    let created = events
        .iter()
        .any(|e| matches!(e.as_str(), "s3:ObjectCreated:*" | "s3:ObjectCreated:Put"));
    if !created {
        return false;
    }
    let rules = filter
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default();
    rules.iter().all(|r| {
        let value = r.value().unwrap_or_default();
        match r.name() {
            Some(FilterRuleName::Prefix) => root.starts_with(value),
            // CloudTrail's objects all end in .json.gz.
            Some(FilterRuleName::Suffix) => ".json.gz".ends_with(value),
            _ => true,
        }
    })
}

/// The ways `bucket` announces objects under `root`, besides the trails'
/// own `topics`.
pub async fn notification_path(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    root: &str,
    topics: &[String],
) -> NotificationPath {
    let mut ways: Vec<String> = topics
        .iter()
        .map(|t| format!("the trail's SNS topic {t}"))
        .collect();
    match client
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(n) => {
            for q in n.queue_configurations() {
                if covers(q.events(), q.filter(), root) {
                    ways.push(format!("S3 → SQS {}", q.queue_arn()));
                }
            }
            for t in n.topic_configurations() {
                if covers(t.events(), t.filter(), root) {
                    ways.push(format!("S3 → SNS {}", t.topic_arn()));
                }
            }
            if n.event_bridge_configuration().is_some() {
                ways.push("S3 → EventBridge".into());
            }
        }
        Err(e) if ways.is_empty() => {
            return NotificationPath::Unknown(format!(
                "GetBucketNotificationConfiguration s3://{bucket}: {}",
                DisplayErrorContext(&e)
            ));
        }
        Err(_) => {}
    }
    if ways.is_empty() {
        NotificationPath::None
    } else {
        NotificationPath::Found(ways)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::{FilterRule, S3KeyFilter};

    fn filter(prefix: &str) -> NotificationConfigurationFilter {
        NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value(prefix)
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_notification_covers_a_trail_when_its_events_and_prefix_do() {
        let created = [Event::from("s3:ObjectCreated:*")];
        assert!(covers(&created, None, "org/AWSLogs/"));
        assert!(covers(&created, Some(&filter("org/")), "org/AWSLogs/"));
        assert!(!covers(&created, Some(&filter("other/")), "org/AWSLogs/"));
        assert!(!covers(
            &[Event::from("s3:ObjectRemoved:*")],
            None,
            "AWSLogs/"
        ));
        assert!(covers(
            &[Event::from("s3:ObjectCreated:Put")],
            None,
            "AWSLogs/"
        ));
    }
}
