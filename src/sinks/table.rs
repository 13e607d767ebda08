//! A readable table of alerts for people at a terminal.

use std::io::{self, Write};

use crate::alert::Alert;

const COLUMNS: [(&str, usize); 7] = [
    ("EVENT TIME", 20),
    ("LEVEL", 8),
    ("RULE", 40),
    ("EVENT", 28),
    ("PRINCIPAL", 48),
    ("ACCOUNT", 12),
    ("SOURCE IP", 15),
];

pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    let cells: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    write_row(out, &cells)
}

pub fn write_alert(out: &mut impl Write, alert: &Alert) -> io::Result<()> {
    let e = &alert.event;
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let cells = [
        dash(&e.time),
        alert.rule.severity.clone(),
        alert.rule.id.clone(),
        dash(&e.name),
        dash(&e.principal),
        dash(&e.account_id),
        dash(&e.source_ip),
    ];
    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
    write_row(out, &cells)
}

fn write_row(out: &mut impl Write, cells: &[&str]) -> io::Result<()> {
    let mut line = String::new();
    for (i, (cell, (_, width))) in cells.iter().zip(COLUMNS).enumerate() {
        let last = i + 1 == COLUMNS.len();
        line.push_str(&fit(cell, width, last));
        if !last {
            line.push_str("  ");
        }
    }
    writeln!(out, "{}", line.trim_end())
}

/// Pads or shortens `text` to `width` characters; a shortened cell ends in `…`.
fn fit(text: &str, width: usize, last: bool) -> String {
    let count = text.chars().count();
    if count <= width {
        if last {
            text.to_owned()
        } else {
            format!("{text:<width$}")
        }
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_padded_or_shortened() {
        assert_eq!(fit("abc", 5, false), "abc  ");
        assert_eq!(fit("abcdef", 5, false), "abcd…");
        assert_eq!(fit("abc", 5, true), "abc");
    }
}
