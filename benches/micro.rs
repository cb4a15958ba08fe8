//! Criterion micro-benchmarks of the pieces a payment is made of, and of one
//! `two-node-sends` iteration:
//!
//! * `decode/<message>`: [`Message::decode`] of a real encoded message of each kind
//!   (recorded from two nodes opening, paying, failing, reconnecting and closing; the kinds no
//!   such exchange sends are built field by field);
//! * `commitment/*`: a commitment transaction's keys, build and signature (with no HTLC
//!   output, and with three untrimmed HTLCs and their HTLC-transaction signatures);
//! * `verify/*`: a commitment signature check (sighash and ECDSA verification);
//! * `onion/*`: payment onion construction for 1 and 3 hops, and peeling one layer;
//! * `transport/encrypt_decrypt_320_bytes`: one BOLT 8 message through both ends of a link;
//! * `secrets/insert`: per-commitment secret storage insert (BOLT 3 `insert_secret`,
//!   checking every stored secret it must derive), 64 consecutive indexes per iteration;
//! * `two_node_sends/iteration`: one `lnshard bench two-node-sends` iteration (two
//!   payments, see `lnshard_bench::two_node`).
//!
//! `cargo bench --bench micro` takes about two minutes (short warm-up and measurement
//! times); pass a filter (`cargo bench --bench micro -- decode`) to run a group.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::{OutPoint, Txid};
use lightning_core::channel::derive_channel_keys;
use lightning_core::keys::{ChannelKeys, ChannelPublicKeys, CommitmentKeys};
use lightning_core::node::route::build_payment_onion;
use lightning_core::node::{Route, RouteHop};
use lightning_core::onion::packet::OnionPacket;
use lightning_core::onion::process::process_payment_onion;
use lightning_core::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use lightning_core::secrets::{generate_from_seed, CounterpartySecrets, FIRST_INDEX};
use lightning_core::transactions::{
    build_commitment_tx, ChannelType, CommitmentParams, CommitmentTx, Htlc, HtlcDirection, Side,
};
use lightning_core::types::{
    ChannelId, PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId,
};
use lightning_core::wire::{
    ErrorMessage, Message, Ping, Pong, UpdateFailMalformedHtlc, UpdateFee, Warning,
};
use lnshard_bench::two_node;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(30)
}

fn secret(label: &[u8]) -> SecretKey {
    SecretKey::from_slice(&sha256::Hash::hash(label).to_byte_array()).expect("valid key")
}

/// BOLT names of the message types.
fn message_name(t: u16) -> String {
    match t {
        1 => "warning",
        16 => "init",
        17 => "error",
        18 => "ping",
        19 => "pong",
        32 => "open_channel",
        33 => "accept_channel",
        34 => "funding_created",
        35 => "funding_signed",
        36 => "channel_ready",
        38 => "shutdown",
        39 => "closing_signed",
        128 => "update_add_htlc",
        130 => "update_fulfill_htlc",
        131 => "update_fail_htlc",
        132 => "commitment_signed",
        133 => "revoke_and_ack",
        134 => "update_fee",
        135 => "update_fail_malformed_htlc",
        136 => "channel_reestablish",
        other => return format!("type_{other}"),
    }
    .to_owned()
}

fn bench_decode(c: &mut Criterion) {
    let mut samples = two_node::sample_messages().expect("the sampling scenario runs");
    let channel_id = ChannelId([7; 32]);
    let built: Vec<Message> = vec![
        Message::Warning(Warning::new(channel_id, "a warning of some length")),
        Message::Error(ErrorMessage::new(channel_id, "an error of some length")),
        Message::Ping(Ping {
            num_pong_bytes: 64,
            ignored: vec![0; 32],
        }),
        Message::Pong(Pong {
            ignored: vec![0; 64],
        }),
        Message::UpdateFee(UpdateFee {
            channel_id,
            feerate_per_kw: 2500,
        }),
        Message::UpdateFailMalformedHtlc(UpdateFailMalformedHtlc {
            channel_id,
            id: 5,
            sha256_of_onion: [9; 32],
            failure_code: 0x8000 | 0x4000 | 5,
        }),
    ];
    for msg in built {
        samples
            .entry(msg.message_type())
            .or_insert_with(|| msg.encode());
    }
    let mut group = c.benchmark_group("decode");
    for (t, bytes) in &samples {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(message_name(*t), |b| {
            b.iter(|| Message::decode(std::hint::black_box(bytes)).expect("decodes"))
        });
    }
    group.finish();
}

/// Two channel key sets and the parameters of the remote side's commitment 5, as the local
/// side builds it to sign it.
struct CommitmentSetup {
    secp: Secp256k1<All>,
    local: ChannelKeys,
    local_pub: ChannelPublicKeys,
    remote_pub: ChannelPublicKeys,
    point: PublicKey,
}

impl CommitmentSetup {
    fn new() -> Self {
        let secp = Secp256k1::new();
        let local = derive_channel_keys(&[1; 32], 0);
        let remote = derive_channel_keys(&[2; 32], 0);
        let point = remote
            .per_commitment_point(&secp, FIRST_INDEX - 5)
            .expect("valid point");
        CommitmentSetup {
            local_pub: local.public_keys(&secp),
            remote_pub: remote.public_keys(&secp),
            secp,
            local,
            point,
        }
    }

    /// Keys, build and signatures of the remote commitment holding `htlcs`.
    fn build_and_sign(&self, htlcs: &[Htlc]) -> CommitmentTx {
        let secp = &self.secp;
        let keys = if htlcs.is_empty() {
            CommitmentKeys::derive_without_htlc_keys(
                secp,
                &self.point,
                &self.remote_pub,
                &self.local_pub,
            )
        } else {
            CommitmentKeys::derive(secp, &self.point, &self.remote_pub, &self.local_pub)
        }
        .expect("valid keys");
        let in_htlcs: u64 = htlcs.iter().map(|h| h.amount_msat).sum();
        let tx = build_commitment_tx(&CommitmentParams {
            channel_type: ChannelType::StaticRemoteKey,
            funding_outpoint: OutPoint {
                txid: Txid::from_byte_array([3; 32]),
                vout: 0,
            },
            funding_satoshis: 8_000_000,
            local_funding_pubkey: self.remote_pub.funding_pubkey,
            remote_funding_pubkey: self.local_pub.funding_pubkey,
            local_payment_basepoint: self.remote_pub.payment_basepoint,
            remote_payment_basepoint: self.local_pub.payment_basepoint,
            funder: Side::Remote,
            commitment_number: 5,
            to_local_msat: 3_000_000_000 - in_htlcs,
            to_remote_msat: 5_000_000_000,
            feerate_per_kw: 253,
            dust_limit_satoshis: 354,
            to_self_delay: 144,
            keys,
            htlcs,
        })
        .expect("valid commitment");
        std::hint::black_box(tx.sign(secp, &self.local.funding_key));
        let htlc_txs = tx.htlc_txs();
        if !htlc_txs.is_empty() {
            let htlc_key = self
                .local
                .htlc_key(secp, &self.point)
                .expect("valid htlc key");
            for h in &htlc_txs {
                std::hint::black_box(h.sign_remote(secp, &htlc_key));
            }
        }
        tx
    }
}

fn htlcs(n: u8) -> Vec<Htlc> {
    (0..n)
        .map(|i| Htlc {
            direction: if i % 2 == 0 {
                HtlcDirection::Offered
            } else {
                HtlcDirection::Received
            },
            amount_msat: 5_000_000 + u64::from(i) * 1_000_000,
            cltv_expiry: 500 + u32::from(i),
            payment_hash: PaymentPreimage([i; 32]).payment_hash(),
        })
        .collect()
}

fn bench_commitment(c: &mut Criterion) {
    let setup = CommitmentSetup::new();
    let none = htlcs(0);
    let three = htlcs(3);
    assert_eq!(setup.build_and_sign(&three).htlc_outputs().len(), 3);
    let mut group = c.benchmark_group("commitment");
    group.bench_function("keys_build_sign_no_htlc", |b| {
        b.iter(|| setup.build_and_sign(&none))
    });
    group.bench_function("keys_build_sign_3_htlcs", |b| {
        b.iter(|| setup.build_and_sign(&three))
    });
    group.bench_function("keys_derive_full", |b| {
        b.iter(|| {
            CommitmentKeys::derive(
                &setup.secp,
                &setup.point,
                &setup.remote_pub,
                &setup.local_pub,
            )
        })
    });
    group.finish();

    let tx = setup.build_and_sign(&none);
    let signature = tx.sign(&setup.secp, &setup.local.funding_key);
    let mut group = c.benchmark_group("verify");
    group.bench_function("commitment_signature", |b| {
        b.iter(|| {
            tx.verify(&setup.secp, &signature, &setup.local_pub.funding_pubkey)
                .expect("verifies")
        })
    });
    let msg = tx.sighash();
    group.bench_function("ecdsa_only", |b| {
        b.iter(|| {
            setup
                .secp
                .verify_ecdsa(&msg, &signature, &setup.local_pub.funding_pubkey)
                .expect("verifies")
        })
    });
    group.finish();
}

fn bench_onion(c: &mut Criterion) {
    let secp = Secp256k1::new();
    let nodes: Vec<SecretKey> = (0..3u8).map(|i| secret(&[b'n', i])).collect();
    let route = |n: usize| Route {
        hops: (0..n)
            .map(|i| RouteHop {
                node_id: PublicKey::from_secret_key(&secp, &nodes[i]),
                short_channel_id: ShortChannelId::new(100, i as u32 + 1, 0),
                fee_msat: if i + 1 == n { 10_000 } else { 1_000 },
                cltv_expiry_delta: if i + 1 == n { 70 } else { 72 },
            })
            .collect(),
    };
    let hash = PaymentPreimage([5; 32]).payment_hash();
    let payment_secret = PaymentSecret([6; 32]);
    let session_key = secret(b"session");
    let build = |n: usize| {
        build_payment_onion(&secp, &session_key, &route(n), &hash, &payment_secret, 1000)
            .expect("onion builds")
    };
    let mut group = c.benchmark_group("onion");
    for n in [1, 3] {
        group.bench_function(format!("construct_{n}_hop"), |b| b.iter(|| build(n)));
    }
    let peel = |onion: &[u8; 1366], node: &SecretKey, hash: &PaymentHash| {
        let packet = OnionPacket::decode(onion).expect("decodes");
        process_payment_onion(&secp, node, &packet, hash).expect("peels")
    };
    let three = build(3);
    group.bench_function("peel_forward_hop", |b| {
        b.iter(|| peel(&three.onion, &nodes[0], &hash))
    });
    let one = build(1);
    group.bench_function("peel_final_hop", |b| {
        b.iter(|| peel(&one.onion, &nodes[0], &hash))
    });
    group.finish();
}

fn bench_secrets(c: &mut Criterion) {
    const BATCH: u64 = 64;
    let seed = [4; 32];
    let secret_at = |i: u64| generate_from_seed(&seed, FIRST_INDEX - i).expect("valid index");
    // A storage that already holds 1000 secrets, and the next 64 to insert.
    let mut storage = CounterpartySecrets::new();
    for i in 0..1000 {
        storage
            .insert(FIRST_INDEX - i, secret_at(i))
            .expect("in order");
    }
    let next: Vec<(u64, [u8; 32])> = (1000..1000 + BATCH)
        .map(|i| (FIRST_INDEX - i, secret_at(i)))
        .collect();
    let mut group = c.benchmark_group("secrets");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("insert", |b| {
        b.iter_batched(
            || storage.clone(),
            |mut s| {
                for (index, secret) in &next {
                    s.insert(*index, *secret).expect("in order");
                }
                s
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_two_node(c: &mut Criterion) {
    let mut harness = two_node::Harness::new().expect("two nodes open a channel");
    let mut group = c.benchmark_group("two_node_sends");
    group.throughput(Throughput::Elements(2));
    group.bench_function("iteration", |b| {
        b.iter(|| harness.iteration().expect("both payments succeed"))
    });
    group.finish();
    harness.check().expect("balances and records as expected");
}

/// BOLT 8: one message encrypted by its sender's transport and decrypted by its receiver's
/// (a 320-byte message, about what a `commitment_signed` with one HTLC signature weighs).
fn bench_transport(c: &mut Criterion) {
    use lightning_core::transport::{InitiatorHandshake, ResponderHandshake};
    let secp = Secp256k1::new();
    let key = |t: u8| SecretKey::from_slice(&[t; 32]).expect("a valid key");
    let responder_id = PublicKey::from_secret_key(&secp, &key(2));
    let initiator = InitiatorHandshake::new(&key(1), &responder_id, &key(3));
    let responder = ResponderHandshake::new(&key(2), &key(4));
    let (awaiting, act_two) = responder
        .process_act_one(&initiator.act_one())
        .expect("act one");
    let (act_three, mut a) = initiator.process_act_two(&act_two).expect("act two");
    let (_, mut b) = awaiting.process_act_three(&act_three).expect("act three");
    let message = vec![0x5au8; 320];
    let mut group = c.benchmark_group("transport");
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.bench_function("encrypt_decrypt_320_bytes", |bench| {
        bench.iter(|| {
            let ciphertext = a.encrypt(&message).expect("fits");
            let plain = b.decrypt(&ciphertext).expect("authentic");
            assert_eq!(plain.len(), 1);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decode, bench_commitment, bench_onion, bench_secrets, bench_transport, bench_two_node
}
criterion_main!(benches);
