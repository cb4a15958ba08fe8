//! Processes arbitrary bytes as an onion at a node with a fixed key; never panics.
//!
//! The first byte picks the mode:
//! * even: the rest is a serialized `onion_packet` (checked to re-encode identically), processed
//!   as received;
//! * odd: the rest is the decrypted `hop_payloads` of an onion the fixed sender built for the
//!   node, with a valid HMAC, so the fuzzer reaches the payload length, the TLV payload and the
//!   forward/final decision.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lightning_core::onion::keys::{apply_stream, hmac_sha256, HopSharedSecret, KeyType};
use lightning_core::onion::packet::HOP_PAYLOADS_LEN;
use lightning_core::onion::payload::HopPayload;
use lightning_core::onion::{process_onion, process_payment_onion, OnionPacket, ProcessedOnion};
use lightning_core::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use lightning_core::types::PaymentHash;

const PAYMENT_HASH: [u8; 32] = [0x42; 32];

struct Fixed {
    secp: Secp256k1<All>,
    node: SecretKey,
    sender_key: [u8; 33],
    shared_secret: HopSharedSecret,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let secp = Secp256k1::new();
        let node = SecretKey::from_slice(&[0x41; 32]).expect("valid key");
        let session = SecretKey::from_slice(&[0x17; 32]).expect("valid key");
        let shared_secret =
            HopSharedSecret::compute(&PublicKey::from_secret_key(&secp, &node), &session);
        let sender_key = PublicKey::from_secret_key(&secp, &session).serialize();
        Fixed {
            secp,
            node,
            sender_key,
            shared_secret,
        }
    })
}

fn check(f: &Fixed, packet: &OnionPacket) {
    let processed = process_onion(&f.secp, &f.node, packet, &PAYMENT_HASH);
    let payment = process_payment_onion(&f.secp, &f.node, packet, &PaymentHash(PAYMENT_HASH));
    match &processed {
        Ok(p) => {
            if let Ok(payload) = HopPayload::decode(p.payload()) {
                assert_eq!(payload.encode(), p.payload(), "payload re-encodes identically");
            }
            if let ProcessedOnion::Forward { next_packet, .. } = p {
                assert_eq!(next_packet.version, 0);
            }
        }
        Err(e) => {
            // The payment view fails the same way before the payload rules apply.
            assert_eq!(payment.as_ref().err(), Some(e));
            let _ = (e.failure_message(), e.to_string(), e.shared_secret());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixed();
    if mode % 2 == 0 {
        if let Ok(packet) = OnionPacket::decode(rest) {
            assert_eq!(packet.encode(), rest, "packet re-encodes identically");
            check(f, &packet);
        }
        return;
    }
    let mut hop_payloads = [0u8; HOP_PAYLOADS_LEN];
    for (slot, byte) in hop_payloads.iter_mut().zip(rest) {
        *slot = *byte;
    }
    apply_stream(&f.shared_secret.derive_key(KeyType::Rho), &mut hop_payloads);
    let hmac = hmac_sha256(
        &f.shared_secret.derive_key(KeyType::Mu),
        &[&hop_payloads, &PAYMENT_HASH],
    );
    let packet = OnionPacket {
        version: 0,
        public_key: f.sender_key,
        hop_payloads,
        hmac,
    };
    assert!(
        !matches!(
            process_onion(&f.secp, &f.node, &packet, &PAYMENT_HASH),
            Err(lightning_core::onion::OnionProcessError::InvalidHmac { .. })
        ),
        "a packet built with the right keys authenticates"
    );
    check(f, &packet);
});
