//! The C wallet and fee estimator behind the engine's traits: every callback result is
//! checked (an error code, a malformed coin, a signed transaction that changed more than its
//! own inputs, a non-standard change script each become a wallet error naming the
//! callback), and the C entry points refuse what they must. The whole path (a funding, a
//! CPFP bump verified by libbitcoinconsensus) runs from C in `examples/c/bump.c`.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use lightning_core::bitcoin::absolute::LockTime;
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::transaction::Version;
use lightning_core::bitcoin::{
    consensus, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use lightning_core::chain::MonitorEvent;
use lightning_core::node::Event as CoreEvent;
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::types::ChannelId;
use shard_engine::{FeeEstimator, Reservation, Wallet, WalletError};

use crate::engine::{
    lnshard_engine, lnshard_engine_config, lnshard_engine_config_default, lnshard_engine_free,
    lnshard_engine_new,
};
use crate::error::{lnshard_last_error_message, lnshard_result};
use crate::event::{lnshard_event, lnshard_event_free, Event};
use crate::fees::{lnshard_fee_estimates, lnshard_fee_estimator, CallbackFeeEstimator};
use crate::handle::into_handle;
use crate::wallet::*;

fn last_error() -> String {
    let mut buf = vec![0 as c_char; 1024];
    let mut n = 0usize;
    assert_eq!(
        lnshard_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n),
        lnshard_result::Ok
    );
    buf[..n].iter().map(|&c| c as u8 as char).collect()
}

/// What the test wallet's callbacks do, chosen per test.
#[derive(Default)]
struct Behaviour {
    /// Returned by every callback.
    code: i32,
    /// `list_spendable`: pushes a coin whose script is above the limit.
    oversized_coin: bool,
    /// `reserve`: the conflict index written.
    conflict: usize,
    /// `sign_inputs`: what it pushes.
    sign: Sign,
    /// `change_script`: the script pushed.
    change: Vec<u8>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Sign {
    /// Sets a witness on every input without one.
    #[default]
    Honest,
    /// Pushes nothing.
    Nothing,
    /// Adds an output.
    AddOutput,
    /// Replaces the witness of input 0 (already signed by someone else).
    TouchSigned,
    /// Pushes bytes that are not a transaction.
    Garbage,
}

fn behaviour<'a>(userdata: *mut c_void) -> &'a Behaviour {
    // SAFETY: every test passes a live `Behaviour` as userdata.
    unsafe { &*(userdata as *const Behaviour) }
}

const SCRIPT: [u8; 22] = [
    0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
];

extern "C" fn list(userdata: *mut c_void, sink: *mut lnshard_wallet_sink) -> i32 {
    let b = behaviour(userdata);
    let big = vec![0u8; LNSHARD_MAX_SCRIPT_LEN + 1];
    let utxo = lnshard_utxo {
        outpoint: lnshard_outpoint {
            txid: [9; 32],
            vout: 3,
        },
        value_sat: 50_000,
        script_pubkey: if b.oversized_coin {
            big.as_ptr()
        } else {
            SCRIPT.as_ptr()
        },
        script_pubkey_len: if b.oversized_coin {
            big.len()
        } else {
            SCRIPT.len()
        },
        satisfaction_weight: 108,
    };
    let pushed = lnshard_wallet_sink_push_utxo(sink, &utxo);
    assert_eq!(
        pushed == lnshard_result::Ok,
        !b.oversized_coin,
        "{}",
        last_error()
    );
    if b.code == 5 {
        // A NULL coin fails the listing too.
        assert_eq!(
            lnshard_wallet_sink_push_utxo(sink, std::ptr::null()),
            lnshard_result::NullParameter
        );
        return 0;
    }
    // A coin sink takes no bytes.
    assert_eq!(
        lnshard_wallet_sink_push_bytes(sink, SCRIPT.as_ptr(), SCRIPT.len()),
        lnshard_result::InvalidParameter
    );
    b.code
}

extern "C" fn reserve(
    userdata: *mut c_void,
    purpose: *const lnshard_reservation,
    _outpoints: *const lnshard_outpoint,
    _len: usize,
    out_conflict: *mut usize,
) -> i32 {
    let b = behaviour(userdata);
    // SAFETY: valid during the callback.
    let purpose = unsafe { &*purpose };
    assert_eq!(purpose.kind, lnshard_reservation_kind::AnchorBump);
    assert_eq!(purpose.id, [4; 32]);
    // SAFETY: valid during the callback.
    unsafe { *out_conflict = b.conflict };
    b.code
}

extern "C" fn release(userdata: *mut c_void, _o: *const lnshard_outpoint, _n: usize) -> i32 {
    behaviour(userdata).code
}

extern "C" fn sign(
    userdata: *mut c_void,
    tx: *const u8,
    tx_len: usize,
    _prevouts: *const lnshard_txout,
    _prevouts_len: usize,
    sink: *mut lnshard_wallet_sink,
) -> i32 {
    let b = behaviour(userdata);
    // SAFETY: valid during the callback.
    let bytes = unsafe { std::slice::from_raw_parts(tx, tx_len) };
    let mut tx: Transaction = consensus::deserialize(bytes).expect("a transaction");
    for input in &mut tx.input {
        if input.witness.is_empty() {
            input.witness = Witness::from_slice(&[[0x51u8]]);
        }
    }
    match b.sign {
        Sign::Honest => {}
        Sign::Nothing => return b.code,
        Sign::AddOutput => tx.output.push(TxOut {
            value: Amount::from_sat(1),
            script_pubkey: ScriptBuf::new(),
        }),
        Sign::TouchSigned => tx.input[0].witness = Witness::from_slice(&[[1u8]]),
        Sign::Garbage => {
            assert_eq!(
                lnshard_wallet_sink_push_bytes(sink, [1u8, 2, 3].as_ptr(), 3),
                lnshard_result::Ok
            );
            return b.code;
        }
    }
    let signed = consensus::serialize(&tx);
    assert_eq!(
        lnshard_wallet_sink_push_bytes(sink, signed.as_ptr(), signed.len()),
        lnshard_result::Ok
    );
    b.code
}

extern "C" fn change(userdata: *mut c_void, sink: *mut lnshard_wallet_sink) -> i32 {
    let b = behaviour(userdata);
    // A bytes sink takes no coins.
    let utxo = lnshard_utxo {
        outpoint: lnshard_outpoint {
            txid: [0; 32],
            vout: 0,
        },
        value_sat: 1,
        script_pubkey: std::ptr::null(),
        script_pubkey_len: 0,
        satisfaction_weight: 0,
    };
    assert_eq!(
        lnshard_wallet_sink_push_utxo(sink, &utxo),
        lnshard_result::InvalidParameter
    );
    assert_eq!(
        lnshard_wallet_sink_push_bytes(sink, b.change.as_ptr(), b.change.len()),
        lnshard_result::Ok
    );
    b.code
}

fn c_wallet(b: &Behaviour) -> lnshard_wallet {
    lnshard_wallet {
        userdata: b as *const Behaviour as *mut c_void,
        list_spendable: Some(list),
        reserve: Some(reserve),
        release: Some(release),
        sign_inputs: Some(sign),
        change_script: Some(change),
    }
}

fn wallet(b: &Behaviour) -> CallbackWallet {
    CallbackWallet::new(&c_wallet(b), "wallet").unwrap_or_else(|_| panic!("{}", last_error()))
}

fn unavailable(e: WalletError) -> String {
    match e {
        WalletError::Unavailable(error) => error.to_string(),
        other => panic!("not Unavailable: {other:?}"),
    }
}

#[test]
fn coins_listed_from_c_arrive_whole_and_a_refused_coin_fails_the_listing() {
    let b = Behaviour::default();
    let coins = wallet(&b).list_spendable().expect("listed");
    assert_eq!(coins.len(), 1);
    assert_eq!(
        coins[0].outpoint,
        OutPoint {
            txid: Txid::from_byte_array([9; 32]),
            vout: 3
        }
    );
    assert_eq!(coins[0].txout.value, Amount::from_sat(50_000));
    assert_eq!(coins[0].txout.script_pubkey.as_bytes(), &SCRIPT);
    assert_eq!(coins[0].satisfaction_weight, 108);

    let b = Behaviour {
        oversized_coin: true,
        ..Behaviour::default()
    };
    let e = unavailable(wallet(&b).list_spendable().expect_err("refused coin"));
    assert!(
        e.contains("script_pubkey_len 10001 above the limit 10000"),
        "{e}"
    );

    let b = Behaviour {
        code: 5,
        ..Behaviour::default()
    };
    let e = unavailable(wallet(&b).list_spendable().expect_err("a NULL coin"));
    assert!(e.contains("parameter utxo is NULL"), "{e}");

    let b = Behaviour {
        code: 7,
        ..Behaviour::default()
    };
    let e = unavailable(wallet(&b).list_spendable().expect_err("error code"));
    assert_eq!(e, "wallet callback list_spendable returned 7");
}

#[test]
fn reserve_conflicts_name_the_coin_and_a_bad_index_is_a_failure() {
    let outpoints: Vec<OutPoint> = (0..3)
        .map(|vout| OutPoint {
            txid: Txid::from_byte_array([5; 32]),
            vout,
        })
        .collect();
    let purpose = Reservation::AnchorBump(Txid::from_byte_array([4; 32]));
    let b = Behaviour::default();
    wallet(&b).reserve(purpose, &outpoints).expect("reserved");
    let b = Behaviour {
        code: LNSHARD_WALLET_ALREADY_RESERVED,
        conflict: 1,
        ..Behaviour::default()
    };
    assert_eq!(
        wallet(&b).reserve(purpose, &outpoints),
        Err(WalletError::AlreadyReserved(outpoints[1]))
    );
    let b = Behaviour {
        code: LNSHARD_WALLET_UNKNOWN_UTXO,
        conflict: 2,
        ..Behaviour::default()
    };
    assert_eq!(
        wallet(&b).reserve(purpose, &outpoints),
        Err(WalletError::UnknownUtxo(outpoints[2]))
    );
    let b = Behaviour {
        code: LNSHARD_WALLET_ALREADY_RESERVED,
        conflict: 3,
        ..Behaviour::default()
    };
    let e = unavailable(
        wallet(&b)
            .reserve(purpose, &outpoints)
            .expect_err("bad index"),
    );
    assert!(
        e.contains("out_conflict 3, not an index of its 3 outpoints"),
        "{e}"
    );
    let b = Behaviour {
        code: -1,
        ..Behaviour::default()
    };
    let e = unavailable(wallet(&b).release(&outpoints).expect_err("release failed"));
    assert_eq!(e, "wallet callback release returned -1");
}

fn unsigned() -> (Transaction, Vec<TxOut>) {
    let input = |n: u8, witness: Witness| TxIn {
        previous_output: OutPoint {
            txid: Txid::from_byte_array([n; 32]),
            vout: 0,
        },
        script_sig: ScriptBuf::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness,
    };
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        // Input 0 already signed (an anchor, by the engine); input 1 the wallet's.
        input: vec![
            input(1, Witness::from_slice(&[[7u8; 72]])),
            input(2, Witness::new()),
        ],
        output: vec![TxOut {
            value: Amount::from_sat(10_000),
            script_pubkey: ScriptBuf::from_bytes(SCRIPT.to_vec()),
        }],
    };
    let prevouts = vec![
        TxOut {
            value: Amount::from_sat(330),
            script_pubkey: ScriptBuf::new(),
        };
        2
    ];
    (tx, prevouts)
}

#[test]
fn a_signed_transaction_may_change_only_the_wallets_own_inputs() {
    let (tx, prevouts) = unsigned();
    let b = Behaviour::default();
    let mut signed = tx.clone();
    wallet(&b)
        .sign_inputs(&mut signed, &prevouts)
        .expect("signed");
    assert_eq!(signed.input[0].witness, tx.input[0].witness, "input 0 kept");
    assert_eq!(signed.input[1].witness, Witness::from_slice(&[[0x51u8]]));

    for (sign, expect) in [
        (Sign::Nothing, "pushed no transaction"),
        (Sign::AddOutput, "changed the transaction's outputs"),
        (Sign::Garbage, "pushed 3 bytes that are not a transaction"),
    ] {
        let b = Behaviour {
            sign,
            ..Behaviour::default()
        };
        let mut again = tx.clone();
        let e = unavailable(
            wallet(&b)
                .sign_inputs(&mut again, &prevouts)
                .expect_err(expect),
        );
        assert!(e.contains(expect), "{e}");
        assert_eq!(again, tx, "nothing changed on failure");
    }
    let b = Behaviour {
        sign: Sign::TouchSigned,
        ..Behaviour::default()
    };
    let mut again = tx.clone();
    match wallet(&b).sign_inputs(&mut again, &prevouts) {
        Err(WalletError::Signing { input: 0, reason }) => {
            assert!(reason.contains("does not own"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_change_script_must_be_a_standard_destination() {
    let b = Behaviour {
        change: SCRIPT.to_vec(),
        ..Behaviour::default()
    };
    assert_eq!(
        wallet(&b).change_script().expect("P2WPKH").as_bytes(),
        &SCRIPT
    );
    let b = Behaviour {
        change: vec![0x51],
        ..Behaviour::default()
    };
    let e = unavailable(
        wallet(&b)
            .change_script()
            .expect_err("OP_TRUE is no destination"),
    );
    assert!(
        e.contains("not a P2PKH, P2SH, P2WPKH, P2WSH or P2TR"),
        "{e}"
    );
}

fn engine_with(estimator: Option<&lnshard_fee_estimator>) -> (lnshard_result, *mut lnshard_engine) {
    let mut c = std::mem::MaybeUninit::<lnshard_engine_config>::uninit();
    assert_eq!(
        lnshard_engine_config_default(c.as_mut_ptr()),
        lnshard_result::Ok
    );
    // SAFETY: written on Ok.
    let mut c = unsafe { c.assume_init() };
    assert!(c.fee_estimator.is_null(), "no estimator by default");
    assert!(c.negotiate_anchors, "anchor channels by default");
    c.shards = 1;
    if let Some(e) = estimator {
        c.fee_estimator = e;
    }
    let mut engine = std::ptr::null_mut();
    let r = lnshard_engine_new(
        &c,
        [0x41u8; 32].as_ptr().cast(),
        [0x42u8; 32].as_ptr().cast(),
        100,
        [0u8; 32].as_ptr().cast(),
        &mut engine,
    );
    (r, engine)
}

fn key() -> PublicKey {
    PublicKey::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[7; 32]).expect("valid"),
    )
}

#[test]
fn fund_and_bump_refuse_missing_callbacks_other_events_and_bad_feerates() {
    let (r, engine) = engine_with(None);
    assert_eq!(r, lnshard_result::Ok, "{}", last_error());
    let b = Behaviour::default();
    let good = c_wallet(&b);
    let closed: *mut lnshard_event = into_handle(Event(CoreEvent::ChannelClosed {
        channel_id: ChannelId([1; 32]),
        counterparty_node_id: key(),
        reason: lightning_core::node::event::ClosureReason::HolderForceClosed,
    }));
    let mut tx = std::ptr::null_mut();
    let mut child = std::ptr::null_mut();

    assert_eq!(
        lnshard_engine_fund_channel(engine, std::ptr::null(), closed, 2500, &mut tx),
        lnshard_result::NullParameter
    );
    let missing = lnshard_wallet {
        sign_inputs: None,
        ..good
    };
    assert_eq!(
        lnshard_engine_fund_channel(engine, &missing, closed, 2500, &mut tx),
        lnshard_result::NullParameter
    );
    assert_eq!(last_error(), "parameter wallet.sign_inputs is NULL");
    assert_eq!(
        lnshard_engine_fund_channel(engine, &good, closed, 2500, &mut tx),
        lnshard_result::InvalidParameter
    );
    assert!(
        last_error().contains("not a FUNDING_GENERATION_READY"),
        "{}",
        last_error()
    );
    assert_eq!(
        lnshard_engine_bump(engine, &good, closed, 2500, &mut tx, &mut child),
        lnshard_result::InvalidParameter
    );
    assert!(last_error().contains("not an ON_CHAIN event of kind BUMP_NEEDED"));
    assert_eq!(
        lnshard_engine_bump(engine, &good, closed, 2500, &mut tx, std::ptr::null_mut()),
        lnshard_result::NullParameter
    );

    // A bump of a channel the engine does not know: the event's own feerate (0) is
    // checked, then the engine refuses it, nothing reserved.
    let bump: *mut lnshard_event = into_handle(Event(CoreEvent::OnChain {
        channel_id: ChannelId([1; 32]),
        counterparty_node_id: key(),
        event: MonitorEvent::BumpNeeded {
            tx: unsigned().0,
            anchor: Some(OutPoint {
                txid: Txid::from_byte_array([4; 32]),
                vout: 0,
            }),
            deadline: 300,
            feerate_per_kw: 100,
            max_fee_sat: 10_000,
        },
    }));
    assert_eq!(
        lnshard_engine_bump(engine, &good, bump, 0, &mut tx, &mut child),
        lnshard_result::InvalidParameter
    );
    assert!(
        last_error().contains("feerate_per_kw 100 outside"),
        "{}",
        last_error()
    );
    assert_eq!(
        lnshard_engine_bump(engine, &good, bump, 250_001, &mut tx, &mut child),
        lnshard_result::InvalidParameter
    );
    assert_eq!(
        lnshard_engine_bump(engine, &good, bump, 3000, &mut tx, &mut child),
        lnshard_result::UnknownChannel,
        "{}",
        last_error()
    );
    assert!(
        tx.is_null() && child.is_null(),
        "nothing written on failure"
    );
    lnshard_event_free(closed);
    lnshard_event_free(bump);
    lnshard_engine_free(engine);
}

#[test]
fn a_transaction_id_from_c_is_the_double_sha256_without_witnesses() {
    let (tx, _) = unsigned();
    let bytes = consensus::serialize(&tx);
    let mut txid = [0u8; 32];
    assert_eq!(
        lnshard_transaction_txid(bytes.as_ptr(), bytes.len(), txid.as_mut_ptr().cast()),
        lnshard_result::Ok
    );
    assert_eq!(txid, tx.compute_txid().to_byte_array());
    assert_eq!(
        lnshard_transaction_txid(bytes.as_ptr(), bytes.len() - 1, txid.as_mut_ptr().cast()),
        lnshard_result::InvalidParameter
    );
}

/// Answers what the test set; counts its calls.
struct Estimates {
    code: i32,
    answer: lnshard_fee_estimates,
    calls: AtomicUsize,
}

extern "C" fn estimate(userdata: *mut c_void, out: *mut lnshard_fee_estimates) -> i32 {
    // SAFETY: the test passes a live `Estimates`; `out` is valid during the call.
    let e = unsafe { &*(userdata as *const Estimates) };
    e.calls.fetch_add(1, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { *out = e.answer };
    e.code
}

#[test]
fn the_c_estimator_is_asked_at_start_and_its_refusals_and_out_of_range_answers_are_ignored() {
    let answer = lnshard_fee_estimates {
        urgent: 9_000,
        normal: 4_000,
        background: 1_000,
    };
    let state = Estimates {
        code: 0,
        answer,
        calls: AtomicUsize::new(0),
    };
    let c = lnshard_fee_estimator {
        userdata: &state as *const Estimates as *mut c_void,
        estimate: Some(estimate),
    };
    let estimator = CallbackFeeEstimator::new(&c, "estimator").expect("complete");
    let got = estimator.estimates().expect("an answer");
    assert_eq!(
        (got.urgent, got.normal, got.background),
        (9_000, 4_000, 1_000)
    );
    let refusing = Estimates { code: 3, ..state };
    let c_refusing = lnshard_fee_estimator {
        userdata: &refusing as *const Estimates as *mut c_void,
        ..c
    };
    assert_eq!(
        CallbackFeeEstimator::new(&c_refusing, "e")
            .expect("complete")
            .estimates(),
        None
    );
    let out_of_range = Estimates {
        code: 0,
        answer: lnshard_fee_estimates {
            background: 252,
            ..answer
        },
        calls: AtomicUsize::new(0),
    };
    let c_out = lnshard_fee_estimator {
        userdata: &out_of_range as *const Estimates as *mut c_void,
        ..c
    };
    assert_eq!(
        CallbackFeeEstimator::new(&c_out, "e")
            .expect("complete")
            .estimates(),
        None
    );

    // Through the config: asked once by lnshard_engine_new; a missing callback is named.
    let started = Estimates {
        code: 0,
        answer,
        calls: AtomicUsize::new(0),
    };
    let c_started = lnshard_fee_estimator {
        userdata: &started as *const Estimates as *mut c_void,
        ..c
    };
    let (r, engine) = engine_with(Some(&c_started));
    assert_eq!(r, lnshard_result::Ok, "{}", last_error());
    assert_eq!(started.calls.load(Ordering::SeqCst), 1);
    let hash = [1u8; 32];
    assert_eq!(
        crate::engine::lnshard_engine_best_block_updated(engine, 101, hash.as_ptr().cast()),
        lnshard_result::Ok
    );
    assert_eq!(
        started.calls.load(Ordering::SeqCst),
        2,
        "and on every block"
    );
    lnshard_engine_free(engine);
    let no_callback = lnshard_fee_estimator {
        estimate: None,
        ..c
    };
    let (r, engine) = engine_with(Some(&no_callback));
    assert_eq!(r, lnshard_result::NullParameter);
    assert!(engine.is_null());
    assert_eq!(
        last_error(),
        "parameter config.fee_estimator.estimate is NULL"
    );
}

#[test]
fn the_bumper_handle_refuses_other_events_and_answers_nothing_to_other_onchain_kinds() {
    use crate::bumper::*;
    let (r, engine) = engine_with(None);
    assert_eq!(r, lnshard_result::Ok, "{}", last_error());
    let b = Behaviour::default();
    let good = c_wallet(&b);
    let mut bumper = std::ptr::null_mut();
    assert_eq!(
        lnshard_bumper_new(std::ptr::null_mut()),
        lnshard_result::NullParameter
    );
    assert_eq!(lnshard_bumper_new(&mut bumper), lnshard_result::Ok);
    assert_eq!(lnshard_bumper_len(bumper), 0);
    assert_eq!(lnshard_bumper_len(std::ptr::null()), 0);
    let closed: *mut lnshard_event = into_handle(Event(CoreEvent::ChannelClosed {
        channel_id: ChannelId([1; 32]),
        counterparty_node_id: key(),
        reason: lightning_core::node::event::ClosureReason::HolderForceClosed,
    }));
    let confirmed: *mut lnshard_event = into_handle(Event(CoreEvent::OnChain {
        channel_id: ChannelId([1; 32]),
        counterparty_node_id: key(),
        event: MonitorEvent::ClaimConfirmed {
            txid: Txid::from_byte_array([2; 32]),
            value_sat: 1,
        },
    }));
    let (mut tx, mut child) = (std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(
        lnshard_bumper_handle(bumper, engine, &good, closed, 101, &mut tx, &mut child),
        lnshard_result::InvalidParameter
    );
    assert_eq!(last_error(), "event is not an ON_CHAIN event");
    assert_eq!(
        lnshard_bumper_handle(bumper, engine, &good, confirmed, 101, &mut tx, &mut child),
        lnshard_result::Ok
    );
    assert!(tx.is_null() && child.is_null(), "nothing to relay");
    // The engine given as the bumper: a handle of another type.
    assert_eq!(
        lnshard_bumper_handle(
            engine.cast::<lnshard_bumper>(),
            engine,
            &good,
            confirmed,
            101,
            &mut tx,
            &mut child
        ),
        lnshard_result::InvalidHandle
    );
    let mut status = std::mem::MaybeUninit::<lnshard_bump_status>::uninit();
    let mut found = true;
    assert_eq!(
        lnshard_bumper_status(
            bumper,
            [2u8; 32].as_ptr().cast(),
            status.as_mut_ptr(),
            &mut found
        ),
        lnshard_result::Ok
    );
    assert!(!found);
    let mut was = true;
    assert_eq!(
        lnshard_bumper_abandon(bumper, &good, [2u8; 32].as_ptr().cast(), &mut was),
        lnshard_result::Ok
    );
    assert!(!was);
    let mut forgotten = 9;
    assert_eq!(
        lnshard_bumper_block_connected(bumper, &good, 101, std::ptr::null(), 0, &mut forgotten),
        lnshard_result::Ok
    );
    assert_eq!(forgotten, 0);
    assert_eq!(
        lnshard_bumper_block_connected(bumper, &good, 101, std::ptr::null(), 1, &mut forgotten),
        lnshard_result::NullParameter
    );
    assert_eq!(
        lnshard_bumper_blocks_disconnected(bumper, 100),
        lnshard_result::Ok
    );
    lnshard_bumper_free(bumper);
    assert_eq!(lnshard_bumper_len(bumper), 0, "freed: not a live bumper");
    lnshard_event_free(closed);
    lnshard_event_free(confirmed);
    lnshard_engine_free(engine);
}

#[test]
fn anchor_channels_are_the_default_and_can_be_turned_off() {
    let mut c = std::mem::MaybeUninit::<lnshard_engine_config>::uninit();
    assert_eq!(
        lnshard_engine_config_default(c.as_mut_ptr()),
        lnshard_result::Ok
    );
    // SAFETY: written on Ok.
    let mut c = unsafe { c.assume_init() };
    let on = crate::engine::engine_config(&c).unwrap_or_else(|_| panic!("{}", last_error()));
    assert!(on.node.channel.negotiate_anchors);
    c.negotiate_anchors = false;
    let off = crate::engine::engine_config(&c).unwrap_or_else(|_| panic!("{}", last_error()));
    assert!(!off.node.channel.negotiate_anchors);
}
