//! From the raw TOML structs to `Config`, with the field path of every error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::*;
use super::sink_settings::{number_default_names, sink};
use super::*;

const DEFAULT_STATE_PATH: &str = "/var/lib/trailwatch/state.db";
const MINUTE: Duration = Duration::from_secs(60);
const FIVE_MINUTES: Duration = Duration::from_secs(300);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const REFRESH: &str = "discovery.refresh_interval";
pub(super) const DEFAULT_MAX_BACKLOG: u64 = 1_000_000;

/// Parses TOML into the raw structs, keeping the path of a failing field.
pub(super) fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.inner();
        let mut reason = inner.message().trim().to_owned();
        if let Some(span) = inner.span() {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            reason = format!("{reason} (line {line})");
        }
        let path = if path == "." {
            "config".to_owned()
        } else {
            path
        };
        ConfigError::new(path, reason)
    })
}

pub(super) fn validate(raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
    let resolve = |p: &Path| -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };

    let shared_state = super::source::shared_state(&raw.state)?;
    let state_path = match raw.state.path {
        Some(p) if p.as_os_str().is_empty() => {
            return Err(ConfigError::new("state.path", "must not be empty"));
        }
        Some(p) => resolve(&p),
        None => PathBuf::from(DEFAULT_STATE_PATH),
    };

    let aws = AwsConfig {
        region: nonempty("aws.region", raw.aws.region)?,
        profile: nonempty("aws.profile", raw.aws.profile)?,
        role_arn: match nonempty("aws.role_arn", raw.aws.role_arn)? {
            Some(arn) if !arn.starts_with("arn:") => {
                return Err(ConfigError::new(
                    "aws.role_arn",
                    format!("\"{arn}\" is not an ARN (arn:aws:iam::<account>:role/<name>)"),
                ));
            }
            other => other,
        },
        external_id: nonempty("aws.external_id", raw.aws.external_id)?,
        endpoint_url: url("aws.endpoint_url", raw.aws.endpoint_url)?,
        cloudtrail_endpoint_url: url(
            "aws.cloudtrail_endpoint_url",
            raw.aws.cloudtrail_endpoint_url,
        )?,
        dynamodb_endpoint_url: url("aws.dynamodb_endpoint_url", raw.aws.dynamodb_endpoint_url)?,
    };
    if aws.external_id.is_some() && aws.role_arn.is_none() {
        return Err(ConfigError::new(
            "aws.external_id",
            "only used with aws.role_arn, which is not set",
        ));
    }

    let regions = match raw.discovery.regions {
        Some(regions) => {
            for (i, r) in regions.iter().enumerate() {
                check_region(&format!("discovery.regions[{i}]"), r)?;
            }
            regions
        }
        None => aws.region.iter().cloned().collect(),
    };
    let discovery = DiscoveryConfig {
        enabled: raw.discovery.enabled.unwrap_or(true),
        regions,
        refresh_interval: duration(REFRESH, raw.discovery.refresh_interval, FIVE_MINUTES)?,
        only: match raw.discovery.trails {
            Some(names) => {
                for (i, n) in names.iter().enumerate() {
                    if n.trim().is_empty() {
                        return Err(ConfigError::new(
                            format!("discovery.trails[{i}]"),
                            "a trail name or ARN, not an empty string",
                        ));
                    }
                }
                names
            }
            None => Vec::new(),
        },
        accounts: super::roles::discovery_accounts(raw.discovery.accounts)?,
        organization: match raw.discovery.organization {
            Some(o) => Some(super::roles::organization(o)?),
            None => None,
        },
    };

    let mut trails = Vec::new();
    for (i, t) in raw.trails.into_iter().enumerate() {
        let at = |f: &str| format!("trails[{i}].{f}");
        if t.bucket.trim().is_empty() || t.bucket.contains('/') {
            return Err(ConfigError::new(
                at("bucket"),
                format!("\"{}\" is not a bucket name", t.bucket),
            ));
        }
        if let Some(r) = &t.region {
            check_region(&at("region"), r)?;
        }
        let prefix = t
            .prefix
            .map(|p| p.trim_matches('/').to_owned())
            .filter(|p| !p.is_empty());
        let role = super::roles::role(&format!("trails[{i}]."), t.role_arn, t.external_id)?;
        trails.push(StaticTrail {
            name: t.name.unwrap_or_else(|| format!("static:{}", t.bucket)),
            bucket: t.bucket,
            prefix,
            region: t.region,
            role,
        });
    }

    let crawl = CrawlConfig {
        poll_interval: duration("crawl.poll_interval", raw.crawl.poll_interval, MINUTE)?,
        start_from: match raw.crawl.start_from {
            None => StartFrom::Ago(Duration::from_secs(24 * 3600)),
            Some(text) => start_from(&text)?,
        },
        lookback: duration("crawl.lookback", raw.crawl.lookback, HOUR)?,
        concurrency: match raw.crawl.concurrency {
            None => 8,
            Some(n) if (1..=1024).contains(&n) => n as usize,
            Some(n) => {
                return Err(ConfigError::new(
                    "crawl.concurrency",
                    format!("{n} is out of range (1 to 1024)"),
                ));
            }
        },
        max_decompressed_bytes: match raw.crawl.max_decompressed_bytes {
            None => super::DEFAULT_MAX_DECOMPRESSED_BYTES,
            Some(size) => positive_size("crawl.max_decompressed_bytes", size)?,
        },
    };

    let mut paths = Vec::new();
    for (i, p) in raw.rules.paths.iter().enumerate() {
        let p = resolve(p);
        if !p.is_dir() {
            return Err(ConfigError::new(
                format!("rules.paths[{i}]"),
                format!("{} is not a directory", p.display()),
            ));
        }
        paths.push(p);
    }
    let mut allow = Vec::new();
    for (i, a) in raw.rules.allow.into_iter().enumerate() {
        let at = |f: &str| format!("rules.allow[{i}].{f}");
        if a.rules.is_empty() || a.rules.iter().any(|r| r.trim().is_empty()) {
            return Err(ConfigError::new(
                at("rules"),
                "name the rule ids (or \"*\")",
            ));
        }
        if a.conditions.is_empty() {
            return Err(ConfigError::new(
                at("match"),
                "an allowlist entry needs at least one field condition",
            ));
        }
        let conditions = a
            .conditions
            .into_iter()
            .map(|(path, v)| {
                let values = match v {
                    RawValues::One(s) => vec![s],
                    RawValues::Many(v) => v,
                };
                (path, values)
            })
            .collect::<Vec<_>>();
        if let Some((path, _)) = conditions.iter().find(|(_, v)| v.is_empty()) {
            return Err(ConfigError::new(
                format!("rules.allow[{i}].match.{path}"),
                "needs at least one value",
            ));
        }
        allow.push(super::Allow {
            rules: a.rules,
            conditions,
            reason: a.reason,
        });
    }
    let mut deprecations = Vec::new();
    let suppression = match (raw.rules.suppression, raw.rules.grouping) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "rules.suppression",
                "set [rules.grouping] only ([rules.suppression] is its old name)",
            ));
        }
        (Some(s), None) => {
            deprecations.push(
                "[rules.suppression] is deprecated: it is read as [rules.grouping] \
                 (repeats of one rule for one principal)"
                    .to_owned(),
            );
            Some(Suppression {
                window: duration("rules.suppression.window", Some(s.window), Duration::ZERO)?,
                rules: s.rules,
                exclude: Vec::new(),
            })
        }
        (None, g) => {
            let g = g.unwrap_or_default();
            let window = duration(
                "rules.grouping.window",
                g.window,
                crate::config::DEFAULT_GROUPING_WINDOW,
            )?;
            (g.enabled.unwrap_or(true) && !window.is_zero()).then_some(Suppression {
                window,
                rules: Vec::new(),
                exclude: g.exclude,
            })
        }
    };
    let rules = RulesConfig {
        builtin: raw.rules.builtin.unwrap_or(true),
        paths,
        allow,
        suppression,
        deprecations,
    };

    let mut sinks = Vec::new();
    for (i, raw_sink) in raw.sinks.into_iter().enumerate() {
        sinks.push(sink(i, raw_sink, &resolve)?);
    }
    // Sinks of one type are numbered only when there are several.
    number_default_names(&mut sinks);
    let mut names = BTreeSet::new();
    for (i, sink) in sinks.iter().enumerate() {
        if !names.insert(sink.name.clone()) {
            return Err(ConfigError::new(
                format!("sinks[{i}].name"),
                format!(
                    "\"{}\" is used by another sink; names must be unique",
                    sink.name
                ),
            ));
        }
    }

    let server = match raw.server {
        None => None,
        Some(s) => Some(ServerConfig {
            listen: s.listen.parse().map_err(|_| {
                ConfigError::new(
                    "server.listen",
                    format!(
                        "\"{}\" is not an address:port such as 127.0.0.1:9877",
                        s.listen
                    ),
                )
            })?,
        }),
    };

    let log = LogConfig {
        format: match raw.log.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "log.format",
                    format!("\"{other}\" is not one of \"text\", \"json\""),
                ));
            }
        },
        level: raw.log.level.unwrap_or_else(|| "info".into()),
    };

    let store = StoreConfig {
        retention: duration("store.retention", raw.store.retention, 90 * DAY)?,
        activity: raw.store.activity.unwrap_or(true),
        activity_retention: duration(
            "store.activity_retention",
            raw.store.activity_retention,
            7 * DAY,
        )?,
    };

    let console = match raw.console {
        None => None,
        Some(c) => Some(console(c, &resolve)?),
    };

    let source = super::source::source(raw.source)?;
    let (accounts, bucket_owners) = super::source::accounts(raw.accounts)?;
    let readers = super::roles::readers(raw.readers, &bucket_owners)?;
    let blind_spots = super::roles::blind_spots(raw.blind_spots)?;

    Ok(Config {
        state_path,
        aws,
        discovery,
        trails,
        crawl,
        rules,
        sinks,
        server,
        log,
        store,
        console,
        source,
        shared_state,
        accounts,
        bucket_owners,
        readers,
        blind_spots,
    })
}

/// `[console]`: an address other than loopback needs authentication.
fn console(
    raw: RawConsole,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ConsoleConfig, ConfigError> {
    let text = raw
        .listen
        .unwrap_or_else(|| DEFAULT_CONSOLE_LISTEN.to_owned());
    let listen: std::net::SocketAddr = text.parse().map_err(|_| {
        ConfigError::new(
            "console.listen",
            format!("\"{text}\" is not an address:port such as {DEFAULT_CONSOLE_LISTEN}"),
        )
    })?;
    let trusted_header = nonempty("console.trusted_header", raw.trusted_header)?;
    if let Some(h) = &trusted_header
        && !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ConfigError::new(
            "console.trusted_header",
            format!("\"{h}\" is not a header name"),
        ));
    }
    let credentials_file = raw.credentials_file.as_deref().map(resolve);
    if !listen.ip().is_loopback() && credentials_file.is_none() && trusted_header.is_none() {
        return Err(ConfigError::new(
            "console.listen",
            format!(
                "{listen} is not a loopback address: set console.credentials_file (users and \
                 tokens) or console.trusted_header (behind an authenticating proxy) first"
            ),
        ));
    }
    Ok(ConsoleConfig {
        listen,
        credentials_file,
        trusted_header,
        session_ttl: duration("console.session_ttl", raw.session_ttl, 12 * HOUR)?,
        time_zone: nonempty("console.time_zone", raw.time_zone)?,
    })
}

pub(super) fn nonempty(path: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(ConfigError::new(path, "must not be empty")),
        other => Ok(other),
    }
}

pub(super) fn url(path: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if !(v.starts_with("http://") || v.starts_with("https://")) => Err(
            ConfigError::new(path, format!("\"{v}\" is not an http:// or https:// URL")),
        ),
        other => Ok(other),
    }
}

fn check_region(path: &str, region: &str) -> Result<(), ConfigError> {
    let ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && region.contains('-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            path,
            format!("\"{region}\" is not a region name such as us-east-1"),
        ))
    }
}

pub(super) fn duration(
    path: &str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => match parse_duration(&text) {
            Ok(d) if d.is_zero() => Err(ConfigError::new(path, "must be greater than zero")),
            Ok(d) => Ok(d),
            Err(reason) => Err(ConfigError::new(path, reason)),
        },
    }
}

fn start_from(text: &str) -> Result<StartFrom, ConfigError> {
    if let Ok(d) = parse_duration(text) {
        return Ok(StartFrom::Ago(d));
    }
    let rfc3339 = time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(text, &rfc3339) {
        Ok(_) => Ok(StartFrom::At(text.to_owned())),
        Err(_) => Err(ConfigError::new(
            "crawl.start_from",
            format!(
                "\"{text}\" is neither a duration (\"24h\") nor an RFC 3339 time \
                 (\"2026-11-01T00:00:00Z\")"
            ),
        )),
    }
}

fn positive_size(path: &str, size: RawSize) -> Result<u64, ConfigError> {
    let bytes = match size {
        RawSize::Bytes(n) if n > 0 => n as u64,
        RawSize::Bytes(n) => {
            return Err(ConfigError::new(
                path,
                format!("{n} is not a positive size"),
            ));
        }
        RawSize::Text(text) => parse_size(&text).map_err(|r| ConfigError::new(path, r))?,
    };
    if bytes == 0 {
        return Err(ConfigError::new(path, "must be greater than zero"));
    }
    Ok(bytes)
}
