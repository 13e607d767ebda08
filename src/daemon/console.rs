//! The console in the daemon (`[console] listen`): bound at start, its
//! credential file read then (an error names the file and line).

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::ConsoleConfig;
use crate::console::{Console, RuleRow, router, serve};
use crate::rules::RuleSet;
use crate::state::StateStore;

/// Binds the console and serves it until `stop`.
pub async fn start(
    config: &ConsoleConfig,
    state: &Arc<StateStore>,
    rules: &Arc<RuleSet>,
    instance_only: bool,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let rows = RuleRow::of(rules);
    let mut console = Console::new(Arc::clone(state), config, Box::new(move || rows.clone()))?;
    console.instance_only = instance_only;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("console.listen {}: {e}", config.listen))?;
    tracing::info!(listen = %config.listen, "console up");
    Ok(tokio::spawn(serve(
        listener,
        router(Arc::new(console)),
        stop,
    )))
}
