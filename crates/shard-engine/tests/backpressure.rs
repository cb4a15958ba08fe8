//! Backpressure: the caller's typed `Full`, shards forwarding to each other with full
//! inboxes (no deadlock), a slow peer disconnected rather than waited for, and shutdown.

use lnshard_testkit as support;

use std::sync::mpsc;
use std::time::Duration;

use shard_engine::lightning_core::node::{NodeConfig, NodeCore, Output};
use shard_engine::lightning_core::secp256k1::{PublicKey, SecretKey};
use shard_engine::lightning_core::transport::{Handshake, HandshakeStep, Transport};
use shard_engine::lightning_core::wire::{Message, Ping};
use shard_engine::{ConnectionId, Engine, EngineConfig, EngineError, NodeApi, Sim};
use support::{engine_config, genesis, hub_secret, hub_seed, secret, Link, Net, Threaded, Who};

/// A BOLT 8 connection of the peer `tag` to `sim`, attached (a control message: it always
/// queues); the peer's end.
fn attach(sim: &mut Sim, conn: ConnectionId, tag: &[u8]) -> (Link, PublicKey) {
    let (link, end) = Link::open(conn, &secret(tag), &hub_secret());
    let id = end.node_id;
    sim.attach_connection(conn, id, end.transport, Box::new(end.writer))
        .expect("attached");
    (link, id)
}

/// Hands `message` to `sim` on `link`, encrypted; a refused frame is kept for the next try.
fn send(sim: &mut Sim, link: &mut Link, id: PublicKey, message: &[u8]) -> Result<(), EngineError> {
    let frame = link.seal(message);
    sim.connection_ciphertext(link.conn, id, frame.clone())
        .inspect_err(|_| link.refused(frame))
}

#[test]
fn a_full_inbox_refuses_with_a_typed_error_and_control_messages_still_queue() {
    let config = EngineConfig {
        shards: 1,
        inbox_capacity: 2,
        ..EngineConfig::default()
    };
    let mut sim = Sim::new(config, hub_secret(), hub_seed(), 100, genesis(), 1);
    let (mut link, id) = attach(&mut sim, 1, b"p");
    let ping = [0, 18, 0, 1, 0, 0];
    send(&mut sim, &mut link, id, &ping).expect("room for two");
    let err = send(&mut sim, &mut link, id, &ping).unwrap_err();
    assert_eq!(
        err,
        EngineError::Full {
            shard: 0,
            capacity: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "inbox of shard 0 is full (2 messages or its byte bound)"
    );
    // Broadcasts every shard must see wait for room instead (never dropped).
    sim.best_block_updated(101, genesis())
        .expect("control message queued");
    assert_eq!(sim.inbox_lens(), vec![3]);
    sim.run_until_idle();
    send(&mut sim, &mut link, id, &ping).expect("room again once drained");
}

/// Runs `f` on its own thread and fails if it does not finish within `limit`: a deadlock
/// shows up as this timeout instead of a hung test.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("finished in time (no deadlock between shards)")
}

#[test]
fn two_shards_forwarding_to_each_other_with_full_inboxes_do_not_deadlock() {
    let (parked, refusals, forwarded, errors) = within(Duration::from_secs(300), || {
        let config = EngineConfig {
            shards: 2,
            inbox_capacity: 1,
            ..engine_config(2)
        };
        let engine = Engine::new(config, hub_secret(), hub_seed(), 100, genesis());
        let mut net = Net::new(Threaded { engine }, 10);
        net.eager_claims = true;
        let specs: Vec<(usize, bool)> = (0..10).map(|i| (i, false)).collect();
        net.open_channels(&specs);
        let initial = net.balances();
        let shard_of: Vec<usize> = net
            .channels
            .iter()
            .map(|c| net.hub.engine.shard_of(&net.peer_id(c.peer)))
            .collect();
        let on0: Vec<usize> = (0..shard_of.len()).filter(|&k| shard_of[k] == 0).collect();
        let on1: Vec<usize> = (0..shard_of.len()).filter(|&k| shard_of[k] == 1).collect();
        assert!(!on0.is_empty() && !on1.is_empty(), "peers on both shards");
        for round in 0..6u64 {
            // Every channel of shard 0 pays one of shard 1 and the other way round, all
            // at once: forwards and results cross both ways while both inboxes are full.
            for (x, &a) in on0.iter().enumerate() {
                let b = on1[(x + round as usize) % on1.len()];
                for (cin, cout) in [(a, b), (b, a)] {
                    let (p, q) = (net.channels[cin].peer, net.channels[cout].peer);
                    let amount = 2_000_000 + round * 1000;
                    net.start_payment(
                        Who::Peer(p),
                        Who::Peer(q),
                        Some(cin),
                        Some(cout),
                        amount,
                        true,
                    );
                }
            }
            net.run();
        }
        let errors = net.check(&initial);
        let parked: usize = net
            .hub
            .engine
            .shard_stats()
            .iter()
            .map(|s| s.parked_high_water)
            .max()
            .unwrap_or(0);
        (parked, net.full_refusals, net.forwarded_count, errors)
    });
    assert!(errors.is_empty(), "{errors:#?}");
    eprintln!("parked high-water {parked}, caller refusals {refusals}, forwarded {forwarded}");
    assert!(
        parked > 0,
        "cross-shard messages met a full inbox and were parked"
    );
    assert!(refusals > 0, "callers met full inboxes");
    assert!(forwarded >= 30);
}

/// Connects a peer that never drains its connection, as a host that hands the engine raw
/// socket bytes ([`Engine::handle_bytes`]: the engine's own bounded queue per connection),
/// and hands the engine its `init`. Returns the connection and the peer's cipher states.
fn connect_slow_peer(engine: &Engine) -> (ConnectionId, Transport) {
    let conn = 1;
    let slow = secret(b"slow");
    let mut peer = NodeCore::new(slow, [2; 32], NodeConfig::default(), 100, genesis());
    peer.peer_connected(engine.node_id());
    let Some(Output::SendMessage { msg: init, .. }) = peer.poll_output() else {
        panic!("peer queues init");
    };
    let mut transport = dial(engine, conn, &slow);
    let frame = transport.encrypt(&init.encode()).expect("init fits");
    engine.handle_bytes(conn, &frame).expect("init");
    (conn, transport)
}

/// The peer `secret` dials `engine` on connection `conn`: the handshake through
/// [`Engine::handle_bytes`]; the peer's cipher states.
fn dial(engine: &Engine, conn: ConnectionId, secret: &SecretKey) -> Transport {
    engine.new_inbound_connection(conn).expect("accepted");
    let ephemeral = SecretKey::from_slice(&[0x42; 32]).expect("a key");
    let (handshake, act_one) = Handshake::outbound(secret, &engine.node_id(), &ephemeral);
    let act_two = engine.handle_bytes(conn, &act_one).expect("act one");
    let Ok(HandshakeStep::Established(established)) = handshake.read(&act_two) else {
        panic!("act two");
    };
    let rest = engine
        .handle_bytes(conn, &established.write)
        .expect("act three");
    assert!(rest.is_empty());
    established.transport
}

/// Pings `engine` on `conn`, encrypted, each in its own read.
fn ping(engine: &Engine, conn: ConnectionId, transport: &mut Transport, pong: u16, n: usize) {
    let ping = Message::Ping(Ping {
        num_pong_bytes: pong,
        ignored: vec![],
    })
    .encode();
    for _ in 0..n {
        let frame = transport.encrypt(&ping).expect("a ping fits");
        engine.handle_bytes(conn, &frame).expect("ping queued");
    }
}

/// Waits (up to 10 s) until the engine has handled everything queued.
fn wait_idle(engine: &Engine) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !engine.is_idle() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_peer_that_lets_its_outbox_fill_is_disconnected() {
    let config = EngineConfig {
        shards: 1,
        peer_outbox_capacity: 3,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, hub_secret(), hub_seed(), 100, genesis());
    let (conn, mut transport) = connect_slow_peer(&engine);
    ping(&engine, conn, &mut transport, 4, 10);
    wait_idle(&engine);
    let output = engine.connection_outputs(conn).expect("the connection");
    let messages = transport.decrypt(&output.bytes).expect("our ciphertext");
    assert_eq!(
        messages.len(),
        3,
        "3 queued messages (init, two pongs) then the disconnect: {messages:?}"
    );
    assert!(output.disconnect, "the shard closed the connection");
    let report = engine.shutdown(Duration::from_secs(1));
    assert_eq!(report.stats.len(), 1);
    assert_eq!(
        report.stats[0].messages_handled,
        12 + 1,
        "attach, init, 10 pings, detach"
    );
}

#[test]
fn a_peer_outbox_is_bounded_in_bytes_not_only_in_messages() {
    let config = EngineConfig {
        shards: 1,
        peer_outbox_bytes: 2_000,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, hub_secret(), hub_seed(), 100, genesis());
    let (conn, mut transport) = connect_slow_peer(&engine);
    // Three pings of 900-byte pongs (within the core's pong budget): our init and two pongs
    // fit in 2,000 bytes of ciphertext, the third pong does not.
    ping(&engine, conn, &mut transport, 900, 3);
    wait_idle(&engine);
    let output = engine.connection_outputs(conn).expect("the connection");
    let queued = output.bytes.len();
    let messages = transport.decrypt(&output.bytes).expect("our ciphertext");
    assert_eq!(
        messages.len(),
        3,
        "init, two pongs, then the disconnect: {messages:?}"
    );
    assert!(output.disconnect, "the shard closed the connection");
    assert!(queued <= 2_000, "{queued} bytes queued");
    engine.shutdown(Duration::from_secs(1));
}

#[test]
fn shutdown_lets_queued_work_finish_and_joins_every_shard() {
    let engine = Engine::new(engine_config(4), hub_secret(), hub_seed(), 100, genesis());
    let mut net = Net::new(Threaded { engine }, 8);
    net.open_channels(&[(0, false), (5, true)]);
    let engine = net.hub.engine;
    engine.best_block_updated(200, genesis()).expect("block");
    let report = engine.shutdown(Duration::from_secs(5));
    assert_eq!(report.stats.len(), 4);
    assert!(report.parked.is_empty());
    let handled: u64 = report.stats.iter().map(|s| s.messages_handled).sum();
    assert!(handled > 50, "shards handled the work: {handled}");
    assert!(report
        .stats
        .iter()
        .all(|s| s.busy_nanos > 0 && s.queue_high_water >= 1));
}

#[test]
fn outputs_of_an_old_connection_never_reach_a_new_one() {
    let engine = Engine::new(engine_config(2), hub_secret(), hub_seed(), 100, genesis());
    let (mut first, end) = Link::open(1, &secret(b"re"), &hub_secret());
    let id = end.node_id;
    engine
        .attach_connection(end.conn, id, end.transport, Box::new(end.writer))
        .expect("first connection");
    let ping = Message::Ping(Ping {
        num_pong_bytes: 2,
        ignored: vec![],
    })
    .encode();
    // Written to the first connection and never drained: init (and nothing else, the
    // peer's init never came, so the ping is refused by disconnection).
    engine
        .connection_ciphertext(first.conn, id, first.seal(&ping))
        .expect("queued");
    engine.detach_connection(first.conn, id).expect("gone");
    let (mut second, end) = Link::open(2, &secret(b"re"), &hub_secret());
    engine
        .attach_connection(end.conn, id, end.transport, Box::new(end.writer))
        .expect("second connection");
    wait_idle(&engine);
    let (messages, closed) = second.take();
    assert_eq!(
        messages.len(),
        1,
        "only the second connection's init: {messages:?}"
    );
    assert!(!closed);
    assert!(matches!(
        Message::decode(&messages[0]),
        Ok(Message::Init(_))
    ));
    // The first connection got only what was its own, and was closed.
    let (old, closed) = first.take();
    assert!(closed, "the first connection was closed");
    assert!(old
        .iter()
        .all(|m| matches!(Message::decode(m), Ok(Message::Init(_)))));
}

#[test]
fn a_shard_inbox_is_bounded_in_bytes_of_peer_messages() {
    // A byte bound of 10,000: two 4,034-byte frames (4,000-byte messages) fit, a third does
    // not, whatever the message count allows; control messages (blocks) still queue; once the
    // shard drains, messages are taken again.
    let config = EngineConfig {
        shards: 1,
        inbox_bytes: 10_000,
        ..EngineConfig::default()
    };
    let mut sim = Sim::new(config, hub_secret(), hub_seed(), 100, genesis(), 1);
    let (mut link, id) = attach(&mut sim, 1, b"p");
    let big = Message::Ping(Ping {
        num_pong_bytes: 0,
        ignored: vec![0; 3_994],
    })
    .encode();
    assert_eq!(big.len(), 4_000);
    send(&mut sim, &mut link, id, &big).expect("4,034 bytes");
    send(&mut sim, &mut link, id, &big).expect("8,068 bytes");
    assert_eq!(
        send(&mut sim, &mut link, id, &big).unwrap_err(),
        EngineError::Full {
            shard: 0,
            capacity: EngineConfig::default().inbox_capacity
        }
    );
    sim.best_block_updated(101, genesis())
        .expect("control message queued");
    sim.run_until_idle();
    send(&mut sim, &mut link, id, &big).expect("room again once drained");
}
