//! Work a node does while it has nothing else to do: derive ahead the keys its active
//! channels' next commitments need ([`crate::channel::Channel::derive_ahead`]).
//!
//! The channels a call changed are queued (bounded: the oldest entry goes when the queue is
//! full, and a channel queued twice costs one look); [`NodeCore::derive_ahead`] takes them
//! in order. A host calls it when it would otherwise wait: an engine shard whose inbox and
//! sockets are empty, a node whose commit is syncing. The work is the same work the next
//! messages would do (a channel's next commitment is always built at the number and point
//! derived here); done ahead, it leaves their critical path. Nothing here is state: calling
//! it or not changes no output, so the core stays deterministic given its inputs.

use std::collections::VecDeque;

use bitcoin::secp256k1::PublicKey;

use super::NodeCore;
use crate::types::ChannelId;

/// The most channels queued for [`NodeCore::derive_ahead`]; beyond, the oldest are dropped
/// (a dropped channel derives its keys when its next message comes, as without this).
pub(crate) const AHEAD_QUEUE_MAX: usize = 1024;

/// Channels changed since [`NodeCore::derive_ahead`] last looked at them, oldest first.
#[derive(Debug, Default)]
pub(crate) struct AheadQueue(VecDeque<(PublicKey, ChannelId)>);

impl AheadQueue {
    /// Queues `channel_id` of `node_id` (changed by a call), unless it is the last queued.
    pub(crate) fn push(&mut self, node_id: PublicKey, channel_id: ChannelId) {
        if self.0.back() == Some(&(node_id, channel_id)) {
            return;
        }
        if self.0.len() >= AHEAD_QUEUE_MAX {
            self.0.pop_front();
        }
        self.0.push_back((node_id, channel_id));
    }
}

impl NodeCore {
    /// Derives ahead for up to `max_channels` of the channels changed since the last call
    /// ([`crate::channel::Channel::derive_ahead`]: their next commitments' points and
    /// revocation and delayed keys, work the next messages would otherwise do on their
    /// critical path). For a host with nothing else to do: it changes no state and no
    /// output. The queue holds at most 1,024 channels (the oldest go first). Returns whether
    /// channels are left queued.
    pub fn derive_ahead(&mut self, max_channels: usize) -> bool {
        let mut looked = 0;
        while looked < max_channels {
            let Some((node_id, channel_id)) = self.ahead.0.pop_front() else {
                return false;
            };
            if let Some(entry) = self
                .peers
                .get_mut(&node_id)
                .and_then(|p| p.channel_by_id.get_mut(&channel_id))
            {
                entry.channel.derive_ahead();
            }
            looked += 1;
        }
        !self.ahead.0.is_empty()
    }

    /// Whether channels wait for [`NodeCore::derive_ahead`].
    pub fn has_work_ahead(&self) -> bool {
        !self.ahead.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    #[test]
    fn the_queue_is_bounded_and_skips_repeats() {
        let id = PublicKey::from_secret_key(
            &Secp256k1::new(),
            &SecretKey::from_slice(&[1; 32]).unwrap(),
        );
        let mut q = AheadQueue::default();
        q.push(id, ChannelId([0; 32]));
        q.push(id, ChannelId([0; 32]));
        assert_eq!(q.0.len(), 1);
        for i in 0..(AHEAD_QUEUE_MAX + 10) {
            let mut c = [0; 32];
            c[..8].copy_from_slice(&(i as u64).to_le_bytes());
            q.push(id, ChannelId(c));
        }
        assert_eq!(q.0.len(), AHEAD_QUEUE_MAX);
        let mut last = [0; 32];
        last[..8].copy_from_slice(&((AHEAD_QUEUE_MAX + 9) as u64).to_le_bytes());
        assert_eq!(q.0.back(), Some(&(id, ChannelId(last))));
    }
}
