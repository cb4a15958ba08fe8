//! BOLT 3 expected weights, fees and the dust-trimming rule ("Fee Calculation", "Trimmed
//! Outputs").
//!
//! All fees are `feerate_per_kw * weight / 1000`, rounded down. With `option_anchors` the
//! HTLC transactions carry no fee, so only the dust limit decides whether an HTLC is trimmed.

use super::{ChannelType, Htlc, HtlcDirection};

/// Expected weight of a commitment transaction with no HTLC outputs (no `option_anchors`).
pub const COMMITMENT_BASE_WEIGHT: u64 = 724;
/// Expected weight of a commitment transaction with no HTLC outputs (`option_anchors`).
pub const COMMITMENT_BASE_WEIGHT_ANCHORS: u64 = 1124;
/// Expected weight added by each untrimmed HTLC output.
pub const COMMITMENT_WEIGHT_PER_HTLC: u64 = 172;
/// Expected weight of an HTLC-timeout transaction (no `option_anchors`).
pub const HTLC_TIMEOUT_WEIGHT: u64 = 663;
/// Expected weight of an HTLC-timeout transaction (`option_anchors`).
pub const HTLC_TIMEOUT_WEIGHT_ANCHORS: u64 = 666;
/// Expected weight of an HTLC-success transaction (no `option_anchors`).
pub const HTLC_SUCCESS_WEIGHT: u64 = 703;
/// Expected weight of an HTLC-success transaction (`option_anchors`).
pub const HTLC_SUCCESS_WEIGHT_ANCHORS: u64 = 706;
/// Value of each anchor output, in satoshis.
pub const ANCHOR_OUTPUT_SATOSHIS: u64 = 330;

/// `feerate_per_kw * weight / 1000`, rounded down (saturating: never wraps).
pub fn fee_for_weight(feerate_per_kw: u32, weight: u64) -> u64 {
    u64::from(feerate_per_kw).saturating_mul(weight) / 1000
}

/// Expected weight of a commitment transaction with `untrimmed_htlcs` HTLC outputs.
pub fn commitment_weight(untrimmed_htlcs: usize, channel_type: ChannelType) -> u64 {
    let base = if channel_type.has_anchors() {
        COMMITMENT_BASE_WEIGHT_ANCHORS
    } else {
        COMMITMENT_BASE_WEIGHT
    };
    let htlcs = u64::try_from(untrimmed_htlcs).unwrap_or(u64::MAX);
    base.saturating_add(COMMITMENT_WEIGHT_PER_HTLC.saturating_mul(htlcs))
}

/// The base fee of a commitment transaction, paid by the funder.
pub fn commitment_base_fee(
    feerate_per_kw: u32,
    untrimmed_htlcs: usize,
    channel_type: ChannelType,
) -> u64 {
    fee_for_weight(
        feerate_per_kw,
        commitment_weight(untrimmed_htlcs, channel_type),
    )
}

/// The fee of an HTLC-timeout transaction: 0 with `option_anchors`.
pub fn htlc_timeout_fee(feerate_per_kw: u32, channel_type: ChannelType) -> u64 {
    if channel_type.has_anchors() {
        0
    } else {
        fee_for_weight(feerate_per_kw, HTLC_TIMEOUT_WEIGHT)
    }
}

/// The fee of an HTLC-success transaction: 0 with `option_anchors`.
pub fn htlc_success_fee(feerate_per_kw: u32, channel_type: ChannelType) -> u64 {
    if channel_type.has_anchors() {
        0
    } else {
        fee_for_weight(feerate_per_kw, HTLC_SUCCESS_WEIGHT)
    }
}

/// The fee of the second-stage transaction spending an HTLC output: HTLC-timeout for an
/// offered HTLC, HTLC-success for a received one.
pub fn htlc_tx_fee(
    direction: HtlcDirection,
    feerate_per_kw: u32,
    channel_type: ChannelType,
) -> u64 {
    match direction {
        HtlcDirection::Offered => htlc_timeout_fee(feerate_per_kw, channel_type),
        HtlcDirection::Received => htlc_success_fee(feerate_per_kw, channel_type),
    }
}

/// Whether `htlc` is trimmed from a commitment whose owner has `dust_limit_satoshis`: its
/// amount in whole satoshis minus its second-stage fee is below the dust limit.
pub fn is_htlc_trimmed(
    htlc: &Htlc,
    feerate_per_kw: u32,
    dust_limit_satoshis: u64,
    channel_type: ChannelType,
) -> bool {
    let fee = htlc_tx_fee(htlc.direction, feerate_per_kw, channel_type);
    htlc.amount_satoshis() < dust_limit_satoshis.saturating_add(fee)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PaymentHash;

    fn htlc(direction: HtlcDirection, amount_msat: u64) -> Htlc {
        Htlc {
            direction,
            amount_msat,
            cltv_expiry: 500,
            payment_hash: PaymentHash([0; 32]),
        }
    }

    #[test]
    fn fee_calculation_example() {
        // BOLT 3 "Fee Calculation" example: feerate 5000, dust limit 546, offered HTLCs of 5000
        // and 1000 sat, received HTLCs of 7000 and 800 sat.
        let t = ChannelType::StaticRemoteKey;
        assert_eq!(htlc_timeout_fee(5000, t), 3315);
        assert_eq!(htlc_success_fee(5000, t), 3515);
        let htlcs = [
            htlc(HtlcDirection::Offered, 5_000_000),
            htlc(HtlcDirection::Offered, 1_000_000),
            htlc(HtlcDirection::Received, 7_000_000),
            htlc(HtlcDirection::Received, 800_000),
        ];
        let trimmed: Vec<bool> = htlcs
            .iter()
            .map(|h| is_htlc_trimmed(h, 5000, 546, t))
            .collect();
        assert_eq!(trimmed, [false, true, false, true]);
        assert_eq!(commitment_weight(2, t), 1068);
        assert_eq!(commitment_base_fee(5000, 2, t), 5340);
    }

    #[test]
    fn anchors_weights_and_zero_htlc_fees() {
        let t = ChannelType::AnchorsZeroFeeHtlcTx;
        assert_eq!(commitment_weight(0, t), 1124);
        assert_eq!(commitment_weight(3, t), 1124 + 3 * 172);
        assert_eq!(htlc_timeout_fee(u32::MAX, t), 0);
        assert_eq!(htlc_success_fee(u32::MAX, t), 0);
    }

    #[test]
    fn trimming_edge_is_exactly_at_the_dust_limit() {
        // Offered, feerate 1000: HTLC-timeout fee 663. 546 + 663 = 1209 sat is kept, one
        // satoshi less is trimmed; the msat part never counts.
        let t = ChannelType::StaticRemoteKey;
        assert!(!is_htlc_trimmed(
            &htlc(HtlcDirection::Offered, 1_209_000),
            1000,
            546,
            t
        ));
        assert!(is_htlc_trimmed(
            &htlc(HtlcDirection::Offered, 1_208_999),
            1000,
            546,
            t
        ));
        // Received: HTLC-success fee 703.
        assert!(!is_htlc_trimmed(
            &htlc(HtlcDirection::Received, 1_249_000),
            1000,
            546,
            t
        ));
        assert!(is_htlc_trimmed(
            &htlc(HtlcDirection::Received, 1_248_999),
            1000,
            546,
            t
        ));
        // Anchors: the dust limit alone.
        let a = ChannelType::AnchorsZeroFeeHtlcTx;
        assert!(!is_htlc_trimmed(
            &htlc(HtlcDirection::Received, 546_000),
            1000,
            546,
            a
        ));
        assert!(is_htlc_trimmed(
            &htlc(HtlcDirection::Received, 545_999),
            1000,
            546,
            a
        ));
    }

    #[test]
    fn huge_inputs_saturate_instead_of_wrapping() {
        let t = ChannelType::StaticRemoteKey;
        assert_eq!(commitment_weight(usize::MAX, t), u64::MAX);
        assert_eq!(
            commitment_base_fee(u32::MAX, usize::MAX, t),
            u64::MAX / 1000
        );
        assert!(is_htlc_trimmed(
            &htlc(HtlcDirection::Offered, u64::MAX),
            1,
            u64::MAX,
            t
        ));
    }
}
