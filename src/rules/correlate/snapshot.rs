//! What leaves the engine: the alerts waiting to be committed, and the
//! state the crawler commits with them (groups, first-seen values, and the
//! events already counted), restored at start.

use super::first_seen::{self, FirstSeen};
use super::window::Window;
use super::{Correlator, Group};
use crate::alert::{Alert, AlertContext, Detected};

/// The version of the saved state; other versions are dropped at start.
const STATE_VERSION: u32 = 2;

/// What is kept in the state store's `kv` row (`seen` has its own table).
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    version: u32,
    /// (correlation id, group key, group).
    groups: Vec<(String, String, Group)>,
    newest: i64,
    pending: Vec<(Alert, AlertContext)>,
    /// (correlation id, its first-seen state).
    #[serde(default)]
    first_seen: Vec<(String, first_seen::Saved)>,
}

/// The stateful rules' state: the groups and the alerts not yet committed
/// (`state`), and the events already counted (`seen`: the hash of rule and
/// eventID, and the event's time), sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub state: serde_json::Value,
    pub seen: Vec<(i64, i64)>,
}

/// What `seen` gained since the last commit, and the range of event times
/// outside which its entries were forgotten.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeenDelta {
    pub new: Vec<(i64, i64)>,
    pub forget_outside: Option<(i64, i64)>,
}

impl Correlator {
    /// The correlation alerts waiting to be committed.
    pub fn pending(&self) -> &[Detected] {
        &self.pending
    }

    /// Forgets the first `n` pending alerts and the changes to `seen`, once
    /// committed.
    pub fn committed(&mut self, n: usize) {
        self.pending.drain(..n.min(self.pending.len()));
        self.seen_new.clear();
        self.forget_outside = None;
    }

    /// What `seen` gained and forgot since the last commit.
    pub fn seen_delta(&self) -> SeenDelta {
        SeenDelta {
            new: self.seen_new.clone(),
            forget_outside: self.forget_outside,
        }
    }

    /// Takes every pending alert (when nothing is persisted, as in `scan`:
    /// the changes to `seen` kept for a commit are let go too).
    pub fn take_pending(&mut self) -> Vec<Detected> {
        self.seen_new.clear();
        self.forget_outside = None;
        std::mem::take(&mut self.pending)
    }

    /// The groups and the alerts not yet committed (the state store's `kv`
    /// row), in a stable order.
    pub fn export_state(&self) -> serde_json::Value {
        let mut groups: Vec<(String, String, Group)> = self
            .groups
            .iter()
            .map(|((s, key), g)| (self.specs[*s].id.clone(), key.clone(), g.clone()))
            .collect();
        groups.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let first_seen = self
            .first_seen
            .iter()
            .enumerate()
            .filter_map(|(s, f)| Some((self.specs[s].id.clone(), f.as_ref()?.save())))
            .collect();
        let saved = Saved {
            version: STATE_VERSION,
            groups,
            first_seen,
            newest: self.newest,
            pending: self
                .pending
                .iter()
                .map(|d| (d.alert.clone(), d.context.clone()))
                .collect(),
        };
        serde_json::to_value(saved).unwrap_or(serde_json::Value::Null)
    }

    /// Everything: the state and all of `seen`.
    pub fn export(&self) -> Snapshot {
        let mut seen: Vec<(i64, i64)> = self.seen.iter().map(|(k, t)| (*k, *t)).collect();
        seen.sort_unstable();
        Snapshot {
            state: self.export_state(),
            seen,
        }
    }

    /// Forgets everything: groups, first-seen values, events counted and
    /// alerts not committed (an instance that stops leading the shared
    /// engine, or starts to, before it restores the leader's state).
    pub fn reset(&mut self) {
        self.groups.clear();
        for slot in self.first_seen.iter_mut().flatten() {
            *slot = FirstSeen::default();
        }
        self.seen.clear();
        self.seen_new.clear();
        self.forget_outside = None;
        self.newest = i64::MIN;
        self.pending.clear();
    }

    /// Restores what `export` gave; false when it does not fit (a state
    /// saved by another version: the caller logs it and starts afresh).
    /// Groups of correlations no longer loaded are let go.
    pub fn import(&mut self, from: Snapshot) -> bool {
        let Ok(saved) = serde_json::from_value::<Saved>(from.state) else {
            return false;
        };
        if saved.version != STATE_VERSION {
            return false;
        }
        self.groups = saved
            .groups
            .into_iter()
            .filter_map(|(id, key, g)| {
                let s = self.specs.iter().position(|spec| spec.id == id)?;
                // A rule changed since: its window's shape must still fit.
                (std::mem::discriminant(&g.window)
                    == std::mem::discriminant(&Window::new(&self.specs[s])))
                .then_some(((s, key), g))
            })
            .collect();
        for (id, state) in saved.first_seen {
            if let Some(s) = self.specs.iter().position(|spec| spec.id == id)
                && let Some(slot) = self.first_seen.get_mut(s)
                && slot.is_some()
            {
                *slot = Some(FirstSeen::restore(state));
            }
        }
        self.newest = saved.newest;
        self.seen = from.seen.into_iter().collect();
        self.seen_new.clear();
        self.forget_outside = None;
        self.pending = saved
            .pending
            .into_iter()
            .map(|(alert, context)| Detected { alert, context })
            .collect();
        true
    }
}
