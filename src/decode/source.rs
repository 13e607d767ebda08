//! The byte source under the record scanner: raw bytes counted, gzip (single
//! or multi-member) detected by its magic number, and decompressed bytes
//! counted against a cap.

use std::cell::Cell;
use std::io::{self, BufRead, Read};

use super::pooled::PooledBufReader;
use super::whole;
use std::rc::Rc;

use flate2::bufread::MultiGzDecoder;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BUF_SIZE: usize = 128 * 1024;

/// Marks an error that came from the underlying reader, not from gunzip.
#[derive(Debug)]
pub(crate) struct SourceIoError(pub io::Error);

impl std::fmt::Display for SourceIoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for SourceIoError {}

/// Marks the decompressed-size cap being exceeded.
#[derive(Debug)]
pub(crate) struct CapExceeded(pub u64);

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompressed size exceeds the cap of {} bytes", self.0)
    }
}
impl std::error::Error for CapExceeded {}

/// Counts the raw (compressed) bytes read, shared with the caller for errors.
struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.count.set(self.count.get() + n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(io::Error::new(e.kind(), SourceIoError(e))),
        }
    }
}

/// Fails once more than `cap` decompressed bytes have been produced.
struct CapReader<R> {
    inner: R,
    produced: u64,
    cap: u64,
}

impl<R: Read> Read for CapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for at most one byte past the cap, so that an object of exactly
        // `cap` bytes passes and one byte more fails.
        let room = self.cap.saturating_add(1).saturating_sub(self.produced);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if want == 0 {
            return Err(io::Error::other(CapExceeded(self.cap)));
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.produced += n as u64;
        if self.produced > self.cap {
            return Err(io::Error::other(CapExceeded(self.cap)));
        }
        Ok(n)
    }
}

/// Whether the stream was gzip and how many raw bytes have been read.
pub(crate) struct SourceInfo {
    pub gzip: bool,
    pub raw_bytes: Rc<Cell<u64>>,
}

/// Wraps `input` into a buffered reader of decompressed bytes.
pub(crate) fn open<'r>(
    input: impl Read + 'r,
    cap: u64,
) -> io::Result<(Box<dyn BufRead + 'r>, SourceInfo)> {
    open_with(
        input,
        cap,
        whole::WHOLE_MAX_COMPRESSED,
        whole::WHOLE_MAX_DECOMPRESSED,
    )
}

/// As `open`: gzip of at most `whole_compressed` bytes that inflates to at
/// most `whole_decompressed` (and the cap) is inflated in one go; the rest,
/// and anything that goes wrong there, streams.
pub(crate) fn open_with<'r>(
    input: impl Read + 'r,
    cap: u64,
    whole_compressed: usize,
    whole_decompressed: usize,
) -> io::Result<(Box<dyn BufRead + 'r>, SourceInfo)> {
    let raw_bytes = Rc::new(Cell::new(0));
    let (prefix, mut input) = read_prefix(input)?;
    let gzip = prefix == GZIP_MAGIC;
    let info = SourceInfo {
        gzip,
        raw_bytes: Rc::clone(&raw_bytes),
    };
    let mut failed = None;
    let head = if gzip {
        match whole::read_whole(&mut input, &prefix, whole_compressed) {
            whole::Head::Whole(compressed) => {
                let limit = whole_decompressed.min(usize::try_from(cap).unwrap_or(usize::MAX));
                if let Some(inflated) = whole::inflate(compressed.bytes(), limit) {
                    raw_bytes.set(compressed.bytes().len() as u64);
                    return Ok((Box::new(inflated), info));
                }
                compressed.into_bytes()
            }
            whole::Head::Partial(first, error) => {
                failed = error;
                Some(first)
            }
        }
    } else {
        None
    };
    let head = head.unwrap_or_else(|| whole::Bytes::copied(&prefix));
    // Streaming, from the first byte: the compressed bytes are counted as
    // the decoder takes them, for the offsets in its errors.
    let counting = CountingReader {
        inner: io::Cursor::new(head).chain(FailOnce(failed)).chain(input),
        count: raw_bytes,
    };
    let raw = PooledBufReader::with_capacity(BUF_SIZE, counting);
    let decompressed: Box<dyn Read + 'r> = if gzip {
        Box::new(MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let capped = CapReader {
        inner: decompressed,
        produced: 0,
        cap,
    };
    Ok((
        Box::new(PooledBufReader::with_capacity(BUF_SIZE, capped)),
        info,
    ))
}

/// Returns its error once, where a read of the object failed before.
struct FailOnce(Option<io::Error>);

impl Read for FailOnce {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.0.take().map_or(Ok(0), Err)
    }
}

/// Reads up to two bytes (the gzip magic) even from a reader that returns
/// one byte at a time; they are chained back in front of the rest.
fn read_prefix<R: Read>(mut reader: R) -> io::Result<(Vec<u8>, R)> {
    let mut prefix = [0u8; 2];
    let mut filled = 0;
    while filled < prefix.len() {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((prefix[..filled].to_vec(), reader))
}
