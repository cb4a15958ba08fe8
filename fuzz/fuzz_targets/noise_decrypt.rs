//! Fuzzes an established BOLT 8 session's decryptor.
//!
//! Input: `[mode, chunk, flip_hi, flip_lo, rest..]`; the stream is fed in chunks of
//! `chunk + 1` bytes.
//! * Even `mode`: `rest` is fed as raw received bytes. Never panics, the buffer never holds
//!   more than one frame, and a failure is sticky.
//! * Odd `mode`: each byte `b` of `rest` becomes a message of `257 * b` bytes (0..=65535),
//!   encrypted by the peer (crossing key rotations after 500 messages). With `mode & 2` one
//!   bit of the encrypted stream (chosen by `flip`) is flipped. Unflipped, every message
//!   comes back identical and in order; flipped, a strict prefix comes back, then an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightning_core::transport::{Decryptor, Encryptor, MAC_LEN, MAX_MESSAGE_LEN};

const CK: [u8; 32] = [0x5a; 32];
const KEY: [u8; 32] = [0xa5; 32];
/// Caps the plaintext a single input may ask for, to keep runs fast.
const MAX_TOTAL: usize = 1 << 21;

/// Feeds `stream` in fixed-size chunks, one message at a time; returns the messages and
/// whether an error stopped it.
fn feed(decryptor: &mut Decryptor, stream: &[u8], chunk: usize) -> (Vec<Vec<u8>>, bool) {
    let mut messages = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut input = piece;
        loop {
            match decryptor.next_message(&mut input) {
                Ok(Some(message)) => {
                    assert!(message.len() <= MAX_MESSAGE_LEN);
                    messages.push(message);
                }
                Ok(None) => break,
                Err(error) => {
                    assert!(decryptor.is_failed());
                    assert_eq!(decryptor.decrypt(b"more"), Err(error));
                    return (messages, true);
                }
            }
        }
        assert!(input.is_empty());
        assert!(decryptor.buffered_len() <= MAX_MESSAGE_LEN + MAC_LEN);
    }
    (messages, false)
}

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, flip_hi, flip_lo, rest @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk) + 1;
    let mut decryptor = Decryptor::new(CK, KEY);

    if mode & 1 == 0 {
        let _ = feed(&mut decryptor, rest, chunk);
        return;
    }

    let mut encryptor = Encryptor::new(CK, KEY);
    let mut sent = Vec::new();
    let mut stream = Vec::new();
    let mut total = 0usize;
    for &b in rest {
        let len = 257 * usize::from(b);
        total += len;
        if total > MAX_TOTAL {
            break;
        }
        let message = vec![b; len];
        encryptor
            .encrypt_into(&message, &mut stream)
            .expect("at most 65535 bytes");
        sent.push(message);
    }

    let flipped = mode & 2 != 0 && !stream.is_empty();
    if flipped {
        let bit = usize::from(u16::from_be_bytes([*flip_hi, *flip_lo])) % (stream.len() * 8);
        if let Some(byte) = stream.get_mut(bit / 8) {
            *byte ^= 1 << (bit % 8);
        }
    }

    let (received, failed) = feed(&mut decryptor, &stream, chunk);
    assert_eq!(failed, flipped);
    if flipped {
        assert!(received.len() < sent.len());
        assert_eq!(
            received.as_slice(),
            sent.get(..received.len()).unwrap_or(&[])
        );
    } else {
        assert_eq!(received, sent);
        assert_eq!(decryptor.key(), encryptor.key());
        assert_eq!(decryptor.nonce(), encryptor.nonce());
    }
});
