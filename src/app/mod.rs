//! Start-up that the command line and the daemon share: reading the config
//! (with each sink's own checks), logging, the async runtime, the state
//! store and the rules with their saved state. Above every stage, below
//! `cli` and `daemon`.

mod logging;
mod shared;

pub use shared::{shared_state, state_init};

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::state::StateStore;

/// `0.1.0 (commit 1a2b3c4d5e6f, rule pack 2026.12.06)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TRAILWATCH_COMMIT"),
    ", rule pack ",
    env!("TRAILWATCH_RULES_VERSION"),
    ")"
);

/// Exit codes (DESIGN.md): 0 success, 1 a run that failed, 2 bad usage or
/// config, 3 `scan --fail-on`'s level reached.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_FOUND: u8 = 3;

/// Reads and validates a config file: its shape and values, then what each
/// sink checks of its own settings.
pub fn read_config(path: &Path) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    crate::sinks::check(&config)?;
    Ok(config)
}

/// Loads and validates a config file; on failure prints
/// `config error: <field path>: <reason>` and gives exit code 2.
pub fn load_config(path: &std::path::Path) -> Result<crate::config::Config, ExitCode> {
    read_config(path).map_err(|e| {
        eprintln!("config error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// The async runtime (multi-threaded, or on the current thread); exit 1 if
/// it cannot start.
pub fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(EXIT_FAILED)
    })
}

/// Opens the state store (with the config's suppression window) and checks
/// that it can be written.
pub fn open_state(
    config: &crate::config::Config,
) -> Result<std::sync::Arc<crate::state::StateStore>, String> {
    for d in &config.rules.deprecations {
        tracing::warn!("{d}");
    }
    let suppression = config.rules.suppression.clone();
    crate::state::StateStore::open(&config.state_path)
        .and_then(|s| s.check_writable().map(|_| s))
        .map(|s| {
            std::sync::Arc::new(
                s.with_suppression(suppression)
                    .with_account_names(config.accounts.clone()),
            )
        })
        .map_err(|e| e.to_string())
}

/// Loads the config's rules with its allowlist; the stateful rules pick up
/// their windows where the last run left them. Rule errors are logged. The
/// error, if any, is that the saved correlation state could not be read.
pub fn load_rules_for(
    config: &crate::config::Config,
    state: &crate::state::StateStore,
) -> (std::sync::Arc<crate::rules::RuleSet>, Option<String>) {
    let (rules, failure, _) = load_rules_reporting(config, state);
    (rules, failure)
}

/// As `load_rules_for`, and the rules that failed to load.
pub fn load_rules_reporting(
    config: &crate::config::Config,
    state: &crate::state::StateStore,
) -> (
    std::sync::Arc<crate::rules::RuleSet>,
    Option<String>,
    Vec<crate::rules::RuleError>,
) {
    let (rules, errors) = crate::rules::load_rule_set(config.rules.builtin, &config.rules.paths);
    for e in &errors {
        tracing::warn!(file = %e.file, line = e.line, reason = %e.reason, "rule not loaded");
    }
    let rules = rules.with_allowlist(config.rules.allow.clone());
    let mut failure = None;
    match state.correlation_state() {
        Ok(Some(saved)) => {
            if rules.with_correlator(|c| c.import(saved)) == Some(false) {
                tracing::warn!(
                    "the saved correlation state does not fit the rules; starting afresh"
                );
            }
        }
        Ok(None) => {}
        Err(e) => failure = Some(e.to_string()),
    }
    tracing::info!(
        rules = rules.len(),
        correlations = rules.correlations().len(),
        "rules loaded"
    );
    (std::sync::Arc::new(rules), failure, errors)
}

/// Installs the log subscriber (text or JSON, per the config).
pub fn init_logging(config: &crate::config::LogConfig) {
    logging::init(config);
}

/// Loads rule directories (and the built-in pack), printing each rule
/// error on stderr; a path that is not a directory is a usage error.
pub fn load_rules(builtin: bool, dirs: &[PathBuf]) -> Result<crate::rules::RuleSet, ExitCode> {
    for dir in dirs {
        if !dir.is_dir() {
            eprintln!("error: --rules {}: not a directory", dir.display());
            return Err(ExitCode::from(EXIT_USAGE));
        }
    }
    let (set, errors) = crate::rules::load_rule_set(builtin, dirs);
    for e in &errors {
        eprintln!("rule error: {e}");
    }
    Ok(set)
}

/// What a command that crawls needs: its config (logging installed), the
/// state store and the async runtime.
pub struct Started {
    pub config: Arc<Config>,
    pub state: Arc<StateStore>,
    pub runtime: tokio::runtime::Runtime,
}

/// Reads the config, installs logging, opens the state store (checked
/// writable, or only opened for reading with `writable: false`) and starts
/// the runtime; each failure is printed, with its exit code.
pub fn start(path: &Path, writable: bool) -> Result<Started, ExitCode> {
    let config = load_config(path)?;
    init_logging(&config.log);
    let state = if writable {
        open_state(&config)
    } else {
        StateStore::open(&config.state_path)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    };
    let state = state.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_FAILED)
    })?;
    let runtime = runtime(true)?;
    Ok(Started {
        config: Arc::new(config),
        state,
        runtime,
    })
}

/// The state store a lookup names: a store file of its own (`--store`),
/// else the config's (`--config`); on failure prints why and gives the
/// exit code.
pub fn lookup_store(
    config: Option<&Path>,
    store: Option<&Path>,
) -> Result<Arc<StateStore>, ExitCode> {
    match (store, config) {
        (Some(file), _) => StateStore::open(file).map(Arc::new).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }),
        (None, Some(config)) => start(config, false).map(|started| started.state),
        (None, None) => {
            eprintln!("error: --config or --store is needed");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_config_runs_the_sinks_own_checks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("trailwatch.toml");
        std::fs::write(
            &path,
            "[[sinks]]\ntype = \"webhook\"\nurl = \"https://h.example/x\"\nbody_template = '{\"a\": $ALERT_ID'\n",
        )
        .expect("write");
        let e = read_config(&path).expect_err("a template that gives no JSON");
        assert_eq!(e.path, "sinks[0].body_template");
        let e = read_config(&dir.path().join("absent.toml")).expect_err("no file");
        assert!(e.path.ends_with("absent.toml"), "{e}");
    }

    #[test]
    fn rules_from_a_path_that_is_not_a_directory_are_a_usage_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("rule.yml");
        std::fs::write(&file, "title: x\n").expect("write");
        assert!(load_rules(false, &[file]).is_err());
        let set = load_rules(true, &[]).expect("the built-in pack");
        assert!(set.len() > 100);
    }
}
