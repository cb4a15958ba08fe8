//! BOLT 8 encrypted and authenticated transport: the `Noise_XK_secp256k1_ChaChaPoly_SHA256`
//! handshake and the encrypted message framing that follows it, as a sans-IO state machine.
//!
//! Nothing here reads a socket, a clock or a random number generator. The caller moves bytes:
//!
//! 1. The initiator builds an [`InitiatorHandshake`] from its static secret key, the
//!    responder's static public key (its node id) and a fresh ephemeral secret key, and sends
//!    [`InitiatorHandshake::act_one`] (50 bytes).
//! 2. The responder builds a [`ResponderHandshake`] from its static secret key and a fresh
//!    ephemeral secret key, reads exactly [`ACT_ONE_LEN`] bytes and passes them to
//!    [`ResponderHandshake::process_act_one`], which returns act two (50 bytes) to send and a
//!    [`ResponderAwaitingActThree`].
//! 3. The initiator reads exactly [`ACT_TWO_LEN`] bytes and passes them to
//!    [`InitiatorHandshake::process_act_two`], which returns act three (66 bytes) to send and
//!    the established [`Transport`].
//! 4. The responder reads exactly [`ACT_THREE_LEN`] bytes and passes them to
//!    [`ResponderAwaitingActThree::process_act_three`], which returns the initiator's static
//!    public key (the peer's node id) and the established [`Transport`].
//!
//! Any [`HandshakeError`] means the connection must be closed without sending anything more
//! (BOLT 8); each step consumes its state, so a failed handshake cannot be continued.
//!
//! A host reading a socket does not see acts, only chunks of bytes: [`Handshake`] runs the
//! same steps over a byte stream for either side (it buffers the act being read, returns
//! what to write, and hands over the [`Transport`], the peer's node id and any bytes read
//! past act three). Every host in lnshard drives the handshake through it.
//!
//! A [`Transport`] (or its halves [`Encryptor`] and [`Decryptor`]) then encrypts messages of
//! at most [`MAX_MESSAGE_LEN`] bytes into frames and decrypts frames from arbitrary chunks of
//! the byte stream, buffering at most one frame. Each direction rotates its key every 1000
//! nonces (500 messages) on its own.
//!
//! Fresh ephemeral keys come from the caller, for example [`ephemeral_key`] over an
//! [`EntropySource`](crate::entropy::EntropySource).

use core::fmt;

mod cipher;
mod framing;
mod handshake;
mod stream;

pub use framing::{
    Decryptor, Encryptor, Transport, LENGTH_FRAME_LEN, MAC_LEN, MAX_FRAME_LEN, MAX_MESSAGE_LEN,
};
pub use handshake::{
    ephemeral_key, InitiatorHandshake, ResponderAwaitingActThree, ResponderHandshake, ACT_ONE_LEN,
    ACT_THREE_LEN, ACT_TWO_LEN, HANDSHAKE_VERSION,
};
pub use stream::{Established, Handshake, HandshakeStep};

/// One of the three handshake acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Act {
    /// Act one, `-> e, es`: initiator to responder, 50 bytes.
    One,
    /// Act two, `<- e, ee`: responder to initiator, 50 bytes.
    Two,
    /// Act three, `-> s, se`: initiator to responder, 66 bytes.
    Three,
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Act::One => "act one",
            Act::Two => "act two",
            Act::Three => "act three",
        })
    }
}

/// Why a handshake act was rejected. Per BOLT 8 every one of these means: close the
/// connection without sending any further message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The act was not exactly its fixed size (a short read).
    WrongLength {
        /// The act.
        act: Act,
        /// Its fixed size.
        expected: usize,
        /// The number of bytes given.
        actual: usize,
    },
    /// The act's leading version byte was not [`HANDSHAKE_VERSION`].
    BadVersion {
        /// The act.
        act: Act,
        /// The version byte received.
        version: u8,
    },
    /// A public key in the act was not a valid compressed secp256k1 point.
    InvalidPublicKey {
        /// The act.
        act: Act,
        /// Which key: `"ephemeral key"` (acts one and two) or `"static key"` (act three).
        field: &'static str,
    },
    /// A Poly1305 tag in the act did not verify.
    BadMac {
        /// The act.
        act: Act,
        /// Which tag: `"tag"` (acts one and two), `"encrypted static key"` or `"final tag"`
        /// (act three).
        field: &'static str,
    },
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::WrongLength {
                act,
                expected,
                actual,
            } => write!(
                f,
                "{act} is {actual} bytes, expected exactly {expected}: handshake failed, disconnect"
            ),
            HandshakeError::BadVersion { act, version } => write!(
                f,
                "{act} version is {version}, only {HANDSHAKE_VERSION} is known: handshake failed, disconnect"
            ),
            HandshakeError::InvalidPublicKey { act, field } => write!(
                f,
                "{act} {field} is not a valid compressed secp256k1 public key: handshake failed, disconnect"
            ),
            HandshakeError::BadMac { act, field } => write!(
                f,
                "{act} {field} mac check failed: handshake failed, disconnect"
            ),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Why a message could not be encrypted or a frame could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// The message to encrypt is longer than [`MAX_MESSAGE_LEN`]; nothing was encrypted and
    /// the nonce did not move.
    MessageTooLong {
        /// The message length.
        len: usize,
        /// The limit, [`MAX_MESSAGE_LEN`].
        max: usize,
    },
    /// The 18-byte encrypted length prefix failed its MAC check: the connection must be
    /// closed.
    BadLengthMac,
    /// The encrypted message body failed its MAC check: the connection must be closed.
    BadMessageMac {
        /// The message length announced by the (authenticated) length prefix.
        len: u16,
    },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::MessageTooLong { len, max } => {
                write!(f, "message length {len} exceeds the maximum of {max} bytes")
            }
            TransportError::BadLengthMac => {
                f.write_str("encrypted length prefix mac check failed: disconnect")
            }
            TransportError::BadMessageMac { len } => write!(
                f,
                "encrypted message body of length {len} mac check failed: disconnect"
            ),
        }
    }
}

impl std::error::Error for TransportError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_errors_are_lower_case_and_say_disconnect() {
        let errors = [
            HandshakeError::WrongLength {
                act: Act::One,
                expected: 50,
                actual: 49,
            },
            HandshakeError::BadVersion {
                act: Act::Two,
                version: 1,
            },
            HandshakeError::InvalidPublicKey {
                act: Act::Three,
                field: "static key",
            },
            HandshakeError::BadMac {
                act: Act::Three,
                field: "final tag",
            },
        ];
        for error in errors {
            let text = error.to_string();
            assert_eq!(text, text.to_lowercase(), "{text}");
            assert!(text.ends_with("handshake failed, disconnect"), "{text}");
        }
        assert_eq!(
            HandshakeError::WrongLength {
                act: Act::One,
                expected: 50,
                actual: 49
            }
            .to_string(),
            "act one is 49 bytes, expected exactly 50: handshake failed, disconnect"
        );
        assert_eq!(
            HandshakeError::BadVersion {
                act: Act::Three,
                version: 1
            }
            .to_string(),
            "act three version is 1, only 0 is known: handshake failed, disconnect"
        );
    }

    #[test]
    fn transport_errors_name_values_and_limits() {
        assert_eq!(
            TransportError::MessageTooLong {
                len: 65536,
                max: 65535
            }
            .to_string(),
            "message length 65536 exceeds the maximum of 65535 bytes"
        );
        assert_eq!(
            TransportError::BadMessageMac { len: 5 }.to_string(),
            "encrypted message body of length 5 mac check failed: disconnect"
        );
        assert_eq!(
            TransportError::BadLengthMac.to_string(),
            "encrypted length prefix mac check failed: disconnect"
        );
    }
}
