//! BOLT 8 message framing: each message travels as an encrypted 2-byte big-endian length
//! plus its MAC (18 bytes), then the encrypted message plus its MAC.
//!
//! [`Encryptor`] turns messages into frames; [`Decryptor`] takes the received byte stream in
//! chunks of any size and yields whole messages in order, buffering at most one frame.

use super::cipher::{CipherState, MAC_LEN as TAG_LEN};
use super::TransportError;

/// The largest Lightning message BOLT 8 carries.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;
/// Length of a Poly1305 MAC.
pub const MAC_LEN: usize = TAG_LEN;
/// Length of the encrypted length prefix: 2 bytes plus their MAC.
pub const LENGTH_FRAME_LEN: usize = 2 + MAC_LEN;
/// Length of the largest frame: `2 + 16 + 65535 + 16` = 65569 bytes.
pub const MAX_FRAME_LEN: usize = LENGTH_FRAME_LEN + MAX_MESSAGE_LEN + MAC_LEN;

/// The sending half of a [`Transport`]: encrypts messages under `sk`, `sn` and `sck`.
#[derive(Debug, Clone)]
pub struct Encryptor {
    state: CipherState,
}

impl Encryptor {
    /// An encryptor at nonce 0 with sending key `key` and chaining key `chaining_key`, as the
    /// handshake leaves it (`sck = ck`).
    pub fn new(chaining_key: [u8; 32], key: [u8; 32]) -> Self {
        Encryptor {
            state: CipherState::new(chaining_key, key),
        }
    }

    /// Encrypts `message` into one frame.
    ///
    /// Fails with [`TransportError::MessageTooLong`] above [`MAX_MESSAGE_LEN`] bytes, in which
    /// case nothing changes.
    pub fn encrypt(&mut self, message: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut frame = Vec::new();
        self.encrypt_into(message, &mut frame)?;
        Ok(frame)
    }

    /// Encrypts `message` into one frame appended to `out`.
    ///
    /// Fails with [`TransportError::MessageTooLong`] above [`MAX_MESSAGE_LEN`] bytes, in which
    /// case nothing changes and nothing is appended.
    pub fn encrypt_into(
        &mut self,
        message: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        let len = u16::try_from(message.len()).map_err(|_| TransportError::MessageTooLong {
            len: message.len(),
            max: MAX_MESSAGE_LEN,
        })?;
        out.reserve(LENGTH_FRAME_LEN + message.len() + MAC_LEN);

        let mut length = len.to_be_bytes();
        let length_tag = self.state.encrypt(&mut length);
        out.extend_from_slice(&length);
        out.extend_from_slice(&length_tag);

        let start = out.len();
        out.extend_from_slice(message);
        let (_, body) = out.split_at_mut(start);
        let body_tag = self.state.encrypt(body);
        out.extend_from_slice(&body_tag);
        Ok(())
    }

    /// The current sending key `sk` (after any rotations). Secret: exposed so tests can check
    /// it against the BOLT 8 vectors; never log it.
    pub fn key(&self) -> &[u8; 32] {
        self.state.key()
    }

    /// The current sending chaining key `sck` (after any rotations). Secret, like [`Self::key`].
    pub fn chaining_key(&self) -> &[u8; 32] {
        self.state.chaining_key()
    }

    /// The nonce `sn` the next encryption will use (0..1000; it resets at each rotation).
    pub fn nonce(&self) -> u64 {
        self.state.nonce()
    }
}

/// Where the [`Decryptor`] is within the current frame.
#[derive(Debug, Clone)]
enum Stage {
    /// Collecting the 18-byte encrypted length prefix; `filled` bytes of it so far.
    Length {
        buf: [u8; LENGTH_FRAME_LEN],
        filled: usize,
    },
    /// Collecting the encrypted body plus MAC (`len + 16` bytes in all; `buf` never grows
    /// past that).
    Body { len: u16, buf: Vec<u8> },
    /// A MAC check failed: the stream is desynchronised and the connection must be closed.
    Failed(TransportError),
}

impl Stage {
    fn start() -> Self {
        Stage::Length {
            buf: [0; LENGTH_FRAME_LEN],
            filled: 0,
        }
    }
}

/// Moves as many bytes as fit from the front of `input` into the start of `dst`; returns
/// how many.
fn take_into(input: &mut &[u8], dst: &mut [u8]) -> usize {
    let n = dst.len().min(input.len());
    let (head, tail) = input.split_at(n);
    let (fill, _) = dst.split_at_mut(n);
    fill.copy_from_slice(head);
    *input = tail;
    n
}

/// The receiving half of a [`Transport`]: decrypts frames under `rk`, `rn` and `rck`.
///
/// It accepts the byte stream in chunks of any size (as a socket delivers it) and keeps at
/// most one partial frame: the 18-byte length prefix, then the body of at most
/// `65535 + 16` bytes, allocated only once the length prefix has been authenticated.
#[derive(Debug, Clone)]
pub struct Decryptor {
    state: CipherState,
    stage: Stage,
}

impl Decryptor {
    /// A decryptor at nonce 0 with receiving key `key` and chaining key `chaining_key`, as the
    /// handshake leaves it (`rck = ck`).
    pub fn new(chaining_key: [u8; 32], key: [u8; 32]) -> Self {
        Decryptor {
            state: CipherState::new(chaining_key, key),
            stage: Stage::start(),
        }
    }

    /// Consumes bytes from the front of `input` until one message is complete or `input` is
    /// empty. Returns `Ok(Some(message))` for a complete message (leaving any further bytes
    /// in `input`), `Ok(None)` when all of `input` was taken and buffered.
    ///
    /// After an error the decryptor is dead: this and every later call return the same
    /// error, and the connection must be closed.
    pub fn next_message(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, TransportError> {
        loop {
            match &mut self.stage {
                Stage::Failed(error) => return Err(error.clone()),
                Stage::Length { buf, filled } => {
                    let (_, rest) = buf.split_at_mut(*filled);
                    *filled += take_into(input, rest);
                    if *filled < LENGTH_FRAME_LEN {
                        return Ok(None);
                    }
                    let (mut length, tag) = split_length_frame(buf);
                    if self.state.decrypt(&mut length, &tag).is_err() {
                        return Err(self.fail(TransportError::BadLengthMac));
                    }
                    let len = u16::from_be_bytes(length);
                    // Authenticated, and at most 65535 + 16 bytes: safe to reserve.
                    self.stage = Stage::Body {
                        len,
                        buf: Vec::with_capacity(usize::from(len) + MAC_LEN),
                    };
                }
                Stage::Body { len, buf } => {
                    let total = usize::from(*len) + MAC_LEN;
                    let want = total.saturating_sub(buf.len()).min(input.len());
                    let (head, tail) = input.split_at(want);
                    buf.extend_from_slice(head);
                    *input = tail;
                    if buf.len() < total {
                        return Ok(None);
                    }
                    let len = *len;
                    let mut body = core::mem::take(buf);
                    self.stage = Stage::start();
                    let Some((ciphertext, tag)) = body.split_last_chunk_mut::<MAC_LEN>() else {
                        // `total` is at least MAC_LEN, so this cannot happen; fail closed.
                        return Err(self.fail(TransportError::BadMessageMac { len }));
                    };
                    let tag = *tag;
                    if self.state.decrypt(ciphertext, &tag).is_err() {
                        return Err(self.fail(TransportError::BadMessageMac { len }));
                    }
                    body.truncate(usize::from(len));
                    return Ok(Some(body));
                }
            }
        }
    }

    /// Consumes all of `input` and returns every message it completes, in order; a trailing
    /// partial frame stays buffered for the next call.
    ///
    /// On an error, messages completed earlier in the same `input` are dropped along with the
    /// connection, which must be closed.
    pub fn decrypt(&mut self, mut input: &[u8]) -> Result<Vec<Vec<u8>>, TransportError> {
        let mut messages = Vec::new();
        while let Some(message) = self.next_message(&mut input)? {
            messages.push(message);
        }
        Ok(messages)
    }

    /// How many bytes of the current frame are buffered (at most `65535 + 16`).
    pub fn buffered_len(&self) -> usize {
        match &self.stage {
            Stage::Length { filled, .. } => *filled,
            Stage::Body { buf, .. } => buf.len(),
            Stage::Failed(_) => 0,
        }
    }

    /// How many more bytes complete the current part of the frame (the length prefix or the
    /// body): a hint for how much to read from the socket next. Zero once failed.
    pub fn bytes_needed(&self) -> usize {
        match &self.stage {
            Stage::Length { filled, .. } => LENGTH_FRAME_LEN.saturating_sub(*filled),
            Stage::Body { len, buf } => (usize::from(*len) + MAC_LEN).saturating_sub(buf.len()),
            Stage::Failed(_) => 0,
        }
    }

    /// Whether a MAC check has failed (the connection must be closed).
    pub fn is_failed(&self) -> bool {
        matches!(self.stage, Stage::Failed(_))
    }

    /// The current receiving key `rk` (after any rotations). Secret: exposed so tests can
    /// check it against the BOLT 8 vectors; never log it.
    pub fn key(&self) -> &[u8; 32] {
        self.state.key()
    }

    /// The current receiving chaining key `rck` (after any rotations). Secret, like
    /// [`Self::key`].
    pub fn chaining_key(&self) -> &[u8; 32] {
        self.state.chaining_key()
    }

    /// The nonce `rn` the next decryption will use (0..1000; it resets at each rotation).
    pub fn nonce(&self) -> u64 {
        self.state.nonce()
    }

    fn fail(&mut self, error: TransportError) -> TransportError {
        self.stage = Stage::Failed(error.clone());
        error
    }
}

/// Splits the 18-byte length prefix into the encrypted length and its MAC.
fn split_length_frame(frame: &[u8; LENGTH_FRAME_LEN]) -> ([u8; 2], [u8; MAC_LEN]) {
    let [a, b, tag @ ..] = *frame;
    ([a, b], tag)
}

/// An established BOLT 8 session: an [`Encryptor`] for what we send and a [`Decryptor`] for
/// what we receive, each rotating its key on its own.
#[derive(Debug, Clone)]
pub struct Transport {
    encryptor: Encryptor,
    decryptor: Decryptor,
}

impl Transport {
    /// A session from the handshake's final chaining key `ck` and the keys it derived:
    /// `sending_key` (`sk`) and `receiving_key` (`rk`), with `sck = rck = ck`, `sn = rn = 0`.
    pub fn from_keys(
        chaining_key: [u8; 32],
        sending_key: [u8; 32],
        receiving_key: [u8; 32],
    ) -> Self {
        Transport {
            encryptor: Encryptor::new(chaining_key, sending_key),
            decryptor: Decryptor::new(chaining_key, receiving_key),
        }
    }

    /// Encrypts `message` into one frame; see [`Encryptor::encrypt`].
    pub fn encrypt(&mut self, message: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.encryptor.encrypt(message)
    }

    /// Encrypts `message` into one frame appended to `out`; see [`Encryptor::encrypt_into`].
    pub fn encrypt_into(
        &mut self,
        message: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        self.encryptor.encrypt_into(message, out)
    }

    /// Takes received bytes until one message completes; see [`Decryptor::next_message`].
    pub fn next_message(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, TransportError> {
        self.decryptor.next_message(input)
    }

    /// Takes all received bytes and returns the messages they complete; see
    /// [`Decryptor::decrypt`].
    pub fn decrypt(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>, TransportError> {
        self.decryptor.decrypt(input)
    }

    /// The sending half.
    pub fn encryptor(&self) -> &Encryptor {
        &self.encryptor
    }

    /// The receiving half.
    pub fn decryptor(&self) -> &Decryptor {
        &self.decryptor
    }

    /// Splits the session into its halves, e.g. to give each to its own task.
    pub fn split(self) -> (Encryptor, Decryptor) {
        (self.encryptor, self.decryptor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CK: [u8; 32] = [0x11; 32];
    const K: [u8; 32] = [0x22; 32];

    fn pair() -> (Encryptor, Decryptor) {
        (Encryptor::new(CK, K), Decryptor::new(CK, K))
    }

    #[test]
    fn message_of_65536_bytes_is_a_typed_error_and_changes_nothing() {
        let (mut enc, _) = pair();
        let mut out = vec![0xaa];
        let err = enc.encrypt_into(&vec![0; 65536], &mut out).unwrap_err();
        assert_eq!(
            err,
            TransportError::MessageTooLong {
                len: 65536,
                max: 65535
            }
        );
        assert_eq!(out, vec![0xaa]);
        assert_eq!(enc.nonce(), 0);
    }

    #[test]
    fn message_of_65535_bytes_round_trips_as_the_largest_frame() {
        let (mut enc, mut dec) = pair();
        let message: Vec<u8> = (0..65535u32).map(|i| (i % 251) as u8).collect();
        let frame = enc.encrypt(&message).unwrap();
        assert_eq!(frame.len(), MAX_FRAME_LEN);
        assert_eq!(MAX_FRAME_LEN, 65569);
        assert_eq!(dec.decrypt(&frame).unwrap(), vec![message]);
        assert_eq!((enc.nonce(), dec.nonce()), (2, 2));
    }

    #[test]
    fn empty_message_is_two_macs_and_a_length() {
        let (mut enc, mut dec) = pair();
        let frame = enc.encrypt(&[]).unwrap();
        assert_eq!(frame.len(), LENGTH_FRAME_LEN + MAC_LEN);
        assert_eq!(dec.decrypt(&frame).unwrap(), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn truncated_frame_stays_buffered_until_its_last_byte() {
        let (mut enc, mut dec) = pair();
        let frame = enc.encrypt(b"hello").unwrap();
        let (most, last) = frame.split_at(frame.len() - 1);
        assert_eq!(dec.decrypt(most).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(dec.buffered_len(), 5 + MAC_LEN - 1);
        assert_eq!(dec.bytes_needed(), 1);
        assert_eq!(dec.decrypt(last).unwrap(), vec![b"hello".to_vec()]);
        assert_eq!(dec.buffered_len(), 0);
        assert_eq!(dec.bytes_needed(), LENGTH_FRAME_LEN);
    }

    #[test]
    fn truncated_length_prefix_is_buffered_not_decrypted() {
        let (mut enc, mut dec) = pair();
        let frame = enc.encrypt(b"x").unwrap();
        for (i, byte) in frame.iter().take(LENGTH_FRAME_LEN - 1).enumerate() {
            assert_eq!(dec.decrypt(&[*byte]).unwrap(), Vec::<Vec<u8>>::new());
            assert_eq!(dec.buffered_len(), i + 1);
            assert_eq!(dec.nonce(), 0);
        }
    }

    #[test]
    fn next_message_leaves_the_following_bytes_in_input() {
        let (mut enc, mut dec) = pair();
        let mut stream = enc.encrypt(b"one").unwrap();
        enc.encrypt_into(b"two", &mut stream).unwrap();
        let mut input = stream.as_slice();
        assert_eq!(dec.next_message(&mut input).unwrap(), Some(b"one".to_vec()));
        assert_eq!(input.len(), LENGTH_FRAME_LEN + 3 + MAC_LEN);
        assert_eq!(dec.next_message(&mut input).unwrap(), Some(b"two".to_vec()));
        assert!(input.is_empty());
        assert_eq!(dec.next_message(&mut input).unwrap(), None);
    }

    #[test]
    fn flipped_bit_in_length_mac_is_bad_length_mac() {
        for bit in 0..(MAC_LEN * 8) {
            let (mut enc, mut dec) = pair();
            let mut frame = enc.encrypt(b"hello").unwrap();
            frame[2 + bit / 8] ^= 1 << (bit % 8);
            assert_eq!(dec.decrypt(&frame), Err(TransportError::BadLengthMac));
            assert!(dec.is_failed());
        }
    }

    #[test]
    fn flipped_bit_in_encrypted_length_is_bad_length_mac() {
        for bit in 0..16 {
            let (mut enc, mut dec) = pair();
            let mut frame = enc.encrypt(b"hello").unwrap();
            frame[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(dec.decrypt(&frame), Err(TransportError::BadLengthMac));
        }
    }

    #[test]
    fn flipped_bit_in_body_mac_is_bad_message_mac() {
        for bit in 0..(MAC_LEN * 8) {
            let (mut enc, mut dec) = pair();
            let mut frame = enc.encrypt(b"hello").unwrap();
            let body_mac = LENGTH_FRAME_LEN + 5;
            frame[body_mac + bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                dec.decrypt(&frame),
                Err(TransportError::BadMessageMac { len: 5 })
            );
        }
    }

    #[test]
    fn flipped_bit_in_body_ciphertext_is_bad_message_mac() {
        let (mut enc, mut dec) = pair();
        let mut frame = enc.encrypt(b"hello").unwrap();
        frame[LENGTH_FRAME_LEN] ^= 0x01;
        assert_eq!(
            dec.decrypt(&frame),
            Err(TransportError::BadMessageMac { len: 5 })
        );
    }

    #[test]
    fn failure_is_sticky() {
        let (mut enc, mut dec) = pair();
        let good = enc.encrypt(b"good").unwrap();
        let mut bad = good.clone();
        bad[3] ^= 0x40;
        assert_eq!(dec.decrypt(&bad), Err(TransportError::BadLengthMac));
        // Even the genuine frame is refused now: the stream is out of step.
        assert_eq!(dec.decrypt(&good), Err(TransportError::BadLengthMac));
        assert_eq!(dec.decrypt(&[]), Err(TransportError::BadLengthMac));
        assert_eq!((dec.buffered_len(), dec.bytes_needed()), (0, 0));
    }

    // A 2-byte length cannot claim more than 65535, so the "too long" case on the wire is a
    // length prefix that claims the maximum without being authentic: it must be rejected
    // before any body byte is buffered or any body buffer is reserved.
    #[test]
    fn forged_length_prefix_claiming_maximum_is_rejected_before_buffering() {
        let mut forger = Encryptor::new(CK, [0x33; 32]);
        let mut frame = forger.encrypt(&vec![0; MAX_MESSAGE_LEN]).unwrap();
        let (_, mut dec) = pair();
        let before = dec.buffered_len();
        frame.truncate(LENGTH_FRAME_LEN + 100);
        assert_eq!(dec.decrypt(&frame), Err(TransportError::BadLengthMac));
        assert_eq!(before, 0);
        assert_eq!(dec.buffered_len(), 0);
    }

    #[test]
    fn authentic_maximum_length_prefix_buffers_at_most_one_frame() {
        let (mut enc, mut dec) = pair();
        let frame = enc.encrypt(&vec![7; MAX_MESSAGE_LEN]).unwrap();
        let (head, tail) = frame.split_at(frame.len() - 1);
        assert!(dec.decrypt(head).unwrap().is_empty());
        assert_eq!(dec.buffered_len(), MAX_MESSAGE_LEN + MAC_LEN - 1);
        assert_eq!(dec.bytes_needed(), 1);
        assert_eq!(dec.decrypt(tail).unwrap(), vec![vec![7; MAX_MESSAGE_LEN]]);
    }

    #[test]
    fn each_direction_rotates_independently() {
        let mut a = Transport::from_keys(CK, [1; 32], [2; 32]);
        let mut b = Transport::from_keys(CK, [2; 32], [1; 32]);
        // 600 messages a -> b (1200 nonces: one rotation), 10 messages b -> a.
        let mut stream = Vec::new();
        for i in 0..600u32 {
            a.encrypt_into(&i.to_be_bytes(), &mut stream).unwrap();
        }
        let received = b.decrypt(&stream).unwrap();
        assert_eq!(received.len(), 600);
        assert_eq!(received[599], 599u32.to_be_bytes().to_vec());
        for _ in 0..10 {
            let frame = b.encrypt(b"ack").unwrap();
            assert_eq!(a.decrypt(&frame).unwrap(), vec![b"ack".to_vec()]);
        }
        assert_eq!(a.encryptor().nonce(), 200);
        assert_eq!(b.decryptor().nonce(), 200);
        assert_eq!(a.encryptor().key(), b.decryptor().key());
        assert_ne!(a.encryptor().key(), &[1; 32]);
        assert_eq!(b.encryptor().nonce(), 20);
        assert_eq!(b.encryptor().key(), &[2; 32]);
        assert_eq!(a.decryptor().key(), &[2; 32]);
    }

    #[test]
    fn split_halves_keep_working() {
        let a = Transport::from_keys(CK, [1; 32], [2; 32]);
        let b = Transport::from_keys(CK, [2; 32], [1; 32]);
        let (mut a_enc, _) = a.split();
        let (_, mut b_dec) = b.split();
        let frame = a_enc.encrypt(b"split").unwrap();
        assert_eq!(b_dec.decrypt(&frame).unwrap(), vec![b"split".to_vec()]);
    }
}
