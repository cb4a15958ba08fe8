//! The BOLT 2 state machine of one single-funded channel.
//!
//! [`Channel`] is sans-IO and deterministic: messages arrive as typed [`crate::wire`] values
//! through `handle_*` methods, local requests through methods like [`Channel::send_htlc`],
//! time as block heights. Nothing is sent directly: messages to send queue up in the channel
//! and come out of [`Channel::drain_messages`], and events for the node (HTLCs to forward or
//! claim, payments fulfilled or failed, a closing transaction to broadcast) out of
//! [`Channel::drain_events`]. All state is plain data.
//!
//! # Bookkeeping
//! Eclair's change-set model: the channel stores the spec of our latest commitment
//! (`local_commit`), of the peer's latest revoked-or-current one (`remote_commit`), of the one
//! we signed but the peer has not yet revoked its predecessor (`next_remote_commit`), and six
//! lists of update messages: ours `proposed -> signed -> acked`, theirs
//! `proposed -> acked -> signed`. Every commitment's content is computed by the pure
//! [`spec::reduce`]. Our own updates wait in a holding cell (LDK's policy) until we can sign:
//! they go on the wire only together with the `commitment_signed` that covers them.
//!
//! # Call order
//! 1. Opening: funder [`Channel::new_outbound`] (send the `open_channel`), then
//!    [`Channel::handle_accept_channel`], build a funding transaction paying
//!    [`Channel::funding_script_pubkey`], then [`Channel::funding_transaction_built`] (send the
//!    `funding_created`), then [`Channel::handle_funding_signed`] and only then broadcast the
//!    funding transaction. Fundee: [`Channel::new_inbound`] (send the `accept_channel`), then
//!    [`Channel::handle_funding_created`] (send the `funding_signed`).
//! 2. Both: [`Channel::funding_confirmed`] when the funding transaction confirms,
//!    [`Channel::best_block_updated`] on every new block, [`Channel::handle_channel_ready`].
//!    Before `funding_signed` is exchanged ([`Channel::is_funded`]) a disconnection
//!    abandons the channel: forget it.
//! 3. Normal operation: local requests ([`Channel::send_htlc`], [`Channel::fulfill_htlc`],
//!    [`Channel::fail_htlc`], [`Channel::fail_malformed_htlc`], [`Channel::update_fee`],
//!    [`Channel::shutdown`]) and peer messages ([`Channel::handle_message`], or the
//!    individual `handle_*`) change the state; then call [`Channel::maybe_sign`] (it
//!    releases the holding cell and signs when allowed; it also sends our `shutdown` and
//!    starts `closing_signed` when their time comes). On each block also call
//!    [`Channel::check_htlc_deadlines`].
//! 4. After every call: **persist the channel**, then send [`Channel::drain_messages`] in
//!    order and act on [`Channel::drain_events`]. Messages are only handed out after the call
//!    that produced them returned, so persisting before draining is the persistence barrier
//!    (no `commitment_signed` or `revoke_and_ack` leaves before its state is stored).
//! 5. On disconnection call [`Channel::peer_disconnected`]; on reconnection send
//!    [`Channel::get_reestablish`] and feed the peer's into
//!    [`Channel::handle_channel_reestablish`].
//! 6. On a [`ChannelError`] send its [`ChannelError::to_message`]; for
//!    [`ChannelError::Close`] call [`Channel::force_close`] and broadcast its transaction.

mod ahead;
mod close;
pub(crate) mod commit;
pub mod config;
pub mod error;
pub mod keys;
mod open;
pub(crate) mod record;
mod reestablish;
pub mod spec;
mod update;

use std::collections::BTreeSet;

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::{ecdsa::Signature, PublicKey};
use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid};

pub use config::ChannelConfig;
pub use error::{ChannelError, ChannelErrorReason};
pub use keys::{derive_channel_keys, derive_peer_channel_keys};
pub use open::{
    is_valid_shutdown_script, OutboundParams, MAX_ACCEPTED_HTLCS, MIN_DUST_LIMIT_SATOSHIS,
};
pub use spec::{reduce, CommitmentSpec, ReduceError, SpecHtlc, Update};
pub use update::{FEE_SPIKE_BUFFER_MULTIPLE, MAX_CLTV_EXPIRY};

use crate::keys::{ChannelKeys, ChannelPublicKeys};
use crate::secrets::{CounterpartySecrets, FIRST_INDEX};
use crate::transactions::ChannelType;
use crate::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};
use crate::wire::{AttributionData, CommitmentSigned, Features, Message, ONION_PACKET_LEN};
use ahead::Ahead;
use error::{close, ChannelErrorReason as R};

/// The parameters one side announced in `open_channel` / `accept_channel`: the constraints
/// it imposes on the *other* side, and its own dust limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelParams {
    /// Its `dust_limit_satoshis` (applies to its own commitment).
    pub dust_limit_satoshis: u64,
    /// Its `max_htlc_value_in_flight_msat` (limits the HTLCs the other side offers).
    pub max_htlc_value_in_flight_msat: u64,
    /// Its `channel_reserve_satoshis` (the other side must keep this much).
    pub channel_reserve_satoshis: u64,
    /// Its `htlc_minimum_msat` (smallest HTLC it accepts).
    pub htlc_minimum_msat: u64,
    /// Its `to_self_delay` (the CSV delay on the other side's outputs).
    pub to_self_delay: u16,
    /// Its `max_accepted_htlcs` (how many HTLCs the other side may offer).
    pub max_accepted_htlcs: u16,
}

/// Where the channel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelPhase {
    /// Funder: `open_channel` sent, waiting for `accept_channel`.
    AwaitingAcceptChannel,
    /// Funder: accepted; waiting for the caller to build the funding transaction.
    AwaitingFundingTransaction,
    /// Fundee: `accept_channel` sent, waiting for `funding_created`.
    AwaitingFundingCreated,
    /// Funder: `funding_created` sent, waiting for `funding_signed`.
    AwaitingFundingSigned,
    /// Funding signed on both sides; waiting for depth and both `channel_ready`.
    AwaitingChannelReady,
    /// Open: payments may flow (also while shutting down, until negotiation).
    Normal,
    /// Closed: cooperatively, by force or by error. Nothing more is accepted.
    Closed,
}

/// A commitment we hold: its number, content and the peer's signatures on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCommit {
    /// The commitment number.
    pub index: u64,
    /// Its content.
    pub spec: CommitmentSpec,
    /// Its transaction id (all zeros before funding).
    pub txid: Txid,
    /// The peer's signature of the commitment transaction.
    pub remote_signature: Option<Signature>,
    /// The peer's HTLC signatures, in output order.
    pub htlc_signatures: Vec<Signature>,
}

/// A commitment of the peer that we signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommit {
    /// The commitment number.
    pub index: u64,
    /// Its content, from the peer's point of view.
    pub spec: CommitmentSpec,
    /// Its transaction id.
    pub txid: Txid,
    /// The peer's per-commitment point for it.
    pub per_commitment_point: PublicKey,
}

/// A peer commitment we signed whose predecessor the peer has not revoked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextRemoteCommit {
    /// The commitment.
    pub commit: RemoteCommit,
    /// The `commitment_signed` we sent for it (resent verbatim after a reconnection).
    pub sig: CommitmentSigned,
    /// Our local commitment number when we sent it: if ours is higher now, the
    /// `commitment_signed` went out before our last `revoke_and_ack` (resend order).
    pub sent_after_local_commit_index: u64,
}

/// Our updates: `proposed` (sent, not yet signed), `signed` (covered by our
/// `commitment_signed`, awaiting the peer's `revoke_and_ack`), `acked` (in the peer's
/// commitment, waiting to enter ours with the peer's next `commitment_signed`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalChanges {
    /// Sent, not yet signed.
    pub proposed: Vec<Update>,
    /// Signed, awaiting the peer's revocation.
    pub signed: Vec<Update>,
    /// Acknowledged by the peer's revocation.
    pub acked: Vec<Update>,
}

/// The peer's updates: `proposed` (received, not covered by its `commitment_signed`),
/// `acked` (in our commitment and revoked our previous one; to be signed into the peer's),
/// `signed` (in the peer's next commitment, awaiting its revocation: then irrevocable).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteChanges {
    /// Received, not yet signed by the peer.
    pub proposed: Vec<Update>,
    /// In our commitment; we revoked the previous one.
    pub acked: Vec<Update>,
    /// Signed by us into the peer's next commitment.
    pub signed: Vec<Update>,
}

/// The connection as the channel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Connected and in sync.
    Connected,
    /// Disconnected: nothing is sent until reconnection.
    Disconnected,
    /// Reconnected; our `channel_reestablish` is out, the peer's not yet received.
    AwaitingReestablish,
}

/// Shutdown progress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShutdownState {
    /// The caller asked to close (or the peer did and we answer); our `shutdown` goes out
    /// once our updates are all signed.
    pub local_requested: bool,
    /// We sent `shutdown`.
    pub local_sent: bool,
    /// The peer's `shutdown` script, once received.
    pub remote_script: Option<ScriptBuf>,
}

/// Legacy `closing_signed` negotiation progress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClosingState {
    /// The fee we last proposed and our signature for it.
    pub last_sent: Option<(u64, Signature)>,
    /// The fee the peer last proposed and its signature.
    pub last_received: Option<(u64, Signature)>,
    /// The peer's `fee_range`, if it sent one.
    pub remote_range: Option<(u64, u64)>,
}

/// How an outbound HTLC failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HtlcFailure {
    /// `update_fail_htlc`: the encrypted failure `reason` for the onion layer.
    Reason {
        /// The encrypted failure.
        reason: Vec<u8>,
        /// The `attribution_data` TLV, if the peer sent one.
        attribution_data: Option<Box<AttributionData>>,
    },
    /// `update_fail_malformed_htlc`.
    Malformed {
        /// The hash of the onion the peer could not parse.
        sha256_of_onion: [u8; 32],
        /// The BOLT 4 failure code (BADONION bit set).
        failure_code: u16,
    },
    /// Never sent: it was still in our holding cell when the peer's `shutdown` arrived
    /// (no `update_add_htlc` may follow it). Fail it upstream as a local channel failure.
    NotSent,
}

/// What the channel tells its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Both `channel_ready` exchanged: the channel is usable.
    ChannelReady {
        /// The real short channel id (funding position), if confirmed.
        short_channel_id: Option<ShortChannelId>,
        /// The alias the peer asked us to use, if any.
        remote_alias: Option<ShortChannelId>,
    },
    /// An HTLC the peer offered is irrevocably committed: forward or claim it now. If
    /// [`Channel::is_shutting_down`] (an add that crossed our `shutdown`), fail it back.
    /// Receiver-side policy beyond BOLT 2's MUSTs (LDK's fee-spike buffer as receiver, dust
    /// exposure from inbound HTLCs) is the node's to apply by failing the HTLC.
    InboundHtlcCommitted {
        /// Its id (the peer's numbering).
        id: u64,
        /// Its amount.
        amount_msat: u64,
        /// Its payment hash.
        payment_hash: PaymentHash,
        /// Its `cltv_expiry`.
        cltv_expiry: u32,
        /// The onion packet.
        onion: Box<[u8; ONION_PACKET_LEN]>,
        /// The route-blinding `path_key` (TLV), if any.
        path_key: Option<PublicKey>,
    },
    /// The peer fulfilled our HTLC: the preimage is usable at once (emitted once per HTLC).
    OutboundHtlcFulfilled {
        /// Our HTLC id.
        id: u64,
        /// The preimage.
        payment_preimage: PaymentPreimage,
    },
    /// Our HTLC failed and its removal is irrevocably committed: fail it upstream now.
    OutboundHtlcFailed {
        /// Our HTLC id.
        id: u64,
        /// How it failed.
        failure: HtlcFailure,
    },
    /// Both shutdowns exchanged (negotiation starts when no HTLC remains).
    ShutdownStarted,
    /// The cooperative close is agreed: broadcast this fully signed closing transaction.
    ClosingTransactionReady {
        /// The closing transaction.
        tx: Transaction,
    },
}

/// Balances in the latest commitments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    /// Our balance in our latest commitment (HTLCs and fees excluded).
    pub to_local_msat: u64,
    /// The peer's balance in our latest commitment.
    pub to_remote_msat: u64,
    /// What we could send now: our balance in the peer's next commitment minus the peer's
    /// reserve (and, as funder, the commitment fee with the fee-spike buffer), capped by
    /// the peer's in-flight limit.
    pub outbound_capacity_msat: u64,
    /// What the peer could send us: its balance in our latest commitment minus our reserve
    /// (and, if it is the funder, the commitment fee).
    pub inbound_capacity_msat: u64,
}

/// One single-funded channel: see the [module documentation](self) for the call order.
///
/// Its stored form is [`crate::persist::ChannelStateRecord`] ([`Channel::to_record`],
/// [`Channel::from_record`]): everything except its outbox and events, which are transient.
/// Store a channel together with what its node did with the events it drained (`NodeCore`
/// commits both in one batch, see [`crate::node`]'s `take_dirty`). Messages still in the outbox
/// are not lost by a restart: after one, `channel_reestablish` retransmits whatever the
/// peer has not received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub(crate) is_funder: bool,
    pub(crate) chain_hash: ChainHash,
    pub(crate) temporary_channel_id: ChannelId,
    pub(crate) channel_id: ChannelId,
    pub(crate) channel_type: ChannelType,
    pub(crate) channel_type_features: Features,
    pub(crate) funding_satoshis: u64,
    pub(crate) push_msat: u64,
    pub(crate) config: ChannelConfig,
    pub(crate) keys: ChannelKeys,
    /// The index `keys` were derived with from the node's seed and the peer's id
    /// ([`derive_peer_channel_keys`]), so that the stored record holds the index instead of
    /// the secrets; `None` for keys given otherwise (tests, the forced-keys test mode, a
    /// channel read from a record of format version 1 or 2), which records store.
    pub(crate) key_index: Option<u64>,
    pub(crate) local_pubkeys: ChannelPublicKeys,
    /// The peer's keys; equal to ours as a placeholder until `accept_channel` arrives.
    pub(crate) remote_pubkeys: ChannelPublicKeys,
    pub(crate) local_params: ChannelParams,
    pub(crate) remote_params: ChannelParams,
    pub(crate) phase: ChannelPhase,
    pub(crate) connection: Connection,
    pub(crate) funding_outpoint: Option<OutPoint>,
    pub(crate) minimum_depth: u32,
    pub(crate) funding_height: Option<u32>,
    pub(crate) short_channel_id: Option<ShortChannelId>,
    pub(crate) local_alias: Option<ShortChannelId>,
    pub(crate) remote_alias: Option<ShortChannelId>,
    pub(crate) channel_ready_sent: bool,
    pub(crate) channel_ready_received: bool,
    pub(crate) local_commit: LocalCommit,
    pub(crate) remote_commit: RemoteCommit,
    pub(crate) next_remote_commit: Option<NextRemoteCommit>,
    /// The peer's per-commitment point for commitment `remote_commit.index + 1`.
    pub(crate) remote_next_point: Option<PublicKey>,
    pub(crate) local_changes: LocalChanges,
    pub(crate) remote_changes: RemoteChanges,
    pub(crate) holding_cell: Vec<Update>,
    pub(crate) local_next_htlc_id: u64,
    pub(crate) remote_next_htlc_id: u64,
    pub(crate) remote_secrets: CounterpartySecrets,
    pub(crate) local_shutdown_script: ScriptBuf,
    pub(crate) remote_upfront_shutdown_script: Option<ScriptBuf>,
    pub(crate) anysegwit: bool,
    pub(crate) shutdown: ShutdownState,
    pub(crate) closing: ClosingState,
    pub(crate) fulfilled_notified: BTreeSet<u64>,
    /// The best block height when the node created the channel (opened or accepted it);
    /// `None` in a record of format version 1, which did not store it.
    pub(crate) created_height: Option<u32>,
    /// Transient: drained after every call, so empty whenever the channel is persisted.
    pub(crate) outbox: Vec<Message>,
    /// Transient: drained after every call, so empty whenever the channel is persisted.
    pub(crate) events: Vec<ChannelEvent>,
    /// Derived, not state: see [`Ahead`].
    pub(crate) ahead: Ahead,
}

impl Channel {
    /// The channel id: the temporary one until funding, then the final one.
    pub fn channel_id(&self) -> ChannelId {
        self.channel_id
    }

    /// The temporary channel id used during opening.
    pub fn temporary_channel_id(&self) -> ChannelId {
        self.temporary_channel_id
    }

    /// Whether we are the funder (opener).
    pub fn is_funder(&self) -> bool {
        self.is_funder
    }

    /// The negotiated commitment format.
    pub fn channel_type(&self) -> ChannelType {
        self.channel_type
    }

    /// Where the channel is in its life.
    pub fn phase(&self) -> ChannelPhase {
        self.phase
    }

    /// The connection state.
    pub fn connection(&self) -> Connection {
        self.connection
    }

    /// The funding amount.
    pub fn funding_satoshis(&self) -> u64 {
        self.funding_satoshis
    }

    /// The funding outpoint, once known.
    pub fn funding_outpoint(&self) -> Option<OutPoint> {
        self.funding_outpoint
    }

    /// The real short channel id, once the funding transaction confirmed.
    pub fn short_channel_id(&self) -> Option<ShortChannelId> {
        self.short_channel_id
    }

    /// The alias the peer gave us in `channel_ready`.
    pub fn remote_alias(&self) -> Option<ShortChannelId> {
        self.remote_alias
    }

    /// Our latest commitment.
    pub fn local_commit(&self) -> &LocalCommit {
        &self.local_commit
    }

    /// The peer's latest commitment whose predecessor is revoked.
    pub fn remote_commit(&self) -> &RemoteCommit {
        &self.remote_commit
    }

    /// The peer commitment we signed whose predecessor is not yet revoked.
    pub fn next_remote_commit(&self) -> Option<&NextRemoteCommit> {
        self.next_remote_commit.as_ref()
    }

    /// Our change lists.
    pub fn local_changes(&self) -> &LocalChanges {
        &self.local_changes
    }

    /// The peer's change lists.
    pub fn remote_changes(&self) -> &RemoteChanges {
        &self.remote_changes
    }

    /// Our updates waiting to be sent with the next `commitment_signed`.
    pub fn holding_cell(&self) -> &[Update] {
        &self.holding_cell
    }

    /// Our parameters (constraints on the peer).
    pub fn local_params(&self) -> &ChannelParams {
        &self.local_params
    }

    /// The peer's parameters (constraints on us).
    pub fn remote_params(&self) -> &ChannelParams {
        &self.remote_params
    }

    /// The index this channel's keys were derived with from the node's seed and the peer's
    /// id, `None` when its keys were given (see [`derive_peer_channel_keys`]).
    pub fn key_index(&self) -> Option<u64> {
        self.key_index
    }

    /// Marks the channel's keys as derived with `index` (by `NodeCore`, right after it made
    /// the channel with `derive_peer_channel_keys(seed, peer, index)`): its record then holds
    /// the index, never the secrets.
    pub(crate) fn set_key_index(&mut self, index: u64) {
        self.key_index = Some(index);
    }

    /// The peer's revealed per-commitment secrets.
    pub fn remote_secrets(&self) -> &CounterpartySecrets {
        &self.remote_secrets
    }

    /// Whether a cooperative close is under way: we asked for it, or either `shutdown` was
    /// sent or received. No new HTLC can be added.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.local_requested
            || self.shutdown.local_sent
            || self.shutdown.remote_script.is_some()
    }

    /// Whether we signed a commitment the peer has not answered with `revoke_and_ack`.
    pub fn is_awaiting_revoke_and_ack(&self) -> bool {
        self.next_remote_commit.is_some()
    }

    /// The messages to send, in order (after persisting the channel).
    pub fn drain_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outbox)
    }

    /// The events for the node, in order.
    pub fn drain_events(&mut self) -> Vec<ChannelEvent> {
        std::mem::take(&mut self.events)
    }

    /// Balances and capacities.
    pub fn balances(&self) -> Balances {
        let ct = self.channel_type;
        let spec = &self.local_commit.spec;
        let remote = self.latest_remote_spec_with_pending();
        let (our_balance, our_fee) = match &remote {
            Ok(s) => (
                s.to_remote_msat,
                if self.is_funder {
                    // The new HTLC's output plus the fee-spike buffer's extra HTLC.
                    s.funder_cost_msat_at(
                        s.feerate_per_kw
                            .saturating_mul(update::FEE_SPIKE_BUFFER_MULTIPLE),
                        2,
                        self.remote_params.dust_limit_satoshis,
                        ct,
                    )
                } else {
                    0
                },
            ),
            Err(_) => (spec.to_local_msat, 0),
        };
        let outbound = our_balance
            .saturating_sub(our_fee)
            .saturating_sub(
                self.remote_params
                    .channel_reserve_satoshis
                    .saturating_mul(1000),
            )
            .min(self.remote_params.max_htlc_value_in_flight_msat);
        let their_fee = if self.is_funder {
            0
        } else {
            spec.funder_cost_msat_at(
                spec.feerate_per_kw,
                1,
                self.local_params.dust_limit_satoshis,
                ct,
            )
        };
        let inbound = spec
            .to_remote_msat
            .saturating_sub(their_fee)
            .saturating_sub(
                self.local_params
                    .channel_reserve_satoshis
                    .saturating_mul(1000),
            )
            .min(self.local_params.max_htlc_value_in_flight_msat);
        Balances {
            to_local_msat: spec.to_local_msat,
            to_remote_msat: spec.to_remote_msat,
            outbound_capacity_msat: outbound,
            inbound_capacity_msat: inbound,
        }
    }

    /// Our per-commitment point for commitment `index`.
    pub(crate) fn local_point(&self, index: u64) -> Result<PublicKey, ChannelError> {
        if let Some(point) = self.ahead.point(index) {
            return Ok(point);
        }
        let secp = crate::secp::ctx();
        let i = FIRST_INDEX
            .checked_sub(index)
            .ok_or_else(|| close(R::CommitmentNumberTooLarge { index }))?;
        self.keys
            .per_commitment_point(&secp, i)
            .map_err(|error| close(R::PerCommitmentPoint { index, error }))
    }

    /// Our per-commitment secret for commitment `index`.
    pub(crate) fn local_secret(&self, index: u64) -> Result<[u8; 32], ChannelError> {
        let i = FIRST_INDEX
            .checked_sub(index)
            .ok_or_else(|| close(R::CommitmentNumberTooLarge { index }))?;
        self.keys
            .per_commitment_secret(i)
            .map_err(|error| close(R::PerCommitmentSecret { index, error }))
    }

    /// Whether both first commitments are signed (`funding_signed` exchanged) and the channel
    /// is not closed. A channel that is not funded yet must be forgotten when the peer
    /// disconnects (BOLT 2): it cannot be reestablished.
    pub fn is_funded(&self) -> bool {
        matches!(
            self.phase,
            ChannelPhase::AwaitingChannelReady | ChannelPhase::Normal
        )
    }

    /// Whether closing negotiation may run: both shutdowns exchanged and nothing in flight.
    pub fn is_clean_for_closing(&self) -> bool {
        self.shutdown.local_sent
            && self.shutdown.remote_script.is_some()
            && self.local_commit.spec.htlcs.is_empty()
            && self.remote_commit.spec.htlcs.is_empty()
            && self.next_remote_commit.is_none()
            && self.holding_cell.is_empty()
            && self.local_changes == LocalChanges::default()
            && self.remote_changes == RemoteChanges::default()
    }

    /// Marks the channel closed: nothing more is sent or accepted.
    pub(crate) fn set_closed(&mut self) {
        self.phase = ChannelPhase::Closed;
        self.outbox.clear();
    }
}

impl Channel {
    /// Dispatches a channel message received from the peer to its `handle_*` method (after
    /// opening; `open_channel` is for [`Channel::new_inbound`]). Replies such as
    /// `funding_signed` are queued for [`Channel::drain_messages`]. Does not sign: call
    /// [`Channel::maybe_sign`] afterwards. `warning`, `error` and messages of other kinds
    /// are refused with [`ChannelError::Ignore`] (the node handles them), and so is every
    /// message once the channel is closed.
    pub fn handle_message(&mut self, msg: &Message) -> Result<(), ChannelError> {
        if self.phase == ChannelPhase::Closed {
            // Late messages (say a repeated closing_signed) must not trigger a force close.
            return Err(error::ignore(R::MessageForClosedChannel {
                message_type: msg.message_type(),
            }));
        }
        match msg {
            Message::AcceptChannel(m) => self.handle_accept_channel(m),
            Message::FundingCreated(m) => {
                let reply = self.handle_funding_created(m)?;
                self.outbox.push(Message::FundingSigned(reply));
                Ok(())
            }
            Message::FundingSigned(m) => self.handle_funding_signed(m),
            Message::ChannelReady(m) => self.handle_channel_ready(m),
            Message::UpdateAddHtlc(m) => self.handle_update_add_htlc(m),
            Message::UpdateFulfillHtlc(m) => self.handle_update_fulfill_htlc(m),
            Message::UpdateFailHtlc(m) => self.handle_update_fail_htlc(m),
            Message::UpdateFailMalformedHtlc(m) => self.handle_update_fail_malformed_htlc(m),
            Message::UpdateFee(m) => self.handle_update_fee(m),
            Message::CommitmentSigned(m) => self.handle_commitment_signed(m),
            Message::RevokeAndAck(m) => self.handle_revoke_and_ack(m),
            Message::Shutdown(m) => self.handle_shutdown(m),
            Message::ClosingSigned(m) => self.handle_closing_signed(m),
            Message::ChannelReestablish(m) => self.handle_channel_reestablish(m),
            other => Err(error::ignore(R::NotAChannelMessage {
                message_type: other.message_type(),
            })),
        }
    }
}

/// Blocks after an outbound HTLC's `cltv_expiry` we wait for the peer to fail it off-chain
/// before going on-chain (LDK's `LATENCY_GRACE_PERIOD_BLOCKS`).
pub const LATENCY_GRACE_PERIOD_BLOCKS: u32 = 3;
/// Blocks before an inbound HTLC's `cltv_expiry` by which a claimed HTLC must be removed
/// off-chain, or we go on-chain to claim it (LDK's `CLTV_CLAIM_BUFFER`).
pub const CLTV_CLAIM_BUFFER: u32 = 18;

impl Channel {
    /// Whether HTLC deadlines at block `height` require failing the channel on-chain:
    /// [`ChannelError::Close`] when an outbound HTLC is still in our commitment
    /// [`LATENCY_GRACE_PERIOD_BLOCKS`] after its `cltv_expiry`, or an inbound HTLC we
    /// fulfilled is still in it within [`CLTV_CLAIM_BUFFER`] blocks of its `cltv_expiry`.
    /// Call on every new block once the channel is open; the channel is not modified.
    pub fn check_htlc_deadlines(&self, height: u32) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::Normal {
            return Ok(());
        }
        for h in self.local_commit.spec.htlcs.values() {
            if h.offered {
                if h.cltv_expiry.saturating_add(LATENCY_GRACE_PERIOD_BLOCKS) <= height {
                    return Err(close(R::OutboundHtlcTimedOut {
                        id: h.id,
                        cltv_expiry: h.cltv_expiry,
                        height,
                    }));
                }
            } else {
                let claimed = self
                    .holding_cell
                    .iter()
                    .chain(&self.local_changes.proposed)
                    .chain(&self.local_changes.signed)
                    .chain(&self.local_changes.acked)
                    .any(|u| matches!(u, Update::Fulfill(f) if f.id == h.id));
                if claimed && h.cltv_expiry <= height.saturating_add(CLTV_CLAIM_BUFFER) {
                    return Err(close(R::ClaimedHtlcNotRemoved {
                        id: h.id,
                        cltv_expiry: h.cltv_expiry,
                        height,
                    }));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod test_utils {
    //! A funded, ready pair of channels for the unit tests of the submodules.
    use super::*;
    use crate::wire::Feature;
    use bitcoin::hashes::Hash;

    pub(crate) fn features() -> Features {
        let mut f = Features::empty();
        f.set_required(Feature::StaticRemoteKey);
        f.set_optional(Feature::UpfrontShutdownScript);
        f
    }

    pub(crate) fn script(tag: u8) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([tag; 20]))
    }

    /// Funder `a` and fundee `b`, funded and ready, messages exchanged directly.
    pub(crate) fn ready_pair() -> (Channel, Channel) {
        ready_pair_of(false)
    }

    /// As [`ready_pair`], `option_anchors_zero_fee_htlc_tx` if `anchors`.
    pub(crate) fn ready_pair_of(anchors: bool) -> (Channel, Channel) {
        ready_pair_funded(anchors, |_| OutPoint {
            txid: bitcoin::Txid::from_byte_array([3; 32]),
            vout: 0,
        })
    }

    /// As [`ready_pair_of`], funded at the outpoint `fund` returns for the funding output.
    pub(crate) fn ready_pair_funded(
        anchors: bool,
        fund: impl FnOnce(bitcoin::TxOut) -> OutPoint,
    ) -> (Channel, Channel) {
        ready_pair_with_keys(
            anchors,
            derive_channel_keys(&[1; 32], 0),
            derive_channel_keys(&[2; 32], 0),
            fund,
        )
    }

    /// As [`ready_pair_funded`], with the funder's keys `keys_a` and the fundee's `keys_b`.
    pub(crate) fn ready_pair_with_keys(
        anchors: bool,
        keys_a: crate::keys::ChannelKeys,
        keys_b: crate::keys::ChannelKeys,
        fund: impl FnOnce(bitcoin::TxOut) -> OutPoint,
    ) -> (Channel, Channel) {
        let mut features = features();
        let mut config = ChannelConfig::default();
        if anchors {
            features.set_optional(Feature::Anchors);
            config.negotiate_anchors = true;
        }
        let (mut a, open) = Channel::new_outbound(
            OutboundParams {
                chain_hash: ChainHash::REGTEST,
                temporary_channel_id: ChannelId([1; 32]),
                funding_satoshis: 1_000_000,
                push_msat: 100_000_000,
                feerate_per_kw: 1000,
                announce: false,
                shutdown_script: script(0xaa),
            },
            &features,
            &features,
            config.clone(),
            keys_a,
        )
        .expect("valid open");
        let (mut b, accept) = Channel::new_inbound(
            &open,
            ChainHash::REGTEST,
            &features,
            &features,
            config,
            keys_b,
            script(0xbb),
        )
        .expect("valid accept");
        a.handle_accept_channel(&accept).expect("accept");
        let outpoint = fund(bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(a.funding_satoshis()),
            script_pubkey: a.funding_script_pubkey(),
        });
        let fc = a.funding_transaction_built(outpoint).expect("funding");
        let fs = b.handle_funding_created(&fc).expect("funding_created");
        a.handle_funding_signed(&fs).expect("funding_signed");
        for c in [&mut a, &mut b] {
            c.funding_confirmed(10, 1, 0).expect("confirmed");
            c.best_block_updated(20).expect("deep");
        }
        let (ma, mb) = (a.drain_messages(), b.drain_messages());
        for m in &mb {
            a.handle_message(m).expect("ready");
        }
        for m in &ma {
            b.handle_message(m).expect("ready");
        }
        (a, b)
    }

    /// Delivers everything both ways, signing after each message, until quiet.
    pub(crate) fn settle(a: &mut Channel, b: &mut Channel) {
        for _ in 0..50 {
            a.maybe_sign().expect("sign");
            b.maybe_sign().expect("sign");
            let (ma, mb) = (a.drain_messages(), b.drain_messages());
            if ma.is_empty() && mb.is_empty() {
                return;
            }
            for m in &ma {
                b.handle_message(m).expect("honest");
            }
            for m in &mb {
                a.handle_message(m).expect("honest");
            }
        }
        panic!("did not settle");
    }
}

#[cfg(test)]
mod tests {
    use super::test_utils::*;
    use super::*;

    #[test]
    fn ready_pair_balances_and_deadlines() {
        let (a, b) = ready_pair();
        assert_eq!(a.phase(), ChannelPhase::Normal);
        let bal = a.balances();
        assert_eq!(bal.to_local_msat, 900_000_000);
        assert_eq!(bal.to_remote_msat, 100_000_000);
        // B must keep A's 1% reserve (10,000 sat); B does not pay the fee.
        assert_eq!(b.balances().outbound_capacity_msat, 90_000_000);
        assert_eq!(a.balances().inbound_capacity_msat, 90_000_000);
        assert!(a.balances().outbound_capacity_msat < 890_000_000);
        assert_eq!(a.check_htlc_deadlines(u32::MAX), Ok(()));
    }

    #[test]
    fn handle_message_refuses_connection_level_messages() {
        let (mut a, _) = ready_pair();
        let ping = Message::Ping(crate::wire::Ping {
            num_pong_bytes: 1,
            ignored: vec![],
        });
        assert!(matches!(
            a.handle_message(&ping),
            Err(ChannelError::Ignore(_))
        ));
    }
}
