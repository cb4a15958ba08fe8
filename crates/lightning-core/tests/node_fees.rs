//! Feerates from the host: `update_fee` as funder following [`FeeEstimates`], and a fundee
//! refusing one outside its bounds with a warning (never a force close). Networks of
//! `NodeCore`s exchanging encoded bytes; every channel opens at 2,500 sat/kw.

mod node_support;

use lightning_core::channel::ChannelPhase;
use lightning_core::node::{Event, FeeEstimates, NodeConfig};
use lightning_core::types::ChannelId;
use lightning_core::wire::Message;
use node_support::Net;

const SATS: u64 = 1_000_000;
const OPEN_FEERATE: u32 = 2_500;

fn estimates(urgent: u32, normal: u32, background: u32) -> FeeEstimates {
    FeeEstimates {
        urgent,
        normal,
        background,
    }
}

/// Two nodes and a channel from 0 to 1, with or without anchors.
fn net(anchors: bool, seed: u8) -> (Net, ChannelId, lightning_core::types::ShortChannelId) {
    let mut config = NodeConfig::default();
    config.channel.negotiate_anchors = anchors;
    let mut net = Net::with_config(2, seed, config);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 200_000_000);
    (net, channel_id, scid)
}

/// The feerate of each node's current commitments: (node 0 local, node 0 remote, node 1
/// local, node 1 remote).
fn feerates(net: &Net, channel_id: ChannelId) -> [u32; 4] {
    let mut out = [0; 4];
    for i in 0..2 {
        let peer = net.id(1 - i);
        let c = net.nodes[i].core.channel(&peer, &channel_id).unwrap();
        out[2 * i] = c.local_commit().spec.feerate_per_kw;
        out[2 * i + 1] = c.remote_commit().spec.feerate_per_kw;
    }
    out
}

/// Messages of this type node `i` sent so far.
fn sent_count(net: &Net, i: usize, type_id: u16) -> usize {
    net.nodes[i]
        .sent
        .iter()
        .filter(|(_, b)| u16::from_be_bytes([b[0], b[1]]) == type_id)
        .count()
}

const UPDATE_FEE: u16 = 134;
const WARNING: u16 = 1;

fn no_closure(net: &Net, channel_id: ChannelId) {
    for i in 0..2 {
        assert!(
            !net.nodes[i]
                .events
                .iter()
                .any(|e| matches!(e, Event::ChannelClosed { .. })),
            "node {i} closed nothing"
        );
        assert!(net.chain.mempool.is_empty(), "nothing broadcast");
        let peer = net.id(1 - i);
        let c = net.nodes[i].core.channel(&peer, &channel_id).unwrap();
        assert_eq!(c.phase(), ChannelPhase::Normal, "node {i}'s channel open");
    }
}

#[test]
fn funder_follows_the_normal_estimate_past_the_thresholds() {
    let (mut net, channel_id, scid) = net(false, 101);
    // The fundee knows the same chain.
    net.nodes[1]
        .core
        .fee_estimates_updated(estimates(5_000, 2_500, 1_000));
    net.run();
    assert_eq!(feerates(&net, channel_id), [OPEN_FEERATE; 4]);

    // 12% up: below the 20% threshold, nothing sent.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(5_000, 2_800, 1_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 0);
    assert_eq!(feerates(&net, channel_id), [OPEN_FEERATE; 4]);

    // 20% up: update_fee, and the dance puts it in both commitments on both sides.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(5_000, 3_000, 1_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 1);
    assert_eq!(feerates(&net, channel_id), [3_000; 4]);

    // 40% down: below the 50% threshold, nothing.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(5_000, 1_800, 1_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 1);
    assert_eq!(feerates(&net, channel_id), [3_000; 4]);

    // Halved: follows it down.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(5_000, 1_500, 1_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 2);
    assert_eq!(feerates(&net, channel_id), [1_500; 4]);

    // The same estimate again sends nothing; payments go on at the new feerate.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(5_000, 1_500, 1_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 2);
    net.pay(&[0, 1], &[scid], 10_000_000, 1);
    net.pay(&[1, 0], &[scid], 5_000_000, 2);
    assert_eq!(feerates(&net, channel_id), [1_500; 4]);
    no_closure(&net, channel_id);
}

#[test]
fn fundee_never_sends_update_fee() {
    let (mut net, channel_id, _) = net(false, 102);
    net.nodes[1]
        .core
        .fee_estimates_updated(estimates(20_000, 10_000, 5_000));
    net.run();
    assert_eq!(sent_count(&net, 1, UPDATE_FEE), 0);
    assert_eq!(feerates(&net, channel_id), [OPEN_FEERATE; 4]);
}

#[test]
fn anchor_channels_keep_a_low_floor() {
    let (mut net, channel_id, scid) = net(true, 103);
    // Anchors: the background estimate, not the normal one.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(20_000, 10_000, 300));
    net.run();
    assert_eq!(feerates(&net, channel_id), [300; 4]);
    // The normal estimate moving does not move an anchor channel.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(40_000, 30_000, 300));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 1);
    // Never below the channel's minimum (the relay floor).
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(400, 300, 100));
    net.run();
    assert_eq!(
        sent_count(&net, 0, UPDATE_FEE),
        1,
        "300 to 253 is under the threshold"
    );
    assert_eq!(feerates(&net, channel_id), [300; 4]);
    net.pay(&[0, 1], &[scid], 10_000_000, 1);
    no_closure(&net, channel_id);
}

#[test]
fn fundee_refuses_a_feerate_below_its_floor_with_a_warning_then_accepts_on_reconnect() {
    let (mut net, channel_id, scid) = net(false, 104);
    // Fundee: background 2,000, so the floor of a non-anchor channel is 1,000.
    net.nodes[1]
        .core
        .fee_estimates_updated(estimates(5_000, 3_000, 2_000));
    net.run();
    net.take_events(0);
    net.take_events(1);
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(1_000, 700, 500));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 1);
    assert_eq!(sent_count(&net, 1, WARNING), 1, "the fundee warned");
    assert!(!net.is_connected(0, 1), "and disconnected");
    assert_eq!(feerates(&net, channel_id), [OPEN_FEERATE; 4]);
    no_closure(&net, channel_id);
    let warning = net.nodes[1]
        .sent
        .iter()
        .rev()
        .find_map(|(_, b)| match Message::decode(b) {
            Ok(Message::Warning(w)) => Some(w),
            _ => None,
        })
        .unwrap();
    assert_eq!(warning.channel_id, channel_id);

    // The chain got cheaper for the fundee too: the retransmitted update_fee is accepted.
    net.nodes[1]
        .core
        .fee_estimates_updated(estimates(1_500, 1_000, 800));
    net.connect(0, 1);
    net.run();
    assert_eq!(feerates(&net, channel_id), [700; 4]);
    net.pay(&[0, 1], &[scid], 10_000_000, 1);
    no_closure(&net, channel_id);
}

#[test]
fn fundee_refuses_a_feerate_above_its_ceiling() {
    let (mut net, channel_id, _) = net(false, 105);
    // Fundee: urgent 3,000, so the ceiling is 30,000.
    net.nodes[1]
        .core
        .fee_estimates_updated(estimates(3_000, 2_500, 1_000));
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(50_000, 40_000, 10_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 1);
    assert_eq!(sent_count(&net, 1, WARNING), 1);
    assert!(!net.is_connected(0, 1));
    assert_eq!(feerates(&net, channel_id), [OPEN_FEERATE; 4]);
    no_closure(&net, channel_id);
}

#[test]
fn without_estimates_the_fundee_takes_any_feerate_within_the_static_bounds() {
    let (mut net, channel_id, _) = net(false, 106);
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(50_000, 40_000, 10_000));
    net.run();
    assert_eq!(feerates(&net, channel_id), [40_000; 4]);
    no_closure(&net, channel_id);
}

#[test]
fn funder_never_sends_a_feerate_it_cannot_afford_above_the_reserve() {
    let mut config = NodeConfig::default();
    config.channel.negotiate_anchors = false;
    let mut net = Net::with_config(2, 107, config);
    net.connect(0, 1);
    // The funder keeps 15,000 sat: its reserve (10,000) and the commitment fee at 2,500
    // sat/kw (724 weight: 1,810 sat) fit, at 10x that feerate (18,100 sat) they do not.
    // `update_fee` also needs room for UPDATE_FEE_HTLC_HEADROOM (4) more HTLCs (172 weight
    // each) above the reserve.
    let (channel_id, _) = net.open_channel(0, 1, SATS, (SATS - 15_000) * 1000);
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(30_000, 25_000, 10_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 0);
    assert_eq!(feerates(&net, channel_id), [OPEN_FEERATE; 4]);
    // 5,000 sat/kw is affordable as it is (3,620 sat), but not with room for four more
    // HTLCs (1,412 weight: 7,060 sat): not sent either.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(8_000, 5_000, 1_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 0);
    // 3,200 with that room (4,519 sat) goes through.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(5_000, 3_200, 1_000));
    net.run();
    assert_eq!(feerates(&net, channel_id), [3_200; 4]);
    // Lowering is always affordable.
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(2_000, 1_000, 500));
    net.run();
    assert_eq!(feerates(&net, channel_id), [1_000; 4]);
    no_closure(&net, channel_id);
}

#[test]
fn a_channel_follows_estimates_given_before_it_was_ready() {
    let mut config = NodeConfig::default();
    config.channel.negotiate_anchors = false;
    let mut net = Net::with_config(2, 108, config);
    net.connect(0, 1);
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(6_000, 3_500, 1_000));
    net.run();
    // Opened at 2,500: as soon as it is ready, it moves to the normal estimate.
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 0);
    assert_eq!(feerates(&net, channel_id), [3_500; 4]);
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 1);
    net.pay(&[0, 1], &[scid], 10_000_000, 1);
    no_closure(&net, channel_id);
}

#[test]
fn estimates_given_while_disconnected_apply_after_reestablish() {
    let (mut net, channel_id, scid) = net(false, 109);
    net.disconnect(0, 1);
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(9_000, 5_000, 2_000));
    net.run();
    assert_eq!(
        sent_count(&net, 0, UPDATE_FEE),
        0,
        "nothing sent while disconnected"
    );
    net.connect(0, 1);
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 1);
    assert_eq!(feerates(&net, channel_id), [5_000; 4]);
    net.pay(&[0, 1], &[scid], 10_000_000, 1);
    no_closure(&net, channel_id);
}

/// Mines `n` blocks on the net's chain with its mempool without telling any node; returns
/// them (height, hash, transactions) to feed to each node when the test wants.
fn mine_silently(
    net: &mut Net,
    n: u32,
) -> Vec<(
    u32,
    lightning_core::bitcoin::BlockHash,
    Vec<lightning_core::bitcoin::Transaction>,
)> {
    use lightning_core::bitcoin::block::{Header, Version};
    use lightning_core::bitcoin::hashes::Hash;
    use lightning_core::bitcoin::{CompactTarget, TxMerkleNode};
    let mut out = Vec::new();
    for _ in 0..n {
        let txs = std::mem::take(&mut net.chain.mempool);
        let header = Header {
            version: Version::TWO,
            prev_blockhash: net.chain.tip,
            merkle_root: TxMerkleNode::all_zeros(),
            time: net.chain.height,
            bits: CompactTarget::from_consensus(0x207fffff),
            nonce: 0,
        };
        net.chain.height += 1;
        net.chain.tip = header.block_hash();
        for tx in &txs {
            net.chain
                .confirmed
                .insert(tx.compute_txid(), (net.chain.height, tx.clone()));
        }
        out.push((net.chain.height, net.chain.tip, txs));
    }
    out
}

fn feed(
    net: &mut Net,
    i: usize,
    blocks: &[(
        u32,
        lightning_core::bitcoin::BlockHash,
        Vec<lightning_core::bitcoin::Transaction>,
    )],
) {
    for (height, hash, txs) in blocks {
        let txdata: Vec<(u32, &lightning_core::bitcoin::Transaction)> = txs
            .iter()
            .enumerate()
            .map(|(k, tx)| (k as u32 + 1, tx))
            .collect();
        net.nodes[i].core.transactions_confirmed(*height, &txdata);
        net.nodes[i].core.best_block_updated(*height, *hash);
    }
    net.run();
}

#[test]
fn a_channel_whose_ready_comes_from_a_block_follows_the_estimates() {
    let mut config = NodeConfig::default();
    config.channel.negotiate_anchors = false;
    let mut net = Net::with_config(2, 110, config);
    net.connect(0, 1);
    let peer = net.id(1);
    let temp = net.nodes[0]
        .core
        .create_channel(peer, SATS, 0, 42, OPEN_FEERATE)
        .expect("create_channel");
    net.run();
    let (script, value) = net
        .take_events(0)
        .into_iter()
        .find_map(|e| match e {
            Event::FundingGenerationReady {
                output_script,
                channel_value_satoshis,
                ..
            } => Some((output_script, channel_value_satoshis)),
            _ => None,
        })
        .expect("FundingGenerationReady");
    let funding = node_support::fake_funding_tx(script, value, 110);
    net.nodes[0]
        .core
        .funding_transaction_generated(temp, peer, funding.clone())
        .expect("funding");
    net.run();
    let channel_id = ChannelId::from_funding_outpoint(&funding.compute_txid(), 0);
    let blocks = mine_silently(&mut net, 6);
    // The fundee sees the funding deep enough first: its channel_ready reaches the funder,
    // which is not ready yet.
    feed(&mut net, 1, &blocks);
    net.nodes[0]
        .core
        .fee_estimates_updated(estimates(8_000, 4_000, 1_000));
    net.run();
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 0, "not open yet");
    // The block that makes the funder ready opens the channel: it follows the estimate.
    feed(&mut net, 0, &blocks);
    assert_eq!(sent_count(&net, 0, UPDATE_FEE), 1);
    assert_eq!(feerates(&net, channel_id), [4_000; 4]);
    no_closure(&net, channel_id);
}
