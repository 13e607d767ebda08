//! `trailwatch console`: the console on its own over a state store, until
//! SIGTERM or Ctrl-C; and its settings when the config has no `[console]`.

use std::sync::Arc;
use std::time::Duration;

use super::{Console, RuleRow, router, serve};
use crate::config::{ConsoleConfig, DEFAULT_CONSOLE_LISTEN};
use crate::state::StateStore;

/// `[console]` as written, else loopback with no authentication.
pub fn settings_or_default(config: Option<&ConsoleConfig>) -> ConsoleConfig {
    config.cloned().unwrap_or_else(|| ConsoleConfig {
        listen: DEFAULT_CONSOLE_LISTEN
            .parse()
            .unwrap_or(([127, 0, 0, 1], 9878).into()),
        credentials_file: None,
        trusted_header: None,
        session_ttl: Duration::from_secs(12 * 3600),
        time_zone: None,
    })
}

/// Serves the console over `state` until stopped. An error says what could
/// not start (the credential file, the address).
pub async fn serve_alone(
    settings: &ConsoleConfig,
    state: Arc<StateStore>,
    rules: Vec<RuleRow>,
) -> Result<(), String> {
    let console = Console::new(state, settings, Box::new(move || rules.clone()))?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("console.listen {}: {e}", settings.listen))?;
    eprintln!("console on http://{}", settings.listen);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop_tx.send(true);
    });
    serve(listener, router(Arc::new(console)), stop_rx).await;
    Ok(())
}

/// Waits for SIGTERM or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
