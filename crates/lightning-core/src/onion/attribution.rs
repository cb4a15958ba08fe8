//! Attribution data (BOLT 4 "Returning Errors", `option_attribution_data`): hold times and
//! truncated HMACs that each hop on the way back adds to `update_fail_htlc` and
//! `update_fulfill_htlc`, so the origin can tell which hop tampered with a failure and how long
//! each hop held the HTLC.
//!
//! Layout (920 bytes): 20 big-endian `u32` hold times, then 210 four-byte HMACs. Seen by the
//! hop that is adding its data (node 0), node `x` (0..20, counted downstream) owns `20 - x`
//! consecutive HMACs; its slot `i` is the HMAC it computed assuming the erring node was
//! `19 - x - i` hops after it. Node 0's HMAC in slot `i` (distance `d = 19 - i`) covers the
//! return packet it received (before its own `ammag` layer), the first `d + 1` hold times, and
//! the slot-`i` HMAC of each node `1..=d`, the ones that node computed for the same erring
//! node.

use core::fmt;

use super::keys::{apply_stream, hmac_sha256, HopSharedSecret, KeyType};
use crate::ser::{DecodeError, Reader};

/// The most hops attribution data covers.
pub const MAX_ATTRIBUTED_HOPS: usize = 20;
/// The length of one hold time.
pub const HOLD_TIME_LEN: usize = 4;
/// The length of one truncated HMAC.
pub const TRUNCATED_HMAC_LEN: usize = 4;
const HOLD_TIMES_LEN: usize = MAX_ATTRIBUTED_HOPS * HOLD_TIME_LEN;
const HMAC_COUNT: usize = MAX_ATTRIBUTED_HOPS * (MAX_ATTRIBUTED_HOPS + 1) / 2;
/// The length of `attribution_data`.
pub const ATTRIBUTION_DATA_LEN: usize = HOLD_TIMES_LEN + HMAC_COUNT * TRUNCATED_HMAC_LEN;

/// The `attribution_data` TLV of `update_fail_htlc` and `update_fulfill_htlc`, as it travels
/// (obfuscated by every hop's `ammagext` stream).
#[derive(Clone, PartialEq, Eq)]
pub struct AttributionData(pub [u8; ATTRIBUTION_DATA_LEN]);

impl fmt::Debug for AttributionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AttributionData(")?;
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// Byte offset of the hold time of node `node`.
fn hold_time_offset(node: usize) -> usize {
    node * HOLD_TIME_LEN
}

/// Byte offset of node `node`'s HMAC in slot `slot` (`slot < 20 - node`).
fn hmac_offset(node: usize, slot: usize) -> usize {
    let before = node * MAX_ATTRIBUTED_HOPS - node * node.saturating_sub(1) / 2;
    HOLD_TIMES_LEN + (before + slot) * TRUNCATED_HMAC_LEN
}

fn read4(bytes: &[u8; ATTRIBUTION_DATA_LEN], offset: usize) -> [u8; 4] {
    let mut out = [0u8; 4];
    for (o, b) in out.iter_mut().zip(bytes.iter().skip(offset)) {
        *o = *b;
    }
    out
}

fn write4(bytes: &mut [u8; ATTRIBUTION_DATA_LEN], offset: usize, value: [u8; 4]) {
    for (o, b) in bytes.iter_mut().skip(offset).zip(value) {
        *o = b;
    }
}

/// The 20 truncated HMACs node 0 computes over `packet` and the rest of `plain` (whose node-0
/// slots are ignored), in slot order.
fn node_hmacs(
    um: &[u8; 32],
    packet: &[u8],
    plain: &[u8; ATTRIBUTION_DATA_LEN],
    slots: core::ops::Range<usize>,
) -> Vec<[u8; 4]> {
    slots
        .map(|slot| {
            let distance = MAX_ATTRIBUTED_HOPS - 1 - slot;
            let hold_times = plain
                .get(..(distance + 1) * HOLD_TIME_LEN)
                .unwrap_or_default();
            let downstream: Vec<u8> = (1..=distance)
                .flat_map(|node| read4(plain, hmac_offset(node, slot)))
                .collect();
            let full = hmac_sha256(um, &[packet, hold_times, &downstream]);
            [full[0], full[1], full[2], full[3]]
        })
        .collect()
}

impl AttributionData {
    /// All-zero data: what a hop starts from when nothing came from downstream.
    pub fn zeroed() -> Self {
        AttributionData([0; ATTRIBUTION_DATA_LEN])
    }

    /// Decodes the TLV value, which must be exactly [`ATTRIBUTION_DATA_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let data = reader.read_array("attribution_data")?;
        reader.finish("attribution_data")?;
        Ok(AttributionData(data))
    }

    /// Adds this hop's hold time (in units of 100 ms) and HMACs to the data received from
    /// downstream (`None`: start from zeros), then obfuscates the result with `ammagext`.
    ///
    /// `packet` is the return packet as this hop received it, before its own `ammag` layer (at
    /// the erring hop: the plain packet; for a fulfilled HTLC: empty).
    pub fn add_hop(
        previous: Option<&AttributionData>,
        packet: &[u8],
        hold_time: u32,
        shared_secret: &HopSharedSecret,
    ) -> AttributionData {
        let zero = AttributionData::zeroed();
        let previous = &previous.unwrap_or(&zero).0;
        let mut plain = [0u8; ATTRIBUTION_DATA_LEN];
        write4(&mut plain, hold_time_offset(0), hold_time.to_be_bytes());
        for node in 1..MAX_ATTRIBUTED_HOPS {
            let held = read4(previous, hold_time_offset(node - 1));
            write4(&mut plain, hold_time_offset(node), held);
            // Node `node` was node `node - 1` downstream; its slot 0 there (the farthest
            // erring position) no longer fits and is dropped.
            for slot in 0..MAX_ATTRIBUTED_HOPS - node {
                let hmac = read4(previous, hmac_offset(node - 1, slot + 1));
                write4(&mut plain, hmac_offset(node, slot), hmac);
            }
        }
        let um = shared_secret.derive_key(KeyType::Um);
        let own = node_hmacs(&um, packet, &plain, 0..MAX_ATTRIBUTED_HOPS);
        for (slot, hmac) in own.into_iter().enumerate() {
            write4(&mut plain, hmac_offset(0, slot), hmac);
        }
        apply_stream(&shared_secret.derive_key(KeyType::AmmagExt), &mut plain);
        AttributionData(plain)
    }

    /// The origin's side of [`AttributionData::add_hop`] for the hop that shares
    /// `shared_secret`, with `remaining_hops` hops from it to the end of the route (itself
    /// included): checks its HMACs for every position the erring node can have, and returns
    /// its hold time and the data as the next hop sent it (the slots this hop dropped are
    /// zero), or `None` when an HMAC does not match.
    pub fn peel(
        &self,
        packet: &[u8],
        shared_secret: &HopSharedSecret,
        remaining_hops: usize,
    ) -> Option<(u32, AttributionData)> {
        let mut plain = self.0;
        apply_stream(&shared_secret.derive_key(KeyType::AmmagExt), &mut plain);
        let checked = remaining_hops.clamp(1, MAX_ATTRIBUTED_HOPS);
        let um = shared_secret.derive_key(KeyType::Um);
        let first = MAX_ATTRIBUTED_HOPS - checked;
        let expected = node_hmacs(&um, packet, &plain, first..MAX_ATTRIBUTED_HOPS);
        let mut valid = true;
        for (slot, hmac) in (first..MAX_ATTRIBUTED_HOPS).zip(expected) {
            valid &=
                bitcoin::hashes::cmp::fixed_time_eq(&read4(&plain, hmac_offset(0, slot)), &hmac);
        }
        if !valid {
            return None;
        }
        let hold_time = u32::from_be_bytes(read4(&plain, hold_time_offset(0)));
        let mut next = [0u8; ATTRIBUTION_DATA_LEN];
        for node in 1..MAX_ATTRIBUTED_HOPS {
            write4(
                &mut next,
                hold_time_offset(node - 1),
                read4(&plain, hold_time_offset(node)),
            );
            for slot in 0..MAX_ATTRIBUTED_HOPS - node {
                let hmac = read4(&plain, hmac_offset(node, slot));
                write4(&mut next, hmac_offset(node - 1, slot + 1), hmac);
            }
        }
        Some((hold_time, AttributionData(next)))
    }
}

/// What the origin learned from attribution data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributionOutcome {
    /// Hold times (units of 100 ms) of the hops whose HMACs verified, in route order.
    pub hold_times: Vec<u32>,
    /// The first hop whose HMACs did not verify: it, or the hop before it, altered the data
    /// (or it does not support `option_attribution_data`).
    pub first_invalid_hop: Option<usize>,
}

/// Reads the attribution data of an `update_fulfill_htlc` at the origin: the hold time of each
/// hop in route order, up to the first hop whose HMACs do not verify.
pub fn read_fulfill_attribution(
    shared_secrets: &[HopSharedSecret],
    data: &AttributionData,
) -> AttributionOutcome {
    let mut outcome = AttributionOutcome::default();
    let mut current = data.clone();
    for (index, ss) in shared_secrets.iter().enumerate().take(MAX_ATTRIBUTED_HOPS) {
        match current.peel(&[], ss, shared_secrets.len() - index) {
            Some((hold_time, next)) => {
                outcome.hold_times.push(hold_time);
                current = next;
            }
            None => {
                outcome.first_invalid_hop = Some(index);
                break;
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes() {
        assert_eq!(ATTRIBUTION_DATA_LEN, 920);
        assert_eq!(hmac_offset(0, 0), 80);
        assert_eq!(hmac_offset(1, 0), 80 + 20 * 4);
        assert_eq!(hmac_offset(2, 0), 80 + 39 * 4);
        assert_eq!(hmac_offset(19, 0), 920 - 4);
    }

    #[test]
    fn decode_checks_the_length() {
        assert!(AttributionData::decode(&[0; 920]).is_ok());
        assert_eq!(
            AttributionData::decode(&[0; 919]).unwrap_err().to_string(),
            "attribution_data: needed 920 bytes but only 919 remain"
        );
        assert_eq!(
            AttributionData::decode(&[0; 921]),
            Err(DecodeError::TrailingBytes {
                field: "attribution_data",
                extra: 1
            })
        );
    }

    fn secrets(n: u8) -> Vec<HopSharedSecret> {
        (1..=n).map(|i| HopSharedSecret([i; 32])).collect()
    }

    #[test]
    fn fulfill_round_trip_and_tampering() {
        let ss = secrets(4);
        let mut data: Option<AttributionData> = None;
        for (i, s) in ss.iter().enumerate().rev() {
            data = Some(AttributionData::add_hop(
                data.as_ref(),
                &[],
                10 + i as u32,
                s,
            ));
        }
        let data = data.unwrap();
        let outcome = read_fulfill_attribution(&ss, &data);
        assert_eq!(outcome.hold_times, vec![10, 11, 12, 13]);
        assert_eq!(outcome.first_invalid_hop, None);

        // Hop 2 ignores what came from downstream and starts again from zeros.
        let mut data: Option<AttributionData> = None;
        for (i, s) in ss.iter().enumerate().rev() {
            let previous = if i == 2 { None } else { data.as_ref() };
            data = Some(AttributionData::add_hop(previous, &[], 1, s));
        }
        let outcome = read_fulfill_attribution(&ss, &data.unwrap());
        assert_eq!(outcome.hold_times, vec![1, 1, 1]);
        assert_eq!(outcome.first_invalid_hop, Some(3));
    }

    #[test]
    fn a_flipped_bit_is_caught_at_the_hop_that_flipped_it() {
        let ss = secrets(5);
        for tamper_before in 0..5 {
            for byte in [0usize, 157, 500, 919] {
                let mut data: Option<AttributionData> = None;
                for (i, s) in ss.iter().enumerate().rev() {
                    let mut next = AttributionData::add_hop(data.as_ref(), &[], 1, s);
                    if i == tamper_before {
                        // Hop i-1 changes what hop i sent it.
                        next.0[byte] ^= 0x01;
                    }
                    data = Some(next);
                }
                let outcome = read_fulfill_attribution(&ss, &data.unwrap());
                // A bit in a dropped slot or unused region may go unnoticed; otherwise the
                // tampered hop is the first to fail.
                if let Some(bad) = outcome.first_invalid_hop {
                    assert_eq!(bad, tamper_before, "byte {byte}");
                }
                if byte < 4 || (156..160).contains(&byte) {
                    assert_eq!(
                        outcome.first_invalid_hop,
                        Some(tamper_before),
                        "byte {byte}"
                    );
                }
            }
        }
    }
}
