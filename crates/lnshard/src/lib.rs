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
//! flow to copy. The entry points carry examples of their own: [`engine::Engine::open`],
//! [`engine::Engine::new_outbound_connection`], [`engine::NodeApi::create_channel`],
//! [`engine::NodeApi::send_payment`], [`engine::NodeApi::claim_funds`] and
//! [`engine::Engine::drain_events`].
//!
//! ```
//! use lnshard::core::bitcoin::{hashes::Hash, BlockHash};
//! use lnshard::core::secp256k1::SecretKey;
//! use lnshard::engine::{Engine, EngineConfig, NodeApi};
//!
//! let node_secret = SecretKey::from_slice(&[0x11; 32])?;
//! let seed = [0x22; 32]; // 32 random bytes: every other key derives from it
//! let (height, tip) = (100, BlockHash::all_zeros()); // the chain's tip
//! let engine = Engine::new(EngineConfig::default(), node_secret, seed, height, tip);
//! println!("node {} on {} shards", engine.node_id(), engine.shard_count());
//! assert!(engine.list_channels()?.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use lightning_core as core;
pub use shard_engine as engine;
