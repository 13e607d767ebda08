//! When delivery backs off and when it stops trying for now, and what it
//! remembers across rounds in this process (where each sink's sends
//! reached; the sinks whose alerts go to dead letters).

use std::sync::Arc;
use std::time::Duration;

use crate::state::dynamodb::SharedState;

/// When to back off and when to stop trying for now.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Failures in a row after which the circuit opens.
    pub breaker_threshold: u32,
    /// First backoff; doubled per failure, with full jitter.
    pub base: Duration,
    pub cap: Duration,
    /// A wait hint longer than this opens the circuit instead of sleeping.
    pub max_wait: Duration,
    /// Shared state (`[state] backend = "dynamodb"`): each alert is claimed
    /// before it is sent, so that two instances never both deliver it.
    pub shared: Option<std::sync::Arc<SharedState>>,
    /// Per sink, the outbox sequence number its sends reached in this
    /// process: ahead of the stored offset when the store could not take
    /// it (disk full, locked), so that what was delivered is not sent again.
    pub sent: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    /// The sinks whose alerts go to dead letters (a blind spot each, in the
    /// store; read once, then kept here).
    pub blind: Arc<std::sync::Mutex<Option<super::blind::Episodes>>>,
}

impl Policy {
    /// Where `sink`'s sends reached: the stored offset, or further.
    pub(super) fn resume_from(&self, sink: &str, stored: i64) -> i64 {
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.get(sink).map_or(stored, |s| stored.max(*s))
    }

    pub(super) fn note_sent(&self, sink: &str, seq: i64) {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.insert(sink.to_owned(), seq);
    }

    pub(super) fn blind_known(&self) -> Option<super::blind::Episodes> {
        self.blind.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set_blind(&self, episodes: super::blind::Episodes) {
        *self.blind.lock().unwrap_or_else(|p| p.into_inner()) = Some(episodes);
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            breaker_threshold: 6,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(30),
            max_wait: Duration::from_secs(120),
            shared: None,
            sent: Arc::default(),
            blind: Arc::default(),
        }
    }
}
