//! The SQLite schema, versioned with `PRAGMA user_version`.

use rusqlite::Connection;

const V1: &str = "
CREATE TABLE cursors (
    id         TEXT PRIMARY KEY,      -- bucket|prefix|account|region
    bucket     TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    watermark  TEXT,                  -- newest key time processed (YYYYMMDDTHHMMZ)
    updated_at INTEGER NOT NULL
);
CREATE TABLE objects (
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    cursor_id    TEXT NOT NULL,
    key_time     TEXT NOT NULL,       -- the delivery time in the key
    status       TEXT NOT NULL,       -- done | failed
    records      INTEGER NOT NULL,
    alerts       INTEGER NOT NULL,
    error        TEXT,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX objects_by_cursor_time ON objects (cursor_id, key_time);
CREATE TABLE alerts (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    json       TEXT NOT NULL,         -- the alert (the contract)
    context    TEXT,                  -- rule description, record excerpt (for sinks)
    created_at INTEGER NOT NULL
);
CREATE TABLE sink_offsets (
    sink     TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    file_len INTEGER                  -- file sink: length after the last committed batch
);
CREATE TABLE dead_letters (
    sink      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    status    INTEGER,
    body      TEXT,
    failed_at INTEGER NOT NULL,
    PRIMARY KEY (sink, seq)
);
CREATE TABLE trails (
    arn        TEXT PRIMARY KEY,
    json       TEXT NOT NULL,         -- the last TrailStatus seen
    updated_at INTEGER NOT NULL
);
CREATE TABLE suppression (
    key          TEXT PRIMARY KEY,    -- rule, principal, resource
    rule_id      TEXT NOT NULL,
    window_start TEXT NOT NULL,       -- RFC 3339, UTC
    window_end   TEXT NOT NULL,
    count        INTEGER NOT NULL,
    related      TEXT NOT NULL,       -- JSON array of the repeats' event ids
    first        TEXT NOT NULL        -- the alert that opened the window, with its context
);
CREATE TABLE suppressed (
    alert_id TEXT PRIMARY KEY,        -- a repeat counted in a window (never counted twice)
    key      TEXT NOT NULL
);
CREATE INDEX suppressed_by_key ON suppressed (key);
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,           -- e.g. correlation: the stateful rules' windows
    value TEXT NOT NULL
);
CREATE TABLE targets (
    id         TEXT PRIMARY KEY,      -- bucket|prefix
    json       TEXT NOT NULL,         -- region, last error, last success
    updated_at INTEGER NOT NULL
);
";

/// Version 2: the events the stateful rules already counted, as rows (a
/// commit adds what is new instead of rewriting all of them).
const V2: &str = "
CREATE TABLE correlation_seen (
    key INTEGER PRIMARY KEY,          -- hash of rule and eventID
    at  INTEGER NOT NULL              -- the event's time (Unix seconds)
);
CREATE INDEX correlation_seen_at ON correlation_seen (at);
";

/// Version 3: the file a file sink's committed length belongs to (device
/// and inode), so that a rotated file is told apart.
const V3: &str = "ALTER TABLE sink_offsets ADD COLUMN file_id TEXT;";

/// Creates or upgrades the schema. The version is read inside a write
/// transaction, so two processes opening a new file at once (the daemon and
/// `trailwatch trails`) do not both create it.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 1 {
        tx.execute_batch(V1)?;
        tx.execute_batch("PRAGMA user_version = 1")?;
    }
    if version < 2 {
        tx.execute_batch(V2)?;
        tx.execute_batch("PRAGMA user_version = 2")?;
    }
    if version < 3 {
        tx.execute_batch(V3)?;
        tx.execute_batch("PRAGMA user_version = 3")?;
    }
    tx.commit()
}
