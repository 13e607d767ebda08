//! The state several instances share, in DynamoDB (`[state] backend =
//! "dynamodb"`): which objects are committed (so that an object notified
//! twice, or re-read after a lease lapsed, is read by one instance and
//! skipped by the others), and who delivers each alert to each HTTP sink
//! (a conditional put on the sink and alert id: two instances holding the
//! same alert never both send it), the records the stateful rules feed on
//! and their engine's state, run by one leader at a time (`feed.rs`).
//! Everything else stays in each instance's SQLite file (ARCHITECTURE.md,
//! "Scale-out": what is shared and what is not).
//!
//! Tables, created by `trailwatch state init` (on demand, TTL on `expires`):
//! `<prefix>-objects` keyed by `object` (`<bucket>/<key>`),
//! `<prefix>-deliveries` keyed by `delivery` (`<sink>/<alert id>`), and
//! `<prefix>-alerts`, every instance's alerts for lookups, partitioned by
//! the day they were raised (`alerts.rs`), and `<prefix>-feed` and
//! `<prefix>-rules`, the records the stateful rules' leader feeds to its
//! engine and the engine's state (`feed.rs`).

mod alerts;
mod feed;
mod windows;

pub use alerts::{SharedAlert, sync_alerts};
pub use feed::{FedRecord, FeedItem, ITEM_TEXT_MAX, SavedEngine};

use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};

use crate::config::SharedStateConfig;

/// How long shared rows are kept (DynamoDB's TTL removes them after).
const KEEP: Duration = Duration::from_secs(90 * 86_400);

/// A call to a shared table failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("DynamoDB table {table}: {call}: {reason}")]
pub struct SharedError {
    pub table: String,
    pub call: &'static str,
    pub reason: String,
}

/// Whether this instance may deliver an alert to a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This instance holds the claim: send, then mark it delivered.
    Ours,
    /// Another instance delivered it, or holds a live claim on it.
    Elsewhere,
}

/// The shared tables, and who this instance is.
#[derive(Debug, Clone)]
pub struct SharedState {
    client: aws_sdk_dynamodb::Client,
    objects: String,
    deliveries: String,
    alerts: String,
    feed: String,
    rules: String,
    instance: String,
    claim_timeout: Duration,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_element(table: &str, name: &str, kind: KeyType) -> Result<KeySchemaElement, SharedError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| SharedState::error(table, "CreateTable", e))
}

impl SharedState {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        config: &SharedStateConfig,
        instance: &str,
    ) -> SharedState {
        SharedState {
            client,
            objects: format!("{}-objects", config.table_prefix),
            deliveries: format!("{}-deliveries", config.table_prefix),
            alerts: format!("{}-alerts", config.table_prefix),
            feed: format!("{}-feed", config.table_prefix),
            rules: format!("{}-rules", config.table_prefix),
            instance: instance.to_owned(),
            claim_timeout: config.claim_timeout,
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// How long a delivery claim holds before another instance may take it.
    pub fn claim_timeout(&self) -> Duration {
        self.claim_timeout
    }

    fn error(table: &str, call: &'static str, e: impl std::error::Error) -> SharedError {
        SharedError {
            table: table.to_owned(),
            call,
            reason: DisplayErrorContext(e).to_string(),
        }
    }

    /// Creates the tables that do not exist yet (on-demand capacity, TTL on
    /// `expires`) and waits until they are active; returns what it did per
    /// table.
    pub async fn init(&self) -> Result<Vec<String>, SharedError> {
        let mut done = Vec::new();
        for (table, key, sort) in [
            (&self.objects, "object", None),
            (&self.deliveries, "delivery", None),
            (&self.alerts, "day", Some("alert")),
            (&self.feed, "event", None),
            (&self.rules, "name", None),
        ] {
            let mut create = self
                .client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest);
            let mut attributes = vec![(key, ScalarAttributeType::S)];
            attributes.extend(sort.map(|s| (s, ScalarAttributeType::S)));
            for (name, kind) in [(Some(key), KeyType::Hash), (sort, KeyType::Range)] {
                let Some(name) = name else { continue };
                create = create.key_schema(key_element(table, name, kind)?);
            }
            if table == &self.feed {
                // The events the leader has yet to feed, in the order put.
                attributes.push(("todo", ScalarAttributeType::S));
                attributes.push(("at", ScalarAttributeType::N));
                let index = GlobalSecondaryIndex::builder()
                    .index_name(feed::TODO_INDEX)
                    .key_schema(key_element(table, "todo", KeyType::Hash)?)
                    .key_schema(key_element(table, "at", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|e| Self::error(table, "CreateTable", e))?;
                create = create.global_secondary_indexes(index);
            }
            for (name, kind) in attributes {
                create = create.attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(kind)
                        .build()
                        .map_err(|e| Self::error(table, "CreateTable", e))?,
                );
            }
            let created = create.send().await;
            let what = match created {
                Ok(_) => "created",
                Err(e) if e.code() == Some("ResourceInUseException") => "exists",
                Err(e) => return Err(Self::error(table, "CreateTable", e)),
            };
            self.wait_active(table).await?;
            let ttl = self
                .client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name("expires")
                        .build()
                        .map_err(|e| Self::error(table, "UpdateTimeToLive", e))?,
                )
                .send()
                .await;
            if let Err(e) = ttl {
                // Already on: DynamoDB refuses to set it twice.
                if e.code() != Some("ValidationException") {
                    return Err(Self::error(table, "UpdateTimeToLive", e));
                }
            }
            done.push(format!("{table}: {what}"));
        }
        Ok(done)
    }

    async fn wait_active(&self, table: &str) -> Result<(), SharedError> {
        for _ in 0..120 {
            let d = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| Self::error(table, "DescribeTable", e))?;
            if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(SharedError {
            table: table.to_owned(),
            call: "DescribeTable",
            reason: "not active after 60 s".into(),
        })
    }

    /// Whether some instance committed `s3://bucket/key` already.
    pub async fn object_committed(&self, bucket: &str, key: &str) -> Result<bool, SharedError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.objects)
            .key("object", s(format!("{bucket}/{key}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Self::error(&self.objects, "GetItem", e))?;
        Ok(got.item().is_some())
    }

    /// Records that this instance committed an object.
    pub async fn mark_committed(
        &self,
        bucket: &str,
        key: &str,
        status: &str,
        records: u64,
    ) -> Result<(), SharedError> {
        self.client
            .put_item()
            .table_name(&self.objects)
            .item("object", s(format!("{bucket}/{key}")))
            .item("status", s(status))
            .item("records", n(records as i64))
            .item("instance", s(&self.instance))
            .item("at", n(now()))
            .item("expires", n(now() + KEEP.as_secs() as i64))
            .send()
            .await
            .map_err(|e| Self::error(&self.objects, "PutItem", e))?;
        Ok(())
    }

    /// Claims the delivery of `alert` to `sink`: it is this instance's when
    /// nobody claimed it, when this instance did before (a restart), or
    /// when another's claim has lapsed without a delivery.
    pub async fn claim(&self, sink: &str, alert: &str) -> Result<Claim, SharedError> {
        let at = now();
        let put = self
            .client
            .put_item()
            .table_name(&self.deliveries)
            .item("delivery", s(format!("{sink}/{alert}")))
            .item("state", s("claimed"))
            .item("owner", s(&self.instance))
            .item("until", n(at + self.claim_timeout.as_secs() as i64))
            .item("expires", n(at + KEEP.as_secs() as i64))
            .condition_expression(
                "attribute_not_exists(delivery) OR (#state = :claimed AND (#owner = :me OR #until < :now))",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":me", s(&self.instance))
            .expression_attribute_values(":now", n(at))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Ours),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Claim::Elsewhere),
            Err(e) => Err(Self::error(&self.deliveries, "PutItem", e)),
        }
    }

    /// Marks a claimed alert delivered (for good: no claim takes it over).
    pub async fn delivered(&self, sink: &str, alert: &str) -> Result<(), SharedError> {
        let at = now();
        let update = self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .key("delivery", s(format!("{sink}/{alert}")))
            .update_expression("SET #state = :delivered, #at = :now")
            .condition_expression("#owner = :me")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":delivered", s("delivered"))
            .expression_attribute_values(":me", s(&self.instance))
            .expression_attribute_values(":now", n(at))
            .send()
            .await;
        match update {
            Ok(_) => Ok(()),
            // Taken over after our claim lapsed: the other instance marks it.
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(Self::error(&self.deliveries, "UpdateItem", e)),
        }
    }
}
