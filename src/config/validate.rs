//! From the raw TOML structs to `Config`, with the field path of every error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::*;
use super::*;

const DEFAULT_STATE_PATH: &str = "/var/lib/trailwatch/state.db";
const DEFAULT_MAX_BACKLOG: u64 = 1_000_000;

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
        refresh_interval: duration(
            "discovery.refresh_interval",
            raw.discovery.refresh_interval,
            Duration::from_secs(300),
        )?,
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
        trails.push(StaticTrail {
            name: t.name.unwrap_or_else(|| format!("static:{}", t.bucket)),
            bucket: t.bucket,
            prefix,
            region: t.region,
        });
    }

    let crawl = CrawlConfig {
        poll_interval: duration(
            "crawl.poll_interval",
            raw.crawl.poll_interval,
            Duration::from_secs(60),
        )?,
        start_from: match raw.crawl.start_from {
            None => StartFrom::Ago(Duration::from_secs(24 * 3600)),
            Some(text) => start_from(&text)?,
        },
        lookback: duration(
            "crawl.lookback",
            raw.crawl.lookback,
            Duration::from_secs(3600),
        )?,
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
            None => crate::decode::DEFAULT_MAX_DECOMPRESSED_BYTES,
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
        allow.push(crate::rules::Allow {
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
    })
}

fn nonempty(path: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(ConfigError::new(path, "must not be empty")),
        other => Ok(other),
    }
}

fn url(path: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
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

fn duration(path: &str, value: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
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

/// The fields each sink type accepts, besides the shared ones.
fn allowed_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "file" => &["path", "fsync"],
        "stdout" => &[],
        "datadog" => &["site", "url", "api_key_file", "api_key_env", "tags"],
        "webhook" => &[
            "url",
            "method",
            "headers",
            "body_template",
            "secret_file",
            "secret_env",
        ],
        _ => &[],
    }
}

fn sink(
    i: usize,
    raw: RawSink,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<SinkConfig, ConfigError> {
    let at = |f: &str| format!("sinks[{i}].{f}");
    let kind_name = raw.kind.clone().ok_or_else(|| {
        ConfigError::new(
            at("type"),
            "missing; one of \"file\", \"stdout\", \"datadog\", \"webhook\"",
        )
    })?;
    if !matches!(
        kind_name.as_str(),
        "file" | "stdout" | "datadog" | "webhook"
    ) {
        return Err(ConfigError::new(
            at("type"),
            format!("\"{kind_name}\" is not one of \"file\", \"stdout\", \"datadog\", \"webhook\""),
        ));
    }
    let present: [(&str, bool); 12] = [
        ("path", raw.path.is_some()),
        ("fsync", raw.fsync.is_some()),
        ("site", raw.site.is_some()),
        ("url", raw.url.is_some()),
        ("api_key_file", raw.api_key_file.is_some()),
        ("api_key_env", raw.api_key_env.is_some()),
        ("tags", raw.tags.is_some()),
        ("method", raw.method.is_some()),
        ("headers", raw.headers.is_some()),
        ("body_template", raw.body_template.is_some()),
        ("secret_file", raw.secret_file.is_some()),
        ("secret_env", raw.secret_env.is_some()),
    ];
    let allowed = allowed_fields(&kind_name);
    if let Some((field, _)) = present.iter().find(|(f, set)| *set && !allowed.contains(f)) {
        return Err(ConfigError::new(
            at(field),
            format!("not a setting of a {kind_name} sink"),
        ));
    }

    let kind = match kind_name.as_str() {
        "file" => {
            let path = raw.path.ok_or_else(|| {
                ConfigError::new(at("path"), "missing; the JSON lines file to append to")
            })?;
            let fsync = match raw.fsync.as_deref() {
                None | Some("interval") => Fsync::Interval,
                Some("always") => Fsync::Always,
                Some("never") => Fsync::Never,
                Some(other) => {
                    return Err(ConfigError::new(
                        at("fsync"),
                        format!("\"{other}\" is not one of \"always\", \"interval\", \"never\""),
                    ));
                }
            };
            SinkKind::File {
                path: resolve(&path),
                fsync,
            }
        }
        "stdout" => SinkKind::Stdout,
        "datadog" => {
            let url = match (raw.site, raw.url) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        at("url"),
                        "set either site or url, not both",
                    ));
                }
                (Some(site), None) => {
                    if !DATADOG_SITES.contains(&site.as_str()) {
                        return Err(ConfigError::new(
                            at("site"),
                            format!(
                                "\"{site}\" is not a Datadog site; one of {}",
                                DATADOG_SITES.join(", ")
                            ),
                        ));
                    }
                    format!("https://api.{site}/api/v1/events")
                }
                (None, Some(url)) => self::url(&at("url"), Some(url))?.unwrap_or_default(),
                (None, None) => format!("https://api.{}/api/v1/events", DATADOG_SITES[0]),
            };
            let api_key = secret(
                &at("api_key_file"),
                &at("api_key_env"),
                raw.api_key_file,
                raw.api_key_env,
                resolve,
            )?
            .ok_or_else(|| {
                ConfigError::new(
                    at("api_key_file"),
                    "missing; set api_key_file or api_key_env",
                )
            })?;
            let tags = raw.tags.unwrap_or_default();
            for (t, tag) in tags.iter().enumerate() {
                if !tag.contains(':') || tag.starts_with(':') {
                    return Err(ConfigError::new(
                        format!("sinks[{i}].tags[{t}]"),
                        format!("\"{tag}\" is not a key:value tag"),
                    ));
                }
            }
            SinkKind::Datadog { url, api_key, tags }
        }
        _ => {
            let url = self::url(&at("url"), raw.url)?
                .ok_or_else(|| ConfigError::new(at("url"), "missing; the URL to send alerts to"))?;
            let method = raw
                .method
                .unwrap_or_else(|| "POST".into())
                .to_ascii_uppercase();
            if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                return Err(ConfigError::new(
                    at("method"),
                    format!("\"{method}\" is not one of POST, PUT, PATCH"),
                ));
            }
            let mut headers = BTreeMap::new();
            for (name, value) in raw.headers.unwrap_or_default() {
                let path = format!("sinks[{i}].headers.{name}");
                let value = match value {
                    RawHeader::Value(v) => Secret::from_literal(v),
                    RawHeader::From(from) => secret(
                        &format!("{path}.file"),
                        &format!("{path}.env"),
                        from.file,
                        from.env,
                        resolve,
                    )?
                    .ok_or_else(|| ConfigError::new(&path, "set file or env"))?,
                };
                headers.insert(name, value);
            }
            if let Some(template) = &raw.body_template {
                crate::sinks::webhook::check_template(template)
                    .map_err(|e| ConfigError::new(at("body_template"), e))?;
            }
            SinkKind::Webhook {
                url,
                method,
                headers,
                body_template: raw.body_template,
                signing_secret: secret(
                    &at("secret_file"),
                    &at("secret_env"),
                    raw.secret_file,
                    raw.secret_env,
                    resolve,
                )?,
            }
        }
    };

    let min_level = match raw.min_level {
        None => None,
        Some(level) => Some(Severity::parse(&level).ok_or_else(|| {
            ConfigError::new(
                at("min_level"),
                format!("\"{level}\" is not one of {}", Severity::NAMES.join(", ")),
            )
        })?),
    };
    let rate_limit = match raw.rate_limit {
        None => None,
        Some(rl) => {
            if !(rl.per_second.is_finite() && rl.per_second > 0.0) {
                return Err(ConfigError::new(
                    at("rate_limit.per_second"),
                    "must be a number greater than zero",
                ));
            }
            let burst = match rl.burst {
                None => rl.per_second.ceil().max(1.0) as u32,
                Some(b) if (1..=1_000_000).contains(&b) => b as u32,
                Some(b) => {
                    return Err(ConfigError::new(
                        at("rate_limit.burst"),
                        format!("{b} is out of range (1 to 1000000)"),
                    ));
                }
            };
            Some(RateLimit {
                per_second: rl.per_second,
                burst,
            })
        }
    };
    let max_backlog = match raw.max_backlog {
        None => DEFAULT_MAX_BACKLOG,
        Some(n) if n > 0 => n as u64,
        Some(n) => {
            return Err(ConfigError::new(
                at("max_backlog"),
                format!("{n} is not a positive number"),
            ));
        }
    };
    Ok(SinkConfig {
        name: raw.name.unwrap_or_default(),
        kind,
        route: Route {
            min_level,
            rule_ids: raw.rule_ids.unwrap_or_default(),
            rule_tags: raw.rule_tags.unwrap_or_default(),
            accounts: raw.accounts.unwrap_or_default(),
            regions: raw.regions.unwrap_or_default(),
        },
        rate_limit,
        max_backlog,
        timeout: duration(&at("timeout"), raw.timeout, Duration::from_secs(10))?,
    })
}

/// A secret from a file or an environment variable (not both).
fn secret(
    file_path: &str,
    env_path: &str,
    file: Option<PathBuf>,
    env: Option<String>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Option<Secret>, ConfigError> {
    match (file, env) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            env_path,
            format!("set either {file_path} or this, not both"),
        )),
        (Some(file), None) => Secret::from_file(&resolve(&file))
            .map(Some)
            .map_err(|r| ConfigError::new(file_path, r)),
        (None, Some(var)) => Secret::from_env(&var)
            .map(Some)
            .map_err(|r| ConfigError::new(env_path, r)),
        (None, None) => Ok(None),
    }
}

fn number_default_names(sinks: &mut [SinkConfig]) {
    let type_of = |k: &SinkKind| match k {
        SinkKind::File { .. } => "file",
        SinkKind::Stdout => "stdout",
        SinkKind::Datadog { .. } => "datadog",
        SinkKind::Webhook { .. } => "webhook",
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sinks.iter().filter(|s| s.name.is_empty()) {
        *counts.entry(type_of(&s.kind)).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sinks.iter_mut().filter(|s| s.name.is_empty()) {
        let t = type_of(&s.kind);
        let n = seen.entry(t).or_default();
        *n += 1;
        s.name = if counts[t] > 1 {
            format!("{t}-{n}")
        } else {
            t.to_owned()
        };
    }
}
