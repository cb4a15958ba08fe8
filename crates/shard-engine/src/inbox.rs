//! A shard's inbox and the bell that wakes the shard.
//!
//! A shard sleeps in one place: its poller ([`mio::Poll`]), which watches the sockets it owns
//! ([`crate::socket`]) and a [`mio::Waker`]. Whoever hands the shard work without a socket
//! (a message in its inbox, a committer's report, a readiness signal from an in-memory
//! socket) rings the shard's [`Bell`] after queuing it. Ringing costs one atomic load unless
//! the shard is asleep, and only then a syscall: a busy shard is never interrupted.
//!
//! The handshake between the two sides (Dekker's): the shard says it is going to sleep
//! ([`Bell::parking`]), then looks at its queues once more, and sleeps only if they are
//! all empty; a sender queues its work, then looks whether the shard sleeps and wakes it if
//! so. With a full fence on both sides, at least one of the two sees the other: the work is
//! never left queued behind a sleeping shard.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

use crate::msg::ShardMsg;

/// The token of a shard's [`mio::Waker`] in its poller (sockets use their connection's token,
/// which never equals it: see [`crate::socket`]).
pub(crate) const WAKE_TOKEN: mio::Token = mio::Token(usize::MAX);

/// Wakes one shard from its poller (see the [module documentation](self)).
#[derive(Debug)]
pub(crate) struct Bell {
    waker: mio::Waker,
    /// The shard is in (or about to enter) its poller.
    parked: AtomicBool,
}

impl Bell {
    /// A bell for the shard whose poller is `poll`.
    pub(crate) fn new(poll: &mio::Poll) -> std::io::Result<Arc<Bell>> {
        Ok(Arc::new(Bell {
            waker: mio::Waker::new(poll.registry(), WAKE_TOKEN)?,
            parked: AtomicBool::new(false),
        }))
    }

    /// Work was queued for the shard: wakes it if it sleeps.
    pub(crate) fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) {
            // A failed wake leaves the shard to its poll timeout; it cannot fail on Linux
            // short of the eventfd counter overflowing, which a pending wake already covers.
            let _ = self.waker.wake();
        }
    }

    /// The shard is about to sleep: after this, it must look at its queues once more before
    /// it does (see the [module documentation](self)).
    pub(crate) fn parking(&self) {
        self.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The shard is awake again.
    pub(crate) fn awake(&self) {
        self.parked.store(false, Ordering::Relaxed);
    }
}

/// The sending side of one shard's inbox: a bounded channel, and the shard's bell rung after
/// each message queued.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    tx: Sender<ShardMsg>,
    bell: Arc<Bell>,
}

impl Inbox {
    /// An inbox holding at most `capacity` messages, for the shard that sleeps on `bell`.
    pub(crate) fn bounded(capacity: usize, bell: Arc<Bell>) -> (Inbox, Receiver<ShardMsg>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        (Inbox { tx, bell }, rx)
    }

    /// Queues `msg` if there is room now.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_send(&self, msg: ShardMsg) -> Result<(), TrySendError<ShardMsg>> {
        self.tx.try_send(msg)?;
        self.bell.ring();
        Ok(())
    }

    /// Queues `msg`, waiting up to `timeout` for room.
    #[allow(clippy::result_large_err)]
    pub(crate) fn send_timeout(
        &self,
        msg: ShardMsg,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<ShardMsg>> {
        self.tx.send_timeout(msg, timeout)?;
        self.bell.ring();
        Ok(())
    }

    /// The shard's bell.
    pub(crate) fn bell(&self) -> &Arc<Bell> {
        &self.bell
    }
}
