//! A burst: one alert for as long as a condition keeps holding (DESIGN.md,
//! "Bursts"). It opens when the condition first holds for a group, with the
//! id `tw-` + SHA-256 over `rule id \0 group key \0 window start` (window
//! start = the burst's first event), and stays open until `span` seconds of
//! event time pass in which the condition no longer holds. More events in it
//! raise its count, not new alerts. When it closes having grown, one summary
//! follows under an id derived from the burst's (`burst id \0 summary`) with
//! the final count, first and last times and a bounded sample. Both carry
//! the burst's id, which Datadog receives as the `aggregation_key`.

use serde::{Deserialize, Serialize};

use crate::alert::{BurstInfo, Detected, burst_summary_id, now_rfc3339};

/// At most this many event ids are named in an alert.
pub const SAMPLE_MAX: usize = 100;

/// An open burst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    /// The opening alert (its id is the burst's).
    pub opened: (crate::alert::Alert, crate::alert::AlertContext),
    /// The count the opening alert reported.
    pub opened_count: u64,
    /// Events in the burst so far.
    pub count: u64,
    pub first: i64,
    pub last: i64,
    /// The newest time the condition held: the burst closes `span` after it.
    pub last_hold: i64,
    /// Event ids, the opening ones first, at most `SAMPLE_MAX`.
    pub sample: Vec<String>,
    /// Distinct targets: the opening alert's (kept in saved state as before).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Wall-clock seconds of the last event (the daemon closes idle bursts).
    pub touched: i64,
}

pub use crate::alert::rfc3339_at as rfc3339;

pub fn wall_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Burst {
    /// Opens a burst on `opening` (whose alert id is the burst's id); the
    /// alert to send carries the burst's state.
    pub fn open(
        mut opening: Detected,
        first: i64,
        at: i64,
        sample: Vec<String>,
    ) -> (Burst, Detected) {
        let count = opening.alert.count;
        opening.alert.burst = Some(BurstInfo {
            id: opening.alert.id.clone(),
            state: "open".into(),
            first: rfc3339(first),
            last: rfc3339(at),
        });
        let targets = opening.context.resource.iter().cloned().collect();
        let burst = Burst {
            opened: (opening.alert.clone(), opening.context.clone()),
            opened_count: count,
            count,
            first,
            last: at,
            last_hold: at,
            sample,
            targets,
            touched: wall_now(),
        };
        (burst, opening)
    }

    /// Whether an event at `t` comes after the burst closed.
    pub fn over_at(&self, t: i64, span: i64) -> bool {
        t > self.last_hold.saturating_add(span)
    }

    /// Counts one more event of the burst at `t` (`holds`: the condition
    /// held with it), seen at wall-clock time `now`.
    pub fn extend(&mut self, t: i64, id: Option<&str>, holds: bool, now: i64) {
        self.count += 1;
        self.first = self.first.min(t);
        self.last = self.last.max(t);
        if holds {
            self.last_hold = self.last_hold.max(t);
        }
        if let Some(id) = id
            && self.sample.len() < SAMPLE_MAX
            && !self.sample.iter().any(|s| s == id)
        {
            self.sample.push(id.to_owned());
        }
        self.touched = now;
    }

    /// The summary when the burst closes: only when it grew after it opened.
    pub fn close(self) -> Option<Detected> {
        if self.count <= self.opened_count {
            return None;
        }
        let (mut alert, mut context) = self.opened;
        let burst_id = alert.id.clone();
        alert.id = burst_summary_id(&burst_id);
        alert.count = self.count;
        let this = alert.event.id.clone();
        alert.related_event_ids = self
            .sample
            .into_iter()
            .filter(|s| Some(s) != this.as_ref())
            .collect();
        alert.detected_at = now_rfc3339();
        alert.burst = Some(BurstInfo {
            id: burst_id,
            state: "closed".into(),
            first: rfc3339(self.first),
            last: rfc3339(self.last),
        });
        if self.targets.len() > 1 {
            context.resource = Some(self.targets.join(", "));
        }
        Some(Detected { alert, context })
    }
}
