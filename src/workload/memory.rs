//! Resident memory per idle channel (being built).
//!
//! STUB in the `scaling` branch only, so that `lnshard bench memory` compiles against the
//! agreed API; the real module comes from another branch and replaces this file.

use std::fmt;

use serde::Serialize;

/// What [`run`] measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Channel counts to measure.
    pub channels: Vec<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            channels: vec![10_000, 100_000],
        }
    }
}

/// What [`run`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory: not built")
    }
}

/// Why the workload could not run.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs the workload (not built in this branch).
pub fn run(_options: &Options) -> Result<Report, Error> {
    Err(Error("memory is not built in this branch".into()))
}
