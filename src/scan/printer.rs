//! Output in input order, whichever worker finishes first.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use crate::detect::ObjectReport;

use super::Failure;

/// Output a worker writes (or sets aside) before its file ends.
pub(super) const CHUNK_BYTES: usize = 256 * 1024;

/// Output in input order, whichever worker finishes first: the file at the
/// head streams straight out, by the worker reading it; the others' output
/// waits here until the files before them are done, so memory is bounded by
/// what `threads - 1` files raise. There is no printer thread: the worker
/// that finishes the head writes what follows it, without waking anyone.
pub(super) struct Printer<W> {
    pub out: W,
    open: bool,
    /// The position of the first file not yet written out to its end.
    head: usize,
    waiting: BTreeMap<usize, Waiting>,
    pub totals: Totals,
    pub failures: Vec<Failure>,
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
pub(super) struct FileReport {
    pub path: PathBuf,
    pub report: ObjectReport,
}

/// Spare buffers kept for the workers.
const SPARE_MAX: usize = 8;

impl<W: Write> Printer<W> {
    pub fn new(out: W, open: bool) -> Self {
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
    pub fn take(&mut self, index: usize, output: &mut Vec<u8>, report: Option<FileReport>) {
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

/// What the files read so far held.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub objects: u64,
    pub records: u64,
    pub alerts: u64,
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, report: &ObjectReport) {
        self.objects += 1;
        self.records += report.records;
        self.alerts += report.alerts;
        self.bytes += report.decompressed_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(records: u64) -> ObjectReport {
        ObjectReport {
            records,
            ..ObjectReport::default()
        }
    }

    fn done(path: &str, records: u64) -> Option<FileReport> {
        Some(FileReport {
            path: PathBuf::from(path),
            report: report(records),
        })
    }

    #[test]
    fn output_comes_out_in_input_order_whoever_finishes_first() {
        let mut printer = Printer::new(Vec::new(), true);
        let mut chunk = b"c1\n".to_vec();
        // File 2 ends first, then file 1 writes a chunk, then file 0 ends.
        printer.take(2, &mut chunk, done("c", 3));
        assert!(chunk.is_empty(), "the buffer comes back empty");
        chunk.extend_from_slice(b"b1\n");
        printer.take(1, &mut chunk, None);
        assert!(printer.out.is_empty(), "nothing before file 0 is done");
        chunk.extend_from_slice(b"a1\n");
        printer.take(0, &mut chunk, done("a", 1));
        assert_eq!(printer.out, b"a1\nb1\n", "file 1 is not done: file 2 waits");
        chunk.extend_from_slice(b"b2\n");
        printer.take(1, &mut chunk, done("b", 2));
        assert_eq!(printer.out, b"a1\nb1\nb2\nc1\n");
        assert_eq!((printer.totals.objects, printer.totals.records), (3, 6));
    }
}
