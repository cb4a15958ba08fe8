//! `lnshard cli` (being built).

use std::process::ExitCode;

/// Options of `lnshard cli`.
#[derive(Debug, clap::Args)]
pub struct CliArgs {}

/// Runs `lnshard cli`.
pub fn run(_args: CliArgs) -> ExitCode {
    tracing::error!("lnshard cli is not built yet");
    ExitCode::FAILURE
}
