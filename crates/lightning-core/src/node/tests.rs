//! Routes and HTLC policy together: an onion built along a route is peeled hop by hop by
//! `decide_incoming`, each hop checking our forwarding policy.

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, SecretKey};

use super::htlc_policy::*;
use super::route::*;
use crate::onion::FailureMessage;
use crate::types::{PaymentPreimage, PaymentSecret, ShortChannelId};

fn key(i: u8) -> SecretKey {
    SecretKey::from_slice(&sha256::Hash::hash(&[i]).to_byte_array()).unwrap()
}

fn three_hop_route(policy: &ForwardingPolicy) -> (Vec<SecretKey>, Route) {
    let secp = crate::secp::ctx();
    let nodes: Vec<SecretKey> = (1..=3).map(key).collect();
    let final_amount = 5_000_000;
    let fee2 = policy.fee_for(final_amount);
    let fee1 = policy.fee_for(final_amount + fee2);
    let hops = vec![
        RouteHop {
            node_id: PublicKey::from_secret_key(&secp, &nodes[0]),
            short_channel_id: ShortChannelId::new(100, 1, 0),
            fee_msat: fee1,
            cltv_expiry_delta: u32::from(policy.cltv_expiry_delta),
        },
        RouteHop {
            node_id: PublicKey::from_secret_key(&secp, &nodes[1]),
            short_channel_id: ShortChannelId::new(100, 2, 0),
            fee_msat: fee2,
            cltv_expiry_delta: u32::from(policy.cltv_expiry_delta),
        },
        RouteHop {
            node_id: PublicKey::from_secret_key(&secp, &nodes[2]),
            short_channel_id: ShortChannelId::new(100, 3, 1),
            fee_msat: final_amount,
            cltv_expiry_delta: 40,
        },
    ];
    (nodes, Route { hops })
}

#[test]
fn onion_along_route_forwards_with_fees_and_is_received() {
    let secp = crate::secp::ctx();
    let policy = ForwardingPolicy::default();
    let (nodes, route) = three_hop_route(&policy);
    let preimage = PaymentPreimage([9; 32]);
    let hash = preimage.payment_hash();
    let secret = PaymentSecret([7; 32]);
    let height = 1000;
    let built = build_payment_onion(&secp, &key(50), &route, &hash, &secret, height).unwrap();
    assert_eq!(
        built.first_hop_amount_msat,
        5_000_000 + route.total_fees_msat()
    );
    assert_eq!(built.first_hop_cltv_expiry, height + 1 + 40 + 72 + 72);

    let (mut amount, mut cltv, mut onion) = (
        built.first_hop_amount_msat,
        built.first_hop_cltv_expiry,
        built.onion,
    );
    for (i, node) in nodes.iter().enumerate() {
        let htlc = IncomingHtlc {
            amount_msat: amount,
            cltv_expiry: cltv,
            payment_hash: hash,
            onion: &onion,
        };
        match decide_incoming(&secp, node, htlc, &policy, height) {
            HtlcDecision::Forward {
                short_channel_id,
                amount_msat,
                cltv_expiry,
                onion: next,
                ..
            } => {
                assert!(i < 2, "hop {i} must not forward");
                assert_eq!(short_channel_id, route.hops[i + 1].short_channel_id);
                assert_eq!(amount - amount_msat, route.hops[i].fee_msat);
                assert_eq!(cltv - cltv_expiry, 72);
                (amount, cltv, onion) = (amount_msat, cltv_expiry, next);
            }
            HtlcDecision::Receive { payload, .. } => {
                assert_eq!(i, 2);
                assert_eq!(payload.amt_to_forward, 5_000_000);
                let expected = ExpectedPayment {
                    payment_secret: secret,
                    amount_msat: Some(5_000_000),
                };
                assert_eq!(
                    check_receive(&payload, amount, cltv, height, 18, Some(&expected)),
                    Ok(())
                );
                let wrong = ExpectedPayment {
                    payment_secret: PaymentSecret([8; 32]),
                    ..expected
                };
                assert!(matches!(
                    check_receive(&payload, amount, cltv, height, 18, Some(&wrong)),
                    Err(FailureMessage::IncorrectOrUnknownPaymentDetails { .. })
                ));
                assert!(matches!(
                    check_receive(&payload, amount - 1, cltv, height, 18, Some(&expected)),
                    Err(FailureMessage::FinalIncorrectHtlcAmount { .. })
                ));
            }
            other => panic!("hop {i}: {other:?}"),
        }
    }
}

#[test]
fn forwarding_hop_rejects_low_fee_and_short_cltv_delta() {
    let secp = crate::secp::ctx();
    let policy = ForwardingPolicy::default();
    let (nodes, mut route) = three_hop_route(&policy);
    route.hops[0].fee_msat -= 1;
    let hash = PaymentPreimage([1; 32]).payment_hash();
    let built =
        build_payment_onion(&secp, &key(51), &route, &hash, &PaymentSecret([2; 32]), 500).unwrap();
    let htlc = IncomingHtlc {
        amount_msat: built.first_hop_amount_msat,
        cltv_expiry: built.first_hop_cltv_expiry,
        payment_hash: hash,
        onion: &built.onion,
    };
    assert!(matches!(
        decide_incoming(&secp, &nodes[0], htlc, &policy, 500),
        HtlcDecision::Fail {
            failure: FailureMessage::FeeInsufficient { .. },
            ..
        }
    ));

    let (nodes, mut route) = three_hop_route(&policy);
    route.hops[0].cltv_expiry_delta = 10;
    let built =
        build_payment_onion(&secp, &key(52), &route, &hash, &PaymentSecret([2; 32]), 500).unwrap();
    let htlc = IncomingHtlc {
        amount_msat: built.first_hop_amount_msat,
        cltv_expiry: built.first_hop_cltv_expiry,
        payment_hash: hash,
        onion: &built.onion,
    };
    assert!(matches!(
        decide_incoming(&secp, &nodes[0], htlc, &policy, 500),
        HtlcDecision::Fail {
            failure: FailureMessage::IncorrectCltvExpiry { .. },
            ..
        }
    ));
}

#[test]
fn corrupted_onion_is_malformed_with_its_hash() {
    let secp = crate::secp::ctx();
    let policy = ForwardingPolicy::default();
    let (nodes, route) = three_hop_route(&policy);
    let hash = PaymentPreimage([1; 32]).payment_hash();
    let mut built =
        build_payment_onion(&secp, &key(53), &route, &hash, &PaymentSecret([2; 32]), 500).unwrap();
    built.onion[100] ^= 1;
    let htlc = IncomingHtlc {
        amount_msat: built.first_hop_amount_msat,
        cltv_expiry: built.first_hop_cltv_expiry,
        payment_hash: hash,
        onion: &built.onion,
    };
    let expected_hash = sha256::Hash::hash(&built.onion[..]).to_byte_array();
    assert_eq!(
        decide_incoming(&secp, &nodes[0], htlc, &policy, 500),
        HtlcDecision::FailMalformed {
            failure_code: 0x8000 | 0x4000 | 5,
            sha256_of_onion: expected_hash
        }
    );
}
