//! The fixed-size values C passes and receives by pointer: keys, ids, hashes and secrets,
//! each its own struct of bytes, so that the header states their sizes and a C compiler
//! refuses a payment hash where a preimage belongs.
//!
//! Each is `#[repr(C)]` around one byte array: size and alignment are those of the array
//! (no padding, alignment 1), so a C program may point one at any buffer of that many bytes.
//! They are written out (not made by a macro) because cbindgen reads the source unexpanded.

/// A node id: a 33-byte compressed secp256k1 public key.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_node_id {
    /// The value's bytes.
    pub bytes: [u8; 33],
}

/// A node's 32-byte secp256k1 secret key (its identity: keep it secret).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_secret_key {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// A 32-byte seed from which an engine derives its channel keys (keep it secret).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_seed {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// A channel id, or the temporary id of a channel not yet funded: 32 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_channel_id {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// A payment hash: the SHA-256 of the payment's preimage, 32 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_payment_hash {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// A payment preimage: 32 bytes whose SHA-256 is the payment hash (the proof of
/// payment; whoever holds it can claim the payment).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_payment_preimage {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// A payment secret (BOLT 11 `s`): 32 bytes the payee gave the payer in its invoice.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_payment_secret {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// A payment id: 32 bytes chosen by the payer to name one payment (use a fresh random
/// one for each payment).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_payment_id {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// A transaction id: 32 bytes in internal byte order (reversed from how explorers
/// print it).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_txid {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// A block hash: 32 bytes in internal byte order (reversed from how explorers print
/// it).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_block_hash {
    /// The value's bytes.
    pub bytes: [u8; 32],
}

/// `From<[u8; N]>` for each value type.
macro_rules! from_array {
    ($($name:ident: $n:literal),* $(,)?) => {
        $(impl From<[u8; $n]> for $name {
            fn from(bytes: [u8; $n]) -> Self {
                $name { bytes }
            }
        })*
    };
}

from_array!(
    lnshard_node_id: 33,
    lnshard_secret_key: 32,
    lnshard_seed: 32,
    lnshard_channel_id: 32,
    lnshard_payment_hash: 32,
    lnshard_payment_preimage: 32,
    lnshard_payment_secret: 32,
    lnshard_payment_id: 32,
    lnshard_txid: 32,
    lnshard_block_hash: 32,
);

/// Writes `v` into the value `out` points to, as the value type `T` (one of this module's).
pub(crate) fn write_fixed<T: From<[u8; N]>, const N: usize>(out: *mut T, v: &[u8; N]) {
    // SAFETY: checked non-NULL by the caller (`try_out!`); points to a writable `T`
    // (documented contract). `T` has alignment 1, so any address is aligned.
    unsafe { out.write(T::from(*v)) };
}
