//! A damaged state file: found before SQLite opens it (not a SQLite file,
//! or shorter than its own header says, i.e. truncated), and named, with the
//! way to recover, in every error SQLite reports as corruption.

use std::io::Read;
use std::path::Path;

/// What to do about a damaged state file (README, "A damaged state file").
pub const RECOVER: &str = "the state file is damaged: stop trailwatch, move the file aside \
    with its -wal and -shm files, and start again (objects are read again from \
    crawl.start_from; receivers deduplicate the alerts sent again by id); see the README, \
    \"A damaged state file\"";

/// SQLite's file header: its magic string and the fields read here.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const HEADER: usize = 100;

/// Why the file at `path` is not a state file SQLite can open, if it is not:
/// `None` for a sound file, an empty one or none at all.
pub fn check(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len == 0 {
        return None;
    }
    let mut header = [0u8; HEADER];
    let mut read = 0;
    while read < HEADER {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Some(format!("cannot be read: {e}")),
        }
    }
    if header.starts_with(MAGIC) {
        if read < HEADER {
            return Some(format!("truncated: {len} bytes, less than SQLite's header"));
        }
    } else {
        return Some("not a SQLite database (its first bytes are not SQLite's header)".into());
    }
    // A write-ahead log may hold pages the main file does not have yet (a
    // checkpoint cut short): the file is then judged by SQLite alone.
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return None;
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    // The page count is valid only when written with the change counter.
    if be32(92) == be32(24) && pages > 0 && pages * page_size > len {
        return Some(format!(
            "truncated: {len} bytes where its header says {}",
            pages * page_size
        ));
    }
    None
}

/// Whether SQLite's error says the file is damaged.
pub fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// The way to recover, after an error that says the file is damaged.
pub(super) fn hint(source: &super::StateFault) -> String {
    match source {
        super::StateFault::Sql(e) if is_damage(e) => format!("; {RECOVER}"),
        super::StateFault::Damaged(_) => format!("; {RECOVER}"),
        _ => String::new(),
    }
}

/// SQLite's error at opening `path`, with the system's reason when SQLite
/// gives none ("unable to open database file" on a read-only disk).
pub(super) fn open_error(path: &Path, e: rusqlite::Error) -> super::StateFault {
    let vague = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
    );
    if !vague {
        return super::StateFault::Sql(e);
    }
    let probe = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path);
    match probe {
        Err(io) => super::StateFault::Unwritable(format!("{e}: the file cannot be written: {io}")),
        Ok(_) => super::StateFault::Sql(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("state.db");
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE t (x); INSERT INTO t SELECT zeroblob(3000) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3);",
        )
        .expect("fill");
        drop(conn);
        path
    }

    #[test]
    fn a_sound_file_an_empty_one_and_none_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(check(&store(dir.path())), None);
        assert_eq!(check(&dir.path().join("absent.db")), None);
        std::fs::write(dir.path().join("empty.db"), b"").expect("write");
        assert_eq!(check(&dir.path().join("empty.db")), None);
    }

    #[test]
    fn garbage_and_a_truncated_file_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0x5a; 5000]).expect("write");
        assert!(check(&garbage).is_some_and(|r| r.starts_with("not a SQLite database")));

        let path = store(dir.path());
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        let reason = check(&path).expect("truncation found");
        assert!(reason.starts_with("truncated: "), "{reason}");
        std::fs::write(&path, &bytes[..40]).expect("truncate");
        assert!(check(&path).is_some_and(|r| r.contains("less than SQLite's header")));
    }
}
