//! BOLT 3 Appendix E: key derivation (4 vectors), one test per vector.

#![allow(clippy::indexing_slicing)]

mod bolt03_common;

use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bolt03_common::*;
use lightning_core::keys::{
    derive_private_key, derive_public_key, derive_revocation_private_key,
    derive_revocation_public_key, per_commitment_point,
};
use serde_json::Value;

struct Common {
    secp: Secp256k1<bitcoin::secp256k1::All>,
    base_secret: [u8; 32],
    base_point: PublicKey,
    per_commitment_secret: [u8; 32],
    per_commitment_point: PublicKey,
}

/// The common secrets, checking that the points the spec gives follow from them.
fn common() -> Common {
    let secp = Secp256k1::new();
    let all = vectors();
    let c = &all["appendix_e_key_derivation"]["common"];
    let base_secret = array32(str_field(c, "base_secret"));
    let per_commitment_secret = array32(str_field(c, "per_commitment_secret"));
    let base_point = pubkey(str_field(c, "base_point"));
    let point = pubkey(str_field(c, "per_commitment_point"));
    assert_eq!(per_commitment_point(&secp, &base_secret), Ok(base_point));
    assert_eq!(
        per_commitment_point(&secp, &per_commitment_secret),
        Ok(point)
    );
    Common {
        secp,
        base_secret,
        base_point,
        per_commitment_secret,
        per_commitment_point: point,
    }
}

fn vector(name: &str) -> Value {
    vectors()["appendix_e_key_derivation"]["test_vectors"]
        .as_array()
        .expect("vector list")
        .iter()
        .find(|v| str_field(v, "name") == name)
        .unwrap_or_else(|| panic!("no Appendix E vector named {name:?}"))
        .clone()
}

#[test]
fn bolt03_appendix_e_derivation_of_pubkey_from_basepoint_and_per_commitment_point() {
    let c = common();
    let v = vector("derivation of pubkey from basepoint and per_commitment_point");
    let derived = derive_public_key(&c.secp, &c.per_commitment_point, &c.base_point);
    assert_eq!(derived, Ok(pubkey(str_field(&v, "localpubkey"))));
}

#[test]
fn bolt03_appendix_e_derivation_of_private_key_from_basepoint_secret_and_per_commitment_secret() {
    let c = common();
    let v = vector("derivation of private key from basepoint secret and per_commitment_secret");
    let base = privkey(&to_hex(&c.base_secret));
    let derived = derive_private_key(&c.secp, &c.per_commitment_point, &base).expect("valid");
    assert_eq!(
        to_hex(&derived.secret_bytes()),
        str_field(&v, "localprivkey")
    );
}

#[test]
fn bolt03_appendix_e_derivation_of_revocation_pubkey_from_basepoint_and_per_commitment_point() {
    let c = common();
    let v = vector("derivation of revocation pubkey from basepoint and per_commitment_point");
    let derived = derive_revocation_public_key(&c.secp, &c.base_point, &c.per_commitment_point);
    assert_eq!(derived, Ok(pubkey(str_field(&v, "revocationpubkey"))));
}

#[test]
fn bolt03_appendix_e_derivation_of_revocation_secret_from_basepoint_secret_and_per_commitment_secret(
) {
    let c = common();
    let v =
        vector("derivation of revocation secret from basepoint_secret and per_commitment_secret");
    let base = privkey(&to_hex(&c.base_secret));
    let derived =
        derive_revocation_private_key(&c.secp, &base, &c.per_commitment_secret).expect("valid");
    assert_eq!(
        to_hex(&derived.secret_bytes()),
        str_field(&v, "revocationprivkey")
    );
    // And it is the private key of the revocation pubkey.
    let public = derive_revocation_public_key(&c.secp, &c.base_point, &c.per_commitment_point);
    assert_eq!(public, Ok(PublicKey::from_secret_key(&c.secp, &derived)));
}

#[test]
fn bolt03_appendix_e_every_vector_has_a_test() {
    let all = vectors();
    let names: Vec<&str> = all["appendix_e_key_derivation"]["test_vectors"]
        .as_array()
        .expect("vector list")
        .iter()
        .map(|v| str_field(v, "name"))
        .collect();
    assert_eq!(
        names,
        [
            "derivation of pubkey from basepoint and per_commitment_point",
            "derivation of private key from basepoint secret and per_commitment_secret",
            "derivation of revocation pubkey from basepoint and per_commitment_point",
            "derivation of revocation secret from basepoint_secret and per_commitment_secret",
        ]
    );
}
