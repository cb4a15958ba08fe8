//! Subcommands of the `lnshard` binary.

use lnshard_bench::{cmd as bench, job};
use lnshard_node::{cli, cmd as node};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// lnshard: a sharded Lightning Network channel engine.
#[derive(Debug, Parser)]
#[command(name = "lnshard", version, about)]
pub struct Cli {
    /// A subcommand; without one, the main job runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The main job's options.
    #[command(flatten)]
    pub job: job::JobArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a benchmark workload.
    Bench(bench::BenchArgs),
    /// Run a Lightning node listening on TCP.
    Node(node::NodeArgs),
    /// Call a running node's control interface (`lnshard cli help` lists the methods).
    Cli(cli::CliArgs),
}

/// Runs what the command line asks for.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        None => job::run(cli.job),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Node(args)) => node::run(args),
        Some(Command::Cli(args)) => cli::run(args),
    }
}
