//! BOLT 3 Appendix C: the 16 commitment and HTLC transaction vectors (`option_static_remotekey`
//! format), one test per vector, plus the derivation of the Appendix C keys.
//!
//! Each vector test rebuilds the commitment transaction from the parameters, checks the fees
//! and output scripts given in the spec's comments, produces both funding signatures and
//! compares them and the signed transaction byte for byte, then does the same for every HTLC
//! transaction.

#![allow(clippy::indexing_slicing)]

mod bolt03_common;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::secp256k1::PublicKey;
use bolt03_common::*;
use lightning_core::keys::{
    derive_private_key, derive_public_key, derive_revocation_public_key, per_commitment_point,
    ChannelPublicKeys, CommitmentKeys,
};
use lightning_core::transactions::scripts::{funding_script, to_local_script};
use lightning_core::transactions::{
    commitment_number_obscure_factor, ChannelType, HtlcDirection, SignatureError,
};
use serde_json::Value;

fn vector(name: &str) -> Value {
    vectors()["appendix_c_commitment_and_htlc_transactions"]["test_vectors"]
        .as_array()
        .expect("vector list")
        .iter()
        .find(|v| str_field(v, "name") == name)
        .unwrap_or_else(|| panic!("no Appendix C vector named {name:?}"))
        .clone()
}

fn check_vector(name: &str) {
    let f = Fixture::new();
    let v = vector(name);
    let numbers = Fixture::htlc_numbers(name, name != "simple commitment tx with no HTLCs");
    let commitment = f.build(
        ChannelType::StaticRemoteKey,
        &numbers,
        u64_field(&v, "to_local_msat"),
        u64_field(&v, "to_remote_msat"),
        u32::try_from(u64_field(&v, "local_feerate_per_kw")).expect("u32 feerate"),
        u64_field(&f.common, "local_dust_limit_satoshi"),
    );

    // The fees and outputs the spec gives as comments.
    if let Some(fee) = v
        .get("base_commitment_transaction_fee")
        .and_then(Value::as_u64)
    {
        assert_eq!(commitment.base_fee_satoshis(), fee, "base fee");
    }
    if let Some(fee) = v
        .get("actual_commitment_transaction_fee")
        .and_then(Value::as_u64)
    {
        assert_eq!(commitment.actual_fee_satoshis(), fee, "actual fee");
    }
    if let Some(to_local) = v.get("to_local_output_comment") {
        assert_eq!(
            commitment.to_local_satoshis(),
            Some(u64_field(to_local, "amount"))
        );
        let script = to_local_script(
            &f.keys.revocation_key,
            f.to_self_delay,
            &f.keys.local_delayed_key,
        );
        assert_eq!(to_hex(script.as_bytes()), str_field(to_local, "wscript"));
    }
    if let Some(to_remote) = v.get("to_remote_output_comment") {
        assert_eq!(
            commitment.to_remote_satoshis(),
            Some(u64_field(to_remote, "amount"))
        );
        assert_eq!(
            pubkey(str_field(to_remote, "p2wpkh_pubkey")),
            f.keys.remote_payment_key
        );
    }
    let comments = v["htlc_output_comments"].as_array().expect("htlc comments");
    if name.contains("same amount and preimage") {
        // This vector lists no to_local/to_remote comment; its fee is implied by the tx.
        assert!(v.get("to_local_output_comment").is_none());
    }
    for comment in comments {
        let number = u64_field(comment, "htlc") as usize;
        let position = numbers
            .iter()
            .position(|n| *n == number)
            .expect("a used htlc");
        let output = commitment
            .htlc_outputs()
            .iter()
            .find(|o| o.htlc_index == position)
            .unwrap_or_else(|| panic!("htlc #{number} is untrimmed"));
        assert_eq!(output.htlc.amount_satoshis(), u64_field(comment, "amount"));
        let expected_direction = match str_field(comment, "type") {
            "offered" => HtlcDirection::Offered,
            "received" => HtlcDirection::Received,
            other => panic!("htlc type {other}"),
        };
        assert_eq!(output.htlc.direction, expected_direction);
        assert_eq!(
            to_hex(output.witness_script.as_bytes()),
            str_field(comment, "wscript")
        );
    }
    if !comments.is_empty() || name.contains("no HTLCs") {
        assert_eq!(
            commitment.htlc_outputs().len(),
            comments.len(),
            "untrimmed htlc count"
        );
    }
    assert_eq!(
        commitment.htlc_outputs().len() as u64,
        u64_field(&v, "num_htlcs")
    );

    // Funding signatures and the signed commitment transaction.
    let local_sig = commitment.sign(&f.secp, &f.local_funding_key);
    let remote_sig = commitment.sign(&f.secp, &f.remote_funding_key);
    assert_eq!(
        der_hex(&local_sig),
        str_field(&v, "local_signature"),
        "local signature"
    );
    assert_eq!(
        der_hex(&remote_sig),
        str_field(&v, "remote_signature"),
        "remote signature"
    );
    assert_eq!(commitment.verify_remote(&f.secp, &remote_sig), Ok(()));
    assert_eq!(
        commitment.verify_remote(&f.secp, &local_sig),
        Err(SignatureError::InvalidCommitmentSignature)
    );
    let signed = commitment.finalize(&local_sig, &remote_sig);
    assert_eq!(
        serialize_hex(&signed),
        str_field(&v, "output_commit_tx"),
        "commitment tx"
    );

    // HTLC transactions, in output order.
    let htlc_txs = commitment.htlc_txs();
    let expected = v["htlc_txs"].as_array().expect("htlc tx list");
    assert_eq!(htlc_txs.len(), expected.len(), "htlc tx count");
    for (tx, e) in htlc_txs.iter().zip(expected) {
        let output = tx.commitment_output();
        let number = numbers[output.htlc_index];
        assert_eq!(u64::from(output.output_index), u64_field(e, "output"));
        assert_eq!(
            number as u64,
            u64_field(e, "htlc"),
            "htlc at output {}",
            output.output_index
        );
        let kind = if tx.is_success() {
            "htlc-success"
        } else {
            "htlc-timeout"
        };
        assert_eq!(kind, str_field(e, "type"));
        let remote = tx.sign_remote(&f.secp, &f.remote_htlc_key);
        let local = tx.sign_local(&f.secp, &f.local_htlc_key);
        assert_eq!(
            der_hex(&remote),
            str_field(e, "remote_htlc_signature"),
            "htlc #{number}"
        );
        assert_eq!(
            der_hex(&local),
            str_field(e, "local_htlc_signature"),
            "htlc #{number}"
        );
        assert_eq!(tx.verify_remote(&f.secp, &remote), Ok(()));
        assert_eq!(tx.verify_local(&f.secp, &local), Ok(()));
        assert_eq!(
            tx.verify_remote(&f.secp, &local),
            Err(SignatureError::InvalidHtlcSignature {
                output_index: output.output_index
            })
        );
        let preimage = tx.is_success().then_some(&f.htlcs[number].1);
        let signed = tx
            .finalize(&remote, &local, preimage)
            .expect("right preimage");
        assert_eq!(
            serialize_hex(&signed),
            str_field(e, "tx"),
            "htlc #{number} tx"
        );
    }
}

macro_rules! appendix_c {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_vector($name);
            }
        )*

        #[test]
        fn bolt03_appendix_c_every_vector_has_a_test() {
            let tested = [$($name),*];
            let all = vectors();
            let names: Vec<&str> = all["appendix_c_commitment_and_htlc_transactions"]
                ["test_vectors"]
                .as_array()
                .expect("vector list")
                .iter()
                .map(|v| str_field(v, "name"))
                .collect();
            assert_eq!(names, tested);
            $(assert_eq!(
                stringify!($test),
                format!("bolt03_appendix_c_{}", slug($name)),
                "test named for its vector"
            );)*
        }
    };
}

appendix_c! {
    bolt03_appendix_c_simple_commitment_tx_with_no_htlcs =>
        "simple commitment tx with no HTLCs",
    bolt03_appendix_c_commitment_tx_with_all_five_htlcs_untrimmed_minimum_feerate =>
        "commitment tx with all five HTLCs untrimmed (minimum feerate)",
    bolt03_appendix_c_commitment_tx_with_seven_outputs_untrimmed_maximum_feerate =>
        "commitment tx with seven outputs untrimmed (maximum feerate)",
    bolt03_appendix_c_commitment_tx_with_six_outputs_untrimmed_minimum_feerate =>
        "commitment tx with six outputs untrimmed (minimum feerate)",
    bolt03_appendix_c_commitment_tx_with_six_outputs_untrimmed_maximum_feerate =>
        "commitment tx with six outputs untrimmed (maximum feerate)",
    bolt03_appendix_c_commitment_tx_with_five_outputs_untrimmed_minimum_feerate =>
        "commitment tx with five outputs untrimmed (minimum feerate)",
    bolt03_appendix_c_commitment_tx_with_five_outputs_untrimmed_maximum_feerate =>
        "commitment tx with five outputs untrimmed (maximum feerate)",
    bolt03_appendix_c_commitment_tx_with_four_outputs_untrimmed_minimum_feerate =>
        "commitment tx with four outputs untrimmed (minimum feerate)",
    bolt03_appendix_c_commitment_tx_with_four_outputs_untrimmed_maximum_feerate =>
        "commitment tx with four outputs untrimmed (maximum feerate)",
    bolt03_appendix_c_commitment_tx_with_three_outputs_untrimmed_minimum_feerate =>
        "commitment tx with three outputs untrimmed (minimum feerate)",
    bolt03_appendix_c_commitment_tx_with_three_outputs_untrimmed_maximum_feerate =>
        "commitment tx with three outputs untrimmed (maximum feerate)",
    bolt03_appendix_c_commitment_tx_with_two_outputs_untrimmed_minimum_feerate =>
        "commitment tx with two outputs untrimmed (minimum feerate)",
    bolt03_appendix_c_commitment_tx_with_two_outputs_untrimmed_maximum_feerate =>
        "commitment tx with two outputs untrimmed (maximum feerate)",
    bolt03_appendix_c_commitment_tx_with_one_output_untrimmed_minimum_feerate =>
        "commitment tx with one output untrimmed (minimum feerate)",
    bolt03_appendix_c_commitment_tx_with_fee_greater_than_funder_amount =>
        "commitment tx with fee greater than funder amount",
    bolt03_appendix_c_commitment_tx_with_3_htlc_outputs_2_offered_having_the_same_amount_and_preimage =>
        "commitment tx with 3 htlc outputs, 2 offered having the same amount and preimage",
}

/// The Appendix C keys follow from the basepoint secrets in the spec's HTML comment, and the
/// obscuring factor is the one the spec states.
#[test]
fn bolt03_appendix_c_keys_and_obscuring_factor() {
    let f = Fixture::new();
    let secp = &f.secp;
    let c = &f.common;
    let internal = &c["internal_comment_values"];
    let point = per_commitment_point(
        secp,
        &secret32(str_field(internal, "x_local_per_commitment_secret")),
    )
    .expect("valid secret");
    assert_eq!(
        point,
        pubkey(str_field(internal, "local_per_commitment_point"))
    );
    let from = |hex: &str| PublicKey::from_secret_key(secp, &privkey(hex));
    assert_eq!(
        from(str_field(c, "local_funding_privkey")),
        pubkey(str_field(c, "local_funding_pubkey"))
    );
    assert_eq!(
        from(str_field(internal, "remote_funding_privkey")),
        pubkey(str_field(c, "remote_funding_pubkey"))
    );
    let local_payment = from(str_field(internal, "local_payment_basepoint_secret"));
    let remote_payment = from(str_field(internal, "remote_payment_basepoint_secret"));
    assert_eq!(
        local_payment,
        pubkey(str_field(c, "local_payment_basepoint"))
    );
    assert_eq!(
        remote_payment,
        pubkey(str_field(c, "remote_payment_basepoint"))
    );
    // "We use the same values for the HTLC basepoints".
    assert_eq!(local_payment, pubkey(str_field(c, "local_htlc_basepoint")));
    assert_eq!(
        remote_payment,
        pubkey(str_field(c, "remote_htlc_basepoint"))
    );
    let remote_revocation = from(str_field(internal, "remote_revocation_basepoint_secret"));
    assert_eq!(
        remote_revocation,
        pubkey(str_field(internal, "remote_revocation_basepoint"))
    );
    let local_delayed = from(str_field(
        internal,
        "local_delayed_payment_basepoint_secret",
    ));
    assert_eq!(
        local_delayed,
        pubkey(str_field(internal, "local_delayed_payment_basepoint"))
    );

    // Derived keys.
    let local_privkey = derive_private_key(
        secp,
        &point,
        &privkey(str_field(internal, "local_payment_basepoint_secret")),
    )
    .expect("derivable");
    assert_eq!(local_privkey, privkey(str_field(c, "local_privkey")));
    assert_eq!(local_privkey, f.local_htlc_key);
    assert_eq!(
        f.remote_htlc_key,
        privkey(str_field(internal, "remote_privkey"))
    );
    let local_delayed_privkey = derive_private_key(
        secp,
        &point,
        &privkey(str_field(
            internal,
            "local_delayed_payment_basepoint_secret",
        )),
    )
    .expect("derivable");
    assert_eq!(
        local_delayed_privkey,
        privkey(str_field(internal, "local_delayed_privkey"))
    );
    let htlc_keys = f.keys.htlc_keys.expect("the vectors give both htlc keys");
    assert_eq!(
        derive_public_key(secp, &point, &local_payment),
        Ok(htlc_keys.local_htlc_key)
    );
    assert_eq!(
        derive_public_key(secp, &point, &remote_payment),
        Ok(htlc_keys.remote_htlc_key)
    );
    assert_eq!(
        PublicKey::from_secret_key(secp, &f.remote_htlc_key),
        htlc_keys.remote_htlc_key
    );
    assert_eq!(
        derive_public_key(secp, &point, &local_delayed),
        Ok(f.keys.local_delayed_key)
    );
    assert_eq!(
        derive_revocation_public_key(secp, &remote_revocation, &point),
        Ok(f.keys.revocation_key)
    );

    // The same keys through CommitmentKeys::derive. The local revocation basepoint and the
    // remote delayed basepoint play no part in the local commitment; the spec gives neither.
    let unused = pubkey(str_field(c, "local_funding_pubkey"));
    let local = ChannelPublicKeys {
        funding_pubkey: pubkey(str_field(c, "local_funding_pubkey")),
        revocation_basepoint: unused,
        payment_basepoint: local_payment,
        delayed_payment_basepoint: local_delayed,
        htlc_basepoint: local_payment,
    };
    let remote = ChannelPublicKeys {
        funding_pubkey: pubkey(str_field(c, "remote_funding_pubkey")),
        revocation_basepoint: remote_revocation,
        payment_basepoint: remote_payment,
        delayed_payment_basepoint: unused,
        htlc_basepoint: remote_payment,
    };
    assert_eq!(
        CommitmentKeys::derive(secp, &point, &local, &remote),
        Ok(f.keys)
    );
    assert_eq!(
        CommitmentKeys::derive_without_htlc_keys(secp, &point, &local, &remote),
        Ok(CommitmentKeys {
            htlc_keys: None,
            ..f.keys
        })
    );

    // Funding script and obscuring factor ("obscured commitment number = 0x2bb038521914 ^ 42").
    let script = funding_script(&local.funding_pubkey, &remote.funding_pubkey);
    assert_eq!(to_hex(script.as_bytes()), str_field(c, "funding_wscript"));
    let comment = c["comments"][0].as_str().expect("comment");
    assert_eq!(
        comment,
        "# obscured commitment number = 0x2bb038521914 ^ 42"
    );
    assert_eq!(
        commitment_number_obscure_factor(&local_payment, &remote_payment),
        0x2bb038521914
    );
    assert_eq!(f.commitment_number, 42);
}
