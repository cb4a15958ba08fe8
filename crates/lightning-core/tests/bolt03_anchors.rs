//! BOLT 3 Appendix F: the 9 commitment and HTLC transaction vectors with
//! `option_anchors_zero_fee_htlc_tx`, one test per vector.
//!
//! The parameters are those of Appendix C (keys, funding, HTLCs). Each test rebuilds the
//! commitment, produces both funding signatures, checks the remote one against `RemoteSigHex`
//! and the signed transaction against `ExpectedCommitmentTxHex`, then signs every zero-fee
//! HTLC transaction (remote signature with `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`) and checks
//! it against `HtlcDescs`.

#![allow(clippy::indexing_slicing)]

mod bolt03_common;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::EcdsaSighashType;
use bolt03_common::*;
use lightning_core::transactions::ChannelType;
use serde_json::Value;

fn vector(name: &str) -> Value {
    vectors()["appendix_f_anchors"]["test_vectors"]
        .as_array()
        .expect("vector list")
        .iter()
        .find(|v| str_field(v, "Name") == name)
        .unwrap_or_else(|| panic!("no Appendix F vector named {name:?}"))
        .clone()
}

fn check_vector(name: &str) {
    let f = Fixture::new();
    let v = vector(name);
    let uses_htlcs = v["UseTestHtlcs"].as_bool().expect("UseTestHtlcs");
    let numbers = Fixture::htlc_numbers(name, uses_htlcs);
    let commitment = f.build(
        ChannelType::AnchorsZeroFeeHtlcTx,
        &numbers,
        u64_field(&v, "LocalBalance"),
        u64_field(&v, "RemoteBalance"),
        u32::try_from(u64_field(&v, "FeePerKw")).expect("u32 feerate"),
        u64_field(&v, "DustLimitSatoshis"),
    );
    let local_sig = commitment.sign(&f.secp, &f.local_funding_key);
    let remote_sig = commitment.sign(&f.secp, &f.remote_funding_key);
    assert_eq!(
        der_hex(&remote_sig),
        str_field(&v, "RemoteSigHex"),
        "remote signature"
    );
    assert_eq!(commitment.verify_remote(&f.secp, &remote_sig), Ok(()));
    let signed = commitment.finalize(&local_sig, &remote_sig);
    assert_eq!(
        serialize_hex(&signed),
        str_field(&v, "ExpectedCommitmentTxHex"),
        "commitment tx"
    );

    let htlc_txs = commitment.htlc_txs();
    let expected = v["HtlcDescs"].as_array().expect("HtlcDescs");
    assert_eq!(htlc_txs.len(), expected.len(), "htlc tx count");
    for (tx, e) in htlc_txs.iter().zip(expected) {
        let number = numbers[tx.commitment_output().htlc_index];
        assert_eq!(
            tx.remote_sighash_type(),
            EcdsaSighashType::SinglePlusAnyoneCanPay
        );
        assert_eq!(tx.tx().input[0].sequence.0, 1, "csv 1 on the htlc output");
        assert_eq!(
            tx.tx().output[0].value.to_sat(),
            tx.htlc().amount_satoshis(),
            "zero fee"
        );
        let remote = tx.sign_remote(&f.secp, &f.remote_htlc_key);
        let local = tx.sign_local(&f.secp, &f.local_htlc_key);
        assert_eq!(
            der_hex(&remote),
            str_field(e, "RemoteSigHex"),
            "htlc #{number}"
        );
        assert_eq!(tx.verify_remote(&f.secp, &remote), Ok(()));
        let preimage = tx.is_success().then_some(&f.htlcs[number].1);
        let signed = tx
            .finalize(&remote, &local, preimage)
            .expect("right preimage");
        assert_eq!(
            serialize_hex(&signed),
            str_field(e, "ResolutionTxHex"),
            "htlc #{number} tx"
        );
    }
}

macro_rules! appendix_f {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_vector($name);
            }
        )*

        #[test]
        fn bolt03_appendix_f_every_vector_has_a_test() {
            let tested = [$($name),*];
            let all = vectors();
            let names: Vec<&str> = all["appendix_f_anchors"]["test_vectors"]
                .as_array()
                .expect("vector list")
                .iter()
                .map(|v| str_field(v, "Name"))
                .collect();
            assert_eq!(names, tested);
            $(assert_eq!(
                stringify!($test),
                format!("bolt03_appendix_f_{}", slug($name)),
                "test named for its vector"
            );)*
        }
    };
}

appendix_f! {
    bolt03_appendix_f_simple_commitment_tx_with_no_htlcs =>
        "simple commitment tx with no HTLCs",
    bolt03_appendix_f_simple_commitment_tx_with_no_htlcs_and_single_anchor =>
        "simple commitment tx with no HTLCs and single anchor",
    bolt03_appendix_f_commitment_tx_with_seven_outputs_untrimmed =>
        "commitment tx with seven outputs untrimmed",
    bolt03_appendix_f_commitment_tx_with_six_outputs_untrimmed_minimum_dust_limit =>
        "commitment tx with six outputs untrimmed (minimum dust limit)",
    bolt03_appendix_f_commitment_tx_with_four_outputs_untrimmed_minimum_dust_limit =>
        "commitment tx with four outputs untrimmed (minimum dust limit)",
    bolt03_appendix_f_commitment_tx_with_three_outputs_untrimmed_minimum_dust_limit =>
        "commitment tx with three outputs untrimmed (minimum dust limit)",
    bolt03_appendix_f_commitment_tx_with_two_outputs_untrimmed_minimum_dust_limit =>
        "commitment tx with two outputs untrimmed (minimum dust limit)",
    bolt03_appendix_f_commitment_tx_with_one_output_untrimmed_minimum_dust_limit =>
        "commitment tx with one output untrimmed (minimum dust limit)",
    bolt03_appendix_f_commitment_tx_with_3_htlc_outputs_2_offered_having_the_same_amount_and_preimage =>
        "commitment tx with 3 htlc outputs, 2 offered having the same amount and preimage",
}
