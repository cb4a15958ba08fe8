//! lnshard's benchmark workloads and its main job: the code behind `lnshard bench WORKLOAD`,
//! the benches in `benches/` and `lnshard` without a subcommand ([`job`]). Not a library for
//! applications: it drives the engine with the test network of `lnshard-testkit`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cmd;
mod error;
pub mod job;
pub mod memory;
pub mod scaling;
pub mod two_node;
