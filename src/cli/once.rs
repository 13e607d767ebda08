//! `trailwatch once --config F`: one crawl pass, then deliver what is pending.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::EXIT_FAILED;
use crate::aws::AwsClients;
use crate::crawl::Crawler;
use crate::sinks::deliver::{Policy, deliver_all};

pub fn run(path: &Path) -> ExitCode {
    let config = match super::load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    super::logging::init(&config.log);
    let state = match super::open_state(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let (rules, failure) = super::load_rules_for(&config, &state);
    if let Some(e) = failure {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    let runtime = match super::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let config = Arc::new(config);
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
    let mut totals = (0, 0, 0, 0, 0);
    for t in &report.targets {
        eprintln!(
            "s3://{}/{}: region {}, {} cursors, {} listed, {} processed ({} failed), {} left for later, {} records, {} new alerts",
            t.bucket,
            t.prefix.as_deref().unwrap_or(""),
            t.region.as_deref().unwrap_or("?"),
            t.cursors.len(),
            t.listed,
            t.processed,
            t.failed,
            t.retry_later,
            t.records,
            t.new_alerts
        );
        for e in &t.errors {
            eprintln!("  error: {e}");
        }
        totals.0 += t.processed;
        totals.1 += t.failed;
        totals.2 += t.records;
        totals.3 += t.new_alerts;
        totals.4 += t.retry_later;
    }
    for d in &drained {
        eprintln!(
            "sink {}: {} delivered, {} dead letters, {} retries, {} pending{}",
            d.sink,
            d.delivered,
            d.dead_letters,
            d.retries,
            d.pending,
            d.failing
                .as_deref()
                .map(|e| format!(" (failing: {e})"))
                .unwrap_or_default()
        );
    }
    eprintln!(
        "once: {} trails, {} targets ({} reachable), {} objects processed ({} failed, {} left for later), {} records, {} new alerts, {} trail alerts",
        report.trails.len(),
        report.targets.len(),
        report.reachable_targets(),
        totals.0,
        totals.1,
        totals.4,
        totals.2,
        totals.3,
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
