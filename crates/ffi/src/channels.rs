//! `list_channels` as a list of plain structs.

use lightning_core::channel::ChannelPhase;
use lightning_core::node::ChannelDetails;
use shard_engine::NodeApi;

use crate::engine::lnshard_engine;
use crate::error::{engine_error, invalid_parameter, lnshard_result};
use crate::handle::{into_handle, Castable, HandleKind};

/// Where a channel is in its life. The numbers are part of the ABI and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_channel_phase {
    /// A phase this library version does not know.
    Unknown = 0,
    /// Funder: `open_channel` sent, waiting for `accept_channel`.
    AwaitingAcceptChannel = 1,
    /// Funder: waiting for the application's funding transaction.
    AwaitingFundingTransaction = 2,
    /// Fundee: waiting for `funding_created`.
    AwaitingFundingCreated = 3,
    /// Funder: waiting for `funding_signed`.
    AwaitingFundingSigned = 4,
    /// Waiting for confirmations and both `channel_ready`.
    AwaitingChannelReady = 5,
    /// Open: payments may flow.
    Normal = 6,
    /// Closed.
    Closed = 7,
}

/// One channel as `lnshard_engine_list_channels` shows it (plain data, copied out).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_channel_details {
    /// The channel id (temporary until funded).
    pub channel_id: [u8; 32],
    /// The peer (33-byte compressed public key).
    pub counterparty_node_id: [u8; 33],
    /// The application's id for it (low 64 bits).
    pub user_channel_id: u64,
    /// The funding amount.
    pub channel_value_satoshis: u64,
    /// Whether we funded it.
    pub is_outbound: bool,
    /// Whether payments may flow now (ready and the peer connected).
    pub is_usable: bool,
    /// Whether `short_channel_id` is set (once confirmed).
    pub has_short_channel_id: bool,
    /// The real short channel id.
    pub short_channel_id: u64,
    /// Where it is in its life.
    pub phase: lnshard_channel_phase,
    /// Our balance in our latest commitment (HTLCs and fees excluded).
    pub to_local_msat: u64,
    /// The peer's balance in our latest commitment.
    pub to_remote_msat: u64,
    /// What we could send now.
    pub outbound_capacity_msat: u64,
    /// What the peer could send us now.
    pub inbound_capacity_msat: u64,
}

/// The engine's channels at one moment.
///
/// Owner: the caller of `lnshard_engine_list_channels`; free with `lnshard_channel_list_free`.
/// Thread-safety: immutable; may be read from any thread, freed from one.
pub struct lnshard_channel_list {
    _private: [u8; 0],
}

pub(crate) struct ChannelList(Vec<lnshard_channel_details>);

impl Castable for lnshard_channel_list {
    const KIND: HandleKind = HandleKind::ChannelList;
    type Rust = ChannelList;
}

fn details(c: &ChannelDetails) -> lnshard_channel_details {
    lnshard_channel_details {
        channel_id: c.channel_id.0,
        counterparty_node_id: c.counterparty_node_id.serialize(),
        user_channel_id: c.user_channel_id as u64,
        channel_value_satoshis: c.channel_value_satoshis,
        is_outbound: c.is_outbound,
        is_usable: c.is_usable,
        has_short_channel_id: c.short_channel_id.is_some(),
        short_channel_id: c.short_channel_id.map_or(0, |s| s.0),
        phase: match c.phase {
            ChannelPhase::AwaitingAcceptChannel => lnshard_channel_phase::AwaitingAcceptChannel,
            ChannelPhase::AwaitingFundingTransaction => {
                lnshard_channel_phase::AwaitingFundingTransaction
            }
            ChannelPhase::AwaitingFundingCreated => lnshard_channel_phase::AwaitingFundingCreated,
            ChannelPhase::AwaitingFundingSigned => lnshard_channel_phase::AwaitingFundingSigned,
            ChannelPhase::AwaitingChannelReady => lnshard_channel_phase::AwaitingChannelReady,
            ChannelPhase::Normal => lnshard_channel_phase::Normal,
            ChannelPhase::Closed => lnshard_channel_phase::Closed,
            #[allow(unreachable_patterns)]
            _ => lnshard_channel_phase::Unknown,
        },
        to_local_msat: c.balances.to_local_msat,
        to_remote_msat: c.balances.to_remote_msat,
        outbound_capacity_msat: c.balances.outbound_capacity_msat,
        inbound_capacity_msat: c.balances.inbound_capacity_msat,
    }
}

/// Every channel of every shard: `*out` is a new list to free with
/// `lnshard_channel_list_free`.
#[no_mangle]
pub extern "C" fn lnshard_engine_list_channels(
    engine: *const lnshard_engine,
    out: *mut *mut lnshard_channel_list,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let out = try_mut_from_ptr!(out, "out");
        match engine.list_channels() {
            Ok(list) => {
                let list = ChannelList(list.iter().map(details).collect());
                *out = into_handle::<lnshard_channel_list>(list);
                lnshard_result::Ok
            }
            Err(e) => engine_error("list_channels", &e),
        }
    }
}

/// The number of channels in the list: 0 for NULL, and for anything but a live
/// `lnshard_channel_list` (the last error then says why).
#[no_mangle]
pub extern "C" fn lnshard_channel_list_len(list: *const lnshard_channel_list) -> usize {
    ffi_panic_boundary! {
        try_handle!(list, "list").0.len()
    }
}

/// Copies channel `index` of the list into `*out`; `index` at or past the length is
/// `LNSHARD_RESULT_INVALID_PARAMETER`.
#[no_mangle]
pub extern "C" fn lnshard_channel_list_get(
    list: *const lnshard_channel_list,
    index: usize,
    out: *mut lnshard_channel_details,
) -> lnshard_result {
    ffi_panic_boundary! {
        let list = try_handle!(list, "list");
        let out = try_mut_from_ptr!(out, "out");
        let Some(c) = list.0.get(index) else {
            return invalid_parameter(format!(
                "index {index} not below the list length {}",
                list.0.len()
            ));
        };
        *out = *c;
        lnshard_result::Ok
    }
}

/// Frees a channel list. NULL is a no-op, and so is a handle of another type (the last
/// error names it); freeing twice is undefined behaviour.
#[no_mangle]
pub extern "C" fn lnshard_channel_list_free(list: *mut lnshard_channel_list) {
    ffi_panic_boundary! {
        drop(try_take_handle!(list, "list"));
    }
}
