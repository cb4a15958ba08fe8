//! BOLT 3 Appendix D: per-commitment secret generation (5 vectors) and the compact storage
//! of received secrets (9 insert sequences, 8 of them ending in a rejected secret), one test
//! per vector.

#![allow(clippy::indexing_slicing)]

mod bolt03_common;

use bolt03_common::*;
use lightning_core::secrets::{generate_from_seed, CounterpartySecrets, SecretError};
use serde_json::Value;

fn find(list: &str, name: &str) -> Value {
    vectors()["appendix_d_per_commitment_secret"][list]
        .as_array()
        .expect("vector list")
        .iter()
        .find(|v| str_field(v, "name") == name)
        .unwrap_or_else(|| panic!("no Appendix D vector named {name:?}"))
        .clone()
}

fn check_generation(name: &str) {
    let v = find("generation_tests", name);
    let seed = array32(str_field(&v, "seed"));
    let secret = generate_from_seed(&seed, u64_field(&v, "I")).expect("48-bit index");
    assert_eq!(to_hex(&secret), str_field(&v, "output"));
}

fn check_storage(name: &str) {
    let v = find("storage_tests", name);
    let mut store = CounterpartySecrets::new();
    let mut accepted = Vec::new();
    let inserts = v["inserts"].as_array().expect("inserts");
    for (step, insert) in inserts.iter().enumerate() {
        let index = u64_field(insert, "I");
        let secret = array32(str_field(insert, "secret"));
        let result = store.insert(index, secret);
        match str_field(insert, "output") {
            "OK" => {
                assert_eq!(result, Ok(()), "step {step}: index {index}");
                accepted.push((index, secret));
            }
            "ERROR" => {
                assert!(
                    matches!(result, Err(SecretError::SecretMismatch { index: i, .. }) if i == index),
                    "step {step}: index {index} must be rejected, got {result:?}"
                );
                assert_eq!(store.get(index), None, "a rejected secret is not stored");
                assert_eq!(step, inserts.len() - 1, "a sequence ends at its error");
            }
            other => panic!("output {other}"),
        }
    }
    // Every accepted secret can be looked up again.
    for (index, secret) in accepted {
        assert_eq!(store.get(index), Some(secret), "lookup of index {index}");
    }
}

macro_rules! appendix_d {
    (generation { $($gtest:ident => $gname:literal,)* }
     storage { $($stest:ident => $sname:literal,)* }) => {
        $(
            #[test]
            fn $gtest() {
                check_generation($gname);
            }
        )*
        $(
            #[test]
            fn $stest() {
                check_storage($sname);
            }
        )*

        #[test]
        fn bolt03_appendix_d_every_vector_has_a_test() {
            let all = vectors();
            let d = &all["appendix_d_per_commitment_secret"];
            let names = |list: &str| -> Vec<String> {
                d[list]
                    .as_array()
                    .expect("vector list")
                    .iter()
                    .map(|v| str_field(v, "name").to_string())
                    .collect()
            };
            assert_eq!(names("generation_tests"), [$($gname),*]);
            assert_eq!(names("storage_tests"), [$($sname),*]);
            $(assert_eq!(stringify!($gtest), format!("bolt03_appendix_d_{}", slug($gname)));)*
            $(assert_eq!(stringify!($stest), format!("bolt03_appendix_d_{}", slug($sname)));)*
        }
    };
}

appendix_d! {
    generation {
        bolt03_appendix_d_generate_from_seed_0_final_node => "generate_from_seed 0 final node",
        bolt03_appendix_d_generate_from_seed_ff_final_node => "generate_from_seed FF final node",
        bolt03_appendix_d_generate_from_seed_ff_alternate_bits_1 =>
            "generate_from_seed FF alternate bits 1",
        bolt03_appendix_d_generate_from_seed_ff_alternate_bits_2 =>
            "generate_from_seed FF alternate bits 2",
        bolt03_appendix_d_generate_from_seed_01_last_nontrivial_node =>
            "generate_from_seed 01 last nontrivial node",
    }
    storage {
        bolt03_appendix_d_insert_secret_correct_sequence => "insert_secret correct sequence",
        bolt03_appendix_d_insert_secret_1_incorrect => "insert_secret #1 incorrect",
        bolt03_appendix_d_insert_secret_2_incorrect_1_derived_from_incorrect =>
            "insert_secret #2 incorrect (#1 derived from incorrect)",
        bolt03_appendix_d_insert_secret_3_incorrect => "insert_secret #3 incorrect",
        bolt03_appendix_d_insert_secret_4_incorrect_1_2_3_derived_from_incorrect =>
            "insert_secret #4 incorrect (1,2,3 derived from incorrect)",
        bolt03_appendix_d_insert_secret_5_incorrect => "insert_secret #5 incorrect",
        bolt03_appendix_d_insert_secret_6_incorrect_5_derived_from_incorrect =>
            "insert_secret #6 incorrect (5 derived from incorrect)",
        bolt03_appendix_d_insert_secret_7_incorrect => "insert_secret #7 incorrect",
        bolt03_appendix_d_insert_secret_8_incorrect => "insert_secret #8 incorrect",
    }
}

/// The storage tests say "a seed of 0xFFF...FF is used": the secrets of the correct sequence
/// are that seed's, and lookups of skipped-over indices derive from the stored ones.
#[test]
fn bolt03_appendix_d_correct_sequence_comes_from_the_ff_seed() {
    let v = find("storage_tests", "insert_secret correct sequence");
    let mut store = CounterpartySecrets::new();
    for insert in v["inserts"].as_array().expect("inserts") {
        let index = u64_field(insert, "I");
        let secret = array32(str_field(insert, "secret"));
        assert_eq!(generate_from_seed(&[0xff; 32], index), Ok(secret));
        store.insert(index, secret).expect("correct sequence");
    }
    let next = store.next_index().expect("more indices remain");
    assert_eq!(store.get(next), None, "not received yet");
}
