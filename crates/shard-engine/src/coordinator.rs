//! The coordinator: the little state every shard and the API need to route work. It never
//! touches a peer's or a channel's state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use lightning_core::bitcoin::BlockHash;
use lightning_core::node::{ApiError, NodeConfig, PaymentId};
use lightning_core::secp256k1::PublicKey;
use lightning_core::types::{ChannelId, PaymentHash, ShortChannelId};
use parking_lot::RwLock;

/// What the coordinator holds (read through [`Coordinator::read`]).
#[derive(Debug)]
pub struct CoordinatorState {
    /// Channel id (temporary or final) to the peer's node id.
    pub id_to_peer: HashMap<ChannelId, PublicKey>,
    /// Short channel id or alias to the peer and channel: what forwarding needs.
    pub scid_to_channel: HashMap<ShortChannelId, (PublicKey, ChannelId)>,
    /// The short ids of each channel, to forget them when it closes.
    channel_scids: HashMap<ChannelId, Vec<ShortChannelId>>,
    /// The best block (height, hash).
    pub best_block: (u32, BlockHash),
    /// The node configuration every shard runs with.
    pub config: NodeConfig,
    /// The shard that accepted each of our payments still in flight.
    pub payment_shard: HashMap<PaymentId, usize>,
    /// Ids of our payments that completed, on any shard, with the best height then:
    /// refused for `NodeConfig::payment_id_retention_blocks` ([`Coordinator::reserve_payment`];
    /// rebuilt from every shard's completed ids on a restart, whichever shard took them
    /// back: see [`crate::durable`]).
    pub completed_payments: HashMap<PaymentId, u32>,
    /// The shards holding HTLCs of each claimable payment to us.
    pub claimable: HashMap<PaymentHash, Vec<usize>>,
}

/// The shared, read-mostly routing state behind a `parking_lot::RwLock`.
///
/// Writers are rare (a channel opens, becomes ready or closes; a block arrives; a payment
/// starts or ends); readers are every cross-shard forward and resolution. `docs/ENGINE.md`
/// explains why parking_lot's lock (which is eventually fair: a waiting writer blocks new
/// readers) suffices, with the measurement from `tests/rwlock_fairness.rs`.
#[derive(Debug)]
pub struct Coordinator {
    state: RwLock<CoordinatorState>,
    reads: AtomicU64,
    writes: AtomicU64,
}

/// How often the coordinator's lock was taken, by kind (for the architecture figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoordinatorAccesses {
    /// Read acquisitions.
    pub reads: u64,
    /// Write acquisitions.
    pub writes: u64,
}

impl Coordinator {
    /// An empty coordinator.
    pub fn new(config: NodeConfig, best_height: u32, best_hash: BlockHash) -> Self {
        Coordinator {
            state: RwLock::new(CoordinatorState {
                id_to_peer: HashMap::new(),
                scid_to_channel: HashMap::new(),
                channel_scids: HashMap::new(),
                best_block: (best_height, best_hash),
                config,
                payment_shard: HashMap::new(),
                completed_payments: HashMap::new(),
                claimable: HashMap::new(),
            }),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    fn r(&self) -> parking_lot::RwLockReadGuard<'_, CoordinatorState> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.state.read()
    }

    fn w(&self) -> parking_lot::RwLockWriteGuard<'_, CoordinatorState> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.state.write()
    }

    /// How often the lock has been taken for reading and for writing.
    pub fn accesses(&self) -> CoordinatorAccesses {
        CoordinatorAccesses {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }

    /// A read guard over the whole state.
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, CoordinatorState> {
        self.r()
    }

    /// The peer of a channel (temporary or final id).
    pub fn peer_of_channel(&self, channel_id: &ChannelId) -> Option<PublicKey> {
        self.r().id_to_peer.get(channel_id).copied()
    }

    /// The peer and channel of a short channel id or alias.
    pub fn channel_of_scid(&self, scid: &ShortChannelId) -> Option<(PublicKey, ChannelId)> {
        self.r().scid_to_channel.get(scid).copied()
    }

    /// The best block.
    pub fn best_block(&self) -> (u32, BlockHash) {
        self.r().best_block
    }

    /// The configuration.
    pub fn config(&self) -> NodeConfig {
        self.r().config.clone()
    }

    /// Records that `channel_id` belongs to `node_id`.
    pub fn insert_channel(&self, channel_id: ChannelId, node_id: PublicKey) {
        let mut s = self.w();
        s.id_to_peer.insert(channel_id, node_id);
    }

    /// Records a ready channel's short ids (real and alias).
    pub fn insert_scids(
        &self,
        channel_id: ChannelId,
        node_id: PublicKey,
        scids: &[ShortChannelId],
    ) {
        let mut s = self.w();
        s.id_to_peer.insert(channel_id, node_id);
        for scid in scids {
            s.scid_to_channel.insert(*scid, (node_id, channel_id));
            let known = s.channel_scids.entry(channel_id).or_default();
            if !known.contains(scid) {
                known.push(*scid);
            }
        }
    }

    /// Forgets a closed channel's short ids: nothing more is forwarded to it. Its id stays
    /// mapped so results for its HTLCs (on chain) still find their way.
    pub fn channel_closed(&self, channel_id: &ChannelId) {
        let mut s = self.w();
        if let Some(scids) = s.channel_scids.remove(channel_id) {
            for scid in scids {
                if s.scid_to_channel.get(&scid).map(|(_, c)| c) == Some(channel_id) {
                    s.scid_to_channel.remove(&scid);
                }
            }
        }
    }

    /// Sets the best block; forgets completed payment ids whose retention window passed.
    pub fn set_best_block(&self, height: u32, hash: BlockHash) {
        let mut s = self.w();
        s.best_block = (height, hash);
        let window = s.config.payment_id_retention_blocks;
        s.completed_payments
            .retain(|_, completed| height < completed.saturating_add(window));
    }

    /// Records the shard that accepted payment `id`.
    pub fn payment_started(&self, id: PaymentId, shard: usize) {
        self.w().payment_shard.insert(id, shard);
    }

    /// Reserves payment id `id` for a payment about to start on `shard`, atomically over
    /// every shard: refused while a payment with it is in flight
    /// ([`ApiError::DuplicatePayment`]) or completed within
    /// `NodeConfig::payment_id_retention_blocks` ([`ApiError::PaymentIdRecentlyUsed`]).
    /// Undo with [`Coordinator::release_payment`] if the payment does not start.
    pub fn reserve_payment(&self, id: PaymentId, shard: usize) -> Result<(), ApiError> {
        let mut s = self.w();
        if s.payment_shard.contains_key(&id) {
            return Err(ApiError::DuplicatePayment(id));
        }
        if let Some(&completed_height) = s.completed_payments.get(&id) {
            let retained_until_height =
                completed_height.saturating_add(s.config.payment_id_retention_blocks);
            if s.best_block.0 < retained_until_height {
                return Err(ApiError::PaymentIdRecentlyUsed {
                    payment_id: id,
                    completed_height,
                    retained_until_height,
                });
            }
        }
        s.payment_shard.insert(id, shard);
        Ok(())
    }

    /// Undoes [`Coordinator::reserve_payment`] for a payment that did not start.
    pub fn release_payment(&self, id: &PaymentId) {
        self.w().payment_shard.remove(id);
    }

    /// Forgets a finished payment; its id stays refused for the retention window, counted
    /// from `height` (the best height of the shard it completed on).
    pub fn payment_finished(&self, id: &PaymentId, height: u32) {
        let mut s = self.w();
        s.payment_shard.remove(id);
        if s.config.payment_id_retention_blocks > 0 {
            s.completed_payments.insert(*id, height);
        }
    }

    /// Records a payment id completed at `height` (from a shard's completed payment
    /// records, on restart).
    pub fn payment_completed(&self, id: PaymentId, height: u32) {
        let mut s = self.w();
        let e = s.completed_payments.entry(id).or_insert(height);
        *e = (*e).max(height);
    }

    /// The shard that accepted payment `id`.
    pub fn payment_shard(&self, id: &PaymentId) -> Option<usize> {
        self.r().payment_shard.get(id).copied()
    }

    /// Shard `shard` holds a claimable HTLC of `hash`.
    pub fn claimable_at(&self, hash: PaymentHash, shard: usize) {
        let mut s = self.w();
        let shards = s.claimable.entry(hash).or_default();
        if !shards.contains(&shard) {
            shards.push(shard);
        }
    }

    /// The shards holding claimable HTLCs of `hash`.
    pub fn claimable_shards(&self, hash: &PaymentHash) -> Vec<usize> {
        self.state
            .read()
            .claimable
            .get(hash)
            .cloned()
            .unwrap_or_default()
    }

    /// Shard `shard` no longer holds claimable HTLCs of `hash` (claimed or failed back).
    pub fn claim_done(&self, hash: &PaymentHash, shard: usize) {
        let mut s = self.w();
        if let Some(shards) = s.claimable.get_mut(hash) {
            shards.retain(|&x| x != shard);
            if shards.is_empty() {
                s.claimable.remove(hash);
            }
        }
    }
}
