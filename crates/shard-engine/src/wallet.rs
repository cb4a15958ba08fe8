//! The host's wallet: the engine owns no coins. A host that wants the engine to fund a
//! channel implements [`Wallet`] (list its spendable coins, reserve and release them, sign
//! its own inputs, give a change script) and answers the channel's
//! [`Event::FundingGenerationReady`] with [`fund_channel`]: coins are chosen largest-first
//! ([`lightning_core::wallet::build_funding_transaction`]), reserved, signed by the wallet,
//! and the signed transaction goes to [`NodeApi::funding_transaction_generated`]. Hosts that
//! build funding transactions themselves keep calling `funding_transaction_generated`
//! directly.
//!
//! Who signs what: the wallet signs its inputs only (the engine never sees its keys); the
//! engine signs the channel's transactions with the node's keys.

use lightning_core::bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut};
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
}

/// Why the host's wallet could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The wallet is unavailable (its backend failed); the reason is the host's.
    Unavailable(String),
}

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

impl std::error::Error for WalletError {}

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
    let mut attempts = 0;
    let plan = loop {
        let utxos = wallet.list_spendable().map_err(FundingError::Wallet)?;
        let plan =
            build_funding_transaction(&utxos, output.clone(), change.clone(), feerate_per_kw)
                .map_err(FundingError::Selection)?;
        let chosen: Vec<OutPoint> = plan.inputs.iter().map(|u| u.outpoint).collect();
        match wallet.reserve(Reservation::ChannelFunding(temporary_channel_id), &chosen) {
            Ok(()) => break plan,
            Err(WalletError::AlreadyReserved(coin) | WalletError::UnknownUtxo(coin))
                if attempts + 1 < RESERVE_ATTEMPTS =>
            {
                attempts += 1;
                tracing::debug!(%coin, %temporary_channel_id, "coin reserved meanwhile; selecting again");
            }
            Err(e) => return Err(FundingError::Wallet(e)),
        }
    };
    let inputs: Vec<OutPoint> = plan.inputs.iter().map(|u| u.outpoint).collect();
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
