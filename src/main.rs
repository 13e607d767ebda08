//! The `trailwatch` binary: parse the command line, call the library, exit.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = trailwatch::cli::Cli::parse();
    trailwatch::cli::run(cli)
}
