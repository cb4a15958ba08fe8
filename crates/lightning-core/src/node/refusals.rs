//! Call-time refusals: what `create_channel` and `send_payment` can tell is wrong before
//! anything is created or sent, each error naming the value and the limit it broke.
//!
//! * [`FirstHopError`]: the route's first hop cannot carry the payment now
//!   ([`ApiError::FirstHop`]).
//! * [`ChannelValueError`]: a channel's value or push amount is outside our limits or the
//!   peer's known ones ([`ApiError::ChannelValue`]).
//!
//! A payment id already used (in flight, or completed within
//! [`NodeConfig::payment_id_retention_blocks`](super::NodeConfig::payment_id_retention_blocks))
//! is [`ApiError::DuplicatePayment`] or
//! [`ApiError::PaymentIdRecentlyUsed`].

use std::collections::BTreeMap;

use bitcoin::secp256k1::PublicKey;

use super::{ApiError, NodeCore, PaymentId};
use crate::channel::ChannelPhase;
use crate::persist::CompletedPaymentRecord;
use crate::transactions::fees::{commitment_base_fee, ANCHOR_OUTPUT_SATOSHIS};
use crate::transactions::ChannelType;
use crate::types::ShortChannelId;
use crate::wire::Feature;

/// The largest channel a peer without `option_support_large_channel` accepts (BOLT 2).
pub const MAX_NON_LARGE_FUNDING_SATOSHIS: u64 = (1 << 24) - 1;

/// Lower-case hex of `bytes` (ids in error texts).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why a route's first hop cannot carry a payment now
/// ([`ApiError::FirstHop`]). An unknown short channel id is
/// [`ApiError::UnknownShortChannelId`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstHopError {
    /// The channel with this short id is ours, but with another peer than the route's
    /// first hop names.
    WrongPeer {
        /// The first hop's short channel id.
        short_channel_id: ShortChannelId,
        /// The channel's peer.
        channel_node_id: PublicKey,
    },
    /// The channel is not open for payments yet (or any more).
    NotReady {
        /// The first hop's short channel id.
        short_channel_id: ShortChannelId,
        /// Where the channel is in its life.
        phase: ChannelPhase,
    },
    /// The channel is closing (a `shutdown` was sent or received): it takes no new HTLC.
    ShuttingDown {
        /// The first hop's short channel id.
        short_channel_id: ShortChannelId,
    },
    /// The channel's peer is not connected.
    PeerDisconnected {
        /// The first hop's short channel id.
        short_channel_id: ShortChannelId,
        /// The peer.
        node_id: PublicKey,
    },
    /// The amount the first hop would carry is below the smallest HTLC the peer accepts
    /// (its `htlc_minimum_msat`).
    BelowHtlcMinimum {
        /// The first hop's short channel id.
        short_channel_id: ShortChannelId,
        /// The amount the first HTLC would carry.
        amount_msat: u64,
        /// The peer's `htlc_minimum_msat` (at least 1).
        htlc_minimum_msat: u64,
    },
    /// The amount the first hop would carry is above what we can send on the channel now
    /// (our balance above the peer's reserve and, as funder, the commitment fee, within
    /// the peer's in-flight limit).
    AboveOutboundCapacity {
        /// The first hop's short channel id.
        short_channel_id: ShortChannelId,
        /// The amount the first HTLC would carry.
        amount_msat: u64,
        /// What we can send on the channel now.
        outbound_capacity_msat: u64,
    },
}

impl core::fmt::Display for FirstHopError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FirstHopError::WrongPeer {
                short_channel_id,
                channel_node_id,
            } => write!(
                f,
                "channel {short_channel_id} is with peer {channel_node_id}, not with the \
                 route's first hop"
            ),
            FirstHopError::NotReady {
                short_channel_id,
                phase,
            } => write!(
                f,
                "channel {short_channel_id} is not ready for payments (phase {phase:?}, \
                 needs Normal)"
            ),
            FirstHopError::ShuttingDown { short_channel_id } => {
                write!(f, "channel {short_channel_id} is closing")
            }
            FirstHopError::PeerDisconnected {
                short_channel_id,
                node_id,
            } => write!(
                f,
                "channel {short_channel_id}'s peer {node_id} is not connected"
            ),
            FirstHopError::BelowHtlcMinimum {
                short_channel_id,
                amount_msat,
                htlc_minimum_msat,
            } => write!(
                f,
                "amount {amount_msat} msat is below channel {short_channel_id}'s \
                 htlc_minimum_msat {htlc_minimum_msat}"
            ),
            FirstHopError::AboveOutboundCapacity {
                short_channel_id,
                amount_msat,
                outbound_capacity_msat,
            } => write!(
                f,
                "amount {amount_msat} msat is above channel {short_channel_id}'s outbound \
                 capacity {outbound_capacity_msat} msat"
            ),
        }
    }
}

impl std::error::Error for FirstHopError {}

/// Why a channel's value or push amount is refused
/// ([`ApiError::ChannelValue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelValueError {
    /// Below our smallest channel (`ChannelConfig::min_funding_satoshis`).
    BelowMinimum {
        /// The channel value asked for.
        funding_satoshis: u64,
        /// Our minimum.
        min_satoshis: u64,
    },
    /// Above our largest channel (`ChannelConfig::max_funding_satoshis`).
    AboveMaximum {
        /// The channel value asked for.
        funding_satoshis: u64,
        /// Our maximum.
        max_satoshis: u64,
    },
    /// At least 2^24 sat, and `option_support_large_channel` is not negotiated with the
    /// peer (BOLT 2: the peer would refuse it).
    AbovePeerMaximum {
        /// The channel value asked for.
        funding_satoshis: u64,
        /// The largest channel the peer accepts.
        max_satoshis: u64,
    },
    /// The push amount is above the channel value.
    PushAboveValue {
        /// The push amount asked for.
        push_msat: u64,
        /// The channel value, in msat.
        value_msat: u64,
    },
    /// The feerate is outside the range we accept (`ChannelConfig::min_feerate_per_kw` to
    /// `max_feerate_per_kw`).
    FeerateOutOfRange {
        /// The feerate asked for (sat per 1000 weight).
        feerate_per_kw: u32,
        /// Our lowest.
        min: u32,
        /// Our highest.
        max: u32,
    },
    /// What we keep after the push cannot pay the first commitment transaction's fee (and,
    /// with anchors, the two anchor outputs).
    CannotPayFirstFee {
        /// The channel value minus the push, in msat.
        balance_msat: u64,
        /// The first commitment's fee and anchors, in msat.
        fee_msat: u64,
    },
    /// Neither side would be above its reserve in the first commitment: the peer refuses
    /// such a channel (BOLT 2). Our side needs more than `min_our_balance_msat` (the peer's
    /// reserve is at least our dust limit), or the push more than `min_push_msat` (the
    /// reserve we ask of the peer).
    BothAtReserve {
        /// Our balance after the push and the first commitment's fee.
        our_balance_msat: u64,
        /// The least reserve the peer can ask of us (our dust limit), in msat.
        min_our_balance_msat: u64,
        /// The push amount.
        push_msat: u64,
        /// The reserve we ask of the peer, in msat.
        min_push_msat: u64,
    },
}

impl core::fmt::Display for ChannelValueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChannelValueError::BelowMinimum {
                funding_satoshis,
                min_satoshis,
            } => write!(
                f,
                "funding {funding_satoshis} sat is below the minimum {min_satoshis} sat \
                 (min_funding_satoshis)"
            ),
            ChannelValueError::AboveMaximum {
                funding_satoshis,
                max_satoshis,
            } => write!(
                f,
                "funding {funding_satoshis} sat is above the maximum {max_satoshis} sat \
                 (max_funding_satoshis)"
            ),
            ChannelValueError::AbovePeerMaximum {
                funding_satoshis,
                max_satoshis,
            } => write!(
                f,
                "funding {funding_satoshis} sat is above the peer's maximum {max_satoshis} \
                 sat (option_support_large_channel not negotiated)"
            ),
            ChannelValueError::PushAboveValue {
                push_msat,
                value_msat,
            } => write!(
                f,
                "push {push_msat} msat is above the channel value {value_msat} msat"
            ),
            ChannelValueError::FeerateOutOfRange {
                feerate_per_kw,
                min,
                max,
            } => write!(
                f,
                "feerate {feerate_per_kw} sat/kw is outside {min}..={max} sat/kw"
            ),
            ChannelValueError::CannotPayFirstFee {
                balance_msat,
                fee_msat,
            } => write!(
                f,
                "our balance {balance_msat} msat cannot pay the first commitment's fee \
                 {fee_msat} msat"
            ),
            ChannelValueError::BothAtReserve {
                our_balance_msat,
                min_our_balance_msat,
                push_msat,
                min_push_msat,
            } => write!(
                f,
                "neither side above its reserve: our balance {our_balance_msat} msat must \
                 be above {min_our_balance_msat} msat or the push {push_msat} msat above \
                 {min_push_msat} msat"
            ),
        }
    }
}

impl std::error::Error for ChannelValueError {}

impl NodeCore {
    /// Refuses a payment id in flight or completed within the retention window.
    pub(super) fn check_payment_id(&self, payment_id: &PaymentId) -> Result<(), ApiError> {
        if self.payments.contains_key(payment_id) {
            return Err(ApiError::DuplicatePayment(*payment_id));
        }
        if let Some(&completed_height) = self.completed_payments.get(payment_id) {
            let retained_until_height =
                completed_height.saturating_add(self.config.payment_id_retention_blocks);
            if self.best_height < retained_until_height {
                return Err(ApiError::PaymentIdRecentlyUsed {
                    payment_id: *payment_id,
                    completed_height,
                    retained_until_height,
                });
            }
        }
        Ok(())
    }

    /// Remembers a completed payment's id (with the best height) for the retention window:
    /// one [`CompletedPaymentRecord`] to write ([`Dirty::completed_payments`](super::Dirty)),
    /// the node record unchanged.
    pub(super) fn payment_completed(&mut self, payment_id: PaymentId) {
        if self.config.payment_id_retention_blocks > 0 {
            let completed_height = self.best_height;
            if let Some(old) = self.completed_payments.insert(payment_id, completed_height) {
                if old != completed_height {
                    // An id used again after its window, not yet pruned: its old record goes.
                    self.dirty.payment_forgotten(CompletedPaymentRecord {
                        payment_id,
                        completed_height: old,
                    });
                }
            }
            self.dirty.payment_completed(CompletedPaymentRecord {
                payment_id,
                completed_height,
            });
        }
    }

    /// Forgets completed payment ids whose retention window has passed: their records are
    /// deleted ([`Dirty::forgotten_payments`](super::Dirty)), the node record unchanged.
    pub(super) fn prune_completed_payments(&mut self) {
        let window = self.config.payment_id_retention_blocks;
        let height = self.best_height;
        let expired: Vec<CompletedPaymentRecord> = self
            .completed_payments
            .iter()
            .filter(|(_, completed)| height >= completed.saturating_add(window))
            .map(|(payment_id, completed_height)| CompletedPaymentRecord {
                payment_id: *payment_id,
                completed_height: *completed_height,
            })
            .collect();
        for record in expired {
            self.completed_payments.remove(&record.payment_id);
            self.dirty.payment_forgotten(record);
        }
    }

    /// Takes back a completed payment id on restore: `stored` when its own record holds it
    /// (nothing to write), otherwise (a node record of the first format-5 build held it) it
    /// is written as a record of its own by the next commit. Of two heights for one id the
    /// later one stays and the other's record is deleted.
    pub(super) fn completed_payment_restored(
        &mut self,
        record: CompletedPaymentRecord,
        stored: bool,
    ) {
        let CompletedPaymentRecord {
            payment_id,
            completed_height,
        } = record;
        match self.completed_payments.get(&payment_id).copied() {
            Some(kept) if kept == completed_height => {}
            Some(kept) if kept > completed_height => self.dirty.payment_forgotten(record),
            other => {
                if let Some(kept) = other {
                    self.dirty.payment_forgotten(CompletedPaymentRecord {
                        payment_id,
                        completed_height: kept,
                    });
                }
                self.completed_payments.insert(payment_id, completed_height);
                if !stored {
                    self.dirty.payment_completed(record);
                }
            }
        }
    }

    /// Takes back, after [`NodeCore::restore`], the [`CompletedPaymentRecord`]s this node
    /// (or shard) stored ([`Dirty::completed_payments`](super::Dirty)): their ids are
    /// refused again until their retention window passes. Records whose window already
    /// passed at the restored best block are forgotten (deleted by the next commit), as are
    /// older records of an id stored twice.
    pub fn restore_completed_payments(
        &mut self,
        records: impl IntoIterator<Item = CompletedPaymentRecord>,
    ) {
        for record in records {
            self.completed_payment_restored(record, true);
        }
        self.prune_completed_payments();
    }

    /// The ids of our payments that completed within the retention window, with the best
    /// height then (an engine shares them between its shards).
    pub fn completed_payments(&self) -> &BTreeMap<PaymentId, u32> {
        &self.completed_payments
    }

    /// The channel and peer behind a payment's first hop, if it can carry an HTLC now.
    pub(super) fn check_first_hop(
        &self,
        short_channel_id: ShortChannelId,
        route_node_id: PublicKey,
    ) -> Result<(), ApiError> {
        let &(channel_node_id, channel_id) = self
            .scid_to_channel
            .get(&short_channel_id)
            .ok_or(ApiError::UnknownShortChannelId(short_channel_id))?;
        if channel_node_id != route_node_id {
            return Err(ApiError::FirstHop(FirstHopError::WrongPeer {
                short_channel_id,
                channel_node_id,
            }));
        }
        let peer = self
            .peers
            .get(&channel_node_id)
            .ok_or(ApiError::UnknownShortChannelId(short_channel_id))?;
        let channel = peer
            .channel_by_id
            .get(&channel_id)
            .map(|e| &e.channel)
            .ok_or(ApiError::UnknownShortChannelId(short_channel_id))?;
        if channel.phase() != ChannelPhase::Normal {
            return Err(ApiError::FirstHop(FirstHopError::NotReady {
                short_channel_id,
                phase: channel.phase(),
            }));
        }
        if channel.is_shutting_down() {
            return Err(ApiError::FirstHop(FirstHopError::ShuttingDown {
                short_channel_id,
            }));
        }
        if !peer.connected || peer.their_features.is_none() {
            return Err(ApiError::FirstHop(FirstHopError::PeerDisconnected {
                short_channel_id,
                node_id: channel_node_id,
            }));
        }
        Ok(())
    }

    /// Refuses a first-hop amount the channel cannot carry: below the peer's
    /// `htlc_minimum_msat`, or above what we can send now. Call after
    /// [`NodeCore::check_first_hop`].
    pub(super) fn check_first_hop_amount(
        &self,
        short_channel_id: ShortChannelId,
        amount_msat: u64,
    ) -> Result<(), ApiError> {
        let Some(channel) = self
            .scid_to_channel
            .get(&short_channel_id)
            .and_then(|(node_id, channel_id)| self.channel(node_id, channel_id))
        else {
            return Err(ApiError::UnknownShortChannelId(short_channel_id));
        };
        let htlc_minimum_msat = channel.remote_params().htlc_minimum_msat.max(1);
        if amount_msat < htlc_minimum_msat {
            return Err(ApiError::FirstHop(FirstHopError::BelowHtlcMinimum {
                short_channel_id,
                amount_msat,
                htlc_minimum_msat,
            }));
        }
        let outbound_capacity_msat = channel.balances().outbound_capacity_msat;
        if amount_msat > outbound_capacity_msat {
            return Err(ApiError::FirstHop(FirstHopError::AboveOutboundCapacity {
                short_channel_id,
                amount_msat,
                outbound_capacity_msat,
            }));
        }
        Ok(())
    }

    /// Refuses a channel we would fund that our limits, or the peer's known limits, refuse.
    pub(super) fn check_outbound_channel(
        &self,
        node_id: &PublicKey,
        funding_satoshis: u64,
        push_msat: u64,
        feerate_per_kw: u32,
    ) -> Result<(), ApiError> {
        let config = &self.config.channel;
        let refuse = |e| Err(ApiError::ChannelValue(e));
        if funding_satoshis < config.min_funding_satoshis {
            return refuse(ChannelValueError::BelowMinimum {
                funding_satoshis,
                min_satoshis: config.min_funding_satoshis,
            });
        }
        if funding_satoshis > config.max_funding_satoshis {
            return refuse(ChannelValueError::AboveMaximum {
                funding_satoshis,
                max_satoshis: config.max_funding_satoshis,
            });
        }
        let ours = self.config.init_features();
        let theirs = self
            .peers
            .get(node_id)
            .and_then(|p| p.their_features.clone())
            .unwrap_or_default();
        if funding_satoshis > MAX_NON_LARGE_FUNDING_SATOSHIS
            && !ours.negotiated(&theirs, Feature::LargeChannel)
        {
            return refuse(ChannelValueError::AbovePeerMaximum {
                funding_satoshis,
                max_satoshis: MAX_NON_LARGE_FUNDING_SATOSHIS,
            });
        }
        let value_msat = funding_satoshis.saturating_mul(1000);
        if push_msat > value_msat {
            return refuse(ChannelValueError::PushAboveValue {
                push_msat,
                value_msat,
            });
        }
        if feerate_per_kw < config.min_feerate_per_kw || feerate_per_kw > config.max_feerate_per_kw
        {
            return refuse(ChannelValueError::FeerateOutOfRange {
                feerate_per_kw,
                min: config.min_feerate_per_kw,
                max: config.max_feerate_per_kw,
            });
        }
        // The channel type `Channel::new_outbound` will propose.
        let anchors = config.negotiate_anchors
            && ours.supports(Feature::Anchors)
            && theirs.supports(Feature::Anchors);
        let (channel_type, anchor_sat) = if anchors {
            (
                ChannelType::AnchorsZeroFeeHtlcTx,
                2 * ANCHOR_OUTPUT_SATOSHIS,
            )
        } else {
            (ChannelType::StaticRemoteKey, 0)
        };
        let fee_msat = commitment_base_fee(feerate_per_kw, 0, channel_type)
            .saturating_add(anchor_sat)
            .saturating_mul(1000);
        let balance_msat = value_msat - push_msat;
        let Some(our_balance_msat) = balance_msat.checked_sub(fee_msat) else {
            return refuse(ChannelValueError::CannotPayFirstFee {
                balance_msat,
                fee_msat,
            });
        };
        let min_our_balance_msat = config.dust_limit_satoshis.saturating_mul(1000);
        let min_push_msat = config.reserve_for(funding_satoshis, 0).saturating_mul(1000);
        if our_balance_msat <= min_our_balance_msat && push_msat <= min_push_msat {
            return refuse(ChannelValueError::BothAtReserve {
                our_balance_msat,
                min_our_balance_msat,
                push_msat,
                min_push_msat,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::SecretKey;
    use bitcoin::BlockHash;

    use super::*;
    use crate::node::NodeConfig;

    fn config(window: u32) -> NodeConfig {
        NodeConfig {
            payment_id_retention_blocks: window,
            ..NodeConfig::default()
        }
    }

    fn node(window: u32) -> NodeCore {
        let secret = SecretKey::from_slice(&[3; 32]).expect("a valid key");
        NodeCore::new(secret, [3; 32], config(window), 100, BlockHash::all_zeros())
    }

    fn block(core: &mut NodeCore, height: u32) {
        core.best_block_updated(height, BlockHash::from_byte_array([height as u8; 32]));
    }

    fn record(payment_id: PaymentId, completed_height: u32) -> CompletedPaymentRecord {
        CompletedPaymentRecord {
            payment_id,
            completed_height,
        }
    }

    #[test]
    fn a_completed_id_is_refused_for_the_window_across_a_restore_then_forgotten() {
        let mut core = node(3);
        let id = PaymentId([9; 32]);
        core.check_payment_id(&id).expect("a fresh id");
        let _ = core.take_dirty();
        core.payment_completed(id);
        let dirty = core.take_dirty();
        assert!(!dirty.node, "a completion leaves the node record as it is");
        assert_eq!(
            dirty.completed_payments,
            [record(id, 100)].into_iter().collect(),
            "the completion is committed as a record of its own"
        );
        let refused = ApiError::PaymentIdRecentlyUsed {
            payment_id: id,
            completed_height: 100,
            retained_until_height: 103,
        };
        assert_eq!(core.check_payment_id(&id), Err(refused.clone()));
        // A restore from the node record and the completed-payment records remembers it.
        let node_record = core.node_record();
        assert!(
            node_record.completed_payments.is_empty(),
            "not in the node record"
        );
        let secret = SecretKey::from_slice(&[3; 32]).expect("a valid key");
        let mut core = NodeCore::restore(secret, [3; 32], config(3), node_record, Vec::new());
        core.restore_completed_payments([record(id, 100)]);
        let dirty = core.take_dirty();
        assert!(
            dirty.completed_payments.is_empty() && dirty.forgotten_payments.is_empty(),
            "a stored record is not written again"
        );
        block(&mut core, 102);
        assert_eq!(core.check_payment_id(&id), Err(refused));
        let dirty = core.take_dirty();
        assert!(dirty.forgotten_payments.is_empty());
        block(&mut core, 103);
        core.check_payment_id(&id)
            .expect("forgotten after the window");
        assert!(core.completed_payments().is_empty(), "pruned");
        let dirty = core.take_dirty();
        assert_eq!(
            dirty.forgotten_payments,
            [record(id, 100)].into_iter().collect(),
            "its record is deleted"
        );
        // A window of 0 keeps nothing.
        let mut core = node(0);
        let _ = core.take_dirty();
        core.payment_completed(id);
        core.check_payment_id(&id).expect("nothing kept");
        assert!(core.completed_payments().is_empty());
        assert!(core.take_dirty().is_empty());
    }

    /// A node record of the first format-5 build held the ids: they are refused after the
    /// restore, and the first commit writes them as records of their own.
    #[test]
    fn ids_in_a_node_record_move_to_records_of_their_own() {
        let core = node(10);
        let mut node_record = core.node_record();
        let (a, b) = (PaymentId([1; 32]), PaymentId([2; 32]));
        node_record.completed_payments = [(a, 95), (b, 80)].into_iter().collect();
        let secret = SecretKey::from_slice(&[3; 32]).expect("a valid key");
        let mut core = NodeCore::restore(secret, [3; 32], config(10), node_record, Vec::new());
        // A record of its own for `a` at an older height: the later height stays.
        core.restore_completed_payments([record(a, 91)]);
        assert!(matches!(
            core.check_payment_id(&a),
            Err(ApiError::PaymentIdRecentlyUsed {
                completed_height: 95,
                ..
            })
        ));
        core.check_payment_id(&b)
            .expect("b's window (80 + 10) passed at height 100");
        let dirty = core.take_dirty();
        assert!(dirty.node, "the node record is rewritten without them");
        assert!(core.node_record().completed_payments.is_empty());
        assert_eq!(
            dirty.completed_payments,
            [record(a, 95)].into_iter().collect()
        );
        assert!(dirty.forgotten_payments.contains(&record(a, 91)));
    }

    /// An id used again after its window, before its shard pruned it: the old record goes
    /// in the commit that writes the new one.
    #[test]
    fn an_id_completed_again_replaces_its_record() {
        let mut core = node(2);
        let id = PaymentId([4; 32]);
        core.completed_payment_restored(record(id, 90), true);
        let _ = core.take_dirty();
        core.payment_completed(id);
        let dirty = core.take_dirty();
        assert_eq!(
            dirty.completed_payments,
            [record(id, 100)].into_iter().collect()
        );
        assert_eq!(
            dirty.forgotten_payments,
            [record(id, 90)].into_iter().collect()
        );
    }
}
