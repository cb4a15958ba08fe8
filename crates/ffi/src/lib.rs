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
pub mod types;
pub mod wallet;

use std::ffi::c_char;

/// Returns the version of the library linked at run time as a static NUL-terminated string
/// ("MAJOR.MINOR.PATCH"); the header's `LNSHARD_VERSION` is the version compiled against.
///
/// The string is owned by the library and valid for the life of the process; do not free it.
/// Safe to call from any thread.
#[no_mangle]
pub extern "C" fn lnshard_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The version of the library linked at run time as `MAJOR * 1000000 + MINOR * 1000 +
/// PATCH`, the encoding of the header's `LNSHARD_VERSION_NUMBER`: a program can check that
/// the library it runs with is the one it was compiled against (while the major version is
/// 0, a different minor version has a different ABI; see `examples/c/README.md`). Safe to
/// call from any thread.
#[no_mangle]
pub extern "C" fn lnshard_version_number() -> u32 {
    VERSION_NUMBER
}

/// `lnshard_version_number()`, computed from the crate's version at compile time.
const VERSION_NUMBER: u32 = parse_version_part(env!("CARGO_PKG_VERSION_MAJOR")) * 1_000_000
    + parse_version_part(env!("CARGO_PKG_VERSION_MINOR")) * 1_000
    + parse_version_part(env!("CARGO_PKG_VERSION_PATCH"));

/// A decimal version part below 1000 (the encoding's limit), at compile time.
const fn parse_version_part(s: &str) -> u32 {
    let bytes = s.as_bytes();
    assert!(
        !bytes.is_empty() && bytes.len() <= 3,
        "a version part of 1 to 3 digits"
    );
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "a decimal version part");
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn the_runtime_version_is_the_crate_version_in_both_forms() {
        // SAFETY: lnshard_version returns a static NUL-terminated string.
        let text = unsafe { std::ffi::CStr::from_ptr(lnshard_version()) };
        assert_eq!(text.to_str(), Ok(env!("CARGO_PKG_VERSION")));
        let parts: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().expect("a numeric part"))
            .collect();
        assert_eq!(
            lnshard_version_number(),
            parts[0] * 1_000_000 + parts[1] * 1_000 + parts[2]
        );
    }
}
