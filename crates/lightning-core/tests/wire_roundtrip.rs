//! Property tests for every typed wire message: proptest strategies for each, encode/decode
//! round trips (value and bytes), truncation at every prefix, trailing bytes, and random input.

use std::sync::OnceLock;

use lightning_core::bitcoin::constants::ChainHash;
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::{ScriptBuf, Txid};
use lightning_core::secp256k1::{ecdsa::Signature, All, PublicKey, Secp256k1, SecretKey};
use lightning_core::ser::DecodeError;
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};
use lightning_core::wire::{
    AcceptChannel, AttributionData, ChannelReady, ChannelReestablish, ClosingFeeRange,
    ClosingSigned, CommitmentSigned, ErrorMessage, Features, FundingCreated, FundingSigned,
    FundingTxidFlags, Hostname, Init, Message, OpenChannel, Ping, Pong, RevokeAndAck, Shutdown,
    SocketAddress, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc, UpdateFee,
    UpdateFulfillHtlc, Warning, WireMessage, ONION_PACKET_LEN,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn secp() -> &'static Secp256k1<All> {
    static SECP: OnceLock<Secp256k1<All>> = OnceLock::new();
    SECP.get_or_init(Secp256k1::new)
}

// ---- strategies for the field types ----

fn arb_point() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_filter_map("valid secret key", |b| {
        SecretKey::from_slice(&b)
            .ok()
            .map(|sk| PublicKey::from_secret_key(secp(), &sk))
    })
}

fn arb_sig() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_filter_map("r and s below n", |(r, s)| {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(&s);
        Signature::from_compact(&bytes).ok()
    })
}

fn arb_channel_id() -> impl Strategy<Value = ChannelId> {
    any::<[u8; 32]>().prop_map(ChannelId)
}

fn arb_txid() -> impl Strategy<Value = Txid> {
    any::<[u8; 32]>().prop_map(Txid::from_byte_array)
}

/// Any bitfield, leading zero bytes included (their length must survive a round trip).
fn arb_features() -> impl Strategy<Value = Features> {
    vec(any::<u8>(), 0..10).prop_map(|b| Features::from_wire_bytes(&b))
}

fn arb_script() -> impl Strategy<Value = ScriptBuf> {
    vec(any::<u8>(), 0..60).prop_map(ScriptBuf::from_bytes)
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn arb_address() -> impl Strategy<Value = SocketAddress> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(addr, port)| SocketAddress::Ipv4 { addr, port }),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(addr, port)| SocketAddress::Ipv6 { addr, port }),
        any::<[u8; 12]>().prop_map(SocketAddress::OnionV2),
        (any::<[u8; 32]>(), any::<u16>(), any::<u8>(), any::<u16>()).prop_map(
            |(ed25519_pubkey, checksum, version, port)| SocketAddress::OnionV3 {
                ed25519_pubkey,
                checksum,
                version,
                port
            }
        ),
        ("[a-z0-9.-]{0,40}", any::<u16>()).prop_map(|(name, port)| SocketAddress::Hostname {
            hostname: Hostname::new(name).expect("the regex only makes short ascii"),
            port
        }),
        (prop_oneof![Just(0u8), 6u8..=255], arb_bytes(20))
            .prop_map(|(address_type, data)| { SocketAddress::Unknown { address_type, data } }),
    ]
}

fn arb_attribution() -> impl Strategy<Value = Box<AttributionData>> {
    (
        any::<[u32; 20]>(),
        vec(any::<[u8; 4]>(), AttributionData::HMACS),
    )
        .prop_map(|(htlc_hold_times, hmacs)| {
            let mut truncated_hmacs = [[0u8; 4]; AttributionData::HMACS];
            truncated_hmacs.copy_from_slice(&hmacs);
            Box::new(AttributionData {
                htlc_hold_times,
                truncated_hmacs,
            })
        })
}

fn arb_funding_flags() -> impl Strategy<Value = FundingTxidFlags> {
    (arb_txid(), any::<u8>()).prop_map(|(txid, retransmit_flags)| FundingTxidFlags {
        txid,
        retransmit_flags,
    })
}

// ---- strategies for the messages ----

fn arb_init() -> impl Strategy<Value = Init> {
    (
        arb_features(),
        arb_features(),
        option::of(vec(any::<[u8; 32]>().prop_map(ChainHash::from), 0..4)),
        option::of(arb_address()),
    )
        .prop_map(|(global_features, features, networks, remote_addr)| Init {
            global_features,
            features,
            networks,
            remote_addr,
        })
}

fn arb_error() -> impl Strategy<Value = ErrorMessage> {
    (arb_channel_id(), arb_bytes(100))
        .prop_map(|(channel_id, data)| ErrorMessage { channel_id, data })
}

fn arb_warning() -> impl Strategy<Value = Warning> {
    (arb_channel_id(), arb_bytes(100)).prop_map(|(channel_id, data)| Warning { channel_id, data })
}

fn arb_ping() -> impl Strategy<Value = Ping> {
    (any::<u16>(), arb_bytes(100)).prop_map(|(num_pong_bytes, ignored)| Ping {
        num_pong_bytes,
        ignored,
    })
}

fn arb_pong() -> impl Strategy<Value = Pong> {
    arb_bytes(100).prop_map(|ignored| Pong { ignored })
}

fn arb_points6() -> impl Strategy<Value = [PublicKey; 6]> {
    (
        arb_point(),
        arb_point(),
        arb_point(),
        arb_point(),
        arb_point(),
        arb_point(),
    )
        .prop_map(|(a, b, c, d, e, f)| [a, b, c, d, e, f])
}

fn arb_open_channel() -> impl Strategy<Value = OpenChannel> {
    (
        (any::<[u8; 32]>(), arb_channel_id(), any::<[u64; 6]>()),
        (any::<u32>(), any::<u16>(), any::<u16>(), any::<u8>()),
        arb_points6(),
        option::of(arb_script()),
        option::of(arb_features()),
    )
        .prop_map(
            |((chain, id, amounts), (feerate, delay, max_htlcs, flags), keys, script, ct)| {
                let [funding, revocation, payment, delayed, htlc, first] = keys;
                let [funding_sat, push, dust, max_in_flight, reserve, htlc_min] = amounts;
                OpenChannel {
                    chain_hash: ChainHash::from(chain),
                    temporary_channel_id: id,
                    funding_satoshis: funding_sat,
                    push_msat: push,
                    dust_limit_satoshis: dust,
                    max_htlc_value_in_flight_msat: max_in_flight,
                    channel_reserve_satoshis: reserve,
                    htlc_minimum_msat: htlc_min,
                    feerate_per_kw: feerate,
                    to_self_delay: delay,
                    max_accepted_htlcs: max_htlcs,
                    funding_pubkey: funding,
                    revocation_basepoint: revocation,
                    payment_basepoint: payment,
                    delayed_payment_basepoint: delayed,
                    htlc_basepoint: htlc,
                    first_per_commitment_point: first,
                    channel_flags: flags,
                    upfront_shutdown_script: script,
                    channel_type: ct,
                }
            },
        )
}

fn arb_accept_channel() -> impl Strategy<Value = AcceptChannel> {
    (
        (arb_channel_id(), any::<[u64; 4]>()),
        (any::<u32>(), any::<u16>(), any::<u16>()),
        arb_points6(),
        option::of(arb_script()),
        option::of(arb_features()),
    )
        .prop_map(
            |((id, amounts), (depth, delay, max_htlcs), keys, script, ct)| {
                let [funding, revocation, payment, delayed, htlc, first] = keys;
                let [dust, max_in_flight, reserve, htlc_min] = amounts;
                AcceptChannel {
                    temporary_channel_id: id,
                    dust_limit_satoshis: dust,
                    max_htlc_value_in_flight_msat: max_in_flight,
                    channel_reserve_satoshis: reserve,
                    htlc_minimum_msat: htlc_min,
                    minimum_depth: depth,
                    to_self_delay: delay,
                    max_accepted_htlcs: max_htlcs,
                    funding_pubkey: funding,
                    revocation_basepoint: revocation,
                    payment_basepoint: payment,
                    delayed_payment_basepoint: delayed,
                    htlc_basepoint: htlc,
                    first_per_commitment_point: first,
                    upfront_shutdown_script: script,
                    channel_type: ct,
                }
            },
        )
}

fn arb_funding_created() -> impl Strategy<Value = FundingCreated> {
    (arb_channel_id(), arb_txid(), any::<u16>(), arb_sig()).prop_map(
        |(temporary_channel_id, funding_txid, funding_output_index, signature)| FundingCreated {
            temporary_channel_id,
            funding_txid,
            funding_output_index,
            signature,
        },
    )
}

fn arb_funding_signed() -> impl Strategy<Value = FundingSigned> {
    (arb_channel_id(), arb_sig()).prop_map(|(channel_id, signature)| FundingSigned {
        channel_id,
        signature,
    })
}

fn arb_channel_ready() -> impl Strategy<Value = ChannelReady> {
    (
        arb_channel_id(),
        arb_point(),
        option::of(any::<u64>().prop_map(ShortChannelId)),
    )
        .prop_map(
            |(channel_id, second_per_commitment_point, short_channel_id_alias)| ChannelReady {
                channel_id,
                second_per_commitment_point,
                short_channel_id_alias,
            },
        )
}

fn arb_update_add_htlc() -> impl Strategy<Value = UpdateAddHtlc> {
    (
        arb_channel_id(),
        any::<u64>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u32>(),
        vec(any::<u8>(), ONION_PACKET_LEN),
        option::of(arb_point()),
    )
        .prop_map(
            |(channel_id, id, amount_msat, hash, cltv_expiry, onion, path_key)| {
                let mut packet = Box::new([0u8; ONION_PACKET_LEN]);
                packet.copy_from_slice(&onion);
                UpdateAddHtlc {
                    channel_id,
                    id,
                    amount_msat,
                    payment_hash: PaymentHash(hash),
                    cltv_expiry,
                    onion_routing_packet: packet,
                    path_key,
                }
            },
        )
}

fn arb_update_fulfill_htlc() -> impl Strategy<Value = UpdateFulfillHtlc> {
    (
        arb_channel_id(),
        any::<u64>(),
        any::<[u8; 32]>(),
        option::of(arb_attribution()),
    )
        .prop_map(
            |(channel_id, id, preimage, attribution_data)| UpdateFulfillHtlc {
                channel_id,
                id,
                payment_preimage: PaymentPreimage(preimage),
                attribution_data,
            },
        )
}

fn arb_update_fail_htlc() -> impl Strategy<Value = UpdateFailHtlc> {
    (
        arb_channel_id(),
        any::<u64>(),
        arb_bytes(300),
        option::of(arb_attribution()),
    )
        .prop_map(
            |(channel_id, id, reason, attribution_data)| UpdateFailHtlc {
                channel_id,
                id,
                reason,
                attribution_data,
            },
        )
}

fn arb_update_fail_malformed_htlc() -> impl Strategy<Value = UpdateFailMalformedHtlc> {
    (
        arb_channel_id(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u16>(),
    )
        .prop_map(
            |(channel_id, id, sha256_of_onion, failure_code)| UpdateFailMalformedHtlc {
                channel_id,
                id,
                sha256_of_onion,
                failure_code,
            },
        )
}

fn arb_commitment_signed() -> impl Strategy<Value = CommitmentSigned> {
    (
        arb_channel_id(),
        arb_sig(),
        vec(arb_sig(), 0..6),
        option::of(arb_txid()),
    )
        .prop_map(
            |(channel_id, signature, htlc_signatures, funding_txid)| CommitmentSigned {
                channel_id,
                signature,
                htlc_signatures,
                funding_txid,
            },
        )
}

fn arb_revoke_and_ack() -> impl Strategy<Value = RevokeAndAck> {
    (arb_channel_id(), any::<[u8; 32]>(), arb_point()).prop_map(
        |(channel_id, per_commitment_secret, next_per_commitment_point)| RevokeAndAck {
            channel_id,
            per_commitment_secret,
            next_per_commitment_point,
        },
    )
}

fn arb_update_fee() -> impl Strategy<Value = UpdateFee> {
    (arb_channel_id(), any::<u32>()).prop_map(|(channel_id, feerate_per_kw)| UpdateFee {
        channel_id,
        feerate_per_kw,
    })
}

fn arb_shutdown() -> impl Strategy<Value = Shutdown> {
    (arb_channel_id(), arb_script()).prop_map(|(channel_id, scriptpubkey)| Shutdown {
        channel_id,
        scriptpubkey,
    })
}

fn arb_closing_signed() -> impl Strategy<Value = ClosingSigned> {
    (
        arb_channel_id(),
        any::<u64>(),
        arb_sig(),
        option::of((any::<u64>(), any::<u64>())),
    )
        .prop_map(
            |(channel_id, fee_satoshis, signature, range)| ClosingSigned {
                channel_id,
                fee_satoshis,
                signature,
                fee_range: range.map(|(min_fee_satoshis, max_fee_satoshis)| ClosingFeeRange {
                    min_fee_satoshis,
                    max_fee_satoshis,
                }),
            },
        )
}

fn arb_channel_reestablish() -> impl Strategy<Value = ChannelReestablish> {
    (
        arb_channel_id(),
        any::<u64>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        arb_point(),
        option::of(arb_funding_flags()),
        option::of(arb_funding_flags()),
    )
        .prop_map(
            |(channel_id, next_c, next_r, secret, point, next_funding, locked)| {
                ChannelReestablish {
                    channel_id,
                    next_commitment_number: next_c,
                    next_revocation_number: next_r,
                    your_last_per_commitment_secret: secret,
                    my_current_per_commitment_point: point,
                    next_funding,
                    my_current_funding_locked: locked,
                }
            },
        )
}

/// Any typed message.
fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        arb_init().prop_map(Message::from),
        arb_error().prop_map(Message::from),
        arb_warning().prop_map(Message::from),
        arb_ping().prop_map(Message::from),
        arb_pong().prop_map(Message::from),
        arb_open_channel().prop_map(Message::from),
        arb_accept_channel().prop_map(Message::from),
        arb_funding_created().prop_map(Message::from),
        arb_funding_signed().prop_map(Message::from),
        arb_channel_ready().prop_map(Message::from),
        arb_update_add_htlc().prop_map(Message::from),
        arb_update_fulfill_htlc().prop_map(Message::from),
        arb_update_fail_htlc().prop_map(Message::from),
        arb_update_fail_malformed_htlc().prop_map(Message::from),
        arb_commitment_signed().prop_map(Message::from),
        arb_revoke_and_ack().prop_map(Message::from),
        arb_update_fee().prop_map(Message::from),
        arb_shutdown().prop_map(Message::from),
        arb_closing_signed().prop_map(Message::from),
        arb_channel_reestablish().prop_map(Message::from),
    ]
}

/// The same message with every optional TLV removed: its encoding is the fixed part alone.
fn without_tlvs(m: &Message) -> Message {
    let mut m = m.clone();
    match &mut m {
        Message::Init(x) => {
            x.networks = None;
            x.remote_addr = None;
        }
        Message::OpenChannel(x) => {
            x.upfront_shutdown_script = None;
            x.channel_type = None;
        }
        Message::AcceptChannel(x) => {
            x.upfront_shutdown_script = None;
            x.channel_type = None;
        }
        Message::ChannelReady(x) => x.short_channel_id_alias = None,
        Message::UpdateAddHtlc(x) => x.path_key = None,
        Message::UpdateFulfillHtlc(x) => x.attribution_data = None,
        Message::UpdateFailHtlc(x) => x.attribution_data = None,
        Message::CommitmentSigned(x) => x.funding_txid = None,
        Message::ClosingSigned(x) => x.fee_range = None,
        Message::ChannelReestablish(x) => {
            x.next_funding = None;
            x.my_current_funding_locked = None;
        }
        _ => {}
    }
    m
}

/// Encode then decode gives the value back, and decode then encode gives the bytes back,
/// both for the payload codec and for the framed message.
fn check_round_trip<T>(m: T) -> Result<(), TestCaseError>
where
    T: WireMessage + Clone + PartialEq + core::fmt::Debug + Into<Message>,
{
    let payload = m.encode_payload();
    let decoded = T::decode_payload(&payload);
    prop_assert_eq!(decoded.as_ref(), Ok(&m));
    prop_assert_eq!(decoded.map(|d| d.encode_payload()), Ok(payload.clone()));

    let bytes = m.encode();
    prop_assert_eq!(bytes.get(..2), Some(&T::TYPE.to_be_bytes()[..]));
    prop_assert_eq!(bytes.get(2..), Some(&payload[..]));
    let message: Message = m.into();
    prop_assert_eq!(message.encode(), bytes.clone());
    let decoded = Message::decode(&bytes);
    prop_assert_eq!(decoded.as_ref(), Ok(&message));
    prop_assert_eq!(decoded.map(|d| d.encode()), Ok(bytes));
    Ok(())
}

macro_rules! round_trip_tests {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $name(m in $strategy) {
                    check_round_trip(m)?;
                }
            )*
        }
    };
}

round_trip_tests! {
    init_round_trips: arb_init();
    error_round_trips: arb_error();
    warning_round_trips: arb_warning();
    ping_round_trips: arb_ping();
    pong_round_trips: arb_pong();
    open_channel_round_trips: arb_open_channel();
    accept_channel_round_trips: arb_accept_channel();
    funding_created_round_trips: arb_funding_created();
    funding_signed_round_trips: arb_funding_signed();
    channel_ready_round_trips: arb_channel_ready();
    update_add_htlc_round_trips: arb_update_add_htlc();
    update_fulfill_htlc_round_trips: arb_update_fulfill_htlc();
    update_fail_htlc_round_trips: arb_update_fail_htlc();
    update_fail_malformed_htlc_round_trips: arb_update_fail_malformed_htlc();
    commitment_signed_round_trips: arb_commitment_signed();
    revoke_and_ack_round_trips: arb_revoke_and_ack();
    update_fee_round_trips: arb_update_fee();
    shutdown_round_trips: arb_shutdown();
    closing_signed_round_trips: arb_closing_signed();
    channel_reestablish_round_trips: arb_channel_reestablish();
}

/// The message types the typed decoders handle.
const TYPED: [u16; 20] = [
    1, 16, 17, 18, 19, 32, 33, 34, 35, 36, 38, 39, 128, 130, 131, 132, 133, 134, 135, 136,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every prefix of a valid message either fails with a short read, or (when it ends
    /// exactly on a TLV record boundary after the fixed fields) decodes to the message with
    /// fewer TLVs, whose encoding is that prefix. Every prefix shorter than the fixed fields
    /// fails.
    #[test]
    fn every_truncation_is_a_short_read_or_a_record_boundary(m in arb_message()) {
        let bytes = m.encode();
        let fixed = without_tlvs(&m).encode().len();
        for len in 0..bytes.len() {
            let prefix = bytes.get(..len).unwrap_or_default();
            match Message::decode(prefix) {
                Err(DecodeError::ShortRead { .. }) => {}
                Ok(v) => {
                    prop_assert!(len >= fixed, "prefix {} of {} (fixed {}) decoded", len, bytes.len(), fixed);
                    prop_assert_eq!(v.encode(), prefix.to_vec());
                }
                Err(e) => prop_assert!(false, "prefix {}: unexpected error {:?}", len, e),
            }
        }
    }

    /// Bytes after the last field that are not a valid TLV stream are an error; a valid
    /// unknown odd record is ignored; an unknown even record is an error.
    #[test]
    fn trailing_bytes_must_be_a_valid_extension(m in arb_message()) {
        let bytes = m.encode();

        let mut lone = bytes.clone();
        lone.push(0x00);
        let lone_is_short = matches!(
            Message::decode(&lone),
            Err(DecodeError::ShortRead { field: "tlv length", needed: 1, remaining: 0 })
        );
        prop_assert!(lone_is_short);

        let mut truncated_type = bytes.clone();
        truncated_type.extend_from_slice(&[0xff, 0x00]);
        let type_is_short = matches!(
            Message::decode(&truncated_type),
            Err(DecodeError::ShortRead { field: "tlv type", .. })
        );
        prop_assert!(type_is_short);

        let mut even = bytes.clone();
        even.extend_from_slice(&[0xfe, 0x00, 0x01, 0x00, 0x00, 0x00]);
        prop_assert_eq!(
            Message::decode(&even),
            Err(DecodeError::UnknownEvenTlv { tlv_type: 65536 })
        );

        let mut odd = bytes.clone();
        odd.extend_from_slice(&[0xfe, 0x00, 0x01, 0x00, 0x01, 0x02, 0xaa, 0xbb]);
        prop_assert_eq!(Message::decode(&odd), Ok(m));

        let mut non_canonical = bytes;
        non_canonical.extend_from_slice(&[0xfd, 0x00, 0x01, 0x00]);
        prop_assert_eq!(
            Message::decode(&non_canonical),
            Err(DecodeError::NonCanonicalBigSize { value: 1 })
        );
    }

    /// Random payloads behind a typed message type never panic, and whatever decodes
    /// re-encodes to something that decodes to the same value.
    #[test]
    fn random_payloads_never_panic(t in proptest::sample::select(TYPED.to_vec()), payload in vec(any::<u8>(), 0..1600)) {
        let mut bytes = t.to_be_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.message_type(), t);
            prop_assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }

    /// Random bytes never panic; any type decodes, errors, or is an ignorable odd type.
    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..200)) {
        match Message::decode(&bytes) {
            Ok(Message::Unknown { message_type }) => prop_assert!(message_type % 2 == 1),
            Ok(m) => prop_assert_eq!(Message::decode(&m.encode()), Ok(m)),
            Err(DecodeError::UnknownEvenMessage { message_type }) => {
                prop_assert!(message_type % 2 == 0 && !TYPED.contains(&message_type))
            }
            Err(_) => {}
        }
    }
}

#[test]
fn unknown_odd_tlvs_are_dropped_not_kept() {
    // A decoded message keeps only what it understands: re-encoding drops unknown odd records.
    let mut bytes = UpdateFee {
        channel_id: ChannelId([1; 32]),
        feerate_per_kw: 1000,
    }
    .encode();
    let canonical = bytes.clone();
    bytes.extend_from_slice(&[0x0b, 0x01, 0x00]);
    let m = Message::decode(&bytes).expect("unknown odd tlv is ignored");
    assert_eq!(m.encode(), canonical);
}
