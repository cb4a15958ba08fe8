//! Result codes, the thread-local last error and the panic boundary's bookkeeping.

use std::cell::RefCell;
use std::ffi::{c_char, c_uint};

use lightning_core::node::{ApiError, FirstHopError};
use shard_engine::store::StoreError;
use shard_engine::EngineError;

use crate::handle::HandleError;

/// What a call did: `LNSHARD_RESULT_OK`, or why it failed.
///
/// The numbers are part of the ABI: they are never reused or renumbered; new codes take new
/// numbers. On any code other than `LNSHARD_RESULT_OK`, `lnshard_last_error_message` on the
/// same thread describes the failure (naming the parameter, the value and the limit).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_result {
    /// Success: the outputs were written.
    Ok = 7100,
    /// A pointer parameter was NULL: the last error names it.
    NullParameter = 7101,
    /// A parameter is out of range (a length above its limit, an unknown enum value, an
    /// index past the end, a malformed key or transaction): the last error names it.
    InvalidParameter = 7102,
    /// A string parameter is not valid UTF-8: the last error names it.
    InvalidUtf8 = 7103,
    /// The output buffer is too small: the last error gives the size needed.
    BufferTooSmall = 7104,
    /// A Rust panic was caught at the boundary (a bug in lnshard: please report it).
    Panic = 7105,
    /// A handle parameter is not a live handle of the type the function takes: it was
    /// freed, it is a handle of another type, or lnshard never handed it out. The last error
    /// names the parameter and the type wanted (and the type given, when it is a live
    /// handle of another type). Freeing a handle twice stays undefined behaviour.
    InvalidHandle = 7106,
    /// The shard's inbox is full: drain peer outputs and events, then retry.
    Full = 7110,
    /// The engine is shutting down.
    ShuttingDown = 7111,
    /// A shard did not answer in time (drain events: the engine waits for room).
    Timeout = 7112,
    /// No channel with this id is known.
    UnknownChannel = 7113,
    /// The node refused the call (peer not connected, limit reached, channel refused, bad
    /// route, nothing claimable, bad funding transaction). The refusals below have codes of
    /// their own.
    ApiRefused = 7114,
    /// No open BOLT 8 connection with this id.
    UnknownConnection = 7115,
    /// A BOLT 8 connection with this id is open already.
    DuplicateConnection = 7116,
    /// The BOLT 8 handshake failed: close the socket without writing anything.
    HandshakeFailed = 7117,
    /// The BOLT 8 encrypted stream failed: close the socket.
    TransportFailed = 7118,
    /// The store refused an operation (IO, corruption, bad name), or refuses this engine: its
    /// files are readable by group or others, a record cannot be read, it belongs to another
    /// node, or it refuses writes after a failed one until reopened. The last error says
    /// which, naming the path, the mode or the node ids.
    StoreFailed = 7119,
    /// The log callback could not be installed (another tracing subscriber is global).
    LoggerUnavailable = 7120,
    /// An engine error this library version does not name more precisely.
    EngineFailed = 7121,
    /// The engine has stopped (a shard's commit failed, a shard panicked) and takes no more
    /// work: the last error names why. Free the engine, fix the cause and open it again on
    /// its data directory: every acknowledged state comes back.
    EngineStopped = 7122,
    /// The data directory is in use: another engine, in this process or another, holds its
    /// lock. The last error names the holder's pid. Stop that one first (or use another
    /// directory); two engines writing one store would destroy it.
    StoreLocked = 7123,
    /// The application's wallet (`lnshard_wallet`) failed: a callback returned an error,
    /// or handed back something malformed (a coin that does not parse, a signed
    /// transaction that changed more than its own inputs' witnesses). The last error names
    /// the callback. Coins it reserved for the call were released.
    WalletFailed = 7124,
    /// The wallet's spendable coins cannot pay what was asked (a channel and its fee, or a
    /// bump's fee with change above dust): the last error gives what was needed and what
    /// is available.
    InsufficientFunds = 7125,
    /// `lnshard_engine_send_payment`: the route's first hop is not one of our channels, or
    /// cannot carry a payment now (its peer is another than the route names, it is not
    /// ready or closing, its peer is disconnected). Nothing was sent; the last error names
    /// the short channel id and why.
    FirstHopUnusable = 7126,
    /// `lnshard_engine_send_payment`: the amount the first hop would carry is below its
    /// peer's `htlc_minimum_msat` or above what we can send on it now. Nothing was sent; the
    /// last error names the amount and the limit.
    AmountOutOfRange = 7127,
    /// `lnshard_engine_send_payment`: the payment id is in use by a payment in flight, or
    /// by one completed within the node's `payment_id_retention_blocks` (remembered across
    /// restarts). Nothing was sent; the last error names the id and until which height it is
    /// refused. Use a new id for a new payment.
    PaymentIdUsed = 7128,
    /// `lnshard_engine_create_channel`: the channel value, push amount or feerate is outside
    /// our limits or the peer's known limits, or the first commitment could not pay its fee
    /// or keep a side above its reserve. Nothing was created; the last error names the value
    /// and the limit.
    ChannelValueRefused = 7129,
}

impl lnshard_result {
    const ALL: [lnshard_result; 27] = [
        lnshard_result::Ok,
        lnshard_result::NullParameter,
        lnshard_result::InvalidParameter,
        lnshard_result::InvalidUtf8,
        lnshard_result::BufferTooSmall,
        lnshard_result::Panic,
        lnshard_result::InvalidHandle,
        lnshard_result::Full,
        lnshard_result::ShuttingDown,
        lnshard_result::Timeout,
        lnshard_result::UnknownChannel,
        lnshard_result::ApiRefused,
        lnshard_result::UnknownConnection,
        lnshard_result::DuplicateConnection,
        lnshard_result::HandshakeFailed,
        lnshard_result::TransportFailed,
        lnshard_result::StoreFailed,
        lnshard_result::LoggerUnavailable,
        lnshard_result::EngineFailed,
        lnshard_result::EngineStopped,
        lnshard_result::StoreLocked,
        lnshard_result::WalletFailed,
        lnshard_result::InsufficientFunds,
        lnshard_result::FirstHopUnusable,
        lnshard_result::AmountOutOfRange,
        lnshard_result::PaymentIdUsed,
        lnshard_result::ChannelValueRefused,
    ];

    /// The code for a number received from C, if it names one.
    pub fn from_code(code: c_uint) -> Option<lnshard_result> {
        Self::ALL.into_iter().find(|r| *r as c_uint == code)
    }

    /// A fixed description of the code.
    pub fn description(self) -> &'static str {
        match self {
            lnshard_result::Ok => "ok",
            lnshard_result::NullParameter => "a pointer parameter was NULL",
            lnshard_result::InvalidParameter => "a parameter is out of range",
            lnshard_result::InvalidUtf8 => "a string parameter is not valid UTF-8",
            lnshard_result::BufferTooSmall => "the output buffer is too small",
            lnshard_result::Panic => "a panic was caught at the C boundary",
            lnshard_result::InvalidHandle => {
                "a handle is not a live handle of the type the function takes"
            }
            lnshard_result::Full => "the shard's inbox is full: drain outputs and retry",
            lnshard_result::ShuttingDown => "the engine is shutting down",
            lnshard_result::Timeout => "a shard did not answer in time",
            lnshard_result::UnknownChannel => "no channel with this id is known",
            lnshard_result::ApiRefused => "the node refused the call",
            lnshard_result::UnknownConnection => "no open connection with this id",
            lnshard_result::DuplicateConnection => "a connection with this id is open already",
            lnshard_result::HandshakeFailed => "the BOLT 8 handshake failed",
            lnshard_result::TransportFailed => "the BOLT 8 transport failed",
            lnshard_result::StoreFailed => "the store refused an operation",
            lnshard_result::LoggerUnavailable => "another tracing subscriber is installed",
            lnshard_result::EngineFailed => "the engine failed",
            lnshard_result::EngineStopped => "the engine has stopped and takes no more work",
            lnshard_result::StoreLocked => "the data directory is locked by another engine",
            lnshard_result::WalletFailed => "the application's wallet failed",
            lnshard_result::InsufficientFunds => "the wallet's coins cannot pay it",
            lnshard_result::FirstHopUnusable => "the route's first hop cannot carry a payment",
            lnshard_result::AmountOutOfRange => {
                "the amount is outside what the first hop can carry"
            }
            lnshard_result::PaymentIdUsed => "the payment id was used already",
            lnshard_result::ChannelValueRefused => {
                "the channel value or push amount is outside the limits"
            }
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `message` as this thread's last error and returns `code`.
pub(crate) fn fail(code: lnshard_result, message: impl Into<String>) -> lnshard_result {
    let message = message.into();
    tracing::debug!(target: "lnshard_ffi", code = code as u32, "{message}");
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
    code
}

/// A NULL pointer parameter.
pub(crate) fn null_parameter(name: &str) -> lnshard_result {
    fail(
        lnshard_result::NullParameter,
        format!("parameter {name} is NULL"),
    )
}

/// An out-of-range parameter; the message names it.
pub(crate) fn invalid_parameter(message: impl Into<String>) -> lnshard_result {
    fail(lnshard_result::InvalidParameter, message)
}

/// The code and message for an engine error.
pub(crate) fn engine_error(context: &str, e: &EngineError) -> lnshard_result {
    let code = match e {
        EngineError::Full { .. } => lnshard_result::Full,
        EngineError::ShuttingDown => lnshard_result::ShuttingDown,
        EngineError::Timeout { .. } => lnshard_result::Timeout,
        EngineError::UnknownChannel(_) => lnshard_result::UnknownChannel,
        EngineError::Api(e) => api_error_code(e),
        EngineError::UnknownConnection(_) => lnshard_result::UnknownConnection,
        EngineError::DuplicateConnection(_) => lnshard_result::DuplicateConnection,
        EngineError::Handshake { .. } => lnshard_result::HandshakeFailed,
        EngineError::Transport { .. } => lnshard_result::TransportFailed,
        EngineError::Store(e) => store_error_code(e),
        EngineError::Record { .. } | EngineError::WrongNode { .. } | EngineError::NoStore => {
            lnshard_result::StoreFailed
        }
        EngineError::Stopped { .. } => lnshard_result::EngineStopped,
        _ => lnshard_result::EngineFailed,
    };
    fail(code, format!("{context}: {e}"))
}

/// The code for a refusal of the node: the call-time refusals of payments and channels
/// have codes of their own, anything else is `ApiRefused`.
fn api_error_code(e: &ApiError) -> lnshard_result {
    match e {
        ApiError::UnknownShortChannelId(_) => lnshard_result::FirstHopUnusable,
        ApiError::FirstHop(
            FirstHopError::BelowHtlcMinimum { .. } | FirstHopError::AboveOutboundCapacity { .. },
        ) => lnshard_result::AmountOutOfRange,
        ApiError::FirstHop(_) => lnshard_result::FirstHopUnusable,
        ApiError::DuplicatePayment(_) | ApiError::PaymentIdRecentlyUsed { .. } => {
            lnshard_result::PaymentIdUsed
        }
        ApiError::ChannelValue(_) => lnshard_result::ChannelValueRefused,
        _ => lnshard_result::ApiRefused,
    }
}

/// The code for a store error: its lock held elsewhere is `StoreLocked`, anything else
/// (input/output, damage, loose permissions, a bad name, a store refusing writes after a
/// failure) `StoreFailed`, the message saying which.
fn store_error_code(e: &StoreError) -> lnshard_result {
    match e {
        StoreError::Locked { .. } => lnshard_result::StoreLocked,
        _ => lnshard_result::StoreFailed,
    }
}

/// The code and message for a store error.
pub(crate) fn store_error(context: &str, e: &StoreError) -> lnshard_result {
    fail(store_error_code(e), format!("{context}: {e}"))
}

/// Records a caught panic as the last error.
pub(crate) fn record_panic(payload: Box<dyn std::any::Any + Send>) {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown payload".to_owned());
    LAST_ERROR.with(|e| *e.borrow_mut() = format!("panic caught at the C boundary: {what}"));
}

/// What an entry point returns when it caught a panic, or when a handle parameter is NULL
/// or invalid (`try_handle!`).
pub(crate) trait PanicValue: Sized {
    /// The value for a caught panic.
    fn panic_value() -> Self;

    /// The value for a NULL handle parameter `name`: functions returning a pointer, a size,
    /// a flag or a kind document NULL as giving NULL/0/false/unknown, so only
    /// `lnshard_result` records an error.
    fn null_handle(_name: &str) -> Self {
        Self::panic_value()
    }

    /// The value for a handle parameter that is not a live handle of the wanted type: the
    /// message is recorded as the last error either way.
    fn invalid_handle(error: HandleError) -> Self {
        fail(lnshard_result::InvalidHandle, error.to_string());
        Self::panic_value()
    }
}

impl PanicValue for lnshard_result {
    fn panic_value() -> Self {
        lnshard_result::Panic
    }

    fn null_handle(name: &str) -> Self {
        null_parameter(name)
    }

    fn invalid_handle(error: HandleError) -> Self {
        fail(lnshard_result::InvalidHandle, error.to_string())
    }
}

impl<T> PanicValue for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

impl PanicValue for usize {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for bool {
    fn panic_value() -> Self {
        false
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

impl PanicValue for u32 {
    fn panic_value() -> Self {
        0
    }
}

/// Copies `text` and a NUL into `buf` (`len` bytes), writing the text's length (without the
/// NUL) to `out_n`. Too small a buffer is `LNSHARD_RESULT_BUFFER_TOO_SMALL`, nothing written.
pub(crate) fn write_text(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
    preserve_last_error: bool,
) -> lnshard_result {
    if buf.is_null() {
        return if preserve_last_error {
            lnshard_result::NullParameter
        } else {
            null_parameter("buf")
        };
    }
    if out_n.is_null() {
        return if preserve_last_error {
            lnshard_result::NullParameter
        } else {
            null_parameter("out_n")
        };
    }
    let needed = text.len() + 1;
    if len < needed {
        return if preserve_last_error {
            lnshard_result::BufferTooSmall
        } else {
            fail(
                lnshard_result::BufferTooSmall,
                format!("len {len} below the {needed} bytes needed"),
            )
        };
    }
    // SAFETY: `buf` holds `len >= needed` writable bytes and `out_n` is writable (contract).
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
        *out_n = text.len();
    }
    lnshard_result::Ok
}

/// A `lnshard_result` as a number received from C: the header declares it `lnshard_result`
/// (cbindgen.toml renames it; the same 32 bits), while Rust reads a plain `u32`, so that a
/// number which names no code is refused, not undefined behaviour.
pub type lnshard_result_number = c_uint;

/// Writes a fixed description of `result` into `buf` (`len` bytes, NUL-terminated) and its
/// length without the NUL into `out_n`.
///
/// A number that is no `lnshard_result` is `LNSHARD_RESULT_INVALID_PARAMETER`. Safe from
/// any thread.
#[no_mangle]
pub extern "C" fn lnshard_result_message(
    result: lnshard_result_number,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let Some(code) = lnshard_result::from_code(result) else {
            return invalid_parameter(format!("result {result} is not a lnshard_result"));
        };
        write_text(code.description(), buf, len, out_n, false)
    }
}

/// Copies this thread's last error message into `buf` (`len` bytes, NUL-terminated) and its
/// length without the NUL into `out_n`: what the last failing call on this thread said.
///
/// The message stays until the next failure on this thread; this call does not change it,
/// even when it fails itself (`LNSHARD_RESULT_BUFFER_TOO_SMALL`: ask
/// `lnshard_last_error_length`). An empty message means no call failed yet.
#[no_mangle]
pub extern "C" fn lnshard_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        LAST_ERROR.with(|e| write_text(&e.borrow(), buf, len, out_n, true))
    }
}

/// The length in bytes of this thread's last error message, without its NUL.
#[no_mangle]
pub extern "C" fn lnshard_last_error_length() -> usize {
    ffi_panic_boundary! {
        LAST_ERROR.with(|e| e.borrow().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        LAST_ERROR.with(|e| e.borrow().clone())
    }

    #[test]
    fn a_panic_becomes_the_panic_code_with_its_message() {
        fn boom() -> lnshard_result {
            ffi_panic_boundary! {
                if lnshard_result::Ok as u32 == 7100 {
                    panic!("a bug");
                }
                lnshard_result::Ok
            }
        }
        fn boom_ptr() -> *const u8 {
            ffi_panic_boundary! {
                panic!("another bug")
            }
        }
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(boom(), lnshard_result::Panic);
        assert_eq!(last_error(), "panic caught at the C boundary: a bug");
        assert!(boom_ptr().is_null());
        std::panic::set_hook(hook);
    }

    #[test]
    fn every_code_round_trips_through_its_number_and_has_a_description() {
        for code in lnshard_result::ALL {
            assert_eq!(lnshard_result::from_code(code as c_uint), Some(code));
            assert!(!code.description().is_empty());
        }
        assert_eq!(lnshard_result::from_code(0), None);
        let mut buf = [0 as c_char; 64];
        let mut n = 0usize;
        assert_eq!(
            lnshard_result_message(7110, buf.as_mut_ptr(), buf.len(), &mut n),
            lnshard_result::Ok
        );
        assert_eq!(n, lnshard_result::Full.description().len());
    }
}
