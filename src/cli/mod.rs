//! The command line: one file per command.

mod generate;
mod iam_policy;
mod logging;
mod once;
mod outbox;
mod rules;
mod scan;
mod trails;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Watches AWS CloudTrail: runs Sigma rules over CloudTrail logs and
/// delivers alerts.
#[derive(Debug, Parser)]
#[command(name = "trailwatch", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a config file and the rules it loads.
    Validate {
        #[arg(long)]
        config: PathBuf,
        /// Exit 2 when any rule fails to load.
        #[arg(long)]
        strict: bool,
    },
    /// The daemon: crawl, detect and deliver until stopped.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// One crawl pass: discover, list, fetch, detect, deliver, checkpoint.
    Once {
        #[arg(long)]
        config: PathBuf,
    },
    /// Each discovered trail: status, bucket, region, prefixes, lag, last error.
    Trails {
        #[arg(long)]
        config: PathBuf,
    },
    /// Dead letters per sink: list them, send them again, or drop them.
    Outbox {
        #[arg(value_enum)]
        action: outbox::Action,
        #[arg(long)]
        config: PathBuf,
        /// Only this sink's dead letters.
        #[arg(long)]
        sink: Option<String>,
        /// With `drop` and no ids: every dead letter.
        #[arg(long)]
        all: bool,
        /// Alert ids (tw-...); none: every dead letter.
        #[arg(value_name = "ID")]
        ids: Vec<String>,
    },
    /// The least-privilege IAM policy for this config's trails.
    IamPolicy {
        #[arg(long)]
        config: PathBuf,
    },
    /// Hunt through CloudTrail files or directory trees offline.
    Scan(scan::ScanArgs),
    /// Write a CloudTrail corpus: a background day replayed with fresh ids,
    /// attack examples sprinkled in, gzipped and named as CloudTrail does.
    Gen(generate::GenArgs),
    /// Inspect the loaded rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// The loaded rules: id, level, title, source.
    List(RuleSources),
    /// Run each rule's own examples (`rsigma.exemplars`); exit 1 if any fails.
    Test(RuleSources),
}

/// Which rules to load.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleSources {
    /// A directory of Sigma rules (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Leave out the built-in rule pack.
    #[arg(long)]
    pub no_builtin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Jsonl,
    Table,
}

/// Exit codes (DESIGN.md): 0 success, 1 a run that failed, 2 bad usage or config.
pub(crate) const EXIT_FAILED: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { config, strict } => validate::run(&config, strict),
        Command::Scan(args) => scan::run(args),
        Command::Gen(args) => generate::run(args),
        Command::Once { config } => once::run(&config),
        Command::Run { config } => crate::daemon::run(&config),
        Command::IamPolicy { config } => iam_policy::run(&config),
        Command::Trails { config } => trails::run(&config),
        Command::Outbox {
            action,
            config,
            sink,
            all,
            ids,
        } => outbox::run(action, &config, sink.as_deref(), &ids, all),
        Command::Rules {
            command: RulesCommand::List(sources),
        } => rules::list(&sources),
        Command::Rules {
            command: RulesCommand::Test(sources),
        } => rules::test(&sources),
    }
}

/// Loads and validates a config file; on failure prints
/// `config error: <field path>: <reason>` and gives exit code 2.
pub(crate) fn load_config(path: &std::path::Path) -> Result<crate::config::Config, ExitCode> {
    crate::config::Config::load(path).map_err(|e| {
        eprintln!("config error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// The async runtime (multi-threaded, or on the current thread); exit 1 if
/// it cannot start.
pub(crate) fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
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
pub(crate) fn open_state(
    config: &crate::config::Config,
) -> Result<std::sync::Arc<crate::state::StateStore>, String> {
    for d in &config.rules.deprecations {
        tracing::warn!("{d}");
    }
    let suppression = config.rules.suppression.clone();
    crate::state::StateStore::open(&config.state_path)
        .and_then(|s| s.check_writable().map(|_| s))
        .map(|s| std::sync::Arc::new(s.with_suppression(suppression)))
        .map_err(|e| e.to_string())
}

/// Loads the config's rules with its allowlist; the stateful rules pick up
/// their windows where the last run left them. Rule errors are logged. The
/// error, if any, is that the saved correlation state could not be read.
pub(crate) fn load_rules_for(
    config: &crate::config::Config,
    state: &crate::state::StateStore,
) -> (std::sync::Arc<crate::rules::RuleSet>, Option<String>) {
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
    (std::sync::Arc::new(rules), failure)
}

/// Installs the log subscriber (text or JSON, per the config).
pub fn init_logging(config: &crate::config::LogConfig) {
    logging::init(config);
}

/// Loads rules for a command, printing each rule error on stderr.
pub(crate) fn load_rules(sources: &RuleSources) -> Result<crate::rules::RuleSet, ExitCode> {
    for dir in &sources.rules {
        if !dir.is_dir() {
            eprintln!("error: --rules {}: not a directory", dir.display());
            return Err(ExitCode::from(EXIT_USAGE));
        }
    }
    let (set, errors) = crate::rules::load_rule_set(!sources.no_builtin, &sources.rules);
    for e in &errors {
        eprintln!("rule error: {e}");
    }
    Ok(set)
}
