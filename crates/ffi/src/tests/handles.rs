//! Handle misuse through the C entry points: an engine used after `lnshard_engine_free`, a
//! handle of one type passed as another, and a pointer lnshard never handed out each give
//! `LNSHARD_RESULT_INVALID_HANDLE` (or NULL/0/false) with a last error naming the type
//! wanted, and nothing behind the bad pointer is read.

use std::ffi::c_char;

use crate::bytes::{lnshard_bytes, lnshard_bytes_data, lnshard_bytes_free, lnshard_bytes_len};
use crate::channels::{
    lnshard_channel_details, lnshard_channel_list, lnshard_channel_list_free,
    lnshard_channel_list_get, lnshard_channel_list_len, lnshard_engine_list_channels,
};
use crate::engine::{
    lnshard_engine, lnshard_engine_close_channel, lnshard_engine_config,
    lnshard_engine_config_default, lnshard_engine_free, lnshard_engine_is_idle, lnshard_engine_new,
    lnshard_engine_new_inbound_connection, lnshard_engine_new_outbound_connection,
    lnshard_engine_next_event, lnshard_engine_node_id, lnshard_engine_shard_count,
};
use crate::error::{lnshard_last_error_message, lnshard_result};
use crate::event::{lnshard_event, lnshard_event_free, lnshard_event_get_kind, lnshard_event_kind};

/// The secp256k1 generator: a valid public key to dial.
const G: [u8; 33] = [
    0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b,
    0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17,
    0x98,
];

fn last_error() -> String {
    let mut buf = vec![0 as c_char; 1024];
    let mut n = 0usize;
    assert_eq!(
        lnshard_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n),
        lnshard_result::Ok
    );
    buf[..n].iter().map(|&c| c as u8 as char).collect()
}

/// Asserts `got` is `LNSHARD_RESULT_INVALID_HANDLE` and the last error contains `needle`.
#[track_caller]
fn assert_invalid(got: lnshard_result, needle: &str) {
    let message = last_error();
    assert_eq!(got, lnshard_result::InvalidHandle, "{message}");
    assert!(
        message.contains(needle),
        "{message:?} does not name {needle:?}"
    );
}

/// Asserts the last error (after a call returning NULL/0/false) contains `needle`.
#[track_caller]
fn assert_last_error(needle: &str) {
    let message = last_error();
    assert!(
        message.contains(needle),
        "{message:?} does not name {needle:?}"
    );
}

fn config() -> lnshard_engine_config {
    let mut c = std::mem::MaybeUninit::<lnshard_engine_config>::uninit();
    assert_eq!(
        lnshard_engine_config_default(c.as_mut_ptr()),
        lnshard_result::Ok
    );
    // SAFETY: written on Ok.
    let mut c = unsafe { c.assume_init() };
    c.shards = 1;
    c
}

fn start(config: &lnshard_engine_config, key: u8) -> *mut lnshard_engine {
    let mut engine = std::ptr::null_mut();
    let result = lnshard_engine_new(
        config,
        [key; 32].as_ptr().cast(),
        [0x22u8; 32].as_ptr().cast(),
        0,
        [0u8; 32].as_ptr().cast(),
        &mut engine,
    );
    assert_eq!(result, lnshard_result::Ok, "{}", last_error());
    assert!(!engine.is_null());
    engine
}

#[test]
fn an_engine_used_after_free_is_an_invalid_handle_even_once_its_place_is_reused() {
    let engine = start(&config(), 0x11);
    let mut id = [0u8; 33];
    assert_eq!(
        lnshard_engine_node_id(engine, id.as_mut_ptr().cast()),
        lnshard_result::Ok
    );
    lnshard_engine_free(engine);

    assert_invalid(
        lnshard_engine_node_id(engine, id.as_mut_ptr().cast()),
        "parameter engine is not a live lnshard_engine",
    );
    assert_invalid(
        lnshard_engine_new_inbound_connection(engine, 7),
        "lnshard_engine",
    );
    assert_invalid(
        lnshard_engine_close_channel(engine, [1u8; 32].as_ptr().cast()),
        "lnshard_engine",
    );
    let mut event = std::ptr::null_mut();
    assert_invalid(
        lnshard_engine_next_event(engine, &mut event),
        "lnshard_engine",
    );
    assert!(event.is_null(), "no output is written on an error");
    let mut list = std::ptr::null_mut();
    assert_invalid(
        lnshard_engine_list_channels(engine, &mut list),
        "lnshard_engine",
    );
    assert_eq!(lnshard_engine_shard_count(engine), 0);
    assert_last_error("not a live lnshard_engine");
    assert!(!lnshard_engine_is_idle(engine));
    assert_last_error("not a live lnshard_engine");
    // Freeing it again is undefined by contract; this version does nothing.

    // Engines started after it may take its memory or its registry slot: the old handle
    // still names nothing (its generation is gone), the new ones work.
    let others: Vec<_> = (0..3).map(|i| start(&config(), 0x20 + i)).collect();
    assert_invalid(
        lnshard_engine_node_id(engine, id.as_mut_ptr().cast()),
        "lnshard_engine",
    );
    for other in others {
        assert_ne!(other, engine);
        assert_eq!(
            lnshard_engine_node_id(other, id.as_mut_ptr().cast()),
            lnshard_result::Ok
        );
        lnshard_engine_free(other);
    }
}

#[test]
fn a_handle_of_another_type_is_refused_naming_both_types() {
    let engine = start(&config(), 0x31);
    let mut act_one: *mut lnshard_bytes = std::ptr::null_mut();
    assert_eq!(
        lnshard_engine_new_outbound_connection(engine, 1, G.as_ptr().cast(), &mut act_one),
        lnshard_result::Ok
    );
    let mut list: *mut lnshard_channel_list = std::ptr::null_mut();
    assert_eq!(
        lnshard_engine_list_channels(engine, &mut list),
        lnshard_result::Ok
    );

    // A byte buffer where an engine is expected.
    let mut id = [0u8; 33];
    assert_invalid(
        lnshard_engine_node_id(act_one.cast(), id.as_mut_ptr().cast()),
        "parameter engine is a lnshard_bytes, not a lnshard_engine",
    );
    assert_invalid(
        lnshard_engine_new_inbound_connection(act_one.cast(), 2),
        "is a lnshard_bytes, not a lnshard_engine",
    );
    assert_eq!(lnshard_engine_shard_count(list.cast()), 0);
    assert_last_error("is a lnshard_channel_list, not a lnshard_engine");
    // An engine, a list or a buffer where another type is expected.
    assert_eq!(lnshard_bytes_len(engine.cast()), 0);
    assert_last_error("parameter bytes is a lnshard_engine, not a lnshard_bytes");
    assert!(lnshard_bytes_data(list.cast()).is_null());
    assert_last_error("is a lnshard_channel_list, not a lnshard_bytes");
    assert_eq!(
        lnshard_event_get_kind(act_one.cast::<lnshard_event>()),
        lnshard_event_kind::Unknown
    );
    assert_last_error("is a lnshard_bytes, not a lnshard_event");
    assert_eq!(lnshard_channel_list_len(act_one.cast()), 0);
    assert_last_error("is a lnshard_bytes, not a lnshard_channel_list");
    let mut details = std::mem::MaybeUninit::<lnshard_channel_details>::uninit();
    assert_invalid(
        lnshard_channel_list_get(engine.cast(), 0, details.as_mut_ptr()),
        "parameter list is a lnshard_engine, not a lnshard_channel_list",
    );

    // Freeing through the wrong type frees nothing and says so.
    lnshard_bytes_free(engine.cast());
    assert_last_error("parameter bytes is a lnshard_engine, not a lnshard_bytes");
    lnshard_event_free(act_one.cast());
    lnshard_channel_list_free(act_one.cast());
    lnshard_event_free(list.cast());
    assert_eq!(
        lnshard_engine_node_id(engine, id.as_mut_ptr().cast()),
        lnshard_result::Ok
    );
    assert!(lnshard_bytes_len(act_one) > 0, "act one is still there");
    assert_eq!(lnshard_channel_list_len(list), 0);

    // Each of them used after its own free.
    lnshard_bytes_free(act_one);
    assert_eq!(lnshard_bytes_len(act_one), 0);
    assert_last_error("parameter bytes is not a live lnshard_bytes");
    assert!(lnshard_bytes_data(act_one).is_null());
    lnshard_channel_list_free(list);
    assert_invalid(
        lnshard_channel_list_get(list, 0, details.as_mut_ptr()),
        "not a live lnshard_channel_list",
    );
    lnshard_engine_free(engine);
}

#[test]
fn pointers_lnshard_never_handed_out_are_refused_without_being_read() {
    let mut id = [0u8; 33];
    // Memory that belongs to the process but is no handle: a stack buffer, a heap buffer,
    // and addresses that belong to nothing (never dereferenced, so this is safe to try).
    let stack = [0u64; 8];
    let heap = vec![0xffu8; 4096];
    let candidates: [*mut lnshard_engine; 5] = [
        stack.as_ptr().cast_mut().cast(),
        heap.as_ptr().cast_mut().cast(),
        2 as *mut lnshard_engine,
        usize::MAX as *mut lnshard_engine,
        0xdead_beef as *mut lnshard_engine,
    ];
    for ptr in candidates {
        assert_invalid(
            lnshard_engine_node_id(ptr, id.as_mut_ptr().cast()),
            "parameter engine is not a live lnshard_engine",
        );
        assert_eq!(lnshard_engine_shard_count(ptr), 0);
        lnshard_engine_free(ptr);
        assert_last_error("not a live lnshard_engine");
    }
    assert_eq!(heap[0], 0xff, "nothing was written through a stray pointer");
    // NULL stays NULL_PARAMETER.
    assert_eq!(
        lnshard_engine_node_id(std::ptr::null(), id.as_mut_ptr().cast()),
        lnshard_result::NullParameter
    );
}
