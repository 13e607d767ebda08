//! `trailwatch iam-policy --config F`: the least-privilege IAM policy for
//! that config, with its trails' buckets, prefixes and KMS keys filled in
//! (discovered with `DescribeTrails` when discovery is on, and the static
//! trails); the document is `aws::policy`'s.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_FAILED;
use crate::aws::AwsClients;

pub fn run(path: &Path) -> ExitCode {
    let config = match crate::app::load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::app::init_logging(&config.log);
    let runtime = match crate::app::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let trails = runtime.block_on(async {
        let clients = AwsClients::new(&config.aws).await;
        let found = crate::aws::discovery::all_trails(&clients, &config).await;
        let trails = found.trails;
        for (where_, why) in found.errors {
            eprintln!("discovery: {where_}: {why} (the policy covers the trails found)");
        }
        Ok::<_, String>(trails)
    });
    let trails = match trails {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let (policy, note) = crate::aws::role_policies::printed(&config, &trails);
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    match serde_json::to_string_pretty(&policy) {
        Ok(text) => {
            println!("{text}");
            if let Some(role) = &config.aws.role_arn {
                eprintln!(
                    "note: this is the policy of {role}; the caller also needs sts:AssumeRole on it \
                     (iam-policies/caller-assume-role.json)"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
