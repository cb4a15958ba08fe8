//! Fuzzes the BOLT 8 handshake with fixed keys: arbitrary bytes as act one to a responder,
//! as act two to an initiator and as act three to a responder that accepted a genuine act
//! one; and the same bytes as an XOR mask over the genuine acts two and three, which must be
//! accepted exactly when the mask changes nothing. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::transport::{
    HandshakeError, InitiatorHandshake, ResponderHandshake, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN,
};

fn key(byte: u8) -> SecretKey {
    SecretKey::from_slice(&[byte; 32]).expect("a repeated small byte is a valid scalar")
}

fn initiator() -> InitiatorHandshake {
    let responder_static = PublicKey::from_secret_key(&Secp256k1::new(), &key(0x21));
    InitiatorHandshake::new(&key(0x11), &responder_static, &key(0x12))
}

fn responder() -> ResponderHandshake {
    ResponderHandshake::new(&key(0x21), &key(0x22))
}

/// `genuine` with `mask` XORed over it (the mask cycled; an empty mask changes nothing).
fn masked(genuine: &[u8], mask: &[u8]) -> (Vec<u8>, bool) {
    if mask.is_empty() {
        return (genuine.to_vec(), false);
    }
    let out: Vec<u8> = genuine
        .iter()
        .zip(mask.iter().cycle())
        .map(|(g, m)| g ^ m)
        .collect();
    let changed = out != genuine;
    (out, changed)
}

fn check_length(error: &HandshakeError, len: usize, expected: usize) {
    if len != expected {
        assert!(
            matches!(error, HandshakeError::WrongLength { actual, .. } if *actual == len),
            "{error}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // Raw bytes as act one.
    match responder().process_act_one(data) {
        Ok((_, act_two)) => {
            assert_eq!(data.len(), ACT_ONE_LEN);
            assert_eq!(act_two.len(), ACT_TWO_LEN);
        }
        Err(error) => check_length(&error, data.len(), ACT_ONE_LEN),
    }

    // Raw bytes as act two.
    if let Err(error) = initiator().process_act_two(data) {
        check_length(&error, data.len(), ACT_TWO_LEN);
    }

    // Raw bytes as act three, after a genuine act one.
    let init = initiator();
    let (awaiting, genuine_act_two) = responder()
        .process_act_one(&init.act_one())
        .expect("a genuine act one is accepted");
    if let Err(error) = awaiting.process_act_three(data) {
        check_length(&error, data.len(), ACT_THREE_LEN);
    }

    // Masked genuine act two: accepted exactly when unchanged.
    let (act_two, changed) = masked(&genuine_act_two, data);
    let result = init.process_act_two(&act_two);
    assert_eq!(result.is_ok(), !changed);
    let Ok((genuine_act_three, _)) = initiator().process_act_two(&genuine_act_two) else {
        panic!("a genuine act two is accepted");
    };

    // Masked genuine act three: accepted exactly when unchanged.
    let (awaiting, _) = responder()
        .process_act_one(&initiator().act_one())
        .expect("a genuine act one is accepted");
    let (act_three, changed) = masked(&genuine_act_three, data);
    let result = awaiting.process_act_three(&act_three);
    assert_eq!(result.is_ok(), !changed);
});
