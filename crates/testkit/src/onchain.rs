//! The test network on a validating chain: every transaction anyone broadcasts is submitted
//! to a [`ValidatingChain`] (scripts by libbitcoinconsensus, locktimes, BIP 68, relay
//! policy), every block is mined there and handed to the hub and every peer, and reorgs
//! disconnect blocks on every node before the new branch is fed.
//!
//! # Refusals
//! A broadcast the chain refuses is a violation of the scenario ([`Net::violations`]),
//! except:
//! - a benign one ([`Reject::is_benign`]: already confirmed, a node rebroadcasting what the
//!   chain has; a transaction already in the mempool is accepted, not refused);
//! - a lost race: the refusal is a conflict (an input already spent by a confirmed
//!   transaction, or a mempool transaction the newcomer cannot replace) and every
//!   transaction it conflicts with was broadcast by ANOTHER party (or put in a block by the
//!   test itself). Both sides of a channel may spend the funding output (each its
//!   commitment) and the contested outputs (an HTLC by preimage or by timeout, a revoked
//!   output by justice or by its owner): the first one in wins, as on the network. These
//!   are kept in [`Validating::conflicts`].
//!
//! A party's transaction conflicting with its OWN earlier one and failing to replace it is a
//! violation (a claim rebuilt for less fee, say), unless it is the same claim issued again:
//! the same inputs and the same outputs, differing only in what the outputs do not commit
//! to (its nLockTime, set to the tip when a monitor rebuilds it each block while it is
//! unconfirmed) and paying no more. The first stays in the mempool and confirms; those are
//! kept in [`Validating::reissues`].
//!
//! # Channel types
//! Anchor channels' zero-fee transactions need a wallet adding fee inputs
//! ([`MonitorEvent::BumpNeeded`]); this harness has no wallet, so on-chain scenarios open
//! `static_remotekey` channels ([`static_remotekey_config`]) and a `BumpNeeded` is a
//! violation. Anchors are covered at the monitor's level (lightning-core's chain tests).

use std::collections::HashMap;

use lightning_core::bitcoin::secp256k1::Secp256k1;
use lightning_core::bitcoin::{
    Block, BlockHash, CompressedPublicKey, OutPoint, ScriptBuf, Transaction, Txid,
};
use lightning_core::chain::{Balance, MonitorEvent};
use lightning_core::channel::{derive_peer_channel_keys, Channel};
use lightning_core::node::{Event, NodeConfig};
use lightning_core::secp256k1::PublicKey;
use lightning_core::secrets::FIRST_INDEX;
use lightning_core::types::{ChannelId, PaymentPreimage};
use shard_engine::{EngineError, NodeApi, Sim};

use crate::chain::{Reject, ValidatingChain};
use crate::hub::{Hub, Threaded};
use crate::{peer_seed, Net, Who};

/// The validating chain of a [`Net`] and what happened to the broadcasts.
#[derive(Debug)]
pub struct Validating {
    /// The chain.
    pub chain: ValidatingChain,
    /// Who broadcast each transaction first.
    pub origin: HashMap<Txid, Who>,
    /// Every broadcast, in order, with who made it (repeats included).
    pub broadcasts: Vec<(Who, Transaction)>,
    /// Refusals that were lost races with another party (see the module docs).
    pub conflicts: Vec<(Who, Txid, Reject)>,
    /// Refused re-issues of a party's own transaction (same inputs and outputs, paying no
    /// more): `(who, refused, the one in the mempool)` (module docs).
    pub reissues: Vec<(Who, Txid, Txid)>,
}

/// A node configuration opening `static_remotekey` channels (no anchors): every
/// transaction its monitor needs is complete without a wallet.
pub fn static_remotekey_config() -> NodeConfig {
    let mut config = NodeConfig::default();
    config.channel.negotiate_anchors = false;
    config
}

/// The script the on-chain scenarios' hub sweeps to (`NodeApi::set_sweep_script`): a
/// P2WPKH of a test key, so a test can tell the hub's claims by their outputs.
pub fn hub_sweep_script() -> ScriptBuf {
    let key = PublicKey::from_secret_key(&Secp256k1::signing_only(), &crate::secret(b"hub sweep"));
    ScriptBuf::new_p2wpkh(&CompressedPublicKey(key).wpubkey_hash())
}

/// What the on-chain scenarios need of the hub beyond [`Hub`].
pub trait ChainHub: Hub {
    /// Blocks from `height` up were disconnected; the best block is now `height - 1`, with
    /// hash `new_tip_hash`.
    fn block_disconnected(
        &mut self,
        height: u32,
        new_tip_hash: BlockHash,
    ) -> Result<(), EngineError>;
    /// The hub force-closes `channel_id`.
    fn force_close_channel(&mut self, channel_id: ChannelId) -> Result<(), EngineError>;
    /// What every monitored channel owes the hub on chain.
    fn claimable_balances(&mut self) -> Result<Vec<(ChannelId, Balance)>, EngineError>;
}

impl ChainHub for Sim {
    fn block_disconnected(
        &mut self,
        height: u32,
        new_tip_hash: BlockHash,
    ) -> Result<(), EngineError> {
        NodeApi::block_disconnected(&mut *self, height, new_tip_hash)
    }
    fn force_close_channel(&mut self, channel_id: ChannelId) -> Result<(), EngineError> {
        NodeApi::force_close_channel(&mut *self, channel_id)
    }
    fn claimable_balances(&mut self) -> Result<Vec<(ChannelId, Balance)>, EngineError> {
        NodeApi::claimable_balances(&mut *self)
    }
}

impl ChainHub for Threaded {
    fn block_disconnected(
        &mut self,
        height: u32,
        new_tip_hash: BlockHash,
    ) -> Result<(), EngineError> {
        retry(|| NodeApi::block_disconnected(&self.engine, height, new_tip_hash))
    }
    fn force_close_channel(&mut self, channel_id: ChannelId) -> Result<(), EngineError> {
        retry(|| NodeApi::force_close_channel(&self.engine, channel_id))
    }
    fn claimable_balances(&mut self) -> Result<Vec<(ChannelId, Balance)>, EngineError> {
        retry(|| NodeApi::claimable_balances(&self.engine))
    }
}

/// Retries a call refused with `Full`.
fn retry<T>(mut f: impl FnMut() -> Result<T, EngineError>) -> Result<T, EngineError> {
    loop {
        match f() {
            Err(EngineError::Full { .. }) => {
                std::thread::sleep(std::time::Duration::from_micros(50))
            }
            other => return other,
        }
    }
}

impl<H: Hub> Net<H> {
    /// The hub and `n` peers (node configuration `peer_config`) on `chain`: the hub must
    /// have been opened at `chain`'s tip (`chain.height()`, `chain.tip()`). Every broadcast
    /// goes to `chain` (see the module docs), funding transactions enter it on trust,
    /// [`Net::mine`] mines there, and channel closures are expected.
    pub fn new_validating(
        hub: H,
        n: usize,
        peer_config: NodeConfig,
        chain: ValidatingChain,
    ) -> Self {
        let (height, tip) = (chain.height(), chain.tip());
        let mut net = Self::build(hub, n, peer_config, height, tip);
        net.validating = Some(Validating {
            chain,
            origin: HashMap::new(),
            broadcasts: Vec::new(),
            reissues: Vec::new(),
            conflicts: Vec::new(),
        });
        net.closures_expected = true;
        net
    }

    /// The confirmed spend of `ch`'s funding output.
    ///
    /// # Panics
    /// If the network does not run on a validating chain or nothing spent it.
    pub fn funding_spend(&self, ch: &Channel) -> Transaction {
        let f = ch.funding_outpoint().expect("funded");
        let outpoint = OutPoint {
            txid: f.txid,
            vout: f.vout,
        };
        let txid = self.vchain().spender_of(&outpoint).expect("funding spent");
        self.vchain().get_tx(&txid).expect("tx").clone()
    }

    /// The validating chain.
    ///
    /// # Panics
    /// If the network does not run on one.
    pub fn vchain(&self) -> &ValidatingChain {
        &self.validating.as_ref().expect("a validating net").chain
    }

    /// The validating chain, mutably (to mine a block the test builds, say).
    ///
    /// # Panics
    /// If the network does not run on one.
    pub fn vchain_mut(&mut self) -> &mut ValidatingChain {
        &mut self.validating.as_mut().expect("a validating net").chain
    }

    /// Submits `tx`, broadcast by `who`, to the validating chain; a refusal is a violation
    /// unless benign or a lost race (module docs).
    pub(crate) fn submit_validating(&mut self, who: Who, tx: Transaction) {
        let v = self.validating.as_mut().expect("a validating net");
        let txid = tx.compute_txid();
        v.origin.entry(txid).or_insert(who);
        v.broadcasts.push((who, tx.clone()));
        let reject = match v.chain.submit(tx.clone()) {
            Ok(_) => return,
            Err(r) if r.is_benign() => return,
            Err(r) => r,
        };
        let others: Vec<Txid> = match &reject {
            Reject::InputSpent { by, .. } => vec![*by],
            Reject::ReplacementFeeTooLow { conflicts, .. } => conflicts.clone(),
            Reject::ReplacementFeerateTooLow { conflict } => vec![*conflict],
            _ => Vec::new(),
        };
        let lost_race = !others.is_empty()
            && others
                .iter()
                .all(|t| v.origin.get(t).is_none_or(|w| *w != who));
        // The same claim issued again (same inputs, same outputs, a new nLockTime say),
        // paying no more: the first stays in the mempool and confirms.
        let reissue = others.len() == 1
            && v.origin.get(&others[0]) == Some(&who)
            && v.chain.get_tx(&others[0]).is_some_and(|first| {
                let spends = |t: &Transaction| {
                    let mut o: Vec<OutPoint> = t.input.iter().map(|i| i.previous_output).collect();
                    o.sort();
                    o
                };
                spends(first) == spends(&tx) && first.output == tx.output
            });
        if lost_race {
            v.conflicts.push((who, txid, reject));
        } else if reissue {
            v.reissues.push((who, txid, others[0]));
        } else {
            self.violations.push(format!(
                "the chain refused {who:?}'s broadcast {txid}: {reject:?}"
            ));
        }
    }

    /// What the harness checks of each on-chain event: a fee bump asked for is a violation
    /// (no wallet here; module docs).
    pub(crate) fn observe_on_chain(&mut self, who: Who, e: &Event) {
        if self.validating.is_none() {
            return;
        }
        if let Event::OnChain {
            event: MonitorEvent::BumpNeeded { tx, .. },
            ..
        } = e
        {
            self.violations.push(format!(
                "{who:?} needs a fee bump for {} (no wallet in this harness)",
                tx.compute_txid()
            ));
        }
    }

    /// Mines `blocks` blocks on the validating chain, each handed to every node.
    pub(crate) fn mine_validating(&mut self, blocks: u32) {
        for _ in 0..blocks {
            let block = self.vchain_mut().mine(1).pop().expect("a block");
            let height = self.vchain().height();
            self.deliver_block(height, &block);
        }
    }

    /// Mines one block holding exactly `txs` (consensus-checked, not relay policy: a miner
    /// taking them privately), hands it to every node and runs. Panics if it is invalid.
    pub fn mine_exactly(&mut self, txs: Vec<Transaction>) {
        let block = match self.vchain_mut().mine_block_with(txs) {
            Ok(block) => block,
            Err((txid, reject)) => panic!("block refused: {txid}: {reject:?}"),
        };
        let height = self.vchain().height();
        self.deliver_block(height, &block);
    }

    /// Block `block` at `height`: its transactions and the new tip to the hub and every
    /// peer, then runs until quiet.
    fn deliver_block(&mut self, height: u32, block: &Block) {
        let tip = block.block_hash();
        let txs: Vec<(u32, Transaction)> = crate::chain::block_txdata(block);
        // A preimage revealed on chain is public: the hub may settle upstream with it as
        // with a downstream peer's update_fulfill_htlc.
        for (_, tx) in &txs {
            for input in &tx.input {
                for item in input.witness.iter().filter(|w| w.len() == 32) {
                    let mut bytes = [0u8; 32];
                    bytes.copy_from_slice(item);
                    let hash = PaymentPreimage(bytes).payment_hash();
                    if self.plan.contains_key(&hash) {
                        self.downstream_fulfilled.insert(hash);
                    }
                }
            }
        }
        let refs: Vec<(u32, &Transaction)> = txs.iter().map(|(k, t)| (*k, t)).collect();
        for p in &mut self.peers {
            p.core.transactions_confirmed(height, &refs);
            p.core.best_block_updated(height, tip);
        }
        self.hub
            .transactions_confirmed(height, &txs)
            .expect("confirmed");
        self.hub
            .best_block_updated(height, tip)
            .expect("best block");
        self.chain.height = height;
        self.chain.tip = tip;
        for (_, tx) in &txs {
            self.chain.confirmed.insert(tx.compute_txid());
        }
        self.run();
    }

    /// Mines until the tip is at `height`.
    pub fn mine_to(&mut self, height: u32) {
        while self.vchain().height() < height {
            self.mine(1);
        }
    }

    /// The fee `tx` pays, from the outputs it spends (confirmed or in the mempool).
    ///
    /// # Panics
    /// If an input's transaction is unknown to the chain.
    pub fn fee_of(&self, tx: &Transaction) -> u64 {
        let inputs: u64 = tx
            .input
            .iter()
            .map(|i| self.prevout_value(&i.previous_output))
            .sum();
        let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        inputs - outputs
    }

    /// The value of output `outpoint` (of a confirmed or mempool transaction).
    pub fn prevout_value(&self, outpoint: &OutPoint) -> u64 {
        let tx = self
            .vchain()
            .get_tx(&outpoint.txid)
            .unwrap_or_else(|| panic!("unknown transaction {}", outpoint.txid));
        tx.output[outpoint.vout as usize].value.to_sat()
    }

    /// The `Event::OnChain` events of `who`, in order.
    pub fn on_chain_events(&self, who: Who) -> Vec<(ChannelId, MonitorEvent)> {
        let events = match who {
            Who::Hub => &self.hub_events,
            Who::Peer(i) => &self.peers[i].events,
        };
        events
            .iter()
            .filter_map(|e| match e {
                Event::OnChain {
                    channel_id, event, ..
                } => Some((*channel_id, event.clone())),
                _ => None,
            })
            .collect()
    }
}

impl<H: ChainHub> Net<H> {
    /// Blocks from `fork` up were disconnected: every node is told, then `blocks` (the new
    /// branch, its first at `fork`) are fed one by one.
    fn switch_branch(&mut self, fork: u32, blocks: &[Block]) {
        // The fork point: the block below `fork`, which the reorg kept.
        let fork_hash = self
            .vchain()
            .block(fork - 1)
            .expect("the fork point is on the chain")
            .block_hash();
        for p in &mut self.peers {
            p.core.block_disconnected(fork, fork_hash);
        }
        self.hub
            .block_disconnected(fork, fork_hash)
            .expect("block_disconnected");
        self.run();
        for (k, block) in blocks.iter().enumerate() {
            self.deliver_block(fork + k as u32, block);
        }
    }

    /// Reorgs confirmed `txid` out for a longer branch whose first block holds
    /// `replacement` ([`ValidatingChain::reorg_replacing`]), on every node.
    pub fn reorg_replacing(&mut self, txid: Txid, replacement: Option<Transaction>) {
        let (fork, _) = self.vchain().confirmed_at(&txid).expect("confirmed");
        let blocks = self
            .vchain_mut()
            .reorg_replacing(txid, replacement)
            .expect("reorg");
        self.switch_branch(fork, &blocks);
    }

    /// Replaces the last `depth` blocks by `blocks` (exactly those transactions each,
    /// [`ValidatingChain::reorg`]), on every node.
    pub fn reorg(&mut self, depth: u32, blocks: Vec<Vec<Transaction>>) {
        let fork = self.vchain().height() + 1 - depth;
        let mined = self.vchain_mut().reorg(depth, blocks).expect("reorg");
        self.switch_branch(fork, &mined);
    }
}

/// A cheater's second-stage transactions: the HTLC-timeout (of every HTLC it offered) and
/// HTLC-success (of every HTLC offered to it whose preimage is in `preimages`) transactions
/// of `stale`'s latest holder commitment (a copy of peer `peer`'s channel with `hub`, kept
/// from an old state), signed with the keys peer `peer` derives from its seed and finalized
/// with the hub's HTLC signatures the stale state holds. Each is checked against the HTLC
/// key the commitment commits to.
pub fn stale_htlc_txs(
    peer: usize,
    hub: &lightning_core::secp256k1::PublicKey,
    stale: &Channel,
    preimages: &[PaymentPreimage],
) -> Vec<Transaction> {
    let secp = Secp256k1::new();
    let index = stale
        .key_index()
        .expect("a channel of a node has its key index");
    let keys = derive_peer_channel_keys(&peer_seed(peer), hub, index);
    let commit = stale.local_commit();
    let point = keys
        .per_commitment_point(&secp, FIRST_INDEX - commit.index)
        .expect("point");
    let htlc_key = keys.htlc_key(&secp, &point).expect("htlc key");
    let commitment = stale.local_commitment_tx().expect("commitment");
    let mut out = Vec::new();
    for (htlc_tx, remote_sig) in commitment.htlc_txs().iter().zip(&commit.htlc_signatures) {
        let local_sig = htlc_tx.sign_local(&secp, &htlc_key);
        htlc_tx
            .verify_local(&secp, &local_sig)
            .expect("the peer's derived HTLC key is the commitment's");
        let preimage = if htlc_tx.is_success() {
            match preimages
                .iter()
                .find(|p| p.payment_hash() == htlc_tx.htlc().payment_hash)
            {
                Some(p) => Some(p),
                None => continue,
            }
        } else {
            None
        };
        out.push(
            htlc_tx
                .finalize(remote_sig, &local_sig, preimage)
                .expect("finalized"),
        );
    }
    out
}
