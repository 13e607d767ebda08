//! `trailwatch trails --config F`: each trail, its status, bucket, bucket
//! region, prefixes (cursors), lag and last error.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::aws::AwsClients;
use crate::pipeline::{Crawler, TargetReport, targets};

pub fn run(path: &Path) -> ExitCode {
    let crate::app::Started {
        config,
        state,
        runtime,
    } = match crate::app::start(path, false) {
        Ok(started) => started,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let crawler = Crawler::new(
            Arc::new(AwsClients::new(&config.aws).await),
            Arc::clone(&state),
            Arc::new(crate::rules::RuleSet::new(Vec::new()).0),
            Arc::clone(&config),
        );
        let (trails, errors) = crawler.discover_trails().await;
        for (where_, why) in &errors {
            eprintln!("discovery: {where_}: {why}");
        }
        let planned = targets(&trails);
        println!(
            "{:<24} {:<8} {:<28} {:<15} {:<40} {:>8}  LAST ERROR",
            "TRAIL", "LOGGING", "BUCKET", "REGION", "PREFIXES", "LAG"
        );
        for trail in &trails {
            let target = planned
                .iter()
                .find(|t| t.bucket == trail.bucket && t.prefix == trail.prefix);
            let (region, prefixes, mut error) = match target {
                Some(t) => match crawler.plan(t).await {
                    Ok((region, cursors)) => {
                        let p: Vec<String> = cursors
                            .iter()
                            .map(|c| format!("{}{}/{}", c.prefix, c.account, c.region))
                            .collect();
                        (region, p.join(","), None)
                    }
                    Err(e) => ("?".into(), String::new(), Some(e)),
                },
                None => ("-".into(), String::new(), None),
            };
            let last: Option<TargetReport> = target
                .and_then(|t| state.target_status(&t.id()).ok().flatten())
                .and_then(|v| serde_json::from_value(v).ok());
            let lag = last
                .as_ref()
                .and_then(|r| r.lag_seconds)
                .map(|s| format!("{s}s"))
                .unwrap_or_else(|| "-".into());
            if error.is_none() {
                error = trail
                    .latest_delivery_error
                    .clone()
                    .or_else(|| last.as_ref().and_then(|r| r.errors.first().cloned()));
            }
            println!(
                "{:<24} {:<8} {:<28} {:<15} {:<40} {:>8}  {}",
                trail.name,
                if trail.logging { "yes" } else { "no" },
                trail.bucket,
                region,
                if prefixes.is_empty() {
                    "-".into()
                } else {
                    prefixes
                },
                lag,
                error.unwrap_or_else(|| "-".into())
            );
        }
    });
    ExitCode::SUCCESS
}
