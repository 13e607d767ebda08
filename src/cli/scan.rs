//! `trailwatch scan`: an offline hunt over files and directory trees (the
//! engine is `crate::scan`); this file reads the arguments and prints the
//! summary.

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
    /// Files or directories (`.json`, `.json.gz`, `.jsonl`; a local copy of a
    /// bucket made with `aws s3 sync` included).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
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
    };
    let stdout = std::io::BufWriter::new(std::io::stdout());
    let summary = crate::scan::run(&rules, &args.paths, &options, stdout);

    let elapsed = summary.elapsed_seconds;
    let totals = summary.totals;
    let mut err = std::io::stderr().lock();
    for f in &summary.failures {
        let _ = writeln!(err, "failed: {}: {}", f.path, f.reason);
    }
    let _ = writeln!(
        err,
        "scanned {} objects ({} failed), {} records, {} alerts in {:.2}s ({:.0} records/s, {:.1} MB/s decompressed, {} threads, {} rules)",
        totals.objects,
        summary.failures.len(),
        totals.records,
        summary.alerts,
        elapsed,
        totals.records as f64 / elapsed.max(1e-9),
        totals.bytes as f64 / 1e6 / elapsed.max(1e-9),
        threads,
        rules.len(),
    );
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
