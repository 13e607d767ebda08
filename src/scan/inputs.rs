//! The files to scan: named ones, and the CloudTrail-looking files under
//! named directories, found as workers ask for them.

use std::path::{Path, PathBuf};

use crate::decode::is_log_object;

use super::Failure;

/// The files to scan, found as workers ask for them: files named on the
/// command line, and the CloudTrail-looking files under directories named
/// there (Digest and Insight files left out), each directory's entries in
/// sorted order so that the output order is stable. Only the listings on the
/// current path are held, not the whole tree, however many files it has.
pub(super) struct Inputs {
    roots: std::collections::VecDeque<PathBuf>,
    /// Directory listings being walked: each entry, and whether the listing
    /// said it is a directory (`None`: a link, or not said; asked of the path).
    stack: Vec<std::vec::IntoIter<(PathBuf, Option<bool>)>>,
    next_index: usize,
    pub failures: Vec<Failure>,
}

impl Inputs {
    pub fn new(paths: &[PathBuf]) -> Self {
        Inputs {
            roots: paths.iter().cloned().collect(),
            stack: Vec::new(),
            next_index: 0,
            failures: Vec::new(),
        }
    }

    /// The next file, with its position in the output order.
    pub fn next(&mut self) -> Option<(usize, PathBuf)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_in_sorted_order_and_only_cloudtrail_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let day = root.join("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21");
        let digest = root.join("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/21");
        std::fs::create_dir_all(&day).expect("mkdir");
        std::fs::create_dir_all(&digest).expect("mkdir");
        for name in [
            "111122223333_CloudTrail_us-east-1_20261121T1010Z_b.json.gz",
            "111122223333_CloudTrail_us-east-1_20261121T1000Z_a.json.gz",
            "notes.txt",
        ] {
            std::fs::write(day.join(name), b"").expect("write");
        }
        let digest_file = "111122223333_CloudTrail-Digest_us-east-1_20261121T1000Z.json.gz";
        std::fs::write(digest.join(digest_file), b"").expect("write");
        let missing = root.join("nowhere");
        let mut inputs = Inputs::new(&[root.to_path_buf(), missing]);
        let mut found = Vec::new();
        while let Some((index, path)) = inputs.next() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            found.push((index, name.to_owned()));
        }
        assert_eq!(
            found,
            [
                (
                    0,
                    "111122223333_CloudTrail_us-east-1_20261121T1000Z_a.json.gz".into()
                ),
                (
                    1,
                    "111122223333_CloudTrail_us-east-1_20261121T1010Z_b.json.gz".into()
                ),
            ]
        );
        assert_eq!(inputs.failures.len(), 1);
        assert!(inputs.failures[0].reason.contains("no such file"));
    }
}
