//! The engine handle: creation from a config struct, BOLT 8 connections (the one way peers'
//! bytes reach the engine), events, the API calls and the chain.

use std::ffi::{c_char, CStr};
use std::sync::Arc;
use std::time::Duration;

use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::{
    consensus, BlockHash, Network, ScriptBuf, Transaction, WitnessVersion,
};
use lightning_core::node::{NodeConfig, PaymentId, Route, RouteHop};
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::types::ShortChannelId;
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};
use shard_engine::store::{FsStore, MemoryStore, Store};
use shard_engine::{Engine, EngineConfig, NodeApi};

use crate::bytes::{lnshard_bytes, write_bytes};
use crate::error::{engine_error, fail, invalid_parameter, lnshard_result, store_error};
use crate::event::{lnshard_event, Event};
use crate::fees::{lnshard_fee_estimator, CallbackFeeEstimator};
use crate::handle::{into_handle, Castable, HandleKind};
use crate::store::{lnshard_store_callbacks, CallbackStore};
use crate::types::write_fixed as write_array;
use crate::types::{
    lnshard_block_hash, lnshard_channel_id, lnshard_node_id, lnshard_payment_hash,
    lnshard_payment_id, lnshard_payment_preimage, lnshard_payment_secret, lnshard_secret_key,
    lnshard_seed,
};

/// The most bytes one `lnshard_engine_handle_bytes` call takes.
pub const LNSHARD_MAX_READ_LEN: usize = 1 << 24;
/// The largest serialized transaction accepted (the block weight limit in bytes).
pub const LNSHARD_MAX_TRANSACTION_LEN: usize = 4_000_000;
/// The most transactions one `lnshard_engine_transactions_confirmed` call takes.
pub const LNSHARD_MAX_CONFIRMED_TRANSACTIONS: usize = 100_000;
/// The most hops a route may have (BOLT 4: 20 hops fit in the onion).
pub const LNSHARD_MAX_ROUTE_HOPS: usize = 20;
/// The most shards an engine may run.
pub const LNSHARD_MAX_SHARDS: u32 = 1024;

/// The Bitcoin network an engine's channels live on.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_network {
    /// Bitcoin mainnet.
    Bitcoin = 0,
    /// Testnet 3.
    Testnet = 1,
    /// Signet.
    Signet = 2,
    /// Regtest.
    Regtest = 3,
}

/// How to build an engine. Fill it with `lnshard_engine_config_default`, then change fields.
///
/// Owner: the caller (plain data; the library keeps no pointer into it after
/// `lnshard_engine_new` returns).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_engine_config {
    /// Worker threads (shards): 1 to `LNSHARD_MAX_SHARDS`.
    pub shards: u32,
    /// Messages each shard's inbox holds before a call returns `LNSHARD_RESULT_FULL` (>= 1).
    pub inbox_capacity: u32,
    /// Messages queued for one peer before the engine disconnects it as too slow (>= 1).
    pub peer_outbox_capacity: u32,
    /// Events queued for the application before shards wait for it to drain them (>= 1).
    pub event_capacity: u32,
    /// How long an API call waits for its shard's answer, in milliseconds (>= 1).
    pub reply_timeout_ms: u32,
    /// The network: a `lnshard_network` value (any other number is refused).
    pub network: u32,
    /// The directory of the embedded store (NUL-terminated UTF-8 path), or NULL for an
    /// in-memory store. Ignored when `store` is set. `lnshard_engine_new` restores whatever
    /// the store holds (channels resume when their peers reconnect) and then makes every
    /// state durable before any message that commits to it leaves the engine.
    pub data_dir: *const c_char,
    /// A store implemented by the application, or NULL: see `lnshard_store_callbacks`.
    /// Copied by `lnshard_engine_new`; its callbacks must stay callable until
    /// `lnshard_engine_free` returns.
    pub store: *const lnshard_store_callbacks,
    /// Channels of any state one peer may have with us.
    pub max_channels_per_peer: u32,
    /// Channels one peer may have open but unfunded with us at once.
    pub max_unfunded_channels_per_peer: u32,
    /// Outbound payments in flight at once.
    pub max_pending_payments: u32,
    /// The fewest blocks left before expiry of an HTLC paid to us.
    pub min_final_cltv_expiry_delta: u32,
    /// The confirmations we ask of a funding transaction as fundee.
    pub minimum_depth: u32,
    /// The most HTLCs we accept in flight per channel (1 to 483).
    pub max_accepted_htlcs: u32,
    /// The `to_self_delay` we impose on the peer's outputs (1 to 2016 blocks).
    pub to_self_delay: u32,
    /// The smallest channel we accept as fundee.
    pub min_funding_satoshis: u64,
    /// The largest channel we accept (at most 2^24 - 1).
    pub max_funding_satoshis: u64,
    /// Our base fee per forwarded HTLC.
    pub forwarding_fee_base_msat: u32,
    /// Our proportional fee for forwarding, in millionths of the amount.
    pub forwarding_fee_proportional_millionths: u32,
    /// The blocks we require between a forwarded HTLC's incoming and outgoing expiry
    /// (1 to 2016).
    pub forwarding_cltv_expiry_delta: u32,
    /// A fee estimator the engine asks once at start and on every
    /// `lnshard_engine_best_block_updated`, or NULL (push estimates with
    /// `lnshard_engine_fee_estimates_updated`): see `lnshard_fee_estimator`. Copied by
    /// `lnshard_engine_new`; its callback must stay callable until `lnshard_engine_free`
    /// returns.
    pub fee_estimator: *const lnshard_fee_estimator,
    /// Whether to offer and accept `option_anchors_zero_fee_htlc_tx` channels (default
    /// true): their commitments and HTLC transactions pay (almost) no fee of their own and
    /// are bumped from the application's wallet when they must confirm (`BUMP_NEEDED`
    /// events; `lnshard_engine_bump`, `lnshard_bumper`). A peer without the feature gets a
    /// `static_remotekey` channel either way.
    pub negotiate_anchors: bool,
    /// Blocks a completed payment's id stays refused by `lnshard_engine_send_payment`
    /// (`LNSHARD_RESULT_PAYMENT_ID_USED`), across restarts, so that a call retried after a
    /// lost answer never pays twice (default 144; 0 forgets an id when its payment ends).
    pub payment_id_retention_blocks: u32,
}

/// A running engine: N shard threads (see `docs/ENGINE.md`).
///
/// Owner: the caller of `lnshard_engine_new`; free it exactly once with `lnshard_engine_free`
/// (which stops and joins every thread). Thread-safety: every function taking an engine may
/// be called from any thread at once; keep one peer's messages on one thread at a time so
/// they stay in order.
pub struct lnshard_engine {
    _private: [u8; 0],
}

/// The engine behind an `lnshard_engine` pointer.
pub(crate) struct EngineHandle {
    pub(crate) engine: Engine,
}

/// One hop of a route, first (our peer) to last (the recipient): see `lnshard_engine_send_payment`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_route_hop {
    /// The node at the far end of this hop's channel (33-byte compressed public key).
    pub node_id: [u8; 33],
    /// The channel that reaches `node_id` (real short channel id or alias).
    pub short_channel_id: u64,
    /// For a forwarding hop its fee; for the last hop the amount delivered.
    pub fee_msat: u64,
    /// For a forwarding hop its CLTV delta; for the last hop the final CLTV delta.
    pub cltv_expiry_delta: u32,
}

/// One transaction confirmed in a block: see `lnshard_engine_transactions_confirmed`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_confirmed_tx {
    /// Its index in the block (the coinbase is 0).
    pub index: u32,
    /// The serialized transaction (consensus encoding, with witnesses).
    pub tx: *const u8,
    /// Its length in bytes (at most `LNSHARD_MAX_TRANSACTION_LEN`).
    pub tx_len: usize,
}

impl Castable for lnshard_engine {
    const KIND: HandleKind = HandleKind::Engine;
    type Rust = EngineHandle;
}

fn pubkey(bytes: [u8; 33], name: &str) -> Result<PublicKey, lnshard_result> {
    PublicKey::from_slice(&bytes)
        .map_err(|e| invalid_parameter(format!("{name} is not a valid public key: {e}")))
}

pub(crate) fn transaction(bytes: &[u8], name: &str) -> Result<Transaction, lnshard_result> {
    consensus::deserialize(bytes).map_err(|e| {
        invalid_parameter(format!(
            "{name} ({} bytes) is not a serialized transaction: {e}",
            bytes.len()
        ))
    })
}

fn network(n: u32) -> Result<Network, lnshard_result> {
    Ok(match n {
        x if x == lnshard_network::Bitcoin as u32 => Network::Bitcoin,
        x if x == lnshard_network::Testnet as u32 => Network::Testnet,
        x if x == lnshard_network::Signet as u32 => Network::Signet,
        x if x == lnshard_network::Regtest as u32 => Network::Regtest,
        other => {
            return Err(invalid_parameter(format!(
                "config.network {other} is not a lnshard_network value (0 to 3)"
            )))
        }
    })
}

fn in_range(name: &str, v: u32, min: u32, max: u32) -> Result<u32, lnshard_result> {
    if v < min || v > max {
        return Err(invalid_parameter(format!(
            "config.{name} {v} outside {min}..={max}"
        )));
    }
    Ok(v)
}

/// Writes the defaults into `*out`: 2 shards, regtest, in-memory store, the engine's limits.
#[no_mangle]
pub extern "C" fn lnshard_engine_config_default(out: *mut lnshard_engine_config) -> lnshard_result {
    ffi_panic_boundary! {
        let out = try_mut_from_ptr!(out, "out");
        let e = EngineConfig::default();
        let n = NodeConfig::default();
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        *out = lnshard_engine_config {
            shards: clamp(e.shards),
            inbox_capacity: clamp(e.inbox_capacity),
            peer_outbox_capacity: clamp(e.peer_outbox_capacity),
            event_capacity: clamp(e.event_capacity),
            reply_timeout_ms: u32::try_from(e.reply_timeout.as_millis()).unwrap_or(u32::MAX),
            network: lnshard_network::Regtest as u32,
            data_dir: std::ptr::null(),
            store: std::ptr::null(),
            max_channels_per_peer: clamp(n.max_channels_per_peer),
            max_unfunded_channels_per_peer: clamp(n.max_unfunded_channels_per_peer),
            max_pending_payments: clamp(n.max_pending_payments),
            min_final_cltv_expiry_delta: n.min_final_cltv_expiry_delta,
            minimum_depth: n.channel.minimum_depth,
            max_accepted_htlcs: u32::from(n.channel.max_accepted_htlcs),
            to_self_delay: u32::from(n.channel.to_self_delay),
            min_funding_satoshis: n.channel.min_funding_satoshis,
            max_funding_satoshis: n.channel.max_funding_satoshis,
            forwarding_fee_base_msat: n.forwarding.fee_base_msat,
            forwarding_fee_proportional_millionths: n.forwarding.fee_proportional_millionths,
            forwarding_cltv_expiry_delta: u32::from(n.forwarding.cltv_expiry_delta),
            fee_estimator: std::ptr::null(),
            negotiate_anchors: n.channel.negotiate_anchors,
            payment_id_retention_blocks: n.payment_id_retention_blocks,
        };
        lnshard_result::Ok
    }
}

pub(crate) fn engine_config(c: &lnshard_engine_config) -> Result<EngineConfig, lnshard_result> {
    let mut node = NodeConfig::for_network(network(c.network)?);
    node.max_channels_per_peer = in_range(
        "max_channels_per_peer",
        c.max_channels_per_peer,
        1,
        u32::MAX,
    )? as usize;
    node.max_unfunded_channels_per_peer = in_range(
        "max_unfunded_channels_per_peer",
        c.max_unfunded_channels_per_peer,
        1,
        u32::MAX,
    )? as usize;
    node.max_pending_payments =
        in_range("max_pending_payments", c.max_pending_payments, 1, u32::MAX)? as usize;
    node.min_final_cltv_expiry_delta = in_range(
        "min_final_cltv_expiry_delta",
        c.min_final_cltv_expiry_delta,
        1,
        2016,
    )?;
    node.channel.minimum_depth = in_range("minimum_depth", c.minimum_depth, 1, 144)?;
    node.channel.max_accepted_htlcs =
        in_range("max_accepted_htlcs", c.max_accepted_htlcs, 1, 483)? as u16;
    node.channel.to_self_delay = in_range("to_self_delay", c.to_self_delay, 1, 2016)? as u16;
    const MAX_FUNDING: u64 = (1 << 24) - 1;
    if c.max_funding_satoshis > MAX_FUNDING {
        return Err(invalid_parameter(format!(
            "config.max_funding_satoshis {} above the limit {MAX_FUNDING}",
            c.max_funding_satoshis
        )));
    }
    if c.min_funding_satoshis > c.max_funding_satoshis {
        return Err(invalid_parameter(format!(
            "config.min_funding_satoshis {} above config.max_funding_satoshis {}",
            c.min_funding_satoshis, c.max_funding_satoshis
        )));
    }
    node.channel.negotiate_anchors = c.negotiate_anchors;
    node.payment_id_retention_blocks = c.payment_id_retention_blocks;
    node.channel.min_funding_satoshis = c.min_funding_satoshis;
    node.channel.max_funding_satoshis = c.max_funding_satoshis;
    node.forwarding.fee_base_msat = c.forwarding_fee_base_msat;
    node.forwarding.fee_proportional_millionths = c.forwarding_fee_proportional_millionths;
    node.forwarding.cltv_expiry_delta = in_range(
        "forwarding_cltv_expiry_delta",
        c.forwarding_cltv_expiry_delta,
        1,
        2016,
    )? as u16;
    // SAFETY: NULL or a live struct (documented contract); it is copied here.
    let fee_estimator = match unsafe { c.fee_estimator.as_ref() } {
        Some(estimator) => Some(Arc::new(CallbackFeeEstimator::new(
            estimator,
            "config.fee_estimator",
        )?) as Arc<dyn shard_engine::FeeEstimator>),
        None => None,
    };
    Ok(EngineConfig {
        shards: in_range("shards", c.shards, 1, LNSHARD_MAX_SHARDS)? as usize,
        inbox_capacity: in_range("inbox_capacity", c.inbox_capacity, 1, 1 << 24)? as usize,
        peer_outbox_capacity: in_range("peer_outbox_capacity", c.peer_outbox_capacity, 1, 1 << 24)?
            as usize,
        event_capacity: in_range("event_capacity", c.event_capacity, 1, 1 << 24)? as usize,
        reply_timeout: Duration::from_millis(u64::from(in_range(
            "reply_timeout_ms",
            c.reply_timeout_ms,
            1,
            u32::MAX,
        )?)),
        node,
        store: None,
        fee_estimator,
        ..EngineConfig::default()
    })
}

fn open_store(c: &lnshard_engine_config) -> Result<Arc<dyn Store>, lnshard_result> {
    // SAFETY: NULL or a live vtable (documented contract); it is copied here.
    if let Some(callbacks) = unsafe { c.store.as_ref() } {
        return Ok(Arc::new(CallbackStore::new(*callbacks, "config.store")?));
    }
    if c.data_dir.is_null() {
        return Ok(Arc::new(MemoryStore::new()));
    }
    // SAFETY: a non-NULL `data_dir` is a NUL-terminated string (documented contract).
    let dir = unsafe { CStr::from_ptr(c.data_dir) };
    let dir = dir.to_str().map_err(|e| {
        fail(
            lnshard_result::InvalidUtf8,
            format!("config.data_dir is not valid UTF-8: {e}"),
        )
    })?;
    if dir.is_empty() {
        return Err(invalid_parameter(
            "config.data_dir is empty (use NULL for in-memory)",
        ));
    }
    let store =
        FsStore::open(dir).map_err(|e| store_error(&format!("config.data_dir {dir:?}"), &e))?;
    Ok(Arc::new(store))
}

/// Starts an engine for the node whose secret key is the 32 bytes at `node_secret`, deriving
/// all keys and randomness from the 32 bytes at `seed`, with the chain tip at `best_height`
/// and block hash `best_hash` (32 bytes, internal byte order: the reverse of how explorers
/// display it). On success `*out` holds the new engine; free it with `lnshard_engine_free`.
#[no_mangle]
pub extern "C" fn lnshard_engine_new(
    config: *const lnshard_engine_config,
    node_secret: *const lnshard_secret_key,
    seed: *const lnshard_seed,
    best_height: u32,
    best_hash: *const lnshard_block_hash,
    out: *mut *mut lnshard_engine,
) -> lnshard_result {
    ffi_panic_boundary! {
        let config = try_ref_from_ptr!(config, "config");
        let secret = try_array!(node_secret, 32, "node_secret");
        let seed = try_array!(seed, 32, "seed");
        let hash = try_array!(best_hash, 32, "best_hash");
        let out = try_mut_from_ptr!(out, "out");
        let secret = match SecretKey::from_slice(&secret) {
            Ok(s) => s,
            Err(e) => return invalid_parameter(format!("node_secret is not a valid secret key: {e}")),
        };
        let mut engine_config = try_result!(engine_config(config));
        engine_config.store = Some(try_result!(open_store(config)));
        let shards = engine_config.shards;
        let engine = match Engine::open(
            engine_config,
            secret,
            seed,
            best_height,
            BlockHash::from_byte_array(hash),
        ) {
            Ok(engine) => engine,
            Err(e) => return engine_error("restoring the engine from its store", &e),
        };
        tracing::info!(target: "lnshard_ffi", node_id = %engine.node_id(), shards, "engine started");
        *out = into_handle::<lnshard_engine>(EngineHandle { engine });
        lnshard_result::Ok
    }
}

/// Stops the engine (queued work finishes, up to one second), joins its threads and frees
/// it. NULL is a no-op, and so is a handle of another type (the last error names it).
/// Every later call given this engine returns `LNSHARD_RESULT_INVALID_HANDLE`; freeing it
/// twice is undefined behaviour, and no other thread may be using it during this call.
#[no_mangle]
pub extern "C" fn lnshard_engine_free(engine: *mut lnshard_engine) {
    ffi_panic_boundary! {
        let EngineHandle { engine } = *try_take_handle!(engine, "engine");
        let report = engine.shutdown(Duration::from_secs(1));
        tracing::info!(
            target: "lnshard_ffi",
            undrained_events = report.events.len(),
            parked = report.parked.len(),
            "engine stopped"
        );
    }
}

/// Writes the engine's node id (33-byte compressed public key) to `out`.
#[no_mangle]
pub extern "C" fn lnshard_engine_node_id(
    engine: *const lnshard_engine,
    out: *mut lnshard_node_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let out = try_out!(out, "out");
        write_array(out, &engine.node_id().serialize());
        lnshard_result::Ok
    }
}

/// Whether the engine is running: `LNSHARD_RESULT_OK` while it is, else
/// `LNSHARD_RESULT_ENGINE_STOPPED` with the last error saying why it stopped (a shard's
/// commit failed, with the store's error; a shard panicked). A stopped engine takes no more
/// work and every call returns that code: free it, fix the cause and start it again on its
/// store, which returns every acknowledged state.
#[no_mangle]
pub extern "C" fn lnshard_engine_health(engine: *const lnshard_engine) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        match engine.health() {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("engine health", &e),
        }
    }
}

/// The number of shards the engine runs: 0 for NULL, and for anything but a live engine
/// (the last error then says why).
#[no_mangle]
pub extern "C" fn lnshard_engine_shard_count(engine: *const lnshard_engine) -> usize {
    ffi_panic_boundary! {
        try_handle!(engine, "engine").engine.shard_count()
    }
}

/// Whether no message is queued to or being handled by any shard: false for NULL, and for
/// anything but a live engine (the last error then says why). With every output drained,
/// an idle engine has nothing more to say until new input arrives.
#[no_mangle]
pub extern "C" fn lnshard_engine_is_idle(engine: *const lnshard_engine) -> bool {
    ffi_panic_boundary! {
        try_handle!(engine, "engine").engine.is_idle()
    }
}

/// Opens a BOLT 8 connection (named `conn` by the application) to `their_node_id` (33
/// bytes): `*out_act_one` receives act one, to write to the socket; free it with
/// `lnshard_bytes_free`. Then feed every byte read to `lnshard_engine_handle_bytes`.
#[no_mangle]
pub extern "C" fn lnshard_engine_new_outbound_connection(
    engine: *const lnshard_engine,
    conn: u64,
    their_node_id: *const lnshard_node_id,
    out_act_one: *mut *mut lnshard_bytes,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let id = try_result!(pubkey(try_array!(their_node_id, 33, "their_node_id"), "their_node_id"));
        let out = try_out!(out_act_one, "out_act_one");
        match engine.new_outbound_connection(conn, id) {
            Ok(act) => {
                write_bytes(out, act);
                lnshard_result::Ok
            }
            Err(e) => engine_error("new_outbound_connection", &e),
        }
    }
}

/// Accepts a BOLT 8 connection named `conn`: feed every byte read to
/// `lnshard_engine_handle_bytes`.
#[no_mangle]
pub extern "C" fn lnshard_engine_new_inbound_connection(
    engine: *const lnshard_engine,
    conn: u64,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        match engine.new_inbound_connection(conn) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("new_inbound_connection", &e),
        }
    }
}

/// Bytes read from connection `conn`'s socket (`len` at most `LNSHARD_MAX_READ_LEN`): runs
/// the handshake and hands each decrypted message to the peer's shard. `*out_reply`
/// receives the handshake bytes to write (often empty); free it with `lnshard_bytes_free`.
///
/// On `LNSHARD_RESULT_FULL` every byte was taken: stop reading and call again with `len` 0
/// until it succeeds. On a handshake or transport failure the connection is forgotten.
#[no_mangle]
pub extern "C" fn lnshard_engine_handle_bytes(
    engine: *const lnshard_engine,
    conn: u64,
    bytes: *const u8,
    len: usize,
    out_reply: *mut *mut lnshard_bytes,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let bytes = try_slice!(bytes, len, LNSHARD_MAX_READ_LEN, "bytes");
        let out = try_out!(out_reply, "out_reply");
        match engine.handle_bytes(conn, bytes) {
            Ok(reply) => {
                write_bytes(out, reply);
                lnshard_result::Ok
            }
            Err(e) => engine_error("handle_bytes", &e),
        }
    }
}

/// The encrypted bytes to write to connection `conn`'s socket (`*out_bytes`, possibly empty;
/// free with `lnshard_bytes_free`), and whether to close it after writing them
/// (`*out_disconnect`).
#[no_mangle]
pub extern "C" fn lnshard_engine_connection_outputs(
    engine: *const lnshard_engine,
    conn: u64,
    out_bytes: *mut *mut lnshard_bytes,
    out_disconnect: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let out = try_out!(out_bytes, "out_bytes");
        let out_disconnect = try_mut_from_ptr!(out_disconnect, "out_disconnect");
        match engine.connection_outputs(conn) {
            Ok(o) => {
                *out_disconnect = o.disconnect;
                write_bytes(out, o.bytes);
                lnshard_result::Ok
            }
            Err(e) => engine_error("connection_outputs", &e),
        }
    }
}

/// Waits up to `timeout_ms` for a connection whose peer's shard wrote to it (or closed it)
/// since `lnshard_engine_connection_outputs` last drained it: `*out_found` says whether one
/// came, and then `*out_conn` names it. Drain it with `lnshard_engine_connection_outputs`.
/// Each connection is named at most once until drained; it may have been closed since (its
/// `connection_outputs` then fails with `LNSHARD_RESULT_UNKNOWN_CONNECTION`).
#[no_mangle]
pub extern "C" fn lnshard_engine_wait_ready_connection(
    engine: *const lnshard_engine,
    timeout_ms: u32,
    out_conn: *mut u64,
    out_found: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let out_conn = try_mut_from_ptr!(out_conn, "out_conn");
        let out_found = try_mut_from_ptr!(out_found, "out_found");
        match engine.wait_ready_connection(Duration::from_millis(u64::from(timeout_ms))) {
            Some(conn) => {
                *out_conn = conn;
                *out_found = true;
            }
            None => *out_found = false,
        }
        lnshard_result::Ok
    }
}

/// The node id behind connection `conn` once its handshake completed: `*out_found` says
/// whether it is known, and then `out_node_id` (33 bytes) holds it.
#[no_mangle]
pub extern "C" fn lnshard_engine_connection_node_id(
    engine: *const lnshard_engine,
    conn: u64,
    out_node_id: *mut lnshard_node_id,
    out_found: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let out_node_id = try_out!(out_node_id, "out_node_id");
        let out_found = try_mut_from_ptr!(out_found, "out_found");
        match engine.connection_node_id(conn) {
            Some(id) => {
                write_array(out_node_id, &id.serialize());
                *out_found = true;
            }
            None => *out_found = false,
        }
        lnshard_result::Ok
    }
}

/// Connection `conn`'s socket closed: the engine forgets it (and tells the peer's shard).
#[no_mangle]
pub extern "C" fn lnshard_engine_connection_closed(
    engine: *const lnshard_engine,
    conn: u64,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        match engine.connection_closed(conn) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("connection_closed", &e),
        }
    }
}

fn write_event(out: &mut *mut lnshard_event, event: Option<lightning_core::node::Event>) {
    *out = match event {
        Some(e) => into_handle::<lnshard_event>(Event(e)),
        None => std::ptr::null_mut(),
    };
}

/// The next event without blocking: `*out` is a new event (free it with
/// `lnshard_event_free`) or NULL when none is queued.
#[no_mangle]
pub extern "C" fn lnshard_engine_next_event(
    engine: *const lnshard_engine,
    out: *mut *mut lnshard_event,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let out = try_mut_from_ptr!(out, "out");
        write_event(out, engine.next_event());
        lnshard_result::Ok
    }
}

/// The next event, waiting up to `timeout_ms`: `*out` is a new event (free it with
/// `lnshard_event_free`) or NULL when none came in time.
#[no_mangle]
pub extern "C" fn lnshard_engine_wait_event(
    engine: *const lnshard_engine,
    timeout_ms: u32,
    out: *mut *mut lnshard_event,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let out = try_mut_from_ptr!(out, "out");
        write_event(out, engine.wait_event(Duration::from_millis(u64::from(timeout_ms))));
        lnshard_result::Ok
    }
}

/// Opens a channel of `funding_satoshis` to the connected peer `node_id` (33 bytes), giving
/// it `push_msat`, at `feerate_per_kw`; `user_channel_id` comes back in its events. On
/// success `out_temporary_channel_id` (32 bytes) holds the channel's temporary id; a
/// `LNSHARD_EVENT_KIND_FUNDING_GENERATION_READY` event follows once the peer accepts.
#[no_mangle]
pub extern "C" fn lnshard_engine_create_channel(
    engine: *const lnshard_engine,
    node_id: *const lnshard_node_id,
    funding_satoshis: u64,
    push_msat: u64,
    user_channel_id: u64,
    feerate_per_kw: u32,
    out_temporary_channel_id: *mut lnshard_channel_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let node_id = try_result!(pubkey(try_array!(node_id, 33, "node_id"), "node_id"));
        let out = try_out!(out_temporary_channel_id, "out_temporary_channel_id");
        match engine.create_channel(node_id, funding_satoshis, push_msat, u128::from(user_channel_id), feerate_per_kw) {
            Ok(id) => {
                write_array(out, &id.0);
                lnshard_result::Ok
            }
            Err(e) => engine_error("create_channel", &e),
        }
    }
}

/// The funding transaction (`tx_len` serialized bytes at `tx`) for the channel whose
/// temporary id is the 32 bytes at `temporary_channel_id`: it must pay the event's script
/// the event's amount. See `lnshard_event_build_funding_transaction`.
#[no_mangle]
pub extern "C" fn lnshard_engine_funding_transaction_generated(
    engine: *const lnshard_engine,
    temporary_channel_id: *const lnshard_channel_id,
    tx: *const u8,
    tx_len: usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let id = ChannelId(try_array!(temporary_channel_id, 32, "temporary_channel_id"));
        let tx = try_result!(transaction(try_slice!(tx, tx_len, LNSHARD_MAX_TRANSACTION_LEN, "tx"), "tx"));
        match engine.funding_transaction_generated(id, tx) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("funding_transaction_generated", &e),
        }
    }
}

/// Pays along a route of `hops_len` hops at `hops` (1 to `LNSHARD_MAX_ROUTE_HOPS`) the payment
/// with hash `payment_hash` and secret `payment_secret` (32 bytes each), naming it
/// `payment_id` (32 bytes, unique): a `PAYMENT_SENT` or `PAYMENT_FAILED` event follows.
#[no_mangle]
pub extern "C" fn lnshard_engine_send_payment(
    engine: *const lnshard_engine,
    hops: *const lnshard_route_hop,
    hops_len: usize,
    payment_hash: *const lnshard_payment_hash,
    payment_secret: *const lnshard_payment_secret,
    payment_id: *const lnshard_payment_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        if hops_len == 0 {
            return invalid_parameter("hops_len 0: a route needs at least one hop");
        }
        if hops_len > LNSHARD_MAX_ROUTE_HOPS {
            return invalid_parameter(format!(
                "hops_len {hops_len} above the limit {LNSHARD_MAX_ROUTE_HOPS}"
            ));
        }
        if hops.is_null() {
            return crate::error::null_parameter("hops");
        }
        // SAFETY: `hops` points to `hops_len` readable hops (documented contract).
        let c_hops = unsafe { std::slice::from_raw_parts(hops, hops_len) };
        let mut route = Route { hops: Vec::with_capacity(hops_len) };
        for (i, h) in c_hops.iter().enumerate() {
            route.hops.push(RouteHop {
                node_id: try_result!(pubkey(h.node_id, &format!("hops[{i}].node_id"))),
                short_channel_id: ShortChannelId(h.short_channel_id),
                fee_msat: h.fee_msat,
                cltv_expiry_delta: h.cltv_expiry_delta,
            });
        }
        let hash = PaymentHash(try_array!(payment_hash, 32, "payment_hash"));
        let secret = PaymentSecret(try_array!(payment_secret, 32, "payment_secret"));
        let id = PaymentId(try_array!(payment_id, 32, "payment_id"));
        match engine.send_payment(&route, hash, secret, id) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("send_payment", &e),
        }
    }
}

fn amount(amount_msat: u64, has_amount: bool) -> Option<u64> {
    has_amount.then_some(amount_msat)
}

/// Prepares to receive a payment whose preimage is the 32 bytes at `payment_preimage`, of
/// `amount_msat` if `has_amount` (any amount otherwise): writes its hash and secret (32
/// bytes each) to give the payer.
#[no_mangle]
pub extern "C" fn lnshard_engine_create_inbound_payment(
    engine: *const lnshard_engine,
    payment_preimage: *const lnshard_payment_preimage,
    amount_msat: u64,
    has_amount: bool,
    out_payment_hash: *mut lnshard_payment_hash,
    out_payment_secret: *mut lnshard_payment_secret,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let preimage = PaymentPreimage(try_array!(payment_preimage, 32, "payment_preimage"));
        let out_hash = try_out!(out_payment_hash, "out_payment_hash");
        let out_secret = try_out!(out_payment_secret, "out_payment_secret");
        match engine.create_inbound_payment(preimage, amount(amount_msat, has_amount)) {
            Ok((hash, secret)) => {
                write_array(out_hash, &hash.0);
                write_array(out_secret, &secret.0);
                lnshard_result::Ok
            }
            Err(e) => engine_error("create_inbound_payment", &e),
        }
    }
}

/// Registers a payment to receive whose hash and secret (32 bytes each) the application
/// made itself, of `amount_msat` if `has_amount`.
#[no_mangle]
pub extern "C" fn lnshard_engine_register_inbound_payment(
    engine: *const lnshard_engine,
    payment_hash: *const lnshard_payment_hash,
    payment_secret: *const lnshard_payment_secret,
    amount_msat: u64,
    has_amount: bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let hash = PaymentHash(try_array!(payment_hash, 32, "payment_hash"));
        let secret = PaymentSecret(try_array!(payment_secret, 32, "payment_secret"));
        match engine.register_inbound_payment(hash, secret, amount(amount_msat, has_amount)) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("register_inbound_payment", &e),
        }
    }
}

/// Claims the claimable payment whose preimage is the 32 bytes at `payment_preimage`.
#[no_mangle]
pub extern "C" fn lnshard_engine_claim_funds(
    engine: *const lnshard_engine,
    payment_preimage: *const lnshard_payment_preimage,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let preimage = PaymentPreimage(try_array!(payment_preimage, 32, "payment_preimage"));
        match engine.claim_funds(preimage) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("claim_funds", &e),
        }
    }
}

/// Fails back the claimable payment whose hash is the 32 bytes at `payment_hash`.
#[no_mangle]
pub extern "C" fn lnshard_engine_fail_htlc_backwards(
    engine: *const lnshard_engine,
    payment_hash: *const lnshard_payment_hash,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let hash = PaymentHash(try_array!(payment_hash, 32, "payment_hash"));
        match engine.fail_htlc_backwards(hash) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("fail_htlc_backwards", &e),
        }
    }
}

/// Starts a cooperative close of the channel whose id is the 32 bytes at `channel_id`.
#[no_mangle]
pub extern "C" fn lnshard_engine_close_channel(
    engine: *const lnshard_engine,
    channel_id: *const lnshard_channel_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let id = ChannelId(try_array!(channel_id, 32, "channel_id"));
        match engine.close_channel(id) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("close_channel", &e),
        }
    }
}

/// Force-closes the channel whose id is the 32 bytes at `channel_id`: its latest commitment
/// comes out in a `BROADCAST_TRANSACTION` event.
#[no_mangle]
pub extern "C" fn lnshard_engine_force_close_channel(
    engine: *const lnshard_engine,
    channel_id: *const lnshard_channel_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let id = ChannelId(try_array!(channel_id, 32, "channel_id"));
        match engine.force_close_channel(id) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("force_close_channel", &e),
        }
    }
}

/// A new best block at `height` whose hash is the 32 bytes at `hash` (internal byte order).
#[no_mangle]
pub extern "C" fn lnshard_engine_best_block_updated(
    engine: *const lnshard_engine,
    height: u32,
    hash: *const lnshard_block_hash,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let hash = BlockHash::from_byte_array(try_array!(hash, 32, "hash"));
        match engine.best_block_updated(height, hash) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("best_block_updated", &e),
        }
    }
}

/// Transactions confirmed in the block at `height`: `txs_len` entries at `txs` (at most
/// `LNSHARD_MAX_CONFIRMED_TRANSACTIONS`), each a serialized transaction and its index in
/// the block. Call `lnshard_engine_best_block_updated` for the block too.
#[no_mangle]
pub extern "C" fn lnshard_engine_transactions_confirmed(
    engine: *const lnshard_engine,
    height: u32,
    txs: *const lnshard_confirmed_tx,
    txs_len: usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let mut txdata = Vec::new();
        let decoded = confirmed_transactions(txs, txs_len, &mut txdata);
        if decoded != lnshard_result::Ok {
            return decoded;
        }
        match engine.transactions_confirmed(height, &txdata) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("transactions_confirmed", &e),
        }
    }
}

/// Decodes the `txs_len` confirmed transactions at `txs` (a block's, as
/// `lnshard_engine_transactions_confirmed` and `lnshard_bumper_block_connected` take them)
/// into `out`, each with its index in the block: `Ok`, or the result naming the bad parameter
/// (too many, NULL, a transaction too long or not one).
pub(crate) fn confirmed_transactions(
    txs: *const lnshard_confirmed_tx,
    txs_len: usize,
    out: &mut Vec<(u32, Transaction)>,
) -> lnshard_result {
    if txs_len > LNSHARD_MAX_CONFIRMED_TRANSACTIONS {
        return invalid_parameter(format!(
            "txs_len {txs_len} above the limit {LNSHARD_MAX_CONFIRMED_TRANSACTIONS}"
        ));
    }
    let entries: &[lnshard_confirmed_tx] = if txs_len == 0 {
        &[]
    } else if txs.is_null() {
        return crate::error::null_parameter("txs");
    } else {
        // SAFETY: `txs` points to `txs_len` readable entries (documented contract).
        unsafe { std::slice::from_raw_parts(txs, txs_len) }
    };
    out.reserve(entries.len());
    for (i, t) in entries.iter().enumerate() {
        let name = format!("txs[{i}].tx");
        let bytes = try_slice!(t.tx, t.tx_len, LNSHARD_MAX_TRANSACTION_LEN, &name);
        out.push((t.index, try_result!(transaction(bytes, &name))));
    }
    lnshard_result::Ok
}

/// Writes the engine's best block: its height to `height_out` and its hash (32 bytes,
/// internal byte order, as `lnshard_engine_best_block_updated` takes it) to `hash_out`.
/// After a start on a store this is where to resume the chain feed: the lowest block any
/// shard stored; give every block above it (re-fed blocks are harmless). If that block is
/// not on your chain (the all-zero hash is on none: shards that disagreed on the block at
/// that height report it), call `lnshard_engine_block_disconnected` from its height first.
#[no_mangle]
pub extern "C" fn lnshard_engine_best_block(
    engine: *const lnshard_engine,
    height_out: *mut u32,
    hash_out: *mut lnshard_block_hash,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let height_out = try_out!(height_out, "height_out");
        let hash_out = try_out!(hash_out, "hash_out");
        let (height, hash) = engine.coordinator().best_block();
        // SAFETY: `height_out` is not NULL (checked) and points to a writable u32.
        unsafe { height_out.write(height) };
        write_array(hash_out, &hash.to_byte_array());
        lnshard_result::Ok
    }
}

/// Blocks from `height` up were disconnected (a reorg): the best block is now the fork
/// point, `height - 1`, whose hash is the 32 bytes at `new_tip_hash` (internal byte order,
/// as `lnshard_engine_best_block_updated` takes it; stored, so a restart never reports a
/// block that left the chain). Every channel's on-chain monitor forgets what those blocks
/// confirmed and rebuilds its claims. Then give the new branch's blocks with
/// `lnshard_engine_transactions_confirmed` and `lnshard_engine_best_block_updated`.
/// `height` 0 is `LNSHARD_RESULT_INVALID_PARAMETER` (the genesis block is never
/// disconnected).
///
/// After a restart the engine resumes from the lowest best block its shards stored: if that
/// block is not on your chain (the all-zero hash is on none: shards that disagreed on the
/// block at that height report it), disconnect from its height and re-feed from there.
#[no_mangle]
pub extern "C" fn lnshard_engine_block_disconnected(
    engine: *const lnshard_engine,
    height: u32,
    new_tip_hash: *const lnshard_block_hash,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let new_tip_hash = BlockHash::from_byte_array(try_array!(new_tip_hash, 32, "new_tip_hash"));
        if height == 0 {
            return invalid_parameter("height 0: the genesis block is never disconnected");
        }
        match engine.block_disconnected(height, new_tip_hash) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("block_disconnected", &e),
        }
    }
}

/// The least feerate on-chain claims pay (sat per 1000 weight): the relay floor.
pub const LNSHARD_MIN_CLAIM_FEERATE_PER_KW: u32 = 253;
/// The most `lnshard_engine_set_claim_feerate` takes (sat per 1000 weight: 1,000 sat/vB).
pub const LNSHARD_MAX_CLAIM_FEERATE_PER_KW: u32 = 250_000;

/// The feerate (sat per 1000 weight, `LNSHARD_MIN_CLAIM_FEERATE_PER_KW` to
/// `LNSHARD_MAX_CLAIM_FEERATE_PER_KW`) on-chain claims start from, for every channel; the
/// monitors raise it as a claim's deadline nears. Call it as the fee estimate changes.
#[no_mangle]
pub extern "C" fn lnshard_engine_set_claim_feerate(
    engine: *const lnshard_engine,
    feerate_per_kw: u32,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        if !(LNSHARD_MIN_CLAIM_FEERATE_PER_KW..=LNSHARD_MAX_CLAIM_FEERATE_PER_KW)
            .contains(&feerate_per_kw)
        {
            return invalid_parameter(format!(
                "feerate_per_kw {feerate_per_kw} outside \
                 {LNSHARD_MIN_CLAIM_FEERATE_PER_KW}..={LNSHARD_MAX_CLAIM_FEERATE_PER_KW}"
            ));
        }
        match engine.set_claim_feerate(feerate_per_kw) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("set_claim_feerate", &e),
        }
    }
}

/// New fee estimates from the host, in sat per 1000 weight, each from
/// `LNSHARD_MIN_CLAIM_FEERATE_PER_KW` to `LNSHARD_MAX_CLAIM_FEERATE_PER_KW`: `urgent`
/// (confirmation within a few blocks), `normal` (within about a day) and `background`
/// (whenever the chain is quiet). Channels we funded follow them with `update_fee` (without
/// anchors: `normal`; with anchors: `background`, their commitments are bumped by CPFP) once
/// a target moves 20% up or 50% down from the channel's feerate, and a peer's `update_fee`
/// far outside them is refused with a warning and a disconnection (the channel stays open).
/// Kept in memory only: call it after every start, and whenever your estimator's answer
/// changes. Until the first call no `update_fee` is sent.
#[no_mangle]
pub extern "C" fn lnshard_engine_fee_estimates_updated(
    engine: *const lnshard_engine,
    urgent: u32,
    normal: u32,
    background: u32,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        for (name, value) in [("urgent", urgent), ("normal", normal), ("background", background)] {
            if !(LNSHARD_MIN_CLAIM_FEERATE_PER_KW..=LNSHARD_MAX_CLAIM_FEERATE_PER_KW)
                .contains(&value)
            {
                return invalid_parameter(format!(
                    "{name} {value} outside \
                     {LNSHARD_MIN_CLAIM_FEERATE_PER_KW}..={LNSHARD_MAX_CLAIM_FEERATE_PER_KW}"
                ));
            }
        }
        let estimates = lightning_core::node::FeeEstimates {
            urgent,
            normal,
            background,
        };
        match engine.fee_estimates_updated(estimates) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("fee_estimates_updated", &e),
        }
    }
}

/// The longest script `lnshard_engine_set_sweep_script` takes (a witness program of 40
/// bytes with its version and push).
pub const LNSHARD_MAX_SWEEP_SCRIPT_LEN: usize = 42;

/// Whether `script` is a standard destination a claim can pay and relay: P2PKH, P2SH,
/// P2WPKH, P2WSH, or a witness program of version 1 or above (P2TR).
pub(crate) fn is_standard_destination(script: &ScriptBuf) -> bool {
    script.is_p2pkh()
        || script.is_p2sh()
        || script.is_p2wpkh()
        || script.is_p2wsh()
        || (script.is_witness_program()
            && script
                .witness_version()
                .is_some_and(|v| v != WitnessVersion::V0))
}

/// Where on-chain claims (the `to_local` sweep, HTLC claims, justice transactions) of
/// channels funded from now on pay: the output script (`script_len` bytes at `script`, at
/// most `LNSHARD_MAX_SWEEP_SCRIPT_LEN`) of the application's wallet: P2PKH, P2SH, P2WPKH,
/// P2WSH or P2TR; anything else is `LNSHARD_RESULT_INVALID_PARAMETER` (a claim paying it
/// would not relay). Channels already funded keep the script they were given. Not stored:
/// call it after every `lnshard_engine_new`, before any channel is funded. Without it,
/// claims pay a P2WPKH key derived from the engine's seed.
#[no_mangle]
pub extern "C" fn lnshard_engine_set_sweep_script(
    engine: *const lnshard_engine,
    script: *const u8,
    script_len: usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let engine = &try_handle!(engine, "engine").engine;
        let bytes = try_slice!(script, script_len, LNSHARD_MAX_SWEEP_SCRIPT_LEN, "script");
        let script = ScriptBuf::from_bytes(bytes.to_vec());
        if !is_standard_destination(&script) {
            return invalid_parameter(format!(
                "script {} is not a P2PKH, P2SH, P2WPKH, P2WSH or P2TR output script",
                script.to_hex_string()
            ));
        }
        match engine.set_sweep_script(script) {
            Ok(()) => lnshard_result::Ok,
            Err(e) => engine_error("set_sweep_script", &e),
        }
    }
}
