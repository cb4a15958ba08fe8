//! Fuzzes `Engine::handle_bytes`: what a peer writes to an inbound connection, fed in
//! fuzzer-chosen chunks, to an engine with one shard and no store (made once; each input
//! opens a new connection and closes it at the end).
//!
//! The first byte chooses the mode: even, the rest is raw bytes (the BOLT 8 handshake is
//! fuzzed); odd, the target completes a valid handshake as the initiator (a fresh identity
//! per input), sends a valid `init` unless told not to, then encrypts fuzzer-chosen plaintext
//! messages (raw bytes, or a valid `open_channel` with some bytes changed), sometimes
//! damaging the ciphertext, so the shard's message handling is reached.
//!
//! Checked: no panic (on this thread or the shard's); every byte the engine writes back
//! decrypts and decodes as a message; at the end the engine still answers (`list_channels`).
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::BlockHash;
use lightning_core::node::{NodeConfig, NodeCore, Output};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::transport::{InitiatorHandshake, Transport};
use lightning_core::wire::{Init, Message};
use shard_engine::{Engine, EngineConfig, EngineError, NodeApi};

struct Setup {
    engine: Engine,
    init: Vec<u8>,
    open_channel: Vec<u8>,
    next_conn: AtomicU64,
}

fn secret(tag: &[u8]) -> SecretKey {
    SecretKey::from_slice(&sha256::Hash::hash(tag).to_byte_array()).expect("a valid key")
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let node = NodeConfig::default();
        let config = EngineConfig {
            shards: 1,
            store: None,
            node: node.clone(),
            ..EngineConfig::default()
        };
        let engine = Engine::new(
            config,
            secret(b"fuzz engine"),
            [7; 32],
            100,
            BlockHash::all_zeros(),
        );
        let init = Message::Init(Init::new(
            node.init_features(),
            Some(vec![node.chain_hash]),
            None,
        ))
        .encode();
        // A valid `open_channel` to the engine, made by a node of our own.
        let mut opener = NodeCore::new(
            secret(b"fuzz opener"),
            [8; 32],
            node,
            100,
            BlockHash::all_zeros(),
        );
        let engine_id = engine.node_id();
        opener.peer_connected(engine_id);
        opener.handle_message(engine_id, &init);
        opener
            .create_channel(engine_id, 200_000, 10_000_000, 1, 2500)
            .expect("create_channel");
        let open_channel = opener
            .drain_outputs()
            .into_iter()
            .find_map(|o| match o {
                Output::SendMessage {
                    msg: msg @ Message::OpenChannel(_),
                    ..
                } => Some(msg.encode()),
                _ => None,
            })
            .expect("an open_channel");
        Setup {
            engine,
            init,
            open_channel,
            next_conn: AtomicU64::new(1),
        }
    })
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head.to_vec()
    }
}

/// Waits until the shard has handled everything queued to it.
fn settle(engine: &Engine) {
    let start = Instant::now();
    while !engine.is_idle() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the engine did not finish its work"
        );
        std::thread::yield_now();
    }
}

/// Feeds `bytes` to the connection in chunks whose sizes the input picks; false once the
/// engine refused the connection (a handshake error).
fn feed(engine: &Engine, conn: u64, bytes: &[u8], input: &mut Input<'_>) -> Option<Vec<u8>> {
    let mut reply = Vec::new();
    let mut rest = bytes;
    loop {
        let chunk = match input.u8() {
            0 => rest.len(),
            n => usize::from(n),
        };
        let (head, tail) = rest.split_at(chunk.min(rest.len()));
        rest = tail;
        let mut result = engine.handle_bytes(conn, head);
        while let Err(EngineError::Full { .. }) = result {
            settle(engine);
            result = engine.handle_bytes(conn, &[]);
        }
        match result {
            Ok(r) => reply.extend(r),
            Err(EngineError::Handshake { .. }) => return None,
            Err(e) => panic!("handle_bytes: {e}"),
        }
        if rest.is_empty() {
            return Some(reply);
        }
    }
}

/// What the engine wrote to the connection must decrypt and decode.
fn check_outputs(engine: &Engine, conn: u64, transport: &mut Transport) {
    let out = engine
        .connection_outputs(conn)
        .expect("the connection is known");
    for msg in transport
        .decrypt(&out.bytes)
        .expect("the engine's bytes decrypt")
    {
        Message::decode(&msg).expect("the engine's messages decode");
    }
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let engine = &setup.engine;
    let conn = setup.next_conn.fetch_add(1, Ordering::Relaxed);
    engine
        .new_inbound_connection(conn)
        .expect("a new connection");
    let mut input = Input(data);
    let mode = input.u8();
    let mut open = true;
    if mode % 2 == 0 {
        while !input.0.is_empty() {
            let n = usize::from(input.u8());
            let bytes = input.bytes(n);
            if feed(engine, conn, &bytes, &mut input).is_none() {
                open = false;
                break;
            }
        }
    } else {
        let our_secret = secret(&conn.to_be_bytes());
        let ephemeral = secret(&[&conn.to_be_bytes()[..], b"e"].concat());
        let handshake = InitiatorHandshake::new(&our_secret, &engine.node_id(), &ephemeral);
        let act_two = feed(engine, conn, &handshake.act_one(), &mut input).expect("act one");
        let (act_three, mut transport) = handshake
            .process_act_two(&act_two)
            .expect("the engine's act two");
        let reply = feed(engine, conn, &act_three, &mut input).expect("act three");
        assert!(reply.is_empty(), "nothing answers act three");
        let our_id = PublicKey::from_secret_key(&Secp256k1::signing_only(), &our_secret);
        assert_eq!(engine.connection_node_id(conn), Some(our_id));
        let mut plaintexts = Vec::new();
        if mode & 2 == 0 {
            plaintexts.push((setup.init.clone(), None));
        }
        while !input.0.is_empty() && plaintexts.len() < 32 {
            let flags = input.u8();
            let mut msg = if flags & 1 == 0 {
                let n = usize::from(input.u16());
                input.bytes(n)
            } else {
                setup.open_channel.clone()
            };
            if flags & 2 != 0 && !msg.is_empty() {
                let at = usize::from(input.u16()) % msg.len();
                msg[at] ^= input.u8() | 1;
            }
            let damage = (flags & 4 != 0).then(|| (input.u16(), input.u8() | 1));
            plaintexts.push((msg, damage));
        }
        for (msg, damage) in plaintexts {
            let mut ciphertext = transport.encrypt(&msg).expect("a message fits a frame");
            if let Some((at, xor)) = damage {
                let at = usize::from(at) % ciphertext.len();
                ciphertext[at] ^= xor;
            }
            if feed(engine, conn, &ciphertext, &mut input).is_none() {
                open = false;
                break;
            }
            settle(engine);
            check_outputs(engine, conn, &mut transport);
        }
        settle(engine);
        if open {
            check_outputs(engine, conn, &mut transport);
        }
    }
    if open {
        engine
            .connection_closed(conn)
            .expect("close the connection");
    }
    settle(engine);
    engine.drain_events();
    engine.list_channels().expect("the engine still answers");
});
