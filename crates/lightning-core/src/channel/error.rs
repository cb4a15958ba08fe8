//! [`ChannelError`]: what went wrong and what the caller must do about it.

use core::fmt;

use crate::types::ChannelId;
use crate::wire::{ErrorMessage, Message, Warning};

/// A refused call or a protocol violation, in LDK's shape: each variant says what the caller
/// must do and carries the text for the BOLT 1 `warning` / `error` message.
///
/// Unless stated otherwise, the channel's state is unchanged when a method returns an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// Nothing to send: a local call was refused, or a harmless message is dropped. The
    /// channel is unchanged.
    Ignore(String),
    /// Send a `warning` with this text (and typically disconnect); the channel is unchanged
    /// and stays open.
    Warn(String),
    /// Fail the channel: send an `error` with this text and broadcast the latest holder
    /// commitment ([`super::Channel::force_close`]).
    Close(String),
    /// Our state is outdated (the peer proved it in `channel_reestablish`): send an `error`
    /// with this text asking the peer to close, and never broadcast our own commitment, which
    /// is revoked. The channel is closed.
    CloseNoBroadcast(String),
}

impl ChannelError {
    /// The text carried by the error.
    pub fn text(&self) -> &str {
        match self {
            ChannelError::Ignore(t)
            | ChannelError::Warn(t)
            | ChannelError::Close(t)
            | ChannelError::CloseNoBroadcast(t) => t,
        }
    }

    /// Whether the channel must be failed.
    pub fn is_close(&self) -> bool {
        matches!(
            self,
            ChannelError::Close(_) | ChannelError::CloseNoBroadcast(_)
        )
    }

    /// The message to send the peer for this error about `channel_id`: a `warning` for
    /// [`ChannelError::Warn`], an `error` for the closing variants, none for `Ignore`.
    pub fn to_message(&self, channel_id: ChannelId) -> Option<Message> {
        match self {
            ChannelError::Ignore(_) => None,
            ChannelError::Warn(t) => Some(Message::Warning(Warning::new(channel_id, t))),
            ChannelError::Close(t) | ChannelError::CloseNoBroadcast(t) => {
                Some(Message::Error(ErrorMessage::new(channel_id, t)))
            }
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Ignore(t) => write!(f, "ignored: {t}"),
            ChannelError::Warn(t) => write!(f, "warning: {t}"),
            ChannelError::Close(t) => write!(f, "channel failed: {t}"),
            ChannelError::CloseNoBroadcast(t) => {
                write!(f, "channel failed, state outdated, do not broadcast: {t}")
            }
        }
    }
}

impl std::error::Error for ChannelError {}

/// Shorthand constructors used throughout the channel.
pub(super) fn close(text: impl Into<String>) -> ChannelError {
    ChannelError::Close(text.into())
}

pub(super) fn ignore(text: impl Into<String>) -> ChannelError {
    ChannelError::Ignore(text.into())
}

pub(super) fn warn(text: impl Into<String>) -> ChannelError {
    ChannelError::Warn(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_variants() {
        let id = ChannelId([7; 32]);
        assert_eq!(ignore("x").to_message(id), None);
        assert!(matches!(
            warn("peer is behind").to_message(id),
            Some(Message::Warning(w)) if w.data == b"peer is behind"
        ));
        assert!(matches!(
            close("bad").to_message(id),
            Some(Message::Error(_))
        ));
        assert!(close("bad").is_close());
        assert!(!warn("w").is_close());
        assert_eq!(close("bad sig").to_string(), "channel failed: bad sig");
    }
}
