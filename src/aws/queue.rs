//! An SQS queue of notifications: long-polled receives, the visibility
//! timeout as a lease (extended while a message's objects are read),
//! deletes once they are committed, and the queue's redrive policy (after
//! how many receives a failing message goes to the dead-letter queue).

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName,
};

/// A call to the queue failed; the text names the queue and the call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{queue}: {call}: {reason}")]
pub struct QueueError {
    pub queue: String,
    pub call: &'static str,
    pub reason: String,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// The queue's redrive policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    pub max_receive_count: u32,
    pub dead_letter_queue: String,
}

/// The queue at `url`.
#[derive(Debug, Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// The region in an SQS URL (`https://sqs.<region>.amazonaws.com/...`), if
/// it names one.
pub fn queue_region(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut parts = host.split('.');
    (parts.next()? == "sqs")
        .then(|| parts.next().map(str::to_owned))
        .flatten()
        .filter(|r| r.contains('-'))
}

/// The ARN of the queue at `url` (`*` for what the URL does not say).
pub fn queue_arn(url: &str) -> String {
    let region = queue_region(url);
    let partition = super::region::partition(region.as_deref());
    let mut path = url
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split('/')
        .skip(1);
    let account = path.next().filter(|a| !a.is_empty()).unwrap_or("*");
    let name = path.next().filter(|n| !n.is_empty()).unwrap_or("*");
    format!(
        "arn:{partition}:sqs:{}:{account}:{name}",
        region.as_deref().unwrap_or("*")
    )
}

impl Queue {
    pub fn new(client: aws_sdk_sqs::Client, url: &str) -> Queue {
        Queue {
            client,
            url: url.to_owned(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, call: &'static str, e: impl std::error::Error) -> QueueError {
        QueueError {
            queue: self.url.clone(),
            call,
            reason: DisplayErrorContext(e).to_string(),
        }
    }

    /// Up to `max` messages (1 to 10), waiting up to `wait` for the first;
    /// each is hidden from other receivers for `lease`.
    pub async fn receive(
        &self,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .visibility_timeout(seconds(lease))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.error("ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(Message {
                    id: m.message_id()?.to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count,
                })
            })
            .collect())
    }

    /// Deletes `messages`; returns the ids of those SQS did not delete.
    pub async fn delete(&self, messages: &[&Message]) -> Result<Vec<String>, QueueError> {
        let mut failed = Vec::new();
        for chunk in messages.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .build()
                        .ok()
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("DeleteMessageBatch", e))?;
            for f in out.failed() {
                if let Some(m) = f.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    failed.push(format!("{} ({})", m.id, f.code()));
                }
            }
        }
        Ok(failed)
    }

    /// Sets the messages' visibility timeout to `lease` from now: extends
    /// the lease while they are read, or hands them back sooner (zero:
    /// at once) when they are left for later or for another consumer.
    pub async fn set_visibility(
        &self,
        messages: &[&Message],
        lease: Duration,
    ) -> Result<(), QueueError> {
        for chunk in messages.chunks(10) {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .visibility_timeout(seconds(lease))
                        .build()
                        .ok()
                })
                .collect();
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("ChangeMessageVisibilityBatch", e))?;
        }
        Ok(())
    }

    /// The queue's redrive policy, if it has one.
    pub async fn redrive(&self) -> Result<Option<Redrive>, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| self.error("GetQueueAttributes", e))?;
        let policy = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
        Ok(policy.and_then(|p| {
            let count = match &p["maxReceiveCount"] {
                serde_json::Value::String(s) => s.parse().ok(),
                v => v.as_u64().map(|n| n as u32),
            }?;
            Some(Redrive {
                max_receive_count: count,
                dead_letter_queue: p["deadLetterTargetArn"].as_str()?.to_owned(),
            })
        }))
    }
}

fn seconds(d: Duration) -> i32 {
    d.as_secs().min(43_200) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_names_its_arn() {
        assert_eq!(
            queue_arn("https://sqs.eu-west-1.amazonaws.com/123456789012/tw"),
            "arn:aws:sqs:eu-west-1:123456789012:tw"
        );
        assert_eq!(
            queue_arn("https://sqs.us-gov-west-1.amazonaws.com/123456789012/tw"),
            "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:tw"
        );
        assert_eq!(
            queue_arn("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/tw"),
            "arn:aws-cn:sqs:cn-north-1:123456789012:tw"
        );
        assert_eq!(
            queue_arn("http://127.0.0.1:4566/000000000000/tw"),
            "arn:aws:sqs:*:000000000000:tw"
        );
    }

    #[test]
    fn a_queue_url_names_its_region() {
        assert_eq!(
            queue_region("https://sqs.eu-west-1.amazonaws.com/123456789012/q").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            queue_region("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(queue_region("http://127.0.0.1:4566/000000000000/q"), None);
        assert_eq!(
            queue_region("http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/q")
                .as_deref(),
            Some("us-east-1")
        );
    }
}
