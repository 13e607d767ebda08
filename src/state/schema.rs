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

/// Version 4: the lookup store. Alerts gain the columns `trailwatch alerts`
/// and the console filter on (filled from the alert and its record), and
/// the activity index keeps a row per record read, its object apart.
const V4: &str = "
ALTER TABLE alerts ADD COLUMN at INTEGER;          -- the event's time (Unix seconds)
ALTER TABLE alerts ADD COLUMN rule_id TEXT;
ALTER TABLE alerts ADD COLUMN level INTEGER;       -- 0 informational .. 4 critical
ALTER TABLE alerts ADD COLUMN principal TEXT;
ALTER TABLE alerts ADD COLUMN principal_name TEXT;
ALTER TABLE alerts ADD COLUMN access_key TEXT;
ALTER TABLE alerts ADD COLUMN account TEXT;
ALTER TABLE alerts ADD COLUMN region TEXT;
ALTER TABLE alerts ADD COLUMN source_ip TEXT;
ALTER TABLE alerts ADD COLUMN target TEXT;
ALTER TABLE alerts ADD COLUMN event_name TEXT;
ALTER TABLE alerts ADD COLUMN event_source TEXT;
ALTER TABLE alerts ADD COLUMN user_agent TEXT;
ALTER TABLE alerts ADD COLUMN bucket TEXT;
ALTER TABLE alerts ADD COLUMN key TEXT;
CREATE INDEX alerts_at ON alerts (at, seq);
CREATE INDEX alerts_by_rule ON alerts (rule_id, at);
CREATE INDEX alerts_by_principal ON alerts (principal, at);
CREATE INDEX alerts_by_principal_name ON alerts (principal_name, at);
CREATE INDEX alerts_by_access_key ON alerts (access_key, at);
CREATE INDEX alerts_by_account ON alerts (account, at);
CREATE INDEX alerts_by_ip ON alerts (source_ip, at);
CREATE INDEX alerts_by_target ON alerts (target, at);
CREATE INDEX alerts_by_created ON alerts (created_at);
CREATE TABLE alert_days (
    day     INTEGER NOT NULL,         -- the event's day (Unix seconds / 86400)
    rule_id TEXT NOT NULL,
    n       INTEGER NOT NULL,         -- alerts of that rule that day
    PRIMARY KEY (day, rule_id)
) WITHOUT ROWID;
CREATE TABLE activity_objects (
    id     INTEGER PRIMARY KEY,
    bucket TEXT NOT NULL,
    key    TEXT NOT NULL,
    last_at INTEGER NOT NULL DEFAULT 0, -- its newest record's time
    read_at INTEGER NOT NULL DEFAULT 0, -- when it was read (retention: both past)
    UNIQUE (bucket, key)
);
CREATE INDEX activity_objects_read_at ON activity_objects (read_at);
-- What repeats from record to record is kept once and named by a number:
-- the principal (ARN, name, access key), the event (source, name), the place
-- (account, region). Absent values are ''. Retention drops the principals
-- and events no row names any more.
CREATE TABLE activity_principals (
    id         INTEGER PRIMARY KEY,
    arn        TEXT NOT NULL,
    name       TEXT NOT NULL,
    access_key TEXT NOT NULL,
    UNIQUE (arn, name, access_key)
);
CREATE INDEX activity_principals_by_name ON activity_principals (name);
CREATE INDEX activity_principals_by_key ON activity_principals (access_key);
CREATE TABLE activity_events (
    id     INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    name   TEXT NOT NULL,
    UNIQUE (source, name)
);
CREATE TABLE activity_places (
    id      INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    UNIQUE (account, region)
);
CREATE TABLE activity (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,      -- the event's time (Unix seconds)
    event_id   TEXT,
    principal  INTEGER,               -- activity_principals.id
    event      INTEGER,               -- activity_events.id
    user_agent TEXT,
    place      INTEGER,               -- activity_places.id
    target     TEXT,
    source_ip  TEXT,
    error_code TEXT,
    object     INTEGER                -- activity_objects.id
);
CREATE INDEX activity_at ON activity (at);
CREATE INDEX activity_by_principal ON activity (principal, at);
CREATE INDEX activity_by_event ON activity (event, at);
CREATE INDEX activity_by_ip ON activity (source_ip, at);
CREATE INDEX activity_by_target ON activity (target, at);
CREATE INDEX activity_by_object ON activity (object);
";

/// Version 5: alerts by rule carry their level in the index, so a lookup
/// by rule and level passes over the rule's other alerts without reading
/// them (the console's p95 at 10 M alerts: 217 ms before, see BENCHMARKS).
const V5: &str = "
DROP INDEX IF EXISTS alerts_by_rule;
CREATE INDEX alerts_by_rule ON alerts (rule_id, at, level);
";

/// Version 6: alerts another instance raised, pulled from the shared
/// alerts table (`[state] backend = "dynamodb"`) for lookups, carry that
/// instance's id; the outbox (what this instance's sinks send) skips them.
const V6: &str = "ALTER TABLE alerts ADD COLUMN shared_from TEXT;";

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
    if version < 4 {
        tx.execute_batch(V4)?;
        super::index::backfill(&tx)?;
        tx.execute_batch("PRAGMA user_version = 4")?;
    }
    if version < 5 {
        tx.execute_batch(V5)?;
        tx.execute_batch("PRAGMA user_version = 5")?;
    }
    if version < 6 {
        tx.execute_batch(V6)?;
        tx.execute_batch("PRAGMA user_version = 6")?;
    }
    tx.commit()
}

/// Retention gives freed pages back with incremental vacuum, which a file
/// takes when it is created; a file made before (schema 3 or older) is
/// vacuumed once to take it.
pub fn take_incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode != 2 {
        tracing::info!("state store: switching to incremental vacuum (once; rewrites the file)");
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
    }
    Ok(())
}

/// A state file as schema 3 left it (no lookup columns, no incremental
/// vacuum), holding one alert: what an upgrade starts from.
#[cfg(test)]
pub(super) fn write_version_3_file(
    path: &std::path::Path,
    d: &crate::alert::Detected,
) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch(V1)?;
    conn.execute_batch(V2)?;
    conn.execute_batch(V3)?;
    conn.execute_batch("PRAGMA user_version = 3")?;
    let json = serde_json::to_string(&d.alert).unwrap_or_default();
    let context = serde_json::to_string(&d.context).unwrap_or_default();
    conn.execute(
        "INSERT INTO alerts (id, json, context, created_at) VALUES (?1, ?2, ?3, 0)",
        rusqlite::params![d.alert.id, json, context],
    )?;
    Ok(())
}
