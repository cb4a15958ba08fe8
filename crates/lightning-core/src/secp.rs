//! The core's one secp256k1 context.
//!
//! Creating a context costs a randomization (an elliptic-curve multiplication and a draw
//! from the thread's RNG) whenever the `secp256k1` crate's `rand` feature is on, which any
//! crate in the build can turn on (a wallet library does). Profiled on the main job, contexts
//! created per signature, per verification and per key derivation took 17% of the time. Every
//! call site takes a copy of one context made once instead: a copy is a small memcpy, never a
//! new randomization. Outputs do not depend on it (signatures are RFC 6979 deterministic), so
//! the core stays deterministic given its inputs.

use std::sync::OnceLock;

use bitcoin::secp256k1::{All, Secp256k1};

static CONTEXT: OnceLock<Secp256k1<All>> = OnceLock::new();

/// A copy of the core's context (signing and verification).
pub(crate) fn ctx() -> Secp256k1<All> {
    CONTEXT.get_or_init(Secp256k1::new).clone()
}
