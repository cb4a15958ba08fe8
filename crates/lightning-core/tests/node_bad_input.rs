//! Bad input at the node: each kind gets the BOLT answer it deserves (warning, error,
//! disconnection, channel failure) and touches nothing else.

mod node_support;

use lightning_core::node::{ClosureReason, Event, Output};
use lightning_core::secp256k1::{Message as SecpMessage, Secp256k1, SecretKey};
use lightning_core::types::{ChannelId, PaymentHash};
use lightning_core::wire::{CommitmentSigned, Message, UpdateAddHtlc};
use node_support::Net;

const SATS: u64 = 1_000_000;

/// Node 0 with a channel to node 1 and one to node 2, one payment done on each.
fn hub() -> (Net, ChannelId, ChannelId) {
    let mut net = Net::new(3, 40);
    net.connect(0, 1);
    net.connect(0, 2);
    let (c01, s01) = net.open_channel(0, 1, SATS, 0);
    let (c02, s02) = net.open_channel(0, 2, SATS, 0);
    net.pay(&[0, 1], &[s01], 5_000_000, 1);
    net.pay(&[0, 2], &[s02], 5_000_000, 2);
    for i in 0..3 {
        net.take_events(i);
        net.nodes[i].sent.clear();
    }
    (net, c01, c02)
}

/// Delivers `bytes` from `from` to `to` and returns what `to` produced.
fn inject(net: &mut Net, from: usize, to: usize, bytes: &[u8]) -> Vec<Output> {
    let from_id = net.id(from);
    net.nodes[to].core.handle_message(from_id, bytes);
    net.nodes[to].core.drain_outputs()
}

fn snapshot(
    net: &Net,
    node: usize,
    peer: usize,
    channel: ChannelId,
) -> lightning_core::channel::Channel {
    net.nodes[node]
        .core
        .channel(&net.id(peer), &channel)
        .expect("channel exists")
        .clone()
}

fn a_signature() -> lightning_core::secp256k1::ecdsa::Signature {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[7; 32]).unwrap();
    secp.sign_ecdsa(&SecpMessage::from_digest([9; 32]), &key)
}

#[test]
fn message_naming_another_peers_channel_is_refused_and_changes_nothing() {
    let (mut net, c01, c02) = hub();
    let before = (snapshot(&net, 0, 1, c01), snapshot(&net, 0, 2, c02));
    // Node 2 tries to add an HTLC on node 0's channel with node 1.
    let add = UpdateAddHtlc {
        channel_id: c01,
        id: 0,
        amount_msat: 1_000_000,
        payment_hash: PaymentHash([1; 32]),
        cltv_expiry: 500,
        onion_routing_packet: Box::new([0; 1366]),
        path_key: None,
    };
    let outputs = inject(&mut net, 2, 0, &Message::UpdateAddHtlc(add).encode());
    let id2 = net.id(2);
    match outputs.as_slice() {
        [Output::SendMessage {
            node_id,
            msg: Message::Error(e),
        }] => {
            assert_eq!(*node_id, id2, "the answer goes to the sender only");
            assert_eq!(e.channel_id, c01);
            assert!(String::from_utf8_lossy(&e.data).contains("not a channel with this peer"));
        }
        other => panic!("expected one error to node 2, got {other:?}"),
    }
    assert_eq!(
        before,
        (snapshot(&net, 0, 1, c01), snapshot(&net, 0, 2, c02)),
        "no channel changed"
    );
    // Node 1's channel still carries payments.
    let s01 = net.details(0, c01).unwrap().short_channel_id.unwrap();
    net.pay(&[0, 1], &[s01], 5_000_000, 3);
}

#[test]
fn undecodable_bytes_get_a_warning_and_a_disconnection_and_nothing_else() {
    let (mut net, c01, c02) = hub();
    let before = snapshot(&net, 0, 2, c02);
    // A truncated commitment_signed.
    let outputs = inject(&mut net, 1, 0, &[0x00, 0x84, 0x01, 0x02]);
    let id1 = net.id(1);
    match outputs.as_slice() {
        [Output::SendMessage {
            node_id,
            msg: Message::Warning(w),
        }, Output::Disconnect { node_id: d }] => {
            assert_eq!((*node_id, *d), (id1, id1));
            assert_eq!(w.channel_id, ChannelId::ALL);
            let text = String::from_utf8_lossy(&w.data);
            assert!(text.contains("cannot decode message"), "{text}");
        }
        other => panic!("expected warning then disconnect, got {other:?}"),
    }
    assert_eq!(
        before,
        snapshot(&net, 0, 2, c02),
        "the other peer's channel is untouched"
    );
    assert!(
        net.nodes[0].core.channel(&id1, &c01).is_some(),
        "the channel is not closed"
    );
}

#[test]
fn unknown_even_message_type_disconnects_unknown_odd_is_ignored() {
    let (mut net, _, c02) = hub();
    let before = snapshot(&net, 0, 2, c02);
    assert!(
        inject(&mut net, 1, 0, &[0x01, 0x01, 0xaa]).is_empty(),
        "odd type 257... is gossip; ignored"
    );
    assert!(
        inject(&mut net, 1, 0, &[0x7f, 0xff, 0xaa]).is_empty(),
        "unknown odd type ignored"
    );
    let outputs = inject(&mut net, 1, 0, &[0x7f, 0xfe, 0xaa]);
    assert!(
        matches!(outputs.last(), Some(Output::Disconnect { .. })),
        "{outputs:?}"
    );
    assert!(
        matches!(&outputs[0], Output::SendMessage { msg: Message::Warning(w), .. } if String::from_utf8_lossy(&w.data).contains("unknown even message type 32766"))
    );
    assert_eq!(before, snapshot(&net, 0, 2, c02));
}

#[test]
fn bad_commitment_signature_fails_only_that_channel() {
    let (mut net, c01, c02) = hub();
    let before = snapshot(&net, 0, 2, c02);
    let cs = CommitmentSigned {
        channel_id: c01,
        signature: a_signature(),
        htlc_signatures: vec![],
        funding_txid: None,
    };
    let outputs = inject(&mut net, 1, 0, &Message::CommitmentSigned(cs).encode());
    let id1 = net.id(1);
    let error = outputs.iter().find_map(|o| match o {
        Output::SendMessage {
            node_id,
            msg: Message::Error(e),
        } if *node_id == id1 => Some(e.clone()),
        _ => None,
    });
    let error = error.unwrap_or_else(|| panic!("an error for the channel: {outputs:?}"));
    assert_eq!(error.channel_id, c01);
    assert!(outputs.iter().any(|o| matches!(o, Output::Event(Event::ChannelClosed { channel_id, reason: ClosureReason::ProcessingError { .. }, .. }) if *channel_id == c01)));
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Event(Event::BroadcastTransaction { .. }))),
        "our commitment is broadcast"
    );
    assert!(
        net.nodes[0].core.channel(&id1, &c01).is_none(),
        "the channel is failed"
    );
    assert_eq!(
        before,
        snapshot(&net, 0, 2, c02),
        "the other channel is untouched"
    );
}

#[test]
fn htlc_id_gap_fails_the_channel() {
    let (mut net, c01, c02) = hub();
    let before = snapshot(&net, 0, 2, c02);
    let add = UpdateAddHtlc {
        channel_id: c01,
        id: 1_000,
        amount_msat: 1_000_000,
        payment_hash: PaymentHash([1; 32]),
        cltv_expiry: 500,
        onion_routing_packet: Box::new([0; 1366]),
        path_key: None,
    };
    let outputs = inject(&mut net, 1, 0, &Message::UpdateAddHtlc(add).encode());
    assert!(outputs.iter().any(|o| matches!(o, Output::SendMessage { msg: Message::Error(e), .. } if e.channel_id == c01)), "{outputs:?}");
    assert!(net.nodes[0].core.channel(&net.id(1), &c01).is_none());
    assert_eq!(before, snapshot(&net, 0, 2, c02));
}

#[test]
fn messages_before_init_disconnect() {
    let mut net = Net::new(2, 41);
    let id1 = net.id(1);
    net.nodes[0].core.peer_connected(id1);
    net.nodes[0].core.drain_outputs();
    let ping = lightning_core::wire::Ping {
        num_pong_bytes: 4,
        ignored: vec![],
    };
    let outputs = inject(&mut net, 1, 0, &Message::Ping(ping).encode());
    assert_eq!(outputs, vec![Output::Disconnect { node_id: id1 }]);
}

#[test]
fn unfunded_channels_per_peer_are_limited() {
    let mut net = Net::new(2, 42);
    net.connect(0, 1);
    let id0 = net.id(0);
    let limit = net.nodes[0].core.config().max_unfunded_channels_per_peer;
    let mut temps = Vec::new();
    for _ in 0..=limit {
        temps.push(
            net.nodes[1]
                .core
                .create_channel(id0, 100_000, 0, 0, 2500)
                .unwrap(),
        );
    }
    net.run();
    let refused = temps.last().copied().unwrap();
    let errors: Vec<ChannelId> = net.nodes[0]
        .sent
        .iter()
        .filter_map(|(_, bytes)| match Message::decode(bytes) {
            Ok(Message::Error(e)) => Some(e.channel_id),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        vec![refused],
        "only the channel over the limit is refused"
    );
    let accepted = net.nodes[0]
        .sent
        .iter()
        .filter(|(_, b)| matches!(Message::decode(b), Ok(Message::AcceptChannel(_))))
        .count();
    assert_eq!(accepted, limit);
    assert_eq!(net.nodes[0].core.list_channels().len(), limit);
}
