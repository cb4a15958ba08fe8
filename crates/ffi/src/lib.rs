//! The C ABI of lnshard (`liblnshard`).
//!
//! Every exported symbol is prefixed `lnshard_`. The full engine API arrives with the C ABI
//! issue; today the library exports only its version so C programs can link against it.
#![deny(missing_docs)]

use std::ffi::c_char;

/// Returns the library version as a static NUL-terminated string.
///
/// The string is owned by the library and valid for the life of the process; do not free it.
/// Safe to call from any thread.
#[no_mangle]
pub extern "C" fn lnshard_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
