//! Durable state: what a node stores and how (pure functions, no IO; the shard engine owns
//! the store).
//!
//! * [`envelope`]: magic, versions, length and checksum around every record; typed
//!   [`PersistError`].
//! * [`channel`]: [`ChannelStateRecord`], the stored form of one channel's state machine,
//!   and its nested records.
//! * [`records`]: the record kinds ([`ChannelRecord`] per channel, [`NodeRecord`] per
//!   node or shard, [`ForwardResolutionRecord`] per cross-shard forward result), their
//!   postcard payloads and the migrations.
//! * [`monitor`]: the on-chain monitor's snapshot ([`MonitorRecord`]) and updates
//!   ([`MonitorUpdateRecord`]), and [`restore_monitor`].
//!
//! `NodeCore` produces records with `NodeCore::snapshot_channel`, `NodeCore::node_record`
//! and `ForwardResolution::to_record`, says what changed since the last commit with
//! `NodeCore::take_dirty`, and is rebuilt from records with `NodeCore::restore` (see
//! [`crate::node`]). `persist` depends on no `node` type: what both use (payment ids, HTLC
//! sources, routes) lives in [`crate::payment`], and the node converts its state to and from
//! these records.
//!
//! # The format (version 5)
//! Every record is an envelope ([`envelope`]: `LNSD`, kind, version, min reader version,
//! length, checksum) around a postcard payload of the kind's record struct. The record
//! structs are explicit: plain public fields of this module's own types, of bitcoin's
//! types, of [`crate::types`]' newtypes, of [`crate::payment`]'s values, and BOLT payloads
//! for stored messages. None of them is the serde derive of a state machine's private
//! fields, so a refactor of `Channel` or `NodeCore` cannot change the format; a change to
//! a record type is a format change (a new version, a migration, fixtures).
//!
//! Keys: a channel opened or accepted under version 3 stores the index its keys were
//! derived with ([`ChannelKeysRecord::Derived`]); the keys are derived again from the
//! node's seed, the peer's id and the index on restore (`channel::derive_peer_channel_keys`).
//! No record of such a channel holds a secret key (a test searches every stored byte for
//! them). A channel migrated from version 1 or 2 keeps its stored secrets
//! ([`ChannelKeysRecord::Stored`]) until it closes; so does a channel of the regtest
//! forced-keys test mode, whose keys the harness chose.
//!
//! Issue 13 asked for "format version 2"; our version 2 was already taken by an earlier
//! additive change (see [`records`]), so that format is our version 3. Version 4 adds the
//! monitor's two kinds and changes no other kind (see [`monitor`] for why the older kinds
//! are still written readable by version 3).
//! Version 5 adds [`CompletedPaymentRecord`] ([`RecordKind::CompletedPayment`]), one per
//! recently completed payment id (see [`records`]). The first version-5 build had appended
//! the ids to the node record instead; such node records still read (the node rewrites
//! their ids as records of their own) and node records stay readable by versions 3 and 4.
//! Version 6 moves the node's offered and forwarded HTLCs out of the node record into
//! records of their own ([`OfferedHtlcEntryRecord`], [`UpstreamHtlcEntryRecord`]); node
//! records are then read from version 6 on (see [`records`]).
//!
//! # Adding a record kind
//! A new kind (say the on-chain monitor's) touches no existing kind:
//! 1. add a [`RecordKind`] variant with a new code, and its [`RecordKind::introduced_in`]
//!    (the format version that ships it, after bumping [`FORMAT_VERSION`] if this build
//!    does not already write a new version);
//! 2. add its record struct to [`records`] (or its own module) with `to_bytes` /
//!    `from_bytes` through the same private `to_record` / `from_record`;
//! 3. answer the kind in each existing migration step with `not_in_version` (such a
//!    record cannot be older than the kind; the reader refuses one before any step runs);
//! 4. commit fixtures of the kind under `tests/fixtures/vN/` and read them in a test.
//!
//! Older builds refuse the kind with [`PersistError::UnknownKind`] rather than misread it.
//!
//! # Compatibility policy
//! * **Upgrade**: records written by any released format version are read by every later
//!   version. An older record is migrated on read ([`records::MIGRATIONS`], kept forever),
//!   and each format version commits fixtures (`tests/fixtures/vN/`) that a test must read
//!   in every later version (`fixture_v1_records_still_read` and its siblings).
//! * **Downgrade**: a version reads a record whose `min_reader_version` is at most its own
//!   format version. A change that only appends fields at the end of a record keeps
//!   `min_reader_version`, so the previous version still reads it (ignoring the new
//!   fields); any other change raises it, and an older version then refuses the record with
//!   [`PersistError::TooNew`], naming both versions, instead of misreading it. Version 3
//!   writes `min_reader_version` 3: versions 1 and 2 refuse its records. Version 4 writes
//!   each kind's [`RecordKind::min_reader_version`]: 3 for the kinds of version 3 (unchanged),
//!   4 for the monitor's kinds (which version 3 refuses as unknown kinds). Before a
//!   downgrade across such a change, the channels must be closed (as LDK asks).
//! * The stored form of a pending update and of the last `commitment_signed` is its BOLT
//!   payload, fixed by the spec.

pub mod channel;
pub mod envelope;
pub mod monitor;
pub mod records;

pub use channel::{ChannelKeysRecord, ChannelStateRecord, StoredChannelKeys};
pub use envelope::{LegacyResolutionError, PersistError, RecordKind, FORMAT_VERSION};
pub use monitor::{
    restore_monitor, restore_monitor_with_revoked, ConfirmedTxRecord, CounterpartyCommitmentRecord,
    EmittedEventRecord, HolderCommitmentRecord, MonitorRecord, MonitorRevokedRecord,
    MonitorStepRecord, MonitorTermsRecord, MonitorUpdateRecord, RevokedHtlcsRecord, REVOKED_CHUNK,
};
pub use records::{
    migrate, ChannelRecord, ClaimableHtlcRecord, CompletedPaymentRecord, ForwardOutcomeRecord,
    ForwardResolutionRecord, InboundPaymentRecord, NodeRecord, OfferedHtlcEntryRecord,
    OfferedHtlcRecord, OutboundPaymentRecord, PendingTimeoutRecord, UpstreamHtlcEntryRecord,
    UpstreamHtlcRecord,
};

#[cfg(test)]
mod proptests {
    //! Random commitment spec records and update records survive postcard unchanged.
    use proptest::prelude::*;

    use crate::persist::channel::{
        SpecHtlcRecord as SpecHtlc, SpecRecord as CommitmentSpec, UpdateRecord as Update,
    };
    use crate::secp256k1::{PublicKey, SecretKey};
    use crate::types::{ChannelId, PaymentHash, PaymentPreimage};
    use crate::wire::{
        AttributionData, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc, UpdateFee,
        UpdateFulfillHtlc, ONION_PACKET_LEN,
    };

    fn spec_htlc() -> impl Strategy<Value = SpecHtlc> {
        (
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<u32>(),
        )
            .prop_map(|(offered, id, amount_msat, hash, cltv_expiry)| SpecHtlc {
                offered,
                id,
                amount_msat,
                payment_hash: PaymentHash(hash),
                cltv_expiry,
            })
    }

    fn spec() -> impl Strategy<Value = CommitmentSpec> {
        (
            proptest::collection::vec(spec_htlc(), 0..20),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
        )
            .prop_map(|(htlcs, to_local_msat, to_remote_msat, feerate_per_kw)| {
                CommitmentSpec {
                    htlcs: htlcs.into_iter().map(|h| ((h.offered, h.id), h)).collect(),
                    to_local_msat,
                    to_remote_msat,
                    feerate_per_kw,
                }
            })
    }

    fn attribution() -> impl Strategy<Value = Option<Box<AttributionData>>> {
        proptest::option::of(any::<u32>().prop_map(|seed| {
            let mut hold = [0u32; AttributionData::HOPS];
            let mut hmacs = [[0u8; 4]; AttributionData::HMACS];
            for (i, h) in hold.iter_mut().enumerate() {
                *h = seed.wrapping_mul(i as u32 + 1);
            }
            for (i, m) in hmacs.iter_mut().enumerate() {
                *m = (seed ^ i as u32).to_be_bytes();
            }
            Box::new(AttributionData {
                htlc_hold_times: hold,
                truncated_hmacs: hmacs,
            })
        }))
    }

    fn update() -> impl Strategy<Value = Update> {
        let cid = any::<[u8; 32]>().prop_map(ChannelId);
        prop_oneof![
            (
                cid.clone(),
                any::<u64>(),
                any::<u64>(),
                any::<[u8; 32]>(),
                any::<u32>(),
                any::<u8>(),
                proptest::option::of(1u8..=127),
            )
                .prop_map(
                    |(channel_id, id, amount_msat, hash, cltv_expiry, fill, key)| {
                        let path_key = key.map(|k| {
                            PublicKey::from_secret_key(
                                &crate::secp::ctx(),
                                &SecretKey::from_slice(&[k; 32])
                                    .expect("[1..=127; 32] is below the curve order"),
                            )
                        });
                        Update::Add(UpdateAddHtlc {
                            channel_id,
                            id,
                            amount_msat,
                            payment_hash: PaymentHash(hash),
                            cltv_expiry,
                            onion_routing_packet: Box::new([fill; ONION_PACKET_LEN]),
                            path_key,
                        })
                    }
                ),
            (cid.clone(), any::<u64>(), any::<[u8; 32]>(), attribution()).prop_map(
                |(channel_id, id, preimage, attribution_data)| {
                    Update::Fulfill(UpdateFulfillHtlc {
                        channel_id,
                        id,
                        payment_preimage: PaymentPreimage(preimage),
                        attribution_data,
                    })
                }
            ),
            (
                cid.clone(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..600),
                attribution()
            )
                .prop_map(|(channel_id, id, reason, attribution_data)| {
                    Update::Fail(UpdateFailHtlc {
                        channel_id,
                        id,
                        reason,
                        attribution_data,
                    })
                }),
            (cid.clone(), any::<u64>(), any::<[u8; 32]>(), any::<u16>()).prop_map(
                |(channel_id, id, sha256_of_onion, code)| {
                    Update::FailMalformed(UpdateFailMalformedHtlc {
                        channel_id,
                        id,
                        sha256_of_onion,
                        failure_code: code | UpdateFailMalformedHtlc::BADONION,
                    })
                }
            ),
            (cid, any::<u32>()).prop_map(|(channel_id, feerate_per_kw)| {
                Update::Fee(UpdateFee {
                    channel_id,
                    feerate_per_kw,
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn random_commitment_specs_round_trip(s in spec()) {
            let bytes = postcard::to_allocvec(&s).expect("serializes");
            prop_assert_eq!(postcard::from_bytes::<CommitmentSpec>(&bytes), Ok(s));
        }

        #[test]
        fn random_updates_round_trip(updates in proptest::collection::vec(update(), 0..8)) {
            let bytes = postcard::to_allocvec(&updates).expect("serializes");
            prop_assert_eq!(postcard::from_bytes::<Vec<Update>>(&bytes), Ok(updates));
        }
    }
}
