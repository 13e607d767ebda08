//! Grouping of single-record alerts for `scan` (DESIGN.md, "Bursts"):
//! repeats of one rule for one principal are one burst, as the state store
//! groups them for the daemon. `scan` reads files on every core, in no fixed
//! order, so its groups are decided when the input ends, and never depend on
//! the order records came in or on the number of threads:
//!
//! - a group's bursts are the runs of its events whose gaps are at most the
//!   window (merged as events arrive, whatever their order);
//! - a burst's alert is that of its earliest event (by time, then eventID),
//!   marked as opening the burst; when the burst has more than one event, a
//!   summary follows under an id derived from it, with the count, first and
//!   last times, the earliest 100 other event ids and the first 20 distinct
//!   targets (in sorted order).
//!
//! State is bounded per burst, not per event.

use std::collections::HashMap;
use std::hash::Hasher;

use crate::alert::{Alert, BurstInfo, Detected, burst_summary_id};
use crate::event::{Record, same_bytes};

use super::Rule;
use super::index::WordHash;
use super::inline_id::InlineId;

/// At most this many event ids in a summary.
const SAMPLE_MAX: usize = 100;
/// At most this many distinct targets in a summary.
const TARGETS_MAX: usize = 20;

/// One burst of one group.
#[derive(Debug)]
struct Run {
    first: i64,
    last: i64,
    count: u64,
    /// The earliest event's (time, eventID) and its alert.
    head: (i64, InlineId),
    alert: Detected,
    /// The earliest events (time, eventID), sorted and distinct, at most
    /// `SAMPLE_MAX + 1`.
    sample: Vec<(i64, InlineId)>,
    /// The time of `sample`'s last event: a later event cannot enter a
    /// full sample, told without a walk down the tree.
    sample_top: i64,
    targets: Targets,
}

/// The first `TARGETS_MAX` distinct targets of a burst in sorted order,
/// unsorted until the end, each with its hash: a repeated target (the
/// usual case) is told by one hash and one string comparison, a new one
/// past the cap by one comparison with the greatest kept.
#[derive(Debug, Default)]
struct Targets {
    kept: Vec<(u64, String)>,
    /// Where the greatest of `kept` is.
    top: usize,
}

impl Targets {
    /// Adds `target`, hashed by `hash` only when it could be kept.
    fn add(&mut self, target: &str, hash: impl Fn(&str) -> u64) {
        // Past the cap, a target not below the greatest kept stays out,
        // whether it is among them or not.
        if self.kept.len() >= TARGETS_MAX
            && self
                .kept
                .get(self.top)
                .is_some_and(|t| target >= t.1.as_str())
        {
            return;
        }
        let hash = hash(target);
        if self.kept.iter().any(|(h, t)| *h == hash && t == target) {
            return;
        }
        if self.kept.len() < TARGETS_MAX {
            self.kept.push((hash, target.to_owned()));
        } else if let Some(top) = self.kept.get_mut(self.top) {
            // Below the greatest kept (told above): it takes its place.
            *top = (hash, target.to_owned());
        }
        self.find_top();
    }

    fn find_top(&mut self) {
        self.top = (0..self.kept.len())
            .max_by(|&a, &b| self.kept[a].1.cmp(&self.kept[b].1))
            .unwrap_or(0);
    }

    fn absorb(&mut self, other: Targets) {
        self.kept.extend(other.kept);
        self.kept.sort_by(|a, b| a.1.cmp(&b.1));
        self.kept.dedup_by(|a, b| a.1 == b.1);
        self.kept.truncate(TARGETS_MAX);
        self.find_top();
    }

    fn len(&self) -> usize {
        self.kept.len()
    }

    /// The targets in sorted order.
    fn sorted(mut self) -> Vec<String> {
        self.kept.sort_by(|a, b| a.1.cmp(&b.1));
        self.kept.into_iter().map(|(_, t)| t).collect()
    }
}

impl Run {
    fn absorb(&mut self, other: Run) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.count += other.count;
        if other.head < self.head {
            self.head = other.head;
            self.alert = other.alert;
        }
        self.sample = earliest(std::mem::take(&mut self.sample), other.sample);
        self.sample_top = self.sample.last().map_or(i64::MAX, |l| l.0);
        self.targets.absorb(other.targets);
    }
}

/// The first `SAMPLE_MAX + 1` of two samples together (each sorted and
/// distinct), walked in order once.
fn earliest(a: Vec<(i64, InlineId)>, b: Vec<(i64, InlineId)>) -> Vec<(i64, InlineId)> {
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    let mut out = Vec::with_capacity(SAMPLE_MAX + 1);
    while out.len() <= SAMPLE_MAX {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                a.next()
            }
            (Some(x), Some(y)) if y < x => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(entry) => out.push(entry),
            None => break,
        }
    }
    out
}

/// A quick hash: every match of a grouped rule looks up its group.
type Fast = std::hash::BuildHasherDefault<WordHash>;

/// The bursts of one rule for one principal.
#[derive(Debug)]
struct Group {
    rule: String,
    principal: String,
    /// Sorted by time, disjoint.
    runs: Vec<Run>,
}

/// The groups, found by a hash of (rule id, principal) whose principal
/// part is hashed once per record (`Seen`), whatever the rules it matched;
/// groups whose hashes collide share a list.
#[derive(Debug, Default)]
struct Groups(HashMap<u64, Vec<Group>, Fast>);

impl Groups {
    fn key(rule: &str, principal_hash: u64) -> u64 {
        let mut h = WordHash::default();
        h.write(rule.as_bytes());
        h.write_u64(principal_hash);
        h.finish()
    }

    fn get_mut(&mut self, key: u64, rule: &str, principal: &str) -> Option<&mut Vec<Run>> {
        self.0
            .get_mut(&key)?
            .iter_mut()
            .find(|g| {
                same_bytes(g.rule.as_bytes(), rule.as_bytes())
                    && same_bytes(g.principal.as_bytes(), principal.as_bytes())
            })
            .map(|g| &mut g.runs)
    }

    fn entry(&mut self, key: u64, rule: &str, principal: &str) -> &mut Vec<Run> {
        let list = self.0.entry(key).or_default();
        let at = match list
            .iter()
            .position(|g| g.rule == rule && g.principal == principal)
        {
            Some(at) => at,
            None => {
                list.push(Group {
                    rule: rule.to_owned(),
                    principal: principal.to_owned(),
                    runs: Vec::new(),
                });
                list.len() - 1
            }
        };
        &mut list[at].runs
    }

    fn into_groups(self) -> impl Iterator<Item = Group> {
        self.0.into_values().flatten()
    }
}

fn hash_text(text: &str) -> u64 {
    let mut h = WordHash::default();
    h.write(text.as_bytes());
    h.finish()
}

/// The groups of one `scan`.
#[derive(Debug)]
pub struct Grouper {
    window: i64,
    groups: std::sync::Mutex<Groups>,
    added: std::sync::atomic::AtomicU64,
}

impl Grouper {
    /// Groups repeats no further apart than `window` seconds.
    pub fn new(window: i64) -> Grouper {
        Grouper {
            window: window.max(0),
            groups: Default::default(),
            added: Default::default(),
        }
    }

    /// How many matches were added.
    pub fn matches(&self) -> u64 {
        self.added.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `rule`'s alerts are grouped.
    pub fn applies(rule: &Rule) -> bool {
        rule.grouped
    }

    /// A thread's own groups, to `merge` when the thread is done.
    pub fn local(&self) -> LocalGroups {
        LocalGroups {
            window: self.window,
            groups: Groups::default(),
            added: 0,
        }
    }

    /// Adds a thread's groups: bursts that meet (within the window) merge,
    /// so the result is the same however the matches were shared out.
    pub fn merge(&self, local: LocalGroups) {
        self.added
            .fetch_add(local.added, std::sync::atomic::Ordering::Relaxed);
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        for g in local.groups.into_groups() {
            let key = Groups::key(&g.rule, hash_text(&g.principal));
            let list = groups.entry(key, &g.rule, &g.principal);
            *list = merge_runs(std::mem::take(list), g.runs, self.window);
        }
    }

    /// The alerts: each burst's opening and, when it repeated, its summary,
    /// ordered by the burst's first time, rule and principal.
    pub fn finish(self) -> Vec<Detected> {
        let groups = self.groups.into_inner().unwrap_or_else(|p| p.into_inner());
        // Sorted by where each run is, not by copies of its group's names.
        let mut groups: Vec<Group> = groups.into_groups().collect();
        let mut order: Vec<(i64, usize)> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.runs.iter().map(move |run| (run.first, g)))
            .collect();
        order.sort_by(|a, b| {
            let (ga, gb) = (&groups[a.1], &groups[b.1]);
            (a.0, &ga.rule, &ga.principal).cmp(&(b.0, &gb.rule, &gb.principal))
        });
        // A group's runs are in time order, so they come in the order of its
        // own list: each is taken from there once, not moved to a new list.
        let mut runs: Vec<std::vec::IntoIter<Run>> = groups
            .iter_mut()
            .map(|g| std::mem::take(&mut g.runs).into_iter())
            .collect();
        let count = order.len();
        alerts_of(order.into_iter().filter_map(|(_, g)| runs[g].next()), count)
    }
}

/// Each burst's opening alert and, when it repeated, its summary.
fn alerts_of(runs: impl Iterator<Item = Run>, count: usize) -> Vec<Detected> {
    let mut out = Vec::with_capacity(count * 2);
    for run in runs {
        let rfc = crate::alert::rfc3339_at;
        let mut opening = run.alert;
        let burst_id = opening.alert.id.clone();
        opening.alert.burst = Some(BurstInfo {
            id: burst_id.clone(),
            state: "open".into(),
            first: rfc(run.head.0),
            last: rfc(run.head.0),
        });
        let summary = (run.count > 1).then(|| {
            let mut s = opening.clone();
            s.alert.id = burst_summary_id(&burst_id);
            s.alert.count = run.count;
            let head = &run.head;
            s.alert.related_event_ids = run
                .sample
                .into_iter()
                .filter(|(t, id)| (*t, id) != (head.0, &head.1))
                .map(|(_, id)| id.into_string())
                .take(SAMPLE_MAX)
                .collect();
            s.alert.burst = Some(BurstInfo {
                id: burst_id.clone(),
                state: "closed".into(),
                first: rfc(run.first),
                last: rfc(run.last),
            });
            if run.targets.len() > 1 {
                s.context.resource = Some(run.targets.sorted().join(", "));
            }
            s
        });
        out.push(opening);
        out.extend(summary);
    }
    out
}

/// What grouping reads of a record: its time, id, principal and target.
pub struct Seen<'r> {
    t: i64,
    id: &'r str,
    principal: &'r str,
    principal_hash: u64,
    target: Option<std::borrow::Cow<'r, str>>,
}

impl<'r> Seen<'r> {
    pub fn of(record: &'r Record) -> Seen<'r> {
        let principal = record.principal().unwrap_or("");
        Seen {
            t: record
                .event_time()
                .and_then(crate::event::time::parse_rfc3339)
                .unwrap_or(0),
            id: record.event_id().unwrap_or(""),
            principal,
            principal_hash: hash_text(principal),
            target: crate::alert::resource_text(record),
        }
    }
}

/// One thread's groups: a match is added without taking a lock.
#[derive(Debug)]
pub struct LocalGroups {
    window: i64,
    groups: Groups,
    added: u64,
}

impl LocalGroups {
    /// Adds a match of `rule` on `record`.
    pub fn add(&mut self, rule: &Rule, record: &Record, detected_at: &str) {
        self.add_seen(rule, record, &Seen::of(record), detected_at);
    }

    /// Adds a match of `rule` on `record`, with what grouping reads of it
    /// read already (once for all the rules it matched).
    pub fn add_seen(&mut self, rule: &Rule, record: &Record, seen: &Seen, detected_at: &str) {
        let Seen {
            t,
            id,
            principal,
            principal_hash,
            ref target,
        } = *seen;
        self.added += 1;
        let w = self.window;
        let key = Groups::key(&rule.id, principal_hash);
        {
            // The common case: a repeat inside one burst, not its earliest
            // event: counted without building an alert.
            if let Some(runs) = self.groups.get_mut(key, &rule.id, principal) {
                let lo = runs.partition_point(|r| r.last.saturating_add(w) < t);
                let hi = runs.partition_point(|r| r.first.saturating_sub(w) <= t);
                if hi == lo + 1 && (runs[lo].head.0, runs[lo].head.1.as_str()) <= (t, id) {
                    let r = &mut runs[lo];
                    r.first = r.first.min(t);
                    r.last = r.last.max(t);
                    r.count += 1;
                    if r.sample.len() <= SAMPLE_MAX
                        || t < r.sample_top
                        || (t == r.sample_top
                            && r.sample
                                .last()
                                .is_some_and(|l| (t, id) < (l.0, l.1.as_str())))
                    {
                        add_to_sample(&mut r.sample, t, id);
                        r.sample_top = r.sample.last().map_or(i64::MAX, |l| l.0);
                    }
                    if let Some(target) = target {
                        r.targets.add(target, hash_text);
                    }
                    return;
                }
            }
        }
        let alert = Alert::detected(rule, record, None, detected_at);
        let mut sample = Vec::with_capacity(4);
        sample.push((t, InlineId::new(id)));
        let mut targets = Targets::default();
        if let Some(target) = target {
            targets.add(target, hash_text);
        }
        let run = Run {
            first: t,
            last: t,
            count: 1,
            head: (t, InlineId::new(id)),
            alert,
            sample,
            sample_top: t,
            targets,
        };
        let runs = self.groups.entry(key, &rule.id, principal);
        insert_run(runs, run, w);
    }
}

/// Puts (`t`, `id`) in its place in `sample` (sorted, distinct), keeping
/// the earliest `SAMPLE_MAX + 1`.
fn add_to_sample(sample: &mut Vec<(i64, InlineId)>, t: i64, id: &str) {
    // Events mostly come in time order: the new one is usually the last.
    let after_last = sample.last().is_none_or(|l| (l.0, l.1.as_str()) < (t, id));
    let at = match after_last {
        true => sample.len(),
        false => match sample.binary_search_by(|(st, sid)| (*st, sid.as_str()).cmp(&(t, id))) {
            Ok(_) => return,
            Err(at) => at,
        },
    };
    if at > SAMPLE_MAX {
        return;
    }
    if sample.len() > SAMPLE_MAX {
        sample.pop();
    }
    sample.insert(at, (t, InlineId::new(id)));
}

/// Two lists of runs (each sorted by time, gaps over `w`) as one: walked
/// together once, in order of their first times, each run merged into the
/// one before when it comes within `w` of it (as `insert_run` of each would,
/// without moving the list for every run).
fn merge_runs(a: Vec<Run>, b: Vec<Run>, w: i64) -> Vec<Run> {
    if a.is_empty() {
        return b;
    }
    let mut out: Vec<Run> = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if y.first < x.first => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        };
        let Some(next) = next else {
            return out;
        };
        match out.last_mut() {
            Some(last) if last.last.saturating_add(w) >= next.first => last.absorb(next),
            _ => out.push(next),
        }
    }
}

/// Puts `run` among `runs` (sorted by time, gaps over `w`), merged with
/// those it comes within `w` of.
fn insert_run(runs: &mut Vec<Run>, run: Run, w: i64) {
    let lo = runs.partition_point(|r| r.last.saturating_add(w) < run.first);
    let hi = runs.partition_point(|r| r.first.saturating_sub(w) <= run.last);
    let mut merged = run;
    for other in runs.drain(lo..hi) {
        merged.absorb(other);
    }
    runs.insert(lo, merged);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleOrigin, load_text};
    use std::collections::BTreeSet;

    fn rule() -> Rule {
        let text = "title: t\nid: t-read\nlogsource: {product: aws, service: cloudtrail}\n\
                    detection:\n  s: {eventName: GetSecretValue}\n  condition: s\nlevel: high\n";
        let mut loaded = load_text(
            text,
            RuleOrigin::File {
                path: "t.yml".into(),
            },
        );
        loaded.rules.remove(0)
    }

    fn record(n: u32, minute: u32, who: &str) -> String {
        format!(
            r#"{{"eventID":"e{n:03}","eventTime":"2026-01-01T{:02}:{:02}:00Z","eventName":"GetSecretValue","userIdentity":{{"type":"IAMUser","arn":"{who}"}},"requestParameters":{{"secretId":"s{}"}}}}"#,
            minute / 60,
            minute % 60,
            n % 3
        )
    }

    fn run(order: &[(u32, u32, &str)]) -> Vec<Detected> {
        let rule = rule();
        let g = Grouper::new(3600);
        let mut local = g.local();
        for (n, minute, who) in order {
            let text = record(*n, *minute, who);
            let r = Record::parse(&text).expect("record");
            local.add(&rule, &r, "2026-01-01T00:00:00Z");
        }
        g.merge(local);
        g.finish()
    }

    #[test]
    fn many_bursts_come_out_in_order() {
        let rule = rule();
        let g = Grouper::new(3600);
        let mut local = g.local();
        // 400 principals, each twice (a burst of two), in a shuffled order.
        for i in 0..800u32 {
            let who = format!("arn:p{:03}", (i * 7) % 400);
            let text = record(i, (i % 400) / 8 + i / 400, &who);
            let r = Record::parse(&text).expect("record");
            local.add(&rule, &r, "2026-01-01T00:00:00Z");
        }
        g.merge(local);
        let out = g.finish();
        assert_eq!(out.len(), 800);
        let keys: Vec<(String, String, String)> = out
            .iter()
            .map(|d| {
                let burst = d.alert.burst.as_ref().expect("a burst");
                let who = d.alert.event.principal.clone().unwrap_or_default();
                (burst.first.clone(), who, burst.state.clone())
            })
            .collect();
        // Each opening, then its summary; bursts by first time, then principal.
        for pair in keys.chunks(2) {
            assert_eq!((pair[0].2.as_str(), pair[1].2.as_str()), ("open", "closed"));
            assert_eq!(pair[0].1, pair[1].1);
        }
        let firsts: Vec<(&String, &String)> = keys
            .chunks(2)
            .map(|pair| (&pair[1].0, &pair[1].1))
            .collect();
        assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "{firsts:?}");
    }

    #[test]
    fn merged_lists_of_runs_are_what_inserting_each_run_gives() {
        let rule = rule();
        let runs_of = |minutes: &[u32]| -> Vec<Run> {
            let g = Grouper::new(600);
            let mut local = g.local();
            for (n, m) in minutes.iter().enumerate() {
                let text = record(n as u32 + *m * 1000, *m, "arn:a");
                let r = Record::parse(&text).expect("record");
                local.add(&rule, &r, "2026-01-01T00:00:00Z");
            }
            local.groups.into_groups().flat_map(|g| g.runs).collect()
        };
        let cases: [(&[u32], &[u32]); 5] = [
            (&[0, 5, 30, 31, 90], &[2, 20, 50, 200]),
            (&[], &[1, 2, 3]),
            (&[1, 2, 3], &[]),
            (&[0, 100, 200, 300], &[50, 150, 250, 350]),
            (&[0, 9, 18, 27], &[4, 13, 22, 31]),
        ];
        let shape = |runs: &[Run]| -> Vec<(i64, i64, u64, usize)> {
            runs.iter()
                .map(|r| (r.first, r.last, r.count, r.sample.len()))
                .collect()
        };
        for (a, b) in cases {
            let mut inserted = runs_of(a);
            for run in runs_of(b) {
                insert_run(&mut inserted, run, 600);
            }
            let merged = merge_runs(runs_of(a), runs_of(b), 600);
            assert_eq!(shape(&merged), shape(&inserted), "{a:?} + {b:?}");
        }
    }

    #[test]
    fn two_samples_keep_their_earliest_together() {
        let set = |range: std::ops::Range<i64>, step: i64| -> Vec<(i64, InlineId)> {
            range
                .step_by(step as usize)
                .map(|t| (t, InlineId::new(&format!("e{t}"))))
                .collect()
        };
        for (a, b) in [
            (set(0..150, 1), set(0..300, 2)),
            (set(0..50, 1), set(40..60, 1)),
            (set(0..0, 1), set(5..9, 1)),
            (set(200..400, 3), set(0..30, 7)),
            (set(0..101, 1), set(0..101, 1)),
        ] {
            let mut want: BTreeSet<(i64, InlineId)> = a.iter().cloned().collect();
            want.extend(b.clone());
            let want: Vec<(i64, InlineId)> = want.into_iter().take(SAMPLE_MAX + 1).collect();
            assert_eq!(earliest(a.clone(), b.clone()), want);
            assert_eq!(earliest(b, a), want);
        }
    }

    #[test]
    fn a_sample_keeps_the_earliest_distinct_events_however_they_come() {
        // 400 events over 150 seconds, in a scrambled order, some repeated
        // and some at the same second.
        let events: Vec<(i64, String)> = (0..400u32)
            .map(|i| {
                let n = (i * 97 + i / 7) % 260;
                (i64::from(n % 150), format!("e{n}"))
            })
            .collect();
        for order in [false, true] {
            let mut seq = events.clone();
            if order {
                seq.sort();
            }
            let (mut sample, mut model) = (Vec::new(), BTreeSet::new());
            for (t, id) in &seq {
                add_to_sample(&mut sample, *t, id);
                model.insert((*t, id.clone()));
                let want: Vec<(i64, &str)> = model
                    .iter()
                    .take(SAMPLE_MAX + 1)
                    .map(|(t, id)| (*t, id.as_str()))
                    .collect();
                let got: Vec<(i64, &str)> =
                    sample.iter().map(|(t, id)| (*t, id.as_str())).collect();
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn repeats_are_one_burst_whatever_their_order() {
        // alice: minutes 0..50 (one burst), then 300 (a new one); bob once.
        let mut events: Vec<(u32, u32, &str)> = (0..50).map(|n| (n, n, "arn:alice")).collect();
        events.push((50, 300, "arn:alice"));
        events.push((51, 10, "arn:bob"));
        let forward = run(&events);
        events.reverse();
        let backward = run(&events);
        assert_eq!(forward, backward);
        let summary: Vec<(&str, u64)> = forward
            .iter()
            .map(|d| {
                (
                    d.alert.burst.as_ref().map_or("", |b| b.state.as_str()),
                    d.alert.count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [("open", 1), ("closed", 50), ("open", 1), ("open", 1)]
        );
        assert_eq!(forward[0].alert.event.id.as_deref(), Some("e000"));
        assert_eq!(forward[1].alert.related_event_ids.len(), 49);
        assert_eq!(forward[1].alert.id, burst_summary_id(&forward[0].alert.id));
    }

    #[test]
    fn two_bursts_merge_when_an_event_bridges_them() {
        let split = run(&[(1, 0, "a"), (2, 100, "a")]);
        assert_eq!(split.len(), 2, "two bursts, no summaries");
        let bridged = run(&[(1, 0, "a"), (2, 100, "a"), (3, 50, "a")]);
        assert_eq!(bridged.len(), 2, "one burst and its summary");
        assert_eq!(bridged[1].alert.count, 3);
    }
}

#[cfg(test)]
mod shared_out {
    use super::*;
    use crate::rules::{RuleOrigin, load_text};
    use std::collections::BTreeSet;

    /// The same matches shared out among threads in different ways give
    /// the same bursts as one thread: runs that meet across threads merge.
    #[test]
    fn threads_sharing_the_matches_out_give_one_thread_s_bursts() {
        let text = "title: t\nid: t-read\nlogsource: {product: aws, service: cloudtrail}\n\
                    detection:\n  s: {eventName: GetSecretValue}\n  condition: s\nlevel: high\n";
        let rule = load_text(
            text,
            RuleOrigin::File {
                path: "t.yml".into(),
            },
        )
        .rules
        .remove(0);
        // Minutes: a dense run, a gap of over an hour, a run whose events
        // are more than an hour apart only within one thread's share.
        let minutes: Vec<u32> = (0..30).chain([200, 250, 290, 330, 370, 600]).collect();
        let texts: Vec<String> = minutes
            .iter()
            .enumerate()
            .map(|(n, m)| {
                format!(
                    r#"{{"eventID":"e{n:03}","eventTime":"2026-01-01T{:02}:{:02}:00Z","eventName":"GetSecretValue","userIdentity":{{"type":"IAMUser","arn":"arn:a"}},"requestParameters":{{"secretId":"s{}"}}}}"#,
                    m / 60,
                    m % 60,
                    n % 25
                )
            })
            .collect();
        let group = |share: &dyn Fn(usize) -> usize| {
            let g = Grouper::new(3600);
            let mut locals = [g.local(), g.local(), g.local()];
            for (i, text) in texts.iter().enumerate() {
                let r = Record::parse(text).expect("record");
                locals[share(i)].add(&rule, &r, "2026-01-01T00:00:00Z");
            }
            for local in locals {
                g.merge(local);
            }
            assert_eq!(g.matches(), texts.len() as u64);
            g.finish()
        };
        let one = group(&|_| 0);
        assert_eq!(one.len(), 5, "three bursts, two with a summary");
        assert_eq!(one[1].alert.count, 30);
        assert_eq!(one[3].alert.count, 5, "minutes 200 to 370");
        assert_eq!(
            one[4].alert.burst.as_ref().map(|b| b.state.as_str()),
            Some("open")
        );
        assert_eq!(group(&|i| i % 3), one);
        assert_eq!(group(&|i| (i * 7 + 1) % 3), one);
        assert_eq!(group(&|i| usize::from(i >= 30)), one);
        assert_eq!(
            group(&|i| usize::from(i % 2 == 0) + usize::from(i == 33)),
            one
        );
    }

    #[test]
    fn a_burst_keeps_its_smallest_distinct_targets_however_they_come() {
        // 60 targets sharing a long prefix, repeated, in a scrambled order,
        // some with colliding hashes; kept in one list or two absorbed.
        let texts: Vec<String> = (0..60)
            .map(|i| format!(r#"{{"secretId":"prod/app/{:02}"}}"#, (i * 37) % 60))
            .collect();
        let seq: Vec<&String> = (0..400).map(|i| &texts[(i * 7 + i / 9) % 60]).collect();
        let model: Vec<String> = seq
            .iter()
            .map(|t| (*t).clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .take(TARGETS_MAX)
            .collect();
        for collide in [false, true] {
            let hash = |t: &str| {
                if collide {
                    t.len() as u64
                } else {
                    hash_text(t)
                }
            };
            let mut one = Targets::default();
            for t in &seq {
                one.add(t, hash);
            }
            assert_eq!(one.sorted(), model, "one list, collisions {collide}");
            for split in [1, 150, 399] {
                let (mut a, mut b) = (Targets::default(), Targets::default());
                for (i, t) in seq.iter().enumerate() {
                    let into = if i < split { &mut a } else { &mut b };
                    into.add(t, hash);
                }
                a.absorb(b);
                // Adding after absorbing still keeps the smallest.
                a.add(" first", hash);
                let mut expected = model.clone();
                expected.insert(0, " first".into());
                expected.truncate(TARGETS_MAX);
                assert_eq!(a.sorted(), expected, "split {split}, collisions {collide}");
            }
        }
    }
}
