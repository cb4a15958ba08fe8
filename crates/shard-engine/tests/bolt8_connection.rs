//! `handle_bytes`: BOLT 8 connections in front of the shards, both directions, fragmented
//! reads, and a broken handshake.

use lnshard_testkit as support;

use std::time::{Duration, Instant};

use shard_engine::lightning_core::node::{Event, NodeConfig, NodeCore, Output};
use shard_engine::lightning_core::secp256k1::{PublicKey, SecretKey};
use shard_engine::lightning_core::transport::{
    HandshakeError, InitiatorHandshake, ResponderHandshake, Transport, ACT_THREE_LEN,
};
use shard_engine::lightning_core::wire::{Message, Ping};
use shard_engine::{Engine, EngineError};
use support::{engine_config, genesis, hub_secret, hub_seed, secret};

/// A peer NodeCore at the far end of an encrypted connection.
struct Far {
    core: NodeCore,
    transport: Transport,
    conn: u64,
    received: Vec<Message>,
}

impl Far {
    /// Moves traffic both ways until nothing moves for a while.
    fn pump(&mut self, engine: &Engine) {
        let hub = engine.node_id();
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(100) {
            let mut moved = false;
            let mut bytes = Vec::new();
            for o in self.core.drain_outputs() {
                match o {
                    Output::SendMessage { msg, .. } => {
                        bytes.extend(self.transport.encrypt(&msg.encode()).expect("encrypt"))
                    }
                    Output::Event(Event::FundingGenerationReady {
                        temporary_channel_id,
                        output_script,
                        channel_value_satoshis,
                        ..
                    }) => {
                        let tx = support::fake_funding_tx(output_script, channel_value_satoshis, 1);
                        self.core
                            .funding_transaction_generated(temporary_channel_id, hub, tx)
                            .expect("funding");
                    }
                    _ => {}
                }
            }
            if !bytes.is_empty() {
                moved = true;
                // Fragmented reads: the engine must reassemble frames.
                for chunk in bytes.chunks(37) {
                    let reply = engine.handle_bytes(self.conn, chunk).expect("handle_bytes");
                    assert!(reply.is_empty(), "no handshake bytes once established");
                }
            }
            let out = engine.connection_outputs(self.conn).expect("outputs");
            assert!(!out.disconnect);
            if !out.bytes.is_empty() {
                moved = true;
                for m in self.transport.decrypt(&out.bytes).expect("decrypt") {
                    self.received.push(Message::decode(&m).expect("decodes"));
                    self.core.handle_message(hub, &m);
                }
            }
            if moved || !engine.is_idle() {
                quiet_since = Instant::now();
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn far_core(tag: &[u8]) -> (NodeCore, SecretKey) {
    let key = secret(tag);
    (
        NodeCore::new(key, [9; 32], NodeConfig::default(), 100, genesis()),
        key,
    )
}

#[test]
fn inbound_connection_handshake_then_channel_open_over_encrypted_bytes() {
    let engine = Engine::new(engine_config(2), hub_secret(), hub_seed(), 100, genesis());
    let (mut core, key) = far_core(b"far-initiator");
    let ephemeral = secret(b"far-ephemeral");
    let handshake = InitiatorHandshake::new(&key, &engine.node_id(), &ephemeral);
    engine.new_inbound_connection(7).expect("new connection");
    assert_eq!(
        engine.new_inbound_connection(7),
        Err(EngineError::DuplicateConnection(7))
    );
    // Act one a byte at a time: nothing comes back until it is whole.
    let act_one = handshake.act_one();
    let (last, head) = act_one.split_last().expect("50 bytes");
    for b in head {
        assert!(engine
            .handle_bytes(7, &[*b])
            .expect("partial act")
            .is_empty());
    }
    let act_two = engine.handle_bytes(7, &[*last]).expect("act one");
    let (act_three, transport) = handshake.process_act_two(&act_two).expect("act two");
    assert_eq!(engine.connection_node_id(7), None, "not before act three");
    // Act three and the first encrypted message in one read.
    core.peer_connected(engine.node_id());
    let mut far = Far {
        core,
        transport,
        conn: 7,
        received: Vec::new(),
    };
    let Some(Output::SendMessage { msg: init, .. }) = far.core.poll_output() else {
        panic!("init queued");
    };
    let mut bytes = act_three.to_vec();
    bytes.extend(far.transport.encrypt(&init.encode()).expect("encrypt"));
    assert_eq!(bytes.len(), ACT_THREE_LEN + 18 + init.encode().len() + 16);
    assert!(engine
        .handle_bytes(7, &bytes)
        .expect("act three")
        .is_empty());
    assert_eq!(engine.connection_node_id(7), Some(far.core.node_id()));
    far.pump(&engine);
    assert!(
        matches!(far.received.first(), Some(Message::Init(_))),
        "engine's init arrived"
    );
    // A channel opened by the far peer, funded and signed on both sides, all encrypted.
    far.core
        .create_channel(engine.node_id(), 1_000_000, 0, 1, 2500)
        .expect("create_channel");
    far.pump(&engine);
    let names: Vec<&str> = far.received.iter().map(message_name).collect();
    assert_eq!(names, ["init", "accept_channel", "funding_signed"]);
    let events = engine.drain_events();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ChannelPending { .. })));
    engine.connection_closed(7).expect("closed");
    assert_eq!(
        engine.connection_closed(7),
        Err(EngineError::UnknownConnection(7))
    );
}

fn message_name(m: &Message) -> &'static str {
    match m {
        Message::Init(_) => "init",
        Message::AcceptChannel(_) => "accept_channel",
        Message::FundingSigned(_) => "funding_signed",
        Message::Pong(_) => "pong",
        _ => "other",
    }
}

#[test]
fn outbound_connection_handshake_init_and_ping() {
    let engine = Engine::new(engine_config(2), hub_secret(), hub_seed(), 100, genesis());
    let (mut core, key) = far_core(b"far-responder");
    let far_id = core.node_id();
    let act_one = engine.new_outbound_connection(3, far_id).expect("act one");
    let responder = ResponderHandshake::new(&key, &secret(b"far-eph-2"));
    let (waiting, act_two) = responder.process_act_one(&act_one).expect("act one valid");
    let act_three = engine.handle_bytes(3, &act_two).expect("act two");
    let (hub_id, transport): (PublicKey, Transport) = waiting
        .process_act_three(&act_three)
        .expect("act three valid");
    assert_eq!(
        hub_id,
        engine.node_id(),
        "the responder learns the engine's node id"
    );
    core.peer_connected(hub_id);
    let mut far = Far {
        core,
        transport,
        conn: 3,
        received: Vec::new(),
    };
    far.pump(&engine);
    let ping = Message::Ping(Ping {
        num_pong_bytes: 8,
        ignored: vec![0; 4],
    });
    let bytes = far.transport.encrypt(&ping.encode()).expect("encrypt");
    engine.handle_bytes(3, &bytes).expect("ping");
    far.pump(&engine);
    let names: Vec<&str> = far.received.iter().map(message_name).collect();
    assert_eq!(names, ["init", "pong"]);
}

#[test]
fn a_bad_act_one_fails_the_handshake_and_forgets_the_connection() {
    let engine = Engine::new(engine_config(1), hub_secret(), hub_seed(), 100, genesis());
    engine.new_inbound_connection(1).expect("new");
    let (_, key) = far_core(b"far-bad");
    let handshake = InitiatorHandshake::new(&key, &engine.node_id(), &secret(b"eph-bad"));
    let mut act_one = handshake.act_one();
    act_one[0] = 1;
    let err = engine.handle_bytes(1, &act_one).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Handshake {
                conn: 1,
                error: HandshakeError::BadVersion { .. }
            }
        ),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("handshake on connection 1 failed"));
    assert_eq!(
        engine.handle_bytes(1, &[0]),
        Err(EngineError::UnknownConnection(1))
    );
}

#[test]
fn wait_ready_connection_names_a_connection_once_until_it_is_drained() {
    let engine = Engine::new(engine_config(2), hub_secret(), hub_seed(), 100, genesis());
    assert_eq!(engine.wait_ready_connection(Duration::from_millis(5)), None);
    let (mut core, key) = far_core(b"far-ready");
    let far_id = core.node_id();
    let act_one = engine.new_outbound_connection(5, far_id).expect("act one");
    let responder = ResponderHandshake::new(&key, &secret(b"far-eph-ready"));
    let (waiting, act_two) = responder.process_act_one(&act_one).expect("act one valid");
    let act_three = engine.handle_bytes(5, &act_two).expect("act two");
    let (_, mut transport) = waiting.process_act_three(&act_three).expect("act three");
    // The shard writes our init: the connection is named once, however often it is written
    // to, until it is drained.
    assert_eq!(
        engine.wait_ready_connection(Duration::from_secs(5)),
        Some(5)
    );
    let ping = Message::Ping(Ping {
        num_pong_bytes: 8,
        ignored: vec![],
    });
    core.peer_connected(engine.node_id());
    let Some(Output::SendMessage { msg: init, .. }) = core.poll_output() else {
        panic!("init queued");
    };
    let mut bytes = transport.encrypt(&init.encode()).expect("encrypt");
    bytes.extend(transport.encrypt(&ping.encode()).expect("encrypt"));
    engine.handle_bytes(5, &bytes).expect("init and ping");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !engine.is_idle() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        engine.wait_ready_connection(Duration::from_millis(20)),
        None
    );
    let out = engine.connection_outputs(5).expect("outputs");
    let names: Vec<&str> = transport
        .decrypt(&out.bytes)
        .expect("decrypt")
        .iter()
        .map(|m| message_name(&Message::decode(m).expect("decodes")))
        .collect();
    assert_eq!(names, ["init", "pong"]);
    // Drained: the next write names it again.
    engine
        .handle_bytes(5, &transport.encrypt(&ping.encode()).expect("encrypt"))
        .expect("ping");
    assert_eq!(
        engine.wait_ready_connection(Duration::from_secs(5)),
        Some(5)
    );
    let out = engine.connection_outputs(5).expect("outputs");
    assert_eq!(transport.decrypt(&out.bytes).expect("decrypt").len(), 1);
    engine.connection_closed(5).expect("closed");
}
