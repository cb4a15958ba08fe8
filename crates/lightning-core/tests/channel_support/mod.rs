//! A two-channel harness: funder A and fundee B exchanging messages as encoded bytes.
#![allow(dead_code)]

use std::collections::VecDeque;

use lightning_core::bitcoin::absolute::LockTime;
use lightning_core::bitcoin::constants::ChainHash;
use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::transaction::Version;
use lightning_core::bitcoin::{
    Amount, EcdsaSighashType, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Txid, WPubkeyHash, Witness,
};
use lightning_core::channel::{
    derive_channel_keys, Channel, ChannelConfig, ChannelError, ChannelEvent, ChannelPhase,
    OutboundParams,
};
use lightning_core::secp256k1::{ecdsa::Signature, PublicKey, Secp256k1};
use lightning_core::transactions::sign::segwit_v0_sighash;
use lightning_core::types::{ChannelId, PaymentPreimage, ShortChannelId};
use lightning_core::wire::{ChannelReady, Feature, Features, Message};

pub const FUNDING_SATOSHIS: u64 = 10_000_000;
pub const PUSH_MSAT: u64 = 3_000_000_000;
pub const FEERATE: u32 = 2500;

pub fn chain() -> ChainHash {
    ChainHash::using_genesis_block(Network::Regtest)
}

pub fn features(anchors: bool) -> Features {
    let mut f = Features::empty();
    f.set_optional(Feature::DataLossProtect);
    f.set_optional(Feature::UpfrontShutdownScript);
    f.set_optional(Feature::VarOnionOptin);
    f.set_required(Feature::StaticRemoteKey);
    f.set_optional(Feature::PaymentSecret);
    f.set_optional(Feature::ChannelType);
    if anchors {
        f.set_optional(Feature::Anchors);
    }
    f
}

pub fn shutdown_script(tag: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([tag; 20]))
}

pub fn preimage(i: u64) -> PaymentPreimage {
    PaymentPreimage(sha256::Hash::hash(&i.to_be_bytes()).to_byte_array())
}

pub fn onion(i: u64) -> Box<[u8; 1366]> {
    let mut o = Box::new([0u8; 1366]);
    o[0] = 0;
    o[1..9].copy_from_slice(&i.to_be_bytes());
    o
}

/// Encodes and decodes: what goes over the wire is bytes.
pub fn wire(msg: &Message) -> Message {
    Message::decode(&msg.encode()).expect("our own messages decode")
}

/// Two channels and the byte queues between them.
pub struct Pair {
    pub a: Channel,
    pub b: Channel,
    pub a_to_b: VecDeque<Vec<u8>>,
    pub b_to_a: VecDeque<Vec<u8>>,
    pub events_a: Vec<ChannelEvent>,
    pub events_b: Vec<ChannelEvent>,
    pub funding_tx: Transaction,
    pub sent_types_a: Vec<u16>,
    pub sent_types_b: Vec<u16>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    A,
    B,
}

pub fn config(anchors: bool) -> ChannelConfig {
    ChannelConfig {
        negotiate_anchors: anchors,
        max_accepted_htlcs: 30,
        max_dust_htlc_exposure_msat: 50_000_000,
        ..ChannelConfig::default()
    }
}

impl Pair {
    /// Opens, funds, confirms and readies a channel A (funder) -> B.
    pub fn open(anchors: bool) -> Pair {
        Self::open_with(anchors, config(anchors), config(anchors), PUSH_MSAT)
    }

    pub fn open_with(anchors: bool, ca: ChannelConfig, cb: ChannelConfig, push_msat: u64) -> Pair {
        Self::open_hooked(anchors, ca, cb, push_msat, &|_| {})
    }

    /// Like [`Pair::open_with`], with `hook` applied to B's `channel_ready` before A sees it
    /// (to play a misbehaving peer).
    pub fn open_hooked(
        anchors: bool,
        ca: ChannelConfig,
        cb: ChannelConfig,
        push_msat: u64,
        hook: &dyn Fn(&mut ChannelReady),
    ) -> Pair {
        let fa = features(anchors);
        let fb = features(anchors);
        let (mut a, open) = Channel::new_outbound(
            OutboundParams {
                chain_hash: chain(),
                temporary_channel_id: ChannelId([0x11; 32]),
                funding_satoshis: FUNDING_SATOSHIS,
                push_msat,
                feerate_per_kw: FEERATE,
                announce: false,
                shutdown_script: shutdown_script(0xaa),
            },
            &fa,
            &fb,
            ca,
            derive_channel_keys(&[1; 32], 0),
        )
        .expect("open");
        let Message::OpenChannel(open) = wire(&Message::OpenChannel(open)) else {
            panic!("open_channel decodes as open_channel")
        };
        let (mut b, accept) = Channel::new_inbound(
            &open,
            chain(),
            &fb,
            &fa,
            cb,
            derive_channel_keys(&[2; 32], 7),
            shutdown_script(0xbb),
        )
        .expect("accept");
        a.handle_message(&wire(&Message::AcceptChannel(accept)))
            .expect("accept_channel");
        let funding_tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([9; 32]),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![
                TxOut {
                    value: Amount::from_sat(123_456),
                    script_pubkey: shutdown_script(0x01),
                },
                TxOut {
                    value: Amount::from_sat(FUNDING_SATOSHIS),
                    script_pubkey: a.funding_script_pubkey(),
                },
            ],
        };
        let outpoint = OutPoint {
            txid: funding_tx.compute_txid(),
            vout: 1,
        };
        let fc = a
            .funding_transaction_built(outpoint)
            .expect("funding_created");
        b.handle_message(&wire(&Message::FundingCreated(fc)))
            .expect("funding_created accepted");
        let fs = b.drain_messages();
        assert_eq!(fs.len(), 1);
        for m in &fs {
            a.handle_message(&wire(m)).expect("funding_signed accepted");
        }
        assert_eq!(a.channel_id(), b.channel_id());
        assert_eq!(a.funding_script_pubkey(), b.funding_script_pubkey());
        a.set_local_alias(ShortChannelId(0xa11a5));
        b.set_local_alias(ShortChannelId(0xb11a5));
        let mut pair = Pair {
            a,
            b,
            a_to_b: VecDeque::new(),
            b_to_a: VecDeque::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            funding_tx,
            sent_types_a: Vec::new(),
            sent_types_b: Vec::new(),
        };
        pair.a.funding_confirmed(100, 5, 1).expect("confirmed");
        pair.b.funding_confirmed(100, 5, 1).expect("confirmed");
        for h in 101..110 {
            pair.a.best_block_updated(h).expect("block");
            pair.b.best_block_updated(h).expect("block");
        }
        pair.flush();
        for bytes in std::mem::take(&mut pair.b_to_a) {
            let Message::ChannelReady(mut ready) = Message::decode(&bytes).expect("decodes") else {
                panic!("channel_ready expected")
            };
            hook(&mut ready);
            pair.b_to_a.push_back(Message::ChannelReady(ready).encode());
        }
        pair.run().expect("channel_ready exchange");
        assert_eq!(pair.a.phase(), ChannelPhase::Normal);
        assert_eq!(pair.b.phase(), ChannelPhase::Normal);
        assert_eq!(pair.a.remote_alias(), Some(ShortChannelId(0xb11a5)));
        assert_eq!(pair.b.remote_alias(), Some(ShortChannelId(0xa11a5)));
        pair.take_events();
        pair
    }

    pub fn chan(&mut self, side: Side) -> &mut Channel {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Moves each channel's queued messages (as bytes) into its outgoing queue.
    pub fn flush(&mut self) {
        for m in self.a.drain_messages() {
            self.sent_types_a.push(m.message_type());
            self.a_to_b.push_back(m.encode());
        }
        for m in self.b.drain_messages() {
            self.sent_types_b.push(m.message_type());
            self.b_to_a.push_back(m.encode());
        }
        self.events_a.extend(self.a.drain_events());
        self.events_b.extend(self.b.drain_events());
    }

    /// Delivers the next message sent by `from`, then lets the receiver sign.
    pub fn deliver(&mut self, from: Side) -> Result<Option<u16>, ChannelError> {
        self.flush();
        let (queue, to) = match from {
            Side::A => (&mut self.a_to_b, &mut self.b),
            Side::B => (&mut self.b_to_a, &mut self.a),
        };
        let Some(bytes) = queue.pop_front() else {
            return Ok(None);
        };
        let msg = Message::decode(&bytes).expect("wire bytes decode");
        to.handle_message(&msg)?;
        to.maybe_sign()?;
        self.flush();
        Ok(Some(msg.message_type()))
    }

    /// Delivers everything in both directions until quiet.
    pub fn run(&mut self) -> Result<(), ChannelError> {
        self.a.maybe_sign()?;
        self.b.maybe_sign()?;
        self.flush();
        while !self.a_to_b.is_empty() || !self.b_to_a.is_empty() {
            if !self.a_to_b.is_empty() {
                self.deliver(Side::A)?;
            }
            if !self.b_to_a.is_empty() {
                self.deliver(Side::B)?;
            }
        }
        Ok(())
    }

    pub fn take_events(&mut self) -> (Vec<ChannelEvent>, Vec<ChannelEvent>) {
        self.flush();
        (
            std::mem::take(&mut self.events_a),
            std::mem::take(&mut self.events_b),
        )
    }

    /// With nothing in flight both views of both commitments agree.
    pub fn assert_converged(&self) {
        assert!(self.a_to_b.is_empty() && self.b_to_a.is_empty());
        assert!(self.a.next_remote_commit().is_none());
        assert!(self.b.next_remote_commit().is_none());
        assert_eq!(self.a.remote_commit().spec, self.b.local_commit().spec);
        assert_eq!(self.b.remote_commit().spec, self.a.local_commit().spec);
        assert_eq!(self.a.remote_commit().index, self.b.local_commit().index);
        assert_eq!(self.b.remote_commit().index, self.a.local_commit().index);
        assert_eq!(self.a.remote_commit().txid, self.b.local_commit().txid);
        assert_eq!(self.b.remote_commit().txid, self.a.local_commit().txid);
        for c in [&self.a, &self.b] {
            let s = &c.local_commit().spec;
            let total = s.to_local_msat
                + s.to_remote_msat
                + s.htlcs.values().map(|h| h.amount_msat).sum::<u64>();
            assert_eq!(
                total,
                FUNDING_SATOSHIS * 1000,
                "balances + htlcs == capacity"
            );
        }
    }

    /// Disconnects both and exchanges channel_reestablish (as bytes).
    pub fn reconnect(&mut self) -> Result<(), ChannelError> {
        self.a_to_b.clear();
        self.b_to_a.clear();
        self.a.peer_disconnected();
        self.b.peer_disconnected();
        let ra = wire(&Message::ChannelReestablish(self.a.get_reestablish()?));
        let rb = wire(&Message::ChannelReestablish(self.b.get_reestablish()?));
        self.b.handle_message(&ra)?;
        self.a.handle_message(&rb)?;
        self.run()
    }
}

/// Verifies the 2-of-2 funding input (input 0) of `tx` spending the funding output: both
/// signatures against the BIP 143 sighash, with the keys in the witness script.
pub fn verify_funding_spend(tx: &Transaction, funding_tx: &Transaction) {
    let secp = Secp256k1::verification_only();
    let input = &tx.input[0];
    let funding_out = &funding_tx.output[input.previous_output.vout as usize];
    assert_eq!(input.previous_output.txid, funding_tx.compute_txid());
    let w: Vec<&[u8]> = input.witness.iter().collect();
    assert_eq!(w.len(), 4, "0 <sig1> <sig2> <script>");
    assert!(w[0].is_empty());
    let script = ScriptBuf::from_bytes(w[3].to_vec());
    assert_eq!(
        script.to_p2wsh(),
        funding_out.script_pubkey,
        "witness script is the funding script"
    );
    let sighash = segwit_v0_sighash(
        tx,
        0,
        &script,
        funding_out.value.to_sat(),
        EcdsaSighashType::All,
    )
    .expect("sighash");
    // Script: OP_2 <33> <pk1> <33> <pk2> OP_2 OP_CHECKMULTISIG
    let pk1 = PublicKey::from_slice(&w[3][2..35]).expect("pubkey 1");
    let pk2 = PublicKey::from_slice(&w[3][36..69]).expect("pubkey 2");
    for (sig, pk) in [(w[1], pk1), (w[2], pk2)] {
        let (last, der) = sig.split_last().expect("signature bytes");
        assert_eq!(*last, EcdsaSighashType::All as u8);
        let sig = Signature::from_der(der).expect("DER");
        secp.verify_ecdsa(&sighash, &sig, &pk)
            .expect("funding signature verifies");
    }
}
