//! Drivers for tests, benchmarks and demos: a routing node (the engine, threaded or
//! simulated, or anything implementing [`Hub`]) with plain `NodeCore` peers around it. Every
//! message travels as encoded bytes, encrypted with BOLT 8 on each peer's connection to the
//! hub ([`link`]: the hub takes peers only as ciphertext, as from any host), a fake chain mines what is broadcast, and a ledger
//! checks conservation of funds and the fate of every HTLC ([`Net::check`]).
//!
//! This is test tooling, not a production API: keys come from fixed tags
//! ([`secret`], [`hub_secret`]), funding transactions spend made-up coins
//! ([`fake_funding_tx`]), and a broken invariant of the scenario (an API call refused, a
//! network that never quiesces) panics with a message rather than returning an error. The
//! engine's own tests (`crates/shard-engine/tests/`) and the root package's benchmark
//! workloads (`lnshard_bench`) drive the engine through it; [`Recorder`] keeps the wire
//! traffic a replaying benchmark feeds back.

#[cfg(feature = "consensus")]
pub mod chain;
pub mod hub;
pub mod link;
#[cfg(feature = "consensus")]
pub mod onchain;
pub mod sockets;
pub mod wallet;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use lightning_core::bitcoin::absolute::LockTime;
use lightning_core::bitcoin::block::{Header, Version as BlockVersion};
use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::transaction::Version;
use lightning_core::bitcoin::{
    Amount, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Txid, Witness,
};
use lightning_core::node::{
    Event, ForwardingPolicy, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop,
};
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};
use lightning_core::wire::Message;
use shard_engine::{EngineConfig, EngineError, PeerOutput};

pub use hub::{Hub, Threaded};
pub use link::Link;
pub use sockets::{MemoryWire, Sockets};

/// One million satoshis: the capacity of every channel [`Net::open_channels`] opens.
pub const SATS: u64 = 1_000_000;

/// A secret key derived from `tag` (SHA256 of it): the same tag gives the same key.
pub fn secret(tag: &[u8]) -> SecretKey {
    SecretKey::from_slice(&sha256::Hash::hash(tag).to_byte_array()).expect("valid key")
}

/// The node secret of peer `i` of a [`Net`].
pub fn peer_secret(i: usize) -> SecretKey {
    secret(format!("peer-{i}").as_bytes())
}

/// The seed of peer `i` of a [`Net`].
pub fn peer_seed(i: usize) -> [u8; 32] {
    sha256::Hash::hash(format!("peer-seed-{i}").as_bytes()).to_byte_array()
}

/// The routing node's (hub's) node secret.
pub fn hub_secret() -> SecretKey {
    secret(b"hub-node-secret")
}

/// The routing node's (hub's) seed.
pub fn hub_seed() -> [u8; 32] {
    sha256::Hash::hash(b"hub-seed").to_byte_array()
}

/// The chain tip every test starts at (the fake chain's height 100).
pub fn genesis() -> BlockHash {
    BlockHash::all_zeros()
}

/// The engine configuration of every harness run: `shards` shards, default node settings.
pub fn engine_config(shards: usize) -> EngineConfig {
    EngineConfig {
        shards,
        node: NodeConfig::default(),
        ..EngineConfig::default()
    }
}

/// Who a payment or balance belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Who {
    /// The routing node.
    Hub,
    /// Peer `i` of [`Net::peers`].
    Peer(usize),
}

/// A peer: a plain NodeCore.
pub struct Peer {
    /// The peer's node.
    pub core: NodeCore,
    /// Every event the peer's node raised, in order.
    pub events: Vec<Event>,
}

/// A channel between the hub and a peer.
#[derive(Debug, Clone, Copy)]
pub struct Chan {
    /// The peer's index in [`Net::peers`].
    pub peer: usize,
    /// The channel's id.
    pub channel_id: ChannelId,
    /// Its short channel id (confirmed).
    pub scid: ShortChannelId,
}

/// A payment [`Net::start_payment`] started, and what became of it.
#[derive(Debug, Clone)]
pub struct PaymentRecord {
    /// Who pays.
    pub payer: Who,
    /// Who is paid.
    pub payee: Who,
    /// The amount the payee receives.
    pub amount_msat: u64,
    /// The routing node's fee (0 when it is payer or payee).
    pub fee_msat: u64,
    /// The payment hash.
    pub hash: PaymentHash,
    /// PaymentSent (true) / PaymentFailed (false) events seen.
    pub outcomes: Vec<bool>,
}

/// The fake chain.
pub struct Chain {
    /// The height of the tip.
    pub height: u32,
    /// The tip's hash.
    pub tip: BlockHash,
    /// Broadcast transactions waiting for the next block.
    pub mempool: Vec<Transaction>,
    /// Every transaction mined so far.
    pub confirmed: HashSet<Txid>,
}

/// The payments [`Net::start_random_payments`] starts.
#[derive(Debug, Clone, Copy)]
pub struct PaymentMix {
    /// Each amount is 1,000,000 msat plus up to this much more.
    pub extra_msat: usize,
    /// Every n-th payment comes from the hub itself (none when `None`).
    pub from_hub_every: Option<usize>,
    /// One payment in n is failed back by its payee (none when `None`).
    pub fail_one_in: Option<u64>,
}

/// The routing node `hub`, its peers, the wire between them, the fake chain and the ledger.
pub struct Net<H: Hub> {
    /// The routing node.
    pub hub: H,
    /// The peers, each a plain `NodeCore` connected to the hub only.
    pub peers: Vec<Peer>,
    index: HashMap<PublicKey, usize>,
    to_hub: Vec<VecDeque<Vec<u8>>>,
    to_peer: Vec<VecDeque<PeerOutput>>,
    /// Each peer's BOLT 8 connection to the hub (its end), while it has one.
    links: Vec<Option<Link>>,
    /// The last connection id used.
    last_conn: u64,
    /// Every event the hub raised, in order.
    pub hub_events: Vec<Event>,
    /// The fake chain.
    pub chain: Chain,
    /// The channels opened so far ([`Net::open_channels`]).
    pub channels: Vec<Chan>,
    /// Claim (true) or fail back (false) each expected payment, with its preimage.
    pub plan: HashMap<PaymentHash, (PaymentPreimage, bool)>,
    /// Claims waiting for the next `settle` (lockstep mode).
    pending_claims: Vec<(Who, PaymentHash)>,
    /// Claim as soon as a payment is claimable (inside `run`), not at `settle`.
    pub eager_claims: bool,
    /// Every payment started, by id.
    pub payments: BTreeMap<PaymentId, PaymentRecord>,
    /// `PaymentClaimed` events seen per payment hash.
    pub claimed: HashMap<PaymentHash, u32>,
    /// Fees of the hub's `PaymentForwarded` events.
    pub forwarded_fees: u64,
    /// The hub's `PaymentForwarded` events.
    pub forwarded_count: u64,
    /// Hashes whose preimage the hub learned from a downstream peer's update_fulfill_htlc.
    downstream_fulfilled: HashSet<PaymentHash>,
    /// Hashes of payments to the hub (it knows their preimage itself).
    hub_own: HashSet<PaymentHash>,
    /// Rule breaks seen while running (reported by [`Net::check`]).
    pub violations: Vec<String>,
    /// `update_fulfill_htlc` messages the hub sent.
    pub upstream_fulfills: u64,
    nonce: u64,
    /// The hub's forwarding policy (fees and CLTV delta of the routes built).
    pub policy: ForwardingPolicy,
    /// Messages to the hub refused with `Full` (backpressure seen by the caller).
    pub full_refusals: u64,
    /// Records the wire traffic (for the replaying benchmark).
    pub recorder: Option<Recorder>,
    /// With a simulated hub: the chance (per move, num/den) of cutting or restoring a random
    /// peer's connection; messages in flight on a cut connection are lost.
    pub disconnect_chance: Option<(u64, u64)>,
    /// Whether each peer is connected.
    pub connected: Vec<bool>,
    /// Connections cut so far.
    pub disconnects: u64,
    /// The hub may die between releasing an event and our reading it (a killed process):
    /// `check` does not compare forwarding events with the payments then.
    pub hub_events_lossy: bool,
    /// The error of a hub that stopped ([`EngineError::Stopped`]: a failed commit, a
    /// panicked shard), as its first refused message reported it. Messages to a stopped hub
    /// are lost, as they would be on a connection to a dead node.
    pub hub_stopped: Option<EngineError>,
    /// Times the hub crashed and restarted on its own ([`Hub::take_restarts`]): each time,
    /// every connection dropped with what was in flight, the peers were checked against the
    /// restarted hub ([`Net::peers_ahead_of`]) and reconnected.
    pub hub_restarts: u64,
    /// Channels closing is part of the scenario (on-chain tests): the hub's `ChannelClosed`
    /// events are not violations.
    pub closures_expected: bool,
    /// The test funds the hub's channels itself (from a wallet, say): the hub's
    /// `FundingGenerationReady` events are left in `hub_events`, unanswered.
    pub hub_funds_itself: bool,
    /// The validating chain every broadcast and every block goes through, when the network
    /// runs on one ([`Net::new_validating`]); `None`: the fake [`Chain`].
    #[cfg(feature = "consensus")]
    pub validating: Option<onchain::Validating>,
}

/// The hub's wire traffic with its peers: what each peer sent and when, and what the hub
/// sent each peer.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Each peer's partner (the other end of its lane), if any.
    pub partner: Vec<Option<usize>>,
    /// Hub messages each peer has processed so far.
    pub delivered: Vec<usize>,
    /// (peer, bytes, hub messages that peer had processed, hub messages its partner had
    /// processed) for every peer message, in the order peers produced them.
    pub to_hub: Vec<(usize, Vec<u8>, usize, usize)>,
    /// Every hub message to each peer, in order.
    pub from_hub: Vec<Vec<Vec<u8>>>,
}

impl<H: Hub> Net<H> {
    /// The hub and `n` peers, all connected.
    pub fn new(hub: H, n: usize) -> Self {
        Self::build(hub, n, NodeConfig::default(), 100, BlockHash::all_zeros())
    }

    /// As [`Net::new`], the peers running with node configuration `config`.
    pub fn with_peer_config(hub: H, n: usize, config: NodeConfig) -> Self {
        Self::build(hub, n, config, 100, BlockHash::all_zeros())
    }

    /// The hub and `n` peers with node configuration `config`, at chain tip
    /// `(height, tip)`, with the fake chain starting there.
    fn build(hub: H, n: usize, config: NodeConfig, height: u32, tip: BlockHash) -> Self {
        let chain = Chain {
            height,
            tip,
            mempool: Vec::new(),
            confirmed: HashSet::new(),
        };
        let peers: Vec<Peer> = (0..n)
            .map(|i| Peer {
                core: NodeCore::new(
                    peer_secret(i),
                    peer_seed(i),
                    config.clone(),
                    chain.height,
                    chain.tip,
                ),
                events: Vec::new(),
            })
            .collect();
        let index = peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.core.node_id(), i))
            .collect();
        let mut net = Net {
            hub,
            index,
            to_hub: (0..n).map(|_| VecDeque::new()).collect(),
            to_peer: (0..n).map(|_| VecDeque::new()).collect(),
            links: (0..n).map(|_| None).collect(),
            last_conn: 0,
            peers,
            hub_events: Vec::new(),
            chain,
            channels: Vec::new(),
            plan: HashMap::new(),
            pending_claims: Vec::new(),
            eager_claims: false,
            payments: BTreeMap::new(),
            claimed: HashMap::new(),
            forwarded_fees: 0,
            forwarded_count: 0,
            downstream_fulfilled: HashSet::new(),
            hub_own: HashSet::new(),
            violations: Vec::new(),
            upstream_fulfills: 0,
            nonce: 0,
            policy: NodeConfig::default().forwarding,
            full_refusals: 0,
            recorder: None,
            disconnect_chance: None,
            connected: vec![true; n],
            disconnects: 0,
            hub_events_lossy: false,
            hub_stopped: None,
            hub_restarts: 0,
            closures_expected: false,
            hub_funds_itself: false,
            #[cfg(feature = "consensus")]
            validating: None,
        };
        let hub_id = net.hub.node_id();
        for i in 0..n {
            net.peers[i].core.peer_connected(hub_id);
            net.connect_link(i);
        }
        net.run();
        net
    }

    /// The preimage and hash of payment `id` (one this network started).
    pub fn preimage_of(&self, id: PaymentId) -> (PaymentPreimage, PaymentHash) {
        let hash = self.payments[&id].hash;
        (self.plan[&hash].0, hash)
    }

    /// The outcomes (sent / failed) the payer saw of payment `id`.
    pub fn outcomes(&self, id: PaymentId) -> Vec<bool> {
        self.payments[&id].outcomes.clone()
    }

    /// Peer `i`'s node id.
    pub fn peer_id(&self, i: usize) -> PublicKey {
        self.peers[i].core.node_id()
    }

    /// Moves peers' and the hub's outputs into the network; true if anything moved.
    fn collect(&mut self) -> bool {
        let mut any = self.notice_restarts();
        let hub_id = self.hub.node_id();
        for i in 0..self.peers.len() {
            let outputs = self.peers[i].core.drain_outputs();
            for o in outputs {
                any = true;
                match o {
                    Output::SendMessage { node_id, msg } => {
                        assert_eq!(node_id, hub_id, "peers talk only to the hub");
                        if !self.connected[i] {
                            continue;
                        }
                        let bytes = msg.encode();
                        if let Some(r) = &mut self.recorder {
                            let partner = r.partner[i].map_or(0, |p| r.delivered[p]);
                            r.to_hub.push((i, bytes.clone(), r.delivered[i], partner));
                        }
                        self.to_hub[i].push_back(bytes);
                    }
                    Output::Disconnect { .. } => self
                        .violations
                        .push(format!("peer {i} disconnected the hub")),
                    Output::Event(e) => self.peer_event(i, e),
                    Output::Forward(f) => self.peers[i].core.handle_forward(f),
                    Output::Resolve(r) => self.peers[i].core.handle_resolution(r),
                    _ => {}
                }
            }
        }
        for (peer, o) in self.take_link_outputs() {
            any = true;
            let Some(&i) = self.index.get(&peer) else {
                self.violations
                    .push(format!("hub wrote to unknown peer {peer}"));
                continue;
            };
            if !self.connected[i] {
                // Written to a connection that is gone: lost.
                continue;
            }
            if let PeerOutput::Message(bytes) = &o {
                if let Ok(Message::UpdateFulfillHtlc(f)) = Message::decode(bytes) {
                    let hash = f.payment_preimage.payment_hash();
                    self.upstream_fulfills += 1;
                    if !self.downstream_fulfilled.contains(&hash) && !self.hub_own.contains(&hash) {
                        self.violations.push(format!(
                            "hub settled {hash} upstream before any downstream fulfill"
                        ));
                    }
                }
            } else {
                self.violations.push(format!("hub disconnected peer {i}"));
            }
            self.to_peer[i].push_back(o);
        }
        for e in self.hub.take_events() {
            any = true;
            self.hub_event(e);
        }
        any
    }

    /// Peer `i` dials the hub: a BOLT 8 handshake in memory ([`Link::open`]), then the hub's
    /// end is attached to the hub. The hub must run with [`hub_secret`].
    fn connect_link(&mut self, i: usize) {
        self.last_conn += 1;
        let conn = self.last_conn;
        let id = self.peer_id(i);
        let hub = hub_secret();
        assert_eq!(
            self.hub.node_id(),
            PublicKey::from_secret_key(&lightning_core::secp256k1::Secp256k1::signing_only(), &hub),
            "the test network's hub runs with hub_secret()"
        );
        let (link, end) = Link::open(conn, &peer_secret(i), &hub);
        assert_eq!(end.node_id, id, "act three names the peer");
        self.links[i] = Some(link);
        self.hub
            .attach_connection(conn, id, end.transport, Box::new(end.writer))
            .expect("attach_connection");
    }

    /// Takes every peer's end of its connection to the hub (`None` for a peer without one),
    /// for a driver that talks to the hub directly from now on, as the replaying benchmark
    /// does. The network no longer reaches the hub after this.
    pub fn take_links(&mut self) -> Vec<Option<Link>> {
        self.links.iter_mut().map(Option::take).collect()
    }

    /// Everything the hub wrote to its peers' connections since the last call, decrypted; a
    /// connection the hub closed ends with `Disconnect` and is gone.
    fn take_link_outputs(&mut self) -> Vec<(PublicKey, PeerOutput)> {
        let mut all = Vec::new();
        for i in 0..self.peers.len() {
            let Some(link) = self.links[i].as_mut() else {
                continue;
            };
            let (messages, closed) = link.take();
            let id = self.peers[i].core.node_id();
            all.extend(messages.into_iter().map(|m| (id, PeerOutput::Message(m))));
            if closed {
                self.links[i] = None;
                all.push((id, PeerOutput::Disconnect));
            }
        }
        all
    }

    fn record_outcome(&mut self, payment_id: PaymentId, sent: bool, fee: Option<u64>) {
        match self.payments.get_mut(&payment_id) {
            Some(p) => {
                p.outcomes.push(sent);
                if let Some(fee) = fee {
                    assert_eq!(fee, p.fee_msat, "fee paid");
                }
            }
            None => self
                .violations
                .push(format!("outcome for unknown payment {payment_id:?}")),
        }
    }

    fn claimable(&mut self, who: Who, hash: PaymentHash) {
        if self.eager_claims {
            self.settle_one(who, hash);
        } else {
            self.pending_claims.push((who, hash));
        }
    }

    fn settle_one(&mut self, who: Who, hash: PaymentHash) {
        let Some(&(preimage, claim)) = self.plan.get(&hash) else {
            self.violations
                .push(format!("{who:?}: unexpected claimable {hash}"));
            return;
        };
        match (who, claim) {
            (Who::Hub, true) => self.hub.claim_funds(preimage).expect("hub claim"),
            (Who::Hub, false) => self.hub.fail_htlc_backwards(hash).expect("hub fail back"),
            (Who::Peer(i), true) => self.peers[i].core.claim_funds(preimage).expect("claim"),
            (Who::Peer(i), false) => self.peers[i]
                .core
                .fail_htlc_backwards(hash)
                .expect("fail back"),
        }
    }

    fn peer_event(&mut self, i: usize, e: Event) {
        match &e {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                output_script,
                channel_value_satoshis,
                ..
            } => {
                let tx = funding_for(
                    temporary_channel_id,
                    output_script.clone(),
                    *channel_value_satoshis,
                );
                self.funding_built(&tx);
                self.peers[i]
                    .core
                    .funding_transaction_generated(*temporary_channel_id, *counterparty_node_id, tx)
                    .expect("peer funding");
            }
            Event::BroadcastTransaction { tx } => self.broadcast(Who::Peer(i), tx.clone()),
            Event::PaymentClaimable { payment_hash, .. } => {
                self.claimable(Who::Peer(i), *payment_hash)
            }
            Event::PaymentClaimed { payment_hash, .. } => {
                *self.claimed.entry(*payment_hash).or_default() += 1
            }
            Event::PaymentSent {
                payment_id,
                fee_paid_msat,
                ..
            } => self.record_outcome(*payment_id, true, Some(*fee_paid_msat)),
            Event::PaymentFailed { payment_id, .. } => {
                self.record_outcome(*payment_id, false, None)
            }
            _ => {}
        }
        #[cfg(feature = "consensus")]
        self.observe_on_chain(Who::Peer(i), &e);
        self.peers[i].events.push(e);
    }

    fn hub_event(&mut self, e: Event) {
        match &e {
            Event::FundingGenerationReady {
                temporary_channel_id,
                output_script,
                channel_value_satoshis,
                ..
            } if !self.hub_funds_itself => {
                let tx = funding_for(
                    temporary_channel_id,
                    output_script.clone(),
                    *channel_value_satoshis,
                );
                self.funding_built(&tx);
                self.hub
                    .funding_transaction_generated(*temporary_channel_id, tx)
                    .expect("hub funding");
            }
            Event::BroadcastTransaction { tx } => self.broadcast(Who::Hub, tx.clone()),
            Event::PaymentClaimable { payment_hash, .. } => self.claimable(Who::Hub, *payment_hash),
            Event::PaymentClaimed { payment_hash, .. } => {
                *self.claimed.entry(*payment_hash).or_default() += 1
            }
            Event::PaymentSent {
                payment_id,
                fee_paid_msat,
                ..
            } => self.record_outcome(*payment_id, true, Some(*fee_paid_msat)),
            Event::PaymentFailed { payment_id, .. } => {
                self.record_outcome(*payment_id, false, None)
            }
            Event::PaymentForwarded {
                fee_earned_msat, ..
            } => {
                self.forwarded_fees += fee_earned_msat;
                self.forwarded_count += 1;
            }
            Event::ChannelClosed {
                channel_id, reason, ..
            } if !self.closures_expected => self
                .violations
                .push(format!("hub closed channel {channel_id}: {reason:?}")),
            _ => {}
        }
        #[cfg(feature = "consensus")]
        self.observe_on_chain(Who::Hub, &e);
        self.hub_events.push(e);
    }

    /// Runs until nothing moves. With a simulated hub, each move is picked by its seeded
    /// generator: one hub step, or one message delivered to or from one peer.
    pub fn run(&mut self) {
        let hub_id = self.hub.node_id();
        for _ in 0..50_000_000u64 {
            // Idle first, then collect: a shard releases a batch's outputs before it stops
            // counting the batch as pending, so outputs released before an idle reading are
            // in the collection. The other order misses a batch released between the two
            // (its last message would sit uncollected at "quiescence").
            let hub_busy = !self.hub.is_idle();
            let moved = self.collect();
            let to_hub: Vec<usize> = (0..self.peers.len())
                .filter(|&i| !self.to_hub[i].is_empty())
                .collect();
            let to_peer: Vec<usize> = (0..self.peers.len())
                .filter(|&i| !self.to_peer[i].is_empty())
                .collect();
            let actions = usize::from(hub_busy) + to_hub.len() + to_peer.len();
            if actions == 0 {
                if !moved {
                    // Quiescent: restore every cut connection before calling it done.
                    let cut: Vec<usize> = (0..self.peers.len())
                        .filter(|&i| !self.connected[i])
                        .collect();
                    if cut.is_empty() {
                        return;
                    }
                    for i in cut {
                        self.reconnect(i);
                    }
                }
                continue;
            }
            if let Some((num, den)) = self.disconnect_chance {
                if self
                    .hub
                    .choose(den as usize)
                    .is_some_and(|x| (x as u64) < num)
                {
                    if let Some(i) = self.hub.choose(self.peers.len()) {
                        if self.connected[i] {
                            self.disconnect(i);
                        } else {
                            self.reconnect(i);
                        }
                        continue;
                    }
                }
            }
            match self.hub.choose(actions) {
                Some(mut a) => {
                    if hub_busy {
                        if a == 0 {
                            self.hub.pump();
                            continue;
                        }
                        a -= 1;
                    }
                    if a < to_hub.len() {
                        self.deliver_to_hub(to_hub[a]);
                    } else {
                        self.deliver_to_peer(to_peer[a - to_hub.len()], hub_id);
                    }
                }
                None => {
                    for i in to_hub {
                        while !self.to_hub[i].is_empty() {
                            if !self.deliver_to_hub(i) {
                                break;
                            }
                        }
                    }
                    for i in to_peer {
                        while !self.to_peer[i].is_empty() {
                            self.deliver_to_peer(i, hub_id);
                        }
                    }
                    if hub_busy {
                        self.hub.pump();
                    }
                }
            }
        }
        panic!("network did not quiesce");
    }

    /// Up to `rounds` rounds of: every queued message delivered both ways, then the hub
    /// run until idle. Leaves payments part-way (HTLCs in flight).
    pub fn rounds(&mut self, rounds: usize) {
        let hub_id = self.hub.node_id();
        for _ in 0..rounds {
            self.collect();
            for i in 0..self.peers.len() {
                while !self.to_hub[i].is_empty() {
                    if !self.deliver_to_hub(i) {
                        break;
                    }
                }
                while !self.to_peer[i].is_empty() {
                    self.deliver_to_peer(i, hub_id);
                }
            }
            while self.hub.pump() {}
        }
        self.collect();
    }

    /// Delivers every queued message both ways once, without waiting for the hub.
    pub fn deliver_once(&mut self) {
        let hub_id = self.hub.node_id();
        self.collect();
        for i in 0..self.peers.len() {
            while !self.to_hub[i].is_empty() {
                if !self.deliver_to_hub(i) {
                    break;
                }
            }
            while !self.to_peer[i].is_empty() {
                self.deliver_to_peer(i, hub_id);
            }
        }
    }

    /// The hub's process dies: every connection drops and what is in flight either way is
    /// lost. The hub itself is not told (it is gone); replace it, then `reconnect_all`.
    pub fn cut_all_for_crash(&mut self) {
        let hub_id = self.hub.node_id();
        for i in 0..self.peers.len() {
            self.connected[i] = false;
            self.to_hub[i].clear();
            self.to_peer[i].clear();
            self.links[i] = None;
            self.peers[i].core.peer_disconnected(hub_id);
        }
        self.collect_peers_only();
    }

    fn collect_peers_only(&mut self) {
        for i in 0..self.peers.len() {
            for o in self.peers[i].core.drain_outputs() {
                if let Output::Event(e) = o {
                    self.peer_event(i, e);
                }
            }
        }
    }

    /// A hub that crashed and restarted on its own ([`Hub::take_restarts`]): its
    /// connections dropped with everything in flight; no peer may hold a state the restarted
    /// hub does not (it released nothing before it was durable); the peers reconnect. True
    /// if it restarted.
    fn notice_restarts(&mut self) -> bool {
        let restarts = self.hub.take_restarts();
        if restarts == 0 {
            return false;
        }
        self.hub_restarts += restarts;
        self.cut_all_for_crash();
        let ahead = peers_ahead(&self.peers, &self.channels, &mut self.hub);
        self.violations
            .extend(ahead.into_iter().map(|e| format!("after a restart: {e}")));
        self.reconnect_all();
        true
    }

    /// Events the hub produced before it stopped (from its shutdown report).
    pub fn absorb_hub_events(&mut self, events: Vec<Event>) {
        for e in events {
            self.hub_event(e);
        }
    }

    /// Reconnects every cut peer (init, then channel_reestablish).
    pub fn reconnect_all(&mut self) {
        for i in 0..self.peers.len() {
            if !self.connected[i] {
                self.reconnect(i);
            }
        }
    }

    /// HTLCs on the peers' side of their channels (both commitments), now.
    pub fn htlcs_in_flight(&self) -> usize {
        let hub_id = self.hub.node_id();
        self.channels
            .iter()
            .filter_map(|c| self.peers[c.peer].core.channel(&hub_id, &c.channel_id))
            .map(|ch| {
                ch.local_commit()
                    .spec
                    .htlcs
                    .len()
                    .max(ch.remote_commit().spec.htlcs.len())
            })
            .sum()
    }

    /// Cuts peer `i`'s connection: what is in flight either way is lost.
    pub fn disconnect(&mut self, i: usize) {
        let (hub_id, id) = (self.hub.node_id(), self.peer_id(i));
        self.connected[i] = false;
        self.disconnects += 1;
        self.to_hub[i].clear();
        self.to_peer[i].clear();
        self.peers[i].core.peer_disconnected(hub_id);
        if let Some(link) = self.links[i].take() {
            self.hub
                .detach_connection(link.conn, id)
                .expect("detach_connection");
        }
    }

    /// Restores peer `i`'s connection (init, then channel_reestablish).
    pub fn reconnect(&mut self, i: usize) {
        let hub_id = self.hub.node_id();
        self.connected[i] = true;
        self.peers[i].core.peer_connected(hub_id);
        self.connect_link(i);
    }

    fn deliver_to_hub(&mut self, i: usize) -> bool {
        let Some(bytes) = self.to_hub[i].pop_front() else {
            return false;
        };
        let id = self.peer_id(i);
        let Some(link) = self.links[i].as_mut() else {
            // No connection (the hub closed it): lost.
            return true;
        };
        let conn = link.conn;
        let frame = link.seal(&bytes);
        match self.hub.connection_ciphertext(conn, id, frame.clone()) {
            Ok(()) => {
                // The hub now holds this preimage from downstream.
                if let Ok(Message::UpdateFulfillHtlc(f)) = Message::decode(&bytes) {
                    self.downstream_fulfilled
                        .insert(f.payment_preimage.payment_hash());
                }
                true
            }
            Err(EngineError::Full { .. }) => {
                self.full_refusals += 1;
                if let Some(link) = self.links[i].as_mut() {
                    link.refused(frame);
                }
                self.to_hub[i].push_front(bytes);
                self.hub.pump();
                false
            }
            Err(e @ EngineError::Stopped { .. }) => {
                // The node is down: the message is lost with its connection.
                self.hub_stopped.get_or_insert(e);
                false
            }
            Err(e) => panic!("connection_ciphertext: {e}"),
        }
    }

    fn deliver_to_peer(&mut self, i: usize, hub_id: PublicKey) {
        match self.to_peer[i].pop_front() {
            Some(PeerOutput::Message(bytes)) => {
                if let Some(r) = &mut self.recorder {
                    r.delivered[i] += 1;
                    r.from_hub[i].push(bytes.clone());
                }
                self.peers[i].core.handle_message(hub_id, &bytes)
            }
            Some(PeerOutput::Disconnect) => self.peers[i].core.peer_disconnected(hub_id),
            None => {}
        }
    }

    /// Claims (or fails back) every payment made claimable since the last call, without
    /// running the network.
    pub fn claim_pending(&mut self) {
        for (who, hash) in std::mem::take(&mut self.pending_claims) {
            self.settle_one(who, hash);
        }
    }

    /// Claims (or fails back) every payment made claimable since the last call; runs.
    pub fn settle(&mut self) {
        loop {
            let claims = std::mem::take(&mut self.pending_claims);
            if claims.is_empty() {
                return;
            }
            for (who, hash) in claims {
                self.settle_one(who, hash);
            }
            self.run();
        }
    }

    /// A transaction `who` broadcast: into the fake chain's mempool, or submitted to the
    /// validating chain ([`Net::new_validating`]).
    fn broadcast(&mut self, who: Who, tx: Transaction) {
        #[cfg(feature = "consensus")]
        if self.validating.is_some() {
            self.submit_validating(who, tx);
            return;
        }
        let _ = who;
        self.chain.mempool.push(tx);
    }

    /// A funding transaction was built (its inputs made up): the validating chain, if any,
    /// takes it on trust.
    fn funding_built(&mut self, tx: &Transaction) {
        #[cfg(feature = "consensus")]
        if let Some(v) = &mut self.validating {
            v.chain.submit_funding(tx.clone());
        }
        let _ = tx;
    }

    /// Mines `blocks` blocks with the mempool and tells everyone (through the validating
    /// chain when the network runs on one).
    pub fn mine(&mut self, blocks: u32) {
        #[cfg(feature = "consensus")]
        if self.validating.is_some() {
            self.mine_validating(blocks);
            return;
        }
        for _ in 0..blocks {
            let mut txs: Vec<Transaction> = std::mem::take(&mut self.chain.mempool);
            // Block order by txid: broadcasts from different shards arrive in any order.
            txs.sort_by_key(|tx| tx.compute_txid());
            let header = Header {
                version: BlockVersion::TWO,
                prev_blockhash: self.chain.tip,
                merkle_root: TxMerkleNode::all_zeros(),
                time: self.chain.height,
                bits: CompactTarget::from_consensus(0x207fffff),
                nonce: 0,
            };
            self.chain.height += 1;
            self.chain.tip = header.block_hash();
            let height = self.chain.height;
            let mut block: Vec<(u32, Transaction)> = Vec::new();
            for tx in txs {
                if self.chain.confirmed.insert(tx.compute_txid()) {
                    block.push((block.len() as u32 + 1, tx));
                }
            }
            let refs: Vec<(u32, &Transaction)> = block.iter().map(|(i, t)| (*i, t)).collect();
            for p in &mut self.peers {
                p.core.transactions_confirmed(height, &refs);
                p.core.best_block_updated(height, self.chain.tip);
            }
            self.hub
                .transactions_confirmed(height, &block)
                .expect("confirmed");
            self.hub
                .best_block_updated(height, self.chain.tip)
                .expect("best block");
            self.run();
        }
    }

    /// Opens channels: for each `(peer, hub_funds)`, the peer opens to the hub (pushing half)
    /// or, with `hub_funds`, the hub opens to the peer (pushing half) through the engine API.
    /// Confirms them; returns their indices in `self.channels`.
    pub fn open_channels(&mut self, specs: &[(usize, bool)]) -> Vec<usize> {
        let hub_id = self.hub.node_id();
        let before: HashSet<ChannelId> = self.channels.iter().map(|c| c.channel_id).collect();
        for &(i, hub_funds) in specs {
            if hub_funds {
                let id = self.peer_id(i);
                self.hub
                    .create_channel(id, SATS, SATS * 500)
                    .expect("hub create_channel");
            } else {
                self.peers[i]
                    .core
                    .create_channel(hub_id, SATS, SATS * 500, 9, 2500)
                    .expect("peer create_channel");
            }
        }
        self.run();
        self.mine(6);
        let mut added = Vec::new();
        let ready: Vec<(ChannelId, PublicKey, ShortChannelId)> = self
            .hub_events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelReady {
                    channel_id,
                    counterparty_node_id,
                    short_channel_id: Some(scid),
                    ..
                } => Some((*channel_id, *counterparty_node_id, *scid)),
                _ => None,
            })
            .collect();
        for (channel_id, peer, scid) in ready {
            if before.contains(&channel_id)
                || self.channels.iter().any(|c| c.channel_id == channel_id)
            {
                continue;
            }
            let peer = self.index[&peer];
            self.channels.push(Chan {
                peer,
                channel_id,
                scid,
            });
            added.push(self.channels.len() - 1);
        }
        assert_eq!(added.len(), specs.len(), "every channel became ready");
        // A stable order whatever the interleaving: by peer, then channel id.
        let mut new: Vec<Chan> = added.iter().map(|&k| self.channels[k]).collect();
        new.sort_by_key(|c| (c.peer, c.channel_id));
        let start = self.channels.len() - new.len();
        self.channels.truncate(start);
        self.channels.extend(new);
        added
    }

    fn next_preimage(&mut self) -> PaymentPreimage {
        self.nonce += 1;
        PaymentPreimage(sha256::Hash::hash(&self.nonce.to_be_bytes()).to_byte_array())
    }

    /// Starts up to `count` payments between peers through the hub over channels no other
    /// of these payments uses, drawn from `rng` (`mix` says which amounts, how many come
    /// from the hub and how many the payee fails back).
    pub fn start_random_payments(
        &mut self,
        rng: &mut shard_engine::SimRng,
        count: usize,
        mix: PaymentMix,
    ) {
        let mut free: Vec<usize> = (0..self.channels.len()).collect();
        for k in 0..count {
            if free.len() < 2 {
                break;
            }
            let cin = free.swap_remove(rng.below(free.len()));
            let cout = free.swap_remove(rng.below(free.len()));
            let (a, b) = (self.channels[cin].peer, self.channels[cout].peer);
            if a == b {
                continue;
            }
            let amount = 1_000_000 + rng.below(mix.extra_msat) as u64;
            let claim = mix.fail_one_in.is_none_or(|n| !rng.chance(1, n));
            if mix.from_hub_every.is_some_and(|n| k % n == n - 1) {
                self.start_payment(Who::Hub, Who::Peer(b), None, Some(cout), amount, claim);
            } else {
                self.start_payment(
                    Who::Peer(a),
                    Who::Peer(b),
                    Some(cin),
                    Some(cout),
                    amount,
                    claim,
                );
            }
        }
    }

    /// Starts a payment from `from` to `to` over the given channels (`via_in` is the payer's
    /// channel to the hub, `via_out` the hub's channel to the payee). The payee claims it
    /// (or fails it back when `claim` is false). Returns its id.
    pub fn start_payment(
        &mut self,
        from: Who,
        to: Who,
        via_in: Option<usize>,
        via_out: Option<usize>,
        amount_msat: u64,
        claim: bool,
    ) -> PaymentId {
        let preimage = self.next_preimage();
        let hash = preimage.payment_hash();
        self.plan.insert(hash, (preimage, claim));
        let secret = match to {
            Who::Hub => {
                self.hub_own.insert(hash);
                self.hub
                    .create_inbound_payment(preimage, Some(amount_msat))
                    .expect("hub inbound")
                    .1
            }
            Who::Peer(j) => {
                self.peers[j]
                    .core
                    .create_inbound_payment(&preimage, Some(amount_msat))
                    .1
            }
        };
        let hub_id = self.hub.node_id();
        let mut hops = Vec::new();
        let mut fee = 0;
        if let (Who::Peer(_), Some(cin)) = (from, via_in) {
            let scid = self.channels[cin].scid;
            if let Some(cout) = via_out {
                fee = self.policy.fee_for(amount_msat);
                hops.push(RouteHop {
                    node_id: hub_id,
                    short_channel_id: scid,
                    fee_msat: fee,
                    cltv_expiry_delta: u32::from(self.policy.cltv_expiry_delta),
                });
                let c = self.channels[cout];
                hops.push(RouteHop {
                    node_id: self.peer_id(c.peer),
                    short_channel_id: c.scid,
                    fee_msat: amount_msat,
                    cltv_expiry_delta: 50,
                });
            } else {
                hops.push(RouteHop {
                    node_id: hub_id,
                    short_channel_id: scid,
                    fee_msat: amount_msat,
                    cltv_expiry_delta: 50,
                });
            }
        } else if let Some(cout) = via_out {
            let c = self.channels[cout];
            hops.push(RouteHop {
                node_id: self.peer_id(c.peer),
                short_channel_id: c.scid,
                fee_msat: amount_msat,
                cltv_expiry_delta: 50,
            });
        }
        let route = Route { hops };
        let id = PaymentId(sha256::Hash::hash(&preimage.0).to_byte_array());
        self.payments.insert(
            id,
            PaymentRecord {
                payer: from,
                payee: to,
                amount_msat,
                fee_msat: fee,
                hash,
                outcomes: Vec::new(),
            },
        );
        let result = match from {
            Who::Hub => self.hub.send_payment(&route, hash, secret, id),
            Who::Peer(i) => self.peers[i]
                .core
                .send_payment(&route, hash, secret, id)
                .map_err(EngineError::Api),
        };
        result.expect("send_payment");
        id
    }

    /// Σ to_local over each party's channels.
    pub fn balances(&mut self) -> BTreeMap<Who, u64> {
        let mut out = BTreeMap::new();
        let hub_total: u64 = self
            .hub
            .list_channels()
            .iter()
            .map(|c| c.balances.to_local_msat)
            .sum();
        out.insert(Who::Hub, hub_total);
        for (i, p) in self.peers.iter().enumerate() {
            let total: u64 = p
                .core
                .list_channels()
                .iter()
                .map(|c| c.balances.to_local_msat)
                .sum();
            out.insert(Who::Peer(i), total);
        }
        out
    }

    /// Checks, at quiescence: every channel's two sides agree, hold no HTLC and conserve its
    /// capacity; every payment ended exactly once; balances moved exactly as the payments
    /// that succeeded say (network-wide conservation); no upstream settlement came before
    /// the downstream one. Returns a description of each failure.
    pub fn check(&mut self, initial: &BTreeMap<Who, u64>) -> Vec<String> {
        let mut errors = std::mem::take(&mut self.violations);
        for c in self.channels.clone() {
            let pid = self.peer_id(c.peer);
            let Some(hub_side) = self.hub.channel(pid, c.channel_id) else {
                errors.push(format!("hub lost channel {}", c.channel_id));
                continue;
            };
            let hub_id = self.hub.node_id();
            let Some(peer_side) = self.peers[c.peer].core.channel(&hub_id, &c.channel_id) else {
                errors.push(format!("peer lost channel {}", c.channel_id));
                continue;
            };
            let (hl, hr) = (
                &hub_side.local_commit().spec,
                &hub_side.remote_commit().spec,
            );
            if *hl != peer_side.remote_commit().spec || *hr != peer_side.local_commit().spec {
                errors.push(format!(
                    "channel {}: the two sides disagree: hub local {hl:?} vs peer's view {:?}; \
                     hub's view {hr:?} vs peer local {:?}",
                    c.channel_id,
                    peer_side.remote_commit().spec,
                    peer_side.local_commit().spec
                ));
            }
            if !hl.htlcs.is_empty() || !hr.htlcs.is_empty() {
                errors.push(format!(
                    "channel {}: {} htlcs left at quiescence",
                    c.channel_id,
                    hl.htlcs.len().max(hr.htlcs.len())
                ));
            }
            let total = hl.to_local_msat
                + hl.to_remote_msat
                + hl.htlcs.values().map(|h| h.amount_msat).sum::<u64>();
            if total != hub_side.funding_satoshis() * 1000 {
                errors.push(format!(
                    "channel {}: balances sum to {total}, capacity {}",
                    c.channel_id,
                    hub_side.funding_satoshis() * 1000
                ));
            }
        }
        let mut expected = initial.clone();
        let mut fees = 0;
        let mut forwarded = 0;
        for (id, p) in &self.payments {
            match p.outcomes.as_slice() {
                [true] => {
                    *expected.entry(p.payer).or_default() -= p.amount_msat + p.fee_msat;
                    *expected.entry(p.payee).or_default() += p.amount_msat;
                    *expected.entry(Who::Hub).or_default() += p.fee_msat;
                    fees += p.fee_msat;
                    if p.payer != Who::Hub && p.payee != Who::Hub {
                        forwarded += 1;
                    }
                    if self.claimed.get(&p.hash) != Some(&1) {
                        errors.push(format!(
                            "payment {id:?} sent but claimed {:?} times",
                            self.claimed.get(&p.hash)
                        ));
                    }
                }
                [false] => {
                    if self.claimed.contains_key(&p.hash) {
                        errors.push(format!("payment {id:?} failed but was claimed"));
                    }
                }
                other => errors.push(format!("payment {id:?} ended {other:?}")),
            }
        }
        if !self.hub_events_lossy
            && (fees != self.forwarded_fees || forwarded != self.forwarded_count)
        {
            errors.push(format!(
                "hub forwarded {} payments for {} msat; payers paid {} forwards, {} msat",
                self.forwarded_count, self.forwarded_fees, forwarded, fees
            ));
        }
        let now = self.balances();
        if now != expected {
            errors.push(format!("balances {now:?}, expected {expected:?}"));
        }
        let before: u64 = initial.values().sum();
        let after: u64 = now.values().sum();
        if before != after {
            errors.push(format!("network total {after} msat, was {before}"));
        }
        errors
    }

    /// What the peers hold against what a hub `restored` from the store holds, with nothing
    /// delivered since: every commitment the hub signed for a peer must be known to the
    /// restored hub, and the restored hub must hold a commitment at least as new as the
    /// newest one whose predecessors it revoked to the peer (else it could broadcast a
    /// revoked commitment). A peer that received anything for a state the store does not hold
    /// breaks one of the two. Returns a description of each break.
    pub fn peers_ahead_of<R: Hub>(&self, restored: &mut R) -> Vec<String> {
        peers_ahead(&self.peers, &self.channels, restored)
    }

    /// The hub's state of every channel, for comparing runs.
    pub fn hub_snapshot(&mut self) -> Vec<(ChannelId, lightning_core::channel::Channel)> {
        let mut out = Vec::new();
        for c in self.channels.clone() {
            let pid = self.peer_id(c.peer);
            let ch = self.hub.channel(pid, c.channel_id).expect("hub channel");
            out.push((c.channel_id, ch));
        }
        out.sort_by_key(|(id, _)| *id);
        out
    }
}

impl Net<shard_engine::Sim> {
    /// A digest of a simulated run's outcome, for replay checks: every hub channel's local
    /// commitment and the simulator's step count.
    pub fn run_digest(&mut self) -> [u8; 32] {
        use lightning_core::bitcoin::hashes::HashEngine;
        let mut digest = sha256::Hash::engine();
        for (id, c) in self.hub_snapshot() {
            digest.input(&id.0);
            digest.input(format!("{:?}", c.local_commit().spec).as_bytes());
        }
        digest.input(&self.hub.steps().to_be_bytes());
        sha256::Hash::from_engine(digest).to_byte_array()
    }
}

/// See [`Net::peers_ahead_of`].
fn peers_ahead<R: Hub>(peers: &[Peer], channels: &[Chan], restored: &mut R) -> Vec<String> {
    let hub_id = restored.node_id();
    let mut errors = Vec::new();
    for c in channels {
        let peer = &peers[c.peer].core;
        let pid = peer.node_id();
        let Some(peer_side) = peer.channel(&hub_id, &c.channel_id) else {
            errors.push(format!("peer lost channel {}", c.channel_id));
            continue;
        };
        let Some(hub_side) = restored.channel(pid, c.channel_id) else {
            errors.push(format!("the store lost channel {}", c.channel_id));
            continue;
        };
        let signed_by_hub = peer_side.local_commit().index;
        let hub_signed = hub_side
            .next_remote_commit()
            .map_or(hub_side.remote_commit().index, |n| n.commit.index);
        if signed_by_hub > hub_signed {
            errors.push(format!(
                "channel {}: the peer holds hub-signed commitment {signed_by_hub}, the \
                 store only {hub_signed}",
                c.channel_id
            ));
        }
        let revoked_below = peer_side.remote_commit().index;
        if hub_side.local_commit().index < revoked_below {
            errors.push(format!(
                "channel {}: the hub revoked its commitments below {revoked_below} to the \
                 peer, the store holds its commitment {}",
                c.channel_id,
                hub_side.local_commit().index
            ));
        }
    }
    errors
}

/// The funding transaction of a channel: its made-up input depends only on the channel's
/// temporary id, so the same workload gives the same channel ids in every run.
fn funding_for(temp: &ChannelId, script: ScriptBuf, value: u64) -> Transaction {
    let salt = u32::from_be_bytes([temp.0[0], temp.0[1], temp.0[2], temp.0[3]]);
    fake_funding_tx(script, value, salt)
}

/// A funding transaction spending a made-up coin, paying `script` exactly `value`.
pub fn fake_funding_tx(script: ScriptBuf, value: u64, salt: u32) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array(
                    sha256::Hash::hash(&salt.to_be_bytes()).to_byte_array(),
                ),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(value),
            script_pubkey: script,
        }],
    }
}
