//! The TOML file as written: serde structs that refuse unknown fields. Values
//! stay as text here; `validate` turns them into the typed `Config`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub aws: RawAws,
    #[serde(default)]
    pub discovery: RawDiscovery,
    #[serde(default)]
    pub trails: Vec<RawTrail>,
    #[serde(default)]
    pub crawl: RawCrawl,
    #[serde(default)]
    pub rules: RawRules,
    #[serde(default)]
    pub sinks: Vec<RawSink>,
    pub server: Option<RawServer>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub store: RawStore,
    pub console: Option<RawConsole>,
    #[serde(default)]
    pub source: RawSource,
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    #[serde(default)]
    pub readers: Vec<RawReader>,
    #[serde(default)]
    pub blind_spots: RawBlindSpots,
}

/// `[[readers]]`: the role that reads some buckets (and decrypts their
/// objects' KMS keys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReader {
    pub role_arn: String,
    pub external_id: Option<String>,
    #[serde(default)]
    pub buckets: Vec<String>,
    pub account: Option<String>,
}

/// `[blind_spots]`: when silence is a blind spot.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlindSpots {
    pub silence_floor: Option<String>,
    pub silence_ceiling: Option<String>,
    pub no_delivery_after: Option<String>,
}

/// `[[discovery.accounts]]`: an account whose trails are described
/// through a role of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscoveryAccount {
    pub name: Option<String>,
    pub role_arn: String,
    pub external_id: Option<String>,
}

/// `[discovery.organization]`: the organisation's accounts, names and
/// member trails.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrganization {
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub member_role_name: Option<String>,
    pub member_external_id: Option<String>,
}

/// `[[accounts]]`: a name for an account id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub id: String,
    pub name: String,
    /// Buckets (names or globs) this account owns, for `[[readers]]`
    /// matched by account.
    #[serde(default)]
    pub buckets: Vec<String>,
}

/// `[source]`: where the objects to read come from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub mode: Option<String>,
    pub queue_url: Option<String>,
    pub wait_time: Option<String>,
    pub lease: Option<String>,
    pub max_messages: Option<i64>,
    pub reconcile_interval: Option<String>,
}

/// `[console]`: the read-only web console.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    pub listen: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub trusted_header: Option<String>,
    pub session_ttl: Option<String>,
    pub time_zone: Option<String>,
}

/// `[store]`: the lookup store's retention and its activity index.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub retention: Option<String>,
    pub activity: Option<bool>,
    pub activity_retention: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub path: Option<PathBuf>,
    pub backend: Option<String>,
    pub table_prefix: Option<String>,
    pub claim_timeout: Option<String>,
}

/// `[aws]` needs no other shape than the validated one.
pub use super::AwsConfig as RawAws;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    pub enabled: Option<bool>,
    pub regions: Option<Vec<String>>,
    pub refresh_interval: Option<String>,
    pub trails: Option<Vec<String>>,
    #[serde(default)]
    pub accounts: Vec<RawDiscoveryAccount>,
    pub organization: Option<RawOrganization>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrail {
    pub bucket: String,
    pub prefix: Option<String>,
    pub name: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCrawl {
    pub poll_interval: Option<String>,
    pub start_from: Option<String>,
    pub lookback: Option<String>,
    pub concurrency: Option<i64>,
    pub max_decompressed_bytes: Option<RawSize>,
}

/// A size written as a number of bytes or as text with a unit.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    pub builtin: Option<bool>,
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Allowlist entries (`[[rules.allow]]`).
    #[serde(default)]
    pub allow: Vec<RawAllow>,
    /// Deprecated spelling of `grouping` (read, with a warning).
    pub suppression: Option<RawSuppression>,
    pub grouping: Option<RawGrouping>,
}

/// `[rules.grouping]`: repeats of one rule for one principal are one burst.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrouping {
    pub enabled: Option<bool>,
    pub window: Option<String>,
    /// Rule ids never grouped.
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    pub rules: Vec<String>,
    pub reason: Option<String>,
    #[serde(rename = "match")]
    pub conditions: BTreeMap<String, RawValues>,
}

/// One value or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawValues {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSuppression {
    pub window: String,
    /// Rule ids the window applies to; none: every rule.
    #[serde(default)]
    pub rules: Vec<String>,
}

/// One sink. Every sink type shares this struct so that an error names the
/// exact field (`sinks[1].api_key_file`); `validate` refuses fields that do
/// not belong to the sink's type.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    // file
    pub path: Option<PathBuf>,
    pub fsync: Option<String>,
    // datadog
    pub site: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub api_key_env: Option<String>,
    pub tags: Option<Vec<String>>,
    // datadog and webhook
    pub url: Option<String>,
    // webhook
    pub method: Option<String>,
    pub headers: Option<BTreeMap<String, RawHeader>>,
    pub body_template: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    // datadog and webhook: a PEM file of CAs trusted besides the system's
    pub ca_file: Option<PathBuf>,
    // every sink
    pub rate_limit: Option<RawRateLimit>,
    pub min_level: Option<String>,
    pub rule_ids: Option<Vec<String>>,
    pub rule_tags: Option<Vec<String>>,
    pub accounts: Option<Vec<String>>,
    pub regions: Option<Vec<String>>,
    pub max_backlog: Option<i64>,
    pub timeout: Option<String>,
    // file, stdout and webhook: "alert" (the contract) or "ocsf"
    pub format: Option<String>,
}

/// A header value: plain text, or read from a file or the environment.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawHeader {
    Value(String),
    From(RawHeaderFrom),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderFrom {
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_second: f64,
    pub burst: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<String>,
    pub level: Option<String>,
}
