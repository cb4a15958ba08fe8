//! `shutdown`, legacy `closing_signed` negotiation with `fee_range`, the closing
//! transaction, and force close.

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::transaction::Version;
use bitcoin::{Amount, EcdsaSighashType, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use super::error::{close, ignore, warn, ChannelErrorReason as R};
use super::open::is_valid_shutdown_script;
use super::spec::Update;
use super::{Channel, ChannelError, ChannelEvent, ChannelPhase, Connection, HtlcFailure};
use crate::transactions::fees::fee_for_weight;
use crate::transactions::sign::{funding_witness, segwit_v0_sighash};
use crate::wire::{ClosingFeeRange, ClosingSigned, Message, Shutdown};

/// Weight of the funding input's witness (2-of-2 with two 73-byte signatures) plus the
/// segwit marker and flag, added to the stripped weight to estimate a closing tx's weight.
const CLOSING_WITNESS_WEIGHT: u64 = 2 + 1 + 1 + 74 + 74 + 72;

/// Which variant of the closing transaction to build (BOLT 3 "Legacy Closing Transaction").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Outputs below `dust_limit_satoshis` removed.
    DustLimit(u64),
    /// Our own output removed (the peer may eliminate its own output).
    WithoutRemoteOutput(u64),
}

impl Channel {
    /// Starts a cooperative close: our `shutdown` (with our shutdown script) goes out as
    /// soon as all our updates are signed; no new HTLCs may be added from now on.
    pub fn shutdown(&mut self) -> Result<(), ChannelError> {
        if !self.is_funded() {
            return Err(ignore(R::NotFundedOrClosed));
        }
        if self.shutdown.local_requested {
            return Ok(());
        }
        self.shutdown.local_requested = true;
        self.after_state_change()
    }

    /// The peer's `shutdown`: checks the script (standard form, equal to its upfront script)
    /// and that the peer has no unsigned updates; we answer with our own `shutdown`.
    pub fn handle_shutdown(&mut self, msg: &Shutdown) -> Result<(), ChannelError> {
        if msg.channel_id != self.channel_id {
            return Err(close(R::WrongChannelId {
                message: "shutdown",
            }));
        }
        if !matches!(
            self.phase,
            ChannelPhase::Normal | ChannelPhase::AwaitingChannelReady
        ) {
            return Err(close(R::UnexpectedMessage {
                message: "shutdown",
            }));
        }
        if self.connection != Connection::Connected {
            return Err(close(R::BeforeReestablish {
                message: "shutdown",
            }));
        }
        if !is_valid_shutdown_script(&msg.scriptpubkey, self.anysegwit) {
            return Err(warn(R::NonStandardShutdownScript));
        }
        if let Some(upfront) = &self.remote_upfront_shutdown_script {
            if *upfront != msg.scriptpubkey {
                return Err(close(R::ShutdownScriptNotUpfront));
            }
        }
        if let Some(previous) = &self.shutdown.remote_script {
            if *previous != msg.scriptpubkey {
                return Err(close(R::ShutdownScriptChanged));
            }
            // A retransmission after reconnection.
            return self.after_state_change();
        }
        if !self.remote_changes.proposed.is_empty() {
            return Err(close(R::ShutdownWithUnsignedUpdates));
        }
        self.shutdown.remote_script = Some(msg.scriptpubkey.clone());
        self.shutdown.local_requested = true;
        // No update_add_htlc may follow the peer's shutdown: drop our unsent adds.
        let mut kept = Vec::new();
        for u in std::mem::take(&mut self.holding_cell) {
            match u {
                Update::Add(add) => self.events.push(ChannelEvent::OutboundHtlcFailed {
                    id: add.id,
                    failure: HtlcFailure::NotSent,
                }),
                other => kept.push(other),
            }
        }
        self.holding_cell = kept;
        self.events.push(ChannelEvent::ShutdownStarted);
        self.after_state_change()
    }

    /// Sends our pending `shutdown` once our updates are all signed, and starts closing
    /// negotiation (funder) once the channel is clean.
    pub(crate) fn after_state_change(&mut self) -> Result<(), ChannelError> {
        if !self.is_funded() || self.connection != Connection::Connected {
            return Ok(());
        }
        if self.shutdown.local_requested
            && !self.shutdown.local_sent
            && self.holding_cell.is_empty()
            && self.local_changes.proposed.is_empty()
        {
            self.shutdown.local_sent = true;
            self.outbox.push(Message::Shutdown(Shutdown {
                channel_id: self.channel_id,
                scriptpubkey: self.local_shutdown_script.clone(),
            }));
        }
        if self.is_funder && self.is_clean_for_closing() && self.closing.last_sent.is_none() {
            let fee = self.closing_fee_for_feerate(self.local_commit.spec.feerate_per_kw)?;
            let (min, _) = self.our_closing_fee_range()?;
            self.send_closing_signed(fee, Some((min.min(fee), fee)))?;
        }
        Ok(())
    }

    /// The closing transaction paying `fee_satoshis` (from the funder's output).
    fn closing_tx(&self, fee_satoshis: u64, variant: Variant) -> Result<Transaction, ChannelError> {
        let outpoint = self
            .funding_outpoint
            .ok_or_else(|| close(R::NoFundingOutpoint))?;
        let remote_script = self
            .shutdown
            .remote_script
            .clone()
            .ok_or_else(|| close(R::NoRemoteShutdownScript))?;
        let spec = &self.local_commit.spec;
        let mut ours = spec.to_local_msat / 1000;
        let mut theirs = spec.to_remote_msat / 1000;
        let funder = if self.is_funder {
            &mut ours
        } else {
            &mut theirs
        };
        *funder = funder.checked_sub(fee_satoshis).ok_or_else(|| {
            close(R::ClosingFeeAboveFunderBalance {
                fee_satoshis,
                balance_satoshis: *funder,
            })
        })?;
        let (dust, drop_remote) = match variant {
            Variant::DustLimit(d) => (d, false),
            Variant::WithoutRemoteOutput(d) => (d, true),
        };
        let mut outputs = Vec::new();
        if ours >= dust {
            outputs.push(TxOut {
                value: Amount::from_sat(ours),
                script_pubkey: self.local_shutdown_script.clone(),
            });
        }
        if theirs >= dust && !drop_remote {
            outputs.push(TxOut {
                value: Amount::from_sat(theirs),
                script_pubkey: remote_script,
            });
        }
        if outputs.is_empty() {
            return Err(close(R::ClosingTxWithoutOutput));
        }
        outputs.sort_by(|a, b| {
            a.value
                .cmp(&b.value)
                .then_with(|| a.script_pubkey.as_bytes().cmp(b.script_pubkey.as_bytes()))
        });
        Ok(Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: outputs,
        })
    }

    fn closing_sighash(
        &self,
        tx: &Transaction,
    ) -> Result<bitcoin::secp256k1::Message, ChannelError> {
        segwit_v0_sighash(
            tx,
            0,
            &self.funding_redeem_script(),
            self.funding_satoshis,
            EcdsaSighashType::All,
        )
        .map_err(|error| close(R::ClosingSighash { error }))
    }

    fn closing_fee_for_feerate(&self, feerate_per_kw: u32) -> Result<u64, ChannelError> {
        let tx = self.closing_tx(0, Variant::DustLimit(self.local_params.dust_limit_satoshis))?;
        let weight = tx.weight().to_wu().saturating_add(CLOSING_WITNESS_WEIGHT);
        Ok(fee_for_weight(feerate_per_kw, weight))
    }

    /// Our acceptable closing fee range: from our minimum feerate up to, as funder, the
    /// fee at our maximum feerate, or as fundee anything the funder can pay.
    fn our_closing_fee_range(&self) -> Result<(u64, u64), ChannelError> {
        let min = self.closing_fee_for_feerate(self.config.min_feerate_per_kw)?;
        let funder_balance = if self.is_funder {
            self.local_commit.spec.to_local_msat / 1000
        } else {
            self.local_commit.spec.to_remote_msat / 1000
        };
        let max = if self.is_funder {
            self.closing_fee_for_feerate(self.config.max_feerate_per_kw)?
                .min(funder_balance)
        } else {
            funder_balance
        };
        Ok((min, max.max(min)))
    }

    fn send_closing_signed(
        &mut self,
        fee_satoshis: u64,
        range: Option<(u64, u64)>,
    ) -> Result<Signature, ChannelError> {
        let tx = self.closing_tx(
            fee_satoshis,
            Variant::DustLimit(self.local_params.dust_limit_satoshis),
        )?;
        let secp = crate::secp::ctx();
        let signature = secp.sign_ecdsa(&self.closing_sighash(&tx)?, &self.keys.funding_key);
        self.closing.last_sent = Some((fee_satoshis, signature));
        self.outbox.push(Message::ClosingSigned(ClosingSigned {
            channel_id: self.channel_id,
            fee_satoshis,
            signature,
            fee_range: range.map(|(min, max)| ClosingFeeRange {
                min_fee_satoshis: min,
                max_fee_satoshis: max,
            }),
        }));
        Ok(signature)
    }

    /// Checks the peer's closing signature against each allowed variant; returns the
    /// fully signed transaction.
    fn verify_closing(&self, fee: u64, sig: &Signature) -> Result<Transaction, ChannelError> {
        let secp = crate::secp::ctx();
        let ours = self.local_params.dust_limit_satoshis;
        let theirs = self.remote_params.dust_limit_satoshis;
        for variant in [
            Variant::DustLimit(ours),
            Variant::DustLimit(theirs),
            Variant::WithoutRemoteOutput(ours),
        ] {
            let Ok(tx) = self.closing_tx(fee, variant) else {
                continue;
            };
            let sighash = self.closing_sighash(&tx)?;
            if secp
                .verify_ecdsa(&sighash, sig, &self.remote_pubkeys.funding_pubkey)
                .is_ok()
            {
                let our_sig = secp.sign_ecdsa(&sighash, &self.keys.funding_key);
                let mut signed = tx;
                let witness = funding_witness(
                    (&self.local_pubkeys.funding_pubkey, &our_sig),
                    (&self.remote_pubkeys.funding_pubkey, sig),
                    &self.funding_redeem_script(),
                );
                if let Some(input) = signed.input.first_mut() {
                    input.witness = witness;
                }
                return Ok(signed);
            }
        }
        Err(close(R::BadClosingSignature { fee_satoshis: fee }))
    }

    fn finish_close(&mut self, tx: Transaction) {
        self.events
            .push(ChannelEvent::ClosingTransactionReady { tx });
        self.phase = ChannelPhase::Closed;
    }

    /// The peer's `closing_signed` (legacy negotiation, with or without `fee_range`).
    /// When the fee is agreed, emits [`ChannelEvent::ClosingTransactionReady`] with the
    /// fully signed closing transaction and the channel is closed.
    pub fn handle_closing_signed(&mut self, msg: &ClosingSigned) -> Result<(), ChannelError> {
        if msg.channel_id != self.channel_id {
            return Err(close(R::WrongChannelId {
                message: "closing_signed",
            }));
        }
        if !self.is_funded() || self.connection != Connection::Connected {
            return Err(close(R::UnexpectedMessage {
                message: "closing_signed",
            }));
        }
        if !self.is_clean_for_closing() {
            return Err(close(R::ClosingSignedBeforeClean));
        }
        let fee = msg.fee_satoshis;
        let signed = self.verify_closing(fee, &msg.signature)?;
        let (our_min, our_max) = self.our_closing_fee_range()?;
        if let Some((sent, _)) = self.closing.last_sent {
            if sent == fee {
                self.finish_close(signed);
                return Ok(());
            }
        }
        let mut next = self.clone();
        next.closing.last_received = Some((fee, msg.signature));
        match msg.fee_range {
            Some(range) => {
                let lo = range.min_fee_satoshis.max(our_min);
                let hi = range.max_fee_satoshis.min(our_max);
                if lo > hi {
                    return Err(warn(R::ClosingFeeRangeNoOverlap {
                        their_min: range.min_fee_satoshis,
                        their_max: range.max_fee_satoshis,
                        our_min,
                        our_max,
                    }));
                }
                if next.is_funder || next.closing.last_sent.is_some() {
                    if next.closing.last_sent.is_some() && !next.is_funder {
                        return Err(close(R::ClosingFeeChanged { fee_satoshis: fee }));
                    }
                    if fee < lo || fee > hi {
                        return Err(close(R::ClosingFeeOutsideOverlap {
                            fee_satoshis: fee,
                            min: lo,
                            max: hi,
                        }));
                    }
                    next.send_closing_signed(fee, None)?;
                    next.finish_close(signed);
                } else if fee >= lo && fee <= hi {
                    next.send_closing_signed(fee, Some((lo, hi)))?;
                    next.finish_close(signed);
                } else {
                    next.send_closing_signed(fee.clamp(lo, hi), Some((lo, hi)))?;
                }
            }
            None => {
                if fee >= our_min && fee <= our_max {
                    next.send_closing_signed(fee, None)?;
                    next.finish_close(signed);
                } else {
                    if let (Some((sent, _)), Some((prev, _))) =
                        (self.closing.last_sent, self.closing.last_received)
                    {
                        let (a, b) = (sent.min(prev), sent.max(prev));
                        if fee <= a || fee >= b {
                            return Err(close(R::ClosingFeeNotBetween {
                                fee_satoshis: fee,
                                low: a,
                                high: b,
                            }));
                        }
                    }
                    next.send_closing_signed(fee.clamp(our_min, our_max), None)?;
                }
            }
        }
        *self = next;
        Ok(())
    }

    /// Fails the channel: returns our latest commitment transaction, fully signed (both
    /// funding signatures, complete witness), for broadcast. The channel is closed.
    /// Refused ([`ChannelError::Ignore`]) before the peer signed our first commitment.
    pub fn force_close(&mut self) -> Result<Transaction, ChannelError> {
        let remote_sig = self
            .local_commit
            .remote_signature
            .ok_or_else(|| ignore(R::NoSignedCommitment))?;
        let tx = self.local_commitment_tx()?;
        let secp = crate::secp::ctx();
        let our_sig = tx.sign(&secp, &self.keys.funding_key);
        let signed = tx.finalize(&our_sig, &remote_sig);
        self.set_closed();
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_utils::*;
    use super::*;

    #[test]
    fn closing_tx_variants_and_fees() {
        let (mut a, mut b) = ready_pair();
        a.shutdown.remote_script = Some(script(0xbb));
        let full = a.closing_tx(1000, Variant::DustLimit(354)).unwrap();
        assert_eq!(full.output.len(), 2);
        // Sorted by amount: B's 100,000 sat first, A's 900,000 - 1000 second.
        assert_eq!(full.output[0].value.to_sat(), 100_000);
        assert_eq!(full.output[1].value.to_sat(), 899_000);
        let high_dust = a.closing_tx(1000, Variant::DustLimit(100_001)).unwrap();
        assert_eq!(high_dust.output.len(), 1);
        let without = a
            .closing_tx(1000, Variant::WithoutRemoteOutput(354))
            .unwrap();
        assert_eq!(without.output.len(), 1);
        assert!(a.closing_tx(900_001, Variant::DustLimit(354)).is_err());
        let low = a.closing_fee_for_feerate(253).unwrap();
        let high = a.closing_fee_for_feerate(2530).unwrap();
        assert!(low > 0 && high >= 10 * low - 10, "{low} {high}");
        let (min, max) = a.our_closing_fee_range().unwrap();
        assert_eq!(min, low);
        assert!(max > min);
        // Negotiation end to end.
        a.shutdown.remote_script = None;
        a.shutdown().unwrap();
        settle(&mut a, &mut b);
        assert_eq!(a.phase(), ChannelPhase::Closed);
        assert_eq!(b.phase(), ChannelPhase::Closed);
    }
}
