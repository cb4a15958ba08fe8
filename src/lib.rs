//! lnshard: a sharded Lightning Network channel engine.
//!
//! This facade re-exports the workspace crates so a Rust program needs one dependency:
//! [`core`] (the sans-IO protocol core) and [`engine`] (the threaded shard engine).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod daemon;
pub mod workload;

pub use lightning_core as core;
pub use shard_engine as engine;
