//! [`ByteBudget`]: the bound, in bytes, of a queue between a shard and its host.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many bytes a queue holds, against its limit. The queue's writer takes bytes before
/// it queues them and its reader gives them back as it drains them, so the queue never holds
/// more than `limit` bytes, except that an empty queue takes any one item (a message larger
/// than the limit is not refused forever).
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    limit: usize,
}

impl ByteBudget {
    /// An empty budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ByteBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Takes `len` bytes: false (and nothing taken) when they would take the queue past its
    /// limit and it is not empty.
    pub fn try_take(&self, len: usize) -> bool {
        let before = self.used.fetch_add(len, Ordering::SeqCst);
        if before > 0 && before.saturating_add(len) > self.limit {
            self.used.fetch_sub(len, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Gives back `len` bytes the reader drained (or the writer could not queue after all).
    pub fn give_back(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::SeqCst);
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_limit_but_an_empty_queue_takes_one_item() {
        let b = ByteBudget::new(100);
        assert!(b.try_take(60));
        assert!(b.try_take(40));
        assert!(!b.try_take(1), "full");
        assert_eq!(b.used(), 100);
        b.give_back(100);
        assert!(b.try_take(1_000), "an empty queue takes one oversize item");
        assert!(!b.try_take(1));
        b.give_back(1_000);
        assert_eq!(b.used(), 0);
    }
}
