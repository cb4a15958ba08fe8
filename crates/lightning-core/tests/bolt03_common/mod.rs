//! Shared helpers for the BOLT 3 vector tests: the vector file, hex, and the Appendix C
//! parameters that Appendix F reuses.
// Not every test file uses every helper; indexing the vector JSON panics on a malformed file,
// which is what a test should do.
#![allow(dead_code, clippy::indexing_slicing)]

use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::secp256k1::{ecdsa::Signature, PublicKey, Secp256k1, SecretKey};
use bitcoin::{OutPoint, Txid};
use lightning_core::keys::{derive_private_key, per_commitment_point, CommitmentKeys, HtlcKeys};
use lightning_core::transactions::{
    build_commitment_tx, ChannelType, CommitmentError, CommitmentParams, CommitmentTx, Htlc,
    HtlcDirection, Side,
};
use lightning_core::types::PaymentPreimage;
use serde_json::Value;

/// The BOLT 3 vectors (copy of /work/shared/spec/vectors/bolt03.json).
pub fn vectors() -> Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/bolt03.json"
    )))
    .expect("bolt03.json is valid JSON")
}

/// A lower-case test name from a vector name: runs of other characters become `_`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("string field {key} in {v}"))
}

pub fn u64_field(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("integer field {key} in {v}"))
}

pub fn bytes(hex: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(hex).unwrap_or_else(|e| panic!("hex {hex}: {e}"))
}

pub fn array32(hex: &str) -> [u8; 32] {
    let v = bytes(hex);
    v.try_into()
        .unwrap_or_else(|v: Vec<u8>| panic!("expected 32 bytes, got {}", v.len()))
}

pub fn to_hex(b: &[u8]) -> String {
    b.to_lower_hex_string()
}

pub fn pubkey(hex: &str) -> PublicKey {
    PublicKey::from_slice(&bytes(hex)).unwrap_or_else(|e| panic!("pubkey {hex}: {e}"))
}

/// A BOLT 3 private key: 32 bytes, optionally followed by the `01` compressed-key marker.
pub fn privkey(hex: &str) -> SecretKey {
    let b = bytes(hex);
    let scalar = match b.len() {
        33 => {
            assert_eq!(b.last(), Some(&1), "a 33-byte private key ends in 01");
            b.get(..32).expect("33 bytes")
        }
        32 => &b[..],
        n => panic!("private key of {n} bytes"),
    };
    SecretKey::from_slice(scalar).expect("valid private key")
}

/// The 32-byte scalar of a BOLT 3 private key (without the `01` marker).
pub fn secret32(hex: &str) -> [u8; 32] {
    privkey(hex).secret_bytes()
}

pub fn der_hex(sig: &Signature) -> String {
    to_hex(&sig.serialize_der())
}

/// The Appendix C parameters: keys, funding, HTLCs 0 to 6.
pub struct Fixture {
    pub secp: Secp256k1<bitcoin::secp256k1::All>,
    pub common: Value,
    pub funding_outpoint: OutPoint,
    pub funding_satoshis: u64,
    pub commitment_number: u64,
    pub to_self_delay: u16,
    pub local_funding_key: SecretKey,
    pub remote_funding_key: SecretKey,
    pub local_payment_basepoint: PublicKey,
    pub remote_payment_basepoint: PublicKey,
    pub keys: CommitmentKeys,
    pub local_htlc_key: SecretKey,
    pub remote_htlc_key: SecretKey,
    /// HTLCs 0 to 6 and their preimages.
    pub htlcs: Vec<(Htlc, PaymentPreimage)>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let secp = Secp256k1::new();
        let all = vectors();
        let common = all["appendix_c_commitment_and_htlc_transactions"]["common"].clone();
        let internal = &common["internal_comment_values"];
        let txid: Txid = str_field(&common, "funding_tx_id").parse().expect("txid");
        let point = per_commitment_point(
            &secp,
            &secret32(str_field(internal, "x_local_per_commitment_secret")),
        )
        .expect("valid per-commitment secret");
        // The HTLC basepoints are the payment basepoints, so the payment basepoint secrets
        // give the HTLC keys.
        let local_htlc_key = derive_private_key(
            &secp,
            &point,
            &privkey(str_field(internal, "local_payment_basepoint_secret")),
        )
        .expect("derivable");
        let remote_htlc_key = derive_private_key(
            &secp,
            &point,
            &privkey(str_field(internal, "remote_payment_basepoint_secret")),
        )
        .expect("derivable");
        let keys = CommitmentKeys {
            per_commitment_point: point,
            revocation_key: pubkey(str_field(&common, "local_revocation_pubkey")),
            local_delayed_key: pubkey(str_field(&common, "local_delayedpubkey")),
            htlc_keys: Some(HtlcKeys {
                local_htlc_key: pubkey(str_field(&common, "local_htlcpubkey")),
                remote_htlc_key: pubkey(str_field(&common, "remote_htlcpubkey")),
            }),
            remote_payment_key: pubkey(str_field(&common, "remote_payment_basepoint")),
        };
        let htlcs = common["htlcs"]
            .as_array()
            .expect("htlc list")
            .iter()
            .enumerate()
            .map(|(i, h)| {
                assert_eq!(u64_field(h, "htlc"), i as u64, "htlcs listed in order");
                let preimage = PaymentPreimage(array32(str_field(h, "payment_preimage")));
                let direction = match str_field(h, "direction") {
                    "local->remote" => HtlcDirection::Offered,
                    "remote->local" => HtlcDirection::Received,
                    other => panic!("direction {other}"),
                };
                let htlc = Htlc {
                    direction,
                    amount_msat: u64_field(h, "amount_msat"),
                    cltv_expiry: u32::try_from(u64_field(h, "expiry")).expect("u32 expiry"),
                    payment_hash: preimage.payment_hash(),
                };
                (htlc, preimage)
            })
            .collect();
        Fixture {
            funding_outpoint: OutPoint {
                txid,
                vout: u32::try_from(u64_field(&common, "funding_output_index")).expect("u32"),
            },
            funding_satoshis: u64_field(&common, "funding_amount_satoshi"),
            commitment_number: u64_field(&common, "commitment_number"),
            to_self_delay: u16::try_from(u64_field(&common, "local_delay")).expect("u16"),
            local_funding_key: privkey(str_field(&common, "local_funding_privkey")),
            remote_funding_key: privkey(str_field(internal, "remote_funding_privkey")),
            local_payment_basepoint: pubkey(str_field(&common, "local_payment_basepoint")),
            remote_payment_basepoint: pubkey(str_field(&common, "remote_payment_basepoint")),
            keys,
            local_htlc_key,
            remote_htlc_key,
            htlcs,
            secp,
            common,
        }
    }

    /// The HTLC numbers a vector uses: none for the first vector (Appendix C: "the HTLCs are
    /// not used for the first 'simple commitment tx with no HTLCs' test"), 1, 5 and 6 for the
    /// "same amount and preimage" vector ("HTLCs 5 and 6 are only used in" it; its balances
    /// leave room for HTLC 1 besides), 0 to 4 otherwise.
    pub fn htlc_numbers(name: &str, uses_htlcs: bool) -> Vec<usize> {
        if !uses_htlcs {
            vec![]
        } else if name.contains("same amount and preimage") {
            vec![1, 5, 6]
        } else {
            (0..=4).collect()
        }
    }

    pub fn build(
        &self,
        channel_type: ChannelType,
        htlc_numbers: &[usize],
        to_local_msat: u64,
        to_remote_msat: u64,
        feerate_per_kw: u32,
        dust_limit_satoshis: u64,
    ) -> CommitmentTx {
        let htlcs: Vec<Htlc> = htlc_numbers.iter().map(|n| self.htlcs[*n].0).collect();
        let params = CommitmentParams {
            channel_type,
            funding_outpoint: self.funding_outpoint,
            funding_satoshis: self.funding_satoshis,
            local_funding_pubkey: PublicKey::from_secret_key(&self.secp, &self.local_funding_key),
            remote_funding_pubkey: PublicKey::from_secret_key(&self.secp, &self.remote_funding_key),
            local_payment_basepoint: self.local_payment_basepoint,
            remote_payment_basepoint: self.remote_payment_basepoint,
            funder: Side::Local,
            commitment_number: self.commitment_number,
            to_local_msat,
            to_remote_msat,
            feerate_per_kw,
            dust_limit_satoshis,
            to_self_delay: self.to_self_delay,
            keys: self.keys,
            htlcs: &htlcs,
        };
        let built = build_commitment_tx(&params).expect("vector parameters are valid");
        // Without the HTLC keys: the same transaction when every HTLC is trimmed, refused
        // when one is not.
        let light = build_commitment_tx(&CommitmentParams {
            keys: CommitmentKeys {
                htlc_keys: None,
                ..self.keys
            },
            ..params
        });
        if built.htlc_outputs().is_empty() {
            let light = light.expect("no untrimmed htlc needs no htlc keys");
            assert_eq!(light.tx(), built.tx());
            assert!(light.htlc_txs().is_empty());
        } else {
            assert_eq!(light, Err(CommitmentError::MissingHtlcKeys));
        }
        built
    }
}
