//! The node's API, written once: [`NodeApi`] is a trait whose every method is provided over
//! any [`Backend`] (the threaded [`Engine`](crate::Engine), and with the `sim` feature the
//! simulator). A call is routed to the shard that owns its peer or channel, runs there as an
//! [`ApiTask`] (a closure over that shard's `NodeCore`), and its answer is released only once
//! the batch that ran it is durable. The events the call caused are queued before it
//! returns: a host that drains events right after a call sees them.
//!
//! # Adding a call
//! One `NodeCore` method, then one provided method here that picks the shard and runs the
//! core method in a task; the threaded engine, the simulator and the test network get it
//! from this trait. Then one C function (crates/ffi) and one RPC method (crates/node). There
//! is no per-call message enum and no per-backend wrapper to extend.

use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver};
use lightning_core::bitcoin::{BlockHash, ScriptBuf, Transaction};
use lightning_core::chain::bump::{AnchorParent, BumpError};
use lightning_core::channel::Channel;
use lightning_core::node::{ApiError, ChannelDetails, PaymentId, Route};
use lightning_core::secp256k1::PublicKey;
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};

use crate::coordinator::Coordinator;
use crate::error::EngineError;
use crate::msg::ShardMsg;
use crate::placement::Placement;
use crate::shard::Shard;

/// The work of one API call on the shard that must run it: a closure over the shard's state.
/// What it returns is a [`Reply`], released (handed to the caller) only after the batch that
/// ran the task committed.
pub struct ApiTask {
    run: Box<TaskFn>,
    /// Whether the batch that runs it commits (nearly every call's: its answer, or the
    /// caller's next step, relies on the state it leaves being durable).
    commits: bool,
}

/// The closure inside an [`ApiTask`].
type TaskFn = dyn FnOnce(&mut Shard) -> Option<Reply> + Send;

impl ApiTask {
    /// A task whose answer nobody waits for (a block, say): its batch commits all the same,
    /// so that an engine idle after it holds it durably.
    pub(crate) fn detached(f: impl FnOnce(&mut Shard) + Send + 'static) -> Self {
        ApiTask {
            run: Box::new(move |shard| {
                f(shard);
                None
            }),
            commits: true,
        }
    }

    /// A task that answers into a one-slot channel (the caller waits on its receiver).
    fn answering<R: Send + 'static>(
        f: impl FnOnce(&mut Shard) -> R + Send + 'static,
    ) -> (Self, Receiver<R>) {
        Self::answering_with(f, true)
    }

    /// As [`ApiTask::answering`]; `commits` false for a task that changes no state and whose
    /// answer depends on none a commit would make durable (a derivation from the node's
    /// seed): its batch need not commit for it.
    fn answering_with<R: Send + 'static>(
        f: impl FnOnce(&mut Shard) -> R + Send + 'static,
        commits: bool,
    ) -> (Self, Receiver<R>) {
        let (tx, rx) = bounded(1);
        let task = ApiTask {
            run: Box::new(move |shard| {
                let answer = f(shard);
                Some(Reply(Box::new(move || {
                    // The caller may have given up waiting: nothing to do then.
                    let _ = tx.try_send(answer);
                })))
            }),
            commits,
        };
        (task, rx)
    }

    /// Whether the batch that runs this task must commit.
    pub(crate) fn commits(&self) -> bool {
        self.commits
    }

    /// Runs the task on `shard`.
    pub(crate) fn run(self, shard: &mut Shard) -> Option<Reply> {
        (self.run)(shard)
    }
}

impl core::fmt::Debug for ApiTask {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ApiTask")
    }
}

/// An API call's answer, held back until the state it reports is durable (released after
/// the batch's commit, which its task asked for).
pub struct Reply(Box<dyn FnOnce() + Send>);

impl Reply {
    /// Hands the answer to the caller.
    pub fn send(self) {
        (self.0)()
    }
}

impl core::fmt::Debug for Reply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Reply")
    }
}

/// How API calls reach shards: what a front end (threads, simulator) provides so that every
/// [`NodeApi`] method works on it.
pub trait Backend {
    /// Which shard owns which peer.
    fn placement(&self) -> &Placement;
    /// The shared maps (channel ids and short channel ids to peers, the best block).
    fn coordinator(&self) -> &Coordinator;
    /// Queues `msg` for `shard`. A `control` message (chain updates, registrations that every
    /// shard must see) waits for room; any other gets [`EngineError::Full`].
    fn enqueue(&mut self, shard: usize, msg: ShardMsg, control: bool) -> Result<(), EngineError>;
    /// Queues the task of a call whose caller waits for the answer.
    fn submit(&mut self, shard: usize, task: ApiTask) -> Result<(), EngineError>;
    /// Waits for the answer of a task submitted to `shard`.
    fn wait<R>(&mut self, shard: usize, answer: &Receiver<R>) -> Result<R, EngineError>;
    /// The host's fee estimator's current answer ([`crate::FeeEstimator`]), asked on every
    /// [`NodeApi::best_block_updated`]; `None` without an estimator (the default) or when it
    /// has no answer.
    fn estimated_fees(&self) -> Option<lightning_core::node::FeeEstimates> {
        None
    }
}

/// Runs `f` on `shard` and waits for its answer (released after its batch committed).
fn call<B: Backend, R: Send + 'static>(
    b: &mut B,
    shard: usize,
    f: impl FnOnce(&mut Shard) -> R + Send + 'static,
) -> Result<R, EngineError> {
    let (task, answer) = ApiTask::answering(f);
    b.submit(shard, task)?;
    b.wait(shard, &answer)
}

fn peer_of(b: &impl Backend, channel_id: &ChannelId) -> Result<PublicKey, EngineError> {
    b.coordinator()
        .peer_of_channel(channel_id)
        .ok_or(EngineError::UnknownChannel(*channel_id))
}

/// The node's calls, the same on every [`Backend`]: implemented for `&Engine` (so
/// `engine.send_payment(..)` works on an `Engine`, a `&Engine` or an `Arc<Engine>`) and, with
/// the `sim` feature, for `&mut Sim`. Bring the trait into scope to call them.
pub trait NodeApi: Backend + Sized {
    /// Opens a channel: returns its temporary id once the peer's shard has queued
    /// `open_channel`. The peer must be connected. When the peer accepts, the engine emits
    /// [`Event::FundingGenerationReady`](lightning_core::node::Event::FundingGenerationReady):
    /// answer it with [`NodeApi::funding_transaction_generated`]. The channel is pending
    /// (`ChannelPending`) once the peer signed, and usable at `ChannelReady`, after the
    /// funding transaction has its confirmations.
    ///
    /// ```
    /// use shard_engine::lightning_core::bitcoin::{hashes::Hash, OutPoint, Txid};
    /// use shard_engine::lightning_core::node::Event;
    /// use shard_engine::lightning_core::wallet::funding_transaction_from_utxo;
    /// use shard_engine::NodeApi;
    /// # use std::time::Duration;
    /// # use shard_engine::Engine;
    /// # use shard_engine::lightning_core::bitcoin::BlockHash;
    /// # use shard_engine::lightning_core::secp256k1::SecretKey;
    /// # fn engine(byte: u8) -> Engine {
    /// #     let secret = SecretKey::from_slice(&[byte; 32]).expect("a valid key");
    /// #     Engine::new(Default::default(), secret, [byte; 32], 100, BlockHash::all_zeros())
    /// # }
    /// # // Carries the encrypted bytes both ways until the engines are quiet.
    /// # fn pump(a: &Engine, b: &Engine) {
    /// #     let mut quiet = 0;
    /// #     while quiet < 20 {
    /// #         let mut moved = false;
    /// #         for (from, to, out, into) in [(a, b, 1, 7), (b, a, 7, 1)] {
    /// #             let bytes = from.connection_outputs(out).expect("connected").bytes;
    /// #             if !bytes.is_empty() {
    /// #                 to.handle_bytes(into, &bytes).expect("taken");
    /// #                 moved = true;
    /// #             }
    /// #         }
    /// #         quiet = if moved || !a.is_idle() || !b.is_idle() { 0 } else { quiet + 1 };
    /// #         std::thread::sleep(Duration::from_millis(1));
    /// #     }
    /// # }
    /// # let (alice, bob) = (engine(1), engine(2));
    /// # let act_one = alice.new_outbound_connection(1, bob.node_id())?;
    /// # bob.new_inbound_connection(7)?;
    /// # let act_three = alice.handle_bytes(1, &bob.handle_bytes(7, &act_one)?)?;
    /// # bob.handle_bytes(7, &act_three)?;
    /// # pump(&alice, &bob);
    /// // Alice and Bob are connected (see Engine::new_outbound_connection).
    /// let feerate_per_kw = 2500;
    /// alice.create_channel(bob.node_id(), 1_000_000, 0, 42, feerate_per_kw)?;
    /// # pump(&alice, &bob);
    /// for event in alice.drain_events() {
    ///     if let Event::FundingGenerationReady {
    ///         temporary_channel_id,
    ///         output_script,
    ///         channel_value_satoshis,
    ///         ..
    ///     } = event
    ///     {
    ///         // A coin of Alice's wallet worth at least the channel value (the rest is fee).
    ///         let coin = OutPoint { txid: Txid::from_byte_array([0xab; 32]), vout: 0 };
    ///         let tx = funding_transaction_from_utxo(
    ///             coin,
    ///             1_000_500,
    ///             output_script,
    ///             channel_value_satoshis,
    ///         )?;
    ///         // (The wallet signs the input here.)
    ///         alice.funding_transaction_generated(temporary_channel_id, tx)?;
    ///     }
    /// }
    /// # pump(&alice, &bob);
    /// // Bob signed Alice's first commitment: her engine asks for the broadcast itself.
    /// let events = alice.drain_events();
    /// assert!(events.iter().any(|e| matches!(e, Event::BroadcastTransaction { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn create_channel(
        mut self,
        node_id: PublicKey,
        funding_satoshis: u64,
        push_msat: u64,
        user_channel_id: u128,
        feerate_per_kw: u32,
    ) -> Result<ChannelId, EngineError> {
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            let result = s.core_mut().create_channel(
                node_id,
                funding_satoshis,
                push_msat,
                user_channel_id,
                feerate_per_kw,
            );
            if let Ok(temp) = result {
                s.coordinator().insert_channel(temp, node_id);
            }
            result
        })?
        .map_err(EngineError::Api)
    }

    /// The funding transaction for the channel `temporary_channel_id` (the answer to its
    /// [`Event::FundingGenerationReady`](lightning_core::node::Event::FundingGenerationReady)):
    /// it must pay the event's `output_script` exactly the channel value, and should be
    /// signed (the engine keeps the transaction given here).
    ///
    /// Do NOT broadcast it yourself: once the peer's `funding_signed` arrives (so that the
    /// channel has a signed way back), the engine emits
    /// [`Event::BroadcastTransaction`](lightning_core::node::Event::BroadcastTransaction) for
    /// this same transaction, and the application broadcasts what that event carries like
    /// any other. Broadcasting it here as well would only send it twice, and before the
    /// peer's signature it could lock the funds.
    /// [`lightning_core::wallet::funding_transaction_from_utxo`] builds it from one coin,
    /// [`crate::fund_channel`] from a [`crate::Wallet`]; the example on
    /// [`NodeApi::create_channel`] shows the whole exchange.
    fn funding_transaction_generated(
        mut self,
        temporary_channel_id: ChannelId,
        funding_tx: Transaction,
    ) -> Result<(), EngineError> {
        let node_id = peer_of(&self, &temporary_channel_id)?;
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            s.core_mut()
                .funding_transaction_generated(temporary_channel_id, node_id, funding_tx)
        })?
        .map_err(EngineError::Api)
    }

    /// Pays along `route`, on the shard owning the first hop's channel. The payment ends
    /// with [`Event::PaymentSent`](lightning_core::node::Event::PaymentSent) (the preimage:
    /// proof of payment) or [`Event::PaymentFailed`](lightning_core::node::Event::PaymentFailed),
    /// each naming `payment_id`.
    ///
    /// ```
    /// use shard_engine::lightning_core::node::{PaymentId, Route, RouteHop};
    /// use shard_engine::lightning_core::secp256k1::PublicKey;
    /// use shard_engine::lightning_core::types::{PaymentHash, PaymentSecret, ShortChannelId};
    /// use shard_engine::{Engine, EngineError, NodeApi};
    ///
    /// /// Pays `amount_msat` to our channel peer `payee` over the channel `scid` (from its
    /// /// `ChannelReady` event or `list_channels`), for the payee's invoice (hash, secret).
    /// fn pay_peer(
    ///     engine: &Engine,
    ///     payee: PublicKey,
    ///     scid: ShortChannelId,
    ///     amount_msat: u64,
    ///     (payment_hash, payment_secret): (PaymentHash, PaymentSecret),
    /// ) -> Result<PaymentId, EngineError> {
    ///     let route = Route {
    ///         hops: vec![RouteHop {
    ///             node_id: payee,
    ///             short_channel_id: scid,
    ///             fee_msat: amount_msat, // the last hop: what it receives
    ///             cltv_expiry_delta: 50, // at least the payee's min_final_cltv_expiry_delta
    ///         }],
    ///     };
    ///     // One id per payment, chosen by the application (here: the invoice's hash).
    ///     let payment_id = PaymentId(payment_hash.0);
    ///     engine.send_payment(&route, payment_hash, payment_secret, payment_id)?;
    ///     Ok(payment_id) // then wait for PaymentSent or PaymentFailed with this id
    /// }
    /// ```
    fn send_payment(
        mut self,
        route: &Route,
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
        payment_id: PaymentId,
    ) -> Result<(), EngineError> {
        // The shard owning the first hop's channel; with no such channel, any shard (shard 0)
        // refuses or fails it exactly as a lone NodeCore would.
        let shard = route
            .hops
            .first()
            .and_then(|hop| self.coordinator().channel_of_scid(&hop.short_channel_id))
            .map_or(0, |(node_id, _)| self.placement().shard_of(&node_id));
        // The id is reserved over every shard first (an id in flight or completed recently
        // on any shard is refused here), and released if the shard refuses the payment.
        self.coordinator()
            .reserve_payment(payment_id, shard)
            .map_err(EngineError::Api)?;
        let route = route.clone();
        let (task, answer) = ApiTask::answering(move |s: &mut Shard| {
            let result =
                s.core_mut()
                    .send_payment(&route, payment_hash, payment_secret, payment_id);
            if result.is_err() {
                s.coordinator().release_payment(&payment_id);
            }
            result
        });
        if let Err(e) = self.submit(shard, task) {
            // Never queued: the payment cannot start.
            self.coordinator().release_payment(&payment_id);
            return Err(e);
        }
        // A task queued but not answered in time still runs: it keeps or releases the id.
        self.wait(shard, &answer)?.map_err(EngineError::Api)
    }

    /// Makes a payment we expect (stateless: see `NodeCore::create_inbound_payment`); returns
    /// its hash and secret, for the payer (in an invoice). Keep `payment_preimage` (32 bytes
    /// from a cryptographic RNG) to claim the payment when it arrives: see the example on
    /// [`NodeApi::claim_funds`].
    fn create_inbound_payment(
        mut self,
        payment_preimage: PaymentPreimage,
        amount_msat: Option<u64>,
    ) -> Result<(PaymentHash, PaymentSecret), EngineError> {
        // Stateless: shard 0 derives the secret from the node seed, the same on every shard,
        // and whichever shard an HTLC of it reaches verifies it the same way. Nothing is
        // stored, so the answer waits for no commit.
        let (task, answer) = ApiTask::answering_with(
            move |s| {
                s.core()
                    .create_inbound_payment(&payment_preimage, amount_msat)
            },
            false,
        );
        self.submit(0, task)?;
        self.wait(0, &answer)
    }

    /// Registers a payment we expect whose hash and secret the application chose.
    fn register_inbound_payment(
        mut self,
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
        amount_msat: Option<u64>,
    ) -> Result<(), EngineError> {
        register_on(&mut self, 0, payment_hash, payment_secret, amount_msat)
    }

    /// Claims a claimable payment on the shard(s) holding its HTLCs, answering its
    /// [`Event::PaymentClaimable`](lightning_core::node::Event::PaymentClaimable); the engine
    /// then emits [`Event::PaymentClaimed`](lightning_core::node::Event::PaymentClaimed).
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// use shard_engine::lightning_core::node::Event;
    /// use shard_engine::lightning_core::types::{PaymentHash, PaymentPreimage, PaymentSecret};
    /// use shard_engine::{Engine, EngineError, NodeApi};
    ///
    /// /// An invoice for `amount_msat`: its hash and secret go to the payer; the preimage
    /// /// (32 bytes from a cryptographic RNG) stays here until the payment arrives.
    /// fn invoice(
    ///     engine: &Engine,
    ///     preimages: &mut HashMap<PaymentHash, PaymentPreimage>,
    ///     preimage: PaymentPreimage,
    ///     amount_msat: u64,
    /// ) -> Result<(PaymentHash, PaymentSecret), EngineError> {
    ///     let (hash, secret) = engine.create_inbound_payment(preimage, Some(amount_msat))?;
    ///     preimages.insert(hash, preimage);
    ///     Ok((hash, secret))
    /// }
    ///
    /// /// Claims the payments of our invoices; fails back any other.
    /// fn on_event(
    ///     engine: &Engine,
    ///     preimages: &HashMap<PaymentHash, PaymentPreimage>,
    ///     event: Event,
    /// ) -> Result<(), EngineError> {
    ///     if let Event::PaymentClaimable { payment_hash, .. } = event {
    ///         match preimages.get(&payment_hash) {
    ///             Some(preimage) => engine.claim_funds(*preimage)?,
    ///             None => engine.fail_htlc_backwards(payment_hash)?,
    ///         }
    ///     }
    ///     Ok(())
    /// }
    /// ```
    fn claim_funds(mut self, payment_preimage: PaymentPreimage) -> Result<(), EngineError> {
        on_claimable(&mut self, payment_preimage.payment_hash(), move |core| {
            core.claim_funds(payment_preimage)
        })
    }

    /// Fails a claimable payment back.
    fn fail_htlc_backwards(mut self, payment_hash: PaymentHash) -> Result<(), EngineError> {
        on_claimable(&mut self, payment_hash, move |core| {
            core.fail_htlc_backwards(payment_hash)
        })
    }

    /// Starts a cooperative close of `channel_id`.
    fn close_channel(mut self, channel_id: ChannelId) -> Result<(), EngineError> {
        let node_id = peer_of(&self, &channel_id)?;
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            s.core_mut().close_channel(channel_id, node_id)
        })?
        .map_err(EngineError::Api)
    }

    /// Force-closes `channel_id`: broadcasts our latest commitment.
    fn force_close_channel(mut self, channel_id: ChannelId) -> Result<(), EngineError> {
        let node_id = peer_of(&self, &channel_id)?;
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            s.core_mut().force_close_channel(channel_id, node_id)
        })?
        .map_err(EngineError::Api)
    }

    /// Every channel of every shard.
    fn list_channels(mut self) -> Result<Vec<ChannelDetails>, EngineError> {
        let mut all = Vec::new();
        for shard in 0..self.placement().shards() {
            all.append(&mut call(&mut self, shard, |s| s.core().list_channels())?);
        }
        Ok(all)
    }

    /// A copy of one channel's state (inspection and tests).
    fn channel(
        mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
    ) -> Result<Option<Channel>, EngineError> {
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            s.core().channel(&node_id, &channel_id).cloned()
        })
    }

    /// A new best block, for every shard.
    ///
    /// Each shard commits its own best block, so a crash may leave one shard with a block
    /// another never processed. After a restart the engine reports the LOWEST best block any
    /// shard had committed (`coordinator().best_block()`; every restored shard starts
    /// there): the host resumes its chain feed from it, giving every block above it again
    /// ([`NodeApi::transactions_confirmed`], then this call, block by block); if that block
    /// is not on its chain (a reorg the engine missed, or the all-zero hash: shards that
    /// disagreed on the block at that height), it first disconnects from its height
    /// ([`NodeApi::block_disconnected`]). A block a
    /// shard already processed is harmless to give again: confirmations are not counted
    /// twice, no event is raised twice, claims broadcast again are the same transactions.
    ///
    /// With a fee estimator ([`crate::EngineConfig::fee_estimator`]), its answer is then
    /// applied as [`NodeApi::fee_estimates_updated`] applies estimates.
    fn best_block_updated(mut self, height: u32, hash: BlockHash) -> Result<(), EngineError> {
        self.coordinator().set_best_block(height, hash);
        for shard in 0..self.placement().shards() {
            self.enqueue(shard, ShardMsg::BestBlock { height, hash }, true)?;
        }
        if let Some(estimates) = self.estimated_fees() {
            for shard in 0..self.placement().shards() {
                let task =
                    ApiTask::detached(move |s| s.core_mut().fee_estimates_updated(estimates));
                self.enqueue(shard, ShardMsg::Api(task), true)?;
            }
        }
        Ok(())
    }

    /// Transactions confirmed at `height` (with their index in the block), for every shard.
    /// Give every block's transactions, then its [`NodeApi::best_block_updated`]; after a
    /// restart, from the block above the engine's reported best block (see there: blocks
    /// given again are idempotent).
    fn transactions_confirmed(
        mut self,
        height: u32,
        txdata: &[(u32, Transaction)],
    ) -> Result<(), EngineError> {
        let shared = Arc::new(txdata.to_vec());
        for shard in 0..self.placement().shards() {
            let msg = ShardMsg::TransactionsConfirmed {
                height,
                txdata: shared.clone(),
            };
            self.enqueue(shard, msg, true)?;
        }
        Ok(())
    }

    /// Blocks from `height` up were disconnected (a reorg), for every shard (queued behind
    /// the blocks given before, as they are; a call reading a shard's state afterwards sees
    /// it done): the best block
    /// is now the fork point, `height - 1` with hash `new_tip_hash` (each shard stores it, so
    /// a restart never reports a block that left the chain); the on-chain monitors forget
    /// what those blocks confirmed and rebuild their claims (then give the new branch's
    /// blocks with [`NodeApi::transactions_confirmed`] and [`NodeApi::best_block_updated`]).
    ///
    /// After a restart the engine's reported best block is the lowest any shard committed
    /// (see [`NodeApi::best_block_updated`]). If the reported block is not on your chain,
    /// disconnect from its height (`block_disconnected(reported height, hash of the block
    /// below it)`) and re-feed from there: shards that committed different blocks at that
    /// height (one of them on a branch the others disconnected) report the all-zero hash,
    /// which no chain has, for this reason.
    fn block_disconnected(
        mut self,
        height: u32,
        new_tip_hash: BlockHash,
    ) -> Result<(), EngineError> {
        let fork_point = height.saturating_sub(1);
        if fork_point <= self.coordinator().best_block().0 {
            self.coordinator().set_best_block(fork_point, new_tip_hash);
        }
        // Queued behind the blocks already given, like them (each shard commits it in its
        // own batch).
        for shard in 0..self.placement().shards() {
            let task =
                ApiTask::detached(move |s| s.core_mut().block_disconnected(height, new_tip_hash));
            self.enqueue(shard, ShardMsg::Api(task), true)?;
        }
        Ok(())
    }

    /// What every monitored channel's on-chain state owes us ([`lightning_core::chain`]).
    fn claimable_balances(
        mut self,
    ) -> Result<Vec<(ChannelId, lightning_core::chain::Balance)>, EngineError> {
        let mut all = Vec::new();
        for shard in 0..self.placement().shards() {
            all.append(&mut call(&mut self, shard, |s| {
                s.core().claimable_balances()
            })?);
        }
        Ok(all)
    }

    /// New fee estimates from the host, for every shard (queued behind what was given before;
    /// each shard commits the batch that runs it): funded channels of ours follow them with
    /// `update_fee`, and a peer's `update_fee` far outside them is refused
    /// ([`lightning_core::node::NodeCore::fee_estimates_updated`]). Kept in memory only: give
    /// them again after a restart, and whenever your estimator's answer changes.
    fn fee_estimates_updated(
        mut self,
        estimates: lightning_core::node::FeeEstimates,
    ) -> Result<(), EngineError> {
        for shard in 0..self.placement().shards() {
            let task = ApiTask::detached(move |s| s.core_mut().fee_estimates_updated(estimates));
            self.enqueue(shard, ShardMsg::Api(task), true)?;
        }
        Ok(())
    }

    /// When every shard sends and refuses `update_fee`
    /// ([`lightning_core::node::FeePolicy`]; its default suits most nodes). Kept in memory
    /// only, like the estimates: set it again after a restart.
    fn set_fee_policy(
        mut self,
        policy: lightning_core::node::FeePolicy,
    ) -> Result<(), EngineError> {
        for shard in 0..self.placement().shards() {
            call(&mut self, shard, move |s| {
                s.core_mut().set_fee_policy(policy)
            })?;
        }
        Ok(())
    }

    /// The feerate (sat per 1000 weight) on-chain claims start from, on every shard.
    fn set_claim_feerate(mut self, feerate_per_kw: u32) -> Result<(), EngineError> {
        for shard in 0..self.placement().shards() {
            call(&mut self, shard, move |s| {
                s.core_mut().set_claim_feerate(feerate_per_kw)
            })?;
        }
        Ok(())
    }

    /// `commitment` (from a [`MonitorEvent::BumpNeeded`](lightning_core::chain::MonitorEvent::BumpNeeded)
    /// of `channel_id`) as a parent to bump through our anchor: its anchor output, weight
    /// and own fee ([`lightning_core::chain::ChannelMonitor::anchor_parent`]). The outer
    /// error is the engine's; the inner one says why this commitment cannot be bumped.
    /// [`crate::bump_commitment`] drives the whole bump.
    fn anchor_parent(
        mut self,
        channel_id: ChannelId,
        commitment: Transaction,
    ) -> Result<Result<AnchorParent, BumpError>, EngineError> {
        let node_id = peer_of(&self, &channel_id)?;
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            s.core()
                .monitor(&channel_id)
                .map(|m| m.anchor_parent(&commitment))
        })?
        .ok_or(EngineError::UnknownChannel(channel_id))
    }

    /// Signs input `input` of `child`, spending our anchor on `channel_id`'s latest holder
    /// commitment, with the channel's funding key (SIGHASH_ALL), and returns `child` with
    /// that input's witness set ([`lightning_core::chain::ChannelMonitor::sign_anchor_input`]).
    /// Call it once the child's inputs and outputs are final.
    fn sign_anchor_input(
        mut self,
        channel_id: ChannelId,
        mut child: Transaction,
        input: usize,
    ) -> Result<Result<Transaction, BumpError>, EngineError> {
        let node_id = peer_of(&self, &channel_id)?;
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            s.core().monitor(&channel_id).map(|m| {
                let witness = m.sign_anchor_input(&child, input)?;
                if let Some(i) = child.input.get_mut(input) {
                    i.witness = witness;
                }
                Ok(child)
            })
        })?
        .ok_or(EngineError::UnknownChannel(channel_id))
    }

    /// The output `htlc_tx` (an HTLC transaction of `channel_id` from a
    /// [`MonitorEvent::BumpNeeded`](lightning_core::chain::MonitorEvent::BumpNeeded) without
    /// an anchor) spends ([`lightning_core::chain::ChannelMonitor::htlc_prevout`]). The
    /// outer error is the engine's; [`crate::bump_htlc`] drives the whole bump.
    fn htlc_prevout(
        mut self,
        channel_id: ChannelId,
        htlc_tx: Transaction,
    ) -> Result<Result<lightning_core::bitcoin::TxOut, BumpError>, EngineError> {
        let node_id = peer_of(&self, &channel_id)?;
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            s.core()
                .monitor(&channel_id)
                .map(|m| m.htlc_prevout(&htlc_tx))
        })?
        .ok_or(EngineError::UnknownChannel(channel_id))
    }

    /// `tx` (an HTLC transaction of `channel_id` completed with fee inputs) with our
    /// signature on input 0 made again over the whole transaction (SIGHASH_ALL), the peer's
    /// kept ([`lightning_core::chain::ChannelMonitor::sign_htlc_input`]). Call it once the
    /// inputs and outputs are final.
    fn sign_htlc_input(
        mut self,
        channel_id: ChannelId,
        mut tx: Transaction,
    ) -> Result<Result<Transaction, BumpError>, EngineError> {
        let node_id = peer_of(&self, &channel_id)?;
        let shard = self.placement().shard_of(&node_id);
        call(&mut self, shard, move |s| {
            s.core().monitor(&channel_id).map(|m| {
                let witness = m.sign_htlc_input(&tx)?;
                if let Some(i) = tx.input.first_mut() {
                    i.witness = witness;
                }
                Ok(tx)
            })
        })?
        .ok_or(EngineError::UnknownChannel(channel_id))
    }

    /// Where on-chain claims of channels funded from now on pay, on every shard (default:
    /// a key derived from the node's seed, [`lightning_core::node::NodeCore::sweep_script`]).
    fn set_sweep_script(mut self, script: ScriptBuf) -> Result<(), EngineError> {
        for shard in 0..self.placement().shards() {
            let script = script.clone();
            call(&mut self, shard, move |s| {
                s.core_mut().set_sweep_script(script)
            })?;
        }
        Ok(())
    }
}

impl<B: Backend> NodeApi for B {}

/// Registers an inbound payment on shards `from..`, without waiting for an answer.
fn register_on(
    b: &mut impl Backend,
    from: usize,
    payment_hash: PaymentHash,
    payment_secret: PaymentSecret,
    amount_msat: Option<u64>,
) -> Result<(), EngineError> {
    // Queued on every shard first (each shard's later peer messages queue behind it), then
    // answered by each once durable.
    let mut answers = Vec::new();
    for shard in from..b.placement().shards() {
        let (task, answer) = ApiTask::answering(move |s| {
            s.core_mut()
                .register_inbound_payment(payment_hash, payment_secret, amount_msat)
        });
        b.submit(shard, task)?;
        answers.push((shard, answer));
    }
    for (shard, answer) in answers {
        b.wait(shard, &answer)?;
    }
    Ok(())
}

/// Runs `f` on every shard holding claimable HTLCs of `hash`.
fn on_claimable<B: Backend>(
    b: &mut B,
    hash: PaymentHash,
    f: impl Fn(&mut lightning_core::node::NodeCore) -> Result<(), ApiError> + Clone + Send + 'static,
) -> Result<(), EngineError> {
    let shards = b.coordinator().claimable_shards(&hash);
    let mut result = Err(EngineError::Api(ApiError::NotClaimable(hash)));
    for shard in shards {
        let f = f.clone();
        // A shard that refused with `Full` keeps its entry: the caller may retry.
        let answer = call(b, shard, move |s| f(s.core_mut()))?;
        b.coordinator().claim_done(&hash, shard);
        if answer.is_ok() {
            result = Ok(());
        }
    }
    result
}
