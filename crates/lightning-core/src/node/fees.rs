//! Feerates from the host: [`FeeEstimates`] come in through
//! [`NodeCore::fee_estimates_updated`]; as funder we follow them with `update_fee`, as fundee
//! we refuse a peer's `update_fee` far outside them ([`FeePolicy`]).
//!
//! Estimates are transient input, like the best block: kept in memory, never persisted. Until
//! the host gives some, the node behaves as without them: it never sends `update_fee` and
//! checks a peer's only against the static bounds of
//! [`ChannelConfig`](crate::channel::ChannelConfig).

use bitcoin::secp256k1::PublicKey;

use super::NodeCore;
use crate::channel::{Channel, ChannelPhase, Connection};
use crate::types::ChannelId;
use crate::wire::{Message, UpdateFee, Warning};

/// The host's fee estimates, in sat per 1000 weight, for three confirmation targets. Each is
/// floored at 253 (the relay minimum) when it comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeEstimates {
    /// Confirmation within the next few blocks (a deadline is near). The fundee's upper bound
    /// on a peer's `update_fee` is a multiple of it ([`FeePolicy::max_remote_urgent_multiple`]).
    pub urgent: u32,
    /// Confirmation within about a day's blocks without overpaying: what the commitment of a
    /// channel without anchors must pay, since it cannot be bumped.
    pub normal: u32,
    /// Confirmation whenever the chain is quiet (about a week): the floor anchor channels'
    /// commitments keep (they are bumped by CPFP when they must confirm), and the base of the
    /// fundee's lower bound on a non-anchor peer's `update_fee`.
    pub background: u32,
}

/// As funder, a raised feerate must still be affordable above the peer's reserve with this
/// many more HTLCs in the commitment (room for the peer's next HTLCs, which the funder pays
/// for), or it is not sent.
pub const UPDATE_FEE_HTLC_HEADROOM: usize = 4;

/// The relay floor every estimate is raised to (253 sat/kw is 1 sat/vB, rounded up).
pub const MIN_RELAY_FEERATE_PER_KW: u32 = 253;

impl FeeEstimates {
    /// The estimates with each target at least [`MIN_RELAY_FEERATE_PER_KW`].
    pub fn floored(self) -> FeeEstimates {
        FeeEstimates {
            urgent: self.urgent.max(MIN_RELAY_FEERATE_PER_KW),
            normal: self.normal.max(MIN_RELAY_FEERATE_PER_KW),
            background: self.background.max(MIN_RELAY_FEERATE_PER_KW),
        }
    }
}

/// When we send `update_fee` as funder and which of a peer's we refuse as fundee. Explicit
/// configuration with safe defaults; not persisted (set it with
/// [`NodeCore::set_fee_policy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    /// As funder, send `update_fee` when the target is at least this many percent above the
    /// channel's current feerate (default 20: a rise of a fifth).
    pub raise_threshold_percent: u32,
    /// As funder, send `update_fee` when the target is at least this many percent below the
    /// channel's current feerate (default 50: it halved). Lowering saves little and risks
    /// little, so it waits for a larger move.
    pub lower_threshold_percent: u32,
    /// As fundee of a channel without anchors, refuse a peer's `update_fee` below
    /// `background / min_remote_background_divisor` (default 2), unless it raises the current
    /// feerate. Anchor channels have no floor but the static minimum: their commitments are
    /// bumped by CPFP.
    pub min_remote_background_divisor: u32,
    /// As fundee, refuse a peer's `update_fee` above `urgent * max_remote_urgent_multiple`
    /// (default 10), unless it lowers the current feerate: a funder paying far more than the
    /// chain asks drains the channel into fees.
    pub max_remote_urgent_multiple: u32,
}

impl Default for FeePolicy {
    fn default() -> Self {
        FeePolicy {
            raise_threshold_percent: 20,
            lower_threshold_percent: 50,
            min_remote_background_divisor: 2,
            max_remote_urgent_multiple: 10,
        }
    }
}

impl FeePolicy {
    /// Whether a channel at `current` should move to `target`.
    pub fn should_update(&self, current: u32, target: u32) -> bool {
        let current = u64::from(current);
        let target = u64::from(target);
        let raise = current * u64::from(100 + self.raise_threshold_percent.min(1_000)) / 100;
        let lower = current * u64::from(100 - self.lower_threshold_percent.min(99)) / 100;
        (target > current && target >= raise) || (target < current && target <= lower)
    }

    /// The feerates a fundee accepts in a peer's `update_fee` given `estimates`: `(min, max)`
    /// (the static bounds of the channel's configuration apply as well).
    pub fn remote_bounds(&self, estimates: &FeeEstimates, anchors: bool) -> (u32, u32) {
        let min = if anchors {
            0
        } else {
            estimates.background / self.min_remote_background_divisor.max(1)
        };
        let max = estimates
            .urgent
            .saturating_mul(self.max_remote_urgent_multiple.max(1));
        (min, max)
    }
}

impl NodeCore {
    /// Sets when we send and refuse `update_fee` ([`FeePolicy`]; the default suits most
    /// nodes).
    pub fn set_fee_policy(&mut self, policy: FeePolicy) {
        self.fee_policy = policy;
    }

    /// The fee estimates the host last gave ([`NodeCore::fee_estimates_updated`]).
    pub fn fee_estimates(&self) -> Option<FeeEstimates> {
        self.fee_estimates
    }

    /// New fee estimates from the host (each floored at [`MIN_RELAY_FEERATE_PER_KW`]). Every
    /// channel we funded that is open and connected gets `update_fee` (and the
    /// `commitment_signed` that carries it) when its target moved past the
    /// [`FeePolicy`] thresholds from its current feerate: `normal` without anchors,
    /// `background` (at least the channel's minimum) with anchors. From now on a peer's
    /// `update_fee` is checked against [`FeePolicy::remote_bounds`]. Kept in memory only.
    pub fn fee_estimates_updated(&mut self, estimates: FeeEstimates) {
        self.fee_estimates = Some(estimates.floored());
        let ids: Vec<(PublicKey, ChannelId)> = self
            .peers
            .values()
            .filter(|p| p.connected && p.their_features.is_some())
            .flat_map(|p| p.channel_by_id.keys().map(move |id| (p.node_id, *id)))
            .collect();
        for (node_id, channel_id) in ids {
            self.maybe_update_fee(node_id, channel_id);
        }
    }

    /// The feerate our estimates ask of `channel`'s commitment, within its static bounds.
    fn target_feerate(&self, channel: &Channel) -> Option<u32> {
        let estimates = self.fee_estimates?;
        let config = &channel.config;
        let target = if channel.channel_type().has_anchors() {
            estimates.background.max(config.min_feerate_per_kw)
        } else {
            estimates.normal
        };
        Some(target.clamp(config.min_feerate_per_kw, config.max_feerate_per_kw))
    }

    /// As funder, sends `update_fee` on one channel if its target moved past the thresholds.
    /// Nothing without estimates, on a channel not open and connected, or one closing.
    pub(super) fn maybe_update_fee(&mut self, node_id: PublicKey, channel_id: ChannelId) {
        let Some(channel) = self.channel(&node_id, &channel_id) else {
            return;
        };
        if !channel.is_funder()
            || channel.phase() != ChannelPhase::Normal
            || channel.connection() != Connection::Connected
            || channel.is_shutting_down()
        {
            return;
        }
        let Some(target) = self.target_feerate(channel) else {
            return;
        };
        let Ok(spec) = channel.latest_remote_spec_with_pending() else {
            return;
        };
        if !self.fee_policy.should_update(spec.feerate_per_kw, target) {
            return;
        }
        // A raise must leave room for the peer to add HTLCs (LDK keeps the same headroom
        // before its own update_fee); otherwise wait for the next estimates.
        if target > spec.feerate_per_kw
            && !channel.affords_feerate(target, UPDATE_FEE_HTLC_HEADROOM)
        {
            return;
        }
        // A feerate we cannot afford is refused by the channel (Ignore): nothing is sent, and
        // the next estimates try again.
        let _ = self.with_channel(node_id, channel_id, |entry| {
            entry.channel.update_fee(target)
        });
    }

    /// As fundee, checks a peer's `update_fee` against our estimates: outside
    /// [`FeePolicy::remote_bounds`] (and not a move toward them from the current feerate) it
    /// is refused with a BOLT 1 `warning` and a disconnection, which drops the unsigned update
    /// (BOLT 2: the receiver MAY "send a warning and close the connection"); the channel
    /// stays open. Returns whether the message may go on to the channel, whose own checks
    /// (the static bounds, the funder's balance) still apply.
    pub(super) fn check_remote_update_fee(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        msg: &UpdateFee,
    ) -> bool {
        let Some(estimates) = self.fee_estimates else {
            return true;
        };
        let Some(channel) = self.channel(&node_id, &channel_id) else {
            return true;
        };
        if channel.is_funder() {
            // Not ours to judge: the channel fails it (only the funder sends update_fee).
            return true;
        }
        let anchors = channel.channel_type().has_anchors();
        let current = channel
            .local_commit()
            .spec
            .feerate_per_kw
            .max(channel.remote_commit().spec.feerate_per_kw);
        let (min, max) = self.fee_policy.remote_bounds(&estimates, anchors);
        let feerate = msg.feerate_per_kw;
        let too_low = feerate < min && feerate <= current;
        let too_high = feerate > max && feerate >= current;
        if !too_low && !too_high {
            return true;
        }
        let text = if too_low {
            format!("update_fee feerate_per_kw {feerate} is below our floor {min}")
        } else {
            format!("update_fee feerate_per_kw {feerate} is above our ceiling {max}")
        };
        self.send(node_id, Message::Warning(Warning::new(channel_id, &text)));
        self.outputs
            .push_back(super::Output::Disconnect { node_id });
        // Disconnected here already, so nothing the peer sent after it (the
        // commitment_signed covering it) reaches the channel.
        self.peer_disconnected(node_id);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_percent_of_the_current_feerate() {
        let p = FeePolicy::default();
        assert!(!p.should_update(1000, 1000));
        assert!(!p.should_update(1000, 1199));
        assert!(p.should_update(1000, 1200));
        assert!(!p.should_update(1000, 501));
        assert!(p.should_update(1000, 500));
        assert!(p.should_update(253, 100_000));
    }

    #[test]
    fn remote_bounds_follow_the_estimates() {
        let p = FeePolicy::default();
        let e = FeeEstimates {
            urgent: 5000,
            normal: 2000,
            background: 1000,
        };
        assert_eq!(p.remote_bounds(&e, false), (500, 50_000));
        assert_eq!(p.remote_bounds(&e, true), (0, 50_000));
        let low = FeeEstimates {
            urgent: 0,
            normal: 0,
            background: 0,
        }
        .floored();
        assert_eq!(low.background, MIN_RELAY_FEERATE_PER_KW);
    }
}
