//! The on-chain crash test: the engine runs as a child process (`lnshard-crash-child`, on
//! the filesystem store) and this process plays its peers (plain NodeCores over BOLT 8, as
//! in `crash.rs`) and the chain: a validating chain (libbitcoinconsensus, locktimes, BIP 68,
//! relay policy; the testkit's `onchain` module) to which every transaction anyone
//! broadcasts is submitted, and whose blocks are mined one at a time and fed to every node.
//!
//! Six peers, each with a channel to the hub; three pairs of them pay each other through
//! the hub, with HTLCs in flight both ways, and then one channel of each pair closes on
//! chain: peer 1 force-closes its latest commitment, peer 3 broadcasts a revoked one (with
//! its HTLC-success of an HTLC it knows the preimage of, in the same block), and the hub
//! force-closes its channel with peer 5. Peers 1 and 5 claim an HTLC on chain with its
//! preimage (which the hub must take upstream, to peers 0 and 4), peers 0 and 4 claim an
//! HTLC the hub must then claim on chain, and an HTLC of each is never claimed (the hub
//! times it out on chain, then fails it upstream).
//!
//! While the channels resolve, the engine is SIGKILLed at seeded points: between blocks,
//! right after a block was fed to it (with a seeded delay, so the kill lands anywhere in
//! its work), and right after it broadcast a transaction. It restarts on the same data
//! directory with a seeded shard count (the sweep script and claim feerate set again: the
//! engine does not store them), tells the host its best block (`best`: after a restart the
//! lowest best block any of its shards had committed, since each shard stores its own; the
//! child checks it against the store), the host replays every block above it, and the
//! peers reconnect.
//!
//! At the end, for each closed channel: every claim the hub is owed (computed from the
//! channel states captured before the close) confirmed once, paying the hub's sweep script
//! (second stages swept too), the amounts reconcile exactly (swept plus the fees visible in
//! the hub's transactions equals what the hub was owed), no claim event repeated, nothing
//! left claimable; every chain refusal was a benign duplicate or a lost race; the payments
//! whose preimage appeared on chain were fulfilled upstream, the timed-out ones failed
//! upstream, each exactly once, and the upstream channels hold no HTLC.
//!
//! `CRASH_ONCHAIN_KILLS` kill points (4 by default, for CI), `CRASH_ONCHAIN_SEED` the seed.
//! The soak: `CRASH_ONCHAIN_KILLS=50 CRASH_ONCHAIN_SEED=<n> cargo test --release -p
//! lnshard-testkit --features consensus --test crash_onchain -- --nocapture`.

use lnshard_testkit as support;

mod child;

use std::collections::{BTreeSet, VecDeque};

use child::{hex, ChildHub};
use shard_engine::lightning_core::bitcoin::{OutPoint, Transaction, Txid};
use shard_engine::lightning_core::chain::MonitorEvent;
use shard_engine::lightning_core::channel::Channel;
use shard_engine::lightning_core::node::Event;
use shard_engine::lightning_core::types::{ChannelId, PaymentHash};
use shard_engine::sim::SimRng;
use support::chain::ValidatingChain;
use support::onchain::{stale_htlc_txs, static_remotekey_config};
use support::{Hub, Net, Who};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

const PEERS: usize = 6;
/// The claim feerate the host sets on every start (sat per 1000 weight).
const FEERATE: u32 = 1_000;

/// The child's flags: the chain's tip (for a new store), no anchors, and the sweep script
/// and feerate, given again on every start.
fn flags(chain: &ValidatingChain) -> Vec<String> {
    use shard_engine::lightning_core::bitcoin::hashes::Hash;
    vec![
        "--tip".into(),
        chain.height().to_string(),
        hex(&chain.tip().to_byte_array()),
        "--static-remotekey".into(),
        "--sweep".into(),
        hex(support::onchain::hub_sweep_script().as_bytes()),
        "--feerate".into(),
        FEERATE.to_string(),
    ]
}

/// How a kill is armed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// At quiescence, before the next block.
    BetweenBlocks,
    /// After the n-th chain request (`txs`, `block`) from now, then a delay (µs).
    AfterFeed(u64, u64),
    /// After the n-th broadcast from now, then a delay (µs).
    AfterBroadcast(u64, u64),
}

/// What the restarts saw.
#[derive(Debug, Default)]
struct Restarts {
    count: u64,
    /// Restarts whose shards had stored different best heights (some shard behind).
    shards_behind: u64,
    /// Blocks replayed in all.
    replayed: u64,
}

/// Restarts the (dead) child on `dir` with a seeded shard count, replays the blocks above
/// the best block it reports and reconnects the peers. `acked`: the last block the host
/// saw the engine finish (idle after it), which the restored engine must hold.
fn restart(
    net: &mut Net<ChildHub>,
    dir: &std::path::Path,
    rng: &mut SimRng,
    acked: u32,
    stats: &mut Restarts,
) {
    net.cut_all_for_crash();
    net.hub.stop();
    let shards = 1 + rng.below(4);
    net.hub = ChildHub::spawn(dir, shards, &flags(net.vchain()));
    stats.count += 1;
    let (height, hash, lowest) = net.hub.best();
    assert!(
        height >= acked,
        "the restored engine's best block {height} is behind block {acked}, which it finished"
    );
    // The engine reports the lowest best block its shards committed (the child read the
    // store before the engine opened it), a block of the chain.
    let reply = net.hub.request("stored").expect("a live child");
    let words: Vec<&str> = reply.split(' ').collect();
    let ["stored", low, high] = words.as_slice() else {
        panic!("stored: {reply}");
    };
    let stored: Option<(u32, u32)> = low.parse().ok().zip(high.parse().ok());
    assert_eq!(lowest, stored.map(|(low, _)| low), "{reply}");
    if let Some((low, high)) = stored {
        assert_eq!(
            height, low,
            "the restored engine reports best block {height}, not the lowest its shards stored"
        );
        if low < high {
            stats.shards_behind += 1;
        }
    }
    assert_eq!(
        Some(hash),
        net.vchain().block(height).map(|b| b.block_hash()),
        "the restored engine's best block {height} is not the chain's"
    );
    for h in height + 1..=net.vchain().height() {
        let block = net.vchain().block(h).expect("block").clone();
        let txs: Vec<(u32, Transaction)> = support::chain::block_txdata(&block);
        net.hub.transactions_confirmed(h, &txs).expect("replay");
        net.hub
            .best_block_updated(h, block.block_hash())
            .expect("replay");
        stats.replayed += 1;
    }
    net.reconnect_all();
    net.run();
}

/// What the hub owes itself on the channel whose state before the close was `ch` and whose
/// funding spend is `commitment` (its latest or the peer's): its balance there and the
/// HTLCs of `won` (sat).
fn owed(ch: &Channel, commitment: &Transaction, won: &[PaymentHash]) -> u64 {
    let txid = commitment.compute_txid();
    let (base_msat, spec) = if txid == ch.local_commit().txid {
        (
            ch.local_commit().spec.to_local_msat,
            &ch.local_commit().spec,
        )
    } else if txid == ch.remote_commit().txid {
        (
            ch.remote_commit().spec.to_remote_msat,
            &ch.remote_commit().spec,
        )
    } else {
        panic!("channel {} closed by an unexpected {txid}", ch.channel_id());
    };
    let htlcs: u64 = spec
        .htlcs
        .values()
        .filter(|h| won.contains(&h.payment_hash))
        .map(|h| h.amount_msat / 1000)
        .sum();
    assert_eq!(
        spec.htlcs
            .values()
            .filter(|h| won.contains(&h.payment_hash))
            .count(),
        won.len(),
        "every HTLC won is in the commitment"
    );
    base_msat / 1000 + htlcs
}

/// The hub's confirmed transactions spending `roots` (a commitment, a cheater's second
/// stage) or, transitively, each other; each spends nothing else and every output is
/// either the sweep script or spent by another of them.
struct Claims {
    swept: u64,
    fees: u64,
    txs: Vec<Transaction>,
}

fn hub_claims(net: &Net<ChildHub>, roots: &[Txid]) -> Claims {
    let v = net.validating.as_ref().expect("validating");
    let mut ours: BTreeSet<Txid> = roots.iter().copied().collect();
    let mut seen: BTreeSet<Txid> = BTreeSet::new();
    let mut txs: Vec<Transaction> = Vec::new();
    let mut added = true;
    while added {
        added = false;
        for (who, tx) in &v.broadcasts {
            let txid = tx.compute_txid();
            if *who != Who::Hub || seen.contains(&txid) || v.chain.confirmations(&txid) == 0 {
                continue;
            }
            if !tx
                .input
                .iter()
                .any(|i| ours.contains(&i.previous_output.txid))
            {
                continue;
            }
            assert!(
                tx.input
                    .iter()
                    .all(|i| ours.contains(&i.previous_output.txid)),
                "hub claim {txid} spends another channel's outputs too"
            );
            seen.insert(txid);
            ours.insert(txid);
            txs.push(tx.clone());
            added = true;
        }
    }
    let sweep = support::onchain::hub_sweep_script();
    let (mut swept, mut fees) = (0, 0);
    for tx in &txs {
        fees += net.fee_of(tx);
        let txid = tx.compute_txid();
        for (vout, o) in tx.output.iter().enumerate() {
            if o.script_pubkey == sweep {
                swept += o.value.to_sat();
            } else {
                let spent_by = net.vchain().spender_of(&OutPoint {
                    txid,
                    vout: vout as u32,
                });
                assert!(
                    spent_by.is_some_and(|s| seen.contains(&s)),
                    "output {txid}:{vout} of a hub claim neither swept nor claimed again"
                );
            }
        }
    }
    Claims { swept, fees, txs }
}

/// The hub's channels with something left to claim among `closed` (`None`: the child died
/// while answering).
fn left_to_claim(net: &Net<ChildHub>, closed: &[ChannelId]) -> Option<Vec<ChannelId>> {
    Some(
        net.hub
            .balances()?
            .into_iter()
            .filter(|id| closed.contains(id))
            .collect(),
    )
}

#[test]
fn sigkill_during_on_chain_resolution_rebuilds_every_claim_and_claims_nothing_twice() {
    let kills = env("CRASH_ONCHAIN_KILLS", 4);
    let seed = env("CRASH_ONCHAIN_SEED", 1);
    let dir = tempfile::tempdir().expect("data directory");
    let mut rng = SimRng::new(seed);
    let mut chain = ValidatingChain::new();
    chain.mine(100);
    let hub = ChildHub::spawn(dir.path(), 2, &flags(&chain));
    let mut net = Net::new_validating(hub, PEERS, static_remotekey_config(), chain);
    net.hub_events_lossy = true;
    net.open_channels(&(0..PEERS).map(|i| (i, false)).collect::<Vec<_>>());
    let hub_id = net.hub.node_id();
    let cid = |net: &Net<ChildHub>, peer: usize| {
        let c = net.channels[peer];
        assert_eq!(c.peer, peer);
        c.channel_id
    };

    // Pair (2, 3): both ways, settled; peer 3 keeps the state with both HTLCs pending.
    let r1 = net.start_payment(
        Who::Peer(2),
        Who::Peer(3),
        Some(2),
        Some(3),
        60_000_000,
        true,
    );
    let r3 = net.start_payment(
        Who::Peer(3),
        Who::Peer(2),
        Some(3),
        Some(2),
        80_000_000,
        true,
    );
    net.run();
    let stale = net.peers[3]
        .core
        .channel(&hub_id, &cid(&net, 3))
        .expect("peer 3's channel")
        .clone();
    assert_eq!(stale.local_commit().spec.htlcs.len(), 2);
    net.settle();
    assert_eq!(net.outcomes(r1), vec![true]);
    assert_eq!(net.outcomes(r3), vec![true]);
    let (r1_pre, _) = net.preimage_of(r1);

    // Pairs (0, 1) and (4, 5): x1 down (claimed on chain by the payee), x2 down (never
    // claimed: times out on chain), x3 up (claimed off chain upstream, so the hub claims it
    // on chain).
    let mut pairs = Vec::new();
    for (a, b) in [(0, 1), (4, 5)] {
        let x1 = net.start_payment(
            Who::Peer(a),
            Who::Peer(b),
            Some(a),
            Some(b),
            60_000_000,
            true,
        );
        let x2 = net.start_payment(
            Who::Peer(a),
            Who::Peer(b),
            Some(a),
            Some(b),
            70_000_000,
            true,
        );
        let x3 = net.start_payment(
            Who::Peer(b),
            Who::Peer(a),
            Some(b),
            Some(a),
            80_000_000,
            true,
        );
        pairs.push((a, b, x1, x2, x3));
    }
    net.run();
    // The hub's side of each channel that closes, before the close.
    let before: Vec<Channel> = [1, 3, 5]
        .iter()
        .map(|&p| {
            net.hub
                .channel(net.peer_id(p), cid(&net, p))
                .expect("hub side")
        })
        .collect();
    assert_eq!(before[0].local_commit().spec.htlcs.len(), 3);
    assert_eq!(before[2].local_commit().spec.htlcs.len(), 3);
    let closed: Vec<ChannelId> = [1, 3, 5].iter().map(|&p| cid(&net, p)).collect();

    // The closes: peer 1 force-closes, the hub force-closes with peer 5, both confirm; then
    // peer 3's revoked commitment and its HTLC-success, mined privately.
    net.peers[1]
        .core
        .force_close_channel(closed[0], hub_id)
        .expect("peer 1 force-closes");
    net.hub.force_close(closed[2]).expect("a live child");
    net.run();
    net.mine(1);
    let revoked = stale.clone().force_close().expect("the stale commitment");
    let cheats = stale_htlc_txs(3, &hub_id, &stale, &[r1_pre]);
    let success = cheats
        .iter()
        .find(|t| t.lock_time.to_consensus_u32() == 0)
        .expect("peer 3's HTLC-success")
        .clone();
    net.mine_exactly(vec![revoked.clone(), success.clone()]);
    let closed_at = net.vchain().height();
    let commitments: Vec<Transaction> = [0, 2]
        .iter()
        .map(|&k| net.funding_spend(&before[k]))
        .collect();
    assert_eq!(
        commitments[0].compute_txid(),
        before[0].remote_commit().txid,
        "peer 1's latest"
    );
    assert_eq!(
        commitments[1].compute_txid(),
        before[2].local_commit().txid,
        "the hub's latest"
    );

    // Peers 1 and 5 claim x1 on chain; peers 0 and 4 claim x3 off chain.
    for &(a, b, x1, _, x3) in &pairs {
        let (pre1, _) = net.preimage_of(x1);
        let (pre3, _) = net.preimage_of(x3);
        net.peers[b].core.claim_funds(pre1).expect("claim on chain");
        net.peers[a]
            .core
            .claim_funds(pre3)
            .expect("claim off chain");
    }
    net.run();

    // The kills: half of them in the first 24 blocks (where the commitments' outputs and
    // the first claims confirm), the rest over the next 200.
    let mut schedule: Vec<u32> = (0..kills)
        .map(|k| {
            if k % 2 == 0 {
                rng.below(24) as u32
            } else {
                rng.below(200) as u32
            }
        })
        .collect();
    schedule.sort_unstable();
    let mut plan: VecDeque<(u32, Kill)> = schedule
        .into_iter()
        .map(|at| {
            let kill = match rng.below(3) {
                0 => Kill::BetweenBlocks,
                1 => Kill::AfterFeed(1 + rng.below(2) as u64, rng.below(3000) as u64),
                _ => Kill::AfterBroadcast(1 + rng.below(3) as u64, rng.below(2000) as u64),
            };
            (at, kill)
        })
        .collect();
    let mut stats = Restarts::default();
    // Kills armed: between blocks, after a feed, after a broadcast; and armed kills that
    // fired between blocks instead.
    let mut kinds = [0u64; 4];
    let mut acked = net.vchain().height();
    let mut block = 0u32;
    let mut resolved_at = None;
    let limit = closed_at + 1_500;
    loop {
        if net.hub.dead() {
            restart(&mut net, dir.path(), &mut rng, acked, &mut stats);
            continue;
        }
        // Arm the next kill due (one at a time). One armed on a broadcast that did not
        // come by the end fires between blocks then.
        let armed = {
            let i = net.hub.inner.borrow();
            i.kill_after_chain.is_some() || i.kill_after_broadcasts.is_some()
        };
        let over = resolved_at.is_some_and(|at| net.vchain().height() >= at + 6);
        if armed && over {
            kinds[3] += 1;
            let inner = net.hub.inner.get_mut();
            inner.kill_delay_us = 0;
            inner.kill();
        } else if !armed && plan.front().is_some_and(|(at, _)| *at <= block) {
            let (_, kill) = plan.pop_front().expect("a kill");
            let inner = net.hub.inner.get_mut();
            match kill {
                Kill::BetweenBlocks => {
                    kinds[0] += 1;
                    inner.kill_delay_us = 0;
                    inner.kill();
                }
                Kill::AfterFeed(n, delay) => {
                    kinds[1] += 1;
                    inner.chain_requests = 0;
                    inner.kill_after_chain = Some(n);
                    inner.kill_delay_us = delay;
                }
                Kill::AfterBroadcast(n, delay) => {
                    kinds[2] += 1;
                    inner.broadcasts = 0;
                    inner.kill_after_broadcasts = Some(n);
                    inner.kill_delay_us = delay;
                }
            }
        }
        if resolved_at.is_none() {
            if let Some(left) = left_to_claim(&net, &closed) {
                if left.is_empty() && !net.hub.dead() {
                    resolved_at = Some(net.vchain().height());
                }
            }
        }
        if net.hub.dead() {
            continue;
        }
        let armed = {
            let i = net.hub.inner.borrow();
            i.kill_after_chain.is_some() || i.kill_after_broadcasts.is_some()
        };
        let over = resolved_at.is_some_and(|at| net.vchain().height() >= at + 6);
        if over && plan.is_empty() && !armed {
            break;
        }
        assert!(
            net.vchain().height() < limit,
            "seed {seed}: unresolved at {limit}: {:?}",
            left_to_claim(&net, &closed)
        );
        net.mine(1);
        block += 1;
        if !net.hub.dead() {
            acked = net.vchain().height();
        }
    }
    // Nothing left to claim, every refusal a benign one or a lost race, no bump asked for.
    assert_eq!(
        left_to_claim(&net, &closed).expect("a live child"),
        Vec::<ChannelId>::new(),
        "seed {seed}: left to claim"
    );
    assert!(
        net.violations.is_empty(),
        "seed {seed}: {:#?}",
        net.violations
    );

    // Exact amounts, per channel.
    let hashes = |k: usize| {
        let (_, _, x1, x2, x3) = pairs[k];
        (
            net.preimage_of(x1).1,
            net.preimage_of(x2).1,
            net.preimage_of(x3).1,
        )
    };
    let mut all_claims: Vec<Txid> = Vec::new();
    for (k, commitment) in [(0, &commitments[0]), (1, &commitments[1])] {
        let (_, h2, h3) = hashes(k);
        let expected = owed(&before[2 * k], commitment, &[h2, h3]);
        let claims = hub_claims(&net, &[commitment.compute_txid()]);
        assert_eq!(
            claims.swept + claims.fees,
            expected,
            "seed {seed}: channel {}: swept {} + fees {} of {} txs",
            closed[2 * k],
            claims.swept,
            claims.fees,
            claims.txs.len()
        );
        assert!(
            claims.swept > 0 && claims.fees < 20_000,
            "fees {}",
            claims.fees
        );
        all_claims.extend(claims.txs.iter().map(|t| t.compute_txid()));
    }
    // The revoked commitment: everything but the output the cheater spent, and the
    // cheater's second-stage output.
    let p1_vout = success.input[0].previous_output.vout as usize;
    let everything: u64 = revoked
        .output
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != p1_vout)
        .map(|(_, o)| o.value.to_sat())
        .sum::<u64>()
        + success.output[0].value.to_sat();
    let claims = hub_claims(&net, &[revoked.compute_txid(), success.compute_txid()]);
    assert_eq!(
        claims.swept + claims.fees,
        everything,
        "seed {seed}: the revoked channel: swept {} + fees {} of {} txs",
        claims.swept,
        claims.fees,
        claims.txs.len()
    );
    all_claims.extend(claims.txs.iter().map(|t| t.compute_txid()));

    // No claim event repeated (events lost to a kill are not, repeated ones would be), and
    // each names one of the claims.
    let confirmed: Vec<Txid> = net
        .on_chain_events(Who::Hub)
        .into_iter()
        .filter_map(|(_, e)| match e {
            MonitorEvent::ClaimConfirmed { txid, .. } => Some(txid),
            _ => None,
        })
        .collect();
    let distinct: BTreeSet<Txid> = confirmed.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        confirmed.len(),
        "seed {seed}: a claim event repeated"
    );
    for txid in &distinct {
        assert!(
            all_claims.contains(txid),
            "ClaimConfirmed of unknown {txid}"
        );
    }

    // Upstream: the preimages seen on chain fulfilled, the timed-out HTLCs failed, once
    // each; the upstream channels are open and hold no HTLC.
    for &(a, _, x1, x2, x3) in &pairs {
        assert_eq!(net.outcomes(x1), vec![true], "seed {seed}: x1 of peer {a}");
        assert_eq!(net.outcomes(x2), vec![false], "seed {seed}: x2 of peer {a}");
        assert_eq!(net.outcomes(x3), vec![true], "seed {seed}: x3 of peer {a}");
    }
    for a in [0, 2, 4] {
        let ch = net.peers[a]
            .core
            .channel(&hub_id, &cid(&net, a))
            .unwrap_or_else(|| panic!("seed {seed}: peer {a}'s channel is open"));
        assert!(
            ch.local_commit().spec.htlcs.is_empty() && ch.remote_commit().spec.htlcs.is_empty(),
            "seed {seed}: peer {a}'s channel holds HTLCs"
        );
        let closed_by_peer = net.peers[a]
            .events
            .iter()
            .any(|e| matches!(e, Event::ChannelClosed { .. }));
        assert!(!closed_by_peer, "seed {seed}: peer {a} closed its channel");
    }
    let reported = net.hub.inner.borrow().closed.clone();
    for id in reported {
        assert!(
            closed.iter().any(|c| hex(&c.0) == id),
            "seed {seed}: the hub closed {id}"
        );
    }
    eprintln!(
        "seed {seed}: {kills} kill points ({} between blocks, {} after a block fed, {} after a \
         broadcast, {} of those between blocks after all), {} restarts ({} with a shard behind \
         the others, {} blocks replayed); resolved at height {} (closed at {closed_at}), {} hub \
         claims confirmed",
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3],
        stats.count,
        stats.shards_behind,
        stats.replayed,
        resolved_at.unwrap_or(0),
        all_claims.len()
    );
    let v = net.validating.as_ref().expect("validating");
    eprintln!(
        "seed {seed}: {} hub broadcasts ({} refused as lost races, {} as re-issues)",
        v.broadcasts.iter().filter(|(w, _)| *w == Who::Hub).count(),
        v.conflicts
            .iter()
            .filter(|(w, _, _)| *w == Who::Hub)
            .count(),
        v.reissues.iter().filter(|(w, _, _)| *w == Who::Hub).count()
    );
    assert_eq!(
        stats.count, kills,
        "seed {seed}: every kill point killed the child"
    );
}
