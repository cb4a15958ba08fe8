//! LDK `bench_sends` workload: two nodes, one thread, one channel (being built).
//!
//! STUB in the `scaling` branch only, so that `lnshard bench two-node-sends` compiles against
//! the agreed API; the real module comes from another branch and replaces this file.

use std::fmt;

use serde::Serialize;

/// What [`run`] measures.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Timed iterations (each one payment each way).
    pub iterations: u64,
    /// Untimed iterations first.
    pub warmup: u64,
}

/// What [`run`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Payments per second.
    pub payments_per_sec: f64,
    /// Microseconds per iteration.
    pub us_per_iteration: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} payments/s, {:.0} us/iteration",
            self.payments_per_sec, self.us_per_iteration
        )
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
    Err(Error("two-node-sends is not built in this branch".into()))
}
