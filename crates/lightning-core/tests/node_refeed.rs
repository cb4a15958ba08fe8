//! Blocks given to a node again: after a restart the shard engine reports the lowest best
//! block any shard committed and the host re-feeds every block above it, so a shard (or a
//! monitor, whose snapshot may be ahead of its node record) gets blocks it already
//! processed. Taking a block again must change nothing: no confirmation counted twice, no
//! event raised twice, no new claim, no channel message sent again.

mod node_support;

use std::collections::BTreeSet;

use lightning_core::bitcoin::block::{Header, Version as BlockVersion};
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::{
    BlockHash, CompactTarget, OutPoint, Transaction, TxMerkleNode, Txid,
};
use lightning_core::chain::MonitorEvent;
use lightning_core::node::{ClosureReason, Event};
use node_support::Net;

const SATS: u64 = 1_000_000;

/// The hash of the support chain's block at `height` (its blocks are deterministic: see
/// `Net::mine`; the chain starts at height 100 with a zero hash).
fn block_hash(height: u32) -> BlockHash {
    let mut hash = BlockHash::all_zeros();
    for h in 101..=height {
        hash = Header {
            version: BlockVersion::TWO,
            prev_blockhash: hash,
            merkle_root: TxMerkleNode::all_zeros(),
            time: h - 1,
            bits: CompactTarget::from_consensus(0x207fffff),
            nonce: 0,
        }
        .block_hash();
    }
    hash
}

/// The transactions the support chain confirmed at `height`, as a host feeds them (their
/// order in the block is not kept: indices in txid order, which only a funding
/// transaction's short channel id would see).
fn txs_at(net: &Net, height: u32) -> Vec<Transaction> {
    net.chain
        .confirmed
        .values()
        .filter(|(h, _)| *h == height)
        .map(|(_, tx)| tx.clone())
        .collect()
}

fn refeed(net: &mut Net, node: usize, height: u32, txs: &[(u32, Transaction)]) {
    let refs: Vec<(u32, &Transaction)> = txs.iter().map(|(k, t)| (*k, t)).collect();
    let core = &mut net.nodes[node].core;
    core.transactions_confirmed(height, &refs);
    core.best_block_updated(height, block_hash(height));
}

/// A host re-feeding every block from before a channel's funding block up to the tip:
/// nothing changes on either side (no second `channel_ready`, the same short channel id, the
/// same records, the same monitor) and nothing comes out.
#[test]
fn blocks_refed_from_before_the_funding_change_nothing() {
    let mut net = Net::new(2, 41);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 0);
    net.mine(3);
    let tip = net.chain.height;
    assert_eq!(block_hash(tip), net.chain.tip, "the support chain's hashes");
    let funding_txid = net.nodes[0]
        .core
        .channel(&net.id(1), &channel_id)
        .expect("open")
        .funding_outpoint()
        .expect("funded")
        .txid;
    let (funding_height, funding_tx) = net.chain.confirmed[&funding_txid].clone();
    assert_eq!(funding_height, scid.block());
    for i in 0..2 {
        let _ = net.take_events(i);
        let core = &mut net.nodes[i].core;
        let _ = core.drain_outputs();
        let records = core.channel_records();
        let node = core.node_record();
        let monitor = core.monitor(&channel_id).cloned();
        assert!(monitor.is_some(), "a funded channel is monitored");
        for h in funding_height - 1..=tip {
            let txs = if h == funding_height {
                vec![(scid.tx_index(), funding_tx.clone())]
            } else {
                Vec::new()
            };
            refeed(&mut net, i, h, &txs);
        }
        let core = &mut net.nodes[i].core;
        let outputs = core.drain_outputs();
        assert!(outputs.is_empty(), "node {i}: {outputs:?}");
        assert_eq!(core.channel_records(), records, "node {i}");
        assert_eq!(core.node_record(), node, "node {i}");
        assert_eq!(core.monitor(&channel_id).cloned(), monitor, "node {i}");
        let details = net.details(i, channel_id).expect("listed");
        assert_eq!(details.short_channel_id, Some(scid));
        assert!(details.is_usable);
    }
    // Still works: a payment over it.
    net.pay(&[0, 1], &[scid], 10_000_000, 1);
}

fn on_chain(events: &[Event]) -> Vec<MonitorEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OnChain { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn broadcasts(events: &[Event]) -> Vec<Transaction> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::BroadcastTransaction { tx } => Some(tx.clone()),
            _ => None,
        })
        .collect()
}

/// The engine's case: a node's monitor snapshot holds a revoked commitment confirmed at
/// `height` (the batch of the block's transactions committed) but its node record is still
/// at `height - 1` (the best block's batch did not), so after a restart the host re-feeds
/// block `height`. The monitor is left as it was, no event is raised again, the claims
/// broadcast are the same transactions as before (none new), and justice still takes
/// every output of the revoked commitment.
#[test]
fn a_revoked_commitment_refed_after_a_restart_is_punished_once() {
    let mut net = Net::new(2, 42);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 0);
    net.pay(&[0, 1], &[scid], 500_000_000, 1);
    let mut stale = net.nodes[1]
        .core
        .channel(&net.id(0), &channel_id)
        .expect("open")
        .clone();
    net.pay(&[1, 0], &[scid], 400_000_000, 2);
    let _ = net.take_events(0);
    let lagging = net.stores[0].as_ref().expect("a store").node.clone();
    let revoked = stale.force_close().expect("node 1's old commitment");
    let revoked_txid = revoked.compute_txid();
    net.chain.mempool.push(revoked.clone());
    net.mine(1);
    let height = net.chain.height;
    let monitor = net.nodes[0]
        .core
        .monitor(&channel_id)
        .expect("kept after the close")
        .clone();
    assert_eq!(monitor.best_height(), height);
    assert_eq!(net.chain.confirmed[&revoked_txid].0, height);
    let first = net.take_events(0);
    let seen = |events: &[MonitorEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, MonitorEvent::RevokedCommitmentSeen { txid, .. } if *txid == revoked_txid))
            .count()
    };
    assert_eq!(seen(&on_chain(&first)), 1);
    let claims: BTreeSet<Txid> = broadcasts(&first)
        .iter()
        .map(Transaction::compute_txid)
        .collect();
    assert!(!claims.is_empty(), "justice broadcast");

    // The node record written with the block's best block is lost; the monitor's snapshot
    // (written with the block's transactions) is not.
    net.stores[0].as_mut().expect("a store").node = lagging;
    let (record, _) = net.restart(0);
    assert_eq!(record.best_height, height - 1);
    assert_eq!(net.nodes[0].core.best_block().0, height - 1);
    // The monitor's snapshot was ahead of the node record: restored, it forgets the block
    // above the node's best block (the host re-feeds it, of whatever branch is the chain).
    let rewound = net.nodes[0]
        .core
        .monitor(&channel_id)
        .expect("kept after the close");
    assert_eq!(
        rewound.best_height(),
        height - 1,
        "rewound to the best block"
    );
    assert_eq!(rewound.funding_spend(), None);
    assert_eq!(monitor.funding_spend(), Some((revoked_txid, height)));
    let _ = net.take_events(0);

    // The host re-feeds block `height`.
    let txs: Vec<(u32, Transaction)> = txs_at(&net, height)
        .into_iter()
        .enumerate()
        .map(|(k, t)| (k as u32 + 1, t))
        .collect();
    refeed(&mut net, 0, height, &txs);
    assert_eq!(
        net.nodes[0].core.monitor(&channel_id),
        Some(&monitor),
        "the block given again makes the monitor what it was"
    );
    assert_eq!(net.nodes[0].core.best_block(), (height, net.chain.tip));
    net.run();
    let again = net.take_events(0);
    assert!(
        !again.iter().any(|e| matches!(
            e,
            Event::ChannelClosed { .. }
                | Event::OnChain {
                    event: MonitorEvent::RevokedCommitmentSeen { .. }
                        | MonitorEvent::FundingSpent { .. },
                    ..
                }
        )),
        "nothing raised again: {again:?}"
    );
    for tx in broadcasts(&again) {
        assert!(
            claims.contains(&tx.compute_txid()),
            "a claim broadcast again is the same transaction: {tx:?}"
        );
    }

    // Justice takes every output but the anchors (anyone's after 16 blocks); each claim
    // confirms once.
    let mut later = Vec::new();
    for _ in 0..12 {
        net.mine(1);
        later.extend(net.take_events(0));
    }
    let ours: BTreeSet<Txid> = claims
        .iter()
        .copied()
        .chain(broadcasts(&later).iter().map(Transaction::compute_txid))
        .collect();
    let anchors = revoked
        .output
        .iter()
        .filter(|o| o.value.to_sat() == 330)
        .count();
    assert_eq!(anchors, 2, "an anchor channel");
    for (vout, _) in revoked
        .output
        .iter()
        .enumerate()
        .filter(|(_, o)| o.value.to_sat() != 330)
    {
        let vout = vout as u32;
        let spender = net
            .chain
            .confirmed
            .values()
            .find(|(_, t)| {
                t.input.iter().any(|i| {
                    i.previous_output
                        == OutPoint {
                            txid: revoked_txid,
                            vout,
                        }
                })
            })
            .map(|(_, t)| t.compute_txid())
            .unwrap_or_else(|| panic!("output {vout} unclaimed"));
        assert!(ours.contains(&spender), "output {vout} taken by node 0");
    }
    let all: Vec<MonitorEvent> = on_chain(&first)
        .into_iter()
        .chain(on_chain(&again))
        .chain(on_chain(&later))
        .collect();
    assert_eq!(seen(&all), 1);
    let confirmed: Vec<Txid> = all
        .iter()
        .filter_map(|e| match e {
            MonitorEvent::ClaimConfirmed { txid, .. } => Some(*txid),
            _ => None,
        })
        .collect();
    let distinct: BTreeSet<Txid> = confirmed.iter().copied().collect();
    assert!(!confirmed.is_empty());
    assert_eq!(distinct.len(), confirmed.len(), "{all:#?}");
}

/// A host that gives every block twice (as after each of many restarts): an HTLC timed out
/// on chain fails upstream exactly once, our HTLC-timeout transaction is found once, and no
/// on-chain event is raised twice.
#[test]
fn every_block_given_twice_changes_no_outcome() {
    let mut net = Net::new(3, 43);
    net.connect(0, 1);
    net.connect(1, 2);
    let (_, s01) = net.open_channel(0, 1, SATS, 0);
    let (_, s12) = net.open_channel(1, 2, SATS, 0);
    let (payment_id, _) = net.send(&[0, 1, 2], &[s01, s12], 8_000_000, 9);
    // Node 2 holds the HTLC and vanishes: node 1 must time it out on chain.
    net.disconnect(1, 2);
    let _ = net.take_events(1);
    let mut events = Vec::new();
    let mut failed = 0;
    for _ in 0..130 {
        net.mine(1);
        let height = net.chain.height;
        let txs: Vec<(u32, Transaction)> = txs_at(&net, height)
            .into_iter()
            .enumerate()
            .map(|(k, t)| (k as u32 + 1, t))
            .collect();
        for node in 0..3 {
            refeed(&mut net, node, height, &txs);
        }
        net.run();
        for e in net.take_events(1) {
            if let Event::OnChain {
                event: MonitorEvent::BumpNeeded { tx, .. },
                ..
            } = &e
            {
                // The "wallet" gets the zero-fee transaction mined as it is.
                net.chain.mempool.push(tx.clone());
                continue;
            }
            events.push(e);
        }
        failed += net
            .take_events(0)
            .into_iter()
            .filter(|e| matches!(e, Event::PaymentFailed { payment_id: p, .. } if *p == payment_id))
            .count();
    }
    assert_eq!(failed, 1, "failed back exactly once");
    let closed = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ChannelClosed {
                    reason: ClosureReason::HtlcsTimedOut,
                    ..
                }
            )
        })
        .count();
    assert_eq!(closed, 1);
    let on_chain = on_chain(&events);
    assert!(
        on_chain
            .iter()
            .any(|e| matches!(e, MonitorEvent::OutboundHtlcFailed { .. })),
        "{on_chain:#?}"
    );
    let keys: Vec<String> = on_chain.iter().map(|e| format!("{e:?}")).collect();
    let distinct: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(
        distinct.len(),
        keys.len(),
        "an event raised twice: {keys:#?}"
    );
}

/// A reorg, then a crash before the next block: the node record stored with the
/// disconnection holds the fork point (its height and ITS hash, not the hash of a block that
/// left the chain), so the restarted node reports a block that is on the chain and the host
/// resumes from there.
#[test]
fn a_disconnection_stores_the_fork_point() {
    let mut net = Net::new(2, 44);
    net.connect(0, 1);
    let (channel_id, _) = net.open_channel(0, 1, SATS, 0);
    net.mine(3);
    let tip = net.chain.height;
    assert_eq!(net.nodes[0].core.best_block(), (tip, block_hash(tip)));
    // Blocks `tip - 1` and `tip` leave the chain: the best block is now `tip - 2`.
    let fork = tip - 1;
    net.nodes[0]
        .core
        .block_disconnected(fork, block_hash(fork - 1));
    assert_eq!(
        net.nodes[0].core.best_block(),
        (fork - 1, block_hash(fork - 1))
    );
    assert_eq!(
        net.nodes[0]
            .core
            .monitor(&channel_id)
            .map(|m| m.best_height()),
        Some(fork - 1)
    );
    net.commit(0);
    let (record, _) = net.restart(0);
    assert_eq!(
        (record.best_height, record.best_hash),
        (fork - 1, block_hash(fork - 1)),
        "the stored best block is the fork point"
    );
    assert_eq!(
        net.nodes[0].core.best_block(),
        (fork - 1, block_hash(fork - 1))
    );
    // A disconnection above the best block changes nothing.
    net.nodes[0]
        .core
        .block_disconnected(tip + 5, block_hash(tip));
    assert_eq!(
        net.nodes[0].core.best_block(),
        (fork - 1, block_hash(fork - 1))
    );
}
