//! Durable state: channel and node records round trip, a node restarted from its records
//! in the middle of payments resumes them, and stored bytes that are corrupt, truncated,
//! extended or written by a newer version are clear errors, never a panic.

mod node_support;

use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::channel::{derive_peer_channel_keys, Channel};
use lightning_core::node::{Event, ForwardResolution, Output, PaymentId};
use lightning_core::node::{NodeConfig, NodeCore};
use lightning_core::persist::envelope::{self, RecordKind, FORMAT_VERSION, HEADER_LEN};
use lightning_core::persist::{
    ChannelKeysRecord, ChannelRecord, ForwardResolutionRecord, NodeRecord, PersistError,
    StoredChannelKeys,
};
use lightning_core::secp256k1::Secp256k1;
use lightning_core::transactions::scripts::funding_output;
use lightning_core::types::{ChannelId, PaymentPreimage, ShortChannelId};
use node_support::{node_secret, node_seed, Net};

const SATS: u64 = 1_000_000;

/// A payment sent but not yet run to completion.
struct Pending {
    id: PaymentId,
    preimage: PaymentPreimage,
    payer: usize,
    payee: usize,
    claimed: bool,
}

fn start_payment(
    net: &mut Net,
    path: &[usize],
    scids: &[ShortChannelId],
    amount: u64,
    nonce: u64,
) -> Pending {
    let route = net.route(path, scids, amount);
    let payee = *path.last().unwrap();
    let preimage = PaymentPreimage(
        sha256::Hash::hash(&[&nonce.to_be_bytes()[..], &[path[0] as u8]].concat()).to_byte_array(),
    );
    let (hash, secret) = net.nodes[payee]
        .core
        .create_inbound_payment(&preimage, Some(amount));
    let id = PaymentId(sha256::Hash::hash(&preimage.0).to_byte_array());
    net.nodes[path[0]]
        .core
        .send_payment(&route, hash, secret, id)
        .expect("send_payment");
    // An API call returns once its state is durable (the engine commits before answering).
    net.commit(path[0]);
    net.commit(payee);
    Pending {
        id,
        preimage,
        payer: path[0],
        payee,
        claimed: false,
    }
}

/// Claims every pending payment whose recipient saw `PaymentClaimable`.
fn claim_ready(net: &mut Net, pending: &mut [Pending]) {
    for p in pending.iter_mut().filter(|p| !p.claimed) {
        let hash = p.preimage.payment_hash();
        let ready = net.nodes[p.payee].events.iter().any(
            |e| matches!(e, Event::PaymentClaimable { payment_hash, .. } if *payment_hash == hash),
        );
        if ready {
            net.nodes[p.payee]
                .core
                .claim_funds(p.preimage)
                .expect("claim");
            net.commit(p.payee);
            p.claimed = true;
        }
    }
}

/// Runs the network, claiming as payments arrive, until quiet.
fn run_and_claim(net: &mut Net, pending: &mut [Pending]) {
    for _ in 0..8 {
        net.run();
        claim_ready(net, pending);
    }
    net.run();
}

fn assert_sent(net: &Net, pending: &[Pending], what: &str) {
    for p in pending {
        assert!(
            p.claimed,
            "{what}: payment {} -> {} reached its recipient; payer events {:?}",
            p.payer, p.payee, net.nodes[p.payer].events
        );
        let sent = net.nodes[p.payer].events.iter().any(|e| {
            matches!(e, Event::PaymentSent { payment_id, payment_preimage, .. }
                if *payment_id == p.id && *payment_preimage == p.preimage)
        });
        assert!(sent, "{what}: the payer saw PaymentSent");
    }
}

/// Both ends of a channel agree on both commitments and hold no HTLC.
fn assert_converged(net: &Net, a: usize, b: usize, channel_id: ChannelId, what: &str) {
    let ca = net.nodes[a]
        .core
        .channel(&net.id(b), &channel_id)
        .expect("channel at a");
    let cb = net.nodes[b]
        .core
        .channel(&net.id(a), &channel_id)
        .expect("channel at b");
    assert_eq!(ca.local_commit().spec, cb.remote_commit().spec, "{what}");
    assert_eq!(cb.local_commit().spec, ca.remote_commit().spec, "{what}");
    assert!(
        ca.local_commit().spec.htlcs.is_empty(),
        "{what}: no HTLC left"
    );
}

fn to_local(net: &Net, a: usize, b: usize, channel_id: ChannelId) -> u64 {
    net.nodes[a]
        .core
        .channel(&net.id(b), &channel_id)
        .expect("channel")
        .local_commit()
        .spec
        .to_local_msat
}

#[test]
fn channel_record_of_a_live_channel_mid_payment_decodes_equal_and_the_payment_completes() {
    let mut net = Net::new(2, 40);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, SATS * 100);
    net.enable_persistence();
    net.check_dirty = true;
    let mut pending = vec![start_payment(&mut net, &[0, 1], &[scid], 7_000_000, 1)];
    // Part of the commitment dance: update_add, commitment_signed, revoke_and_ack.
    for _ in 0..3 {
        net.collect_outputs();
        net.deliver_one();
    }
    net.collect_outputs();
    for (a, b) in [(0, 1), (1, 0)] {
        let record = net.nodes[a]
            .core
            .snapshot_channel(&net.id(b), &channel_id)
            .expect("channel");
        let live = net.nodes[a].core.channel(&net.id(b), &channel_id).unwrap();
        assert!(
            !live.local_commit().spec.htlcs.is_empty()
                || !live.remote_commit().spec.htlcs.is_empty()
                || live.next_remote_commit().is_some(),
            "node {a}: the payment is mid-flight"
        );
        let bytes = record.to_bytes().expect("encodes");
        let read = ChannelRecord::from_bytes(&bytes).expect("decodes");
        assert_eq!(read, record);
        // Derived keys: the record holds their index; the channel rebuilt from it with the
        // node's seed is the live one, keys and all.
        assert!(
            !read.holds_secrets(),
            "node {a}: a new channel stores no secret"
        );
        let rebuilt = Channel::from_record(read.channel.clone(), &node_seed(40, a), &net.id(b));
        assert_eq!(&rebuilt, live);
        assert_eq!(read.user_channel_id, record.user_channel_id);
        assert_eq!(read.node_id, net.id(b));
    }
    net.restart(0);
    run_and_claim(&mut net, &mut pending);
    assert_sent(&net, &pending, "after restarting the payer");
    assert_converged(&net, 0, 1, channel_id, "after restart");
    assert_eq!(to_local(&net, 0, 1, channel_id), SATS * 900 - 7_000_000);
    // The channel goes on working.
    net.pay(&[0, 1], &[scid], 1_000_000, 2);
    net.pay(&[1, 0], &[scid], 500_000, 3);
}

/// Three nodes in a line; node 1 forwards both ways. For each cut point, two payments (one
/// each way) start, `cut` messages are delivered, then node 1 crashes and restarts from its
/// store, reconnects, and both payments must complete with balances that reconcile.
#[test]
fn three_nodes_restart_the_middle_node_at_every_point_of_two_crossing_payments() {
    crossing_payments_with_a_restart(1, 41);
}

/// As above, restarting the node at one end (payer of one payment, payee of the other).
#[test]
fn three_nodes_restart_an_end_node_at_every_point_of_two_crossing_payments() {
    crossing_payments_with_a_restart(0, 45);
    crossing_payments_with_a_restart(2, 46);
}

fn crossing_payments_with_a_restart(restarted: usize, seed: u8) {
    let mut net = Net::new(3, seed);
    net.connect(0, 1);
    net.connect(1, 2);
    let (c01, s01) = net.open_channel(0, 1, SATS, SATS * 500);
    let (c12, s12) = net.open_channel(1, 2, SATS, SATS * 500);
    net.enable_persistence();
    net.check_dirty = true;
    let (mut bal0, mut bal2) = (to_local(&net, 0, 1, c01), to_local(&net, 2, 1, c12));
    let mut bal1 = to_local(&net, 1, 0, c01) + to_local(&net, 1, 2, c12);
    let fee_for = |net: &Net, amount: u64| net.nodes[1].core.config().forwarding.fee_for(amount);
    let mut nonce = 100;
    for cut in 0..48usize {
        let (a, b) = (2_000_000 + cut as u64 * 1000, 1_000_000 + cut as u64 * 7);
        nonce += 2;
        let mut pending = vec![
            start_payment(&mut net, &[0, 1, 2], &[s01, s12], a, nonce),
            start_payment(&mut net, &[2, 1, 0], &[s12, s01], b, nonce + 1),
        ];
        for _ in 0..cut {
            net.collect_outputs();
            claim_ready(&mut net, &mut pending);
            net.collect_outputs();
            net.deliver_one();
        }
        let (node_record, channels) = net.restart(restarted);
        let expected_channels = if restarted == 1 { 2 } else { 1 };
        assert_eq!(
            channels.len(),
            expected_channels,
            "cut {cut}: all channels stored"
        );
        assert_eq!(node_record.best_height, net.chain.height);
        run_and_claim(&mut net, &mut pending);
        assert_sent(&net, &pending, &format!("cut {cut}"));
        assert_converged(&net, 0, 1, c01, &format!("cut {cut}: channel 0-1"));
        assert_converged(&net, 1, 2, c12, &format!("cut {cut}: channel 1-2"));
        let (fa, fb) = (fee_for(&net, a), fee_for(&net, b));
        bal0 = bal0 - a - fa + b;
        bal2 = bal2 + a - b - fb;
        bal1 += fa + fb;
        assert_eq!(to_local(&net, 0, 1, c01), bal0, "cut {cut}: node 0");
        assert_eq!(to_local(&net, 2, 1, c12), bal2, "cut {cut}: node 2");
        assert_eq!(
            to_local(&net, 1, 0, c01) + to_local(&net, 1, 2, c12),
            bal1,
            "cut {cut}: node 1 earned exactly the two fees"
        );
        for i in 0..3 {
            net.take_events(i);
        }
    }
    let store = net.stores[restarted].as_ref().unwrap();
    assert!(store.commits > 0 && store.writes >= store.commits);
}

#[test]
fn recipient_restarted_while_a_payment_is_claimable_can_still_claim_it() {
    let mut net = Net::new(3, 42);
    net.connect(0, 1);
    net.connect(1, 2);
    let (_, s01) = net.open_channel(0, 1, SATS, 0);
    let (c12, s12) = net.open_channel(1, 2, SATS, 0);
    net.enable_persistence();
    net.check_dirty = true;
    let mut pending = vec![start_payment(
        &mut net,
        &[0, 1, 2],
        &[s01, s12],
        3_000_000,
        9,
    )];
    net.run();
    let hash = pending[0].preimage.payment_hash();
    assert!(net.nodes[2].events.iter().any(
        |e| matches!(e, Event::PaymentClaimable { payment_hash, .. } if *payment_hash == hash)
    ));
    let (record, _) = net.restart(2);
    assert_eq!(record.claimable.len(), 1, "the claimable HTLC is stored");
    run_and_claim(&mut net, &mut pending);
    assert_sent(&net, &pending, "after restarting the recipient");
    assert_eq!(to_local(&net, 2, 1, c12), 3_000_000);
}

/// A small network with HTLCs in flight (both ways through node 1).
fn network_in_flight() -> Net {
    let mut net = Net::new(3, 43);
    net.connect(0, 1);
    net.connect(1, 2);
    let (_, s01) = net.open_channel(0, 1, SATS, SATS * 300);
    let (_, s12) = net.open_channel(1, 2, SATS, SATS * 300);
    let _ = start_payment(&mut net, &[0, 1, 2], &[s01, s12], 4_000_000, 1);
    let _ = start_payment(&mut net, &[2, 1, 0], &[s12, s01], 2_000_000, 2);
    for _ in 0..9 {
        net.collect_outputs();
        net.deliver_one();
    }
    net.collect_outputs();
    net
}

/// Every record of [`network_in_flight`].
fn network_records() -> (Vec<ChannelRecord>, Vec<NodeRecord>) {
    let net = network_in_flight();
    let mut channels = Vec::new();
    let mut nodes = Vec::new();
    for node in &net.nodes {
        channels.extend(node.core.channel_records());
        nodes.push(node.core.node_record());
    }
    (channels, nodes)
}

/// A small deterministic generator (xorshift64*): the corruption test must replay exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => b.truncate(rng.below(b.len())),
        2 => {
            for _ in 0..1 + rng.below(16) {
                b.push(rng.next() as u8);
            }
        }
        _ => {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
        }
    }
    b
}

#[test]
fn corrupt_truncated_and_extended_records_are_clear_errors_never_panics() {
    let (channels, nodes) = network_records();
    assert!(channels.len() >= 4);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut errors = 0;
    for round in 0..2000 {
        let c = &channels[round % channels.len()];
        let bytes = c.to_bytes().unwrap();
        let bad = mutate(&mut rng, &bytes);
        match ChannelRecord::from_bytes(&bad) {
            Ok(read) => assert_eq!(
                &read, c,
                "round {round}: a changed record read as another value"
            ),
            Err(e) => {
                errors += 1;
                assert!(!e.to_string().is_empty());
            }
        }
        let n = &nodes[round % nodes.len()];
        let bytes = n.to_bytes().unwrap();
        let bad = mutate(&mut rng, &bytes);
        match NodeRecord::from_bytes(&bad) {
            Ok(read) => assert_eq!(&read, n, "round {round}"),
            Err(e) => {
                errors += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(errors > 3900, "almost every change is caught: {errors}");
    // Past the checksum: garbage payloads in a valid envelope decode to an error or to some
    // value, never a panic (the postcard decoder and the BOLT decoders of stored messages).
    for round in 0..2000 {
        let c = &channels[round % channels.len()];
        let bytes = c.to_bytes().unwrap();
        let payload = mutate(&mut rng, &bytes[HEADER_LEN..]);
        let resealed = envelope::encode(RecordKind::Channel, &payload).unwrap();
        let _ = ChannelRecord::from_bytes(&resealed);
        let _ = NodeRecord::from_bytes(&envelope::encode(RecordKind::Node, &payload).unwrap());
    }
}

#[test]
fn a_record_from_a_newer_incompatible_version_is_refused_naming_both_versions() {
    let (channels, nodes) = network_records();
    let bytes = channels[0].to_bytes().unwrap();
    let newer = envelope::encode_with_versions(
        RecordKind::Channel,
        FORMAT_VERSION + 2,
        FORMAT_VERSION + 1,
        &bytes[HEADER_LEN..],
    )
    .unwrap();
    let err = ChannelRecord::from_bytes(&newer).expect_err("too new");
    assert_eq!(
        err,
        PersistError::TooNew {
            written_by_version: FORMAT_VERSION + 2,
            min_reader_version: FORMAT_VERSION + 1,
            our_version: FORMAT_VERSION,
        }
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("format version {}", FORMAT_VERSION + 2)),
        "{text}"
    );
    assert!(
        text.contains(&format!("format version {}", FORMAT_VERSION + 1)),
        "{text}"
    );
    assert!(
        text.contains(&format!("this is format version {FORMAT_VERSION}")),
        "{text}"
    );
    let bytes = nodes[0].to_bytes().unwrap();
    let newer =
        envelope::encode_with_versions(RecordKind::Node, 9, 9, &bytes[HEADER_LEN..]).unwrap();
    assert!(matches!(
        NodeRecord::from_bytes(&newer),
        Err(PersistError::TooNew {
            written_by_version: 9,
            min_reader_version: 9,
            ..
        })
    ));
}

/// Restarting on another shard count: the records of a node are split between shards by
/// peer and each shard rebuilds only its peers' channels and state; merged back they give
/// the same node record.
#[test]
fn node_record_split_by_peer_and_merged_back_is_the_same() {
    let (_, nodes) = network_records();
    let middle = &nodes[1];
    assert!(
        !middle.upstream.is_empty() || !middle.offered.is_empty(),
        "forwards in flight"
    );
    let peers: Vec<_> = middle.peer_random_draws.keys().copied().collect();
    assert_eq!(peers.len(), 2);
    let parts: Vec<NodeRecord> = peers
        .iter()
        .map(|p| {
            let mut r = middle.clone();
            r.retain_peers(|q| q == p);
            r
        })
        .collect();
    assert_eq!(NodeRecord::merge(parts).unwrap(), *middle);
}

fn fixture_dir(version: u16) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}"))
}

/// Key fields of a channel record, one line each, to compare a fixture with what it must
/// still decode to in every later version.
fn channel_summary(r: &ChannelRecord) -> String {
    let c = &r.channel;
    format!(
        "channel {} peer {} user {} funder {} phase {:?} funding {} scid {:?} local_commit {} \
         to_local {} to_remote {} htlcs {} remote_commit {} remote_htlcs {} next_remote {} \
         secrets {:?} proposed {} signed {} acked {} holding {}",
        c.channel_id,
        r.node_id,
        r.user_channel_id,
        c.is_funder,
        c.phase,
        c.funding_satoshis,
        c.short_channel_id.map(|s| s.0),
        c.local_commit.index,
        c.local_commit.spec.to_local_msat,
        c.local_commit.spec.to_remote_msat,
        c.local_commit.spec.htlcs.len(),
        c.remote_commit.index,
        c.remote_commit.spec.htlcs.len(),
        c.next_remote_commit.is_some(),
        c.remote_secrets.last_index(),
        c.local_changes.proposed.len() + c.remote_changes.proposed.len(),
        c.local_changes.signed.len() + c.remote_changes.signed.len(),
        c.local_changes.acked.len() + c.remote_changes.acked.len(),
        c.holding_cell.len(),
    )
}

fn node_summary(r: &NodeRecord) -> String {
    format!(
        "node height {} draws {:?} inbound {} claimable {} payments {} offered {:?} upstream {:?} \
         timeouts {}",
        r.best_height,
        r.peer_random_draws.values().collect::<Vec<_>>(),
        r.inbound_payments.len(),
        r.claimable.len(),
        r.payments.len(),
        r.offered
            .keys()
            .map(|(c, h)| (c.to_string(), *h))
            .collect::<Vec<_>>(),
        r.upstream
            .keys()
            .map(|(c, h)| (c.to_string(), *h))
            .collect::<Vec<_>>(),
        r.pending_timeouts.len(),
    )
}

/// Writes the fixtures of this format version: run once per version with
/// `LNSHARD_WRITE_FIXTURES=1 cargo test --test node_persist -- --ignored write_fixture`.
/// The files are committed and must never change; each format version writes its own
/// directory.
#[test]
#[ignore = "writes tests/fixtures/v<FORMAT_VERSION>: only when creating the fixtures"]
fn write_fixture_records_when_asked() {
    if std::env::var("LNSHARD_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let dir = fixture_dir(FORMAT_VERSION);
    std::fs::create_dir_all(&dir).unwrap();
    let (channels, nodes) = network_records();
    let mut manifest = String::new();
    for (i, c) in channels.iter().enumerate() {
        let name = format!("channel_{i}.bin");
        std::fs::write(dir.join(&name), c.to_bytes().unwrap()).unwrap();
        manifest.push_str(&format!("{name}: {}\n", channel_summary(c)));
    }
    for (i, n) in nodes.iter().enumerate() {
        let name = format!("node_{i}.bin");
        std::fs::write(dir.join(&name), n.to_bytes().unwrap()).unwrap();
        manifest.push_str(&format!("{name}: {}\n", node_summary(n)));
    }
    std::fs::write(dir.join("manifest.txt"), manifest).unwrap();
    if FORMAT_VERSION >= 3 {
        // A forward resolution (a record kind from version 3 on): a forward fulfilled.
        let r = ForwardResolution {
            source: lightning_core::node::HtlcSource::Forwarded {
                channel_id: ChannelId([3; 32]),
                htlc_id: 7,
            },
            next_channel_id: Some(ChannelId([4; 32])),
            outcome: lightning_core::node::ForwardOutcome::Fulfilled(PaymentPreimage([5; 32])),
        };
        std::fs::write(
            dir.join("resolution_0.bin"),
            r.to_record().to_bytes().unwrap(),
        )
        .unwrap();
    }
}

/// The compatibility promise: records written by format version 1 are read by this and
/// every later version, to the same key fields.
#[test]
fn fixture_v1_records_still_read() {
    fixture_records_still_read(1);
}

/// Records written by format version 2 (the channel's creation height appended) are read
/// by this and every later version.
#[test]
fn fixture_v2_records_still_read() {
    fixture_records_still_read(2);
}

/// Reads the fixtures of format `version`: every record decodes to the key fields its
/// manifest names, and the forwarding node restarts from them.
fn fixture_records_still_read(version: u16) {
    let dir = fixture_dir(version);
    let manifest = std::fs::read_to_string(dir.join("manifest.txt")).expect("manifest.txt");
    let mut read = 0;
    let mut with_htlcs = 0;
    for line in manifest.lines() {
        let (name, expected) = line.split_once(": ").expect("name: summary");
        let bytes = std::fs::read(dir.join(name)).expect("fixture file");
        let summary = if name.starts_with("channel_") {
            let r = ChannelRecord::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !r.channel.local_commit.spec.htlcs.is_empty() {
                with_htlcs += 1;
            }
            channel_summary(&r)
        } else {
            node_summary(&NodeRecord::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")))
        };
        assert_eq!(summary, expected, "{name}");
        read += 1;
    }
    assert_eq!(read, 7, "four channel records and three node records");
    assert!(with_htlcs >= 2, "the fixture holds HTLCs in flight");
    // Node 1 (the forwarding node) restarts from the fixture: both channels come back with
    // their short channel ids indexed, and its forward in flight with them.
    let read = |name: &str| std::fs::read(dir.join(name)).expect("fixture file");
    let node = NodeRecord::from_bytes(&read("node_1.bin")).unwrap();
    let channels: Vec<ChannelRecord> = ["channel_1.bin", "channel_2.bin"]
        .iter()
        .map(|n| ChannelRecord::from_bytes(&read(n)).unwrap())
        .collect();
    let restored = NodeCore::restore(
        node_secret(43, 1),
        node_seed(43, 1),
        NodeConfig::default(),
        node.clone(),
        channels,
    );
    let listed = restored.list_channels();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|c| c.short_channel_id.is_some() && !c.is_usable));
    assert_eq!(restored.node_record().upstream, node.upstream);
    assert_eq!(restored.node_record().offered, node.offered);
}

/// A node restored from its own records holds exactly what it stored: the same channel
/// records and node record (the peers were disconnected first, as a restart finds them).
#[test]
fn restore_from_its_own_records_is_faithful() {
    let mut net = network_in_flight();
    net.disconnect(0, 1);
    net.disconnect(1, 2);
    for i in 0..3 {
        let core = &net.nodes[i].core;
        let channels = core.channel_records();
        let node = core.node_record();
        let restored = NodeCore::restore(
            node_secret(43, i),
            node_seed(43, i),
            core.config().clone(),
            node.clone(),
            channels.clone(),
        );
        assert_eq!(restored.channel_records(), channels, "node {i}");
        assert_eq!(restored.node_record(), node, "node {i}");
        assert_eq!(restored.node_id(), core.node_id());
        let scids = |c: &NodeCore| {
            c.list_channels()
                .iter()
                .map(|d| (d.channel_id, d.short_channel_id, d.balances))
                .collect::<Vec<_>>()
        };
        assert_eq!(scids(&restored), scids(core), "node {i}");
    }
}

/// Another shard count: node 1's records split into two shards, one peer each. Each shard
/// restores only its peer's channels and state; together they hold the whole node.
#[test]
fn middle_node_restored_as_two_shards_one_peer_each() {
    let mut net = network_in_flight();
    net.disconnect(0, 1);
    net.disconnect(1, 2);
    let core = &net.nodes[1].core;
    let node = core.node_record();
    let channels = core.channel_records();
    let mut shard_records = Vec::new();
    for peer in [net.id(0), net.id(2)] {
        let mut part = node.clone();
        part.retain_peers(|p| *p == peer);
        let mine: Vec<ChannelRecord> = channels
            .iter()
            .filter(|c| c.node_id == peer)
            .cloned()
            .collect();
        assert_eq!(mine.len(), 1);
        let shard = NodeCore::restore(
            node_secret(43, 1),
            node_seed(43, 1),
            NodeConfig::default(),
            part.clone(),
            mine.clone(),
        );
        assert_eq!(shard.channel_records(), mine);
        assert_eq!(shard.node_record(), part, "a shard keeps its part whole");
        assert_eq!(shard.peers().count(), 1);
        shard_records.push(shard.node_record());
    }
    assert_eq!(NodeRecord::merge(shard_records).unwrap(), node);
}

/// Group commit: a block that changes no channel writes only the node records; a payment
/// writes each channel it touches once per commit, not once per message.
#[test]
fn blocks_write_only_node_records_and_payments_write_per_commit() {
    let mut net = Net::new(2, 44);
    net.connect(0, 1);
    let (_, scid) = net.open_channel(0, 1, SATS, 0);
    net.enable_persistence();
    net.check_dirty = true;
    let writes = |net: &Net| {
        net.stores
            .iter()
            .map(|s| s.as_ref().unwrap().writes)
            .sum::<u64>()
    };
    let before = writes(&net);
    net.mine(3);
    assert_eq!(
        writes(&net) - before,
        6,
        "one node record per node per block"
    );
    let before = writes(&net);
    net.pay(&[0, 1], &[scid], 1_000_000, 1);
    let paid = writes(&net) - before;
    let commits: u64 = net.stores.iter().map(|s| s.as_ref().unwrap().commits).sum();
    assert!(
        paid > 0 && paid <= 2 * commits,
        "{paid} writes in {commits} commits"
    );
}

/// The fixtures of format version 3 (issue 13's "format version 2": explicit records, key
/// indices instead of secrets, resolutions in the envelope) read, and hold no secret.
#[test]
fn fixture_v3_records_still_read() {
    fixture_records_still_read(3);
    let dir = fixture_dir(3);
    let channel_files = [
        "channel_0.bin",
        "channel_1.bin",
        "channel_2.bin",
        "channel_3.bin",
    ];
    for name in channel_files {
        let r = ChannelRecord::from_bytes(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        assert!(!r.holds_secrets(), "{name}: a key index, not the keys");
    }
    // Records migrated from versions 1 and 2 keep the secrets they stored.
    for version in [1, 2] {
        let dir = fixture_dir(version);
        for name in channel_files {
            let r = ChannelRecord::from_bytes(&std::fs::read(dir.join(name)).unwrap()).unwrap();
            assert!(r.holds_secrets(), "v{version} {name}");
        }
    }
    let resolution = std::fs::read(dir.join("resolution_0.bin")).expect("fixture file");
    let r = ForwardResolutionRecord::from_stored_bytes(&resolution).expect("reads");
    assert_eq!(ForwardResolution::from_record(r.clone()).to_record(), r);
}

/// The fixtures of format version 5 (the node record's completed payment ids appended)
/// read; node records of versions 1 to 3 read with no completed payment id.
#[test]
fn fixture_v5_records_still_read() {
    fixture_records_still_read(5);
    for version in [1, 2, 3] {
        for name in ["node_0.bin", "node_1.bin", "node_2.bin"] {
            let bytes = std::fs::read(fixture_dir(version).join(name)).expect("fixture file");
            let r = NodeRecord::from_bytes(&bytes).expect("reads");
            assert!(r.completed_payments.is_empty(), "v{version} {name}");
        }
    }
}

/// A node restored from version-3 records derives every channel's keys again from its seed:
/// the restored channels' funding outputs are the ones their records name.
#[test]
fn channels_restored_from_key_indices_have_their_keys_back() {
    let mut net = network_in_flight();
    net.disconnect(0, 1);
    net.disconnect(1, 2);
    for i in 0..3 {
        let core = &net.nodes[i].core;
        let restored = NodeCore::restore(
            node_secret(43, i),
            node_seed(43, i),
            core.config().clone(),
            core.node_record(),
            core.channel_records(),
        );
        for d in core.list_channels() {
            let peer = d.counterparty_node_id;
            let live = core.channel(&peer, &d.channel_id).unwrap();
            let back = restored.channel(&peer, &d.channel_id).unwrap();
            assert!(live.key_index().is_some(), "node {i}: derived keys");
            assert_eq!(back, live, "node {i}: the same channel, keys and all");
        }
    }
}

/// Every stored byte string of a small network, at every commit.
#[derive(Default)]
struct Stored {
    records: Vec<Vec<u8>>,
    resolutions: usize,
}

impl Stored {
    fn snapshot(&mut self, net: &Net) {
        for node in &net.nodes {
            for c in node.core.channel_records() {
                self.records.push(c.to_bytes().unwrap());
            }
            self.records
                .push(node.core.node_record().to_bytes().unwrap());
        }
    }
}

/// As `Net::run`, taking every record each commit would write, resolutions included.
fn run_storing(net: &mut Net, pending: &mut [Pending], stored: &mut Stored) {
    for _ in 0..400 {
        let mut any = false;
        for i in 0..net.nodes.len() {
            net.commit(i);
            let outputs = net.nodes[i].core.drain_outputs();
            for output in outputs {
                any = true;
                match output {
                    Output::SendMessage { node_id, msg } => {
                        let to = (0..net.nodes.len())
                            .find(|&j| net.id(j) == node_id)
                            .unwrap();
                        net.inflight.push_back((i, to, msg.encode()));
                    }
                    Output::Event(e) => net.nodes[i].events.push(e),
                    Output::Forward(f) => net.nodes[i].core.handle_forward(f),
                    Output::Resolve(r) => {
                        // What the engine stores for a resolution crossing shards.
                        stored.records.push(r.to_record().to_bytes().unwrap());
                        stored.resolutions += 1;
                        net.nodes[i].core.handle_resolution(r);
                    }
                    _ => {}
                }
            }
        }
        stored.snapshot(net);
        claim_ready(net, pending);
        while net.deliver_one() {
            any = true;
        }
        if !any {
            return;
        }
    }
    panic!("the network did not settle");
}

/// The promise: no record of a channel opened under this format holds any of its
/// secret keys. Channels are opened, payments run both ways through a forwarding node, and
/// every record each node would store at every commit (channel records, node records,
/// forward resolutions) is searched for each 32-byte secret of every channel (funding key,
/// revocation, payment, delayed-payment and HTLC base secrets, per-commitment seed), and for
/// the node secret and seed.
#[test]
fn no_stored_record_of_a_new_channel_holds_any_of_its_secret_keys() {
    let seed_base = 46;
    let mut net = Net::new(3, seed_base);
    net.connect(0, 1);
    net.connect(1, 2);
    let (c01, s01) = net.open_channel(0, 1, SATS, SATS * 300);
    let (c12, s12) = net.open_channel(1, 2, SATS, SATS * 300);
    let mut stored = Stored::default();
    stored.snapshot(&net);
    let mut pending = Vec::new();
    for round in 0..3u64 {
        pending.push(start_payment(
            &mut net,
            &[0, 1, 2],
            &[s01, s12],
            3_000_000,
            10 + round,
        ));
        pending.push(start_payment(
            &mut net,
            &[2, 1, 0],
            &[s12, s01],
            2_000_000,
            20 + round,
        ));
        run_storing(&mut net, &mut pending, &mut stored);
    }
    assert_sent(&net, &pending, "payments");
    // One NodeCore per node resolves its forwards inside itself; resolutions cross only
    // between shards (the engine's tests run those). Whatever crossed here was searched too.
    let _ = stored.resolutions;

    // Every channel's secrets, derived as the node derives them, checked against the
    // channel's funding output (so they are the keys the channel really uses).
    let mut secrets: Vec<(String, [u8; 32])> = Vec::new();
    let secp = Secp256k1::new();
    for (a, b, channel_id) in [(0, 1, c01), (1, 2, c12)] {
        let keys = |i: usize, peer: usize| {
            let c = net.nodes[i]
                .core
                .channel(&net.id(peer), &channel_id)
                .unwrap();
            let index = c.key_index().expect("derived keys");
            derive_peer_channel_keys(&node_seed(seed_base, i), &net.id(peer), index)
        };
        let (ka, kb) = (keys(a, b), keys(b, a));
        let (pa, pb) = (ka.public_keys(&secp), kb.public_keys(&secp));
        let expected = funding_output(&pa.funding_pubkey, &pb.funding_pubkey, SATS).script_pubkey;
        for (i, peer) in [(a, b), (b, a)] {
            let c = net.nodes[i]
                .core
                .channel(&net.id(peer), &channel_id)
                .unwrap();
            assert_eq!(
                c.funding_script_pubkey(),
                expected,
                "node {i}: the derived keys"
            );
        }
        for (i, k) in [(a, &ka), (b, &kb)] {
            let tag = |what: &str| format!("node {i} channel {channel_id} {what}");
            secrets.push((tag("funding key"), k.funding_key.secret_bytes()));
            secrets.push((tag("revocation base"), k.revocation_base_key.secret_bytes()));
            secrets.push((tag("payment base"), k.payment_base_key.secret_bytes()));
            secrets.push((
                tag("delayed base"),
                k.delayed_payment_base_key.secret_bytes(),
            ));
            secrets.push((tag("htlc base"), k.htlc_base_key.secret_bytes()));
            secrets.push((tag("commitment seed"), k.commitment_seed));
        }
    }
    for i in 0..3 {
        secrets.push((
            format!("node {i} secret"),
            node_secret(seed_base, i).secret_bytes(),
        ));
        secrets.push((format!("node {i} seed"), node_seed(seed_base, i)));
    }
    assert_eq!(secrets.len(), 2 * 2 * 6 + 6);
    let mut searched = 0usize;
    for bytes in &stored.records {
        for (what, secret) in &secrets {
            assert!(
                !bytes.windows(32).any(|w| w == secret),
                "a stored record of {} bytes holds the {what}",
                bytes.len()
            );
        }
        searched += bytes.len();
    }
    assert!(
        stored.records.len() > 50 && searched > 50_000,
        "{searched} bytes searched"
    );
    // The search would find a secret: a record holding stored keys (as one of format
    // version 2 did) is caught.
    let mut with_keys = net.nodes[0]
        .core
        .snapshot_channel(&net.id(1), &c01)
        .unwrap();
    let k = derive_peer_channel_keys(&node_seed(seed_base, 0), &net.id(1), 0);
    with_keys.channel.keys = ChannelKeysRecord::Stored(StoredChannelKeys {
        funding_key: k.funding_key,
        revocation_base_key: k.revocation_base_key,
        payment_base_key: k.payment_base_key,
        delayed_payment_base_key: k.delayed_payment_base_key,
        htlc_base_key: k.htlc_base_key,
        commitment_seed: k.commitment_seed,
    });
    let bytes = with_keys.to_bytes().unwrap();
    assert!(bytes.windows(32).any(|w| w == k.funding_key.secret_bytes()));
}
