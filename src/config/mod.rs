//! Configuration: one TOML file, parsed into `raw` structs that refuse unknown
//! fields, then validated into `Config`. Every error names its field path.
//! A leaf: every stage reads it, and it reads only the alert contract's
//! severity scale (each sink checks its own settings further: `sinks::check`).

pub mod network;
mod raw;
mod roles;
mod secret;
mod sink_settings;
mod source;
mod units;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use roles::{
    BlindSpotConfig, DiscoveryAccount, OrganizationConfig, Reader, RoleConfig, glob_match,
};
pub use secret::Secret;
pub use units::{parse_duration, parse_size, parse_when};

use crate::alert::Severity;

/// Objects are refused past this many decompressed bytes (2 GiB) unless the
/// config says otherwise.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// One allowlist entry: when every condition holds, the listed rules stay quiet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// Rule ids; `*` for every rule.
    pub rules: Vec<String>,
    /// (dotted field path, accepted values); a value may use `*` wildcards.
    /// Every field must match one of its values.
    pub conditions: Vec<(String, Vec<String>)>,
    /// Why this is allowed (shown by `validate`, kept for the next reader).
    pub reason: Option<String>,
}

/// A configuration error: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ConfigError {
    /// e.g. `sinks[1].api_key_file`; the file's path when the file itself fails.
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite state file.
    pub state_path: PathBuf,
    pub aws: AwsConfig,
    pub discovery: DiscoveryConfig,
    /// Trails declared in the file, crawled besides the discovered ones.
    pub trails: Vec<StaticTrail>,
    pub crawl: CrawlConfig,
    pub rules: RulesConfig,
    pub sinks: Vec<SinkConfig>,
    /// No `[server]`: no HTTP endpoint.
    pub server: Option<ServerConfig>,
    pub log: LogConfig,
    pub store: StoreConfig,
    /// No `[console]`: no console in the daemon.
    pub console: Option<ConsoleConfig>,
    pub source: SourceConfig,
    /// `[state] backend = "dynamodb"`: what instances share.
    pub shared_state: Option<SharedStateConfig>,
    /// `[[accounts]]`: account id -> name, put on alerts as
    /// `event.account_name`.
    pub accounts: BTreeMap<String, String>,
    /// `[[accounts]]`' `buckets`: (bucket glob, owning account).
    pub bucket_owners: Vec<(String, String)>,
    /// `[[readers]]`: which role reads which buckets.
    pub readers: Vec<Reader>,
    pub blind_spots: BlindSpotConfig,
}

/// `[state] backend = "dynamodb"`: the state several instances share lives
/// in DynamoDB tables (`trailwatch state init` creates them); the SQLite
/// file at `state.path` keeps what is each instance's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStateConfig {
    /// Tables `<prefix>-objects` and `<prefix>-deliveries`.
    pub table_prefix: String,
    /// How long an instance's claim on delivering an alert holds before
    /// another instance holding the same alert may take it over.
    pub claim_timeout: Duration,
}

/// `[source]`: how the daemon learns of new objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    /// List every cursor every poll interval (the default).
    Poll,
    /// Read S3 notifications from an SQS queue; polling reconciles.
    Sqs(SqsSource),
}

/// `[source] mode = "sqs"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsSource {
    pub queue_url: String,
    /// Long polling: how long one receive waits for messages (≤ 20 s).
    pub wait_time: Duration,
    /// The visibility timeout a received message gets, extended while its
    /// objects are read: the lease.
    pub lease: Duration,
    /// The most messages received at once (≤ 10; fewer while objects are slow).
    pub max_messages: usize,
    /// How often the poller lists every cursor for objects whose
    /// notification never came.
    pub reconcile_interval: Duration,
}

/// `[console]`: the read-only web console, for administrators only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub listen: SocketAddr,
    /// Users (argon2 hashes) and tokens (SHA-256), one a line.
    pub credentials_file: Option<PathBuf>,
    /// A header an authenticating proxy sets to the user (oauth2-proxy's
    /// `X-Forwarded-User`); requests without it are refused.
    pub trusted_header: Option<String>,
    pub session_ttl: Duration,
    /// Times shown in this zone (default: the machine's).
    pub time_zone: Option<String>,
}

/// Where the console listens unless told.
pub const DEFAULT_CONSOLE_LISTEN: &str = "127.0.0.1:9878";

/// `[store]`: how long alerts and activity are kept for lookups, and
/// whether every record read goes to the activity index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Alerts (default 90 days).
    pub retention: Duration,
    /// The activity index (on by default).
    pub activity: bool,
    /// Activity (default 7 days).
    pub activity_retention: Duration,
}

/// `[aws]`: read as it is written (every field optional), then checked.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Home region for the CloudTrail API; the SDK's default chain when unset.
    pub region: Option<String>,
    pub profile: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// Endpoint for every service (LocalStack).
    pub endpoint_url: Option<String>,
    /// Endpoint for CloudTrail only (moto); wins over `endpoint_url`.
    pub cloudtrail_endpoint_url: Option<String>,
    /// Endpoint for DynamoDB only (moto, for the shared state); wins over
    /// `endpoint_url`.
    pub dynamodb_endpoint_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Whether to call `DescribeTrails` at all (off for emulators without it).
    pub enabled: bool,
    pub regions: Vec<String>,
    pub refresh_interval: Duration,
    /// Only the discovered trails with these names or ARNs (empty: all).
    pub only: Vec<String>,
    /// `[[discovery.accounts]]`: each account's trails described through
    /// its own role; empty: through the daemon's own identity.
    pub accounts: Vec<DiscoveryAccount>,
    pub organization: Option<OrganizationConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticTrail {
    pub name: String,
    pub bucket: String,
    /// The trail's `S3KeyPrefix`, without slashes at either end.
    pub prefix: Option<String>,
    /// The bucket's region when known; found with `HeadBucket` otherwise.
    pub region: Option<String>,
    /// The role that reads it (`role_arn`, `external_id`).
    pub role: Option<RoleConfig>,
}

/// Where crawling starts on first run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// This long before now.
    Ago(Duration),
    /// An RFC 3339 instant, as written.
    At(String),
}

#[derive(Debug, Clone)]
pub struct CrawlConfig {
    pub poll_interval: Duration,
    pub start_from: StartFrom,
    pub lookback: Duration,
    pub concurrency: usize,
    pub max_decompressed_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct RulesConfig {
    pub builtin: bool,
    pub paths: Vec<PathBuf>,
    /// Matches these entries allow are not alerts.
    pub allow: Vec<Allow>,
    /// Grouping of single-record alerts (`[rules.grouping]`, on by
    /// default); None when it is switched off.
    pub suppression: Option<Suppression>,
    /// What the config asks that is deprecated, for the caller to log.
    pub deprecations: Vec<String>,
}

/// Repeats of one rule for one principal are one burst: the first alert goes
/// out at once, later ones inside the window (which slides with each
/// repeat) only raise its count, and one summary follows when it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub window: Duration,
    /// Rule ids it applies to; empty: every rule.
    pub rules: Vec<String>,
    /// Rule ids it never applies to.
    pub exclude: Vec<String>,
}

/// The grouping window when the config names none.
pub const DEFAULT_GROUPING_WINDOW: Duration = Duration::from_secs(3600);

/// Which alerts a sink receives. Several values of one field: any of them;
/// several fields: all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub min_level: Option<Severity>,
    pub rule_ids: Vec<String>,
    pub rule_tags: Vec<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// When the file sink calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every batch of alerts written.
    Always,
    /// At most once a second.
    Interval,
    /// Never; the OS decides.
    Never,
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    File {
        path: PathBuf,
        fsync: Fsync,
    },
    Stdout,
    Datadog {
        url: String,
        api_key: Secret,
        tags: Vec<String>,
    },
    Webhook {
        url: String,
        method: String,
        headers: BTreeMap<String, Secret>,
        body_template: Option<String>,
        signing_secret: Option<Secret>,
    },
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Unique; `<type>` or `<type>-<n>` unless named.
    pub name: String,
    pub kind: SinkKind,
    pub route: Route,
    pub rate_limit: Option<RateLimit>,
    pub max_backlog: u64,
    pub timeout: Duration,
    /// Datadog and webhook sinks: a PEM file of certificate authorities
    /// trusted besides the system's (a TLS-inspecting gateway's, a private
    /// endpoint's).
    pub ca_file: Option<PathBuf>,
    /// What a file, stdout or webhook sink writes for an alert.
    pub format: AlertFormat,
}

/// What a sink writes for an alert: the alert contract (DESIGN.md), or an
/// OCSF Detection Finding (class 2004).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AlertFormat {
    #[default]
    Contract,
    Ocsf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `trailwatch=debug`.
    pub level: String,
}

/// The seven Datadog sites.
pub const DATADOG_SITES: [&str; 7] = [
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "ddog-gov.com",
];

impl Config {
    /// Reads and validates a config file. Relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml(&text, base)
    }

    /// Parses and validates config text; relative paths resolve against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw = validate::parse(text)?;
        validate::validate(raw, base)
    }
}

#[cfg(test)]
mod tests;
