//! The bumps in flight (`lnshard_bumper`, over `shard_engine::Bumper`): the answer to every
//! `BUMP_NEEDED` request of a transaction, first from the wallet, then once per block a
//! replacement spending the same coins with more fee (BIP 125) up to the request's cap,
//! until a spend of what it contests confirms; then its coins are released.

use std::sync::{Mutex, PoisonError};

use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::{consensus, Transaction, Txid};
use lightning_core::node::Event as CoreEvent;
use shard_engine::{BumpBroadcast, Bumper};

use crate::bytes::{lnshard_bytes, write_bytes};
use crate::engine::{confirmed_transactions, lnshard_confirmed_tx, lnshard_engine};
use crate::error::{invalid_parameter, lnshard_result};
use crate::event::lnshard_event;
use crate::handle::{into_handle, Castable, HandleKind};
use crate::types::lnshard_txid;
use crate::wallet::{bump_error, lnshard_wallet, CallbackWallet};

/// The bumps in flight of one node: see `lnshard_bumper_handle`.
///
/// Owner: the caller of `lnshard_bumper_new`; free it once with `lnshard_bumper_free` (bumps
/// in flight are forgotten, their coins stay reserved: release them first with
/// `lnshard_bumper_abandon` if they should go back to the wallet). Not persisted: after a
/// restart the first request bumps afresh. Thread-safety: any thread may call it; calls on
/// one bumper run one at a time.
pub struct lnshard_bumper {
    _private: [u8; 0],
}

impl Castable for lnshard_bumper {
    const KIND: HandleKind = HandleKind::Bumper;
    type Rust = Mutex<Bumper>;
}

/// One bump in flight, as `lnshard_bumper_status` copies it out.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_bump_status {
    /// The channel (32 bytes).
    pub channel_id: [u8; 32],
    /// The feerate of the last bump (the package's, for a commitment), sat per 1000 weight.
    pub feerate_per_kw: u32,
    /// The fee the wallet's side pays: the child's, or the HTLC transaction's.
    pub fee_sat: u64,
    /// The cap of the last request (`max_fee_sat`).
    pub max_fee_sat: u64,
    /// How many wallet coins it spends (reserved until released).
    pub wallet_inputs: usize,
    /// How many bumps were made: the first and its replacements.
    pub bumps: u32,
    /// Whether a spend of the output it contests confirmed, and then at which height.
    pub settled: bool,
    /// The height of that confirmation.
    pub settled_at: u32,
}

fn lock(bumper: &Mutex<Bumper>) -> std::sync::MutexGuard<'_, Bumper> {
    bumper.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes a new, empty bumper to `*out`; free it with `lnshard_bumper_free`.
#[no_mangle]
pub extern "C" fn lnshard_bumper_new(out: *mut *mut lnshard_bumper) -> lnshard_result {
    ffi_panic_boundary! {
        let out = try_mut_from_ptr!(out, "out");
        *out = into_handle::<lnshard_bumper>(Mutex::new(Bumper::new()));
        lnshard_result::Ok
    }
}

/// Frees a bumper. NULL is a no-op, and so is a handle of another type (the last error
/// names it); freeing twice is undefined behaviour.
#[no_mangle]
pub extern "C" fn lnshard_bumper_free(bumper: *mut lnshard_bumper) {
    ffi_panic_boundary! {
        drop(try_take_handle!(bumper, "bumper"));
    }
}

/// Answers an `ON_CHAIN` `event` of `engine` at block `height` (the chain's tip): for kind
/// `BUMP_NEEDED`, the first request for a transaction bumps it from `wallet` (as
/// `lnshard_engine_bump` at the event's feerate, scaled down to fit its `max_fee_sat`);
/// each later request, once per block, replaces the last bump with one spending the same
/// coins at `max(the request's feerate, the last feerate x 5/4)`, never above the cap (at
/// the cap, or when the coins cannot pay more, the last bump is kept and given again).
/// `*out_tx` and `*out_child` receive what to relay now, as `lnshard_engine_bump` gives
/// them (a commitment and its child, or an HTLC transaction and NULL; relaying the same
/// again is harmless); both NULL when there is nothing to relay (another kind of on-chain
/// event, a transaction already settled). Free each with `lnshard_bytes_free`.
///
/// On failure the bumper is as it was (a replacement that failed keeps the last bump in
/// flight): `LNSHARD_RESULT_INSUFFICIENT_FUNDS`, `LNSHARD_RESULT_WALLET_FAILED`,
/// `LNSHARD_RESULT_API_REFUSED` (the transaction cannot be bumped, or even the relay
/// minimum would pay more than the cap), `LNSHARD_RESULT_INVALID_PARAMETER` for an event
/// that is not `ON_CHAIN`. The wallet's callbacks run on this thread, during this call.
#[no_mangle]
pub extern "C" fn lnshard_bumper_handle(
    bumper: *const lnshard_bumper,
    engine: *const lnshard_engine,
    wallet: *const lnshard_wallet,
    event: *const lnshard_event,
    height: u32,
    out_tx: *mut *mut lnshard_bytes,
    out_child: *mut *mut lnshard_bytes,
) -> lnshard_result {
    ffi_panic_boundary! {
        let bumper = try_handle!(bumper, "bumper");
        let engine = &try_handle!(engine, "engine").engine;
        let wallet = try_result!(CallbackWallet::new(try_ref_from_ptr!(wallet, "wallet"), "wallet"));
        let event = &try_handle!(event, "event").0;
        let out_tx = try_out!(out_tx, "out_tx");
        let out_child = try_out!(out_child, "out_child");
        let CoreEvent::OnChain { channel_id, event: monitor_event, .. } = event else {
            return invalid_parameter("event is not an ON_CHAIN event");
        };
        let relay = match lock(bumper).handle(engine, &wallet, *channel_id, monitor_event, height) {
            Ok(relay) => relay,
            Err(e) => return bump_error(&e),
        };
        let (tx, child) = match relay.into_iter().next() {
            Some(BumpBroadcast::Package { parent, child }) => (Some(parent), Some(child)),
            Some(BumpBroadcast::Transaction(tx)) => (Some(tx), None),
            None => (None, None),
        };
        let write = |out: *mut *mut lnshard_bytes, tx: Option<Transaction>| match tx {
            Some(tx) => write_bytes(out, consensus::serialize(&tx)),
            // SAFETY: `out` is not NULL (checked) and points to a writable pointer.
            None => unsafe { *out = std::ptr::null_mut() },
        };
        write(out_tx, tx);
        write(out_child, child);
        lnshard_result::Ok
    }
}

/// A block connected at `height` with its transactions (`txs_len` entries at `txs`, at most
/// `LNSHARD_MAX_CONFIRMED_TRANSACTIONS`, as `lnshard_engine_transactions_confirmed` takes
/// them): a bump whose contested output (the funding output for a commitment, the HTLC
/// output for an HTLC transaction) one of them spends is settled; bumps settled 6 blocks
/// deep have their coins released through `wallet` and are forgotten (a wallet that fails
/// to release keeps the bump, to try again at the next block). `*out_forgotten` (may be
/// NULL) receives how many were forgotten.
#[no_mangle]
pub extern "C" fn lnshard_bumper_block_connected(
    bumper: *const lnshard_bumper,
    wallet: *const lnshard_wallet,
    height: u32,
    txs: *const lnshard_confirmed_tx,
    txs_len: usize,
    out_forgotten: *mut usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let bumper = try_handle!(bumper, "bumper");
        let wallet = try_result!(CallbackWallet::new(try_ref_from_ptr!(wallet, "wallet"), "wallet"));
        let mut txdata = Vec::new();
        let decoded = confirmed_transactions(txs, txs_len, &mut txdata);
        if decoded != lnshard_result::Ok {
            return decoded;
        }
        let refs: Vec<&Transaction> = txdata.iter().map(|(_, tx)| tx).collect();
        let forgotten = lock(bumper).block_connected(&wallet, height, &refs);
        // SAFETY: NULL or a writable count (documented contract).
        if let Some(out) = unsafe { out_forgotten.as_mut() } {
            *out = forgotten.len();
        }
        lnshard_result::Ok
    }
}

/// The blocks from `height` up were disconnected (a reorg): settlements they held are
/// undone (those bumps are in flight again, and re-bumped at the next request).
#[no_mangle]
pub extern "C" fn lnshard_bumper_blocks_disconnected(
    bumper: *const lnshard_bumper,
    height: u32,
) -> lnshard_result {
    ffi_panic_boundary! {
        lock(try_handle!(bumper, "bumper")).blocks_disconnected(height);
        lnshard_result::Ok
    }
}

/// Gives up the bump of the transaction whose id is the 32 bytes at `txid` (the one that
/// needed fees; internal byte order): releases its coins through `wallet` and forgets it (a
/// later request bumps afresh). `*out_was_in_flight` says whether it was.
#[no_mangle]
pub extern "C" fn lnshard_bumper_abandon(
    bumper: *const lnshard_bumper,
    wallet: *const lnshard_wallet,
    txid: *const lnshard_txid,
    out_was_in_flight: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let bumper = try_handle!(bumper, "bumper");
        let wallet = try_result!(CallbackWallet::new(try_ref_from_ptr!(wallet, "wallet"), "wallet"));
        let txid = Txid::from_byte_array(try_array!(txid, 32, "txid"));
        let out = try_mut_from_ptr!(out_was_in_flight, "out_was_in_flight");
        *out = lock(bumper).abandon(&wallet, &txid);
        lnshard_result::Ok
    }
}

/// The bump in flight for the transaction whose id is the 32 bytes at `txid` (the one that
/// needed fees): `*out_found` says whether there is one, and then `*out` holds it.
#[no_mangle]
pub extern "C" fn lnshard_bumper_status(
    bumper: *const lnshard_bumper,
    txid: *const lnshard_txid,
    out: *mut lnshard_bump_status,
    out_found: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let bumper = try_handle!(bumper, "bumper");
        let txid = Txid::from_byte_array(try_array!(txid, 32, "txid"));
        let out = try_mut_from_ptr!(out, "out");
        let out_found = try_mut_from_ptr!(out_found, "out_found");
        match lock(bumper).status(&txid) {
            Some(s) => {
                *out = lnshard_bump_status {
                    channel_id: s.channel_id.0,
                    feerate_per_kw: s.feerate_per_kw,
                    fee_sat: s.fee_satoshis,
                    max_fee_sat: s.max_fee_sat,
                    wallet_inputs: s.wallet_inputs.len(),
                    bumps: s.bumps,
                    settled: s.settled_at.is_some(),
                    settled_at: s.settled_at.unwrap_or(0),
                };
                *out_found = true;
            }
            None => *out_found = false,
        }
        lnshard_result::Ok
    }
}

/// How many bumps are in flight (settled ones included until released): 0 for NULL, and
/// for anything but a live bumper (the last error then says why).
#[no_mangle]
pub extern "C" fn lnshard_bumper_len(bumper: *const lnshard_bumper) -> usize {
    ffi_panic_boundary! {
        lock(try_handle!(bumper, "bumper")).len()
    }
}
