//! Where alerts go: output formats, the file and stdout sinks, routes, and
//! draining the outbox. The delivering sinks (Datadog, webhook) build on them.

pub mod datadog;
pub mod deliver;
pub mod file;
pub mod http;
pub mod outbox;
pub mod route;
pub mod table;
pub mod webhook;

use std::io::{self, Write};

use crate::alert::Alert;

/// Writes one alert as a JSON line.
pub fn write_jsonl(out: &mut impl Write, alert: &Alert) -> io::Result<()> {
    serde_json::to_writer(&mut *out, alert)?;
    out.write_all(b"\n")
}
