//! [`ChannelMonitor`]: a channel's states as the chain needs them, and what it does with
//! the blocks it is given.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bitcoin::secp256k1::{ecdsa::Signature, PublicKey};
use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid};

use super::claim::{feerate_for, plan_claims, ClaimMemo, PlannedClaim};
use super::spend::{analyse, Analysis, FundingSpendKind, OutputKind};
use super::{ANTI_REORG_DELAY, CLTV_CLAIM_BUFFER, LATENCY_GRACE_PERIOD_BLOCKS};
use crate::channel::commit::CommitmentTerms;
use crate::channel::{Channel, ChannelError, CommitmentSpec, SpecHtlc};
use crate::keys::ChannelKeys;
use crate::secrets::{CounterpartySecrets, SecretError, FIRST_INDEX};
use crate::transactions::commitment_number_obscure_factor;
use crate::types::{ChannelId, PaymentHash, PaymentPreimage};

/// Our latest commitment, as the peer signed it: what we broadcast when we force-close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderCommitment {
    /// Its commitment number.
    pub index: u64,
    /// Its content (our point of view).
    pub spec: CommitmentSpec,
    /// Its transaction id.
    pub txid: Txid,
    /// The peer's signature of it.
    pub remote_signature: Signature,
    /// The peer's signatures of its HTLC transactions, in output order.
    pub htlc_signatures: Vec<Signature>,
}

/// A commitment of the peer that we signed (not revoked, or not yet known to be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterpartyCommitment {
    /// Its commitment number.
    pub index: u64,
    /// Its content (the peer's point of view).
    pub spec: CommitmentSpec,
    /// Its transaction id.
    pub txid: Txid,
    /// The peer's per-commitment point for it.
    pub point: PublicKey,
}

/// One change of the channel that the monitor must know before the message that depends on
/// it leaves: LDK's `ChannelMonitorUpdateStep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorStep {
    /// The peer signed a new commitment of ours (we are about to revoke the previous one).
    HolderCommitment(HolderCommitment),
    /// We signed a new commitment of the peer's.
    CounterpartyCommitment(CounterpartyCommitment),
    /// The peer revoked its commitment number `index` with `secret`.
    CommitmentSecret {
        /// The revoked commitment's number.
        index: u64,
        /// Its per-commitment secret.
        secret: [u8; 32],
    },
    /// A preimage we learned or were given (to claim on chain, and to pass upstream).
    Preimage(PaymentPreimage),
    /// We force-closed: our commitment went to the chain. No later holder commitment is
    /// accepted (it could not replace the one broadcast).
    ForceClosed,
}

/// A batch of steps with its sequence number (strictly one more than the previous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorUpdate {
    /// The update's number: the monitor's count of updates applied, after this one.
    pub update_id: u64,
    /// What changed.
    pub steps: Vec<MonitorStep>,
}

/// Why the monitor refused an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorError {
    /// The update's number does not follow the last one applied.
    UpdateOutOfOrder {
        /// The number expected.
        expected: u64,
        /// The number received.
        got: u64,
    },
    /// A holder commitment older than the one we hold (we never go back: the old one may
    /// be revoked).
    StaleHolderCommitment {
        /// The number we hold.
        held: u64,
        /// The number offered.
        offered: u64,
    },
    /// A holder commitment after we force-closed with another one.
    HolderAfterForceClose,
    /// A revocation secret out of order or not matching the earlier ones.
    Secret(SecretError),
    /// A counterparty commitment older than one we hold.
    StaleCounterpartyCommitment {
        /// The newest number we hold.
        held: u64,
        /// The number offered.
        offered: u64,
    },
    /// The channel has no funding outpoint or signed commitment yet: nothing to monitor.
    NotFunded,
    /// The channel's commitments could not be rebuilt.
    Channel(Box<ChannelError>),
}

impl fmt::Display for MonitorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorError::UpdateOutOfOrder { expected, got } => {
                write!(f, "monitor update {got} out of order (expected {expected})")
            }
            MonitorError::StaleHolderCommitment { held, offered } => write!(
                f,
                "holder commitment {offered} is older than the one held ({held})"
            ),
            MonitorError::HolderAfterForceClose => {
                f.write_str("a new holder commitment after our force-close")
            }
            MonitorError::Secret(e) => write!(f, "revocation secret: {e}"),
            MonitorError::StaleCounterpartyCommitment { held, offered } => write!(
                f,
                "counterparty commitment {offered} is older than the newest held ({held})"
            ),
            MonitorError::NotFunded => f.write_str("the channel is not funded yet"),
            MonitorError::Channel(e) => write!(f, "rebuilding a commitment: {e}"),
        }
    }
}

impl std::error::Error for MonitorError {}

/// What the monitor tells its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorEvent {
    /// A transaction spending the funding output confirmed: the channel is closed on chain
    /// (off-chain updates must stop; never broadcast our commitment after this).
    FundingSpent {
        /// The spending transaction.
        txid: Txid,
        /// What it is.
        kind: FundingSpendKind,
    },
    /// An HTLC we offered was fulfilled on chain (or its preimage otherwise learned after
    /// the close): fulfil it upstream at once. Emitted once.
    OutboundHtlcFulfilled {
        /// Our HTLC id.
        htlc_id: u64,
        /// The preimage.
        preimage: PaymentPreimage,
    },
    /// An HTLC we offered is irrevocably resolved on chain without a preimage (timed out,
    /// or absent from the commitment that confirmed): fail it upstream. Emitted once,
    /// [`ANTI_REORG_DELAY`] blocks deep.
    OutboundHtlcFailed {
        /// Our HTLC id.
        htlc_id: u64,
        /// Its payment hash.
        payment_hash: PaymentHash,
    },
    /// An HTLC offered to us was claimed by us on chain, irrevocably. Emitted once.
    InboundHtlcClaimed {
        /// The peer's HTLC id.
        htlc_id: u64,
        /// Its amount.
        amount_msat: u64,
        /// Its payment hash.
        payment_hash: PaymentHash,
    },
    /// An HTLC offered to us was taken back by the peer on chain (timed out), irrevocably.
    InboundHtlcLost {
        /// The peer's HTLC id.
        htlc_id: u64,
        /// Its amount.
        amount_msat: u64,
        /// Its payment hash.
        payment_hash: PaymentHash,
    },
    /// One of our claims confirmed irrevocably: `value_sat` now pays the destination script.
    ClaimConfirmed {
        /// The claim.
        txid: Txid,
        /// What it pays to the destination.
        value_sat: u64,
    },
    /// The peer broadcast a revoked commitment; justice transactions are out.
    RevokedCommitmentSeen {
        /// The revoked commitment.
        txid: Txid,
        /// Its number.
        index: u64,
    },
    /// The funding output was spent by a commitment newer than any we know: we lost data.
    /// Only what is ours without the peer's per-commitment point is claimed.
    FutureCommitmentSeen {
        /// The commitment.
        txid: Txid,
        /// Its number.
        index: u64,
    },
    /// Anchor channels: a transaction that pays no fee of its own (our commitment, or a
    /// zero-fee HTLC transaction) needs fee inputs from a wallet before it can confirm.
    /// `tx` is complete and valid except for fees: add inputs (and a change output for an
    /// HTLC transaction, whose peer signature commits only to its own input and output) or
    /// spend `anchor` with a child paying for both. Never broadcast it alone as if final.
    ///
    /// Emitted every block until `tx` (or a conflicting spend) confirms, with a feerate that
    /// follows the claims' urgency schedule toward `deadline` (1x, 1.5x, 2x, 4x the host's
    /// feerate): each one asks for a re-bump (same inputs, more fee: BIP 125), never paying
    /// more than `max_fee_sat` in all.
    BumpNeeded {
        /// The transaction needing fees.
        tx: Transaction,
        /// Our anchor output on the commitment, for CPFP (commitment only).
        anchor: Option<OutPoint>,
        /// The height by which it must confirm.
        deadline: u32,
        /// The feerate it should reach.
        feerate_per_kw: u32,
        /// The fee cap: the most the fee inputs may pay in fees, in all (the CPFP child's
        /// fee for a commitment, the completed transaction's fee for an HTLC transaction).
        /// It is the value at stake: for an HTLC transaction, the HTLC's value; for our
        /// commitment, our balance in it plus every HTLC in it we could claim (offered by
        /// us, or offered to us with the preimage known), trimmed ones included: an upper
        /// bound on what confirming it protects.
        max_fee_sat: u64,
    },
}

/// Why an HTLC forces the channel to chain ([`ChannelMonitor::force_close_deadline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineReason {
    /// An HTLC we offered is past its expiry plus the grace period.
    OfferedExpired {
        /// Our HTLC id.
        htlc_id: u64,
        /// Its expiry.
        cltv_expiry: u32,
    },
    /// We hold the preimage of an HTLC offered to us that expires soon.
    FulfilledNearExpiry {
        /// The peer's HTLC id.
        htlc_id: u64,
        /// Its expiry.
        cltv_expiry: u32,
    },
}

/// What the monitor asks of its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorOutput {
    /// Broadcast this transaction (again, if it was before: the chain dedupes).
    Broadcast(Transaction),
    /// Tell the node.
    Event(MonitorEvent),
}

/// One amount the channel's on-chain state owes us, in the spirit of LDK's
/// `get_claimable_balances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// The channel is open: what a close now would give us (our balance in our latest
    /// commitment).
    ClaimableOnChannelClose {
        /// The amount.
        amount_sat: u64,
    },
    /// Ours, waiting for a claim to confirm or a timelock to pass.
    ClaimableAwaitingConfirmations {
        /// The amount.
        amount_sat: u64,
        /// The height at which it is irrevocably ours (estimated).
        confirmation_height: u32,
    },
    /// An HTLC output we may claim or lose: ours with the preimage before `timeout_height`,
    /// the peer's after it (inbound), or ours after it unless the peer reveals a preimage
    /// (outbound, `ours_after_timeout`).
    ContentiousClaimable {
        /// The amount.
        amount_sat: u64,
        /// The HTLC's expiry.
        timeout_height: u32,
        /// Its payment hash.
        payment_hash: PaymentHash,
        /// Whether it is ours after the timeout (an HTLC we offered).
        ours_after_timeout: bool,
    },
    /// A revoked output of the peer's, which our justice transactions take.
    CounterpartyRevokedOutputClaimable {
        /// The amount.
        amount_sat: u64,
    },
}

/// The chain-facing state of one channel. See the [module documentation](super).
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelMonitor {
    pub(crate) channel_id: ChannelId,
    pub(crate) terms: CommitmentTerms,
    /// The channel's keys: derived again from the node's seed on restore when `key_index`
    /// is known (never stored then), as for the channel.
    pub(crate) keys: ChannelKeys,
    /// The index `keys` were derived with ([`crate::channel::derive_peer_channel_keys`]), as
    /// the channel's.
    pub(crate) key_index: Option<u64>,
    /// The peer's node id (the other input of the key derivation).
    pub(crate) counterparty_node_id: PublicKey,
    /// `commitment_number_obscure_factor` of the channel.
    pub(crate) obscure_factor: u64,
    pub(crate) update_id: u64,
    pub(crate) holder: HolderCommitment,
    /// The peer's commitments we signed and it has not revoked (the current one and the
    /// next one), by number.
    pub(crate) counterparty: BTreeMap<u64, CounterpartyCommitment>,
    /// The untrimmed HTLCs of each revoked commitment of the peer's that had some, by number
    /// (to rebuild the HTLC scripts of a revoked commitment).
    pub(crate) revoked_htlcs: BTreeMap<u64, Vec<SpecHtlc>>,
    pub(crate) secrets: CounterpartySecrets,
    pub(crate) preimages: BTreeMap<PaymentHash, PaymentPreimage>,
    pub(crate) force_closed: bool,
    /// Where claims pay.
    pub(crate) destination: ScriptBuf,
    /// Every confirmed transaction of interest: txid to (height, transaction).
    pub(crate) confirmed: BTreeMap<Txid, (u32, Transaction)>,
    pub(crate) best_height: u32,
    /// The feerate the host last supplied, for claims.
    pub(crate) feerate_per_kw: u32,
    /// Events already emitted (keys), so a replay never repeats one.
    pub(crate) emitted: BTreeSet<EmittedKey>,
    /// The claims last broadcast, so that rebuilds replace them by BIP 125 (a cache, not
    /// persisted: see the `claim` module).
    pub(crate) claim_memo: ClaimMemo,
}

impl fmt::Debug for ChannelMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelMonitor")
            .field("channel_id", &self.channel_id)
            .field("update_id", &self.update_id)
            .field("holder", &self.holder.index)
            .field(
                "counterparty",
                &self.counterparty.keys().collect::<Vec<_>>(),
            )
            .field("confirmed", &self.confirmed.keys().collect::<Vec<_>>())
            .field("best_height", &self.best_height)
            .finish_non_exhaustive()
    }
}

/// What an emitted event is remembered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum EmittedKey {
    FundingSpent(Txid),
    OutboundResolved(u64),
    InboundResolved(u64),
    ClaimConfirmed(Txid),
    Revoked(Txid),
    Future(Txid),
}

impl ChannelMonitor {
    /// A monitor for `channel` with the peer `counterparty_node_id` (funded: the peer signed
    /// our first commitment), paying claims to `destination`, at the chain's `best_height`.
    pub fn from_channel(
        channel: &Channel,
        counterparty_node_id: PublicKey,
        destination: ScriptBuf,
        best_height: u32,
        feerate_per_kw: u32,
    ) -> Result<ChannelMonitor, MonitorError> {
        let terms = channel.terms().map_err(|_| MonitorError::NotFunded)?;
        let holder = holder_of(channel).ok_or(MonitorError::NotFunded)?;
        let (opener, accepter) = if terms.is_funder {
            (&terms.local_pubkeys, &terms.remote_pubkeys)
        } else {
            (&terms.remote_pubkeys, &terms.local_pubkeys)
        };
        let obscure_factor = commitment_number_obscure_factor(
            &opener.payment_basepoint,
            &accepter.payment_basepoint,
        );
        let mut monitor = ChannelMonitor {
            channel_id: channel.channel_id(),
            keys: channel.keys.clone(),
            key_index: channel.key_index,
            counterparty_node_id,
            terms,
            obscure_factor,
            update_id: 0,
            holder,
            counterparty: BTreeMap::new(),
            revoked_htlcs: BTreeMap::new(),
            secrets: CounterpartySecrets::new(),
            preimages: BTreeMap::new(),
            force_closed: false,
            destination,
            confirmed: BTreeMap::new(),
            best_height,
            feerate_per_kw,
            emitted: BTreeSet::new(),
            claim_memo: ClaimMemo::default(),
        };
        if let Some(update) = monitor.update_for(channel) {
            monitor.apply(&update)?;
        }
        Ok(monitor)
    }

    /// The channel this monitor watches.
    pub fn channel_id(&self) -> ChannelId {
        self.channel_id
    }

    /// The peer's node id.
    pub fn counterparty_node_id(&self) -> PublicKey {
        self.counterparty_node_id
    }

    /// The funding outpoint it watches.
    pub fn funding_outpoint(&self) -> OutPoint {
        self.terms.funding_outpoint
    }

    /// The number of the last update applied.
    pub fn update_id(&self) -> u64 {
        self.update_id
    }

    /// The best height seen.
    pub fn best_height(&self) -> u32 {
        self.best_height
    }

    /// Whether we force-closed.
    pub fn is_force_closed(&self) -> bool {
        self.force_closed
    }

    /// What the channel changed since this monitor last heard of it, as the next update
    /// (`None` if nothing). Apply it with [`ChannelMonitor::apply`] (and persist it) before
    /// the channel's messages leave.
    pub fn update_for(&self, channel: &Channel) -> Option<MonitorUpdate> {
        let mut steps = Vec::new();
        // Cheap comparisons first (this runs after every channel call): nothing is cloned
        // unless it is new.
        if channel.local_commit.index > self.holder.index && !self.force_closed {
            if let Some(holder) = holder_of(channel) {
                steps.push(MonitorStep::HolderCommitment(holder));
            }
        }
        let newest = self.counterparty.keys().next_back().copied();
        let revoked_up_to = self.secrets.last_index().map(|last| FIRST_INDEX - last);
        let remote = &channel.remote_commit;
        let next = channel.next_remote_commit.as_ref().map(|n| &n.commit);
        for c in std::iter::once(remote).chain(next) {
            let is_new = newest.is_none_or(|n| c.index > n);
            let revoked = revoked_up_to.is_some_and(|r| r >= c.index);
            if is_new && !revoked {
                steps.push(MonitorStep::CounterpartyCommitment(
                    CounterpartyCommitment {
                        index: c.index,
                        spec: c.spec.clone(),
                        txid: c.txid,
                        point: c.per_commitment_point,
                    },
                ));
            }
        }
        // Secrets the channel holds that we do not: the channel stores them compactly, so
        // walk forward from our next index to its last.
        if let Some(last) = channel.remote_secrets.last_index() {
            let mut next = self.secrets.next_index();
            while let Some(i) = next.filter(|i| *i >= last) {
                if let Some(secret) = channel.remote_secrets.get(i) {
                    steps.push(MonitorStep::CommitmentSecret {
                        index: FIRST_INDEX - i,
                        secret,
                    });
                }
                next = i.checked_sub(1);
            }
        }
        for p in channel_preimages(channel) {
            let hash = p.payment_hash();
            // Only for an HTLC still in a commitment that can confirm unrevoked (see
            // `prune_preimages`).
            let live = || {
                let next = channel.next_remote_commit.as_ref().map(|n| &n.commit.spec);
                std::iter::once(&channel.local_commit.spec)
                    .chain(std::iter::once(&channel.remote_commit.spec))
                    .chain(next)
                    .any(|spec| spec.htlcs.values().any(|h| h.payment_hash == hash))
            };
            if !self.preimages.contains_key(&hash) && live() {
                steps.push(MonitorStep::Preimage(p));
            }
        }
        (!steps.is_empty()).then(|| MonitorUpdate {
            update_id: self.update_id + 1,
            steps,
        })
    }

    /// Applies an update (all of it or, on error, none of it).
    pub fn apply(&mut self, update: &MonitorUpdate) -> Result<(), MonitorError> {
        if update.update_id != self.update_id + 1 {
            return Err(MonitorError::UpdateOutOfOrder {
                expected: self.update_id + 1,
                got: update.update_id,
            });
        }
        // All or nothing without copying the monitor (it grows with the channel's states):
        // check every step against a small copy of what the checks read, then apply.
        self.check_steps(&update.steps)?;
        for step in &update.steps {
            self.apply_step(step.clone())?;
        }
        self.update_id = update.update_id;
        Ok(())
    }

    /// As [`ChannelMonitor::apply`], taking the update (its commitments move into the
    /// monitor rather than being copied).
    pub fn apply_owned(&mut self, update: MonitorUpdate) -> Result<(), MonitorError> {
        if update.update_id != self.update_id + 1 {
            return Err(MonitorError::UpdateOutOfOrder {
                expected: self.update_id + 1,
                got: update.update_id,
            });
        }
        self.check_steps(&update.steps)?;
        for step in update.steps {
            self.apply_step(step)?;
        }
        self.update_id = update.update_id;
        Ok(())
    }

    /// Whether every step would apply, in order: the checks of [`Self::apply_step`] on a
    /// copy of the few fields they read.
    fn check_steps(&self, steps: &[MonitorStep]) -> Result<(), MonitorError> {
        let mut force_closed = self.force_closed;
        let mut holder = self.holder.index;
        let mut newest = self.counterparty.keys().next_back().copied();
        let mut secrets = self.secrets.clone();
        for step in steps {
            match step {
                MonitorStep::HolderCommitment(h) => {
                    if force_closed {
                        return Err(MonitorError::HolderAfterForceClose);
                    }
                    if h.index <= holder {
                        return Err(MonitorError::StaleHolderCommitment {
                            held: holder,
                            offered: h.index,
                        });
                    }
                    holder = h.index;
                }
                MonitorStep::CounterpartyCommitment(c) => {
                    if let Some(held) = newest.filter(|held| c.index <= *held) {
                        return Err(MonitorError::StaleCounterpartyCommitment {
                            held,
                            offered: c.index,
                        });
                    }
                    newest = Some(c.index);
                }
                MonitorStep::CommitmentSecret { index, secret } => {
                    secrets
                        .insert(FIRST_INDEX - index, *secret)
                        .map_err(MonitorError::Secret)?;
                }
                MonitorStep::Preimage(_) => {}
                MonitorStep::ForceClosed => force_closed = true,
            }
        }
        Ok(())
    }

    fn apply_step(&mut self, step: MonitorStep) -> Result<(), MonitorError> {
        match step {
            MonitorStep::HolderCommitment(h) => {
                if self.force_closed {
                    return Err(MonitorError::HolderAfterForceClose);
                }
                if h.index <= self.holder.index {
                    return Err(MonitorError::StaleHolderCommitment {
                        held: self.holder.index,
                        offered: h.index,
                    });
                }
                // The channel revokes the previous one in the same call (its
                // `revoke_and_ack` leaves with this update): it is never broadcast again.
                self.holder = h;
            }
            MonitorStep::CounterpartyCommitment(c) => {
                if let Some(&held) = self.counterparty.keys().next_back() {
                    if c.index <= held {
                        return Err(MonitorError::StaleCounterpartyCommitment {
                            held,
                            offered: c.index,
                        });
                    }
                }
                self.counterparty.insert(c.index, c);
            }
            MonitorStep::CommitmentSecret { index, secret } => {
                self.secrets
                    .insert(FIRST_INDEX - index, secret)
                    .map_err(MonitorError::Secret)?;
                // Everything up to `index` is revoked: keep only its HTLCs.
                let revoked: Vec<u64> =
                    self.counterparty.range(..=index).map(|(k, _)| *k).collect();
                for k in revoked {
                    if let Some(c) = self.counterparty.remove(&k) {
                        let untrimmed: Vec<SpecHtlc> = c
                            .spec
                            .htlcs
                            .values()
                            .filter(|h| {
                                !c.spec.is_trimmed(
                                    h,
                                    self.terms.remote_params.dust_limit_satoshis,
                                    self.terms.channel_type,
                                )
                            })
                            .copied()
                            .collect();
                        if !untrimmed.is_empty() {
                            self.revoked_htlcs.insert(k, untrimmed);
                        }
                    }
                }
                self.prune_preimages();
            }
            MonitorStep::Preimage(p) => {
                self.preimages.insert(p.payment_hash(), p);
            }
            MonitorStep::ForceClosed => self.force_closed = true,
        }
        Ok(())
    }

    /// Forgets preimages of HTLCs in no commitment that could still confirm unrevoked (ours,
    /// the peer's current and next): a revoked commitment is taken whole by the revocation
    /// key, so they can no longer be needed, and keeping them would grow the monitor with
    /// every payment. Not after the funding output was spent (they may be claiming).
    fn prune_preimages(&mut self) {
        if self.preimages.is_empty() || self.funding_spend().is_some() || self.force_closed {
            return;
        }
        let live: BTreeSet<PaymentHash> = self
            .holder
            .spec
            .htlcs
            .values()
            .chain(
                self.counterparty
                    .values()
                    .flat_map(|c| c.spec.htlcs.values()),
            )
            .map(|h| h.payment_hash)
            .collect();
        self.preimages.retain(|hash, _| live.contains(hash));
    }

    /// Our latest commitment, fully signed, for broadcast; marks the monitor force-closed.
    /// `None` once a spend of the funding output has confirmed (it could never confirm) or
    /// if it cannot be built (then there is nothing we may broadcast: never an older one).
    pub fn broadcast_holder_commitment(&mut self) -> Option<Transaction> {
        if self.funding_spend().is_some() {
            return None;
        }
        let tx = self.signed_holder_commitment()?;
        self.force_closed = true;
        Some(tx)
    }

    pub(crate) fn signed_holder_commitment(&self) -> Option<Transaction> {
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
        let ours = built.sign(&secp, &self.keys.funding_key);
        Some(built.finalize(&ours, &self.holder.remote_signature))
    }

    pub(crate) fn holder_point(&self, index: u64) -> Option<PublicKey> {
        let secp = crate::secp::ctx();
        self.keys
            .per_commitment_point(&secp, FIRST_INDEX.checked_sub(index)?)
            .ok()
    }

    /// The confirmed spend of the funding output, if any: (txid, height).
    pub fn funding_spend(&self) -> Option<(Txid, u32)> {
        let funding = self.terms.funding_outpoint;
        self.confirmed.iter().find_map(|(txid, (height, tx))| {
            tx.input
                .iter()
                .any(|i| i.previous_output == funding)
                .then_some((*txid, *height))
        })
    }

    /// Whether `tx` is of interest: it spends the funding output or an output of a
    /// transaction of interest already confirmed.
    pub fn is_relevant(&self, tx: &Transaction) -> bool {
        tx.input.iter().any(|i| {
            i.previous_output == self.terms.funding_outpoint
                || self.confirmed.contains_key(&i.previous_output.txid)
        })
    }

    /// A block connected at `height` with `txdata` (its transactions of interest or all of
    /// them: the others are ignored); the best height becomes `height`. Returns what to
    /// broadcast and tell.
    pub fn block_connected(&mut self, height: u32, txdata: &[&Transaction]) -> Vec<MonitorOutput> {
        // Several rounds: a claim and the spend it claims may share a block.
        let mut added = true;
        while added {
            added = false;
            for tx in txdata {
                let txid = tx.compute_txid();
                if !self.confirmed.contains_key(&txid) && self.is_relevant(tx) {
                    self.confirmed.insert(txid, (height, (*tx).clone()));
                    added = true;
                }
            }
        }
        self.best_height = self.best_height.max(height);
        self.outputs()
    }

    /// The blocks from `height` up were disconnected (a reorg): everything they confirmed
    /// is forgotten and the best height becomes `height - 1`. Claims are rebuilt at the
    /// next block.
    pub fn blocks_disconnected(&mut self, height: u32) {
        self.confirmed.retain(|_, (h, _)| *h < height);
        self.best_height = height.saturating_sub(1);
    }

    /// Forgets every block above `height` (as [`ChannelMonitor::blocks_disconnected`] from
    /// `height + 1`) if it knows of any: a best height or a confirmation above it. Returns
    /// whether it did (the monitor changed).
    pub fn rewind_to(&mut self, height: u32) -> bool {
        let above = self.best_height > height || self.confirmed.values().any(|(h, _)| *h > height);
        if above {
            self.blocks_disconnected(height.saturating_add(1));
        }
        above
    }

    /// A new feerate for claims (sat per 1000 weight).
    pub fn set_feerate(&mut self, feerate_per_kw: u32) {
        self.feerate_per_kw = feerate_per_kw.max(253);
    }

    /// The analysis of what confirmed, if the funding output was spent.
    pub(crate) fn analysis(&self) -> Option<Analysis> {
        analyse(self)
    }

    /// The claims we would broadcast now.
    pub fn planned_claims(&self) -> Vec<PlannedClaim> {
        match self.analysis() {
            Some(a) => plan_claims(self, &a),
            None => Vec::new(),
        }
    }

    /// What to broadcast and tell at the current height: events not yet emitted, and every
    /// claim that is due (again: rebroadcasting is how claims get bumped).
    pub fn outputs(&mut self) -> Vec<MonitorOutput> {
        let Some(analysis) = self.analysis() else {
            return self.unconfirmed_force_close();
        };
        let mut out = Vec::new();
        let deep = |h: u32| self.best_height + 1 >= h + ANTI_REORG_DELAY;
        let mut emit = Vec::new();
        emit.push((
            EmittedKey::FundingSpent(analysis.spend_txid),
            MonitorEvent::FundingSpent {
                txid: analysis.spend_txid,
                kind: analysis.kind.clone(),
            },
        ));
        match &analysis.kind {
            FundingSpendKind::Revoked { index } => emit.push((
                EmittedKey::Revoked(analysis.spend_txid),
                MonitorEvent::RevokedCommitmentSeen {
                    txid: analysis.spend_txid,
                    index: *index,
                },
            )),
            FundingSpendKind::Future { index } => emit.push((
                EmittedKey::Future(analysis.spend_txid),
                MonitorEvent::FutureCommitmentSeen {
                    txid: analysis.spend_txid,
                    index: *index,
                },
            )),
            _ => {}
        }
        // Preimages: at once, whatever the depth.
        for (htlc_id, preimage) in &analysis.outbound_fulfilled {
            emit.push((
                EmittedKey::OutboundResolved(*htlc_id),
                MonitorEvent::OutboundHtlcFulfilled {
                    htlc_id: *htlc_id,
                    preimage: *preimage,
                },
            ));
        }
        for (htlc_id, hash, height) in &analysis.outbound_failed {
            if deep(*height) {
                emit.push((
                    EmittedKey::OutboundResolved(*htlc_id),
                    MonitorEvent::OutboundHtlcFailed {
                        htlc_id: *htlc_id,
                        payment_hash: *hash,
                    },
                ));
            }
        }
        for (htlc, claimed, height) in &analysis.inbound_resolved {
            if deep(*height) {
                let event = if *claimed {
                    MonitorEvent::InboundHtlcClaimed {
                        htlc_id: htlc.id,
                        amount_msat: htlc.amount_msat,
                        payment_hash: htlc.payment_hash,
                    }
                } else {
                    MonitorEvent::InboundHtlcLost {
                        htlc_id: htlc.id,
                        amount_msat: htlc.amount_msat,
                        payment_hash: htlc.payment_hash,
                    }
                };
                emit.push((EmittedKey::InboundResolved(htlc.id), event));
            }
        }
        for (txid, value, height) in &analysis.our_claims_confirmed {
            if deep(*height) {
                emit.push((
                    EmittedKey::ClaimConfirmed(*txid),
                    MonitorEvent::ClaimConfirmed {
                        txid: *txid,
                        value_sat: *value,
                    },
                ));
            }
        }
        for (key, event) in emit {
            if self.emitted.insert(key) {
                out.push(MonitorOutput::Event(event));
            }
        }
        let claims = plan_claims(self, &analysis);
        let unspent = analysis
            .outputs
            .iter()
            .filter(|o| o.spent_by.is_none())
            .map(|o| (o.output.outpoint, o.output.value_sat))
            .collect();
        self.claim_memo.record(&claims, &unspent);
        for claim in claims {
            match claim {
                PlannedClaim::Broadcast { tx, .. } => out.push(MonitorOutput::Broadcast(tx)),
                PlannedClaim::NeedsFees {
                    tx,
                    anchor,
                    deadline,
                    feerate_per_kw,
                    max_fee_sat,
                } => out.push(MonitorOutput::Event(MonitorEvent::BumpNeeded {
                    tx,
                    anchor,
                    deadline,
                    feerate_per_kw,
                    max_fee_sat,
                })),
            }
        }
        out
    }

    /// After our force-close, until a spend of the funding output confirms: our commitment
    /// again (a rebroadcast), or with anchors the request to bump it through our anchor, at
    /// the urgency schedule's feerate for its deadline, capped by the value at stake
    /// ([`MonitorEvent::BumpNeeded`]'s `max_fee_sat`).
    fn unconfirmed_force_close(&self) -> Vec<MonitorOutput> {
        if !self.force_closed {
            return Vec::new();
        }
        let Some(tx) = self.signed_holder_commitment() else {
            return Vec::new();
        };
        if !self.terms.channel_type.has_anchors() {
            return vec![MonitorOutput::Broadcast(tx)];
        }
        let txid = tx.compute_txid();
        let anchor_spk =
            crate::transactions::scripts::anchor_script(&self.terms.local_pubkeys.funding_pubkey)
                .to_p2wsh();
        let anchor = tx
            .output
            .iter()
            .position(|o| o.script_pubkey == anchor_spk)
            .map(|vout| OutPoint {
                txid,
                vout: vout as u32,
            });
        // The earliest HTLC deadline, or a day's worth of blocks.
        let deadline = self
            .holder
            .spec
            .htlcs
            .values()
            .map(|h| h.cltv_expiry)
            .min()
            .unwrap_or(self.best_height + 144);
        vec![MonitorOutput::Event(MonitorEvent::BumpNeeded {
            tx,
            anchor,
            deadline,
            feerate_per_kw: feerate_for(self, deadline),
            max_fee_sat: self.commitment_at_stake_sat(),
        })]
    }

    /// What our holder commitment's confirmation protects: our balance in it plus every
    /// HTLC in it we could claim (offered by us, or offered to us with its preimage known),
    /// trimmed ones included. The cap of its CPFP's fee.
    fn commitment_at_stake_sat(&self) -> u64 {
        let spec = &self.holder.spec;
        spec.htlcs
            .values()
            .filter(|h| h.offered || self.preimages.contains_key(&h.payment_hash))
            .fold(spec.to_local_msat / 1000, |t, h| {
                t.saturating_add(h.amount_msat / 1000)
            })
    }

    /// Whether the channel must go to chain now to protect an HTLC (BOLT 2's deadlines),
    /// and why: an HTLC we offered is [`LATENCY_GRACE_PERIOD_BLOCKS`] past its expiry
    /// (`OfferedExpired`), or we hold the preimage of an HTLC offered to us within
    /// [`CLTV_CLAIM_BUFFER`] blocks of its expiry (`FulfilledNearExpiry`). `None` once a
    /// spend of the funding output confirmed or we already force-closed.
    pub fn force_close_deadline(&self, height: u32) -> Option<DeadlineReason> {
        if self.force_closed || self.funding_spend().is_some() {
            return None;
        }
        let ours = self
            .holder
            .spec
            .htlcs
            .values()
            .map(|h| (h.offered, h))
            .chain(
                self.counterparty
                    .values()
                    .flat_map(|c| c.spec.htlcs.values().map(|h| (!h.offered, h))),
            );
        for (offered_by_us, h) in ours {
            if offered_by_us && h.cltv_expiry + LATENCY_GRACE_PERIOD_BLOCKS <= height {
                return Some(DeadlineReason::OfferedExpired {
                    htlc_id: h.id,
                    cltv_expiry: h.cltv_expiry,
                });
            }
            if !offered_by_us
                && self.preimages.contains_key(&h.payment_hash)
                && h.cltv_expiry <= height + CLTV_CLAIM_BUFFER
            {
                return Some(DeadlineReason::FulfilledNearExpiry {
                    htlc_id: h.id,
                    cltv_expiry: h.cltv_expiry,
                });
            }
        }
        None
    }

    /// Whether every output of the close is irrevocably resolved (the monitor can be
    /// archived [`super::ARCHIVAL_DELAY_BLOCKS`] later).
    pub fn is_fully_resolved(&self) -> bool {
        match self.analysis() {
            Some(a) => a.unresolved_outputs(self) == 0,
            None => false,
        }
    }

    /// What the channel's on-chain state owes us.
    pub fn balances(&self) -> Vec<Balance> {
        let Some(a) = self.analysis() else {
            return vec![Balance::ClaimableOnChannelClose {
                amount_sat: self.holder.spec.to_local_msat / 1000,
            }];
        };
        let mut out = Vec::new();
        for o in &a.outputs {
            if o.spent_by
                .is_some_and(|(_, h)| self.best_height + 1 >= h + ANTI_REORG_DELAY)
            {
                continue;
            }
            let value = o.output.value_sat;
            match &o.output.kind {
                OutputKind::HolderToLocal { csv, .. }
                | OutputKind::HolderSecondStage { csv, .. } => {
                    out.push(Balance::ClaimableAwaitingConfirmations {
                        amount_sat: value,
                        confirmation_height: o.confirmed_at + u32::from(*csv),
                    })
                }
                OutputKind::CounterpartyToRemote { .. } => {
                    out.push(Balance::ClaimableAwaitingConfirmations {
                        amount_sat: value,
                        confirmation_height: o.confirmed_at + ANTI_REORG_DELAY,
                    })
                }
                OutputKind::HolderHtlc { htlc, .. } | OutputKind::CounterpartyHtlc { htlc, .. } => {
                    let ours_after_timeout = o.output.kind.htlc_offered_by_us();
                    out.push(Balance::ContentiousClaimable {
                        amount_sat: value,
                        timeout_height: htlc.cltv_expiry,
                        payment_hash: htlc.payment_hash,
                        ours_after_timeout,
                    })
                }
                OutputKind::RevokedToLocal
                | OutputKind::RevokedHtlc { .. }
                | OutputKind::RevokedSecondStage => {
                    out.push(Balance::CounterpartyRevokedOutputClaimable { amount_sat: value })
                }
                OutputKind::Anchor => {}
            }
        }
        out
    }
}

/// Our latest commitment as the channel holds it, if the peer signed it.
fn holder_of(channel: &Channel) -> Option<HolderCommitment> {
    let lc = &channel.local_commit;
    Some(HolderCommitment {
        index: lc.index,
        spec: lc.spec.clone(),
        txid: lc.txid,
        remote_signature: lc.remote_signature?,
        htlc_signatures: lc.htlc_signatures.clone(),
    })
}

/// Every preimage the channel knows: of HTLCs it fulfilled or the peer fulfilled, still in
/// its change lists.
fn channel_preimages(channel: &Channel) -> impl Iterator<Item = PaymentPreimage> + '_ {
    use crate::channel::Update;
    channel
        .holding_cell
        .iter()
        .chain(&channel.local_changes.proposed)
        .chain(&channel.local_changes.signed)
        .chain(&channel.local_changes.acked)
        .chain(&channel.remote_changes.proposed)
        .chain(&channel.remote_changes.acked)
        .chain(&channel.remote_changes.signed)
        .filter_map(|u| match u {
            Update::Fulfill(f) => Some(f.payment_preimage),
            _ => None,
        })
}

/// The emitted-event keys in their stored form (the rest of the monitor's stored form is in
/// `persist::monitor`, which cannot name the private `EmittedKey`).
impl ChannelMonitor {
    /// The keys of the events already emitted, stored form, in order.
    pub(crate) fn emitted_records(&self) -> Vec<crate::persist::EmittedEventRecord> {
        use crate::persist::EmittedEventRecord as R;
        self.emitted
            .iter()
            .map(|k| match *k {
                EmittedKey::FundingSpent(t) => R::FundingSpent(t),
                EmittedKey::OutboundResolved(id) => R::OutboundResolved(id),
                EmittedKey::InboundResolved(id) => R::InboundResolved(id),
                EmittedKey::ClaimConfirmed(t) => R::ClaimConfirmed(t),
                EmittedKey::Revoked(t) => R::Revoked(t),
                EmittedKey::Future(t) => R::Future(t),
            })
            .collect()
    }

    /// Replaces the keys of the events already emitted with `records`.
    pub(crate) fn set_emitted_records(&mut self, records: &[crate::persist::EmittedEventRecord]) {
        use crate::persist::EmittedEventRecord as R;
        self.emitted = records
            .iter()
            .map(|r| match *r {
                R::FundingSpent(t) => EmittedKey::FundingSpent(t),
                R::OutboundResolved(id) => EmittedKey::OutboundResolved(id),
                R::InboundResolved(id) => EmittedKey::InboundResolved(id),
                R::ClaimConfirmed(t) => EmittedKey::ClaimConfirmed(t),
                R::Revoked(t) => EmittedKey::Revoked(t),
                R::Future(t) => EmittedKey::Future(t),
            })
            .collect();
    }
}
