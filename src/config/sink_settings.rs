//! Validation of `[[sinks]]`: each sink's fields for its type, its secrets
//! (from a file or the environment, never inline), and default names.

use std::collections::BTreeMap;

use super::raw::*;
use super::validate::{DEFAULT_MAX_BACKLOG, duration, url};
use super::*;

/// The fields each sink type accepts, besides the shared ones.
fn allowed_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "file" => &["path", "fsync", "format"],
        "stdout" => &["format"],
        "datadog" => &[
            "site",
            "url",
            "api_key_file",
            "api_key_env",
            "tags",
            "ca_file",
        ],
        "webhook" => &[
            "url",
            "method",
            "headers",
            "body_template",
            "secret_file",
            "secret_env",
            "ca_file",
            "format",
        ],
        _ => &[],
    }
}

pub(super) fn sink(
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
    let present: [(&str, bool); 14] = [
        ("format", raw.format.is_some()),
        ("ca_file", raw.ca_file.is_some()),
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
        ca_file: raw.ca_file.as_deref().map(resolve),
        format: match raw.format.as_deref() {
            None | Some("alert") => AlertFormat::Contract,
            Some("ocsf") => AlertFormat::Ocsf,
            Some(other) => {
                return Err(ConfigError::new(
                    at("format"),
                    format!("\"{other}\" is not one of \"alert\", \"ocsf\""),
                ));
            }
        },
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

pub(super) fn number_default_names(sinks: &mut [SinkConfig]) {
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
