//! BOLT 9 feature bitfields, as carried in `init` (`globalfeatures`, `features`) and as the
//! `channel_type` of `open_channel` / `accept_channel`.
//!
//! Bits are numbered from the least-significant bit of the last byte on the wire: bit 0 is
//! `0x01` of the final byte. Features come in pairs: the even bit means "required", the odd bit
//! "optional" ("it's OK to be odd").
//!
//! A [`Features`] value keeps the exact length it was decoded with, so decoding and re-encoding
//! gives back the same bytes even when a peer padded its bitfield with leading zero bytes.
//! Values built with [`Features::set_bit`] and friends are always minimal.

use core::fmt;
use serde::{Deserialize, Serialize};

/// The features this project knows by name, each identified by its even ("required") bit.
///
/// The table is BOLT 9's "Assigned Feature Flags".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// `option_data_loss_protect` (0/1), assumed by the spec.
    DataLossProtect,
    /// `option_upfront_shutdown_script` (4/5).
    UpfrontShutdownScript,
    /// `gossip_queries` (6/7).
    GossipQueries,
    /// `var_onion_optin` (8/9), assumed by the spec.
    VarOnionOptin,
    /// `gossip_queries_ex` (10/11).
    GossipQueriesEx,
    /// `option_static_remotekey` (12/13), assumed by the spec.
    StaticRemoteKey,
    /// `payment_secret` (14/15), assumed by the spec.
    PaymentSecret,
    /// `basic_mpp` (16/17); depends on `payment_secret`.
    BasicMpp,
    /// `option_support_large_channel` (18/19).
    LargeChannel,
    /// `option_anchors` (22/23): anchor outputs with zero-fee HTLC transactions
    /// (`anchors_zero_fee_htlc_tx`).
    Anchors,
    /// `option_route_blinding` (24/25).
    RouteBlinding,
    /// `option_shutdown_anysegwit` (26/27).
    ShutdownAnySegwit,
    /// `option_dual_fund` (28/29).
    DualFund,
    /// `option_quiesce` (34/35).
    Quiesce,
    /// `option_attribution_data` (36/37).
    AttributionData,
    /// `option_onion_messages` (38/39).
    OnionMessages,
    /// `option_provide_storage` (42/43).
    ProvideStorage,
    /// `option_channel_type` (44/45), assumed by the spec.
    ChannelType,
    /// `option_scid_alias` (46/47).
    ScidAlias,
    /// `option_payment_metadata` (48/49).
    PaymentMetadata,
    /// `option_zeroconf` (50/51); depends on `option_scid_alias`.
    ZeroConf,
    /// `option_simple_close` (60/61); depends on `option_shutdown_anysegwit`.
    SimpleClose,
    /// `option_splice` (62/63).
    Splice,
}

impl Feature {
    /// Every named feature, in bit order.
    pub const ALL: [Feature; 23] = [
        Feature::DataLossProtect,
        Feature::UpfrontShutdownScript,
        Feature::GossipQueries,
        Feature::VarOnionOptin,
        Feature::GossipQueriesEx,
        Feature::StaticRemoteKey,
        Feature::PaymentSecret,
        Feature::BasicMpp,
        Feature::LargeChannel,
        Feature::Anchors,
        Feature::RouteBlinding,
        Feature::ShutdownAnySegwit,
        Feature::DualFund,
        Feature::Quiesce,
        Feature::AttributionData,
        Feature::OnionMessages,
        Feature::ProvideStorage,
        Feature::ChannelType,
        Feature::ScidAlias,
        Feature::PaymentMetadata,
        Feature::ZeroConf,
        Feature::SimpleClose,
        Feature::Splice,
    ];

    /// The even ("required") bit of the pair.
    pub const fn required_bit(self) -> usize {
        match self {
            Feature::DataLossProtect => 0,
            Feature::UpfrontShutdownScript => 4,
            Feature::GossipQueries => 6,
            Feature::VarOnionOptin => 8,
            Feature::GossipQueriesEx => 10,
            Feature::StaticRemoteKey => 12,
            Feature::PaymentSecret => 14,
            Feature::BasicMpp => 16,
            Feature::LargeChannel => 18,
            Feature::Anchors => 22,
            Feature::RouteBlinding => 24,
            Feature::ShutdownAnySegwit => 26,
            Feature::DualFund => 28,
            Feature::Quiesce => 34,
            Feature::AttributionData => 36,
            Feature::OnionMessages => 38,
            Feature::ProvideStorage => 42,
            Feature::ChannelType => 44,
            Feature::ScidAlias => 46,
            Feature::PaymentMetadata => 48,
            Feature::ZeroConf => 50,
            Feature::SimpleClose => 60,
            Feature::Splice => 62,
        }
    }

    /// The odd ("optional") bit of the pair.
    pub const fn optional_bit(self) -> usize {
        self.required_bit() + 1
    }

    /// The feature whose pair holds `bit`, if it has a name here.
    pub fn from_bit(bit: usize) -> Option<Feature> {
        let even = bit & !1;
        Feature::ALL.into_iter().find(|f| f.required_bit() == even)
    }

    /// The feature this one depends on (BOLT 9's "Dependencies" column), if any.
    pub const fn dependency(self) -> Option<Feature> {
        match self {
            Feature::BasicMpp => Some(Feature::PaymentSecret),
            Feature::ZeroConf => Some(Feature::ScidAlias),
            Feature::SimpleClose => Some(Feature::ShutdownAnySegwit),
            _ => None,
        }
    }

    /// The feature's name as BOLT 9 writes it.
    pub const fn name(self) -> &'static str {
        match self {
            Feature::DataLossProtect => "option_data_loss_protect",
            Feature::UpfrontShutdownScript => "option_upfront_shutdown_script",
            Feature::GossipQueries => "gossip_queries",
            Feature::VarOnionOptin => "var_onion_optin",
            Feature::GossipQueriesEx => "gossip_queries_ex",
            Feature::StaticRemoteKey => "option_static_remotekey",
            Feature::PaymentSecret => "payment_secret",
            Feature::BasicMpp => "basic_mpp",
            Feature::LargeChannel => "option_support_large_channel",
            Feature::Anchors => "option_anchors",
            Feature::RouteBlinding => "option_route_blinding",
            Feature::ShutdownAnySegwit => "option_shutdown_anysegwit",
            Feature::DualFund => "option_dual_fund",
            Feature::Quiesce => "option_quiesce",
            Feature::AttributionData => "option_attribution_data",
            Feature::OnionMessages => "option_onion_messages",
            Feature::ProvideStorage => "option_provide_storage",
            Feature::ChannelType => "option_channel_type",
            Feature::ScidAlias => "option_scid_alias",
            Feature::PaymentMetadata => "option_payment_metadata",
            Feature::ZeroConf => "option_zeroconf",
            Feature::SimpleClose => "option_simple_close",
            Feature::Splice => "option_splice",
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a feature vector is unacceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeatureError {
    /// The vector requires (sets the even bit of) a feature the local node does not know.
    UnknownRequiredBit {
        /// The lowest such even bit.
        bit: usize,
    },
    /// A feature is set but a feature it depends on is not (BOLT 1: close the connection).
    MissingDependency {
        /// The feature that is set.
        feature: Feature,
        /// The feature it needs.
        depends_on: Feature,
    },
}

impl fmt::Display for FeatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureError::UnknownRequiredBit { bit } => {
                write!(f, "features: unknown required (even) bit {bit} is set")
            }
            FeatureError::MissingDependency {
                feature,
                depends_on,
            } => write!(
                f,
                "features: {feature} (bits {}/{}) is set without its dependency {depends_on} (bits {}/{})",
                feature.required_bit(),
                feature.optional_bit(),
                depends_on.required_bit(),
                depends_on.optional_bit()
            ),
        }
    }
}

impl std::error::Error for FeatureError {}

/// A feature bitfield.
///
/// Stored least-significant byte first; [`Features::to_wire_bytes`] and
/// [`Features::from_wire_bytes`] convert to and from the big-endian wire form.
///
/// Equality compares the wire bytes, length included: a bitfield padded with leading zero
/// bytes differs from its minimal form. [`Features::same_bits`] compares set bits only.
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Features {
    /// Byte `i` holds bits `8i..8i+8`.
    le_bytes: Vec<u8>,
}

/// The features of an `init` message (the OR of `globalfeatures` and `features`).
pub type InitFeatures = Features;

/// A `channel_type` (BOLT 2 "Defined Channel Types"): a feature bitfield of even bits.
pub type ChannelType = Features;

impl Features {
    /// No bits set (encodes as zero bytes).
    pub fn empty() -> Self {
        Features::default()
    }

    /// A bitfield with the required (even) bit of each of `features` set, as used for
    /// `channel_type` (e.g. `[StaticRemoteKey, Anchors]`).
    pub fn from_required(features: &[Feature]) -> Self {
        let mut out = Features::empty();
        for f in features {
            out.set_required(*f);
        }
        out
    }

    /// Reads the big-endian wire form, keeping its length (leading zero bytes included).
    pub fn from_wire_bytes(bytes: &[u8]) -> Self {
        Features {
            le_bytes: bytes.iter().rev().copied().collect(),
        }
    }

    /// The big-endian wire form, as long as it was decoded with (or minimal when built here).
    pub fn to_wire_bytes(&self) -> Vec<u8> {
        self.le_bytes.iter().rev().copied().collect()
    }

    /// The length of the wire form in bytes.
    pub fn wire_len(&self) -> usize {
        self.le_bytes.len()
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.le_bytes.iter().all(|b| *b == 0)
    }

    /// Whether the wire form has no leading zero byte (BOLT 1: "SHOULD use the minimum length").
    pub fn is_minimal(&self) -> bool {
        self.le_bytes.last() != Some(&0)
    }

    /// Whether both bitfields set exactly the same bits, whatever their lengths.
    pub fn same_bits(&self, other: &Features) -> bool {
        self.bits().eq(other.bits())
    }

    /// Whether `bit` is set.
    pub fn is_set(&self, bit: usize) -> bool {
        self.le_bytes
            .get(bit / 8)
            .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
    }

    /// Sets `bit`, growing the bitfield if needed.
    pub fn set_bit(&mut self, bit: usize) {
        let index = bit / 8;
        if self.le_bytes.len() <= index {
            self.le_bytes.resize(index + 1, 0);
        }
        if let Some(byte) = self.le_bytes.get_mut(index) {
            *byte |= 1 << (bit % 8);
        }
    }

    /// Clears `bit` and drops leading zero bytes, leaving the bitfield minimal.
    pub fn clear_bit(&mut self, bit: usize) {
        if let Some(byte) = self.le_bytes.get_mut(bit / 8) {
            *byte &= !(1 << (bit % 8));
        }
        self.trim();
    }

    /// Drops leading zero bytes.
    pub fn trim(&mut self) {
        while self.le_bytes.last() == Some(&0) {
            self.le_bytes.pop();
        }
    }

    /// Sets the even (required) bit of `feature` and clears its odd bit.
    pub fn set_required(&mut self, feature: Feature) {
        self.clear_bit(feature.optional_bit());
        self.set_bit(feature.required_bit());
    }

    /// Sets the odd (optional) bit of `feature` and clears its even bit.
    pub fn set_optional(&mut self, feature: Feature) {
        self.clear_bit(feature.required_bit());
        self.set_bit(feature.optional_bit());
    }

    /// Clears both bits of `feature`.
    pub fn clear(&mut self, feature: Feature) {
        self.clear_bit(feature.required_bit());
        self.clear_bit(feature.optional_bit());
    }

    /// Whether `feature` is offered: either of its bits is set.
    pub fn supports(&self, feature: Feature) -> bool {
        self.is_set(feature.required_bit()) || self.is_set(feature.optional_bit())
    }

    /// Whether `feature` is required: its even bit is set (BOLT 9: if both bits are set the
    /// feature is treated as required).
    pub fn requires(&self, feature: Feature) -> bool {
        self.is_set(feature.required_bit())
    }

    /// Whether `feature` is negotiated between `self` (the local node's features) and `remote`
    /// (BOLT 1: both offered it, or the local node offered it as even).
    pub fn negotiated(&self, remote: &Features, feature: Feature) -> bool {
        (self.supports(feature) && remote.supports(feature)) || self.requires(feature)
    }

    /// The bitwise OR of two bitfields, as long as the longer one (BOLT 1's rule for combining
    /// `globalfeatures` and `features`).
    pub fn or(&self, other: &Features) -> Features {
        let len = self.le_bytes.len().max(other.le_bytes.len());
        let le_bytes = (0..len)
            .map(|i| {
                self.le_bytes.get(i).copied().unwrap_or(0)
                    | other.le_bytes.get(i).copied().unwrap_or(0)
            })
            .collect();
        Features { le_bytes }
    }

    /// Every set bit, in increasing order.
    pub fn bits(&self) -> impl Iterator<Item = usize> + '_ {
        self.le_bytes.iter().enumerate().flat_map(|(i, byte)| {
            (0..8).filter_map(move |b| (byte & (1 << b) != 0).then_some(i * 8 + b))
        })
    }

    /// The lowest even bit set here whose feature `known` offers neither bit of: the peer
    /// requires something we do not understand, and BOLT 1 says to close the connection.
    ///
    /// `known` is the set of features the local node understands (typically its own
    /// `init` features). Unknown odd bits are ignored.
    pub fn first_unknown_required_bit(&self, known: &Features) -> Option<usize> {
        self.bits()
            .filter(|bit| bit % 2 == 0)
            .find(|bit| !known.is_set(*bit) && !known.is_set(bit + 1))
    }

    /// The first feature this vector (ours) requires that `theirs` does not support (neither
    /// bit set): BOLT 1 lets a node refuse a peer lacking a feature it requires.
    pub fn first_required_missing_from(&self, theirs: &Features) -> Option<Feature> {
        Feature::ALL
            .iter()
            .copied()
            .find(|f| self.requires(*f) && !theirs.supports(*f))
    }

    /// Checks that no unknown even bit is set (see [`Features::first_unknown_required_bit`]).
    pub fn check_required_known(&self, known: &Features) -> Result<(), FeatureError> {
        match self.first_unknown_required_bit(known) {
            Some(bit) => Err(FeatureError::UnknownRequiredBit { bit }),
            None => Ok(()),
        }
    }

    /// Checks BOLT 9's dependencies: every offered feature that depends on another must come
    /// with that other feature offered too (BOLT 1: otherwise close the connection).
    pub fn check_dependencies(&self) -> Result<(), FeatureError> {
        for feature in Feature::ALL {
            if let Some(depends_on) = feature.dependency() {
                if self.supports(feature) && !self.supports(depends_on) {
                    return Err(FeatureError::MissingDependency {
                        feature,
                        depends_on,
                    });
                }
            }
        }
        Ok(())
    }

    /// Only the bits `0..=max_bit`, minimal.
    pub fn truncated_to(&self, max_bit: usize) -> Features {
        let mut out = Features::empty();
        for bit in self.bits().take_while(|b| *b <= max_bit) {
            out.set_bit(bit);
        }
        out
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Features(0x")?;
        for b in self.to_wire_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bit_numbering_matches_bolt9() {
        // Bit 0 is the least significant bit of the last wire byte.
        let f = Features::from_wire_bytes(&[0x80, 0x01]);
        assert!(f.is_set(0));
        assert!(f.is_set(15));
        assert!(!f.is_set(1));
        assert_eq!(f.bits().collect::<Vec<_>>(), vec![0, 15]);

        let mut g = Features::empty();
        g.set_optional(Feature::StaticRemoteKey); // bit 13
        g.set_required(Feature::VarOnionOptin); // bit 8
        assert_eq!(g.to_wire_bytes(), vec![0x21, 0x00]);
    }

    #[test]
    fn named_bits_are_bolt9_pairs() {
        assert_eq!(Feature::DataLossProtect.required_bit(), 0);
        assert_eq!(Feature::UpfrontShutdownScript.optional_bit(), 5);
        assert_eq!(Feature::Anchors.required_bit(), 22);
        assert_eq!(Feature::RouteBlinding.required_bit(), 24);
        assert_eq!(Feature::ShutdownAnySegwit.required_bit(), 26);
        assert_eq!(Feature::ChannelType.required_bit(), 44);
        assert_eq!(Feature::ScidAlias.required_bit(), 46);
        assert_eq!(Feature::ZeroConf.optional_bit(), 51);
        assert_eq!(Feature::from_bit(23), Some(Feature::Anchors));
        assert_eq!(Feature::from_bit(20), None);
        for pair in Feature::ALL.windows(2) {
            if let [a, b] = pair {
                assert!(a.required_bit() < b.required_bit());
            }
        }
    }

    #[test]
    fn channel_type_anchors_is_bits_22_and_12() {
        let ct = Features::from_required(&[Feature::StaticRemoteKey, Feature::Anchors]);
        // bit 22 -> byte 2 (from the right) 0x40; bit 12 -> byte 1 0x10.
        assert_eq!(ct.to_wire_bytes(), vec![0x40, 0x10, 0x00]);
        assert!(ct.requires(Feature::Anchors));
        assert!(!ct.supports(Feature::ScidAlias));
    }

    #[test]
    fn set_required_clears_optional_and_back() {
        let mut f = Features::empty();
        f.set_optional(Feature::ScidAlias);
        assert!(f.is_set(47));
        f.set_required(Feature::ScidAlias);
        assert!(f.is_set(46) && !f.is_set(47));
        f.clear(Feature::ScidAlias);
        assert!(f.is_empty());
        assert_eq!(f.wire_len(), 0, "clearing leaves the bitfield minimal");
    }

    #[test]
    fn unknown_required_bits_are_found_odd_ones_ignored() {
        let mut known = Features::empty();
        known.set_optional(Feature::StaticRemoteKey);

        let mut peer = Features::empty();
        peer.set_required(Feature::StaticRemoteKey); // known: we offer 13
        peer.set_bit(101); // unknown odd: ignored
        assert_eq!(peer.first_unknown_required_bit(&known), None);
        assert!(peer.check_required_known(&known).is_ok());

        peer.set_bit(100); // unknown even
        peer.set_bit(24); // unknown even, lower
        assert_eq!(peer.first_unknown_required_bit(&known), Some(24));
        let err = peer.check_required_known(&known).unwrap_err();
        assert_eq!(err, FeatureError::UnknownRequiredBit { bit: 24 });
        assert_eq!(
            err.to_string(),
            "features: unknown required (even) bit 24 is set"
        );
    }

    #[test]
    fn dependencies_are_checked() {
        let mut f = Features::empty();
        f.set_optional(Feature::ZeroConf);
        assert_eq!(
            f.check_dependencies(),
            Err(FeatureError::MissingDependency {
                feature: Feature::ZeroConf,
                depends_on: Feature::ScidAlias
            })
        );
        f.set_optional(Feature::ScidAlias);
        assert_eq!(f.check_dependencies(), Ok(()));
        f.set_required(Feature::BasicMpp);
        assert!(f.check_dependencies().is_err());
        f.set_optional(Feature::PaymentSecret);
        assert_eq!(f.check_dependencies(), Ok(()));
    }

    #[test]
    fn negotiation_rule() {
        let mut local = Features::empty();
        let mut remote = Features::empty();
        local.set_optional(Feature::ScidAlias);
        assert!(!local.negotiated(&remote, Feature::ScidAlias));
        remote.set_optional(Feature::ScidAlias);
        assert!(local.negotiated(&remote, Feature::ScidAlias));
        local.set_required(Feature::Anchors);
        assert!(local.negotiated(&Features::empty(), Feature::Anchors));
    }

    #[test]
    fn or_keeps_longer_length_and_truncation_drops_high_bits() {
        let a = Features::from_wire_bytes(&[0x00, 0x00, 0x02]);
        let b = Features::from_wire_bytes(&[0x80, 0x00]);
        let c = a.or(&b);
        assert_eq!(c.to_wire_bytes(), vec![0x00, 0x80, 0x02]);
        assert_eq!(c.truncated_to(13).to_wire_bytes(), vec![0x02]);
        assert!(!a.is_minimal());
        assert!(b.is_minimal());
        let padded = Features::from_wire_bytes(&[0x00, 0x80, 0x00]);
        assert_ne!(padded, b);
        assert!(padded.same_bits(&b));
        assert!(!padded.same_bits(&a));
    }

    proptest! {
        #[test]
        fn wire_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let f = Features::from_wire_bytes(&bytes);
            prop_assert_eq!(f.to_wire_bytes(), bytes.clone());
            let mut rebuilt = Features::empty();
            for bit in f.bits() {
                rebuilt.set_bit(bit);
            }
            let mut trimmed = f.clone();
            trimmed.trim();
            prop_assert_eq!(rebuilt, trimmed);
        }
    }
}
