//! First-seen (new value) rules, trailwatch's extension of Sigma's
//! correlations (`type: new_value`): per group (a principal, an access key),
//! the values of a field it has been seen with (an API, a source IP). A value
//! not seen before, or not within the rule's timespan (the values' time to
//! live), alerts, once the rule has learned for its learning period of
//! event time from the first event it saw. A principal first seen after
//! the learning period is new: its values alert.
//!
//! Values are decided in event-time order whatever order records arrive in:
//! a pair (group, value) not yet learned waits, as its earliest event, until
//! the next flush (the end of a crawl pass, of `once`'s or `scan`'s input),
//! which takes the waiting pairs by time. A pair already learned only
//! refreshes its time. The learned pairs are bounded per rule (the least
//! recently seen are forgotten first) and saved with the other rules' state.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertContext, Detected};

/// A pair waiting for the next flush: its earliest event (and alert), and
/// the latest time it was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Waiting {
    t: i64,
    event_id: String,
    latest: i64,
    alert: (Alert, AlertContext),
}

/// One first-seen rule's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirstSeen {
    /// The earliest event time the rule saw: learning ends a period after it.
    started: Option<i64>,
    /// (group, value) -> when last seen.
    learned: HashMap<(String, String), i64>,
    waiting: HashMap<(String, String), Waiting>,
}

/// What is saved of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Saved {
    started: Option<i64>,
    learned: Vec<(String, String, i64)>,
    waiting: Vec<(String, String, Waiting)>,
}

impl FirstSeen {
    /// An event of `group` with `value` at `t`; `alert` makes its alert,
    /// called only when the pair is new so far.
    pub fn observe(
        &mut self,
        group: &str,
        value: &str,
        t: i64,
        event_id: &str,
        ttl: i64,
        alert: impl FnOnce() -> Detected,
    ) {
        self.started = Some(self.started.map_or(t, |s| s.min(t)));
        let key = (group.to_owned(), value.to_owned());
        if let Some(last) = self.learned.get_mut(&key)
            && *last >= t.saturating_sub(ttl)
        {
            *last = (*last).max(t);
            return;
        }
        match self.waiting.get_mut(&key) {
            Some(w) => {
                w.latest = w.latest.max(t);
                if (t, event_id) < (w.t, w.event_id.as_str()) {
                    let d = alert();
                    w.t = t;
                    w.event_id = event_id.to_owned();
                    w.alert = (d.alert, d.context);
                }
            }
            None => {
                let d = alert();
                self.waiting.insert(
                    key,
                    Waiting {
                        t,
                        event_id: event_id.to_owned(),
                        latest: t,
                        alert: (d.alert, d.context),
                    },
                );
            }
        }
    }

    /// Decides the waiting pairs in event-time order: the alerts of those
    /// that are new after the learning period.
    pub fn flush(&mut self, learning: i64, ttl: i64, max_values: usize) -> Vec<Detected> {
        let mut waiting: Vec<((String, String), Waiting)> = self.waiting.drain().collect();
        waiting.sort_by(|a, b| (a.1.t, &a.1.event_id, &a.0).cmp(&(b.1.t, &b.1.event_id, &b.0)));
        let learned_until = self
            .started
            .map_or(i64::MAX, |s| s.saturating_add(learning));
        let mut out = Vec::new();
        for (key, w) in waiting {
            let new = self
                .learned
                .get(&key)
                .is_none_or(|last| *last < w.t.saturating_sub(ttl));
            if new && w.t >= learned_until {
                let (alert, context) = w.alert;
                out.push(Detected { alert, context });
            }
            let last = self.learned.entry(key).or_insert(w.latest);
            *last = (*last).max(w.latest);
        }
        if self.learned.len() > max_values {
            let mut times: Vec<i64> = self.learned.values().copied().collect();
            let cut = times.len() - max_values;
            let (_, oldest_kept, _) = times.select_nth_unstable(cut);
            let oldest_kept = *oldest_kept;
            self.learned.retain(|_, t| *t >= oldest_kept);
        }
        out
    }

    pub fn save(&self) -> Saved {
        let mut learned: Vec<(String, String, i64)> = self
            .learned
            .iter()
            .map(|((g, v), t)| (g.clone(), v.clone(), *t))
            .collect();
        learned.sort();
        let mut waiting: Vec<(String, String, Waiting)> = self
            .waiting
            .iter()
            .map(|((g, v), w)| (g.clone(), v.clone(), w.clone()))
            .collect();
        waiting.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Saved {
            started: self.started,
            learned,
            waiting,
        }
    }

    pub fn restore(saved: Saved) -> FirstSeen {
        FirstSeen {
            started: saved.started,
            learned: saved
                .learned
                .into_iter()
                .map(|(g, v, t)| ((g, v), t))
                .collect(),
            waiting: saved
                .waiting
                .into_iter()
                .map(|(g, v, w)| ((g, v), w))
                .collect(),
        }
    }
}
