//! The file sink: alerts appended as JSON lines, exactly once across crashes.
//!
//! After each batch the file's length is committed with the sink's outbox
//! position. On the next start, bytes past that length belong to a batch
//! whose commit never happened: they are cut off and the batch is written
//! again, so a crash anywhere never leaves a line twice.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::alert::Alert;
use crate::config::Fsync;

/// An open JSON lines file.
pub struct FileSink {
    path: PathBuf,
    file: File,
    fsync: Fsync,
    last_sync: Instant,
    len: u64,
}

impl FileSink {
    /// Opens `path` for appending; `committed_len` is the length recorded
    /// with the last committed batch.
    pub fn open(path: &Path, fsync: Fsync, committed_len: Option<u64>) -> io::Result<FileSink> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(path)?;
        let mut len = file.metadata()?.len();
        if let Some(committed) = committed_len
            && len > committed
        {
            tracing::info!(path = %path.display(), from = len, to = committed,
                "cutting off alerts written after the last commit; they are written again");
            file.set_len(committed)?;
            file.sync_all()?;
            len = committed;
        }
        Ok(FileSink {
            path: path.to_path_buf(),
            file,
            fsync,
            last_sync: Instant::now(),
            len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a batch; returns the file's length after it, to commit.
    pub fn write_batch(&mut self, alerts: &[&Alert]) -> io::Result<u64> {
        let mut buf = Vec::with_capacity(alerts.len() * 512);
        for alert in alerts {
            super::write_jsonl(&mut buf, alert)?;
        }
        // Append at the tracked length (the file is not opened in append
        // mode, so that a cut-off tail is overwritten).
        use std::io::{Seek, SeekFrom};
        self.file.seek(SeekFrom::Start(self.len))?;
        self.file.write_all(&buf)?;
        self.len += buf.len() as u64;
        let due = match self.fsync {
            Fsync::Always => true,
            Fsync::Interval => self.last_sync.elapsed() >= Duration::from_secs(1),
            Fsync::Never => false,
        };
        if due {
            self.file.sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_past_the_committed_length_are_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out/alerts.jsonl");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "{\"committed\":1}\n{\"uncommitted\":2}\n").expect("write");
        let sink = FileSink::open(&path, Fsync::Always, Some(16)).expect("open");
        drop(sink);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"committed\":1}\n"
        );
    }
}
