//! What to claim now, grouped and priced: LDK's packages, reduced to three rules.
//!
//! * Outputs only we can spend (our delayed outputs, our `to_remote`, a cheater's revoked
//!   `to_local` and second-stage outputs while their delay runs) go together in one
//!   transaction: aggregation cannot be pinned by the peer.
//! * An output the peer can also spend soon (an HTLC output on the peer's commitment, a
//!   revoked HTLC output the cheater can take with its presigned HTLC transaction) is
//!   claimed in a transaction of its own, so a pinned claim never holds the others back.
//! * The fee grows as the deadline nears ([`feerate_for`]): the host's feerate at more than
//!   [`CLTV_CLAIM_BUFFER`] blocks, then 1.5x, 2x within [`PINNABLE_WINDOW_BLOCKS`], 4x within
//!   [`LATENCY_GRACE_PERIOD_BLOCKS`]. Claims are rebuilt and rebroadcast every block, so
//!   each replacement pays more as time runs out. The same schedule prices the fee
//!   requests of anchor channels ([`PlannedClaim::NeedsFees`], and our commitment's
//!   `BumpNeeded`).
//!
//! # The fee cap and BIP 125
//! A claim we sign alone pays its fee from the value it claims, and never more than that:
//!
//! * **Cap.** When the urgency feerate would leave less than the destination's dust limit
//!   but the host's feerate alone (1x) would not, the claim pays the most it can: its value
//!   less a dust-safe output (exactly the destination's dust limit), instead of building
//!   nothing as the deadline runs out. An output not worth claiming even at the host's
//!   feerate is left alone (retried each block, claimed if the feerate falls).
//! * **Replacement.** Each rebuild is a valid BIP 125 replacement of the last claim
//!   broadcast over any of the same inputs (remembered by the monitor while its inputs are
//!   unspent): unchanged, it is the same transaction again; otherwise it pays at least the
//!   fees of every claim it conflicts with plus the incremental relay feerate on its own
//!   weight, and at least their feerate. When the urgency asks for no more than was paid
//!   (the host's feerate fell), or the cap forbids paying that much, nothing is replaced:
//!   the last claims are broadcast again as they were. The memory is not persisted: after a
//!   restart a first rebuild may pay less than a claim still in mempools, which then refuse
//!   it and keep the earlier one (no harm), until the urgency raises the fee above it.
//!
//! Second-stage HTLC transactions of our own commitment come presigned by the peer: with
//! `static_remotekey` they carry their own fee and go out as they are; with anchors they pay
//! none and go to the host as [`PlannedClaim::NeedsFees`], whose `max_fee_sat` is the
//! HTLC's value (the fee inputs must never pay more than what the transaction claims).

use std::collections::BTreeMap;

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{OutPoint, Transaction};

use super::monitor::ChannelMonitor;
use super::spend::{Analysis, OutputKind, OutputState};
use super::{CLTV_CLAIM_BUFFER, LATENCY_GRACE_PERIOD_BLOCKS, PINNABLE_WINDOW_BLOCKS};
use crate::keys::derive_private_key;
use crate::transactions::claims::{build_claim_tx, claim_fee, claim_weight, ClaimInput, SpendPath};
use crate::transactions::Side;

/// One claim the monitor wants on chain now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedClaim {
    /// A complete transaction: broadcast it.
    Broadcast {
        /// The transaction.
        tx: Transaction,
        /// The outputs it claims.
        claims: Vec<OutPoint>,
        /// The height by which it should confirm.
        deadline: u32,
    },
    /// A transaction that pays no fee of its own (anchors): fee inputs must be added.
    NeedsFees {
        /// The transaction.
        tx: Transaction,
        /// Our anchor, for CPFP of a commitment.
        anchor: Option<OutPoint>,
        /// The height by which it should confirm.
        deadline: u32,
        /// The feerate it should reach.
        feerate_per_kw: u32,
        /// The most the fee inputs may pay in fees: the value the transaction claims.
        max_fee_sat: u64,
    },
}

/// The fee multiplier, in quarters, for a claim with `blocks_left` before its deadline.
fn urgency_quarters(blocks_left: u32) -> u32 {
    if blocks_left > CLTV_CLAIM_BUFFER {
        4
    } else if blocks_left > PINNABLE_WINDOW_BLOCKS {
        6
    } else if blocks_left > LATENCY_GRACE_PERIOD_BLOCKS {
        8
    } else {
        16
    }
}

/// The feerate for a transaction that must confirm by `deadline`: the host's feerate times
/// the urgency multiplier for the blocks left at the monitor's best height (module docs).
/// Shared by claims we sign alone and the fee requests of anchor channels.
pub(crate) fn feerate_for(m: &ChannelMonitor, deadline: u32) -> u32 {
    let left = deadline.saturating_sub(m.best_height);
    m.feerate_per_kw.saturating_mul(urgency_quarters(left)) / 4
}

/// BIP 125's incremental relay feerate (1 sat/vB): what a replacement adds on its own size.
const INCREMENTAL_RELAY_FEERATE_PER_KW: u32 = super::bump::INCREMENTAL_RELAY_FEERATE_PER_KW;

/// A claim the monitor broadcast, remembered so that its rebuilds replace it by BIP 125.
#[derive(Debug, Clone)]
pub(crate) struct SentClaim {
    /// The transaction.
    pub(crate) tx: Transaction,
    /// Its inputs, sorted.
    pub(crate) inputs: Vec<OutPoint>,
    /// Its fee.
    pub(crate) fee: u64,
    /// Its weight (as priced: an upper bound of the signed weight).
    pub(crate) weight: u64,
}

/// The last claim broadcast over each set of inputs: a cache of what the monitor sent, not
/// channel state. It is not persisted, and two monitors compare equal whatever they sent
/// (module docs: after a restart it starts empty, which costs at most a refused rebuild).
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimMemo {
    sent: BTreeMap<Vec<OutPoint>, SentClaim>,
}

impl PartialEq for ClaimMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ClaimMemo {}

impl ClaimMemo {
    /// Remembers the claims about to be broadcast (a claim over the same inputs replaces
    /// its entry) and forgets those with an input no longer in `unspent` (the outputs not
    /// yet spent on chain, with their values): such a claim can no longer be in a mempool.
    pub(crate) fn record(&mut self, claims: &[PlannedClaim], unspent: &BTreeMap<OutPoint, u64>) {
        self.sent
            .retain(|inputs, _| inputs.iter().all(|o| unspent.contains_key(o)));
        for claim in claims {
            let PlannedClaim::Broadcast { tx, .. } = claim else {
                continue;
            };
            let inputs = sorted_inputs(tx);
            let Some(value) = inputs
                .iter()
                .map(|o| unspent.get(o).copied())
                .sum::<Option<u64>>()
            else {
                continue;
            };
            let paid: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
            self.sent.insert(
                inputs.clone(),
                SentClaim {
                    tx: tx.clone(),
                    inputs,
                    fee: value.saturating_sub(paid),
                    weight: tx.weight().to_wu(),
                },
            );
        }
    }

    /// The remembered claims still valid (every input in `unspent`) spending any of
    /// `inputs`: what a new claim over `inputs` conflicts with.
    fn conflicts(&self, inputs: &[OutPoint], unspent: &BTreeMap<OutPoint, u64>) -> Vec<&SentClaim> {
        self.sent
            .values()
            .filter(|s| s.inputs.iter().any(|o| inputs.contains(o)))
            .filter(|s| s.inputs.iter().all(|o| unspent.contains_key(o)))
            .collect()
    }
}

fn sorted_inputs(tx: &Transaction) -> Vec<OutPoint> {
    let mut inputs: Vec<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
    inputs.sort();
    inputs
}

/// One input to claim, with its grouping and deadline.
struct Candidate {
    input: ClaimInput,
    /// The height of the output's transaction.
    confirmed_at: u32,
    /// Claimed alone (the peer can spend it too).
    alone: bool,
    deadline: u32,
}

/// The claims due at the monitor's best height (the next block is `best_height + 1`).
pub(crate) fn plan_claims(m: &ChannelMonitor, a: &Analysis) -> Vec<PlannedClaim> {
    let secp = crate::secp::ctx();
    let next = m.best_height + 1;
    let mut out = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for o in a.outputs.iter().filter(|o| o.spent_by.is_none()) {
        match &o.output.kind {
            OutputKind::HolderHtlc { htlc } => {
                if let Some(claim) = holder_htlc_claim(m, o, htlc, next) {
                    out.push(claim);
                }
            }
            _ => {
                if let Some(c) = candidate(m, a, o, next, &secp) {
                    candidates.push(c);
                }
            }
        }
    }
    let (alone, together): (Vec<Candidate>, Vec<Candidate>) =
        candidates.into_iter().partition(|c| c.alone);
    let mut groups: Vec<Vec<Candidate>> = alone.into_iter().map(|c| vec![c]).collect();
    if !together.is_empty() {
        groups.push(together);
    }
    let unspent: BTreeMap<OutPoint, u64> = a
        .outputs
        .iter()
        .filter(|o| o.spent_by.is_none())
        .map(|o| (o.output.outpoint, o.output.value_sat))
        .collect();
    for group in groups {
        let deadline = group.iter().map(|c| c.deadline).min().unwrap_or(next);
        // nLockTime: the newest input's height, so the claim (and its txid) stays the same
        // from block to block until its fee changes (a rebroadcast of the same claim, not a
        // replacement that pays no more).
        let locktime = group.iter().map(|c| c.confirmed_at).max().unwrap_or(0);
        let inputs: Vec<ClaimInput> = group.into_iter().map(|c| c.input).collect();
        let claims: Vec<OutPoint> = inputs.iter().map(|i| i.outpoint).collect();
        let conflicts = m.claim_memo.conflicts(&claims, &unspent);
        match price(m, &inputs, feerate_for(m, deadline), &conflicts) {
            Priced::Build(feerate) => {
                if let Ok(tx) =
                    build_claim_tx(&secp, &inputs, m.destination.clone(), feerate, locktime)
                {
                    out.push(PlannedClaim::Broadcast {
                        tx,
                        claims,
                        deadline,
                    });
                }
            }
            Priced::Keep => {
                for sent in conflicts {
                    let again = PlannedClaim::Broadcast {
                        tx: sent.tx.clone(),
                        claims: sent.inputs.clone(),
                        deadline,
                    };
                    if !out.contains(&again) {
                        out.push(again);
                    }
                }
            }
            Priced::Nothing => {}
        }
    }
    out
}

/// What to do with a claim over some inputs ([`price`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priced {
    /// Build it at this feerate.
    Build(u32),
    /// Do not replace: broadcast again the claims it would conflict with.
    Keep,
    /// Nothing to broadcast (not worth claiming at the host's feerate, nothing sent yet).
    Nothing,
}

/// The feerate of a claim over `inputs` that wants `urgent`, by the rules of the module
/// docs: the value claimed caps the fee (a dust-safe output stays), and a claim conflicting
/// with ones already broadcast replaces them by BIP 125 or not at all.
fn price(
    m: &ChannelMonitor,
    inputs: &[ClaimInput],
    urgent: u32,
    conflicts: &[&SentClaim],
) -> Priced {
    let total = inputs
        .iter()
        .fold(0u64, |t, i| t.saturating_add(i.value_sat));
    let weight = claim_weight(inputs, &m.destination).max(1);
    let dust = m.destination.minimal_non_dust().to_sat();
    let keep_or_nothing = if conflicts.is_empty() {
        Priced::Nothing
    } else {
        Priced::Keep
    };
    let Some(max_fee) = total.checked_sub(dust) else {
        return keep_or_nothing;
    };
    let affordable = |feerate: u32| claim_fee(feerate, weight) <= max_fee;
    // The highest feerate leaving the dust-safe output.
    let cap = u32::try_from(u128::from(max_fee) * 1000 / u128::from(weight)).unwrap_or(u32::MAX);
    if conflicts.is_empty() {
        return if affordable(urgent) {
            Priced::Build(urgent)
        } else if affordable(m.feerate_per_kw) && affordable(cap) {
            Priced::Build(cap)
        } else {
            Priced::Nothing
        };
    }
    let paid = conflicts.iter().fold(0u64, |t, c| t.saturating_add(c.fee));
    if claim_fee(urgent, weight) <= paid {
        // Nothing more urgent than what is out: the same claims again.
        return Priced::Keep;
    }
    // BIP 125: more than every conflict's fee by the increment on our own weight, and at
    // least each conflict's feerate.
    let required = conflicts
        .iter()
        .map(|c| {
            u64::try_from(
                (u128::from(c.fee) * u128::from(weight)).div_ceil(u128::from(c.weight.max(1))),
            )
            .unwrap_or(u64::MAX)
        })
        .fold(
            paid.saturating_add(crate::wallet::fee_for_weight(
                INCREMENTAL_RELAY_FEERATE_PER_KW,
                weight,
            )),
            u64::max,
        );
    let least = u32::try_from((u128::from(required) * 1000).div_ceil(u128::from(weight)))
        .unwrap_or(u32::MAX);
    let feerate = urgent.max(least);
    if affordable(feerate) {
        Priced::Build(feerate)
    } else if affordable(least) && affordable(cap) {
        Priced::Build(cap)
    } else {
        Priced::Keep
    }
}

/// The claim input for an output we can spend at height `next`, if any.
fn candidate(
    m: &ChannelMonitor,
    a: &Analysis,
    o: &OutputState,
    next: u32,
    secp: &Secp256k1<bitcoin::secp256k1::All>,
) -> Option<Candidate> {
    let out = &o.output;
    let ct = m.terms.channel_type;
    let input = |path: SpendPath, signing_key: SecretKey| ClaimInput {
        outpoint: out.outpoint,
        value_sat: out.value_sat,
        witness_script: out.witness_script.clone(),
        path,
        signing_key,
    };
    let revocation_key = || {
        let secret = a.revocation_secret?;
        m.keys.revocation_key(secp, &secret).ok()
    };
    match &out.kind {
        OutputKind::HolderToLocal { csv, point }
        | OutputKind::HolderSecondStage { csv, point, .. } => {
            if o.confirmed_at + u32::from(*csv) > next {
                return None;
            }
            let key = m.keys.delayed_payment_key(secp, point).ok()?;
            Some(Candidate {
                confirmed_at: o.confirmed_at,
                input: input(
                    SpendPath::Delayed {
                        to_self_delay: *csv,
                    },
                    key,
                ),
                alone: false,
                deadline: next + CLTV_CLAIM_BUFFER + 1,
            })
        }
        OutputKind::CounterpartyToRemote { anchors } => {
            let key = m.keys.payment_base_key;
            if *anchors {
                if o.confirmed_at + 1 > next {
                    return None;
                }
                Some(Candidate {
                    confirmed_at: o.confirmed_at,
                    input: input(SpendPath::ToRemoteAnchors, key),
                    alone: false,
                    deadline: next + CLTV_CLAIM_BUFFER + 1,
                })
            } else {
                Some(Candidate {
                    confirmed_at: o.confirmed_at,
                    input: input(SpendPath::ToRemoteP2wpkh, key),
                    alone: false,
                    deadline: next + CLTV_CLAIM_BUFFER + 1,
                })
            }
        }
        OutputKind::CounterpartyHtlc { htlc, point } => {
            if ct.has_anchors() && o.confirmed_at + 1 > next {
                return None;
            }
            let key = derive_private_key(secp, point, &m.keys.htlc_base_key).ok()?;
            if htlc.offered {
                // The peer offered it: ours with the preimage, until it expires.
                let preimage = *m.preimages.get(&htlc.payment_hash)?;
                Some(Candidate {
                    confirmed_at: o.confirmed_at,
                    input: input(
                        SpendPath::TheirOfferedHtlcPreimage {
                            preimage,
                            channel_type: ct,
                        },
                        key,
                    ),
                    alone: true,
                    deadline: htlc.cltv_expiry,
                })
            } else {
                // We offered it: ours after its expiry, unless the peer claims it first. A
                // transaction locked to `cltv_expiry` is final in the block after it.
                if htlc.cltv_expiry >= next {
                    return None;
                }
                Some(Candidate {
                    confirmed_at: o.confirmed_at,
                    input: input(
                        SpendPath::OurOfferedHtlcTimeout {
                            cltv_expiry: htlc.cltv_expiry,
                            channel_type: ct,
                        },
                        key,
                    ),
                    alone: true,
                    deadline: next + PINNABLE_WINDOW_BLOCKS,
                })
            }
        }
        OutputKind::RevokedToLocal | OutputKind::RevokedSecondStage => {
            // The cheater can take it after its delay: our deadline.
            let deadline = o.confirmed_at + u32::from(m.terms.local_params.to_self_delay);
            Some(Candidate {
                confirmed_at: o.confirmed_at,
                input: input(SpendPath::RevokedDelayed, revocation_key()?),
                alone: false,
                deadline,
            })
        }
        OutputKind::RevokedHtlc { htlc } => {
            // The cheater can take an HTLC it received (we offered) with the preimage at
            // any time, and one it offered after its expiry: pinnable then.
            let pinnable = !htlc.offered || htlc.cltv_expiry <= next + PINNABLE_WINDOW_BLOCKS;
            Some(Candidate {
                confirmed_at: o.confirmed_at,
                input: input(SpendPath::RevokedHtlc, revocation_key()?),
                alone: pinnable,
                deadline: if htlc.offered {
                    htlc.cltv_expiry
                } else {
                    next + PINNABLE_WINDOW_BLOCKS
                },
            })
        }
        OutputKind::HolderHtlc { .. } | OutputKind::Anchor => None,
    }
}

/// Our presigned HTLC-timeout (at expiry) or HTLC-success (with the preimage) transaction
/// for an HTLC output of our confirmed commitment.
fn holder_htlc_claim(
    m: &ChannelMonitor,
    o: &OutputState,
    htlc: &crate::channel::SpecHtlc,
    next: u32,
) -> Option<PlannedClaim> {
    let preimage = if htlc.offered {
        // The HTLC-timeout's nLockTime is `cltv_expiry`: final in the block after it.
        if htlc.cltv_expiry >= next {
            return None;
        }
        None
    } else {
        Some(*m.preimages.get(&htlc.payment_hash)?)
    };
    let secp = crate::secp::ctx();
    let point = m.holder_point(m.holder.index)?;
    let built = m
        .terms
        .build(Side::Local, &m.holder.spec, m.holder.index, &point)
        .ok()?;
    let txs = built.htlc_txs();
    let position = txs
        .iter()
        .position(|t| t.commitment_output().output_index == o.output.outpoint.vout)?;
    let htlc_tx = txs.get(position)?;
    let remote_sig = m.holder.htlc_signatures.get(position)?;
    let key = m.keys.htlc_key(&secp, &point).ok()?;
    let local_sig = htlc_tx.sign_local(&secp, &key);
    let tx = htlc_tx
        .finalize(remote_sig, &local_sig, preimage.as_ref())
        .ok()?;
    let deadline = if htlc.offered {
        htlc.cltv_expiry + CLTV_CLAIM_BUFFER
    } else {
        htlc.cltv_expiry
    };
    if m.terms.channel_type.has_anchors() {
        Some(PlannedClaim::NeedsFees {
            tx,
            anchor: None,
            deadline,
            feerate_per_kw: feerate_for(m, deadline),
            max_fee_sat: o.output.value_sat,
        })
    } else {
        Some(PlannedClaim::Broadcast {
            tx,
            claims: vec![o.output.outpoint],
            deadline,
        })
    }
}
