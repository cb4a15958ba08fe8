//! The `lnshard` command.
//!
//! * `lnshard` (no subcommand): the main job, a routing node on the shard engine with many
//!   peers, paying through it and reporting throughput (`lnshard_bench::job`).
//! * `lnshard bench WORKLOAD`: the benchmark workloads (`lnshard_bench::cmd`).
//! * `lnshard node`: the TCP daemon (`lnshard_node::cmd`).
//! * `lnshard cli METHOD ...`: a client for a running daemon's control interface (`lnshard_node::cli`).

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    // Logs go to stderr (stdout is the report), filtered by RUST_LOG (default: the daemon
    // logs at info, everything else only warnings).
    let default = match cli.command {
        Some(cmd::Command::Node(_)) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a terminal: a log redirected to a file or a pipe stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    cmd::run(cli)
}
