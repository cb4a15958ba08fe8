//! HTLC-timeout and HTLC-success transactions (BOLT 3, "HTLC-Timeout and HTLC-Success
//! Transactions").
//!
//! Each spends one HTLC output of a commitment transaction into a `to_local`-style output
//! (revocable, delayed by `to_self_delay`). The HTLC-timeout transaction (offered HTLCs) is
//! locked until `cltv_expiry`; the HTLC-success transaction (received HTLCs) reveals the
//! preimage. With `option_anchors` they pay no fee, their input has sequence 1, and the
//! counterparty signs with `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` so fees can be added later.

use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{ecdsa::Signature, Message, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, EcdsaSighashType, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};

use super::commitment::HtlcOutput;
use super::fees::htlc_tx_fee;
use super::scripts::to_local_script;
use super::sign::{self, SignatureError};
use super::{ChannelType, Htlc, HtlcDirection};
use crate::keys::{CommitmentKeys, HtlcKeys};
use crate::types::PaymentPreimage;

/// Why an HTLC transaction could not be built or completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HtlcTxError {
    /// The HTLC amount does not cover the HTLC transaction fee (the HTLC is trimmed).
    AmountBelowFee {
        /// The HTLC amount in satoshis.
        amount_satoshis: u64,
        /// The HTLC transaction fee.
        fee_satoshis: u64,
    },
    /// An HTLC-success transaction needs the payment preimage.
    MissingPreimage,
    /// The preimage does not hash to the HTLC's payment hash.
    PreimageMismatch,
    /// An HTLC-timeout transaction takes no preimage.
    UnexpectedPreimage,
    /// The commitment keys given have no HTLC keys
    /// ([`CommitmentKeys::derive_without_htlc_keys`]).
    MissingHtlcKeys,
}

impl fmt::Display for HtlcTxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HtlcTxError::AmountBelowFee {
                amount_satoshis,
                fee_satoshis,
            } => write!(
                f,
                "htlc amount {amount_satoshis} sat is below the htlc transaction fee \
                 {fee_satoshis} sat"
            ),
            HtlcTxError::MissingPreimage => {
                write!(
                    f,
                    "payment_preimage missing for an htlc-success transaction"
                )
            }
            HtlcTxError::PreimageMismatch => {
                write!(f, "payment_preimage does not hash to the htlc payment_hash")
            }
            HtlcTxError::UnexpectedPreimage => {
                write!(f, "payment_preimage given for an htlc-timeout transaction")
            }
            HtlcTxError::MissingHtlcKeys => {
                write!(f, "the commitment keys given have no htlc keys")
            }
        }
    }
}

impl std::error::Error for HtlcTxError {}

/// An unsigned HTLC-timeout or HTLC-success transaction, with what is needed to sign it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtlcTx {
    tx: Transaction,
    output: HtlcOutput,
    input_satoshis: u64,
    channel_type: ChannelType,
    htlc_keys: HtlcKeys,
}

impl HtlcTx {
    /// Builds the transaction spending `output` of the commitment `commitment_txid`.
    ///
    /// Fails if the HTLC cannot pay its own fee, which only happens for a trimmed HTLC.
    pub fn new(
        commitment_txid: Txid,
        output: &HtlcOutput,
        feerate_per_kw: u32,
        to_self_delay: u16,
        keys: &CommitmentKeys,
        channel_type: ChannelType,
    ) -> Result<HtlcTx, HtlcTxError> {
        let fee = htlc_tx_fee(output.htlc.direction, feerate_per_kw, channel_type);
        let amount = output.htlc.amount_satoshis();
        if amount < fee {
            return Err(HtlcTxError::AmountBelowFee {
                amount_satoshis: amount,
                fee_satoshis: fee,
            });
        }
        let htlc_keys = keys.htlc_keys.ok_or(HtlcTxError::MissingHtlcKeys)?;
        Ok(Self::for_untrimmed_output(
            commitment_txid,
            output,
            feerate_per_kw,
            to_self_delay,
            keys,
            &htlc_keys,
            channel_type,
        ))
    }

    /// Builds the transaction for an HTLC output of a built commitment: such an HTLC is not
    /// trimmed, so its amount covers the fee.
    pub(crate) fn for_untrimmed_output(
        commitment_txid: Txid,
        output: &HtlcOutput,
        feerate_per_kw: u32,
        to_self_delay: u16,
        keys: &CommitmentKeys,
        htlc_keys: &HtlcKeys,
        channel_type: ChannelType,
    ) -> HtlcTx {
        let htlc = &output.htlc;
        let fee = htlc_tx_fee(htlc.direction, feerate_per_kw, channel_type);
        let lock_time = match htlc.direction {
            HtlcDirection::Offered => LockTime::from_consensus(htlc.cltv_expiry),
            HtlcDirection::Received => LockTime::ZERO,
        };
        let sequence = if channel_type.has_anchors() {
            Sequence(1)
        } else {
            Sequence(0)
        };
        let script = to_local_script(&keys.revocation_key, to_self_delay, &keys.local_delayed_key);
        let tx = Transaction {
            version: Version::TWO,
            lock_time,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: commitment_txid,
                    vout: output.output_index,
                },
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(htlc.amount_satoshis().saturating_sub(fee)),
                script_pubkey: script.to_p2wsh(),
            }],
        };
        HtlcTx {
            tx,
            output: output.clone(),
            input_satoshis: htlc.amount_satoshis(),
            channel_type,
            htlc_keys: *htlc_keys,
        }
    }

    /// The unsigned transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// The HTLC it resolves.
    pub fn htlc(&self) -> &Htlc {
        &self.output.htlc
    }

    /// The commitment output it spends.
    pub fn commitment_output(&self) -> &HtlcOutput {
        &self.output
    }

    /// Whether this is an HTLC-success transaction (else HTLC-timeout).
    pub fn is_success(&self) -> bool {
        self.output.htlc.direction == HtlcDirection::Received
    }

    /// The sighash type of the remote side's signature: `SIGHASH_ALL`, or
    /// `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` with `option_anchors`.
    pub fn remote_sighash_type(&self) -> EcdsaSighashType {
        if self.channel_type.has_anchors() {
            EcdsaSighashType::SinglePlusAnyoneCanPay
        } else {
            EcdsaSighashType::All
        }
    }

    /// The segwit sighash of the input for `sighash_type`.
    pub fn sighash(&self, sighash_type: EcdsaSighashType) -> Message {
        sign::segwit_v0_sighash(
            &self.tx,
            0,
            &self.output.witness_script,
            self.input_satoshis,
            sighash_type,
        )
        .expect("an htlc transaction always has exactly one input")
    }

    /// The owner's signature, with its `local_htlcpubkey` secret (`SIGHASH_ALL`).
    pub fn sign_local<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        local_htlc_key: &SecretKey,
    ) -> Signature {
        secp.sign_ecdsa(&self.sighash(EcdsaSighashType::All), local_htlc_key)
    }

    /// The remote side's signature, with its `remote_htlcpubkey` secret (sent in
    /// `commitment_signed`), using [`Self::remote_sighash_type`].
    pub fn sign_remote<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        remote_htlc_key: &SecretKey,
    ) -> Signature {
        secp.sign_ecdsa(&self.sighash(self.remote_sighash_type()), remote_htlc_key)
    }

    /// Checks the remote side's signature against `remote_htlcpubkey`.
    pub fn verify_remote<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        secp.verify_ecdsa(
            &self.sighash(self.remote_sighash_type()),
            signature,
            &self.htlc_keys.remote_htlc_key,
        )
        .map_err(|_| SignatureError::InvalidHtlcSignature {
            output_index: self.output.output_index,
        })
    }

    /// Checks the owner's signature against `local_htlcpubkey`.
    pub fn verify_local<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        secp.verify_ecdsa(
            &self.sighash(EcdsaSighashType::All),
            signature,
            &self.htlc_keys.local_htlc_key,
        )
        .map_err(|_| SignatureError::InvalidHtlcSignature {
            output_index: self.output.output_index,
        })
    }

    /// The signed transaction: witness `0 <remotehtlcsig> <localhtlcsig> <payment_preimage>`
    /// (HTLC-success) or `0 <remotehtlcsig> <localhtlcsig> <>` (HTLC-timeout), then the HTLC
    /// script.
    pub fn finalize(
        &self,
        remote_signature: &Signature,
        local_signature: &Signature,
        preimage: Option<&PaymentPreimage>,
    ) -> Result<Transaction, HtlcTxError> {
        let last: &[u8] = match (self.output.htlc.direction, preimage) {
            (HtlcDirection::Received, None) => return Err(HtlcTxError::MissingPreimage),
            (HtlcDirection::Received, Some(p))
                if p.payment_hash() != self.output.htlc.payment_hash =>
            {
                return Err(HtlcTxError::PreimageMismatch)
            }
            (HtlcDirection::Received, Some(p)) => &p.0,
            (HtlcDirection::Offered, Some(_)) => return Err(HtlcTxError::UnexpectedPreimage),
            (HtlcDirection::Offered, None) => &[],
        };
        let mut witness = Witness::new();
        witness.push([]);
        witness.push(
            bitcoin::ecdsa::Signature {
                signature: *remote_signature,
                sighash_type: self.remote_sighash_type(),
            }
            .serialize(),
        );
        witness.push(bitcoin::ecdsa::Signature::sighash_all(*local_signature).serialize());
        witness.push(last);
        witness.push(self.output.witness_script.as_bytes());
        let mut tx = self.tx.clone();
        if let Some(input) = tx.input.first_mut() {
            input.witness = witness;
        }
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transactions::scripts::htlc_script;
    use crate::types::PaymentHash;
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::PublicKey;

    fn sk(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).expect("valid")
    }

    /// Commitment keys with HTLC keys `sk(4)` (local) and `sk(5)` (remote).
    fn test_keys() -> CommitmentKeys {
        let secp = crate::secp::ctx();
        let pk = |k: &SecretKey| PublicKey::from_secret_key(&secp, k);
        CommitmentKeys {
            per_commitment_point: pk(&sk(1)),
            revocation_key: pk(&sk(2)),
            local_delayed_key: pk(&sk(3)),
            htlc_keys: Some(HtlcKeys {
                local_htlc_key: pk(&sk(4)),
                remote_htlc_key: pk(&sk(5)),
            }),
            remote_payment_key: pk(&sk(6)),
        }
    }

    fn setup(
        direction: HtlcDirection,
        channel_type: ChannelType,
    ) -> (HtlcTx, SecretKey, SecretKey) {
        let (local_htlc, remote_htlc) = (sk(4), sk(5));
        let keys = test_keys();
        let htlc = Htlc {
            direction,
            amount_msat: 5_000_000,
            cltv_expiry: 600,
            payment_hash: PaymentPreimage([9; 32]).payment_hash(),
        };
        let output = HtlcOutput {
            htlc_index: 0,
            output_index: 3,
            htlc,
            witness_script: htlc_script(
                &htlc,
                &keys.revocation_key,
                &keys.htlc_keys.expect("set above"),
                channel_type,
            ),
        };
        let tx = HtlcTx::new(Txid::all_zeros(), &output, 1000, 144, &keys, channel_type)
            .expect("5000 sat covers the fee");
        (tx, local_htlc, remote_htlc)
    }

    #[test]
    fn shape_without_anchors() {
        let (timeout, _, _) = setup(HtlcDirection::Offered, ChannelType::StaticRemoteKey);
        assert_eq!(timeout.tx().lock_time.to_consensus_u32(), 600);
        assert_eq!(timeout.tx().input.first().map(|i| i.sequence.0), Some(0));
        assert_eq!(
            timeout.tx().output.first().map(|o| o.value.to_sat()),
            Some(5000 - 663)
        );
        let (success, _, _) = setup(HtlcDirection::Received, ChannelType::StaticRemoteKey);
        assert_eq!(success.tx().lock_time.to_consensus_u32(), 0);
        assert_eq!(
            success.tx().output.first().map(|o| o.value.to_sat()),
            Some(5000 - 703)
        );
        assert_eq!(success.remote_sighash_type(), EcdsaSighashType::All);
    }

    #[test]
    fn shape_with_anchors() {
        let (timeout, _, _) = setup(HtlcDirection::Offered, ChannelType::AnchorsZeroFeeHtlcTx);
        assert_eq!(timeout.tx().input.first().map(|i| i.sequence.0), Some(1));
        assert_eq!(
            timeout.tx().output.first().map(|o| o.value.to_sat()),
            Some(5000)
        );
        assert_eq!(
            timeout.remote_sighash_type(),
            EcdsaSighashType::SinglePlusAnyoneCanPay
        );
    }

    #[test]
    fn bad_signatures_are_rejected() {
        let secp = crate::secp::ctx();
        for channel_type in [
            ChannelType::StaticRemoteKey,
            ChannelType::AnchorsZeroFeeHtlcTx,
        ] {
            let (tx, local, remote) = setup(HtlcDirection::Received, channel_type);
            let remote_sig = tx.sign_remote(&secp, &remote);
            let local_sig = tx.sign_local(&secp, &local);
            assert_eq!(tx.verify_remote(&secp, &remote_sig), Ok(()));
            assert_eq!(tx.verify_local(&secp, &local_sig), Ok(()));
            let err = SignatureError::InvalidHtlcSignature { output_index: 3 };
            // Signed by the wrong key, or over the wrong sighash type.
            assert_eq!(
                tx.verify_remote(&secp, &tx.sign_remote(&secp, &local)),
                Err(err)
            );
            assert_eq!(tx.verify_remote(&secp, &local_sig), Err(err));
            assert_eq!(tx.verify_local(&secp, &remote_sig), Err(err));
        }
        // Under anchors the remote signature must commit to SINGLE|ANYONECANPAY, not ALL.
        let (tx, _, remote) = setup(HtlcDirection::Offered, ChannelType::AnchorsZeroFeeHtlcTx);
        let all = secp.sign_ecdsa(&tx.sighash(EcdsaSighashType::All), &remote);
        assert_eq!(
            tx.verify_remote(&secp, &all),
            Err(SignatureError::InvalidHtlcSignature { output_index: 3 })
        );
    }

    #[test]
    fn finalize_checks_the_preimage() {
        let secp = crate::secp::ctx();
        let (success, local, remote) = setup(HtlcDirection::Received, ChannelType::StaticRemoteKey);
        let (r, l) = (
            success.sign_remote(&secp, &remote),
            success.sign_local(&secp, &local),
        );
        assert_eq!(
            success.finalize(&r, &l, None),
            Err(HtlcTxError::MissingPreimage)
        );
        assert_eq!(
            success.finalize(&r, &l, Some(&PaymentPreimage([8; 32]))),
            Err(HtlcTxError::PreimageMismatch)
        );
        let tx = success
            .finalize(&r, &l, Some(&PaymentPreimage([9; 32])))
            .expect("right preimage");
        let witness = &tx.input.first().expect("one input").witness;
        assert_eq!(witness.len(), 5);
        assert_eq!(witness.nth(3), Some(&[9u8; 32][..]));
        let (timeout, local, remote) = setup(HtlcDirection::Offered, ChannelType::StaticRemoteKey);
        let (r, l) = (
            timeout.sign_remote(&secp, &remote),
            timeout.sign_local(&secp, &local),
        );
        assert_eq!(
            timeout.finalize(&r, &l, Some(&PaymentPreimage([9; 32]))),
            Err(HtlcTxError::UnexpectedPreimage)
        );
        let tx = timeout.finalize(&r, &l, None).expect("no preimage needed");
        assert_eq!(
            tx.input.first().and_then(|i| i.witness.nth(3)),
            Some(&[][..])
        );
    }

    #[test]
    fn trimmed_htlc_cannot_pay_its_fee() {
        let (tx, _, _) = setup(HtlcDirection::Offered, ChannelType::StaticRemoteKey);
        let mut output = tx.commitment_output().clone();
        output.htlc.amount_msat = 662_999;
        output.htlc.payment_hash = PaymentHash([0; 32]);
        assert_eq!(
            HtlcTx::new(
                Txid::all_zeros(),
                &output,
                1000,
                144,
                &test_keys(),
                ChannelType::StaticRemoteKey
            ),
            Err(HtlcTxError::AmountBelowFee {
                amount_satoshis: 662,
                fee_satoshis: 663
            })
        );
    }

    #[test]
    fn htlc_tx_needs_htlc_keys() {
        let (tx, _, _) = setup(HtlcDirection::Offered, ChannelType::StaticRemoteKey);
        let keys = CommitmentKeys {
            htlc_keys: None,
            ..test_keys()
        };
        assert_eq!(
            HtlcTx::new(
                Txid::all_zeros(),
                tx.commitment_output(),
                1000,
                144,
                &keys,
                ChannelType::StaticRemoteKey
            ),
            Err(HtlcTxError::MissingHtlcKeys)
        );
    }
}
