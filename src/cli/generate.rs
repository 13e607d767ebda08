//! `trailwatch gen`: writes a CloudTrail corpus for benchmarks and hunts
//! (see `crate::corpus`).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::corpus::{Options, generate, parse_date};

#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// Background records, one JSON record a line, time-ordered or not: one
    /// day of an organisation's activity, as `scripts/benign_day.py` writes.
    #[arg(long, value_name = "FILE")]
    pub background: PathBuf,
    /// Output directory (`AWSLogs/...` and `corpus.manifest` go in it).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Decompressed size to reach, e.g. 1GB, 10GiB.
    #[arg(long, value_name = "SIZE", default_value = "1GB")]
    pub size: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Day of the first record (YYYY-MM-DD).
    #[arg(long, default_value = "2026-11-01")]
    pub date: String,
    /// One attack record after every N background records (0: none).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub attack_every: u64,
    /// Time one object covers, in seconds (CloudTrail delivers about every 5 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub interval: i64,
    /// Write every record into one object (the memory benchmark's 1 GB object).
    #[arg(long)]
    pub single_object: bool,
    /// Also write every record, one per line, to this file.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// sparse (attacks every --attack-every records), dense (a third of the
    /// records attack-like) or burst (--burst-events by one principal within
    /// --burst-seconds, in the background).
    #[arg(long, default_value = "sparse")]
    pub profile: String,
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub burst_events: u64,
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub burst_seconds: i64,
    /// Writer threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

pub fn run(args: GenArgs) -> ExitCode {
    let options = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (rules, errors) = crate::rules::load_rule_set(true, &[]);
    if let Some(e) = errors.first() {
        eprintln!("error: built-in rule did not load: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    let started = std::time::Instant::now();
    match generate(&options, &rules) {
        Ok(m) => {
            eprintln!(
                "wrote {} objects, {} records ({} attack records, {} expected alerts at {} or above), {} bytes decompressed, {} gzipped, in {:.1}s",
                m.objects,
                m.records,
                m.attack_records,
                m.expected_alerts,
                m.expected_level,
                m.decompressed_bytes,
                m.compressed_bytes,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn options(args: &GenArgs) -> Result<Options, String> {
    let target_bytes = crate::config::parse_size(&args.size).map_err(|e| format!("--size: {e}"))?;
    if args.interval < 1 {
        return Err("--interval: must be at least 1 second".into());
    }
    Ok(Options {
        background: args.background.clone(),
        out: args.out.clone(),
        target_bytes,
        seed: args.seed,
        start_day: parse_date(&args.date).map_err(|e| format!("--date: {e}"))?,
        attack_every: args.attack_every,
        interval_seconds: args.interval,
        single_object: args.single_object,
        jsonl: args.jsonl.clone(),
        profile: crate::corpus::Profile::parse(
            &args.profile,
            args.burst_events,
            args.burst_seconds,
        )
        .map_err(|e| format!("--profile: {e}"))?,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    })
}
