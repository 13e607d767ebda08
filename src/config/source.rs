//! `[source]`: polling (the default) or an SQS queue of S3 notifications,
//! checked against what SQS allows.

use std::time::Duration;

use super::raw::{RawSource, RawState};
use super::validate::duration;
use super::{ConfigError, SharedStateConfig, SourceConfig, SqsSource};

/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// SQS's longest visibility timeout (12 hours).
const MAX_LEASE: Duration = Duration::from_secs(12 * 3600);

pub(super) fn source(raw: RawSource) -> Result<SourceConfig, ConfigError> {
    match raw.mode.as_deref() {
        None | Some("poll") => {
            let sqs_only = [
                ("source.queue_url", raw.queue_url.is_some()),
                ("source.wait_time", raw.wait_time.is_some()),
                ("source.lease", raw.lease.is_some()),
                ("source.max_messages", raw.max_messages.is_some()),
                (
                    "source.reconcile_interval",
                    raw.reconcile_interval.is_some(),
                ),
            ];
            if let Some((path, _)) = sqs_only.iter().find(|(_, set)| *set) {
                return Err(ConfigError::new(
                    *path,
                    "only means something with source.mode = \"sqs\"",
                ));
            }
            Ok(SourceConfig::Poll)
        }
        Some("sqs") => sqs(raw).map(SourceConfig::Sqs),
        Some(other) => Err(ConfigError::new(
            "source.mode",
            format!("\"{other}\" is not one of \"poll\", \"sqs\""),
        )),
    }
}

/// `[state] backend`: "sqlite" (the default: everything in the file) or
/// "dynamodb" (what instances share in DynamoDB).
pub(super) fn shared_state(raw: &RawState) -> Result<Option<SharedStateConfig>, ConfigError> {
    let dynamo_only = [
        ("state.table_prefix", raw.table_prefix.is_some()),
        ("state.claim_timeout", raw.claim_timeout.is_some()),
    ];
    match raw.backend.as_deref() {
        None | Some("sqlite") => match dynamo_only.iter().find(|(_, set)| *set) {
            Some((path, _)) => Err(ConfigError::new(
                *path,
                "only means something with state.backend = \"dynamodb\"",
            )),
            None => Ok(None),
        },
        Some("dynamodb") => {
            let table_prefix = raw
                .table_prefix
                .clone()
                .unwrap_or_else(|| "trailwatch".into());
            let valid = (3..=200).contains(&table_prefix.len())
                && table_prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(ConfigError::new(
                    "state.table_prefix",
                    format!(
                        "\"{table_prefix}\": 3 to 200 letters, digits, '_', '-' or '.' (DynamoDB table names)"
                    ),
                ));
            }
            Ok(Some(SharedStateConfig {
                table_prefix,
                claim_timeout: duration(
                    "state.claim_timeout",
                    raw.claim_timeout.clone(),
                    Duration::from_secs(300),
                )?,
            }))
        }
        Some(other) => Err(ConfigError::new(
            "state.backend",
            format!("\"{other}\" is not one of \"sqlite\", \"dynamodb\""),
        )),
    }
}

/// `[[accounts]]`: 12-digit ids, each named once, with a name; and the
/// buckets (globs) each says it owns, as (glob, account).
pub(super) type Accounts = (
    std::collections::BTreeMap<String, String>,
    Vec<(String, String)>,
);

pub(super) fn accounts(raw: Vec<super::raw::RawAccount>) -> Result<Accounts, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    let mut owners = Vec::new();
    for (i, a) in raw.into_iter().enumerate() {
        for (j, b) in a.buckets.iter().enumerate() {
            if b.trim().is_empty() || b.contains('/') {
                return Err(ConfigError::new(
                    format!("accounts[{i}].buckets[{j}]"),
                    format!("\"{b}\" is not a bucket name or glob"),
                ));
            }
            owners.push((b.clone(), a.id.clone()));
        }
        if a.id.len() != 12 || !a.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new(
                format!("accounts[{i}].id"),
                format!("\"{}\" is not a 12-digit AWS account id", a.id),
            ));
        }
        if a.name.trim().is_empty() {
            return Err(ConfigError::new(
                format!("accounts[{i}].name"),
                "must not be empty",
            ));
        }
        if out.insert(a.id.clone(), a.name).is_some() {
            return Err(ConfigError::new(
                format!("accounts[{i}].id"),
                format!("{} is named twice", a.id),
            ));
        }
    }
    Ok((out, owners))
}

fn sqs(raw: RawSource) -> Result<SqsSource, ConfigError> {
    let queue_url = match raw.queue_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => url,
        Some(url) => {
            return Err(ConfigError::new(
                "source.queue_url",
                format!(
                    "\"{url}\" is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/trailwatch"
                ),
            ));
        }
        None => {
            return Err(ConfigError::new(
                "source.queue_url",
                "is required with source.mode = \"sqs\"",
            ));
        }
    };
    let wait_time = duration("source.wait_time", raw.wait_time, MAX_WAIT)?;
    if wait_time > MAX_WAIT {
        return Err(ConfigError::new(
            "source.wait_time",
            "SQS waits at most 20s for messages",
        ));
    }
    let lease = duration("source.lease", raw.lease, Duration::from_secs(300))?;
    if lease > MAX_LEASE || lease < Duration::from_secs(2) {
        return Err(ConfigError::new(
            "source.lease",
            "must be between 2s and 12h (SQS's visibility timeout)",
        ));
    }
    let max_messages = match raw.max_messages {
        None => 10,
        Some(n @ 1..=10) => n as usize,
        Some(n) => {
            return Err(ConfigError::new(
                "source.max_messages",
                format!("{n}: SQS receives 1 to 10 messages at once"),
            ));
        }
    };
    let reconcile_interval = duration(
        "source.reconcile_interval",
        raw.reconcile_interval,
        Duration::from_secs(3600),
    )?;
    Ok(SqsSource {
        queue_url,
        wait_time,
        lease,
        max_messages,
        reconcile_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, std::path::Path::new("/"))
    }

    #[test]
    fn polling_is_the_default_and_sqs_takes_its_queue() {
        assert_eq!(parse("").expect("config").source, SourceConfig::Poll);
        let c = parse(
            "[source]\nmode = \"sqs\"\nqueue_url = \"http://127.0.0.1:4566/000000000000/q\"\nlease = \"2m\"\n",
        )
        .expect("config");
        let SourceConfig::Sqs(s) = c.source else {
            panic!("not sqs")
        };
        assert_eq!(s.lease, Duration::from_secs(120));
        assert_eq!(s.wait_time, Duration::from_secs(20));
        assert_eq!(s.max_messages, 10);
        assert_eq!(s.reconcile_interval, Duration::from_secs(3600));
    }

    #[test]
    fn the_shared_state_backend_is_read_and_checked() {
        assert_eq!(parse("").expect("config").shared_state, None);
        let c =
            parse("[state]\nbackend = \"dynamodb\"\ntable_prefix = \"tw-prod\"\n").expect("config");
        let shared = c.shared_state.expect("shared");
        assert_eq!(shared.table_prefix, "tw-prod");
        assert_eq!(shared.claim_timeout, Duration::from_secs(300));
        for (text, path) in [
            ("[state]\nbackend = \"redis\"\n", "state.backend"),
            ("[state]\ntable_prefix = \"x\"\n", "state.table_prefix"),
            (
                "[state]\nbackend = \"dynamodb\"\ntable_prefix = \"a b\"\n",
                "state.table_prefix",
            ),
        ] {
            assert_eq!(parse(text).expect_err(text).path, path, "{text}");
        }
    }

    #[test]
    fn accounts_are_named_once_each() {
        let c = parse("[[accounts]]\nid = \"210987654321\"\nname = \"prod-payments\"\n")
            .expect("config");
        assert_eq!(
            c.accounts.get("210987654321").map(String::as_str),
            Some("prod-payments")
        );
        for (text, path) in [
            (
                "[[accounts]]\nid = \"2109\"\nname = \"x\"\n",
                "accounts[0].id",
            ),
            (
                "[[accounts]]\nid = \"210987654321\"\nname = \" \"\n",
                "accounts[0].name",
            ),
            (
                "[[accounts]]\nid = \"210987654321\"\nname = \"a\"\n[[accounts]]\nid = \"210987654321\"\nname = \"b\"\n",
                "accounts[1].id",
            ),
        ] {
            assert_eq!(parse(text).expect_err(text).path, path, "{text}");
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            ("[source]\nmode = \"kafka\"\n", "source.mode"),
            ("[source]\nmode = \"sqs\"\n", "source.queue_url"),
            ("[source]\nqueue_url = \"https://q\"\n", "source.queue_url"),
            (
                "[source]\nmode = \"sqs\"\nqueue_url = \"sqs/q\"\n",
                "source.queue_url",
            ),
            (
                "[source]\nmode = \"sqs\"\nqueue_url = \"https://q\"\nwait_time = \"30s\"\n",
                "source.wait_time",
            ),
            (
                "[source]\nmode = \"sqs\"\nqueue_url = \"https://q\"\nlease = \"13h\"\n",
                "source.lease",
            ),
            (
                "[source]\nmode = \"sqs\"\nqueue_url = \"https://q\"\nmax_messages = 11\n",
                "source.max_messages",
            ),
        ];
        for (text, path) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.path, path, "{text}: {e}");
        }
    }
}
