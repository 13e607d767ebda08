//! Shared state: the records an object holds for the stateful rules, as
//! items of the shared feed the leader's engine reads (ARCHITECTURE.md,
//! "Scale-out"; `src/state/dynamodb/feed.rs`): one item per object, split
//! when its records' text would not fit in one.

use crate::alert::ObjectRef;
use crate::rules::{Held, RuleSet};
use crate::state::dynamodb::{FedRecord, FeedItem, ITEM_TEXT_MAX};

/// The object's held records as feed items keyed `<bucket>/<key>#<part>`.
pub fn items(rules: &RuleSet, held: &[Held], object: &ObjectRef) -> Vec<FeedItem> {
    let mut parts: Vec<Vec<FedRecord>> = vec![Vec::new()];
    let mut size = 0;
    for h in held {
        let record = FedRecord {
            text: h.text().to_owned(),
            rules: rules.held_rule_ids(h),
        };
        let len = record.text.len() + 64;
        if size + len > ITEM_TEXT_MAX && !parts.last().is_none_or(Vec::is_empty) {
            parts.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(last) = parts.last_mut() {
            last.push(record);
        }
    }
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, records)| FeedItem {
            event: format!("{}/{}#{i}", object.bucket, object.key),
            records,
            object: Some(object.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_object_is_split_into_items_that_fit() {
        let (rules, _) = crate::rules::load_rule_set(true, &[]);
        let text = |n: usize| {
            format!(
                r#"{{"eventID":"e{n}","eventName":"GetSecretValue","eventSource":"secretsmanager.amazonaws.com","eventTime":"2026-12-06T10:00:00Z","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/s"}},"pad":"{}"}}"#,
                "x".repeat(50_000)
            )
        };
        let held: Vec<Held> = (0..20)
            .filter_map(|n| {
                let t = text(n);
                let record = crate::event::Record::parse(&t).ok()?;
                let mut matched = Vec::new();
                rules.for_each_match(&record, &mut Vec::new(), |r| matched.push(r));
                rules.hold_for_correlation(&record, &matched)
            })
            .collect();
        assert_eq!(
            held.len(),
            20,
            "GetSecretValue feeds a built-in correlation"
        );
        let object = ObjectRef {
            bucket: "b".into(),
            key: "k".into(),
        };
        let items = items(&rules, &held, &object);
        assert!(items.len() >= 4, "{} items", items.len());
        for item in &items {
            let size: usize = item.records.iter().map(|r| r.text.len()).sum();
            assert!(size <= ITEM_TEXT_MAX, "{size}");
        }
        let all: usize = items.iter().map(|i| i.records.len()).sum();
        assert_eq!(all, 20, "every record once");
        assert_eq!(items[1].event, "b/k#1");
    }
}
