//! Stateful rules: Sigma correlation rules (`event_count`, `value_count`,
//! `temporal`, ...) through rsigma's correlation engine. Only records that
//! matched a rule some correlation uses are fed to it. Its state can be
//! exported and restored, so that the crawler keeps it in the state store
//! with each object's checkpoint: a restart inside a window neither loses nor
//! double-counts events.

use std::collections::{HashMap, HashSet};

use rsigma_eval::{
    CorrelationConfig, CorrelationEngine, CorrelationEventMode, Event, EventValue, ResultBody,
};
use rsigma_parser::SigmaCollection;

use super::index::WordHash;
use super::load::Correlation;

/// The tables' hash: read for every record that feeds a correlation.
type Fast = std::hash::BuildHasherDefault<WordHash>;
use super::rule::{Rule, RuleError, RuleOrigin, Severity};
use crate::alert::{
    Alert, AlertContext, AlertEvent, AlertRule, Detected, ObjectRef, correlation_alert_id,
};
use crate::event::Record;

/// `seen` is not pruned below this many entries.
const PRUNE_FLOOR: usize = 10_000;

/// At most this many other events are named in a correlation alert.
const RELATED_MAX: usize = 100;

/// What an alert needs to say about a correlation rule.
#[derive(Debug, Clone)]
struct Meta {
    title: String,
    severity: Severity,
    tags: Vec<String>,
    description: Option<String>,
    falsepositives: Vec<String>,
    origin: RuleOrigin,
}

/// The correlation engine and what it needs to know.
pub struct Correlator {
    engine: CorrelationEngine,
    /// Ids and names of the detection rules the correlations use.
    feeds: HashSet<String, Fast>,
    meta: HashMap<String, Meta, Fast>,
    /// Events already fed (a hash of rule and eventID -> event time): a
    /// record read twice (an object re-read after a crash, or delivered
    /// twice) is not counted twice.
    seen: HashMap<i64, i64, Fast>,
    /// What `seen` gained since the last commit, and the range of times
    /// outside which it forgot, for the state store (which keeps `seen` as rows, so that a
    /// commit writes what changed, not all of it).
    seen_new: Vec<(i64, i64)>,
    forget_outside: Option<(i64, i64)>,
    /// How long `seen` remembers: the longest window, and a day at least.
    horizon: i64,
    longest_window: i64,
    /// The event time at which expired windows were last let go: the engine
    /// itself does so only once it holds 100,000 groups, so over a long run
    /// they would pile up until then.
    evicted_at: i64,
    /// `seen`'s size at which it is pruned next.
    prune_at: usize,
    /// Correlation alerts not yet committed: they are exported with the
    /// state, so that they are committed together.
    pending: Vec<Detected>,
}

/// What is kept in the state store's `kv` row (`seen` has its own table).
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    engine: serde_json::Value,
    pending: Vec<(Alert, AlertContext)>,
}

/// The stateful rules' state: the engine's windows and the alerts not yet
/// committed (`state`), and the events already counted (`seen`: the hash of
/// rule and eventID, and the event's time), sorted.
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

/// The key of an event fed to a rule: FNV-1a over `rule \0 eventID` (stable
/// across versions, as it is stored; eventIDs are AWS's UUIDs, so 64 bits
/// keep collisions out of reach).
/// What the correlation engine reads of a detection: the rule's id.
fn routed(rule: &Rule) -> rsigma_eval::EvaluationResult {
    rsigma_eval::EvaluationResult {
        header: rsigma_eval::result::RuleHeader {
            rule_title: String::new(),
            rule_id: rule.compiled.id.clone(),
            level: None,
            tags: Vec::new(),
            custom_attributes: Default::default(),
            enrichments: None,
        },
        body: rsigma_eval::result::ResultBody::Detection(rsigma_eval::result::DetectionBody {
            matched_selections: Vec::new(),
            matched_fields: Vec::new(),
            event: None,
        }),
    }
}

fn seen_key(rule: &str, event_id: &str) -> i64 {
    use super::index::{FNV_OFFSET, fnv1a};
    let h = fnv1a(FNV_OFFSET, rule.as_bytes());
    fnv1a(fnv1a(h, &[0]), event_id.as_bytes()) as i64
}

impl std::fmt::Debug for Correlator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correlator")
            .field("correlations", &self.meta.len())
            .finish()
    }
}

/// The record as the engine sees it: its fields for matching and grouping,
/// and its `eventID` under `id` (so that alerts can name the related events).
struct Fed<'r, 'a>(&'r Record<'a>);

impl Event for Fed<'_, '_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.0.get_field(path)
    }
    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.0.any_string_value(pred)
    }
    fn all_string_values(&self) -> Vec<std::borrow::Cow<'_, str>> {
        self.0.all_string_values()
    }
    /// The engine keeps only event references (their ids), never whole
    /// events: its JSON view of an event is just the id, which saves
    /// building a whole JSON tree for every record fed.
    fn to_json(&self) -> serde_json::Value {
        match self.0.event_id() {
            Some(id) => serde_json::json!({ "id": id }),
            None => serde_json::json!({}),
        }
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
        let mut collection = SigmaCollection::new();
        let mut used = HashSet::new();
        let mut meta = HashMap::default();
        let mut feeds = HashSet::default();
        let mut accepted = Vec::new();
        for c in correlations {
            let id = c.rule.id.clone().unwrap_or_default();
            let missing: Vec<&String> = c
                .rule
                .rules
                .iter()
                .filter(|r| {
                    !known.contains_key(*r)
                        && !accepted.iter().any(|a: &Correlation| {
                            a.rule.id.as_ref() == Some(*r) || a.rule.name.as_ref() == Some(*r)
                        })
                })
                .collect();
            if !missing.is_empty() {
                errors.push(RuleError {
                    file: c.origin.path().to_owned(),
                    line: c.line,
                    reason: format!("correlation {id} uses rules that are not loaded: {missing:?}"),
                });
                continue;
            }
            for r in &c.rule.rules {
                if let Some(&i) = known.get(r) {
                    used.insert(i);
                    feeds.insert(rules[i].id.clone());
                    rules[i].feeds = true;
                    if !c.rule.generate {
                        rules[i].emit = false;
                    }
                }
            }
            meta.insert(
                id,
                Meta {
                    title: c.rule.title.clone(),
                    severity: Severity::from_sigma(c.rule.level),
                    tags: c.rule.tags.clone(),
                    description: c.rule.description.clone(),
                    falsepositives: c.rule.falsepositives.clone(),
                    origin: c.origin.clone(),
                },
            );
            accepted.push(c);
        }
        let mut used: Vec<usize> = used.into_iter().collect();
        used.sort_unstable();
        for i in used {
            collection.rules.push((*rules[i].sigma).clone());
        }
        collection.correlations = accepted.iter().map(|c| c.rule.clone()).collect();
        let config = CorrelationConfig {
            // One alert per window: the count starts again after it fires.
            action_on_match: rsigma_eval::CorrelationAction::Reset,
            correlation_event_mode: CorrelationEventMode::Refs,
            max_correlation_events: RELATED_MAX + 1,
            ..CorrelationConfig::default()
        };
        let mut engine = CorrelationEngine::new(config);
        if let Err(e) = engine.add_collection(&collection) {
            let (file, line) = accepted
                .first()
                .map(|c| (c.origin.path().to_owned(), c.line))
                .unwrap_or_default();
            errors.push(RuleError {
                file,
                line,
                reason: format!("correlation rules: {e}"),
            });
            return (None, errors);
        }
        let longest_window = accepted
            .iter()
            .map(|c| c.rule.timespan.seconds as i64)
            .max()
            .unwrap_or(0);
        let horizon = longest_window.max(86_400);
        (
            Some(Correlator {
                engine,
                feeds,
                meta,
                seen: HashMap::default(),
                seen_new: Vec::new(),
                forget_outside: None,
                horizon,
                longest_window,
                evicted_at: i64::MIN,
                prune_at: PRUNE_FLOOR,
                pending: Vec::new(),
            }),
            errors,
        )
    }

    /// The longest correlation window, in seconds.
    pub fn longest_window(&self) -> i64 {
        self.longest_window
    }

    /// How long events already counted are remembered (against double
    /// counting a record read twice). The daemon keeps the default, a day at
    /// least, since it may re-read objects that late; `scan` reads each file
    /// once and needs only the longest window.
    pub fn set_dedupe_horizon(&mut self, seconds: i64) {
        self.horizon = seconds.max(self.longest_window);
    }

    /// Whether a correlation uses this detection rule.
    pub fn feeds_on(&self, rule_id: &str) -> bool {
        self.feeds.contains(rule_id)
    }

    /// Feeds one record that matched `matched` (rules this correlator uses);
    /// the correlation alerts it completes join `pending`. A record already
    /// fed is ignored.
    pub fn process(
        &mut self,
        record: &Record,
        matched: &[&Rule],
        object: Option<&ObjectRef>,
        detected_at: &str,
    ) {
        let at = record
            .event_time()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or_else(time::OffsetDateTime::now_utc)
            .unix_timestamp();
        let mut fresh = Vec::new();
        for rule in matched {
            let key = seen_key(&rule.id, record.event_id().unwrap_or(""));
            if record.event_id().is_some() && self.seen.contains_key(&key) {
                continue;
            }
            self.seen.insert(key, at);
            self.seen_new.push((key, at));
            fresh.push(*rule);
        }
        let found = self.evaluate(record, &fresh, at, object, detected_at);
        self.pending.extend(found);
        self.forget_far_from(at);
        self.evict_windows(at);
    }

    /// Lets go of windows that ended more than the horizon before this
    /// event, once per longest window of event time. Relative to this event,
    /// not the latest seen: input out of time order (scan reads a tree region
    /// by region) keeps the windows it may still fill.
    fn evict_windows(&mut self, at: i64) {
        if self.evicted_at == i64::MIN || at < self.evicted_at {
            self.evicted_at = at;
        } else if at - self.evicted_at >= self.longest_window.max(300) {
            self.engine.evict_expired(at - self.horizon);
            self.evicted_at = at;
        }
    }

    /// Forgets events more than the horizon away from `at`, either way (a
    /// tree read region by region goes back in time at each region), when
    /// `seen` has doubled since the last time (so that the cost stays
    /// linear in the events fed).
    fn forget_far_from(&mut self, at: i64) {
        if self.seen.len() >= self.prune_at {
            let (lo, hi) = (at - self.horizon, at.saturating_add(self.horizon));
            self.seen.retain(|_, t| (lo..=hi).contains(t));
            self.seen_new.retain(|(_, t)| (lo..=hi).contains(t));
            // Rows outside the newest range go; a later prune's range wins.
            self.forget_outside = Some((lo, hi));
            self.prune_at = (self.seen.len() * 2).max(PRUNE_FLOOR);
        }
    }

    fn evaluate(
        &mut self,
        record: &Record,
        matched: &[&Rule],
        at: i64,
        object: Option<&ObjectRef>,
        detected_at: &str,
    ) -> Vec<Detected> {
        // The engine routes a detection to its correlations by the rule's id
        // alone: the match (found already) is not evaluated again for a
        // report of which fields matched.
        let detections: Vec<_> = matched.iter().map(|r| routed(r)).collect();
        if detections.is_empty() {
            return Vec::new();
        }
        let results = self
            .engine
            .process_with_detections(&Fed(record), detections, at);
        let mut out = Vec::new();
        for result in results {
            let ResultBody::Correlation(body) = &result.body else {
                continue;
            };
            let Some(id) = result.header.rule_id.clone() else {
                continue;
            };
            let Some(meta) = self.meta.get(&id) else {
                continue;
            };
            let group_key = body
                .group_key
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let refs = body.event_refs.clone().unwrap_or_default();
            let start = refs.iter().map(|r| r.timestamp).min().unwrap_or(at);
            let window_start = time::OffsetDateTime::from_unix_timestamp(start)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            let this = record.event_id();
            let related: Vec<String> = refs
                .iter()
                .filter_map(|r| r.id.clone())
                .filter(|r| Some(r.as_str()) != this)
                .take(RELATED_MAX)
                .collect();
            let alert = Alert {
                id: correlation_alert_id(&id, &group_key, &window_start),
                rule: AlertRule {
                    id: id.clone(),
                    title: meta.title.clone(),
                    severity: meta.severity.as_str().to_owned(),
                    tags: meta.tags.clone(),
                    source: meta.origin.label().to_owned(),
                },
                event: AlertEvent::from_record(record),
                object: object.cloned(),
                count: (body.aggregated_value.max(1.0) as u64).max(related.len() as u64 + 1),
                related_event_ids: related,
                detected_at: detected_at.to_owned(),
            };
            out.push(Detected {
                alert,
                context: AlertContext {
                    description: meta.description.clone(),
                    falsepositives: meta.falsepositives.clone(),
                    record: None,
                    resource: Some(group_key),
                },
            });
        }
        out
    }

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

    /// The engine's windows and the alerts not yet committed (the state
    /// store's `kv` row).
    pub fn export_state(&self) -> serde_json::Value {
        let saved = Saved {
            engine: serde_json::to_value(self.engine.export_state())
                .unwrap_or(serde_json::Value::Null),
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

    /// Restores what `export` gave; false when it does not fit these rules.
    pub fn import(&mut self, from: Snapshot) -> bool {
        let Ok(saved) = serde_json::from_value::<Saved>(from.state) else {
            return false;
        };
        let Ok(snapshot) = serde_json::from_value(saved.engine) else {
            return false;
        };
        if !self.engine.import_state(snapshot) {
            return false;
        }
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

#[cfg(test)]
mod tests {
    /// The keys are stored in the state store: they must never change.
    /// Computed independently (FNV-1a 64 of `aws-access-denied \0 e1` in Python).
    #[test]
    fn seen_keys_are_stable() {
        assert_eq!(
            super::seen_key("aws-access-denied", "e1"),
            -7_072_197_006_818_108_883
        );
        assert_ne!(super::seen_key("ab", "c"), super::seen_key("a", "bc"));
    }
}
