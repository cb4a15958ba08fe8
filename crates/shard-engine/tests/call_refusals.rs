//! Calls refuse at once what they would later fail, with a typed error naming the value and
//! the limit, and leave nothing behind: an unknown or unusable first hop, an amount below the
//! first hop's `htlc_minimum_msat` or above its outbound capacity, a payment id in flight or
//! completed within the retention window (on any shard, and after a restart), and a channel
//! value or push amount outside our limits.

use lnshard_testkit as support;

use std::sync::Arc;
use std::time::Duration;

use lightning_core::node::{
    ApiError, ChannelValueError, Event, FirstHopError, NodeConfig, PaymentId, Route, RouteHop,
};
use lightning_core::secp256k1::PublicKey;
use lightning_core::types::{PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId};
use shard_engine::store::{MemoryStore, Store};
use shard_engine::{Engine, EngineConfig, EngineError, NodeApi};
use support::{engine_config, hub_secret, hub_seed, Hub, Net, Threaded, Who, SATS};

/// The retention window of these tests (blocks), short so that a test can outlive it.
const WINDOW: u32 = 6;

fn config(shards: usize, store: Option<&Arc<dyn Store>>) -> EngineConfig {
    let mut c = engine_config(shards);
    c.node.payment_id_retention_blocks = WINDOW;
    c.store = store.cloned();
    c
}

fn open(shards: usize, store: &Arc<dyn Store>) -> Engine {
    Engine::open(
        config(shards, Some(store)),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    )
    .expect("open")
}

fn one_hop(node_id: PublicKey, scid: ShortChannelId, amount_msat: u64) -> Route {
    Route {
        hops: vec![RouteHop {
            node_id,
            short_channel_id: scid,
            fee_msat: amount_msat,
            cltv_expiry_delta: 50,
        }],
    }
}

/// The API error of a refused call.
fn refused<T: std::fmt::Debug>(result: Result<T, EngineError>) -> ApiError {
    match result {
        Err(EngineError::Api(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A payment the peer `i` expects.
fn invoice(
    net: &Net<Threaded>,
    i: usize,
    amount_msat: u64,
    tag: u8,
) -> (PaymentHash, PaymentSecret) {
    net.peers[i]
        .core
        .create_inbound_payment(&PaymentPreimage([tag; 32]), Some(amount_msat))
}

#[test]
fn an_unknown_or_unusable_first_hop_is_refused_at_call_time() {
    let engine = Engine::new(
        config(4, None),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    // The peers ask for HTLCs of at least 5,000 msat.
    let mut peer_config = NodeConfig::default();
    peer_config.channel.htlc_minimum_msat = 5_000;
    let mut net = Net::with_peer_config(Threaded { engine }, 2, peer_config);
    net.open_channels(&[(0, true), (1, true)]);
    let (c0, c1) = (net.channels[0], net.channels[1]);
    let (p0, p1) = (net.peer_id(c0.peer), net.peer_id(c1.peer));
    let id = PaymentId([7; 32]);
    let (hash, secret) = invoice(&net, c0.peer, 100_000, 1);
    let send = |net: &Net<Threaded>, route: &Route| {
        (&net.hub.engine).send_payment(route, hash, secret, id)
    };

    let unknown = ShortChannelId(0x0001_2300_0004_0005);
    let e = refused(send(&net, &one_hop(p0, unknown, 100_000)));
    assert_eq!(e, ApiError::UnknownShortChannelId(unknown));
    assert!(e.to_string().contains(&unknown.to_string()), "{e}");

    let e = refused(send(&net, &one_hop(p1, c0.scid, 100_000)));
    assert_eq!(
        e,
        ApiError::FirstHop(FirstHopError::WrongPeer {
            short_channel_id: c0.scid,
            channel_node_id: p0,
        })
    );

    let e = refused(send(&net, &one_hop(p0, c0.scid, 4_999)));
    assert_eq!(
        e,
        ApiError::FirstHop(FirstHopError::BelowHtlcMinimum {
            short_channel_id: c0.scid,
            amount_msat: 4_999,
            htlc_minimum_msat: 5_000,
        })
    );
    let text = e.to_string();
    assert!(text.contains("4999") && text.contains("5000"), "{text}");

    let too_much = SATS * 1000;
    let e = refused(send(&net, &one_hop(p0, c0.scid, too_much)));
    let ApiError::FirstHop(FirstHopError::AboveOutboundCapacity {
        amount_msat,
        outbound_capacity_msat,
        ..
    }) = e
    else {
        panic!("{e:?}");
    };
    assert_eq!(amount_msat, too_much);
    assert!(outbound_capacity_msat < too_much / 2, "the hub pushed half");
    let text = e.to_string();
    assert!(
        text.contains(&too_much.to_string()) && text.contains(&outbound_capacity_msat.to_string()),
        "{text}"
    );

    // (Net::run would reconnect it.)
    net.disconnect(c1.peer);
    let (hash1, secret1) = invoice(&net, c1.peer, 100_000, 2);
    let e =
        refused((&net.hub.engine).send_payment(&one_hop(p1, c1.scid, 100_000), hash1, secret1, id));
    assert_eq!(
        e,
        ApiError::FirstHop(FirstHopError::PeerDisconnected {
            short_channel_id: c1.scid,
            node_id: p1,
        })
    );
    assert!(e.to_string().contains(&p1.to_string()), "{e}");

    // Nothing was left behind: no payment failed later, and the id every refusal carried
    // is free for a real payment.
    net.run();
    assert!(
        !net.hub_events
            .iter()
            .any(|e| matches!(e, Event::PaymentFailed { .. } | Event::PaymentSent { .. })),
        "{:?}",
        net.hub_events
    );
    send(&net, &one_hop(p0, c0.scid, 100_000)).expect("the id was never taken");
}

#[test]
fn a_used_payment_id_is_refused_on_every_shard_and_after_a_restart_until_the_window_ends() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = open(4, &store);
    let mut net = Net::new(Threaded { engine }, 6);
    net.open_channels(&(0..6).map(|i| (i, true)).collect::<Vec<_>>());
    // Two channels whose peers live on different shards.
    let first = net.channels[0];
    let other = *net
        .channels
        .iter()
        .find(|c| {
            net.hub.shard_of(&net.peer_id(c.peer)) != net.hub.shard_of(&net.peer_id(first.peer))
        })
        .expect("peers on two shards");
    let id = net.start_payment(
        Who::Hub,
        Who::Peer(first.peer),
        None,
        Some(0),
        1_000_000,
        true,
    );
    let (hash, secret) = invoice(&net, other.peer, 1_000_000, 9);
    let elsewhere = one_hop(net.peer_id(other.peer), other.scid, 1_000_000);

    // In flight: refused on its own shard's channel and on another shard's.
    let e = refused((&net.hub.engine).send_payment(&elsewhere, hash, secret, id));
    assert_eq!(e, ApiError::DuplicatePayment(id));

    net.run();
    net.settle();
    let completed = net.chain.height;
    assert!(
        net.hub_events
            .iter()
            .any(|e| matches!(e, Event::PaymentSent { payment_id, .. } if *payment_id == id)),
        "the payment completed"
    );
    let expected = ApiError::PaymentIdRecentlyUsed {
        payment_id: id,
        completed_height: completed,
        retained_until_height: completed + WINDOW,
    };
    let e = refused((&net.hub.engine).send_payment(&elsewhere, hash, secret, id));
    assert_eq!(e, expected);
    let text = e.to_string();
    assert!(
        text.contains(&format!("{:02x}{:02x}", id.0[0], id.0[1]))
            && text.contains(&(completed + WINDOW).to_string()),
        "{text}"
    );

    // The hub restarts on its store, with another shard count: the id is still refused.
    for shards in [4, 3] {
        net.cut_all_for_crash();
        let placeholder = Engine::new(
            engine_config(1),
            support::secret(b"placeholder"),
            [0; 32],
            100,
            support::genesis(),
        );
        let old = std::mem::replace(&mut net.hub.engine, placeholder);
        let report = old.shutdown(Duration::from_secs(5));
        drop(std::mem::replace(&mut net.hub.engine, open(shards, &store)));
        net.absorb_hub_events(report.events);
        net.reconnect_all();
        net.run();
        let e = refused((&net.hub.engine).send_payment(&elsewhere, hash, secret, id));
        assert_eq!(e, expected, "after a restart with {shards} shards");
    }

    // Once the window has passed, the id is forgotten.
    net.mine(WINDOW - 1);
    assert_eq!(
        refused((&net.hub.engine).send_payment(&elsewhere, hash, secret, id)),
        expected
    );
    net.mine(1);
    (&net.hub.engine)
        .send_payment(&elsewhere, hash, secret, id)
        .expect("the id is free once the window passed");
}

#[test]
fn a_channel_value_outside_the_limits_is_refused_and_nothing_is_created() {
    let engine = Engine::new(
        config(2, None),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    let net = Net::new(Threaded { engine }, 1);
    let peer = net.peer_id(0);
    let engine = &net.hub.engine;
    let limits = NodeConfig::default().channel;
    // (funding sat, push msat, feerate), the refusal, what its text names.
    type Case = ((u64, u64, u32), ChannelValueError, [String; 2]);
    let cases: Vec<Case> = vec![
        (
            (100, 0, 2_500),
            ChannelValueError::BelowMinimum {
                funding_satoshis: 100,
                min_satoshis: limits.min_funding_satoshis,
            },
            [
                "100 sat".into(),
                format!("{} sat", limits.min_funding_satoshis),
            ],
        ),
        (
            (1 << 24, 0, 2_500),
            ChannelValueError::AboveMaximum {
                funding_satoshis: 1 << 24,
                max_satoshis: limits.max_funding_satoshis,
            },
            [
                format!("{}", 1u64 << 24),
                format!("{}", limits.max_funding_satoshis),
            ],
        ),
        (
            (SATS, SATS * 1000 + 1, 2_500),
            ChannelValueError::PushAboveValue {
                push_msat: SATS * 1000 + 1,
                value_msat: SATS * 1000,
            },
            [format!("{}", SATS * 1000 + 1), format!("{}", SATS * 1000)],
        ),
        (
            (SATS, 0, 100),
            ChannelValueError::FeerateOutOfRange {
                feerate_per_kw: 100,
                min: limits.min_feerate_per_kw,
                max: limits.max_feerate_per_kw,
            },
            ["100".into(), format!("{}", limits.min_feerate_per_kw)],
        ),
    ];
    for ((sats, push, feerate), why, names) in cases {
        let e = refused(engine.create_channel(peer, sats, push, 1, feerate));
        assert_eq!(e, ApiError::ChannelValue(why), "{sats} sat, push {push}");
        let text = e.to_string();
        for name in &names {
            assert!(text.contains(name.as_str()), "{text} names {name}");
        }
    }
    // A channel so small that the first commitment's fee takes all of it.
    let e = refused(engine.create_channel(peer, 2_000, 0, 1, 50_000));
    assert!(
        matches!(
            e,
            ApiError::ChannelValue(ChannelValueError::CannotPayFirstFee { .. })
        ),
        "{e:?}"
    );
    // No channel was created, nothing was sent to the peer.
    assert!(engine.list_channels().expect("list").is_empty());
    assert!(engine.drain_events().is_empty());
    // A channel within the limits is still accepted.
    engine
        .create_channel(peer, SATS, 0, 1, 2_500)
        .expect("within the limits");
}
