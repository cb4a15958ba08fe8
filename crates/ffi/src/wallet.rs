//! The application's wallet as C callbacks (`lnshard_wallet`), the engine's `Wallet` over
//! them, and the calls that use it: `lnshard_engine_fund_channel` answers a
//! `FUNDING_GENERATION_READY` event, `lnshard_engine_bump` an `ON_CHAIN` event of kind
//! `BUMP_NEEDED`.
//!
//! Data flows to the application as arguments (pointers valid during the callback only) and
//! back through a `lnshard_wallet_sink` the callback pushes into, one item at a time, so no
//! buffer size is ever guessed and nothing can overflow (rustls-ffi's shape).

use std::ffi::c_void;
use std::sync::Arc;

use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::{consensus, Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use lightning_core::chain::bump::BumpError;
use lightning_core::chain::MonitorEvent;
use lightning_core::node::Event as CoreEvent;
use lightning_core::wallet::{CoinSelectionError, WalletUtxo};
use shard_engine::{BumpCommitmentError, FundingError, Reservation, Wallet, WalletError};

use crate::bytes::{lnshard_bytes, write_bytes};
use crate::engine::{
    is_standard_destination, lnshard_engine, LNSHARD_MAX_CLAIM_FEERATE_PER_KW,
    LNSHARD_MAX_TRANSACTION_LEN, LNSHARD_MIN_CLAIM_FEERATE_PER_KW,
};
use crate::error::{engine_error, fail, invalid_parameter, lnshard_result};
use crate::event::lnshard_event;
use crate::handle::{lend, Castable, HandleKind};
use crate::types::{lnshard_txid, write_fixed};

/// A wallet callback's success.
pub const LNSHARD_WALLET_OK: i32 = 0;
/// `reserve`: a coin is already reserved (another open or bump took it since it was
/// listed); nothing was reserved. Write the coin's index in `outpoints` to `*out_conflict`:
/// the library lists the coins again and chooses others.
pub const LNSHARD_WALLET_ALREADY_RESERVED: i32 = 1;
/// `reserve`: a coin is not the wallet's, or is spent; nothing was reserved. Write its index
/// to `*out_conflict`.
pub const LNSHARD_WALLET_UNKNOWN_UTXO: i32 = 2;
/// The most coins one `list_spendable` may push.
pub const LNSHARD_MAX_WALLET_UTXOS: usize = 100_000;
/// The longest output script a wallet coin or change script may have (the consensus limit
/// on a script's size).
pub const LNSHARD_MAX_SCRIPT_LEN: usize = 10_000;
/// The largest `satisfaction_weight` of a coin (a standard transaction's whole weight).
pub const LNSHARD_MAX_SATISFACTION_WEIGHT: u64 = 400_000;

/// One output a transaction's input spends, as `sign_inputs` receives them (in input
/// order). Its pointer is valid only during the callback.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_txout {
    /// Its value.
    pub value_sat: u64,
    /// Its output script.
    pub script_pubkey: *const u8,
    /// The script's length.
    pub script_pubkey_len: usize,
}

/// An outpoint: a transaction id (32 bytes, internal byte order) and an output index.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lnshard_outpoint {
    /// The transaction's id.
    pub txid: [u8; 32],
    /// The output's index.
    pub vout: u32,
}

/// One spendable coin of the wallet, pushed by `list_spendable` with
/// `lnshard_wallet_sink_push_utxo` (copied: its pointer need only live during that call).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_utxo {
    /// Where it is.
    pub outpoint: lnshard_outpoint,
    /// Its value (at most 21,000,000 BTC).
    pub value_sat: u64,
    /// Its output script (at most `LNSHARD_MAX_SCRIPT_LEN` bytes). Only segwit coins are
    /// spent (their signatures do not change the transaction's id).
    pub script_pubkey: *const u8,
    /// The script's length.
    pub script_pubkey_len: usize,
    /// The weight its input's scriptSig (times four) and witness (item count included)
    /// add once signed: 108 for P2WPKH; at most `LNSHARD_MAX_SATISFACTION_WEIGHT`. Fees are
    /// computed from it: too small a value makes transactions pay less than asked.
    pub satisfaction_weight: u64,
}

/// What coins are reserved for (`lnshard_reservation.kind`). The numbers are part of the
/// ABI and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_reservation_kind {
    /// A purpose this library version does not know.
    Unknown = 0,
    /// The funding transaction of the channel whose temporary id is `id`.
    ChannelFunding = 1,
    /// A CPFP child bumping our commitment whose txid is `id`, through its anchor.
    AnchorBump = 2,
    /// Fee inputs of our HTLC transaction claiming the commitment output `id`:`vout`.
    HtlcBump = 3,
}

/// What a `reserve` is for: keep the coins out of `list_spendable` until they are released.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_reservation {
    /// The purpose.
    pub kind: lnshard_reservation_kind,
    /// The temporary channel id, the commitment's txid or the HTLC output's txid (32
    /// bytes; txids in internal byte order).
    pub id: [u8; 32],
    /// `HTLC_BUMP`: the HTLC output's index (else 0).
    pub vout: u32,
}

/// Where a wallet callback hands data back to lnshard: coins
/// (`lnshard_wallet_sink_push_utxo`, from `list_spendable`) or bytes
/// (`lnshard_wallet_sink_push_bytes`, from `sign_inputs` and `change_script`).
///
/// Owner: lnshard; valid only during the callback that received it (afterwards the push
/// functions refuse it with `LNSHARD_RESULT_INVALID_HANDLE`). Thread-safety: use it only on
/// the callback's thread.
pub struct lnshard_wallet_sink {
    _private: [u8; 0],
}

/// The Rust side of `lnshard_wallet_sink`.
pub(crate) enum WalletSink {
    /// `list_spendable`: the coins, and the first refusal of a pushed coin.
    Utxos {
        coins: Vec<WalletUtxo>,
        refused: Option<String>,
    },
    /// `sign_inputs`, `change_script`: the bytes (a later push replaces an earlier one).
    Bytes(Option<Vec<u8>>),
}

impl Castable for lnshard_wallet_sink {
    const KIND: HandleKind = HandleKind::WalletSink;
    type Rust = WalletSink;
}

/// Lists the wallet's spendable coins (confirmed, not reserved): push each with
/// `lnshard_wallet_sink_push_utxo(sink, &utxo)`; return `LNSHARD_WALLET_OK` (any other
/// number is a failure).
pub type lnshard_wallet_list_spendable_callback =
    Option<extern "C" fn(userdata: *mut c_void, sink: *mut lnshard_wallet_sink) -> i32>;

/// Reserves the `outpoints_len` coins at `outpoints` for `purpose`, all or none (atomic
/// against other users of the wallet): `LNSHARD_WALLET_OK`; or
/// `LNSHARD_WALLET_ALREADY_RESERVED` / `LNSHARD_WALLET_UNKNOWN_UTXO` with the offending
/// coin's index written to `*out_conflict`; any other number is a failure.
pub type lnshard_wallet_reserve_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        purpose: *const lnshard_reservation,
        outpoints: *const lnshard_outpoint,
        outpoints_len: usize,
        out_conflict: *mut usize,
    ) -> i32,
>;

/// Releases the `outpoints_len` coins at `outpoints` (releasing a coin not reserved is not
/// an error): `LNSHARD_WALLET_OK`, any other number is a failure.
pub type lnshard_wallet_release_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        outpoints: *const lnshard_outpoint,
        outpoints_len: usize,
    ) -> i32,
>;

/// Signs the inputs of the transaction (`tx_len` serialized bytes at `tx`) that spend the
/// wallet's coins, and pushes the whole signed transaction with
/// `lnshard_wallet_sink_push_bytes`. `prevouts` (`prevouts_len` of them, one per input, in
/// order) are the outputs its inputs spend. Only the wallet's inputs' witnesses (and
/// scriptSigs) may change: every other input, output and field must come back as given,
/// or the call fails with `LNSHARD_RESULT_WALLET_FAILED`. Return `LNSHARD_WALLET_OK`.
pub type lnshard_wallet_sign_inputs_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        tx: *const u8,
        tx_len: usize,
        prevouts: *const lnshard_txout,
        prevouts_len: usize,
        sink: *mut lnshard_wallet_sink,
    ) -> i32,
>;

/// Pushes an output script of the wallet's to pay change to, with
/// `lnshard_wallet_sink_push_bytes` (P2PKH, P2SH, P2WPKH, P2WSH or P2TR). Return
/// `LNSHARD_WALLET_OK`.
pub type lnshard_wallet_change_script_callback =
    Option<extern "C" fn(userdata: *mut c_void, sink: *mut lnshard_wallet_sink) -> i32>;

/// The application's on-chain wallet: the engine owns no coins. lnshard chooses coins
/// (largest first), reserves them, builds the transaction and has the wallet sign its own
/// inputs; the engine signs the channel's (the anchor). Every field is required.
///
/// Owner: the caller (plain data, copied by each call taking it). Thread-safety: the
/// callbacks run on the thread of the call that was given the wallet, during that call
/// only; they must not call back into the engine. `reserve` must be atomic against other
/// threads using the same wallet.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_wallet {
    /// Passed back to every callback.
    pub userdata: *mut c_void,
    /// Lists the spendable coins.
    pub list_spendable: lnshard_wallet_list_spendable_callback,
    /// Reserves coins for a purpose.
    pub reserve: lnshard_wallet_reserve_callback,
    /// Releases coins.
    pub release: lnshard_wallet_release_callback,
    /// Signs the wallet's inputs of a transaction.
    pub sign_inputs: lnshard_wallet_sign_inputs_callback,
    /// Gives a change script.
    pub change_script: lnshard_wallet_change_script_callback,
}

fn sink_refusal(sink: &mut WalletSink, message: String) -> lnshard_result {
    if let WalletSink::Utxos { refused, .. } = sink {
        refused.get_or_insert_with(|| message.clone());
    }
    invalid_parameter(message)
}

/// Hands one coin back from `list_spendable` (copied). A NULL `utxo`
/// (`LNSHARD_RESULT_NULL_PARAMETER`), a coin that does not parse (a NULL or oversized
/// script, a value above 21,000,000 BTC, a satisfaction weight above
/// `LNSHARD_MAX_SATISFACTION_WEIGHT`) or more than `LNSHARD_MAX_WALLET_UTXOS` coins
/// (`LNSHARD_RESULT_INVALID_PARAMETER`) make the whole listing fail
/// (`LNSHARD_RESULT_WALLET_FAILED` from the call that asked for it); a sink of
/// `sign_inputs`/`change_script` is `LNSHARD_RESULT_INVALID_PARAMETER`.
#[no_mangle]
pub extern "C" fn lnshard_wallet_sink_push_utxo(
    sink: *mut lnshard_wallet_sink,
    utxo: *const lnshard_utxo,
) -> lnshard_result {
    ffi_panic_boundary! {
        let sink = try_handle_mut!(sink, "sink");
        // SAFETY: NULL or a pointer to a live coin (documented contract).
        let Some(utxo) = (unsafe { utxo.as_ref() }) else {
            sink_refusal(sink, "parameter utxo is NULL".to_owned());
            return crate::error::null_parameter("utxo");
        };
        if !matches!(sink, WalletSink::Utxos { .. }) {
            return invalid_parameter(
                "this sink takes bytes (sign_inputs, change_script), not coins",
            );
        }
        if utxo.script_pubkey_len > LNSHARD_MAX_SCRIPT_LEN {
            return sink_refusal(sink, format!(
                "utxo.script_pubkey_len {} above the limit {LNSHARD_MAX_SCRIPT_LEN}",
                utxo.script_pubkey_len
            ));
        }
        if utxo.script_pubkey_len > 0 && utxo.script_pubkey.is_null() {
            return sink_refusal(sink, "parameter utxo.script_pubkey is NULL".to_owned());
        }
        if utxo.value_sat > Amount::MAX_MONEY.to_sat() {
            return sink_refusal(sink, format!(
                "utxo.value_sat {} above 21,000,000 BTC", utxo.value_sat
            ));
        }
        if utxo.satisfaction_weight > LNSHARD_MAX_SATISFACTION_WEIGHT {
            return sink_refusal(sink, format!(
                "utxo.satisfaction_weight {} above the limit {LNSHARD_MAX_SATISFACTION_WEIGHT}",
                utxo.satisfaction_weight
            ));
        }
        let script = if utxo.script_pubkey_len == 0 {
            Vec::new()
        } else {
            // SAFETY: `script_pubkey_len` readable bytes at `script_pubkey` (contract).
            unsafe { std::slice::from_raw_parts(utxo.script_pubkey, utxo.script_pubkey_len) }
                .to_vec()
        };
        let WalletSink::Utxos { coins, .. } = sink else {
            unreachable!("checked above");
        };
        if coins.len() >= LNSHARD_MAX_WALLET_UTXOS {
            return sink_refusal(sink, format!(
                "more than {LNSHARD_MAX_WALLET_UTXOS} coins listed"
            ));
        }
        coins.push(WalletUtxo {
            outpoint: outpoint(&utxo.outpoint),
            txout: TxOut {
                value: Amount::from_sat(utxo.value_sat),
                script_pubkey: ScriptBuf::from_bytes(script),
            },
            satisfaction_weight: utxo.satisfaction_weight,
        });
        lnshard_result::Ok
    }
}

/// Hands bytes back from `sign_inputs` (the signed transaction) or `change_script` (the
/// script): `len` bytes at `data` are copied (NULL allowed when `len` is 0; at most
/// `LNSHARD_MAX_TRANSACTION_LEN`); a later push replaces an earlier one. A sink of
/// `list_spendable`: `LNSHARD_RESULT_INVALID_PARAMETER`.
#[no_mangle]
pub extern "C" fn lnshard_wallet_sink_push_bytes(
    sink: *mut lnshard_wallet_sink,
    data: *const u8,
    len: usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let sink = try_handle_mut!(sink, "sink");
        let data = try_slice!(data, len, LNSHARD_MAX_TRANSACTION_LEN, "data");
        match sink {
            WalletSink::Bytes(bytes) => {
                *bytes = Some(data.to_vec());
                lnshard_result::Ok
            }
            WalletSink::Utxos { .. } => {
                invalid_parameter("this sink takes coins (list_spendable), not bytes")
            }
        }
    }
}

fn outpoint(o: &lnshard_outpoint) -> OutPoint {
    OutPoint {
        txid: Txid::from_byte_array(o.txid),
        vout: o.vout,
    }
}

fn c_outpoint(o: &OutPoint) -> lnshard_outpoint {
    lnshard_outpoint {
        txid: o.txid.to_byte_array(),
        vout: o.vout,
    }
}

type ListFn = extern "C" fn(*mut c_void, *mut lnshard_wallet_sink) -> i32;
type ReserveFn = extern "C" fn(
    *mut c_void,
    *const lnshard_reservation,
    *const lnshard_outpoint,
    usize,
    *mut usize,
) -> i32;
type ReleaseFn = extern "C" fn(*mut c_void, *const lnshard_outpoint, usize) -> i32;
type SignFn = extern "C" fn(
    *mut c_void,
    *const u8,
    usize,
    *const lnshard_txout,
    usize,
    *mut lnshard_wallet_sink,
) -> i32;

/// The engine's `Wallet` over a C `lnshard_wallet`, for the length of one call.
pub(crate) struct CallbackWallet {
    userdata: *mut c_void,
    list_spendable: ListFn,
    reserve: ReserveFn,
    release: ReleaseFn,
    sign_inputs: SignFn,
    change_script: ListFn,
}

// SAFETY: the wallet's documented contract: its callbacks and userdata are used on the
// calling thread during the call only; the engine's wallet functions spawn no thread.
unsafe impl Send for CallbackWallet {}
// SAFETY: as above.
unsafe impl Sync for CallbackWallet {}

/// A wallet backend failure: the callback and what it did wrong.
fn unavailable(message: String) -> WalletError {
    WalletError::Unavailable(Arc::new(std::io::Error::other(message)))
}

fn returned(callback: &str, code: i32) -> WalletError {
    unavailable(format!("wallet callback {callback} returned {code}"))
}

impl CallbackWallet {
    pub(crate) fn new(c: &lnshard_wallet, name: &str) -> Result<Self, lnshard_result> {
        let missing = |field: &str| crate::error::null_parameter(&format!("{name}.{field}"));
        Ok(CallbackWallet {
            userdata: c.userdata,
            list_spendable: c.list_spendable.ok_or_else(|| missing("list_spendable"))?,
            reserve: c.reserve.ok_or_else(|| missing("reserve"))?,
            release: c.release.ok_or_else(|| missing("release"))?,
            sign_inputs: c.sign_inputs.ok_or_else(|| missing("sign_inputs"))?,
            change_script: c.change_script.ok_or_else(|| missing("change_script"))?,
        })
    }

    /// Runs `f` with a sink lent to C; gives the sink back.
    fn with_sink(
        &self,
        mut sink: WalletSink,
        f: impl FnOnce(*mut lnshard_wallet_sink) -> i32,
    ) -> (i32, WalletSink) {
        let lent = lend::<lnshard_wallet_sink>(&mut sink);
        let code = f(lent.as_ptr());
        drop(lent);
        (code, sink)
    }
}

/// Whether `signed` is `unsigned` with only the witnesses and scriptSigs of inputs that had
/// no witness changed: `Err` names the first difference.
fn check_signed(unsigned: &Transaction, signed: &Transaction) -> Result<(), WalletError> {
    if signed.version != unsigned.version
        || signed.lock_time != unsigned.lock_time
        || signed.output != unsigned.output
        || signed.input.len() != unsigned.input.len()
    {
        return Err(unavailable(
            "wallet callback sign_inputs changed the transaction's outputs, inputs, version \
             or lock time"
                .to_owned(),
        ));
    }
    for (input, (before, after)) in unsigned.input.iter().zip(&signed.input).enumerate() {
        let changed = |reason: &str| WalletError::Signing {
            input,
            reason: format!("the signed transaction {reason}"),
        };
        if before.previous_output != after.previous_output || before.sequence != after.sequence {
            return Err(changed("spends another outpoint or sequence"));
        }
        if !before.witness.is_empty()
            && (before.witness != after.witness || before.script_sig != after.script_sig)
        {
            return Err(changed(
                "changed an input the wallet does not own (already signed)",
            ));
        }
    }
    Ok(())
}

impl Wallet for CallbackWallet {
    fn list_spendable(&self) -> Result<Vec<WalletUtxo>, WalletError> {
        let sink = WalletSink::Utxos {
            coins: Vec::new(),
            refused: None,
        };
        let (code, sink) = self.with_sink(sink, |s| (self.list_spendable)(self.userdata, s));
        if code != LNSHARD_WALLET_OK {
            return Err(returned("list_spendable", code));
        }
        match sink {
            WalletSink::Utxos {
                refused: Some(reason),
                ..
            } => Err(unavailable(format!(
                "wallet callback list_spendable pushed a coin refused: {reason}"
            ))),
            WalletSink::Utxos { coins, .. } => Ok(coins),
            WalletSink::Bytes(_) => unreachable!("the listing sink stays a coin sink"),
        }
    }

    fn reserve(&self, purpose: Reservation, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        let purpose = match purpose {
            Reservation::ChannelFunding(id) => lnshard_reservation {
                kind: lnshard_reservation_kind::ChannelFunding,
                id: id.0,
                vout: 0,
            },
            Reservation::AnchorBump(txid) => lnshard_reservation {
                kind: lnshard_reservation_kind::AnchorBump,
                id: txid.to_byte_array(),
                vout: 0,
            },
            Reservation::HtlcBump(o) => lnshard_reservation {
                kind: lnshard_reservation_kind::HtlcBump,
                id: o.txid.to_byte_array(),
                vout: o.vout,
            },
            _ => lnshard_reservation {
                kind: lnshard_reservation_kind::Unknown,
                id: [0; 32],
                vout: 0,
            },
        };
        let c: Vec<lnshard_outpoint> = outpoints.iter().map(c_outpoint).collect();
        let mut conflict = usize::MAX;
        let code = (self.reserve)(self.userdata, &purpose, c.as_ptr(), c.len(), &mut conflict);
        let offending = |what: &str| {
            outpoints.get(conflict).copied().ok_or_else(|| {
                unavailable(format!(
                    "wallet callback reserve returned {what} with out_conflict {conflict}, \
                     not an index of its {} outpoints",
                    outpoints.len()
                ))
            })
        };
        match code {
            LNSHARD_WALLET_OK => Ok(()),
            LNSHARD_WALLET_ALREADY_RESERVED => Err(WalletError::AlreadyReserved(offending(
                "LNSHARD_WALLET_ALREADY_RESERVED",
            )?)),
            LNSHARD_WALLET_UNKNOWN_UTXO => Err(WalletError::UnknownUtxo(offending(
                "LNSHARD_WALLET_UNKNOWN_UTXO",
            )?)),
            code => Err(returned("reserve", code)),
        }
    }

    fn release(&self, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        let c: Vec<lnshard_outpoint> = outpoints.iter().map(c_outpoint).collect();
        match (self.release)(self.userdata, c.as_ptr(), c.len()) {
            LNSHARD_WALLET_OK => Ok(()),
            code => Err(returned("release", code)),
        }
    }

    fn sign_inputs(&self, tx: &mut Transaction, prevouts: &[TxOut]) -> Result<(), WalletError> {
        let bytes = consensus::serialize(&*tx);
        let c: Vec<lnshard_txout> = prevouts
            .iter()
            .map(|o| lnshard_txout {
                value_sat: o.value.to_sat(),
                script_pubkey: o.script_pubkey.as_bytes().as_ptr(),
                script_pubkey_len: o.script_pubkey.len(),
            })
            .collect();
        let (code, sink) = self.with_sink(WalletSink::Bytes(None), |s| {
            (self.sign_inputs)(
                self.userdata,
                bytes.as_ptr(),
                bytes.len(),
                c.as_ptr(),
                c.len(),
                s,
            )
        });
        if code != LNSHARD_WALLET_OK {
            return Err(returned("sign_inputs", code));
        }
        let WalletSink::Bytes(Some(signed)) = sink else {
            return Err(unavailable(
                "wallet callback sign_inputs pushed no transaction".to_owned(),
            ));
        };
        let signed: Transaction = consensus::deserialize(&signed).map_err(|e| {
            unavailable(format!(
                "wallet callback sign_inputs pushed {} bytes that are not a transaction: {e}",
                signed.len()
            ))
        })?;
        check_signed(tx, &signed)?;
        *tx = signed;
        Ok(())
    }

    fn change_script(&self) -> Result<ScriptBuf, WalletError> {
        let (code, sink) = self.with_sink(WalletSink::Bytes(None), |s| {
            (self.change_script)(self.userdata, s)
        });
        if code != LNSHARD_WALLET_OK {
            return Err(returned("change_script", code));
        }
        let WalletSink::Bytes(Some(script)) = sink else {
            return Err(unavailable(
                "wallet callback change_script pushed no script".to_owned(),
            ));
        };
        let script = ScriptBuf::from_bytes(script);
        if !is_standard_destination(&script) {
            return Err(unavailable(format!(
                "wallet callback change_script pushed {}, not a P2PKH, P2SH, P2WPKH, P2WSH or \
                 P2TR output script",
                script.to_hex_string()
            )));
        }
        Ok(script)
    }
}

fn check_feerate(feerate_per_kw: u32) -> Result<(), lnshard_result> {
    if !(LNSHARD_MIN_CLAIM_FEERATE_PER_KW..=LNSHARD_MAX_CLAIM_FEERATE_PER_KW)
        .contains(&feerate_per_kw)
    {
        return Err(invalid_parameter(format!(
            "feerate_per_kw {feerate_per_kw} outside \
             {LNSHARD_MIN_CLAIM_FEERATE_PER_KW}..={LNSHARD_MAX_CLAIM_FEERATE_PER_KW}"
        )));
    }
    Ok(())
}

fn wallet_error(context: &str, e: &WalletError) -> lnshard_result {
    fail(lnshard_result::WalletFailed, format!("{context}: {e}"))
}

fn funding_error(e: &FundingError) -> lnshard_result {
    const CONTEXT: &str = "fund_channel";
    match e {
        FundingError::NotFundingEvent => {
            invalid_parameter("event is not a FUNDING_GENERATION_READY event")
        }
        FundingError::Selection(s @ CoinSelectionError::InsufficientFunds { .. }) => {
            fail(lnshard_result::InsufficientFunds, format!("{CONTEXT}: {s}"))
        }
        FundingError::Selection(s) => invalid_parameter(format!("{CONTEXT}: {s}")),
        FundingError::Wallet(w) => wallet_error(CONTEXT, w),
        FundingError::Engine(error) => engine_error(CONTEXT, error),
        FundingError::OutcomeUnknown { error, inputs } => engine_error(
            &format!(
                "{CONTEXT} (outcome unknown: its {} coins stay reserved until the channel is \
                 known closed without its funding transaction broadcast)",
                inputs.len()
            ),
            error,
        ),
        other => fail(lnshard_result::EngineFailed, format!("{CONTEXT}: {other}")),
    }
}

pub(crate) fn bump_error(e: &BumpCommitmentError) -> lnshard_result {
    const CONTEXT: &str = "bump";
    match e {
        BumpCommitmentError::NotAnchorBump | BumpCommitmentError::NotHtlcBump => {
            invalid_parameter(format!("{CONTEXT}: {e}"))
        }
        BumpCommitmentError::Bump(b @ BumpError::InsufficientFunds { .. }) => {
            fail(lnshard_result::InsufficientFunds, format!("{CONTEXT}: {b}"))
        }
        BumpCommitmentError::Bump(b @ BumpError::FeerateTooLow { .. }) => {
            invalid_parameter(format!("{CONTEXT}: {b}"))
        }
        BumpCommitmentError::Bump(b) => fail(lnshard_result::ApiRefused, format!("{CONTEXT}: {b}")),
        BumpCommitmentError::Wallet(w) => wallet_error(CONTEXT, w),
        BumpCommitmentError::Engine(error) => engine_error(CONTEXT, error),
        other => fail(lnshard_result::EngineFailed, format!("{CONTEXT}: {other}")),
    }
}

/// Funds a channel from `wallet`, answering its `FUNDING_GENERATION_READY` `event`: chooses
/// the wallet's coins largest first to pay the channel's output and the fee at
/// `feerate_per_kw` (sat per 1000 weight, `LNSHARD_MIN_CLAIM_FEERATE_PER_KW` to
/// `LNSHARD_MAX_CLAIM_FEERATE_PER_KW`), with change above dust to the wallet's
/// `change_script`; reserves them (`LNSHARD_RESERVATION_KIND_CHANNEL_FUNDING`, selecting
/// again when a coin was taken meanwhile), has the wallet sign them, and hands the
/// transaction to the engine (as `lnshard_engine_funding_transaction_generated`). The
/// engine broadcasts it (a `BROADCAST_TRANSACTION` event) once the peer's signature
/// arrives. `*out_tx` receives a copy of the signed transaction; free it with
/// `lnshard_bytes_free`.
///
/// The coins stay reserved: release them if the channel closes before its funding
/// transaction was ever broadcast. On failure they were released, except when the engine's
/// answer is unknown (`LNSHARD_RESULT_TIMEOUT`, `_ENGINE_STOPPED`, `_SHUTTING_DOWN`: the
/// last error says they stay reserved). `LNSHARD_RESULT_INSUFFICIENT_FUNDS` when the coins
/// cannot pay it, `LNSHARD_RESULT_WALLET_FAILED` when a callback failed,
/// `LNSHARD_RESULT_INVALID_PARAMETER` for another kind of event. The callbacks run on this
/// thread, during this call.
#[no_mangle]
pub extern "C" fn lnshard_engine_fund_channel(
    engine: *const lnshard_engine,
    wallet: *const lnshard_wallet,
    event: *const lnshard_event,
    feerate_per_kw: u32,
    out_tx: *mut *mut lnshard_bytes,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let wallet = try_result!(CallbackWallet::new(try_ref_from_ptr!(wallet, "wallet"), "wallet"));
        let event = &try_handle!(event, "event").0;
        let out = try_out!(out_tx, "out_tx");
        try_result!(check_feerate(feerate_per_kw));
        match shard_engine::fund_channel(engine, &wallet, event, feerate_per_kw) {
            Ok(funded) => {
                write_bytes(out, consensus::serialize(&funded.tx));
                lnshard_result::Ok
            }
            Err(e) => funding_error(&e),
        }
    }
}

/// Answers an `ON_CHAIN` event of kind `BUMP_NEEDED` (`event`) from `wallet`, at
/// `feerate_per_kw` (sat per 1000 weight; 0: the event's own `feerate_per_kw`; else
/// `LNSHARD_MIN_CLAIM_FEERATE_PER_KW` to `LNSHARD_MAX_CLAIM_FEERATE_PER_KW`):
///
/// * our commitment with an anchor (`has_anchor`): a CPFP child spending the anchor (signed
///   by the engine with the channel's key) and wallet coins (signed by the wallet), change
///   to the wallet's `change_script`, so that the commitment and the child together pay
///   the feerate. `*out_tx` receives the commitment, `*out_child` the child: relay them
///   together, as a package (the commitment alone pays too little). Coins reserved as
///   `LNSHARD_RESERVATION_KIND_ANCHOR_BUMP`.
/// * one of our HTLC transactions (no anchor): the transaction completed with wallet coins
///   and a change output so that it pays the feerate, signed again by the engine (over the
///   whole transaction) and by the wallet. `*out_tx` receives it, `*out_child` NULL. Coins
///   reserved as `LNSHARD_RESERVATION_KIND_HTLC_BUMP`.
///
/// Each new buffer is the caller's: free it with `lnshard_bytes_free`. The coins stay
/// reserved until the application sees them spent or gives the bump up (release them);
/// on failure they were released. `LNSHARD_RESULT_INSUFFICIENT_FUNDS` when the coins cannot
/// pay it, `LNSHARD_RESULT_WALLET_FAILED` when a callback failed,
/// `LNSHARD_RESULT_API_REFUSED` when the transaction cannot be bumped (no longer our
/// latest commitment, not our HTLC transaction), `LNSHARD_RESULT_INVALID_PARAMETER` for
/// another kind of event. The callbacks run on this thread, during this call.
#[no_mangle]
pub extern "C" fn lnshard_engine_bump(
    engine: *const lnshard_engine,
    wallet: *const lnshard_wallet,
    event: *const lnshard_event,
    feerate_per_kw: u32,
    out_tx: *mut *mut lnshard_bytes,
    out_child: *mut *mut lnshard_bytes,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let wallet = try_result!(CallbackWallet::new(try_ref_from_ptr!(wallet, "wallet"), "wallet"));
        let event = &try_handle!(event, "event").0;
        let out_tx = try_out!(out_tx, "out_tx");
        let out_child = try_out!(out_child, "out_child");
        let CoreEvent::OnChain {
            channel_id,
            event: monitor_event @ MonitorEvent::BumpNeeded { .. },
            ..
        } = event
        else {
            return invalid_parameter("event is not an ON_CHAIN event of kind BUMP_NEEDED");
        };
        let MonitorEvent::BumpNeeded { anchor, feerate_per_kw: asked, .. } = monitor_event else {
            unreachable!("matched above");
        };
        let feerate = if feerate_per_kw == 0 { *asked } else { feerate_per_kw };
        try_result!(check_feerate(feerate));
        if anchor.is_some() {
            match shard_engine::bump_commitment(engine, &wallet, *channel_id, monitor_event, feerate) {
                Ok(bump) => {
                    write_bytes(out_tx, consensus::serialize(&bump.commitment));
                    write_bytes(out_child, consensus::serialize(&bump.child));
                    lnshard_result::Ok
                }
                Err(e) => bump_error(&e),
            }
        } else {
            match shard_engine::bump_htlc(engine, &wallet, *channel_id, monitor_event, feerate) {
                Ok(bumped) => {
                    write_bytes(out_tx, consensus::serialize(&bumped.tx));
                    // SAFETY: `out_child` is not NULL (checked) and points to a writable pointer.
                    unsafe { *out_child = std::ptr::null_mut() };
                    lnshard_result::Ok
                }
                Err(e) => bump_error(&e),
            }
        }
    }
}

/// Writes the id (32 bytes, internal byte order) of the serialized transaction (`tx_len`
/// bytes at `tx`, at most `LNSHARD_MAX_TRANSACTION_LEN`) to `out_txid`: the double SHA-256
/// of its serialization without witnesses, for a wallet that has no hash function of its
/// own. `LNSHARD_RESULT_INVALID_PARAMETER` when the bytes are not one whole transaction.
#[no_mangle]
pub extern "C" fn lnshard_transaction_txid(
    tx: *const u8,
    tx_len: usize,
    out_txid: *mut lnshard_txid,
) -> lnshard_result {
    ffi_panic_boundary! {
        let bytes = try_slice!(tx, tx_len, LNSHARD_MAX_TRANSACTION_LEN, "tx");
        let out = try_out!(out_txid, "out_txid");
        let tx: Transaction = match consensus::deserialize(bytes) {
            Ok(tx) => tx,
            Err(e) => {
                return invalid_parameter(format!(
                    "tx ({} bytes) is not a serialized transaction: {e}",
                    bytes.len()
                ))
            }
        };
        let txid = tx.compute_txid().to_byte_array();
        write_fixed(out, &txid);
        lnshard_result::Ok
    }
}
