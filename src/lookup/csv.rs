//! CSV per RFC 4180 (CRLF line ends, fields quoted when they hold a comma,
//! a quote or a line break, quotes doubled), safe to open in a spreadsheet:
//! CloudTrail's fields are attacker-controlled, so a cell that starts with
//! `=`, `+`, `-`, `@`, a tab or a carriage return is neutralised with a
//! leading `'` (OWASP's advice against formula injection).

use std::io::{self, Write};

/// One cell as it is written.
pub fn cell(value: &str) -> String {
    let neutral = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// Writes one row.
pub fn row<W: Write + ?Sized, S: AsRef<str>>(out: &mut W, cells: &[S]) -> io::Result<()> {
    let line: Vec<String> = cells.iter().map(|c| cell(c.as_ref())).collect();
    out.write_all(line.join(",").as_bytes())?;
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_specials_quoted() {
        assert_eq!(
            cell("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("plain"), "plain");
        let mut out = Vec::new();
        row(&mut out, &["a", "b\"c"]).expect("row");
        assert_eq!(out, b"a,\"b\"\"c\"\r\n");
    }
}
