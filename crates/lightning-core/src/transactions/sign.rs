//! Segwit v0 sighashes, ECDSA signatures and the funding-input witness.
//!
//! Signatures are plain RFC 6979 deterministic ECDSA (`secp256k1`'s `sign_ecdsa`, without
//! low-R grinding), as the BOLT 3 test vectors use: several of their signatures have a 33-byte
//! `r`. Verification rejects signatures whose `s` is not normalized (high-S), as Bitcoin's
//! standardness rules do.

use core::fmt;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{
    ecdsa::Signature, Message, PublicKey, Secp256k1, SecretKey, Signing, Verification,
};
use bitcoin::sighash::SighashCache;
use bitcoin::{Amount, EcdsaSighashType, Script, Transaction, Witness};

/// Why a signature could not be made or was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The transaction has no input with this index.
    InputIndex {
        /// The index asked for.
        index: usize,
        /// How many inputs the transaction has.
        inputs: usize,
    },
    /// A signature on an input did not verify.
    InvalidSignature {
        /// The input index.
        index: usize,
    },
    /// The commitment signature did not verify against the funding key.
    InvalidCommitmentSignature,
    /// An HTLC transaction signature did not verify.
    InvalidHtlcSignature {
        /// The commitment output index of the HTLC.
        output_index: u32,
    },
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::InputIndex { index, inputs } => {
                write!(
                    f,
                    "input index {index} is out of range: the transaction has {inputs} inputs"
                )
            }
            SignatureError::InvalidSignature { index } => {
                write!(f, "signature on input {index} does not verify")
            }
            SignatureError::InvalidCommitmentSignature => {
                write!(
                    f,
                    "commitment signature does not verify against the funding pubkey"
                )
            }
            SignatureError::InvalidHtlcSignature { output_index } => write!(
                f,
                "htlc signature for commitment output {output_index} does not verify"
            ),
        }
    }
}

impl std::error::Error for SignatureError {}

/// The BIP 143 sighash of input `index` spending a P2WSH output of `value_satoshis` with
/// `witness_script`.
pub fn segwit_v0_sighash(
    tx: &Transaction,
    index: usize,
    witness_script: &Script,
    value_satoshis: u64,
    sighash_type: EcdsaSighashType,
) -> Result<Message, SignatureError> {
    let inputs = tx.input.len();
    let hash = SighashCache::new(tx)
        .p2wsh_signature_hash(
            index,
            witness_script,
            Amount::from_sat(value_satoshis),
            sighash_type,
        )
        .map_err(|_| SignatureError::InputIndex { index, inputs })?;
    Ok(Message::from_digest(hash.to_byte_array()))
}

/// Signs input `index` (P2WSH, segwit v0) with `key`.
pub fn sign_segwit_v0_input<C: Signing>(
    secp: &Secp256k1<C>,
    tx: &Transaction,
    index: usize,
    witness_script: &Script,
    value_satoshis: u64,
    sighash_type: EcdsaSighashType,
    key: &SecretKey,
) -> Result<Signature, SignatureError> {
    let message = segwit_v0_sighash(tx, index, witness_script, value_satoshis, sighash_type)?;
    Ok(secp.sign_ecdsa(&message, key))
}

/// Checks a signature by `pubkey` on input `index` (P2WSH, segwit v0).
#[allow(clippy::too_many_arguments)]
pub fn verify_segwit_v0_input<C: Verification>(
    secp: &Secp256k1<C>,
    tx: &Transaction,
    index: usize,
    witness_script: &Script,
    value_satoshis: u64,
    sighash_type: EcdsaSighashType,
    signature: &Signature,
    pubkey: &PublicKey,
) -> Result<(), SignatureError> {
    let message = segwit_v0_sighash(tx, index, witness_script, value_satoshis, sighash_type)?;
    secp.verify_ecdsa(&message, signature, pubkey)
        .map_err(|_| SignatureError::InvalidSignature { index })
}

/// The witness spending the 2-of-2 funding output:
/// `0 <signature_for_pubkey1> <signature_for_pubkey2> <funding script>`, signatures with
/// `SIGHASH_ALL` and in the order of their (sorted) keys in the script.
pub fn funding_witness(
    a: (&PublicKey, &Signature),
    b: (&PublicKey, &Signature),
    funding_script: &Script,
) -> Witness {
    let (first, second) = if a.0.serialize() <= b.0.serialize() {
        (a.1, b.1)
    } else {
        (b.1, a.1)
    };
    let mut witness = Witness::new();
    witness.push([]);
    witness.push(bitcoin::ecdsa::Signature::sighash_all(*first).serialize());
    witness.push(bitcoin::ecdsa::Signature::sighash_all(*second).serialize());
    witness.push(funding_script.as_bytes());
    witness
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{OutPoint, ScriptBuf, Sequence, TxIn, TxOut};

    fn tx(inputs: usize) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: (0..inputs)
                .map(|vout| TxIn {
                    previous_output: OutPoint {
                        txid: bitcoin::Txid::all_zeros(),
                        vout: vout as u32,
                    },
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: vec![TxOut {
                value: Amount::from_sat(1000),
                script_pubkey: ScriptBuf::new(),
            }],
        }
    }

    #[test]
    fn missing_input_is_a_typed_error() {
        let script = ScriptBuf::new();
        assert_eq!(
            segwit_v0_sighash(&tx(1), 1, &script, 1000, EcdsaSighashType::All),
            Err(SignatureError::InputIndex {
                index: 1,
                inputs: 1
            })
        );
    }

    #[test]
    fn sign_then_verify_and_reject_tampering() {
        let secp = crate::secp::ctx();
        let key = SecretKey::from_slice(&[3; 32]).expect("valid");
        let pubkey = PublicKey::from_secret_key(&secp, &key);
        let script = ScriptBuf::from_bytes(vec![0x51]);
        let t = tx(2);
        let sig = sign_segwit_v0_input(&secp, &t, 1, &script, 5000, EcdsaSighashType::All, &key)
            .expect("input exists");
        let check = |t: &Transaction, index, value, sig: &Signature| {
            verify_segwit_v0_input(
                &secp,
                t,
                index,
                &script,
                value,
                EcdsaSighashType::All,
                sig,
                &pubkey,
            )
        };
        assert_eq!(check(&t, 1, 5000, &sig), Ok(()));
        assert_eq!(
            check(&t, 0, 5000, &sig),
            Err(SignatureError::InvalidSignature { index: 0 })
        );
        assert_eq!(
            check(&t, 1, 5001, &sig),
            Err(SignatureError::InvalidSignature { index: 1 })
        );
        let mut changed = t.clone();
        if let Some(out) = changed.output.first_mut() {
            out.value = Amount::from_sat(999);
        }
        assert_eq!(
            check(&changed, 1, 5000, &sig),
            Err(SignatureError::InvalidSignature { index: 1 })
        );
        // A high-S form of a valid signature is refused.
        let mut compact = sig.serialize_compact();
        let high_s = negate_s(&mut compact);
        assert_eq!(
            check(&t, 1, 5000, &high_s),
            Err(SignatureError::InvalidSignature { index: 1 })
        );
    }

    /// Replaces `s` by `n - s`.
    fn negate_s(compact: &mut [u8; 64]) -> Signature {
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c,
            0xd0, 0x36, 0x41, 0x41,
        ];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let s = i16::from(compact[32 + i]);
            let mut d = i16::from(N[i]) - s - borrow;
            borrow = if d < 0 { 1 } else { 0 };
            if d < 0 {
                d += 256;
            }
            compact[32 + i] = d as u8;
        }
        Signature::from_compact(compact).expect("n - s is a valid s")
    }

    #[test]
    fn funding_witness_orders_signatures_by_key() {
        let secp = crate::secp::ctx();
        let k1 = SecretKey::from_slice(&[1; 32]).expect("valid");
        let k2 = SecretKey::from_slice(&[2; 32]).expect("valid");
        let (p1, p2) = (
            PublicKey::from_secret_key(&secp, &k1),
            PublicKey::from_secret_key(&secp, &k2),
        );
        let msg = Message::from_digest([7; 32]);
        let (s1, s2) = (secp.sign_ecdsa(&msg, &k1), secp.sign_ecdsa(&msg, &k2));
        let script = ScriptBuf::new();
        let w = funding_witness((&p1, &s1), (&p2, &s2), &script);
        assert_eq!(w, funding_witness((&p2, &s2), (&p1, &s1), &script));
        let first = if p1.serialize() < p2.serialize() {
            s1
        } else {
            s2
        };
        let mut expected = first.serialize_der().to_vec();
        expected.push(0x01);
        assert_eq!(w.nth(1), Some(&expected[..]));
        assert_eq!(w.nth(0), Some(&[][..]));
    }
}
