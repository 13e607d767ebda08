//! Draining the outbox into the local sinks (file, stdout). Each sink keeps
//! its own position.

use std::io::Write;

use super::file::FileSink;
use super::route::selects;
use crate::config::{SinkConfig, SinkKind};
use crate::state::{StateError, StateStore};

const BATCH: usize = 1000;

/// What one drain did for one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    pub sink: String,
    pub delivered: u64,
    /// Alerts this sink still has to deliver (its backlog).
    pub pending: u64,
    pub error: Option<String>,
}

/// Why draining failed.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    State(#[from] StateError),
}

/// Delivers every pending alert to each local sink.
pub fn drain_local(state: &StateStore, sinks: &[SinkConfig]) -> Result<Vec<Drained>, DrainError> {
    let last = state.last_seq()?;
    let mut out = Vec::new();
    for sink in sinks {
        let (mut seq, file_len) = state.sink_offset(&sink.name)?;
        let mut report = Drained {
            sink: sink.name.clone(),
            ..Drained::default()
        };
        let mut file = match &sink.kind {
            SinkKind::File { path, fsync } => match FileSink::open(path, *fsync, file_len) {
                Ok(f) => Some(f),
                Err(e) => {
                    report.error = Some(format!("{}: {e}", path.display()));
                    report.pending = (last - seq).max(0) as u64;
                    out.push(report);
                    continue;
                }
            },
            SinkKind::Stdout => None,
            SinkKind::Datadog { .. } | SinkKind::Webhook { .. } => {
                report.pending = (last - seq).max(0) as u64;
                report.error = Some(
                    "delivery for this sink type is not built yet; alerts wait in the outbox"
                        .into(),
                );
                out.push(report);
                continue;
            }
        };
        loop {
            let batch = state.alerts_after(seq, BATCH)?;
            let Some(batch_last) = batch.last().map(|o| o.seq) else {
                break;
            };
            let selected: Vec<_> = batch
                .iter()
                .map(|o| &o.alert)
                .filter(|a| selects(&sink.route, a))
                .collect();
            let written = match file.as_mut() {
                Some(f) => f.write_batch(&selected).map(Some),
                None => write_stdout(&selected).map(|_| None),
            };
            match written {
                Ok(len) => {
                    state.set_sink_offset(&sink.name, batch_last, len)?;
                    seq = batch_last;
                    report.delivered += selected.len() as u64;
                }
                Err(e) => {
                    report.error = Some(e.to_string());
                    break;
                }
            }
        }
        report.pending = (last - seq).max(0) as u64;
        out.push(report);
    }
    Ok(out)
}

fn write_stdout(alerts: &[&crate::alert::Alert]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for alert in alerts {
        super::write_jsonl(&mut out, alert)?;
    }
    out.flush()
}
