//! lnshard: a sharded Lightning Network channel engine.
//!
//! The library a Rust program depends on: [`core`] (the sans-IO protocol core:
//! wire, BOLT 3 transactions, onions, BOLT 8 transport, channels, `NodeCore` and its records)
//! and [`engine`] (the shard engine: N worker threads owning the peers hashed
//! onto them, the coordinator, cross-shard forwarding and the stores). Nothing of the TCP
//! daemon (`lnshard-node`), the benchmarks (`lnshard-bench`) or the test tooling
//! (`lnshard-testkit`) is in its dependency tree: no async runtime, no HTTP, no CLI parser.
//!
//! `cargo run --example two_engines` runs two engines in one process, a channel between
//! them and a payment each way; its source (`crates/lnshard/examples/two_engines.rs`) is the
//! flow to copy.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use lightning_core as core;
pub use shard_engine as engine;
