//! `commitment_signed` and `revoke_and_ack`: building, signing and verifying the real BOLT 3
//! commitment and HTLC transactions, and moving the change lists.

use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use bitcoin::OutPoint;

use super::ahead::{Ahead, KeysAhead};
use super::error::{close, ChannelErrorReason as R};
use super::spec::{reduce, CommitmentSpec, Update};
use super::{
    Channel, ChannelError, ChannelEvent, ChannelParams, ChannelPhase, Connection, HtlcFailure,
    LocalCommit, NextRemoteCommit, RemoteCommit,
};
use crate::keys::{self as bolt3_keys, ChannelPublicKeys, CommitmentKeys, RevocationSecret};
use crate::secrets::FIRST_INDEX;
use crate::transactions::fees::is_htlc_trimmed;
use crate::transactions::{
    build_commitment_tx, ChannelType, CommitmentParams, CommitmentTx, Htlc, Side,
};
use crate::wire::{CommitmentSigned, Message, RevokeAndAck};

/// A channel's fixed terms: what building either side's commitment needs besides its
/// content, its number and its per-commitment point. The channel and its on-chain monitor
/// ([`crate::chain::ChannelMonitor`]) build commitments through the same code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitmentTerms {
    pub(crate) channel_type: ChannelType,
    pub(crate) funding_outpoint: OutPoint,
    pub(crate) funding_satoshis: u64,
    pub(crate) is_funder: bool,
    pub(crate) local_pubkeys: ChannelPublicKeys,
    pub(crate) remote_pubkeys: ChannelPublicKeys,
    pub(crate) local_params: ChannelParams,
    pub(crate) remote_params: ChannelParams,
}

impl CommitmentTerms {
    /// Builds `side`'s commitment number `index` with content `spec` (from that side's point
    /// of view) at that side's per-commitment `point` (unsigned).
    pub(crate) fn build(
        &self,
        side: Side,
        spec: &CommitmentSpec,
        index: u64,
        point: &PublicKey,
    ) -> Result<CommitmentTx, ChannelError> {
        self.build_knowing(side, spec, index, point, None)
    }

    /// [`CommitmentTerms::build`] by a side that holds the secret of one of the revocation
    /// key's points (`known`): the same transaction, derived more cheaply
    /// ([`CommitmentKeys::derive_knowing`]).
    pub(crate) fn build_knowing(
        &self,
        side: Side,
        spec: &CommitmentSpec,
        index: u64,
        point: &PublicKey,
        known: Option<RevocationSecret<'_>>,
    ) -> Result<CommitmentTx, ChannelError> {
        let secp = crate::secp::ctx();
        let (owner, other, owner_params, _) = self.sides(side);
        let keys = commitment_keys(
            &secp,
            self.channel_type,
            point,
            owner,
            other,
            known,
            &spec.tx_htlcs(),
            spec.feerate_per_kw,
            owner_params.dust_limit_satoshis,
        )
        .map_err(|error| close(R::CommitmentKeys { side, index, error }))?;
        self.build_with_keys(side, spec, index, keys)
    }

    /// `side`'s keys and parameters, then the other side's.
    fn sides(
        &self,
        side: Side,
    ) -> (
        &ChannelPublicKeys,
        &ChannelPublicKeys,
        &ChannelParams,
        &ChannelParams,
    ) {
        match side {
            Side::Local => (
                &self.local_pubkeys,
                &self.remote_pubkeys,
                &self.local_params,
                &self.remote_params,
            ),
            Side::Remote => (
                &self.remote_pubkeys,
                &self.local_pubkeys,
                &self.remote_params,
                &self.local_params,
            ),
        }
    }

    /// The keys of `side`'s commitment at `point`, with both HTLC keys if `htlc_keys`, by a
    /// side that holds `known` ([`super::ahead`]: what is derived before the commitment's
    /// content is known).
    pub(crate) fn keys_ahead(
        &self,
        side: Side,
        point: &PublicKey,
        known: RevocationSecret<'_>,
        htlc_keys: bool,
    ) -> Result<CommitmentKeys, bolt3_keys::KeyError> {
        let (owner, other, _, _) = self.sides(side);
        CommitmentKeys::derive_knowing(&crate::secp::ctx(), point, owner, other, known, htlc_keys)
    }

    /// Builds `side`'s commitment number `index` with content `spec` from its `keys` (the
    /// HTLC keys derived now if the keys lack them and an HTLC of `spec` is untrimmed).
    pub(crate) fn build_with_keys(
        &self,
        side: Side,
        spec: &CommitmentSpec,
        index: u64,
        keys: CommitmentKeys,
    ) -> Result<CommitmentTx, ChannelError> {
        let htlcs = spec.tx_htlcs();
        let ours = side == Side::Local;
        let (owner, other, owner_params, other_params) = self.sides(side);
        let untrimmed = || {
            htlcs.iter().any(|h| {
                !is_htlc_trimmed(
                    h,
                    spec.feerate_per_kw,
                    owner_params.dust_limit_satoshis,
                    self.channel_type,
                )
            })
        };
        let keys = if keys.htlc_keys.is_none() && untrimmed() {
            keys.with_htlc_keys(&crate::secp::ctx(), owner, other)
                .map_err(|error| close(R::CommitmentKeys { side, index, error }))?
        } else {
            keys
        };
        build_commitment_tx(&CommitmentParams {
            channel_type: self.channel_type,
            funding_outpoint: self.funding_outpoint,
            funding_satoshis: self.funding_satoshis,
            local_funding_pubkey: owner.funding_pubkey,
            remote_funding_pubkey: other.funding_pubkey,
            local_payment_basepoint: owner.payment_basepoint,
            remote_payment_basepoint: other.payment_basepoint,
            funder: if self.is_funder == ours {
                Side::Local
            } else {
                Side::Remote
            },
            commitment_number: index,
            to_local_msat: spec.to_local_msat,
            to_remote_msat: spec.to_remote_msat,
            feerate_per_kw: spec.feerate_per_kw,
            dust_limit_satoshis: owner_params.dust_limit_satoshis,
            to_self_delay: other_params.to_self_delay,
            keys,
            htlcs: &htlcs,
        })
        .map_err(|error| close(R::BuildCommitment { side, index, error }))
    }
}

/// The keys of a commitment at `point` owned by `owner`: the two HTLC keys (two point
/// tweaks) only if one of `htlcs` is untrimmed at `feerate_per_kw` and the owner's
/// `dust_limit_satoshis`, since no script of the commitment uses them otherwise.
#[allow(clippy::too_many_arguments)]
fn commitment_keys(
    secp: &Secp256k1<All>,
    channel_type: ChannelType,
    point: &PublicKey,
    owner: &ChannelPublicKeys,
    other: &ChannelPublicKeys,
    known: Option<RevocationSecret<'_>>,
    htlcs: &[Htlc],
    feerate_per_kw: u32,
    dust_limit_satoshis: u64,
) -> Result<CommitmentKeys, bolt3_keys::KeyError> {
    let untrimmed = htlcs
        .iter()
        .any(|h| !is_htlc_trimmed(h, feerate_per_kw, dust_limit_satoshis, channel_type));
    match known {
        Some(known) => CommitmentKeys::derive_knowing(secp, point, owner, other, known, untrimmed),
        None if untrimmed => CommitmentKeys::derive(secp, point, owner, other),
        None => CommitmentKeys::derive_without_htlc_keys(secp, point, owner, other),
    }
}

impl Channel {
    /// The channel's fixed terms; refused before the funding outpoint is known.
    pub(crate) fn terms(&self) -> Result<CommitmentTerms, ChannelError> {
        Ok(CommitmentTerms {
            channel_type: self.channel_type,
            funding_outpoint: self
                .funding_outpoint
                .ok_or_else(|| close(R::NoFundingOutpoint))?,
            funding_satoshis: self.funding_satoshis,
            is_funder: self.is_funder,
            local_pubkeys: self.local_pubkeys,
            remote_pubkeys: self.remote_pubkeys,
            local_params: self.local_params,
            remote_params: self.remote_params,
        })
    }

    /// Builds our commitment number `index` with content `spec` (unsigned).
    pub(crate) fn build_local_tx(
        &self,
        spec: &CommitmentSpec,
        index: u64,
    ) -> Result<CommitmentTx, ChannelError> {
        self.build_local_tx_with(spec, index, None)
    }

    /// [`Channel::build_local_tx`], from the keys derived ahead when given (those of this
    /// commitment: [`Ahead::take`] checked its number and point).
    fn build_local_tx_with(
        &self,
        spec: &CommitmentSpec,
        index: u64,
        ahead: Option<CommitmentKeys>,
    ) -> Result<CommitmentTx, ChannelError> {
        let point = self.local_point(index)?;
        let secret = || -> Result<_, ChannelError> {
            let secret = self.local_secret(index)?;
            bolt3_keys::secret_key_from_bytes(&secret, "per_commitment_secret").map_err(|error| {
                close(R::CommitmentKeys {
                    side: Side::Local,
                    index,
                    error,
                })
            })
        };
        let terms = self.terms()?;
        match ahead {
            Some(keys) => {
                #[cfg(debug_assertions)]
                {
                    let secret = secret()?;
                    let known = RevocationSecret::PerCommitment(&secret);
                    let full = keys.htlc_keys.is_some();
                    assert_eq!(
                        terms.keys_ahead(Side::Local, &point, known, full).ok(),
                        Some(keys),
                        "keys derived ahead for our commitment {index}"
                    );
                }
                terms.build_with_keys(Side::Local, spec, index, keys)
            }
            None => {
                let secret = secret()?;
                let known = Some(RevocationSecret::PerCommitment(&secret));
                terms.build_knowing(Side::Local, spec, index, &point, known)
            }
        }
    }

    /// Builds the peer's commitment number `index` with content `spec` (its point of view).
    pub(crate) fn build_remote_tx(
        &self,
        spec: &CommitmentSpec,
        index: u64,
        point: &PublicKey,
    ) -> Result<CommitmentTx, ChannelError> {
        self.build_remote_tx_with(spec, index, point, None)
    }

    /// [`Channel::build_remote_tx`], from the keys derived ahead when given (those of this
    /// commitment: [`Ahead::take`] checked its number and point).
    fn build_remote_tx_with(
        &self,
        spec: &CommitmentSpec,
        index: u64,
        point: &PublicKey,
        ahead: Option<CommitmentKeys>,
    ) -> Result<CommitmentTx, ChannelError> {
        let known = RevocationSecret::Basepoint(&self.keys.revocation_base_key);
        let terms = self.terms()?;
        match ahead {
            Some(keys) => {
                debug_assert_eq!(
                    terms
                        .keys_ahead(Side::Remote, point, known, keys.htlc_keys.is_some())
                        .ok(),
                    Some(keys),
                    "keys derived ahead for the peer's commitment {index}"
                );
                terms.build_with_keys(Side::Remote, spec, index, keys)
            }
            None => terms.build_knowing(Side::Remote, spec, index, point, Some(known)),
        }
    }

    /// Derives ahead what the channel's next steps will need: our
    /// next commitment's point and keys, the point after it (our next `revoke_and_ack`
    /// gives it), and the keys of the peer's next commitment once its point is known and we
    /// have not signed it yet. Changes no state. Returns whether it derived anything (false:
    /// all was there already, or the channel has no commitment to prepare).
    pub fn derive_ahead(&mut self) -> bool {
        if self.phase != ChannelPhase::Normal {
            return false;
        }
        let Ok(terms) = self.terms() else {
            return false;
        };
        let mut worked = false;
        let index = self.local_commit.index.saturating_add(1);
        for i in [index, index.saturating_add(1)] {
            if self.ahead.point(i).is_none() {
                let Ok(point) = self.local_point(i) else {
                    return worked;
                };
                self.ahead.remember_point(i, point);
                worked = true;
            }
        }
        if let Some(point) = self.ahead.point(index) {
            let secret = self
                .local_secret(index)
                .ok()
                .and_then(|s| bolt3_keys::secret_key_from_bytes(&s, "per_commitment_secret").ok());
            if let Some(secret) = secret {
                let known = RevocationSecret::PerCommitment(&secret);
                let slot = &mut self.ahead.local;
                worked |= Self::keys_into(slot, &terms, Side::Local, index, point, known);
            }
        }
        if let (None, Some(point)) = (&self.next_remote_commit, self.remote_next_point) {
            let index = self.remote_commit.index.saturating_add(1);
            let known = RevocationSecret::Basepoint(&self.keys.revocation_base_key);
            let slot = &mut self.ahead.remote;
            worked |= Self::keys_into(slot, &terms, Side::Remote, index, point, known);
        }
        worked
    }

    /// Puts `side`'s keys of commitment `index` at `point` into `slot`, unless it holds
    /// them; returns whether anything was derived. The two HTLC keys are left out: they
    /// are derived when a commitment with an untrimmed HTLC is built
    /// ([`CommitmentTerms::build_with_keys`]), since whether the next commitment holds one
    /// is not known yet, and deriving them for nothing cost more than deriving ahead saved.
    fn keys_into(
        slot: &mut Option<Box<KeysAhead>>,
        terms: &CommitmentTerms,
        side: Side,
        index: u64,
        point: PublicKey,
        known: RevocationSecret<'_>,
    ) -> bool {
        if Ahead::holds(slot, index, &point) {
            return false;
        }
        match terms.keys_ahead(side, &point, known, false) {
            Ok(keys) => {
                *slot = Some(Box::new(KeysAhead { index, point, keys }));
                true
            }
            Err(_) => false,
        }
    }

    /// Our latest local commitment transaction, built (unsigned), for inspection.
    pub fn local_commitment_tx(&self) -> Result<CommitmentTx, ChannelError> {
        self.build_local_tx(&self.local_commit.spec, self.local_commit.index)
    }

    /// Whether a `commitment_signed` would carry changes: our holding cell or proposals, or
    /// the peer's acked updates not yet in its commitment.
    pub fn has_changes_to_sign(&self) -> bool {
        !self.holding_cell.is_empty()
            || !self.local_changes.proposed.is_empty()
            || !self.remote_changes.acked.is_empty()
    }

    /// The signing step: if we may sign (open, connected, not awaiting a `revoke_and_ack`)
    /// and have changes, releases the holding cell (its updates go out first) and queues one
    /// `commitment_signed` for the peer's next commitment. Also sends our pending `shutdown`
    /// once all our updates are signed, and starts closing negotiation when the channel is
    /// clean. Returns whether a `commitment_signed` was queued.
    pub fn maybe_sign(&mut self) -> Result<bool, ChannelError> {
        if self.phase != ChannelPhase::Normal || self.connection != Connection::Connected {
            return Ok(false);
        }
        let mut signed = false;
        if self.next_remote_commit.is_none() && self.has_changes_to_sign() {
            let mut next = self.clone();
            next.sign_next_remote()?;
            *self = next;
            signed = true;
        }
        self.after_state_change()?;
        Ok(signed)
    }

    fn sign_next_remote(&mut self) -> Result<(), ChannelError> {
        let point = self
            .remote_next_point
            .ok_or_else(|| close(R::NoNextRemotePoint))?;
        let released = std::mem::take(&mut self.holding_cell);
        for u in &released {
            self.outbox.push(u.to_message());
        }
        self.local_changes.proposed.extend(released);
        let spec = reduce(
            &self.remote_commit.spec,
            &self.remote_changes.acked,
            &self.local_changes.proposed,
        )
        .map_err(|error| {
            close(R::NextCommitment {
                side: Side::Remote,
                error,
            })
        })?;
        let index = self.remote_commit.index.saturating_add(1);
        let ahead = Ahead::take(&mut self.ahead.remote, index, &point);
        let tx = self.build_remote_tx_with(&spec, index, &point, ahead)?;
        let secp = crate::secp::ctx();
        let signature = tx.sign(&secp, &self.keys.funding_key);
        let htlc_txs = tx.htlc_txs();
        // Our HTLC key for this commitment: only derived when there is an HTLC transaction
        // to sign.
        let htlc_signatures = if htlc_txs.is_empty() {
            Vec::new()
        } else {
            let htlc_key = bolt3_keys::derive_private_key_from(
                &point,
                &self.keys.htlc_base_key,
                &self.local_pubkeys.htlc_basepoint,
            )
            .map_err(|error| close(R::HtlcKey { error }))?;
            htlc_txs
                .iter()
                .map(|h| h.sign_remote(&secp, &htlc_key))
                .collect()
        };
        let msg = CommitmentSigned {
            channel_id: self.channel_id,
            signature,
            htlc_signatures,
            funding_txid: None,
        };
        self.outbox.push(Message::CommitmentSigned(msg.clone()));
        self.next_remote_commit = Some(NextRemoteCommit {
            commit: RemoteCommit {
                index,
                spec,
                txid: tx.txid(),
                per_commitment_point: point,
            },
            sig: msg,
            sent_after_local_commit_index: self.local_commit.index,
        });
        let proposed = std::mem::take(&mut self.local_changes.proposed);
        self.local_changes.signed.extend(proposed);
        let acked = std::mem::take(&mut self.remote_changes.acked);
        self.remote_changes.signed.extend(acked);
        Ok(())
    }

    /// The peer's `commitment_signed` for our next commitment: verifies the commitment
    /// signature and every HTLC signature (one per untrimmed HTLC, in output order), then
    /// queues our `revoke_and_ack`. On error the channel is unchanged.
    pub fn handle_commitment_signed(&mut self, msg: &CommitmentSigned) -> Result<(), ChannelError> {
        self.check_can_receive_update("commitment_signed")?;
        if msg.channel_id != self.channel_id {
            return Err(close(R::WrongChannelId {
                message: "commitment_signed",
            }));
        }
        if self.remote_changes.proposed.is_empty() && self.local_changes.acked.is_empty() {
            return Err(close(R::CommitmentSignedWithoutChanges));
        }
        let spec = reduce(
            &self.local_commit.spec,
            &self.local_changes.acked,
            &self.remote_changes.proposed,
        )
        .map_err(|error| {
            close(R::NextCommitment {
                side: Side::Local,
                error,
            })
        })?;
        let index = self.local_commit.index.saturating_add(1);
        let ahead = match self.ahead.point(index) {
            Some(point) => Ahead::take(&mut self.ahead.local, index, &point),
            None => None,
        };
        let tx = self.build_local_tx_with(&spec, index, ahead)?;
        let secp = crate::secp::ctx();
        tx.verify_remote(&secp, &msg.signature)
            .map_err(|_| close(R::BadCommitmentSignature { index }))?;
        let htlc_txs = tx.htlc_txs();
        if htlc_txs.len() != msg.htlc_signatures.len() {
            return Err(close(R::HtlcSignatureCount {
                index,
                received: msg.htlc_signatures.len(),
                expected: htlc_txs.len(),
            }));
        }
        for (htlc_tx, sig) in htlc_txs.iter().zip(&msg.htlc_signatures) {
            htlc_tx.verify_remote(&secp, sig).map_err(|_| {
                close(R::BadHtlcSignature {
                    index,
                    output: htlc_tx.commitment_output().output_index,
                })
            })?;
        }
        let next_point = self.local_point(index.saturating_add(1))?;
        let raa = RevokeAndAck {
            channel_id: self.channel_id,
            per_commitment_secret: self.local_secret(index.saturating_sub(1))?,
            next_per_commitment_point: next_point,
        };
        // The peer's next commitment_signed is for that point's commitment.
        self.ahead
            .remember_point(index.saturating_add(1), next_point);
        self.local_commit = LocalCommit {
            index,
            spec,
            txid: tx.txid(),
            remote_signature: Some(msg.signature),
            htlc_signatures: msg.htlc_signatures.clone(),
        };
        self.local_changes.acked.clear();
        let proposed = std::mem::take(&mut self.remote_changes.proposed);
        self.remote_changes.acked.extend(proposed);
        self.outbox.push(Message::RevokeAndAck(raa));
        Ok(())
    }

    /// The `revoke_and_ack` message revoking our commitment `index - 1` (the one before
    /// `index`), as sent when we received the peer's signature for `index`.
    pub(crate) fn revoke_and_ack_for(&self, index: u64) -> Result<RevokeAndAck, ChannelError> {
        Ok(RevokeAndAck {
            channel_id: self.channel_id,
            per_commitment_secret: self.local_secret(index.saturating_sub(1))?,
            next_per_commitment_point: self.local_point(index.saturating_add(1))?,
        })
    }

    /// The peer's `revoke_and_ack`: checks the secret against the point it gave for the
    /// commitment being revoked, stores it, and emits the events of the updates that are now
    /// irrevocably committed. On error the channel is unchanged.
    pub fn handle_revoke_and_ack(&mut self, msg: &RevokeAndAck) -> Result<(), ChannelError> {
        self.check_can_receive_update("revoke_and_ack")?;
        if msg.channel_id != self.channel_id {
            return Err(close(R::WrongChannelId {
                message: "revoke_and_ack",
            }));
        }
        let Some(next) = self.next_remote_commit.clone() else {
            return Err(close(R::NoCommitmentAwaitsRevocation));
        };
        let revoked = self.remote_commit.index;
        let secp = crate::secp::ctx();
        let point = bolt3_keys::per_commitment_point(&secp, &msg.per_commitment_secret)
            .map_err(|_| close(R::InvalidPerCommitmentSecret))?;
        if point != self.remote_commit.per_commitment_point {
            return Err(close(R::SecretMismatchesPoint { index: revoked }));
        }
        let mut secrets = self.remote_secrets.clone();
        secrets
            .insert(
                FIRST_INDEX.saturating_sub(revoked),
                msg.per_commitment_secret,
            )
            .map_err(|error| close(R::SecretRejected { error }))?;
        self.remote_secrets = secrets;
        self.remote_commit = next.commit;
        self.next_remote_commit = None;
        self.remote_next_point = Some(msg.next_per_commitment_point);
        let signed = std::mem::take(&mut self.local_changes.signed);
        self.local_changes.acked.extend(signed);
        for u in std::mem::take(&mut self.remote_changes.signed) {
            match u {
                Update::Add(add) => self.events.push(ChannelEvent::InboundHtlcCommitted {
                    id: add.id,
                    amount_msat: add.amount_msat,
                    payment_hash: add.payment_hash,
                    cltv_expiry: add.cltv_expiry,
                    onion: add.onion_routing_packet,
                    path_key: add.path_key,
                }),
                // A failure of an HTLC whose preimage the peer already gave us (then dropped
                // at a disconnection) is not reported: the payment succeeded for the node.
                Update::Fail(f) => {
                    if !self.fulfilled_notified.remove(&f.id) {
                        self.events.push(ChannelEvent::OutboundHtlcFailed {
                            id: f.id,
                            failure: HtlcFailure::Reason {
                                reason: f.reason,
                                attribution_data: f.attribution_data,
                            },
                        });
                    }
                }
                Update::FailMalformed(f) => {
                    if !self.fulfilled_notified.remove(&f.id) {
                        self.events.push(ChannelEvent::OutboundHtlcFailed {
                            id: f.id,
                            failure: HtlcFailure::Malformed {
                                sha256_of_onion: f.sha256_of_onion,
                                failure_code: f.failure_code,
                            },
                        });
                    }
                }
                Update::Fulfill(f) => {
                    self.fulfilled_notified.remove(&f.id);
                }
                Update::Fee(_) => {}
            }
        }
        Ok(())
    }
}
