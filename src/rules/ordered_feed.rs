//! The stateful rules fed in a fixed order when objects are read in parallel
//! (`scan` here; the crawl feeds each object's held records at its commit,
//! which follows listing order).
//!
//! A correlation's windows open where its first event comes in, so feeding it
//! records in whatever order threads finish their objects would make its
//! alerts depend on the number of threads and on timing. `scan` instead
//! holds, per object, the records that feed a correlation (their text and the
//! rules they matched) and feeds the objects in input order, as one thread
//! reading them in that order would. Only records that matched a rule a
//! correlation uses are held, and only while an earlier object is still
//! being read.

use std::collections::BTreeMap;

use crate::alert::ObjectRef;
use crate::event::shallow::MemberSpan;
use crate::event::{MemberStore, Record};

use super::{Rule, RuleSet};

/// One record held for the stateful rules.
#[derive(Debug)]
pub struct Held {
    text: String,
    /// Where the parser found the text's members (empty: parse it again).
    spans: Vec<MemberSpan>,
    /// Whether `text` is compact, as the record it was said.
    compact: bool,
    /// The matched rules that feed a correlation, by position in the set.
    rules: Vec<u32>,
    event_id: Option<String>,
}

impl Held {
    /// The record's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The record's eventID, when it has one.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }
}

/// The records of objects read so far, fed to the correlator in input order.
/// One thread at a time feeds, outside the lock (`feed_in_order`): a thread
/// that finishes its object meanwhile leaves its records and goes on.
#[derive(Debug, Default)]
pub struct OrderedFeed {
    next: usize,
    waiting: BTreeMap<usize, Vec<Held>>,
    /// The bytes of text the waiting objects (and the one being fed) hold.
    waiting_bytes: usize,
    /// A thread is feeding object `next`.
    feeding: bool,
}

/// The held records of the object whose turn it is, taken to be fed.
#[derive(Debug)]
pub struct Batch {
    held: Vec<Held>,
    bytes: usize,
}

impl OrderedFeed {
    pub fn new() -> OrderedFeed {
        OrderedFeed::default()
    }

    /// Object `index` (numbered from 0 in input order, each once) is read:
    /// its held records wait their turn. When no thread is feeding and the
    /// next object's turn has come, the caller feeds it: its batch.
    pub fn finish(&mut self, index: usize, held: Vec<Held>) -> Option<Batch> {
        self.waiting_bytes += held.iter().map(|h| h.text.len()).sum::<usize>();
        self.waiting.insert(index, held);
        if self.feeding {
            return None;
        }
        self.take_next()
    }

    /// The feeder fed `batch`: the next object's, when it has been read.
    pub fn fed(&mut self, batch: Batch) -> Option<Batch> {
        self.waiting_bytes -= batch.bytes;
        self.next += 1;
        self.feeding = false;
        self.take_next()
    }

    fn take_next(&mut self) -> Option<Batch> {
        let held = self.waiting.remove(&self.next)?;
        self.feeding = true;
        let bytes = held.iter().map(|h| h.text.len()).sum();
        Some(Batch { held, bytes })
    }

    /// The object whose records go to the stateful rules next: every object
    /// before it has been fed. Its reader may feed its records as it reads
    /// them (`feed_now`), no later object being fed before it ends.
    pub fn next(&self) -> usize {
        self.next
    }

    /// The bytes of record text held by objects waiting for an earlier one.
    pub fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }

    /// How many objects wait for an earlier one.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// Object `index` is read, holding `held`: fed in its turn, with every
/// object after it whose turn comes while this thread feeds. Feeding is
/// done outside `feed`'s lock; `on_fed(next)` is called under it after each
/// object fed, with the next object to feed.
pub fn feed_in_order(
    feed: &std::sync::Mutex<OrderedFeed>,
    index: usize,
    held: Vec<Held>,
    rules: &RuleSet,
    detected_at: &str,
    mut on_fed: impl FnMut(&OrderedFeed),
) {
    let lock = || feed.lock().unwrap_or_else(|p| p.into_inner());
    let mut guard = lock();
    let mut batch = guard.finish(index, held);
    while let Some(b) = batch {
        // An object without held records (its reader fed them as it read)
        // is passed without letting go of the lock.
        if !b.held.is_empty() {
            drop(guard);
            for held in &b.held {
                rules.feed_held(held, None, detected_at);
            }
            guard = lock();
        }
        batch = guard.fed(b);
        on_fed(&guard);
    }
}

impl RuleSet {
    /// `record`'s matches that feed a correlation, held for later (`None`
    /// when none does).
    pub fn hold_for_correlation(&self, record: &Record, matched: &[&Rule]) -> Option<Held> {
        self.correlator.as_ref()?;
        let rules: Vec<u32> = matched
            .iter()
            .filter(|r| r.feeds)
            .filter_map(|r| self.position_of(r))
            .collect();
        if rules.is_empty() {
            return None;
        }
        let (text, spans, compact) = match record.text() {
            Some(text) => (
                text.to_owned(),
                record.spans().to_vec(),
                record.is_compact(),
            ),
            None => (serde_json::to_string(record).ok()?, Vec::new(), false),
        };
        let event_id = record.event_id().map(str::to_owned);
        Some(Held {
            text,
            spans,
            compact,
            rules,
            event_id,
        })
    }

    /// The ids of the rules `held` matched (for another instance's rule set,
    /// whose positions may differ).
    pub fn held_rule_ids(&self, held: &Held) -> Vec<String> {
        held.rules
            .iter()
            .filter_map(|&i| self.rules.get(i as usize))
            .map(|r| r.id.clone())
            .collect()
    }

    /// Feeds a record by its text and the ids of the rules it matched (as
    /// `held_rule_ids` gave them; ids this set does not hold are passed
    /// over). False when the text is not a record.
    pub fn feed_by_ids(
        &self,
        text: &str,
        ids: &[String],
        object: Option<&ObjectRef>,
        detected_at: &str,
    ) -> bool {
        let Ok(record) = Record::parse(text) else {
            return false;
        };
        let matched: Vec<&Rule> = self.rules.iter().filter(|r| ids.contains(&r.id)).collect();
        self.correlate(&record, &matched, object, detected_at);
        true
    }

    /// Feeds one held record (read from `object`) to the stateful rules.
    pub fn feed_held(&self, held: &Held, object: Option<&ObjectRef>, detected_at: &str) {
        let record = if held.spans.is_empty() {
            match Record::parse(&held.text) {
                Ok(record) => record,
                Err(_) => return,
            }
        } else {
            // The spans were found in this very text when it was read.
            Record::from_spans_in(
                &held.text,
                &held.spans,
                &mut MemberStore::default(),
                held.compact,
                None,
            )
        };
        let matched: Vec<&Rule> = held
            .rules
            .iter()
            .filter_map(|&i| self.rules.get(i as usize))
            .collect();
        self.correlate(&record, &matched, object, detected_at);
    }

    /// Where `rule` (one of this set's) is in it.
    fn position_of(&self, rule: &Rule) -> Option<u32> {
        let size = std::mem::size_of::<Rule>().max(1);
        let base = self.rules.as_ptr() as usize;
        let at = (rule as *const Rule as usize).checked_sub(base)? / size;
        match self.rules.get(at) {
            Some(r) if std::ptr::eq(r, rule) => u32::try_from(at).ok(),
            _ => self
                .rules
                .iter()
                .position(|r| std::ptr::eq(r, rule))
                .and_then(|at| u32::try_from(at).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects fed out of order wait, counted by the text they hold, until
    /// the one before them is fed; the count comes back to nothing.
    #[test]
    fn waiting_objects_are_counted_until_fed_in_order() {
        let (rules, _) = crate::rules::load_rule_set(true, &[]);
        let text = r#"{"eventID":"e1","eventTime":"2026-11-21T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}}"#;
        let record = Record::parse(text).expect("record");
        let mut scratch = Vec::new();
        let mut matched = Vec::new();
        rules.for_each_match(&record, &mut scratch, |r| matched.push(r));
        let held = || -> Vec<Held> {
            rules
                .hold_for_correlation(&record, &matched)
                .into_iter()
                .collect()
        };
        assert_eq!(held().len(), 1, "an enumeration call feeds a correlation");
        let at = "2026-11-21T10:00:00Z";
        let feed = std::sync::Mutex::new(OrderedFeed::new());
        let mut told = Vec::new();
        feed_in_order(&feed, 2, held(), &rules, at, |f| told.push(f.next()));
        feed_in_order(&feed, 1, held(), &rules, at, |f| told.push(f.next()));
        {
            let f = feed.lock().expect("feed");
            assert_eq!(
                (f.waiting(), f.waiting_bytes(), f.next()),
                (2, 2 * text.len(), 0)
            );
        }
        assert!(told.is_empty(), "nothing fed before object 0 ends");
        feed_in_order(&feed, 0, Vec::new(), &rules, at, |f| told.push(f.next()));
        let f = feed.lock().expect("feed");
        assert_eq!((f.waiting(), f.waiting_bytes(), f.next()), (0, 0, 3));
        assert_eq!(told, [1, 2, 3], "told after each object fed");
    }

    /// While one thread feeds, another that finishes an object leaves it
    /// for the feeder, which takes it in its turn.
    #[test]
    fn an_object_finished_while_another_is_fed_is_left_to_the_feeder() {
        let mut feed = OrderedFeed::new();
        assert!(
            feed.finish(1, Vec::new()).is_none(),
            "object 0 not read yet"
        );
        let first = feed.finish(0, Vec::new()).expect("object 0's turn");
        assert!(
            feed.finish(3, Vec::new()).is_none() && feed.finish(2, Vec::new()).is_none(),
            "a thread is feeding: the others go on"
        );
        let mut batch = Some(first);
        let mut turns = 0;
        while let Some(b) = batch {
            batch = feed.fed(b);
            turns += 1;
        }
        assert_eq!((turns, feed.next(), feed.waiting()), (4, 4, 0));
        assert!(
            feed.finish(5, Vec::new()).is_none(),
            "object 4 not read yet"
        );
        assert!(
            feed.finish(4, Vec::new()).is_some(),
            "no one feeds: its reader does"
        );
    }
}
