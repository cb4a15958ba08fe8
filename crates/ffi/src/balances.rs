//! `claimable_balances` as a list of plain structs: what each monitored channel's on-chain
//! state owes the node (see `lightning_core::chain::Balance`).

use lightning_core::chain::Balance;
use lightning_core::types::ChannelId;
use shard_engine::NodeApi;

use crate::engine::lnshard_engine;
use crate::error::{engine_error, invalid_parameter, lnshard_result};
use crate::handle::{into_handle, Castable, HandleKind};

/// What kind of amount a `lnshard_balance` is. The numbers are part of the ABI and never
/// reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_balance_kind {
    /// A kind this library version does not know: only `amount_sat` is meaningful.
    Unknown = 0,
    /// The channel is open: what a close now would give us (our balance in our latest
    /// commitment).
    ClaimableOnChannelClose = 1,
    /// Ours, waiting for a claim to confirm or a timelock to pass: irrevocably ours at
    /// `confirmation_height` (estimated).
    ClaimableAwaitingConfirmations = 2,
    /// An HTLC output we may claim or lose (`timeout_height`, `payment_hash`,
    /// `ours_after_timeout`): an HTLC offered to us is ours with its preimage before
    /// `timeout_height` and the peer's after it; one we offered is ours after it unless the
    /// peer reveals the preimage first.
    ContentiousClaimable = 3,
    /// A revoked output of the peer's, which our justice transactions take.
    CounterpartyRevokedOutputClaimable = 4,
}

/// One amount as `lnshard_engine_claimable_balances` lists it (plain data, copied out).
/// Fields a kind does not use are zero (and `has_payment_hash` false).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_balance {
    /// The channel (32 bytes).
    pub channel_id: [u8; 32],
    /// What the amount is.
    pub kind: lnshard_balance_kind,
    /// The amount, in satoshis.
    pub amount_sat: u64,
    /// `CLAIMABLE_AWAITING_CONFIRMATIONS`: the height at which it is irrevocably ours.
    pub confirmation_height: u32,
    /// `CONTENTIOUS_CLAIMABLE`: the HTLC's expiry.
    pub timeout_height: u32,
    /// Whether `payment_hash` is set (`CONTENTIOUS_CLAIMABLE`).
    pub has_payment_hash: bool,
    /// The HTLC's payment hash (32 bytes).
    pub payment_hash: [u8; 32],
    /// `CONTENTIOUS_CLAIMABLE`: whether it is ours after `timeout_height` (an HTLC we
    /// offered).
    pub ours_after_timeout: bool,
}

/// The engine's claimable balances at one moment.
///
/// Owner: the caller of `lnshard_engine_claimable_balances`; free with
/// `lnshard_balance_list_free`. Thread-safety: immutable; may be read from any thread, freed
/// from one.
pub struct lnshard_balance_list {
    _private: [u8; 0],
}

pub(crate) struct BalanceList(Vec<lnshard_balance>);

impl Castable for lnshard_balance_list {
    const KIND: HandleKind = HandleKind::BalanceList;
    type Rust = BalanceList;
}

/// One core balance as C sees it.
pub(crate) fn balance(channel_id: &ChannelId, b: &Balance) -> lnshard_balance {
    let mut out = lnshard_balance {
        channel_id: channel_id.0,
        kind: lnshard_balance_kind::Unknown,
        amount_sat: 0,
        confirmation_height: 0,
        timeout_height: 0,
        has_payment_hash: false,
        payment_hash: [0; 32],
        ours_after_timeout: false,
    };
    match b {
        Balance::ClaimableOnChannelClose { amount_sat } => {
            out.kind = lnshard_balance_kind::ClaimableOnChannelClose;
            out.amount_sat = *amount_sat;
        }
        Balance::ClaimableAwaitingConfirmations {
            amount_sat,
            confirmation_height,
        } => {
            out.kind = lnshard_balance_kind::ClaimableAwaitingConfirmations;
            out.amount_sat = *amount_sat;
            out.confirmation_height = *confirmation_height;
        }
        Balance::ContentiousClaimable {
            amount_sat,
            timeout_height,
            payment_hash,
            ours_after_timeout,
        } => {
            out.kind = lnshard_balance_kind::ContentiousClaimable;
            out.amount_sat = *amount_sat;
            out.timeout_height = *timeout_height;
            out.has_payment_hash = true;
            out.payment_hash = payment_hash.0;
            out.ours_after_timeout = *ours_after_timeout;
        }
        Balance::CounterpartyRevokedOutputClaimable { amount_sat } => {
            out.kind = lnshard_balance_kind::CounterpartyRevokedOutputClaimable;
            out.amount_sat = *amount_sat;
        }
    }
    out
}

/// What every monitored channel's on-chain state owes us, one entry per amount (a channel
/// may have several, or none): `*out` is a new list to free with `lnshard_balance_list_free`.
/// Open channels show their `CLAIMABLE_ON_CHANNEL_CLOSE` amount; closed ones keep theirs
/// until every output is irrevocably resolved.
#[no_mangle]
pub extern "C" fn lnshard_engine_claimable_balances(
    engine: *const lnshard_engine,
    out: *mut *mut lnshard_balance_list,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let out = try_mut_from_ptr!(out, "out");
        match engine.claimable_balances() {
            Ok(all) => {
                let list = BalanceList(all.iter().map(|(id, b)| balance(id, b)).collect());
                *out = into_handle::<lnshard_balance_list>(list);
                lnshard_result::Ok
            }
            Err(e) => engine_error("claimable_balances", &e),
        }
    }
}

/// The number of balances in the list: 0 for NULL, and for anything but a live
/// `lnshard_balance_list` (the last error then says why).
#[no_mangle]
pub extern "C" fn lnshard_balance_list_len(list: *const lnshard_balance_list) -> usize {
    ffi_panic_boundary! {
        try_handle!(list, "list").0.len()
    }
}

/// Copies balance `index` of the list into `*out`; `index` at or past the length is
/// `LNSHARD_RESULT_INVALID_PARAMETER`.
#[no_mangle]
pub extern "C" fn lnshard_balance_list_get(
    list: *const lnshard_balance_list,
    index: usize,
    out: *mut lnshard_balance,
) -> lnshard_result {
    ffi_panic_boundary! {
        let list = try_handle!(list, "list");
        let out = try_mut_from_ptr!(out, "out");
        let Some(b) = list.0.get(index) else {
            return invalid_parameter(format!(
                "index {index} not below the list length {}",
                list.0.len()
            ));
        };
        *out = *b;
        lnshard_result::Ok
    }
}

/// Frees a balance list. NULL is a no-op, and so is a handle of another type (the last
/// error names it); freeing twice is undefined behaviour.
#[no_mangle]
pub extern "C" fn lnshard_balance_list_free(list: *mut lnshard_balance_list) {
    ffi_panic_boundary! {
        drop(try_take_handle!(list, "list"));
    }
}

#[cfg(test)]
mod tests {
    use lightning_core::types::PaymentHash;

    use super::*;

    #[test]
    fn every_balance_kind_keeps_its_fields() {
        let id = ChannelId([9; 32]);
        let b = balance(&id, &Balance::ClaimableOnChannelClose { amount_sat: 5 });
        assert_eq!(
            (b.kind, b.amount_sat, b.channel_id),
            (lnshard_balance_kind::ClaimableOnChannelClose, 5, [9; 32])
        );
        let b = balance(
            &id,
            &Balance::ClaimableAwaitingConfirmations {
                amount_sat: 6,
                confirmation_height: 700,
            },
        );
        assert_eq!(
            (b.kind, b.amount_sat, b.confirmation_height),
            (lnshard_balance_kind::ClaimableAwaitingConfirmations, 6, 700)
        );
        let b = balance(
            &id,
            &Balance::ContentiousClaimable {
                amount_sat: 7,
                timeout_height: 800,
                payment_hash: PaymentHash([3; 32]),
                ours_after_timeout: true,
            },
        );
        assert_eq!(b.kind, lnshard_balance_kind::ContentiousClaimable);
        assert!(b.has_payment_hash && b.ours_after_timeout);
        assert_eq!(
            (b.amount_sat, b.timeout_height, b.payment_hash),
            (7, 800, [3; 32])
        );
        let b = balance(
            &id,
            &Balance::CounterpartyRevokedOutputClaimable { amount_sat: 8 },
        );
        assert_eq!(
            (b.kind, b.amount_sat, b.has_payment_hash),
            (
                lnshard_balance_kind::CounterpartyRevokedOutputClaimable,
                8,
                false
            )
        );
    }

    #[test]
    fn the_list_is_read_by_index_and_refuses_past_its_end() {
        let list = into_handle::<lnshard_balance_list>(BalanceList(vec![balance(
            &ChannelId([1; 32]),
            &Balance::ClaimableOnChannelClose { amount_sat: 42 },
        )]));
        assert_eq!(lnshard_balance_list_len(list), 1);
        let mut out = std::mem::MaybeUninit::<lnshard_balance>::uninit();
        assert_eq!(
            lnshard_balance_list_get(list, 0, out.as_mut_ptr()),
            lnshard_result::Ok
        );
        // SAFETY: written on Ok.
        assert_eq!(unsafe { out.assume_init() }.amount_sat, 42);
        assert_eq!(
            lnshard_balance_list_get(list, 1, out.as_mut_ptr()),
            lnshard_result::InvalidParameter
        );
        lnshard_balance_list_free(list);
        assert_eq!(lnshard_balance_list_len(list), 0, "freed: not a live list");
    }
}
