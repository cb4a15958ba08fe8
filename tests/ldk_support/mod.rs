//! A real LDK node (the `lightning` crate's `ChannelManager` and `ChainMonitor`) driven purely
//! through wire bytes, to be the *other* node in interoperability tests.
//!
//! # Model
//!
//! There is no network, no Noise transport and no LDK `PeerManager`: the test moves messages.
//! A message is always a BOLT 1 message as it appears inside a BOLT 8 transport message: a
//! 2-byte big-endian type, then the payload.
//!
//! * Connect: [`LdkNode::init_bytes`] is LDK's `init` for a peer; feed the peer's `init` to
//!   [`LdkNode::peer_connected`] (which checks required feature bits and the `networks` TLV as
//!   LDK's `PeerManager` would, then tells the `ChannelManager`). After a disconnect, call
//!   [`LdkNode::peer_disconnected`] and connect again: LDK then sends `channel_reestablish`.
//! * Inbound: [`LdkNode::handle_message`] decodes the bytes with LDK's own deserializer for
//!   the type (`LengthReadable`) and calls the matching `ChannelMessageHandler` method. `ping`
//!   is answered with a `pong`, `pong` and `warning` are only recorded.
//! * Outbound: [`LdkNode::drain_messages`] first runs LDK's pending HTLC processing, then
//!   returns what LDK wants sent as `(destination, bytes)`, each encoded by LDK's own
//!   `Writeable`, in `PeerManager` order. [`wire::DISCONNECT`] (empty bytes) marks LDK asking for
//!   the connection to close. Private-channel `channel_update` (258) is included as bytes.
//! * Events: [`LdkNode::drain_events`] returns LDK's events as [`LdkEvent`]. It answers
//!   `FundingGenerationReady` itself (a real, signed-looking segwit funding transaction
//!   spending a fake UTXO; see [`LdkNode::funding_txs`]) and accepts inbound channel requests
//!   when manual acceptance is configured.
//! * Chain: a shared [`FakeChain`]; [`LdkNode::sync_to`] feeds a node every block it has not
//!   seen (`Confirm::transactions_confirmed` + `best_block_updated` on both the
//!   `ChannelManager` and the `ChainMonitor`). What LDK broadcasts is recorded in
//!   [`LdkNode::broadcaster`]; mining it is the test's business.
//! * Payments: the payee calls [`LdkNode::create_inbound_payment`]; the payer calls
//!   [`LdkNode::send_payment_along`] with explicit hops (the [`FixedRouter`] returns exactly
//!   them); the payee sees [`LdkEvent::PaymentClaimable`] carrying the preimage and calls
//!   [`LdkNode::claim_funds`] (or [`LdkNode::fail_htlc_backwards`]).
//!
//! # Typical use (our node as `us`, LDK as `ldk`)
//!
//! ```text
//! let mut chain = FakeChain::new();
//! chain.mine_empty(101);
//! let ldk = LdkNode::new("LDK", 1, LdkNode::config(false), &chain);
//! ldk.peer_connected(our_id, &our_init_bytes, true)?;       // then send ldk.init_bytes(our_id)
//! loop {                                                     // until both sides are quiet
//!     for (to, bytes) in ldk.drain_messages() { /* to == our_id; is_disconnect(&bytes)? */ }
//!     ldk.handle_message(our_id, &bytes_from_us)?;
//!     for event in ldk.drain_events() { /* ChannelReady, PaymentClaimable, ... */ }
//! }
//! let funding = ldk.broadcaster.take();                      // when LDK funds
//! chain.mine(funding); chain.mine_empty(5); ldk.sync_to(&chain);
//! ```
//!
//! LDK behaviour worth knowing when driving it this way (LDK 0.2.7): as fundee it asks
//! `minimum_depth` 6; it sends `channel_update` (258) for private channels after
//! `channel_ready` and after `channel_reestablish`; it requires manual acceptance of inbound
//! anchor channels (hence [`LdkNode::config`] sets it with `anchors`); `update_fulfill_htlc`
//! and `update_fail_htlc` carry `attribution_data` (TLV 1); `error`/`warning` data must be
//! UTF-8 or LDK cannot decode the message; `ping`/`pong` padding is re-written as zeros.
//!
//! Keys are deterministic: a node built with seed byte `n` always has the same node id and
//! channel keys, so a test run is reproducible (LDK's own signing is deterministic too).
//!
//! Hashes, preimages, secrets and channel ids cross this API as `lnshard::core` types, so a
//! test of our own node can compare them directly.

#![allow(dead_code)] // A shared harness: each test binary uses a part of it.

pub mod chain;
pub mod infra;
pub mod net;
pub mod validating;
pub mod wallet;
pub mod wire;

use std::sync::{Arc, Mutex};

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::secp256k1::PublicKey;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use lightning::chain::chainmonitor::ChainMonitor;
use lightning::chain::{BestBlock, Confirm, Filter};
use lightning::events::{Event, EventsProvider, ReplayEvent};
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::{
    ChainParameters, ChannelManager, PaymentId, RecipientOnionFields, Retry,
};
use lightning::ln::msgs::{self, BaseMessageHandler, ChannelMessageHandler};
use lightning::ln::types::ChannelId as LdkChannelId;
use lightning::routing::router::{PaymentParameters, RouteHop, RouteParameters};
use lightning::sign::{InMemorySigner, KeysManager, NodeSigner, Recipient};
use lightning::types::features::ChannelFeatures;
use lightning::types::payment::{
    PaymentHash as LdkPaymentHash, PaymentPreimage as LdkPaymentPreimage,
    PaymentSecret as LdkPaymentSecret,
};
use lightning::util::config::UserConfig;
use lnshard::core::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};

pub use chain::FakeChain;
pub use infra::{
    FixedFeeEstimator, FixedRouter, MemoryPersister, NoMessageRouter, RecordingBroadcaster,
    TestLogger,
};
#[allow(unused_imports)] // Each test binary uses a part of the harness.
pub use wire::{is_disconnect, ldk_decode, ldk_frame, ldk_reencode, split_type};

/// The feerate every node's estimator starts at (sat per 1000 weight).
pub const DEFAULT_FEERATE_PER_KW: u32 = 1000;

/// The final CLTV delta the harness asks for when paying (LDK's minimum is 42).
pub const FINAL_CLTV_EXPIRY_DELTA: u32 = 42;

/// The `ChainMonitor` type of an [`LdkNode`].
pub type LdkChainMonitor = ChainMonitor<
    InMemorySigner,
    Arc<dyn Filter + Send + Sync>,
    Arc<RecordingBroadcaster>,
    Arc<FixedFeeEstimator>,
    Arc<TestLogger>,
    Arc<MemoryPersister>,
    Arc<KeysManager>,
>;

/// The `ChannelManager` type of an [`LdkNode`].
pub type LdkChannelManager = ChannelManager<
    Arc<LdkChainMonitor>,
    Arc<RecordingBroadcaster>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<FixedFeeEstimator>,
    Arc<FixedRouter>,
    Arc<NoMessageRouter>,
    Arc<TestLogger>,
>;

/// LDK's events, reduced to what interop tests look at. Everything else is
/// [`LdkEvent::Other`] with LDK's `Debug` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdkEvent {
    /// LDK asked for a funding transaction; the harness built `funding_tx` and handed it to
    /// `funding_transaction_generated` (LDK broadcasts it after `funding_signed`).
    FundingGenerated {
        /// The temporary channel id.
        temporary_channel_id: ChannelId,
        /// The peer.
        counterparty: PublicKey,
        /// The transaction given to LDK.
        funding_tx: Transaction,
    },
    /// An inbound channel request the harness accepted (manual acceptance configured).
    InboundChannelAccepted {
        /// The temporary channel id.
        temporary_channel_id: ChannelId,
        /// The peer.
        counterparty: PublicKey,
    },
    /// Funding is signed both ways; waiting for confirmations.
    ChannelPending {
        /// The channel id.
        channel_id: ChannelId,
        /// The peer.
        counterparty: PublicKey,
        /// The funding transaction id.
        funding_txid: Txid,
    },
    /// The channel is usable.
    ChannelReady {
        /// The channel id.
        channel_id: ChannelId,
        /// The peer.
        counterparty: PublicKey,
        /// Whether the negotiated type is `option_anchors_zero_fee_htlc_tx`.
        anchors: bool,
    },
    /// An incoming payment can be claimed (with `claim_funds(preimage)`).
    PaymentClaimable {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The amount received.
        amount_msat: u64,
        /// The preimage, when LDK created the invoice (always, with `create_inbound_payment`).
        preimage: Option<PaymentPreimage>,
    },
    /// An incoming payment was claimed.
    PaymentClaimed {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The amount claimed.
        amount_msat: u64,
    },
    /// An outgoing payment succeeded: the payee revealed the preimage.
    PaymentSent {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The preimage.
        preimage: PaymentPreimage,
        /// The fee paid.
        fee_paid_msat: Option<u64>,
    },
    /// One path of an outgoing payment failed.
    PaymentPathFailed {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// Whether the failure is final (the payee or the route rejects it).
        permanently: bool,
        /// LDK's `PathFailure`, as `Debug` text.
        failure: String,
    },
    /// An outgoing payment failed for good.
    PaymentFailed {
        /// The payment hash.
        payment_hash: Option<PaymentHash>,
    },
    /// An HTLC we received or forwarded was failed back.
    HtlcHandlingFailed {
        /// The channel it came from.
        channel_id: ChannelId,
    },
    /// A channel closed.
    ChannelClosed {
        /// The channel id.
        channel_id: ChannelId,
        /// LDK's `ClosureReason`, in words.
        reason: String,
    },
    /// Any other event, as LDK's `Debug` text.
    Other(String),
}

/// One hop of a route given to [`LdkNode::send_payment_along`]: the node reached over
/// `short_channel_id`, what it gets paid (for the last hop: the amount), and the CLTV delta
/// (for the last hop: the final CLTV delta).
#[derive(Debug, Clone, Copy)]
pub struct Hop {
    /// The hop's node.
    pub node_id: PublicKey,
    /// The channel leading to it (an outbound scid or alias for the first hop).
    pub short_channel_id: u64,
    /// Fee for this hop, or the amount for the last hop.
    pub fee_msat: u64,
    /// CLTV delta of this hop, or the final CLTV delta for the last hop.
    pub cltv_expiry_delta: u32,
}

/// A real LDK node. See the module documentation for the model.
pub struct LdkNode {
    /// A name for logs and panics.
    pub name: String,
    /// The node id.
    pub node_id: PublicKey,
    /// The configuration the manager was built with.
    pub config: UserConfig,
    /// LDK's channel manager.
    pub manager: Arc<LdkChannelManager>,
    /// LDK's chain monitor (holding the channel monitors).
    pub chain_monitor: Arc<LdkChainMonitor>,
    /// The deterministic keys.
    pub keys: Arc<KeysManager>,
    /// Records what LDK broadcasts.
    pub broadcaster: Arc<RecordingBroadcaster>,
    /// The fixed-feerate estimator (change it with `fee_estimator.set`).
    pub fee_estimator: Arc<FixedFeeEstimator>,
    /// The router returning the route of the last `send_payment_along`.
    pub router: Arc<FixedRouter>,
    /// The in-memory monitor persister.
    pub persister: Arc<MemoryPersister>,
    /// The logger (set `LDK_LOG=1` to see it live).
    pub logger: Arc<TestLogger>,
    synced_height: Mutex<u32>,
    outbox: Mutex<Vec<(PublicKey, Vec<u8>)>>,
    skipped: Mutex<Vec<String>>,
    received_warnings: Mutex<Vec<(PublicKey, String)>>,
    funding_txs: Mutex<Vec<Transaction>>,
}

impl LdkNode {
    /// A node whose keys derive from `[seed; 32]` (`seed` non-zero and distinct per node),
    /// with `config`, starting at `chain`'s tip, its estimator at [`DEFAULT_FEERATE_PER_KW`].
    pub fn new(name: &str, seed: u8, config: UserConfig, chain: &FakeChain) -> LdkNode {
        LdkNode::new_at(name, seed, config, chain.tip_hash(), chain.height())
    }

    /// As [`LdkNode::new`], starting at the block `tip_hash` at `height` of any chain (a
    /// [`lnshard_testkit::chain::ValidatingChain`], say); feed it blocks with
    /// [`LdkNode::connect_block`].
    pub fn new_at(
        name: &str,
        seed: u8,
        config: UserConfig,
        tip_hash: bitcoin::BlockHash,
        height: u32,
    ) -> LdkNode {
        assert_ne!(seed, 0, "seed byte 0 is reserved");
        let logger = Arc::new(TestLogger::new(name));
        let fee_estimator = Arc::new(FixedFeeEstimator::new(DEFAULT_FEERATE_PER_KW));
        let broadcaster = Arc::new(RecordingBroadcaster::default());
        let persister = Arc::new(MemoryPersister::default());
        let router = Arc::new(FixedRouter::default());
        // Fixed "starting time": KeysManager mixes it into its randomness, so a fixed one
        // keeps the whole run deterministic.
        let keys = Arc::new(KeysManager::new(&[seed; 32], 1_700_000_000, 0, true));
        let chain_monitor: Arc<LdkChainMonitor> = Arc::new(ChainMonitor::new(
            None,
            Arc::clone(&broadcaster),
            Arc::clone(&logger),
            Arc::clone(&fee_estimator),
            Arc::clone(&persister),
            Arc::clone(&keys),
            keys.get_peer_storage_key(),
        ));
        let best_block = BestBlock::new(tip_hash, height);
        let manager = Arc::new(ChannelManager::new(
            Arc::clone(&fee_estimator),
            Arc::clone(&chain_monitor),
            Arc::clone(&broadcaster),
            Arc::clone(&router),
            Arc::new(NoMessageRouter),
            Arc::clone(&logger),
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&keys),
            config.clone(),
            ChainParameters {
                network: Network::Regtest,
                best_block,
            },
            1_700_000_000,
        ));
        let node_id = keys
            .get_node_id(Recipient::Node)
            .expect("KeysManager always has a node key");
        LdkNode {
            name: name.to_owned(),
            node_id,
            config,
            manager,
            chain_monitor,
            keys,
            broadcaster,
            fee_estimator,
            router,
            persister,
            logger,
            synced_height: Mutex::new(height),
            outbox: Mutex::new(Vec::new()),
            skipped: Mutex::new(Vec::new()),
            received_warnings: Mutex::new(Vec::new()),
            funding_txs: Mutex::new(Vec::new()),
        }
    }

    /// LDK's default configuration, with `option_anchors_zero_fee_htlc_tx` offered and
    /// accepted when `anchors` (LDK then wants to accept inbound channels manually; the
    /// harness does that in [`LdkNode::drain_events`]).
    pub fn config(anchors: bool) -> UserConfig {
        let mut config = UserConfig::default();
        if anchors {
            config
                .channel_handshake_config
                .negotiate_anchors_zero_fee_htlc_tx = true;
            config.manually_accept_inbound_channels = true;
        }
        config
    }

    // ---- connection -------------------------------------------------------------------

    /// LDK's `init` (type 16 + payload, LDK's own encoding) for `their_node_id`: its
    /// features for that peer and a `networks` TLV naming regtest, as LDK's `PeerManager`
    /// sends it.
    pub fn init_bytes(&self, their_node_id: PublicKey) -> Vec<u8> {
        let init = msgs::Init {
            features: self.manager.provided_init_features(their_node_id),
            networks: self.manager.get_chain_hashes(),
            remote_network_address: None,
        };
        ldk_frame(&init)
    }

    /// The peer's `init` arrived (`init_bytes` is the whole message, type 16 first). Checks
    /// what LDK's `PeerManager` checks (the `networks` TLV, when present, names our chain;
    /// the peer requires no feature we do not know; the peer supports, as optional or
    /// required, every feature we require: data_loss_protect, var_onion_optin,
    /// static_remotekey, payment_secret, channel_type), then tells the `ChannelManager`
    /// (which also insists on static_remotekey) and the `ChainMonitor`. `inbound`:
    /// whether the peer opened the connection. On `Err` the connection must be dropped.
    pub fn peer_connected(
        &self,
        their_node_id: PublicKey,
        init_bytes: &[u8],
        inbound: bool,
    ) -> Result<(), String> {
        let (t, payload) = split_type(init_bytes)?;
        if t != 16 {
            return Err(format!("{}: expected init (16), got type {t}", self.name));
        }
        let init: msgs::Init = ldk_decode(payload, "init")?;
        if let Some(networks) = &init.networks {
            let ours = self.manager.get_chain_hashes().unwrap_or_default();
            if !networks.iter().any(|n| ours.contains(n)) {
                return Err(format!("{}: peer is on none of our chains", self.name));
            }
        }
        let ours = self.manager.provided_init_features(their_node_id);
        if init.features.requires_unknown_bits_from(&ours) {
            return Err(format!(
                "{}: peer requires features unknown to us: {:?}",
                self.name, init.features
            ));
        }
        if ours.requires_unknown_bits_from(&init.features) {
            return Err(format!(
                "{}: we require features the peer lacks: {:?}",
                self.name,
                ours.required_unknown_bits_from(&init.features)
            ));
        }
        self.manager
            .peer_connected(their_node_id, &init, inbound)
            .map_err(|()| format!("{}: ChannelManager refused the peer", self.name))?;
        self.chain_monitor
            .peer_connected(their_node_id, &init, inbound)
            .map_err(|()| format!("{}: ChainMonitor refused the peer", self.name))?;
        Ok(())
    }

    /// The connection to `their_node_id` dropped.
    pub fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.manager.peer_disconnected(their_node_id);
        self.chain_monitor.peer_disconnected(their_node_id);
    }

    /// A message (type + payload) from `from`: decoded with LDK's own deserializer and
    /// handed to the matching `ChannelMessageHandler` method. Handles the 20 BOLT 1/2 types
    /// (init only through [`LdkNode::peer_connected`]), `channel_update` (258),
    /// `announcement_signatures` (259), `peer_storage` (7) and `peer_storage_retrieval` (9).
    /// `Err` when LDK cannot decode the bytes (the connection must then be dropped, as LDK's
    /// `PeerManager` would) or the type is not handled.
    pub fn handle_message(&self, from: PublicKey, bytes: &[u8]) -> Result<(), String> {
        let (t, payload) = split_type(bytes)?;
        let m = &self.manager;
        macro_rules! handle {
            ($ty:ty, $name:literal, $method:ident) => {{
                let msg: $ty = ldk_decode(payload, $name)?;
                m.$method(from, &msg);
            }};
            ($ty:ty, $name:literal, $method:ident, by_value) => {{
                let msg: $ty = ldk_decode(payload, $name)?;
                m.$method(from, msg);
            }};
        }
        match t {
            1 => {
                let msg: msgs::WarningMessage = ldk_decode(payload, "warning")?;
                self.received_warnings
                    .lock()
                    .expect("not poisoned")
                    .push((from, msg.data));
            }
            7 => handle!(
                msgs::PeerStorage,
                "peer_storage",
                handle_peer_storage,
                by_value
            ),
            9 => handle!(
                msgs::PeerStorageRetrieval,
                "peer_storage_retrieval",
                handle_peer_storage_retrieval,
                by_value
            ),
            16 => return Err(format!("{}: init goes to peer_connected", self.name)),
            17 => handle!(msgs::ErrorMessage, "error", handle_error),
            18 => {
                let ping: msgs::Ping = ldk_decode(payload, "ping")?;
                if ping.ponglen < 65532 {
                    let pong = msgs::Pong {
                        byteslen: ping.ponglen,
                    };
                    self.outbox
                        .lock()
                        .expect("not poisoned")
                        .push((from, ldk_frame(&pong)));
                }
            }
            19 => {
                let _: msgs::Pong = ldk_decode(payload, "pong")?;
            }
            32 => handle!(msgs::OpenChannel, "open_channel", handle_open_channel),
            33 => handle!(msgs::AcceptChannel, "accept_channel", handle_accept_channel),
            34 => handle!(
                msgs::FundingCreated,
                "funding_created",
                handle_funding_created
            ),
            35 => handle!(msgs::FundingSigned, "funding_signed", handle_funding_signed),
            36 => handle!(msgs::ChannelReady, "channel_ready", handle_channel_ready),
            38 => handle!(msgs::Shutdown, "shutdown", handle_shutdown),
            39 => handle!(msgs::ClosingSigned, "closing_signed", handle_closing_signed),
            128 => handle!(
                msgs::UpdateAddHTLC,
                "update_add_htlc",
                handle_update_add_htlc
            ),
            130 => handle!(
                msgs::UpdateFulfillHTLC,
                "update_fulfill_htlc",
                handle_update_fulfill_htlc,
                by_value
            ),
            131 => handle!(
                msgs::UpdateFailHTLC,
                "update_fail_htlc",
                handle_update_fail_htlc
            ),
            132 => handle!(
                msgs::CommitmentSigned,
                "commitment_signed",
                handle_commitment_signed
            ),
            133 => handle!(msgs::RevokeAndACK, "revoke_and_ack", handle_revoke_and_ack),
            134 => handle!(msgs::UpdateFee, "update_fee", handle_update_fee),
            135 => handle!(
                msgs::UpdateFailMalformedHTLC,
                "update_fail_malformed_htlc",
                handle_update_fail_malformed_htlc
            ),
            136 => handle!(
                msgs::ChannelReestablish,
                "channel_reestablish",
                handle_channel_reestablish
            ),
            258 => handle!(msgs::ChannelUpdate, "channel_update", handle_channel_update),
            259 => handle!(
                msgs::AnnouncementSignatures,
                "announcement_signatures",
                handle_announcement_signatures
            ),
            other => {
                return Err(format!("{}: message type {other} not handled", self.name));
            }
        }
        Ok(())
    }

    /// Everything LDK wants sent, as `(destination, bytes)` in sending order (LDK's own
    /// encoding, type first); [`wire::DISCONNECT`] (empty) where LDK asks to drop the connection.
    /// Runs LDK's pending HTLC processing first, as its background processor would.
    pub fn drain_messages(&self) -> Vec<(PublicKey, Vec<u8>)> {
        self.manager.process_pending_htlc_forwards();
        let mut out = std::mem::take(&mut *self.outbox.lock().expect("not poisoned"));
        let mut skipped = self.skipped.lock().expect("not poisoned");
        wire::events_to_bytes(
            self.manager.get_and_clear_pending_msg_events(),
            &mut out,
            &mut skipped,
        );
        wire::events_to_bytes(
            self.chain_monitor.get_and_clear_pending_msg_events(),
            &mut out,
            &mut skipped,
        );
        out
    }

    /// Send events [`LdkNode::drain_messages`] could not turn into bytes for one peer
    /// (gossip broadcasts; LDK's `Debug` text), so far.
    pub fn skipped_events(&self) -> Vec<String> {
        self.skipped.lock().expect("not poisoned").clone()
    }

    /// The `warning` messages received, with their text.
    pub fn received_warnings(&self) -> Vec<(PublicKey, String)> {
        self.received_warnings.lock().expect("not poisoned").clone()
    }

    // ---- events -----------------------------------------------------------------------

    /// LDK's pending events (from the `ChannelManager` then the `ChainMonitor`), simplified.
    /// `FundingGenerationReady` is answered here (see [`LdkEvent::FundingGenerated`]), and so
    /// is `OpenChannelRequest` (accepted, see [`LdkEvent::InboundChannelAccepted`]).
    pub fn drain_events(&self) -> Vec<LdkEvent> {
        self.manager.process_pending_htlc_forwards();
        let raw = Mutex::new(Vec::new());
        let collect = |event: Event| -> Result<(), ReplayEvent> {
            raw.lock().expect("not poisoned").push(event);
            Ok(())
        };
        self.manager.process_pending_events(&collect);
        self.chain_monitor.process_pending_events(&collect);
        let raw = raw.into_inner().expect("not poisoned");
        raw.into_iter().map(|e| self.simplify(e)).collect()
    }

    fn simplify(&self, event: Event) -> LdkEvent {
        match event {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } => {
                let funding_tx = self.build_funding_tx(channel_value_satoshis, output_script);
                self.manager
                    .funding_transaction_generated(
                        temporary_channel_id,
                        counterparty_node_id,
                        funding_tx.clone(),
                    )
                    .unwrap_or_else(|e| {
                        panic!("{}: funding_transaction_generated: {e:?}", self.name)
                    });
                LdkEvent::FundingGenerated {
                    temporary_channel_id: core_channel_id(temporary_channel_id),
                    counterparty: counterparty_node_id,
                    funding_tx,
                }
            }
            Event::OpenChannelRequest {
                temporary_channel_id,
                counterparty_node_id,
                ..
            } => {
                self.manager
                    .accept_inbound_channel(&temporary_channel_id, &counterparty_node_id, 0, None)
                    .unwrap_or_else(|e| panic!("{}: accept_inbound_channel: {e:?}", self.name));
                LdkEvent::InboundChannelAccepted {
                    temporary_channel_id: core_channel_id(temporary_channel_id),
                    counterparty: counterparty_node_id,
                }
            }
            Event::ChannelPending {
                channel_id,
                counterparty_node_id,
                funding_txo,
                ..
            } => LdkEvent::ChannelPending {
                channel_id: core_channel_id(channel_id),
                counterparty: counterparty_node_id,
                funding_txid: funding_txo.txid,
            },
            Event::ChannelReady {
                channel_id,
                counterparty_node_id,
                channel_type,
                ..
            } => LdkEvent::ChannelReady {
                channel_id: core_channel_id(channel_id),
                counterparty: counterparty_node_id,
                anchors: channel_type.supports_anchors_zero_fee_htlc_tx(),
            },
            Event::PaymentClaimable {
                payment_hash,
                amount_msat,
                purpose,
                ..
            } => LdkEvent::PaymentClaimable {
                payment_hash: PaymentHash(payment_hash.0),
                amount_msat,
                preimage: purpose.preimage().map(|p| PaymentPreimage(p.0)),
            },
            Event::PaymentClaimed {
                payment_hash,
                amount_msat,
                ..
            } => LdkEvent::PaymentClaimed {
                payment_hash: PaymentHash(payment_hash.0),
                amount_msat,
            },
            Event::PaymentSent {
                payment_hash,
                payment_preimage,
                fee_paid_msat,
                ..
            } => LdkEvent::PaymentSent {
                payment_hash: PaymentHash(payment_hash.0),
                preimage: PaymentPreimage(payment_preimage.0),
                fee_paid_msat,
            },
            Event::PaymentPathFailed {
                payment_hash,
                payment_failed_permanently,
                failure,
                ..
            } => LdkEvent::PaymentPathFailed {
                payment_hash: PaymentHash(payment_hash.0),
                permanently: payment_failed_permanently,
                failure: format!("{failure:?}"),
            },
            Event::PaymentFailed { payment_hash, .. } => LdkEvent::PaymentFailed {
                payment_hash: payment_hash.map(|h| PaymentHash(h.0)),
            },
            Event::HTLCHandlingFailed {
                prev_channel_id, ..
            } => LdkEvent::HtlcHandlingFailed {
                channel_id: core_channel_id(prev_channel_id),
            },
            Event::ChannelClosed {
                channel_id, reason, ..
            } => LdkEvent::ChannelClosed {
                channel_id: core_channel_id(channel_id),
                reason: reason.to_string(),
            },
            other => LdkEvent::Other(format!("{other:?}")),
        }
    }

    /// A funding transaction paying `value_sat` to `script`, spending a fake segwit UTXO
    /// unique to this node and call (LDK requires witness inputs and a final locktime; it
    /// never sees the spent output, so the witness need not verify).
    fn build_funding_tx(&self, value_sat: u64, script: ScriptBuf) -> Transaction {
        let mut txs = self.funding_txs.lock().expect("not poisoned");
        let mut seed = self.node_id.serialize().to_vec();
        seed.extend_from_slice(&(txs.len() as u64).to_be_bytes());
        let fake_prev = Txid::from_raw_hash(sha256d::Hash::hash(&seed));
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: fake_prev,
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::from_slice(&[vec![0x30; 72], self.node_id.serialize().to_vec()]),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value_sat),
                script_pubkey: script,
            }],
        };
        txs.push(tx.clone());
        tx
    }

    /// The funding transactions this node built, oldest first.
    pub fn funding_txs(&self) -> Vec<Transaction> {
        self.funding_txs.lock().expect("not poisoned").clone()
    }

    // ---- chain ------------------------------------------------------------------------

    /// Feeds every block of `chain` above the last one this node saw: for each,
    /// `transactions_confirmed` (when it holds transactions) and `best_block_updated`, on
    /// the `ChannelManager` then the `ChainMonitor`.
    pub fn sync_to(&self, chain: &FakeChain) {
        let from = self.synced_height() + 1;
        for height in from..=chain.height() {
            self.connect_block(chain.block(height).expect("height <= tip"), height);
        }
    }

    /// Feeds one block at `height` (the next one, or a reorg's replacement): its
    /// transactions through `transactions_confirmed` (when it holds any) and its header
    /// through `best_block_updated`, on the `ChannelManager` then the `ChainMonitor`.
    pub fn connect_block(&self, block: &Block, height: u32) {
        let txdata: Vec<(usize, &Transaction)> = block.txdata.iter().enumerate().collect();
        let confirms: [&dyn Confirm; 2] = [&*self.manager, &*self.chain_monitor];
        for c in confirms {
            if !txdata.is_empty() {
                c.transactions_confirmed(&block.header, &txdata, height);
            }
            c.best_block_updated(&block.header, height);
        }
        *self.synced_height.lock().expect("not poisoned") = height;
    }

    /// Mines `tx` into a new block of `chain` and feeds this node up to the tip; returns
    /// the block height. (Other nodes learn of it with their own `sync_to`.)
    pub fn confirm_transaction(&self, chain: &mut FakeChain, tx: Transaction) -> u32 {
        let height = chain.mine(vec![tx]);
        self.sync_to(chain);
        height
    }

    /// Mines `n` empty blocks and feeds this node up to the tip; returns the tip height.
    pub fn connect_blocks(&self, chain: &mut FakeChain, n: u32) -> u32 {
        chain.mine_empty(n);
        self.sync_to(chain);
        chain.height()
    }

    /// The last height fed to this node.
    pub fn synced_height(&self) -> u32 {
        *self.synced_height.lock().expect("not poisoned")
    }

    // ---- channel and payment API ------------------------------------------------------

    /// Opens a channel of `sats` to `their_node_id`, pushing `push_msat`; returns the
    /// temporary channel id (the `open_channel` then appears in `drain_messages`).
    pub fn create_channel(
        &self,
        their_node_id: PublicKey,
        sats: u64,
        push_msat: u64,
    ) -> Result<ChannelId, String> {
        self.manager
            .create_channel(their_node_id, sats, push_msat, 42, None, None)
            .map(core_channel_id)
            .map_err(|e| format!("{}: create_channel: {e:?}", self.name))
    }

    /// LDK's view of its channels.
    pub fn channels(&self) -> Vec<ChannelDetails> {
        self.manager.list_channels()
    }

    /// The usable channel with `peer` (panics if there is none or several).
    pub fn usable_channel_with(&self, peer: PublicKey) -> ChannelDetails {
        let mut usable: Vec<ChannelDetails> = self
            .manager
            .list_channels_with_counterparty(&peer)
            .into_iter()
            .filter(|c| c.is_usable)
            .collect();
        assert_eq!(
            usable.len(),
            1,
            "{}: expected one usable channel",
            self.name
        );
        usable.remove(0)
    }

    /// A payment hash and secret for `amount_msat`, valid for an hour; LDK derives and
    /// remembers the preimage (it comes back in [`LdkEvent::PaymentClaimable`]).
    pub fn create_inbound_payment(&self, amount_msat: u64) -> (PaymentHash, PaymentSecret) {
        let (hash, secret) = self
            .manager
            .create_inbound_payment(Some(amount_msat), 3600, None)
            .unwrap_or_else(|()| panic!("{}: create_inbound_payment", self.name));
        (PaymentHash(hash.0), PaymentSecret(secret.0))
    }

    /// Sends `hops.last().fee_msat` to `hops.last().node_id` along exactly `hops` (set in
    /// the [`FixedRouter`], then `send_payment` with no retry). Every hop is given this
    /// node's own node features (what an LDK peer with the same config has; the onion format
    /// does not depend on them in LDK 0.2) and empty channel features. Returns the payment id
    /// (the payment hash's bytes).
    pub fn send_payment_along(
        &self,
        hops: &[Hop],
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
    ) -> Result<PaymentId, String> {
        let last = hops.last().ok_or("a route needs at least one hop")?;
        let route_hops = hops
            .iter()
            .map(|h| RouteHop {
                pubkey: h.node_id,
                node_features: self.manager.provided_node_features(),
                short_channel_id: h.short_channel_id,
                channel_features: ChannelFeatures::empty(),
                fee_msat: h.fee_msat,
                cltv_expiry_delta: h.cltv_expiry_delta,
                maybe_announced_channel: false,
            })
            .collect();
        self.router.set_route(route_hops);
        let params = RouteParameters::from_payment_params_and_value(
            PaymentParameters::from_node_id(last.node_id, last.cltv_expiry_delta),
            last.fee_msat,
        );
        let payment_id = PaymentId(payment_hash.0);
        self.manager
            .send_payment(
                LdkPaymentHash(payment_hash.0),
                RecipientOnionFields::secret_only(LdkPaymentSecret(payment_secret.0)),
                payment_id,
                params,
                Retry::Attempts(0),
            )
            .map_err(|e| format!("{}: send_payment: {e:?}", self.name))?;
        Ok(payment_id)
    }

    /// Pays `amount_msat` to the direct peer `payee` over the usable channel with it.
    pub fn send_direct_payment(
        &self,
        payee: PublicKey,
        amount_msat: u64,
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
    ) -> Result<PaymentId, String> {
        let scid = self
            .usable_channel_with(payee)
            .get_outbound_payment_scid()
            .ok_or("the channel has no outbound scid yet")?;
        self.send_payment_along(
            &[Hop {
                node_id: payee,
                short_channel_id: scid,
                fee_msat: amount_msat,
                cltv_expiry_delta: FINAL_CLTV_EXPIRY_DELTA,
            }],
            payment_hash,
            payment_secret,
        )
    }

    /// Claims a claimable payment with its preimage.
    pub fn claim_funds(&self, preimage: PaymentPreimage) {
        self.manager.claim_funds(LdkPaymentPreimage(preimage.0));
    }

    /// Fails back every claimable HTLC with `payment_hash` (incorrect_or_unknown_payment_details).
    pub fn fail_htlc_backwards(&self, payment_hash: PaymentHash) {
        self.manager
            .fail_htlc_backwards(&LdkPaymentHash(payment_hash.0));
    }

    /// Starts a cooperative close (`shutdown`) of `channel_id` with `peer`.
    pub fn close_channel(&self, channel_id: ChannelId, peer: PublicKey) -> Result<(), String> {
        self.manager
            .close_channel(&LdkChannelId(channel_id.0), &peer)
            .map_err(|e| format!("{}: close_channel: {e:?}", self.name))
    }

    /// Force-closes `channel_id` with `peer`: broadcasts the latest commitment and sends
    /// `error` to the peer.
    pub fn force_close(&self, channel_id: ChannelId, peer: PublicKey) -> Result<(), String> {
        self.manager
            .force_close_broadcasting_latest_txn(
                &LdkChannelId(channel_id.0),
                &peer,
                "force close by test".to_owned(),
            )
            .map_err(|e| format!("{}: force_close: {e:?}", self.name))
    }

    /// LDK's once-a-minute timer. Among other things it re-reads the fee estimator and, as
    /// funder, queues `update_fee` where the feerate rose or halved.
    pub fn timer_tick(&self) {
        self.manager.timer_tick_occurred();
    }
}

/// An LDK channel id as ours.
pub fn core_channel_id(id: LdkChannelId) -> ChannelId {
    ChannelId(id.0)
}
