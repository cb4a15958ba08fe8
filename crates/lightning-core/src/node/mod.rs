//! `NodeCore`: the ChannelManager logic for the peers one shard owns.
//!
//! A `NodeCore` owns a set of [`PeerState`]s outright and never assumes it sees every peer:
//! an HTLC whose next channel it does not own, or a result for an HTLC that came from a
//! channel it does not own, leaves as an explicit [`Output`] for the shard engine to route.
//!
//! # Call order
//! Inputs: [`NodeCore::peer_connected`] / [`NodeCore::peer_disconnected`],
//! [`NodeCore::handle_message`] with a peer's decrypted message bytes, the API calls
//! ([`NodeCore::create_channel`], [`NodeCore::send_payment`], ...), chain input
//! ([`NodeCore::best_block_updated`], [`NodeCore::transactions_confirmed`]) and what other
//! shards hand over ([`NodeCore::handle_forward`], [`NodeCore::handle_resolution`]).
//! After each input, drain [`NodeCore::poll_output`] (or [`NodeCore::drain_outputs`]) and act
//! on every output in order.
//!
//! # Persistence (group commit)
//! After a batch of inputs, before releasing any output of the batch:
//! 1. [`NodeCore::take_dirty`] names the channels changed and removed since the last call,
//!    and whether the node record changed;
//! 2. write [`NodeCore::snapshot_channel`] of each changed channel, delete each removed one,
//!    and write [`NodeCore::node_record`] if it changed, all with one sync (the records of a
//!    batch belong together: a channel record and the node record that says what was done
//!    with that channel's events);
//! 3. then drain and act on the outputs.
//!
//! Records are taken between calls, when every channel's outbox and events are drained.
//! An [`Output::Forward`] or [`Output::Resolve`] handed to another shard is not in this
//! node's records once released: the engine must make the hand-over durable itself.
//!
//! # Restarting
//! [`NodeCore::restore`] rebuilds a node from its records: the peers and the short channel
//! id index come from the channels, never from disk. Every peer starts disconnected; a
//! reconnecting peer gets `init` and then `channel_reestablish` for each of its channels
//! ([`NodeCore::peer_connected`]). With another shard count, give each shard the channel
//! records of its own peers and [`NodeRecord::merge`](crate::persist::NodeRecord::merge) of
//! all old node records, filtered with
//! [`NodeRecord::retain_peers`](crate::persist::NodeRecord::retain_peers) to the same peers.
//!
//! `NodeCore` is deterministic: given the same seed and the same inputs it produces the same
//! outputs, byte for byte. Its maps are ordered (`BTreeMap`), its randomness comes from a
//! seeded generator, and time is the block height.
//!
//! * [`route`]: caller-given routes and the payment onion built along them.
//! * [`htlc_policy`]: what to do with an HTLC a peer committed to us (forward, receive, fail).
//! * [`config`], [`event`]: configuration, events and outputs.
//! * [`fees`]: feerates from the host, `update_fee` as funder and as fundee.
//! * [`limits`]: what a peer can make us hold, say or show (peer text bounds, pong budget).

mod ahead;
mod chain;
mod channel_ext;
pub mod config;
mod debug;
mod dispatch;
pub mod event;
pub mod fees;
mod forwarding;
mod htlc_map;
pub mod htlc_policy;
mod lifecycle;
pub mod limits;
mod onchain;
mod payments;
mod peer_map;
mod persist;
pub mod refusals;
pub mod route;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::{BlockHash, ScriptBuf, Transaction, Txid};

pub use config::{
    Liveness, NodeConfig, DEFAULT_MAX_PENDING_INBOUND_CHANNELS,
    DEFAULT_PAYMENT_ID_RETENTION_BLOCKS, FUNDING_CONF_DEADLINE_BLOCKS,
};
pub use event::{
    ClosureReason, Event, ForwardHtlc, ForwardOutcome, ForwardResolution, HtlcSource, Output,
    PaymentFailure, PaymentId,
};
pub use fees::{FeeEstimates, FeePolicy, MIN_RELAY_FEERATE_PER_KW, UPDATE_FEE_HTLC_HEADROOM};
pub use htlc_policy::ForwardingPolicy;
pub use limits::{PeerRateLimits, MAX_PEER_TEXT_BYTES, MAX_PEER_TEXT_LEN};
pub use persist::Dirty;
pub use refusals::{ChannelValueError, FirstHopError};
pub use route::{Route, RouteError, RouteHop};

use crate::channel::{derive_peer_channel_keys, Balances, Channel, ChannelError, ChannelPhase};
use crate::onion::HopSharedSecret;
use crate::peer::PeerState;
use crate::types::{ChannelId, PaymentHash, PaymentSecret, ShortChannelId};
use crate::wire::{ErrorMessage, Message};

/// The feerate on-chain claims start from until [`NodeCore::set_claim_feerate`] says
/// otherwise (sat per 1000 weight: 2,500 is 10 sat/vB).
pub const DEFAULT_CLAIM_FEERATE_PER_KW: u32 = 2_500;

/// Why an API call was refused. Nothing changed when one is returned.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// The peer is not connected (or has not sent `init`).
    PeerNotConnected(PublicKey),
    /// No channel with this id belongs to this peer.
    UnknownChannel(ChannelId),
    /// No channel with this short channel id is ours.
    UnknownShortChannelId(ShortChannelId),
    /// A configured limit was reached.
    LimitReached(ApiLimit),
    /// The channel refused the request. The error says what was done with the channel
    /// (nothing for [`ChannelError::Ignore`]; it was failed for the closing variants) and
    /// why.
    Channel(ChannelError),
    /// The route or payment is invalid.
    InvalidRoute(RouteError),
    /// A payment with this id exists already.
    DuplicatePayment(PaymentId),
    /// No payment to us with this hash is claimable.
    NotClaimable(PaymentHash),
    /// The funding transaction does not pay the channel's funding script the right amount.
    BadFundingTransaction(FundingTransactionError),
    /// The route's first hop cannot carry the payment now (channel not ours with that
    /// peer, not ready, peer disconnected, amount below its `htlc_minimum_msat` or above
    /// what we can send on it). Nothing was sent.
    FirstHop(FirstHopError),
    /// A payment with this id completed recently: ids are remembered for
    /// [`NodeConfig::payment_id_retention_blocks`] after completion (and across restarts),
    /// so that a retried call never pays twice. Use a new id for a new payment.
    PaymentIdRecentlyUsed {
        /// The id.
        payment_id: PaymentId,
        /// The height of the best block when the payment completed.
        completed_height: u32,
        /// The first best-block height at which the id is forgotten.
        retained_until_height: u32,
    },
    /// The channel's value or push amount is outside our limits or the peer's known limits.
    /// Nothing was created.
    ChannelValue(ChannelValueError),
}

/// A configured limit an API call ran into ([`ApiError::LimitReached`]).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiLimit {
    /// [`NodeConfig::max_pending_payments`] payments are in flight already.
    PendingPayments {
        /// The limit.
        max: usize,
    },
    /// [`NodeConfig::max_channels_per_peer`] channels with this peer exist already.
    ChannelsPerPeer {
        /// The peer.
        node_id: PublicKey,
        /// The limit.
        max: usize,
    },
}

impl core::fmt::Display for ApiLimit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ApiLimit::PendingPayments { max } => write!(f, "{max} payments in flight"),
            ApiLimit::ChannelsPerPeer { node_id, max } => {
                write!(f, "{max} channels with peer {node_id}")
            }
        }
    }
}

/// Why a funding transaction does not fund the channel
/// ([`ApiError::BadFundingTransaction`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FundingTransactionError {
    /// No output pays the funding amount to the channel's funding script.
    NoFundingOutput {
        /// The funding amount.
        value_satoshis: u64,
    },
    /// The funding output's index does not fit in 32 bits.
    TooManyOutputs {
        /// The transaction's outputs.
        outputs: usize,
    },
}

impl core::fmt::Display for FundingTransactionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FundingTransactionError::NoFundingOutput { value_satoshis } => write!(
                f,
                "no output pays {value_satoshis} sat to the funding script"
            ),
            FundingTransactionError::TooManyOutputs { outputs } => {
                write!(f, "too many outputs ({outputs})")
            }
        }
    }
}

impl std::error::Error for FundingTransactionError {}

impl core::fmt::Display for ApiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ApiError::PeerNotConnected(p) => write!(f, "peer {p} is not connected"),
            ApiError::UnknownChannel(c) => write!(f, "no channel {c} with this peer"),
            ApiError::UnknownShortChannelId(s) => write!(f, "no channel with short id {s}"),
            ApiError::LimitReached(what) => write!(f, "limit reached: {what}"),
            ApiError::Channel(e) => write!(f, "channel refused: {}", e.reason()),
            ApiError::InvalidRoute(why) => write!(f, "invalid route: {why}"),
            ApiError::DuplicatePayment(id) => write!(
                f,
                "payment id {} is in use by a payment in flight",
                refusals::hex(&id.0)
            ),
            ApiError::NotClaimable(h) => write!(f, "no claimable payment with hash {h}"),
            ApiError::BadFundingTransaction(why) => write!(f, "bad funding transaction: {why}"),
            ApiError::FirstHop(why) => write!(f, "unusable first hop: {why}"),
            ApiError::PaymentIdRecentlyUsed {
                payment_id,
                completed_height,
                retained_until_height,
            } => write!(
                f,
                "payment id {} was used by a payment completed at height {completed_height}: \
                 refused until height {retained_until_height} (payment_id_retention_blocks)",
                refusals::hex(&payment_id.0)
            ),
            ApiError::ChannelValue(why) => write!(f, "channel value refused: {why}"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Channel(e) => Some(e),
            ApiError::InvalidRoute(e) => Some(e),
            ApiError::BadFundingTransaction(e) => Some(e),
            ApiError::FirstHop(e) => Some(e),
            ApiError::ChannelValue(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        ApiError::Channel(e)
    }
}

/// A channel as `list_channels` shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelDetails {
    /// The channel id (temporary until funded).
    pub channel_id: ChannelId,
    /// The peer.
    pub counterparty_node_id: PublicKey,
    /// The application's id for it.
    pub user_channel_id: u128,
    /// The funding amount.
    pub channel_value_satoshis: u64,
    /// Whether we funded it.
    pub is_outbound: bool,
    /// Where it is in its life.
    pub phase: ChannelPhase,
    /// Whether payments may flow now (ready and the peer connected).
    pub is_usable: bool,
    /// The real short channel id, once confirmed.
    pub short_channel_id: Option<ShortChannelId>,
    /// Balances in the latest commitments.
    pub balances: Balances,
}

/// A payment to us we are ready to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InboundPayment {
    secret: PaymentSecret,
    amount_msat: Option<u64>,
}

/// An HTLC paying us, committed and waiting for `claim_funds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClaimableHtlc {
    node_id: PublicKey,
    channel_id: ChannelId,
    htlc_id: u64,
    amount_msat: u64,
    cltv_expiry: u32,
    shared_secret: HopSharedSecret,
}

/// One of our payments in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OutboundPayment {
    payment_hash: PaymentHash,
    route: Route,
    shared_secrets: Vec<HopSharedSecret>,
}

/// An HTLC we offered on one of our channels, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OfferedHtlc {
    /// The outgoing channel's peer.
    node_id: PublicKey,
    source: HtlcSource,
    amount_msat: u64,
    incoming_amount_msat: u64,
    cltv_expiry: u32,
}

/// An HTLC a peer offered us that we forwarded: what we need to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UpstreamHtlc {
    node_id: PublicKey,
    shared_secret: HopSharedSecret,
}

/// HTLCs waiting for an HTLC-timeout transaction of a force-closed channel to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingTimeout {
    channel_id: ChannelId,
    offered: OfferedHtlc,
}

/// The ChannelManager logic of one shard: see the [module documentation](self).
#[derive(Debug)]
pub struct NodeCore {
    secp: Secp256k1<All>,
    node_secret: SecretKey,
    node_id: PublicKey,
    seed: [u8; 32],
    config: NodeConfig,
    best_height: u32,
    best_hash: BlockHash,
    peers: peer_map::PeerMap,
    /// Our channels' real short ids and our aliases, to (peer, channel).
    scid_to_channel: BTreeMap<ShortChannelId, (PublicKey, ChannelId)>,
    inbound_payments: BTreeMap<PaymentHash, InboundPayment>,
    claimable: BTreeMap<PaymentHash, Vec<ClaimableHtlc>>,
    payments: BTreeMap<PaymentId, OutboundPayment>,
    /// Ids of our payments that completed, with the best height then: refused for
    /// [`NodeConfig::payment_id_retention_blocks`]. Persisted one record each
    /// ([`Dirty::completed_payments`], [`NodeCore::restore_completed_payments`]), never in
    /// the node record, so a commit does not grow with them.
    completed_payments: BTreeMap<PaymentId, u32>,
    /// HTLCs we offered (downstream ends), persisted one record each ([`Dirty::offered`]).
    offered: htlc_map::HtlcMap<OfferedHtlc>,
    /// HTLCs we forwarded (upstream ends), persisted one record each ([`Dirty::upstream`]).
    upstream: htlc_map::HtlcMap<UpstreamHtlc>,
    pending_timeouts: BTreeMap<Txid, Vec<PendingTimeout>>,
    /// One monitor per funded channel, kept until everything it watches is resolved
    /// ([`crate::chain`]).
    monitors: BTreeMap<ChannelId, crate::chain::ChannelMonitor>,
    /// Per monitor, the highest revoked commitment number whose HTLCs were handed to the
    /// store ([`NodeCore::snapshot_monitor`]).
    monitor_revoked_stored: BTreeMap<ChannelId, Option<u64>>,
    /// Monitors whose whole state the next commit writes
    /// (`NodeCore::monitor_snapshot_due`).
    monitor_snapshots_due: std::collections::BTreeSet<ChannelId>,
    /// Where claims pay, if the application chose ([`NodeCore::set_sweep_script`]).
    sweep_script: Option<ScriptBuf>,
    /// The feerate claims start from ([`NodeCore::set_claim_feerate`]).
    claim_feerate_per_kw: u32,
    outputs: VecDeque<Output>,
    /// What changed since the last [`NodeCore::take_dirty`] (group commit).
    dirty: Dirty,
    /// Ping/pong liveness settings (not persisted).
    liveness: Liveness,
    /// Per-peer budgets for pongs and peer texts (not persisted).
    rate_limits: PeerRateLimits,
    /// The host time (ms) by which the node wants its next [`NodeCore::timer_tick`]
    /// ([`NodeCore::poll_timeout`]); `None`: no timer is due. Not persisted.
    next_tick_ms: Option<u64>,
    /// Test mode only: every new channel uses these keys instead of derived ones.
    forced_channel_keys: Option<crate::keys::ChannelKeys>,
    /// The host's latest fee estimates ([`NodeCore::fee_estimates_updated`]); not persisted.
    fee_estimates: Option<FeeEstimates>,
    /// When to send and refuse `update_fee` ([`NodeCore::set_fee_policy`]); not persisted.
    fee_policy: FeePolicy,
    /// Channels to derive ahead for when the host has time ([`NodeCore::derive_ahead`]);
    /// not persisted.
    ahead: ahead::AheadQueue,
}

impl NodeCore {
    /// A node with identity `node_secret`. `seed` (secret, 32 bytes) derives every channel's
    /// keys and all of the node's randomness, so the same seed and inputs replay exactly.
    ///
    /// Randomness is drawn per peer (from the seed, the peer's id, a per-peer counter and the
    /// best block hash), never per shard: the same peers and inputs give the same keys and
    /// channels whichever shard, and however many shards, run them.
    pub fn new(
        node_secret: SecretKey,
        seed: [u8; 32],
        config: NodeConfig,
        best_height: u32,
        best_hash: BlockHash,
    ) -> Self {
        let secp = crate::secp::ctx();
        let node_id = PublicKey::from_secret_key(&secp, &node_secret);
        NodeCore {
            secp,
            node_secret,
            node_id,
            seed,
            config,
            best_height,
            best_hash,
            peers: peer_map::PeerMap::default(),
            scid_to_channel: BTreeMap::new(),
            inbound_payments: BTreeMap::new(),
            claimable: BTreeMap::new(),
            payments: BTreeMap::new(),
            completed_payments: BTreeMap::new(),
            offered: htlc_map::HtlcMap::default(),
            upstream: htlc_map::HtlcMap::default(),
            pending_timeouts: BTreeMap::new(),
            monitors: BTreeMap::new(),
            monitor_revoked_stored: BTreeMap::new(),
            monitor_snapshots_due: std::collections::BTreeSet::new(),
            sweep_script: None,
            claim_feerate_per_kw: DEFAULT_CLAIM_FEERATE_PER_KW,
            outputs: VecDeque::new(),
            dirty: Dirty::default(),
            liveness: Liveness::default(),
            rate_limits: PeerRateLimits::default(),
            next_tick_ms: None,
            forced_channel_keys: None,
            fee_estimates: None,
            fee_policy: FeePolicy::default(),
            ahead: ahead::AheadQueue::default(),
        }
    }

    /// Sets the ping/pong liveness parameters used by [`NodeCore::timer_tick`].
    pub fn set_liveness(&mut self, liveness: Liveness) {
        self.liveness = liveness;
    }

    /// Sets the per-peer budgets for pongs and peer texts ([`limits`]); the defaults suit
    /// every node, so only tests and unusual hosts call this.
    pub fn set_rate_limits(&mut self, limits: PeerRateLimits) {
        self.rate_limits = limits;
    }

    /// Test mode (regtest conformance harnesses, as Core Lightning's
    /// `--dev-force-channel-secrets`): every channel created or accepted from now on uses
    /// `keys` (funding key, basepoint secrets and per-commitment seed) instead of keys derived
    /// from the seed, so a harness can predict our keys and signatures. `None` returns to
    /// derived keys. Never use it with real funds: every channel then shares one set of keys.
    pub fn set_forced_channel_keys(&mut self, keys: Option<crate::keys::ChannelKeys>) {
        self.forced_channel_keys = keys;
    }

    /// Our node id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The best block we know.
    pub fn best_block(&self) -> (u32, BlockHash) {
        (self.best_height, self.best_hash)
    }

    /// The next output for the host, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Every pending output, in order.
    pub fn drain_outputs(&mut self) -> Vec<Output> {
        self.outputs.drain(..).collect()
    }

    /// The peers this core owns.
    pub fn peers(&self) -> impl Iterator<Item = &PeerState> {
        self.peers.values()
    }

    /// Every channel this core owns, with balances.
    pub fn list_channels(&self) -> Vec<ChannelDetails> {
        self.peers
            .values()
            .flat_map(|peer| {
                peer.channel_by_id.iter().map(move |(id, entry)| {
                    let c = &entry.channel;
                    ChannelDetails {
                        channel_id: *id,
                        counterparty_node_id: peer.node_id,
                        user_channel_id: entry.user_channel_id,
                        channel_value_satoshis: c.funding_satoshis(),
                        is_outbound: c.is_funder(),
                        phase: c.phase(),
                        is_usable: peer.connected
                            && peer.their_features.is_some()
                            && c.phase() == ChannelPhase::Normal,
                        short_channel_id: c.short_channel_id(),
                        balances: c.balances(),
                    }
                })
            })
            .collect()
    }

    /// Every short channel id and alias this core routes by, with the channel's peer and id
    /// (rebuilt from the channels on a restart: what a host's routing index is made from).
    pub fn short_channel_ids(
        &self,
    ) -> impl Iterator<Item = (ShortChannelId, PublicKey, ChannelId)> + '_ {
        self.scid_to_channel
            .iter()
            .map(|(scid, (node_id, channel_id))| (*scid, *node_id, *channel_id))
    }

    /// Read access to one channel (for tests and inspection).
    pub fn channel(&self, node_id: &PublicKey, channel_id: &ChannelId) -> Option<&Channel> {
        self.peers
            .get(node_id)?
            .channel_by_id
            .get(channel_id)
            .map(|e| &e.channel)
    }

    /// Hashes `parts` under a domain tag with the node's seed: all of the node's randomness.
    fn derive(&self, tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut engine = sha256::Hash::engine();
        engine.input(b"lnshard/");
        engine.input(tag);
        engine.input(&self.seed);
        for part in parts {
            engine.input(&(part.len() as u64).to_be_bytes());
            engine.input(part);
        }
        sha256::Hash::from_engine(engine).to_byte_array()
    }

    /// Fresh random bytes for something we create with `node_id`: seed, peer, the peer's
    /// draw counter and the best block hash (so a peer forgotten and met again in a later
    /// block never gets the same draws).
    fn peer_random(&mut self, node_id: &PublicKey, tag: &[u8]) -> [u8; 32] {
        let counter = match self.peers.get_mut(node_id) {
            Some(peer) => {
                peer.random_draws += 1;
                self.dirty.node = true;
                peer.random_draws
            }
            None => 0,
        };
        let hash = self.best_hash.to_byte_array();
        self.derive(tag, &[&node_id.serialize(), &counter.to_be_bytes(), &hash])
    }

    /// Keys for a new channel with `node_id`, and the key index they were derived with
    /// (`None` for the forced keys of the test mode, which records then store).
    ///
    /// Keys are `derive_peer_channel_keys(seed, node_id, index)`; the index is 64 bits of
    /// the peer's draw ([`NodeCore::peer_random`]: seed, peer, the peer's persisted draw
    /// counter, best block hash), as earlier versions drew it. Why not a node counter: a
    /// peer's draws must not depend on which shard owns it or on other peers (the same
    /// peers and inputs give the same channels on any shard count), and shards share the
    /// seed. Why it does not repeat: the peer's id is an input of the derivation, so only
    /// one peer's indices could collide; for that peer the draw counter only grows while it
    /// is known (it is stored in the node record, merged with the maximum across shards),
    /// and the best block hash separates a peer forgotten and met again in a later block.
    /// The one case left is a peer pruned (no channel, disconnected) and met again within
    /// the same block, whose counter restarts: the same as before format version 3.
    fn next_keys(&mut self, node_id: &PublicKey) -> (crate::keys::ChannelKeys, Option<u64>) {
        let r = self.peer_random(node_id, b"channel-keys");
        if let Some(keys) = &self.forced_channel_keys {
            return (keys.clone(), None);
        }
        let index = u64::from_be_bytes(r[..8].try_into().expect("8 of 32 bytes"));
        let keys = derive_peer_channel_keys(&self.seed, node_id, index);
        (keys, Some(index))
    }

    /// A fresh P2WPKH script of ours for the closing output of a channel with `node_id`.
    fn fresh_shutdown_script(&mut self, node_id: &PublicKey) -> ScriptBuf {
        let mut bytes = self.peer_random(node_id, b"shutdown-key");
        let secret = loop {
            if let Ok(secret) = SecretKey::from_slice(&bytes) {
                break secret;
            }
            bytes = sha256::Hash::hash(&bytes).to_byte_array();
        };
        let pubkey = bitcoin::CompressedPublicKey(PublicKey::from_secret_key(&self.secp, &secret));
        ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash())
    }

    fn push_event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    fn send(&mut self, node_id: PublicKey, msg: Message) {
        self.outputs.push_back(Output::SendMessage { node_id, msg });
    }

    fn send_error(&mut self, node_id: PublicKey, channel_id: ChannelId, text: &str) {
        self.send(node_id, Message::Error(ErrorMessage::new(channel_id, text)));
    }

    /// Broadcasts a transaction.
    fn broadcast(&mut self, tx: Transaction) {
        self.push_event(Event::BroadcastTransaction { tx });
    }
}
