//! The guards every entry point uses: the panic boundary and the pointer checks.

/// Runs the body, catching any panic: a function returning `lnshard_result` then returns
/// `LNSHARD_RESULT_PANIC` (the last error names the panic), one returning a pointer, a size
/// or a flag returns NULL, 0 or false (see [`crate::error::PanicValue`]).
macro_rules! ffi_panic_boundary {
    ($($body:tt)*) => {{
        let result = ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || { $($body)* },
        ));
        match result {
            Ok(value) => value,
            Err(payload) => {
                $crate::error::record_panic(payload);
                $crate::error::PanicValue::panic_value()
            }
        }
    }};
}

/// The Rust value behind a handle parameter (`&C::Rust` for a `*const C`, see
/// [`crate::handle`]), or return: NULL is `LNSHARD_RESULT_NULL_PARAMETER`, anything but a live
/// handle of the parameter's type is `LNSHARD_RESULT_INVALID_HANDLE`, the last error naming
/// the parameter and the type wanted. A function returning a pointer, a size, a flag or a
/// kind returns NULL/0/false/unknown instead (`PanicValue::{null_handle, invalid_handle}`).
/// Every entry point taking a handle goes through this macro (or its `_mut`/`take` forms).
macro_rules! try_handle {
    ($ptr:expr, $name:expr) => {{
        match $crate::handle::get($ptr, $name) {
            Ok(Some(r)) => r,
            Ok(None) => return $crate::error::PanicValue::null_handle($name),
            Err(error) => return $crate::error::PanicValue::invalid_handle(error),
        }
    }};
}

/// `&mut C::Rust` behind a `*mut C` handle parameter, checked as [`try_handle!`] checks.
macro_rules! try_handle_mut {
    ($ptr:expr, $name:expr) => {{
        match $crate::handle::get_mut($ptr, $name) {
            Ok(Some(r)) => r,
            Ok(None) => return $crate::error::PanicValue::null_handle($name),
            Err(error) => return $crate::error::PanicValue::invalid_handle(error),
        }
    }};
}

/// For a `_free(ptr)`: the boxed value behind the handle, unregistered so that no later call
/// resolves it. NULL returns (a no-op); anything but a live handle of the parameter's type
/// returns too, freeing nothing, with the last error naming it (freeing twice is still
/// undefined behaviour by contract: the check is a courtesy).
macro_rules! try_take_handle {
    ($ptr:expr, $name:expr) => {{
        match $crate::handle::take($ptr, $name) {
            Ok(Some(boxed)) => boxed,
            Ok(None) => return $crate::error::PanicValue::null_handle($name),
            Err(error) => return $crate::error::PanicValue::invalid_handle(error),
        }
    }};
}

/// `&T` from a `*const T` to plain data C owns (a config struct, not a handle), or return
/// `LNSHARD_RESULT_NULL_PARAMETER` naming the parameter.
macro_rules! try_ref_from_ptr {
    ($ptr:expr, $name:expr) => {{
        // SAFETY: the caller passes NULL or a pointer to a live value (documented contract).
        match unsafe { ($ptr).as_ref() } {
            Some(r) => r,
            None => return $crate::error::null_parameter($name),
        }
    }};
}

/// `&mut T` from a `*mut T` to plain data C owns (an output), or return `LNSHARD_RESULT_NULL_PARAMETER` naming the parameter.
macro_rules! try_mut_from_ptr {
    ($ptr:expr, $name:expr) => {{
        // SAFETY: the caller passes NULL or a pointer to a live, writable value.
        match unsafe { ($ptr).as_mut() } {
            Some(r) => r,
            None => return $crate::error::null_parameter($name),
        }
    }};
}

/// `&[u8]` of `$len` bytes at `$ptr`: NULL (unless `$len` is 0) is a NULL parameter, a length
/// above `$max` is an invalid parameter naming the length and the limit.
macro_rules! try_slice {
    ($ptr:expr, $len:expr, $max:expr, $name:expr) => {{
        let (ptr, len, max): (*const u8, usize, usize) = ($ptr, $len, $max);
        if len > max {
            return $crate::error::invalid_parameter(format!(
                "{}_len {} above the limit {}",
                $name, len, max
            ));
        }
        if len == 0 {
            &[][..]
        } else if ptr.is_null() {
            return $crate::error::null_parameter($name);
        } else {
            // SAFETY: the caller passes `len` readable bytes at `ptr` (documented contract).
            unsafe { ::std::slice::from_raw_parts(ptr, len) }
        }
    }};
}

/// `[u8; N]` copied from a pointer to a fixed-size value of N bytes (`lnshard_node_id`,
/// `lnshard_payment_hash`, ... in [`crate::types`]), or return
/// `LNSHARD_RESULT_NULL_PARAMETER`.
macro_rules! try_array {
    ($ptr:expr, $n:literal, $name:expr) => {{
        let bytes: [u8; $n] = try_ref_from_ptr!($ptr, $name).bytes;
        bytes
    }};
}

/// Checks that an output pointer to N bytes is not NULL; gives the raw pointer back.
macro_rules! try_out {
    ($ptr:expr, $name:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::error::null_parameter($name);
        }
        ptr
    }};
}

/// Unwraps a `Result<T, lnshard_result>`-producing expression, returning the code on error
/// (the last error was set when the error was made).
macro_rules! try_result {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}
