//! The `lnshard` command.
//!
//! * `lnshard` (no subcommand): the main job, a routing node on the shard engine with many
//!   peers, paying through it and reporting throughput ([`cmd::job`]).
//! * `lnshard bench WORKLOAD`: the benchmark workloads ([`cmd::bench`]).
//! * `lnshard node`: the TCP daemon ([`cmd::node`]).
//! * `lnshard cli METHOD ...`: a client for a running daemon's control interface ([`cmd::cli`]).

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Logs go to stderr (stdout is the report), filtered by RUST_LOG (default: warnings).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    cmd::run(cmd::Cli::parse())
}
