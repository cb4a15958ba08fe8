//! The BOLT 8 handshake over a byte stream: one state machine for a connection between its
//! first byte and its established [`Transport`], for either side.
//!
//! The three acts ([`InitiatorHandshake`], [`ResponderHandshake`],
//! [`ResponderAwaitingActThree`]) each take one whole act. A socket delivers bytes in chunks of
//! any size: [`Handshake`] buffers the act being read (at most [`ACT_THREE_LEN`] bytes, in a
//! fixed array), runs each act as soon as it is whole, collects what to write back, and at
//! the end yields the established transport, the peer's node id and any bytes read past the
//! last act (the start of the encrypted message stream). No clock, no random number
//! generator: the ephemeral key is an input.
//!
//! Every host that runs a BOLT 8 connection uses it: the engine's `handle_bytes`, the daemon
//! and the main job.

use bitcoin::secp256k1::{PublicKey, SecretKey};

use super::framing::Transport;
use super::handshake::{
    InitiatorHandshake, ResponderAwaitingActThree, ResponderHandshake, ACT_ONE_LEN, ACT_THREE_LEN,
    ACT_TWO_LEN,
};
use super::{Act, HandshakeError};

/// Which act a [`Handshake`] waits for, and the state that will process it.
enum Stage {
    /// Responder: waiting for act one.
    Accepted(ResponderHandshake),
    /// Initiator: act one sent to `remote`; waiting for act two.
    Dialled(InitiatorHandshake, PublicKey),
    /// Responder: act two sent; waiting for act three.
    Responded(ResponderAwaitingActThree),
}

impl Stage {
    fn act(&self) -> Act {
        match self {
            Stage::Accepted(_) => Act::One,
            Stage::Dialled(..) => Act::Two,
            Stage::Responded(_) => Act::Three,
        }
    }

    fn act_len(&self) -> usize {
        match self {
            Stage::Accepted(_) => ACT_ONE_LEN,
            Stage::Dialled(..) => ACT_TWO_LEN,
            Stage::Responded(_) => ACT_THREE_LEN,
        }
    }
}

/// One connection's BOLT 8 handshake, fed the bytes read from its socket in chunks of any
/// size.
///
/// Start it with [`Handshake::inbound`] (we accepted the connection) or
/// [`Handshake::outbound`] (we dialled: write the act one it returns), then pass every chunk
/// read to [`Handshake::read`] until it returns [`HandshakeStep::Established`]. Each call
/// consumes the handshake; an error ends it (BOLT 8: close the connection without sending
/// anything more).
pub struct Handshake {
    stage: Stage,
    /// The act being read; its first `filled` bytes so far.
    act: [u8; ACT_THREE_LEN],
    filled: usize,
}

/// What [`Handshake::read`] made of the bytes it was given.
// `Established` holds the transport's cipher states; it happens once per connection, so
// boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum HandshakeStep {
    /// Every byte was taken and the current act is not whole yet: write `write` (act two,
    /// when act one just completed; otherwise empty) and read more.
    Reading {
        /// The handshake, waiting for more bytes.
        handshake: Handshake,
        /// Bytes to write to the socket now (possibly none).
        write: Vec<u8>,
    },
    /// The last act is done.
    Established(Established),
}

/// A completed handshake: the peer, the session, what to write first and what was read past
/// the last act.
pub struct Established {
    /// The peer's static public key (its node id): the key dialled, or the one act three
    /// revealed.
    pub node_id: PublicKey,
    /// The session's cipher states, at nonce 0 in both directions.
    pub transport: Transport,
    /// Bytes to write to the socket before any encrypted message: act three when we dialled
    /// (and act two too if act one and act three arrived in one read as the responder);
    /// otherwise empty.
    pub write: Vec<u8>,
    /// Bytes read past the last act: the start of the peer's encrypted message stream, to
    /// decrypt with `transport` before anything read later (empty in the usual case).
    pub leftover: Vec<u8>,
}

impl Handshake {
    /// A connection we accepted, as `local_static`, with the fresh ephemeral key `ephemeral`
    /// (BOLT 8 requires strong randomness for it: never reuse one). It waits for act one.
    pub fn inbound(local_static: &SecretKey, ephemeral: &SecretKey) -> Handshake {
        Handshake::at(Stage::Accepted(ResponderHandshake::new(
            local_static,
            ephemeral,
        )))
    }

    /// A connection we dialled to the node whose static public key (node id) is
    /// `remote_static`, as `local_static`, with the fresh ephemeral key `ephemeral` (never
    /// reuse one). Returns the handshake, waiting for act two, and act one to write first.
    pub fn outbound(
        local_static: &SecretKey,
        remote_static: &PublicKey,
        ephemeral: &SecretKey,
    ) -> (Handshake, [u8; ACT_ONE_LEN]) {
        let initiator = InitiatorHandshake::new(local_static, remote_static, ephemeral);
        let act_one = initiator.act_one();
        (
            Handshake::at(Stage::Dialled(initiator, *remote_static)),
            act_one,
        )
    }

    fn at(stage: Stage) -> Handshake {
        Handshake {
            stage,
            act: [0; ACT_THREE_LEN],
            filled: 0,
        }
    }

    /// The act this handshake waits for.
    pub fn awaiting(&self) -> Act {
        self.stage.act()
    }

    /// Whether we dialled this connection.
    pub fn is_outbound(&self) -> bool {
        matches!(self.stage, Stage::Dialled(..))
    }

    /// How many more bytes the act being read needs (a host that wants to read nothing past
    /// the handshake reads at most this many).
    pub fn bytes_needed(&self) -> usize {
        self.stage.act_len().saturating_sub(self.filled)
    }

    /// Takes `bytes` read from the socket: buffers them into the act being read, runs every
    /// act they complete, and says what to write and whether the handshake is done. Bytes
    /// after the last act come back in [`Established::leftover`].
    ///
    /// An error means the connection must be closed without writing anything more (not even
    /// what an earlier act in the same `bytes` produced).
    pub fn read(self, bytes: &[u8]) -> Result<HandshakeStep, HandshakeError> {
        let Handshake {
            mut stage,
            mut act,
            mut filled,
        } = self;
        let mut write = Vec::new();
        let mut input = bytes;
        loop {
            let len = stage.act_len();
            let want = len.saturating_sub(filled).min(input.len());
            let (head, rest) = input.split_at(want);
            if let Some(dst) = act.get_mut(filled..filled + want) {
                dst.copy_from_slice(head);
            }
            filled += want;
            input = rest;
            if filled < len {
                return Ok(HandshakeStep::Reading {
                    handshake: Handshake { stage, act, filled },
                    write,
                });
            }
            let whole = act.get(..len).unwrap_or_default();
            filled = 0;
            stage = match stage {
                Stage::Accepted(responder) => {
                    let (next, act_two) = responder.process_act_one(whole)?;
                    write.extend_from_slice(&act_two);
                    Stage::Responded(next)
                }
                Stage::Dialled(initiator, node_id) => {
                    let (act_three, transport) = initiator.process_act_two(whole)?;
                    write.extend_from_slice(&act_three);
                    return Ok(HandshakeStep::Established(Established {
                        node_id,
                        transport,
                        write,
                        leftover: input.to_vec(),
                    }));
                }
                Stage::Responded(responder) => {
                    let (node_id, transport) = responder.process_act_three(whole)?;
                    return Ok(HandshakeStep::Established(Established {
                        node_id,
                        transport,
                        write,
                        leftover: input.to_vec(),
                    }));
                }
            };
        }
    }
}

impl core::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handshake")
            .field("awaiting", &self.awaiting())
            .field("buffered", &self.filled)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for HandshakeStep {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HandshakeStep::Reading { handshake, write } => f
                .debug_struct("Reading")
                .field("handshake", handshake)
                .field("write", &write.len())
                .finish(),
            HandshakeStep::Established(established) => {
                f.debug_tuple("Established").field(established).finish()
            }
        }
    }
}

impl core::fmt::Debug for Established {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Established")
            .field("node_id", &self.node_id)
            .field("write", &self.write.len())
            .field("leftover", &self.leftover.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).unwrap()
    }

    fn public(secret: &SecretKey) -> PublicKey {
        PublicKey::from_secret_key(&crate::secp::ctx(), secret)
    }

    /// Feeds `bytes` to `handshake` in chunks of `chunk` bytes; returns what it wrote and its
    /// final step (`Reading` if the bytes ran out first).
    fn feed(
        mut handshake: Handshake,
        bytes: &[u8],
        chunk: usize,
    ) -> Result<(Vec<u8>, HandshakeStep), HandshakeError> {
        let mut written = Vec::new();
        let mut chunks = bytes.chunks(chunk.max(1)).peekable();
        loop {
            let piece = chunks.next().unwrap_or_default();
            match handshake.read(piece)? {
                HandshakeStep::Reading {
                    handshake: next,
                    write,
                } => {
                    written.extend_from_slice(&write);
                    if chunks.peek().is_none() {
                        return Ok((
                            written,
                            HandshakeStep::Reading {
                                handshake: next,
                                write: Vec::new(),
                            },
                        ));
                    }
                    handshake = next;
                }
                HandshakeStep::Established(mut e) => {
                    written.append(&mut e.write);
                    // What the chunks still held goes to the transport too.
                    for rest in chunks {
                        e.leftover.extend_from_slice(rest);
                    }
                    return Ok((written, HandshakeStep::Established(e)));
                }
            }
        }
    }

    fn established(step: HandshakeStep) -> Established {
        match step {
            HandshakeStep::Established(e) => e,
            HandshakeStep::Reading { handshake, .. } => panic!("still reading: {handshake:?}"),
        }
    }

    #[test]
    fn two_sides_agree_in_any_chunking_and_keep_what_follows_act_three() {
        for chunk in [1, 2, 7, 49, 50, 51, 65, 66, 67, 200] {
            let (initiator, act_one) = Handshake::outbound(&key(1), &public(&key(2)), &key(3));
            assert!(initiator.is_outbound());
            assert_eq!(initiator.awaiting(), Act::Two);
            let responder = Handshake::inbound(&key(2), &key(4));
            assert!(!responder.is_outbound());
            assert_eq!(responder.bytes_needed(), ACT_ONE_LEN);

            let (act_two, responder) = feed(responder, &act_one, chunk).unwrap();
            assert_eq!(act_two.len(), ACT_TWO_LEN);
            let HandshakeStep::Reading {
                handshake: responder,
                ..
            } = responder
            else {
                panic!("the responder needs act three");
            };
            assert_eq!(responder.awaiting(), Act::Three);
            assert_eq!(responder.bytes_needed(), ACT_THREE_LEN);

            let (act_three, initiator) = feed(initiator, &act_two, chunk).unwrap();
            assert_eq!(act_three.len(), ACT_THREE_LEN);
            let mut initiator = established(initiator);
            assert_eq!(initiator.node_id, public(&key(2)));
            assert!(initiator.leftover.is_empty());

            // The initiator's first message right behind act three, in the same stream.
            let mut stream = act_three.clone();
            stream.extend(initiator.transport.encrypt(b"init").unwrap());
            let (written, responder) = feed(responder, &stream, chunk).unwrap();
            assert!(written.is_empty());
            let mut responder = established(responder);
            assert_eq!(responder.node_id, public(&key(1)));
            assert_eq!(
                responder.transport.decrypt(&responder.leftover).unwrap(),
                vec![b"init".to_vec()]
            );
            let reply = responder.transport.encrypt(b"pong").unwrap();
            assert_eq!(
                initiator.transport.decrypt(&reply).unwrap(),
                vec![b"pong".to_vec()]
            );
        }
    }

    #[test]
    fn acts_one_and_three_in_one_read_write_act_two_first() {
        // Not what an honest initiator does (it cannot send act three before act two), but
        // the responder must still process the bytes in order.
        let (initiator, act_one) = Handshake::outbound(&key(1), &public(&key(2)), &key(3));
        let (act_two, _) = feed(Handshake::inbound(&key(2), &key(4)), &act_one, 50).unwrap();
        let (act_three, _) = feed(initiator, &act_two, 50).unwrap();
        let mut both = act_one.to_vec();
        both.extend_from_slice(&act_three);
        let HandshakeStep::Established(e) =
            Handshake::inbound(&key(2), &key(4)).read(&both).unwrap()
        else {
            panic!("one read held every act");
        };
        assert_eq!(e.write, act_two);
        assert_eq!(e.node_id, public(&key(1)));
    }

    #[test]
    fn an_empty_read_changes_nothing() {
        let step = Handshake::inbound(&key(2), &key(4)).read(&[]).unwrap();
        let HandshakeStep::Reading { handshake, write } = step else {
            panic!("no act yet");
        };
        assert!(write.is_empty());
        assert_eq!(handshake.bytes_needed(), ACT_ONE_LEN);
    }

    #[test]
    fn a_bad_act_fails_whatever_the_chunking() {
        let (_, mut act_one) = Handshake::outbound(&key(1), &public(&key(9)), &key(3));
        for chunk in [1, 13, 50] {
            assert_eq!(
                feed(Handshake::inbound(&key(2), &key(4)), &act_one, chunk).unwrap_err(),
                HandshakeError::BadMac {
                    act: Act::One,
                    field: "tag"
                }
            );
        }
        act_one[0] = 1;
        assert_eq!(
            Handshake::inbound(&key(2), &key(4))
                .read(&act_one)
                .unwrap_err(),
            HandshakeError::BadVersion {
                act: Act::One,
                version: 1
            }
        );
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let (h, _) = Handshake::outbound(&key(1), &public(&key(2)), &key(3));
        assert_eq!(
            format!("{h:?}"),
            "Handshake { awaiting: Two, buffered: 0, .. }"
        );
    }
}
