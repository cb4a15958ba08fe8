//! Building an onion for a route (BOLT 4 "Packet Construction" and "Filler Generation").

use core::fmt;

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing, Verification};

use super::keys::{
    apply_stream, hmac_sha256, route_keys, stream, HopKeys, HopSharedSecret, KeyBlindingError,
    KeyType,
};
use super::packet::{OnionPacket, HMAC_LEN, HOP_PAYLOADS_LEN, ONION_VERSION};
use crate::ser::{write_bigsize, BigSize};

/// The smallest `hop_payload` length: lengths 0 (legacy) and 1 are reserved.
pub const MIN_PAYLOAD_LEN: usize = 2;

/// One hop of the route the origin builds an onion for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnionHop {
    /// The hop's node id.
    pub node_id: PublicKey,
    /// The hop's `payload` TLV stream, without its BigSize length prefix.
    pub payload: Vec<u8>,
}

/// A freshly built onion and the per-hop keys the origin keeps to read a returned failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstructedOnion {
    /// The packet to send to the first hop.
    pub packet: OnionPacket,
    /// Each hop's ephemeral key and shared secret, in route order.
    pub hop_keys: Vec<HopKeys>,
}

impl ConstructedOnion {
    /// The shared secrets in route order (what [`super::error_packet::decrypt_failure`] needs).
    pub fn shared_secrets(&self) -> Vec<HopSharedSecret> {
        self.hop_keys.iter().map(|k| k.shared_secret).collect()
    }
}

/// Why an onion could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConstructError {
    /// The route has no hops.
    EmptyRoute,
    /// A payload is shorter than [`MIN_PAYLOAD_LEN`].
    PayloadTooShort {
        /// The hop's index in the route.
        hop: usize,
        /// The payload's length.
        length: usize,
    },
    /// The hop payloads (each with its length prefix and HMAC) do not fit in `hop_payloads`.
    RouteTooLong {
        /// The bytes the route needs.
        needed: usize,
        /// The bytes `hop_payloads` holds.
        limit: usize,
    },
    /// An ephemeral key could not be blinded.
    KeyBlinding(KeyBlindingError),
}

impl fmt::Display for ConstructError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstructError::EmptyRoute => f.write_str("route has no hops"),
            ConstructError::PayloadTooShort { hop, length } => write!(
                f,
                "hop {hop} payload length {length} is below the minimum {MIN_PAYLOAD_LEN}"
            ),
            ConstructError::RouteTooLong { needed, limit } => write!(
                f,
                "hop payloads need {needed} bytes but hop_payloads holds {limit}"
            ),
            ConstructError::KeyBlinding(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ConstructError {}

impl From<KeyBlindingError> for ConstructError {
    fn from(err: KeyBlindingError) -> Self {
        ConstructError::KeyBlinding(err)
    }
}

/// The bytes one hop takes in `hop_payloads`: BigSize length, payload and HMAC (the spec's
/// `shift_size`).
pub fn hop_data_len(payload_len: usize) -> usize {
    BigSize::encoded_len(payload_len as u64) + payload_len + HMAC_LEN
}

/// Builds the onion for `hops` from `session_key`, committing to `associated_data` (the payment
/// hash for a payment onion).
///
/// The session key must be fresh random for every onion; it is an argument so that the core
/// stays deterministic.
pub fn construct_onion<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    hops: &[OnionHop],
    associated_data: &[u8],
) -> Result<ConstructedOnion, ConstructError> {
    if hops.is_empty() {
        return Err(ConstructError::EmptyRoute);
    }
    if let Some((hop, h)) = hops
        .iter()
        .enumerate()
        .find(|(_, h)| h.payload.len() < MIN_PAYLOAD_LEN)
    {
        return Err(ConstructError::PayloadTooShort {
            hop,
            length: h.payload.len(),
        });
    }
    let shifts: Vec<usize> = hops.iter().map(|h| hop_data_len(h.payload.len())).collect();
    let needed: usize = shifts.iter().sum();
    if needed > HOP_PAYLOADS_LEN {
        return Err(ConstructError::RouteTooLong {
            needed,
            limit: HOP_PAYLOADS_LEN,
        });
    }
    let node_ids: Vec<PublicKey> = hops.iter().map(|h| h.node_id).collect();
    let hop_keys = route_keys(secp, session_key, &node_ids)?;

    let filler = generate_filler(&hop_keys, &shifts);
    let pad_key = hmac_sha256(KeyType::Pad.label(), &[&session_key.secret_bytes()]);
    let mut mix = [0u8; HOP_PAYLOADS_LEN];
    apply_stream(&pad_key, &mut mix);

    let mut next_hmac = [0u8; HMAC_LEN];
    let last = hops.len() - 1;
    for (index, ((hop, keys), shift)) in hops.iter().zip(&hop_keys).zip(&shifts).enumerate().rev() {
        // Every shift is at most HOP_PAYLOADS_LEN: their sum was checked above.
        mix.copy_within(0..HOP_PAYLOADS_LEN - shift, *shift);
        let mut hop_data = Vec::with_capacity(*shift);
        write_bigsize(&mut hop_data, hop.payload.len() as u64);
        hop_data.extend_from_slice(&hop.payload);
        hop_data.extend_from_slice(&next_hmac);
        for (slot, byte) in mix.iter_mut().zip(&hop_data) {
            *slot = *byte;
        }
        apply_stream(&keys.shared_secret.derive_key(KeyType::Rho), &mut mix);
        if index == last {
            let start = HOP_PAYLOADS_LEN - filler.len();
            for (slot, byte) in mix.iter_mut().skip(start).zip(&filler) {
                *slot = *byte;
            }
        }
        let mu = keys.shared_secret.derive_key(KeyType::Mu);
        next_hmac = hmac_sha256(&mu, &[&mix, associated_data]);
    }

    let first = hop_keys.first().ok_or(ConstructError::EmptyRoute)?;
    Ok(ConstructedOnion {
        packet: OnionPacket {
            version: ONION_VERSION,
            public_key: first.ephemeral_key.serialize(),
            hop_payloads: mix,
            hmac: next_hmac,
        },
        hop_keys,
    })
}

/// The filler: what the hops before the last one shift into the end of `hop_payloads`, as each
/// of them will see it, so that the origin can compute the HMACs they check.
///
/// Each forwarding hop appends `shift` zero bytes and XORs its `rho` stream over the packet; the
/// filler after hop `i` is therefore the previous filler followed by `shift_i` zeros, XORed
/// with that hop's stream from offset `1300 - previous filler length`.
fn generate_filler(hop_keys: &[HopKeys], shifts: &[usize]) -> Vec<u8> {
    let forwarding = hop_keys.len().saturating_sub(1);
    let mut filler = Vec::new();
    for (keys, shift) in hop_keys.iter().zip(shifts).take(forwarding) {
        let previous = filler.len();
        filler.resize(previous + shift, 0);
        let rho = keys.shared_secret.derive_key(KeyType::Rho);
        let bytes = stream(&rho, HOP_PAYLOADS_LEN + shift);
        for (f, s) in filler
            .iter_mut()
            .zip(bytes.iter().skip(HOP_PAYLOADS_LEN - previous))
        {
            *f ^= s;
        }
    }
    filler
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(byte: u8, payload_len: usize) -> OnionHop {
        let secp = crate::secp::ctx();
        let sk = SecretKey::from_slice(&[byte; 32]).unwrap();
        OnionHop {
            node_id: PublicKey::from_secret_key(&secp, &sk),
            payload: vec![0x01; payload_len],
        }
    }

    #[test]
    fn shift_size_follows_the_bigsize_length() {
        assert_eq!(hop_data_len(2), 1 + 2 + 32);
        assert_eq!(hop_data_len(252), 1 + 252 + 32);
        assert_eq!(hop_data_len(253), 3 + 253 + 32);
    }

    #[test]
    fn bad_routes_are_typed_errors() {
        let secp = crate::secp::ctx();
        let session = SecretKey::from_slice(&[0x41; 32]).unwrap();
        assert_eq!(
            construct_onion(&secp, &session, &[], &[]),
            Err(ConstructError::EmptyRoute)
        );
        let err = construct_onion(&secp, &session, &[hop(1, 10), hop(2, 1)], &[]).unwrap_err();
        assert_eq!(err, ConstructError::PayloadTooShort { hop: 1, length: 1 });
        assert_eq!(
            err.to_string(),
            "hop 1 payload length 1 is below the minimum 2"
        );
        // 1265 + 3 + 32 = 1300 fits exactly; one more byte does not.
        assert!(construct_onion(&secp, &session, &[hop(1, 1265)], &[]).is_ok());
        let err = construct_onion(&secp, &session, &[hop(1, 1266)], &[]).unwrap_err();
        assert_eq!(
            err,
            ConstructError::RouteTooLong {
                needed: 1301,
                limit: 1300
            }
        );
        assert_eq!(
            err.to_string(),
            "hop payloads need 1301 bytes but hop_payloads holds 1300"
        );
    }

    #[test]
    fn filler_length_is_the_forwarding_hops_shifts() {
        let secp = crate::secp::ctx();
        let session = SecretKey::from_slice(&[0x41; 32]).unwrap();
        let ids = [hop(1, 2).node_id, hop(2, 2).node_id, hop(3, 2).node_id];
        let keys = route_keys(&secp, &session, &ids).unwrap();
        assert_eq!(generate_filler(&keys, &[40, 300, 50]).len(), 340);
        assert!(generate_filler(&keys[..1], &[40]).is_empty());
    }
}
