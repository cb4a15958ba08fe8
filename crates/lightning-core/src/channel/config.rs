//! [`ChannelConfig`]: the limits we impose on the peer and the ones we accept from it.

/// Our channel parameters and the bounds we accept for the peer's. The defaults are safe
/// for mainnet-like use and compatible with LDK's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Our `dust_limit_satoshis` (at least 354, BOLT 3 "Dust Limits").
    pub dust_limit_satoshis: u64,
    /// The reserve we ask the peer to keep, in millionths of the funding amount (the
    /// resulting `channel_reserve_satoshis` is never below either side's dust limit).
    pub reserve_proportional_millionths: u64,
    /// Our `htlc_minimum_msat`: the smallest HTLC we accept.
    pub htlc_minimum_msat: u64,
    /// Our `max_accepted_htlcs` (at most 483).
    pub max_accepted_htlcs: u16,
    /// Our `max_htlc_value_in_flight_msat`, in percent of the funding amount (1 to 100).
    pub max_htlc_value_in_flight_percent: u8,
    /// The `to_self_delay` we impose on the peer's outputs.
    pub to_self_delay: u16,
    /// The largest `to_self_delay` we accept on our own outputs.
    pub max_to_self_delay: u16,
    /// The `minimum_depth` we ask for as fundee.
    pub minimum_depth: u32,
    /// The largest `minimum_depth` we accept as funder.
    pub max_minimum_depth: u32,
    /// The most msat of dust HTLCs (trimmed in either commitment) we let the channel hold.
    pub max_dust_htlc_exposure_msat: u64,
    /// The lowest `feerate_per_kw` we accept (253 is the relay floor).
    pub min_feerate_per_kw: u32,
    /// The highest `feerate_per_kw` we accept.
    pub max_feerate_per_kw: u32,
    /// The smallest channel we accept as fundee.
    pub min_funding_satoshis: u64,
    /// The largest channel we accept (2^24 - 1 without `option_support_large_channel`).
    pub max_funding_satoshis: u64,
    /// The largest `htlc_minimum_msat` the peer may impose on us.
    pub max_htlc_minimum_msat: u64,
    /// The largest reserve the peer may impose on us, in millionths of the funding amount.
    pub max_reserve_proportional_millionths: u64,
    /// Whether to offer `option_anchors_zero_fee_htlc_tx` as funder.
    pub negotiate_anchors: bool,
    /// Whether to send our shutdown script in `upfront_shutdown_script` (when the peer
    /// supports `option_upfront_shutdown_script`).
    pub commit_upfront_shutdown_script: bool,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            dust_limit_satoshis: 354,
            reserve_proportional_millionths: 10_000,
            htlc_minimum_msat: 1,
            max_accepted_htlcs: 50,
            max_htlc_value_in_flight_percent: 100,
            to_self_delay: 144,
            max_to_self_delay: 2016,
            minimum_depth: 3,
            max_minimum_depth: 144,
            max_dust_htlc_exposure_msat: 5_000_000,
            min_feerate_per_kw: 253,
            max_feerate_per_kw: 100_000,
            min_funding_satoshis: 1000,
            max_funding_satoshis: (1 << 24) - 1,
            max_htlc_minimum_msat: 1_000_000,
            max_reserve_proportional_millionths: 200_000,
            negotiate_anchors: false,
            commit_upfront_shutdown_script: true,
        }
    }
}

impl ChannelConfig {
    /// The `channel_reserve_satoshis` we ask of the peer for a channel of `funding_satoshis`:
    /// our proportion, at least both dust limits (BOLT 2: reserve >= each dust limit).
    pub fn reserve_for(&self, funding_satoshis: u64, their_dust_limit_satoshis: u64) -> u64 {
        let proportional =
            funding_satoshis.saturating_mul(self.reserve_proportional_millionths) / 1_000_000;
        proportional
            .max(self.dust_limit_satoshis)
            .max(their_dust_limit_satoshis)
    }

    /// Our `max_htlc_value_in_flight_msat` for a channel of `funding_satoshis`.
    pub fn max_in_flight_for(&self, funding_satoshis: u64) -> u64 {
        let percent = u64::from(self.max_htlc_value_in_flight_percent.clamp(1, 100));
        funding_satoshis.saturating_mul(10 * percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reserve_is_one_percent_at_least_dust() {
        let c = ChannelConfig::default();
        assert_eq!(c.reserve_for(1_000_000, 354), 10_000);
        assert_eq!(c.reserve_for(20_000, 354), 354);
        assert_eq!(c.reserve_for(20_000, 600), 600);
        assert_eq!(c.max_in_flight_for(1_000_000), 1_000_000_000);
    }
}
