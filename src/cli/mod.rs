//! The command line: one file per command. Each parses its arguments, asks
//! the library (`app` for start-up, the stages for the work) and prints.

mod console;
mod generate;
mod iam_policy;
mod lookup;
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
#[command(name = "trailwatch", version = crate::app::VERSION, about)]
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
    /// The store's alerts: filter by time, rule, level, principal, target,
    /// IP, account, region, event, source, user agent.
    Alerts(crate::lookup::AlertArgs),
    /// The activity index: every record read, filtered as alerts are.
    Activity(crate::lookup::LookupArgs),
    /// The read-only web console alone, over the config's state store.
    Console {
        #[arg(long, required_unless_present_any = ["hash_password", "store"])]
        config: Option<PathBuf>,
        /// A store file of its own (`trailwatch scan --store FILE`), on loopback.
        #[arg(long, value_name = "FILE", conflicts_with = "config")]
        store: Option<PathBuf>,
        /// Print an argon2 hash of the password on stdin (for the
        /// credential file's `user <name> <hash>` lines).
        #[arg(long)]
        hash_password: bool,
    },
    /// `state init`: create the shared state's DynamoDB tables.
    State {
        #[arg(value_parser = ["init"])]
        action: String,
        #[arg(long)]
        config: PathBuf,
    },
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
    Test {
        #[command(flatten)]
        sources: RuleSources,
        /// Also write the results as JUnit XML to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
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

pub(crate) use crate::app::{EXIT_FAILED, EXIT_FOUND, EXIT_USAGE};

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { config, strict } => validate::run(&config, strict),
        Command::Scan(args) => scan::run(args),
        Command::Gen(args) => generate::run(args),
        Command::Once { config } => once::run(&config),
        Command::Run { config } => crate::daemon::run(&config),
        Command::IamPolicy { config } => iam_policy::run(&config),
        Command::Trails { config } => trails::run(&config),
        Command::State { config, .. } => crate::app::state_init(&config),
        Command::Console {
            config,
            store,
            hash_password,
        } => console::dispatch(config, store, hash_password),
        Command::Alerts(args) => lookup::alerts(&args),
        Command::Activity(args) => lookup::activity(&args),
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
            command: RulesCommand::Test { sources, junit },
        } => rules::test(&sources, junit.as_deref()),
    }
}

/// Loads the rules a command names (`--rules`, `--no-builtin`).
pub(crate) fn load_rules(sources: &RuleSources) -> Result<crate::rules::RuleSet, ExitCode> {
    crate::app::load_rules(!sources.no_builtin, &sources.rules)
}
