//! [`HtlcMap`]: a forward end per HTLC, keyed by `(channel id, htlc id)`, that remembers
//! which keys changed since the last commit.
//!
//! The node's offered HTLCs (downstream ends) and forwarded HTLCs (upstream ends) are
//! persisted one record per HTLC ([`super::Dirty::offered`], [`super::Dirty::upstream`]), not
//! inside the node record: a routing node holds one of each per payment in flight, and a
//! node record rewritten whole by every commit grew with all of them (4.5 KB per commit in
//! the main job, against a few hundred bytes for the HTLCs a commit actually changes). Every
//! change goes through this map, so no mutation can forget to report its key.

use std::collections::btree_map::{self, BTreeMap};
use std::collections::BTreeSet;

use crate::types::ChannelId;

/// An HTLC's key: its channel and its id there.
pub(crate) type HtlcKey = (ChannelId, u64);

/// A map of forward ends that records the keys inserted, replaced or removed since the
/// last [`HtlcMap::take_changed`] (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub(crate) struct HtlcMap<V> {
    map: BTreeMap<HtlcKey, V>,
    changed: BTreeSet<HtlcKey>,
}

impl<V> Default for HtlcMap<V> {
    fn default() -> Self {
        HtlcMap {
            map: BTreeMap::new(),
            changed: BTreeSet::new(),
        }
    }
}

impl<V> HtlcMap<V> {
    pub(crate) fn get(&self, key: &HtlcKey) -> Option<&V> {
        self.map.get(key)
    }

    pub(crate) fn contains_key(&self, key: &HtlcKey) -> bool {
        self.map.contains_key(key)
    }

    pub(crate) fn insert(&mut self, key: HtlcKey, value: V) -> Option<V> {
        self.changed.insert(key);
        self.map.insert(key, value)
    }

    pub(crate) fn remove(&mut self, key: &HtlcKey) -> Option<V> {
        let removed = self.map.remove(key);
        if removed.is_some() {
            self.changed.insert(*key);
        }
        removed
    }

    /// Keeps the entries `keep` accepts; the others are removed (and reported changed).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&HtlcKey, &mut V) -> bool) {
        let changed = &mut self.changed;
        self.map.retain(|key, value| {
            let kept = keep(key, value);
            if !kept {
                changed.insert(*key);
            }
            kept
        });
    }

    /// Reports `key` changed although the map did not change it: after a restore, so the
    /// first commit writes (or, when absent, deletes) its record.
    pub(crate) fn mark(&mut self, key: HtlcKey) {
        self.changed.insert(key);
    }

    pub(crate) fn iter(&self) -> btree_map::Iter<'_, HtlcKey, V> {
        self.map.iter()
    }

    pub(crate) fn keys(&self) -> btree_map::Keys<'_, HtlcKey, V> {
        self.map.keys()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The keys changed since the last call, and forgets them.
    pub(crate) fn take_changed(&mut self) -> BTreeSet<HtlcKey> {
        std::mem::take(&mut self.changed)
    }
}

impl<'a, V> IntoIterator for &'a HtlcMap<V> {
    type Item = (&'a HtlcKey, &'a V);
    type IntoIter = btree_map::Iter<'a, HtlcKey, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> HtlcKey {
        (ChannelId([n; 32]), u64::from(n))
    }

    #[test]
    fn every_change_is_reported_once_and_only_changes() {
        let mut m: HtlcMap<u32> = HtlcMap::default();
        m.insert(key(1), 10);
        m.insert(key(2), 20);
        m.insert(key(3), 30);
        assert_eq!(m.take_changed(), [key(1), key(2), key(3)].into());
        // Removing what is absent changes nothing.
        assert_eq!(m.remove(&key(9)), None);
        assert!(m.take_changed().is_empty());
        assert_eq!(m.remove(&key(1)), Some(10));
        m.retain(|k, _| *k != key(2));
        m.insert(key(3), 31);
        assert_eq!(m.take_changed(), [key(1), key(2), key(3)].into());
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![(&key(3), &31)]);
        // A mark reports a key the map does not hold (its record is to be deleted).
        m.mark(key(7));
        assert_eq!(m.take_changed(), [key(7)].into());
        assert!(m.take_changed().is_empty());
    }
}
