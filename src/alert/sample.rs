//! A sample alert: what a webhook template is checked against when the
//! configuration is read, and what tests start from.

use super::{Alert, AlertEvent, AlertRule};

impl Alert {
    /// An alert with the contract's fields filled, quotes in its title.
    pub fn sample() -> Alert {
        Alert {
            id: "tw-0000000000000000".into(),
            rule: AlertRule {
                id: "sample".into(),
                title: "Sample \"rule\"".into(),
                severity: "high".into(),
                tags: vec!["attack.t1000".into()],
                source: "builtin".into(),
            },
            event: AlertEvent {
                id: Some("sample".into()),
                name: Some("StopLogging".into()),
                source: Some("cloudtrail.amazonaws.com".into()),
                time: Some("2026-01-01T00:00:00Z".into()),
                ..AlertEvent::default()
            },
            object: None,
            count: 1,
            related_event_ids: Vec::new(),
            detected_at: "2026-01-01T00:00:00Z".into(),
            burst: None,
        }
    }
}
