//! `trailwatch alerts` and `trailwatch activity`: the store's alerts and
//! activity index, filtered, newest first, a page at a time.

use std::io::Write;
use std::process::ExitCode;

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::lookup::{AlertArgs, Format, LookupArgs, Query, output, zone};
use crate::state::{Filter, Page, StateStore};

pub fn alerts(args: &AlertArgs) -> ExitCode {
    lookup(&args.lookup, args.query(), |state, filter, tz, out| {
        let rows = state.lookup_alerts(filter).map_err(|e| e.to_string())?;
        output::write_alerts(out, &rows, args.lookup.format, tz).map_err(|e| e.to_string())?;
        let last = rows.last().map(|a| Page {
            at: a.at,
            row: a.seq,
        });
        Ok((rows.len(), last))
    })
}

pub fn activity(args: &LookupArgs) -> ExitCode {
    if args.format == Format::Ocsf {
        eprintln!(
            "error: --format ocsf: OCSF findings are for alerts; use json or csv for activity"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    lookup(args, args.query(), |state, filter, tz, out| {
        let rows = state.lookup_activity(filter).map_err(|e| e.to_string())?;
        output::write_activity(out, &rows, args.format, tz).map_err(|e| e.to_string())?;
        let last = rows.last().map(|r| Page {
            at: r.activity.at,
            row: r.id,
        });
        Ok((rows.len(), last))
    })
}

fn lookup(
    args: &LookupArgs,
    query: Query,
    rows: impl FnOnce(
        &StateStore,
        &Filter,
        &jiff::tz::TimeZone,
        &mut dyn Write,
    ) -> Result<(usize, Option<Page>), String>,
) -> ExitCode {
    let usage = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    };
    let filter = match query.filter(time::OffsetDateTime::now_utc()) {
        Ok(f) => f,
        Err(e) => return usage(e.to_string()),
    };
    let tz = match zone::zone(args.tz.as_deref()) {
        Ok(tz) => tz,
        Err(e) => return usage(format!("--tz {e}")),
    };
    let state = match crate::app::lookup_store(args.config.as_deref(), args.store.as_deref()) {
        Ok(state) => state,
        Err(code) => return code,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match rows(&state, &filter, &tz, &mut out) {
        Ok((n, last)) => {
            let _ = out.flush();
            if let Some(page) = last.filter(|_| n == filter.limit) {
                eprintln!("more: --before {}", page.token());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
