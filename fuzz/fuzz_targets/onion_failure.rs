//! Decrypts arbitrary bytes as a returned failure for a fixed 5-hop route; never panics.
//!
//! The first byte picks the mode:
//! * even: the rest is a returned failure as received from the first hop: with the low bit of
//!   the second byte set, its next 920 bytes are `attribution_data`, the remainder the `reason`;
//! * odd: the rest is a `failuremsg` that hop `byte / 2 % 5` returns (with attribution data);
//!   the origin must name that hop and read back exactly those bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lightning_core::onion::attribution::{AttributionData, ATTRIBUTION_DATA_LEN};
use lightning_core::onion::error_packet::{apply_ammag, failure_packet};
use lightning_core::onion::keys::{route_keys, HopSharedSecret};
use lightning_core::onion::{decrypt_failure, forward_failure, Failure, ReturnedFailure};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};

fn route_secrets() -> &'static [HopSharedSecret] {
    static SECRETS: OnceLock<Vec<HopSharedSecret>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let secp = Secp256k1::new();
        let route: Vec<PublicKey> = (0x41u8..0x46)
            .map(|b| {
                let sk = SecretKey::from_slice(&[b; 32]).expect("valid key");
                PublicKey::from_secret_key(&secp, &sk)
            })
            .collect();
        let session = SecretKey::from_slice(&[0x41; 32]).expect("valid key");
        route_keys(&secp, &session, &route)
            .expect("fixed route blinds")
            .into_iter()
            .map(|k| k.shared_secret)
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let secrets = route_secrets();
    if mode % 2 == 0 {
        let (attribution_data, reason) = match rest.split_first() {
            Some((flags, tail)) if flags & 1 == 1 && tail.len() >= ATTRIBUTION_DATA_LEN => {
                let (attribution, reason) = tail.split_at(ATTRIBUTION_DATA_LEN);
                let data = AttributionData::decode(attribution).expect("exact length");
                (Some(data), reason)
            }
            _ => (None, rest),
        };
        let decrypted = decrypt_failure(
            secrets,
            &ReturnedFailure {
                reason: reason.to_vec(),
                attribution_data,
            },
        );
        if let Some(hop) = &decrypted.failing_hop {
            assert!(hop.index < secrets.len());
            assert_eq!(decrypted.blamed_hop, Some(hop.index));
        }
        return;
    }

    let erring = usize::from(mode / 2) % secrets.len();
    let Ok(mut reason) = failure_packet(&secrets[erring], rest, 256) else {
        return;
    };
    let attribution = AttributionData::add_hop(None, &reason, 1, &secrets[erring]);
    apply_ammag(&secrets[erring], &mut reason);
    let mut returned = ReturnedFailure {
        reason,
        attribution_data: Some(attribution),
    };
    for ss in secrets[..erring].iter().rev() {
        returned = forward_failure(ss, &returned, Some(2));
    }
    let decrypted = decrypt_failure(secrets, &returned);
    let hop = decrypted.failing_hop.expect("the erring hop is named");
    assert_eq!(hop.index, erring);
    assert_eq!(hop.failure_message, rest);
    assert_eq!(hop.failure, Failure::decode(rest));
    let outcome = decrypted.attribution.expect("attribution data");
    assert_eq!(outcome.first_invalid_hop, None);
    assert_eq!(outcome.hold_times.len(), erring + 1);
});
