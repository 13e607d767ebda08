//! Lookups written out: a table for people (control characters shown as
//! escapes, so a hostile field cannot drive the terminal), JSON lines (the
//! alert contract; an activity row per line), CSV, and OCSF Detection
//! Findings for alerts.

use std::io::{self, Write};

use jiff::tz::TimeZone;
use serde_json::json;

use super::csv;
use super::zone;
use crate::alert::ocsf::detection_finding;
use crate::state::{ActivityRow, AlertKeys, StoredAlert};

/// How a lookup is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    /// One JSON object per line.
    Json,
    Csv,
    /// OCSF 1.1.0 Detection Findings (class 2004), one per line (alerts only).
    Ocsf,
}

/// The widest a table column gets; longer values are cut with `…`.
const TABLE_CELL_MAX: usize = 48;

const ALERT_COLUMNS: [&str; 21] = [
    "time",
    "level",
    "rule_id",
    "rule_title",
    "principal",
    "principal_name",
    "access_key",
    "event_name",
    "event_source",
    "target",
    "source_ip",
    "user_agent",
    "error_code",
    "account",
    "account_name",
    "account_ou_path",
    "region",
    "count",
    "bucket",
    "key",
    "alert_id",
];

const ACTIVITY_COLUMNS: [&str; 15] = [
    "time",
    "principal",
    "principal_name",
    "access_key",
    "event_name",
    "event_source",
    "target",
    "source_ip",
    "user_agent",
    "error_code",
    "account",
    "region",
    "event_id",
    "bucket",
    "key",
];

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn alert_cells(a: &StoredAlert, time: String) -> Vec<String> {
    let keys = AlertKeys::of(&a.alert, &a.context);
    let e = &a.alert.event;
    let object = a.alert.object.as_ref();
    vec![
        time,
        a.alert.rule.severity.clone(),
        a.alert.rule.id.clone(),
        a.alert.rule.title.clone(),
        text(&e.principal),
        text(&keys.principal_name),
        text(&keys.access_key),
        text(&e.name),
        text(&e.source),
        text(&keys.target),
        text(&e.source_ip),
        text(&e.user_agent),
        text(&e.error_code),
        text(&e.account_id),
        text(&e.account_name),
        text(&e.account_ou_path),
        text(&e.region),
        a.alert.count.to_string(),
        object.map(|o| o.bucket.clone()).unwrap_or_default(),
        object.map(|o| o.key.clone()).unwrap_or_default(),
        a.alert.id.clone(),
    ]
}

fn activity_cells(r: &ActivityRow, time: String) -> Vec<String> {
    let a = &r.activity;
    vec![
        time,
        text(&a.principal),
        text(&a.principal_name),
        text(&a.access_key),
        text(&a.event_name),
        text(&a.event_source),
        text(&a.target),
        text(&a.source_ip),
        text(&a.user_agent),
        text(&a.error_code),
        text(&a.account),
        text(&a.region),
        text(&a.event_id),
        text(&r.bucket),
        text(&r.key),
    ]
}

/// Writes alerts in `format`, times in `tz`.
pub fn write_alerts<W: Write + ?Sized>(
    out: &mut W,
    rows: &[StoredAlert],
    format: Format,
    tz: &TimeZone,
) -> io::Result<()> {
    match format {
        Format::Json => {
            for a in rows {
                serde_json::to_writer(&mut *out, &a.alert)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        Format::Ocsf => {
            for a in rows {
                serde_json::to_writer(&mut *out, &detection_finding(&a.alert, &a.context))?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        Format::Csv => {
            csv::row(out, &ALERT_COLUMNS)?;
            for a in rows {
                csv::row(out, &alert_cells(a, zone::rfc3339(a.at, tz)))?;
            }
            Ok(())
        }
        Format::Table => {
            // time, level, rule, principal, event, target, source ip,
            // account and its name, id
            let pick = [0usize, 1, 2, 4, 7, 9, 10, 13, 14, 19];
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|a| alert_cells(a, zone::show(a.at, tz)))
                .map(|c| pick.iter().map(|&i| c[i].clone()).collect())
                .collect();
            let head: Vec<&str> = pick.iter().map(|&i| ALERT_COLUMNS[i]).collect();
            table(out, &head, &cells)
        }
    }
}

/// Writes activity rows in `format` (OCSF is for alerts), times in `tz`.
pub fn write_activity<W: Write + ?Sized>(
    out: &mut W,
    rows: &[ActivityRow],
    format: Format,
    tz: &TimeZone,
) -> io::Result<()> {
    match format {
        Format::Json | Format::Ocsf => {
            for r in rows {
                let cells = activity_cells(r, zone::rfc3339(r.activity.at, tz));
                let object: serde_json::Map<String, serde_json::Value> = ACTIVITY_COLUMNS
                    .iter()
                    .zip(cells)
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect();
                serde_json::to_writer(&mut *out, &object)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        Format::Csv => {
            csv::row(out, &ACTIVITY_COLUMNS)?;
            for r in rows {
                csv::row(out, &activity_cells(r, zone::rfc3339(r.activity.at, tz)))?;
            }
            Ok(())
        }
        Format::Table => {
            // time, principal, event, source, target, source ip, error, user agent
            let pick = [0usize, 1, 4, 5, 6, 7, 9, 8];
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| activity_cells(r, zone::show(r.activity.at, tz)))
                .map(|c| pick.iter().map(|&i| c[i].clone()).collect())
                .collect();
            let head: Vec<&str> = pick.iter().map(|&i| ACTIVITY_COLUMNS[i]).collect();
            table(out, &head, &cells)
        }
    }
}

/// A value as a table shows it: control characters escaped, cut to width.
pub fn printable(value: &str) -> String {
    let mut shown = String::new();
    for c in value.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    match shown.char_indices().nth(TABLE_CELL_MAX) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    }
}

fn table<W: Write + ?Sized>(out: &mut W, head: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c)).collect())
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(
        out,
        "{}",
        line(head.iter().map(|h| h.to_uppercase()).collect())
    )?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_value_cannot_drive_the_terminal() {
        assert_eq!(printable("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(printable("x\ny"), "x\\ny");
        assert_eq!(
            printable(&"é".repeat(100)).chars().count(),
            TABLE_CELL_MAX + 1
        );
    }
}
