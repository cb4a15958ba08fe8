//! [`Bumper`]: the host's answer to [`MonitorEvent::BumpNeeded`], holding the bumps in
//! flight (in the spirit of LDK's `BumpTransactionEventHandler`, which leaves that state to
//! its caller).
//!
//! The monitor asks for fees every block until the transaction confirms, at a feerate that
//! grows toward its deadline, with a cap: the value at stake (`max_fee_sat`). The bumper
//! answers:
//!
//! * the first request for a transaction with a bump from the wallet: a CPFP child through
//!   our anchor for a commitment ([`bump_commitment`]), fee inputs and change for an HTLC
//!   transaction ([`bump_htlc`]). When the request's feerate would pay more than the cap,
//!   the feerate is scaled down to fit it.
//! * each later request, once per block, with a replacement spending the SAME inputs (BIP
//!   125: it conflicts with the last and pays more) at `max(requested feerate, last feerate
//!   × 5/4)`, at least BIP 125's increment more, and never more than the cap
//!   ([`rebump_commitment`], [`rebump_htlc_bump`]). At the cap (or when the coins cannot pay
//!   more with change above dust) it keeps the last bump and relays it again.
//!
//! Every answer is what to relay now ([`BumpBroadcast`]): the commitment with its child as
//! a package, or the completed HTLC transaction; relaying the same one again is harmless.
//!
//! # Releasing the coins
//! The wallet's coins stay reserved while a bump is in flight. The host feeds the bumper
//! every block ([`Bumper::block_connected`] with the block's transactions, and
//! [`Bumper::blocks_disconnected`] on a reorg). A bump is settled when a transaction
//! spending the output its transaction contests (the funding output for a commitment, the
//! HTLC output for an HTLC transaction) confirms: ours, or a conflicting one (the peer's
//! commitment, the peer's claim of the HTLC). The monitor stops asking exactly then. After
//! [`ANTI_REORG_DELAY`] confirmations its coins are released ([`Wallet::release`]; the
//! coins our bump spent are gone from the wallet anyway) and the bump is forgotten. A host
//! may also give a bump up at any time ([`Bumper::abandon`]).
//!
//! The bumper is plain state, not a thread: call it from the loop that handles the engine's
//! events. It is not persisted: after a restart the first request bumps afresh (the coins
//! reserved before the restart are the wallet's to release or keep).

use std::collections::BTreeMap;

use lightning_core::bitcoin::{OutPoint, Transaction, Txid};
use lightning_core::chain::bump::BumpError;
use lightning_core::chain::{MonitorEvent, ANTI_REORG_DELAY};
use lightning_core::types::ChannelId;

use crate::api::NodeApi;
use crate::wallet::{
    bump_commitment, bump_htlc, rebump_commitment, rebump_htlc_bump, BumpCommitmentError,
    CommitmentBump, HtlcBumped, Wallet,
};

/// What to relay for a bump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BumpBroadcast {
    /// A commitment and its CPFP child: relay them together as a package (Core's
    /// `submitpackage`); the commitment alone pays too little.
    Package {
        /// The commitment (fully signed, as the monitor gave it).
        parent: Transaction,
        /// The signed child spending our anchor and wallet coins.
        child: Transaction,
    },
    /// An HTLC transaction completed with fee inputs: broadcast it.
    Transaction(Transaction),
}

/// One bump in flight, as [`Bumper::status`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BumpStatus {
    /// The channel.
    pub channel_id: ChannelId,
    /// The feerate of the last bump (the package's for a commitment).
    pub feerate_per_kw: u32,
    /// The fee the wallet's side pays: the child's fee, or the HTLC transaction's.
    pub fee_satoshis: u64,
    /// The cap of the last request.
    pub max_fee_sat: u64,
    /// The wallet's coins it spends (reserved until released).
    pub wallet_inputs: Vec<OutPoint>,
    /// How many bumps were made (the first and its replacements).
    pub bumps: u32,
    /// The height at which a spend of the contested output confirmed, if one did.
    pub settled_at: Option<u32>,
}

#[derive(Debug, Clone)]
enum Bumped {
    Commitment(CommitmentBump),
    Htlc(HtlcBumped),
}

impl Bumped {
    fn fee(&self) -> u64 {
        match self {
            Bumped::Commitment(b) => b.plan.fee_satoshis,
            Bumped::Htlc(b) => b.plan.fee_satoshis,
        }
    }

    fn wallet_inputs(&self) -> Vec<OutPoint> {
        match self {
            Bumped::Commitment(b) => b.plan.wallet_outpoints(),
            Bumped::Htlc(b) => b.plan.wallet_outpoints(),
        }
    }

    fn broadcast(&self) -> BumpBroadcast {
        match self {
            Bumped::Commitment(b) => BumpBroadcast::Package {
                parent: b.commitment.clone(),
                child: b.child.clone(),
            },
            Bumped::Htlc(b) => BumpBroadcast::Transaction(b.tx.clone()),
        }
    }
}

#[derive(Debug, Clone)]
struct InFlight {
    channel_id: ChannelId,
    /// The output the bumped transaction spends that others may spend too.
    contested: OutPoint,
    bumped: Bumped,
    feerate_per_kw: u32,
    max_fee_sat: u64,
    /// The height of the last bump (at most one per block).
    bumped_at: u32,
    bumps: u32,
    settled_at: Option<u32>,
}

/// The bumps in flight of one node, by the txid of the transaction needing fees. See the
/// [module documentation](self).
#[derive(Debug, Default)]
pub struct Bumper {
    in_flight: BTreeMap<Txid, InFlight>,
}

/// The factor, in quarters, by which each re-bump raises the last feerate at least.
const REBUMP_QUARTERS: u32 = 5;

impl Bumper {
    /// A bumper with nothing in flight.
    pub fn new() -> Bumper {
        Bumper::default()
    }

    /// Answers `event` of channel `channel_id` at block `height`: for a
    /// [`MonitorEvent::BumpNeeded`], bumps its transaction from `wallet` (the first
    /// request), re-bumps it with the same inputs (a later request in a later block), or
    /// keeps the last bump (the cap reached, the coins unable to pay more, a second request
    /// in the same block); returns what to relay. Other events, and requests for a
    /// transaction already settled, return nothing.
    ///
    /// Errors leave the bumper as it was (a replacement that failed keeps the last bump in
    /// flight): [`BumpError::FeeCapExceeded`] (inside [`BumpCommitmentError::Bump`]) when
    /// even a first bump at the relay minimum would pay more than the cap,
    /// [`BumpError::InsufficientFunds`] when the wallet cannot pay a first bump, and the
    /// wallet's or the engine's failures.
    pub fn handle<B: NodeApi + Clone>(
        &mut self,
        api: B,
        wallet: &(impl Wallet + ?Sized),
        channel_id: ChannelId,
        event: &MonitorEvent,
        height: u32,
    ) -> Result<Vec<BumpBroadcast>, BumpCommitmentError> {
        let MonitorEvent::BumpNeeded {
            tx,
            feerate_per_kw,
            max_fee_sat,
            ..
        } = event
        else {
            return Ok(Vec::new());
        };
        let txid = tx.compute_txid();
        let Some(entry) = self.in_flight.get_mut(&txid) else {
            let entry = first_bump(
                api,
                wallet,
                channel_id,
                event,
                *feerate_per_kw,
                *max_fee_sat,
            )?;
            let out = entry.bumped.broadcast();
            tracing::info!(%channel_id, %txid, fee = entry.bumped.fee(), feerate = entry.feerate_per_kw, cap = max_fee_sat, "bumped");
            self.in_flight.insert(
                txid,
                InFlight {
                    bumped_at: height,
                    ..entry
                },
            );
            return Ok(vec![out]);
        };
        if entry.settled_at.is_some() {
            return Ok(Vec::new());
        }
        entry.max_fee_sat = *max_fee_sat;
        if height <= entry.bumped_at {
            return Ok(vec![entry.bumped.broadcast()]);
        }
        let feerate = (*feerate_per_kw).max(
            u32::try_from(u64::from(entry.feerate_per_kw) * u64::from(REBUMP_QUARTERS) / 4)
                .unwrap_or(u32::MAX),
        );
        let replaced = match &entry.bumped {
            Bumped::Commitment(previous) => {
                rebump_commitment(api, wallet, channel_id, previous, feerate, *max_fee_sat)
                    .map(Bumped::Commitment)
            }
            Bumped::Htlc(previous) => {
                rebump_htlc_bump(api, wallet, channel_id, previous, feerate, *max_fee_sat)
                    .map(Bumped::Htlc)
            }
        };
        entry.bumped_at = height;
        match replaced {
            Ok(bumped) => {
                tracing::info!(%channel_id, %txid, fee = bumped.fee(), feerate, cap = max_fee_sat, "re-bumped with the same inputs");
                entry.bumped = bumped;
                entry.feerate_per_kw = feerate;
                entry.bumps += 1;
            }
            Err(BumpCommitmentError::Bump(
                error @ (BumpError::FeeCapExceeded { .. } | BumpError::InsufficientFunds { .. }),
            )) => {
                tracing::warn!(%channel_id, %txid, %error, fee = entry.bumped.fee(), "keeping the last bump");
            }
            Err(e) => return Err(e),
        }
        Ok(vec![entry.bumped.broadcast()])
    }

    /// A block connected at `height` with `txdata` (all its transactions, or those of
    /// interest): a bump whose contested output one of them spends is settled at `height`;
    /// bumps settled [`ANTI_REORG_DELAY`] blocks deep have their coins released and are
    /// forgotten. Returns the txids of the transactions forgotten. A wallet that fails to
    /// release keeps the bump, to try again at the next block.
    pub fn block_connected(
        &mut self,
        wallet: &(impl Wallet + ?Sized),
        height: u32,
        txdata: &[&Transaction],
    ) -> Vec<Txid> {
        for entry in self.in_flight.values_mut() {
            if entry.settled_at.is_none()
                && txdata
                    .iter()
                    .any(|t| t.input.iter().any(|i| i.previous_output == entry.contested))
            {
                entry.settled_at = Some(height);
            }
        }
        let deep: Vec<Txid> = self
            .in_flight
            .iter()
            .filter(|(_, e)| {
                e.settled_at
                    .is_some_and(|at| height + 1 >= at + ANTI_REORG_DELAY)
            })
            .map(|(txid, _)| *txid)
            .collect();
        let mut forgotten = Vec::new();
        for txid in deep {
            if self.release(wallet, &txid) {
                forgotten.push(txid);
            }
        }
        forgotten
    }

    /// The blocks from `height` up were disconnected: settlements they held are undone (the
    /// bump is in flight again, and re-bumped at the next request).
    pub fn blocks_disconnected(&mut self, height: u32) {
        for entry in self.in_flight.values_mut() {
            if entry.settled_at.is_some_and(|at| at >= height) {
                entry.settled_at = None;
            }
            entry.bumped_at = entry.bumped_at.min(height.saturating_sub(1));
        }
    }

    /// Gives the bump of `txid` up: releases its coins and forgets it (a later request
    /// bumps afresh). Returns whether it was in flight.
    pub fn abandon(&mut self, wallet: &(impl Wallet + ?Sized), txid: &Txid) -> bool {
        self.release(wallet, txid)
    }

    /// The bump in flight for the transaction `txid` (the one needing fees), if any.
    pub fn status(&self, txid: &Txid) -> Option<BumpStatus> {
        self.in_flight.get(txid).map(|e| BumpStatus {
            channel_id: e.channel_id,
            feerate_per_kw: e.feerate_per_kw,
            fee_satoshis: e.bumped.fee(),
            max_fee_sat: e.max_fee_sat,
            wallet_inputs: e.bumped.wallet_inputs(),
            bumps: e.bumps,
            settled_at: e.settled_at,
        })
    }

    /// How many bumps are in flight (settled ones included until released).
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether no bump is in flight.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    fn release(&mut self, wallet: &(impl Wallet + ?Sized), txid: &Txid) -> bool {
        let Some(entry) = self.in_flight.get(txid) else {
            return false;
        };
        match wallet.release(&entry.bumped.wallet_inputs()) {
            Ok(()) => {
                tracing::info!(channel_id = %entry.channel_id, %txid, "bump settled; coins released");
                self.in_flight.remove(txid);
                true
            }
            Err(error) => {
                tracing::warn!(channel_id = %entry.channel_id, %txid, %error, "could not release bump coins");
                false
            }
        }
    }
}

/// The first bump of `event`'s transaction at `feerate_per_kw`, scaled down once to fit
/// `max_fee_sat` when it would pay more.
fn first_bump<B: NodeApi + Clone>(
    api: B,
    wallet: &(impl Wallet + ?Sized),
    channel_id: ChannelId,
    event: &MonitorEvent,
    feerate_per_kw: u32,
    max_fee_sat: u64,
) -> Result<InFlight, BumpCommitmentError> {
    let MonitorEvent::BumpNeeded { tx, anchor, .. } = event else {
        return Err(BumpCommitmentError::NotHtlcBump);
    };
    let contested = tx
        .input
        .first()
        .map(|i| i.previous_output)
        .ok_or(BumpCommitmentError::NotHtlcBump)?;
    let build = |feerate: u32| -> Result<Bumped, BumpCommitmentError> {
        if anchor.is_some() {
            bump_commitment(api.clone(), wallet, channel_id, event, feerate).map(Bumped::Commitment)
        } else {
            bump_htlc(api.clone(), wallet, channel_id, event, feerate).map(Bumped::Htlc)
        }
    };
    let mut feerate = feerate_per_kw;
    let mut bumped = build(feerate)?;
    if bumped.fee() > max_fee_sat {
        release(wallet, &bumped);
        // The fee is at most linear in the feerate (less the parent's own fee): scaled
        // down, it fits the cap unless the coins chosen change.
        let scaled = u64::from(feerate) * max_fee_sat / bumped.fee().max(1);
        let fee = bumped.fee();
        let too_high = BumpCommitmentError::Bump(BumpError::FeeCapExceeded {
            fee_satoshis: fee,
            max_fee_sat,
        });
        feerate = u32::try_from(scaled).unwrap_or(u32::MAX);
        if feerate < lightning_core::node::MIN_RELAY_FEERATE_PER_KW {
            return Err(too_high);
        }
        bumped = build(feerate)?;
        if bumped.fee() > max_fee_sat {
            release(wallet, &bumped);
            return Err(BumpCommitmentError::Bump(BumpError::FeeCapExceeded {
                fee_satoshis: bumped.fee(),
                max_fee_sat,
            }));
        }
    }
    Ok(InFlight {
        channel_id,
        contested,
        bumped,
        feerate_per_kw: feerate,
        max_fee_sat,
        bumped_at: 0,
        bumps: 1,
        settled_at: None,
    })
}

fn release(wallet: &(impl Wallet + ?Sized), bumped: &Bumped) {
    if let Err(error) = wallet.release(&bumped.wallet_inputs()) {
        tracing::warn!(%error, "could not release the coins of a bump over its cap");
    }
}
