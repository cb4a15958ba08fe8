//! Fee bumping of anchor channels' holder commitments by CPFP, sans-IO: the monitor asks
//! for fees ([`MonitorEvent::BumpNeeded`](super::MonitorEvent::BumpNeeded) with our anchor's
//! outpoint); [`build_anchor_child`] lays out a child spending that anchor (input 0) and
//! wallet coins (largest first), paying change to the wallet, so that the package (the
//! commitment and the child) pays the target feerate on their combined weight. The engine
//! signs the anchor input with the channel's funding key
//! ([`ChannelMonitor::sign_anchor_input`]); the host's wallet signs its own inputs. Both are
//! SIGHASH_ALL segwit v0 signatures, which commit to no other input's witness, so the order
//! in which they are made does not matter.

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature as BitcoinSignature;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Weight, Witness,
};

use super::ChannelMonitor;
use crate::transactions::fees::ANCHOR_OUTPUT_SATOSHIS;
use crate::transactions::scripts::anchor_script;
use crate::transactions::sign::sign_segwit_v0_input;
use crate::wallet::{fee_for_weight, WalletUtxo};

/// The satisfaction weight of an anchor input spent by its funding key: the witness item
/// count (1), a signature of at most 73 bytes with its sighash byte and length (74), and
/// the 40-byte anchor script with its length (41).
pub const ANCHOR_SATISFACTION_WEIGHT: u64 = 1 + 74 + 41;

/// The segwit marker and flag (2 weight units), absent from an unsigned transaction's
/// weight.
const SEGWIT_MARKER_WEIGHT: u64 = 2;

/// Why no bump could be built or signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BumpError {
    /// The channel has no anchors, or the commitment has no anchor of ours.
    NoAnchor,
    /// The transaction is not the channel's latest holder commitment (or the monitor has
    /// none signed).
    NotOurCommitment {
        /// The transaction given.
        txid: Txid,
    },
    /// The commitment's outputs are worth more than the funding output (a corrupt state).
    CommitmentOverspends {
        /// The commitment.
        txid: Txid,
    },
    /// The input to sign does not exist or does not spend our anchor.
    NotAnchorInput {
        /// The input's index.
        input: usize,
    },
    /// The wallet's spendable segwit coins cannot pay the child's fee and a change output
    /// above dust.
    InsufficientFunds {
        /// What the anchor and every coin would have to hold to pay the fee and the
        /// smallest change.
        needed_satoshis: u64,
        /// What the anchor and the spendable segwit coins hold.
        available_satoshis: u64,
    },
    /// The feerate is below the relay minimum (253 sat per 1000 weight).
    FeerateTooLow {
        /// The feerate asked for.
        feerate_per_kw: u32,
    },
    /// The transaction is not one of our HTLC-success/timeout transactions on our latest
    /// holder commitment of an anchor channel (one input, one output, signed).
    NotHtlcTransaction {
        /// The transaction given.
        txid: Txid,
    },
    /// A replacement would have to pay more than the fee cap (the value at stake,
    /// [`MonitorEvent::BumpNeeded`](super::MonitorEvent::BumpNeeded)'s `max_fee_sat`): the
    /// least it may pay (the previous fee plus BIP 125's increment) is above it. Keep the
    /// previous bump.
    FeeCapExceeded {
        /// The least fee the replacement would pay.
        fee_satoshis: u64,
        /// The cap.
        max_fee_sat: u64,
    },
    /// The transaction to replace is not a bump of this kind (an HTLC bump without its
    /// change output, or a child without its anchor first).
    NotABump {
        /// The transaction given.
        txid: Txid,
    },
}

impl std::fmt::Display for BumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BumpError::NoAnchor => write!(f, "no anchor output of ours to spend"),
            BumpError::NotOurCommitment { txid } => {
                write!(f, "{txid} is not our latest holder commitment")
            }
            BumpError::CommitmentOverspends { txid } => {
                write!(f, "commitment {txid} pays more than the funding output")
            }
            BumpError::NotAnchorInput { input } => {
                write!(f, "input {input} does not spend our anchor")
            }
            BumpError::InsufficientFunds {
                needed_satoshis,
                available_satoshis,
            } => write!(
                f,
                "insufficient funds for the bump: need {needed_satoshis} sat, have {available_satoshis} sat"
            ),
            BumpError::FeerateTooLow { feerate_per_kw } => {
                write!(f, "feerate {feerate_per_kw} sat/kw is below the relay minimum")
            }
            BumpError::NotHtlcTransaction { txid } => {
                write!(f, "{txid} is not one of our anchor HTLC transactions")
            }
            BumpError::FeeCapExceeded {
                fee_satoshis,
                max_fee_sat,
            } => write!(
                f,
                "a replacement paying {fee_satoshis} sat exceeds the fee cap {max_fee_sat} sat"
            ),
            BumpError::NotABump { txid } => write!(f, "{txid} is not a bump to replace"),
        }
    }
}

impl std::error::Error for BumpError {}

/// A holder commitment to bump through its anchor, as its monitor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorParent {
    /// The commitment's txid.
    pub txid: Txid,
    /// Our anchor output on it.
    pub anchor: OutPoint,
    /// That output (330 sat to the P2WSH of our funding key's anchor script).
    pub anchor_txout: TxOut,
    /// The commitment's weight, signed.
    pub weight: u64,
    /// The fee it pays by itself (the funding output's value minus its outputs).
    pub fee_satoshis: u64,
}

/// A CPFP child laid out, unsigned: input 0 spends the anchor (the engine signs it), the
/// others spend `wallet_inputs` in order (the wallet signs them); output 0 is the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorChild {
    /// The unsigned child: version 2, every input signalling replaceability (BIP 125).
    pub tx: Transaction,
    /// The anchor it spends (input 0) and that output.
    pub anchor: (OutPoint, TxOut),
    /// The wallet's coins spent, inputs 1.. in order.
    pub wallet_inputs: Vec<WalletUtxo>,
    /// The child's fee (its inputs minus its change).
    pub fee_satoshis: u64,
    /// The child's weight once signed (an upper bound: a shorter signature only makes it
    /// lighter).
    pub weight: u64,
    /// The package's fee: the parent's and the child's.
    pub package_fee_satoshis: u64,
    /// The package's weight: the parent's and the child's.
    pub package_weight: u64,
}

impl AnchorChild {
    /// The outputs every input of `tx` spends, in input order: what signing needs.
    pub fn prevouts(&self) -> Vec<TxOut> {
        std::iter::once(self.anchor.1.clone())
            .chain(self.wallet_inputs.iter().map(|u| u.txout.clone()))
            .collect()
    }

    /// The coins of the wallet it spends.
    pub fn wallet_outpoints(&self) -> Vec<OutPoint> {
        self.wallet_inputs.iter().map(|u| u.outpoint).collect()
    }
}

fn input(outpoint: OutPoint) -> TxIn {
    TxIn {
        previous_output: outpoint,
        script_sig: ScriptBuf::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness: Witness::new(),
    }
}

/// Lays out the child bumping `parent` through its anchor at `feerate_per_kw`: the anchor
/// and wallet coins among `utxos` (largest first, ties by outpoint; coins that are not
/// segwit outputs are skipped, the child's txid must not be malleable) are spent until the
/// fee is paid with change above the change script's dust limit left for `change_script`.
/// The fee is what makes the package pay `feerate_per_kw` on its combined weight (the
/// parent's own fee counts), and at least that feerate on the child's own weight, rounded
/// up. `utxos` should leave out coins reserved for anything else.
pub fn build_anchor_child(
    parent: &AnchorParent,
    utxos: &[WalletUtxo],
    change_script: ScriptBuf,
    feerate_per_kw: u32,
) -> Result<AnchorChild, BumpError> {
    if feerate_per_kw < crate::node::MIN_RELAY_FEERATE_PER_KW {
        return Err(BumpError::FeerateTooLow { feerate_per_kw });
    }
    let candidates = crate::wallet::largest_first(utxos);
    let anchor_value = parent.anchor_txout.value.to_sat();
    let available = candidates.iter().fold(anchor_value, |s, u| {
        s.saturating_add(u.txout.value.to_sat())
    });
    let dust = change_script.minimal_non_dust().to_sat();
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![input(parent.anchor)],
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: change_script,
        }],
    };
    let mut chosen: Vec<&WalletUtxo> = Vec::new();
    let mut total = anchor_value;
    let mut needed = 0;
    for utxo in candidates {
        chosen.push(utxo);
        tx.input.push(input(utxo.outpoint));
        total = total.saturating_add(utxo.txout.value.to_sat());
        let weight = Weight::to_wu(tx.weight())
            + SEGWIT_MARKER_WEIGHT
            + ANCHOR_SATISFACTION_WEIGHT
            + chosen.iter().map(|u| u.satisfaction_weight).sum::<u64>();
        let package_weight = parent.weight + weight;
        let fee = fee_for_weight(feerate_per_kw, package_weight)
            .saturating_sub(parent.fee_satoshis)
            .max(fee_for_weight(feerate_per_kw, weight));
        needed = fee.saturating_add(dust);
        let Some(change) = total.checked_sub(fee).filter(|&c| c >= dust) else {
            continue;
        };
        if let Some(out) = tx.output.first_mut() {
            out.value = Amount::from_sat(change);
        }
        return Ok(AnchorChild {
            tx,
            anchor: (parent.anchor, parent.anchor_txout.clone()),
            wallet_inputs: chosen.into_iter().cloned().collect(),
            fee_satoshis: fee,
            weight,
            package_fee_satoshis: parent.fee_satoshis + fee,
            package_weight,
        });
    }
    Err(BumpError::InsufficientFunds {
        needed_satoshis: needed.max(dust),
        available_satoshis: available,
    })
}

/// BIP 125's incremental relay feerate, per 1000 weight units (1 sat/vB): what a
/// replacement must pay on top of what it replaces, on its own size.
pub const INCREMENTAL_RELAY_FEERATE_PER_KW: u32 = 250;

/// The fee of a replacement at `wanted` (what its feerate asks), paying at least `previous`
/// plus BIP 125's increment on `weight`, and at most `max_fee_sat`: refused with
/// [`BumpError::FeeCapExceeded`] when even the least replacement would pay more than that.
fn replacement_fee(
    wanted: u64,
    previous: u64,
    weight: u64,
    max_fee_sat: u64,
) -> Result<u64, BumpError> {
    let least = previous.saturating_add(fee_for_weight(INCREMENTAL_RELAY_FEERATE_PER_KW, weight));
    if least > max_fee_sat {
        return Err(BumpError::FeeCapExceeded {
            fee_satoshis: least,
            max_fee_sat,
        });
    }
    Ok(wanted.max(least).min(max_fee_sat))
}

/// A replacement of `previous` (a child of the same `parent`) at `feerate_per_kw`, spending
/// the same inputs (so that it conflicts with `previous` and replaces it, BIP 125) with less
/// change: its fee is what makes the package pay `feerate_per_kw`, and at least
/// `previous`'s fee plus the incremental relay feerate on its own weight, and never more
/// than `max_fee_sat` (the child's fee is clamped to it: the package then pays less than
/// `feerate_per_kw`). Unsigned again: the anchor and the wallet's inputs must be signed
/// anew. Refused with [`BumpError::FeeCapExceeded`] when the least replacement would pay
/// more than `max_fee_sat`, and with [`BumpError::InsufficientFunds`] when the change would
/// fall below dust (more inputs are then needed: a new child, not a replacement of this
/// one).
pub fn rebump_anchor_child(
    parent: &AnchorParent,
    previous: &AnchorChild,
    feerate_per_kw: u32,
    max_fee_sat: u64,
) -> Result<AnchorChild, BumpError> {
    if feerate_per_kw < crate::node::MIN_RELAY_FEERATE_PER_KW {
        return Err(BumpError::FeerateTooLow { feerate_per_kw });
    }
    if previous.anchor.0 != parent.anchor {
        return Err(BumpError::NotAnchorInput { input: 0 });
    }
    let weight = previous.weight;
    let package_weight = parent.weight + weight;
    let wanted = fee_for_weight(feerate_per_kw, package_weight)
        .saturating_sub(parent.fee_satoshis)
        .max(fee_for_weight(feerate_per_kw, weight));
    let fee = replacement_fee(wanted, previous.fee_satoshis, weight, max_fee_sat)?;
    let total = previous
        .prevouts()
        .iter()
        .fold(0u64, |s, o| s.saturating_add(o.value.to_sat()));
    let mut tx = previous.tx.clone();
    for input in &mut tx.input {
        input.witness = Witness::new();
    }
    let Some(change_out) = tx.output.first_mut() else {
        return Err(BumpError::NotAnchorInput { input: 0 });
    };
    let dust = change_out.script_pubkey.minimal_non_dust().to_sat();
    let change =
        total
            .checked_sub(fee)
            .filter(|&c| c >= dust)
            .ok_or(BumpError::InsufficientFunds {
                needed_satoshis: fee.saturating_add(dust),
                available_satoshis: total,
            })?;
    change_out.value = Amount::from_sat(change);
    Ok(AnchorChild {
        tx,
        anchor: previous.anchor.clone(),
        wallet_inputs: previous.wallet_inputs.clone(),
        fee_satoshis: fee,
        weight,
        package_fee_satoshis: parent.fee_satoshis + fee,
        package_weight,
    })
}

/// A replacement of `previous` (an HTLC transaction completed with fee inputs,
/// [`build_htlc_bump`]) at `feerate_per_kw` on its own weight, spending the same inputs
/// (the HTLC's and the same wallet coins: it conflicts with `previous` and replaces it, BIP
/// 125) with less change: at least `previous`'s fee plus the incremental relay feerate on
/// its weight, never more than `max_fee_sat` (clamped to it). Input 0's witness is kept
/// (our signature must be made again, [`ChannelMonitor::sign_htlc_input`]); the wallet's
/// inputs are unsigned. Refused with [`BumpError::FeeCapExceeded`] when the least
/// replacement would pay more than `max_fee_sat`, with [`BumpError::InsufficientFunds`] when
/// the change would fall below dust, and with [`BumpError::NotABump`] when `previous` has
/// no change output to take the fee from.
pub fn rebump_htlc(
    previous: &HtlcBump,
    feerate_per_kw: u32,
    max_fee_sat: u64,
) -> Result<HtlcBump, BumpError> {
    if feerate_per_kw < crate::node::MIN_RELAY_FEERATE_PER_KW {
        return Err(BumpError::FeerateTooLow { feerate_per_kw });
    }
    let txid = previous.tx.compute_txid();
    let weight = previous.weight;
    let fee = replacement_fee(
        fee_for_weight(feerate_per_kw, weight),
        previous.fee_satoshis,
        weight,
        max_fee_sat,
    )?;
    let total = previous
        .prevouts()
        .iter()
        .fold(0u64, |s, o| s.saturating_add(o.value.to_sat()));
    let mut tx = previous.tx.clone();
    for input in tx.input.iter_mut().skip(1) {
        input.witness = Witness::new();
    }
    let htlc_out = tx.output.first().map(|o| o.value.to_sat());
    let (Some(htlc_out), Some(change_out), 2) =
        (htlc_out, tx.output.get_mut(1), previous.tx.output.len())
    else {
        return Err(BumpError::NotABump { txid });
    };
    let dust = change_out.script_pubkey.minimal_non_dust().to_sat();
    let change = total
        .checked_sub(htlc_out)
        .and_then(|t| t.checked_sub(fee))
        .filter(|&c| c >= dust)
        .ok_or(BumpError::InsufficientFunds {
            needed_satoshis: fee.saturating_add(dust).saturating_add(htlc_out),
            available_satoshis: total,
        })?;
    change_out.value = Amount::from_sat(change);
    Ok(HtlcBump {
        tx,
        htlc_prevout: previous.htlc_prevout.clone(),
        wallet_inputs: previous.wallet_inputs.clone(),
        fee_satoshis: fee,
        weight,
    })
}

/// An HTLC-success or HTLC-timeout transaction of an anchor channel completed with fee
/// inputs, unsigned where it changed: input 0 and output 0 are the HTLC's (the peer's
/// SIGHASH_SINGLE|ANYONECANPAY signature still holds; ours, SIGHASH_ALL, must be made again:
/// [`ChannelMonitor::sign_htlc_input`]), inputs 1.. spend `wallet_inputs` (the wallet signs
/// them), output 1 is the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtlcBump {
    /// The transaction.
    pub tx: Transaction,
    /// The output input 0 spends (the commitment's HTLC output).
    pub htlc_prevout: TxOut,
    /// The wallet's coins spent, inputs 1.. in order.
    pub wallet_inputs: Vec<WalletUtxo>,
    /// Its fee (the HTLC's own, zero with anchors, plus what the wallet adds).
    pub fee_satoshis: u64,
    /// Its weight once signed (an upper bound).
    pub weight: u64,
}

impl HtlcBump {
    /// The outputs every input of `tx` spends, in input order: what signing needs.
    pub fn prevouts(&self) -> Vec<TxOut> {
        std::iter::once(self.htlc_prevout.clone())
            .chain(self.wallet_inputs.iter().map(|u| u.txout.clone()))
            .collect()
    }

    /// The coins of the wallet it spends.
    pub fn wallet_outpoints(&self) -> Vec<OutPoint> {
        self.wallet_inputs.iter().map(|u| u.outpoint).collect()
    }
}

/// The witness item holding our signature in an HTLC transaction's witness
/// (`0 <remotehtlcsig> <localhtlcsig> <preimage or empty> <script>`).
const HTLC_LOCAL_SIG_ITEM: usize = 2;

/// Completes `htlc_tx` (from [`MonitorEvent::BumpNeeded`](super::MonitorEvent::BumpNeeded)
/// without an anchor: one input, one output, signed) with wallet coins among `utxos`
/// (largest first; segwit only) and a change output to `change_script` above its dust
/// limit, so that it pays `feerate_per_kw` on its own weight (rounded up). `htlc_prevout`
/// is the output its input spends ([`ChannelMonitor::htlc_prevout`]). Input 0 keeps its
/// witness, whose local signature no longer commits to the transaction: sign it again.
pub fn build_htlc_bump(
    htlc_tx: &Transaction,
    htlc_prevout: &TxOut,
    utxos: &[WalletUtxo],
    change_script: ScriptBuf,
    feerate_per_kw: u32,
) -> Result<HtlcBump, BumpError> {
    if feerate_per_kw < crate::node::MIN_RELAY_FEERATE_PER_KW {
        return Err(BumpError::FeerateTooLow { feerate_per_kw });
    }
    let txid = htlc_tx.compute_txid();
    let (Some(first), 1, 1) = (
        htlc_tx.input.first(),
        htlc_tx.input.len(),
        htlc_tx.output.len(),
    ) else {
        return Err(BumpError::NotHtlcTransaction { txid });
    };
    let local_sig_len = first
        .witness
        .nth(HTLC_LOCAL_SIG_ITEM)
        .map(<[u8]>::len)
        .ok_or(BumpError::NotHtlcTransaction { txid })? as u64;
    let htlc_in = htlc_prevout.value.to_sat();
    let htlc_out: u64 = htlc_tx.output.iter().map(|o| o.value.to_sat()).sum();
    let own_fee = htlc_in
        .checked_sub(htlc_out)
        .ok_or(BumpError::NotHtlcTransaction { txid })?;
    let candidates = crate::wallet::largest_first(utxos);
    let available = candidates
        .iter()
        .fold(0u64, |s, u| s.saturating_add(u.txout.value.to_sat()));
    let dust = change_script.minimal_non_dust().to_sat();
    let mut tx = htlc_tx.clone();
    tx.output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: change_script,
    });
    let mut chosen: Vec<&WalletUtxo> = Vec::new();
    let mut total = 0u64;
    let mut needed = 0;
    for utxo in candidates {
        chosen.push(utxo);
        tx.input.push(input(utxo.outpoint));
        total = total.saturating_add(utxo.txout.value.to_sat());
        // The transaction as it stands serializes each wallet input's empty witness as one
        // byte (its item count), which the satisfaction weight counts again; our signature
        // may come out as long as 73 bytes.
        let weight = tx.weight().to_wu() - chosen.len() as u64
            + chosen.iter().map(|u| u.satisfaction_weight).sum::<u64>()
            + 73u64.saturating_sub(local_sig_len);
        let fee = fee_for_weight(feerate_per_kw, weight);
        let from_wallet = fee.saturating_sub(own_fee);
        needed = from_wallet.saturating_add(dust);
        let Some(change) = total.checked_sub(from_wallet).filter(|&c| c >= dust) else {
            continue;
        };
        if let Some(out) = tx.output.get_mut(1) {
            out.value = Amount::from_sat(change);
        }
        return Ok(HtlcBump {
            tx,
            htlc_prevout: htlc_prevout.clone(),
            wallet_inputs: chosen.into_iter().cloned().collect(),
            fee_satoshis: own_fee + from_wallet,
            weight,
        });
    }
    Err(BumpError::InsufficientFunds {
        needed_satoshis: needed.max(dust),
        available_satoshis: available,
    })
}

impl ChannelMonitor {
    fn anchor_script(&self) -> Option<ScriptBuf> {
        self.terms
            .channel_type
            .has_anchors()
            .then(|| anchor_script(&self.terms.local_pubkeys.funding_pubkey))
    }

    /// `commitment` (from [`MonitorEvent::BumpNeeded`](super::MonitorEvent::BumpNeeded)) as
    /// a parent to bump through our anchor: checked to be our latest signed holder
    /// commitment with an anchor of ours, with its weight and own fee.
    pub fn anchor_parent(&self, commitment: &Transaction) -> Result<AnchorParent, BumpError> {
        let txid = commitment.compute_txid();
        let script = self.anchor_script().ok_or(BumpError::NoAnchor)?;
        let ours = self
            .signed_holder_commitment()
            .filter(|tx| tx.compute_txid() == txid)
            .ok_or(BumpError::NotOurCommitment { txid })?;
        let spk = script.to_p2wsh();
        let (vout, anchor_txout) = ours
            .output
            .iter()
            .enumerate()
            .find(|(_, o)| o.script_pubkey == spk && o.value.to_sat() == ANCHOR_OUTPUT_SATOSHIS)
            .map(|(vout, o)| (vout, o.clone()))
            .ok_or(BumpError::NoAnchor)?;
        let outputs: u64 = ours.output.iter().map(|o| o.value.to_sat()).sum();
        let fee_satoshis = self
            .terms
            .funding_satoshis
            .checked_sub(outputs)
            .ok_or(BumpError::CommitmentOverspends { txid })?;
        Ok(AnchorParent {
            txid,
            anchor: OutPoint {
                txid,
                vout: vout as u32,
            },
            anchor_txout,
            weight: ours.weight().to_wu(),
            fee_satoshis,
        })
    }

    /// The witness of input `input` of `child`, spending our anchor on our latest holder
    /// commitment with the channel's funding key (SIGHASH_ALL): `<sig> <anchor script>`.
    /// Sign after the child's inputs and outputs are final (its other inputs' witnesses
    /// may come before or after).
    pub fn sign_anchor_input(
        &self,
        child: &Transaction,
        input: usize,
    ) -> Result<Witness, BumpError> {
        let script = self.anchor_script().ok_or(BumpError::NoAnchor)?;
        let commitment = self.signed_holder_commitment().ok_or(BumpError::NoAnchor)?;
        let parent = self.anchor_parent(&commitment)?;
        if child.input.get(input).map(|i| i.previous_output) != Some(parent.anchor) {
            return Err(BumpError::NotAnchorInput { input });
        }
        let secp = crate::secp::ctx();
        let signature = sign_segwit_v0_input(
            &secp,
            child,
            input,
            &script,
            parent.anchor_txout.value.to_sat(),
            EcdsaSighashType::All,
            &self.keys.funding_key,
        )
        .map_err(|_| BumpError::NotAnchorInput { input })?;
        let sig = BitcoinSignature {
            signature,
            sighash_type: EcdsaSighashType::All,
        };
        Ok(Witness::from_slice(&[sig.to_vec(), script.to_bytes()]))
    }

    /// Our HTLC transaction for the commitment output `outpoint` spends (latest holder
    /// commitment, anchors only), with the key that signs it.
    fn holder_htlc_tx(
        &self,
        outpoint: OutPoint,
    ) -> Option<(
        crate::transactions::htlc::HtlcTx,
        bitcoin::secp256k1::SecretKey,
    )> {
        if !self.terms.channel_type.has_anchors() {
            return None;
        }
        let secp = crate::secp::ctx();
        let point = self.holder_point(self.holder.index)?;
        let built = self
            .terms
            .build(
                crate::transactions::Side::Local,
                &self.holder.spec,
                self.holder.index,
                &point,
            )
            .ok()?;
        if built.tx().compute_txid() != outpoint.txid {
            return None;
        }
        let htlc_tx = built
            .htlc_txs()
            .into_iter()
            .find(|t| t.commitment_output().output_index == outpoint.vout)?;
        let key = self.keys.htlc_key(&secp, &point).ok()?;
        Some((htlc_tx, key))
    }

    /// The output `htlc_tx` (our HTLC-success or HTLC-timeout transaction of an anchor
    /// channel, from [`MonitorEvent::BumpNeeded`](super::MonitorEvent::BumpNeeded)) spends:
    /// an HTLC output of our latest holder commitment.
    pub fn htlc_prevout(&self, htlc_tx: &Transaction) -> Result<TxOut, BumpError> {
        let txid = htlc_tx.compute_txid();
        let outpoint = htlc_tx
            .input
            .first()
            .map(|i| i.previous_output)
            .ok_or(BumpError::NotHtlcTransaction { txid })?;
        let (ours, _) = self
            .holder_htlc_tx(outpoint)
            .ok_or(BumpError::NotHtlcTransaction { txid })?;
        let out = ours.commitment_output();
        Ok(TxOut {
            value: Amount::from_sat(out.htlc.amount_satoshis()),
            script_pubkey: out.witness_script.to_p2wsh(),
        })
    }

    /// The witness of input 0 of `tx` (an HTLC transaction completed with fee inputs,
    /// [`build_htlc_bump`]) with our signature made again over the whole transaction
    /// (SIGHASH_ALL), the peer's (SIGHASH_SINGLE|ANYONECANPAY) and the rest kept. Checks
    /// that input 0 and output 0 are still those of our HTLC transaction, so the peer's
    /// signature still holds. Sign after the inputs and outputs are final.
    pub fn sign_htlc_input(&self, tx: &Transaction) -> Result<Witness, BumpError> {
        let txid = tx.compute_txid();
        let not_ours = BumpError::NotHtlcTransaction { txid };
        let first = tx.input.first().ok_or(not_ours.clone())?;
        let (ours, key) = self
            .holder_htlc_tx(first.previous_output)
            .ok_or(not_ours.clone())?;
        let unsigned = ours.tx();
        if unsigned.input.first().map(|i| i.sequence) != Some(first.sequence)
            || unsigned.output.first() != tx.output.first()
            || unsigned.lock_time != tx.lock_time
            || unsigned.version != tx.version
        {
            return Err(not_ours);
        }
        let script = &ours.commitment_output().witness_script;
        let items: Vec<&[u8]> = first.witness.iter().collect();
        if items.len() != 5 || items.get(4).copied() != Some(script.as_bytes()) {
            return Err(not_ours);
        }
        let secp = crate::secp::ctx();
        let signature = sign_segwit_v0_input(
            &secp,
            tx,
            0,
            script,
            ours.htlc().amount_satoshis(),
            EcdsaSighashType::All,
            &key,
        )
        .map_err(|_| not_ours.clone())?;
        let local = BitcoinSignature::sighash_all(signature).to_vec();
        let mut witness = Witness::new();
        for (i, item) in items.iter().enumerate() {
            if i == HTLC_LOCAL_SIG_ITEM {
                witness.push(&local);
            } else {
                witness.push(item);
            }
        }
        Ok(witness)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::WScriptHash;

    use crate::wallet::tests::{coin, p2wpkh};

    fn parent(weight: u64, fee: u64) -> AnchorParent {
        let txid = Txid::from_byte_array([0xaa; 32]);
        AnchorParent {
            txid,
            anchor: OutPoint { txid, vout: 0 },
            anchor_txout: TxOut {
                value: Amount::from_sat(ANCHOR_OUTPUT_SATOSHIS),
                script_pubkey: ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([3; 32])),
            },
            weight,
            fee_satoshis: fee,
        }
    }

    /// The weight of `child.tx` signed: a 73-byte signature and the 40-byte script on the
    /// anchor, a 72-byte signature and a key on each wallet input.
    fn signed_weight(child: &AnchorChild) -> u64 {
        let mut tx = child.tx.clone();
        tx.input[0].witness = Witness::from_slice(&[vec![0u8; 73], vec![1u8; 40]]);
        for input in tx.input.iter_mut().skip(1) {
            input.witness = Witness::from_slice(&[vec![0u8; 72], vec![2u8; 33]]);
        }
        tx.weight().to_wu()
    }

    #[test]
    fn the_package_pays_the_feerate_and_the_change_is_exact() {
        let p = parent(1_124, 0);
        let utxos = [coin(1, 20_000), coin(2, 50_000)];
        let child = build_anchor_child(&p, &utxos, p2wpkh(9), 2_500).unwrap();
        assert_eq!(child.wallet_inputs, vec![utxos[1].clone()]);
        assert_eq!(child.tx.input[0].previous_output, p.anchor);
        assert_eq!(child.tx.input[1].previous_output, utxos[1].outpoint);
        assert_eq!(child.weight, signed_weight(&child));
        assert_eq!(child.package_weight, 1_124 + child.weight);
        assert_eq!(
            child.fee_satoshis,
            fee_for_weight(2_500, child.package_weight)
        );
        assert_eq!(child.package_fee_satoshis, child.fee_satoshis);
        assert_eq!(child.tx.output.len(), 1);
        assert_eq!(child.tx.output[0].script_pubkey, p2wpkh(9));
        assert_eq!(
            child.tx.output[0].value.to_sat(),
            ANCHOR_OUTPUT_SATOSHIS + 50_000 - child.fee_satoshis
        );
        assert_eq!(child.prevouts()[0], p.anchor_txout);
        assert_eq!(child.prevouts()[1], utxos[1].txout);
    }

    #[test]
    fn the_parents_own_fee_counts_but_the_child_pays_its_own_weight() {
        let utxos = [coin(1, 50_000)];
        let low = build_anchor_child(&parent(1_124, 300), &utxos, p2wpkh(9), 2_500).unwrap();
        assert_eq!(
            low.fee_satoshis,
            fee_for_weight(2_500, low.package_weight) - 300
        );
        assert_eq!(
            low.package_fee_satoshis,
            fee_for_weight(2_500, low.package_weight)
        );
        // A parent already paying the feerate: the child still pays for itself.
        let rich = build_anchor_child(&parent(1_124, 100_000), &utxos, p2wpkh(9), 2_500).unwrap();
        assert_eq!(rich.fee_satoshis, fee_for_weight(2_500, rich.weight));
    }

    #[test]
    fn several_coins_when_one_is_not_enough_and_insufficient_funds_is_typed() {
        let p = parent(1_124, 0);
        let utxos = [coin(1, 8_000), coin(2, 7_000)];
        let child = build_anchor_child(&p, &utxos, p2wpkh(9), 5_000).unwrap();
        assert_eq!(
            child.wallet_inputs,
            vec![utxos[0].clone(), utxos[1].clone()]
        );
        assert_eq!(child.weight, signed_weight(&child));
        assert!(child.tx.output[0].value.to_sat() >= 294);
        let err = build_anchor_child(&p, &utxos, p2wpkh(9), 20_000).unwrap_err();
        assert!(
            matches!(err, BumpError::InsufficientFunds { available_satoshis, .. } if available_satoshis == 15_330),
            "{err:?}"
        );
        assert_eq!(
            build_anchor_child(&p, &[], p2wpkh(9), 2_500),
            Err(BumpError::InsufficientFunds {
                needed_satoshis: 294,
                available_satoshis: 330
            })
        );
    }

    #[test]
    fn legacy_coins_are_skipped_and_a_feerate_below_relay_is_refused() {
        let p = parent(1_124, 0);
        let legacy = WalletUtxo {
            txout: TxOut {
                value: Amount::from_sat(1_000_000),
                script_pubkey: ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_byte_array([4; 20])),
            },
            ..coin(4, 0)
        };
        let utxos = [legacy, coin(2, 40_000)];
        let child = build_anchor_child(&p, &utxos, p2wpkh(9), 1_000).unwrap();
        assert_eq!(child.wallet_inputs, vec![utxos[1].clone()]);
        assert_eq!(
            build_anchor_child(&p, &utxos, p2wpkh(9), 252),
            Err(BumpError::FeerateTooLow {
                feerate_per_kw: 252
            })
        );
    }

    /// A zero-fee HTLC transaction of `value` sat with a witness of the usual shape.
    fn htlc_tx(value: u64) -> (Transaction, TxOut) {
        let prevout = TxOut {
            value: Amount::from_sat(value),
            script_pubkey: ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([5; 32])),
        };
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::from_consensus(800),
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([0xbb; 32]),
                    vout: 2,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence(1),
                witness: Witness::from_slice(&[
                    vec![],
                    vec![0u8; 72],
                    vec![0u8; 71],
                    vec![],
                    vec![9u8; 140],
                ]),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([6; 32])),
            }],
        };
        (tx, prevout)
    }

    #[test]
    fn an_htlc_transaction_keeps_its_pair_first_and_pays_the_feerate_from_the_wallet() {
        let (htlc, prevout) = htlc_tx(60_000);
        let utxos = [coin(1, 20_000), coin(2, 8_000)];
        let bump = build_htlc_bump(&htlc, &prevout, &utxos, p2wpkh(9), 2_500).unwrap();
        assert_eq!(bump.tx.input[0], htlc.input[0]);
        assert_eq!(bump.tx.output[0], htlc.output[0]);
        assert_eq!(bump.tx.lock_time, htlc.lock_time);
        assert_eq!(bump.wallet_outpoints(), vec![utxos[0].outpoint]);
        assert_eq!(
            bump.prevouts(),
            vec![prevout.clone(), utxos[0].txout.clone()]
        );
        // Signed: our signature at most 73 bytes, a P2WPKH witness on the wallet's input.
        let mut signed = bump.tx.clone();
        signed.input[0].witness =
            Witness::from_slice(&[vec![], vec![0u8; 72], vec![0u8; 73], vec![], vec![9u8; 140]]);
        signed.input[1].witness = Witness::from_slice(&[vec![0u8; 72], vec![2u8; 33]]);
        assert_eq!(bump.weight, signed.weight().to_wu());
        assert_eq!(bump.fee_satoshis, fee_for_weight(2_500, bump.weight));
        assert_eq!(bump.tx.output[1].value.to_sat(), 20_000 - bump.fee_satoshis);
        // Not an HTLC transaction: two outputs.
        assert!(matches!(
            build_htlc_bump(&bump.tx, &prevout, &utxos, p2wpkh(9), 2_500),
            Err(BumpError::NotHtlcTransaction { .. })
        ));
        assert!(matches!(
            build_htlc_bump(&htlc, &prevout, &utxos, p2wpkh(9), 200_000),
            Err(BumpError::InsufficientFunds {
                available_satoshis: 28_000,
                ..
            })
        ));
    }

    #[test]
    fn a_rebump_spends_the_same_inputs_and_pays_more_by_bip125() {
        let p = parent(1_124, 0);
        let utxos = [coin(1, 50_000)];
        let first = build_anchor_child(&p, &utxos, p2wpkh(9), 2_500).unwrap();
        let second = rebump_anchor_child(&p, &first, 5_000, u64::MAX).unwrap();
        assert_eq!(
            second
                .tx
                .input
                .iter()
                .map(|i| i.previous_output)
                .collect::<Vec<_>>(),
            first
                .tx
                .input
                .iter()
                .map(|i| i.previous_output)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            second.fee_satoshis,
            fee_for_weight(5_000, second.package_weight)
        );
        assert_eq!(
            second.tx.output[0].value.to_sat(),
            ANCHOR_OUTPUT_SATOSHIS + 50_000 - second.fee_satoshis
        );
        // The same feerate again: only BIP 125's increment more.
        let third = rebump_anchor_child(&p, &second, 5_000, u64::MAX).unwrap();
        assert_eq!(
            third.fee_satoshis,
            second.fee_satoshis + fee_for_weight(INCREMENTAL_RELAY_FEERATE_PER_KW, second.weight)
        );
        // Beyond what the inputs hold: refused, nothing below dust.
        assert!(matches!(
            rebump_anchor_child(&p, &second, 200_000, u64::MAX),
            Err(BumpError::InsufficientFunds {
                available_satoshis: 50_330,
                ..
            })
        ));
    }

    #[test]
    fn a_rebump_never_pays_more_than_the_cap() {
        let p = parent(1_124, 0);
        let utxos = [coin(1, 50_000)];
        let first = build_anchor_child(&p, &utxos, p2wpkh(9), 2_500).unwrap();
        let increment = fee_for_weight(INCREMENTAL_RELAY_FEERATE_PER_KW, first.weight);
        // The feerate asks for more than the cap: clamped to it, same inputs.
        let cap = first.fee_satoshis + 3 * increment;
        let capped = rebump_anchor_child(&p, &first, 50_000, cap).unwrap();
        assert_eq!(capped.fee_satoshis, cap);
        assert_eq!(
            capped.tx.output[0].value.to_sat(),
            ANCHOR_OUTPUT_SATOSHIS + 50_000 - cap
        );
        assert_eq!(capped.wallet_inputs, first.wallet_inputs);
        // At the cap, even the least replacement is above it: refused, typed.
        assert_eq!(
            rebump_anchor_child(&p, &capped, 50_000, cap),
            Err(BumpError::FeeCapExceeded {
                fee_satoshis: cap + increment,
                max_fee_sat: cap
            })
        );
        // Exactly one increment of room: the least replacement, whatever the feerate.
        let least = rebump_anchor_child(&p, &first, 2_500, first.fee_satoshis + increment);
        assert_eq!(
            least.map(|c| c.fee_satoshis),
            Ok(first.fee_satoshis + increment)
        );
    }

    #[test]
    fn an_htlc_rebump_spends_the_same_inputs_pays_more_by_bip125_and_respects_the_cap() {
        let (htlc, prevout) = htlc_tx(60_000);
        let utxos = [coin(1, 20_000), coin(2, 8_000)];
        let first = build_htlc_bump(&htlc, &prevout, &utxos, p2wpkh(9), 2_500).unwrap();
        let increment = fee_for_weight(INCREMENTAL_RELAY_FEERATE_PER_KW, first.weight);
        let ins = |t: &Transaction| {
            t.input
                .iter()
                .map(|i| i.previous_output)
                .collect::<Vec<_>>()
        };
        // A higher feerate: the feerate's fee, same inputs, input 0's witness kept.
        let second = rebump_htlc(&first, 5_000, 60_000).unwrap();
        assert_eq!(ins(&second.tx), ins(&first.tx));
        assert_eq!(second.tx.input[0].witness, first.tx.input[0].witness);
        assert!(second.tx.input[1].witness.is_empty());
        assert_eq!(second.tx.output[0], htlc.output[0]);
        assert_eq!(second.fee_satoshis, fee_for_weight(5_000, first.weight));
        assert_eq!(
            second.tx.output[1].value.to_sat(),
            20_000 - second.fee_satoshis
        );
        // The same feerate: only the increment more.
        let third = rebump_htlc(&second, 5_000, 60_000).unwrap();
        assert_eq!(third.fee_satoshis, second.fee_satoshis + increment);
        // Capped: clamped, then refused once even the increment is above the cap.
        let cap = third.fee_satoshis + increment + 10;
        let capped = rebump_htlc(&third, 50_000, cap).unwrap();
        assert_eq!(capped.fee_satoshis, cap);
        assert_eq!(
            rebump_htlc(&capped, 50_000, cap),
            Err(BumpError::FeeCapExceeded {
                fee_satoshis: cap + increment,
                max_fee_sat: cap
            })
        );
        // Beyond the wallet coin's value: refused, change never below dust.
        assert!(matches!(
            rebump_htlc(&first, 100_000, u64::MAX),
            Err(BumpError::InsufficientFunds { .. })
        ));
        // Not a bump (no change output).
        let bare = HtlcBump {
            tx: htlc.clone(),
            ..first.clone()
        };
        assert!(matches!(
            rebump_htlc(&bare, 5_000, u64::MAX),
            Err(BumpError::NotABump { .. })
        ));
    }
}
