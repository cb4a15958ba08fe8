//! Sans-IO Lightning protocol core for lnshard.
//!
//! This crate holds the protocol primitives every other lnshard crate stands on, each proven
//! on the BOLT specification's own test vectors:
//!
//! * [`ser`] and [`tlv`]: BOLT 1 BigSize, truncated integers and TLV streams.
//! * [`wire`]: typed BOLT 1 and BOLT 2 messages and their framing.
//! * [`keys`], [`secrets`] and [`transactions`]: BOLT 3 key derivation, per-commitment
//!   secrets, scripts, commitment and HTLC transactions, and their signatures.
//! * [`onion`]: BOLT 4 onion construction, per-hop processing and failure messages.
//! * [`transport`]: the BOLT 8 Noise_XK handshake and message encryption.
//! * [`channel`]: the BOLT 2 channel state machine.
//! * [`peer`] and [`node`]: a peer's channels (`PeerState`) and the per-shard `NodeCore`.
//! * [`persist`]: the stored records of channels and nodes, in a versioned envelope.
//!
//! The crate has no threads, no IO, no clock and no global state. Randomness comes in as
//! arguments (keys, nonces) or through [`entropy::EntropySource`]; time comes in as block
//! heights or caller-given timestamps. Given the same inputs it always produces the same
//! outputs, so any failure can be replayed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Peer-controlled data must never panic the library: no indexing, no unwrap (tests may).
#![warn(clippy::indexing_slicing, clippy::unwrap_used)]

pub use bitcoin;
pub use bitcoin::secp256k1;

pub mod chain;
pub mod channel;
pub mod entropy;
pub mod keys;
pub mod node;
pub mod onion;
pub mod payment;
pub mod peer;
pub mod persist;
mod secp;
pub mod secrets;
pub mod ser;
pub mod tlv;
pub mod transactions;
pub mod transport;
pub mod types;
pub mod wallet;
pub mod wire;
