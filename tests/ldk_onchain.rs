//! On-chain enforcement (BOLT 5) against LDK: our `NodeCore` and a real LDK node (`lightning`
//! 0.2) share one validating regtest chain (`lnshard_testkit::chain::ValidatingChain`). Every
//! transaction either side broadcasts goes through its mempool (each input checked by
//! libbitcoinconsensus, locktimes, BIP 68, relay policy); both sides are fed the same blocks.
//!
//! Four closes, each ending with the exact amount swept to our sweep script:
//! 1. LDK force-closes with HTLCs pending both ways: we claim on its commitment what we are
//!    owed (an HTLC by preimage, one by timeout, our `to_remote`) and learn the preimage LDK
//!    reveals with its HTLC-success transaction.
//! 2. We force-close: our `to_local` after the CSV delay, our HTLC-success and HTLC-timeout
//!    second stages and their outputs; LDK claims its HTLCs on our commitment.
//! 3. LDK restored from a stale `ChannelMonitor` broadcasts a revoked commitment with its
//!    HTLC-success transaction: our justice transactions take everything, the second stage
//!    included.
//! 4. (Anchors only.) LDK force-closes with HTLCs pending both ways but its commitment never
//!    reaches the chain (a lost broadcast); on LDK's `error` our node broadcasts its own,
//!    which confirms: our HTLC-success (an HTLC LDK offered us) and HTLC-timeout (one we
//!    forwarded from an upstream LDK node, then failed back upstream) on it.
//!
//! 1 to 3 run on an `option_static_remotekey` channel and on an
//! `option_anchors_zero_fee_htlc_tx` one. With anchors the chain enforces what a busy
//! mempool does: a minimum feerate (`Policy::mempool_min_sat_per_kvb`,
//! `MEMPOOL_FLOOR_SAT_PER_KVB`) above what an anchor commitment (opened at the relay
//! floor, `ANCHOR_CHANNEL_FEERATE_PER_KW`, as LDK keeps them) or a zero-fee HTLC
//! transaction pays alone, with 1-parent-1-child package relay; no zero-fee transaction
//! relays alone. Both sides pay from a wallet:
//! * LDK's `BumpTransaction` events go to LDK's own `BumpTransactionEventHandlerSync` over
//!   a small P2WPKH wallet funded on the chain (`ldk_support::wallet`): its commitment goes
//!   in with its CPFP child (the feed pairs a waiting parent with its child as a package),
//!   its HTLC transactions carry its wallet's inputs.
//! * Our node's `MonitorEvent::BumpNeeded` requests are served from our wallet (the
//!   testkit's `TestWallet`, funded on the chain), as the engine's `bump_commitment` and
//!   `bump_htlc` drivers do, step by step over the bare `NodeCore`: our commitment goes in
//!   with a CPFP child spending our anchor and wallet coins
//!   (`ValidatingChain::submit_package`); our HTLC-success and HTLC-timeout transactions get
//!   wallet inputs and a change output, the monitor signing their HTLC input again. Each
//!   request is served once, within its `max_fee_sat` (re-bumps are the engine's tests'
//!   business). The sums then also check the wallet: it ends with exactly what it was
//!   funded with, plus our anchor's 330 sat, less the fees of our bumps, which never come
//!   out of the channel's funds.

mod ldk_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Block, BlockHash, OutPoint, Transaction, Txid};
use ldk_support::validating::{feed_core, paid_to, ValidatingFeed, Who};
use ldk_support::wallet::{LdkBumpHandler, TestWallet};
use ldk_support::{
    is_disconnect, FixedFeeEstimator, Hop, LdkEvent, LdkNode, RecordingBroadcaster, TestLogger,
    DEFAULT_FEERATE_PER_KW,
};
use lightning::chain::channelmonitor::ChannelMonitor as LdkMonitor;
use lightning::ln::types::ChannelId as LdkChannelId;
use lightning::sign::InMemorySigner;
use lightning::util::ser::{ReadableArgs, Writeable};
use lnshard::core::chain::bump::{build_anchor_child, build_htlc_bump};
use lnshard::core::chain::{FundingSpendKind, MonitorEvent};
use lnshard::core::node::{
    ClosureReason, Event, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop,
};
use lnshard::core::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};
use lnshard_testkit::wallet::TestWallet as NodeWallet;
use shard_engine::{Reservation, Wallet};

/// The final CLTV delta of every payment here.
const CLTV_DELTA: u32 = 60;

/// Anchors: the feerate anchor channels are opened at (sat per 1000 weight), the relay
/// floor, as LDK keeps its anchor commitments low: alone such a commitment pays less than
/// the mempool's floor and needs its CPFP child.
const ANCHOR_CHANNEL_FEERATE_PER_KW: u32 = 253;

/// Anchors: the mempool's minimum feerate (sat per 1000 vbytes), as Core's when its mempool
/// is busy: above an anchor commitment's own feerate and a zero-fee HTLC transaction's.
const MEMPOOL_FLOOR_SAT_PER_KVB: u64 = 2_000;

/// Anchors: our node's wallet, with the test as the host serving `BumpNeeded` from it as
/// the engine's `bump_commitment`/`bump_htlc` drivers do (over a bare `NodeCore`, the same
/// steps by hand): the monitor lays out nothing, `lightning-core`'s `chain::bump` builds,
/// the monitor signs the channel's input, the wallet its own.
struct OurWallet {
    coins: NodeWallet,
    /// What the wallet held when funded.
    funded_sat: u64,
    /// The scripts of its coins and change.
    scripts: BTreeSet<bitcoin::ScriptBuf>,
    /// Requests not yet served: the channel and the `BumpNeeded` event.
    pending: Vec<(ChannelId, MonitorEvent)>,
    /// What was broadcast for each request: keyed by the anchor (a CPFP child) or the HTLC
    /// output (the HTLC transaction completed with wallet inputs).
    bumps: std::collections::BTreeMap<OutPoint, Transaction>,
}

/// An LDK `ChannelMonitor` restored from a stale serialization, driven alone (the LDK node it
/// came from is gone): blocks are fed to it, what it broadcasts is recorded.
struct StaleMonitor {
    monitor: LdkMonitor<InMemorySigner>,
    broadcaster: Arc<RecordingBroadcaster>,
    fees: Arc<FixedFeeEstimator>,
    logger: Arc<TestLogger>,
    /// Anchors: LDK's bump handler over its wallet, broadcasting to `broadcaster`.
    bump: Option<LdkBumpHandler>,
}

/// Our node, LDK, and the validating chain they share.
struct World {
    us: NodeCore,
    ldk: LdkNode,
    feed: ValidatingFeed,
    /// Whether the peers are connected (messages are dropped otherwise).
    connected: bool,
    /// Whether the LDK node is still running (fed blocks).
    ldk_live: bool,
    stale: Option<StaleMonitor>,
    our_events: Vec<Event>,
    ldk_events: Vec<LdkEvent>,
    /// A second LDK node, upstream of us for forwards (always connected), and its events.
    upstream: Option<LdkNode>,
    upstream_events: Vec<LdkEvent>,
    /// Whether channels with LDK are `option_anchors_zero_fee_htlc_tx`.
    anchors: bool,
    /// Anchors: LDK's wallet, its bump handler and its first coins.
    ldk_wallet: Option<(Arc<TestWallet>, LdkBumpHandler, Vec<OutPoint>)>,
    /// Anchors: our node's wallet.
    our_wallet: Option<OurWallet>,
    /// Set: LDK's broadcasts of a commitment spending this funding output never reach the
    /// chain (a lost broadcast), nor anything spending their outputs.
    withhold_ldk_close: Option<OutPoint>,
    /// LDK's broadcasts withheld so far.
    withheld: BTreeSet<Txid>,
}

impl World {
    fn new(anchors: bool) -> World {
        let mut feed = ValidatingFeed::new();
        // LDK's wallet: three confirmed coins, for its anchor closes.
        let wallet = Arc::new(TestWallet::new(
            SecretKey::from_slice(&sha256::Hash::hash(b"LDK wallet").to_byte_array()).unwrap(),
        ));
        let coins: Vec<OutPoint> = if anchors {
            (0..3)
                .map(|_| feed.chain.fund(wallet.script(), 200_000))
                .collect()
        } else {
            Vec::new()
        };
        // Ours: three confirmed coins; the chain's mempool enforces a floor on anchor
        // channels' closes (a zero-fee transaction relays only in a package with a child).
        let our_wallet = anchors.then(|| {
            let coins = NodeWallet::new(b"lnshard onchain wallet", &[150_000, 150_000, 150_000]);
            feed.chain.submit_funding(coins.parent().clone());
            feed.chain.mine(1);
            let mut scripts: BTreeSet<bitcoin::ScriptBuf> = coins
                .coins()
                .values()
                .map(|o| o.script_pubkey.clone())
                .collect();
            scripts.insert(coins.change_script().expect("a change script"));
            let mut policy = feed.chain.policy().clone();
            policy.mempool_min_sat_per_kvb = Some(MEMPOOL_FLOOR_SAT_PER_KVB);
            feed.chain.set_policy(policy);
            OurWallet {
                funded_sat: coins.balance_satoshis(),
                coins,
                scripts,
                pending: Vec::new(),
                bumps: Default::default(),
            }
        });
        let ldk = LdkNode::new_at(
            "LDK",
            9,
            LdkNode::config(anchors),
            feed.chain.tip(),
            feed.chain.height(),
        );
        if anchors {
            // Until the channel is open: LDK's anchor channels open at the relay floor.
            ldk.fee_estimator.set(ANCHOR_CHANNEL_FEERATE_PER_KW);
        }
        let ldk_wallet = anchors.then(|| {
            let handler = wallet.handler(
                Arc::clone(&ldk.broadcaster),
                Arc::clone(&ldk.keys),
                Arc::clone(&ldk.logger),
            );
            (wallet, handler, coins)
        });
        let secret =
            SecretKey::from_slice(&sha256::Hash::hash(b"lnshard onchain node").to_byte_array())
                .unwrap();
        let us = NodeCore::new(
            secret,
            sha256::Hash::hash(b"lnshard onchain seed").to_byte_array(),
            NodeConfig::default(),
            feed.chain.height(),
            feed.chain.tip(),
        );
        World {
            us,
            ldk,
            feed,
            connected: false,
            ldk_live: true,
            stale: None,
            our_events: Vec::new(),
            ldk_events: Vec::new(),
            upstream: None,
            upstream_events: Vec::new(),
            anchors,
            ldk_wallet,
            our_wallet,
            withhold_ldk_close: None,
            withheld: BTreeSet::new(),
        }
    }

    /// LDK's wallet's confirmed coins that nothing (confirmed or in the mempool) spends.
    fn ldk_wallet_coins(&self) -> Vec<(OutPoint, u64)> {
        let Some((wallet, _, first)) = &self.ldk_wallet else {
            return Vec::new();
        };
        let script = wallet.script();
        let mut all: Vec<OutPoint> = first.clone();
        for (_, tx) in &self.feed.broadcasts {
            for (vout, o) in tx.output.iter().enumerate() {
                if o.script_pubkey == script {
                    all.push(OutPoint {
                        txid: tx.compute_txid(),
                        vout: vout as u32,
                    });
                }
            }
        }
        all.into_iter()
            .filter(|o| self.feed.chain.mempool_spender_of(o).is_none())
            .filter_map(|o| self.feed.chain.utxo(&o).map(|u| (o, u.value.to_sat())))
            .collect()
    }

    /// Anchors: LDK's `ChainMonitor` events, with `BumpTransaction` handed to LDK's own
    /// handler over its wallet (it broadcasts the CPFP child or the HTLC transaction with
    /// the wallet's inputs); the others recorded as the harness would. True if any.
    fn ldk_chain_events(&mut self) -> bool {
        let Some((wallet, handler, _)) = &self.ldk_wallet else {
            return false;
        };
        wallet.set_utxos(&self.ldk_wallet_coins());
        let raw = std::sync::Mutex::new(Vec::new());
        let collect =
            |event: lightning::events::Event| -> Result<(), lightning::events::ReplayEvent> {
                raw.lock().expect("not poisoned").push(event);
                Ok(())
            };
        lightning::events::EventsProvider::process_pending_events(
            &*self.ldk.chain_monitor,
            &collect,
        );
        let raw = raw.into_inner().expect("not poisoned");
        let any = !raw.is_empty();
        for event in raw {
            match event {
                lightning::events::Event::BumpTransaction(bump) => handler.handle_event(&bump),
                other => self.ldk_events.push(LdkEvent::Other(format!("{other:?}"))),
            }
        }
        any
    }

    /// Whether LDK's broadcast `tx` is lost ([`World::withhold_ldk_close`]): its commitment,
    /// or a transaction spending an output of one withheld.
    fn withholds(&self, tx: &Transaction) -> bool {
        let Some(funding) = self.withhold_ldk_close else {
            return false;
        };
        tx.input.iter().any(|i| {
            i.previous_output == funding || self.withheld.contains(&i.previous_output.txid)
        })
    }

    /// Serves our node's pending `BumpNeeded` requests from our wallet, once each: a
    /// commitment gets a CPFP child spending our anchor and wallet coins, broadcast with it
    /// as a package; an HTLC transaction gets wallet inputs and a change output. The
    /// monitor signs the anchor (or its HTLC input again, over the whole transaction), the
    /// wallet its coins. True if anything was broadcast.
    fn serve_bumps(&mut self) -> bool {
        let World {
            us,
            feed,
            our_wallet,
            ..
        } = self;
        let Some(wallet) = our_wallet else {
            return false;
        };
        let mut any = false;
        for (channel_id, event) in std::mem::take(&mut wallet.pending) {
            let MonitorEvent::BumpNeeded {
                tx,
                anchor,
                feerate_per_kw,
                max_fee_sat,
                ..
            } = &event
            else {
                unreachable!("only BumpNeeded is queued")
            };
            let key = anchor.unwrap_or(tx.input[0].previous_output);
            if wallet.bumps.contains_key(&key) {
                continue;
            }
            let monitor = us.monitor(&channel_id).expect("the channel's monitor");
            let utxos = wallet.coins.list_spendable().expect("our coins");
            let change = wallet.coins.change_script().expect("a change script");
            let bump = match anchor {
                Some(anchor) => {
                    let parent = monitor.anchor_parent(tx).expect("our latest commitment");
                    assert_eq!(parent.anchor, *anchor);
                    let plan = build_anchor_child(&parent, &utxos, change, *feerate_per_kw)
                        .expect("our wallet pays for the CPFP child");
                    assert!(plan.fee_satoshis <= *max_fee_sat, "the cap holds");
                    wallet
                        .coins
                        .reserve(
                            Reservation::AnchorBump(parent.txid),
                            &plan.wallet_outpoints(),
                        )
                        .expect("free coins");
                    let mut child = plan.tx.clone();
                    child.input[0].witness = monitor
                        .sign_anchor_input(&child, 0)
                        .expect("the monitor signs our anchor");
                    wallet
                        .coins
                        .sign_inputs(&mut child, &plan.prevouts())
                        .expect("the wallet signs its coins");
                    feed.broadcast_package(Who::Us, tx.clone(), child.clone());
                    child
                }
                None => {
                    let prevout = monitor.htlc_prevout(tx).expect("our HTLC transaction");
                    let plan = build_htlc_bump(tx, &prevout, &utxos, change, *feerate_per_kw)
                        .expect("our wallet pays the HTLC transaction's fee");
                    assert!(plan.fee_satoshis <= *max_fee_sat, "the cap holds");
                    wallet
                        .coins
                        .reserve(Reservation::HtlcBump(key), &plan.wallet_outpoints())
                        .expect("free coins");
                    let mut signed = plan.tx.clone();
                    signed.input[0].witness = monitor
                        .sign_htlc_input(&signed)
                        .expect("the monitor signs its HTLC input again");
                    wallet
                        .coins
                        .sign_inputs(&mut signed, &plan.prevouts())
                        .expect("the wallet signs its coins");
                    feed.broadcast(Who::Us, signed.clone());
                    signed
                }
            };
            wallet.bumps.insert(key, bump);
            any = true;
        }
        any
    }

    /// Anchors: checks our wallet's part. Every bump we made confirmed; inputs 1.. of each
    /// are the wallet's coins (input 0 is our anchor or the HTLC output) and one output is
    /// its change; the wallet holds exactly what it was funded with, plus our anchor's value
    /// a CPFP child took in, less the fees of the bumps; nothing stays reserved. Returns the
    /// fees the wallet paid for HTLC transactions (those come from it, not from the
    /// channel).
    fn check_our_wallet(&self) -> u64 {
        let wallet = self.our_wallet.as_ref().expect("anchors: our wallet");
        let mut change_in = 0u64;
        let mut htlc_fees = 0u64;
        for (key, tx) in &wallet.bumps {
            let txid = tx.compute_txid();
            assert!(
                self.feed.chain.confirmations(&txid) > 0,
                "our bump {txid} confirmed"
            );
            assert_eq!(tx.input[0].previous_output, *key);
            assert!(tx.input.len() >= 2, "wallet inputs in {tx:?}");
            let from_wallet: u64 = tx.input[1..]
                .iter()
                .map(|i| {
                    let o = self
                        .feed
                        .chain
                        .get_tx(&i.previous_output.txid)
                        .expect("known")
                        .output[i.previous_output.vout as usize]
                        .clone();
                    assert!(wallet.scripts.contains(&o.script_pubkey), "a wallet coin");
                    o.value.to_sat()
                })
                .sum();
            let to_wallet = paid_to_any(tx, &wallet.scripts);
            let first_in = self.feed.value_of(&tx.input[0].previous_output);
            let fee = self.feed.fee(tx);
            if tx.output.len() == 1 {
                // A CPFP child: our anchor and the coins in, the change out.
                assert_eq!(to_wallet, from_wallet + first_in - fee);
                change_in += first_in;
            } else {
                // An HTLC transaction: its output keeps the HTLC's whole value.
                assert_eq!(tx.output.len(), 2);
                assert_eq!(
                    tx.output[0].value.to_sat(),
                    first_in,
                    "zero fee from the HTLC"
                );
                assert_eq!(to_wallet, from_wallet - fee);
                htlc_fees += fee;
            }
        }
        let fees: u64 = wallet.bumps.values().map(|t| self.feed.fee(t)).sum();
        assert_eq!(
            wallet.coins.balance_satoshis(),
            wallet.funded_sat + change_in - fees,
            "our wallet paid exactly the bumps' fees"
        );
        assert!(wallet.coins.reserved().is_empty(), "no coin stays reserved");
        eprintln!(
            "our wallet: {} bumps, fees {fees} sat (HTLC transactions {htlc_fees}), anchors in {change_in}",
            wallet.bumps.len()
        );
        htlc_fees
    }

    /// Anchors, on the peer's commitment: nothing of ours needed fees (our claims there pay
    /// their own), so our wallet is untouched.
    fn assert_wallet_untouched(&self) {
        let ours = self.our_wallet.as_ref().expect("our wallet");
        assert!(ours.bumps.is_empty(), "no bump on the peer's commitment");
        assert_eq!(ours.coins.balance_satoshis(), ours.funded_sat);
    }

    /// Starts the upstream LDK node, connects it to us, and lets it open a channel of `sats`
    /// to us; returns the channel's id and LDK's scid for it.
    fn upstream_opens(&mut self, sats: u64) -> (ChannelId, u64) {
        let node = LdkNode::new_at(
            "LDK-upstream",
            10,
            LdkNode::config(false),
            self.feed.chain.tip(),
            self.feed.chain.height(),
        );
        let (ours, theirs) = (self.us.node_id(), node.node_id);
        self.us.peer_connected(theirs);
        let init = self.us.drain_outputs();
        let [Output::SendMessage { msg, .. }] = init.as_slice() else {
            panic!("our init: {init:?}")
        };
        node.peer_connected(ours, &msg.encode(), true)
            .expect("LDK accepts our init");
        self.us.handle_message(theirs, &node.init_bytes(ours));
        node.create_channel(ours, sats, 0)
            .expect("LDK create_channel");
        self.upstream = Some(node);
        self.pump();
        let funding = self
            .upstream_events
            .iter()
            .find_map(|e| match e {
                LdkEvent::FundingGenerated { funding_tx, .. } => Some(funding_tx.clone()),
                _ => None,
            })
            .expect("upstream LDK's funding");
        let vout = funding
            .output
            .iter()
            .position(|o| o.value.to_sat() == sats)
            .expect("funding output") as u16;
        let channel_id = ChannelId::from_funding_outpoint(&funding.compute_txid(), vout);
        self.mine(6);
        assert!(self.our_channel(channel_id).is_usable);
        let scid = self
            .upstream
            .as_ref()
            .expect("upstream")
            .channels()
            .into_iter()
            .find(|c| ldk_support::core_channel_id(c.channel_id) == channel_id)
            .and_then(|c| c.get_outbound_payment_scid())
            .expect("upstream's scid");
        (channel_id, scid)
    }

    /// The upstream LDK node pays LDK `amount_msat` through us (over `up_scid`, then our
    /// channel `scid` to LDK); returns the hash and LDK's preimage once LDK finds it
    /// claimable (LDK does not claim it).
    fn upstream_pays_ldk(
        &mut self,
        up_scid: u64,
        scid: ShortChannelId,
        amount_msat: u64,
    ) -> (PaymentHash, PaymentPreimage) {
        let (hash, secret) = self.ldk.create_inbound_payment(amount_msat);
        let hops = [
            Hop {
                node_id: self.us.node_id(),
                short_channel_id: up_scid,
                fee_msat: 1_000 + amount_msat / 10_000,
                cltv_expiry_delta: 72,
            },
            Hop {
                node_id: self.ldk_id(),
                short_channel_id: scid.0,
                fee_msat: amount_msat,
                cltv_expiry_delta: CLTV_DELTA,
            },
        ];
        self.upstream
            .as_ref()
            .expect("upstream")
            .send_payment_along(&hops, hash, secret)
            .expect("upstream send_payment");
        self.pump();
        let preimage = self
            .ldk_events
            .iter()
            .find_map(|e| match e {
                LdkEvent::PaymentClaimable {
                    payment_hash,
                    preimage,
                    ..
                } if *payment_hash == hash => *preimage,
                _ => None,
            })
            .unwrap_or_else(|| panic!("LDK's PaymentClaimable: {:?}", self.ldk_events));
        (hash, preimage)
    }

    fn ldk_id(&self) -> PublicKey {
        self.ldk.node_id
    }

    fn connect(&mut self) {
        let (ours, theirs) = (self.us.node_id(), self.ldk_id());
        self.us.peer_connected(theirs);
        let init = self.us.drain_outputs();
        let [Output::SendMessage { msg, .. }] = init.as_slice() else {
            panic!("our init: {init:?}")
        };
        self.ldk
            .peer_connected(ours, &msg.encode(), true)
            .expect("LDK accepts our init");
        self.us.handle_message(theirs, &self.ldk.init_bytes(ours));
        self.connected = true;
        self.pump();
    }

    fn disconnect(&mut self) {
        self.pump();
        self.connected = false;
        self.us.peer_disconnected(self.ldk_id());
        self.ldk.peer_disconnected(self.us.node_id());
        self.pump();
    }

    /// Moves messages both ways (while connected) and broadcasts to the chain until both
    /// sides are quiet.
    fn pump(&mut self) {
        let (ours, theirs) = (self.us.node_id(), self.ldk_id());
        for _ in 0..10_000 {
            let mut progress = false;
            for output in self.us.drain_outputs() {
                progress = true;
                match output {
                    Output::SendMessage { node_id, msg } if node_id != theirs => {
                        let upstream = self.upstream.as_ref().expect("a known peer");
                        assert_eq!(node_id, upstream.node_id);
                        upstream
                            .handle_message(ours, &msg.encode())
                            .unwrap_or_else(|e| {
                                panic!("upstream LDK rejected our {}: {e}", msg.message_type())
                            });
                    }
                    Output::SendMessage { msg, .. } => {
                        if self.connected {
                            self.ldk
                                .handle_message(ours, &msg.encode())
                                .unwrap_or_else(|e| {
                                    panic!("LDK rejected our {}: {e}", msg.message_type())
                                });
                        }
                    }
                    Output::Disconnect { .. } => {
                        assert!(
                            !self.connected,
                            "we disconnected LDK: {:?}",
                            self.our_events
                        )
                    }
                    Output::Event(Event::BroadcastTransaction { tx }) => {
                        self.feed.broadcast(Who::Us, tx)
                    }
                    Output::Event(Event::OnChain {
                        channel_id,
                        counterparty_node_id,
                        event: event @ MonitorEvent::BumpNeeded { .. },
                    }) => {
                        let wallet = self
                            .our_wallet
                            .as_mut()
                            .expect("BumpNeeded only with anchors");
                        wallet.pending.push((channel_id, event.clone()));
                        self.our_events.push(Event::OnChain {
                            channel_id,
                            counterparty_node_id,
                            event,
                        });
                    }
                    Output::Event(e) => self.our_events.push(e),
                    Output::Forward(f) => self.us.handle_forward(f),
                    Output::Resolve(r) => self.us.handle_resolution(r),
                    other => panic!("unexpected output {other:?}"),
                }
            }
            if self.serve_bumps() {
                progress = true;
            }
            if self.ldk_live && self.ldk_chain_events() {
                progress = true;
            }
            if self.ldk_live {
                for (to, bytes) in self.ldk.drain_messages() {
                    progress = true;
                    assert_eq!(to, ours);
                    if self.connected {
                        assert!(
                            !is_disconnect(&bytes),
                            "LDK disconnected us; LDK warnings: {:?}",
                            self.ldk.received_warnings()
                        );
                        self.us.handle_message(theirs, &bytes);
                    }
                }
                for event in self.ldk.drain_events() {
                    progress = true;
                    if let LdkEvent::FundingGenerated { funding_tx, .. } = &event {
                        self.feed.expect_funding(funding_tx);
                    }
                    self.ldk_events.push(event);
                }
            }
            for tx in self.ldk.broadcaster.take() {
                progress = true;
                if self.withholds(&tx) {
                    self.withheld.insert(tx.compute_txid());
                } else {
                    self.feed.broadcast(Who::Ldk, tx);
                }
            }
            if let Some(upstream) = &self.upstream {
                for (to, bytes) in upstream.drain_messages() {
                    progress = true;
                    assert_eq!(to, ours);
                    assert!(!is_disconnect(&bytes), "upstream LDK disconnected us");
                    self.us.handle_message(upstream.node_id, &bytes);
                }
                for event in upstream.drain_events() {
                    progress = true;
                    if let LdkEvent::FundingGenerated { funding_tx, .. } = &event {
                        self.feed.expect_funding(funding_tx);
                    }
                    self.upstream_events.push(event);
                }
                for tx in upstream.broadcaster.take() {
                    progress = true;
                    self.feed.broadcast(Who::Ldk, tx);
                }
            }
            if let Some(stale) = &self.stale {
                if let Some(bump) = &stale.bump {
                    let coins = self.ldk_wallet_coins();
                    self.ldk_wallet
                        .as_ref()
                        .expect("wallet")
                        .0
                        .set_utxos(&coins);
                    let raw = std::sync::Mutex::new(Vec::new());
                    let collect = |event: lightning::events::Event| -> Result<(), lightning::events::ReplayEvent> {
                        raw.lock().expect("not poisoned").push(event);
                        Ok(())
                    };
                    stale
                        .monitor
                        .process_pending_events(&&collect, &stale.logger)
                        .expect("events handled");
                    for event in raw.into_inner().expect("not poisoned") {
                        progress = true;
                        if let lightning::events::Event::BumpTransaction(b) = event {
                            bump.handle_event(&b);
                        }
                    }
                }
                for tx in stale.broadcaster.take() {
                    progress = true;
                    self.feed.broadcast(Who::Ldk, tx);
                }
            }
            if !progress {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// Mines `n` blocks from the mempool, feeding each to every side.
    fn mine(&mut self, n: u32) {
        for _ in 0..n {
            self.pump();
            let (height, block) = self.feed.mine_one();
            self.feed_block(height, &block);
        }
    }

    fn feed_block(&mut self, height: u32, block: &Block) {
        if let Some(wallet) = &self.our_wallet {
            for tx in &block.txdata {
                wallet.coins.transaction_confirmed(tx);
            }
        }
        feed_core(&mut self.us, height, block);
        if self.ldk_live {
            self.ldk.connect_block(block, height);
        }
        if let Some(upstream) = &self.upstream {
            upstream.connect_block(block, height);
        }
        if let Some(stale) = &self.stale {
            let txdata: Vec<(usize, &Transaction)> = block.txdata.iter().enumerate().collect();
            stale.monitor.block_connected(
                &block.header,
                &txdata,
                height,
                &*stale.broadcaster,
                &*stale.fees,
                &stale.logger,
            );
        }
        self.pump();
    }

    /// Mines until `done` holds, at most `max` blocks; panics otherwise.
    fn mine_until(&mut self, max: u32, what: &str, done: impl Fn(&World) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.mine(1);
        }
        assert!(
            done(self),
            "{what} within {max} blocks; our events {:#?}\nbroadcasts {:#?}\nwaiting {:?}\nlost {:?}\nrefused {:?}",
            self.our_events,
            self.feed
                .broadcasts
                .iter()
                .map(|(w, t)| format!(
                    "{w:?} {} conf {} spends {:?} outs {:?}",
                    t.compute_txid(),
                    self.feed.chain.confirmations(&t.compute_txid()),
                    t.input.iter().map(|i| i.previous_output).collect::<Vec<_>>(),
                    t.output.iter().map(|o| o.value.to_sat()).collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>(),
            self.feed.waiting(),
            self.feed.lost,
            self.feed.refused
        );
    }

    fn our_channel(&self, channel_id: ChannelId) -> lnshard::core::node::ChannelDetails {
        self.us
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == channel_id)
            .expect("our channel")
    }

    /// We open a channel of `sats` to LDK; returns its id and short id once ready.
    fn we_open(&mut self, sats: u64) -> (ChannelId, ShortChannelId) {
        let ldk_id = self.ldk_id();
        let temp = self
            .us
            .create_channel(ldk_id, sats, 0, 1, self.open_feerate())
            .expect("create_channel");
        self.pump();
        let (script, value) = self
            .our_events
            .iter()
            .find_map(|e| match e {
                Event::FundingGenerationReady {
                    temporary_channel_id,
                    output_script,
                    channel_value_satoshis,
                    ..
                } if *temporary_channel_id == temp => {
                    Some((output_script.clone(), *channel_value_satoshis))
                }
                _ => None,
            })
            .expect("FundingGenerationReady");
        let funding = lnshard_testkit::fake_funding_tx(script, value, 14);
        self.feed.expect_funding(&funding);
        self.us
            .funding_transaction_generated(temp, ldk_id, funding.clone())
            .expect("funding");
        self.pump();
        let channel_id = ChannelId::from_funding_outpoint(&funding.compute_txid(), 0);
        self.mine(6);
        self.expect_ready(channel_id)
    }

    /// LDK opens a channel of `sats` to us pushing `push_msat`; returns its id and short id.
    fn ldk_opens(&mut self, sats: u64, push_msat: u64) -> (ChannelId, ShortChannelId) {
        let ours = self.us.node_id();
        self.ldk
            .create_channel(ours, sats, push_msat)
            .expect("LDK create_channel");
        self.pump();
        let funding = self
            .ldk_events
            .iter()
            .rev()
            .find_map(|e| match e {
                LdkEvent::FundingGenerated { funding_tx, .. } => Some(funding_tx.clone()),
                _ => None,
            })
            .expect("LDK's funding");
        let vout = funding
            .output
            .iter()
            .position(|o| o.value.to_sat() == sats)
            .expect("funding output") as u16;
        let channel_id = ChannelId::from_funding_outpoint(&funding.compute_txid(), vout);
        self.mine(6);
        self.expect_ready(channel_id)
    }

    /// The feerate we open channels to LDK at.
    fn open_feerate(&self) -> u32 {
        if self.anchors {
            ANCHOR_CHANNEL_FEERATE_PER_KW
        } else {
            DEFAULT_FEERATE_PER_KW
        }
    }

    fn expect_ready(&mut self, channel_id: ChannelId) -> (ChannelId, ShortChannelId) {
        // The channel is open: LDK's estimates for its claims and bumps are back to normal
        // (it never ticks its timer here, so it sends no `update_fee`).
        self.ldk.fee_estimator.set(DEFAULT_FEERATE_PER_KW);
        assert!(
            self.our_events.iter().any(
                |e| matches!(e, Event::ChannelReady { channel_id: c, .. } if *c == channel_id)
            ),
            "our ChannelReady: {:?}",
            self.our_events
        );
        assert!(self.ldk_events.iter().any(
            |e| matches!(e, LdkEvent::ChannelReady { channel_id: c, anchors, .. } if *c == channel_id && *anchors == self.anchors)
        ));
        let details = self.our_channel(channel_id);
        assert!(details.is_usable);
        let ours = self
            .us
            .channel(&self.ldk_id(), &channel_id)
            .expect("channel")
            .channel_type();
        assert_eq!(
            ours.has_anchors(),
            self.anchors,
            "our channel type {ours:?}"
        );
        (channel_id, details.short_channel_id.expect("scid"))
    }

    fn ldk_scid(&self, channel_id: ChannelId) -> u64 {
        self.ldk
            .channels()
            .into_iter()
            .find(|c| ldk_support::core_channel_id(c.channel_id) == channel_id)
            .expect("LDK's channel")
            .get_outbound_payment_scid()
            .expect("an scid")
    }

    /// We send `amount_msat` to LDK; returns the payment hash and LDK's preimage once LDK
    /// finds it claimable (LDK does not claim it).
    fn we_send(
        &mut self,
        scid: ShortChannelId,
        amount_msat: u64,
        n: u8,
    ) -> (PaymentHash, PaymentPreimage) {
        let (hash, secret) = self.ldk.create_inbound_payment(amount_msat);
        let route = Route {
            hops: vec![RouteHop {
                node_id: self.ldk_id(),
                short_channel_id: scid,
                fee_msat: amount_msat,
                cltv_expiry_delta: CLTV_DELTA,
            }],
        };
        self.us
            .send_payment(&route, hash, secret, PaymentId([n; 32]))
            .expect("send_payment");
        self.pump();
        let preimage = self
            .ldk_events
            .iter()
            .find_map(|e| match e {
                LdkEvent::PaymentClaimable {
                    payment_hash,
                    preimage,
                    ..
                } if *payment_hash == hash => *preimage,
                _ => None,
            })
            .unwrap_or_else(|| panic!("LDK's PaymentClaimable: {:?}", self.ldk_events));
        (hash, preimage)
    }

    /// LDK sends `amount_msat` to us over `ldk_scid`; returns hash and preimage once we find
    /// it claimable (we do not claim it).
    fn ldk_sends(
        &mut self,
        ldk_scid: u64,
        amount_msat: u64,
        n: u8,
    ) -> (PaymentHash, PaymentPreimage) {
        let preimage = PaymentPreimage(sha256::Hash::hash(&[n, 0x22]).to_byte_array());
        let (hash, secret) = self.us.create_inbound_payment(&preimage, Some(amount_msat));
        let hops = [Hop {
            node_id: self.us.node_id(),
            short_channel_id: ldk_scid,
            fee_msat: amount_msat,
            cltv_expiry_delta: CLTV_DELTA,
        }];
        self.ldk
            .send_payment_along(&hops, hash, secret)
            .expect("LDK send_payment");
        self.pump();
        assert!(
            self.our_events.iter().any(|e| matches!(e, Event::PaymentClaimable { payment_hash, amount_msat: a, .. } if *payment_hash == hash && *a == amount_msat)),
            "our PaymentClaimable: {:?}",
            self.our_events
        );
        (hash, preimage)
    }

    /// Both settle `amount_msat` from us to LDK off chain.
    fn we_pay(&mut self, scid: ShortChannelId, amount_msat: u64, n: u8) {
        let (hash, preimage) = self.we_send(scid, amount_msat, n);
        self.ldk.claim_funds(preimage);
        self.pump();
        assert!(self.our_events.iter().any(
            |e| matches!(e, Event::PaymentSent { payment_hash, .. } if *payment_hash == hash)
        ));
    }

    /// The on-chain events of our monitor of `channel_id`.
    fn onchain(&self, channel_id: ChannelId) -> Vec<&MonitorEvent> {
        self.our_events
            .iter()
            .filter_map(|e| match e {
                Event::OnChain {
                    channel_id: c,
                    event,
                    ..
                } if *c == channel_id => Some(event),
                _ => None,
            })
            .collect()
    }

    /// Our `ClaimConfirmed` events: txid and value.
    fn claims_confirmed(&self, channel_id: ChannelId) -> Vec<(Txid, u64)> {
        self.onchain(channel_id)
            .into_iter()
            .filter_map(|e| match e {
                MonitorEvent::ClaimConfirmed { txid, value_sat } => Some((*txid, *value_sat)),
                _ => None,
            })
            .collect()
    }

    fn payment_sent(&self, hash: PaymentHash) -> Option<PaymentPreimage> {
        self.our_events.iter().find_map(|e| match e {
            Event::PaymentSent {
                payment_hash,
                payment_preimage,
                ..
            } if *payment_hash == hash => Some(*payment_preimage),
            _ => None,
        })
    }

    fn payment_failed(&self, hash: PaymentHash) -> bool {
        self.our_events.iter().any(
            |e| matches!(e, Event::PaymentFailed { payment_hash, .. } if *payment_hash == hash),
        )
    }

    /// Mines until a commitment of ours spends `channel_id`'s funding output (at most 3
    /// blocks) and returns it. Anchors: alone it pays less than the mempool's floor; it went
    /// in with our CPFP child, as a package paying the floor, mined in the same block.
    fn our_commitment_mined(&mut self, channel_id: ChannelId) -> Transaction {
        let funding = self
            .us
            .monitor(&channel_id)
            .expect("monitor")
            .funding_outpoint();
        self.mine_until(3, "our commitment confirmed", |w| {
            w.feed.spender(&funding).is_some()
        });
        let commitment = self.commitment(channel_id);
        let txid = commitment.compute_txid();
        assert_eq!(self.feed.broadcaster_of(&txid), Some(Who::Us));
        if self.anchors {
            let fee = self.feed.fee(&commitment);
            let vsize = commitment.vsize() as u64;
            assert!(
                fee * 1000 < MEMPOOL_FLOOR_SAT_PER_KVB * vsize,
                "alone, our commitment pays less than the floor: {fee} sat for {vsize} vB"
            );
            let wallet = self.our_wallet.as_ref().expect("our wallet");
            let child = wallet
                .bumps
                .values()
                .find(|c| c.input[0].previous_output.txid == txid)
                .expect("our CPFP child");
            let height = |t: &Txid| self.feed.chain.confirmed_at(t).map(|(h, _)| h);
            assert_eq!(
                height(&child.compute_txid()),
                height(&txid),
                "mined together"
            );
            let package_fee = fee + self.feed.fee(child);
            let package_vsize = vsize + child.vsize() as u64;
            assert!(package_fee * 1000 >= MEMPOOL_FLOOR_SAT_PER_KVB * package_vsize);
            eprintln!(
                "our commitment: {fee} sat for {vsize} vB; with its child {package_fee} sat for {package_vsize} vB"
            );
        }
        commitment
    }

    /// On our commitment: once our `to_local` and the outputs of our second-stage
    /// transactions spending `htlcs` are all swept and 6 deep, those outputs (`to_local`
    /// first); `None` before.
    fn our_close_swept(&self, to_local: OutPoint, htlcs: &[OutPoint]) -> Option<Vec<OutPoint>> {
        let mut outs = vec![to_local];
        for htlc in htlcs {
            let second = self
                .feed
                .spender(htlc)
                .filter(|tx| self.feed.broadcaster_of(&tx.compute_txid()) == Some(Who::Us))?;
            outs.push(OutPoint {
                txid: second.compute_txid(),
                vout: 0,
            });
        }
        outs.iter()
            .all(|o| {
                self.feed
                    .spender(o)
                    .is_some_and(|s| self.feed.chain.confirmations(&s.compute_txid()) >= 6)
            })
            .then_some(outs)
    }

    /// Checks our confirmed second-stage HTLC transactions on our commitment of
    /// `channel_id`, each with the HTLC's amount. Without anchors: one input, the fee taken
    /// from the HTLC. With anchors: the node handed each out as `BumpNeeded` (it never
    /// broadcast them itself), and our wallet completed it: input 0 the HTLC, wallet inputs
    /// after it, output 0 the HTLC's whole value, output 1 the change.
    fn check_htlc_claims(&self, channel_id: ChannelId, claims: &[(&Transaction, u64)]) {
        let bump_needed: BTreeSet<OutPoint> = self
            .onchain(channel_id)
            .iter()
            .filter_map(|e| match e {
                MonitorEvent::BumpNeeded {
                    tx, anchor: None, ..
                } => Some(tx.input[0].previous_output),
                _ => None,
            })
            .collect();
        for (tx, amount) in claims {
            let txid = tx.compute_txid();
            assert!(self.feed.chain.confirmations(&txid) > 0);
            assert_eq!(self.feed.broadcaster_of(&txid), Some(Who::Us));
            let htlc = tx.input[0].previous_output;
            assert_eq!(self.feed.value_of(&htlc), *amount);
            let out = tx.output[0].value.to_sat();
            let Some(wallet) = &self.our_wallet else {
                assert_eq!(tx.input.len(), 1);
                assert_eq!(out, amount - self.feed.fee(tx));
                continue;
            };
            assert!(bump_needed.contains(&htlc), "BumpNeeded for {htlc}");
            assert_eq!(
                wallet.bumps.get(&htlc),
                Some(*tx),
                "our wallet's bump of {htlc}"
            );
            assert!(tx.input.len() >= 2, "wallet inputs in {tx:?}");
            assert!(tx.input[1..].iter().all(|i| {
                let o = &self
                    .feed
                    .chain
                    .get_tx(&i.previous_output.txid)
                    .expect("known")
                    .output[i.previous_output.vout as usize];
                wallet.scripts.contains(&o.script_pubkey)
            }));
            assert_eq!(out, *amount, "the wallet paid the fee, not the HTLC");
            assert!(self.feed.fee(tx) > 0);
        }
    }

    /// The commitment transaction that spent the funding output of `channel_id`.
    fn commitment(&self, channel_id: ChannelId) -> Transaction {
        let monitor = self.us.monitor(&channel_id).expect("monitor");
        self.feed
            .spender(&monitor.funding_outpoint())
            .expect("the funding output is spent")
    }

    /// Checks what we swept for `channel_id`: every confirmed transaction of ours paying our
    /// sweep script pays only it; together they spend exactly `claimed` (outputs of the
    /// close) and pay exactly their values minus their visible fees; `ClaimConfirmed` events
    /// report the same transactions and amounts. Returns the total swept and the sweeps' fees.
    fn check_sweeps(&self, channel_id: ChannelId, claimed: &BTreeSet<OutPoint>) -> (u64, u64) {
        let sweep = self.us.sweep_script();
        let sweeps: Vec<Transaction> = self
            .feed
            .confirmed_from(Who::Us)
            .into_iter()
            .filter(|tx| paid_to(tx, &sweep) > 0)
            .collect();
        let mut spent = BTreeSet::new();
        let mut total_in = 0;
        let mut total_out = 0;
        let mut fees = 0;
        for tx in &sweeps {
            assert!(
                tx.output.iter().all(|o| o.script_pubkey == sweep),
                "a sweep pays only our sweep script: {tx:?}"
            );
            for input in &tx.input {
                assert!(spent.insert(input.previous_output), "one spend per output");
            }
            let fee = self.feed.fee(tx);
            let weight = tx.weight().to_wu();
            // At least the relay minimum (the chain checked it), and no absurd fee: below
            // 10x a 1000 sat/kw feerate.
            assert!(
                fee > 0 && fee <= weight * 10,
                "sweep fee {fee} for weight {weight}"
            );
            total_in += self.feed.input_value(tx);
            total_out += paid_to(tx, &sweep);
            fees += fee;
        }
        assert_eq!(&spent, claimed, "our sweeps spend exactly what is ours");
        assert_eq!(total_out, total_in - fees);
        let mut reported: Vec<(Txid, u64)> = self.claims_confirmed(channel_id);
        reported.sort();
        let mut actual: Vec<(Txid, u64)> = sweeps
            .iter()
            .map(|tx| (tx.compute_txid(), paid_to(tx, &sweep)))
            .collect();
        actual.sort();
        assert_eq!(reported, actual, "ClaimConfirmed reports every sweep, once");
        eprintln!(
            "swept {total_out} sat in {} transactions (inputs {total_in}, fees {fees})",
            sweeps.len()
        );
        (total_out, fees)
    }

    fn assert_chain_clean(&self) {
        assert!(
            self.feed.refused.is_empty(),
            "refused broadcasts: {:?}",
            self.feed.refused
        );
        let ours_lost: Vec<_> = self
            .feed
            .lost
            .iter()
            .filter(|(w, _, _)| *w == Who::Us)
            .collect();
        eprintln!("lost races: {:?}", self.feed.lost);
        assert!(ours_lost.is_empty(), "none of our broadcasts lost a race");
        // None of our broadcasts still waits for a locktime or a missing parent.
        for (who, txid) in self.feed.waiting() {
            assert_eq!(who, Who::Ldk, "our {txid} never entered the mempool");
        }
    }

    /// The output of `tx` worth `value` sat (exactly one).
    fn output_worth(tx: &Transaction, value: u64) -> OutPoint {
        let found: Vec<usize> = tx
            .output
            .iter()
            .enumerate()
            .filter(|(_, o)| o.value.to_sat() == value)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found.len(), 1, "one output of {value} sat in {tx:?}");
        OutPoint {
            txid: tx.compute_txid(),
            vout: found[0] as u32,
        }
    }
}

/// Scenario 1: LDK force-closes with HTLCs pending both ways.
#[test]
fn ldk_force_closes_with_htlcs_both_ways() {
    ldk_force_closes(false);
}

/// Scenario 1 on an anchor channel: LDK's wallet bumps its commitment (CPFP through its
/// anchor) and pays its HTLC-success's fee with its own inputs.
#[test]
fn ldk_force_closes_with_htlcs_both_ways_anchors() {
    ldk_force_closes(true);
}

fn ldk_force_closes(anchors: bool) {
    let mut w = World::new(anchors);
    w.connect();
    // LDK funds 1,000,000 sat, pushing us 300,000 sat: LDK pays the commitment fee.
    let (cid, scid) = w.ldk_opens(1_000_000, 300_000_000);
    let ldk_scid = w.ldk_scid(cid);
    // A: we offer 40,000 sat; LDK will claim it on chain (revealing the preimage).
    let (hash_a, preimage_a) = w.we_send(scid, 40_000_000, 1);
    // C: we offer 30,000 sat; LDK never claims it: we time it out on chain.
    let (hash_c, _) = w.we_send(scid, 30_000_000, 2);
    // B: LDK offers 50,000 sat; we claim it with its preimage on chain.
    let (hash_b, preimage_b) = w.ldk_sends(ldk_scid, 50_000_000, 3);
    // H: the upstream LDK node pays LDK 20,000 sat through us; LDK will claim it on chain and
    // we fulfil upstream with the preimage its HTLC-success reveals.
    let (up_cid, up_scid) = w.upstream_opens(500_000);
    let (hash_h, preimage_h) = w.upstream_pays_ldk(up_scid, scid, 20_000_000);
    let before = w.our_channel(cid).balances.to_local_msat;
    assert_eq!(before, 210_000_000);
    // The fulfils cannot reach the other side: both claim with the peer gone.
    w.disconnect();
    w.ldk.claim_funds(preimage_a);
    w.ldk.claim_funds(preimage_h);
    w.us.claim_funds(preimage_b).expect("claim B");
    w.pump();
    w.ldk
        .force_close(cid, w.us.node_id())
        .expect("LDK force-closes");
    w.pump();
    let ldk_commitment = w
        .feed
        .broadcasts
        .iter()
        .find(|(who, tx)| {
            *who == Who::Ldk
                && tx.input.iter().any(|i| {
                    Some(i.previous_output) == w.us.monitor(&cid).map(|m| m.funding_outpoint())
                })
        })
        .map(|(_, tx)| tx.clone())
        .expect("LDK broadcast its commitment");
    w.mine(1);
    assert_eq!(
        w.feed.chain.confirmations(&ldk_commitment.compute_txid()),
        1,
        "LDK's commitment confirmed; waiting {:?}, refused {:?}",
        w.feed.waiting(),
        w.feed.refused
    );
    assert!(w.onchain(cid).iter().any(|e| matches!(
        e,
        MonitorEvent::FundingSpent {
            kind: FundingSpendKind::Counterparty { .. },
            ..
        }
    )));
    // LDK's HTLC-success for A reveals its preimage: our payment succeeded.
    w.mine_until(3, "our PaymentSent for A", |w| {
        w.payment_sent(hash_a).is_some()
    });
    assert_eq!(w.payment_sent(hash_a), Some(preimage_a));
    // And H's: we fulfilled it upstream at once, off chain, and earned our fee.
    assert!(
        w.upstream_events.iter().any(|e| matches!(e, LdkEvent::PaymentSent { payment_hash, preimage, .. } if *payment_hash == hash_h && *preimage == preimage_h)),
        "the upstream LDK's PaymentSent for H: {:?}",
        w.upstream_events
    );
    assert!(w.our_events.iter().any(|e| matches!(e, Event::PaymentForwarded { prev_channel_id, next_channel_id, fee_earned_msat: 3_000, .. } if *prev_channel_id == up_cid && *next_channel_id == cid)));
    // C times out; everything of ours confirms 6 deep.
    let commitment = w.commitment(cid);
    assert_eq!(commitment.compute_txid(), ldk_commitment.compute_txid());
    let to_remote = World::output_worth(&commitment, 210_000);
    let htlc_b = World::output_worth(&commitment, 50_000);
    let htlc_c = World::output_worth(&commitment, 30_000);
    let claimed: BTreeSet<OutPoint> = [to_remote, htlc_b, htlc_c].into();
    w.mine_until(120, "every claim of ours confirmed 6 deep", |w| {
        let spent: BTreeSet<OutPoint> = w
            .claims_confirmed(cid)
            .iter()
            .flat_map(|(txid, _)| {
                w.feed
                    .chain
                    .get_tx(txid)
                    .expect("confirmed")
                    .input
                    .iter()
                    .map(|i| i.previous_output)
                    .collect::<Vec<_>>()
            })
            .collect();
        spent == claimed
    });
    assert!(
        w.payment_failed(hash_c),
        "C failed upstream after its timeout"
    );
    assert!(w.onchain(cid).iter().any(|e| matches!(e, MonitorEvent::InboundHtlcClaimed { payment_hash, amount_msat: 50_000_000, .. } if *payment_hash == hash_b)));
    // Exactly our balance and the two HTLCs we were owed, less the fees our sweeps show.
    let (swept, fees) = w.check_sweeps(cid, &claimed);
    assert_eq!(swept, 210_000 + 50_000 + 30_000 - fees);
    w.assert_chain_clean();
    // LDK: its HTLC-success for A confirmed; it saw its payment of B claimed by us.
    for amount in [40_000, 20_000] {
        let htlc = World::output_worth(&commitment, amount);
        let spender = w.feed.spender(&htlc).expect("claimed by LDK");
        assert_eq!(
            w.feed.broadcaster_of(&spender.compute_txid()),
            Some(Who::Ldk)
        );
        if anchors {
            // A zero-fee HTLC-success: LDK's wallet paid its fee with an input of its own.
            let script = w.ldk_wallet.as_ref().expect("wallet").0.script();
            assert!(
                spender.input.len() >= 2
                    && spender.input.iter().any(|i| w
                        .feed
                        .chain
                        .get_tx(&i.previous_output.txid)
                        .is_some_and(
                            |t| t.output[i.previous_output.vout as usize].script_pubkey == script
                        )),
                "LDK's wallet funded its HTLC-success: {spender:?}"
            );
        }
    }
    if anchors {
        eprintln!(
            "LDK's commitment fee {} sat; its broadcasts: {:?}",
            w.feed.fee(&commitment),
            w.feed
                .broadcasts
                .iter()
                .filter(|(who, _)| *who == Who::Ldk)
                .map(|(_, t)| (t.compute_txid(), t.input.len(), t.output.len()))
                .collect::<Vec<_>>()
        );
        // Alone, LDK's commitment paid less than the mempool's floor: LDK's CPFP child
        // (through its anchor, with its wallet's coins) got it mined, in the same block.
        let txid = commitment.compute_txid();
        let vsize = commitment.vsize() as u64;
        assert!(w.feed.fee(&commitment) * 1000 < MEMPOOL_FLOOR_SAT_PER_KVB * vsize);
        let height = |t: &Txid| w.feed.chain.confirmed_at(t).map(|(h, _)| h);
        assert!(
            w.feed
                .confirmed_from(Who::Ldk)
                .iter()
                .any(|t| t.input.len() >= 2
                    && t.input.iter().any(|i| i.previous_output.txid == txid)
                    && height(&t.compute_txid()) == height(&txid)),
            "LDK's CPFP child"
        );
        w.assert_wallet_untouched();
    }
    // The upstream channel is untouched.
    assert!(w.our_channel(up_cid).is_usable);
    w.mine(6);
    assert!(
        w.ldk_events.iter().any(
            |e| matches!(e, LdkEvent::PaymentSent { payment_hash, .. } if *payment_hash == hash_b)
        ),
        "LDK learned B's preimage from our claim: {:?}",
        w.ldk_events
    );
}

/// Scenario 1 as issue 15 words it, on an anchor channel through a mempool with a floor:
/// LDK force-closes with HTLCs pending both ways, and it is our commitment that confirms
/// (LDK's broadcast of its own is lost): on LDK's `error` our node broadcasts its
/// commitment, which pays less than the floor alone and goes in with our wallet's CPFP
/// child. On it, our HTLC-success (an HTLC LDK offered us, whose preimage we have) and our
/// HTLC-timeout (an HTLC we forwarded to LDK from upstream) are completed with our
/// wallet's inputs and confirm; we sweep exactly our balance and both HTLCs, our wallet pays
/// exactly the bumps' fees, and the forward fails back upstream.
#[test]
fn ldk_force_closes_and_our_commitment_confirms_anchors() {
    let mut w = World::new(true);
    w.connect();
    // LDK funds 1,000,000 sat, pushing us 300,000 sat: LDK pays the commitment's fee and
    // both anchors.
    let (cid, scid) = w.ldk_opens(1_000_000, 300_000_000);
    let ldk_scid = w.ldk_scid(cid);
    // A: the upstream node pays LDK 30,000 sat through us; LDK never claims it: our
    // HTLC-timeout, then we fail it back upstream.
    let (up_cid, up_scid) = w.upstream_opens(500_000);
    let (hash_a, _) = w.upstream_pays_ldk(up_scid, scid, 30_000_000);
    // B: LDK offers us 50,000 sat; we claim it on chain with its preimage: our HTLC-success.
    let (hash_b, preimage_b) = w.ldk_sends(ldk_scid, 50_000_000, 1);
    let our_balance_sat = w.our_channel(cid).balances.to_local_msat / 1000;
    assert_eq!(our_balance_sat, 300_000 - 30_000);
    let funding = w.us.monitor(&cid).expect("monitor").funding_outpoint();
    w.withhold_ldk_close = Some(funding);
    w.ldk
        .force_close(cid, w.us.node_id())
        .expect("LDK force-closes");
    w.pump();
    assert!(
        !w.withheld.is_empty(),
        "LDK broadcast its commitment (lost)"
    );
    assert!(
        w.our_events.iter().any(|e| matches!(e, Event::ChannelClosed { channel_id, reason: ClosureReason::CounterpartyForceClosed { .. }, .. } if *channel_id == cid)),
        "we closed on LDK's error: {:?}",
        w.our_events
    );
    w.us.claim_funds(preimage_b).expect("claim B");
    w.pump();
    let commitment = w.our_commitment_mined(cid);
    assert!(w.onchain(cid).iter().any(|e| matches!(
        e,
        MonitorEvent::FundingSpent {
            kind: FundingSpendKind::Holder { .. },
            ..
        }
    )));
    let to_local = World::output_worth(&commitment, our_balance_sat);
    let htlc_a = World::output_worth(&commitment, 30_000);
    let htlc_b = World::output_worth(&commitment, 50_000);
    w.mine_until(400, "every output of ours swept", |w| {
        w.our_close_swept(to_local, &[htlc_a, htlc_b]).is_some()
    });
    let a2 = w.feed.spender(&htlc_a).expect("our HTLC-timeout");
    let b2 = w.feed.spender(&htlc_b).expect("our HTLC-success");
    w.check_htlc_claims(cid, &[(&a2, 30_000), (&b2, 50_000)]);
    let claimed: BTreeSet<OutPoint> = w
        .our_close_swept(to_local, &[htlc_a, htlc_b])
        .expect("swept")
        .into_iter()
        .collect();
    let (swept, fees) = w.check_sweeps(cid, &claimed);
    // Exactly our balance and both HTLCs, less our sweeps' fees: LDK funded (the
    // commitment's fee and the anchors are its), and our wallet paid the CPFP child and
    // the HTLC transactions' fees.
    assert_eq!(swept, our_balance_sat + 30_000 + 50_000 - fees);
    w.check_our_wallet();
    assert!(w.onchain(cid).iter().any(|e| matches!(e, MonitorEvent::InboundHtlcClaimed { payment_hash, .. } if *payment_hash == hash_b)));
    assert!(
        w.ldk_events.iter().any(
            |e| matches!(e, LdkEvent::PaymentSent { payment_hash, .. } if *payment_hash == hash_b)
        ),
        "LDK learned B's preimage from our HTLC-success"
    );
    // A failed back upstream once our HTLC-timeout was final; the upstream channel stays.
    w.mine_until(3, "the upstream's PaymentFailed for A", |w| {
        w.upstream_events
            .iter()
            .any(|e| matches!(e, LdkEvent::PaymentFailed { payment_hash: Some(h) } if *h == hash_a))
    });
    assert!(w.our_channel(up_cid).is_usable);
    // LDK's commitment never reached the chain; LDK got its part of ours.
    assert!(w
        .withheld
        .iter()
        .all(|t| w.feed.chain.confirmations(t) == 0));
    assert!(
        w.ldk_events
            .iter()
            .any(|e| matches!(e, LdkEvent::Other(s) if s.starts_with("SpendableOutputs"))),
        "LDK's to_remote on our commitment: {:?}",
        w.ldk_events
    );
    w.assert_chain_clean();
}

/// Scenario 2: we force-close and sweep everything; LDK claims its part.
#[test]
fn we_force_close_and_sweep_everything() {
    we_force_close(false);
}

/// Scenario 2 on an anchor channel, through a mempool with a floor. Our node hands its
/// commitment and its zero-fee HTLC transactions out as `MonitorEvent::BumpNeeded`; our
/// wallet serves them: a CPFP child spending our anchor gets the commitment (paying less
/// than the floor alone) mined as a package, and the HTLC-success and HTLC-timeout
/// transactions get wallet inputs and change.
#[test]
fn we_force_close_and_sweep_everything_anchors() {
    we_force_close(true);
}

fn we_force_close(anchors: bool) {
    let mut w = World::new(anchors);
    w.connect();
    let (cid, scid) = w.we_open(1_000_000);
    // LDK lets at most 10% of the channel be in flight: settle 180,000 sat in two payments.
    w.we_pay(scid, 90_000_000, 1);
    w.we_pay(scid, 90_000_000, 6);
    let ldk_scid = w.ldk_scid(cid);
    // D: we offer 40,000 sat; LDK does not claim: our HTLC-timeout.
    let (hash_d, _) = w.we_send(scid, 40_000_000, 2);
    // F: we offer 25,000 sat; LDK claims it on our commitment with the preimage.
    let (hash_f, preimage_f) = w.we_send(scid, 25_000_000, 3);
    // E: LDK offers 50,000 sat; we claim: our HTLC-success.
    let (hash_e, preimage_e) = w.ldk_sends(ldk_scid, 50_000_000, 4);
    // G: LDK offers 20,000 sat; we never claim: LDK times it out.
    let (hash_g, _) = w.ldk_sends(ldk_scid, 20_000_000, 5);
    let our_balance_sat = w.our_channel(cid).balances.to_local_msat / 1000;
    assert_eq!(our_balance_sat, 1_000_000 - 180_000 - 40_000 - 25_000);
    w.disconnect();
    w.ldk.claim_funds(preimage_f);
    w.us.claim_funds(preimage_e).expect("claim E");
    w.pump();
    w.us.force_close_channel(cid, w.ldk_id())
        .expect("force-close");
    w.pump();
    assert!(w.our_events.iter().any(|e| matches!(e, Event::ChannelClosed { channel_id, reason: ClosureReason::HolderForceClosed, .. } if *channel_id == cid)));
    let commitment = w.our_commitment_mined(cid);
    // The funder (us) pays the commitment fee from its balance.
    let funding_value = w.feed.input_value(&commitment);
    assert_eq!(funding_value, 1_000_000);
    let commit_fee = w.feed.fee(&commitment);
    // Anchors: the funder (us) also pays the two 330-sat anchors.
    let anchor_outputs = if anchors { 2 * 330 } else { 0 };
    let to_local = World::output_worth(&commitment, our_balance_sat - commit_fee - anchor_outputs);
    let htlc_d = World::output_worth(&commitment, 40_000);
    let htlc_e = World::output_worth(&commitment, 50_000);
    let htlc_f = World::output_worth(&commitment, 25_000);
    let htlc_g = World::output_worth(&commitment, 20_000);
    // LDK claims F with the preimage: we learn it.
    w.mine_until(3, "our PaymentSent for F", |w| {
        w.payment_sent(hash_f).is_some()
    });
    assert_eq!(w.payment_sent(hash_f), Some(preimage_f));
    // Everything resolves: D times out (second stage), E's HTLC-success, to_local after the
    // CSV delay, both second stages after theirs, G timed out by LDK.
    w.mine_until(400, "every output of ours swept", |w| {
        w.our_close_swept(to_local, &[htlc_d, htlc_e]).is_some()
            && w.feed.spender(&htlc_g).is_some()
    });
    let d2 = w.feed.spender(&htlc_d).unwrap();
    let e2 = w.feed.spender(&htlc_e).unwrap();
    w.check_htlc_claims(cid, &[(&d2, 40_000), (&e2, 50_000)]);
    let claimed: BTreeSet<OutPoint> = [
        to_local,
        OutPoint {
            txid: d2.compute_txid(),
            vout: 0,
        },
        OutPoint {
            txid: e2.compute_txid(),
            vout: 0,
        },
    ]
    .into();
    w.mine(6);
    let (swept, fees) = w.check_sweeps(cid, &claimed);
    // What the second stages took from the HTLCs' value (with anchors, nothing: our
    // wallet paid their fees, checked in `check_our_wallet`).
    let second_stage_fees =
        (40_000 - d2.output[0].value.to_sat()) + (50_000 - e2.output[0].value.to_sat());
    if anchors {
        assert_eq!(second_stage_fees, 0);
        let wallet_htlc_fees = w.check_our_wallet();
        assert_eq!(wallet_htlc_fees, w.feed.fee(&d2) + w.feed.fee(&e2));
    }
    eprintln!(
        "balance {our_balance_sat} + HTLCs 90000 - commitment fee {commit_fee} - second stages {second_stage_fees} -> swept {swept}"
    );
    // Exactly our balance and the two HTLCs we were owed, less the commitment's fee (we
    // funded), what our second stages took from the HTLCs and our sweeps' fees.
    assert_eq!(
        swept,
        our_balance_sat + 40_000 + 50_000 - commit_fee - anchor_outputs - second_stage_fees - fees
    );
    assert!(w.payment_failed(hash_d), "D failed after its timeout");
    assert!(w.onchain(cid).iter().any(|e| matches!(e, MonitorEvent::InboundHtlcClaimed { payment_hash, .. } if *payment_hash == hash_e)));
    assert!(w.onchain(cid).iter().any(|e| matches!(e, MonitorEvent::InboundHtlcLost { payment_hash, .. } if *payment_hash == hash_g)));
    // LDK claimed F and timed out G on our commitment.
    for o in [htlc_f, htlc_g] {
        let s = w.feed.spender(&o).expect("claimed");
        assert_eq!(w.feed.broadcaster_of(&s.compute_txid()), Some(Who::Ldk));
    }
    assert!(
        w.ldk_events.iter().any(
            |e| matches!(e, LdkEvent::PaymentSent { payment_hash, .. } if *payment_hash == hash_e)
        ),
        "LDK learned E's preimage from our HTLC-success"
    );
    assert!(
        w.ldk_events
            .iter()
            .any(|e| matches!(e, LdkEvent::Other(s) if s.starts_with("SpendableOutputs"))),
        "LDK got its to_remote and claims as spendable outputs: {:?}",
        w.ldk_events
    );
    w.assert_chain_clean();
}

/// Scenario 3: LDK restored from a stale monitor broadcasts a revoked commitment.
#[test]
fn stale_ldk_broadcasts_revoked_commitment() {
    stale_ldk(false);
}

/// Scenario 3 on an anchor channel: the restored monitor's commitment and its HTLC-success
/// go out through LDK's bump handler over its wallet (the HTLC-success with a wallet input
/// and change). Our justice transactions reach the mempool first; a miner confirms LDK's
/// HTLC-success instead of our claim of that HTLC, and we take its output.
#[test]
fn stale_ldk_broadcasts_revoked_commitment_anchors() {
    stale_ldk(true);
}

fn stale_ldk(anchors: bool) {
    let mut w = World::new(anchors);
    w.connect();
    let (cid, scid) = w.ldk_opens(1_000_000, 300_000_000);
    // Y: we pay LDK 40,000 sat. LDK claims it: its monitor holds the preimage and its
    // commitment still holds Y. Its serialization now is the stale backup.
    let (hash_y, preimage_y) = w.we_send(scid, 40_000_000, 1);
    w.ldk.claim_funds(preimage_y);
    let ldk_cid = LdkChannelId(cid.0);
    let stale_bytes = w
        .ldk
        .chain_monitor
        .get_monitor(ldk_cid)
        .expect("LDK's monitor")
        .encode();
    let stale_height = w.feed.chain.height();
    // The channel moves on: Y is settled, then another payment; the backed-up state is
    // revoked.
    w.pump();
    assert_eq!(w.payment_sent(hash_y), Some(preimage_y));
    w.we_pay(scid, 10_000_000, 2);
    let our_balance_sat = w.our_channel(cid).balances.to_local_msat / 1000;
    assert_eq!(our_balance_sat, 250_000);
    w.mine(3);
    // LDK is restored from the backup: the stale monitor, synced to the tip, broadcasts its
    // "latest" commitment (revoked) and its HTLC-success for Y.
    w.disconnect();
    w.ldk_live = false;
    let (_, monitor) = <(BlockHash, LdkMonitor<InMemorySigner>)>::read(
        &mut lightning::io::Cursor::new(&stale_bytes),
        (&*w.ldk.keys, &*w.ldk.keys),
    )
    .expect("the stale monitor reads back");
    let broadcaster = Arc::new(RecordingBroadcaster::default());
    let logger = Arc::new(TestLogger::new("LDK-stale"));
    let bump = w.ldk_wallet.as_ref().map(|(wallet, _, _)| {
        wallet.handler(
            Arc::clone(&broadcaster),
            Arc::clone(&w.ldk.keys),
            Arc::clone(&logger),
        )
    });
    let stale = StaleMonitor {
        monitor,
        broadcaster,
        fees: Arc::new(FixedFeeEstimator::new(DEFAULT_FEERATE_PER_KW)),
        logger,
        bump,
    };
    for height in stale_height + 1..=w.feed.chain.height() {
        let block = w.feed.chain.block(height).expect("mined").clone();
        let txdata: Vec<(usize, &Transaction)> = block.txdata.iter().enumerate().collect();
        stale.monitor.block_connected(
            &block.header,
            &txdata,
            height,
            &*stale.broadcaster,
            &*stale.fees,
            &stale.logger,
        );
    }
    stale.monitor.broadcast_latest_holder_commitment_txn(
        &stale.broadcaster,
        &stale.fees,
        &stale.logger,
    );
    w.stale = Some(stale);
    w.pump();
    let funding = w.us.monitor(&cid).expect("monitor").funding_outpoint();
    let revoked = w
        .feed
        .broadcasts
        .iter()
        .find(|(who, tx)| *who == Who::Ldk && tx.input[0].previous_output == funding)
        .map(|(_, tx)| tx.clone())
        .expect("the stale LDK broadcast its commitment");
    let htlc_y = World::output_worth(&revoked, 40_000);
    let find_second = |w: &World| {
        w.feed
            .broadcasts
            .iter()
            .find(|(who, tx)| {
                *who == Who::Ldk && tx.input.iter().any(|i| i.previous_output == htlc_y)
            })
            .map(|(_, tx)| tx.clone())
    };
    let ldk_second = if anchors {
        // LDK's HTLC-success (zero-fee, paid by its wallet) only follows the commitment's
        // confirmation; by then our justice transactions are in the mempool.
        w.mine(1);
        assert_eq!(w.feed.chain.confirmations(&revoked.compute_txid()), 1);
        let second = find_second(&w).expect("the stale LDK's HTLC-success for Y");
        assert!(second.input.len() >= 2, "a wallet input pays its fee");
        let (height, block) = w
            .feed
            .chain
            .mine_block_with(vec![second.clone()])
            .map(|b| (w.feed.chain.height(), b))
            .expect("LDK's HTLC-success is valid");
        w.feed_block(height, &block);
        second
    } else {
        // Both confirm in the next block.
        let second = find_second(&w).expect("the stale LDK's HTLC-success for Y");
        w.mine(1);
        assert_eq!(w.feed.chain.confirmations(&revoked.compute_txid()), 1);
        second
    };
    assert_eq!(
        w.feed.chain.confirmations(&ldk_second.compute_txid()),
        1,
        "LDK's HTLC-success confirmed; refused {:?}",
        w.feed.refused
    );
    assert!(w.onchain(cid).iter().any(|e| matches!(e, MonitorEvent::RevokedCommitmentSeen { txid, .. } if *txid == revoked.compute_txid())));
    // We take everything: LDK's to_local, our to_remote, and the HTLC-success's output (at
    // the index of its input spending Y: SIGHASH_SINGLE pairs them).
    let commit_fee = w.feed.fee(&revoked);
    let anchor_outputs = if anchors { 2 * 330 } else { 0 };
    let to_remote = World::output_worth(&revoked, 260_000);
    let to_local_value = 1_000_000 - 300_000 - commit_fee - anchor_outputs;
    let to_local = World::output_worth(&revoked, to_local_value);
    let index = ldk_second
        .input
        .iter()
        .position(|i| i.previous_output == htlc_y)
        .expect("spends Y");
    let second_out = OutPoint {
        txid: ldk_second.compute_txid(),
        vout: index as u32,
    };
    let second_value = ldk_second.output[index].value.to_sat();
    if anchors {
        assert_eq!(
            second_value, 40_000,
            "a zero-fee HTLC-success keeps the HTLC's value"
        );
    } else {
        assert_eq!(second_value, 40_000 - w.feed.fee(&ldk_second));
    }
    let claimed: BTreeSet<OutPoint> = [to_remote, to_local, second_out].into();
    w.mine_until(40, "every justice claim confirmed 6 deep", |w| {
        let spent: BTreeSet<OutPoint> = w
            .claims_confirmed(cid)
            .iter()
            .flat_map(|(txid, _)| {
                w.feed
                    .chain
                    .get_tx(txid)
                    .expect("confirmed")
                    .input
                    .iter()
                    .map(|i| i.previous_output)
                    .collect::<Vec<_>>()
            })
            .collect();
        spent == claimed
    });
    let (swept, fees) = w.check_sweeps(cid, &claimed);
    eprintln!(
        "to_remote 260000 + cheater's to_local {to_local_value} + second stage {second_value} - fees {fees} = swept {swept}"
    );
    // Everything the cheater's transactions left on chain (but the anchors), less our
    // justice fees.
    assert_eq!(swept, 260_000 + to_local_value + second_value - fees);
    if anchors {
        w.assert_wallet_untouched();
    }
    w.assert_chain_clean();
}

/// What `tx` pays to any of `scripts`.
fn paid_to_any(tx: &Transaction, scripts: &BTreeSet<bitcoin::ScriptBuf>) -> u64 {
    scripts.iter().map(|s| paid_to(tx, s)).sum()
}
