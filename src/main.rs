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
    cmd::run(cmd::Cli::parse())
}
