//! lnshard's threads: shards, the coordinator, routing and persistence driving.
//!
//! This crate will run N [`lightning_core`] node cores on N worker threads. It is empty until
//! the shard engine lands (issue 4); it exists now so the workspace has its final shape.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use lightning_core;

pub mod store;
