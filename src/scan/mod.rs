//! The offline hunt behind `trailwatch scan`: files and directory trees read
//! on every core, one decode-and-detect pipeline per thread, alerts written
//! in input order. Repeats are grouped and correlations fed in input order,
//! so what it finds does not depend on the number of threads. Knows nothing
//! of AWS or of the async runtime.

mod inputs;
mod printer;
pub mod s3;
pub mod store;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use crate::alert::{Activity, Alert, Detected, Severity, now_rfc3339};
use crate::detect::{ObjectReport, detect_object_seeing};
use crate::rules::{Grouper, OrderedFeed, Rule, RuleSet, Seen, feed_in_order, write_jsonl_alerts};
use crate::sinks;

use inputs::Inputs;
pub use printer::Totals;
use printer::{CHUNK_BYTES, FileReport, Printer};
use s3::{Object, Reader};

/// Record text held for the stateful rules by files read ahead of the
/// oldest one still being read, past which no new file is started.
const HELD_MAX_BYTES: usize = 16 << 20;

/// How alerts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Jsonl,
    Table,
}

/// How to scan.
#[derive(Debug, Clone)]
pub struct Options {
    pub threads: usize,
    /// Cap on the decompressed bytes of one file.
    pub max_decompressed_bytes: u64,
    pub output: Output,
    /// Repeats of one rule for one principal no further apart than this
    /// many seconds are one burst; `None`: every match is its own alert.
    pub group_window: Option<i64>,
    /// A progress line on stderr, redrawn every second (for a terminal).
    pub progress: bool,
    /// `--store`: each input's alerts and activity kept for lookups.
    pub store: Option<store::ScanStore>,
}

/// One input that could not be read to the end.
pub struct Failure {
    pub path: String,
    pub reason: String,
}

/// What a scan read and found.
pub struct Summary {
    pub totals: Totals,
    /// Alerts written (grouped repeats counted as their bursts' alerts).
    pub alerts: u64,
    pub failures: Vec<Failure>,
    /// The highest severity of the alerts written (`None`: no alert).
    pub highest: Option<Severity>,
    pub elapsed_seconds: f64,
}

/// `scanned 3 objects (0 failed), 210 records, 12 alerts in 0.50s (420
/// records/s, 12.3 MB/s decompressed`: the summary line on stderr.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (t, elapsed) = (&self.totals, self.elapsed_seconds.max(1e-9));
        write!(
            f,
            "scanned {} objects ({} failed), {} records, {} alerts in {:.2}s ({:.0} records/s, {:.1} MB/s decompressed",
            t.objects,
            self.failures.len(),
            t.records,
            self.alerts,
            self.elapsed_seconds,
            t.records as f64 / elapsed,
            t.bytes as f64 / 1e6 / elapsed,
        )
    }
}

/// Scans `paths` with `rules`, writing alerts to `out` (a table's header
/// first, for `Output::Table`). For a command that ends with the scan: the
/// alerts closed at the end are not freed.
pub fn run<W: Write + Send>(
    rules: &RuleSet,
    source: Source,
    options: &Options,
    mut out: W,
) -> Summary {
    let started = Instant::now();
    let (reader, queue) = source.split();
    let threads = options.threads.max(1);
    let format = options.output;
    // Each file is read once: events need remembering (against duplicates
    // delivered twice) only as long as the longest correlation window.
    rules.with_correlator(|c| {
        c.set_dedupe_horizon(3600);
        c.hold_summaries_to_end();
        c.without_dedupe();
    });
    let mut output_open = true;
    if format == Output::Table {
        output_open = sinks::table::write_header(&mut out).is_ok();
    }
    let shared = Shared {
        inputs: std::sync::Mutex::new(queue),
        reader: reader.as_ref(),
        rules,
        cap: options.max_decompressed_bytes,
        format,
        printer: std::sync::Mutex::new(Printer::new(out, output_open)),
        grouper: options.group_window.map(Grouper::new),
        feed: std::sync::Mutex::new(OrderedFeed::new()),
        next_fed: std::sync::atomic::AtomicUsize::new(0),
        fed: std::sync::Condvar::new(),
        sleepers: std::sync::atomic::AtomicUsize::new(0),
        highest: Highest::default(),
        store: options.store.as_ref(),
        store_failures: std::sync::Mutex::new(Vec::new()),
    };
    let total = match &*shared.inputs.lock().unwrap_or_else(|p| p.into_inner()) {
        Queue::Remote { objects, .. } => Some(objects.len()),
        Queue::Local(_) => None,
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let shared = &shared;
                scope.spawn(move || worker(shared))
            })
            .collect();
        if options.progress {
            let (shared, done) = (&shared, &done);
            scope.spawn(move || progress(shared, total, started, done));
        }
        for w in workers {
            let _ = w.join();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let Shared {
        inputs,
        printer,
        grouper,
        highest,
        store_failures,
        ..
    } = shared;
    let Printer {
        mut out,
        totals,
        mut failures,
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
    if let Some(store) = &options.store
        && let Err(e) = store.insert(&closed)
    {
        failures.push(Failure {
            path: store.path().display().to_string(),
            reason: format!("the bursts closed at the end were not stored: {e}"),
        });
    }
    failures.append(
        &mut store_failures
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
    );
    for d in &closed {
        if let Some(severity) = d.alert.severity() {
            highest.note(severity);
        }
    }
    write_closed(&mut out, &closed, format, threads);
    let _ = out.flush();
    drop(out);
    // Freeing the alerts one by one costs the end of a scan a few
    // milliseconds; the command that runs a scan exits after it.
    std::mem::forget(closed);
    failures.append(
        &mut inputs
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .failures(),
    );
    Summary {
        totals,
        alerts: totals.alerts - grouped_matches + grouped_alerts,
        failures,
        highest: highest.get(),
        elapsed_seconds: started.elapsed().as_secs_f64(),
    }
}

/// Writes the alerts closed at the end in order, the later half made on a
/// second thread (a dense hour closes thousands of bursts).
fn write_closed(out: &mut impl Write, closed: &[Detected], format: Output, threads: usize) {
    if threads < 2 || closed.len() < 64 {
        return write_alerts(out, closed, format);
    }
    let (first, later) = closed.split_at(closed.len() / 2);
    std::thread::scope(|scope| {
        let written = scope.spawn(|| {
            let mut buf = Vec::new();
            write_alerts(&mut buf, later, format);
            buf
        });
        write_alerts(out, first, format);
        match written.join() {
            Ok(buf) => {
                let _ = out.write_all(&buf);
            }
            // Not lost: written here instead.
            Err(_) => write_alerts(out, later, format),
        }
    });
}

fn write_alerts(out: &mut impl Write, alerts: &[Detected], format: Output) {
    for d in alerts {
        let _ = match format {
            Output::Jsonl => sinks::write_jsonl(out, &d.alert),
            Output::Table => sinks::table::write_alert(out, &d.alert),
        };
    }
}

/// Where a scan's objects come from.
pub enum Source {
    /// Files and directory trees.
    Paths(Vec<PathBuf>),
    /// Objects listed in S3 (`s3::Reader::list`), and what could not be
    /// listed.
    S3 {
        reader: Box<Reader>,
        objects: Vec<Object>,
        failures: Vec<Failure>,
    },
}

impl Source {
    /// The reader (for objects in S3) and the queue of inputs.
    fn split(self) -> (Option<Reader>, Queue) {
        match self {
            Source::Paths(paths) => (None, Queue::Local(Inputs::new(&paths))),
            Source::S3 {
                reader,
                objects,
                failures,
            } => (
                Some(*reader),
                Queue::Remote {
                    next: 0,
                    objects: objects.into(),
                    failures,
                },
            ),
        }
    }
}

/// One input of a scan.
enum Input {
    File(PathBuf),
    Object(Object),
}

/// The inputs, handed to the workers in order.
enum Queue {
    Local(Inputs),
    Remote {
        next: usize,
        objects: std::collections::VecDeque<Object>,
        failures: Vec<Failure>,
    },
}

impl Queue {
    fn next(&mut self) -> Option<(usize, Input)> {
        match self {
            Queue::Local(inputs) => inputs.next().map(|(i, p)| (i, Input::File(p))),
            Queue::Remote { next, objects, .. } => {
                let object = objects.pop_front()?;
                *next += 1;
                Some((*next - 1, Input::Object(object)))
            }
        }
    }

    fn failures(self) -> Vec<Failure> {
        match self {
            Queue::Local(inputs) => inputs.failures,
            Queue::Remote { failures, .. } => failures,
        }
    }
}

/// Redraws `objects, MB, records, alerts, rate, time left` on stderr every
/// second until `done`.
fn progress<W>(
    shared: &Shared<'_, W>,
    total: Option<usize>,
    started: Instant,
    done: &std::sync::atomic::AtomicBool,
) {
    let mut err = std::io::stderr();
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let t = shared
            .printer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .totals;
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let left = total
            .filter(|_| t.objects > 0)
            .map(|n| {
                let rest = n.saturating_sub(t.objects as usize) as f64;
                format!(", {:.0}s left", rest * elapsed / t.objects as f64)
            })
            .unwrap_or_default();
        let of = total.map(|n| format!("/{n}")).unwrap_or_default();
        let _ = write!(
            err,
            "\r{}{of} objects, {:.1} MB, {} records, {} alerts, {:.0} records/s{left}   ",
            t.objects,
            t.bytes as f64 / 1e6,
            t.records,
            t.alerts,
            t.records as f64 / elapsed,
        );
        std::thread::sleep(std::time::Duration::from_millis(750));
    }
    let _ = writeln!(err);
}

/// The highest severity among the alerts written so far.
#[derive(Debug, Default)]
struct Highest(std::sync::atomic::AtomicU8);

impl Highest {
    /// Notes a match at `severity`. Written only when higher: every match
    /// of every thread comes here, and a write takes the line from the
    /// other cores where a read shares it.
    fn note(&self, severity: Severity) {
        let level = severity as u8 + 1;
        if self.0.load(std::sync::atomic::Ordering::Relaxed) < level {
            self.0
                .fetch_max(level, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn get(&self) -> Option<Severity> {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            n => Severity::parse(Severity::NAMES.get(usize::from(n - 1))?),
        }
    }
}

/// What the workers share.
struct Shared<'a, W> {
    inputs: std::sync::Mutex<Queue>,
    /// For objects in S3.
    reader: Option<&'a Reader>,
    rules: &'a RuleSet,
    cap: u64,
    format: Output,
    printer: std::sync::Mutex<Printer<W>>,
    grouper: Option<Grouper>,
    feed: std::sync::Mutex<OrderedFeed>,
    /// `feed`'s next object, readable without its lock.
    next_fed: std::sync::atomic::AtomicUsize,
    /// Told when `feed` has fed objects (and holds less).
    fed: std::sync::Condvar,
    /// Threads waiting on `fed` (changed under `feed`'s lock).
    sleepers: std::sync::atomic::AtomicUsize,
    highest: Highest,
    store: Option<&'a store::ScanStore>,
    /// Inputs whose alerts could not be stored.
    store_failures: std::sync::Mutex<Vec<Failure>>,
}

fn worker<W: Write>(shared: &Shared<'_, W>) {
    let Shared {
        inputs,
        reader,
        rules,
        cap,
        format,
        printer,
        grouper,
        feed,
        next_fed,
        fed,
        sleepers,
        highest,
        store,
        store_failures,
    } = shared;
    let (rules, cap, format, grouper) = (*rules, *cap, *format, grouper.as_ref());
    // This thread's groups, merged when it is done: a match takes no lock.
    let mut local = grouper.map(Grouper::local);
    let (mut kept, mut activity) = (Vec::new(), Vec::new());
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
        // While the files read ahead of the oldest one still being read
        // hold this much, no new file is started: memory stays bounded when
        // that one is slow to read (its records feed correlations).
        {
            let mut waiting = feed.lock().unwrap_or_else(|p| p.into_inner());
            while waiting.waiting_bytes() > HELD_MAX_BYTES {
                sleepers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                waiting = fed.wait(waiting).unwrap_or_else(|p| p.into_inner());
                sleepers.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let next = inputs.lock().unwrap_or_else(|p| p.into_inner()).next();
        let Some((index, input)) = next else {
            if let (Some(g), Some(l)) = (grouper, local) {
                g.merge(l);
            }
            return;
        };
        let (path, opened) = match input {
            Input::File(path) => {
                let file = std::fs::File::open(&path).map(|f| Box::new(f) as Box<dyn Read + Send>);
                (path, file)
            }
            Input::Object(object) => {
                let opened = match reader {
                    Some(reader) => reader.open(&object),
                    None => Err(std::io::Error::other("no S3 reader")),
                };
                (PathBuf::from(object.url()), opened)
            }
        };
        let place = store::place_of(&path);
        let mut feeding_now = false;
        let object = (!place.bucket.is_empty()).then(|| place.clone());
        let report = match opened {
            Ok(file) => detect_object_seeing(
                file,
                rules,
                cap,
                |record| {
                    if store.is_some() {
                        activity.push(Activity::of(record));
                    }
                },
                |all, record| {
                    for rule in all {
                        highest.note(rule.meta.severity);
                    }
                    // Grouped rules' matches wait for the end of the input.
                    let mut direct: Vec<&Rule> = Vec::new();
                    let matched: &[&Rule] = match local.as_mut() {
                        Some(g) => {
                            let mut seen = None;
                            for &rule in all {
                                if Grouper::applies(rule) {
                                    let seen = seen.get_or_insert_with(|| Seen::of(record));
                                    g.add_seen(rule, record, seen, &detected_at);
                                } else {
                                    direct.push(rule);
                                }
                            }
                            &direct
                        }
                        None => all,
                    };
                    if store.is_some() {
                        for rule in matched {
                            kept.push(Alert::detected(rule, record, object.clone(), &detected_at));
                        }
                    }
                    match format {
                        Output::Jsonl => {
                            let _ = write_jsonl_alerts(
                                &mut output,
                                matched,
                                record,
                                None,
                                &detected_at,
                            );
                        }
                        Output::Table => {
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
                |matched, record| {
                    // Every earlier file is fed: this one's records go to
                    // the stateful rules as they are read (those held so far
                    // first), not copied to be parsed again at its end.
                    if !feeding_now && next_fed.load(std::sync::atomic::Ordering::Acquire) == index
                    {
                        for h in held.drain(..) {
                            rules.feed_held(&h, None, &detected_at);
                        }
                        feeding_now = true;
                    }
                    if feeding_now {
                        rules.correlate(record, matched, None, &detected_at);
                    } else {
                        held.extend(rules.hold_for_correlation(record, matched));
                    }
                },
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
        feed_in_order(
            feed,
            index,
            std::mem::take(&mut held),
            rules,
            &detected_at,
            |f| {
                next_fed.store(f.next(), std::sync::atomic::Ordering::Release);
                // Waking costs a system call: only when a thread waits (it
                // counts itself under this lock before it sleeps).
                if sleepers.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    fed.notify_all();
                }
            },
        );
        // Alerts of stateful rules completed by the files fed so far.
        if let Some(completed) = rules.with_correlator(|c| c.take_pending()) {
            for d in completed {
                if let Some(severity) = d.alert.severity() {
                    highest.note(severity);
                }
                if store.is_some() {
                    kept.push(d.clone());
                }
                let _ = match format {
                    Output::Jsonl => sinks::write_jsonl(&mut output, &d.alert),
                    Output::Table => sinks::table::write_alert(&mut output, &d.alert),
                };
            }
        }
        if let Some(store) = store {
            let failed = report.error.as_ref().map(|e| e.to_string());
            if let Err(e) = store.commit(&place, report.records, failed, &kept, &activity) {
                store_failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Failure {
                        path: path.display().to_string(),
                        reason: format!("not stored in {}: {e}", store.path().display()),
                    });
            }
            kept.clear();
            activity.clear();
        }
        print(index, &mut output, Some(FileReport { path, report }));
    }
}
