//! Looking alerts and activity up in the store: the filters people give
//! (`query.rs`: times, the 90-day bound, levels), the time zone times are
//! shown in (`zone.rs`), and how results are written (`output.rs`: table,
//! JSON lines, CSV safe for spreadsheets, OCSF). `trailwatch alerts`,
//! `trailwatch activity` and the console share them.

pub mod csv;
pub mod output;
pub mod query;
pub mod zone;

use std::path::PathBuf;

pub use output::Format;
pub use query::{Query, QueryError};

/// The filters `trailwatch alerts` and `trailwatch activity` share. Repeated
/// values of one flag match any of them; different flags must all match.
#[derive(Debug, Clone, clap::Args)]
pub struct LookupArgs {
    /// The config whose state store to look in.
    #[arg(long, required_unless_present = "store")]
    pub config: Option<PathBuf>,
    /// A store file of its own (`trailwatch scan --store FILE`).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub store: Option<PathBuf>,
    /// From when: a duration back (`24h`, `7d`) or RFC 3339 [default: 7d].
    #[arg(long)]
    pub since: Option<String>,
    /// Until when (same forms) [default: now]. One query spans at most 90 days.
    #[arg(long)]
    pub until: Option<String>,
    /// The principal's ARN, user or role name, or access key id.
    #[arg(long, value_name = "WHO")]
    pub principal: Vec<String>,
    /// What the call acted on (a bucket, a trail, a secret...).
    #[arg(long)]
    pub target: Vec<String>,
    /// The source IP address.
    #[arg(long)]
    pub ip: Vec<String>,
    #[arg(long)]
    pub account: Vec<String>,
    #[arg(long)]
    pub region: Vec<String>,
    /// The event name (`StopLogging`).
    #[arg(long)]
    pub event: Vec<String>,
    /// The event source (`cloudtrail.amazonaws.com`).
    #[arg(long)]
    pub source: Vec<String>,
    /// Text anywhere in the user agent, ignoring case.
    #[arg(long)]
    pub user_agent: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Times in: local (default), UTC, an offset (+02:00) or a zone name.
    #[arg(long)]
    pub tz: Option<String>,
    /// Rows a page, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// The next page: the position printed after a full page.
    #[arg(long)]
    pub before: Option<String>,
}

/// `trailwatch alerts`: the shared filters, and the rule and level.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertArgs {
    #[command(flatten)]
    pub lookup: LookupArgs,
    /// The rule id.
    #[arg(long)]
    pub rule: Vec<String>,
    /// A level (`high`), or a level and those above it (`medium+`).
    #[arg(long)]
    pub level: Vec<String>,
}

impl LookupArgs {
    /// The query these flags ask.
    pub fn query(&self) -> Query {
        Query {
            since: self.since.clone(),
            until: self.until.clone(),
            principals: self.principal.clone(),
            targets: self.target.clone(),
            ips: self.ip.clone(),
            accounts: self.account.clone(),
            regions: self.region.clone(),
            events: self.event.clone(),
            sources: self.source.clone(),
            user_agents: self.user_agent.clone(),
            limit: self.limit,
            before: self.before.clone(),
            ..Query::default()
        }
    }
}

impl AlertArgs {
    pub fn query(&self) -> Query {
        Query {
            rules: self.rule.clone(),
            levels: self.level.clone(),
            ..self.lookup.query()
        }
    }
}
