//! The `trailwatch` binary: parse the command line, call the library, exit.

use std::process::ExitCode;

use clap::Parser;

/// Records are decoded, matched and grouped on every core, each leaving
/// many small strings behind: mimalloc keeps those frees thread-local.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    #[cfg(feature = "failpoints")]
    let _kill_points = trailwatch::kill_point::setup();
    let cli = trailwatch::cli::Cli::parse();
    trailwatch::cli::run(cli)
}
