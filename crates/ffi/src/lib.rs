//! The C ABI of lnshard (`liblnshard`), generated into `include/lnshard.h` by cbindgen.
//!
//! Conventions (modelled on rustls-ffi, see `STYLE.md` §4):
//! * every symbol is prefixed `lnshard_`; functions are `lnshard_<type>_<verb>`;
//! * handles are opaque: C only ever holds a pointer;
//! * every fallible function returns an [`lnshard_result`](error::lnshard_result) and writes
//!   its outputs through pointers, only on `LNSHARD_RESULT_OK`; a thread-local message says
//!   what went wrong (`lnshard_last_error_message`), naming the parameter;
//! * no panic crosses the boundary: every entry point catches it (`LNSHARD_RESULT_PANIC`);
//! * every pointer and length is checked; every buffer handed to C has a documented owner
//!   and a `_free` function that accepts NULL;
//! * every handle (`lnshard_engine`, `lnshard_bytes`, `lnshard_event`,
//!   `lnshard_channel_list`, `lnshard_balance_list`, `lnshard_store_sink`,
//!   `lnshard_wallet_sink`, `lnshard_bumper`) is checked by
//!   every call against a registry of live handles, by type and generation, before anything
//!   behind it is touched (see [`handle`]): a handle used after its `_free`, a handle of
//!   another type, or a pointer lnshard never handed out gives
//!   `LNSHARD_RESULT_INVALID_HANDLE` (NULL, 0 or false from the calls that return those),
//!   the last error naming the type wanted;
//! * freeing a handle twice, or while another thread is inside a call on it, stays undefined
//!   behaviour, as in rustls-ffi.
//!
//! This crate is the only place in lnshard with `unsafe` code.
#![deny(missing_docs)]
// Every `extern "C"` function takes raw pointers from C and dereferences them after a NULL
// check; the contract (valid for the documented length, or NULL) is stated in each function's
// documentation, which is what C callers read. Marking them `unsafe fn` changes nothing for C.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
#![allow(non_camel_case_types)]

#[macro_use]
mod macros;

pub mod balances;
pub mod bumper;
pub mod bytes;
pub mod channels;
pub mod engine;
pub mod error;
pub mod event;
pub mod fees;
pub mod handle;
pub mod log;
pub mod store;
pub mod wallet;

use std::ffi::c_char;

/// Returns the library version as a static NUL-terminated string.
///
/// The string is owned by the library and valid for the life of the process; do not free it.
/// Safe to call from any thread.
#[no_mangle]
pub extern "C" fn lnshard_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests;
