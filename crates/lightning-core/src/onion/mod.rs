//! BOLT 4 onion routing: building an onion for a route, peeling it hop by hop, the typed hop
//! payload, and failure messages returned to the origin (with attribution data).
//!
//! * [`keys`]: shared secrets, derived keys, the ChaCha20 stream and ephemeral key blinding.
//! * [`packet`]: the 1366-byte [`OnionPacket`].
//! * [`construct`]: [`construct_onion`] for a route, with filler generation.
//! * [`process`]: [`process_onion`] and [`process_payment_onion`] at each hop, with typed
//!   errors that name the failure to send back.
//! * [`payload`]: the typed [`HopPayload`] and the reader's rules ([`PaymentPayload`]).
//! * [`failure`]: [`FailureCode`] and the typed [`FailureMessage`].
//! * [`error_packet`]: building, relaying and decrypting the return packet.
//! * [`attribution`]: `attribution_data` for failures and fulfills.
//!
//! Everything is deterministic: session keys come in as arguments. Route blinding (the
//! `path_key` tweak and `encrypted_recipient_data` decryption) is not implemented here; its
//! payload records are decoded so that blinded payloads are not rejected as unknown.

pub mod attribution;
pub mod construct;
pub mod error_packet;
pub mod failure;
pub mod keys;
pub mod packet;
pub mod payload;
pub mod process;

pub use attribution::{read_fulfill_attribution, AttributionData, AttributionOutcome};
pub use construct::{construct_onion, ConstructError, ConstructedOnion, OnionHop};
pub use error_packet::{
    create_failure, decrypt_failure, decrypt_failure_for_route, forward_failure, DecryptedFailure,
    FailingHop, ReturnedFailure, FAILURE_PADDED_LEN,
};
pub use failure::{Failure, FailureCode, FailureMessage};
pub use keys::{HopKeys, HopSharedSecret};
pub use packet::{OnionPacket, ONION_PACKET_LEN};
pub use payload::{HopPayload, PayloadError, PaymentPayload};
pub use process::{
    process_onion, process_payment_onion, OnionProcessError, PaymentHop, ProcessedOnion,
};

#[cfg(test)]
mod tests {
    use bitcoin::hashes::{sha256, Hash};
    use bitcoin::secp256k1::{PublicKey, SecretKey};
    use proptest::prelude::*;

    use super::*;
    use crate::onion::construct::hop_data_len;
    use crate::onion::packet::HOP_PAYLOADS_LEN;

    /// A valid secret key from any seed.
    fn key(seed: &[u8]) -> SecretKey {
        let mut digest = sha256::Hash::hash(seed).to_byte_array();
        loop {
            if let Ok(key) = SecretKey::from_slice(&digest) {
                return key;
            }
            digest = sha256::Hash::hash(&digest).to_byte_array();
        }
    }

    /// A route of 1..=20 hops whose payload lengths (2 and up) fit in `hop_payloads` together.
    /// Hops (node secret, payload), session key, associated data.
    type Route = (Vec<(SecretKey, Vec<u8>)>, SecretKey, [u8; 32]);

    fn any_route() -> impl Strategy<Value = Route> {
        (1usize..=20)
            .prop_flat_map(|n| {
                let budget = HOP_PAYLOADS_LEN / n;
                // shift = BigSize(len) + len + 32 <= budget.
                let max_len = (budget - 32 - 3).min(600);
                (
                    proptest::collection::vec(
                        (
                            any::<[u8; 8]>(),
                            proptest::collection::vec(any::<u8>(), 2..=max_len),
                        ),
                        n,
                    ),
                    any::<[u8; 8]>(),
                    any::<[u8; 32]>(),
                )
            })
            .prop_map(|(hops, session, assoc)| {
                let hops = hops
                    .into_iter()
                    .map(|(seed, payload)| (key(&seed), payload))
                    .collect();
                (hops, key(&session), assoc)
            })
    }

    fn build(hops: &[(SecretKey, Vec<u8>)], session: &SecretKey, assoc: &[u8]) -> ConstructedOnion {
        let secp = crate::secp::ctx();
        let onion_hops: Vec<OnionHop> = hops
            .iter()
            .map(|(sk, payload)| OnionHop {
                node_id: PublicKey::from_secret_key(&secp, sk),
                payload: payload.clone(),
            })
            .collect();
        assert!(
            onion_hops
                .iter()
                .map(|h| hop_data_len(h.payload.len()))
                .sum::<usize>()
                <= 1300
        );
        construct_onion(&secp, session, &onion_hops, assoc).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn every_hop_peels_its_own_payload((hops, session, assoc) in any_route()) {
            let secp = crate::secp::ctx();
            let constructed = build(&hops, &session, &assoc);
            let mut packet = constructed.packet.clone();
            for (i, (sk, payload)) in hops.iter().enumerate() {
                let processed = process_onion(&secp, sk, &packet, &assoc).unwrap();
                prop_assert_eq!(processed.payload(), payload.as_slice());
                prop_assert_eq!(processed.shared_secret(), &constructed.hop_keys[i].shared_secret);
                match processed {
                    ProcessedOnion::Forward { next_packet, .. } => {
                        prop_assert!(i + 1 < hops.len(), "hop {} of {} forwards", i, hops.len());
                        packet = *next_packet;
                    }
                    ProcessedOnion::Final { .. } => {
                        prop_assert_eq!(i + 1, hops.len(), "only the last hop is final");
                    }
                }
            }
        }

        #[test]
        fn a_failure_decrypts_to_its_hop(
            (hops, session, assoc) in any_route(),
            erring_seed in any::<usize>(),
            attribution in any::<bool>(),
            htlc_msat in any::<u64>(),
        ) {
            let constructed = build(&hops, &session, &assoc);
            let secrets = constructed.shared_secrets();
            let erring = erring_seed % hops.len();
            let failure = Failure::from(FailureMessage::FeeInsufficient {
                htlc_msat,
                channel_update: vec![],
            });
            let hold = |i: usize| attribution.then_some(i as u32);
            let mut returned =
                create_failure(&secrets[erring], &failure, FAILURE_PADDED_LEN, hold(erring)).unwrap();
            for i in (0..erring).rev() {
                returned = forward_failure(&secrets[i], &returned, hold(i));
            }
            let secp = crate::secp::ctx();
            let route: Vec<PublicKey> =
                hops.iter().map(|(sk, _)| PublicKey::from_secret_key(&secp, sk)).collect();
            let decrypted = decrypt_failure_for_route(&secp, &session, &route, &returned).unwrap();
            prop_assert_eq!(&decrypted, &decrypt_failure(&secrets, &returned));
            let hop = decrypted.failing_hop.clone().unwrap();
            prop_assert_eq!(hop.index, erring);
            prop_assert_eq!(hop.failure, Ok(failure));
            prop_assert_eq!(decrypted.blamed_hop, Some(erring));
            if attribution {
                let outcome = decrypted.attribution.unwrap();
                let expected: Vec<u32> = (0..=erring as u32).collect();
                prop_assert_eq!(outcome.hold_times, expected);
                prop_assert_eq!(outcome.first_invalid_hop, None);
            }
        }
    }
}
