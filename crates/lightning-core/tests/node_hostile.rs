//! A hostile peer against one node (issue 12): what it can make the node hold, say and show
//! is bounded, whatever it sends.

mod node_support;

use lightning_core::node::{
    ClosureReason, Event, NodeConfig, Output, PaymentFailure, PaymentId, PeerRateLimits,
    DEFAULT_MAX_PENDING_INBOUND_CHANNELS, FUNDING_CONF_DEADLINE_BLOCKS, MAX_PEER_TEXT_BYTES,
    MAX_PEER_TEXT_LEN,
};
use lightning_core::onion::FailureMessage;
use lightning_core::secp256k1::PublicKey;
use lightning_core::types::ChannelId;
use lightning_core::wire::{ErrorMessage, Message, Ping};
use node_support::Net;

/// Node `a` asks node `b` for a channel and `b` accepts; returns the temporary channel id
/// (`a` then waits for a funding transaction, `b` for `funding_created`).
fn open_unfunded(net: &mut Net, a: usize, b: usize) -> ChannelId {
    let idb = net.id(b);
    let temp = net.nodes[a]
        .core
        .create_channel(idb, 100_000, 0, 7, 2500)
        .expect("create_channel");
    net.run();
    temp
}

/// Delivers `msg` from `from` to `to` and returns what `to` produced.
fn inject(net: &mut Net, from: usize, to: usize, msg: Message) -> Vec<Output> {
    let from_id = net.id(from);
    net.nodes[to].core.handle_message(from_id, &msg.encode());
    net.nodes[to].core.drain_outputs()
}

/// The peer texts of the `ChannelClosed` events among `outputs`.
fn peer_texts(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::ChannelClosed {
                reason: ClosureReason::CounterpartyForceClosed { peer_msg },
                ..
            }) => Some(peer_msg.clone()),
            _ => None,
        })
        .collect()
}

fn huge_error(channel_id: ChannelId) -> Message {
    Message::Error(ErrorMessage {
        channel_id,
        data: vec![0xff; 65_000],
    })
}

#[test]
fn one_huge_error_becomes_a_short_text() {
    let mut net = Net::new(2, 70);
    net.connect(0, 1);
    let temp = open_unfunded(&mut net, 0, 1);
    let out = inject(&mut net, 0, 1, huge_error(temp));
    let texts = peer_texts(&out);
    assert_eq!(texts.len(), 1, "{out:?}");
    let text = &texts[0];
    assert!(text.len() <= MAX_PEER_TEXT_LEN, "{} bytes", text.len());
    assert!(
        text.starts_with(&"\\xff".repeat(MAX_PEER_TEXT_BYTES)),
        "{text}"
    );
    assert!(text.ends_with("…(65000 bytes)"), "{text}");
    // Printed the way a host logs events (Debug escapes once more), still small.
    let printed = format!("{out:?}");
    assert!(
        printed.len() < 3 * MAX_PEER_TEXT_LEN,
        "{} bytes",
        printed.len()
    );
}

/// The flood: open_channel, then an `error` with 65,000 bytes of 0xff, 1,500 times.
#[test]
fn a_flood_of_errors_from_one_peer_yields_bounded_event_text() {
    const CYCLES: usize = 1_500;
    let limits = PeerRateLimits::default();
    let mut net = Net::new(2, 71);
    // The flood only ever touches unfunded channels: no need to snapshot on every commit.
    net.check_dirty = false;
    net.connect(0, 1);
    let id1 = net.id(1);
    let mut texts = Vec::new();
    let mut printed = 0;
    for _ in 0..CYCLES {
        let temp = open_unfunded(&mut net, 0, 1);
        let out = inject(&mut net, 0, 1, huge_error(temp));
        printed += format!("{out:?}").len();
        texts.extend(peer_texts(&out));
        // The attacker drops its own side to open again.
        net.nodes[0]
            .core
            .force_close_channel(temp, id1)
            .expect("its own channel");
        net.run();
        net.take_events(0);
    }
    assert_eq!(texts.len(), CYCLES, "every channel closed with a reason");
    let shown = limits.max_peer_texts_per_window as usize;
    assert!(texts[..shown].iter().all(|t| t.ends_with("…(65000 bytes)")));
    assert!(texts[shown..]
        .iter()
        .all(|t| t.starts_with("…(65000 bytes, not shown")));
    let total: usize = texts.iter().map(String::len).sum();
    let bound = shown * MAX_PEER_TEXT_LEN + (CYCLES - shown) * 64;
    assert!(total <= bound, "{total} bytes of peer text, bound {bound}");
    // What a host would log for the whole flood: a few hundred bytes per closed channel.
    assert!(printed < CYCLES * 600, "{printed} bytes printed");

    // A new window shows the peer's text again.
    net.nodes[1].core.timer_tick(1_000);
    net.nodes[1].core.timer_tick(1_000 + limits.window_ms);
    let temp = open_unfunded(&mut net, 0, 1);
    let out = inject(&mut net, 0, 1, huge_error(temp));
    let again = peer_texts(&out);
    assert_eq!(again.len(), 1);
    assert!(again[0].ends_with("…(65000 bytes)"), "{}", again[0]);
}

/// Pongs node 0 sent to `peer` among `outputs`, with their padding lengths.
fn pongs_to(outputs: &[Output], peer: PublicKey) -> Vec<usize> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SendMessage {
                node_id,
                msg: Message::Pong(p),
            } if *node_id == peer => Some(p.ignored.len()),
            _ => None,
        })
        .collect()
}

fn ping(num_pong_bytes: u16) -> Message {
    Message::Ping(Ping {
        num_pong_bytes,
        ignored: vec![],
    })
}

/// The ping flood: a peer asking for 65,531-byte pongs as fast as it can gets a
/// bounded number of pong bytes per window; another peer's ping is still answered at once,
/// and the flooder is answered again once the window refills.
#[test]
fn a_ping_flood_gets_bounded_pongs_and_others_are_still_answered() {
    let limits = PeerRateLimits::default();
    let mut net = Net::new(3, 72);
    net.connect(0, 1);
    net.connect(0, 2);
    let (flooder, honest) = (net.id(1), net.id(2));
    let start = 50_000;
    net.nodes[0].core.timer_tick(start);
    net.nodes[0].core.drain_outputs();
    let mut pong_bytes = 0;
    let mut pongs = 0;
    for i in 0..2_000 {
        // Mostly huge pongs, some empty ones: both are limited.
        let asked = if i % 3 == 0 { 0 } else { 65_531 };
        let out = inject(&mut net, 1, 0, ping(asked));
        let sent = pongs_to(&out, flooder);
        pongs += sent.len();
        pong_bytes += sent.iter().sum::<usize>();
        // Mid-flood, the honest peer's ping is answered at once.
        if i == 1_000 {
            let out = inject(&mut net, 2, 0, ping(64));
            assert_eq!(pongs_to(&out, honest), vec![64], "{out:?}");
        }
    }
    assert!(pongs >= 1, "the flooder's first ping is answered");
    assert!(
        pongs <= limits.max_pongs_per_window as usize,
        "{pongs} pongs in one window"
    );
    assert!(
        pong_bytes <= limits.max_pong_bytes_per_window as usize,
        "{pong_bytes} pong bytes in one window"
    );
    // Within the window: still nothing; at its end the budget refills.
    net.nodes[0].core.timer_tick(start + limits.window_ms - 1);
    assert_eq!(pongs_to(&inject(&mut net, 1, 0, ping(8)), flooder), vec![]);
    net.nodes[0].core.timer_tick(start + limits.window_ms);
    net.nodes[0].core.drain_outputs();
    assert_eq!(pongs_to(&inject(&mut net, 1, 0, ping(8)), flooder), vec![8]);
    // A ping asking for no reply is still not answered, and costs nothing.
    assert_eq!(
        pongs_to(&inject(&mut net, 1, 0, ping(65_532)), flooder),
        vec![]
    );
}

/// Node `a` funds a channel to `b` with a transaction that never confirms: both sides sign,
/// then the transaction vanishes from the mempool. Returns the final channel id.
fn fund_but_never_confirm(net: &mut Net, a: usize, b: usize) -> ChannelId {
    let temp = open_unfunded(net, a, b);
    let (script, value) = net
        .take_events(a)
        .into_iter()
        .find_map(|e| match e {
            Event::FundingGenerationReady {
                temporary_channel_id,
                output_script,
                channel_value_satoshis,
                ..
            } if temporary_channel_id == temp => Some((output_script, channel_value_satoshis)),
            _ => None,
        })
        .expect("FundingGenerationReady");
    let tx = node_support::fake_funding_tx(script, value, 9_000 + b as u32);
    let idb = net.id(b);
    net.nodes[a]
        .core
        .funding_transaction_generated(temp, idb, tx.clone())
        .expect("funding");
    net.run();
    net.chain.mempool.clear();
    ChannelId::from_funding_outpoint(&tx.compute_txid(), 0)
}

fn has_channel(net: &Net, i: usize, channel_id: ChannelId) -> bool {
    net.details(i, channel_id).is_some()
}

fn stored(net: &Net, i: usize, channel_id: ChannelId) -> bool {
    let store = net.stores[i].as_ref().expect("persistence");
    store.channels.keys().any(|(_, c)| *c == channel_id)
}

/// BOLT 2: the fundee forgets a channel whose funding has not confirmed 2016 blocks after it
/// accepted it, record and all (through a restart in between: the count is stored), and
/// tells the funder with an `error`; the funder, whose money it is, never forgets it by
/// itself.
#[test]
fn the_fundee_forgets_a_channel_never_funded_after_2016_blocks() {
    let mut net = Net::new(2, 73);
    net.connect(0, 1);
    let accepted_at = net.chain.height;
    let channel_id = fund_but_never_confirm(&mut net, 0, 1);
    assert!(has_channel(&net, 1, channel_id) && stored(&net, 1, channel_id));
    net.take_events(1);
    net.mine(1_000);
    net.restart(1);
    net.mine(FUNDING_CONF_DEADLINE_BLOCKS - 1_000 - 1);
    assert_eq!(
        net.chain.height,
        accepted_at + FUNDING_CONF_DEADLINE_BLOCKS - 1
    );
    assert!(has_channel(&net, 1, channel_id), "kept until the deadline");
    assert!(net
        .take_events(1)
        .iter()
        .all(|e| !matches!(e, Event::ChannelClosed { .. })));
    // Apart, so that the funder's fate is its own rule's: the fundee's `error` would fail
    // the channel at the funder too.
    net.disconnect(0, 1);
    net.mine(1);
    assert!(
        !has_channel(&net, 1, channel_id),
        "forgotten at the deadline"
    );
    assert!(!stored(&net, 1, channel_id), "its record is removed");
    let closed: Vec<Event> = net
        .take_events(1)
        .into_iter()
        .filter(|e| matches!(e, Event::ChannelClosed { .. }))
        .collect();
    assert_eq!(
        closed,
        vec![Event::ChannelClosed {
            channel_id,
            counterparty_node_id: net.id(0),
            reason: ClosureReason::FundingTimedOut,
        }]
    );
    let id0 = net.id(0);
    assert_eq!(errors_sent(&net, 1, id0).last(), Some(&channel_id));
    // The funder keeps its channel: its funds are in that transaction.
    assert!(has_channel(&net, 0, channel_id) && stored(&net, 0, channel_id));
    net.mine(100);
    assert!(has_channel(&net, 0, channel_id));
}

/// The `error`s node `i` sent to `peer`, by channel id.
fn errors_sent(net: &Net, i: usize, peer: PublicKey) -> Vec<ChannelId> {
    net.nodes[i]
        .sent
        .iter()
        .filter(|(to, _)| *to == peer)
        .filter_map(|(_, bytes)| match Message::decode(bytes) {
            Ok(Message::Error(e)) => Some(e.channel_id),
            _ => None,
        })
        .collect()
}

/// Node ids cost nothing: once 64 peers without a funded channel each have a channel pending
/// with node 0, the 65th such peer is refused; a peer with a funded channel still opens.
#[test]
fn pending_inbound_channels_from_unfunded_peers_are_capped_in_total() {
    let cap = DEFAULT_MAX_PENDING_INBOUND_CHANNELS;
    assert_eq!(NodeConfig::default().max_pending_inbound_channels, cap);
    let funded_peer = cap + 2;
    let mut net = Net::new(cap + 3, 74);
    net.check_dirty = false;
    net.connect(0, funded_peer);
    net.open_channel(funded_peer, 0, 1_000_000, 0);
    for i in 1..=cap {
        net.connect(0, i);
        open_unfunded(&mut net, i, 0);
        assert!(
            errors_sent(&net, 0, net.id(i)).is_empty(),
            "peer {i} accepted"
        );
    }
    let pending = net.nodes[0]
        .core
        .list_channels()
        .iter()
        .filter(|c| !c.is_outbound && c.short_channel_id.is_none())
        .count();
    assert_eq!(pending, cap);
    // The 65th distinct peer without a funded channel is refused, with an `error` for its
    // temporary channel id.
    let last = cap + 1;
    net.connect(0, last);
    let temp = open_unfunded(&mut net, last, 0);
    assert_eq!(errors_sent(&net, 0, net.id(last)), vec![temp]);
    assert!(!has_channel(&net, 0, temp));
    // A peer with a funded channel is not held to the cap.
    let temp = open_unfunded(&mut net, funded_peer, 0);
    assert!(errors_sent(&net, 0, net.id(funded_peer)).is_empty());
    assert!(has_channel(&net, 0, temp));
}

/// A `funding_created` naming a transaction that never appears costs the peer nothing: such
/// channels count against the peer's unfunded limit until their funding confirms.
#[test]
fn channels_whose_funding_never_confirms_count_as_unfunded_per_peer() {
    let mut net = Net::new(2, 75);
    net.connect(0, 1);
    let limit = net.nodes[1].core.config().max_unfunded_channels_per_peer;
    for _ in 0..limit {
        fund_but_never_confirm(&mut net, 0, 1);
    }
    let id0 = net.id(0);
    assert!(errors_sent(&net, 1, id0).is_empty());
    let temp = open_unfunded(&mut net, 0, 1);
    assert_eq!(errors_sent(&net, 1, id0), vec![temp], "one more is refused");
    assert_eq!(net.nodes[1].core.list_channels().len(), limit);
}

/// The case: with `max_dust_htlc_exposure_msat` at 5,000,000, a peer offers twenty
/// 300-sat HTLCs (dust: below the 354-sat dust limit), 6,000,000 msat in all. Each is
/// committed (a receiver cannot refuse an add without failing the channel), then those
/// beyond the limit are failed back with temporary_channel_failure instead of received.
#[test]
fn inbound_dust_beyond_the_exposure_limit_is_failed_back() {
    const LIMIT: u64 = 5_000_000;
    const HTLC: u64 = 300_000;
    let mut victim = NodeConfig::default();
    victim.channel.max_dust_htlc_exposure_msat = LIMIT;
    // The sender applies no limit of its own (an attacker would not).
    let mut sender = NodeConfig::default();
    sender.channel.max_dust_htlc_exposure_msat = u64::MAX;
    let mut net = Net::with_configs(vec![sender, victim], 76);
    net.connect(0, 1);
    let (_, scid) = net.open_channel(0, 1, 1_000_000, 0);
    let mut payments = Vec::new();
    for nonce in 0..20 {
        payments.push(net.send(&[0, 1], &[scid], HTLC, nonce).0);
    }
    let claimable = claimable_of(&mut net, 1, HTLC);
    let within = LIMIT / HTLC;
    assert_eq!(claimable, within, "the HTLCs within the limit are received");
    let failed = payments_failed(&mut net, 0);
    assert_eq!(failed.len() as u64, 20 - within);
    for (payment_id, failure) in &failed {
        assert!(payments[within as usize..].contains(payment_id));
        assert_eq!(failure.failing_hop, Some(0));
        assert_eq!(
            failure.failure,
            Some(FailureMessage::TemporaryChannelFailure {
                channel_update: vec![]
            })
        );
    }
    // What stays committed to the victim is within its limit.
    let id0 = net.id(0);
    let channel = net.nodes[1]
        .core
        .list_channels()
        .into_iter()
        .find(|c| c.counterparty_node_id == id0)
        .expect("channel");
    let held: u64 = net.nodes[1]
        .core
        .channel(&id0, &channel.channel_id)
        .expect("channel")
        .local_commit()
        .spec
        .htlcs
        .values()
        .map(|h| h.amount_msat)
        .sum();
    assert_eq!(held, within * HTLC);
    assert!(held <= LIMIT);
}

/// How many `PaymentClaimable` events of `amount_msat` node `i` has seen (taken).
fn claimable_of(net: &mut Net, i: usize, amount_msat: u64) -> u64 {
    net.take_events(i)
        .iter()
        .filter(
            |e| matches!(e, Event::PaymentClaimable { amount_msat: a, .. } if *a == amount_msat),
        )
        .count() as u64
}

/// The `PaymentFailed` events node `i` has seen (taken): payment id and failure.
fn payments_failed(net: &mut Net, i: usize) -> Vec<(PaymentId, PaymentFailure)> {
    net.take_events(i)
        .into_iter()
        .filter_map(|e| match e {
            Event::PaymentFailed {
                payment_id,
                failure,
                ..
            } => Some((payment_id, failure)),
            _ => None,
        })
        .collect()
}

/// The HTLCs the peer offered node 1 on `channel_id` (by their id), each with whether it is
/// trimmed in node 1's commitment and in the peer's, at each commitment's own dust limit and
/// feerate.
fn inbound_trimming(net: &Net, channel_id: ChannelId) -> Vec<(u64, bool, bool)> {
    let id0 = net.id(0);
    let channel = net.nodes[1]
        .core
        .channel(&id0, &channel_id)
        .expect("channel");
    let ct = channel.channel_type();
    let ours = &channel.local_commit().spec;
    let theirs = &channel.remote_commit().spec;
    ours.htlcs
        .iter()
        .filter(|((offered_by_us, _), _)| !offered_by_us)
        .map(|(&(_, id), htlc)| {
            let in_theirs = theirs.htlcs.get(&(true, id)).expect("in both commitments");
            (
                htlc.amount_msat,
                ours.is_trimmed(htlc, channel.local_params().dust_limit_satoshis, ct),
                theirs.is_trimmed(in_theirs, channel.remote_params().dust_limit_satoshis, ct),
            )
        })
        .collect()
}

/// Dust in the peer's commitment only: the peer's `dust_limit_satoshis` (5,000) is far above
/// ours (354), so a 3,000-sat HTLC has an output in our commitment but is trimmed from the
/// peer's, where it would be lost to fees if that commitment went on chain. The exposure
/// counted on the peer's commitment fails back (temporary_channel_failure) the HTLCs beyond
/// the limit; HTLCs untrimmed in both commitments, committed first and already more than the
/// limit in total, are not counted and take nothing from the dust HTLCs' room.
#[test]
fn inbound_dust_only_in_the_peers_commitment_is_counted() {
    const LIMIT: u64 = 12_000_000;
    const DUST: u64 = 3_000_000;
    const CLEAN: u64 = 8_000_000;
    let mut victim = NodeConfig::default();
    victim.channel.max_dust_htlc_exposure_msat = LIMIT;
    let mut sender = NodeConfig::default();
    sender.channel.max_dust_htlc_exposure_msat = u64::MAX;
    // Within what the victim accepts: at most the reserve the sender asks of it (1%).
    sender.channel.dust_limit_satoshis = 5_000;
    let mut net = Net::with_configs(vec![sender, victim], 77);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, 1_000_000, 0);

    // Control: four HTLCs untrimmed in both commitments, 32,000,000 msat in all (well above
    // the limit), are all received.
    for nonce in 0..4 {
        net.send(&[0, 1], &[scid], CLEAN, nonce);
    }
    assert_eq!(claimable_of(&mut net, 1, CLEAN), 4);
    assert!(payments_failed(&mut net, 0).is_empty());
    let trimming = inbound_trimming(&net, channel_id);
    assert_eq!(
        trimming,
        vec![(CLEAN, false, false); 4],
        "untrimmed in both"
    );

    // Six 3,000-sat HTLCs, dust only in the peer's commitment: those within the limit are
    // received, the rest failed back.
    let mut payments = Vec::new();
    for nonce in 4..10 {
        payments.push(net.send(&[0, 1], &[scid], DUST, nonce).0);
    }
    let within = LIMIT / DUST;
    assert_eq!(claimable_of(&mut net, 1, DUST), within);
    let failed = payments_failed(&mut net, 0);
    assert_eq!(failed.len() as u64, 6 - within);
    for (payment_id, failure) in &failed {
        assert!(payments[within as usize..].contains(payment_id));
        assert_eq!(failure.failing_hop, Some(0));
        assert_eq!(
            failure.failure,
            Some(FailureMessage::TemporaryChannelFailure {
                channel_update: vec![]
            })
        );
    }
    // What stays committed: the four clean HTLCs and the dust ones within the limit, each
    // untrimmed in the victim's commitment and the dust ones trimmed in the peer's.
    let trimming = inbound_trimming(&net, channel_id);
    let mut expected = vec![(CLEAN, false, false); 4];
    expected.extend(vec![(DUST, false, true); within as usize]);
    assert_eq!(trimming, expected);
    let dust_held: u64 = trimming
        .iter()
        .filter(|(_, _, trimmed)| *trimmed)
        .map(|(amount, _, _)| amount)
        .sum();
    assert!(dust_held <= LIMIT, "{dust_held} msat of dust held");
}
