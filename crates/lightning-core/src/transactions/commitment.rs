//! Building a commitment transaction (BOLT 3, "Commitment Transaction Construction").

use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{
    ecdsa::Signature, PublicKey, Secp256k1, SecretKey, Signing, Verification,
};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};

use super::fees::{commitment_base_fee, is_htlc_trimmed, ANCHOR_OUTPUT_SATOSHIS};
use super::htlc::HtlcTx;
use super::scripts::{
    anchor_script, funding_script, htlc_script, to_local_script, to_remote_script_pubkey,
};
use super::sign::{self, SignatureError};
use super::{ChannelType, Htlc};
use crate::keys::CommitmentKeys;
#[cfg(test)]
use crate::keys::HtlcKeys;
use crate::secrets::FIRST_INDEX;

/// The most HTLCs a commitment can hold: BOLT 2 caps `max_accepted_htlcs` at 483 per side.
pub const MAX_HTLCS: usize = 2 * 483;

/// One side of a channel, relative to the commitment being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The commitment's owner.
    Local,
    /// The other side.
    Remote,
}

/// Why a commitment transaction could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitmentError {
    /// The commitment number does not fit in 48 bits.
    CommitmentNumberTooLarge {
        /// The number given.
        commitment_number: u64,
        /// The largest, `2^48 - 1`.
        max: u64,
    },
    /// More HTLCs than BOLT 2 allows in one commitment.
    TooManyHtlcs {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `to_local_msat + to_remote_msat + sum(htlc amount_msat)` is not the funding amount.
    BalanceMismatch {
        /// The sum of the balances and HTLCs (saturating).
        total_msat: u64,
        /// `funding_satoshis * 1000` (saturating).
        funding_msat: u64,
    },
    /// With anchors, the funder's balance cannot pay the two anchor outputs: the commitment
    /// would create value. A channel must never let the funder's balance fall this low.
    FunderCannotPayAnchors {
        /// The funder's balance, in satoshis.
        funder_satoshis: u64,
        /// What the two anchors cost.
        anchors_satoshis: u64,
    },
    /// The commitment has untrimmed HTLCs but its keys were derived without the HTLC keys
    /// ([`CommitmentKeys::derive_without_htlc_keys`]).
    MissingHtlcKeys,
}

impl fmt::Display for CommitmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitmentError::CommitmentNumberTooLarge {
                commitment_number,
                max,
            } => {
                write!(
                    f,
                    "commitment_number {commitment_number} is above the maximum {max}"
                )
            }
            CommitmentError::TooManyHtlcs { count, max } => {
                write!(f, "htlc count {count} is above the maximum {max}")
            }
            CommitmentError::BalanceMismatch {
                total_msat,
                funding_msat,
            } => write!(
                f,
                "balances and htlcs total {total_msat} msat but the funding amount is \
                 {funding_msat} msat"
            ),
            CommitmentError::FunderCannotPayAnchors {
                funder_satoshis,
                anchors_satoshis,
            } => write!(
                f,
                "the funder's balance {funder_satoshis} sat cannot pay the anchors \
                 ({anchors_satoshis} sat)"
            ),
            CommitmentError::MissingHtlcKeys => write!(
                f,
                "the commitment has untrimmed htlcs but was given no htlc keys"
            ),
        }
    }
}

impl std::error::Error for CommitmentError {}

/// Everything that determines one commitment transaction. "Local" is the commitment's owner.
#[derive(Debug, Clone, Copy)]
pub struct CommitmentParams<'a> {
    /// The channel's commitment format.
    pub channel_type: ChannelType,
    /// The funding output this commitment spends.
    pub funding_outpoint: OutPoint,
    /// The funding output's amount.
    pub funding_satoshis: u64,
    /// The owner's `funding_pubkey`.
    pub local_funding_pubkey: PublicKey,
    /// The other side's `funding_pubkey`.
    pub remote_funding_pubkey: PublicKey,
    /// The owner's `payment_basepoint` (for the commitment number obscuring factor).
    pub local_payment_basepoint: PublicKey,
    /// The other side's `payment_basepoint` (for the obscuring factor).
    pub remote_payment_basepoint: PublicKey,
    /// The side that opened (funded) the channel: it pays the fee and the anchors, and its
    /// `payment_basepoint` comes first in the obscuring factor.
    pub funder: Side,
    /// The 48-bit commitment number (0 for the first commitment).
    pub commitment_number: u64,
    /// The owner's balance, excluding HTLCs, before fees.
    pub to_local_msat: u64,
    /// The other side's balance, excluding HTLCs, before fees.
    pub to_remote_msat: u64,
    /// The commitment's `feerate_per_kw`.
    pub feerate_per_kw: u32,
    /// The owner's `dust_limit_satoshis`.
    pub dust_limit_satoshis: u64,
    /// The CSV delay on the owner's outputs (`to_self_delay` set by the other side).
    pub to_self_delay: u16,
    /// The keys of this commitment.
    pub keys: CommitmentKeys,
    /// The HTLCs committed to, trimmed or not.
    pub htlcs: &'a [Htlc],
}

/// The lower 48 bits of `SHA256(opener payment_basepoint || accepter payment_basepoint)`.
pub fn commitment_number_obscure_factor(
    opener_payment_basepoint: &PublicKey,
    accepter_payment_basepoint: &PublicKey,
) -> u64 {
    let mut engine = sha256::Hash::engine();
    engine.input(&opener_payment_basepoint.serialize());
    engine.input(&accepter_payment_basepoint.serialize());
    let hash = sha256::Hash::from_engine(engine).to_byte_array();
    let mut low = [0u8; 8];
    // The last 6 bytes of the big-endian hash are its lower 48 bits.
    for (dst, src) in low.iter_mut().skip(2).zip(hash.iter().skip(26)) {
        *dst = *src;
    }
    u64::from_be_bytes(low)
}

/// An untrimmed HTLC and the commitment output that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtlcOutput {
    /// Position of the HTLC in [`CommitmentParams::htlcs`].
    pub htlc_index: usize,
    /// Index of its output in the commitment transaction.
    pub output_index: u32,
    /// The HTLC.
    pub htlc: Htlc,
    /// The output's witness script.
    pub witness_script: ScriptBuf,
}

/// A built, unsigned commitment transaction and what is needed to sign it and its HTLC
/// transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentTx {
    tx: Transaction,
    channel_type: ChannelType,
    funding_script: ScriptBuf,
    funding_satoshis: u64,
    local_funding_pubkey: PublicKey,
    remote_funding_pubkey: PublicKey,
    commitment_number: u64,
    feerate_per_kw: u32,
    to_self_delay: u16,
    keys: CommitmentKeys,
    base_fee_satoshis: u64,
    to_local_satoshis: Option<u64>,
    to_remote_satoshis: Option<u64>,
    /// Untrimmed HTLCs in output order.
    htlc_outputs: Vec<HtlcOutput>,
    /// For each HTLC of the params, its output index; `None` when trimmed.
    htlc_output_indices: Vec<Option<u32>>,
}

/// What a commitment output pays, for sorting and for the HTLC mapping.
enum OutputKind {
    Htlc(usize, ScriptBuf),
    Other,
}

struct PendingOutput {
    txout: TxOut,
    cltv_expiry: u32,
    kind: OutputKind,
}

/// Builds the commitment transaction described by `params` (BOLT 3, "Commitment Transaction
/// Construction"): trims dust HTLCs, takes the base fee (and with anchors the two anchors)
/// from the funder, drops balances below the dust limit, adds the anchors that apply and
/// sorts the outputs by amount, then `scriptpubkey`, then HTLC `cltv_expiry`.
pub fn build_commitment_tx(params: &CommitmentParams<'_>) -> Result<CommitmentTx, CommitmentError> {
    if params.commitment_number > FIRST_INDEX {
        return Err(CommitmentError::CommitmentNumberTooLarge {
            commitment_number: params.commitment_number,
            max: FIRST_INDEX,
        });
    }
    if params.htlcs.len() > MAX_HTLCS {
        return Err(CommitmentError::TooManyHtlcs {
            count: params.htlcs.len(),
            max: MAX_HTLCS,
        });
    }
    check_balances(params)?;

    let channel_type = params.channel_type;
    let keys = &params.keys;
    let untrimmed: Vec<bool> = params
        .htlcs
        .iter()
        .map(|h| {
            !is_htlc_trimmed(
                h,
                params.feerate_per_kw,
                params.dust_limit_satoshis,
                channel_type,
            )
        })
        .collect();
    let untrimmed_count = untrimmed.iter().filter(|u| **u).count();
    let htlc_keys = match (&keys.htlc_keys, untrimmed_count) {
        (_, 0) => None,
        (Some(htlc_keys), _) => Some(htlc_keys),
        (None, _) => return Err(CommitmentError::MissingHtlcKeys),
    };
    let base_fee = commitment_base_fee(params.feerate_per_kw, untrimmed_count, channel_type);
    let mut to_local = params.to_local_msat / 1000;
    let mut to_remote = params.to_remote_msat / 1000;
    let funder_balance = match params.funder {
        Side::Local => &mut to_local,
        Side::Remote => &mut to_remote,
    };
    // The funder pays the anchors in full (they are outputs: value cannot be created), then
    // the fee; a fee above what remains takes all of it (BOLT 3: the funder's output is
    // trimmed and the fee is what is left).
    if channel_type.has_anchors() {
        let anchors_satoshis = 2 * ANCHOR_OUTPUT_SATOSHIS;
        *funder_balance = funder_balance.checked_sub(anchors_satoshis).ok_or(
            CommitmentError::FunderCannotPayAnchors {
                funder_satoshis: *funder_balance,
                anchors_satoshis,
            },
        )?;
    }
    *funder_balance = funder_balance.saturating_sub(base_fee);

    let mut outputs: Vec<PendingOutput> = Vec::with_capacity(untrimmed_count + 4);
    for (index, (htlc, keep)) in params.htlcs.iter().zip(&untrimmed).enumerate() {
        if let (true, Some(htlc_keys)) = (*keep, htlc_keys) {
            let script = htlc_script(htlc, &keys.revocation_key, htlc_keys, channel_type);
            outputs.push(PendingOutput {
                txout: TxOut {
                    value: Amount::from_sat(htlc.amount_satoshis()),
                    script_pubkey: script.to_p2wsh(),
                },
                cltv_expiry: htlc.cltv_expiry,
                kind: OutputKind::Htlc(index, script),
            });
        }
    }
    let has_to_local = to_local >= params.dust_limit_satoshis;
    let has_to_remote = to_remote >= params.dust_limit_satoshis;
    let mut push_other = |value: u64, script_pubkey: ScriptBuf| {
        outputs.push(PendingOutput {
            txout: TxOut {
                value: Amount::from_sat(value),
                script_pubkey,
            },
            cltv_expiry: 0,
            kind: OutputKind::Other,
        });
    };
    if has_to_local {
        let script = to_local_script(
            &keys.revocation_key,
            params.to_self_delay,
            &keys.local_delayed_key,
        );
        push_other(to_local, script.to_p2wsh());
    }
    if has_to_remote {
        push_other(
            to_remote,
            to_remote_script_pubkey(&keys.remote_payment_key, channel_type),
        );
    }
    if channel_type.has_anchors() {
        if has_to_local || untrimmed_count > 0 {
            push_other(
                ANCHOR_OUTPUT_SATOSHIS,
                anchor_script(&params.local_funding_pubkey).to_p2wsh(),
            );
        }
        if has_to_remote || untrimmed_count > 0 {
            push_other(
                ANCHOR_OUTPUT_SATOSHIS,
                anchor_script(&params.remote_funding_pubkey).to_p2wsh(),
            );
        }
    }
    sort_outputs(&mut outputs);

    let mut htlc_outputs = Vec::with_capacity(untrimmed_count);
    let mut htlc_output_indices = vec![None; params.htlcs.len()];
    let mut txouts = Vec::with_capacity(outputs.len());
    for (output_index, output) in outputs.into_iter().enumerate() {
        // At most MAX_HTLCS + 4 outputs, so the index fits in u32.
        let output_index = output_index as u32;
        if let OutputKind::Htlc(htlc_index, witness_script) = output.kind {
            if let (Some(slot), Some(htlc)) = (
                htlc_output_indices.get_mut(htlc_index),
                params.htlcs.get(htlc_index),
            ) {
                *slot = Some(output_index);
                htlc_outputs.push(HtlcOutput {
                    htlc_index,
                    output_index,
                    htlc: *htlc,
                    witness_script,
                });
            }
        }
        txouts.push(output.txout);
    }

    let (opener, accepter) = match params.funder {
        Side::Local => (
            &params.local_payment_basepoint,
            &params.remote_payment_basepoint,
        ),
        Side::Remote => (
            &params.remote_payment_basepoint,
            &params.local_payment_basepoint,
        ),
    };
    let obscured = params.commitment_number ^ commitment_number_obscure_factor(opener, accepter);
    // Both values fit in 32 bits: 0x20 or 0x80 in the top byte, 24 bits of the number below.
    let lock_time = (0x20 << 24) | (obscured & 0x00ff_ffff) as u32;
    let sequence = (0x80 << 24) | ((obscured >> 24) & 0x00ff_ffff) as u32;
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_consensus(lock_time),
        input: vec![TxIn {
            previous_output: params.funding_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence(sequence),
            witness: Witness::new(),
        }],
        output: txouts,
    };

    Ok(CommitmentTx {
        tx,
        channel_type,
        funding_script: funding_script(&params.local_funding_pubkey, &params.remote_funding_pubkey),
        funding_satoshis: params.funding_satoshis,
        local_funding_pubkey: params.local_funding_pubkey,
        remote_funding_pubkey: params.remote_funding_pubkey,
        commitment_number: params.commitment_number,
        feerate_per_kw: params.feerate_per_kw,
        to_self_delay: params.to_self_delay,
        keys: params.keys,
        base_fee_satoshis: base_fee,
        to_local_satoshis: has_to_local.then_some(to_local),
        to_remote_satoshis: has_to_remote.then_some(to_remote),
        htlc_outputs,
        htlc_output_indices,
    })
}

fn check_balances(params: &CommitmentParams<'_>) -> Result<(), CommitmentError> {
    let total = params
        .htlcs
        .iter()
        .try_fold(
            params.to_local_msat.checked_add(params.to_remote_msat),
            |acc, h| Some(acc?.checked_add(h.amount_msat)),
        )
        .flatten();
    let funding_msat = params.funding_satoshis.checked_mul(1000);
    match (total, funding_msat) {
        (Some(total), Some(funding)) if total == funding => Ok(()),
        (total, funding) => Err(CommitmentError::BalanceMismatch {
            total_msat: total.unwrap_or(u64::MAX),
            funding_msat: funding.unwrap_or(u64::MAX),
        }),
    }
}

/// BIP 69 output order with the BOLT 3 tie-break: amount, then `scriptpubkey` (byte-wise,
/// shorter first on a common prefix), then `cltv_expiry` for HTLC outputs. The sort is stable,
/// so identical HTLC outputs with equal expiry keep the order of the HTLC list.
fn sort_outputs(outputs: &mut [PendingOutput]) {
    outputs.sort_by(|a, b| {
        a.txout
            .value
            .cmp(&b.txout.value)
            .then_with(|| {
                a.txout
                    .script_pubkey
                    .as_bytes()
                    .cmp(b.txout.script_pubkey.as_bytes())
            })
            .then_with(|| a.cltv_expiry.cmp(&b.cltv_expiry))
    });
}

impl CommitmentTx {
    /// The unsigned transaction (its input's witness is empty).
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// The transaction id (witness data does not change it).
    pub fn txid(&self) -> Txid {
        self.tx.compute_txid()
    }

    /// The channel type it was built for.
    pub fn channel_type(&self) -> ChannelType {
        self.channel_type
    }

    /// The commitment number.
    pub fn commitment_number(&self) -> u64 {
        self.commitment_number
    }

    /// The keys of this commitment.
    pub fn keys(&self) -> &CommitmentKeys {
        &self.keys
    }

    /// The 2-of-2 funding witness script the input spends.
    pub fn funding_script(&self) -> &ScriptBuf {
        &self.funding_script
    }

    /// The base fee (BOLT 3 "Fee Calculation"), paid by the funder.
    pub fn base_fee_satoshis(&self) -> u64 {
        self.base_fee_satoshis
    }

    /// The actual fee: the funding amount minus all outputs (base fee plus trimmed amounts and
    /// rounding).
    pub fn actual_fee_satoshis(&self) -> u64 {
        let outputs: u64 = self.tx.output.iter().map(|o| o.value.to_sat()).sum();
        self.funding_satoshis.saturating_sub(outputs)
    }

    /// The `to_local` output amount, if the output exists.
    pub fn to_local_satoshis(&self) -> Option<u64> {
        self.to_local_satoshis
    }

    /// The `to_remote` output amount, if the output exists.
    pub fn to_remote_satoshis(&self) -> Option<u64> {
        self.to_remote_satoshis
    }

    /// The untrimmed HTLCs in output order (the order of `htlc_signatures` in
    /// `commitment_signed`).
    pub fn htlc_outputs(&self) -> &[HtlcOutput] {
        &self.htlc_outputs
    }

    /// For each HTLC of [`CommitmentParams::htlcs`], in that order, its output index, or
    /// `None` if it was trimmed.
    pub fn htlc_output_indices(&self) -> &[Option<u32>] {
        &self.htlc_output_indices
    }

    /// The HTLC-timeout / HTLC-success transactions of the untrimmed HTLCs, in output order.
    pub fn htlc_txs(&self) -> Vec<HtlcTx> {
        // Untrimmed HTLCs exist only if the commitment was built with HTLC keys.
        let Some(htlc_keys) = &self.keys.htlc_keys else {
            return Vec::new();
        };
        let txid = self.txid();
        self.htlc_outputs
            .iter()
            .map(|output| {
                HtlcTx::for_untrimmed_output(
                    txid,
                    output,
                    self.feerate_per_kw,
                    self.to_self_delay,
                    &self.keys,
                    htlc_keys,
                    self.channel_type,
                )
            })
            .collect()
    }

    /// The segwit sighash (`SIGHASH_ALL`) that both funding keys sign.
    pub fn sighash(&self) -> bitcoin::secp256k1::Message {
        sign::segwit_v0_sighash(
            &self.tx,
            0,
            &self.funding_script,
            self.funding_satoshis,
            bitcoin::EcdsaSighashType::All,
        )
        .expect("a commitment transaction always has exactly one input")
    }

    /// Signs the commitment with a funding key (either side's).
    pub fn sign<C: Signing>(&self, secp: &Secp256k1<C>, funding_key: &SecretKey) -> Signature {
        secp.sign_ecdsa(&self.sighash(), funding_key)
    }

    /// Checks a signature by `funding_pubkey` on this commitment.
    pub fn verify<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        signature: &Signature,
        funding_pubkey: &PublicKey,
    ) -> Result<(), SignatureError> {
        secp.verify_ecdsa(&self.sighash(), signature, funding_pubkey)
            .map_err(|_| SignatureError::InvalidCommitmentSignature)
    }

    /// Checks the remote side's signature (as received in `commitment_signed` for the
    /// owner's commitment).
    pub fn verify_remote<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        self.verify(secp, signature, &self.remote_funding_pubkey)
    }

    /// The fully signed transaction, given both sides' signatures: witness
    /// `0 <signature_for_pubkey1> <signature_for_pubkey2> <funding script>`.
    pub fn finalize(
        &self,
        local_signature: &Signature,
        remote_signature: &Signature,
    ) -> Transaction {
        let mut tx = self.tx.clone();
        let witness = sign::funding_witness(
            (&self.local_funding_pubkey, local_signature),
            (&self.remote_funding_pubkey, remote_signature),
            &self.funding_script,
        );
        if let Some(input) = tx.input.first_mut() {
            input.witness = witness;
        }
        tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transactions::HtlcDirection;
    use crate::types::PaymentHash;
    use bitcoin::secp256k1::SecretKey;

    fn pk(byte: u8) -> PublicKey {
        let secp = crate::secp::ctx();
        PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[byte; 32]).expect("valid"))
    }

    fn keys() -> CommitmentKeys {
        CommitmentKeys {
            per_commitment_point: pk(1),
            revocation_key: pk(2),
            local_delayed_key: pk(3),
            htlc_keys: Some(HtlcKeys {
                local_htlc_key: pk(4),
                remote_htlc_key: pk(5),
            }),
            remote_payment_key: pk(6),
        }
    }

    fn params<'a>(htlcs: &'a [Htlc], channel_type: ChannelType) -> CommitmentParams<'a> {
        let in_htlcs: u64 = htlcs.iter().map(|h| h.amount_msat).sum();
        CommitmentParams {
            channel_type,
            funding_outpoint: OutPoint::null(),
            funding_satoshis: 1_000_000,
            local_funding_pubkey: pk(7),
            remote_funding_pubkey: pk(8),
            local_payment_basepoint: pk(9),
            remote_payment_basepoint: pk(10),
            funder: Side::Local,
            commitment_number: 0,
            to_local_msat: 600_000_000u64.saturating_sub(in_htlcs),
            to_remote_msat: 400_000_000,
            feerate_per_kw: 1000,
            dust_limit_satoshis: 546,
            to_self_delay: 144,
            keys: keys(),
            htlcs,
        }
    }

    fn offered(amount_msat: u64, cltv_expiry: u32) -> Htlc {
        Htlc {
            direction: HtlcDirection::Offered,
            amount_msat,
            cltv_expiry,
            payment_hash: PaymentHash([5; 32]),
        }
    }

    #[test]
    fn identical_htlc_outputs_are_ordered_by_cltv_expiry() {
        let htlcs = [
            offered(5_000_000, 506),
            offered(5_000_001, 505),
            offered(5_000_000, 504),
        ];
        let tx = build_commitment_tx(&params(&htlcs, ChannelType::StaticRemoteKey)).expect("valid");
        let order: Vec<usize> = tx.htlc_outputs().iter().map(|o| o.htlc_index).collect();
        assert_eq!(order, [2, 1, 0]);
        let outputs = &tx.tx().output;
        assert_eq!(
            outputs.first(),
            outputs.get(1),
            "the three HTLC outputs are identical"
        );
        assert_eq!(tx.htlc_output_indices(), &[Some(2), Some(1), Some(0)]);
    }

    #[test]
    fn equal_expiry_keeps_htlc_list_order() {
        let htlcs = [offered(5_000_000, 505), offered(5_000_000, 505)];
        let tx = build_commitment_tx(&params(&htlcs, ChannelType::StaticRemoteKey)).expect("valid");
        assert_eq!(tx.htlc_output_indices(), &[Some(0), Some(1)]);
    }

    #[test]
    fn to_local_exactly_at_dust_limit_is_kept() {
        // Funder pays 724 * 1000 / 1000 = 724 sat.
        let mut p = params(&[], ChannelType::StaticRemoteKey);
        p.to_local_msat = (546 + 724) * 1000;
        p.to_remote_msat = 1_000_000_000 - p.to_local_msat;
        let tx = build_commitment_tx(&p).expect("valid");
        assert_eq!(tx.to_local_satoshis(), Some(546));
        p.to_local_msat -= 1;
        p.to_remote_msat += 1;
        let tx = build_commitment_tx(&p).expect("valid");
        assert_eq!(
            tx.to_local_satoshis(),
            None,
            "545.999 sat rounds down below the limit"
        );
        assert_eq!(tx.tx().output.len(), 1);
    }

    #[test]
    fn fee_beyond_funder_balance_saturates() {
        let mut p = params(&[], ChannelType::StaticRemoteKey);
        p.feerate_per_kw = u32::MAX;
        let tx = build_commitment_tx(&p).expect("valid");
        assert_eq!(tx.to_local_satoshis(), None);
        assert_eq!(tx.to_remote_satoshis(), Some(400_000));
        // The remote side funds: now its output goes.
        p.funder = Side::Remote;
        let tx = build_commitment_tx(&p).expect("valid");
        assert_eq!(tx.to_local_satoshis(), Some(600_000));
        assert_eq!(tx.to_remote_satoshis(), None);
    }

    /// Found by `builder_invariants`: a funder too poor to pay the anchors used to get them
    /// anyway, and the transaction paid out more than the funding output held.
    #[test]
    fn funder_unable_to_pay_anchors_is_an_error_not_created_value() {
        let htlcs = [];
        let mut p = params(&htlcs, ChannelType::AnchorsZeroFeeHtlcTx);
        p.funder = Side::Remote;
        p.to_local_msat = p.funding_satoshis * 1000 - 500_000;
        p.to_remote_msat = 500_000;
        p.feerate_per_kw = 0;
        assert_eq!(
            build_commitment_tx(&p).unwrap_err(),
            CommitmentError::FunderCannotPayAnchors {
                funder_satoshis: 500,
                anchors_satoshis: 660
            }
        );
        p.to_local_msat -= 160_000;
        p.to_remote_msat += 160_000;
        let tx = build_commitment_tx(&p).expect("660 sat pays both anchors");
        let total: u64 = tx.tx().output.iter().map(|o| o.value.to_sat()).sum();
        assert_eq!(total + tx.actual_fee_satoshis(), p.funding_satoshis);
    }

    #[test]
    fn anchors_only_for_existing_outputs_without_htlcs() {
        let mut p = params(&[], ChannelType::AnchorsZeroFeeHtlcTx);
        p.to_local_msat = 1_000_000_000;
        p.to_remote_msat = 0;
        let tx = build_commitment_tx(&p).expect("valid");
        let anchor = anchor_script(&p.local_funding_pubkey).to_p2wsh();
        let scripts: Vec<&ScriptBuf> = tx.tx().output.iter().map(|o| &o.script_pubkey).collect();
        assert_eq!(scripts.len(), 2);
        assert!(scripts.contains(&&anchor));
        // With an untrimmed HTLC both anchors appear even without to_remote.
        let htlcs = [offered(1_000_000, 500)];
        let mut p = params(&htlcs, ChannelType::AnchorsZeroFeeHtlcTx);
        p.to_local_msat = 1_000_000_000 - 1_000_000;
        p.to_remote_msat = 0;
        let tx = build_commitment_tx(&p).expect("valid");
        assert_eq!(tx.tx().output.len(), 4);
        // Base fee 1296 and the two anchors come out of to_local.
        assert_eq!(tx.base_fee_satoshis(), (1124 + 172) * 1000 / 1000);
        assert_eq!(tx.to_local_satoshis(), Some(999_000 - 1296 - 660));
    }

    #[test]
    fn bad_params_are_rejected() {
        let mut p = params(&[], ChannelType::StaticRemoteKey);
        p.commitment_number = 1 << 48;
        assert_eq!(
            build_commitment_tx(&p),
            Err(CommitmentError::CommitmentNumberTooLarge {
                commitment_number: 1 << 48,
                max: FIRST_INDEX
            })
        );
        let mut p = params(&[], ChannelType::StaticRemoteKey);
        p.to_remote_msat += 1;
        assert_eq!(
            build_commitment_tx(&p),
            Err(CommitmentError::BalanceMismatch {
                total_msat: 1_000_000_001,
                funding_msat: 1_000_000_000
            })
        );
        p.to_remote_msat = u64::MAX;
        assert_eq!(
            build_commitment_tx(&p),
            Err(CommitmentError::BalanceMismatch {
                total_msat: u64::MAX,
                funding_msat: 1_000_000_000
            })
        );
        let many = vec![offered(1, 1); MAX_HTLCS + 1];
        let p = params(&many, ChannelType::StaticRemoteKey);
        assert_eq!(
            build_commitment_tx(&p),
            Err(CommitmentError::TooManyHtlcs {
                count: MAX_HTLCS + 1,
                max: MAX_HTLCS
            })
        );
    }

    #[test]
    fn obscured_number_goes_into_locktime_and_sequence() {
        let mut p = params(&[], ChannelType::StaticRemoteKey);
        p.commitment_number = 0x1234_5678_9abc;
        let factor = commitment_number_obscure_factor(
            &p.local_payment_basepoint,
            &p.remote_payment_basepoint,
        );
        assert!(factor < 1 << 48);
        let obscured = 0x1234_5678_9abc ^ factor;
        let tx = build_commitment_tx(&p).expect("valid");
        let lock = tx.tx().lock_time.to_consensus_u32();
        let seq = tx.tx().input.first().expect("one input").sequence.0;
        assert_eq!(lock >> 24, 0x20);
        assert_eq!(seq >> 24, 0x80);
        assert_eq!(
            u64::from(lock & 0xff_ffff) | (u64::from(seq & 0xff_ffff) << 24),
            obscured
        );
        // The funder's basepoint comes first.
        p.funder = Side::Remote;
        p.to_local_msat = 400_000_000;
        p.to_remote_msat = 600_000_000;
        let swapped = build_commitment_tx(&p).expect("valid");
        let factor2 = commitment_number_obscure_factor(
            &p.remote_payment_basepoint,
            &p.local_payment_basepoint,
        );
        let lock2 = swapped.tx().lock_time.to_consensus_u32();
        assert_eq!(
            u64::from(lock2 & 0xff_ffff),
            (0x1234_5678_9abc ^ factor2) & 0xff_ffff
        );
    }

    proptest::proptest! {
        /// Whatever the amounts, feerate and dust limit, building never panics, value is
        /// conserved, every untrimmed HTLC gets exactly one output and the outputs are sorted.
        #[test]
        fn builder_invariants(
            anchors in proptest::bool::ANY,
            local_funds in proptest::bool::ANY,
            feerate in 0u32..20_000_000,
            dust in 0u64..100_000,
            split in 0u64..=1_000,
            raw_htlcs in proptest::collection::vec(
                (proptest::bool::ANY, 0u64..3_000_000_000, 0u32..1000), 0..12),
        ) {
            let channel_type = if anchors {
                ChannelType::AnchorsZeroFeeHtlcTx
            } else {
                ChannelType::StaticRemoteKey
            };
            let funding_msat: u64 = 100_000_000_000;
            let mut htlc_total = 0u64;
            let htlcs: Vec<Htlc> = raw_htlcs
                .iter()
                .filter_map(|(offered, amount, cltv)| {
                    if htlc_total + amount > funding_msat {
                        return None;
                    }
                    htlc_total += amount;
                    Some(Htlc {
                        direction: if *offered { HtlcDirection::Offered } else { HtlcDirection::Received },
                        amount_msat: *amount,
                        cltv_expiry: *cltv,
                        payment_hash: PaymentHash([(*cltv % 3) as u8; 32]),
                    })
                })
                .collect();
            let rest = funding_msat - htlc_total;
            let mut p = params(&htlcs, channel_type);
            p.funding_satoshis = funding_msat / 1000;
            p.to_local_msat = rest / 1000 * split;
            p.to_remote_msat = rest - p.to_local_msat;
            p.feerate_per_kw = feerate;
            p.dust_limit_satoshis = dust;
            p.funder = if local_funds { Side::Local } else { Side::Remote };
            let funder_msat = if local_funds { p.to_local_msat } else { p.to_remote_msat };
            let tx = match build_commitment_tx(&p) {
                Err(CommitmentError::FunderCannotPayAnchors { funder_satoshis, .. }) => {
                    proptest::prop_assert!(anchors);
                    proptest::prop_assert_eq!(funder_satoshis, funder_msat / 1000);
                    proptest::prop_assert!(funder_satoshis < 2 * ANCHOR_OUTPUT_SATOSHIS);
                    return Ok(());
                }
                other => other.expect("consistent params"),
            };
            let outputs = &tx.tx().output;
            let total: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
            proptest::prop_assert_eq!(total + tx.actual_fee_satoshis(), p.funding_satoshis);
            let untrimmed = htlcs
                .iter()
                .filter(|h| !is_htlc_trimmed(h, feerate, dust, channel_type))
                .count();
            proptest::prop_assert_eq!(tx.htlc_outputs().len(), untrimmed);
            let anchors_count = outputs
                .iter()
                .filter(|o| o.value.to_sat() == ANCHOR_OUTPUT_SATOSHIS
                    && (o.script_pubkey == anchor_script(&p.local_funding_pubkey).to_p2wsh()
                        || o.script_pubkey == anchor_script(&p.remote_funding_pubkey).to_p2wsh()))
                .count();
            let expected_len = untrimmed
                + usize::from(tx.to_local_satoshis().is_some())
                + usize::from(tx.to_remote_satoshis().is_some())
                + anchors_count;
            proptest::prop_assert_eq!(outputs.len(), expected_len);
            if !anchors {
                proptest::prop_assert_eq!(anchors_count, 0);
            }
            for pair in outputs.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                proptest::prop_assert!(
                    (a.value, a.script_pubkey.as_bytes()) <= (b.value, b.script_pubkey.as_bytes())
                );
            }
            for out in tx.htlc_outputs() {
                proptest::prop_assert_eq!(
                    tx.htlc_output_indices()[out.htlc_index],
                    Some(out.output_index)
                );
                let txout = &outputs[out.output_index as usize];
                proptest::prop_assert_eq!(&txout.script_pubkey, &out.witness_script.to_p2wsh());
                proptest::prop_assert_eq!(txout.value.to_sat(), out.htlc.amount_satoshis());
            }
            for pair in tx.htlc_outputs().windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                if outputs[a.output_index as usize] == outputs[b.output_index as usize] {
                    proptest::prop_assert!(a.htlc.cltv_expiry <= b.htlc.cltv_expiry);
                }
            }
            proptest::prop_assert_eq!(tx.htlc_txs().len(), untrimmed);
        }
    }
}
