//! Streaming decode of CloudTrail objects: gunzip (single or multi-member, or
//! plain JSON), a cap on decompressed bytes, and records one at a time.
//!
//! Nothing here knows about S3 or tokio: the same code reads a file on disk.

mod check;
mod held;
mod pooled;
mod scanner;
mod source;
mod whole;

#[doc(hidden)]
pub use check::check_decoder;

/// Inflates a whole gzip object as `RecordReader` does (for the
/// benchmarks): its decompressed length, `None` when it would stream.
#[doc(hidden)]
pub fn inflate_whole(gz: &[u8]) -> Option<usize> {
    whole::inflate(gz, whole::WHOLE_MAX_DECOMPRESSED).map(|inflated| inflated.len())
}

use std::io;

pub use scanner::{MAX_RECORD_BYTES, RecordReader};

/// Default cap on the decompressed bytes of one object (the config's).
pub use crate::config::DEFAULT_MAX_DECOMPRESSED_BYTES;

/// Why an object could not be decoded to the end. Offsets are in the
/// decompressed stream unless they say otherwise.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "corrupt gzip near compressed byte {compressed_offset} (decompressed byte {offset}): {source}"
    )]
    Gzip {
        offset: u64,
        compressed_offset: u64,
        source: io::Error,
    },
    #[error("malformed JSON at byte {offset}: {reason}")]
    Json { offset: u64, reason: String },
    #[error("truncated: the input ends inside a JSON value at byte {offset}")]
    Truncated { offset: u64 },
    #[error("decompressed size exceeds the cap of {cap} bytes (at byte {offset})")]
    TooLarge { cap: u64, offset: u64 },
    #[error("read error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
}

impl DecodeError {
    /// The decompressed byte offset at which decoding stopped.
    pub fn offset(&self) -> u64 {
        match self {
            DecodeError::Gzip { offset, .. }
            | DecodeError::Json { offset, .. }
            | DecodeError::Truncated { offset }
            | DecodeError::TooLarge { offset, .. }
            | DecodeError::Io { offset, .. } => *offset,
        }
    }
}

/// Whether a key names a CloudTrail log object whose records should be read.
/// Digest files (`CloudTrail-Digest/`) and Insights events
/// (`CloudTrail-Insight/`) share the bucket but are not management events.
pub fn is_log_object(key: &str) -> bool {
    !key.split(['/', '\\'])
        .any(|part| part == "CloudTrail-Digest" || part == "CloudTrail-Insight")
}

#[cfg(test)]
mod tests;
