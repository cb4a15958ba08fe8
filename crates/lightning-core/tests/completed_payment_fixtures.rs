//! The completed payment record (`RecordKind::CompletedPayment`, format version 5) and the
//! node record of the first format-5 build, which held the completed ids in its last field:
//! committed fixtures that every later version must read, and what a node restored from
//! the old layout writes.

use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::BlockHash;
use lightning_core::node::{NodeConfig, NodeCore, PaymentId};
use lightning_core::persist::envelope::{self, RecordKind, HEADER_LEN};
use lightning_core::persist::{CompletedPaymentRecord, NodeRecord, PersistError};
use lightning_core::secp256k1::SecretKey;

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v5")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).expect("fixture file")
}

fn secret() -> SecretKey {
    SecretKey::from_slice(&[5; 32]).expect("a valid key")
}

fn config() -> NodeConfig {
    NodeConfig {
        payment_id_retention_blocks: 144,
        ..NodeConfig::default()
    }
}

/// The completed payment record of the fixture.
fn completed_record() -> CompletedPaymentRecord {
    CompletedPaymentRecord {
        payment_id: PaymentId([0x5c; 32]),
        completed_height: 700_123,
    }
}

/// The completed ids of the fixture node record (best height 700_200).
fn legacy_ids() -> Vec<(PaymentId, u32)> {
    vec![
        (PaymentId([0x11; 32]), 700_100),
        (PaymentId([0x22; 32]), 700_190),
    ]
}

fn legacy_node_record() -> NodeRecord {
    let core = NodeCore::new(
        secret(),
        [5; 32],
        config(),
        700_200,
        BlockHash::from_byte_array([7; 32]),
    );
    let mut record = core.node_record();
    record.completed_payments = legacy_ids().into_iter().collect();
    record
}

/// Writes the fixtures: run once with
/// `LNSHARD_WRITE_FIXTURES=1 cargo test --test completed_payment_fixtures -- --ignored`.
/// The files are committed and must never change.
#[test]
#[ignore = "writes tests/fixtures/v5 completed-payment fixtures: only when creating them"]
fn write_completed_payment_fixtures_when_asked() {
    if std::env::var("LNSHARD_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let dir = fixture_dir();
    std::fs::write(
        dir.join("completed_payment_0.bin"),
        completed_record().to_bytes().expect("encodes"),
    )
    .expect("writes");
    // What the first format-5 build wrote: the ids in the node record's last field.
    std::fs::write(
        dir.join("node_completed_payments.bin"),
        legacy_node_record().to_bytes().expect("encodes"),
    )
    .expect("writes");
}

/// The completed payment record of format version 5 reads to its values, and this build
/// still writes the same bytes.
#[test]
fn fixture_v5_completed_payment_record_still_reads() {
    let bytes = read("completed_payment_0.bin");
    let env = envelope::decode(&bytes).expect("an envelope");
    assert_eq!(env.kind, RecordKind::CompletedPayment);
    assert_eq!((env.version, env.min_reader_version), (5, 5));
    assert_eq!(
        CompletedPaymentRecord::from_bytes(&bytes),
        Ok(completed_record())
    );
    if envelope::FORMAT_VERSION == 5 {
        assert_eq!(completed_record().to_bytes().expect("encodes"), bytes);
    }
    // Small: the envelope, the id and the height.
    assert!(bytes.len() <= HEADER_LEN + 32 + 5, "{} bytes", bytes.len());
}

/// A record of the kind claiming an older version than the one that introduced it is
/// refused, never misread; so is a record of another kind read as one.
#[test]
fn a_completed_payment_record_older_than_its_kind_is_refused() {
    let bytes = read("completed_payment_0.bin");
    let payload = &bytes[HEADER_LEN..];
    let old =
        envelope::encode_with_versions(RecordKind::CompletedPayment, 4, 4, payload).expect("small");
    assert_eq!(
        CompletedPaymentRecord::from_bytes(&old),
        Err(PersistError::KindNotInVersion {
            kind: RecordKind::CompletedPayment,
            version: 4,
            introduced_in: 5,
        })
    );
    assert!(matches!(
        CompletedPaymentRecord::from_bytes(&read("node_completed_payments.bin")),
        Err(PersistError::WrongKind {
            expected: RecordKind::CompletedPayment,
            found: RecordKind::Node,
        })
    ));
}

/// A node record of the first format-5 build, with the completed ids in its last field,
/// still reads; a node restored from it refuses the ids still in their window, and its
/// first commit writes them as records of their own and the node record without them.
#[test]
fn fixture_v5_node_record_with_completed_ids_still_reads() {
    let record = NodeRecord::from_bytes(&read("node_completed_payments.bin")).expect("reads");
    assert_eq!(
        record.completed_payments,
        legacy_ids().into_iter().collect(),
        "the ids of the field"
    );
    let mut core = NodeCore::restore(secret(), [5; 32], config(), record, Vec::new());
    assert_eq!(
        core.completed_payments(),
        &legacy_ids().into_iter().collect(),
        "both still in their window at 700_200"
    );
    let dirty = core.take_dirty();
    assert!(dirty.node, "the node record is rewritten");
    assert_eq!(
        dirty.completed_payments,
        legacy_ids()
            .into_iter()
            .map(|(payment_id, completed_height)| CompletedPaymentRecord {
                payment_id,
                completed_height,
            })
            .collect(),
        "as records of their own"
    );
    assert!(core.node_record().completed_payments.is_empty());
    // The next restore takes them from their records.
    let mut again = NodeCore::restore(secret(), [5; 32], config(), core.node_record(), Vec::new());
    again.restore_completed_payments(dirty.completed_payments.iter().copied());
    assert_eq!(again.completed_payments(), core.completed_payments());
    let dirty = again.take_dirty();
    assert!(dirty.completed_payments.is_empty() && dirty.forgotten_payments.is_empty());
}
