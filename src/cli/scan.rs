//! `trailwatch scan`: an offline hunt over files and directory trees, one
//! decode-and-detect pipeline per core.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::{EXIT_FAILED, EXIT_USAGE, Format, RuleSources, load_rules};
use crate::alert::{Alert, now_rfc3339, write_jsonl_alerts};
use crate::decode::{DEFAULT_MAX_DECOMPRESSED_BYTES, is_log_object};
use crate::detect::{ObjectReport, detect_object};
use crate::rules::{Grouper, OrderedFeed, RuleSet};
use crate::sinks;

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
    /// Files or directories (`.json`, `.json.gz`, `.jsonl`; a local copy of a
    /// bucket made with `aws s3 sync` included).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

fn parse_window(text: &str) -> Result<u64, String> {
    crate::config::parse_duration(text).map(|d| d.as_secs())
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    match crate::config::parse_size(text)? {
        0 => Err("must be greater than zero".into()),
        n => Ok(n),
    }
}

/// One input that could not be read to the end.
struct Failure {
    path: String,
    reason: String,
}

/// Output a worker writes (or sets aside) before its file ends.
const CHUNK_BYTES: usize = 256 * 1024;

/// Output in input order, whichever worker finishes first: the file at the
/// head streams straight out, by the worker reading it; the others' output
/// waits here until the files before them are done, so memory is bounded by
/// what `threads - 1` files raise. There is no printer thread: the worker
/// that finishes the head writes what follows it, without waking anyone.
struct Printer<W> {
    out: W,
    open: bool,
    /// The position of the first file not yet written out to its end.
    head: usize,
    waiting: BTreeMap<usize, Waiting>,
    totals: Totals,
    failures: Vec<Failure>,
    /// Buffers written out, for the workers to fill again.
    spare: Vec<Vec<u8>>,
}

/// Output of a file after the head, and its report once it has ended.
#[derive(Default)]
struct Waiting {
    chunks: Vec<Vec<u8>>,
    report: Option<FileReport>,
}

/// How reading one file went.
struct FileReport {
    path: PathBuf,
    report: ObjectReport,
}

/// Spare buffers kept for the workers.
const SPARE_MAX: usize = 8;

impl<W: Write> Printer<W> {
    fn new(out: W, open: bool) -> Self {
        Printer {
            out,
            open,
            head: 0,
            waiting: BTreeMap::new(),
            totals: Totals::default(),
            failures: Vec::new(),
            spare: Vec::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.open && !bytes.is_empty() {
            self.open = self.out.write_all(bytes).is_ok();
        }
    }

    /// Takes `output` of file `index` (and its report when the file has
    /// ended); `output` comes back empty, ready to be filled again.
    fn take(&mut self, index: usize, output: &mut Vec<u8>, report: Option<FileReport>) {
        if index != self.head {
            let waiting = self.waiting.entry(index).or_default();
            let next = self.spare.pop().unwrap_or_default();
            waiting.chunks.push(std::mem::replace(output, next));
            waiting.report = report;
            return;
        }
        self.write(output);
        output.clear();
        let mut finished = report;
        while let Some(FileReport { path, report }) = finished.take() {
            self.totals.add(&report);
            if let Some(e) = &report.error {
                self.failures.push(Failure {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
            self.head += 1;
            if let Some(waiting) = self.waiting.remove(&self.head) {
                for mut chunk in waiting.chunks {
                    self.write(&chunk);
                    if self.spare.len() < SPARE_MAX {
                        chunk.clear();
                        self.spare.push(chunk);
                    }
                }
                // Without its report, the rest of it will come straight out.
                finished = waiting.report;
            }
        }
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
    let cap = args
        .max_decompressed_bytes
        .unwrap_or(DEFAULT_MAX_DECOMPRESSED_BYTES);

    let started = Instant::now();
    let inputs = std::sync::Mutex::new(Inputs::new(&args.paths));
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // Each file is read once: events need remembering (against duplicates
    // delivered twice) only as long as the longest correlation window.
    rules.with_correlator(|c| {
        c.set_dedupe_horizon(3600);
        c.hold_summaries_to_end();
        c.without_dedupe();
    });

    let mut stdout = std::io::BufWriter::new(std::io::stdout());
    let mut output_open = true;
    if format == Format::Table {
        output_open = sinks::table::write_header(&mut stdout).is_ok();
    }
    let printer = std::sync::Mutex::new(Printer::new(stdout, output_open));
    let grouper = (!args.no_grouping).then(|| Grouper::new(args.group_window as i64));
    let feed = std::sync::Mutex::new(OrderedFeed::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (inputs, rules, printer) = (&inputs, &rules, &printer);
            let (grouper, feed) = (grouper.as_ref(), &feed);
            scope.spawn(move || worker(inputs, rules, cap, format, printer, grouper, feed));
        }
    });
    let Printer {
        out: mut stdout,
        totals,
        failures: mut printed_failures,
        ..
    } = printer.into_inner().unwrap_or_else(|p| p.into_inner());
    // The end of the input closes every burst: the grouped repeats' and the
    // correlations' summaries follow.
    let grouped_matches = grouper.as_ref().map_or(0, Grouper::matches);
    let mut closed = grouper.map(Grouper::finish).unwrap_or_default();
    let grouped_alerts = closed.len() as u64;
    if let Some(summaries) = rules.with_correlator(|c| {
        c.close_all();
        c.take_pending()
    }) {
        closed.extend(summaries);
    }
    {
        for d in closed {
            let _ = match format {
                Format::Jsonl => sinks::write_jsonl(&mut stdout, &d.alert),
                Format::Table => sinks::table::write_alert(&mut stdout, &d.alert),
            };
        }
    }
    let _ = stdout.flush();
    drop(stdout);
    let mut failures = Vec::new();
    failures.append(&mut printed_failures);
    failures.append(
        &mut inputs
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .failures,
    );

    let elapsed = started.elapsed().as_secs_f64();
    let mut err = std::io::stderr().lock();
    for f in &failures {
        let _ = writeln!(err, "failed: {}: {}", f.path, f.reason);
    }
    let _ = writeln!(
        err,
        "scanned {} objects ({} failed), {} records, {} alerts in {:.2}s ({:.0} records/s, {:.1} MB/s decompressed, {} threads, {} rules)",
        totals.objects,
        failures.len(),
        totals.records,
        totals.alerts - grouped_matches + grouped_alerts,
        elapsed,
        totals.records as f64 / elapsed.max(1e-9),
        totals.bytes as f64 / 1e6 / elapsed.max(1e-9),
        threads,
        rules.len(),
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

fn worker<W: Write>(
    inputs: &std::sync::Mutex<Inputs>,
    rules: &RuleSet,
    cap: u64,
    format: Format,
    printer: &std::sync::Mutex<Printer<W>>,
    grouper: Option<&Grouper>,
    feed: &std::sync::Mutex<OrderedFeed>,
) {
    let detected_at = now_rfc3339();
    let print = |index: usize, output: &mut Vec<u8>, report: Option<FileReport>| {
        printer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(index, output, report);
    };
    let mut output = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
    let mut held = Vec::new();
    loop {
        let next = inputs.lock().unwrap_or_else(|p| p.into_inner()).next();
        let Some((index, path)) = next else { return };
        let report = match std::fs::File::open(&path) {
            Ok(file) => detect_object(
                file,
                rules,
                cap,
                |all, record| {
                    // Grouped rules' matches wait for the end of the input.
                    let mut direct: Vec<&crate::rules::Rule> = Vec::new();
                    let matched: &[&crate::rules::Rule] = match grouper {
                        Some(g) => {
                            for &rule in all {
                                if Grouper::applies(rule) {
                                    g.add(rule, record, &detected_at);
                                } else {
                                    direct.push(rule);
                                }
                            }
                            &direct
                        }
                        None => all,
                    };
                    match format {
                        Format::Jsonl => {
                            let _ = write_jsonl_alerts(
                                &mut output,
                                matched,
                                record,
                                None,
                                &detected_at,
                            );
                        }
                        Format::Table => {
                            for rule in matched {
                                let alert = Alert::for_match(rule, record, None, &detected_at);
                                let _ = sinks::table::write_alert(&mut output, &alert);
                            }
                        }
                    }
                    if output.len() >= CHUNK_BYTES {
                        print(index, &mut output, None);
                    }
                },
                |matched, record| held.extend(rules.hold_for_correlation(record, matched)),
            ),
            Err(e) => ObjectReport {
                error: Some(crate::decode::DecodeError::Io {
                    offset: 0,
                    source: e,
                }),
                ..ObjectReport::default()
            },
        };
        // The stateful rules see the files in input order, whatever the
        // threads: their alerts do not depend on timing.
        feed.lock().unwrap_or_else(|p| p.into_inner()).finish(
            index,
            std::mem::take(&mut held),
            rules,
            &detected_at,
        );
        // Alerts of stateful rules completed by the files fed so far.
        if let Some(completed) = rules.with_correlator(|c| c.take_pending()) {
            for d in completed {
                let _ = match format {
                    Format::Jsonl => sinks::write_jsonl(&mut output, &d.alert),
                    Format::Table => sinks::table::write_alert(&mut output, &d.alert),
                };
            }
        }
        print(index, &mut output, Some(FileReport { path, report }));
    }
}

#[derive(Default)]
struct Totals {
    objects: u64,
    records: u64,
    alerts: u64,
    bytes: u64,
}

impl Totals {
    fn add(&mut self, report: &ObjectReport) {
        self.objects += 1;
        self.records += report.records;
        self.alerts += report.alerts;
        self.bytes += report.decompressed_bytes;
    }
}

/// The files to scan, found as workers ask for them: files named on the
/// command line, and the CloudTrail-looking files under directories named
/// there (Digest and Insight files left out), each directory's entries in
/// sorted order so that the output order is stable. Only the listings on the
/// current path are held, not the whole tree, however many files it has.
struct Inputs {
    roots: std::collections::VecDeque<PathBuf>,
    /// Directory listings being walked: each entry, and whether the listing
    /// said it is a directory (`None`: a link, or not said; asked of the path).
    stack: Vec<std::vec::IntoIter<(PathBuf, Option<bool>)>>,
    next_index: usize,
    failures: Vec<Failure>,
}

impl Inputs {
    fn new(paths: &[PathBuf]) -> Self {
        Inputs {
            roots: paths.iter().cloned().collect(),
            stack: Vec::new(),
            next_index: 0,
            failures: Vec::new(),
        }
    }

    /// The next file, with its position in the output order.
    fn next(&mut self) -> Option<(usize, PathBuf)> {
        loop {
            if let Some(listing) = self.stack.last_mut() {
                match listing.next() {
                    Some((path, is_dir)) if is_dir.unwrap_or_else(|| path.is_dir()) => {
                        self.push_dir(&path)
                    }
                    Some((path, _)) if is_cloudtrail_file(&path) => {
                        return Some(self.numbered(path));
                    }
                    Some(_) => {}
                    None => {
                        self.stack.pop();
                    }
                }
                continue;
            }
            let root = self.roots.pop_front()?;
            if root.is_file() {
                return Some(self.numbered(root));
            } else if root.is_dir() {
                self.push_dir(&root);
            } else {
                self.failures.push(Failure {
                    path: root.display().to_string(),
                    reason: "no such file or directory".into(),
                });
            }
        }
    }

    fn numbered(&mut self, path: PathBuf) -> (usize, PathBuf) {
        self.next_index += 1;
        (self.next_index - 1, path)
    }

    fn push_dir(&mut self, dir: &Path) {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                // The listing's own file types spare a `stat` of each entry.
                let mut listing: Vec<(PathBuf, Option<bool>)> = entries
                    .flatten()
                    .map(|e| {
                        let is_dir = e.file_type().ok().filter(|t| !t.is_symlink());
                        (e.path(), is_dir.map(|t| t.is_dir()))
                    })
                    .collect();
                listing.sort();
                self.stack.push(listing.into_iter());
            }
            Err(e) => self.failures.push(Failure {
                path: dir.display().to_string(),
                reason: format!("cannot read directory: {e}"),
            }),
        }
    }
}

fn is_cloudtrail_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let data = [".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".gz"]
        .iter()
        .any(|ext| name.ends_with(ext));
    data && is_log_object(&path.to_string_lossy())
}
