//! `trailwatch console --config F`: the read-only web console alone, over
//! the config's state store (`[console]`, else on loopback); and
//! `--hash-password`: an argon2 hash of the password on stdin, for the
//! credential file.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::console::{RuleRow, auth, serve_alone, settings_or_default};

pub fn dispatch(config: Option<PathBuf>, store: Option<PathBuf>, hash: bool) -> ExitCode {
    match (hash, config, store) {
        (true, _, _) => hash_password(),
        (_, Some(config), _) => run(&config),
        (_, _, Some(file)) => run_store(&file),
        _ => ExitCode::from(EXIT_USAGE),
    }
}

pub fn hash_password() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim().is_empty() {
        eprintln!("error: give the password on stdin (one line)");
        return ExitCode::from(EXIT_USAGE);
    }
    match auth::hash_password(line.trim_end_matches(['\n', '\r'])) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

pub fn run(path: &Path) -> ExitCode {
    let started = match crate::app::start(path, false) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let config = &started.config;
    let rules = match crate::app::load_rules(config.rules.builtin, &config.rules.paths) {
        Ok(set) => RuleRow::of(&set),
        Err(code) => return code,
    };
    let settings = settings_or_default(config.console.as_ref());
    served(
        started
            .runtime
            .block_on(serve_alone(&settings, started.state.clone(), rules)),
    )
}

fn served(result: Result<(), String>) -> ExitCode {
    result.map_or_else(
        |e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        },
        |()| ExitCode::SUCCESS,
    )
}

/// The console over a store file of its own, with the built-in rules.
pub fn run_store(file: &Path) -> ExitCode {
    let state = match crate::app::lookup_store(None, Some(file)) {
        Ok(state) => state,
        Err(code) => return code,
    };
    let (rules, runtime) = match (crate::app::load_rules(true, &[]), crate::app::runtime(true)) {
        (Ok(set), Ok(rt)) => (RuleRow::of(&set), rt),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    served(runtime.block_on(serve_alone(&settings_or_default(None), state, rules)))
}
