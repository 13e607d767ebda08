//! `trailwatch once --config F`: one crawl pass, then deliver what is pending.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::EXIT_FAILED;
use crate::aws::AwsClients;
use crate::pipeline::Crawler;
use crate::sinks::deliver::{Policy, deliver_all};

pub fn run(path: &Path) -> ExitCode {
    let crate::app::Started {
        config,
        state,
        runtime,
    } = match crate::app::start(path, true) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let (rules, failure) = crate::app::load_rules_for(&config, &state);
    if let Some(e) = failure {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    let outcome = runtime.block_on(async {
        let clients = Arc::new(AwsClients::new(&config.aws).await);
        let crawler = Crawler::new(clients, Arc::clone(&state), rules, Arc::clone(&config));
        let report = crawler.pass().await.map_err(|e| e.to_string())?;
        // The end of this run's input closes every burst (DESIGN.md).
        crawler
            .close_bursts(true)
            .await
            .map_err(|e| e.to_string())?;
        let delivered = deliver_all(&state, &config.sinks, &Policy::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((report, delivered))
    });
    let (report, drained) = match outcome {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };

    if let Some((sink, pending, bound)) = &report.paused_by {
        eprintln!("crawl paused: sink {sink} has {pending} alerts waiting (max_backlog {bound})");
    }
    for (where_, why) in &report.discovery_errors {
        eprintln!("discovery: {where_}: {why}");
    }
    for t in report.trails.iter().filter(|t| !t.logging) {
        eprintln!("trail {} is not logging: skipped", t.name);
    }
    for t in &report.targets {
        eprintln!("{t}");
        for e in &t.errors {
            eprintln!("  error: {e}");
        }
    }
    for d in &drained {
        eprintln!("{d}");
    }
    let totals = report.totals();
    eprintln!(
        "once: {} trails, {} targets ({} reachable), {} objects processed ({} failed, {} left for later), {} records, {} new alerts, {} trail alerts",
        report.trails.len(),
        report.targets.len(),
        report.reachable_targets(),
        totals.processed,
        totals.failed,
        totals.retry_later,
        totals.records,
        totals.new_alerts,
        report.trail_alerts
    );
    let nothing_found = report.trails.is_empty() && !report.discovery_errors.is_empty();
    let nothing_reached = !report.targets.is_empty() && report.reachable_targets() == 0;
    if nothing_found || nothing_reached {
        eprintln!("error: no trail or bucket could be reached");
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::SUCCESS
}
