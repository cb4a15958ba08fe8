//! The on-chain calls through the C entry points on a running engine: balances, reorgs, the
//! claim feerate and the sweep script, each refusing what it must (naming the value).

use std::ffi::c_char;

use crate::balances::{
    lnshard_balance_list, lnshard_balance_list_free, lnshard_balance_list_len,
    lnshard_engine_claimable_balances,
};
use crate::engine::{
    lnshard_engine, lnshard_engine_best_block, lnshard_engine_best_block_updated,
    lnshard_engine_block_disconnected, lnshard_engine_config, lnshard_engine_config_default,
    lnshard_engine_fee_estimates_updated, lnshard_engine_free, lnshard_engine_new,
    lnshard_engine_set_claim_feerate, lnshard_engine_set_sweep_script,
    LNSHARD_MAX_CLAIM_FEERATE_PER_KW, LNSHARD_MAX_SWEEP_SCRIPT_LEN,
    LNSHARD_MIN_CLAIM_FEERATE_PER_KW,
};
use crate::error::{lnshard_last_error_message, lnshard_result};

fn last_error() -> String {
    let mut buf = vec![0 as c_char; 1024];
    let mut n = 0usize;
    assert_eq!(
        lnshard_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n),
        lnshard_result::Ok
    );
    buf[..n].iter().map(|&c| c as u8 as char).collect()
}

#[track_caller]
fn assert_refused(got: lnshard_result, needle: &str) {
    let message = last_error();
    assert_eq!(got, lnshard_result::InvalidParameter, "{message}");
    assert!(
        message.contains(needle),
        "{message:?} does not say {needle:?}"
    );
}

fn start() -> *mut lnshard_engine {
    let mut c = std::mem::MaybeUninit::<lnshard_engine_config>::uninit();
    assert_eq!(
        lnshard_engine_config_default(c.as_mut_ptr()),
        lnshard_result::Ok
    );
    // SAFETY: written on Ok.
    let mut c = unsafe { c.assume_init() };
    c.shards = 2;
    let mut engine = std::ptr::null_mut();
    let r = lnshard_engine_new(
        &c,
        [0x31u8; 32].as_ptr().cast(),
        [0x32u8; 32].as_ptr().cast(),
        100,
        [0u8; 32].as_ptr().cast(),
        &mut engine,
    );
    assert_eq!(r, lnshard_result::Ok, "{}", last_error());
    engine
}

#[test]
fn balances_reorgs_feerate_and_sweep_script_through_the_c_calls() {
    let engine = start();
    // No channel: an empty list, freed once.
    let mut list: *mut lnshard_balance_list = std::ptr::null_mut();
    assert_eq!(
        lnshard_engine_claimable_balances(engine, &mut list),
        lnshard_result::Ok
    );
    assert!(!list.is_null());
    assert_eq!(lnshard_balance_list_len(list), 0);
    lnshard_balance_list_free(list);
    assert_eq!(
        lnshard_engine_claimable_balances(engine, std::ptr::null_mut()),
        lnshard_result::NullParameter
    );

    // The best block it was started at, then a new one.
    let best = |engine| {
        let (mut height, mut hash) = (0u32, [0xffu8; 32]);
        assert_eq!(
            lnshard_engine_best_block(engine, &mut height, hash.as_mut_ptr().cast()),
            lnshard_result::Ok
        );
        (height, hash)
    };
    assert_eq!(best(engine), (100, [0; 32]));
    assert_eq!(
        lnshard_engine_best_block_updated(engine, 101, [0x65u8; 32].as_ptr().cast()),
        lnshard_result::Ok
    );
    assert_eq!(best(engine), (101, [0x65; 32]));
    assert_eq!(
        lnshard_engine_best_block(engine, std::ptr::null_mut(), [0u8; 32].as_mut_ptr().cast()),
        lnshard_result::NullParameter
    );
    let mut height = 0u32;
    assert_eq!(
        lnshard_engine_best_block(engine, &mut height, std::ptr::null_mut()),
        lnshard_result::NullParameter
    );

    // A reorg back to height 95 (the fork point 94 and its hash), then none of the genesis
    // block, and none without the fork point's hash.
    let fork_hash = [0x94u8; 32];
    assert_eq!(
        lnshard_engine_block_disconnected(engine, 95, fork_hash.as_ptr().cast()),
        lnshard_result::Ok
    );
    assert_eq!(
        best(engine),
        (94, fork_hash),
        "the fork point is the best block"
    );
    assert_refused(
        lnshard_engine_block_disconnected(engine, 0, fork_hash.as_ptr().cast()),
        "height 0",
    );
    assert_eq!(
        lnshard_engine_block_disconnected(engine, 95, std::ptr::null()),
        lnshard_result::NullParameter
    );

    // The claim feerate: within the relay floor and the ceiling.
    for ok in [
        LNSHARD_MIN_CLAIM_FEERATE_PER_KW,
        2_500,
        LNSHARD_MAX_CLAIM_FEERATE_PER_KW,
    ] {
        assert_eq!(
            lnshard_engine_set_claim_feerate(engine, ok),
            lnshard_result::Ok
        );
    }
    assert_refused(
        lnshard_engine_set_claim_feerate(engine, LNSHARD_MIN_CLAIM_FEERATE_PER_KW - 1),
        "feerate_per_kw 252 outside 253..=250000",
    );
    assert_refused(
        lnshard_engine_set_claim_feerate(engine, LNSHARD_MAX_CLAIM_FEERATE_PER_KW + 1),
        "feerate_per_kw 250001",
    );

    // Fee estimates: each target within the same bounds.
    assert_eq!(
        lnshard_engine_fee_estimates_updated(engine, 10_000, 2_500, 253),
        lnshard_result::Ok
    );
    assert_refused(
        lnshard_engine_fee_estimates_updated(engine, 10_000, 2_500, 252),
        "background 252 outside 253..=250000",
    );
    assert_refused(
        lnshard_engine_fee_estimates_updated(engine, 250_001, 2_500, 1_000),
        "urgent 250001 outside",
    );
    assert_eq!(
        lnshard_engine_fee_estimates_updated(std::ptr::null(), 1_000, 1_000, 1_000),
        lnshard_result::NullParameter
    );

    // The sweep script: standard destinations only.
    let p2wpkh = [&[0x00, 0x14][..], &[0xab; 20]].concat();
    let p2wsh = [&[0x00, 0x20][..], &[0xab; 32]].concat();
    let p2tr = [&[0x51, 0x20][..], &[0xab; 32]].concat();
    let p2pkh = [&[0x76, 0xa9, 0x14][..], &[0xab; 20], &[0x88, 0xac]].concat();
    let p2sh = [&[0xa9, 0x14][..], &[0xab; 20], &[0x87]].concat();
    for script in [&p2wpkh, &p2wsh, &p2tr, &p2pkh, &p2sh] {
        assert_eq!(
            lnshard_engine_set_sweep_script(engine, script.as_ptr(), script.len()),
            lnshard_result::Ok,
            "{}",
            last_error()
        );
    }
    // A version 0 program of the wrong length is unspendable; OP_RETURN burns; empty pays
    // anyone.
    let bad_v0 = [&[0x00, 0x10][..], &[0xab; 16]].concat();
    for script in [&bad_v0[..], &[0x6a, 0x01, 0x00][..], &[][..]] {
        assert_refused(
            lnshard_engine_set_sweep_script(engine, script.as_ptr(), script.len()),
            "is not a P2PKH, P2SH, P2WPKH, P2WSH or P2TR output script",
        );
    }
    let long = [0u8; LNSHARD_MAX_SWEEP_SCRIPT_LEN + 1];
    assert_refused(
        lnshard_engine_set_sweep_script(engine, long.as_ptr(), long.len()),
        "script_len 43 above the limit 42",
    );
    assert_eq!(
        lnshard_engine_set_sweep_script(engine, std::ptr::null(), 22),
        lnshard_result::NullParameter
    );
    lnshard_engine_free(engine);
    // A freed engine is no engine.
    assert_eq!(
        lnshard_engine_block_disconnected(engine, 5, [0u8; 32].as_ptr().cast()),
        lnshard_result::InvalidHandle
    );
}
