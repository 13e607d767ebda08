//! The shared state (`[state] backend = "dynamodb"`) at start-up: its
//! client and this instance's id, and `trailwatch state init`, which
//! creates its tables.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::aws::AwsClients;
use crate::config::Config;
use crate::state::StateStore;
use crate::state::dynamodb::SharedState;

use super::{EXIT_FAILED, EXIT_USAGE};

/// The shared state for `config`, if it asks for one, as the instance whose
/// id `state` keeps.
pub async fn shared_state(
    config: &Config,
    clients: &AwsClients,
    state: &StateStore,
) -> Result<Option<Arc<SharedState>>, String> {
    let Some(shared) = &config.shared_state else {
        return Ok(None);
    };
    let instance = state.instance_id().map_err(|e| e.to_string())?;
    let client = clients.dynamodb(config.aws.dynamodb_endpoint_url.as_deref());
    Ok(Some(Arc::new(SharedState::new(client, shared, &instance))))
}

/// `trailwatch state init --config F`: creates the shared tables (those
/// missing) and says what it found; exit 2 when the config has none.
pub fn state_init(path: &Path) -> ExitCode {
    let config = match super::load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    super::init_logging(&config.log);
    let Some(shared) = &config.shared_state else {
        eprintln!(
            "config error: state.backend: \"sqlite\" keeps everything in {}; nothing to create \
             (set backend = \"dynamodb\")",
            config.state_path.display()
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let runtime = match super::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let clients = AwsClients::new(&config.aws).await;
        let client = clients.dynamodb(config.aws.dynamodb_endpoint_url.as_deref());
        match SharedState::new(client, shared, "init").init().await {
            Ok(tables) => {
                for t in tables {
                    println!("{t}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_FAILED)
            }
        }
    })
}
