//! A blind spot of trailwatch's own: a sink whose alerts are refused for
//! good (dead letters). One alert when the first one is refused, which goes
//! to every sink but that one, and one summary when it delivers again. The
//! open episodes are kept in the state store's kv, with their alerts in one
//! transaction; ids by the trail-status alerts' formula, never grouped.

use std::collections::BTreeMap;

use crate::alert::builtin::Builtin;
use crate::alert::{AlertEvent, Detected, alert_id, now_rfc3339};
use crate::state::StateStore;

pub const SINK_DEAD_LETTERS: &str = "trailwatch-blind-sink-dead-letters";
const KEY: &str = "blind_sinks";

/// A sink's alerts going to dead letters: since when, the first refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Episode {
    pub since: String,
    pub first_refused: String,
    pub status: Option<u16>,
    pub alert_id: String,
}

pub type Episodes = BTreeMap<String, Episode>;

/// The open episodes, by sink.
pub fn open(state: &StateStore) -> crate::state::Result<Episodes> {
    Ok(state
        .kv(KEY)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

/// After `sink` refused `refused` for good: opens its episode (an alert for
/// the other sinks) unless one is open. Returns the episodes now open.
pub fn dead_lettered(
    state: &StateStore,
    sink: &str,
    refused: &str,
    status: Option<u16>,
) -> crate::state::Result<Episodes> {
    let mut episodes = open(state)?;
    if episodes.contains_key(sink) {
        return Ok(episodes);
    }
    let since = now_rfc3339();
    let id = alert_id(SINK_DEAD_LETTERS, &format!("{sink}\0{since}"));
    let episode = Episode {
        since,
        first_refused: refused.to_owned(),
        status,
        alert_id: id,
    };
    let alert = alert(sink, &episode, false);
    episodes.insert(sink.to_owned(), episode);
    save(state, &episodes, &[alert])?;
    tracing::warn!(
        sink,
        rule = SINK_DEAD_LETTERS,
        "blind spot: a sink's alerts go to dead letters"
    );
    Ok(episodes)
}

/// After `sink` delivered: closes its episode, if one is open, with a
/// summary. Returns the episodes now open.
pub fn delivered(state: &StateStore, sink: &str) -> crate::state::Result<Episodes> {
    let mut episodes = open(state)?;
    let Some(episode) = episodes.remove(sink) else {
        return Ok(episodes);
    };
    save(state, &episodes, &[alert(sink, &episode, true)])?;
    Ok(episodes)
}

fn save(state: &StateStore, episodes: &Episodes, alerts: &[Detected]) -> crate::state::Result<()> {
    let json = serde_json::to_string(episodes).unwrap_or_else(|_| "{}".into());
    state.set_kv_with_alerts(KEY, &json, alerts).map(|_| ())
}

fn alert(sink: &str, e: &Episode, resolved: bool) -> Detected {
    let id = if resolved {
        alert_id(SINK_DEAD_LETTERS, &format!("{}\0resolved", e.alert_id))
    } else {
        e.alert_id.clone()
    };
    let status = e
        .status
        .map_or("no status".to_owned(), |s| format!("HTTP {s}"));
    let (title, description) = if resolved {
        (
            format!("Sink delivers again: {sink}"),
            format!(
                "The sink {sink} accepts alerts again (it refused them since {}). Those it \
                 refused meanwhile wait as dead letters: `trailwatch outbox list --sink {sink}`, \
                 then `outbox retry`.",
                e.since
            ),
        )
    } else {
        (
            format!("Blind spot: sink {sink} refuses alerts ({status})"),
            format!(
                "The sink {sink} refused an alert for good ({status}); it and any others it \
                 refuses are kept as dead letters, not seen where that sink leads. Check the \
                 receiver (a changed schema, a size limit) and replay them with `trailwatch \
                 outbox retry --sink {sink}`. This alert does not go to {sink}."
            ),
        )
    };
    Builtin {
        rule: SINK_DEAD_LETTERS.to_owned(),
        id,
        title,
        severity: "medium".into(),
        event: AlertEvent {
            time: Some(e.since.clone()),
            error_code: e.status.map(|s| s.to_string()),
            ..AlertEvent::default()
        },
        description,
        record: Some(format!("first refused: {}", e.first_refused)),
        resource: Some(sink.to_owned()),
        ungrouped: true,
        skip_sinks: vec![sink.to_owned()],
        ..Builtin::default()
    }
    .detected()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_refusing_alerts_opens_one_episode_closed_by_one_summary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateStore::open(&dir.path().join("s.db")).expect("state");
        let open_now = dead_lettered(&state, "hook", "tw-1", Some(400)).expect("open");
        assert!(open_now.contains_key("hook"));
        dead_lettered(&state, "hook", "tw-2", Some(400)).expect("still open");
        let stored = state.alerts_after(0, 10).expect("outbox");
        assert_eq!(stored.len(), 1, "one alert per episode");
        assert_eq!(stored[0].alert.rule.id, SINK_DEAD_LETTERS);
        assert_eq!(stored[0].context.skip_sinks, ["hook"]);
        assert!(delivered(&state, "hook").expect("closed").is_empty());
        assert!(delivered(&state, "hook").expect("nothing open").is_empty());
        let stored = state.alerts_after(0, 10).expect("outbox");
        assert_eq!(stored.len(), 2, "one summary");
        assert_ne!(stored[0].alert.id, stored[1].alert.id);
        assert_eq!(stored[1].context.skip_sinks, ["hook"]);
    }
}
