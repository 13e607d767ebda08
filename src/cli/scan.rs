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
use crate::rules::RuleSet;
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
    /// Files or directories (`.json`, `.json.gz`, `.jsonl`; a local copy of a
    /// bucket made with `aws s3 sync` included).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
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

/// What a worker sends back for one file: its alerts, already formatted,
/// in pieces, the last with the report.
struct Done {
    index: usize,
    output: Vec<u8>,
    report: Option<FileReport>,
}

/// How reading one file went.
struct FileReport {
    path: PathBuf,
    report: ObjectReport,
}

/// Output a worker sends on before the file ends.
const CHUNK_BYTES: usize = 256 * 1024;

/// Output buffers the printer hands back once it has written them, so that
/// workers reuse them instead of growing a new one for every file.
struct Spare {
    rx: crossbeam_channel::Receiver<Vec<u8>>,
}

impl Spare {
    fn next(&self) -> Vec<u8> {
        self.rx
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4))
    }
}

/// Hands `buf` back to the workers, unless enough are spare already.
fn recycle(spare: &crossbeam_channel::Sender<Vec<u8>>, mut buf: Vec<u8>) {
    buf.clear();
    let _ = spare.try_send(buf);
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
    let mut failures = Vec::new();
    let inputs = std::sync::Mutex::new(Inputs::new(&args.paths));
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // Each file is read once: events need remembering (against duplicates
    // delivered twice) only as long as the longest correlation window.
    rules.with_correlator(|c| c.set_dedupe_horizon(3600));

    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut totals = Totals::default();
    let mut output_open = true;
    if format == Format::Table {
        output_open = sinks::table::write_header(&mut stdout).is_ok();
    }

    std::thread::scope(|scope| {
        // Room for the workers to run ahead while the printer is in a slow
        // write (a file's dirty pages being flushed).
        let (tx, rx) = crossbeam_channel::bounded::<Done>(threads * 8);
        let (spare_tx, spare_rx) = crossbeam_channel::bounded::<Vec<u8>>(threads * 4);
        for _ in 0..threads {
            let tx = tx.clone();
            let spare = Spare {
                rx: spare_rx.clone(),
            };
            let (inputs, rules) = (&inputs, &rules);
            scope.spawn(move || worker(inputs, rules, cap, format, tx, spare));
        }
        drop(tx);
        // Print in input order, whatever order the workers finish in. The
        // file at the head streams straight through; the others' output
        // waits, so memory is bounded by what `threads - 1` files raise.
        let mut waiting: BTreeMap<usize, (Vec<Vec<u8>>, Option<FileReport>)> = BTreeMap::new();
        let mut head = 0;
        for done in rx {
            if done.index != head {
                let entry = waiting.entry(done.index).or_default();
                entry.0.push(done.output);
                entry.1 = done.report.or(entry.1.take());
                continue;
            }
            if output_open {
                output_open = stdout.write_all(&done.output).is_ok();
            }
            recycle(&spare_tx, done.output);
            let mut finished = done.report;
            while let Some(FileReport { path, report }) = finished.take() {
                totals.add(&report);
                if let Some(e) = &report.error {
                    failures.push(Failure {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
                head += 1;
                if let Some((chunks, report)) = waiting.remove(&head) {
                    for chunk in chunks {
                        if output_open {
                            output_open = stdout.write_all(&chunk).is_ok();
                        }
                        recycle(&spare_tx, chunk);
                    }
                    // Without its report, the rest of it will come straight here.
                    finished = report;
                }
            }
        }
    });
    let _ = stdout.flush();
    drop(stdout);
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
        totals.alerts,
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

fn worker(
    inputs: &std::sync::Mutex<Inputs>,
    rules: &RuleSet,
    cap: u64,
    format: Format,
    tx: crossbeam_channel::Sender<Done>,
    spare: Spare,
) {
    let detected_at = now_rfc3339();
    loop {
        let next = inputs.lock().unwrap_or_else(|p| p.into_inner()).next();
        let Some((index, path)) = next else { return };
        let mut output = spare.next();
        let report = match std::fs::File::open(&path) {
            Ok(file) => detect_object(file, rules, None, cap, &detected_at, |matched, record| {
                match format {
                    Format::Jsonl => {
                        let _ =
                            write_jsonl_alerts(&mut output, matched, record, None, &detected_at);
                    }
                    Format::Table => {
                        for rule in matched {
                            let alert = Alert::for_match(rule, record, None, &detected_at);
                            let _ = sinks::table::write_alert(&mut output, &alert);
                        }
                    }
                }
                if output.len() >= CHUNK_BYTES {
                    let _ = tx.send(Done {
                        index,
                        output: std::mem::replace(&mut output, spare.next()),
                        report: None,
                    });
                }
            }),
            Err(e) => ObjectReport {
                error: Some(crate::decode::DecodeError::Io {
                    offset: 0,
                    source: e,
                }),
                ..ObjectReport::default()
            },
        };
        // Alerts of stateful rules completed by this file's records.
        if let Some(completed) = rules.with_correlator(|c| c.take_pending()) {
            for d in completed {
                let _ = match format {
                    Format::Jsonl => sinks::write_jsonl(&mut output, &d.alert),
                    Format::Table => sinks::table::write_alert(&mut output, &d.alert),
                };
            }
        }
        if tx
            .send(Done {
                index,
                output,
                report: Some(FileReport { path, report }),
            })
            .is_err()
        {
            return;
        }
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
    stack: Vec<std::vec::IntoIter<PathBuf>>,
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
                    Some(path) if path.is_dir() => self.push_dir(&path),
                    Some(path) if is_cloudtrail_file(&path) => return Some(self.numbered(path)),
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
                let mut listing: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
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
