//! `trailwatch validate --config F [--strict]`

use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_USAGE, RuleSources};
use crate::config::Config;

pub fn run(path: &Path, strict: bool) -> ExitCode {
    let config = match Config::load(path) {
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
