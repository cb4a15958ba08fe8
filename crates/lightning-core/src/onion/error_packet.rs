//! Returning a failure to the origin (BOLT 4 "Returning Errors"): the erring hop builds the
//! return packet (`um` HMAC, padding, `ammag` obfuscation), every hop on the way back adds its
//! own `ammag` layer (and, with `option_attribution_data`, its attribution HMACs), and the
//! origin peels the layers with the route's shared secrets until one hop's HMAC matches.

use bitcoin::hashes::cmp::fixed_time_eq;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing, Verification};

use super::attribution::{AttributionData, AttributionOutcome, MAX_ATTRIBUTED_HOPS};
use super::failure::{Failure, FailureEncodeError};
use super::keys::{
    apply_stream, hmac_sha256, route_keys, HopSharedSecret, KeyBlindingError, KeyType,
};
use super::packet::HMAC_LEN;
use crate::ser::{DecodeError, Reader};

/// The length BOLT 4 says `failure_len + pad_len` SHOULD have (it MUST be at least this).
pub const FAILURE_PADDED_LEN: u16 = 256;
/// The origin keeps decrypting for at least this many rounds (the maximum route length of TLV
/// payloads), so the erring hop cannot learn its position from the origin's timing.
pub const MIN_DECRYPTION_ROUNDS: usize = 27;

/// A failure on its way back: the `reason` of `update_fail_htlc` and its optional
/// `attribution_data` TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedFailure {
    /// The obfuscated return packet.
    pub reason: Vec<u8>,
    /// The attribution data, when the hops support `option_attribution_data`.
    pub attribution_data: Option<AttributionData>,
}

/// The plain return packet the erring hop builds: HMAC (keyed by `um`) over the rest, then
/// `failure_len`, `failuremsg`, `pad_len` and zero padding so that `failure_len + pad_len` is
/// at least `padded_len` (BOLT 4: SHOULD be [`FAILURE_PADDED_LEN`]).
pub fn failure_packet(
    shared_secret: &HopSharedSecret,
    failure_message: &[u8],
    padded_len: u16,
) -> Result<Vec<u8>, FailureEncodeError> {
    let failure_len =
        u16::try_from(failure_message.len()).map_err(|_| FailureEncodeError::FieldTooLong {
            field: "failuremsg",
            length: failure_message.len(),
            limit: usize::from(u16::MAX),
        })?;
    let pad_len = padded_len.saturating_sub(failure_len);
    let mut body = Vec::with_capacity(4 + usize::from(failure_len) + usize::from(pad_len));
    body.extend_from_slice(&failure_len.to_be_bytes());
    body.extend_from_slice(failure_message);
    body.extend_from_slice(&pad_len.to_be_bytes());
    body.resize(body.len() + usize::from(pad_len), 0);
    let hmac = hmac_sha256(&shared_secret.derive_key(KeyType::Um), &[&body]);
    let mut packet = hmac.to_vec();
    packet.extend_from_slice(&body);
    Ok(packet)
}

/// Adds (or, at the origin, removes) one hop's `ammag` layer.
pub fn apply_ammag(shared_secret: &HopSharedSecret, packet: &mut [u8]) {
    apply_stream(&shared_secret.derive_key(KeyType::Ammag), packet);
}

/// The erring hop's side: builds and obfuscates the return packet for `failure`. With
/// `hold_time` (units of 100 ms) it also starts the attribution data.
pub fn create_failure(
    shared_secret: &HopSharedSecret,
    failure: &Failure,
    padded_len: u16,
    hold_time: Option<u32>,
) -> Result<ReturnedFailure, FailureEncodeError> {
    let mut reason = failure_packet(shared_secret, &failure.encode()?, padded_len)?;
    let attribution_data =
        hold_time.map(|held| AttributionData::add_hop(None, &reason, held, shared_secret));
    apply_ammag(shared_secret, &mut reason);
    Ok(ReturnedFailure {
        reason,
        attribution_data,
    })
}

/// An intermediate hop's side: adds its `ammag` layer to what came from downstream. With
/// `hold_time` (units of 100 ms) it adds its attribution data (starting from zeros when none
/// came from downstream); without, the attribution data is dropped.
pub fn forward_failure(
    shared_secret: &HopSharedSecret,
    incoming: &ReturnedFailure,
    hold_time: Option<u32>,
) -> ReturnedFailure {
    let attribution_data = hold_time.map(|held| {
        AttributionData::add_hop(
            incoming.attribution_data.as_ref(),
            &incoming.reason,
            held,
            shared_secret,
        )
    });
    let mut reason = incoming.reason.clone();
    apply_ammag(shared_secret, &mut reason);
    ReturnedFailure {
        reason,
        attribution_data,
    }
}

/// The hop whose HMAC matched the return packet: the hop that built the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingHop {
    /// Its index in the route (0 is the origin's peer).
    pub index: usize,
    /// The `failuremsg` bytes (empty when `failure_len` overruns the packet).
    pub failure_message: Vec<u8>,
    /// The typed failure, or why `failuremsg` could not be read.
    pub failure: Result<Failure, DecodeError>,
}

/// What the origin learned from a returned failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptedFailure {
    /// The hop that built the failure, when one hop's HMAC matched.
    pub failing_hop: Option<FailingHop>,
    /// What the attribution data said, when there was some.
    pub attribution: Option<AttributionOutcome>,
    /// The hop to hold responsible: the failing hop when one was identified; otherwise, from
    /// the attribution data, the first hop whose HMACs did not verify, or the last hop when
    /// all verified (it sent a packet nobody could authenticate). `None` without either.
    pub blamed_hop: Option<usize>,
}

fn read_failure_message(body: &[u8]) -> (Vec<u8>, Result<Failure, DecodeError>) {
    let mut reader = Reader::new(body);
    match reader.read_u16_prefixed("failuremsg") {
        Ok(message) => (message.to_vec(), Failure::decode(message)),
        Err(error) => (Vec::new(), Err(error)),
    }
}

/// The origin's side: peels the return packet with each hop's shared secret, in route order,
/// until a hop's `um` HMAC matches, and checks the attribution data along the way.
///
/// It runs at least [`MIN_DECRYPTION_ROUNDS`] rounds of the same work whatever the failing
/// hop's position, with a constant key after the route's end.
pub fn decrypt_failure(
    shared_secrets: &[HopSharedSecret],
    returned: &ReturnedFailure,
) -> DecryptedFailure {
    let route_len = shared_secrets.len();
    let mut packet = returned.reason.clone();
    let mut failing_hop = None;
    let mut attribution = returned
        .attribution_data
        .as_ref()
        .map(|_| AttributionOutcome::default());
    let mut live_attribution = returned.attribution_data.clone();
    let dummy = HopSharedSecret([0; 32]);
    for round in 0..route_len.max(MIN_DECRYPTION_ROUNDS) {
        let real = shared_secrets.get(round).filter(|_| failing_hop.is_none());
        let ss = real.unwrap_or(&dummy);
        apply_ammag(ss, &mut packet);

        if let (Some(ss), Some(outcome)) = (real, attribution.as_mut()) {
            if let Some(data) = live_attribution
                .take()
                .filter(|_| round < MAX_ATTRIBUTED_HOPS)
            {
                match data.peel(&packet, ss, route_len - round) {
                    Some((hold_time, next)) => {
                        outcome.hold_times.push(hold_time);
                        live_attribution = Some(next);
                    }
                    None => outcome.first_invalid_hop = Some(round),
                }
            }
        }

        let Some((mac, body)) = packet.split_first_chunk::<HMAC_LEN>() else {
            continue;
        };
        let expected = hmac_sha256(&ss.derive_key(KeyType::Um), &[body]);
        if fixed_time_eq(&expected, mac) && real.is_some() {
            let (failure_message, failure) = read_failure_message(body);
            failing_hop = Some(FailingHop {
                index: round,
                failure_message,
                failure,
            });
        }
    }

    let blamed_hop = failing_hop.as_ref().map(|hop| hop.index).or_else(|| {
        attribution.as_ref().and_then(|outcome| {
            outcome
                .first_invalid_hop
                .or_else(|| outcome.hold_times.len().checked_sub(1))
        })
    });
    DecryptedFailure {
        failing_hop,
        attribution,
        blamed_hop,
    }
}

/// [`decrypt_failure`] for a route given as its node ids and the onion's session key.
pub fn decrypt_failure_for_route<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    route: &[PublicKey],
    returned: &ReturnedFailure,
) -> Result<DecryptedFailure, KeyBlindingError> {
    let secrets: Vec<HopSharedSecret> = route_keys(secp, session_key, route)?
        .into_iter()
        .map(|k| k.shared_secret)
        .collect();
    Ok(decrypt_failure(&secrets, returned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onion::failure::FailureMessage;

    fn secrets(n: u8) -> Vec<HopSharedSecret> {
        (1..=n).map(|i| HopSharedSecret([i; 32])).collect()
    }

    fn returned_from(
        ss: &[HopSharedSecret],
        erring: usize,
        failure: &Failure,
        attribution: bool,
    ) -> ReturnedFailure {
        let hold = |i: usize| attribution.then_some(i as u32 + 1);
        let mut returned =
            create_failure(&ss[erring], failure, FAILURE_PADDED_LEN, hold(erring)).unwrap();
        for i in (0..erring).rev() {
            returned = forward_failure(&ss[i], &returned, hold(i));
        }
        returned
    }

    #[test]
    fn padding_reaches_the_padded_length() {
        let ss = HopSharedSecret([1; 32]);
        let packet = failure_packet(&ss, &[0x20, 0x02], FAILURE_PADDED_LEN).unwrap();
        assert_eq!(packet.len(), 32 + 2 + 2 + 2 + 254);
        assert_eq!(&packet[32..38], &[0x00, 0x02, 0x20, 0x02, 0x00, 0xfe]);
        let long = vec![0x11; 300];
        let packet = failure_packet(&ss, &long, FAILURE_PADDED_LEN).unwrap();
        assert_eq!(
            packet.len(),
            32 + 2 + 300 + 2,
            "no padding beyond the message"
        );
        let err = failure_packet(&ss, &vec![0; 70_000], FAILURE_PADDED_LEN).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failuremsg length 70000 exceeds the maximum 65535"
        );
    }

    #[test]
    fn each_hop_is_named_with_and_without_attribution() {
        let ss = secrets(5);
        let failure = Failure::from(FailureMessage::UnknownNextPeer);
        for erring in 0..5 {
            for attribution in [false, true] {
                let returned = returned_from(&ss, erring, &failure, attribution);
                let decrypted = decrypt_failure(&ss, &returned);
                let hop = decrypted.failing_hop.clone().unwrap();
                assert_eq!(hop.index, erring);
                assert_eq!(hop.failure, Ok(failure.clone()));
                assert_eq!(hop.failure_message, vec![0x40, 0x0a]);
                assert_eq!(decrypted.blamed_hop, Some(erring));
                if attribution {
                    let outcome = decrypted.attribution.unwrap();
                    let expected: Vec<u32> = (1..=erring as u32 + 1).collect();
                    assert_eq!(outcome.hold_times, expected);
                    assert_eq!(outcome.first_invalid_hop, None);
                } else {
                    assert_eq!(decrypted.attribution, None);
                }
            }
        }
    }

    #[test]
    fn garbage_is_blamed_through_attribution() {
        let ss = secrets(4);
        let failure = Failure::from(FailureMessage::TemporaryNodeFailure);
        // The packet from hop 3 is corrupted on its way to hop 2, which adds its attribution
        // over what it received: no HMAC matches, hops 0..=2 verify and hop 3 does not, so the
        // blame falls on the pair (2, 3) and is reported as hop 3.
        let mut returned = create_failure(&ss[3], &failure, FAILURE_PADDED_LEN, Some(4)).unwrap();
        returned.reason[40] ^= 0xff;
        for i in (0..3).rev() {
            returned = forward_failure(&ss[i], &returned, Some(i as u32 + 1));
        }
        let decrypted = decrypt_failure(&ss, &returned);
        assert_eq!(decrypted.failing_hop, None);
        let outcome = decrypted.attribution.unwrap();
        assert_eq!(outcome.hold_times, vec![1, 2, 3]);
        assert_eq!(outcome.first_invalid_hop, Some(3));
        assert_eq!(decrypted.blamed_hop, Some(3));

        // Without attribution nothing can be said.
        let decrypted = decrypt_failure(
            &ss,
            &ReturnedFailure {
                reason: vec![0xab; 292],
                attribution_data: None,
            },
        );
        assert_eq!(decrypted.failing_hop, None);
        assert_eq!(decrypted.blamed_hop, None);
    }

    #[test]
    fn short_or_overrunning_packets_do_not_panic() {
        let ss = secrets(3);
        for len in [0usize, 1, 31, 32, 33, 34] {
            let decrypted = decrypt_failure(
                &ss,
                &ReturnedFailure {
                    reason: vec![0; len],
                    attribution_data: Some(AttributionData::zeroed()),
                },
            );
            assert_eq!(decrypted.failing_hop, None);
            assert_eq!(decrypted.blamed_hop, Some(0));
        }
        // A hop whose HMAC is valid but whose failure_len overruns its packet.
        let mut body = vec![0x01, 0x00, 0x20];
        body.resize(40, 0);
        let mut packet = hmac_sha256(&ss[1].derive_key(KeyType::Um), &[&body]).to_vec();
        packet.extend_from_slice(&body);
        apply_ammag(&ss[1], &mut packet);
        apply_ammag(&ss[0], &mut packet);
        let decrypted = decrypt_failure(
            &ss,
            &ReturnedFailure {
                reason: packet,
                attribution_data: None,
            },
        );
        let hop = decrypted.failing_hop.unwrap();
        assert_eq!(hop.index, 1);
        assert!(hop.failure_message.is_empty());
        assert_eq!(
            hop.failure.unwrap_err().to_string(),
            "failuremsg: needed 256 bytes but only 38 remain"
        );
    }
}
