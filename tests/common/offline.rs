//! A crawler whose AWS endpoint is a closed port, for tests that hand it
//! mocked clients: its state in `dir`, no rules, the config's `[discovery]`
//! and roles as `extra` gives them.

use std::sync::Arc;

use trailwatch::aws::AwsClients;
use trailwatch::config::Config;
use trailwatch::pipeline::Crawler;
use trailwatch::state::StateStore;

pub async fn crawler(dir: &std::path::Path, extra: &str) -> Crawler {
    let config = Config::from_toml(
        &format!(
            "[state]\npath = \"{}\"\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n{extra}",
            dir.join("state.db").display()
        ),
        dir,
    )
    .expect("config");
    let clients = AwsClients::new(&config.aws).await;
    Crawler::new(
        Arc::new(clients),
        Arc::new(StateStore::open(&config.state_path).expect("state")),
        Arc::new(trailwatch::rules::RuleSet::new(Vec::new()).0),
        Arc::new(config),
    )
}
