//! The deterministic mode: every shard's [`step`] driven on one thread by a seeded scheduler.
//!
//! [`Sim`] holds the same shards, coordinator and placement as the threaded engine, but its
//! inboxes are plain queues and [`Sim::step_random`] picks which shard handles its next
//! message with a seeded generator: one seed, one interleaving, replayed exactly. API calls
//! that need an answer run random steps until the answer comes, as a caller blocked on a
//! threaded engine would see other shards progress meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::bounded;
use lightning_core::bitcoin::{BlockHash, Transaction};
use lightning_core::channel::Channel;
use lightning_core::node::{ChannelDetails, Event, NodeCore, PaymentId, Route};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};

use crate::api::{self, Backend};
use crate::coordinator::Coordinator;
use crate::engine::EngineConfig;
use crate::error::EngineError;
use crate::msg::{ApiCall, ApiReply, Out, PeerOutput, ShardMsg};
use crate::placement::Placement;
use crate::shard::{step, Shard, ShardStats};

/// A small seeded generator (SplitMix64): the simulator's only source of choice.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        den != 0 && self.next_u64() % den < num
    }
}

/// The seed to use: `SIM_SEED` from the environment if set (to replay a failure), else
/// `default`.
pub fn sim_seed_from_env(default: u64) -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// The engine on one thread: see the [module documentation](self).
#[derive(Debug)]
pub struct Sim {
    node_id: PublicKey,
    placement: Placement,
    coordinator: Arc<Coordinator>,
    shards: Vec<Shard>,
    inboxes: Vec<VecDeque<ShardMsg>>,
    inbox_capacity: usize,
    /// [`EngineConfig::inbox_bytes`](crate::EngineConfig::inbox_bytes), as the threads apply it.
    inbox_bytes: usize,
    rng: SimRng,
    /// Outputs for peers, tagged with the connection they belong to.
    peer_outputs: VecDeque<(PublicKey, u64, PeerOutput)>,
    /// Connections opened per peer (by the caller) and handled per peer (by its shard): as
    /// in the threaded engine, outputs of an older connection are stale and dropped.
    app_epochs: HashMap<PublicKey, u64>,
    shard_epochs: HashMap<PublicKey, u64>,
    events: Vec<Event>,
    steps: u64,
    out: Vec<Out>,
}

impl Sim {
    /// A simulated engine with `config.shards` shards; `sim_seed` drives the scheduler.
    pub fn new(
        config: EngineConfig,
        node_secret: SecretKey,
        seed: [u8; 32],
        best_height: u32,
        best_hash: BlockHash,
        sim_seed: u64,
    ) -> Sim {
        let placement = Placement::new(&node_secret, config.shards);
        let coordinator = Arc::new(Coordinator::new(
            config.node.shard_share(placement.shards()),
            best_height,
            best_hash,
        ));
        let shards = (0..placement.shards())
            .map(|i| Shard::new(i, node_secret, seed, coordinator.clone(), placement.clone()))
            .collect();
        let secp = Secp256k1::signing_only();
        Sim {
            node_id: PublicKey::from_secret_key(&secp, &node_secret),
            inboxes: (0..placement.shards()).map(|_| VecDeque::new()).collect(),
            placement,
            coordinator,
            shards,
            inbox_capacity: config.inbox_capacity.max(1),
            inbox_bytes: config.inbox_bytes,
            rng: SimRng::new(sim_seed),
            peer_outputs: VecDeque::new(),
            app_epochs: HashMap::new(),
            shard_epochs: HashMap::new(),
            events: Vec::new(),
            steps: 0,
            out: Vec::new(),
        }
    }

    /// Our node id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// The shard that owns `node_id`.
    pub fn shard_of(&self, node_id: &PublicKey) -> usize {
        self.placement.shard_of(node_id)
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.placement.shards()
    }

    /// The scheduler's generator (the test harness draws its own choices from it too, so
    /// one seed fixes the whole run).
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Read access to one shard's NodeCore.
    pub fn core(&self, shard: usize) -> Option<&NodeCore> {
        self.shards.get(shard).map(Shard::core)
    }

    /// Each shard's counters.
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.shards
            .iter()
            .map(|s| s.counters().snapshot())
            .collect()
    }

    /// Whether every inbox is empty.
    pub fn is_idle(&self) -> bool {
        self.inboxes.iter().all(VecDeque::is_empty)
    }

    /// Messages waiting in each inbox.
    pub fn inbox_lens(&self) -> Vec<usize> {
        self.inboxes.iter().map(VecDeque::len).collect()
    }

    /// Steps one message of one shard chosen at random among those with work; false if none.
    pub fn step_random(&mut self) -> bool {
        let ready: Vec<usize> = (0..self.inboxes.len())
            .filter(|&i| self.inboxes.get(i).is_some_and(|q| !q.is_empty()))
            .collect();
        if ready.is_empty() {
            return false;
        }
        let pick = ready.get(self.rng.below(ready.len())).copied().unwrap_or(0);
        self.step_shard(pick)
    }

    /// Steps the next message of shard `shard`; false if its inbox is empty.
    pub fn step_shard(&mut self, shard: usize) -> bool {
        let Some(msg) = self.inboxes.get_mut(shard).and_then(VecDeque::pop_front) else {
            return false;
        };
        let Some(s) = self.shards.get_mut(shard) else {
            return false;
        };
        self.steps += 1;
        if let ShardMsg::PeerConnected(node_id) = &msg {
            *self.shard_epochs.entry(*node_id).or_default() += 1;
        }
        let mut out = std::mem::take(&mut self.out);
        step(s, msg, &mut out);
        for o in out.drain(..) {
            match o {
                Out::Peer { node_id, output } => {
                    let epoch = self.shard_epochs.get(&node_id).copied().unwrap_or(0);
                    self.peer_outputs.push_back((node_id, epoch, output))
                }
                Out::Event(e) => self.events.push(e),
                Out::Reply { reply, answer } => {
                    // The caller may have given up waiting: nothing to do then.
                    let _ = reply.try_send(answer);
                }
                Out::Shard { to, msg } => {
                    // Cross-shard traffic is never refused (the threaded engine parks it).
                    if let Some(q) = self.inboxes.get_mut(to) {
                        q.push_back(msg);
                    }
                }
            }
        }
        self.out = out;
        true
    }

    /// Steps until every inbox is empty.
    pub fn run_until_idle(&mut self) {
        while self.step_random() {}
    }

    /// Everything queued for peers, in order (per peer: the order its shard produced).
    pub fn take_peer_outputs(&mut self) -> Vec<(PublicKey, PeerOutput)> {
        let app = &self.app_epochs;
        self.peer_outputs
            .drain(..)
            .filter(|(node_id, epoch, _)| app.get(node_id).copied().unwrap_or(0) == *epoch)
            .map(|(node_id, _, o)| (node_id, o))
            .collect()
    }

    /// Every event so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// As [`Engine::peer_connected`](crate::Engine::peer_connected).
    pub fn peer_connected(&mut self, node_id: PublicKey) -> Result<(), EngineError> {
        *self.app_epochs.entry(node_id).or_default() += 1;
        let result = api::peer_connected(self, node_id);
        if result.is_err() {
            *self.app_epochs.entry(node_id).or_default() -= 1;
        }
        result
    }

    /// As [`Engine::peer_disconnected`](crate::Engine::peer_disconnected).
    pub fn peer_disconnected(&mut self, node_id: PublicKey) -> Result<(), EngineError> {
        api::peer_disconnected(self, node_id)
    }

    /// As [`Engine::handle_message`](crate::Engine::handle_message).
    pub fn handle_message(&mut self, node_id: PublicKey, bytes: &[u8]) -> Result<(), EngineError> {
        api::handle_message(self, node_id, bytes)
    }

    /// As [`Engine::create_channel`](crate::Engine::create_channel).
    pub fn create_channel(
        &mut self,
        node_id: PublicKey,
        funding_satoshis: u64,
        push_msat: u64,
        user_channel_id: u128,
        feerate_per_kw: u32,
    ) -> Result<ChannelId, EngineError> {
        api::create_channel(
            self,
            node_id,
            funding_satoshis,
            push_msat,
            user_channel_id,
            feerate_per_kw,
        )
    }

    /// As [`Engine::funding_transaction_generated`](crate::Engine::funding_transaction_generated).
    pub fn funding_transaction_generated(
        &mut self,
        temporary_channel_id: ChannelId,
        funding_tx: Transaction,
    ) -> Result<(), EngineError> {
        api::funding_transaction_generated(self, temporary_channel_id, funding_tx)
    }

    /// As [`Engine::send_payment`](crate::Engine::send_payment).
    pub fn send_payment(
        &mut self,
        route: &Route,
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
        payment_id: PaymentId,
    ) -> Result<(), EngineError> {
        api::send_payment(self, route, payment_hash, payment_secret, payment_id)
    }

    /// As [`Engine::create_inbound_payment`](crate::Engine::create_inbound_payment).
    pub fn create_inbound_payment(
        &mut self,
        payment_preimage: PaymentPreimage,
        amount_msat: Option<u64>,
    ) -> Result<(PaymentHash, PaymentSecret), EngineError> {
        api::create_inbound_payment(self, payment_preimage, amount_msat)
    }

    /// As [`Engine::register_inbound_payment`](crate::Engine::register_inbound_payment).
    pub fn register_inbound_payment(
        &mut self,
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
        amount_msat: Option<u64>,
    ) -> Result<(), EngineError> {
        api::register_inbound_payment(self, payment_hash, payment_secret, amount_msat)
    }

    /// As [`Engine::claim_funds`](crate::Engine::claim_funds).
    pub fn claim_funds(&mut self, payment_preimage: PaymentPreimage) -> Result<(), EngineError> {
        api::claim_funds(self, payment_preimage)
    }

    /// As [`Engine::fail_htlc_backwards`](crate::Engine::fail_htlc_backwards).
    pub fn fail_htlc_backwards(&mut self, payment_hash: PaymentHash) -> Result<(), EngineError> {
        api::fail_htlc_backwards(self, payment_hash)
    }

    /// As [`Engine::close_channel`](crate::Engine::close_channel).
    pub fn close_channel(&mut self, channel_id: ChannelId) -> Result<(), EngineError> {
        api::close_channel(self, channel_id, false)
    }

    /// As [`Engine::force_close_channel`](crate::Engine::force_close_channel).
    pub fn force_close_channel(&mut self, channel_id: ChannelId) -> Result<(), EngineError> {
        api::close_channel(self, channel_id, true)
    }

    /// As [`Engine::list_channels`](crate::Engine::list_channels).
    pub fn list_channels(&mut self) -> Result<Vec<ChannelDetails>, EngineError> {
        api::list_channels(self)
    }

    /// As [`Engine::channel`](crate::Engine::channel).
    pub fn channel(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
    ) -> Result<Option<Channel>, EngineError> {
        api::channel(self, node_id, channel_id)
    }

    /// As [`Engine::best_block_updated`](crate::Engine::best_block_updated).
    pub fn best_block_updated(&mut self, height: u32, hash: BlockHash) -> Result<(), EngineError> {
        api::best_block_updated(self, height, hash)
    }

    /// As [`Engine::transactions_confirmed`](crate::Engine::transactions_confirmed).
    pub fn transactions_confirmed(
        &mut self,
        height: u32,
        txdata: &[(u32, Transaction)],
    ) -> Result<(), EngineError> {
        api::transactions_confirmed(self, height, txdata)
    }
}

impl Backend for Sim {
    fn placement(&self) -> &Placement {
        &self.placement
    }

    fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    fn enqueue(&mut self, shard: usize, msg: ShardMsg, control: bool) -> Result<(), EngineError> {
        let capacity = self.inbox_capacity;
        let q = self
            .inboxes
            .get_mut(shard)
            .ok_or(EngineError::ShuttingDown)?;
        let len = msg.peer_bytes();
        let queued: usize = q.iter().map(ShardMsg::peer_bytes).sum();
        let over_bytes = len > 0 && queued > 0 && queued + len > self.inbox_bytes;
        if !control && (q.len() >= capacity || over_bytes) {
            return Err(EngineError::Full { shard, capacity });
        }
        q.push_back(msg);
        Ok(())
    }

    fn call(&mut self, shard: usize, call: ApiCall) -> Result<ApiReply, EngineError> {
        let (tx, rx) = bounded(1);
        let msg = ShardMsg::Api {
            call,
            reply: Some(tx),
        };
        // An answer is needed now: the call waits for room like a control message.
        self.enqueue(shard, msg, true)?;
        loop {
            if let Ok(reply) = rx.try_recv() {
                return Ok(reply);
            }
            if !self.step_random() {
                return Err(EngineError::Timeout {
                    shard,
                    waited_ms: 0,
                });
            }
        }
    }
}
