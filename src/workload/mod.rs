//! Benchmark workloads, shared by `lnshard bench WORKLOAD` and the benches in `benches/`.

mod error;
pub mod memory;
pub mod scaling;
pub mod two_node;
