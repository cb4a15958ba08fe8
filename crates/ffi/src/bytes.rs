//! Byte buffers handed to C, and the list of one peer's outputs.

use shard_engine::PeerOutput;

use crate::error::{invalid_parameter, lnshard_result};
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

/// What one peer's connection should do next, in order: messages to send (2-byte type then
/// payload, before BOLT 8 encryption) and possibly a disconnect.
///
/// Owner: the caller of `lnshard_engine_peer_outputs`; free with `lnshard_peer_outputs_free`.
/// Thread-safety: immutable; may be read from any thread, freed from one.
pub struct lnshard_peer_outputs {
    _private: [u8; 0],
}

pub(crate) struct PeerOutputs(pub(crate) Vec<PeerOutput>);

impl Castable for lnshard_peer_outputs {
    const KIND: HandleKind = HandleKind::PeerOutputs;
    type Rust = PeerOutputs;
}

/// The number of outputs in the list: 0 for NULL, and for anything but a live
/// `lnshard_peer_outputs` (the last error then says why).
#[no_mangle]
pub extern "C" fn lnshard_peer_outputs_len(outputs: *const lnshard_peer_outputs) -> usize {
    ffi_panic_boundary! {
        try_handle!(outputs, "outputs").0.len()
    }
}

/// Output `index` of the list: either a message (`*out_disconnect` false, `*out_data` /
/// `*out_len` the bytes, valid until the list is freed) or a disconnect request
/// (`*out_disconnect` true, `*out_data` NULL, `*out_len` 0).
///
/// `index` at or past the length is `LNSHARD_RESULT_INVALID_PARAMETER`.
#[no_mangle]
pub extern "C" fn lnshard_peer_outputs_get(
    outputs: *const lnshard_peer_outputs,
    index: usize,
    out_data: *mut *const u8,
    out_len: *mut usize,
    out_disconnect: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let list = try_handle!(outputs, "outputs");
        let out_data = try_mut_from_ptr!(out_data, "out_data");
        let out_len = try_mut_from_ptr!(out_len, "out_len");
        let out_disconnect = try_mut_from_ptr!(out_disconnect, "out_disconnect");
        let Some(output) = list.0.get(index) else {
            return invalid_parameter(format!(
                "index {index} not below the list length {}",
                list.0.len()
            ));
        };
        match output {
            PeerOutput::Message(m) => {
                *out_data = m.as_ptr();
                *out_len = m.len();
                *out_disconnect = false;
            }
            PeerOutput::Disconnect => {
                *out_data = std::ptr::null();
                *out_len = 0;
                *out_disconnect = true;
            }
        }
        lnshard_result::Ok
    }
}

/// Frees a list of peer outputs. NULL is a no-op, and so is a handle of another type (the
/// last error names it); freeing twice is undefined behaviour.
#[no_mangle]
pub extern "C" fn lnshard_peer_outputs_free(outputs: *mut lnshard_peer_outputs) {
    ffi_panic_boundary! {
        drop(try_take_handle!(outputs, "outputs"));
    }
}
