//! BOLT 3 per-commitment secrets: generation from a seed (the 48-bit "shachain") and the
//! receiver's compact storage of the secrets its peer reveals.
//!
//! Secret `I` is derived from the seed by walking the bits of `I` from 47 down to 0: for each
//! set bit `B`, flip bit `B` of the value and hash it with SHA256. The first commitment uses
//! index [`FIRST_INDEX`] (`2^48 - 1`) and each next commitment the index below it, so a
//! secret whose index ends in `k` zero bits lets its receiver derive every secret with the
//! same upper bits: 49 stored secrets are enough for all `2^48` of them.

use core::fmt;

use bitcoin::hashes::{sha256, Hash};
use serde::{Deserialize, Serialize};

/// The largest shachain index (`2^48 - 1`): the index of the first commitment's secret.
pub const FIRST_INDEX: u64 = (1 << 48) - 1;

/// Why a per-commitment secret could not be generated, stored or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// An index was above the 48-bit range.
    IndexTooLarge {
        /// The index given.
        index: u64,
        /// The largest index, `2^48 - 1`.
        max: u64,
    },
    /// Secrets must arrive one by one in decreasing index order, starting at `2^48 - 1`.
    UnexpectedIndex {
        /// The index given.
        index: u64,
        /// The only index that can come next.
        expected: u64,
    },
    /// A secret arrived after the one with index 0, the last there can be.
    AfterLastIndex {
        /// The index given.
        index: u64,
    },
    /// The secret does not derive a secret received earlier: the two were not generated from
    /// the same seed.
    SecretMismatch {
        /// The index of the rejected secret.
        index: u64,
        /// The index of the earlier secret it fails to derive.
        earlier_index: u64,
    },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::IndexTooLarge { index, max } => {
                write!(
                    f,
                    "per-commitment secret index {index} is above the maximum {max}"
                )
            }
            SecretError::UnexpectedIndex { index, expected } => write!(
                f,
                "per-commitment secret index {index} received out of order: expected {expected}"
            ),
            SecretError::AfterLastIndex { index } => write!(
                f,
                "per-commitment secret index {index} received after the last index 0"
            ),
            SecretError::SecretMismatch {
                index,
                earlier_index,
            } => write!(
                f,
                "per-commitment secret {index} does not derive the secret at index {earlier_index}"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

fn check_index(index: u64) -> Result<(), SecretError> {
    if index > FIRST_INDEX {
        return Err(SecretError::IndexTooLarge {
            index,
            max: FIRST_INDEX,
        });
    }
    Ok(())
}

/// BOLT 3 `derive_secret(base, bits, I)`: walks bits `bits - 1` down to 0 of `index`.
fn derive_secret(base: &[u8; 32], bits: u32, index: u64) -> [u8; 32] {
    let mut value = *base;
    for bit in (0..bits).rev() {
        if index & (1u64 << bit) != 0 {
            // `bit < 48`, so `bit / 8 < 6`; `get_mut` keeps the indexing checked anyway.
            if let Some(byte) = value.get_mut((bit / 8) as usize) {
                *byte ^= 1 << (bit % 8);
            }
            value = sha256::Hash::hash(&value).to_byte_array();
        }
    }
    value
}

/// BOLT 3 `generate_from_seed(seed, I)`: the per-commitment secret with index `index`.
pub fn generate_from_seed(seed: &[u8; 32], index: u64) -> Result<[u8; 32], SecretError> {
    check_index(index)?;
    Ok(derive_secret(seed, 48, index))
}

/// Number of trailing zero bits of a 48-bit index (48 for index 0): its storage bucket.
fn bucket_of(index: u64) -> usize {
    if index == 0 {
        48
    } else {
        index.trailing_zeros() as usize
    }
}

/// The receiver's compact storage of the per-commitment secrets revealed by its peer
/// (BOLT 3, "Efficient Per-commitment Secret Storage"): at most 49 `(index, secret)` pairs.
///
/// Serialized (serde) as the last index and the stored `(index, secret)` pairs in bucket
/// order; deserializing puts each pair back in the bucket its index names and refuses an
/// index above `2^48 - 1` or two pairs for one bucket.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "StoredSecrets", try_from = "StoredSecrets")]
pub struct CounterpartySecrets {
    known: [Option<(u64, [u8; 32])>; 49],
    /// The index of the last secret inserted, if any.
    last_index: Option<u64>,
}

impl Default for CounterpartySecrets {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CounterpartySecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterpartySecrets")
            .field("last_index", &self.last_index)
            .finish_non_exhaustive()
    }
}

impl CounterpartySecrets {
    /// Empty storage.
    pub fn new() -> Self {
        CounterpartySecrets {
            known: [None; 49],
            last_index: None,
        }
    }

    /// The index of the last secret inserted, `None` before the first.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }

    /// The index the next secret must have.
    pub fn next_index(&self) -> Option<u64> {
        match self.last_index {
            None => Some(FIRST_INDEX),
            Some(last) => last.checked_sub(1),
        }
    }

    /// BOLT 3 `insert_secret(secret, I)`: stores the secret with index `index` after checking
    /// that it comes next in order and that it derives every secret stored before it.
    ///
    /// On error the storage is left unchanged.
    pub fn insert(&mut self, index: u64, secret: [u8; 32]) -> Result<(), SecretError> {
        check_index(index)?;
        match self.next_index() {
            Some(expected) if expected == index => {}
            Some(expected) => return Err(SecretError::UnexpectedIndex { index, expected }),
            None => return Err(SecretError::AfterLastIndex { index }),
        }
        let bucket = bucket_of(index);
        for (earlier_index, earlier_secret) in self.known.iter().take(bucket).flatten() {
            if derive_secret(&secret, bucket as u32, *earlier_index) != *earlier_secret {
                return Err(SecretError::SecretMismatch {
                    index,
                    earlier_index: *earlier_index,
                });
            }
        }
        if let Some(slot) = self.known.get_mut(bucket) {
            *slot = Some((index, secret));
        }
        self.last_index = Some(index);
        Ok(())
    }

    /// BOLT 3 `derive_old_secret(I)`: the secret with index `index`, if it has been received.
    pub fn get(&self, index: u64) -> Option<[u8; 32]> {
        if index > FIRST_INDEX {
            return None;
        }
        self.known.iter().enumerate().find_map(|(bucket, entry)| {
            let (known_index, secret) = entry.as_ref()?;
            let mask = !((1u64 << bucket) - 1);
            (index & mask == *known_index).then(|| derive_secret(secret, bucket as u32, index))
        })
    }
}

/// The stored form of [`CounterpartySecrets`]: only the buckets in use.
#[derive(Serialize, Deserialize)]
struct StoredSecrets {
    last_index: Option<u64>,
    known: Vec<(u64, [u8; 32])>,
}

impl From<CounterpartySecrets> for StoredSecrets {
    fn from(s: CounterpartySecrets) -> Self {
        StoredSecrets {
            last_index: s.last_index,
            known: s.known.iter().flatten().copied().collect(),
        }
    }
}

/// Why stored [`CounterpartySecrets`] cannot be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
enum StoredSecretsError {
    /// `last_index` is out of range.
    LastIndex(SecretError),
    /// A stored secret's index is out of range.
    SecretIndex(SecretError),
    /// Two stored secrets fall in the same bucket.
    DoubledBucket {
        /// The bucket.
        bucket: usize,
    },
}

impl fmt::Display for StoredSecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredSecretsError::LastIndex(e) => write!(f, "last_index: {e}"),
            StoredSecretsError::SecretIndex(e) => write!(f, "stored secret: {e}"),
            StoredSecretsError::DoubledBucket { bucket } => {
                write!(f, "two stored secrets for bucket {bucket}")
            }
        }
    }
}

impl std::error::Error for StoredSecretsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoredSecretsError::LastIndex(e) | StoredSecretsError::SecretIndex(e) => Some(e),
            StoredSecretsError::DoubledBucket { .. } => None,
        }
    }
}

impl TryFrom<StoredSecrets> for CounterpartySecrets {
    type Error = StoredSecretsError;

    fn try_from(stored: StoredSecrets) -> Result<Self, StoredSecretsError> {
        let mut out = CounterpartySecrets::new();
        if let Some(last) = stored.last_index {
            check_index(last).map_err(StoredSecretsError::LastIndex)?;
        }
        out.last_index = stored.last_index;
        for (index, secret) in stored.known {
            check_index(index).map_err(StoredSecretsError::SecretIndex)?;
            let bucket = bucket_of(index);
            match out.known.get_mut(bucket) {
                Some(slot @ None) => *slot = Some((index, secret)),
                _ => return Err(StoredSecretsError::DoubledBucket { bucket }),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_secrets_round_trip_and_a_doubled_bucket_is_refused() {
        let seed = [0x5a; 32];
        let mut secrets = CounterpartySecrets::new();
        for i in 0..20 {
            let index = FIRST_INDEX - i;
            let secret = generate_from_seed(&seed, index).expect("48-bit index");
            secrets.insert(index, secret).expect("in order");
        }
        let bytes = postcard::to_allocvec(&secrets).expect("serializes");
        let read: CounterpartySecrets = postcard::from_bytes(&bytes).expect("deserializes");
        assert_eq!(read, secrets);
        assert_eq!(read.get(FIRST_INDEX - 3), secrets.get(FIRST_INDEX - 3));
        // Two secrets whose indexes share a bucket (both odd: bucket 0).
        let doubled = StoredSecrets {
            last_index: Some(FIRST_INDEX - 2),
            known: vec![(FIRST_INDEX, [1; 32]), (FIRST_INDEX - 2, [2; 32])],
        };
        let bytes = postcard::to_allocvec(&doubled).expect("serializes");
        assert!(matches!(
            postcard::from_bytes::<CounterpartySecrets>(&bytes),
            Err(postcard::Error::SerdeDeCustom)
        ));
        let too_large = StoredSecrets {
            last_index: Some(1 << 48),
            known: vec![],
        };
        let bytes = postcard::to_allocvec(&too_large).expect("serializes");
        assert!(matches!(
            postcard::from_bytes::<CounterpartySecrets>(&bytes),
            Err(postcard::Error::SerdeDeCustom)
        ));
        // The reasons, typed, with the texts a self-describing format would carry.
        let doubled = StoredSecrets {
            last_index: Some(FIRST_INDEX - 2),
            known: vec![(FIRST_INDEX, [1; 32]), (FIRST_INDEX - 2, [2; 32])],
        };
        let err = CounterpartySecrets::try_from(doubled).expect_err("doubled bucket");
        assert_eq!(err, StoredSecretsError::DoubledBucket { bucket: 0 });
        assert_eq!(err.to_string(), "two stored secrets for bucket 0");
        let too_large = StoredSecrets {
            last_index: Some(1 << 48),
            known: vec![],
        };
        let err = CounterpartySecrets::try_from(too_large).expect_err("index too large");
        assert!(err.to_string().starts_with("last_index: "), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn flip_matches_the_spec_examples() {
        // "flip(0) in e3b0..." is "e2b0...", and "flip(10) in e3b0..." is "e3b4...": the spec
        // example describes the flip alone, so check it on a one-step walk from the seed.
        let mut seed = [0u8; 32];
        seed[0] = 0xe3;
        seed[1] = 0xb0;
        let mut flipped = seed;
        flipped[0] = 0xe2;
        assert_eq!(
            derive_secret(&seed, 1, 1),
            sha256::Hash::hash(&flipped).to_byte_array()
        );
        let mut flipped = seed;
        flipped[1] = 0xb4;
        assert_eq!(
            derive_secret(&seed, 11, 1 << 10),
            sha256::Hash::hash(&flipped).to_byte_array()
        );
    }

    #[test]
    fn index_above_48_bits_is_rejected() {
        assert_eq!(
            generate_from_seed(&[0; 32], 1 << 48),
            Err(SecretError::IndexTooLarge {
                index: 1 << 48,
                max: FIRST_INDEX
            })
        );
        let mut store = CounterpartySecrets::new();
        assert_eq!(
            store.insert(u64::MAX, [0; 32]),
            Err(SecretError::IndexTooLarge {
                index: u64::MAX,
                max: FIRST_INDEX
            })
        );
        assert_eq!(store.get(1 << 48), None);
    }

    #[test]
    fn out_of_order_insert_is_rejected() {
        let seed = [7u8; 32];
        let mut store = CounterpartySecrets::new();
        let first = generate_from_seed(&seed, FIRST_INDEX).expect("in range");
        assert_eq!(
            store.insert(FIRST_INDEX - 1, first),
            Err(SecretError::UnexpectedIndex {
                index: FIRST_INDEX - 1,
                expected: FIRST_INDEX
            })
        );
        store.insert(FIRST_INDEX, first).expect("first secret");
        // Repeating or skipping an index is refused.
        assert_eq!(
            store.insert(FIRST_INDEX, first),
            Err(SecretError::UnexpectedIndex {
                index: FIRST_INDEX,
                expected: FIRST_INDEX - 1
            })
        );
        let third = generate_from_seed(&seed, FIRST_INDEX - 2).expect("in range");
        assert_eq!(
            store.insert(FIRST_INDEX - 2, third),
            Err(SecretError::UnexpectedIndex {
                index: FIRST_INDEX - 2,
                expected: FIRST_INDEX - 1
            })
        );
    }

    #[test]
    fn rejected_secret_leaves_storage_unchanged() {
        let seed = [9u8; 32];
        let mut store = CounterpartySecrets::new();
        store
            .insert(
                FIRST_INDEX,
                generate_from_seed(&seed, FIRST_INDEX).expect("in range"),
            )
            .expect("first");
        let before = store.clone();
        let wrong = generate_from_seed(&[8u8; 32], FIRST_INDEX - 1).expect("in range");
        assert_eq!(
            store.insert(FIRST_INDEX - 1, wrong),
            Err(SecretError::SecretMismatch {
                index: FIRST_INDEX - 1,
                earlier_index: FIRST_INDEX
            })
        );
        assert!(store == before);
    }

    #[test]
    fn every_received_secret_can_be_looked_up() {
        let seed = [0x5a; 32];
        let mut store = CounterpartySecrets::new();
        let count = 300u64;
        for step in 0..count {
            let index = FIRST_INDEX - step;
            let secret = generate_from_seed(&seed, index).expect("in range");
            store.insert(index, secret).expect("secrets from one seed");
            assert_eq!(store.get(index), Some(secret));
        }
        for step in 0..count {
            let index = FIRST_INDEX - step;
            assert_eq!(store.get(index), generate_from_seed(&seed, index).ok());
        }
        assert_eq!(store.get(FIRST_INDEX - count), None, "not received yet");
        assert_eq!(store.last_index(), Some(FIRST_INDEX - count + 1));
    }

    #[test]
    fn at_most_49_entries_cover_the_range_ends() {
        // Index 0 lives in bucket 48; nothing can follow it.
        assert_eq!(bucket_of(0), 48);
        assert_eq!(bucket_of(FIRST_INDEX), 0);
        assert_eq!(bucket_of(1 << 47), 47);
        let mut store = CounterpartySecrets::new();
        store.last_index = Some(0);
        assert_eq!(store.next_index(), None);
        assert_eq!(
            store.insert(0, [0; 32]),
            Err(SecretError::AfterLastIndex { index: 0 })
        );
    }

    proptest::proptest! {
        /// A secret from another seed is always caught: at the latest when the next index
        /// with more trailing zeros arrives (within the first 128 indices, bucket 7 at step
        /// 127 covers any corruption in the first 64 steps).
        #[test]
        fn corrupted_secret_is_caught(seed: [u8; 32], other: [u8; 32], bad_step in 0u64..64) {
            proptest::prop_assume!(seed != other);
            let mut store = CounterpartySecrets::new();
            let mut failed_at = None;
            for step in 0..128u64 {
                let index = FIRST_INDEX - step;
                let source = if step == bad_step { &other } else { &seed };
                let secret = generate_from_seed(source, index).expect("in range");
                match store.insert(index, secret) {
                    Ok(()) => {}
                    Err(e) => {
                        let is_mismatch =
                            matches!(e, SecretError::SecretMismatch { index: i, .. } if i == index);
                        proptest::prop_assert!(is_mismatch, "unexpected error {:?}", e);
                        failed_at = Some(step);
                        break;
                    }
                }
            }
            let failed_at = failed_at.expect("the corruption is detected");
            proptest::prop_assert!(failed_at >= bad_step);
        }
    }
}
