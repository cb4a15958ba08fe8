//! `lnshard bench` (being built).

use std::process::ExitCode;

/// Options of `lnshard bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs `lnshard bench`.
pub fn run(_args: BenchArgs) -> ExitCode {
    tracing::error!("lnshard bench is not built yet");
    ExitCode::FAILURE
}
