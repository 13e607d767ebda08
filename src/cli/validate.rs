//! `trailwatch validate --config F [--strict]`

use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_USAGE, RuleSources};

pub fn run(path: &Path, strict: bool) -> ExitCode {
    let config = match crate::app::read_config(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("config error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let sources = RuleSources {
        rules: config.rules.paths.clone(),
        no_builtin: !config.rules.builtin,
    };
    let (set, errors) = crate::rules::load_rule_set(!sources.no_builtin, &sources.rules);
    for e in &errors {
        eprintln!("rule error: {e}");
    }
    // An allowlist entry naming a rule that is not loaded allows nothing.
    for (i, a) in config.rules.allow.iter().enumerate() {
        for id in a.rules.iter().filter(|r| *r != "*") {
            if !set.rules().iter().any(|r| &r.id == id) {
                eprintln!("warning: rules.allow[{i}].rules: no loaded rule has the id {id}");
            }
        }
    }
    println!(
        "{}: ok ({} rules loaded, {} failed; {} sinks)",
        path.display(),
        set.len(),
        errors.len(),
        config.sinks.len()
    );
    if strict && !errors.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::SUCCESS
}
