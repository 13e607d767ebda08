//! The offline hunt behind `trailwatch scan`: files and directory trees read
//! on every core, one decode-and-detect pipeline per thread, alerts written
//! in input order. Repeats are grouped and correlations fed in input order,
//! so what it finds does not depend on the number of threads. Knows nothing
//! of AWS or of the async runtime.

mod inputs;
mod printer;

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::alert::{Alert, Severity, now_rfc3339};
use crate::detect::{ObjectReport, detect_object};
use crate::rules::{Grouper, OrderedFeed, Rule, RuleSet, write_jsonl_alerts};
use crate::sinks;

use inputs::Inputs;
pub use printer::Totals;
use printer::{CHUNK_BYTES, FileReport, Printer};

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

/// Scans `paths` with `rules`, writing alerts to `out` (a table's header
/// first, for `Output::Table`).
pub fn run<W: Write + Send>(
    rules: &RuleSet,
    paths: &[PathBuf],
    options: &Options,
    mut out: W,
) -> Summary {
    let started = Instant::now();
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
        inputs: std::sync::Mutex::new(Inputs::new(paths)),
        rules,
        cap: options.max_decompressed_bytes,
        format,
        printer: std::sync::Mutex::new(Printer::new(out, output_open)),
        grouper: options.group_window.map(Grouper::new),
        feed: std::sync::Mutex::new(OrderedFeed::new()),
        highest: Highest::default(),
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let shared = &shared;
            scope.spawn(move || worker(shared));
        }
    });
    let Shared {
        inputs,
        printer,
        grouper,
        highest,
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
    for d in closed {
        if let Some(severity) = d.alert.severity() {
            highest.note(severity);
        }
        let _ = match format {
            Output::Jsonl => sinks::write_jsonl(&mut out, &d.alert),
            Output::Table => sinks::table::write_alert(&mut out, &d.alert),
        };
    }
    let _ = out.flush();
    drop(out);
    failures.append(
        &mut inputs
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .failures,
    );
    Summary {
        totals,
        alerts: totals.alerts - grouped_matches + grouped_alerts,
        failures,
        highest: highest.get(),
        elapsed_seconds: started.elapsed().as_secs_f64(),
    }
}

/// The highest severity among the alerts written so far.
#[derive(Debug, Default)]
struct Highest(std::sync::atomic::AtomicU8);

impl Highest {
    fn note(&self, severity: Severity) {
        self.0
            .fetch_max(severity as u8 + 1, std::sync::atomic::Ordering::Relaxed);
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
    inputs: std::sync::Mutex<Inputs>,
    rules: &'a RuleSet,
    cap: u64,
    format: Output,
    printer: std::sync::Mutex<Printer<W>>,
    grouper: Option<Grouper>,
    feed: std::sync::Mutex<OrderedFeed>,
    highest: Highest,
}

fn worker<W: Write>(shared: &Shared<'_, W>) {
    let Shared {
        inputs,
        rules,
        cap,
        format,
        printer,
        grouper,
        feed,
        highest,
    } = shared;
    let (rules, cap, format, grouper) = (*rules, *cap, *format, grouper.as_ref());
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
                    for rule in all {
                        highest.note(rule.meta.severity);
                    }
                    // Grouped rules' matches wait for the end of the input.
                    let mut direct: Vec<&Rule> = Vec::new();
                    let matched: &[&Rule] = match grouper {
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
                if let Some(severity) = d.alert.severity() {
                    highest.note(severity);
                }
                let _ = match format {
                    Output::Jsonl => sinks::write_jsonl(&mut output, &d.alert),
                    Output::Table => sinks::table::write_alert(&mut output, &d.alert),
                };
            }
        }
        print(index, &mut output, Some(FileReport { path, report }));
    }
}
