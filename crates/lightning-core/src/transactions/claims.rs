//! Claim transactions: spending the outputs of a commitment (ours, theirs or a revoked one)
//! and of the second-stage HTLC transactions to a wallet script (BOLT 5).
//!
//! A claim transaction has one or more [`ClaimInput`]s, each spending one output by one
//! [`SpendPath`] (one BOLT 3 witness), and a single output paying everything left after the
//! fee to a destination script. Which outputs go together (aggregation) is the caller's
//! choice: [`build_claim_tx`] signs whatever set it is given, every input with `SIGHASH_ALL`.
//!
//! # Which key signs which path
//!
//! Every signing key comes from [`ChannelKeys`](crate::keys::ChannelKeys) (our secrets) and the
//! per-commitment point or secret of the commitment being spent; nothing here derives keys:
//!
//! | path | commitment | key |
//! |------|------------|-----|
//! | [`SpendPath::Delayed`] | ours (`to_local`, our HTLC-success/timeout outputs) | [`ChannelKeys::delayed_payment_key`](crate::keys::ChannelKeys::delayed_payment_key)`(our per_commitment_point)` |
//! | [`SpendPath::RevokedDelayed`], [`SpendPath::RevokedHtlc`] | their revoked one (and their second-stage outputs) | [`ChannelKeys::revocation_key`](crate::keys::ChannelKeys::revocation_key)`(their per_commitment_secret)` |
//! | [`SpendPath::TheirOfferedHtlcPreimage`], [`SpendPath::OurOfferedHtlcTimeout`] | theirs | [`ChannelKeys::htlc_key`](crate::keys::ChannelKeys::htlc_key)`(their per_commitment_point)` |
//! | [`SpendPath::ToRemoteAnchors`], [`SpendPath::ToRemoteP2wpkh`] | theirs | [`ChannelKeys::payment_base_key`](crate::keys::ChannelKeys::payment_base_key) itself (static remote key) |
//!
//! # Fees, sequences and locktime
//!
//! The fee is `feerate_per_kw` (at least [`FEERATE_FLOOR_PER_KW`]) times the upper-bound
//! weight [`claim_weight`] (73-byte signatures), and never below 1 sat/vbyte of that weight,
//! so a claim always meets the minimum relay fee ([`claim_fee`]). Each input's `nSequence` is what its script demands (the CSV delay, or 1
//! for the `1 OP_CHECKSEQUENCEVERIFY` of anchor channels), otherwise `0xfffffffd`: every claim
//! signals replaceability (BIP 125) and keeps `nLockTime` enforced. `nLockTime` is the largest
//! of the caller's `locktime` (the current height, against fee sniping) and the `cltv_expiry`
//! of every [`SpendPath::OurOfferedHtlcTimeout`] input.

use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{hash160, sha256, Hash};
use bitcoin::script::Instruction;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, CompressedPublicKey, EcdsaSighashType, OutPoint, Script, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Witness,
};

use super::fees::fee_for_weight;
use super::sign::sign_segwit_v0_input;
use super::ChannelType;
use crate::types::{PaymentHash, PaymentPreimage};

/// Upper bound of a serialized signature in a witness: a 72-byte DER signature and the
/// sighash byte (BOLT 3 counts 73).
pub const MAX_SIGNATURE_WITNESS_BYTES: u64 = 73;

/// The heaviest transaction Bitcoin Core relays (`MAX_STANDARD_TX_WEIGHT`).
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;

/// Weight of one input without its witness: outpoint (36), empty `scriptSig` (1) and
/// `nSequence` (4), times 4.
const INPUT_BASE_WEIGHT: u64 = (36 + 1 + 4) * 4;

/// The `nSequence` of an input whose script imposes no relative timelock: replaceable (BIP
/// 125), no BIP 68 lock, `nLockTime` enforced.
const RBF_SEQUENCE: Sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;

/// The last four opcodes of a BOLT 3 HTLC script with `option_anchors`:
/// `OP_1 OP_CHECKSEQUENCEVERIFY OP_DROP OP_ENDIF`.
const ANCHORS_HTLC_TAIL: [u8; 4] = [0x51, 0xb2, 0x75, 0x68];

/// The largest `nLockTime` read as a block height; above it counts as a Unix time.
const LOCKTIME_THRESHOLD: u32 = 500_000_000;

/// How one claimed output is spent: the BOLT 3/5 witness it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SpendPath {
    /// A `to_local`-style output of OURS after its CSV: `to_local` of our commitment, or the
    /// output of our HTLC-success / HTLC-timeout transaction. Witness `<sig> <> <script>`,
    /// `nSequence` = `to_self_delay`. Key: our delayed payment key at our
    /// per-commitment point.
    Delayed {
        /// The CSV delay in the script (`to_self_delay`, set by the other side).
        to_self_delay: u16,
    },
    /// The same script on the CHEATER's side: `to_local` of their revoked commitment, or the
    /// output of their second-stage HTLC transaction spending one. Witness
    /// `<revocation_sig> 1 <script>`. Key: the revocation private key.
    RevokedDelayed,
    /// An HTLC output (offered or received script) of a revoked commitment. Witness
    /// `<revocation_sig> <revocationpubkey> <script>`; the `revocationpubkey` pushed is the
    /// public key of [`ClaimInput::signing_key`]. Key: the revocation private key.
    RevokedHtlc,
    /// On THEIR commitment, an HTLC THEY offered (we received it), claimed with its preimage.
    /// Witness `<our_htlc_sig> <preimage> <script>`; with anchors the script ends in
    /// `1 OP_CHECKSEQUENCEVERIFY` so `nSequence` is 1. Key: our HTLC key at their
    /// per-commitment point.
    TheirOfferedHtlcPreimage {
        /// The preimage of the HTLC's `payment_hash`.
        preimage: PaymentPreimage,
        /// The channel's commitment format (anchors add the CSV of 1).
        channel_type: ChannelType,
    },
    /// On THEIR commitment, an HTLC WE offered, after its expiry. Witness
    /// `<our_htlc_sig> <> <script>`; `nLockTime` is at least `cltv_expiry`; with anchors
    /// `nSequence` is 1. Key: our HTLC key at their per-commitment point.
    OurOfferedHtlcTimeout {
        /// The HTLC's `cltv_expiry` (a block height).
        cltv_expiry: u32,
        /// The channel's commitment format (anchors add the CSV of 1).
        channel_type: ChannelType,
    },
    /// Our `to_remote` on their anchor commitment (`<key> OP_CHECKSIGVERIFY 1 OP_CSV`).
    /// Witness `<sig> <script>`, `nSequence` 1. Key: our payment basepoint secret.
    ToRemoteAnchors,
    /// Our `to_remote` on their `static_remotekey` commitment: P2WPKH to our payment
    /// basepoint. Witness `<sig> <pubkey>`, no witness script. Key: our payment basepoint
    /// secret.
    ToRemoteP2wpkh,
}

impl fmt::Debug for SpendPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpendPath::Delayed { to_self_delay } => f
                .debug_struct("Delayed")
                .field("to_self_delay", to_self_delay)
                .finish(),
            SpendPath::RevokedDelayed => f.write_str("RevokedDelayed"),
            SpendPath::RevokedHtlc => f.write_str("RevokedHtlc"),
            // The preimage is a secret until it is on chain: only its hash is printed.
            SpendPath::TheirOfferedHtlcPreimage {
                preimage,
                channel_type,
            } => f
                .debug_struct("TheirOfferedHtlcPreimage")
                .field("payment_hash", &preimage.payment_hash())
                .field("channel_type", channel_type)
                .finish(),
            SpendPath::OurOfferedHtlcTimeout {
                cltv_expiry,
                channel_type,
            } => f
                .debug_struct("OurOfferedHtlcTimeout")
                .field("cltv_expiry", cltv_expiry)
                .field("channel_type", channel_type)
                .finish(),
            SpendPath::ToRemoteAnchors => f.write_str("ToRemoteAnchors"),
            SpendPath::ToRemoteP2wpkh => f.write_str("ToRemoteP2wpkh"),
        }
    }
}

impl SpendPath {
    /// The `nSequence` this path needs: the CSV delay, 1 for the anchors CSV, otherwise
    /// `0xfffffffd` (replaceable, `nLockTime` enforced).
    pub fn sequence(&self) -> Sequence {
        match self {
            SpendPath::Delayed { to_self_delay } => Sequence(u32::from(*to_self_delay)),
            SpendPath::ToRemoteAnchors => Sequence(1),
            SpendPath::TheirOfferedHtlcPreimage { channel_type, .. }
            | SpendPath::OurOfferedHtlcTimeout { channel_type, .. }
                if channel_type.has_anchors() =>
            {
                Sequence(1)
            }
            SpendPath::TheirOfferedHtlcPreimage { .. }
            | SpendPath::OurOfferedHtlcTimeout { .. }
            | SpendPath::RevokedDelayed
            | SpendPath::RevokedHtlc
            | SpendPath::ToRemoteP2wpkh => RBF_SEQUENCE,
        }
    }

    /// The absolute locktime this path needs, if any (the HTLC's `cltv_expiry`).
    pub fn min_locktime(&self) -> Option<u32> {
        match self {
            SpendPath::OurOfferedHtlcTimeout { cltv_expiry, .. } => Some(*cltv_expiry),
            _ => None,
        }
    }

    /// Whether the spent output is a P2WPKH (no witness script).
    pub fn is_p2wpkh(&self) -> bool {
        matches!(self, SpendPath::ToRemoteP2wpkh)
    }

    /// Witness bytes besides the signature and the witness script: the element count, the
    /// middle element (with its length byte), and for P2WPKH the 33-byte key.
    fn witness_extra_bytes(&self) -> u64 {
        match self {
            // count + <> (1) ; count + 0x01 (2) ; count + pubkey (34) ; count + preimage (33)
            SpendPath::Delayed { .. } | SpendPath::OurOfferedHtlcTimeout { .. } => 1 + 1,
            SpendPath::RevokedDelayed => 1 + 2,
            SpendPath::RevokedHtlc => 1 + 34,
            SpendPath::TheirOfferedHtlcPreimage { .. } => 1 + 33,
            SpendPath::ToRemoteAnchors => 1,
            SpendPath::ToRemoteP2wpkh => 1 + 34,
        }
    }
}

/// One output to claim: where it is, what it holds, and how and with which key to spend it.
///
/// `Debug` does not print the signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimInput {
    /// The output spent.
    pub outpoint: OutPoint,
    /// Its value, in satoshis (signed over by segwit).
    pub value_sat: u64,
    /// The P2WSH witness script of the output; empty for [`SpendPath::ToRemoteP2wpkh`].
    pub witness_script: ScriptBuf,
    /// How it is spent.
    pub path: SpendPath,
    /// The private key that signs it (see the module docs for which one).
    pub signing_key: SecretKey,
}

impl fmt::Debug for ClaimInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimInput")
            .field("outpoint", &self.outpoint)
            .field("value_sat", &self.value_sat)
            .field("witness_script", &self.witness_script)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ClaimInput {
    /// Upper bound of this input's weight in a claim transaction: its outpoint, empty
    /// `scriptSig` and `nSequence` (times 4) plus its witness with a 73-byte signature.
    pub fn expected_weight(&self) -> u64 {
        let script = if self.path.is_p2wpkh() {
            0
        } else {
            let len = self.witness_script.len() as u64;
            varint_len(len).saturating_add(len)
        };
        INPUT_BASE_WEIGHT
            .saturating_add(1 + MAX_SIGNATURE_WITNESS_BYTES)
            .saturating_add(self.path.witness_extra_bytes())
            .saturating_add(script)
    }

    /// The `scriptPubKey` of the output this input spends: the P2WSH of the witness script,
    /// or for [`SpendPath::ToRemoteP2wpkh`] the P2WPKH of the signing key. A caller can match
    /// it against the output it means to claim.
    pub fn script_pubkey<C: Signing>(&self, secp: &Secp256k1<C>) -> ScriptBuf {
        if self.path.is_p2wpkh() {
            let pubkey = CompressedPublicKey(PublicKey::from_secret_key(secp, &self.signing_key));
            ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash())
        } else {
            self.witness_script.to_p2wsh()
        }
    }

    /// Checks that the input is self-consistent: a witness script where one is needed (and
    /// none for P2WPKH), the signing key (or for [`SpendPath::RevokedHtlc`] its HASH160) in
    /// the script, the preimage's hash in the script, the anchors CSV present exactly when the
    /// channel type says so, a block-height `cltv_expiry`.
    fn check(&self, index: usize, pubkey: &PublicKey) -> Result<(), ClaimError> {
        let script = &self.witness_script;
        if self.path.is_p2wpkh() != script.is_empty() {
            return Err(ClaimError::WitnessScriptMismatch { index });
        }
        let key_in_script = match self.path {
            SpendPath::ToRemoteP2wpkh => true,
            SpendPath::RevokedHtlc => script_pushes(
                script,
                &hash160::Hash::hash(&pubkey.serialize()).to_byte_array(),
            ),
            _ => script_pushes(script, &pubkey.serialize()),
        };
        if !key_in_script {
            return Err(ClaimError::KeyNotInScript { index });
        }
        match self.path {
            SpendPath::TheirOfferedHtlcPreimage {
                preimage,
                channel_type,
            } => {
                let hash160 = hash160::Hash::hash(&preimage.0).to_byte_array();
                if !script_pushes(script, &hash160) {
                    return Err(ClaimError::PreimageNotInScript { index });
                }
                check_anchors_tail(script, channel_type, index)
            }
            SpendPath::OurOfferedHtlcTimeout {
                cltv_expiry,
                channel_type,
            } => {
                if cltv_expiry >= LOCKTIME_THRESHOLD {
                    return Err(ClaimError::LocktimeNotHeight { value: cltv_expiry });
                }
                check_anchors_tail(script, channel_type, index)
            }
            _ => Ok(()),
        }
    }

    /// The witness spending this input, given its signature over `tx`.
    fn witness(&self, signature: bitcoin::ecdsa::Signature, pubkey: &PublicKey) -> Witness {
        let mut witness = Witness::new();
        witness.push(signature.serialize());
        match &self.path {
            SpendPath::Delayed { .. } | SpendPath::OurOfferedHtlcTimeout { .. } => {
                witness.push([]);
            }
            SpendPath::RevokedDelayed => witness.push([1u8]),
            SpendPath::RevokedHtlc | SpendPath::ToRemoteP2wpkh => {
                witness.push(pubkey.serialize());
            }
            SpendPath::TheirOfferedHtlcPreimage { preimage, .. } => witness.push(preimage.0),
            SpendPath::ToRemoteAnchors => {}
        }
        if !self.path.is_p2wpkh() {
            witness.push(self.witness_script.as_bytes());
        }
        witness
    }
}

fn check_anchors_tail(
    script: &Script,
    channel_type: ChannelType,
    index: usize,
) -> Result<(), ClaimError> {
    if script.as_bytes().ends_with(&ANCHORS_HTLC_TAIL) == channel_type.has_anchors() {
        Ok(())
    } else {
        Err(ClaimError::WitnessScriptMismatch { index })
    }
}

/// Whether `script` pushes exactly `data` somewhere.
fn script_pushes(script: &Script, data: &[u8]) -> bool {
    script.instructions().any(|instruction| {
        matches!(instruction, Ok(Instruction::PushBytes(bytes)) if bytes.as_bytes() == data)
    })
}

/// Length of Bitcoin's CompactSize encoding of `n`.
pub(crate) fn varint_len(n: u64) -> u64 {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Upper bound of the weight of a claim transaction spending `inputs` to one output paying
/// `destination`: version, segwit marker and flag, the counts, each input's
/// [`ClaimInput::expected_weight`], the output and `nLockTime`.
pub fn claim_weight(inputs: &[ClaimInput], destination: &Script) -> u64 {
    let n_inputs = inputs.len() as u64;
    let spk = destination.len() as u64;
    // version (4) + input count + output count (1) + value (8) + script + nLockTime (4)
    let base = 4u64
        .saturating_add(varint_len(n_inputs))
        .saturating_add(1 + 8)
        .saturating_add(varint_len(spk))
        .saturating_add(spk)
        .saturating_add(4);
    // The segwit marker and flag bytes count once.
    inputs
        .iter()
        .fold(base.saturating_mul(4).saturating_add(2), |weight, input| {
            weight.saturating_add(input.expected_weight())
        })
}

/// Why a claim transaction could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimError {
    /// No inputs were given.
    NoInputs,
    /// The same outpoint appears twice.
    DuplicateInput {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// The input values overflow, or exceed the 21 million bitcoin that can exist.
    AmountOverflow,
    /// What is left after the fee is below the destination's dust limit: the outputs are
    /// not worth claiming at this feerate (wait for a lower one, or claim them with others).
    BelowDust {
        /// The output value that was left (0 if the fee takes everything).
        value: u64,
        /// The fee.
        fee: u64,
        /// The destination's dust limit.
        dust_limit: u64,
    },
    /// The transaction would be heavier than Bitcoin Core relays: split the claim.
    TooHeavy {
        /// Its expected weight.
        weight: u64,
        /// [`MAX_STANDARD_TX_WEIGHT`].
        max: u64,
    },
    /// The witness script is missing for a P2WSH path, given for the P2WPKH one, or lacks the
    /// anchors CSV its channel type implies (or has it when it should not).
    WitnessScriptMismatch {
        /// The input index.
        index: usize,
    },
    /// The signing key's public key (or its HASH160 for a revoked HTLC) is not in the script:
    /// the signature could not satisfy it.
    KeyNotInScript {
        /// The input index.
        index: usize,
    },
    /// The preimage's HASH160 is not in the HTLC script: it is the preimage of another HTLC.
    PreimageNotInScript {
        /// The input index.
        index: usize,
    },
    /// A locktime is at or above 500,000,000, a Unix time rather than a block height.
    LocktimeNotHeight {
        /// The locktime given.
        value: u32,
    },
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::NoInputs => write!(f, "a claim transaction needs at least one input"),
            ClaimError::DuplicateInput { outpoint } => {
                write!(f, "outpoint {outpoint} is claimed twice")
            }
            ClaimError::AmountOverflow => {
                write!(f, "the claimed input values overflow the money supply")
            }
            ClaimError::BelowDust {
                value,
                fee,
                dust_limit,
            } => write!(
                f,
                "claim output {value} sat after a fee of {fee} sat is below the dust limit \
                 {dust_limit} sat"
            ),
            ClaimError::TooHeavy { weight, max } => {
                write!(
                    f,
                    "claim weight {weight} is above the standard maximum {max}"
                )
            }
            ClaimError::WitnessScriptMismatch { index } => write!(
                f,
                "input {index}: the witness script does not fit its spend path"
            ),
            ClaimError::KeyNotInScript { index } => write!(
                f,
                "input {index}: the signing key does not appear in the witness script"
            ),
            ClaimError::PreimageNotInScript { index } => write!(
                f,
                "input {index}: the preimage's hash does not appear in the htlc script"
            ),
            ClaimError::LocktimeNotHeight { value } => write!(
                f,
                "locktime {value} is not a block height (at or above 500000000)"
            ),
        }
    }
}

impl std::error::Error for ClaimError {}

/// The lowest feerate a claim pays: 253 sat/kw, 1 sat/vbyte (Bitcoin Core's minimum relay
/// fee) with room for rounding.
pub const FEERATE_FLOOR_PER_KW: u32 = 253;

/// The fee a claim of `weight` pays at `feerate_per_kw`: `feerate * weight / 1000` with the
/// feerate raised to at least [`FEERATE_FLOOR_PER_KW`], and never below `ceil(weight / 4)`
/// (1 sat/vbyte), so that a claim always meets the minimum relay fee.
pub fn claim_fee(feerate_per_kw: u32, weight: u64) -> u64 {
    fee_for_weight(feerate_per_kw.max(FEERATE_FLOOR_PER_KW), weight).max(weight.div_ceil(4))
}

/// Builds and signs a claim transaction: version 2, `inputs` in the order given (each with
/// the `nSequence` of its path, see [`SpendPath::sequence`]), one output to `destination`
/// holding their sum less [`claim_fee`] of [`claim_weight`], `nLockTime` the largest of
/// `locktime` and every [`SpendPath::OurOfferedHtlcTimeout`]'s `cltv_expiry`. Every input is
/// signed with `SIGHASH_ALL`.
///
/// Deterministic: the same arguments give the same transaction (RFC 6979 signatures).
pub fn build_claim_tx<C: Signing>(
    secp: &Secp256k1<C>,
    inputs: &[ClaimInput],
    destination: ScriptBuf,
    feerate_per_kw: u32,
    locktime: u32,
) -> Result<Transaction, ClaimError> {
    if inputs.is_empty() {
        return Err(ClaimError::NoInputs);
    }
    if locktime >= LOCKTIME_THRESHOLD {
        return Err(ClaimError::LocktimeNotHeight { value: locktime });
    }
    let pubkeys: Vec<PublicKey> = inputs
        .iter()
        .map(|input| PublicKey::from_secret_key(secp, &input.signing_key))
        .collect();
    let mut total = Amount::ZERO;
    let mut lock_time = locktime;
    for (index, (input, pubkey)) in inputs.iter().zip(&pubkeys).enumerate() {
        input.check(index, pubkey)?;
        if inputs
            .iter()
            .take(index)
            .any(|earlier| earlier.outpoint == input.outpoint)
        {
            return Err(ClaimError::DuplicateInput {
                outpoint: input.outpoint,
            });
        }
        total = total
            .checked_add(Amount::from_sat(input.value_sat))
            .filter(|t| *t <= Amount::MAX_MONEY)
            .ok_or(ClaimError::AmountOverflow)?;
        if let Some(min) = input.path.min_locktime() {
            lock_time = lock_time.max(min);
        }
    }
    let weight = claim_weight(inputs, &destination);
    if weight > MAX_STANDARD_TX_WEIGHT {
        return Err(ClaimError::TooHeavy {
            weight,
            max: MAX_STANDARD_TX_WEIGHT,
        });
    }
    let fee = claim_fee(feerate_per_kw, weight);
    let dust_limit = destination.minimal_non_dust().to_sat();
    let value = total.to_sat().saturating_sub(fee);
    if total.to_sat() < fee || value < dust_limit {
        return Err(ClaimError::BelowDust {
            value,
            fee,
            dust_limit,
        });
    }

    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_consensus(lock_time),
        input: inputs
            .iter()
            .map(|input| TxIn {
                previous_output: input.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: input.path.sequence(),
                witness: Witness::new(),
            })
            .collect(),
        output: vec![TxOut {
            value: Amount::from_sat(value),
            script_pubkey: destination,
        }],
    };
    let mut witnesses = Vec::with_capacity(inputs.len());
    for (index, (input, pubkey)) in inputs.iter().zip(&pubkeys).enumerate() {
        let script_code = if input.path.is_p2wpkh() {
            // BIP 143: a P2WPKH input signs over the P2PKH script of its key.
            ScriptBuf::new_p2pkh(&bitcoin::PublicKey::new(*pubkey).pubkey_hash())
        } else {
            input.witness_script.clone()
        };
        let signature = sign_segwit_v0_input(
            secp,
            &tx,
            index,
            &script_code,
            input.value_sat,
            EcdsaSighashType::All,
            &input.signing_key,
        )
        .expect("the transaction has one input per claim input");
        witnesses.push(input.witness(bitcoin::ecdsa::Signature::sighash_all(signature), pubkey));
    }
    for (txin, witness) in tx.input.iter_mut().zip(witnesses) {
        txin.witness = witness;
    }
    Ok(tx)
}

/// The preimage of `payment_hash` if `witness` reveals it: any 32-byte element whose SHA256
/// is `payment_hash`. This finds it in an HTLC-success witness
/// (`0 <remotesig> <localsig> <preimage> <script>`) and in a direct claim of an offered HTLC
/// (`<sig> <preimage> <script>`) alike; the hash check, not the witness's shape, is what
/// makes it a preimage.
pub fn preimage_from_witness(
    witness: &Witness,
    payment_hash: &PaymentHash,
) -> Option<PaymentPreimage> {
    witness.iter().find_map(|element| {
        let candidate: [u8; 32] = element.try_into().ok()?;
        (sha256::Hash::hash(&candidate).to_byte_array() == payment_hash.0)
            .then_some(PaymentPreimage(candidate))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transactions::scripts::{offered_htlc_script, to_local_script};
    use bitcoin::Txid;

    fn sk(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).expect("valid")
    }

    fn pk(byte: u8) -> PublicKey {
        PublicKey::from_secret_key(&crate::secp::ctx(), &sk(byte))
    }

    fn delayed_input(vout: u32, value_sat: u64) -> ClaimInput {
        ClaimInput {
            outpoint: OutPoint {
                txid: Txid::all_zeros(),
                vout,
            },
            value_sat,
            witness_script: to_local_script(&pk(1), 144, &pk(2)),
            path: SpendPath::Delayed { to_self_delay: 144 },
            signing_key: sk(2),
        }
    }

    fn dest() -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&CompressedPublicKey(pk(9)).wpubkey_hash())
    }

    #[test]
    fn typed_errors() {
        let secp = crate::secp::ctx();
        assert_eq!(
            build_claim_tx(&secp, &[], dest(), 253, 0),
            Err(ClaimError::NoInputs)
        );
        let one = delayed_input(0, 10_000);
        assert_eq!(
            build_claim_tx(&secp, &[one.clone(), one.clone()], dest(), 253, 0),
            Err(ClaimError::DuplicateInput {
                outpoint: one.outpoint
            })
        );
        assert_eq!(
            build_claim_tx(
                &secp,
                &[delayed_input(0, u64::MAX), delayed_input(1, 1)],
                dest(),
                253,
                0
            ),
            Err(ClaimError::AmountOverflow)
        );
        let weight = claim_weight(std::slice::from_ref(&one), &dest());
        let fee = claim_fee(1000, weight);
        assert!(matches!(
            build_claim_tx(&secp, &[delayed_input(0, fee + 293)], dest(), 1000, 0),
            Err(ClaimError::BelowDust {
                value: 293,
                dust_limit: 294,
                ..
            })
        ));
        assert!(build_claim_tx(&secp, &[delayed_input(0, fee + 294)], dest(), 1000, 0).is_ok());
        let wrong_key = ClaimInput {
            signing_key: sk(3),
            ..one.clone()
        };
        assert_eq!(
            build_claim_tx(&secp, &[wrong_key], dest(), 253, 0),
            Err(ClaimError::KeyNotInScript { index: 0 })
        );
        let p2wpkh_with_script = ClaimInput {
            path: SpendPath::ToRemoteP2wpkh,
            ..one.clone()
        };
        assert_eq!(
            build_claim_tx(&secp, &[p2wpkh_with_script], dest(), 253, 0),
            Err(ClaimError::WitnessScriptMismatch { index: 0 })
        );
        assert_eq!(
            build_claim_tx(&secp, &[one], dest(), 253, 500_000_000),
            Err(ClaimError::LocktimeNotHeight { value: 500_000_000 })
        );
    }

    #[test]
    fn preimage_must_match_the_script() {
        let secp = crate::secp::ctx();
        let preimage = PaymentPreimage([5; 32]);
        let script = offered_htlc_script(
            &pk(1),
            &pk(2),
            &pk(3),
            &preimage.payment_hash(),
            ChannelType::StaticRemoteKey,
        );
        let input = |preimage, channel_type| ClaimInput {
            outpoint: OutPoint::null(),
            value_sat: 50_000,
            witness_script: script.clone(),
            path: SpendPath::TheirOfferedHtlcPreimage {
                preimage,
                channel_type,
            },
            signing_key: sk(3),
        };
        let ok = build_claim_tx(
            &secp,
            &[input(preimage, ChannelType::StaticRemoteKey)],
            dest(),
            253,
            0,
        )
        .expect("valid");
        let witness = &ok.input[0].witness;
        assert_eq!(witness.len(), 3);
        assert_eq!(
            preimage_from_witness(witness, &preimage.payment_hash()),
            Some(preimage)
        );
        assert_eq!(
            preimage_from_witness(witness, &PaymentPreimage([6; 32]).payment_hash()),
            None
        );
        assert_eq!(
            build_claim_tx(
                &secp,
                &[input(
                    PaymentPreimage([6; 32]),
                    ChannelType::StaticRemoteKey
                )],
                dest(),
                253,
                0
            ),
            Err(ClaimError::PreimageNotInScript { index: 0 })
        );
        assert_eq!(
            build_claim_tx(
                &secp,
                &[input(preimage, ChannelType::AnchorsZeroFeeHtlcTx)],
                dest(),
                253,
                0
            ),
            Err(ClaimError::WitnessScriptMismatch { index: 0 })
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let mut input = delayed_input(0, 1000);
        input.path = SpendPath::TheirOfferedHtlcPreimage {
            preimage: PaymentPreimage([0xab; 32]),
            channel_type: ChannelType::StaticRemoteKey,
        };
        let text = format!("{input:?}");
        assert!(!text.contains("abab"), "{text}");
        assert!(!text.contains("0202020202"), "{text}");
    }
}
