//! Shared state: the records an object holds for the stateful rules, as
//! items of the shared feed the leader's engine reads (DESIGN.md,
//! "Scale-out"; `src/state/dynamodb/feed.rs`).

use sha2::{Digest, Sha256};

use crate::alert::ObjectRef;
use crate::rules::{Held, RuleSet};
use crate::state::dynamodb::FeedItem;

/// One feed item per held record, keyed by its eventID (a digest of its
/// text when it has none, so that the same record is still one item).
pub fn items(rules: &RuleSet, held: &[Held], object: &ObjectRef) -> Vec<FeedItem> {
    held.iter()
        .map(|h| FeedItem {
            event: match h.event_id() {
                Some(id) => id.to_owned(),
                None => format!(
                    "sha256:{}",
                    hex::encode(Sha256::digest(h.text().as_bytes()))
                ),
            },
            record: h.text().to_owned(),
            rules: rules.held_rule_ids(h),
            object: Some(object.clone()),
        })
        .collect()
}
