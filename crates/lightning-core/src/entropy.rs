//! Injected randomness.
//!
//! lightning-core never reads a global random number generator: whatever needs fresh
//! randomness (ephemeral keys, onion session keys, padding) takes an [`EntropySource`], so a
//! test or a replay can supply a deterministic one.

use bitcoin::hashes::{sha256, Hash, HashEngine};

/// A source of random bytes, supplied by the host.
pub trait EntropySource {
    /// Returns 32 fresh random bytes.
    fn random_bytes(&mut self) -> [u8; 32];
}

/// A deterministic [`EntropySource`]: SHA256(seed || counter), for tests and replays.
///
/// Not for production keys unless the seed itself is secret and never reused.
#[derive(Debug, Clone)]
pub struct SeededEntropy {
    seed: [u8; 32],
    counter: u64,
}

impl SeededEntropy {
    /// Creates a source that expands `seed` deterministically.
    pub fn new(seed: [u8; 32]) -> Self {
        SeededEntropy { seed, counter: 0 }
    }
}

impl EntropySource for SeededEntropy {
    fn random_bytes(&mut self) -> [u8; 32] {
        let mut engine = sha256::Hash::engine();
        engine.input(&self.seed);
        engine.input(&self.counter.to_be_bytes());
        self.counter = self.counter.wrapping_add(1);
        sha256::Hash::from_engine(engine).to_byte_array()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_entropy_is_deterministic_and_advances() {
        let mut a = SeededEntropy::new([7; 32]);
        let mut b = SeededEntropy::new([7; 32]);
        let first = a.random_bytes();
        assert_eq!(first, b.random_bytes());
        assert_ne!(first, a.random_bytes());
    }
}
