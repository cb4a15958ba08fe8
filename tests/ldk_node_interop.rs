//! Interoperability with LDK: our `NodeCore` and a real LDK node (`lightning` 0.2 from
//! crates.io) talk only through wire bytes — ours encoded by `lightning_core::wire`, LDK's by
//! its own serialization. Channels open both ways, payments flow both ways, and each side
//! closes one channel cooperatively. This test is the proof that the protocol is real.

mod ldk_support;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::Transaction;
use ldk_support::chain::FakeChain;
use ldk_support::{is_disconnect, Hop, LdkEvent, LdkNode};
use lnshard::core::node::{
    ClosureReason, Event, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop,
};
use lnshard::core::types::{ChannelId, PaymentPreimage, ShortChannelId};

/// Our node, LDK, and the chain they share.
struct Pair {
    us: NodeCore,
    ldk: LdkNode,
    chain: FakeChain,
    our_events: Vec<Event>,
    ldk_events: Vec<LdkEvent>,
    our_broadcasts: Vec<Transaction>,
    our_synced: u32,
    /// Whether both sides should negotiate `option_anchors_zero_fee_htlc_tx`.
    anchors: bool,
    /// Message types we sent and LDK sent, with counts.
    sent: std::collections::BTreeMap<u16, usize>,
    received: std::collections::BTreeMap<u16, usize>,
}

impl Pair {
    fn new(anchors: bool) -> Pair {
        let mut chain = FakeChain::new();
        chain.mine_empty(101);
        let ldk = LdkNode::new("LDK", 7, LdkNode::config(anchors), &chain);
        let secret =
            SecretKey::from_slice(&sha256::Hash::hash(b"lnshard interop node").to_byte_array())
                .unwrap();
        let us = NodeCore::new(
            secret,
            sha256::Hash::hash(b"lnshard interop seed").to_byte_array(),
            NodeConfig::default(),
            chain.height(),
            chain.tip_hash(),
        );
        let our_synced = chain.height();
        Pair {
            us,
            ldk,
            chain,
            our_events: Vec::new(),
            ldk_events: Vec::new(),
            our_broadcasts: Vec::new(),
            our_synced,
            anchors,
            sent: Default::default(),
            received: Default::default(),
        }
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
        self.pump();
    }

    /// Moves messages both ways until both sides are quiet.
    fn pump(&mut self) {
        let (ours, theirs) = (self.us.node_id(), self.ldk_id());
        for _ in 0..10_000 {
            let mut progress = false;
            for output in self.us.drain_outputs() {
                progress = true;
                match output {
                    Output::SendMessage { node_id, msg } => {
                        assert_eq!(node_id, theirs);
                        *self.sent.entry(msg.message_type()).or_default() += 1;
                        self.ldk
                            .handle_message(ours, &msg.encode())
                            .unwrap_or_else(|e| {
                                panic!("LDK rejected our {}: {e}", msg.message_type())
                            });
                    }
                    Output::Disconnect { .. } => {
                        panic!("we disconnected LDK; our events: {:?}", self.our_events)
                    }
                    Output::Event(Event::BroadcastTransaction { tx }) => {
                        self.our_broadcasts.push(tx)
                    }
                    Output::Event(e) => self.our_events.push(e),
                    Output::Forward(f) => self.us.handle_forward(f),
                    Output::Resolve(r) => self.us.handle_resolution(r),
                    other => panic!("unexpected output {other:?}"),
                }
            }
            for (to, bytes) in self.ldk.drain_messages() {
                progress = true;
                assert_eq!(to, ours);
                assert!(
                    !is_disconnect(&bytes),
                    "LDK disconnected us; LDK warnings: {:?}",
                    self.ldk.received_warnings()
                );
                if let [hi, lo, ..] = bytes[..] {
                    *self
                        .received
                        .entry(u16::from_be_bytes([hi, lo]))
                        .or_default() += 1;
                }
                self.us.handle_message(theirs, &bytes);
            }
            for event in self.ldk.drain_events() {
                progress = true;
                self.ldk_events.push(event);
            }
            if !progress {
                assert!(
                    self.ldk.received_warnings().is_empty(),
                    "LDK got warnings: {:?}",
                    self.ldk.received_warnings()
                );
                return;
            }
        }
        panic!("no quiescence");
    }

    /// Mines `n` blocks (the first with everything both sides broadcast) and feeds them to both.
    fn mine(&mut self, n: u32) {
        let mut txs = std::mem::take(&mut self.our_broadcasts);
        for tx in self.ldk.broadcaster.take() {
            if !txs.iter().any(|t| t.compute_txid() == tx.compute_txid()) {
                txs.push(tx);
            }
        }
        self.chain.mine(txs);
        if n > 1 {
            self.chain.mine_empty(n - 1);
        }
        while self.our_synced < self.chain.height() {
            self.our_synced += 1;
            let block = self.chain.block(self.our_synced).expect("block").clone();
            let txdata: Vec<(u32, &Transaction)> = block
                .txdata
                .iter()
                .enumerate()
                .map(|(i, tx)| (i as u32, tx))
                .collect();
            self.us.transactions_confirmed(self.our_synced, &txdata);
            self.us
                .best_block_updated(self.our_synced, block.block_hash());
        }
        self.ldk.sync_to(&self.chain);
        self.pump();
    }

    fn our_channel(&self, channel_id: ChannelId) -> lnshard::core::node::ChannelDetails {
        self.us
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == channel_id)
            .expect("our channel")
    }

    /// We open a channel to LDK; returns its id and short id once ready on both sides.
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
            .expect("FundingGenerationReady after LDK's accept_channel");
        let funding = funding_tx(script, value, 1);
        self.us
            .funding_transaction_generated(temp, ldk_id, funding.clone())
            .expect("funding");
        self.pump();
        assert!(
            self.our_broadcasts
                .iter()
                .any(|t| t.compute_txid() == funding.compute_txid()),
            "we broadcast the funding tx after LDK's funding_signed"
        );
        let channel_id = ChannelId::from_funding_outpoint(&funding.compute_txid(), 0);
        self.mine(6);
        self.expect_ready(channel_id)
    }

    /// LDK opens a channel to us; returns its id and short id once ready on both sides.
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
            .expect("LDK built its funding tx after our accept_channel");
        let vout = funding
            .output
            .iter()
            .position(|o| o.value.to_sat() == sats)
            .expect("funding output") as u16;
        let channel_id = ChannelId::from_funding_outpoint(&funding.compute_txid(), vout);
        assert!(
            self.our_events.iter().any(
                |e| matches!(e, Event::ChannelPending { channel_id: c, .. } if *c == channel_id)
            ),
            "we signed LDK's funding"
        );
        self.mine(6);
        self.expect_ready(channel_id)
    }

    fn expect_ready(&mut self, channel_id: ChannelId) -> (ChannelId, ShortChannelId) {
        assert!(
            self.our_events.iter().any(
                |e| matches!(e, Event::ChannelReady { channel_id: c, .. } if *c == channel_id)
            ),
            "our ChannelReady for {channel_id}: {:?}",
            self.our_events
        );
        let anchors = self.anchors;
        assert!(
            self.ldk_events.iter().any(|e| matches!(e, LdkEvent::ChannelReady { channel_id: c, anchors: a, .. } if *c == channel_id && *a == anchors)),
            "LDK's ChannelReady for {channel_id}: {:?}",
            self.ldk_events
        );
        let details = self.our_channel(channel_id);
        assert!(details.is_usable);
        let ours = self
            .us
            .channel(&self.ldk_id(), &channel_id)
            .expect("channel")
            .channel_type();
        assert_eq!(ours.has_anchors(), anchors, "our channel type {ours:?}");
        (channel_id, details.short_channel_id.expect("scid"))
    }

    /// We pay LDK `amount_msat` over `scid`; LDK claims; we see PaymentSent.
    fn we_pay(&mut self, scid: ShortChannelId, amount_msat: u64, n: u8) {
        let (hash, secret) = self.ldk.create_inbound_payment(amount_msat);
        let route = Route {
            hops: vec![RouteHop {
                node_id: self.ldk_id(),
                short_channel_id: scid,
                fee_msat: amount_msat,
                cltv_expiry_delta: 60,
            }],
        };
        let id = PaymentId([n; 32]);
        self.us
            .send_payment(&route, hash, secret, id)
            .expect("send_payment");
        self.pump();
        let preimage = self
            .ldk_events
            .iter()
            .find_map(|e| match e {
                LdkEvent::PaymentClaimable {
                    payment_hash,
                    amount_msat: a,
                    preimage,
                } if *payment_hash == hash => {
                    assert_eq!(*a, amount_msat);
                    *preimage
                }
                _ => None,
            })
            .unwrap_or_else(|| {
                panic!(
                    "LDK found our payment claimable: {:?} / ours {:?}",
                    self.ldk_events, self.our_events
                )
            });
        self.ldk.claim_funds(preimage);
        self.pump();
        assert!(self.ldk_events.iter().any(
            |e| matches!(e, LdkEvent::PaymentClaimed { payment_hash, .. } if *payment_hash == hash)
        ));
        assert!(
            self.our_events.iter().any(|e| matches!(e, Event::PaymentSent { payment_id, payment_preimage, .. } if *payment_id == id && *payment_preimage == preimage)),
            "our PaymentSent: {:?}", self.our_events
        );
    }

    /// LDK pays us `amount_msat` over its channel `ldk_scid`; we claim; LDK sees PaymentSent.
    fn ldk_pays(&mut self, ldk_scid: u64, amount_msat: u64, n: u8) {
        let preimage = PaymentPreimage(sha256::Hash::hash(&[n, 0x11]).to_byte_array());
        let (hash, secret) = self.us.create_inbound_payment(&preimage, Some(amount_msat));
        let hops = [Hop {
            node_id: self.us.node_id(),
            short_channel_id: ldk_scid,
            fee_msat: amount_msat,
            cltv_expiry_delta: 60,
        }];
        self.ldk
            .send_payment_along(&hops, hash, secret)
            .expect("LDK send_payment");
        self.pump();
        assert!(
            self.our_events.iter().any(|e| matches!(e, Event::PaymentClaimable { payment_hash, amount_msat: a, .. } if *payment_hash == hash && *a == amount_msat)),
            "our PaymentClaimable: {:?} / LDK {:?}", self.our_events, self.ldk_events
        );
        self.us.claim_funds(preimage).expect("claim");
        self.pump();
        assert!(
            self.ldk_events.iter().any(|e| matches!(e, LdkEvent::PaymentSent { payment_hash, preimage: p, .. } if *payment_hash == hash && *p == preimage)),
            "LDK's PaymentSent: {:?}", self.ldk_events
        );
        assert!(self.our_events.iter().any(
            |e| matches!(e, Event::PaymentClaimed { payment_hash, .. } if *payment_hash == hash)
        ));
    }

    fn ldk_scid(&self, channel_id: ChannelId) -> u64 {
        let details = self
            .ldk
            .channels()
            .into_iter()
            .find(|c| ldk_support::core_channel_id(c.channel_id) == channel_id)
            .expect("LDK's channel");
        details
            .get_outbound_payment_scid()
            .expect("LDK has an scid for payments")
    }

    fn expect_closed_cooperatively(&mut self, channel_id: ChannelId) {
        assert!(
            self.our_events.iter().any(|e| matches!(e, Event::ChannelClosed { channel_id: c, reason: ClosureReason::CooperativeClosure, .. } if *c == channel_id)),
            "our cooperative ChannelClosed: {:?}", self.our_events
        );
        let ours: Vec<Transaction> = self.our_broadcasts.clone();
        let theirs = self.ldk.broadcaster.all();
        let closing = ours
            .iter()
            .find(|t| theirs.iter().any(|l| l.compute_txid() == t.compute_txid()))
            .expect("both broadcast the same closing transaction");
        assert_eq!(closing.input.len(), 1);
        self.mine(1);
        assert!(
            self.ldk_events.iter().any(
                |e| matches!(e, LdkEvent::ChannelClosed { channel_id: c, .. } if *c == channel_id)
            ),
            "LDK's ChannelClosed: {:?}",
            self.ldk_events
        );
    }
}

/// A funding transaction spending a made-up coin.
fn funding_tx(script: bitcoin::ScriptBuf, value: u64, salt: u8) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: bitcoin::OutPoint {
                txid: bitcoin::Txid::from_byte_array([salt; 32]),
                vout: 0,
            },
            script_sig: bitcoin::ScriptBuf::new(),
            sequence: bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: bitcoin::Witness::from_slice(&[[salt; 72].as_slice(), [2u8; 33].as_slice()]),
        }],
        output: vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(value),
            script_pubkey: script,
        }],
    }
}

fn interop(anchors: bool) {
    let mut pair = Pair::new(anchors);
    pair.connect();
    // We open to LDK, pay it, and it pays us back.
    let (ours, our_scid) = pair.we_open(1_000_000);
    for n in 0..3 {
        pair.we_pay(our_scid, 5_000_000 + u64::from(n), n);
    }
    let ldk_scid = pair.ldk_scid(ours);
    pair.ldk_pays(ldk_scid, 4_000_000, 10);
    // LDK opens to us (pushing nothing), pays us, and we pay back.
    let (theirs, their_scid) = pair.ldk_opens(800_000, 0);
    let ldk_scid2 = pair.ldk_scid(theirs);
    pair.ldk_pays(ldk_scid2, 20_000_000, 11);
    pair.we_pay(their_scid, 6_000_000, 12);
    // Balances agree exactly on both sides.
    let our1 = pair.our_channel(ours).balances;
    assert_eq!(
        our1.to_local_msat,
        1_000_000_000 - (5_000_000 * 3 + 3) + 4_000_000
    );
    let our2 = pair.our_channel(theirs).balances;
    assert_eq!(our2.to_local_msat, 20_000_000 - 6_000_000);
    // We close our channel; LDK closes its one.
    pair.us.close_channel(ours, pair.ldk_id()).expect("close");
    pair.pump();
    pair.expect_closed_cooperatively(ours);
    let our_id = pair.us.node_id();
    pair.ldk.close_channel(theirs, our_id).expect("LDK close");
    pair.pump();
    pair.expect_closed_cooperatively(theirs);
    assert!(pair.us.list_channels().is_empty());
    // Every message of the channel's life crossed both ways (init was checked on connect):
    // open/accept 32/33,
    // funding 34/35, channel_ready 36, shutdown 38, closing_signed 39, update_add 128,
    // update_fulfill 130, commitment_signed 132, revoke_and_ack 133.
    for t in [36u16, 38, 39, 128, 130, 132, 133] {
        assert!(
            pair.sent.contains_key(&t),
            "we sent type {t}: {:?}",
            pair.sent
        );
        assert!(
            pair.received.contains_key(&t),
            "LDK sent type {t}: {:?}",
            pair.received
        );
    }
    for (ours, theirs) in [(32u16, 33u16), (34, 35)] {
        assert!(pair.sent.contains_key(&ours) && pair.received.contains_key(&theirs));
        assert!(pair.sent.contains_key(&theirs) && pair.received.contains_key(&ours));
    }
    eprintln!("we sent {:?}\nLDK sent {:?}", pair.sent, pair.received);
}

/// The feerate of both our commitments and of LDK's view of the channel.
fn feerates(pair: &Pair, channel_id: ChannelId) -> (u32, u32, Option<u32>) {
    let ours = pair
        .us
        .channel(&pair.ldk_id(), &channel_id)
        .expect("our channel");
    let ldk = pair
        .ldk
        .channels()
        .into_iter()
        .find(|c| ldk_support::core_channel_id(c.channel_id) == channel_id)
        .expect("LDK's channel")
        .feerate_sat_per_1000_weight;
    (
        ours.local_commit().spec.feerate_per_kw,
        ours.remote_commit().spec.feerate_per_kw,
        ldk,
    )
}

/// We fund a channel to LDK and follow a moving fee estimate (up and down, with moves under
/// the threshold in between): LDK accepts each `update_fee` (no warning, no disconnection,
/// no close), both sides end every step at the same feerate, and payments go on both ways.
fn update_fee_follows_a_moving_estimate(anchors: bool) {
    let mut pair = Pair::new(anchors);
    pair.connect();
    let (channel_id, scid) = pair.we_open(1_000_000);
    // LDK's estimator sees the same chain: it follows the background estimate. LDK refuses a
    // feerate below its own estimate unless it raises the current one (`check_remote_fee`),
    // and counts a non-anchor commitment's fee above its estimate as dust exposure.
    assert_eq!(feerates(&pair, channel_id), (1000, 1000, Some(1000)));
    let ldk_scid = pair.ldk_scid(channel_id);
    // LDK gets a balance above its reserve to pay us back from.
    pair.we_pay(scid, 100_000_000, 19);
    // (urgent, normal, background) and the feerate the channel must be at afterwards:
    // without anchors it follows `normal`, with anchors `background`; a move of less than
    // 20% up or 50% down changes nothing.
    let steps: [((u32, u32, u32), u32, u32); 7] = [
        ((3_000, 1_500, 1_300), 1_500, 1_300),
        ((3_000, 1_600, 1_400), 1_500, 1_300),
        ((6_000, 2_500, 2_000), 2_500, 2_000),
        ((9_000, 4_000, 3_000), 4_000, 3_000),
        ((4_000, 2_200, 1_700), 4_000, 3_000),
        ((3_000, 1_800, 1_000), 1_800, 1_000),
        ((1_000, 600, 253), 600, 253),
    ];
    let mut updates = 0;
    let mut current = 1000;
    for (n, ((urgent, normal, background), plain, anchored)) in steps.into_iter().enumerate() {
        let expected = if anchors { anchored } else { plain };
        pair.ldk.fee_estimator.set(background);
        pair.us
            .fee_estimates_updated(lnshard::core::node::FeeEstimates {
                urgent,
                normal,
                background,
            });
        pair.pump();
        if expected != current {
            updates += 1;
            current = expected;
        }
        assert_eq!(
            feerates(&pair, channel_id),
            (expected, expected, Some(expected)),
            "step {n}"
        );
        assert_eq!(
            pair.sent.get(&134).copied().unwrap_or(0),
            updates,
            "step {n}"
        );
        let n = n as u8;
        pair.we_pay(scid, 3_000_000 + u64::from(n), 20 + n);
        // LDK sends no HTLC that would be dust at the channel's feerate (about 2.6M msat
        // without anchors at 4,000 sat/kw): 5M msat stays above it.
        pair.ldk_pays(ldk_scid, 5_000_000 + u64::from(n), 40 + n);
    }
    assert!(updates >= 4, "the estimate moved the channel several times");
    assert!(
        !pair
            .our_events
            .iter()
            .any(|e| matches!(e, Event::ChannelClosed { .. })),
        "nothing closed: {:?}",
        pair.our_events
    );
    assert!(pair.our_channel(channel_id).is_usable);
    assert!(pair.ldk.received_warnings().is_empty());
}

#[test]
fn ldk_accepts_update_fee_following_the_estimate_static_remotekey() {
    update_fee_follows_a_moving_estimate(false);
}

#[test]
fn ldk_accepts_update_fee_following_the_estimate_anchors() {
    update_fee_follows_a_moving_estimate(true);
}

#[test]
fn ldk_interop_static_remotekey() {
    interop(false);
}

#[test]
fn ldk_interop_anchors_zero_fee_htlc_tx() {
    interop(true);
}
