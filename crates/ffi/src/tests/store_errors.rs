//! How the store's and the engine's failures reach C: an engine whose commit failed stops
//! (`LNSHARD_RESULT_ENGINE_STOPPED` from every call and from `lnshard_engine_health`, naming
//! the store's error), a data directory written by another node is refused naming both node
//! ids, and a data directory an open engine holds is refused naming the holder's pid.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::{
    lnshard_engine, lnshard_engine_best_block_updated, lnshard_engine_config,
    lnshard_engine_config_default, lnshard_engine_create_inbound_payment, lnshard_engine_free,
    lnshard_engine_health, lnshard_engine_new, lnshard_engine_node_id,
};
use crate::error::{lnshard_last_error_message, lnshard_result};
use crate::store::{
    lnshard_store_callbacks, lnshard_store_op, lnshard_store_op_kind, lnshard_store_sink,
    lnshard_store_sink_push,
};

fn last_error() -> String {
    let mut buf = vec![0 as c_char; 4096];
    let mut n = 0usize;
    assert_eq!(
        lnshard_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n),
        lnshard_result::Ok
    );
    buf[..n].iter().map(|&c| c as u8 as char).collect()
}

fn config() -> lnshard_engine_config {
    let mut c = std::mem::MaybeUninit::<lnshard_engine_config>::uninit();
    assert_eq!(
        lnshard_engine_config_default(c.as_mut_ptr()),
        lnshard_result::Ok
    );
    // SAFETY: written on Ok.
    let mut c = unsafe { c.assume_init() };
    c.shards = 2;
    c
}

fn new_engine(
    config: &lnshard_engine_config,
    key: u8,
) -> Result<*mut lnshard_engine, (lnshard_result, String)> {
    let mut engine = std::ptr::null_mut();
    match lnshard_engine_new(
        config,
        [key; 32].as_ptr().cast(),
        [0x22u8; 32].as_ptr().cast(),
        0,
        [0u8; 32].as_ptr().cast(),
        &mut engine,
    ) {
        lnshard_result::Ok => Ok(engine),
        code => Err((code, last_error())),
    }
}

fn node_id_hex(engine: *const lnshard_engine) -> String {
    let mut id = [0u8; 33];
    assert_eq!(
        lnshard_engine_node_id(engine, id.as_mut_ptr().cast()),
        lnshard_result::Ok
    );
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh path under the test's temporary directory (not created: the store creates it
/// with the modes it wants), removed when dropped.
struct FreshDir(PathBuf);

impl FreshDir {
    fn new(name: &str) -> FreshDir {
        // Unit tests get no CARGO_TARGET_TMPDIR: the system's temporary directory.
        let dir = std::env::temp_dir()
            .join("lnshard-ffi-store-errors")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.parent().expect("a parent")).expect("the parent directory");
        FreshDir(dir)
    }

    fn to_str(&self) -> Option<&str> {
        self.0.to_str()
    }
}

impl Drop for FreshDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store in memory behind the C vtable whose writes fail once `fail_writes` is set.
#[derive(Default)]
struct FlakyStore {
    map: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    fail_writes: AtomicBool,
}

fn text(p: *const c_char) -> String {
    // SAFETY: lnshard passes NUL-terminated names.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .expect("utf-8")
        .to_owned()
}

fn store_of<'a>(userdata: *mut c_void) -> &'a FlakyStore {
    // SAFETY: the tests pass a `FlakyStore` that outlives the engine.
    unsafe { &*userdata.cast::<FlakyStore>() }
}

extern "C" fn read(
    userdata: *mut c_void,
    ns: *const c_char,
    key: *const c_char,
    sink: *mut lnshard_store_sink,
) -> i32 {
    let map = store_of(userdata).map.lock().expect("lock");
    if let Some(v) = map.get(&(text(ns), text(key))) {
        assert_eq!(
            lnshard_store_sink_push(sink, v.as_ptr(), v.len()),
            lnshard_result::Ok
        );
    }
    0
}

extern "C" fn write_batch(userdata: *mut c_void, ops: *const lnshard_store_op, n: usize) -> i32 {
    let store = store_of(userdata);
    if store.fail_writes.load(Ordering::SeqCst) {
        return 28; // ENOSPC
    }
    // SAFETY: lnshard passes `n` ops, valid during the call.
    let ops = unsafe { std::slice::from_raw_parts(ops, n) };
    let mut map = store.map.lock().expect("lock");
    for op in ops {
        let k = (text(op.ns), text(op.key));
        match op.kind {
            lnshard_store_op_kind::Put => {
                let v = if op.value_len == 0 {
                    Vec::new()
                } else {
                    // SAFETY: `value_len` bytes at `value`, valid during the call.
                    unsafe { std::slice::from_raw_parts(op.value, op.value_len) }.to_vec()
                };
                map.insert(k, v);
            }
            lnshard_store_op_kind::Remove => {
                map.remove(&k);
            }
        }
    }
    0
}

extern "C" fn list(userdata: *mut c_void, ns: *const c_char, sink: *mut lnshard_store_sink) -> i32 {
    let ns = text(ns);
    let map = store_of(userdata).map.lock().expect("lock");
    for (n, k) in map.keys() {
        if *n == ns {
            lnshard_store_sink_push(sink, k.as_ptr(), k.len());
        }
    }
    0
}

#[test]
fn an_engine_whose_commit_failed_is_stopped_for_every_call_and_says_why() {
    let store = FlakyStore::default();
    let callbacks = lnshard_store_callbacks {
        userdata: (&store as *const FlakyStore).cast_mut().cast(),
        read: Some(read),
        write_batch: Some(write_batch),
        list: Some(list),
    };
    let mut config = config();
    config.store = &callbacks;
    let engine = new_engine(&config, 0x41).expect("the engine starts");
    assert_eq!(lnshard_engine_health(engine), lnshard_result::Ok);

    // The disk fills up; a new block changes the node's state, whose commit fails. (The
    // block goes to both shards: the first to fail may stop the engine before the block
    // reaches the second, which the call then reports.)
    store.fail_writes.store(true, Ordering::SeqCst);
    let code = lnshard_engine_best_block_updated(engine, 1, [7u8; 32].as_ptr().cast());
    assert!(
        matches!(code, lnshard_result::Ok | lnshard_result::EngineStopped),
        "{code:?}: {}",
        last_error()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while lnshard_engine_health(engine) == lnshard_result::Ok {
        assert!(Instant::now() < deadline, "the engine never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(lnshard_engine_health(engine), lnshard_result::EngineStopped);
    let why = last_error();
    assert!(
        why.contains("engine stopped") && why.contains("store callback write_batch"),
        "{why}"
    );

    // Every later call says so, with the same cause; nothing is written.
    let (mut hash, mut secret) = ([0u8; 32], [0u8; 32]);
    assert_eq!(
        lnshard_engine_create_inbound_payment(
            engine,
            [9u8; 32].as_ptr().cast(),
            1000,
            true,
            hash.as_mut_ptr().cast(),
            secret.as_mut_ptr().cast(),
        ),
        lnshard_result::EngineStopped
    );
    assert!(last_error().contains("write_batch"), "{}", last_error());
    assert_eq!(hash, [0; 32], "no output on an error");
    let other = lnshard_engine_node_id(engine, [0u8; 33].as_mut_ptr().cast());
    assert_eq!(other, lnshard_result::Ok, "reading our own id still works");
    lnshard_engine_free(engine);
}

#[test]
fn a_data_dir_written_by_another_node_is_refused_naming_both() {
    let dir = FreshDir::new("wrong-node");
    let path = CString::new(dir.to_str().expect("utf-8 path")).expect("no NUL");
    let mut config = config();
    config.data_dir = path.as_ptr();
    let alice = new_engine(&config, 0x51).expect("alice starts");
    let alice_id = node_id_hex(alice);
    lnshard_engine_free(alice);

    let (code, message) = new_engine(&config, 0x52).expect_err("bob is refused");
    assert_eq!(code, lnshard_result::StoreFailed, "{message}");
    assert!(
        message.contains(&format!("belongs to node {alice_id}")),
        "{message}"
    );
    // Alice opens it again.
    let alice = new_engine(&config, 0x51).expect("alice starts again");
    assert_eq!(node_id_hex(alice), alice_id);
    assert_eq!(lnshard_engine_health(alice), lnshard_result::Ok);
    lnshard_engine_free(alice);
}

#[test]
fn a_data_dir_held_by_an_open_engine_is_refused_naming_the_holder_pid() {
    let dir = FreshDir::new("locked");
    let path = CString::new(dir.to_str().expect("utf-8 path")).expect("no NUL");
    let mut config = config();
    config.data_dir = path.as_ptr();
    let first = new_engine(&config, 0x61).expect("the first engine starts");

    // The same node a second time (as a second process would), and another node.
    for key in [0x61, 0x62] {
        let (code, message) = new_engine(&config, key).expect_err("the second is refused");
        assert_eq!(code, lnshard_result::StoreLocked, "{message}");
        assert!(
            message.contains(&format!("locked by pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains(dir.to_str().expect("utf-8")), "{message}");
    }
    // The first engine was not disturbed, and once it is freed the lock is free.
    assert_eq!(lnshard_engine_health(first), lnshard_result::Ok);
    lnshard_engine_free(first);
    let again = new_engine(&config, 0x61).expect("the directory is free again");
    lnshard_engine_free(again);
}
