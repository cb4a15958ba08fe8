//! BOLT 3 transactions: the funding output, commitment transactions, HTLC-timeout and
//! HTLC-success transactions, their scripts, fees, dust trimming and signatures.
//!
//! Names follow BOLT 3: a commitment transaction belongs to one side, its *owner* or "local"
//! side (the side that can broadcast it); the other side is "remote". Each node builds both
//! commitments of a channel: its own (to check the peer's signatures) and the peer's (to sign
//! it), swapping the roles of the two sides for the latter.
//!
//! * [`scripts`]: the witness scripts and output scripts.
//! * [`fees`]: expected weights, fees and the dust-trimming rule.
//! * [`commitment`]: building a commitment transaction ([`build_commitment_tx`]).
//! * [`htlc`]: the second-stage HTLC transactions spending its HTLC outputs.
//! * [`sign`]: sighashes, signing and verification, and witness assembly.
//! * [`claims`]: claim transactions spending commitment and second-stage outputs (BOLT 5).

pub mod claims;
pub mod commitment;
pub mod fees;
pub mod htlc;
pub mod scripts;
pub mod sign;

pub use commitment::{
    build_commitment_tx, commitment_number_obscure_factor, CommitmentError, CommitmentParams,
    CommitmentTx, HtlcOutput, Side,
};
pub use htlc::{HtlcTx, HtlcTxError};
pub use sign::SignatureError;

use crate::types::PaymentHash;

/// The commitment format negotiated for a channel (its `channel_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelType {
    /// `option_static_remotekey`: `to_remote` is a P2WPKH to the remote `payment_basepoint`;
    /// HTLC transactions pay their own fee; no anchors.
    StaticRemoteKey,
    /// `option_anchors_zero_fee_htlc_tx`: two 330-sat anchor outputs, a `to_remote` locked
    /// for one block, CSV 1 on HTLC outputs, zero-fee HTLC transactions whose counterparty
    /// signature uses `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`.
    AnchorsZeroFeeHtlcTx,
}

impl ChannelType {
    /// Whether `option_anchors` applies.
    pub fn has_anchors(self) -> bool {
        matches!(self, ChannelType::AnchorsZeroFeeHtlcTx)
    }
}

/// Which way an HTLC goes, from the commitment owner's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HtlcDirection {
    /// Offered by the owner (local->remote): spent by an HTLC-timeout transaction.
    Offered,
    /// Received by the owner (remote->local): spent by an HTLC-success transaction.
    Received,
}

/// An HTLC committed to in a commitment transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Htlc {
    /// Offered or received, from the commitment owner's point of view.
    pub direction: HtlcDirection,
    /// Its amount in millisatoshi (the output holds the whole satoshis, rounded down).
    pub amount_msat: u64,
    /// Its `cltv_expiry`.
    pub cltv_expiry: u32,
    /// Its `payment_hash`.
    pub payment_hash: PaymentHash,
}

impl Htlc {
    /// The amount in whole satoshis, rounded down.
    pub fn amount_satoshis(&self) -> u64 {
        self.amount_msat / 1000
    }
}
