//! The host's wallet: the engine owns no coins. A host that wants the engine to fund a
//! channel implements [`Wallet`] (list its spendable coins, reserve and release them, sign
//! its own inputs, give a change script) and answers the channel's
//! [`Event::FundingGenerationReady`] with [`fund_channel`]: coins are chosen largest-first
//! ([`lightning_core::wallet::build_funding_transaction`]), reserved, signed by the wallet,
//! and the signed transaction goes to [`NodeApi::funding_transaction_generated`]. Hosts that
//! build funding transactions themselves keep calling `funding_transaction_generated`
//! directly.
//!
//! A holder commitment of an anchor channel that needs fees
//! ([`MonitorEvent::BumpNeeded`] with our anchor) is answered with [`bump_commitment`]: a
//! CPFP child spending the anchor (the engine signs it with the channel's funding key,
//! [`NodeApi::sign_anchor_input`]) and wallet coins (reserved, signed by the wallet), with
//! change to the wallet; the host relays the commitment and the child as a package. An
//! HTLC transaction's request is answered with [`bump_htlc`] (wallet inputs and change).
//! [`rebump_commitment`] and [`rebump_htlc_bump`] replace a bump with the same inputs and
//! more fee (BIP 125), never above the request's cap; [`crate::Bumper`] drives all four
//! for a host, holding the bumps in flight until they confirm.
//!
//! Who signs what: the wallet signs its inputs only (the engine never sees its keys); the
//! engine signs the channel's transactions with the node's keys.

use lightning_core::bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use lightning_core::chain::bump::{
    build_anchor_child, build_htlc_bump, rebump_anchor_child, rebump_htlc, AnchorChild, BumpError,
    HtlcBump,
};
use lightning_core::chain::MonitorEvent;
use lightning_core::node::Event;
use lightning_core::types::ChannelId;
use lightning_core::wallet::{build_funding_transaction, CoinSelectionError, WalletUtxo};

use crate::api::NodeApi;
use crate::error::EngineError;

/// What a reservation of coins is for: the wallet keeps reserved coins out of
/// [`Wallet::list_spendable`] until they are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reservation {
    /// The funding transaction of the channel with this temporary id.
    ChannelFunding(ChannelId),
    /// A CPFP child bumping our holder commitment with this txid through its anchor
    /// ([`bump_commitment`]).
    AnchorBump(Txid),
    /// Fee inputs of our HTLC transaction claiming this commitment output ([`bump_htlc`]).
    HtlcBump(OutPoint),
}

/// The error of a host's wallet backend, kept whole (its source chain included) so that
/// the host can inspect it.
pub type WalletBackendError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Why the host's wallet could not do what was asked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WalletError {
    /// A coin asked to be reserved is already reserved (another open or claim took it
    /// between listing and reserving): nothing was reserved.
    AlreadyReserved(OutPoint),
    /// A coin named is not the wallet's (or is spent).
    UnknownUtxo(OutPoint),
    /// The wallet could not sign an input of its own.
    Signing {
        /// The input's index.
        input: usize,
        /// The wallet's reason.
        reason: String,
    },
    /// The wallet is unavailable: its backend failed with this error.
    Unavailable(WalletBackendError),
}

impl PartialEq for WalletError {
    /// Backend errors compare by their text (a `dyn Error` has no equality of its own).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (WalletError::AlreadyReserved(a), WalletError::AlreadyReserved(b)) => a == b,
            (WalletError::UnknownUtxo(a), WalletError::UnknownUtxo(b)) => a == b,
            (
                WalletError::Signing {
                    input: a,
                    reason: ra,
                },
                WalletError::Signing {
                    input: b,
                    reason: rb,
                },
            ) => a == b && ra == rb,
            (WalletError::Unavailable(a), WalletError::Unavailable(b)) => {
                a.to_string() == b.to_string()
            }
            _ => false,
        }
    }
}

impl Eq for WalletError {}

impl std::fmt::Display for WalletError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalletError::AlreadyReserved(o) => write!(f, "coin {o} is already reserved"),
            WalletError::UnknownUtxo(o) => write!(f, "coin {o} is not the wallet's"),
            WalletError::Signing { input, reason } => {
                write!(f, "could not sign input {input}: {reason}")
            }
            WalletError::Unavailable(reason) => write!(f, "wallet unavailable: {reason}"),
        }
    }
}

impl std::error::Error for WalletError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalletError::Unavailable(error) => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// The host's on-chain wallet, as the engine uses it. Methods take `&self`: one wallet is
/// shared by every caller, and [`Wallet::reserve`] is where two concurrent users of the
/// same coins are told apart (it must be atomic: all of the coins or none).
pub trait Wallet: Send + Sync {
    /// The coins that may be spent now: confirmed (or the wallet's own unconfirmed change,
    /// at its discretion) and not reserved.
    fn list_spendable(&self) -> Result<Vec<WalletUtxo>, WalletError>;

    /// Reserves `outpoints` for `purpose`, all or none: [`WalletError::AlreadyReserved`]
    /// when any already is.
    fn reserve(&self, purpose: Reservation, outpoints: &[OutPoint]) -> Result<(), WalletError>;

    /// Releases `outpoints` (the use they were reserved for failed, or will never spend
    /// them). Releasing a coin that is not reserved is not an error.
    fn release(&self, outpoints: &[OutPoint]) -> Result<(), WalletError>;

    /// Signs the inputs of `tx` that spend the wallet's coins (setting their witness or
    /// scriptSig), leaving the others alone. `prevouts` are the outputs every input of `tx`
    /// spends, in input order.
    fn sign_inputs(&self, tx: &mut Transaction, prevouts: &[TxOut]) -> Result<(), WalletError>;

    /// A script of the wallet's to pay change (or a sweep) to.
    fn change_script(&self) -> Result<ScriptBuf, WalletError>;
}

/// Why [`fund_channel`] did not fund the channel. The coins it reserved were released again,
/// except after [`FundingError::OutcomeUnknown`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FundingError {
    /// The event was not a [`Event::FundingGenerationReady`].
    NotFundingEvent,
    /// The wallet's coins cannot pay the channel (or the output or feerate is refused).
    Selection(CoinSelectionError),
    /// The wallet failed.
    Wallet(WalletError),
    /// The engine refused the funding transaction (it holds none of it).
    Engine(EngineError),
    /// The engine took the call but did not answer ([`EngineError::Timeout`],
    /// [`EngineError::Stopped`], [`EngineError::ShuttingDown`]): the funding transaction may
    /// yet be used (and broadcast after a restart), so its coins stay reserved. Release them
    /// only once the channel is known closed without its funding transaction broadcast.
    OutcomeUnknown {
        /// The engine's error.
        error: EngineError,
        /// The coins that stay reserved.
        inputs: Vec<OutPoint>,
    },
}

impl std::fmt::Display for FundingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FundingError::NotFundingEvent => write!(f, "not a FundingGenerationReady event"),
            FundingError::Selection(e) => write!(f, "coin selection: {e}"),
            FundingError::Wallet(e) => write!(f, "wallet: {e}"),
            FundingError::Engine(e) => write!(f, "engine: {e:?}"),
            FundingError::OutcomeUnknown { error, .. } => {
                write!(f, "engine outcome unknown (coins stay reserved): {error:?}")
            }
        }
    }
}

impl std::error::Error for FundingError {}

/// A channel funded from the wallet: what [`fund_channel`] built and handed the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundedChannel {
    /// The channel's temporary id.
    pub temporary_channel_id: ChannelId,
    /// The signed funding transaction (the engine broadcasts it once the peer's
    /// `funding_signed` arrives).
    pub tx: Transaction,
    /// The coins it spends, still reserved: release them
    /// ([`Wallet::release`]) if the channel closes before its funding transaction confirms
    /// and the transaction was never broadcast.
    pub inputs: Vec<OutPoint>,
    /// The fee it pays.
    pub fee_satoshis: u64,
    /// The change output's index, if any.
    pub change_vout: Option<u32>,
}

/// How many times a selection is retried when another user reserved one of its coins
/// between the listing and the reservation.
const RESERVE_ATTEMPTS: usize = 8;

/// Why [`select_and_reserve`] gave up: the wallet failed, or the plan could not be built.
enum Selected<E> {
    Wallet(WalletError),
    Build(E),
}

impl From<Selected<BumpError>> for BumpCommitmentError {
    fn from(e: Selected<BumpError>) -> Self {
        match e {
            Selected::Wallet(e) => BumpCommitmentError::Wallet(e),
            Selected::Build(e) => BumpCommitmentError::Bump(e),
        }
    }
}

/// Lists the wallet's spendable coins, builds a plan from them (`build`), and reserves the
/// coins it chose (`chosen`) for `purpose`, all or none. When a chosen coin was reserved or
/// spent between the listing and the reservation (two opens or bumps racing), selects again,
/// up to [`RESERVE_ATTEMPTS`] times. Returns the plan and the coins reserved for it.
fn select_and_reserve<P, E>(
    wallet: &(impl Wallet + ?Sized),
    purpose: Reservation,
    mut build: impl FnMut(&[WalletUtxo]) -> Result<P, E>,
    chosen: impl Fn(&P) -> Vec<OutPoint>,
) -> Result<(P, Vec<OutPoint>), Selected<E>> {
    let mut attempts = 0;
    loop {
        let utxos = wallet.list_spendable().map_err(Selected::Wallet)?;
        let plan = build(&utxos).map_err(Selected::Build)?;
        let coins = chosen(&plan);
        match wallet.reserve(purpose, &coins) {
            Ok(()) => return Ok((plan, coins)),
            Err(WalletError::AlreadyReserved(coin) | WalletError::UnknownUtxo(coin))
                if attempts + 1 < RESERVE_ATTEMPTS =>
            {
                attempts += 1;
                tracing::debug!(%coin, ?purpose, "coin reserved meanwhile; selecting again");
            }
            Err(e) => return Err(Selected::Wallet(e)),
        }
    }
}

/// Funds a channel from `wallet`, answering its [`Event::FundingGenerationReady`]: chooses
/// coins largest-first for the funding output at `feerate_per_kw` (change to the wallet's
/// change script when above dust), reserves them for the channel, has the wallet sign, and
/// hands the transaction to [`NodeApi::funding_transaction_generated`]. A coin taken by
/// another user between the listing and the reservation makes it select again. On failure
/// the coins reserved here are released, except when the engine's answer is unknown
/// ([`FundingError::OutcomeUnknown`]).
pub fn fund_channel<B: NodeApi>(
    api: B,
    wallet: &(impl Wallet + ?Sized),
    event: &Event,
    feerate_per_kw: u32,
) -> Result<FundedChannel, FundingError> {
    let Event::FundingGenerationReady {
        temporary_channel_id,
        channel_value_satoshis,
        output_script,
        ..
    } = event
    else {
        return Err(FundingError::NotFundingEvent);
    };
    let temporary_channel_id = *temporary_channel_id;
    let output = TxOut {
        value: Amount::from_sat(*channel_value_satoshis),
        script_pubkey: output_script.clone(),
    };
    let change = wallet.change_script().map_err(FundingError::Wallet)?;
    let (plan, inputs) = select_and_reserve(
        wallet,
        Reservation::ChannelFunding(temporary_channel_id),
        |utxos| build_funding_transaction(utxos, output.clone(), change.clone(), feerate_per_kw),
        |plan| plan.inputs.iter().map(|u| u.outpoint).collect(),
    )
    .map_err(|e| match e {
        Selected::Wallet(e) => FundingError::Wallet(e),
        Selected::Build(e) => FundingError::Selection(e),
    })?;
    let release = |err: FundingError| {
        if let Err(e) = wallet.release(&inputs) {
            tracing::warn!(%temporary_channel_id, error = %e, "could not release funding coins");
        }
        err
    };
    let mut tx = plan.tx.clone();
    wallet
        .sign_inputs(&mut tx, &plan.prevouts())
        .map_err(|e| release(FundingError::Wallet(e)))?;
    match api.funding_transaction_generated(temporary_channel_id, tx.clone()) {
        Ok(()) => {}
        Err(
            error @ (EngineError::Timeout { .. }
            | EngineError::Stopped { .. }
            | EngineError::ShuttingDown),
        ) => {
            tracing::warn!(%temporary_channel_id, ?error, "funding outcome unknown; coins stay reserved");
            return Err(FundingError::OutcomeUnknown { error, inputs });
        }
        Err(e) => return Err(release(FundingError::Engine(e))),
    }
    tracing::info!(
        %temporary_channel_id,
        txid = %tx.compute_txid(),
        fee = plan.fee_satoshis,
        inputs = inputs.len(),
        "channel funded from the wallet"
    );
    Ok(FundedChannel {
        temporary_channel_id,
        tx,
        inputs,
        fee_satoshis: plan.fee_satoshis,
        change_vout: plan.change_vout,
    })
}

/// Why [`bump_commitment`] or [`bump_htlc`] built nothing. The coins reserved were
/// released again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BumpCommitmentError {
    /// The event was not a [`MonitorEvent::BumpNeeded`] for a commitment with our anchor
    /// (an HTLC transaction's bump is not a CPFP).
    NotAnchorBump,
    /// The event was not a [`MonitorEvent::BumpNeeded`] for an HTLC transaction (one
    /// naming an anchor is a commitment's: [`bump_commitment`]).
    NotHtlcBump,
    /// The commitment or HTLC transaction cannot be bumped, or the wallet's coins cannot pay the child.
    Bump(BumpError),
    /// The wallet failed.
    Wallet(WalletError),
    /// The engine failed (the channel is unknown to it, or it did not answer).
    Engine(EngineError),
}

impl std::fmt::Display for BumpCommitmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BumpCommitmentError::NotAnchorBump => {
                write!(f, "not a BumpNeeded event for a commitment with our anchor")
            }
            BumpCommitmentError::NotHtlcBump => {
                write!(f, "not a BumpNeeded event for an HTLC transaction")
            }
            BumpCommitmentError::Bump(e) => write!(f, "bump: {e}"),
            BumpCommitmentError::Wallet(e) => write!(f, "wallet: {e}"),
            BumpCommitmentError::Engine(e) => write!(f, "engine: {e:?}"),
        }
    }
}

impl std::error::Error for BumpCommitmentError {}

/// A signed CPFP child for a holder commitment: relay `commitment` and `child` together
/// (a package: the commitment alone pays too little).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentBump {
    /// The commitment, as the monitor gave it (fully signed).
    pub commitment: Transaction,
    /// The signed child: input 0 the anchor, then the wallet's coins; output 0 the change.
    pub child: Transaction,
    /// How it was laid out: the fee, weights, and the wallet's coins it spends, which stay
    /// reserved ([`Reservation::AnchorBump`]) until the host sees them spent or gives the
    /// bump up.
    pub plan: AnchorChild,
}

/// Answers a [`MonitorEvent::BumpNeeded`] for channel `channel_id`'s holder commitment (one
/// naming our anchor) with a CPFP child from `wallet`: asks the engine for the commitment's
/// anchor, weight and own fee ([`NodeApi::anchor_parent`]), chooses wallet coins largest
/// first so the package pays `feerate_per_kw` (the event's own feerate, or the host's
/// estimate for its deadline, whichever the host judges right), reserves them
/// ([`Reservation::AnchorBump`]), has the engine sign the anchor input and the wallet its
/// own. A coin taken between the listing and the reservation makes it select again. On
/// failure the coins reserved here are released.
///
/// `api` is called twice, so it must be `Clone` (`&Engine` is); over the simulator's
/// `&mut Sim`, make the same three steps by hand: [`NodeApi::anchor_parent`],
/// [`build_anchor_child`], [`NodeApi::sign_anchor_input`].
pub fn bump_commitment<B: NodeApi + Clone>(
    api: B,
    wallet: &(impl Wallet + ?Sized),
    channel_id: ChannelId,
    event: &MonitorEvent,
    feerate_per_kw: u32,
) -> Result<CommitmentBump, BumpCommitmentError> {
    let MonitorEvent::BumpNeeded {
        tx,
        anchor: Some(anchor),
        ..
    } = event
    else {
        return Err(BumpCommitmentError::NotAnchorBump);
    };
    let parent = api
        .clone()
        .anchor_parent(channel_id, tx.clone())
        .map_err(BumpCommitmentError::Engine)?
        .map_err(BumpCommitmentError::Bump)?;
    if parent.anchor != *anchor {
        return Err(BumpCommitmentError::Bump(BumpError::NoAnchor));
    }
    let change = wallet
        .change_script()
        .map_err(BumpCommitmentError::Wallet)?;
    let (plan, inputs) = select_and_reserve(
        wallet,
        Reservation::AnchorBump(parent.txid),
        |utxos| build_anchor_child(&parent, utxos, change.clone(), feerate_per_kw),
        AnchorChild::wallet_outpoints,
    )
    .map_err(BumpCommitmentError::from)?;
    let release = |err: BumpCommitmentError| {
        if let Err(e) = wallet.release(&inputs) {
            tracing::warn!(commitment = %parent.txid, error = %e, "could not release bump coins");
        }
        err
    };
    let signed = api
        .sign_anchor_input(channel_id, plan.tx.clone(), 0)
        .map_err(|e| release(BumpCommitmentError::Engine(e)))?
        .map_err(|e| release(BumpCommitmentError::Bump(e)))?;
    let mut child = signed;
    wallet
        .sign_inputs(&mut child, &plan.prevouts())
        .map_err(|e| release(BumpCommitmentError::Wallet(e)))?;
    tracing::info!(
        %channel_id,
        commitment = %parent.txid,
        child = %child.compute_txid(),
        fee = plan.fee_satoshis,
        package_fee = plan.package_fee_satoshis,
        package_weight = plan.package_weight,
        "commitment bumped through its anchor"
    );
    Ok(CommitmentBump {
        commitment: tx.clone(),
        child,
        plan,
    })
}

/// Replaces `previous` (from [`bump_commitment`], not yet confirmed) with a child paying
/// the package's `feerate_per_kw`, spending the same anchor and wallet coins (a BIP 125
/// replacement: at least the incremental relay feerate more than `previous`), its fee never
/// above `max_fee_sat` ([`rebump_anchor_child`]), signed again by the engine and the
/// wallet. The coins stay reserved as they were, whatever the outcome (`previous` may still
/// confirm). [`BumpError::InsufficientFunds`] when the coins cannot pay it with change above
/// dust, [`BumpError::FeeCapExceeded`] when even the least replacement is above the cap.
pub fn rebump_commitment<B: NodeApi + Clone>(
    api: B,
    wallet: &(impl Wallet + ?Sized),
    channel_id: ChannelId,
    previous: &CommitmentBump,
    feerate_per_kw: u32,
    max_fee_sat: u64,
) -> Result<CommitmentBump, BumpCommitmentError> {
    let parent = api
        .clone()
        .anchor_parent(channel_id, previous.commitment.clone())
        .map_err(BumpCommitmentError::Engine)?
        .map_err(BumpCommitmentError::Bump)?;
    let plan = rebump_anchor_child(&parent, &previous.plan, feerate_per_kw, max_fee_sat)
        .map_err(BumpCommitmentError::Bump)?;
    let mut child = api
        .sign_anchor_input(channel_id, plan.tx.clone(), 0)
        .map_err(BumpCommitmentError::Engine)?
        .map_err(BumpCommitmentError::Bump)?;
    wallet
        .sign_inputs(&mut child, &plan.prevouts())
        .map_err(BumpCommitmentError::Wallet)?;
    tracing::info!(
        %channel_id,
        commitment = %parent.txid,
        replaced = %previous.child.compute_txid(),
        child = %child.compute_txid(),
        fee = plan.fee_satoshis,
        "commitment bumped again through its anchor"
    );
    Ok(CommitmentBump {
        commitment: previous.commitment.clone(),
        child,
        plan,
    })
}

/// Our HTLC transaction completed with fee inputs and signed: broadcast `tx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtlcBumped {
    /// The signed transaction: input 0 and output 0 the HTLC's, then the wallet's coins and
    /// the change (output 1).
    pub tx: Transaction,
    /// How it was laid out: its fee, weight and the wallet's coins, which stay reserved
    /// ([`Reservation::HtlcBump`]) until the host sees them spent or gives the claim up.
    pub plan: HtlcBump,
}

/// Answers a [`MonitorEvent::BumpNeeded`] for one of channel `channel_id`'s HTLC-success or
/// HTLC-timeout transactions (anchors: it pays no fee; the peer's signature is
/// SIGHASH_SINGLE|ANYONECANPAY) from `wallet`: asks the engine for the output it spends
/// ([`NodeApi::htlc_prevout`]), adds wallet coins (largest first) and a change output so it
/// pays `feerate_per_kw`, reserves the coins ([`Reservation::HtlcBump`]), has the engine
/// sign its input again over the whole transaction ([`NodeApi::sign_htlc_input`]: our
/// signature is SIGHASH_ALL) and the wallet its own. A coin taken between the listing and
/// the reservation makes it select again. On failure the coins reserved here are released.
/// `api` is called twice, so it must be `Clone`, as for [`bump_commitment`].
pub fn bump_htlc<B: NodeApi + Clone>(
    api: B,
    wallet: &(impl Wallet + ?Sized),
    channel_id: ChannelId,
    event: &MonitorEvent,
    feerate_per_kw: u32,
) -> Result<HtlcBumped, BumpCommitmentError> {
    let MonitorEvent::BumpNeeded {
        tx, anchor: None, ..
    } = event
    else {
        return Err(BumpCommitmentError::NotHtlcBump);
    };
    let claimed = tx
        .input
        .first()
        .map(|i| i.previous_output)
        .ok_or(BumpCommitmentError::NotHtlcBump)?;
    let prevout = api
        .clone()
        .htlc_prevout(channel_id, tx.clone())
        .map_err(BumpCommitmentError::Engine)?
        .map_err(BumpCommitmentError::Bump)?;
    let change = wallet
        .change_script()
        .map_err(BumpCommitmentError::Wallet)?;
    let (plan, inputs) = select_and_reserve(
        wallet,
        Reservation::HtlcBump(claimed),
        |utxos| build_htlc_bump(tx, &prevout, utxos, change.clone(), feerate_per_kw),
        HtlcBump::wallet_outpoints,
    )
    .map_err(BumpCommitmentError::from)?;
    let release = |err: BumpCommitmentError| {
        if let Err(e) = wallet.release(&inputs) {
            tracing::warn!(htlc = %claimed, error = %e, "could not release bump coins");
        }
        err
    };
    let mut signed = api
        .sign_htlc_input(channel_id, plan.tx.clone())
        .map_err(|e| release(BumpCommitmentError::Engine(e)))?
        .map_err(|e| release(BumpCommitmentError::Bump(e)))?;
    wallet
        .sign_inputs(&mut signed, &plan.prevouts())
        .map_err(|e| release(BumpCommitmentError::Wallet(e)))?;
    tracing::info!(
        %channel_id,
        htlc = %claimed,
        txid = %signed.compute_txid(),
        fee = plan.fee_satoshis,
        "HTLC transaction completed with fee inputs"
    );
    Ok(HtlcBumped { tx: signed, plan })
}

/// Replaces `previous` (from [`bump_htlc`], not yet confirmed) with the same HTLC
/// transaction spending the same wallet coins at `feerate_per_kw` (a BIP 125 replacement:
/// at least the incremental relay feerate more than `previous`), its fee never above
/// `max_fee_sat` ([`rebump_htlc`]), our input signed again by the engine and the wallet's
/// by the wallet. The coins stay reserved as they were, whatever the outcome.
pub fn rebump_htlc_bump<B: NodeApi>(
    api: B,
    wallet: &(impl Wallet + ?Sized),
    channel_id: ChannelId,
    previous: &HtlcBumped,
    feerate_per_kw: u32,
    max_fee_sat: u64,
) -> Result<HtlcBumped, BumpCommitmentError> {
    let plan = rebump_htlc(&previous.plan, feerate_per_kw, max_fee_sat)
        .map_err(BumpCommitmentError::Bump)?;
    let mut signed = api
        .sign_htlc_input(channel_id, plan.tx.clone())
        .map_err(BumpCommitmentError::Engine)?
        .map_err(BumpCommitmentError::Bump)?;
    wallet
        .sign_inputs(&mut signed, &plan.prevouts())
        .map_err(BumpCommitmentError::Wallet)?;
    tracing::info!(
        %channel_id,
        replaced = %previous.tx.compute_txid(),
        txid = %signed.compute_txid(),
        fee = plan.fee_satoshis,
        "HTLC transaction bumped again"
    );
    Ok(HtlcBumped { tx: signed, plan })
}
