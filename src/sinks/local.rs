//! Draining the outbox into the local sinks (file, stdout). Each sink keeps
//! its own position.

use std::io::Write;

use super::file::{Committed, FileSink};
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
        if let SinkKind::Datadog { .. } | SinkKind::Webhook { .. } = &sink.kind {
            report.pending = (last - seq).max(0) as u64;
            report.error = Some(
                "delivery for this sink type is not built yet; alerts wait in the outbox".into(),
            );
            out.push(report);
            continue;
        }
        let committed = match file_len {
            Some(len) => Some(Committed {
                len,
                file_id: state.sink_file_id(&sink.name)?,
            }),
            None => None,
        };
        let mut file = None;
        loop {
            let batch = state.alerts_after(seq, BATCH)?;
            let Some(batch_last) = batch.last().map(|o| o.seq) else {
                break;
            };
            // The file sink writes in the file its path names now (opened
            // again after a rotation), its new position committed first.
            if let SinkKind::File { path, fsync } = &sink.kind
                && file.as_ref().is_none_or(|f: &FileSink| !f.still_current())
            {
                let known = file.as_ref().map(FileSink::position).or(committed.clone());
                match open_file(state, &sink.name, seq, path, *fsync, known.as_ref()) {
                    Ok(f) => file = Some(f),
                    Err(e) => {
                        report.error = Some(e);
                        break;
                    }
                }
            }
            let selected: Vec<_> = batch
                .iter()
                .filter(|o| {
                    selects(&sink.route, &o.alert) && !o.context.skip_sinks.contains(&sink.name)
                })
                .collect();
            let mut lines = Vec::with_capacity(selected.len() * 512);
            let written = selected
                .iter()
                .try_for_each(|o| super::write_line(&mut lines, sink.format, &o.alert, &o.context))
                .and_then(|()| match file.as_mut() {
                    Some(f) => f.write_lines(&lines).map(Some),
                    None => write_stdout(&lines).map(|_| None),
                });
            match written {
                Ok(Some(at)) => {
                    crate::kill_point!("sinks.file.after_write");
                    let id = at.file_id.unwrap_or_default();
                    state.set_sink_file_position(&sink.name, batch_last, at.len, &id)?;
                }
                Ok(None) => state.set_sink_offset(&sink.name, batch_last, None)?,
                Err(e) => {
                    report.error = Some(e.to_string());
                    break;
                }
            }
            seq = batch_last;
            report.delivered += selected.len() as u64;
        }
        report.pending = (last - seq).max(0) as u64;
        out.push(report);
    }
    Ok(out)
}

/// Opens the file sink's file; when it was rotated, commits where it starts
/// in the new file before anything is written there.
fn open_file(
    state: &StateStore,
    sink: &str,
    seq: i64,
    path: &std::path::Path,
    fsync: crate::config::Fsync,
    known: Option<&Committed>,
) -> Result<FileSink, String> {
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let opened = FileSink::open(path, fsync, known).map_err(failed)?;
    if opened.rotated {
        let at = opened.sink.position();
        let id = at.file_id.unwrap_or_default();
        state
            .set_sink_file_position(sink, seq, at.len, &id)
            .map_err(|e| e.to_string())?;
    }
    Ok(opened.sink)
}

fn write_stdout(lines: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(lines)?;
    out.flush()
}
