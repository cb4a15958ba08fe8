//! What to claim now, grouped and priced: LDK's packages, reduced to three rules.
//!
//! * Outputs only we can spend (our delayed outputs, our `to_remote`, a cheater's revoked
//!   `to_local` and second-stage outputs while their delay runs) go together in one
//!   transaction: aggregation cannot be pinned by the peer.
//! * An output the peer can also spend soon (an HTLC output on the peer's commitment, a
//!   revoked HTLC output the cheater can take with its presigned HTLC transaction) is
//!   claimed in a transaction of its own, so a pinned claim never holds the others back.
//! * The fee grows as the deadline nears: the host's feerate at more than
//!   [`CLTV_CLAIM_BUFFER`] blocks, then 1.5x, 2x within [`PINNABLE_WINDOW_BLOCKS`], 4x within
//!   [`LATENCY_GRACE_PERIOD_BLOCKS`]. Claims are rebuilt and rebroadcast every block, so
//!   each replacement pays more as time runs out (BIP 125: it also pays more in absolute
//!   terms, since the inputs are the same and the multiplier only grows).
//!
//! Second-stage HTLC transactions of our own commitment come presigned by the peer: with
//! `static_remotekey` they carry their own fee and go out as they are; with anchors they pay
//! none and go to the host as [`PlannedClaim::NeedsFees`].

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{OutPoint, Transaction};

use super::monitor::ChannelMonitor;
use super::spend::{Analysis, OutputKind, OutputState};
use super::{CLTV_CLAIM_BUFFER, LATENCY_GRACE_PERIOD_BLOCKS, PINNABLE_WINDOW_BLOCKS};
use crate::keys::derive_private_key;
use crate::transactions::claims::{build_claim_tx, ClaimInput, SpendPath};
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

fn feerate_for(m: &ChannelMonitor, deadline: u32) -> u32 {
    let left = deadline.saturating_sub(m.best_height);
    m.feerate_per_kw.saturating_mul(urgency_quarters(left)) / 4
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
    let secp = Secp256k1::new();
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
    for group in groups {
        let deadline = group.iter().map(|c| c.deadline).min().unwrap_or(next);
        // nLockTime: the newest input's height, so the claim (and its txid) stays the same
        // from block to block until its fee changes (a rebroadcast of the same claim, not a
        // replacement that pays no more).
        let locktime = group.iter().map(|c| c.confirmed_at).max().unwrap_or(0);
        let inputs: Vec<ClaimInput> = group.into_iter().map(|c| c.input).collect();
        let feerate = feerate_for(m, deadline);
        let claims = inputs.iter().map(|i| i.outpoint).collect();
        // Only an output worth less than its claim's fee (dust at this feerate) fails to
        // build: it is retried each block, and claimed if the feerate falls.
        if let Ok(tx) = build_claim_tx(&secp, &inputs, m.destination.clone(), feerate, locktime) {
            out.push(PlannedClaim::Broadcast {
                tx,
                claims,
                deadline,
            });
        }
    }
    out
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
    let secp = Secp256k1::new();
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
        })
    } else {
        Some(PlannedClaim::Broadcast {
            tx,
            claims: vec![o.output.outpoint],
            deadline,
        })
    }
}
