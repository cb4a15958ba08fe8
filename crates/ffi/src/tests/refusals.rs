//! The call-time refusals through the C entry points: `lnshard_engine_send_payment` and
//! `lnshard_engine_create_channel` refuse at once, each with its own result code and a last
//! error naming the value and the limit. The network around the engine (peers, channels,
//! payments completed and in flight) is the test harness's; the refused calls are the C
//! functions, on the same engine behind a C handle.

use std::ffi::c_char;

use lnshard_testkit as support;
use shard_engine::Engine;
use support::{engine_config, hub_secret, hub_seed, Net, Threaded, Who, SATS};

use crate::engine::{
    lnshard_engine, lnshard_engine_create_channel, lnshard_engine_send_payment, lnshard_route_hop,
    EngineHandle,
};
use crate::error::{lnshard_last_error_message, lnshard_result};
use crate::handle::{into_handle, take};

fn last_error() -> String {
    let mut buf = vec![0 as c_char; 1024];
    let mut n = 0usize;
    assert_eq!(
        lnshard_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n),
        lnshard_result::Ok
    );
    buf[..n].iter().map(|&c| c as u8 as char).collect()
}

#[track_caller]
fn assert_refused(got: lnshard_result, code: lnshard_result, needles: &[&str]) {
    let message = last_error();
    assert_eq!(got, code, "{message}");
    for needle in needles {
        assert!(message.contains(needle), "{message:?} names {needle:?}");
    }
}

/// Runs `f` with the harness's hub engine behind a C handle, then gives the engine back.
fn with_c_engine<R>(net: &mut Net<Threaded>, f: impl FnOnce(*const lnshard_engine) -> R) -> R {
    let placeholder = Engine::new(
        engine_config(1),
        support::secret(b"placeholder"),
        [0; 32],
        100,
        support::genesis(),
    );
    let engine = std::mem::replace(&mut net.hub.engine, placeholder);
    let ptr = into_handle::<lnshard_engine>(EngineHandle { engine });
    let answer = f(ptr);
    let handle = take::<lnshard_engine>(ptr, "engine")
        .unwrap_or_else(|_| panic!("a live handle"))
        .expect("not NULL");
    drop(std::mem::replace(&mut net.hub.engine, handle.engine));
    answer
}

fn send(engine: *const lnshard_engine, hop: lnshard_route_hop, id: [u8; 32]) -> lnshard_result {
    lnshard_engine_send_payment(
        engine,
        &hop,
        1,
        [0x11; 32].as_ptr().cast(),
        [0x22; 32].as_ptr().cast(),
        id.as_ptr().cast(),
    )
}

#[test]
fn payments_and_channels_the_node_would_refuse_get_their_own_codes_at_call_time() {
    let engine = Engine::new(
        engine_config(2),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    // The peers ask for HTLCs of at least 5,000 msat.
    let mut peer_config = lightning_core::node::NodeConfig::default();
    peer_config.channel.htlc_minimum_msat = 5_000;
    let mut net = Net::with_peer_config(Threaded { engine }, 2, peer_config);
    net.open_channels(&[(0, true), (1, true)]);
    let (c0, c1) = (net.channels[0], net.channels[1]);
    let (p0, p1) = (net.peer_id(c0.peer), net.peer_id(c1.peer));
    let hop =
        |node: lightning_core::secp256k1::PublicKey, scid: u64, amount: u64| lnshard_route_hop {
            node_id: node.serialize(),
            short_channel_id: scid,
            fee_msat: amount,
            cltv_expiry_delta: 50,
        };
    let completed = net.start_payment(Who::Hub, Who::Peer(c0.peer), None, Some(0), 1_000_000, true);
    net.run();
    net.settle();
    // Started, and not delivered yet: in flight while the C calls run.
    let in_flight = net.start_payment(Who::Hub, Who::Peer(c1.peer), None, Some(1), 1_000_000, true);
    let fresh = [0x5a; 32];

    with_c_engine(&mut net, |engine| {
        let unknown = lightning_core::types::ShortChannelId(0x0001_2300_0004_0005);
        assert_refused(
            send(engine, hop(p0, unknown.0, 100_000), fresh),
            lnshard_result::FirstHopUnusable,
            &[&unknown.to_string()],
        );
        assert_refused(
            send(engine, hop(p1, c0.scid.0, 100_000), fresh),
            lnshard_result::FirstHopUnusable,
            &[&c0.scid.to_string(), &p0.to_string()],
        );
        assert_refused(
            send(engine, hop(p0, c0.scid.0, 4_999), fresh),
            lnshard_result::AmountOutOfRange,
            &["4999 msat", "htlc_minimum_msat 5000"],
        );
        assert_refused(
            send(engine, hop(p0, c0.scid.0, SATS * 1000), fresh),
            lnshard_result::AmountOutOfRange,
            &[&format!("{} msat", SATS * 1000), "outbound capacity"],
        );
        let hex = |id: [u8; 32]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_refused(
            send(engine, hop(p1, c1.scid.0, 100_000), completed.0),
            lnshard_result::PaymentIdUsed,
            &[&hex(completed.0), "refused until height"],
        );
        assert_refused(
            send(engine, hop(p0, c0.scid.0, 100_000), in_flight.0),
            lnshard_result::PaymentIdUsed,
            &[&hex(in_flight.0), "in flight"],
        );
        let mut temp = [0u8; 32];
        assert_refused(
            lnshard_engine_create_channel(
                engine,
                p0.serialize().as_ptr().cast(),
                100,
                0,
                1,
                2_500,
                temp.as_mut_ptr().cast(),
            ),
            lnshard_result::ChannelValueRefused,
            &["100 sat", "1000 sat"],
        );
        assert_refused(
            lnshard_engine_create_channel(
                engine,
                p0.serialize().as_ptr().cast(),
                SATS,
                SATS * 1000 + 1,
                1,
                2_500,
                temp.as_mut_ptr().cast(),
            ),
            lnshard_result::ChannelValueRefused,
            &[&format!("push {} msat", SATS * 1000 + 1)],
        );
    });

    // A disconnected peer's channel.
    net.disconnect(c1.peer);
    with_c_engine(&mut net, |engine| {
        assert_refused(
            send(engine, hop(p1, c1.scid.0, 100_000), fresh),
            lnshard_result::FirstHopUnusable,
            &[&p1.to_string(), "not connected"],
        );
    });
    // Nothing was left behind: the payments finish as they would have.
    net.run();
    net.settle();
    assert_eq!(net.outcomes(completed), vec![true]);
    assert_eq!(net.outcomes(in_flight), vec![true]);
    // The retention window is a field of the C configuration.
    let mut c = std::mem::MaybeUninit::<crate::engine::lnshard_engine_config>::uninit();
    assert_eq!(
        crate::engine::lnshard_engine_config_default(c.as_mut_ptr()),
        lnshard_result::Ok
    );
    // SAFETY: written on Ok.
    let mut c = unsafe { c.assume_init() };
    assert_eq!(
        c.payment_id_retention_blocks,
        lightning_core::node::DEFAULT_PAYMENT_ID_RETENTION_BLOCKS
    );
    c.payment_id_retention_blocks = 6;
    let config = crate::engine::engine_config(&c).unwrap_or_else(|_| panic!("{}", last_error()));
    assert_eq!(config.node.payment_id_retention_blocks, 6);
    for code in [
        lnshard_result::FirstHopUnusable,
        lnshard_result::AmountOutOfRange,
        lnshard_result::PaymentIdUsed,
        lnshard_result::ChannelValueRefused,
    ] {
        assert_eq!(lnshard_result::from_code(code as u32), Some(code));
    }
}
