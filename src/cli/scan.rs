//! `trailwatch scan`: an offline hunt over files and S3 (the engine is
//! `crate::scan`); this file reads the arguments and prints the summary.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_FAILED, EXIT_FOUND, EXIT_USAGE, Format, RuleSources, load_rules};
use crate::alert::Severity;
use crate::decode::DEFAULT_MAX_DECOMPRESSED_BYTES;
use crate::scan::{Options, Output};

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub sources: RuleSources,
    /// Output format; `table` when stdout is a terminal, `jsonl` otherwise.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Cap on the decompressed bytes of one file (e.g. 2GiB), against gzip bombs.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub max_decompressed_bytes: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Repeats of one rule for one principal no further apart than this are
    /// one burst: its first alert, then a summary (e.g. 1h, 15m).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_window)]
    pub group_window: u64,
    /// Every match is an alert of its own (no grouping of repeats).
    #[arg(long)]
    pub no_grouping: bool,
    /// Exit 3 when an alert at this level or above was raised and every
    /// input was read (informational, low, medium, high, critical).
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub fail_on: Option<Severity>,
    /// Files or directories (`.json`, `.json.gz`, `.jsonl`), or a trail's
    /// bucket and prefix in S3 (`s3://bucket[/prefix]`).
    #[arg(required_unless_present = "trail", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// S3: objects delivered since (a duration back, `7d`, or RFC 3339).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// S3: objects delivered until (default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// S3: only this account (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// S3: only this region (repeatable).
    #[arg(long)]
    pub region: Vec<String>,
    /// S3: a trail of the config's, discovered or static (repeatable).
    #[arg(long, requires = "config")]
    pub trail: Vec<String>,
    /// The config whose [aws] settings and trails S3 scans use.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also keep the alerts and every record's activity in this store file,
    /// for `trailwatch alerts --store FILE` and the console.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
}

fn parse_window(text: &str) -> Result<u64, String> {
    crate::config::parse_duration(text).map(|d| d.as_secs())
}

fn parse_level(text: &str) -> Result<Severity, String> {
    Severity::parse(text).ok_or_else(|| {
        format!(
            "unknown level {text:?} (one of {})",
            Severity::NAMES.join(", ")
        )
    })
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    match crate::config::parse_size(text)? {
        0 => Err("must be greater than zero".into()),
        n => Ok(n),
    }
}

pub fn run(args: ScanArgs) -> ExitCode {
    let rules = match load_rules(&args.sources) {
        Ok(rules) => rules,
        Err(code) => return code,
    };
    if rules.is_empty() {
        eprintln!("error: no rules loaded");
        return ExitCode::from(EXIT_USAGE);
    }
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let options = Options {
        threads,
        max_decompressed_bytes: args
            .max_decompressed_bytes
            .unwrap_or(DEFAULT_MAX_DECOMPRESSED_BYTES),
        output: match format {
            Format::Jsonl => Output::Jsonl,
            Format::Table => Output::Table,
        },
        group_window: (!args.no_grouping).then_some(args.group_window as i64),
        progress: std::io::stderr().is_terminal(),
        store: match args
            .store
            .as_deref()
            .map(crate::scan::store::ScanStore::open)
        {
            None => None,
            Some(Ok(store)) => Some(store),
            Some(Err(e)) => {
                eprintln!("error: --store {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        },
    };
    let config = match args.config.as_deref().map(crate::app::load_config) {
        Some(Ok(config)) => Some(config),
        Some(Err(code)) => return code,
        None => None,
    };
    let wanted = crate::scan::s3::Wanted {
        paths: &args.paths,
        since: &args.since,
        until: args.until.as_deref(),
        accounts: &args.account,
        regions: &args.region,
        trails: &args.trail,
        config: config.as_ref(),
    };
    let source = match crate::scan::s3::source_for(&wanted) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let stdout = std::io::BufWriter::new(std::io::stdout());
    let summary = crate::scan::run(&rules, source, &options, stdout);

    let mut err = std::io::stderr().lock();
    for f in &summary.failures {
        let _ = writeln!(err, "failed: {}: {}", f.path, f.reason);
    }
    let _ = writeln!(err, "{summary}, {threads} threads, {} rules)", rules.len());
    std::mem::forget(rules); // The process ends: its memory goes back whole.
    if !summary.failures.is_empty() {
        return ExitCode::from(EXIT_FAILED);
    }
    match (args.fail_on, summary.highest) {
        (Some(level), Some(highest)) if highest >= level => {
            let _ = writeln!(err, "alerts at {highest} raised (--fail-on {level})");
            ExitCode::from(EXIT_FOUND)
        }
        _ => ExitCode::SUCCESS,
    }
}
