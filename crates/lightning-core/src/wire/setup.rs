//! BOLT 1 setup and control messages: `init`, `error`, `warning`, `ping` and `pong`.

use bitcoin::constants::ChainHash;

use super::address::SocketAddress;
use super::codec::{read_channel_id, read_extension};
use super::features::{Features, InitFeatures};
use super::WireMessage;
use crate::ser::{write_u16_prefixed, DecodeError, Reader};
use crate::tlv::TlvWriter;
use crate::types::ChannelId;

/// `init` (type 16): the first message on every connection, revealing the sender's features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// `globalfeatures`: the legacy half of the bitfield (BOLT 1: should hold no bit above 13).
    pub global_features: Features,
    /// `features`.
    pub features: Features,
    /// TLV 1 `networks`: the chains the sender is interested in (`None` when absent; an
    /// empty list is a present, empty record).
    pub networks: Option<Vec<ChainHash>>,
    /// TLV 3 `remote_addr`: the address the sender sees the receiver connecting from.
    pub remote_addr: Option<SocketAddress>,
}

impl Init {
    /// The highest bit a sender should put in `globalfeatures`.
    pub const MAX_GLOBAL_FEATURE_BIT: usize = 13;

    /// An `init` announcing `features`: `features` carries every bit and `globalfeatures`
    /// repeats bits 0 to 13 for old peers (the receiver ORs the two), minimally encoded.
    ///
    /// LDK 0.2 writes `globalfeatures` as `min(2, flen)` bytes even when they are zero
    /// (`0002 0000`); both forms decode to the same combined features.
    pub fn new(
        features: InitFeatures,
        networks: Option<Vec<ChainHash>>,
        remote_addr: Option<SocketAddress>,
    ) -> Init {
        Init {
            global_features: features.truncated_to(Self::MAX_GLOBAL_FEATURE_BIT),
            features,
            networks,
            remote_addr,
        }
    }

    /// BOLT 1: "MUST combine (bitwise OR) the two feature bitmaps into one logical `features`
    /// map".
    pub fn combined_features(&self) -> InitFeatures {
        self.global_features.or(&self.features)
    }
}

const INIT_NETWORKS: u64 = 1;
const INIT_REMOTE_ADDR: u64 = 3;

impl WireMessage for Init {
    const TYPE: u16 = 16;

    /// # Panics
    /// If a feature bitfield is longer than 65535 bytes (a caller bug: decoded ones fit).
    fn write_payload(&self, out: &mut Vec<u8>) {
        write_u16_prefixed(out, &self.global_features.to_wire_bytes());
        write_u16_prefixed(out, &self.features.to_wire_bytes());
        let mut tlvs = TlvWriter::new();
        tlvs.optional(
            INIT_NETWORKS,
            self.networks.as_ref().map(|chains| {
                chains
                    .iter()
                    .flat_map(|c| c.as_bytes().iter().copied())
                    .collect::<Vec<u8>>()
            }),
        );
        tlvs.optional(
            INIT_REMOTE_ADDR,
            self.remote_addr.as_ref().map(|a| {
                let mut v = Vec::new();
                a.write(&mut v);
                v
            }),
        );
        tlvs.finish(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let global_features =
            Features::from_wire_bytes(r.read_u16_prefixed("init.globalfeatures")?);
        let features = Features::from_wire_bytes(r.read_u16_prefixed("init.features")?);
        let mut networks = None;
        let mut remote_addr = None;
        for record in read_extension(&mut r, &[INIT_NETWORKS, INIT_REMOTE_ADDR])? {
            match record.tlv_type {
                INIT_NETWORKS => {
                    if record.value.len() % 32 != 0 {
                        return Err(DecodeError::InvalidValue {
                            field: "init.networks",
                            reason: "length is not a multiple of 32 bytes",
                        });
                    }
                    let mut chains = Vec::with_capacity(record.value.len() / 32);
                    let mut values = record.reader();
                    while !values.is_empty() {
                        chains.push(ChainHash::from(values.read_array::<32>("init.networks")?));
                    }
                    networks = Some(chains);
                }
                _ => {
                    remote_addr = Some(SocketAddress::decode_exact(
                        record.value,
                        "init.remote_addr",
                    )?);
                }
            }
        }
        Ok(Init {
            global_features,
            features,
            networks,
            remote_addr,
        })
    }
}

macro_rules! channel_notice {
    ($(#[$doc:meta])* $name:ident, $type:expr, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// The channel concerned, or [`ChannelId::ALL`] for every channel with the peer.
            pub channel_id: ChannelId,
            /// Free-form diagnostic bytes (often ASCII; print only if printable).
            pub data: Vec<u8>,
        }

        impl $name {
            /// The longest `data` that fits a 65535-byte message (type, channel id, length).
            pub const MAX_DATA_LEN: usize = 65535 - 2 - 32 - 2;

            /// A message about `channel_id` carrying `text`, cut to
            /// [`Self::MAX_DATA_LEN`] bytes so it always fits a message.
            pub fn new(channel_id: ChannelId, text: &str) -> Self {
                let bytes = text.as_bytes();
                let data = bytes.get(..Self::MAX_DATA_LEN).unwrap_or(bytes).to_vec();
                $name { channel_id, data }
            }

            /// Whether `data` is entirely printable ASCII (bytes 32 to 126), so it may be
            /// shown verbatim.
            pub fn is_printable(&self) -> bool {
                self.data.iter().all(|b| (32..=126).contains(b))
            }
        }

        impl WireMessage for $name {
            const TYPE: u16 = $type;

            /// # Panics
            /// If `data` is longer than 65535 bytes (a caller bug: see `new`).
            fn write_payload(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.channel_id.0);
                write_u16_prefixed(out, &self.data);
            }

            fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(payload);
                let channel_id = read_channel_id(&mut r, concat!($label, ".channel_id"))?;
                let data = r.read_u16_prefixed(concat!($label, ".data"))?.to_vec();
                read_extension(&mut r, &[])?;
                Ok($name { channel_id, data })
            }
        }
    };
}

channel_notice!(
    /// `error` (type 17): the sender fails the channel (or all channels when the id is zero).
    ErrorMessage,
    17,
    "error"
);

channel_notice!(
    /// `warning` (type 1): something is wrong, but the channel is not failed.
    Warning,
    1,
    "warning"
);

/// `ping` (type 18): asks for a `pong` of `num_pong_bytes` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// How many `ignored` bytes the `pong` must carry.
    pub num_pong_bytes: u16,
    /// Padding (should be zeros).
    pub ignored: Vec<u8>,
}

impl Ping {
    /// `num_pong_bytes` from this value up mean "do not reply" (BOLT 1).
    pub const NO_REPLY_THRESHOLD: u16 = 65532;

    /// The `pong` BOLT 1 requires in reply, or `None` when `num_pong_bytes` is 65532 or
    /// more and the `ping` must be ignored.
    pub fn pong(&self) -> Option<Pong> {
        (self.num_pong_bytes < Self::NO_REPLY_THRESHOLD).then(|| Pong {
            ignored: vec![0; usize::from(self.num_pong_bytes)],
        })
    }
}

impl WireMessage for Ping {
    const TYPE: u16 = 18;

    /// # Panics
    /// If `ignored` is longer than 65535 bytes (a caller bug).
    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.num_pong_bytes.to_be_bytes());
        write_u16_prefixed(out, &self.ignored);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let num_pong_bytes = r.read_u16("ping.num_pong_bytes")?;
        let ignored = r.read_u16_prefixed("ping.ignored")?.to_vec();
        read_extension(&mut r, &[])?;
        Ok(Ping {
            num_pong_bytes,
            ignored,
        })
    }
}

/// `pong` (type 19): the reply to a `ping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// Padding of the requested length (should be zeros).
    pub ignored: Vec<u8>,
}

impl WireMessage for Pong {
    const TYPE: u16 = 19;

    /// # Panics
    /// If `ignored` is longer than 65535 bytes (a caller bug).
    fn write_payload(&self, out: &mut Vec<u8>) {
        write_u16_prefixed(out, &self.ignored);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let ignored = r.read_u16_prefixed("pong.ignored")?.to_vec();
        read_extension(&mut r, &[])?;
        Ok(Pong { ignored })
    }
}

#[cfg(test)]
mod tests {
    use super::super::features::Feature;
    use super::*;

    #[test]
    fn init_global_features_hold_bits_up_to_13() {
        let mut f = Features::empty();
        f.set_required(Feature::VarOnionOptin);
        f.set_optional(Feature::StaticRemoteKey);
        f.set_optional(Feature::PaymentSecret);
        f.set_optional(Feature::Anchors);
        let init = Init::new(f.clone(), None, None);
        assert_eq!(init.global_features.to_wire_bytes(), vec![0x21, 0x00]);
        assert_eq!(init.features, f);
        assert_eq!(init.combined_features(), f);
        let bytes = init.encode_payload();
        assert_eq!(
            bytes,
            vec![0x00, 0x02, 0x21, 0x00, 0x00, 0x03, 0x80, 0xa1, 0x00]
        );
        assert_eq!(Init::decode_payload(&bytes), Ok(init));
    }

    #[test]
    fn init_keeps_padded_global_features_bytes() {
        // globalfeatures 0x0000 (two zero bytes, as LDK 0.2 writes them), features 0x0100.
        let bytes = [0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00];
        let init = Init::decode_payload(&bytes).unwrap();
        assert!(init.global_features.is_empty());
        assert_eq!(init.global_features.wire_len(), 2);
        assert!(init.combined_features().requires(Feature::VarOnionOptin));
        assert_eq!(init.encode_payload(), bytes);
    }

    #[test]
    fn init_combines_global_and_local() {
        let init = Init::decode_payload(&[0x00, 0x01, 0x02, 0x00, 0x02, 0x01, 0x00]).unwrap();
        assert_eq!(init.combined_features().to_wire_bytes(), vec![0x01, 0x02]);
    }

    #[test]
    fn init_networks_must_be_whole_chain_hashes() {
        // empty features, networks record of 31 bytes
        let mut bytes = vec![0, 0, 0, 0, 0x01, 31];
        bytes.extend_from_slice(&[0u8; 31]);
        assert_eq!(
            Init::decode_payload(&bytes),
            Err(DecodeError::InvalidValue {
                field: "init.networks",
                reason: "length is not a multiple of 32 bytes"
            })
        );
        // an empty networks record is present and empty
        let init = Init::decode_payload(&[0, 0, 0, 0, 0x01, 0x00]).unwrap();
        assert_eq!(init.networks, Some(vec![]));
    }

    #[test]
    fn init_remote_addr_of_wrong_length_is_an_error() {
        let bytes = [0, 0, 0, 0, 0x03, 0x06, 0x01, 127, 0, 0, 1, 0x26];
        assert!(matches!(
            Init::decode_payload(&bytes),
            Err(DecodeError::ShortRead {
                field: "init.remote_addr",
                ..
            })
        ));
    }

    #[test]
    fn error_layout_and_truncation() {
        let e = ErrorMessage::new(ChannelId([1; 32]), "bad");
        let mut expected = vec![0x00, 0x11];
        expected.extend_from_slice(&[1; 32]);
        expected.extend_from_slice(&[0x00, 0x03, b'b', b'a', b'd']);
        assert_eq!(e.encode(), expected);
        assert!(e.is_printable());
        // data length says 4 but only 3 bytes follow
        let mut short = vec![0u8; 32];
        short.extend_from_slice(&[0x00, 0x04, 1, 2, 3]);
        assert_eq!(
            ErrorMessage::decode_payload(&short),
            Err(DecodeError::ShortRead {
                field: "error.data",
                needed: 4,
                remaining: 3
            })
        );
        let long = "x".repeat(70_000);
        let w = Warning::new(ChannelId::ALL, &long);
        assert_eq!(w.data.len(), Warning::MAX_DATA_LEN);
        assert_eq!(w.encode().len(), 65535);
        assert!(!Warning {
            channel_id: ChannelId::ALL,
            data: vec![7]
        }
        .is_printable());
    }

    #[test]
    fn ping_pong_rules() {
        let ping = Ping {
            num_pong_bytes: 3,
            ignored: vec![0; 2],
        };
        assert_eq!(
            ping.encode(),
            vec![0x00, 0x12, 0x00, 0x03, 0x00, 0x02, 0, 0]
        );
        assert_eq!(
            ping.pong(),
            Some(Pong {
                ignored: vec![0; 3]
            })
        );
        let big = Ping {
            num_pong_bytes: 65532,
            ignored: vec![],
        };
        assert_eq!(big.pong(), None);
        let ok = Ping {
            num_pong_bytes: 65531,
            ignored: vec![],
        };
        assert_eq!(ok.pong().map(|p| p.ignored.len()), Some(65531));
    }

    #[test]
    fn ping_extension_must_be_a_valid_stream() {
        // ping with an unknown odd TLV after it is fine; a lone byte is a truncated stream
        let ok = [0x00, 0x01, 0x00, 0x00, 0x03, 0x00];
        assert_eq!(
            Ping::decode_payload(&ok),
            Ok(Ping {
                num_pong_bytes: 1,
                ignored: vec![]
            })
        );
        let bad = [0x00, 0x01, 0x00, 0x00, 0x03];
        assert!(matches!(
            Ping::decode_payload(&bad),
            Err(DecodeError::ShortRead {
                field: "tlv length",
                ..
            })
        ));
        let even = [0x00, 0x01, 0x00, 0x00, 0x02, 0x00];
        assert_eq!(
            Ping::decode_payload(&even),
            Err(DecodeError::UnknownEvenTlv { tlv_type: 2 })
        );
    }
}
