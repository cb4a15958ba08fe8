//! BOLT 3 Appendix B: the funding transaction vector.
//!
//! Rebuilds the funding witness script and output from the two funding keys, then the whole
//! funding transaction: it spends the block 1 coinbase (a P2PKH output, signed here with
//! `SIGHASH_ALL` and RFC 6979) into the funding output and a P2WPKH change output in BIP 69
//! order, and must match the spec's transaction byte for byte.

#![allow(clippy::indexing_slicing)]

mod bolt03_common;

use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::secp256k1::{Message, PublicKey};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, CompressedPublicKey, EcdsaSighashType, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Witness,
};
use bolt03_common::*;
use lightning_core::transactions::fees::fee_for_weight;
use lightning_core::transactions::scripts::{funding_output, funding_script};
use serde_json::Value;

fn comment_value(b: &Value, prefix: &str) -> String {
    b["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|c| c.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("comment starting {prefix:?}"))
        .trim()
        .to_string()
}

#[test]
fn bolt03_appendix_b_funding_transaction() {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let all = vectors();
    let b = &all["appendix_b_funding_transaction"];
    let local = pubkey(str_field(b, "local_funding_pubkey"));
    let remote = pubkey(str_field(b, "remote_funding_pubkey"));

    // "# funding witness script = ..."
    let script = funding_script(&local, &remote);
    assert_eq!(
        to_hex(script.as_bytes()),
        comment_value(b, "# funding witness script = ")
    );
    assert_eq!(
        script,
        funding_script(&remote, &local),
        "key order does not matter"
    );
    let funding_satoshis = u64_field(b, "funding_satoshis");
    let funding = funding_output(&local, &remote, funding_satoshis);
    assert_eq!(funding.script_pubkey, script.to_p2wsh());

    // The input: output 0 of the block 1 coinbase, paid to the coinbase key.
    let coinbase: Transaction =
        deserialize(&bytes(str_field(b, "Block_1_coinbase_transaction"))).expect("coinbase tx");
    assert_eq!(
        coinbase.compute_txid().to_string(),
        str_field(b, "input_txid")
    );
    let block1 = bytes(str_field(b, "Block_1"));
    assert!(
        block1.ends_with(&bytes(str_field(b, "Block_1_coinbase_transaction"))),
        "block 1 holds the coinbase"
    );
    let input_index = u32::try_from(u64_field(b, "input_index")).expect("u32");
    let spent = &coinbase.output[input_index as usize];
    assert_eq!(spent.value.to_sat(), u64_field(b, "input_satoshis"));
    let key = privkey(str_field(b, "Block_1_coinbase_privkey"));
    let key_pub = CompressedPublicKey(PublicKey::from_secret_key(&secp, &key));
    assert_eq!(
        spent.script_pubkey,
        ScriptBuf::new_p2pkh(&key_pub.pubkey_hash())
    );

    // Outputs: funding and change to the same key's P2WPKH, in BIP 69 order.
    let change = TxOut {
        value: Amount::from_sat(u64_field(b, "change_satoshis")),
        script_pubkey: ScriptBuf::new_p2wpkh(&key_pub.wpubkey_hash()),
    };
    let mut outputs = vec![change, funding.clone()];
    outputs.sort_by(|x, y| {
        x.value
            .cmp(&y.value)
            .then_with(|| x.script_pubkey.as_bytes().cmp(y.script_pubkey.as_bytes()))
    });
    let funding_index = outputs
        .iter()
        .position(|o| *o == funding)
        .expect("funding output");
    assert_eq!(funding_index as u64, u64_field(b, "funding_output"));

    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: coinbase.compute_txid(),
                vout: input_index,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs,
    };
    let sighash = bitcoin::sighash::SighashCache::new(&tx)
        .legacy_signature_hash(0, &spent.script_pubkey, EcdsaSighashType::All.to_u32())
        .expect("input 0 exists");
    let signature = secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &key);
    let signature = bitcoin::ecdsa::Signature::sighash_all(signature).serialize();
    let sig_push = PushBytesBuf::try_from(signature.to_vec()).expect("short push");
    tx.input[0].script_sig = Builder::new()
        .push_slice(sig_push)
        .push_slice(key_pub.to_bytes())
        .into_script();

    assert_eq!(serialize_hex(&tx), str_field(b, "funding_tx"));
    // "# txid: ..." and it is the funding txid Appendix C uses.
    assert_eq!(tx.compute_txid().to_string(), comment_value(b, "# txid: "));
    assert_eq!(
        tx.compute_txid().to_string(),
        str_field(
            &all["appendix_c_commitment_and_htlc_transactions"]["common"],
            "funding_tx_id"
        )
    );
    // "# feerate_per_kw: 15000": the fee is the feerate times the signed transaction's weight.
    let feerate: u32 = comment_value(b, "# feerate_per_kw: ")
        .parse()
        .expect("feerate");
    let fee = u64_field(b, "input_satoshis") - funding_satoshis - u64_field(b, "change_satoshis");
    assert_eq!(fee_for_weight(feerate, tx.weight().to_wu()), fee);
}
