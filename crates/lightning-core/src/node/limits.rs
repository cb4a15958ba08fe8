//! What a peer can make the node hold, say or show: peer-supplied text cut to a few hundred
//! bytes before it reaches any event or record, and per-peer budgets (refilled each window of
//! the host's clock, [`NodeCore::timer_tick`](super::NodeCore::timer_tick)) for the answers
//! and texts a peer can draw from us.
//!
//! The budgets are sans-IO: the only clock is the `now_ms` of `timer_tick`. A peer's budget
//! is full when it is first met and is refilled by the first tick at least
//! [`PeerRateLimits::window_ms`] after the start of its current window; without ticks it is
//! never refilled.

use crate::onion::FailureMessage;

/// The most bytes of a peer-supplied text (an `error`'s or `warning`'s `data`) the node keeps:
/// the rest is dropped and the kept part ends with `…(N bytes)`, `N` the text's full length.
pub const MAX_PEER_TEXT_BYTES: usize = 256;

/// The longest [`peer_text`] returns, in bytes: each kept byte escaped to at most 4
/// characters, plus the truncation mark.
pub const MAX_PEER_TEXT_LEN: usize = 4 * MAX_PEER_TEXT_BYTES + 32;

/// The most bytes of a variable-length field of a BOLT 4 failure (a `channel_update`, an
/// unknown failure's data) kept in an [`Event::PaymentFailed`](super::Event::PaymentFailed):
/// a longer `channel_update` is dropped (BOLT 4 lets it be empty), longer unknown data is cut.
/// A `channel_update` is about 140 bytes.
pub const MAX_FAILURE_DATA_BYTES: usize = 512;

/// Per-peer budgets, refilled every [`PeerRateLimits::window_ms`] of host time. Not persisted.
///
/// BOLT 1 lets a node ignore `ping`s that come faster than it wants: a `ping` beyond the pong
/// budget gets no `pong` (the peer's own liveness check may then drop the connection, which is
/// what a flooding peer deserves). An honest peer pings every 30 s or more, far below the
/// budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerRateLimits {
    /// The window, in milliseconds of host time, over which each budget applies.
    pub window_ms: u64,
    /// `pong`s sent to one peer per window; `ping`s beyond it are ignored.
    pub max_pongs_per_window: u32,
    /// `pong` padding bytes (`num_pong_bytes`) sent to one peer per window; a `ping` asking for
    /// more than what is left is ignored.
    pub max_pong_bytes_per_window: u32,
    /// Peer texts (an `error`'s `data`) shown in events per peer per window; beyond it an event
    /// carries only the text's length.
    pub max_peer_texts_per_window: u32,
}

impl Default for PeerRateLimits {
    fn default() -> Self {
        PeerRateLimits {
            window_ms: 10_000,
            max_pongs_per_window: 4,
            max_pong_bytes_per_window: 65_536,
            max_peer_texts_per_window: 8,
        }
    }
}

/// One peer's use of its [`PeerRateLimits`] in the current window. Not persisted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerBudget {
    /// When (host milliseconds) the current window started; `None` before the first tick.
    pub window_start_ms: Option<u64>,
    /// `pong`s sent in this window.
    pub pongs: u32,
    /// `pong` padding bytes sent in this window.
    pub pong_bytes: u32,
    /// Peer texts shown in this window.
    pub texts: u32,
}

impl PeerBudget {
    /// A tick at `now_ms`: starts the first window, or a new one when the current one is over.
    pub fn tick(&mut self, now_ms: u64, limits: &PeerRateLimits) {
        match self.window_start_ms {
            Some(start) if now_ms.saturating_sub(start) < limits.window_ms => {}
            _ => {
                *self = PeerBudget {
                    window_start_ms: Some(now_ms),
                    ..PeerBudget::default()
                };
            }
        }
    }

    /// Takes a pong of `num_pong_bytes` from the budget; false (nothing taken) when it does not
    /// fit.
    pub fn take_pong(&mut self, num_pong_bytes: u16, limits: &PeerRateLimits) -> bool {
        let bytes = self.pong_bytes.saturating_add(u32::from(num_pong_bytes));
        if self.pongs >= limits.max_pongs_per_window || bytes > limits.max_pong_bytes_per_window {
            return false;
        }
        self.pongs += 1;
        self.pong_bytes = bytes;
        true
    }

    /// Takes one peer text from the budget; false when the window's texts are spent.
    pub fn take_text(&mut self, limits: &PeerRateLimits) -> bool {
        if self.texts >= limits.max_peer_texts_per_window {
            return false;
        }
        self.texts += 1;
        true
    }
}

/// A peer's text made safe to keep and print: at most [`MAX_PEER_TEXT_BYTES`] of it,
/// printable ASCII kept and anything else escaped (`\xff`, `\n`, `\\`), then `…(N bytes)` when
/// it was cut. Never longer than [`MAX_PEER_TEXT_LEN`].
pub fn peer_text(data: &[u8]) -> String {
    let kept = data.get(..MAX_PEER_TEXT_BYTES).unwrap_or(data);
    let mut text: String = kept
        .iter()
        .flat_map(|b| core::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if kept.len() < data.len() {
        text.push_str(&format!("…({} bytes)", data.len()));
    }
    text
}

/// Stands in for a peer text beyond the peer's budget: only its length.
pub(super) fn peer_text_suppressed(data: &[u8]) -> String {
    format!(
        "…({} bytes, not shown: too many texts from this peer)",
        data.len()
    )
}

/// `failure` with its variable-length fields bounded by [`MAX_FAILURE_DATA_BYTES`], to keep
/// in an event.
pub fn bounded_failure(failure: FailureMessage) -> FailureMessage {
    let bound = |update: Vec<u8>| {
        if update.len() > MAX_FAILURE_DATA_BYTES {
            Vec::new()
        } else {
            update
        }
    };
    match failure {
        FailureMessage::TemporaryChannelFailure { channel_update } => {
            FailureMessage::TemporaryChannelFailure {
                channel_update: bound(channel_update),
            }
        }
        FailureMessage::AmountBelowMinimum {
            htlc_msat,
            channel_update,
        } => FailureMessage::AmountBelowMinimum {
            htlc_msat,
            channel_update: bound(channel_update),
        },
        FailureMessage::FeeInsufficient {
            htlc_msat,
            channel_update,
        } => FailureMessage::FeeInsufficient {
            htlc_msat,
            channel_update: bound(channel_update),
        },
        FailureMessage::IncorrectCltvExpiry {
            cltv_expiry,
            channel_update,
        } => FailureMessage::IncorrectCltvExpiry {
            cltv_expiry,
            channel_update: bound(channel_update),
        },
        FailureMessage::ExpiryTooSoon { channel_update } => FailureMessage::ExpiryTooSoon {
            channel_update: bound(channel_update),
        },
        FailureMessage::ChannelDisabled {
            disabled_flags,
            channel_update,
        } => FailureMessage::ChannelDisabled {
            disabled_flags,
            channel_update: bound(channel_update),
        },
        FailureMessage::Unknown { code, mut data } => {
            data.truncate(MAX_FAILURE_DATA_BYTES);
            FailureMessage::Unknown { code, data }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_bounded_and_marks_the_cut() {
        assert_eq!(peer_text(b"plain text"), "plain text");
        assert_eq!(peer_text(b"a\nb\xff"), "a\\nb\\xff");
        let huge = vec![0xff; 65_000];
        let text = peer_text(&huge);
        assert!(text.len() <= MAX_PEER_TEXT_LEN, "{}", text.len());
        assert!(text.ends_with("…(65000 bytes)"), "{text}");
        let exact = vec![b'a'; MAX_PEER_TEXT_BYTES];
        assert_eq!(peer_text(&exact), "a".repeat(MAX_PEER_TEXT_BYTES));
    }

    #[test]
    fn budgets_refill_only_after_a_window() {
        let limits = PeerRateLimits::default();
        let mut b = PeerBudget::default();
        b.tick(1_000, &limits);
        for _ in 0..limits.max_pongs_per_window {
            assert!(b.take_pong(0, &limits));
        }
        assert!(!b.take_pong(0, &limits));
        b.tick(1_000 + limits.window_ms - 1, &limits);
        assert!(!b.take_pong(0, &limits));
        b.tick(1_000 + limits.window_ms, &limits);
        assert!(b.take_pong(65_531, &limits));
        assert!(!b.take_pong(65_531, &limits), "bytes spent");
        assert!(b.take_pong(5, &limits), "a small one still fits");
    }

    #[test]
    fn oversized_failure_fields_are_dropped_or_cut() {
        let f = bounded_failure(FailureMessage::TemporaryChannelFailure {
            channel_update: vec![1; MAX_FAILURE_DATA_BYTES + 1],
        });
        assert_eq!(
            f,
            FailureMessage::TemporaryChannelFailure {
                channel_update: vec![]
            }
        );
        let small = FailureMessage::TemporaryChannelFailure {
            channel_update: vec![1; 140],
        };
        assert_eq!(bounded_failure(small.clone()), small);
    }
}
