//! Closing bursts and forgetting: as event time moves on (a sweep every
//! five minutes of it), at the end of an input, or after wall-clock
//! idleness in the daemon; and the events remembered against duplicates,
//! forgotten past the horizon so that their cost stays linear.

use super::burst::{Burst, wall_now};
use super::spec::Spec;
use super::{Correlator, Group, PRUNE_FLOOR};

impl Correlator {
    /// Closes bursts and lets idle groups go once event time has moved a
    /// horizon past them (checked once per five minutes of event time).
    /// Relative to the newest event: input out of time order (scan reads a
    /// tree region by region) keeps what it may still extend.
    pub(super) fn sweep(&mut self, at: i64) {
        if self.swept_at != i64::MIN && (at - self.swept_at).abs() < 300 {
            return;
        }
        self.swept_at = at;
        let before = self.newest.saturating_sub(self.horizon);
        self.close_where(|spec, group| {
            let end = group
                .burst
                .as_ref()
                .map(|b| b.last_hold)
                .or(group.window.newest())
                .unwrap_or(i64::MIN);
            end.saturating_add(spec.timespan) < before
        });
    }

    /// Closes the bursts (and lets go of the groups) `done` picks.
    pub(super) fn close_where(&mut self, done: impl Fn(&Spec, &Group) -> bool) {
        let specs = &self.specs;
        let mut closed = Vec::new();
        self.groups.retain(|at, group| {
            if !done(&specs[at.0], group) {
                return true;
            }
            if let Some(burst) = group.burst.take() {
                closed.push((at.clone(), burst));
            }
            false
        });
        // A stable order for the summaries (the table's order is not).
        closed.sort_by(|a, b| a.1.opened.0.id.cmp(&b.1.opened.0.id));
        for (at, burst) in closed {
            Self::end_burst(&mut self.held, &mut self.pending, &at, burst);
        }
    }

    /// Closes every burst: the end of `scan`'s or `once`'s input. Held
    /// summaries are released.
    pub fn close_all(&mut self) {
        self.flush_first_seen();
        self.close_where(|_, _| true);
        if let Some(held) = self.held.as_mut() {
            let mut bursts: Vec<Burst> = held.drain().flat_map(|(_, b)| b).collect();
            bursts.sort_by(|a, b| a.opened.0.id.cmp(&b.opened.0.id));
            self.pending
                .extend(bursts.into_iter().filter_map(Burst::close));
        }
    }

    /// Closes bursts without an event for `idle_seconds` of wall time (the
    /// daemon: a timespan plus the lookback).
    pub fn close_idle(&mut self, idle_seconds: i64) {
        let now = wall_now();
        self.close_where(|spec, group| {
            group.burst.as_ref().is_some_and(|b| {
                now.saturating_sub(b.touched) > idle_seconds.saturating_add(spec.timespan)
            })
        });
    }

    /// Forgets events more than the horizon away from `at`, either way (a
    /// tree read region by region goes back in time at each region), when
    /// `seen` has doubled since the last time (so that the cost stays
    /// linear in the events fed).
    pub(super) fn forget_far_from(&mut self, at: i64) {
        if self.seen.len() >= self.prune_at {
            let (lo, hi) = (at - self.horizon, at.saturating_add(self.horizon));
            self.seen.retain(|_, t| (lo..=hi).contains(t));
            self.seen_new.retain(|(_, t)| (lo..=hi).contains(t));
            // Rows outside the newest range go; a later prune's range wins.
            self.forget_outside = Some((lo, hi));
            self.prune_at = (self.seen.len() * 2).max(PRUNE_FLOOR);
        }
    }
}
