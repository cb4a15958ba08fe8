//! What confirmed: which transaction spent the funding output, what each of its outputs is,
//! who spent those, and what that settles (preimages revealed, HTLCs resolved). A pure
//! function of the monitor's state ([`analyse`]).

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid, Witness};

use super::monitor::ChannelMonitor;
use crate::channel::{CommitmentSpec, SpecHtlc};
use crate::keys::{per_commitment_point, CommitmentKeys};
use crate::secrets::FIRST_INDEX;
use crate::transactions::scripts::{
    anchor_script, htlc_script, to_local_script, to_remote_anchors_script, to_remote_script_pubkey,
};
use crate::transactions::{CommitmentTx, Side};
use crate::types::{PaymentHash, PaymentPreimage};

/// What spent the funding output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FundingSpendKind {
    /// A cooperative close: its outputs pay the shutdown scripts; nothing to claim.
    Cooperative,
    /// Our commitment.
    Holder {
        /// Its number.
        index: u64,
    },
    /// The peer's current or next commitment.
    Counterparty {
        /// Its number.
        index: u64,
    },
    /// A commitment the peer revoked: everything on it is ours.
    Revoked {
        /// Its number.
        index: u64,
    },
    /// A commitment of the peer's newer than any we know: we lost state.
    Future {
        /// Its number.
        index: u64,
    },
    /// Something else spending the funding output (it should not exist: warn loudly).
    Unknown,
}

/// What one output of interest is, and so who may spend it how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// Our commitment's `to_local`: ours after `csv` blocks.
    HolderToLocal {
        /// The delay.
        csv: u16,
        /// Our per-commitment point of that commitment.
        point: PublicKey,
    },
    /// An HTLC output of our commitment (`htlc.offered`: we offered it).
    HolderHtlc {
        /// The HTLC, from our point of view.
        htlc: SpecHtlc,
    },
    /// The output of our HTLC-success or HTLC-timeout transaction: ours after `csv` blocks.
    HolderSecondStage {
        /// The HTLC it settled, from our point of view.
        htlc: SpecHtlc,
        /// The delay.
        csv: u16,
        /// Our per-commitment point of the commitment.
        point: PublicKey,
    },
    /// Our `to_remote` on the peer's commitment.
    CounterpartyToRemote {
        /// Anchor channels lock it for one block.
        anchors: bool,
    },
    /// An HTLC output of the peer's (current, next) commitment (`htlc.offered`: the peer
    /// offered it, so we claim it with the preimage; otherwise we offered it and claim it
    /// after its expiry).
    CounterpartyHtlc {
        /// The HTLC, from the peer's point of view.
        htlc: SpecHtlc,
        /// The peer's per-commitment point of that commitment.
        point: PublicKey,
    },
    /// The `to_local` of a revoked commitment of the peer's.
    RevokedToLocal,
    /// An HTLC output of a revoked commitment of the peer's.
    RevokedHtlc {
        /// The HTLC, from the peer's point of view.
        htlc: SpecHtlc,
    },
    /// The output of the peer's HTLC transaction spending a revoked commitment's HTLC.
    RevokedSecondStage,
    /// One of the commitment's anchors (ours, or anyone's after 16 blocks): not claimed.
    Anchor,
}

impl OutputKind {
    /// Whether this is an HTLC output of an HTLC we offered.
    pub fn htlc_offered_by_us(&self) -> bool {
        match self {
            OutputKind::HolderHtlc { htlc } | OutputKind::HolderSecondStage { htlc, .. } => {
                htlc.offered
            }
            OutputKind::CounterpartyHtlc { htlc, .. } | OutputKind::RevokedHtlc { htlc } => {
                !htlc.offered
            }
            _ => false,
        }
    }
}

/// An output the monitor watches until it is irrevocably spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedOutput {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub value_sat: u64,
    /// Its witness script (empty for a P2WPKH output).
    pub witness_script: ScriptBuf,
    /// What it is.
    pub kind: OutputKind,
}

/// A tracked output and what the chain did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputState {
    pub(crate) output: TrackedOutput,
    /// The height of the transaction that created it.
    pub(crate) confirmed_at: u32,
    /// The transaction that spent it and its height.
    pub(crate) spent_by: Option<(Txid, u32)>,
}

/// Everything the monitor concludes from what confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Analysis {
    pub(crate) spend_txid: Txid,
    pub(crate) spend_height: u32,
    pub(crate) kind: FundingSpendKind,
    /// The per-commitment secret of a revoked commitment that confirmed.
    pub(crate) revocation_secret: Option<[u8; 32]>,
    pub(crate) outputs: Vec<OutputState>,
    /// HTLCs we offered whose preimage is known: (our id, preimage).
    pub(crate) outbound_fulfilled: Vec<(u64, PaymentPreimage)>,
    /// HTLCs we offered resolved without a preimage: (our id, hash, height resolved at).
    pub(crate) outbound_failed: Vec<(u64, PaymentHash, u32)>,
    /// HTLCs offered to us resolved on chain: (HTLC from our view, claimed by us, height).
    pub(crate) inbound_resolved: Vec<(SpecHtlc, bool, u32)>,
    /// Our claims that confirmed: (txid, value paid to the destination, height).
    pub(crate) our_claims_confirmed: Vec<(Txid, u64, u32)>,
}

impl Analysis {
    /// Outputs not yet irrevocably spent (anchors excepted).
    pub(crate) fn unresolved_outputs(&self, monitor: &ChannelMonitor) -> usize {
        self.outputs
            .iter()
            .filter(|o| o.output.kind != OutputKind::Anchor)
            .filter(|o| {
                o.spent_by
                    .is_none_or(|(_, h)| monitor.best_height + 1 < h + super::ANTI_REORG_DELAY)
            })
            .count()
    }
}

/// The commitment number a commitment transaction carries (obscured in its locktime and
/// its input's sequence), if it is shaped as one.
pub(crate) fn commitment_number(tx: &Transaction, obscure_factor: u64) -> Option<u64> {
    let locktime = tx.lock_time.to_consensus_u32();
    let sequence = tx.input.first()?.sequence.0;
    if tx.input.len() != 1 || locktime >> 24 != 0x20 || sequence >> 24 != 0x80 {
        return None;
    }
    let obscured = (u64::from(sequence & 0xff_ffff) << 24) | u64::from(locktime & 0xff_ffff);
    Some(obscured ^ obscure_factor)
}

/// The analysis of the monitor's confirmed set, if the funding output was spent.
pub(crate) fn analyse(m: &ChannelMonitor) -> Option<Analysis> {
    let (spend_txid, spend_height) = m.funding_spend()?;
    let (_, spend_tx) = m.confirmed.get(&spend_txid)?;
    let secp = crate::secp::ctx();
    let mut revocation_secret = None;
    let mut outputs: Vec<(TrackedOutput, u32)> = Vec::new();
    // HTLCs that could be in the commitment that confirmed: ours (offered) by id, theirs
    // (offered to us) by id, from our point of view; and those that have an output in it.
    let mut candidates: BTreeMap<(bool, u64), SpecHtlc> = BTreeMap::new();
    for h in m.holder.spec.htlcs.values() {
        candidates.insert((h.offered, h.id), *h);
    }
    for c in m.counterparty.values() {
        for h in c.spec.htlcs.values() {
            let ours = SpecHtlc {
                offered: !h.offered,
                ..*h
            };
            candidates.insert((ours.offered, ours.id), ours);
        }
    }
    let kind = classify(m, spend_tx, &spend_txid);
    match &kind {
        FundingSpendKind::Holder { .. } => {
            if let Some(built) = holder_built(m) {
                let point = built.keys().per_commitment_point;
                let csv = m.terms.remote_params.to_self_delay;
                outputs.extend(
                    commitment_outputs(m, &built, &m.holder.spec, true)
                        .into_iter()
                        .map(|mut o| {
                            if let OutputKind::HolderToLocal { .. } = o.kind {
                                o.kind = OutputKind::HolderToLocal { csv, point };
                            }
                            (o, spend_height)
                        }),
                );
            }
        }
        FundingSpendKind::Counterparty { index } => {
            if let Some(c) = m.counterparty.get(index) {
                if let Ok(built) = m.terms.build(Side::Remote, &c.spec, c.index, &c.point) {
                    outputs.extend(
                        commitment_outputs(m, &built, &c.spec, false)
                            .into_iter()
                            .map(|o| (o, spend_height)),
                    );
                }
            }
        }
        FundingSpendKind::Revoked { index } => {
            let secret = m.secrets.get(FIRST_INDEX - index);
            revocation_secret = secret;
            if let Some(secret) = secret {
                let htlcs = m.revoked_htlcs.get(index).cloned().unwrap_or_default();
                for h in &htlcs {
                    let ours = SpecHtlc {
                        offered: !h.offered,
                        ..*h
                    };
                    candidates.insert((ours.offered, ours.id), ours);
                }
                outputs.extend(
                    revoked_outputs(m, spend_tx, &spend_txid, &secret, &htlcs)
                        .into_iter()
                        .map(|o| (o, spend_height)),
                );
            }
        }
        FundingSpendKind::Future { .. } => {
            outputs.extend(
                to_remote_outputs(m, spend_tx, &spend_txid)
                    .into_iter()
                    .map(|o| (o, spend_height)),
            );
        }
        FundingSpendKind::Cooperative | FundingSpendKind::Unknown => {}
    }
    let _ = &secp;
    // Follow the spends: second stages add outputs; witnesses reveal preimages.
    let mut states: Vec<OutputState> = Vec::new();
    let mut revealed: BTreeMap<PaymentHash, PaymentPreimage> = BTreeMap::new();
    let mut i = 0;
    while let Some((output, confirmed_at)) = outputs.get(i).cloned() {
        i += 1;
        let spender = spender_of(m, &output.outpoint);
        if let Some((txid, height, tx, input_index)) = &spender {
            let witness = tx
                .input
                .get(*input_index)
                .map(|i| &i.witness)
                .cloned()
                .unwrap_or_default();
            if let Some(htlc) = htlc_of(&output.kind) {
                if let Some(p) = preimage_in(&witness, &htlc.payment_hash) {
                    revealed.insert(htlc.payment_hash, p);
                }
            }
            if let Some(next) = second_stage(m, &output, tx, txid, *input_index, &revocation_secret)
            {
                outputs.push((next, *height));
            }
        }
        states.push(OutputState {
            output,
            confirmed_at,
            spent_by: spender.map(|(t, h, _, _)| (t, h)),
        });
    }
    // Which HTLCs the confirmed commitment holds an output for.
    let in_commitment: BTreeSet<(bool, u64)> = states
        .iter()
        .filter_map(|s| match &s.output.kind {
            OutputKind::HolderHtlc { htlc } => Some((htlc.offered, htlc.id)),
            OutputKind::CounterpartyHtlc { htlc, .. } | OutputKind::RevokedHtlc { htlc } => {
                Some((!htlc.offered, htlc.id))
            }
            _ => None,
        })
        .collect();
    let deep_final = matches!(
        kind,
        FundingSpendKind::Cooperative | FundingSpendKind::Unknown
    );
    let mut outbound_fulfilled = Vec::new();
    let mut outbound_failed = Vec::new();
    let mut inbound_resolved = Vec::new();
    for ((offered_by_us, id), htlc) in &candidates {
        let preimage = revealed
            .get(&htlc.payment_hash)
            .or_else(|| m.preimages.get(&htlc.payment_hash));
        if *offered_by_us {
            if let Some(p) = preimage {
                outbound_fulfilled.push((*id, *p));
                continue;
            }
            if !in_commitment.contains(&(true, *id)) {
                // No output for it in what confirmed: it can never be claimed with a
                // preimage on chain (failing back one whose preimage we hold would lose it,
                // which the branch above rules out).
                outbound_failed.push((*id, htlc.payment_hash, spend_height));
                continue;
            }
            // Its output: resolved for us when spent without a preimage (our timeout, our
            // justice), and its spend is deep.
            if let Some(h) = htlc_output_spend_height(&states, true, *id, true) {
                outbound_failed.push((*id, htlc.payment_hash, h));
            }
        } else {
            if deep_final {
                continue;
            }
            if !in_commitment.contains(&(false, *id)) {
                inbound_resolved.push((*htlc, false, spend_height));
                continue;
            }
            if let Some(h) = htlc_output_spend_height(&states, false, *id, false) {
                // Claimed by us if the final spend is ours: a preimage revealed for it.
                let claimed = revealed.contains_key(&htlc.payment_hash)
                    || matches!(kind, FundingSpendKind::Revoked { .. });
                inbound_resolved.push((*htlc, claimed, h));
            }
        }
    }
    // Our claims: confirmed transactions paying the destination.
    let mut our_claims_confirmed = Vec::new();
    for (txid, (height, tx)) in &m.confirmed {
        let value: u64 = tx
            .output
            .iter()
            .filter(|o| o.script_pubkey == m.destination)
            .map(|o| o.value.to_sat())
            .sum();
        if value > 0 && *txid != spend_txid {
            our_claims_confirmed.push((*txid, value, *height));
        }
    }
    Some(Analysis {
        spend_txid,
        spend_height,
        kind,
        revocation_secret,
        outputs: states,
        outbound_fulfilled,
        outbound_failed,
        inbound_resolved,
        our_claims_confirmed,
    })
}

/// The height at which the HTLC's output was spent, if it was: its commitment output
/// (`first_stage`: an HTLC we offered is settled once that output is spent without a
/// preimage, however long our second stage's delay), or the last output that holds its
/// value (the second stage that spent it: our funds are in only once that is swept).
fn htlc_output_spend_height(
    states: &[OutputState],
    offered_by_us: bool,
    id: u64,
    first_stage: bool,
) -> Option<u32> {
    let mut last = None;
    for s in states {
        let matches = match &s.output.kind {
            OutputKind::HolderHtlc { htlc } => htlc.offered == offered_by_us && htlc.id == id,
            OutputKind::HolderSecondStage { htlc, .. } if !first_stage => {
                htlc.offered == offered_by_us && htlc.id == id
            }
            OutputKind::CounterpartyHtlc { htlc, .. } | OutputKind::RevokedHtlc { htlc } => {
                htlc.offered != offered_by_us && htlc.id == id
            }
            _ => false,
        };
        if matches {
            last = Some(s.spent_by.map(|(_, h)| h));
        }
    }
    last.flatten()
}

fn classify(m: &ChannelMonitor, tx: &Transaction, txid: &Txid) -> FundingSpendKind {
    let Some(number) = commitment_number(tx, m.obscure_factor) else {
        return if tx.input.len() == 1 {
            FundingSpendKind::Cooperative
        } else {
            FundingSpendKind::Unknown
        };
    };
    if *txid == m.holder.txid {
        return FundingSpendKind::Holder { index: number };
    }
    if let Some(c) = m.counterparty.get(&number) {
        if c.txid == *txid {
            return FundingSpendKind::Counterparty { index: number };
        }
    }
    let revoked_up_to = m.secrets.last_index().map(|last| FIRST_INDEX - last);
    if revoked_up_to.is_some_and(|r| number <= r) {
        return FundingSpendKind::Revoked { index: number };
    }
    let newest = m.counterparty.keys().next_back().copied().unwrap_or(0);
    if number > newest {
        return FundingSpendKind::Future { index: number };
    }
    FundingSpendKind::Unknown
}

/// Our latest commitment, rebuilt.
fn holder_built(m: &ChannelMonitor) -> Option<CommitmentTx> {
    let point = m.holder_point(m.holder.index)?;
    m.terms
        .build(Side::Local, &m.holder.spec, m.holder.index, &point)
        .ok()
}

/// The outputs of a commitment we can rebuild exactly (ours, or the peer's current/next).
fn commitment_outputs(
    m: &ChannelMonitor,
    built: &CommitmentTx,
    spec: &CommitmentSpec,
    ours: bool,
) -> Vec<TrackedOutput> {
    let txid = built.txid();
    let keys = built.keys();
    let tx = built.tx();
    let mut out = Vec::new();
    let spec_htlcs: Vec<&SpecHtlc> = spec.htlcs.values().collect();
    let mut htlc_vouts = BTreeMap::new();
    for o in built.htlc_outputs() {
        if let Some(h) = spec_htlcs.get(o.htlc_index) {
            htlc_vouts.insert(o.output_index, (**h, o.witness_script.clone()));
        }
    }
    let owner_delay = if ours {
        m.terms.remote_params.to_self_delay
    } else {
        m.terms.local_params.to_self_delay
    };
    let to_local = to_local_script(&keys.revocation_key, owner_delay, &keys.local_delayed_key);
    let to_local_spk = to_local.to_p2wsh();
    let our_funding = m.terms.local_pubkeys.funding_pubkey;
    let our_anchor = anchor_script(&our_funding).to_p2wsh();
    let our_payment = m.terms.local_pubkeys.payment_basepoint;
    let to_remote_spk = to_remote_script_pubkey(&our_payment, m.terms.channel_type);
    for (vout, txout) in tx.output.iter().enumerate() {
        let vout = vout as u32;
        let outpoint = OutPoint { txid, vout };
        let value_sat = txout.value.to_sat();
        let tracked = |witness_script: ScriptBuf, kind: OutputKind| TrackedOutput {
            outpoint,
            value_sat,
            witness_script,
            kind,
        };
        if let Some((h, script)) = htlc_vouts.get(&vout) {
            out.push(if ours {
                tracked(script.clone(), OutputKind::HolderHtlc { htlc: *h })
            } else {
                tracked(
                    script.clone(),
                    OutputKind::CounterpartyHtlc {
                        htlc: *h,
                        point: keys.per_commitment_point,
                    },
                )
            });
        } else if ours && txout.script_pubkey == to_local_spk {
            out.push(tracked(
                to_local.clone(),
                OutputKind::HolderToLocal {
                    csv: owner_delay,
                    point: keys.per_commitment_point,
                },
            ));
        } else if !ours && txout.script_pubkey == to_remote_spk {
            out.push(to_remote_tracked(m, outpoint, value_sat));
        } else if ours && txout.script_pubkey == our_anchor {
            out.push(tracked(anchor_script(&our_funding), OutputKind::Anchor));
        }
    }
    out
}

fn to_remote_tracked(m: &ChannelMonitor, outpoint: OutPoint, value_sat: u64) -> TrackedOutput {
    let anchors = m.terms.channel_type.has_anchors();
    let key = m.terms.local_pubkeys.payment_basepoint;
    TrackedOutput {
        outpoint,
        value_sat,
        witness_script: if anchors {
            to_remote_anchors_script(&key)
        } else {
            ScriptBuf::new()
        },
        kind: OutputKind::CounterpartyToRemote { anchors },
    }
}

/// Our `to_remote` on any commitment of the peer's (its script needs no per-commitment
/// point with `static_remotekey`).
fn to_remote_outputs(m: &ChannelMonitor, tx: &Transaction, txid: &Txid) -> Vec<TrackedOutput> {
    let spk = to_remote_script_pubkey(
        &m.terms.local_pubkeys.payment_basepoint,
        m.terms.channel_type,
    );
    tx.output
        .iter()
        .enumerate()
        .filter(|(_, o)| o.script_pubkey == spk)
        .map(|(vout, o)| {
            to_remote_tracked(
                m,
                OutPoint {
                    txid: *txid,
                    vout: vout as u32,
                },
                o.value.to_sat(),
            )
        })
        .collect()
}

/// The outputs of a revoked commitment of the peer's, found by script: its `to_local`, every
/// HTLC output of the HTLCs it held, and our `to_remote`.
fn revoked_outputs(
    m: &ChannelMonitor,
    tx: &Transaction,
    txid: &Txid,
    secret: &[u8; 32],
    htlcs: &[SpecHtlc],
) -> Vec<TrackedOutput> {
    let secp = crate::secp::ctx();
    let Ok(point) = per_commitment_point(&secp, secret) else {
        return Vec::new();
    };
    let Ok(keys) = CommitmentKeys::derive(
        &secp,
        &point,
        &m.terms.remote_pubkeys,
        &m.terms.local_pubkeys,
    ) else {
        return Vec::new();
    };
    let ct = m.terms.channel_type;
    let to_local = to_local_script(
        &keys.revocation_key,
        m.terms.local_params.to_self_delay,
        &keys.local_delayed_key,
    );
    let to_local_spk = to_local.to_p2wsh();
    let mut scripts: Vec<(SpecHtlc, ScriptBuf)> = Vec::new();
    if let Some(htlc_keys) = &keys.htlc_keys {
        for h in htlcs {
            scripts.push((
                *h,
                htlc_script(&h.to_tx_htlc(), &keys.revocation_key, htlc_keys, ct),
            ));
        }
    }
    let mut used = vec![false; scripts.len()];
    let mut out = to_remote_outputs(m, tx, txid);
    for (vout, txout) in tx.output.iter().enumerate() {
        let outpoint = OutPoint {
            txid: *txid,
            vout: vout as u32,
        };
        let value_sat = txout.value.to_sat();
        if txout.script_pubkey == to_local_spk {
            out.push(TrackedOutput {
                outpoint,
                value_sat,
                witness_script: to_local.clone(),
                kind: OutputKind::RevokedToLocal,
            });
            continue;
        }
        let found = scripts.iter().enumerate().find(|(i, (h, s))| {
            !used.get(*i).copied().unwrap_or(true)
                && s.to_p2wsh() == txout.script_pubkey
                && h.amount_msat / 1000 == value_sat
        });
        if let Some((i, (h, s))) = found {
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
            out.push(TrackedOutput {
                outpoint,
                value_sat,
                witness_script: s.clone(),
                kind: OutputKind::RevokedHtlc { htlc: *h },
            });
        }
    }
    out
}

/// The confirmed transaction spending `outpoint`: (txid, height, tx, input index).
fn spender_of(m: &ChannelMonitor, outpoint: &OutPoint) -> Option<(Txid, u32, Transaction, usize)> {
    m.confirmed.iter().find_map(|(txid, (height, tx))| {
        tx.input
            .iter()
            .position(|i| i.previous_output == *outpoint)
            .map(|pos| (*txid, *height, tx.clone(), pos))
    })
}

fn htlc_of(kind: &OutputKind) -> Option<&SpecHtlc> {
    match kind {
        OutputKind::HolderHtlc { htlc }
        | OutputKind::CounterpartyHtlc { htlc, .. }
        | OutputKind::RevokedHtlc { htlc } => Some(htlc),
        _ => None,
    }
}

/// A 32-byte witness element whose SHA256 is `hash`: a preimage revealed on chain (checked,
/// never trusted from the witness's shape).
pub(crate) fn preimage_in(witness: &Witness, hash: &PaymentHash) -> Option<PaymentPreimage> {
    witness.iter().find_map(|element| {
        let bytes: [u8; 32] = element.try_into().ok()?;
        let p = PaymentPreimage(bytes);
        (p.payment_hash() == *hash).then_some(p)
    })
}

/// Whether a witness spending an HTLC output is a second-stage HTLC transaction's (the
/// 2-of-2 path: an empty dummy element first, five elements).
fn is_second_stage_witness(witness: &Witness) -> bool {
    witness.len() == 5 && witness.nth(0).is_some_and(<[u8]>::is_empty)
}

/// The output a spend of `output` creates that we must watch in turn: our HTLC
/// transaction's delayed output, or a cheater's HTLC transaction's output (revocable).
fn second_stage(
    m: &ChannelMonitor,
    output: &TrackedOutput,
    tx: &Transaction,
    txid: &Txid,
    input_index: usize,
    revocation_secret: &Option<[u8; 32]>,
) -> Option<TrackedOutput> {
    let witness = &tx.input.get(input_index)?.witness;
    if !is_second_stage_witness(witness) {
        return None;
    }
    // HTLC transactions pair input i with output i (SIGHASH_SINGLE lets a cheater bundle
    // several with anchors).
    let txout = tx.output.get(input_index)?;
    let outpoint = OutPoint {
        txid: *txid,
        vout: input_index as u32,
    };
    match &output.kind {
        OutputKind::HolderHtlc { htlc } => {
            let point = m.holder_point(m.holder.index)?;
            let secp = crate::secp::ctx();
            let keys = CommitmentKeys::derive_without_htlc_keys(
                &secp,
                &point,
                &m.terms.local_pubkeys,
                &m.terms.remote_pubkeys,
            )
            .ok()?;
            let csv = m.terms.remote_params.to_self_delay;
            let script = to_local_script(&keys.revocation_key, csv, &keys.local_delayed_key);
            (txout.script_pubkey == script.to_p2wsh()).then(|| TrackedOutput {
                outpoint,
                value_sat: txout.value.to_sat(),
                witness_script: script,
                kind: OutputKind::HolderSecondStage {
                    htlc: *htlc,
                    csv,
                    point,
                },
            })
        }
        OutputKind::RevokedHtlc { .. } => {
            let secret = revocation_secret.as_ref()?;
            let secp = crate::secp::ctx();
            let point = per_commitment_point(&secp, secret).ok()?;
            let keys = CommitmentKeys::derive_without_htlc_keys(
                &secp,
                &point,
                &m.terms.remote_pubkeys,
                &m.terms.local_pubkeys,
            )
            .ok()?;
            let script = to_local_script(
                &keys.revocation_key,
                m.terms.local_params.to_self_delay,
                &keys.local_delayed_key,
            );
            (txout.script_pubkey == script.to_p2wsh()).then(|| TrackedOutput {
                outpoint,
                value_sat: txout.value.to_sat(),
                witness_script: script,
                kind: OutputKind::RevokedSecondStage,
            })
        }
        _ => None,
    }
}
