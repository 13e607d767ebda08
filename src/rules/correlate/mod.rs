//! Stateful rules: Sigma correlation rules (`event_count`, `value_count`,
//! `temporal`, `temporal_ordered`) in trailwatch's own engine, whose state
//! per group is bounded by the rule's condition, not by its traffic
//! (`window.rs`), and which raises one alert per burst (`burst.rs`). Only
//! records that matched a rule some correlation uses are fed to it. Its
//! state is exported and restored, so that the crawler keeps it in the state
//! store with each object's checkpoint: a restart inside a window neither
//! loses nor double-counts events. rsigma's engine is the reference it is
//! tested against (tests/correlation_differential.rs).

mod burst;
mod closing;
mod first_seen;
mod snapshot;
mod spec;
mod values;
mod window;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::index::WordHash;
use super::load::Correlation;
use super::rule::{Rule, RuleError};
use crate::alert::{Alert, AlertContext, AlertEvent, Detected, ObjectRef, correlation_alert_id};
use crate::event::Record;
pub use burst::SAMPLE_MAX;
use burst::{Burst, rfc3339};
use first_seen::FirstSeen;
pub use snapshot::{SeenDelta, Snapshot};
use spec::Spec;
use values::{count_value, field_text, group_key};
use window::{Hit, Window};

/// The tables' hash: read for every record that feeds a correlation.
type Fast = std::hash::BuildHasherDefault<WordHash>;

/// `seen` is not pruned below this many entries.
const PRUNE_FLOOR: usize = 10_000;

/// How deep correlations of correlations go (as in rsigma).
const CHAIN_DEPTH: usize = 10;

/// One group of one correlation: its window and its open burst.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Group {
    window: Window,
    burst: Option<Burst>,
}

/// A correlation fed, and the places in its rule list of what feeds it.
type Route = (usize, Vec<usize>);

/// The correlation engine and what it needs to know.
pub struct Correlator {
    specs: Vec<Spec>,
    /// A detection rule's id or name -> the correlations it feeds, with its
    /// places in their rule lists.
    routes: HashMap<String, Vec<(usize, Vec<usize>)>, Fast>,
    /// A correlation -> the correlations that use it, with its places.
    chained: Vec<Arc<[Route]>>,
    /// Ids of the detection rules the correlations use.
    feeds: HashSet<String, Fast>,
    /// (correlation, group key) -> its state.
    groups: HashMap<(usize, String), Group, Fast>,
    /// Events already fed (a hash of rule and eventID -> event time): a
    /// record read twice (an object re-read after a crash, or delivered
    /// twice) is not counted twice.
    seen: HashMap<i64, i64, Fast>,
    /// What `seen` gained since the last commit, and the range of times
    /// outside which it forgot, for the state store (which keeps `seen` as
    /// rows, so that a commit writes what changed, not all of it).
    seen_new: Vec<(i64, i64)>,
    forget_outside: Option<(i64, i64)>,
    /// How long `seen` remembers, and how far behind the newest event time
    /// an idle group or burst is kept: the longest window, a day at least.
    horizon: i64,
    longest_window: i64,
    /// The newest event time fed, and when idle groups were last let go.
    newest: i64,
    swept_at: i64,
    /// `seen`'s size at which it is pruned next.
    prune_at: usize,
    /// Correlation alerts not yet committed: they are exported with the
    /// state, so that they are committed together.
    pending: Vec<Detected>,
    /// `scan`: bursts closed before the end of the input, by correlation
    /// and group, their summaries held until the end. Input read out of
    /// time order (a tree region by region) may bring a burst's events back:
    /// the burst resumes under its id instead of opening again.
    held: Option<Held>,
    /// Per correlation, the first-seen state of `new_value` rules.
    first_seen: Vec<Option<FirstSeen>>,
    /// `process`'s list of the correlations a record feeds, kept for the next.
    targets: Vec<(usize, Vec<usize>)>,
    /// Whether events are remembered against counting one twice (`scan`,
    /// which reads each file once, does without: a million-event burst
    /// would otherwise be a million entries).
    dedupe: bool,
}

type Held = HashMap<(usize, String), Vec<Burst>>;

/// The key of an event fed to a rule: FNV-1a over `rule \0 eventID` (stable
/// across versions, as it is stored; eventIDs are AWS's UUIDs, so 64 bits
/// keep collisions out of reach).
fn seen_key(rule: &str, event_id: &str) -> i64 {
    use super::index::{FNV_OFFSET, fnv1a};
    let h = fnv1a(FNV_OFFSET, rule.as_bytes());
    fnv1a(fnv1a(h, &[0]), event_id.as_bytes()) as i64
}

impl std::fmt::Debug for Correlator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correlator")
            .field("correlations", &self.specs.len())
            .field("groups", &self.groups.len())
            .finish()
    }
}

/// One event as a correlation sees it.
struct Feed<'a, 'r> {
    record: &'a Record<'r>,
    at: i64,
    /// The wall clock, read once for the record when a burst needs it.
    wall: std::cell::OnceCell<i64>,
    object: Option<&'a ObjectRef>,
    detected_at: &'a str,
}

impl Feed<'_, '_> {
    fn wall(&self) -> i64 {
        *self.wall.get_or_init(burst::wall_now)
    }
}

/// An alert of correlation `spec` under `id` on the record `feed` holds,
/// about `resource` (the group and what it did).
fn spec_alert(spec: &Spec, id: String, feed: &Feed, resource: String) -> Detected {
    Detected {
        alert: Alert {
            id,
            rule: spec.meta.alert_rule(&spec.id),
            event: AlertEvent::from_record(feed.record),
            object: feed.object.cloned(),
            count: 1,
            related_event_ids: Vec::new(),
            detected_at: feed.detected_at.to_owned(),
            burst: None,
        },
        context: AlertContext {
            skip_sinks: Vec::new(),
            description: spec.meta.description.clone(),
            falsepositives: spec.meta.falsepositives.clone(),
            record: None,
            resource: Some(resource),
            ungrouped: false,
        },
    }
}

impl Correlator {
    /// Builds the engine for `correlations` over `rules`; marks the rules a
    /// correlation uses with `generate: false` as feeding only.
    pub fn build(
        correlations: Vec<Correlation>,
        rules: &mut [Rule],
    ) -> (Option<Correlator>, Vec<RuleError>) {
        let mut errors = Vec::new();
        if correlations.is_empty() {
            return (None, errors);
        }
        let known: HashMap<String, usize> = rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                let name = r.sigma.name.clone();
                std::iter::once((r.id.clone(), i)).chain(name.map(|n| (n, i)))
            })
            .collect();
        let mut specs: Vec<Spec> = Vec::new();
        let mut marks: Vec<(usize, bool)> = Vec::new();
        for c in &correlations {
            let spec = match Spec::compile(&c.rule, &c.origin, c.new_value) {
                Ok(spec) => spec,
                Err(reason) => {
                    errors.push(RuleError::at(&c.origin, c.line, reason));
                    continue;
                }
            };
            let missing: Vec<&String> = spec
                .rules
                .iter()
                .filter(|r| !known.contains_key(*r) && !specs.iter().any(|s| s.is_named(r)))
                .collect();
            if !missing.is_empty() {
                let reason = format!(
                    "correlation {} uses rules that are not loaded: {missing:?}",
                    spec.id
                );
                errors.push(RuleError::at(&c.origin, c.line, reason));
                continue;
            }
            for r in &spec.rules {
                if let Some(&i) = known.get(r) {
                    marks.push((i, spec.generate));
                }
            }
            specs.push(spec);
        }
        if specs.is_empty() {
            return (None, errors);
        }
        let mut feeds = HashSet::default();
        for (i, generate) in marks {
            feeds.insert(rules[i].id.clone());
            rules[i].feeds = true;
            if !generate {
                rules[i].emit = false;
            }
        }
        let mut routes: HashMap<String, Vec<(usize, Vec<usize>)>, Fast> = HashMap::default();
        let mut chained = vec![Vec::new(); specs.len()];
        for (s, spec) in specs.iter().enumerate() {
            let mut by_target: HashMap<Result<usize, String>, Vec<usize>> = HashMap::new();
            for (slot, r) in spec.rules.iter().enumerate() {
                // A correlation named like a detection rule: the correlation wins.
                let target = match specs.iter().position(|o| o.is_named(r)) {
                    Some(inner) => Ok(inner),
                    None => Err(known
                        .get(r)
                        .map(|&i| rules[i].id.clone())
                        .unwrap_or_default()),
                };
                by_target.entry(target).or_default().push(slot);
            }
            for (target, slots) in by_target {
                match target {
                    Ok(inner) => chained[inner].push((s, slots)),
                    Err(rule_id) => routes.entry(rule_id).or_default().push((s, slots)),
                }
            }
        }
        for list in routes.values_mut().chain(chained.iter_mut()) {
            list.sort();
        }
        let chained = chained.into_iter().map(Arc::from).collect();
        let first_seen = specs
            .iter()
            .map(|s| matches!(s.kind, spec::Kind::NewValue { .. }).then(FirstSeen::default))
            .collect();
        // A first-seen rule's timespan is its values' time to live, not a window.
        let longest_window = specs
            .iter()
            .filter(|s| !matches!(s.kind, spec::Kind::NewValue { .. }))
            .map(|s| s.timespan)
            .max()
            .unwrap_or(0);
        (
            Some(Correlator {
                specs,
                routes,
                chained,
                feeds,
                groups: HashMap::default(),
                seen: HashMap::default(),
                seen_new: Vec::new(),
                forget_outside: None,
                horizon: longest_window.max(86_400),
                longest_window,
                newest: i64::MIN,
                swept_at: i64::MIN,
                prune_at: PRUNE_FLOOR,
                pending: Vec::new(),
                held: None,
                first_seen,
                targets: Vec::new(),
                dedupe: true,
            }),
            errors,
        )
    }

    /// The longest correlation window, in seconds.
    pub fn longest_window(&self) -> i64 {
        self.longest_window
    }

    /// How long events already counted are remembered (against double
    /// counting a record read twice), and how far behind the newest event
    /// an idle burst stays open for input out of time order. The daemon
    /// keeps the default, a day at least, since it may re-read objects that
    /// late; `scan` reads each file once and needs only the longest window.
    pub fn set_dedupe_horizon(&mut self, seconds: i64) {
        self.horizon = seconds.max(self.longest_window);
    }

    /// Holds bursts' summaries until `close_all` (for `scan`, whose input
    /// may go back in time): a burst whose events come back resumes.
    pub fn hold_summaries_to_end(&mut self) {
        self.held.get_or_insert_with(HashMap::new);
    }

    /// Events fed are not remembered (`scan`): the state stays bounded by
    /// the rules, however many events a window holds; a record delivered
    /// twice counts twice.
    pub fn without_dedupe(&mut self) {
        self.dedupe = false;
    }

    /// Ends group `at`'s burst: its summary is pending, or held (`scan`).
    fn end_burst(
        held: &mut Option<Held>,
        pending: &mut Vec<Detected>,
        at: &(usize, String),
        burst: Burst,
    ) {
        match held {
            Some(held) => held.entry(at.clone()).or_default().push(burst),
            None => pending.extend(burst.close()),
        }
    }

    /// Whether a correlation uses this detection rule.
    pub fn feeds_on(&self, rule_id: &str) -> bool {
        self.feeds.contains(rule_id)
    }

    /// How many groups the engine holds (bounded state is per group).
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Feeds one record that matched `matched` (those of them this
    /// correlator uses); the correlation alerts it opens or closes join
    /// `pending`. A record already fed is ignored.
    pub fn process(
        &mut self,
        record: &Record,
        matched: &[&Rule],
        object: Option<&ObjectRef>,
        detected_at: &str,
    ) {
        let at = record
            .event_time()
            .and_then(crate::event::time::unix_seconds)
            .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
        // The correlations fed and their places, in a list kept from record
        // to record (its slot lists keep their room).
        let mut targets = std::mem::take(&mut self.targets);
        let mut used = 0;
        let mut fed = false;
        for rule in matched {
            if !rule.feeds {
                continue;
            }
            // A rule with routes is one the correlator uses (`feeds`).
            let Some(routes) = self.routes.get(rule.id.as_str()) else {
                fed |= self.feeds_on(&rule.id);
                continue;
            };
            fed = true;
            // Counting rules must not count a record read twice; first-seen
            // rules are the same however often they see one, so their
            // (many) records are not remembered.
            let counts = self.dedupe
                && routes
                    .iter()
                    .any(|(s, _)| !matches!(self.specs[*s].kind, spec::Kind::NewValue { .. }));
            if counts {
                let key = seen_key(&rule.id, record.event_id().unwrap_or(""));
                if record.event_id().is_some() && self.seen.contains_key(&key) {
                    continue;
                }
                self.seen.insert(key, at);
                self.seen_new.push((key, at));
            }
            for (s, slots) in routes {
                match targets[..used].iter_mut().find(|(t, _)| t == s) {
                    Some((_, all)) => all.extend(slots),
                    None => {
                        if used == targets.len() {
                            targets.push((*s, Vec::new()));
                        }
                        let (t, all) = &mut targets[used];
                        *t = *s;
                        all.clear();
                        all.extend(slots);
                        used += 1;
                    }
                }
            }
        }
        if !fed {
            self.targets = targets;
            return;
        }
        targets[..used].sort();
        let feed = Feed {
            record,
            at,
            wall: std::cell::OnceCell::new(),
            object,
            detected_at,
        };
        for (s, slots) in &targets[..used] {
            let s = *s;
            let values: Vec<Option<Cow<str>>> = self.specs[s]
                .group_paths
                .iter()
                .map(|f| field_text(record, f))
                .collect();
            if let spec::Kind::NewValue { .. } = &self.specs[s].kind {
                self.observe_first_seen(s, &values, &feed);
            } else {
                self.feed(s, &values, slots, &feed, 0);
            }
        }
        self.targets = targets;
        self.newest = self.newest.max(at);
        self.forget_far_from(at);
        self.sweep(at);
    }

    /// Adds the event to correlation `s`'s group `values`; opens, extends
    /// or closes the group's burst; and, where the condition holds, feeds
    /// the correlations that use this one.
    fn feed(
        &mut self,
        s: usize,
        values: &[Option<Cow<str>>],
        slots: &[usize],
        feed: &Feed,
        depth: usize,
    ) {
        let spec = &self.specs[s];
        let key = group_key(&spec.group_by, values);
        let value = match &spec.kind {
            spec::Kind::ValueCount { fields } if depth == 0 => count_value(feed.record, fields),
            // Chained into a value_count, an event has no value (as in rsigma).
            _ => None,
        };
        let event_id = feed.record.event_id();
        let hit = Hit {
            t: feed.at,
            id: event_id.map(str::to_owned),
        };
        // The key goes into the table (found with one look-up); the rare
        // paths that need it again (a burst opens or ends) build it again.
        let group = self.groups.entry((s, key)).or_insert_with(|| Group {
            window: Window::new(spec),
            burst: None,
        });
        let key = || group_key(&spec.group_by, values);
        let reading = group.window.add(spec, slots, value.as_deref(), hit);
        if group
            .burst
            .as_ref()
            .is_some_and(|b| b.over_at(feed.at, spec.timespan))
            && let Some(burst) = group.burst.take()
        {
            Self::end_burst(&mut self.held, &mut self.pending, &(s, key()), burst);
        }
        match &mut group.burst {
            Some(burst) => burst.extend(feed.at, event_id, reading.holds, feed.wall()),
            None if reading.holds => {
                let hits = group.window.hits(spec, feed.at);
                let related: Vec<String> = hits
                    .iter()
                    .filter_map(|h| h.id.clone())
                    .filter(|id| Some(id.as_str()) != event_id)
                    .take(SAMPLE_MAX)
                    .collect();
                let mut sample: Vec<String> = related.clone();
                sample.extend(event_id.map(str::to_owned));
                let key = key();
                let id = correlation_alert_id(&spec.id, &key, &rfc3339(reading.start));
                let mut opening = spec_alert(spec, id, feed, key.clone());
                opening.alert.count = (hits.len() as u64).max(1);
                opening.alert.related_event_ids = related;
                // A burst already: never grouped again.
                opening.context.ungrouped = true;
                // A held burst of this group that these events overlap.
                let span = spec.timespan;
                let resumed = self.held.as_mut().and_then(|held| {
                    let list = held.get_mut(&(s, key.clone()))?;
                    let i = list.iter().position(|b| {
                        reading.start <= b.last_hold.saturating_add(span)
                            && feed.at >= b.first.saturating_sub(span)
                    })?;
                    Some(list.swap_remove(i))
                });
                match resumed {
                    // The same burst again (input gone back in time): no new alert.
                    Some(mut burst) => {
                        burst.extend(feed.at, event_id, true, feed.wall());
                        group.burst = Some(burst);
                    }
                    None => {
                        let (burst, alert) = Burst::open(opening, reading.start, feed.at, sample);
                        group.burst = Some(burst);
                        self.pending.push(alert);
                    }
                }
            }
            None => {}
        }
        if reading.holds && depth < CHAIN_DEPTH {
            let outers = Arc::clone(&self.chained[s]);
            for (outer, slots) in outers.iter() {
                // The outer group's values come from this group's, by name.
                let inner_by = &self.specs[s].group_by;
                let outer_values: Vec<Option<Cow<str>>> = self.specs[*outer]
                    .group_by
                    .iter()
                    .map(|f| {
                        inner_by
                            .iter()
                            .position(|g| g == f)
                            .and_then(|i| values[i].clone())
                    })
                    .collect();
                self.feed(*outer, &outer_values, slots, feed, depth + 1);
            }
        }
    }

    /// A record of first-seen rule `s`: its pair waits for the next flush
    /// unless already learned.
    fn observe_first_seen(&mut self, s: usize, values: &[Option<Cow<str>>], feed: &Feed) {
        let spec = &self.specs[s];
        let spec::Kind::NewValue { fields, .. } = &spec.kind else {
            return;
        };
        let Some(value) = count_value(feed.record, fields) else {
            return;
        };
        let key = group_key(&spec.group_by, values);
        let Some(Some(state)) = self.first_seen.get_mut(s) else {
            return;
        };
        let event_id = feed.record.event_id().unwrap_or("");
        state.observe(&key, &value, feed.at, event_id, spec.timespan, || {
            let resource = if key.is_empty() {
                value.to_string()
            } else {
                format!("{key}: {value}")
            };
            spec_alert(
                spec,
                crate::alert::alert_id(&spec.id, event_id),
                feed,
                resource,
            )
        });
    }

    /// Decides the first-seen rules' waiting values in event-time order
    /// (the end of a crawl pass, of `once`'s or `scan`'s input); their
    /// alerts join `pending`.
    pub fn flush_first_seen(&mut self) {
        for (s, state) in self.first_seen.iter_mut().enumerate() {
            let Some(state) = state else { continue };
            if let spec::Kind::NewValue {
                learning,
                max_values,
                ..
            } = self.specs[s].kind
            {
                let alerts = state.flush(learning, self.specs[s].timespan, max_values);
                self.pending.extend(alerts);
            }
        }
    }
}

#[cfg(test)]
mod tests;
