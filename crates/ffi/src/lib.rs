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
//! * using a handle after its `_free` is undefined behaviour, as in any C library.
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

pub mod bytes;
pub mod channels;
pub mod engine;
pub mod error;
pub mod event;
pub mod log;
pub mod store;

use std::ffi::c_char;

/// Returns the library version as a static NUL-terminated string.
///
/// The string is owned by the library and valid for the life of the process; do not free it.
/// Safe to call from any thread.
#[no_mangle]
pub extern "C" fn lnshard_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
