//! `trailwatch outbox list|retry|drop --config F [--sink NAME] [ID]...`:
//! the dead letters of each sink; replay or discard them.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::sinks::deliver::{Policy, retry_sinks};
use crate::state::StateStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// The dead letters, per sink.
    List,
    /// Send them again; those accepted leave the list.
    Retry,
    /// Discard them.
    Drop,
}

pub fn run(action: Action, path: &Path, sink: Option<&str>, ids: &[String], all: bool) -> ExitCode {
    let config = match crate::app::load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(name) = sink
        && !config.sinks.iter().any(|s| s.name == name)
    {
        let names: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
        eprintln!("error: no sink named {name} (sinks: {})", names.join(", "));
        return ExitCode::from(EXIT_USAGE);
    }
    let state = match StateStore::open(&config.state_path) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let letters = match state.dead_letters(sink) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let chosen: Vec<_> = letters
        .iter()
        .filter(|d| ids.is_empty() || ids.contains(&d.alert_id))
        .collect();
    for id in ids {
        if !letters.iter().any(|d| &d.alert_id == id) {
            eprintln!(
                "warning: {id} is not a dead letter{}",
                sink.map(|s| format!(" of {s}")).unwrap_or_default()
            );
        }
    }
    match action {
        Action::List => {
            println!(
                "{:<16} {:<22} {:>6}  {:<20}  RESPONSE",
                "SINK", "ALERT", "STATUS", "FAILED AT"
            );
            for d in &chosen {
                let when = time::OffsetDateTime::from_unix_timestamp(d.failed_at)
                    .map(crate::aws::keys::key_time)
                    .unwrap_or_default();
                let body: String = d
                    .body
                    .chars()
                    .take(100)
                    .collect::<String>()
                    .replace('\n', " ");
                println!(
                    "{:<16} {:<22} {:>6}  {:<20}  {}",
                    d.sink,
                    d.alert_id,
                    d.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    when,
                    body
                );
            }
            eprintln!("{} dead letters", chosen.len());
            ExitCode::SUCCESS
        }
        Action::Drop => {
            if ids.is_empty() && !all {
                eprintln!("error: name the alert ids to drop, or pass --all");
                return ExitCode::from(EXIT_USAGE);
            }
            let mut dropped = 0;
            for d in &chosen {
                match state.remove_dead_letter(&d.sink, d.seq) {
                    Ok(true) => dropped += 1,
                    Ok(false) => {}
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(EXIT_FAILED);
                    }
                }
            }
            eprintln!("{dropped} dead letters dropped");
            ExitCode::SUCCESS
        }
        Action::Retry => {
            let runtime = match crate::app::runtime(false) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let with_letters: std::collections::BTreeSet<&str> =
                chosen.iter().map(|d| d.sink.as_str()).collect();
            let retried = runtime.block_on(retry_sinks(
                &config.sinks,
                |name| sink.is_none_or(|n| n == name) && with_letters.contains(name),
                &state,
                ids,
                &Policy::default(),
            ));
            let mut failed = false;
            match retried {
                Ok(per_sink) => {
                    for (name, outcome) in per_sink {
                        match outcome {
                            Ok((delivered, still)) => {
                                eprintln!("sink {name}: {delivered} delivered, {still} still dead");
                                failed |= still > 0;
                            }
                            Err(e) => {
                                eprintln!("error: sink {name}: {e}");
                                failed = true;
                            }
                        }
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_FAILED);
                }
            }
            if failed {
                ExitCode::from(EXIT_FAILED)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
