//! The routing node under test, threaded or simulated, behind one trait.
//!
//! The API calls of both engine front ends come from one place, [`NodeApi`]; [`Hub`] repeats
//! their signatures only because the lock-based baselines of the scaling benchmark (plain
//! `NodeCore`s behind mutexes, with no shards to route to) implement it too.
//!
//! Peers reach a hub as the engine's hosts reach it: BOLT 8 connections, attached once the
//! handshake is done, then ciphertext ([`crate::link`] runs the peers' end).

use std::time::Duration;

use lightning_core::bitcoin::{BlockHash, Transaction};
use lightning_core::channel::Channel;
use lightning_core::node::{ChannelDetails, Event, PaymentId, Route};
use lightning_core::secp256k1::PublicKey;
use lightning_core::transport::Transport;
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};
use shard_engine::{ConnectionId, ConnectionWriter, Engine, EngineError, NodeApi, Sim};

/// The engine as the test network drives it.
pub trait Hub {
    /// The routing node's node id.
    fn node_id(&self) -> PublicKey;
    /// The shard `peer` lives on (0 for a hub without shards).
    fn shard_of(&self, peer: &PublicKey) -> usize;
    /// An established BOLT 8 connection `conn` to `peer` moves into the hub (as
    /// [`Engine::attach_connection`]): the hub encrypts with `transport` into `writer`.
    fn attach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        transport: Transport,
        writer: Box<dyn ConnectionWriter>,
    ) -> Result<(), EngineError>;
    /// Ciphertext `peer` sent on `conn` (`EngineError::Full`: not taken, retry later).
    fn connection_ciphertext(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        bytes: Vec<u8>,
    ) -> Result<(), EngineError>;
    /// Connection `conn` to `peer` closed.
    fn detach_connection(&mut self, conn: ConnectionId, peer: PublicKey)
        -> Result<(), EngineError>;
    /// Makes progress; false if there was nothing to do.
    fn pump(&mut self) -> bool;
    /// Whether the hub has no work queued.
    fn is_idle(&self) -> bool;
    /// Every event the hub raised since the last call.
    fn take_events(&mut self) -> Vec<Event>;
    /// The hub opens a channel of `sats` to `peer`, pushing `push` msat.
    fn create_channel(
        &mut self,
        peer: PublicKey,
        sats: u64,
        push: u64,
    ) -> Result<ChannelId, EngineError>;
    /// The funding transaction of the hub's channel `temp`.
    fn funding_transaction_generated(
        &mut self,
        temp: ChannelId,
        tx: Transaction,
    ) -> Result<(), EngineError>;
    /// The hub pays along `route`.
    fn send_payment(
        &mut self,
        route: &Route,
        hash: PaymentHash,
        secret: PaymentSecret,
        id: PaymentId,
    ) -> Result<(), EngineError>;
    /// The hub expects a payment of `amount` for `preimage`'s hash.
    fn create_inbound_payment(
        &mut self,
        preimage: PaymentPreimage,
        amount: Option<u64>,
    ) -> Result<(PaymentHash, PaymentSecret), EngineError>;
    /// The hub claims a payment made to it.
    fn claim_funds(&mut self, preimage: PaymentPreimage) -> Result<(), EngineError>;
    /// The hub fails back a payment made to it.
    fn fail_htlc_backwards(&mut self, hash: PaymentHash) -> Result<(), EngineError>;
    /// A new chain tip.
    fn best_block_updated(&mut self, height: u32, hash: BlockHash) -> Result<(), EngineError>;
    /// Transactions confirmed at `height`, with their index in the block.
    fn transactions_confirmed(
        &mut self,
        height: u32,
        txs: &[(u32, Transaction)],
    ) -> Result<(), EngineError>;
    /// Every channel of the hub.
    fn list_channels(&mut self) -> Vec<ChannelDetails>;
    /// A copy of the hub's channel `id` with `peer`.
    fn channel(&mut self, peer: PublicKey, id: ChannelId) -> Option<Channel>;
    /// A random choice for the network's interleaving (None: deterministic order).
    fn choose(&mut self, n: usize) -> Option<usize>;
    /// Times the hub crashed and restarted from its store since the last call (every
    /// connection dropped with it): 0 for a hub that never restarts on its own.
    fn take_restarts(&mut self) -> u64 {
        0
    }
}

impl Hub for Sim {
    fn node_id(&self) -> PublicKey {
        Sim::node_id(self)
    }
    fn shard_of(&self, peer: &PublicKey) -> usize {
        Sim::shard_of(self, peer)
    }
    fn attach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        transport: Transport,
        writer: Box<dyn ConnectionWriter>,
    ) -> Result<(), EngineError> {
        Sim::attach_connection(self, conn, peer, transport, writer)
    }
    fn connection_ciphertext(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        bytes: Vec<u8>,
    ) -> Result<(), EngineError> {
        Sim::connection_ciphertext(self, conn, peer, bytes)
    }
    fn detach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
    ) -> Result<(), EngineError> {
        Sim::detach_connection(self, conn, peer)
    }
    fn pump(&mut self) -> bool {
        self.step_random()
    }
    fn is_idle(&self) -> bool {
        Sim::is_idle(self)
    }
    fn take_events(&mut self) -> Vec<Event> {
        Sim::take_events(self)
    }
    fn create_channel(
        &mut self,
        peer: PublicKey,
        sats: u64,
        push: u64,
    ) -> Result<ChannelId, EngineError> {
        NodeApi::create_channel(&mut *self, peer, sats, push, 7, 2500)
    }
    fn funding_transaction_generated(
        &mut self,
        temp: ChannelId,
        tx: Transaction,
    ) -> Result<(), EngineError> {
        NodeApi::funding_transaction_generated(&mut *self, temp, tx)
    }
    fn send_payment(
        &mut self,
        route: &Route,
        hash: PaymentHash,
        secret: PaymentSecret,
        id: PaymentId,
    ) -> Result<(), EngineError> {
        NodeApi::send_payment(&mut *self, route, hash, secret, id)
    }
    fn create_inbound_payment(
        &mut self,
        preimage: PaymentPreimage,
        amount: Option<u64>,
    ) -> Result<(PaymentHash, PaymentSecret), EngineError> {
        NodeApi::create_inbound_payment(&mut *self, preimage, amount)
    }
    fn claim_funds(&mut self, preimage: PaymentPreimage) -> Result<(), EngineError> {
        NodeApi::claim_funds(&mut *self, preimage)
    }
    fn fail_htlc_backwards(&mut self, hash: PaymentHash) -> Result<(), EngineError> {
        NodeApi::fail_htlc_backwards(&mut *self, hash)
    }
    fn best_block_updated(&mut self, height: u32, hash: BlockHash) -> Result<(), EngineError> {
        NodeApi::best_block_updated(&mut *self, height, hash)
    }
    fn transactions_confirmed(
        &mut self,
        height: u32,
        txs: &[(u32, Transaction)],
    ) -> Result<(), EngineError> {
        NodeApi::transactions_confirmed(&mut *self, height, txs)
    }
    fn list_channels(&mut self) -> Vec<ChannelDetails> {
        NodeApi::list_channels(&mut *self).expect("list_channels")
    }
    fn channel(&mut self, peer: PublicKey, id: ChannelId) -> Option<Channel> {
        NodeApi::channel(&mut *self, peer, id).expect("channel")
    }
    fn choose(&mut self, n: usize) -> Option<usize> {
        Some(self.rng().below(n))
    }
    fn take_restarts(&mut self) -> u64 {
        Sim::take_restarts(self)
    }
}

/// The threaded engine as a [`Hub`].
pub struct Threaded {
    /// The engine.
    pub engine: Engine,
}

impl Hub for Threaded {
    fn node_id(&self) -> PublicKey {
        self.engine.node_id()
    }
    fn shard_of(&self, peer: &PublicKey) -> usize {
        self.engine.shard_of(peer)
    }
    fn attach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        transport: Transport,
        writer: Box<dyn ConnectionWriter>,
    ) -> Result<(), EngineError> {
        // A control message: it waits for room.
        self.engine.attach_connection(conn, peer, transport, writer)
    }
    fn connection_ciphertext(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        bytes: Vec<u8>,
    ) -> Result<(), EngineError> {
        self.engine.connection_ciphertext(conn, peer, bytes)
    }
    fn detach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
    ) -> Result<(), EngineError> {
        self.engine.detach_connection(conn, peer)
    }
    fn pump(&mut self) -> bool {
        if self.engine.is_idle() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
        true
    }
    fn is_idle(&self) -> bool {
        self.engine.is_idle()
    }
    fn take_events(&mut self) -> Vec<Event> {
        self.engine.drain_events()
    }
    fn create_channel(
        &mut self,
        peer: PublicKey,
        sats: u64,
        push: u64,
    ) -> Result<ChannelId, EngineError> {
        retry(|| self.engine.create_channel(peer, sats, push, 7, 2500))
    }
    fn funding_transaction_generated(
        &mut self,
        temp: ChannelId,
        tx: Transaction,
    ) -> Result<(), EngineError> {
        retry(|| self.engine.funding_transaction_generated(temp, tx.clone()))
    }
    fn send_payment(
        &mut self,
        route: &Route,
        hash: PaymentHash,
        secret: PaymentSecret,
        id: PaymentId,
    ) -> Result<(), EngineError> {
        retry(|| self.engine.send_payment(route, hash, secret, id))
    }
    fn create_inbound_payment(
        &mut self,
        preimage: PaymentPreimage,
        amount: Option<u64>,
    ) -> Result<(PaymentHash, PaymentSecret), EngineError> {
        retry(|| self.engine.create_inbound_payment(preimage, amount))
    }
    fn claim_funds(&mut self, preimage: PaymentPreimage) -> Result<(), EngineError> {
        retry(|| self.engine.claim_funds(preimage))
    }
    fn fail_htlc_backwards(&mut self, hash: PaymentHash) -> Result<(), EngineError> {
        retry(|| self.engine.fail_htlc_backwards(hash))
    }
    fn best_block_updated(&mut self, height: u32, hash: BlockHash) -> Result<(), EngineError> {
        retry(|| self.engine.best_block_updated(height, hash))
    }
    fn transactions_confirmed(
        &mut self,
        height: u32,
        txs: &[(u32, Transaction)],
    ) -> Result<(), EngineError> {
        retry(|| self.engine.transactions_confirmed(height, txs))
    }
    fn list_channels(&mut self) -> Vec<ChannelDetails> {
        retry(|| self.engine.list_channels()).expect("list_channels")
    }
    fn channel(&mut self, peer: PublicKey, id: ChannelId) -> Option<Channel> {
        retry(|| self.engine.channel(peer, id)).expect("channel")
    }
    fn choose(&mut self, _n: usize) -> Option<usize> {
        None
    }
}

/// Retries a call refused with `Full` (the shards keep draining their inboxes meanwhile).
fn retry<T>(mut f: impl FnMut() -> Result<T, EngineError>) -> Result<T, EngineError> {
    loop {
        match f() {
            Err(EngineError::Full { .. }) => std::thread::sleep(Duration::from_micros(50)),
            other => return other,
        }
    }
}
