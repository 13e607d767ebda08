//! One group's window of a correlation rule, in bounded state: what it keeps
//! depends on the rule's condition, never on how many events fall in the
//! window (DESIGN.md, "Bursts"):
//!
//! - `event_count`: the newest `cap` events (`cap` = the largest threshold
//!   plus one, so that every comparison in the condition is exact);
//! - `value_count`: the newest event of at most `cap` distinct values (the
//!   oldest dropped: when one in the window is dropped, the `cap` kept are
//!   newer and in the window too, so the count is still `cap` or more);
//! - `temporal`: the newest event per referenced rule;
//! - `temporal_ordered`: per prefix of the rule list, the latest start of a
//!   chain that hits the prefix's rules in order (a later start is better for
//!   every later window), and the newest event per rule for the sample.
//!
//! Windows slide in event time: at an event's time `t` the window is
//! `[t - timespan, t]`, as in rsigma's engine.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::spec::{Kind, Spec};

/// An event kept in a window: its time and `eventID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub t: i64,
    pub id: Option<String>,
}

impl Hit {
    /// The hit for one more place: a copy, or (for the `last`) itself,
    /// leaving its time without its id.
    fn once_more(&mut self, last: bool) -> Hit {
        match last {
            true => Hit {
                t: self.t,
                id: self.id.take(),
            },
            false => self.clone(),
        }
    }
}

/// A group's bounded state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Window {
    /// Sorted by time, at most `cap`.
    Count(VecDeque<Hit>),
    /// At most `cap` distinct values, each with its newest event.
    Values(Vec<(String, Hit)>),
    /// Per referenced rule, its newest event.
    Temporal(Vec<Option<Hit>>),
    /// Per prefix of the rules, the latest chain start; per rule, its newest event.
    Ordered {
        starts: Vec<Option<i64>>,
        last: Vec<Option<Hit>>,
    },
}

/// What a group's window says after an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The condition holds at the event's time.
    pub holds: bool,
    /// The condition's value: events, distinct values or rules in the window.
    pub value: u64,
    /// The oldest event that counts (the burst's start when it opens).
    pub start: i64,
}

impl Window {
    pub fn new(spec: &Spec) -> Window {
        match &spec.kind {
            Kind::EventCount => Window::Count(VecDeque::new()),
            Kind::ValueCount { .. } | Kind::NewValue { .. } => Window::Values(Vec::new()),
            Kind::Temporal => Window::Temporal(vec![None; spec.rules.len()]),
            Kind::TemporalOrdered => Window::Ordered {
                starts: vec![None; spec.rules.len()],
                last: vec![None; spec.rules.len()],
            },
        }
    }

    /// The newest time the window holds (for letting idle groups go).
    pub fn newest(&self) -> Option<i64> {
        match self {
            Window::Count(hits) => hits.back().map(|h| h.t),
            Window::Values(values) => values.iter().map(|(_, h)| h.t).max(),
            Window::Temporal(last) | Window::Ordered { last, .. } => {
                last.iter().flatten().map(|h| h.t).max()
            }
        }
    }

    /// Adds an event of referenced rule `slots` (its places in the rule
    /// list; one event may match several) with `value` for `value_count`
    /// (None: the event has no usable value and is not counted), then reads
    /// the condition at the event's time.
    pub fn add(&mut self, spec: &Spec, slots: &[usize], value: Option<&str>, hit: Hit) -> Reading {
        let mut hit = hit;
        let t = hit.t;
        let cap = spec.cap;
        match self {
            Window::Count(hits) => {
                // One event matching two referenced rules counts twice, as in rsigma.
                let n = slots.len().max(1);
                for k in 0..n {
                    let at = hits.partition_point(|h| h.t <= t);
                    hits.insert(at, hit.once_more(k + 1 == n));
                    if hits.len() > cap {
                        hits.pop_front();
                    }
                }
            }
            Window::Values(values) => {
                if let Some(v) = value {
                    if let Some((_, newest)) = values.iter_mut().find(|(k, _)| k == v) {
                        if newest.t <= t {
                            *newest = hit;
                        }
                    } else {
                        values.push((v.to_owned(), hit));
                        if values.len() > cap
                            && let Some(oldest) = (0..values.len()).min_by_key(|&i| values[i].1.t)
                        {
                            values.swap_remove(oldest);
                        }
                    }
                }
            }
            Window::Temporal(last) => {
                for (k, &s) in slots.iter().enumerate() {
                    if last[s].as_ref().is_none_or(|h| h.t <= t) {
                        last[s] = Some(hit.once_more(k + 1 == slots.len()));
                    }
                }
            }
            Window::Ordered { starts, last } => {
                // In list order, so that one event may fill consecutive
                // places (equal times are in order, as in rsigma).
                let mut slots = slots.to_vec();
                slots.sort_unstable();
                let n = slots.len();
                for (k, s) in slots.into_iter().enumerate() {
                    let start = if s == 0 { Some(t) } else { starts[s - 1] };
                    if let Some(start) = start {
                        starts[s] = Some(starts[s].map_or(start, |old| old.max(start)));
                    }
                    if last[s].as_ref().is_none_or(|h| h.t <= t) {
                        last[s] = Some(hit.once_more(k + 1 == n));
                    }
                }
                // Events of later places that came earlier in this same
                // second are in order after this one too (equal times are).
                for s in 1..starts.len() {
                    if last[s].as_ref().is_some_and(|h| h.t == t)
                        && let Some(start) = starts[s - 1]
                    {
                        starts[s] = Some(starts[s].map_or(start, |old| old.max(start)));
                    }
                }
            }
        }
        self.read(spec, t)
    }

    /// The condition at time `t`, without copying what the window holds.
    pub fn read(&self, spec: &Spec, t: i64) -> Reading {
        let from = t.saturating_sub(spec.timespan);
        let (value, start) = match self {
            Window::Count(hits) => {
                let first = hits.partition_point(|h| h.t < from);
                let start = hits.get(first).map_or(t, |h| h.t);
                ((hits.len() - first) as u64, start)
            }
            Window::Values(values) => {
                let inside = values.iter().map(|(_, h)| h.t).filter(|ht| *ht >= from);
                let (n, start) = inside.fold((0u64, t), |(n, s), ht| (n + 1, s.min(ht)));
                (n, start)
            }
            Window::Temporal(last) => {
                let inside = last.iter().flatten().map(|h| h.t).filter(|ht| *ht >= from);
                inside.fold((0u64, t), |(n, s), ht| (n + 1, s.min(ht)))
            }
            Window::Ordered { starts, .. } => {
                match starts.last().copied().flatten().filter(|s| *s >= from) {
                    Some(s) => (spec.rules.len() as u64, s),
                    None => (0, t),
                }
            }
        };
        Reading {
            holds: spec.condition_holds(value),
            value,
            start,
        }
    }

    /// The events in the window at time `t`, oldest first (for a burst's
    /// opening alert).
    pub fn hits(&self, spec: &Spec, t: i64) -> Vec<Hit> {
        let from = t.saturating_sub(spec.timespan);
        let mut kept: Vec<Hit> = match self {
            Window::Count(hits) => hits.iter().filter(|h| h.t >= from).cloned().collect(),
            Window::Values(values) => values
                .iter()
                .map(|(_, h)| h)
                .filter(|h| h.t >= from)
                .cloned()
                .collect(),
            Window::Temporal(last) | Window::Ordered { last, .. } => last
                .iter()
                .flatten()
                .filter(|h| h.t >= from)
                .cloned()
                .collect(),
        };
        kept.sort_by_key(|h| h.t);
        kept.dedup();
        kept
    }
}
