//! `lnshard node` (being built).

use std::process::ExitCode;

/// Options of `lnshard node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {}

/// Runs `lnshard node`.
pub fn run(_args: NodeArgs) -> ExitCode {
    tracing::error!("lnshard node is not built yet");
    ExitCode::FAILURE
}
