//! The `trailwatch` binary: parse the command line, call the library, exit.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    #[cfg(feature = "failpoints")]
    let _kill_points = trailwatch::kill_point::setup();
    let cli = trailwatch::cli::Cli::parse();
    trailwatch::cli::run(cli)
}
