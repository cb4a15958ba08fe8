//! An in-memory [`Store`] for tests and benchmarks: nothing survives the process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{check_name, check_op, Store, StoreError, WriteOp};

/// A [`Store`] in memory. Each batch counts as one sync, as the filesystem store's would.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    syncs: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn read(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_name(namespace)?;
        check_name(key)?;
        Ok(self
            .map
            .lock()
            .get(&(namespace.to_owned(), key.to_owned()))
            .cloned())
    }

    fn write_batch(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        for op in batch {
            check_op(op)?;
        }
        let mut map = self.map.lock();
        for op in batch {
            match op {
                WriteOp::Put {
                    namespace,
                    key,
                    value,
                } => {
                    map.insert((namespace.clone(), key.clone()), value.clone());
                }
                WriteOp::Remove { namespace, key } => {
                    map.remove(&(namespace.clone(), key.clone()));
                }
            }
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        check_name(namespace)?;
        let map = self.map.lock();
        Ok(map
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, k)| k.clone())
            .collect())
    }

    fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_behaves() {
        let store = MemoryStore::new();
        crate::store::tests::exercise(&store);
    }
}
