//! What a costly matcher answered for a value it has seen before, kept per
//! thread. CloudTrail repeats itself: a day's records carry a few dozen
//! distinct user agents, each a hundred bytes or more, and a rule that
//! searches every one for a set of substrings would run its automaton over
//! the same text hundreds of thousands of times. A small table of recent
//! answers turns most of those searches into one comparison.
//!
//! The table is direct-mapped: a value's slot comes from a quick hash of its
//! length and a few of its bytes, and a slot holds one value, compared in
//! full before its answer is used, so a collision only costs a search.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots in a thread's table.
const SLOTS: usize = 512;
/// Shorter values are searched every time: the search is as cheap as a look-up.
pub(crate) const MIN_LEN: usize = 24;
/// Longer values are searched every time: the table keeps what it holds small.
pub(crate) const MAX_LEN: usize = 512;

struct Slot {
    owner: u64,
    text: Box<str>,
    answer: bool,
}

thread_local! {
    static TABLE: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
}

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A new matcher's key in the tables: never reused, so that a matcher
/// reloaded at the address of a dropped one does not find its answers.
pub(crate) fn new_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

/// `search(value)`, from this thread's table when `owner` has answered for
/// the same value before.
#[inline]
pub(crate) fn remembered(owner: u64, value: &str, search: impl FnOnce(&str) -> bool) -> bool {
    if !(MIN_LEN..=MAX_LEN).contains(&value.len()) {
        return search(value);
    }
    let at = slot_of(owner, value.as_bytes());
    remember(
        &TABLE,
        SLOTS,
        at,
        |slot| (slot.owner == owner && *slot.text == *value).then_some(slot.answer),
        || search(value),
        |answer| Slot {
            owner,
            text: value.into(),
            answer,
        },
    )
}

/// A value's slot: its length and three words of it (the start, the middle,
/// the end, where versions and names differ), mixed with the owner.
#[inline]
fn slot_of(owner: u64, bytes: &[u8]) -> usize {
    let n = bytes.len();
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    // `n >= MIN_LEN >= 8`: every word is inside the value.
    let mut h = (n as u64) ^ owner.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for w in [word(0), word(n / 2 - 4), word(n - 8)] {
        h = (h.rotate_left(29) ^ w).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
    (h >> 40) as usize % SLOTS
}

/// A detection's answer for a record's (`eventName`, `eventSource`), for
/// detections that read nothing else: a day of CloudTrail has a few hundred
/// such pairs, and a rule's filters (`eventSource: s3…, eventName: List…`
/// over a dozen services) cost far more to test than to look up.
struct CallSlot {
    owner: u64,
    name: Option<Box<str>>,
    source: Option<Box<str>>,
    /// One bit per detection of the owner's rule.
    answers: u64,
}

/// Slots in a thread's table of calls.
const CALL_SLOTS: usize = 2048;

thread_local! {
    static CALLS: RefCell<Vec<Option<CallSlot>>> = const { RefCell::new(Vec::new()) };
}

/// `evaluate()` (a rule's answers for a call, a bit per detection), from
/// this thread's table when `owner` has answered for the same (`name`,
/// `source`) before (`None`: the field is absent or null).
#[inline]
pub(crate) fn remembered_call(
    owner: u64,
    name: Option<&str>,
    source: Option<&str>,
    evaluate: impl FnOnce() -> u64,
) -> u64 {
    let at = call_slot_of(owner, name, source);
    remember(
        &CALLS,
        CALL_SLOTS,
        at,
        |slot| {
            (slot.owner == owner
                && slot.name.as_deref() == name
                && slot.source.as_deref() == source)
                .then_some(slot.answers)
        },
        evaluate,
        |answers| CallSlot {
            owner,
            name: name.map(Into::into),
            source: source.map(Into::into),
            answers,
        },
    )
}

/// The rules a record can match, for records that agree on the fields the
/// rule index reads (`RuleIndex::candidates`): a few thousand combinations
/// of name, source, identity type and error code cover a day of CloudTrail.
struct CandidateSlot {
    owner: u64,
    key: [Option<Box<str>>; 4],
    rules: Box<[u32]>,
}

/// Slots in a thread's table of candidates.
const CANDIDATE_SLOTS: usize = 4096;

thread_local! {
    static CANDIDATES: RefCell<Vec<Option<CandidateSlot>>> = const { RefCell::new(Vec::new()) };
}

/// Extends `out` with the rules index `owner` found for `key` before, from
/// this thread's table; else with what `find` puts in `out` (empty when
/// called), kept for the next record with the same key.
pub(crate) fn remembered_candidates(
    owner: u64,
    key: &[Option<&str>; 4],
    out: &mut Vec<u32>,
    find: impl FnOnce(&mut Vec<u32>),
) {
    let at = candidate_slot_of(owner, key);
    let found = CANDIDATES.with(|table| {
        let Ok(table) = table.try_borrow() else {
            return false;
        };
        match table.get(at) {
            Some(Some(slot))
                if slot.owner == owner
                    && slot.key.iter().zip(key).all(|(a, b)| a.as_deref() == *b) =>
            {
                out.extend_from_slice(&slot.rules);
                true
            }
            _ => false,
        }
    });
    if found {
        return;
    }
    find(out);
    CANDIDATES.with(|table| {
        if let Ok(mut table) = table.try_borrow_mut() {
            if table.is_empty() {
                table.resize_with(CANDIDATE_SLOTS, || None);
            }
            if let Some(kept) = table.get_mut(at) {
                *kept = Some(CandidateSlot {
                    owner,
                    key: key.map(|part| part.map(Into::into)),
                    rules: out.as_slice().into(),
                });
            }
        }
    });
}

/// A candidates key's slot, as `call_slot_of` hashes a call.
#[inline]
fn candidate_slot_of(owner: u64, key: &[Option<&str>; 4]) -> usize {
    parts_slot_of(owner, key, CANDIDATE_SLOTS)
}

/// The answer slot `at` of this thread's `table` (of `slots` slots) holds,
/// when `cached` says it is the one sought; else `answer()`, kept there as
/// `slot(answer)`.
#[inline]
fn remember<S: 'static, A: Copy>(
    table: &'static std::thread::LocalKey<RefCell<Vec<Option<S>>>>,
    slots: usize,
    at: usize,
    cached: impl FnOnce(&S) -> Option<A>,
    answer: impl FnOnce() -> A,
    slot: impl FnOnce(A) -> S,
) -> A {
    let found = table.with(|table| {
        let table = table.try_borrow().ok()?;
        cached(table.get(at)?.as_ref()?)
    });
    if let Some(answer) = found {
        return answer;
    }
    let answer = answer();
    table.with(|table| {
        if let Ok(mut table) = table.try_borrow_mut() {
            if table.is_empty() {
                table.resize_with(slots, || None);
            }
            if let Some(kept) = table.get_mut(at) {
                *kept = Some(slot(answer));
            }
        }
    });
    answer
}

/// A call's slot (see `parts_slot_of`).
#[inline]
fn call_slot_of(owner: u64, name: Option<&str>, source: Option<&str>) -> usize {
    parts_slot_of(owner, &[name, source], CALL_SLOTS)
}

/// A slot of `slots` for `parts`: the quick word hash of the owner, then
/// each part marked as present or not (so that `("ab", "c")` and
/// `("a", "bc")` differ).
#[inline]
fn parts_slot_of(owner: u64, parts: &[Option<&str>], slots: usize) -> usize {
    use std::hash::Hasher;
    let mut h = super::index::WordHash::default();
    h.write_u64(owner);
    for part in parts {
        match part {
            Some(text) => {
                h.write_u8(1);
                h.write(text.as_bytes());
            }
            None => h.write_u8(0),
        }
    }
    h.finish() as usize % slots
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn answers_come_from_the_table_only_for_the_same_matcher_and_value() {
        let (a, b) = (new_owner(), new_owner());
        let ua = "Boto3/1.34.54 md/Botocore#1.34.54 ua/2.0 os/linux lang/python#3.11.9";
        let searches = Cell::new(0);
        let search = |answer: bool| {
            let searches = &searches;
            move |_: &str| {
                searches.set(searches.get() + 1);
                answer
            }
        };
        assert!(remembered(a, ua, search(true)));
        assert!(remembered(a, ua, search(false)), "remembered, not searched");
        assert_eq!(searches.get(), 1);
        // Another matcher, the same value: its own answer.
        assert!(!remembered(b, ua, search(false)));
        // A value that differs in one byte in the middle is its own value.
        let other = ua.replace("lang/python#3.11.9", "lang/python#3.11.8");
        assert!(!remembered(a, &other, search(false)));
        assert_eq!(searches.get(), 3);
        // Short and long values are always searched.
        assert!(!remembered(a, "short", search(false)));
        assert!(remembered(a, "short", search(true)));
        let long = "x".repeat(MAX_LEN + 1);
        assert!(remembered(a, &long, search(true)));
        assert!(!remembered(a, &long, search(false)));
        assert_eq!(searches.get(), 7);
    }

    #[test]
    fn calls_are_told_apart_by_owner_name_and_source() {
        let (a, b) = (new_owner(), new_owner());
        let asked = Cell::new(0);
        let answer = |v: u64| {
            let asked = &asked;
            move || {
                asked.set(asked.get() + 1);
                v
            }
        };
        let s3 = Some("s3.amazonaws.com");
        assert_eq!(
            remembered_call(a, Some("ListBuckets"), s3, answer(0b101)),
            0b101
        );
        assert_eq!(
            remembered_call(a, Some("ListBuckets"), s3, answer(0)),
            0b101
        );
        assert_eq!(asked.get(), 1, "the second answer is remembered");
        assert_eq!(remembered_call(b, Some("ListBuckets"), s3, answer(0)), 0);
        assert_eq!(remembered_call(a, Some("ListBuckets"), None, answer(0)), 0);
        assert_eq!(remembered_call(a, None, s3, answer(0)), 0);
        // A name and a source that run together the same way are two calls.
        assert_eq!(
            remembered_call(a, Some("ListBucketss3.amazonaws.com"), Some(""), answer(0)),
            0
        );
        assert_eq!(asked.get(), 5);
        // Many pairs, each answered as first told.
        for round in 0..2 {
            for i in 0..5000u64 {
                let name = format!("Describe{i}");
                let want = i % 7;
                assert_eq!(
                    remembered_call(a, Some(&name), s3, || want),
                    want,
                    "{name} {round}"
                );
            }
        }
    }

    #[test]
    fn candidates_are_remembered_per_index_and_whole_key() {
        let (a, b) = (new_owner(), new_owner());
        let finds = Cell::new(0);
        let lookup = |owner: u64, key: [Option<&str>; 4], rules: &[u32]| {
            let mut out = vec![99];
            out.clear();
            remembered_candidates(owner, &key, &mut out, |out| {
                assert!(out.is_empty());
                finds.set(finds.get() + 1);
                out.extend_from_slice(rules);
            });
            out
        };
        let key = [
            Some("GetSecretValue"),
            Some("secretsmanager.amazonaws.com"),
            None,
            None,
        ];
        assert_eq!(lookup(a, key, &[1, 4]), [1, 4]);
        assert_eq!(lookup(a, key, &[]), [1, 4], "remembered");
        assert_eq!(finds.get(), 1);
        // Another index, or any part of the key different: found again.
        assert_eq!(lookup(b, key, &[2]), [2]);
        let mut typed = key;
        typed[2] = Some("AssumedRole");
        assert_eq!(lookup(a, typed, &[3]), [3]);
        let mut empty_error = key;
        empty_error[3] = Some("");
        assert_eq!(lookup(a, empty_error, &[5]), [5]);
        let run_together = [
            Some("GetSecretValuesecretsmanager.amazonaws.com"),
            Some(""),
            None,
            None,
        ];
        assert_eq!(lookup(a, run_together, &[6]), [6]);
        assert_eq!(finds.get(), 5);
        // Many keys, each answered as first found, whatever shares a slot.
        for round in 0..2 {
            for i in 0..10_000u32 {
                let name = format!("Describe{i}");
                let want = [i % 11, i % 13 + 20];
                let key = [Some(name.as_str()), Some("ec2.amazonaws.com"), None, None];
                assert_eq!(lookup(a, key, &want), want, "{name} {round}");
            }
        }
    }

    #[test]
    fn values_that_share_a_slot_are_told_apart() {
        let owner = new_owner();
        // Many values, two answers: every look-up must give the value's own.
        let values: Vec<String> = (0..5000)
            .map(|i| format!("aws-sdk-go/1.{i}.21 (go1.21.9; linux; amd64) Grafana/10.4.2"))
            .collect();
        for round in 0..3 {
            for (i, v) in values.iter().enumerate() {
                let want = i % 3 == 0;
                assert_eq!(remembered(owner, v, |_| want), want, "{v} in round {round}");
            }
        }
    }
}
