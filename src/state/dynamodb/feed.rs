//! The stateful rules across instances: every instance puts, per object it
//! reads, the records that feed a correlation or first-seen rule in
//! `<prefix>-feed` (one item per object, or a few for a big one; a
//! conditional put on the object's key, so that an object read twice, by
//! one instance or by two, is fed once), and one instance at a time, the
//! leader, runs the engine over what all of them put
//! (`src/pipeline/rule_leader.rs`; its engine also counts an eventID once,
//! so a record read through two trails is fed once). The leader holds a
//! lease in `<prefix>-rules` (a conditional put, renewed every round, taken
//! over once it lapses) and keeps the engine's state there, so that whoever
//! leads next goes on where it stopped.
//!
//! `<prefix>-feed`, keyed by `event` (`<bucket>/<key>#<part>`): `records`
//! (JSON: each record's text and the ids of the rules it matched),
//! `bucket` and `key`, and, until the leader has fed it, `todo` and `at`
//! (when it was put), the keys of the sparse index `todo` the leader reads
//! in that order. `<prefix>-rules`, keyed by `name`: `lease` (`owner`,
//! `until`), `engine` (`gen`, `chunks`, `done`: the items of the round that
//! saved it) and `engine#<gen>#<n>`, the state's compressed chunks.

use std::io::{Read, Write};
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;

use super::{SharedError, SharedState, n, now, s};
use crate::alert::ObjectRef;

/// The sparse index of the events the leader has yet to feed.
pub const TODO_INDEX: &str = "todo";
/// How long an event is remembered against feeding it twice.
const REMEMBER: Duration = Duration::from_secs(2 * 86_400);
/// The largest chunk of the engine's state in one item (DynamoDB's limit is
/// 400 KB an item).
const CHUNK: usize = 300_000;
/// Puts and updates in flight at once.
const AT_ONCE: usize = 16;

/// One record that feeds the stateful rules: its text and the ids of the
/// rules it matched that feed a stateful rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FedRecord {
    pub text: String,
    pub rules: Vec<String>,
}

/// Records of one object that feed the stateful rules (all of them, or a
/// part of a big object's).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// `<bucket>/<key>#<part>`.
    pub event: String,
    pub records: Vec<FedRecord>,
    pub object: Option<ObjectRef>,
}

/// An item's records stay under this many bytes of text (DynamoDB's limit
/// is 400 KB an item).
pub const ITEM_TEXT_MAX: usize = 300_000;

/// The engine's state as the last leader saved it.
#[derive(Debug, Clone, Default)]
pub struct SavedEngine {
    /// How many times it was saved (0: never).
    pub generation: i64,
    /// How many chunks it is in.
    pub chunks: i64,
    pub state: Option<serde_json::Value>,
    /// The events of the round that saved it: fed, maybe still in the index.
    pub done: Vec<String>,
}

fn text_of(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn number_of(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> i64 {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

fn list_of(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> Vec<String> {
    match item.get(k) {
        Some(AttributeValue::L(list)) => {
            list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
        }
        _ => Vec::new(),
    }
}

fn list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.as_str())).collect())
}

impl SharedState {
    /// Puts records for the leader to feed; an event already put (by this
    /// instance or another) is left as it is. Returns how many were new.
    pub async fn feed(&self, items: &[FeedItem]) -> Result<usize, SharedError> {
        let results: Vec<Result<bool, SharedError>> = futures::stream::iter(items.to_vec())
            .map(|item| {
                let this = self.clone();
                async move { this.feed_one(&item).await }
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        let mut new = 0;
        for r in results {
            new += usize::from(r?);
        }
        Ok(new)
    }

    async fn feed_one(&self, item: &FeedItem) -> Result<bool, SharedError> {
        let at = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.feed)
            .item("event", s(item.event.as_str()))
            .item(
                "records",
                s(serde_json::to_string(&item.records).unwrap_or_default()),
            )
            .item("todo", s("1"))
            .item("at", AttributeValue::N(at.to_string()))
            .item("expires", n(now() + REMEMBER.as_secs() as i64))
            .condition_expression("attribute_not_exists(#event)")
            .expression_attribute_names("#event", "event");
        if let Some(o) = &item.object {
            put = put
                .item("bucket", s(o.bucket.as_str()))
                .item("key", s(o.key.as_str()));
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(Self::error(&self.feed, "PutItem", e)),
        }
    }

    /// Takes or renews the leader's lease for `lease`; false while another
    /// instance holds it.
    pub async fn lead(&self, lease: Duration) -> Result<bool, SharedError> {
        let at = now();
        let put = self
            .client
            .put_item()
            .table_name(&self.rules)
            .item("name", s("lease"))
            .item("owner", s(&self.instance))
            .item("until", n(at + lease.as_secs() as i64))
            .condition_expression("attribute_not_exists(#name) OR #owner = :me OR #until < :now")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":me", s(&self.instance))
            .expression_attribute_values(":now", n(at))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(Self::error(&self.rules, "PutItem", e)),
        }
    }

    /// Lets the lease go (at stop), so that another instance leads at once.
    pub async fn step_down(&self) -> Result<(), SharedError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.rules)
            .item("name", s("lease"))
            .item("owner", s(""))
            .item("until", n(0))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", s(&self.instance))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(Self::error(&self.rules, "PutItem", e)),
        }
    }

    /// Up to `limit` items not yet fed, oldest put first.
    pub async fn waiting(&self, limit: usize) -> Result<Vec<FeedItem>, SharedError> {
        let mut out = Vec::new();
        let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.feed)
                .index_name(TODO_INDEX)
                .key_condition_expression("#todo = :todo")
                .expression_attribute_names("#todo", "todo")
                .expression_attribute_values(":todo", s("1"))
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Self::error(&self.feed, "Query", e))?;
            for item in page.items() {
                let (Some(event), Some(records)) =
                    (text_of(item, "event"), text_of(item, "records"))
                else {
                    continue;
                };
                let Ok(records) = serde_json::from_str(&records) else {
                    tracing::warn!(table = %self.feed, item = %event, "a feed item whose records cannot be read: passed over");
                    continue;
                };
                let object = match (text_of(item, "bucket"), text_of(item, "key")) {
                    (Some(bucket), Some(key)) => Some(ObjectRef { bucket, key }),
                    _ => None,
                };
                out.push(FeedItem {
                    event,
                    records,
                    object,
                });
            }
            match page.last_evaluated_key() {
                Some(k) if out.len() < limit => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// Takes fed events out of the index (their keys stay, against feeding
    /// them again, until they expire).
    pub async fn fed(&self, events: &[String]) -> Result<(), SharedError> {
        let results: Vec<Result<(), SharedError>> = futures::stream::iter(events.to_vec())
            .map(|event| {
                let this = self.clone();
                async move { this.fed_one(&event).await }
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn fed_one(&self, event: &str) -> Result<(), SharedError> {
        self.client
            .update_item()
            .table_name(&self.feed)
            .key("event", s(event))
            .update_expression("REMOVE #todo, #at, #record")
            .condition_expression("attribute_exists(#event)")
            .expression_attribute_names("#todo", "todo")
            .expression_attribute_names("#at", "at")
            .expression_attribute_names("#record", "record")
            .expression_attribute_names("#event", "event")
            .send()
            .await
            .map(|_| ())
            .or_else(|e| match e.code() {
                Some("ConditionalCheckFailedException") => Ok(()),
                _ => Err(Self::error(&self.feed, "UpdateItem", e)),
            })
    }

    /// The engine's state as the last leader saved it.
    pub async fn load_engine(&self) -> Result<SavedEngine, SharedError> {
        let Some(head) = self.rules_item("engine").await? else {
            return Ok(SavedEngine::default());
        };
        let generation = number_of(&head, "gen");
        let chunks = number_of(&head, "chunks");
        let mut packed = Vec::new();
        for i in 0..chunks {
            let name = format!("engine#{generation}#{i}");
            let Some(item) = self.rules_item(&name).await? else {
                return Err(SharedError {
                    table: self.rules.clone(),
                    call: "GetItem",
                    reason: format!("{name}: missing"),
                });
            };
            if let Some(AttributeValue::B(b)) = item.get("data") {
                packed.extend_from_slice(b.as_ref());
            }
        }
        let mut json = Vec::new();
        flate2::read::DeflateDecoder::new(&packed[..])
            .read_to_end(&mut json)
            .map_err(|e| SharedError {
                table: self.rules.clone(),
                call: "GetItem",
                reason: format!("engine generation {generation}: {e}"),
            })?;
        Ok(SavedEngine {
            generation,
            chunks,
            state: serde_json::from_slice(&json).ok(),
            done: list_of(&head, "done"),
        })
    }

    /// An item of `<prefix>-rules`, read consistently.
    pub(super) async fn rules_item(
        &self,
        name: &str,
    ) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, SharedError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.rules)
            .key("name", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Self::error(&self.rules, "GetItem", e))?;
        Ok(got.item().cloned())
    }

    /// Saves the engine's state as generation `after + 1`, with the items
    /// of the round that led to it, and lets generation `after`'s
    /// `previous` chunks go; its number of chunks, or `None` when another
    /// leader saved since generation `after` (this instance no longer
    /// leads).
    pub async fn save_engine(
        &self,
        after: i64,
        previous: i64,
        state: &serde_json::Value,
        done: &[String],
    ) -> Result<Option<i64>, SharedError> {
        let generation = after + 1;
        let mut packed =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        let json = serde_json::to_vec(state).unwrap_or_default();
        let written = packed.write_all(&json).and_then(|()| packed.finish());
        let packed = written.map_err(|e| SharedError {
            table: self.rules.clone(),
            call: "PutItem",
            reason: e.to_string(),
        })?;
        let chunks: Vec<&[u8]> = packed.chunks(CHUNK).collect();
        // The chunks outlive the next generations a while (a leader may be
        // reading them); DynamoDB's TTL removes them after.
        let expires = now() + REMEMBER.as_secs() as i64;
        for (i, chunk) in chunks.iter().enumerate() {
            self.client
                .put_item()
                .table_name(&self.rules)
                .item("name", s(format!("engine#{generation}#{i}")))
                .item("data", AttributeValue::B(Blob::new(*chunk)))
                .item("expires", n(expires))
                .send()
                .await
                .map_err(|e| Self::error(&self.rules, "PutItem", e))?;
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.rules)
            .item("name", s("engine"))
            .item("gen", n(generation))
            .item("chunks", n(chunks.len() as i64))
            .item("done", list(done))
            .item("owner", s(&self.instance))
            .item("at", n(now()))
            .condition_expression("attribute_not_exists(#name) OR #gen = :after")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#gen", "gen")
            .expression_attribute_values(":after", n(after))
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => return Ok(None),
            Err(e) => return Err(Self::error(&self.rules, "PutItem", e)),
        }
        for i in 0..previous {
            let name = format!("engine#{after}#{i}");
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.rules)
                .key("name", s(name.as_str()))
                .send()
                .await;
            if let Err(e) = deleted {
                // Its TTL removes it later.
                tracing::debug!(item = %name, error = %DisplayErrorContext(e), "an old chunk of the engine's state stays");
            }
        }
        Ok(Some(chunks.len() as i64))
    }
}
