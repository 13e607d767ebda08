//! Where alerts go: output formats, the file and stdout sinks, routes, and
//! draining the outbox. The delivering sinks (Datadog, webhook) build on them.

pub mod blind;
mod claims;
pub mod datadog;
pub mod deliver;
pub mod file;
pub mod http;
pub mod local;
pub mod policy;
pub mod route;
pub mod table;
pub mod webhook;

use std::io::{self, Write};

use crate::alert::Alert;
use crate::config::{Config, ConfigError, SinkKind};

/// What the sinks check of their own settings beyond the config's shape:
/// a webhook's body template must give JSON for an alert; a `ca_file` must
/// hold PEM certificates. Named by field
/// path, as every config error is.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    for (i, sink) in config.sinks.iter().enumerate() {
        if let Some(path) = &sink.ca_file {
            let at = format!("sinks[{i}].ca_file");
            let pem = std::fs::read(path)
                .map_err(|e| ConfigError::new(&at, format!("{}: {e}", path.display())))?;
            match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => {}
                _ => {
                    return Err(ConfigError::new(
                        &at,
                        format!("{}: no PEM certificate in it", path.display()),
                    ));
                }
            }
        }
        if let SinkKind::Webhook {
            body_template: Some(template),
            ..
        } = &sink.kind
        {
            webhook::check_template(template)
                .map_err(|e| ConfigError::new(format!("sinks[{i}].body_template"), e))?;
        }
    }
    Ok(())
}

/// Writes one alert as a JSON line.
pub fn write_jsonl(out: &mut impl Write, alert: &Alert) -> io::Result<()> {
    serde_json::to_writer(&mut *out, alert)?;
    out.write_all(b"\n")
}

/// One line for an alert in a sink's format: the contract, or an OCSF
/// Detection Finding.
pub fn write_line(
    out: &mut impl Write,
    format: crate::config::AlertFormat,
    alert: &Alert,
    context: &crate::alert::AlertContext,
) -> io::Result<()> {
    match format {
        crate::config::AlertFormat::Contract => write_jsonl(out, alert),
        crate::config::AlertFormat::Ocsf => {
            serde_json::to_writer(
                &mut *out,
                &crate::alert::ocsf::detection_finding(alert, context),
            )?;
            out.write_all(b"\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn checked(text: &str) -> Result<(), ConfigError> {
        check(&Config::from_toml(text, Path::new(".")).expect("the config's shape is valid"))
    }

    #[test]
    fn a_webhook_template_must_give_json() {
        let e = checked(
            "[[sinks]]\ntype = \"webhook\"\nurl = \"https://h.example/x\"\nbody_template = '{\"a\": $ALERT_ID'\n",
        )
        .expect_err("a template that gives no JSON");
        assert_eq!(e.path, "sinks[0].body_template", "{e}");
        checked(
            "[[sinks]]\ntype = \"webhook\"\nurl = \"https://h.example/x\"\nbody_template = '{\"text\": \"$EVENT_TITLE\", \"alert\": $ALERT_JSON}'\n",
        )
        .expect("a good template");
    }

    #[test]
    fn the_torq_and_slack_examples_are_valid() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        // SAFETY: set before any thread of this test reads the environment
        // (the config tests set the same values).
        unsafe {
            std::env::set_var("TORQ_WEBHOOK_SECRET", "x");
            std::env::set_var("TRAILWATCH_WEBHOOK_SIGNING_SECRET", "y");
        }
        for name in ["torq.toml", "slack.toml"] {
            let text = std::fs::read_to_string(examples.join(name)).expect("example");
            let config =
                Config::from_toml(&text, &examples).unwrap_or_else(|e| panic!("{name}: {e}"));
            check(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
