//! On-chain enforcement (BOLT 5) against LDK: our `NodeCore` and a real LDK node (`lightning`
//! 0.2) share one validating regtest chain (`lnshard_testkit::chain::ValidatingChain`). Every
//! transaction either side broadcasts goes through its mempool (each input checked by
//! libbitcoinconsensus, locktimes, BIP 68, relay policy); both sides are fed the same blocks.
//!
//! Three closes, each ending with the exact amount swept to our sweep script:
//! 1. LDK force-closes with HTLCs pending both ways: we claim on its commitment what we are
//!    owed (an HTLC by preimage, one by timeout, our `to_remote`) and learn the preimage LDK
//!    reveals with its HTLC-success transaction.
//! 2. We force-close: our `to_local` after the CSV delay, our HTLC-success and HTLC-timeout
//!    second stages and their outputs; LDK claims its HTLCs on our commitment.
//! 3. LDK restored from a stale `ChannelMonitor` broadcasts a revoked commitment with its
//!    HTLC-success transaction: our justice transactions take everything, the second stage
//!    included.
//!
//! Each runs on an `option_static_remotekey` channel and on an
//! `option_anchors_zero_fee_htlc_tx` one. With anchors, LDK's `BumpTransaction` events go to
//! LDK's own `BumpTransactionEventHandlerSync` over a small P2WPKH wallet funded on the chain
//! (`ldk_support::wallet`), so LDK's commitment and HTLC transactions are bumped as in
//! production. Our node has no wallet here: the test broadcasts what our node hands out as
//! `MonitorEvent::BumpNeeded` as it is, and only in scenario 2 (our zero-fee HTLC
//! transactions) sets the chain's `Policy::allow_zero_fee` so that they relay.

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
use lnshard::core::chain::{FundingSpendKind, MonitorEvent};
use lnshard::core::node::{
    ClosureReason, Event, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop,
};
use lnshard::core::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};

/// The final CLTV delta of every payment here.
const CLTV_DELTA: u32 = 60;

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
    /// Anchors: whether the test acts as our wallet by broadcasting what our node hands out
    /// as `BumpNeeded` as it is (the chain's policy must then accept zero-fee transactions).
    we_broadcast_bump_needed: bool,
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
        let ldk = LdkNode::new_at(
            "LDK",
            9,
            LdkNode::config(anchors),
            feed.chain.tip(),
            feed.chain.height(),
        );
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
            we_broadcast_bump_needed: false,
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
                        event:
                            MonitorEvent::BumpNeeded {
                                tx,
                                anchor,
                                deadline,
                                feerate_per_kw,
                            },
                    }) => {
                        assert!(self.anchors, "BumpNeeded only on anchor channels");
                        if self.we_broadcast_bump_needed {
                            self.feed.broadcast(Who::Us, tx.clone());
                        }
                        self.our_events.push(Event::OnChain {
                            channel_id,
                            counterparty_node_id,
                            event: MonitorEvent::BumpNeeded {
                                tx,
                                anchor,
                                deadline,
                                feerate_per_kw,
                            },
                        });
                    }
                    Output::Event(e) => self.our_events.push(e),
                    Output::Forward(f) => self.us.handle_forward(f),
                    Output::Resolve(r) => self.us.handle_resolution(r),
                    other => panic!("unexpected output {other:?}"),
                }
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
                self.feed.broadcast(Who::Ldk, tx);
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
            .create_channel(ldk_id, sats, 0, 1, 1000)
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

    fn expect_ready(&mut self, channel_id: ChannelId) -> (ChannelId, ShortChannelId) {
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
    let (hash_h, secret_h) = w.ldk.create_inbound_payment(20_000_000);
    let hops = [
        Hop {
            node_id: w.us.node_id(),
            short_channel_id: up_scid,
            fee_msat: 1_000 + 20_000_000 / 10_000,
            cltv_expiry_delta: 72,
        },
        Hop {
            node_id: w.ldk_id(),
            short_channel_id: scid.0,
            fee_msat: 20_000_000,
            cltv_expiry_delta: CLTV_DELTA,
        },
    ];
    w.upstream
        .as_ref()
        .expect("upstream")
        .send_payment_along(&hops, hash_h, secret_h)
        .expect("upstream send_payment");
    w.pump();
    let preimage_h = w
        .ldk_events
        .iter()
        .find_map(|e| match e {
            LdkEvent::PaymentClaimable {
                payment_hash,
                preimage,
                ..
            } if *payment_hash == hash_h => *preimage,
            _ => None,
        })
        .unwrap_or_else(|| panic!("LDK's PaymentClaimable for H: {:?}", w.ldk_events));
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

/// Scenario 2: we force-close and sweep everything; LDK claims its part.
#[test]
fn we_force_close_and_sweep_everything() {
    we_force_close(false);
}

/// Scenario 2 on an anchor channel. Our node hands its commitment and its zero-fee HTLC
/// transactions out as `MonitorEvent::BumpNeeded`; this test has no wallet for our node and
/// acts as one by broadcasting them as they are: the commitment pays its own fee, and the
/// validating chain's policy is set to accept zero-fee transactions (`Policy::allow_zero_fee`,
/// as a package-relay mempool would take them with a child) for the HTLC transactions.
#[test]
fn we_force_close_and_sweep_everything_anchors() {
    we_force_close(true);
}

fn we_force_close(anchors: bool) {
    let mut w = World::new(anchors);
    if anchors {
        let mut policy = w.feed.chain.policy().clone();
        policy.allow_zero_fee = true;
        w.feed.chain.set_policy(policy);
        w.we_broadcast_bump_needed = true;
    }
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
    w.mine(1);
    let commitment = w.commitment(cid);
    assert_eq!(
        w.feed.broadcaster_of(&commitment.compute_txid()),
        Some(Who::Us)
    );
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
        let second = |o: &OutPoint| {
            w.feed
                .spender(o)
                .filter(|tx| w.feed.broadcaster_of(&tx.compute_txid()) == Some(Who::Us))
        };
        let (Some(d2), Some(e2)) = (second(&htlc_d), second(&htlc_e)) else {
            return false;
        };
        let mut outs = vec![to_local];
        outs.extend([&d2, &e2].into_iter().map(|tx| OutPoint {
            txid: tx.compute_txid(),
            vout: 0,
        }));
        outs.iter().all(|o| {
            w.feed
                .spender(o)
                .is_some_and(|s| w.feed.chain.confirmations(&s.compute_txid()) >= 6)
        }) && w.feed.spender(&htlc_g).is_some()
    });
    let d2 = w.feed.spender(&htlc_d).unwrap();
    let e2 = w.feed.spender(&htlc_e).unwrap();
    assert_eq!(d2.input.len(), 1, "HTLC-timeout");
    assert_eq!(e2.input.len(), 1, "HTLC-success");
    if anchors {
        // Both HTLC transactions came as BumpNeeded (never broadcast as final by our node)
        // and pay no fee. (Our commitment, paying its own fee at the channel's feerate, was
        // broadcast by the node itself on the force-close.)
        let bump_needed: BTreeSet<Txid> = w
            .onchain(cid)
            .iter()
            .filter_map(|e| match e {
                MonitorEvent::BumpNeeded { tx, .. } => Some(tx.compute_txid()),
                _ => None,
            })
            .collect();
        for tx in [&d2, &e2] {
            assert!(
                bump_needed.contains(&tx.compute_txid()),
                "BumpNeeded for {tx:?}"
            );
        }
        assert_eq!(w.feed.fee(&d2), 0);
        assert_eq!(w.feed.fee(&e2), 0);
    }
    let d2_out = d2.output[0].value.to_sat();
    let e2_out = e2.output[0].value.to_sat();
    assert_eq!(40_000 - w.feed.fee(&d2), d2_out);
    assert_eq!(50_000 - w.feed.fee(&e2), e2_out);
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
    let second_stage_fees = w.feed.fee(&d2) + w.feed.fee(&e2);
    eprintln!(
        "balance {our_balance_sat} + HTLCs 90000 - commitment fee {commit_fee} - second stages {second_stage_fees} -> swept {swept}"
    );
    // Exactly our balance and the two HTLCs we were owed, less the commitment's fee (we
    // funded), our second stages' fees and our sweeps' fees.
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
    w.assert_chain_clean();
}
