//! Grouping windows shared by every instance (DESIGN.md, "Bursts"): repeats
//! of one rule for one principal are one burst whichever instances read
//! them. The same rules as the SQLite windows (`state/suppress.rs`), kept
//! as one item per window in `<prefix>-rules` (`window#<key>`: its first
//! alert, first event time, end, count, repeats and targets, the objects
//! whose repeats it counted, and a version every write is conditional on),
//! so that two instances never both open a burst nor lose each other's
//! repeats. One write per object and window, whatever the object's number
//! of repeats; single-item conditional writes only (DynamoDB's
//! transactions would do, but moto's roll back other writers' changes).
//!
//! An object read twice (by one instance or two) is counted once: its key
//! is in the window's list (the newest `OBJECTS_MAX`). A window that has
//! ended is closed by whoever gets there first (the instance opening the
//! next burst of the key, or the periodic close), by a write conditional on
//! its version, so that its summary is raised once.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{SharedError, SharedState, n, s};
use crate::alert::{BurstInfo, Detected};
use crate::config::Suppression;
use crate::state::suppress::{self, Related};

/// Conflicting writers retry this many times before giving up on an object.
const ATTEMPTS: usize = 32;
/// A window remembers this many of the newest objects it counted.
const OBJECTS_MAX: usize = 500;

type Item = HashMap<String, AttributeValue>;
type Time = time::OffsetDateTime;

fn text(item: &Item, k: &str) -> String {
    match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => String::new(),
    }
}

fn number(item: &Item, k: &str) -> i64 {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

/// One window as the item holds it.
#[derive(Debug, Clone)]
struct Window {
    burst: String,
    start: Time,
    end: Time,
    count: i64,
    related: Related,
    /// The first alert, with its burst, and its context (JSON).
    first: String,
    objects: Vec<String>,
    /// The summary of the window this one replaced (JSON), if any.
    replaced: Option<String>,
}

fn json_of(d: &Detected) -> String {
    serde_json::to_string(&(&d.alert, &d.context)).unwrap_or_default()
}

fn detected(json: &str) -> Option<Detected> {
    serde_json::from_str(json)
        .ok()
        .map(|(alert, context)| Detected { alert, context })
}

impl Window {
    fn from_item(item: &Item) -> Option<Window> {
        Some(Window {
            burst: text(item, "burst"),
            start: suppress::parse_time(Some(&text(item, "start")))?,
            end: suppress::parse_time(Some(&text(item, "end")))?,
            count: number(item, "count"),
            related: suppress::read_related(&text(item, "related")),
            first: text(item, "first"),
            objects: serde_json::from_str(&text(item, "objects")).unwrap_or_default(),
            replaced: Some(text(item, "replaced")).filter(|r| !r.is_empty()),
        })
    }

    /// A window opened by `d` at `at`, and its opening alert.
    fn open(d: &Detected, at: Time, window: std::time::Duration) -> (Window, Detected) {
        let mut opening = d.clone();
        opening.alert.burst = Some(BurstInfo {
            id: d.alert.id.clone(),
            state: "open".into(),
            first: suppress::rfc3339(at),
            last: suppress::rfc3339(at),
        });
        let mut related = Related {
            last: Some(suppress::rfc3339(at)),
            ..Related::default()
        };
        suppress::push_bounded(
            &mut related.targets,
            d.context.resource.as_deref(),
            suppress::TARGETS_MAX,
        );
        let w = Window {
            burst: d.alert.id.clone(),
            start: at,
            end: at + window,
            count: 1,
            related,
            first: json_of(&opening),
            objects: Vec::new(),
            replaced: None,
        };
        (w, opening)
    }

    /// Whether a repeat at `at` belongs to it (out of time order: up to a
    /// window before its first event too).
    fn holds(&self, at: Time, window: std::time::Duration) -> bool {
        at >= self.start - window && at < self.end
    }

    /// Counts a repeat; the window slides to a window's length after it.
    fn count(&mut self, d: &Detected, at: Time, window: std::time::Duration) {
        self.count += 1;
        if self.related.ids.len() < suppress::RELATED_MAX {
            self.related
                .ids
                .push(d.alert.event.id.clone().unwrap_or_default());
        }
        suppress::push_bounded(
            &mut self.related.targets,
            d.context.resource.as_deref(),
            suppress::TARGETS_MAX,
        );
        if suppress::parse_time(self.related.last.as_deref()).is_none_or(|l| l < at) {
            self.related.last = Some(suppress::rfc3339(at));
        }
        self.start = self.start.min(at);
        self.end = self.end.max(at + window);
    }

    fn summary(&self) -> Option<Detected> {
        suppress::summary(
            suppress::rfc3339(self.start),
            self.count,
            &serde_json::to_string(&self.related).unwrap_or_default(),
            &self.first,
        )
    }
}

/// The summary of a window item, when it counted repeats.
fn summary_of(item: &Item) -> Option<Detected> {
    Window::from_item(item)?.summary()
}

impl SharedState {
    /// Groups one object's alerts (`object`: its bucket and key) with every
    /// instance's: returns what to put in this instance's outbox (alerts no
    /// window applies to as they are, alerts opening a burst with it, and
    /// the summaries of the windows their bursts replaced); repeats inside
    /// an open window are counted there instead.
    pub async fn group(
        &self,
        config: &Suppression,
        object: &str,
        alerts: Vec<Detected>,
    ) -> Result<Vec<Detected>, SharedError> {
        let mut out = Vec::with_capacity(alerts.len());
        let mut by_key: BTreeMap<String, Vec<(Time, Detected)>> = BTreeMap::new();
        for d in alerts {
            if suppress::applies(config, &d) {
                let at = suppress::parse_time(d.alert.event.time.as_deref())
                    .unwrap_or_else(Time::now_utc);
                by_key.entry(suppress::key(&d)).or_default().push((at, d));
            } else {
                out.push(d);
            }
        }
        for (key, mut batch) in by_key {
            batch.sort_by(|a, b| (a.0, &a.1.alert.id).cmp(&(b.0, &b.1.alert.id)));
            self.group_batch(config, object, &format!("window#{key}"), &batch, &mut out)
                .await?;
        }
        Ok(out)
    }

    /// One object's repeats of one key, in time order: one conditional
    /// write of the window they leave, decided again if another instance
    /// wrote it meanwhile.
    async fn group_batch(
        &self,
        config: &Suppression,
        object: &str,
        name: &str,
        batch: &[(Time, Detected)],
        out: &mut Vec<Detected>,
    ) -> Result<(), SharedError> {
        for _ in 0..ATTEMPTS {
            let item = self.rules_item(name).await?;
            let version = item.as_ref().map_or(0, |i| number(i, "v"));
            let stored = item.as_ref().and_then(Window::from_item);
            if let Some(w) = &stored
                && w.objects.iter().any(|o| o == object)
            {
                // Counted before (its commit failed, or another instance
                // read it too): its opening alert again, if it has it.
                if batch.iter().any(|(_, d)| d.alert.id == w.burst) {
                    out.extend(w.replaced.as_deref().and_then(detected));
                    out.extend(detected(&w.first));
                }
                return Ok(());
            }
            let mut current = stored;
            let mut emitted = Vec::new();
            for (at, d) in batch {
                match current.as_mut() {
                    Some(w) if w.holds(*at, config.window) => w.count(d, *at, config.window),
                    _ => {
                        let replaced = current.take().and_then(|old| old.summary());
                        let (mut w, opening) = Window::open(d, *at, config.window);
                        if let Some(summary) = replaced {
                            w.replaced = Some(json_of(&summary));
                            emitted.push(summary);
                        }
                        emitted.push(opening);
                        current = Some(w);
                    }
                }
            }
            let Some(mut w) = current else {
                return Ok(());
            };
            w.objects.push(object.to_owned());
            let excess = w.objects.len().saturating_sub(OBJECTS_MAX);
            w.objects.drain(..excess);
            if self
                .put_window(name, &w, item.is_some().then_some(version))
                .await?
            {
                out.extend(emitted);
                return Ok(());
            }
        }
        Err(SharedError {
            table: self.rules.clone(),
            call: "PutItem",
            reason: format!("{name}: still changing after {ATTEMPTS} attempts"),
        })
    }

    /// Writes a window if it is still at `version` (absent: `None`); false
    /// when another instance wrote it meanwhile.
    async fn put_window(
        &self,
        name: &str,
        w: &Window,
        version: Option<i64>,
    ) -> Result<bool, SharedError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.rules)
            .item("name", s(name))
            .item("burst", s(w.burst.as_str()))
            .item("start", s(suppress::rfc3339(w.start)))
            .item("end", s(suppress::rfc3339(w.end)))
            .item("count", n(w.count))
            .item(
                "related",
                s(serde_json::to_string(&w.related).unwrap_or_default()),
            )
            .item("first", s(w.first.as_str()))
            .item(
                "objects",
                s(serde_json::to_string(&w.objects).unwrap_or_default()),
            )
            .item("v", n(version.unwrap_or(0) + 1));
        if let Some(replaced) = &w.replaced {
            put = put.item("replaced", s(replaced.as_str()));
        }
        put = match version {
            None => put
                .condition_expression("attribute_not_exists(#name)")
                .expression_attribute_names("#name", "name"),
            Some(v) => put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "v")
                .expression_attribute_values(":v", n(v)),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(Self::error(&self.rules, "PutItem", e)),
        }
    }

    /// Closes the windows that ended before now, whichever instance opened
    /// them; returns the summaries this instance won the right to raise.
    pub async fn close_windows(&self) -> Result<Vec<Detected>, SharedError> {
        let stamp = suppress::rfc3339(time::OffsetDateTime::now_utc());
        let mut pages = self
            .client
            .scan()
            .table_name(&self.rules)
            .filter_expression("begins_with(#name, :window) AND #end <= :now")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#end", "end")
            .expression_attribute_values(":window", s("window#"))
            .expression_attribute_values(":now", s(stamp))
            .into_paginator()
            .send();
        let mut ended = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Self::error(&self.rules, "Scan", e))?;
            ended.extend(page.items().iter().cloned());
        }
        let mut summaries = Vec::new();
        for w in ended {
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.rules)
                .key("name", s(text(&w, "name")))
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "v")
                .expression_attribute_values(":v", n(number(&w, "v")))
                .send()
                .await;
            match deleted {
                Ok(_) => summaries.extend(summary_of(&w)),
                // Extended or closed by another instance meanwhile.
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {}
                Err(e) => return Err(Self::error(&self.rules, "DeleteItem", e)),
            }
        }
        Ok(summaries)
    }
}
