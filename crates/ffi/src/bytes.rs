//! Byte buffers handed to C.

use crate::handle::{into_handle, Castable, HandleKind};

/// A byte buffer owned by the library (a serialized transaction, BOLT 8 bytes to write).
///
/// Owner: the caller that received it; free it exactly once with `lnshard_bytes_free`.
/// Thread-safety: immutable; may be read from any thread, freed from one.
pub struct lnshard_bytes {
    _private: [u8; 0],
}

/// The Rust side of `lnshard_bytes`.
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl Castable for lnshard_bytes {
    const KIND: HandleKind = HandleKind::Bytes;
    type Rust = Bytes;
}

/// Hands `v` to C as a new `lnshard_bytes`.
pub(crate) fn into_c(v: Vec<u8>) -> *mut lnshard_bytes {
    into_handle::<lnshard_bytes>(Bytes(v))
}

/// Writes `v` as a new `lnshard_bytes` through `out`.
pub(crate) fn write_bytes(out: *mut *mut lnshard_bytes, v: Vec<u8>) {
    // SAFETY: the caller checked `out` is not NULL; it points to a writable pointer.
    unsafe { *out = into_c(v) };
}

/// The address of the buffer's first byte (valid until `lnshard_bytes_free`). Not
/// NUL-terminated: use `lnshard_bytes_len`. NULL for a NULL buffer, and for anything but a
/// live `lnshard_bytes` (the last error then says why).
#[no_mangle]
pub extern "C" fn lnshard_bytes_data(bytes: *const lnshard_bytes) -> *const u8 {
    ffi_panic_boundary! {
        try_handle!(bytes, "bytes").0.as_ptr()
    }
}

/// The buffer's length in bytes: 0 for NULL, and for anything but a live `lnshard_bytes`
/// (the last error then says why).
#[no_mangle]
pub extern "C" fn lnshard_bytes_len(bytes: *const lnshard_bytes) -> usize {
    ffi_panic_boundary! {
        try_handle!(bytes, "bytes").0.len()
    }
}

/// Frees a buffer. NULL is a no-op, and so is a handle of another type (the last error
/// names it); freeing twice is undefined behaviour.
#[no_mangle]
pub extern "C" fn lnshard_bytes_free(bytes: *mut lnshard_bytes) {
    ffi_panic_boundary! {
        drop(try_take_handle!(bytes, "bytes"));
    }
}
