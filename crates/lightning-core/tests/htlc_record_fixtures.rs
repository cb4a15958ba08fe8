//! The records of format version 6: one per HTLC we offered (`RecordKind::OfferedHtlc`)
//! and one per HTLC we forwarded (`RecordKind::UpstreamHtlc`), which before lived in the
//! node record's `offered` and `upstream` maps. Committed fixtures that every later version
//! must read, and the node record's new reader version.

use lightning_core::node::PaymentId;
use lightning_core::payment::HtlcSource;
use lightning_core::persist::envelope::{self, RecordKind, FORMAT_VERSION, HEADER_LEN};
use lightning_core::persist::{
    NodeRecord, OfferedHtlcEntryRecord, OfferedHtlcRecord, PersistError, UpstreamHtlcEntryRecord,
    UpstreamHtlcRecord,
};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::types::ChannelId;

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v6")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).expect("fixture file")
}

fn peer() -> PublicKey {
    let secret = SecretKey::from_slice(&[0x42; 32]).expect("a valid key");
    PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret)
}

/// The offered HTLC of the fixture: a forward's downstream end.
fn offered() -> OfferedHtlcEntryRecord {
    OfferedHtlcEntryRecord {
        channel_id: ChannelId([0x0c; 32]),
        htlc_id: 17,
        offered: OfferedHtlcRecord {
            node_id: peer(),
            source: HtlcSource::Forwarded {
                channel_id: ChannelId([0x1c; 32]),
                htlc_id: 4,
            },
            amount_msat: 250_000,
            incoming_amount_msat: 251_000,
            cltv_expiry: 800_144,
        },
    }
}

/// A second offered HTLC: our own payment's first hop.
fn offered_local() -> OfferedHtlcEntryRecord {
    OfferedHtlcEntryRecord {
        channel_id: ChannelId([0x0d; 32]),
        htlc_id: 0,
        offered: OfferedHtlcRecord {
            node_id: peer(),
            source: HtlcSource::Local(PaymentId([0x6a; 32])),
            amount_msat: 10_000,
            incoming_amount_msat: 10_000,
            cltv_expiry: 800_040,
        },
    }
}

/// The forwarded HTLC of the fixture: the upstream end of [`offered`].
fn upstream() -> UpstreamHtlcEntryRecord {
    UpstreamHtlcEntryRecord {
        channel_id: ChannelId([0x1c; 32]),
        htlc_id: 4,
        upstream: UpstreamHtlcRecord {
            node_id: peer(),
            shared_secret: [0x5e; 32],
        },
    }
}

/// Writes the fixtures: run once with
/// `LNSHARD_WRITE_FIXTURES=1 cargo test -p lightning-core --test htlc_record_fixtures -- --ignored`.
/// The files are committed and must never change.
#[test]
#[ignore = "writes tests/fixtures/v6 HTLC fixtures: only when creating them"]
fn write_htlc_fixtures_when_asked() {
    if std::env::var("LNSHARD_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let dir = fixture_dir();
    for (name, bytes) in [
        ("offered_htlc_0.bin", offered().to_bytes()),
        ("offered_htlc_1.bin", offered_local().to_bytes()),
        ("upstream_htlc_0.bin", upstream().to_bytes()),
    ] {
        std::fs::write(dir.join(name), bytes.expect("encodes")).expect("writes");
    }
}

/// The HTLC records of format version 6 read to their values, and this build still writes
/// the same bytes.
#[test]
fn fixture_v6_htlc_records_still_read() {
    for (name, record) in [
        ("offered_htlc_0.bin", offered()),
        ("offered_htlc_1.bin", offered_local()),
    ] {
        let bytes = read(name);
        let env = envelope::decode(&bytes).expect("an envelope");
        assert_eq!(env.kind, RecordKind::OfferedHtlc);
        assert_eq!((env.version, env.min_reader_version), (6, 6));
        assert_eq!(OfferedHtlcEntryRecord::from_bytes(&bytes), Ok(record));
        if FORMAT_VERSION == 6 {
            assert_eq!(record.to_bytes().expect("encodes"), bytes, "{name}");
        }
        // Small: the envelope, the key fields and the HTLC (a node id, a source, amounts).
        assert!(
            bytes.len() <= HEADER_LEN + 150,
            "{name}: {} bytes",
            bytes.len()
        );
    }
    let bytes = read("upstream_htlc_0.bin");
    let env = envelope::decode(&bytes).expect("an envelope");
    assert_eq!(env.kind, RecordKind::UpstreamHtlc);
    assert_eq!((env.version, env.min_reader_version), (6, 6));
    assert_eq!(UpstreamHtlcEntryRecord::from_bytes(&bytes), Ok(upstream()));
    if FORMAT_VERSION == 6 {
        assert_eq!(upstream().to_bytes().expect("encodes"), bytes);
    }
    assert!(bytes.len() <= HEADER_LEN + 110, "{} bytes", bytes.len());
}

/// A record of either kind claiming a version older than the one that introduced it is
/// refused, never misread; so is a record of the other kind read as one.
#[test]
fn an_htlc_record_older_than_its_kind_or_of_another_kind_is_refused() {
    let bytes = read("offered_htlc_0.bin");
    let old = envelope::encode_with_versions(RecordKind::OfferedHtlc, 5, 5, &bytes[HEADER_LEN..])
        .expect("small");
    assert_eq!(
        OfferedHtlcEntryRecord::from_bytes(&old),
        Err(PersistError::KindNotInVersion {
            kind: RecordKind::OfferedHtlc,
            version: 5,
            introduced_in: 6,
        })
    );
    assert!(matches!(
        UpstreamHtlcEntryRecord::from_bytes(&bytes),
        Err(PersistError::WrongKind {
            expected: RecordKind::UpstreamHtlc,
            found: RecordKind::OfferedHtlc,
        })
    ));
}

/// A node record of format 6 holds no HTLC (they are records of their own), so a build of
/// format 5, which would take its empty maps for no HTLC in flight, must refuse it: it is
/// written readable from 6 on.
#[test]
fn a_node_record_is_read_from_format_6_on() {
    assert_eq!(RecordKind::Node.min_reader_version(), 6);
    let record = NodeRecord::from_bytes(&read_any_node_record()).expect("reads");
    let bytes = record.to_bytes().expect("encodes");
    let env = envelope::decode(&bytes).expect("an envelope");
    assert_eq!((env.version, env.min_reader_version), (FORMAT_VERSION, 6));
}

/// A node record of an earlier format (the format-5 fixture): still read.
fn read_any_node_record() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v5");
    std::fs::read(dir.join("node_completed_payments.bin")).expect("fixture file")
}
