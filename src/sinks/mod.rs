//! Where alerts go. For now the output formats shared by `scan` and the
//! stdout/file sinks; the delivering sinks (Datadog, webhook) build on them.

pub mod table;

use std::io::{self, Write};

use crate::alert::Alert;

/// Writes one alert as a JSON line.
pub fn write_jsonl(out: &mut impl Write, alert: &Alert) -> io::Result<()> {
    serde_json::to_writer(&mut *out, alert)?;
    out.write_all(b"\n")
}
