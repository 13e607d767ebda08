//! The file sink: alerts appended as JSON lines, exactly once across crashes.
//!
//! After each batch the file's length is committed with the sink's outbox
//! position. On the next start, bytes past that length belong to a batch
//! whose commit never happened: they are cut off and the batch is written
//! again, so a crash anywhere never leaves a line twice. The position is
//! kept with the file's identity, and the path is checked before each batch:
//! under logrotate (`create` or `copytruncate`) the sink writes on in the
//! file the path names, from its end.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Fsync;

/// Where the last committed batch left the file: its length, and which file
/// it was (device and inode), so that a rotated file is told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub len: u64,
    /// `None` for a position committed before identities were kept: taken
    /// as the file at the path.
    pub file_id: Option<String>,
}

/// An open JSON lines file.
pub struct FileSink {
    path: PathBuf,
    file: File,
    fsync: Fsync,
    last_sync: Instant,
    len: u64,
    id: String,
}

/// A file's identity: its device and inode.
fn identity(meta: &std::fs::Metadata) -> String {
    format!("{}:{}", meta.dev(), meta.ino())
}

impl FileSink {
    /// Opens `path` for appending, against where the last committed batch
    /// left it:
    /// - the same file, longer: the bytes past the committed length belong
    ///   to a batch whose commit never happened; they are cut off and the
    ///   batch is written again;
    /// - another file (logrotate's `create`: renamed, a new one made) or the
    ///   same file shorter (`copytruncate`): the file was rotated; nothing in
    ///   it is cut, and `rotated` is true: the caller commits the new
    ///   position (`position`) before writing, so that a crash after the
    ///   next batch cuts that batch, and only that, from the new file.
    pub fn open(path: &Path, fsync: Fsync, committed: Option<&Committed>) -> io::Result<Opened> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // Appending: whatever shortened the file meanwhile, a write lands
        // at its end (never past it, leaving a hole).
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        let (id, mut len) = (identity(&meta), meta.len());
        let same_file = committed.is_some_and(|c| c.file_id.as_ref().is_none_or(|f| *f == id));
        let mut rotated = false;
        match committed {
            Some(c) if same_file && len > c.len => {
                tracing::info!(path = %path.display(), from = len, to = c.len,
                    "cutting off alerts written after the last commit; they are written again");
                file.set_len(c.len)?;
                file.sync_all()?;
                len = c.len;
            }
            Some(c) if !same_file || len < c.len => {
                tracing::info!(path = %path.display(), "the alerts file was rotated; writing on in the new one");
                rotated = true;
            }
            _ => {}
        }
        Ok(Opened {
            sink: FileSink {
                path: path.to_path_buf(),
                file,
                fsync,
                last_sync: Instant::now(),
                len,
                id,
            },
            rotated,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the file stands now (what a commit records).
    pub fn position(&self) -> Committed {
        Committed {
            len: self.len,
            file_id: Some(self.id.clone()),
        }
    }

    /// Whether the path still names the file held open, at the length
    /// written (false once it was renamed, removed or cut short).
    pub fn still_current(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(meta) => identity(&meta) == self.id && meta.len() >= self.len,
            Err(_) => false,
        }
    }

    /// Appends a batch; returns where the file stands after it, to commit.
    #[cfg(test)]
    pub fn write_batch(&mut self, alerts: &[&crate::alert::Alert]) -> io::Result<Committed> {
        let mut buf = Vec::with_capacity(alerts.len() * 512);
        for alert in alerts {
            super::write_jsonl(&mut buf, alert)?;
        }
        self.write_lines(&buf)
    }

    /// Appends a batch of lines as one write; returns the position after it.
    pub fn write_lines(&mut self, buf: &[u8]) -> io::Result<Committed> {
        self.file.write_all(buf)?;
        self.len = self.file.metadata()?.len();
        let due = match self.fsync {
            Fsync::Always => true,
            Fsync::Interval => self.last_sync.elapsed() >= Duration::from_secs(1),
            Fsync::Never => false,
        };
        if due {
            self.file.sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(self.position())
    }
}

/// A file sink just opened, and whether its file was rotated since the
/// last commit.
pub struct Opened {
    pub sink: FileSink,
    pub rotated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;

    #[test]
    fn bytes_past_the_committed_length_are_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out/alerts.jsonl");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "{\"committed\":1}\n{\"uncommitted\":2}\n").expect("write");
        let committed = Committed {
            len: 16,
            file_id: None,
        };
        let opened = FileSink::open(&path, Fsync::Always, Some(&committed)).expect("open");
        assert!(!opened.rotated);
        drop(opened);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"committed\":1}\n"
        );
    }

    #[test]
    fn a_rotated_file_is_written_on_from_its_end_and_nothing_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.jsonl");
        let alert = Alert::sample();
        let mut sink = FileSink::open(&path, Fsync::Always, None)
            .expect("open")
            .sink;
        let first = sink.write_batch(&[&alert]).expect("write");
        assert!(sink.still_current());

        // logrotate `create`: renamed, a new file in its place.
        std::fs::rename(&path, dir.path().join("alerts.jsonl.1")).expect("rename");
        assert!(!sink.still_current(), "renamed away");
        std::fs::write(&path, b"").expect("create");
        let opened = FileSink::open(&path, Fsync::Always, Some(&first)).expect("open");
        assert!(opened.rotated, "another file");
        let mut sink = opened.sink;
        assert_eq!(sink.position().len, 0);
        let second = sink.write_batch(&[&alert]).expect("write");
        assert_eq!(second.len, first.len, "one line in the new file");

        // logrotate `copytruncate`: the same file, cut to nothing.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        assert!(!sink.still_current(), "cut short");
        let opened = FileSink::open(&path, Fsync::Always, Some(&second)).expect("open");
        assert!(opened.rotated, "shorter than committed");
        let mut sink = opened.sink;
        let third = sink.write_batch(&[&alert]).expect("write");
        let text = std::fs::read(&path).expect("read");
        assert!(!text.contains(&0), "no hole of NUL bytes");
        assert_eq!(third.len as usize, text.len());

        // The same file, longer than committed (a crash before the commit):
        // cut back, not rotated.
        sink.write_batch(&[&alert]).expect("write");
        let opened = FileSink::open(&path, Fsync::Always, Some(&third)).expect("open");
        assert!(!opened.rotated);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), third.len);
    }
}
