//! A store implemented by the application: a C vtable behind the engine's `Store` trait.

use std::ffi::{c_char, c_void, CString};

use shard_engine::store::{check_name, Corruption, Store, StoreError, WriteOp};

use crate::error::{fail, lnshard_result};
use crate::handle::{lend, Castable, HandleKind};

/// What a `lnshard_store_op` does. The numbers are part of the ABI and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_store_op_kind {
    /// Set `namespace/key` to the value.
    Put = 1,
    /// Remove `namespace/key` (no error if absent).
    Remove = 2,
}

/// One change of a batch handed to `lnshard_store_callbacks.write_batch`. Every pointer is
/// valid only during the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_store_op {
    /// Put or remove.
    pub kind: lnshard_store_op_kind,
    /// The namespace (NUL-terminated; 1 to 120 ASCII letters, digits, `-`, `_`).
    pub ns: *const c_char,
    /// The key (same alphabet).
    pub key: *const c_char,
    /// The value (NULL for a remove or an empty value).
    pub value: *const u8,
    /// Its length.
    pub value_len: usize,
}

/// Where a store callback hands bytes back to lnshard: see `lnshard_store_sink_push`.
///
/// Owner: lnshard; valid only during the callback that received it (afterwards
/// `lnshard_store_sink_push` refuses it with `LNSHARD_RESULT_INVALID_HANDLE`).
/// Thread-safety: use it only on the callback's thread.
pub struct lnshard_store_sink {
    _private: [u8; 0],
}

pub(crate) enum Sink {
    /// `read`: the value (a later push replaces an earlier one).
    Value(Option<Vec<u8>>),
    /// `list`: the keys, or the first pushed key that was not UTF-8.
    Keys(Result<Vec<String>, std::str::Utf8Error>),
}

/// Reads `ns/key` (namespace and key, NUL-terminated): push the value with `lnshard_store_sink_push(sink, ...)` if it
/// exists (push nothing if absent); return 0 on success, any other number on failure.
pub type lnshard_store_read_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        ns: *const c_char,
        key: *const c_char,
        sink: *mut lnshard_store_sink,
    ) -> i32,
>;

/// Makes every op of the batch durable, in order, before returning 0 (any other number is a
/// failure).
pub type lnshard_store_write_batch_callback = Option<
    extern "C" fn(userdata: *mut c_void, ops: *const lnshard_store_op, ops_len: usize) -> i32,
>;

/// Lists the keys of the namespace `ns`: push each key (UTF-8 bytes, no NUL) with
/// `lnshard_store_sink_push`, in any order; return 0 on success.
pub type lnshard_store_list_callback = Option<
    extern "C" fn(userdata: *mut c_void, ns: *const c_char, sink: *mut lnshard_store_sink) -> i32,
>;

/// A key/value store implemented by the application (LDK's `KVStore` shape), passed in
/// `lnshard_engine_config.store`. The struct is copied; `userdata` is passed back to every
/// callback.
///
/// Thread-safety: the callbacks are called from every shard thread, possibly at once; they
/// must be thread-safe and must not call back into the engine. They must stay callable
/// until `lnshard_engine_free` returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_store_callbacks {
    /// Passed back to every callback.
    pub userdata: *mut c_void,
    /// Reads one value (required).
    pub read: lnshard_store_read_callback,
    /// Writes one batch durably (required).
    pub write_batch: lnshard_store_write_batch_callback,
    /// Lists one namespace's keys (required).
    pub list: lnshard_store_list_callback,
}

impl Castable for lnshard_store_sink {
    const KIND: HandleKind = HandleKind::StoreSink;
    type Rust = Sink;
}

/// Hands bytes back from a store callback: for `read`, the value; for `list`, one key
/// (which must be UTF-8). `len` bytes at `data` are copied (NULL allowed when `len` is 0).
#[no_mangle]
pub extern "C" fn lnshard_store_sink_push(
    sink: *mut lnshard_store_sink,
    data: *const u8,
    len: usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let sink = try_handle_mut!(sink, "sink");
        let data = try_slice!(data, len, usize::MAX, "data");
        match sink {
            Sink::Value(v) => *v = Some(data.to_vec()),
            Sink::Keys(keys) => match std::str::from_utf8(data) {
                Ok(k) => {
                    if let Ok(keys) = keys {
                        keys.push(k.to_owned());
                    }
                }
                Err(e) => {
                    *keys = Err(e);
                    return fail(lnshard_result::InvalidUtf8, format!("data is not valid UTF-8: {e}"));
                }
            },
        }
        lnshard_result::Ok
    }
}

type ReadFn =
    extern "C" fn(*mut c_void, *const c_char, *const c_char, *mut lnshard_store_sink) -> i32;
type WriteFn = extern "C" fn(*mut c_void, *const lnshard_store_op, usize) -> i32;
type ListFn = extern "C" fn(*mut c_void, *const c_char, *mut lnshard_store_sink) -> i32;

/// The `Store` over a C vtable.
pub(crate) struct CallbackStore {
    userdata: *mut c_void,
    read: ReadFn,
    write_batch: WriteFn,
    list: ListFn,
}

// SAFETY: the vtable's documented contract: callbacks and userdata are usable from any
// thread at once.
unsafe impl Send for CallbackStore {}
// SAFETY: as above.
unsafe impl Sync for CallbackStore {}

impl CallbackStore {
    pub(crate) fn new(c: lnshard_store_callbacks, name: &str) -> Result<Self, lnshard_result> {
        let missing = |field: &str| crate::error::null_parameter(&format!("{name}.{field}"));
        Ok(CallbackStore {
            userdata: c.userdata,
            read: c.read.ok_or_else(|| missing("read"))?,
            write_batch: c.write_batch.ok_or_else(|| missing("write_batch"))?,
            list: c.list.ok_or_else(|| missing("list"))?,
        })
    }
}

fn c_name(name: &str) -> Result<CString, StoreError> {
    check_name(name)?;
    CString::new(name).map_err(|_| StoreError::InvalidName {
        name: name.to_owned(),
    })
}

fn failed(what: &str, code: i32) -> StoreError {
    StoreError::Io {
        context: format!("store callback {what}"),
        source: std::io::Error::other(format!("returned {code}")),
    }
}

impl Store for CallbackStore {
    fn read(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (ns, k) = (c_name(namespace)?, c_name(key)?);
        let mut sink = Sink::Value(None);
        let lent = lend::<lnshard_store_sink>(&mut sink);
        let code = (self.read)(self.userdata, ns.as_ptr(), k.as_ptr(), lent.as_ptr());
        drop(lent);
        if code != 0 {
            return Err(failed("read", code));
        }
        match sink {
            Sink::Value(v) => Ok(v),
            Sink::Keys(_) => unreachable!("the read sink stays a value sink"),
        }
    }

    fn write_batch(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let mut names = Vec::with_capacity(batch.len());
        for op in batch {
            let (ns, k) = match op {
                WriteOp::Put { namespace, key, .. } | WriteOp::Remove { namespace, key } => {
                    (c_name(namespace)?, c_name(key)?)
                }
            };
            names.push((ns, k));
        }
        let ops: Vec<lnshard_store_op> = batch
            .iter()
            .zip(&names)
            .map(|(op, (ns, k))| {
                let (kind, value): (_, &[u8]) = match op {
                    WriteOp::Put { value, .. } => (lnshard_store_op_kind::Put, value),
                    WriteOp::Remove { .. } => (lnshard_store_op_kind::Remove, &[]),
                };
                lnshard_store_op {
                    kind,
                    ns: ns.as_ptr(),
                    key: k.as_ptr(),
                    value: if value.is_empty() {
                        std::ptr::null()
                    } else {
                        value.as_ptr()
                    },
                    value_len: value.len(),
                }
            })
            .collect();
        match (self.write_batch)(self.userdata, ops.as_ptr(), ops.len()) {
            0 => Ok(()),
            code => Err(failed("write_batch", code)),
        }
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        let ns = c_name(namespace)?;
        let mut sink = Sink::Keys(Ok(Vec::new()));
        let lent = lend::<lnshard_store_sink>(&mut sink);
        let code = (self.list)(self.userdata, ns.as_ptr(), lent.as_ptr());
        drop(lent);
        if code != 0 {
            return Err(failed("list", code));
        }
        match sink {
            Sink::Keys(Ok(mut keys)) => {
                keys.sort();
                Ok(keys)
            }
            Sink::Keys(Err(error)) => Err(StoreError::Corrupt {
                corruption: Corruption::KeyNotUtf8 { error },
            }),
            Sink::Value(_) => unreachable!("the list sink stays a key sink"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::CStr;
    use std::sync::Mutex;

    use super::*;

    type Map = Mutex<BTreeMap<(String, String), Vec<u8>>>;

    fn s(p: *const c_char) -> String {
        // SAFETY: lnshard passes NUL-terminated names.
        unsafe { CStr::from_ptr(p) }
            .to_str()
            .expect("utf-8")
            .to_owned()
    }

    extern "C" fn read(
        u: *mut c_void,
        ns: *const c_char,
        k: *const c_char,
        sink: *mut lnshard_store_sink,
    ) -> i32 {
        // SAFETY: `u` is the test's map.
        let map = unsafe { &*(u as *const Map) };
        if let Some(v) = map.lock().expect("lock").get(&(s(ns), s(k))) {
            assert_eq!(
                lnshard_store_sink_push(sink, v.as_ptr(), v.len()),
                lnshard_result::Ok
            );
        }
        0
    }

    extern "C" fn write(u: *mut c_void, ops: *const lnshard_store_op, n: usize) -> i32 {
        // SAFETY: `u` is the test's map; `ops` holds `n` ops.
        let map = unsafe { &*(u as *const Map) };
        let ops = unsafe { std::slice::from_raw_parts(ops, n) };
        let mut m = map.lock().expect("lock");
        for op in ops {
            let key = (s(op.ns), s(op.key));
            match op.kind {
                lnshard_store_op_kind::Put => {
                    let v = if op.value_len == 0 {
                        Vec::new()
                    } else {
                        // SAFETY: `value_len` bytes at `value`.
                        unsafe { std::slice::from_raw_parts(op.value, op.value_len) }.to_vec()
                    };
                    m.insert(key, v);
                }
                lnshard_store_op_kind::Remove => {
                    m.remove(&key);
                }
            }
        }
        0
    }

    extern "C" fn list(u: *mut c_void, ns: *const c_char, sink: *mut lnshard_store_sink) -> i32 {
        // SAFETY: `u` is the test's map.
        let map = unsafe { &*(u as *const Map) };
        let ns = s(ns);
        for (n, k) in map.lock().expect("lock").keys() {
            if *n == ns {
                lnshard_store_sink_push(sink, k.as_ptr(), k.len());
            }
        }
        0
    }

    extern "C" fn failing_read(
        _: *mut c_void,
        _: *const c_char,
        _: *const c_char,
        _: *mut lnshard_store_sink,
    ) -> i32 {
        5
    }

    #[test]
    fn a_c_vtable_is_a_store() {
        let map: Map = Mutex::new(BTreeMap::new());
        let callbacks = lnshard_store_callbacks {
            userdata: (&map as *const Map).cast_mut().cast(),
            read: Some(read),
            write_batch: Some(write),
            list: Some(list),
        };
        let store = CallbackStore::new(callbacks, "store").expect("complete vtable");
        assert_eq!(store.read("chan", "a").expect("read"), None);
        store.write("chan", "b", b"two").expect("write");
        store.write("chan", "a", b"one").expect("write");
        store.write("node", "a", b"").expect("write");
        assert_eq!(
            store.read("chan", "a").expect("read"),
            Some(b"one".to_vec())
        );
        assert_eq!(store.read("node", "a").expect("read"), Some(vec![]));
        assert_eq!(store.list("chan").expect("list"), ["a", "b"]);
        store.remove("chan", "a").expect("remove");
        assert_eq!(store.list("chan").expect("list"), ["b"]);
        assert!(matches!(
            store.write("../x", "k", b""),
            Err(StoreError::InvalidName { .. })
        ));
        let broken = CallbackStore::new(
            lnshard_store_callbacks {
                read: Some(failing_read),
                ..callbacks
            },
            "store",
        )
        .expect("complete vtable");
        let err = broken.read("chan", "b").unwrap_err();
        assert_eq!(err.to_string(), "store callback read: returned 5");
    }

    #[test]
    fn a_vtable_missing_a_callback_is_refused_naming_it() {
        let callbacks = lnshard_store_callbacks {
            userdata: std::ptr::null_mut(),
            read: Some(read),
            write_batch: None,
            list: Some(list),
        };
        let err = CallbackStore::new(callbacks, "config.store").err();
        assert_eq!(err, Some(lnshard_result::NullParameter));
        let mut buf = [0 as c_char; 128];
        let mut n = 0;
        crate::error::lnshard_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n);
        // SAFETY: NUL-terminated by the call.
        let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .expect("utf-8");
        assert_eq!(msg, "parameter config.store.write_batch is NULL");
    }
}
