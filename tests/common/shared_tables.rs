//! The shared state's tables on moto's DynamoDB, for the tests of
//! `[state] backend = "dynamodb"`: a client, and a fresh set of tables.

use std::time::Duration;

use trailwatch::config::SharedStateConfig;
use trailwatch::state::dynamodb::SharedState;

/// A DynamoDB client for moto.
pub fn client() -> aws_sdk_dynamodb::Client {
    let creds = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests");
    let conf = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(super::emulators::MOTO)
        .credentials_provider(creds)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// Tables of their own for one test (`<name>-<pid>-...`), created.
pub async fn fresh(name: &str, claim_timeout: Duration) -> SharedStateConfig {
    let config = SharedStateConfig {
        table_prefix: format!("{name}-{}", std::process::id()),
        claim_timeout,
    };
    SharedState::new(client(), &config, "init")
        .init()
        .await
        .expect("tables");
    config
}
