//! Eclair-style commitment specs and change sets: a [`CommitmentSpec`] is the content of one
//! commitment (HTLCs, balances, feerate) from its owner's point of view, and the pure
//! [`reduce`] applies two lists of [`Update`]s to it.

use std::collections::BTreeMap;

use crate::transactions::{fees, ChannelType, Htlc, HtlcDirection};
use crate::types::PaymentHash;
use crate::wire::{
    Message, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc, UpdateFee, UpdateFulfillHtlc,
};

/// One HTLC of a commitment, keyed by who offered it (from the owner's view) and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecHtlc {
    /// Whether the commitment's owner offered it (`true`) or received it (`false`).
    pub offered: bool,
    /// The `id` given by the side that offered it.
    pub id: u64,
    /// Its amount.
    pub amount_msat: u64,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// Its `cltv_expiry`.
    pub cltv_expiry: u32,
}

impl SpecHtlc {
    /// The HTLC as the transaction builder sees it.
    pub fn to_tx_htlc(&self) -> Htlc {
        Htlc {
            direction: if self.offered {
                HtlcDirection::Offered
            } else {
                HtlcDirection::Received
            },
            amount_msat: self.amount_msat,
            cltv_expiry: self.cltv_expiry,
            payment_hash: self.payment_hash,
        }
    }
}

/// The content of one commitment transaction from its owner's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentSpec {
    /// The HTLCs, keyed by `(offered by the owner, id)`.
    pub htlcs: BTreeMap<(bool, u64), SpecHtlc>,
    /// The owner's balance, HTLCs and fees excluded.
    pub to_local_msat: u64,
    /// The other side's balance, HTLCs and fees excluded.
    pub to_remote_msat: u64,
    /// The commitment's `feerate_per_kw`.
    pub feerate_per_kw: u32,
}

impl CommitmentSpec {
    /// The same commitment content seen from the other side (owner swapped).
    pub fn mirrored(&self) -> CommitmentSpec {
        CommitmentSpec {
            htlcs: self
                .htlcs
                .values()
                .map(|h| {
                    (
                        (!h.offered, h.id),
                        SpecHtlc {
                            offered: !h.offered,
                            ..*h
                        },
                    )
                })
                .collect(),
            to_local_msat: self.to_remote_msat,
            to_remote_msat: self.to_local_msat,
            feerate_per_kw: self.feerate_per_kw,
        }
    }

    /// The HTLCs as transaction-builder HTLCs, in key order.
    pub fn tx_htlcs(&self) -> Vec<Htlc> {
        self.htlcs.values().map(SpecHtlc::to_tx_htlc).collect()
    }

    /// Whether `htlc` is trimmed in this commitment given its owner's dust limit.
    pub fn is_trimmed(&self, htlc: &SpecHtlc, dust_limit_satoshis: u64, ct: ChannelType) -> bool {
        fees::is_htlc_trimmed(
            &htlc.to_tx_htlc(),
            self.feerate_per_kw,
            dust_limit_satoshis,
            ct,
        )
    }

    /// How many HTLC outputs this commitment has given its owner's dust limit.
    pub fn untrimmed_count(&self, dust_limit_satoshis: u64, ct: ChannelType) -> usize {
        self.htlcs
            .values()
            .filter(|h| !self.is_trimmed(h, dust_limit_satoshis, ct))
            .count()
    }

    /// The funder's cost for this commitment in msat: the base fee, plus the two anchors.
    pub fn funder_cost_msat(&self, dust_limit_satoshis: u64, ct: ChannelType) -> u64 {
        self.funder_cost_msat_at(self.feerate_per_kw, 0, dust_limit_satoshis, ct)
    }

    /// The funder's cost at `feerate_per_kw` with `extra_htlcs` more untrimmed HTLC outputs.
    pub fn funder_cost_msat_at(
        &self,
        feerate_per_kw: u32,
        extra_htlcs: usize,
        dust_limit_satoshis: u64,
        ct: ChannelType,
    ) -> u64 {
        let trim_spec = CommitmentSpec {
            feerate_per_kw,
            ..self.clone()
        };
        let count = trim_spec
            .untrimmed_count(dust_limit_satoshis, ct)
            .saturating_add(extra_htlcs);
        let anchors = if ct.has_anchors() {
            2 * fees::ANCHOR_OUTPUT_SATOSHIS
        } else {
            0
        };
        fees::commitment_base_fee(feerate_per_kw, count, ct)
            .saturating_add(anchors)
            .saturating_mul(1000)
    }

    /// The sum of the HTLCs offered by the owner (`offered == true`) or by the other side.
    pub fn htlc_total_msat(&self, offered: bool) -> u64 {
        self.htlcs
            .values()
            .filter(|h| h.offered == offered)
            .map(|h| h.amount_msat)
            .fold(0u64, u64::saturating_add)
    }

    /// The number of HTLCs offered by the owner (`offered == true`) or by the other side.
    pub fn htlc_count(&self, offered: bool) -> usize {
        self.htlcs.values().filter(|h| h.offered == offered).count()
    }
}

/// An update message as stored in the change lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// `update_add_htlc`.
    Add(UpdateAddHtlc),
    /// `update_fulfill_htlc`.
    Fulfill(UpdateFulfillHtlc),
    /// `update_fail_htlc`.
    Fail(UpdateFailHtlc),
    /// `update_fail_malformed_htlc`.
    FailMalformed(UpdateFailMalformedHtlc),
    /// `update_fee`.
    Fee(UpdateFee),
}

impl Update {
    /// The wire message.
    pub fn to_message(&self) -> Message {
        match self {
            Update::Add(m) => Message::UpdateAddHtlc(m.clone()),
            Update::Fulfill(m) => Message::UpdateFulfillHtlc(m.clone()),
            Update::Fail(m) => Message::UpdateFailHtlc(m.clone()),
            Update::FailMalformed(m) => Message::UpdateFailMalformedHtlc(m.clone()),
            Update::Fee(m) => Message::UpdateFee(m.clone()),
        }
    }

    /// The id of the HTLC a removal (fulfill, fail, malformed) settles.
    pub fn removed_htlc_id(&self) -> Option<u64> {
        match self {
            Update::Fulfill(m) => Some(m.id),
            Update::Fail(m) => Some(m.id),
            Update::FailMalformed(m) => Some(m.id),
            Update::Add(_) | Update::Fee(_) => None,
        }
    }
}

/// Why [`reduce`] could not apply a change list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReduceError {
    /// A removal names an HTLC that is not in the commitment.
    UnknownHtlc {
        /// Whether the removed HTLC was offered by the commitment owner.
        offered: bool,
        /// Its id.
        id: u64,
    },
    /// An add reuses an id already in the commitment.
    DuplicateHtlc {
        /// Its id.
        id: u64,
    },
    /// An add is larger than the offering side's balance.
    InsufficientBalance {
        /// The amount added.
        amount_msat: u64,
        /// The balance it came from.
        balance_msat: u64,
    },
}

impl core::fmt::Display for ReduceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReduceError::UnknownHtlc { offered, id } => {
                let who = if *offered { "offered" } else { "received" };
                write!(f, "no {who} htlc with id {id} in the commitment")
            }
            ReduceError::DuplicateHtlc { id } => write!(f, "htlc id {id} is already committed"),
            ReduceError::InsufficientBalance {
                amount_msat,
                balance_msat,
            } => write!(
                f,
                "htlc amount_msat {amount_msat} is above the sender's balance {balance_msat} msat"
            ),
        }
    }
}

impl std::error::Error for ReduceError {}

/// Applies `owner_changes` (updates sent by the commitment's owner) and `other_changes`
/// (updates sent by the other side) to `spec`: first every add, then every removal, then the
/// last `update_fee`. Pure; never panics.
pub fn reduce(
    spec: &CommitmentSpec,
    owner_changes: &[Update],
    other_changes: &[Update],
) -> Result<CommitmentSpec, ReduceError> {
    let mut out = spec.clone();
    for (by_owner, changes) in [(true, owner_changes), (false, other_changes)] {
        for u in changes {
            if let Update::Add(add) = u {
                let balance = if by_owner {
                    &mut out.to_local_msat
                } else {
                    &mut out.to_remote_msat
                };
                *balance = balance.checked_sub(add.amount_msat).ok_or(
                    ReduceError::InsufficientBalance {
                        amount_msat: add.amount_msat,
                        balance_msat: *balance,
                    },
                )?;
                let htlc = SpecHtlc {
                    offered: by_owner,
                    id: add.id,
                    amount_msat: add.amount_msat,
                    payment_hash: add.payment_hash,
                    cltv_expiry: add.cltv_expiry,
                };
                if out.htlcs.insert((by_owner, add.id), htlc).is_some() {
                    return Err(ReduceError::DuplicateHtlc { id: add.id });
                }
            }
        }
    }
    for (by_owner, changes) in [(true, owner_changes), (false, other_changes)] {
        for u in changes {
            let (id, success) = match u {
                Update::Fulfill(m) => (m.id, true),
                Update::Fail(m) => (m.id, false),
                Update::FailMalformed(m) => (m.id, false),
                Update::Add(_) | Update::Fee(_) => continue,
            };
            // A removal by X settles an HTLC that X received.
            let offered = !by_owner;
            let htlc = out
                .htlcs
                .remove(&(offered, id))
                .ok_or(ReduceError::UnknownHtlc { offered, id })?;
            // Fulfilled: the receiver (the remover) gets the amount; failed: back to offerer.
            let to_local = (by_owner && success) || (!by_owner && !success);
            let balance = if to_local {
                &mut out.to_local_msat
            } else {
                &mut out.to_remote_msat
            };
            *balance = balance.saturating_add(htlc.amount_msat);
        }
    }
    for changes in [owner_changes, other_changes] {
        for u in changes {
            if let Update::Fee(fee) = u {
                out.feerate_per_kw = fee.feerate_per_kw;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChannelId, PaymentPreimage};

    fn add(id: u64, amount_msat: u64) -> Update {
        Update::Add(UpdateAddHtlc {
            channel_id: ChannelId([0; 32]),
            id,
            amount_msat,
            payment_hash: PaymentPreimage([id as u8; 32]).payment_hash(),
            cltv_expiry: 500,
            onion_routing_packet: Box::new([0; 1366]),
            path_key: None,
        })
    }

    fn fulfill(id: u64) -> Update {
        Update::Fulfill(UpdateFulfillHtlc {
            channel_id: ChannelId([0; 32]),
            id,
            payment_preimage: PaymentPreimage([id as u8; 32]),
            attribution_data: None,
        })
    }

    fn fail(id: u64) -> Update {
        Update::Fail(UpdateFailHtlc {
            channel_id: ChannelId([0; 32]),
            id,
            reason: vec![1, 2, 3],
            attribution_data: None,
        })
    }

    fn spec() -> CommitmentSpec {
        CommitmentSpec {
            htlcs: BTreeMap::new(),
            to_local_msat: 10_000_000,
            to_remote_msat: 5_000_000,
            feerate_per_kw: 253,
        }
    }

    #[test]
    fn add_then_fulfill_moves_balance() {
        let s1 = reduce(&spec(), &[add(0, 1_000_000)], &[add(0, 2_000)]).unwrap();
        assert_eq!(s1.to_local_msat, 9_000_000);
        assert_eq!(s1.to_remote_msat, 4_998_000);
        assert_eq!(s1.htlcs.len(), 2);
        // The other side fulfills the owner's HTLC 0; the owner fails the other's HTLC 0.
        let s2 = reduce(&s1, &[fail(0)], &[fulfill(0)]).unwrap();
        assert!(s2.htlcs.is_empty());
        assert_eq!(s2.to_local_msat, 9_000_000);
        assert_eq!(s2.to_remote_msat, 6_000_000);
        assert_eq!(s2.mirrored().mirrored(), s2);
    }

    #[test]
    fn unknown_removal_duplicate_add_and_overdraft_are_errors() {
        assert_eq!(
            reduce(&spec(), &[], &[fulfill(3)]),
            Err(ReduceError::UnknownHtlc {
                offered: true,
                id: 3
            })
        );
        let s1 = reduce(&spec(), &[add(0, 1)], &[]).unwrap();
        assert_eq!(
            reduce(&s1, &[add(0, 1)], &[]),
            Err(ReduceError::DuplicateHtlc { id: 0 })
        );
        assert!(matches!(
            reduce(&spec(), &[], &[add(0, 5_000_001)]),
            Err(ReduceError::InsufficientBalance { .. })
        ));
    }

    #[test]
    fn fee_update_applies_last() {
        let fee = Update::Fee(UpdateFee {
            channel_id: ChannelId([0; 32]),
            feerate_per_kw: 1000,
        });
        let s = reduce(&spec(), &[], &[fee]).unwrap();
        assert_eq!(s.feerate_per_kw, 1000);
    }
}
