//! The daemon's counters and gauges, rendered in Prometheus' text format.
//! Names (documented in the README):
//! - `trailwatch_objects_listed_total`, `trailwatch_objects_processed_total`,
//!   `trailwatch_objects_failed_total`, `trailwatch_records_total`
//! - `trailwatch_alerts_total{rule,level}` (new alerts committed)
//! - `trailwatch_sink_requests_total{sink,status}` (HTTP status, `timeout`, `error`)
//! - `trailwatch_sink_delivered_total{sink}`, `trailwatch_sink_retries_total{sink}`,
//!   `trailwatch_sink_dead_letters_total{sink}`, `trailwatch_outbox_depth{sink}`,
//!   `trailwatch_sink_failing{sink}`
//! - `trailwatch_cursor_lag_seconds{bucket,prefix,account,region}` (now minus
//!   the newest processed object's time)
//! - `trailwatch_trails{status}` (logging / not_logging), `trailwatch_crawl_cycles_total`
//! - shared state: `trailwatch_stateful_rules_leader` (1 on the instance
//!   that runs the stateful rules), `trailwatch_stateful_rules_fed_total`

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
struct Inner {
    counters: BTreeMap<(String, Vec<(String, String)>), f64>,
    gauges: BTreeMap<(String, Vec<(String, String)>), f64>,
}

/// Thread-safe metrics store.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn key(name: &str, labels: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

impl Metrics {
    pub fn add(&self, name: &str, labels: &[(&str, &str)], by: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.counters.entry(key(name, labels)).or_default() += by;
    }

    pub fn set(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.gauges.insert(key(name, labels), value);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut typed = std::collections::BTreeSet::new();
        for (kind, map) in [("counter", &inner.counters), ("gauge", &inner.gauges)] {
            for ((name, labels), value) in map.iter() {
                if typed.insert(name.clone()) {
                    let _ = writeln!(out, "# TYPE {name} {kind}");
                }
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                    })
                    .collect();
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::default();
        m.add("trailwatch_records_total", &[], 5.0);
        m.add("trailwatch_records_total", &[], 2.0);
        m.set("trailwatch_outbox_depth", &[("sink", "dd\"x")], 3.0);
        let text = m.render();
        assert!(
            text.contains("# TYPE trailwatch_records_total counter\ntrailwatch_records_total 7\n"),
            "{text}"
        );
        assert!(
            text.contains("trailwatch_outbox_depth{sink=\"dd\\\"x\"} 3"),
            "{text}"
        );
    }
}
