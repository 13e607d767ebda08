//! `trailwatch trails --config F`: each trail, its status, bucket, bucket
//! region, prefixes (cursors), lag, last error (SQS mode: how it is notified).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::aws::AwsClients;
use crate::pipeline::Crawler;

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
        let (rows, errors) = crawler.trail_rows().await;
        for (where_, why) in &errors {
            eprintln!("discovery: {where_}: {why}");
        }
        println!(
            "{:<24} {:<8} {:<28} {:<15} {:<40} {:>8}  LAST ERROR",
            "TRAIL", "LOGGING", "BUCKET", "REGION", "PREFIXES", "LAG"
        );
        for row in rows {
            let or_dash = |s: String| if s.is_empty() { "-".to_owned() } else { s };
            println!(
                "{:<24} {:<8} {:<28} {:<15} {:<40} {:>8}  {}",
                row.name,
                if row.logging { "yes" } else { "no" },
                row.bucket,
                row.region,
                or_dash(row.prefixes.join(",")),
                row.lag_seconds.map_or("-".into(), |s| format!("{s}s")),
                row.last_error.as_deref().unwrap_or("-")
            );
            println!("{:<24} {}", "", row.roles_line());
            if let Some(path) = &row.notification {
                println!("{:<24} notified by: {path}", "");
            }
        }
    });
    ExitCode::SUCCESS
}
