//! One constructor for the alerts trailwatch raises of its own (trail
//! status, blind spots): no Sigma rule, no eventID; the caller gives the id
//! (the trail-status formula), the words and what the alert is about.

use super::{Alert, AlertContext, AlertEvent, AlertRule, Detected, now_rfc3339};

/// A built-in alert, before it is one.
#[derive(Debug, Clone, Default)]
pub struct Builtin {
    pub rule: String,
    pub id: String,
    pub title: String,
    pub severity: String,
    pub tags: Vec<String>,
    pub event: AlertEvent,
    pub description: String,
    pub falsepositives: Vec<String>,
    /// What the alert rests on (an error, a reason), shown as its record.
    pub record: Option<String>,
    /// What it is about (`s3://bucket/prefix`, a rule file).
    pub resource: Option<String>,
    /// Never grouped by the burst rules.
    pub ungrouped: bool,
    /// Sinks it never goes to (the one it is about).
    pub skip_sinks: Vec<String>,
}

impl Builtin {
    pub fn detected(self) -> Detected {
        Detected {
            alert: Alert {
                id: self.id,
                rule: AlertRule {
                    id: self.rule,
                    title: self.title,
                    severity: self.severity,
                    tags: self.tags,
                    source: "builtin".into(),
                },
                event: self.event,
                object: None,
                count: 1,
                related_event_ids: Vec::new(),
                detected_at: now_rfc3339(),
                burst: None,
            },
            context: AlertContext {
                description: Some(self.description),
                falsepositives: self.falsepositives,
                record: self.record,
                resource: self.resource,
                ungrouped: self.ungrouped,
                skip_sinks: self.skip_sinks,
            },
        }
    }
}
