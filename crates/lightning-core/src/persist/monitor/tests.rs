//! The monitor's stored form against real monitors: channels with HTLCs both ways,
//! revocations, preimages and a confirmed commitment, restored from snapshots and updates.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::SecretKey;
use proptest::prelude::*;

use super::*;
use crate::chain::{MonitorError, MonitorOutput};
use crate::channel::test_utils::{ready_pair_of, ready_pair_with_keys, script};
use crate::channel::Channel;
use crate::persist::envelope::{self, HEADER_LEN};
use crate::secrets::FIRST_INDEX;
use crate::types::PaymentHash;
use crate::wire::ONION_PACKET_LEN;

const SEED_A: [u8; 32] = [0x5a; 32];
const SEED_B: [u8; 32] = [0x5b; 32];
const KEY_INDEX: u64 = 7;

fn node_id(tag: u8) -> PublicKey {
    PublicKey::from_secret_key(
        &crate::secp::ctx(),
        &SecretKey::from_slice(&[tag; 32]).expect("valid"),
    )
}

fn preimage(tag: u8) -> PaymentPreimage {
    PaymentPreimage([tag; 32])
}

/// As `test_utils::ready_pair_funded`, with each side's keys derived as a node derives them
/// (`derive_peer_channel_keys` from its seed, the peer's node id and a key index).
fn derived_pair(anchors: bool) -> (Channel, Channel) {
    let (mut a, mut b) = ready_pair_with_keys(
        anchors,
        derive_peer_channel_keys(&SEED_A, &node_id(0xb0), KEY_INDEX),
        derive_peer_channel_keys(&SEED_B, &node_id(0xa0), 0),
        |_| OutPoint {
            txid: Txid::from_byte_array([3; 32]),
            vout: 0,
        },
    );
    a.set_key_index(KEY_INDEX);
    b.set_key_index(0);
    (a, b)
}

/// `a`, its peer `b`, `a`'s monitor kept in step, and every update applied to it (what a
/// node persists).
struct World {
    a: Channel,
    b: Channel,
    monitor: ChannelMonitor,
    updates: Vec<MonitorUpdate>,
}

impl World {
    fn derived() -> World {
        let (a, b) = derived_pair(false);
        World::of(a, b)
    }

    fn of(a: Channel, b: Channel) -> World {
        let monitor = ChannelMonitor::from_channel(&a, node_id(0xb0), script(0xdd), 20, 1000)
            .expect("funded");
        World {
            a,
            b,
            monitor,
            updates: Vec::new(),
        }
    }

    fn apply(&mut self, update: MonitorUpdate) {
        self.monitor.apply(&update).expect("update applies");
        self.updates.push(update);
    }

    fn sync(&mut self) {
        if let Some(update) = self.monitor.update_for(&self.a) {
            self.apply(update);
        }
    }

    fn settle(&mut self) {
        for _ in 0..50 {
            self.a.maybe_sign().expect("sign");
            self.sync();
            self.b.maybe_sign().expect("sign");
            let (ma, mb) = (self.a.drain_messages(), self.b.drain_messages());
            if ma.is_empty() && mb.is_empty() {
                return;
            }
            for m in &ma {
                self.b.handle_message(m).expect("honest");
            }
            for m in &mb {
                self.a.handle_message(m).expect("honest");
                self.sync();
            }
        }
        panic!("did not settle");
    }

    fn add(&mut self, from_a: bool, sat: u64, hash: PaymentHash, cltv: u32) -> u64 {
        let onion = Box::new([0u8; ONION_PACKET_LEN]);
        let id = if from_a {
            self.a.send_htlc(sat * 1000, hash, cltv, onion)
        } else {
            self.b.send_htlc(sat * 1000, hash, cltv, onion)
        }
        .expect("add");
        self.settle();
        id
    }

    /// HTLCs both ways, fulfilled both ways (preimages through the channel), one preimage
    /// given directly, revocations all along. Returns the snapshot taken midway.
    fn busy(&mut self) -> MonitorRecord {
        let ours = self.add(true, 50_000, preimage(1).payment_hash(), 200);
        let theirs = self.add(false, 40_000, preimage(2).payment_hash(), 210);
        let snapshot = self.monitor.to_record();
        self.add(true, 30_000, preimage(3).payment_hash(), 220);
        self.add(false, 20_000, preimage(4).payment_hash(), 230);
        self.b.fulfill_htlc(ours, preimage(1)).expect("b fulfils");
        self.settle();
        self.a.fulfill_htlc(theirs, preimage(2)).expect("a fulfils");
        self.settle();
        let id = self.monitor.update_id() + 1;
        self.apply(MonitorUpdate {
            update_id: id,
            steps: vec![MonitorStep::Preimage(preimage(4))],
        });
        snapshot
    }

    /// The peer's commitment confirms at height 30; the monitor's outputs are taken.
    fn their_commitment_confirms(&mut self) -> Transaction {
        let commitment = self.b.force_close().expect("b closes");
        let out = self.monitor.block_connected(30, &[&commitment]);
        assert!(
            out.iter().any(|o| matches!(o, MonitorOutput::Event(_))),
            "the close is told"
        );
        commitment
    }
}

fn restore(record: &MonitorRecord) -> ChannelMonitor {
    let bytes = record.to_bytes().expect("encodes");
    ChannelMonitor::from_record(MonitorRecord::from_bytes(&bytes).expect("decodes"), &SEED_A)
        .expect("restores")
}

fn update_records(w: &World) -> Vec<MonitorUpdateRecord> {
    w.updates
        .iter()
        .map(|u| {
            let bytes = u
                .to_record(w.monitor.channel_id())
                .to_bytes()
                .expect("encodes");
            MonitorUpdateRecord::from_bytes(&bytes).expect("decodes")
        })
        .collect()
}

#[test]
fn snapshot_and_updates_restore_the_live_monitor() {
    let mut w = World::derived();
    let snapshot = w.busy();
    let record = w.monitor.to_record();
    assert!(!record.holds_secrets());
    assert!(record.secrets.last_index().is_some(), "revocations");
    assert!(!record.revoked_htlcs.is_empty(), "revoked HTLCs kept");
    // Preimages of HTLCs in no commitment that can still confirm unrevoked are pruned.
    assert!(record.preimages.len() >= 2, "{:?}", record.preimages);
    assert!(!record.counterparty.is_empty());
    // Every step kind is exercised by the updates (ForceClosed below).
    let steps: Vec<&MonitorStep> = w.updates.iter().flat_map(|u| &u.steps).collect();
    assert!(steps
        .iter()
        .any(|s| matches!(s, MonitorStep::HolderCommitment(_))));
    assert!(steps
        .iter()
        .any(|s| matches!(s, MonitorStep::CounterpartyCommitment(_))));
    assert!(steps
        .iter()
        .any(|s| matches!(s, MonitorStep::CommitmentSecret { .. })));
    assert!(steps.iter().any(|s| matches!(s, MonitorStep::Preimage(_))));

    // A snapshot alone, and the midway snapshot with every update (the older ones
    // skipped, in any order).
    assert_eq!(restore(&record), w.monitor);
    let mut updates = update_records(&w);
    updates.reverse();
    let snapshot_id = snapshot.update_id;
    assert!(snapshot_id > 0 && snapshot_id < w.monitor.update_id());
    let restored = restore_monitor(snapshot.clone(), updates.clone(), &SEED_A).expect("restores");
    assert_eq!(restored, w.monitor);
    // The stored updates are the live ones.
    for (u, r) in w.updates.iter().zip(updates.iter().rev()) {
        assert_eq!(r.clone().into_update(), *u);
    }

    // Closed on chain: the confirmed commitment, the height and the emitted events survive,
    // and the restored monitor answers as the live one.
    w.their_commitment_confirms();
    let record = w.monitor.to_record();
    assert_eq!(record.confirmed.len(), 1);
    assert!(!record.emitted.is_empty());
    assert_eq!(record.best_height, 30);
    let mut back = restore(&record);
    assert_eq!(back, w.monitor);
    assert_eq!(back.outputs(), w.monitor.clone().outputs());
    assert_eq!(back.balances(), w.monitor.balances());

    // Our own force-close, through the update step.
    let mut w = World::derived();
    w.busy();
    let id = w.monitor.update_id() + 1;
    w.apply(MonitorUpdate {
        update_id: id,
        steps: vec![MonitorStep::ForceClosed],
    });
    let tx = w
        .monitor
        .signed_holder_commitment()
        .expect("our commitment");
    w.monitor.block_connected(25, &[&tx]);
    let back = restore_monitor(
        MonitorRecord::from_bytes(&w.monitor.to_record().to_bytes().expect("encodes"))
            .expect("decodes"),
        update_records(&w),
        &SEED_A,
    )
    .expect("restores");
    assert!(back.is_force_closed());
    assert_eq!(back, w.monitor);
}

#[test]
fn anchors_and_stored_keys_round_trip() {
    // A channel without a key index (as migrated from format 1 or 2) stores its secrets:
    // any seed restores it.
    let (a, b) = ready_pair_of(true);
    let mut w = World::of(a, b);
    w.busy();
    let record = w.monitor.to_record();
    assert!(record.holds_secrets());
    assert_eq!(
        record.terms.channel_type,
        ChannelTypeRecord::AnchorsZeroFeeHtlcTx
    );
    let bytes = record.to_bytes().expect("encodes");
    let back = ChannelMonitor::from_record(
        MonitorRecord::from_bytes(&bytes).expect("decodes"),
        &[0; 32],
    )
    .expect("restores");
    assert_eq!(back, w.monitor);
    // Stored secrets that are not the channel's are refused too.
    let mut bad = record;
    if let ChannelKeysRecord::Stored(k) = &mut bad.keys {
        k.htlc_base_key = SecretKey::from_slice(&[9; 32]).expect("valid");
    }
    assert_eq!(
        ChannelMonitor::from_record(bad, &[0; 32]),
        Err(PersistError::MonitorKeysMismatch {
            channel_id: w.monitor.channel_id(),
            key_index: None
        })
    );
}

#[test]
fn a_derived_keys_monitor_record_holds_none_of_its_secrets() {
    let mut w = World::derived();
    let snapshot = w.busy();
    w.their_commitment_confirms();
    let keys = derive_peer_channel_keys(&SEED_A, &node_id(0xb0), KEY_INDEX);
    assert_eq!(
        keys.public_keys(&crate::secp::ctx()).funding_pubkey,
        w.a.local_pubkeys.funding_pubkey,
        "the keys the channel uses"
    );
    let mut secrets: Vec<(String, [u8; 32])> = vec![
        ("funding".into(), keys.funding_key.secret_bytes()),
        ("revocation".into(), keys.revocation_base_key.secret_bytes()),
        ("payment".into(), keys.payment_base_key.secret_bytes()),
        (
            "delayed_payment".into(),
            keys.delayed_payment_base_key.secret_bytes(),
        ),
        ("htlc".into(), keys.htlc_base_key.secret_bytes()),
        ("commitment_seed".into(), keys.commitment_seed),
    ];
    // Nor our per-commitment secrets (only the peer's are ever stored).
    for i in 0..=w.monitor.holder.index + 1 {
        let s = keys.per_commitment_secret(FIRST_INDEX - i).expect("index");
        secrets.push((format!("per-commitment secret {i}"), s));
    }
    let mut stored = vec![
        snapshot.to_bytes().expect("encodes"),
        w.monitor.to_record().to_bytes().expect("encodes"),
    ];
    for u in &w.updates {
        stored.push(
            u.to_record(w.monitor.channel_id())
                .to_bytes()
                .expect("encodes"),
        );
    }
    for bytes in &stored {
        for (what, secret) in &secrets {
            assert!(
                !bytes.windows(32).any(|win| win == secret),
                "a stored record holds our {what}"
            );
        }
    }
}

#[test]
fn the_wrong_seed_or_peer_is_refused() {
    let mut w = World::derived();
    w.busy();
    let record = w.monitor.to_record();
    let channel_id = w.monitor.channel_id();
    let mismatch = Err(PersistError::MonitorKeysMismatch {
        channel_id,
        key_index: Some(KEY_INDEX),
    });
    assert_eq!(
        ChannelMonitor::from_record(record.clone(), &SEED_B),
        mismatch
    );
    let mut other_peer = record.clone();
    other_peer.counterparty_node_id = node_id(0xc0);
    assert_eq!(ChannelMonitor::from_record(other_peer, &SEED_A), mismatch);
    let mut other_index = record.clone();
    other_index.keys = ChannelKeysRecord::Derived { index: 8 };
    assert_eq!(
        ChannelMonitor::from_record(other_index, &SEED_A),
        Err(PersistError::MonitorKeysMismatch {
            channel_id,
            key_index: Some(8),
        })
    );
    assert!(restore_monitor(record, Vec::new(), &SEED_B).is_err());
}

#[test]
fn gaps_foreign_and_refused_updates_are_typed_errors() {
    let mut w = World::derived();
    let snapshot = w.busy();
    let channel_id = w.monitor.channel_id();
    let updates = update_records(&w);
    let next = snapshot.update_id + 1;
    // A missing update after the snapshot.
    let gap: Vec<_> = updates
        .iter()
        .filter(|u| u.update_id != next + 1)
        .cloned()
        .collect();
    assert_eq!(
        restore_monitor(snapshot.clone(), gap, &SEED_A),
        Err(PersistError::MonitorUpdateGap {
            channel_id,
            expected: next + 1,
            got: next + 2
        })
    );
    // The first one after the snapshot missing.
    let late: Vec<_> = updates
        .iter()
        .filter(|u| u.update_id != next)
        .cloned()
        .collect();
    assert!(matches!(
        restore_monitor(snapshot.clone(), late, &SEED_A),
        Err(PersistError::MonitorUpdateGap { expected, .. }) if expected == next
    ));
    // Another channel's update.
    let mut foreign = updates.clone();
    if let Some(u) = foreign.last_mut() {
        u.channel_id = ChannelId([0xee; 32]);
    }
    assert_eq!(
        restore_monitor(snapshot.clone(), foreign, &SEED_A),
        Err(PersistError::MonitorUpdateWrongChannel {
            expected: channel_id,
            found: ChannelId([0xee; 32])
        })
    );
    // An update the monitor refuses: a stale holder commitment.
    let stale = MonitorUpdateRecord {
        channel_id,
        update_id: w.monitor.update_id() + 1,
        steps: vec![MonitorStepRecord::HolderCommitment(snapshot.holder.clone())],
    };
    let mut refused = updates;
    refused.push(stale);
    assert_eq!(
        restore_monitor(snapshot.clone(), refused, &SEED_A),
        Err(PersistError::MonitorUpdateRefused {
            channel_id,
            update_id: w.monitor.update_id() + 1,
            error: MonitorError::StaleHolderCommitment {
                held: w.monitor.holder.index,
                offered: snapshot.holder.index
            }
        })
    );
}

#[test]
fn inconsistent_records_are_refused() {
    let mut w = World::derived();
    w.busy();
    w.their_commitment_confirms();
    let record = w.monitor.to_record();
    let channel_id = w.monitor.channel_id();
    let refused = |r: MonitorRecord| match ChannelMonitor::from_record(r, &SEED_A) {
        Err(PersistError::MonitorInconsistent { channel_id: c, .. }) => c == channel_id,
        _ => false,
    };
    let mut r = record.clone();
    r.obscure_factor ^= 1;
    assert!(refused(r));
    let mut r = record.clone();
    r.preimages.push(r.preimages[0]);
    assert!(refused(r));
    let mut r = record.clone();
    r.confirmed[0].txid = Txid::from_byte_array([7; 32]);
    assert!(refused(r));
    let mut r = record.clone();
    r.confirmed.push(r.confirmed[0].clone());
    assert!(refused(r));
    let mut r = record.clone();
    r.emitted.push(r.emitted[0]);
    assert!(refused(r));
    let mut r = record.clone();
    r.counterparty.push(r.counterparty[0].clone());
    assert!(refused(r));
    let mut r = record;
    r.revoked_htlcs.push(r.revoked_htlcs[0].clone());
    assert!(refused(r));
}

#[test]
fn truncated_extended_and_corrupt_bytes_are_errors() {
    let mut w = World::derived();
    w.busy();
    w.their_commitment_confirms();
    let snapshot = w.monitor.to_record().to_bytes().expect("encodes");
    let update = w.updates[2]
        .to_record(w.monitor.channel_id())
        .to_bytes()
        .expect("encodes");
    for cut in 0..snapshot.len() {
        assert!(
            MonitorRecord::from_bytes(&snapshot[..cut]).is_err(),
            "cut {cut}"
        );
    }
    for cut in 0..update.len() {
        assert!(MonitorUpdateRecord::from_bytes(&update[..cut]).is_err());
    }
    let mut longer = snapshot.clone();
    longer.push(0);
    assert!(matches!(
        MonitorRecord::from_bytes(&longer),
        Err(PersistError::TrailingBytes { .. })
    ));
    // Each kind is read only as itself.
    assert_eq!(
        MonitorRecord::from_bytes(&update),
        Err(PersistError::WrongKind {
            expected: RecordKind::Monitor,
            found: RecordKind::MonitorUpdate
        })
    );
    // Past the checksum: a payload cut short, or with bytes appended, in a valid envelope.
    let payload = &snapshot[HEADER_LEN..];
    for cut in (0..payload.len()).step_by(7) {
        let resealed = envelope::encode(RecordKind::Monitor, &payload[..cut]).expect("small");
        assert!(MonitorRecord::from_bytes(&resealed).is_err(), "cut {cut}");
    }
    let mut appended = payload.to_vec();
    appended.push(0);
    assert!(matches!(
        MonitorRecord::from_bytes(
            &envelope::encode(RecordKind::Monitor, &appended).expect("small")
        ),
        Err(PersistError::PayloadTrailing { .. })
    ));
    // The kinds exist from format version 4 on, written with min_reader_version 4.
    let env = envelope::decode(&snapshot).expect("valid");
    assert_eq!(
        (env.version, env.min_reader_version),
        (envelope::FORMAT_VERSION, 4)
    );
    let old =
        envelope::encode_with_versions(RecordKind::MonitorUpdate, 3, 3, &update[HEADER_LEN..])
            .expect("small");
    assert_eq!(
        MonitorUpdateRecord::from_bytes(&old),
        Err(PersistError::KindNotInVersion {
            kind: RecordKind::MonitorUpdate,
            version: 3,
            introduced_in: 4
        })
    );
}

/// A real monitor's records, for the proptests (built once).
fn sample_bytes() -> &'static (Vec<u8>, Vec<u8>) {
    static SAMPLE: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(|| {
        let mut w = World::derived();
        w.busy();
        w.their_commitment_confirms();
        let snapshot = w.monitor.to_record().to_bytes().expect("encodes");
        let update = w.updates[3]
            .to_record(w.monitor.channel_id())
            .to_bytes()
            .expect("encodes");
        (snapshot, update)
    })
}

/// Reads `payload` sealed in a valid envelope of both kinds: an error or a value, never a
/// panic; a snapshot that decodes is restored (an error or a monitor, never a panic).
fn read_sealed(payload: &[u8]) {
    let sealed = envelope::encode(RecordKind::Monitor, payload).expect("small");
    if let Ok(r) = MonitorRecord::from_bytes(&sealed) {
        let _ = ChannelMonitor::from_record(r, &SEED_A);
    }
    let sealed = envelope::encode(RecordKind::MonitorUpdate, payload).expect("small");
    if let Ok(r) = MonitorUpdateRecord::from_bytes(&sealed) {
        let _ = r.into_update();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..400)) {
        read_sealed(&payload);
    }

    #[test]
    fn mutated_records_never_panic(
        which in any::<bool>(),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
    ) {
        let (snapshot, update) = sample_bytes();
        let mut bytes = if which { snapshot.clone() } else { update.clone() };
        for (at, value) in &edits {
            let i = usize::from(*at) % bytes.len();
            bytes[i] = *value;
        }
        // Whole records: the checksum catches the edit (or the edit changed nothing).
        let read = MonitorRecord::from_bytes(&bytes).map(|_| ());
        let read_update = MonitorUpdateRecord::from_bytes(&bytes).map(|_| ());
        let original = if which { snapshot } else { update };
        if bytes != *original {
            prop_assert!(read.is_err() && read_update.is_err());
        }
        // Past the checksum.
        read_sealed(bytes.get(HEADER_LEN..).unwrap_or_default());
    }
}

fn fixture_summary(r: &MonitorRecord) -> String {
    format!(
        "monitor {} peer {} keys {:?} update {} holder {} htlcs {} counterparty {:?} revoked {:?} \
         secrets {:?} preimages {} force_closed {} confirmed {} height {} feerate {} emitted {}",
        r.channel_id,
        r.counterparty_node_id,
        r.keys,
        r.update_id,
        r.holder.index,
        r.holder.spec.htlcs.len(),
        r.counterparty.iter().map(|c| c.index).collect::<Vec<_>>(),
        r.revoked_htlcs.iter().map(|c| c.index).collect::<Vec<_>>(),
        r.secrets.last_index(),
        r.preimages.len(),
        r.force_closed,
        r.confirmed.len(),
        r.best_height,
        r.feerate_per_kw,
        r.emitted.len(),
    )
}

fn update_summary(r: &MonitorUpdateRecord) -> String {
    let steps: Vec<&str> = r
        .steps
        .iter()
        .map(|s| match s {
            MonitorStepRecord::HolderCommitment(_) => "holder",
            MonitorStepRecord::CounterpartyCommitment(_) => "counterparty",
            MonitorStepRecord::CommitmentSecret { .. } => "secret",
            MonitorStepRecord::Preimage(_) => "preimage",
            MonitorStepRecord::ForceClosed => "force_closed",
        })
        .collect();
    format!("update {} of {} steps {steps:?}", r.update_id, r.channel_id)
}

/// The fixture scenario: a snapshot midway, every update after it, and a snapshot after the
/// peer's commitment confirmed.
fn fixture_records() -> (MonitorRecord, Vec<MonitorUpdateRecord>, MonitorRecord) {
    let mut w = World::derived();
    let first = w.busy();
    let id = w.monitor.update_id() + 1;
    w.apply(MonitorUpdate {
        update_id: id,
        steps: vec![MonitorStep::ForceClosed],
    });
    w.their_commitment_confirms();
    let updates = update_records(&w)
        .into_iter()
        .filter(|u| u.update_id > first.update_id)
        .collect();
    (first, updates, w.monitor.to_record())
}

/// Prints `tests/fixtures/v4/monitor_*` as `FIXTURE <file> <hex>` lines (lightning-core
/// does no IO, not even in its tests): run once with
/// `LNSHARD_WRITE_FIXTURES=1 cargo test -p lightning-core --lib -- --ignored --nocapture
/// write_monitor_fixtures | benches/write_fixtures.sh crates/lightning-core/tests/fixtures/v4`.
/// The files are committed and must never change.
#[test]
#[ignore = "prints tests/fixtures/v4/monitor_*: only when creating the fixtures"]
fn write_monitor_fixtures_when_asked() {
    if std::env::var("LNSHARD_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let (first, updates, last) = fixture_records();
    let mut manifest = String::new();
    for (name, r) in [("monitor_0.bin", &first), ("monitor_1.bin", &last)] {
        print_fixture(name, &r.to_bytes().expect("encodes"));
        manifest.push_str(&format!("{name}: {}\n", fixture_summary(r)));
    }
    for (i, u) in updates.iter().enumerate() {
        let name = format!("monitor_update_{i}.bin");
        print_fixture(&name, &u.to_bytes().expect("encodes"));
        manifest.push_str(&format!("{name}: {}\n", update_summary(u)));
    }
    print_fixture("monitor_manifest.txt", manifest.as_bytes());
}

/// One fixture file as a `FIXTURE <file> <hex>` line on the test's output.
fn print_fixture(name: &str, bytes: &[u8]) {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    println!("FIXTURE {name} {hex}");
}

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/v4/",
                $name
            ))
            .as_slice(),
        )
    };
}

/// The fixtures of format version 4 (the monitor's kinds) read, in this and every later
/// version, to the key fields their manifest names; the midway snapshot and its updates
/// restore the monitor of the final snapshot, whose derived keys claim on chain.
#[test]
fn fixture_v4_monitor_records_still_read() {
    let manifest = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/v4/monitor_manifest.txt"
    ));
    let snapshots = [fixture!("monitor_0.bin"), fixture!("monitor_1.bin")];
    let updates = [
        fixture!("monitor_update_0.bin"),
        fixture!("monitor_update_1.bin"),
        fixture!("monitor_update_2.bin"),
        fixture!("monitor_update_3.bin"),
        fixture!("monitor_update_4.bin"),
        fixture!("monitor_update_5.bin"),
        fixture!("monitor_update_6.bin"),
        fixture!("monitor_update_7.bin"),
        fixture!("monitor_update_8.bin"),
        fixture!("monitor_update_9.bin"),
        fixture!("monitor_update_10.bin"),
        fixture!("monitor_update_11.bin"),
        fixture!("monitor_update_12.bin"),
        fixture!("monitor_update_13.bin"),
        fixture!("monitor_update_14.bin"),
    ];
    let expected: BTreeMap<&str, &str> = manifest
        .lines()
        .map(|l| l.split_once(": ").expect("name: summary"))
        .collect();
    assert_eq!(expected.len(), snapshots.len() + updates.len());
    let snapshots: Vec<MonitorRecord> = snapshots
        .iter()
        .map(|(name, bytes)| {
            let r = MonitorRecord::from_bytes(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(fixture_summary(&r), expected[name], "{name}");
            assert!(!r.holds_secrets(), "{name}");
            r
        })
        .collect();
    let updates: Vec<MonitorUpdateRecord> = updates
        .iter()
        .map(|(name, bytes)| {
            let r =
                MonitorUpdateRecord::from_bytes(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(update_summary(&r), expected[name], "{name}");
            r
        })
        .collect();
    let (first, last) = (&snapshots[0], &snapshots[1]);
    let restored = restore_monitor(first.clone(), updates, &SEED_A).expect("restores");
    let mut back = ChannelMonitor::from_record(last.clone(), &SEED_A).expect("restores");
    assert_eq!(back.to_record(), *last, "read back unchanged");
    // The updates bring the midway snapshot to the final one's channel state (the final
    // one also saw the block).
    let (r, l) = (restored.to_record(), last);
    assert_eq!(r.update_id, l.update_id);
    assert_eq!(r.holder, l.holder);
    assert_eq!(r.counterparty, l.counterparty);
    assert_eq!(r.revoked_htlcs, l.revoked_htlcs);
    assert_eq!(r.secrets, l.secrets);
    // The fixture was written before preimages of HTLCs gone from every commitment that
    // can confirm unrevoked were pruned: the restored monitor holds those of live HTLCs.
    assert!(r.preimages.iter().all(|p| l.preimages.contains(p)));
    let live: Vec<_> = l
        .holder
        .spec
        .htlcs
        .values()
        .map(|h| h.payment_hash)
        .chain(
            l.counterparty
                .iter()
                .flat_map(|c| c.spec.htlcs.values().map(|h| h.payment_hash)),
        )
        .collect();
    for p in &l.preimages {
        if live.contains(&p.payment_hash()) {
            assert!(r.preimages.contains(p), "live preimage kept");
        }
    }
    assert_eq!(r.force_closed, l.force_closed);
    // The keys derived again sign: the peer's commitment is claimed from the fixture.
    assert!(!back.planned_claims().is_empty());
    let claims: Vec<Transaction> = back
        .outputs()
        .into_iter()
        .filter_map(|o| match o {
            MonitorOutput::Broadcast(tx) => Some(tx),
            MonitorOutput::Event(_) => None,
        })
        .collect();
    assert!(!claims.is_empty());
    let prevouts: BTreeMap<OutPoint, bitcoin::TxOut> = last
        .confirmed
        .iter()
        .flat_map(|c| {
            c.tx.output.iter().enumerate().map(|(vout, o)| {
                (
                    OutPoint {
                        txid: c.txid,
                        vout: vout as u32,
                    },
                    o.clone(),
                )
            })
        })
        .collect();
    // libbitcoinconsensus: P2SH, DERSIG, NULLDUMMY, CLTV, CSV, WITNESS.
    let flags: u32 = 1 | (1 << 2) | (1 << 4) | (1 << 9) | (1 << 10) | (1 << 11);
    for tx in &claims {
        tx.verify_with_flags(|op| prevouts.get(op).cloned(), flags)
            .unwrap_or_else(|e| panic!("consensus refuses {}: {e:?}", tx.compute_txid()));
    }
    assert_eq!(
        ChannelMonitor::from_record(last.clone(), &SEED_B),
        Err(PersistError::MonitorKeysMismatch {
            channel_id: last.channel_id,
            key_index: Some(KEY_INDEX)
        })
    );
}

/// The engine's layout: a bounded snapshot plus chunks of revoked HTLCs restores the live
/// monitor exactly, however many states it has seen, and the snapshot does not grow.
#[test]
fn a_bounded_snapshot_and_revoked_chunks_restore_the_live_monitor() {
    let mut w = World::derived();
    w.busy();
    let early = w
        .monitor
        .to_bounded_record()
        .to_bytes()
        .expect("encodes")
        .len();
    for i in 0..40u8 {
        let from_a = i % 2 == 0;
        let id = w.add(
            from_a,
            10_000 + u64::from(i),
            preimage(10 + i).payment_hash(),
            300,
        );
        let failed = if from_a {
            w.b.fail_htlc(id, vec![0; 256])
        } else {
            w.a.fail_htlc(id, vec![0; 256])
        };
        failed.expect("fails back");
        w.settle();
    }
    assert!(
        w.monitor.revoked_chunks_after(None).len() >= 2,
        "several chunks of revoked HTLCs"
    );
    let bounded = w.monitor.to_bounded_record();
    assert!(bounded.revoked_htlcs.is_empty());
    let late = bounded.to_bytes().expect("encodes").len();
    assert!(
        late < early + 2_000,
        "the bounded snapshot does not grow with the states: {early} then {late} bytes"
    );
    let chunks: Vec<MonitorRevokedRecord> = w
        .monitor
        .revoked_chunks_after(None)
        .into_iter()
        .map(|c| {
            let bytes = w
                .monitor
                .revoked_chunk_record(c)
                .to_bytes()
                .expect("encodes");
            MonitorRevokedRecord::from_bytes(&bytes).expect("decodes")
        })
        .collect();
    let snapshot =
        MonitorRecord::from_bytes(&bounded.to_bytes().expect("encodes")).expect("decodes");
    let restored =
        restore_monitor_with_revoked(snapshot.clone(), Vec::new(), chunks.clone(), &SEED_A)
            .expect("restores");
    assert!(
        restored == w.monitor,
        "the live monitor, revoked HTLCs included"
    );
    // A chunk of another channel, or an entry outside its chunk, is refused.
    let mut foreign = chunks.clone();
    if let Some(c) = foreign.first_mut() {
        c.channel_id = ChannelId([9; 32]);
    }
    assert!(restore_monitor_with_revoked(snapshot.clone(), Vec::new(), foreign, &SEED_A).is_err());
    let mut misplaced = chunks.clone();
    if let Some(c) = misplaced.first_mut() {
        c.chunk += 1;
    }
    assert!(
        restore_monitor_with_revoked(snapshot.clone(), Vec::new(), misplaced, &SEED_A).is_err()
    );
    // Only the chunks after what was stored are new.
    let last = w.monitor.last_revoked_with_htlcs().expect("revoked HTLCs");
    assert!(w.monitor.revoked_chunks_after(Some(last)).is_empty());
}

/// Prints the v4 fixture of a revoked-HTLCs chunk (see `write_monitor_fixtures_when_asked`).
#[test]
#[ignore = "prints tests/fixtures/v4/monitor_revoked_0.bin: only when creating the fixture"]
fn write_monitor_revoked_fixture_when_asked() {
    if std::env::var("LNSHARD_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let (_, _, last) = fixture_records();
    let monitor = ChannelMonitor::from_record(last, &SEED_A).expect("restores");
    let chunk = monitor
        .revoked_chunks_after(None)
        .into_iter()
        .next()
        .expect("a chunk");
    let record = monitor.revoked_chunk_record(chunk);
    print_fixture(
        "monitor_revoked_0.bin",
        &record.to_bytes().expect("encodes"),
    );
}

/// The committed v4 revoked-HTLCs chunk still reads, and holds the fixture monitor's.
#[test]
fn fixture_v4_monitor_revoked_record_still_reads() {
    let bytes = include_bytes!("../../../tests/fixtures/v4/monitor_revoked_0.bin");
    let chunk = MonitorRevokedRecord::from_bytes(bytes).expect("reads");
    let (_, _, last) = fixture_records();
    let monitor = ChannelMonitor::from_record(last, &SEED_A).expect("restores");
    assert_eq!(chunk, monitor.revoked_chunk_record(chunk.chunk));
    assert!(!chunk.entries.is_empty());
}
