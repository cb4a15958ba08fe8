//! `fund`: the node builds and signs a funding transaction from a P2WPKH UTXO the caller
//! names (outpoint, amount and its private key, regtest style), paying the channel's 2-of-2
//! output, with the change back to the same key.

use lightning_core::bitcoin::absolute::LockTime;
use lightning_core::bitcoin::sighash::{EcdsaSighashType, SighashCache};
use lightning_core::bitcoin::transaction::Version;
use lightning_core::bitcoin::{
    Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use lightning_core::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use lightning_core::types::ChannelId;
use shard_engine::NodeApi;

use super::state::FundingNeeded;
use super::Node;

/// Outputs below this are not worth creating (P2WPKH dust limit).
const DUST_SAT: u64 = 294;

/// A P2WPKH output the caller owns and lends to a channel's funding.
#[derive(Debug, Clone)]
pub struct Utxo {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount_sat: u64,
    /// The key of its P2WPKH script.
    pub secret_key: SecretKey,
    /// The fee the funding transaction pays.
    pub fee_sat: u64,
}

/// Builds and signs the funding transaction spending `utxo` into `needed`'s output (and
/// change), then hands it to the engine. Returns the transaction.
pub fn build_funding_tx(needed: &FundingNeeded, utxo: &Utxo) -> Result<Transaction, String> {
    let secp = Secp256k1::new();
    let change = utxo
        .amount_sat
        .checked_sub(needed.value_sat)
        .and_then(|c| c.checked_sub(utxo.fee_sat))
        .ok_or_else(|| {
            format!(
                "utxo amount {} sat below the channel's {} sat plus fee {} sat",
                utxo.amount_sat, needed.value_sat, utxo.fee_sat
            )
        })?;
    let pubkey = CompressedPublicKey(PublicKey::from_secret_key(&secp, &utxo.secret_key));
    let own_script = ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash());
    let mut output = vec![TxOut {
        value: Amount::from_sat(needed.value_sat),
        script_pubkey: needed.output_script.clone(),
    }];
    if change >= DUST_SAT {
        output.push(TxOut {
            value: Amount::from_sat(change),
            script_pubkey: own_script.clone(),
        });
    }
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: utxo.outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output,
    };
    let sighash = SighashCache::new(&tx)
        .p2wpkh_signature_hash(
            0,
            &own_script,
            Amount::from_sat(utxo.amount_sat),
            EcdsaSighashType::All,
        )
        .map_err(|e| format!("sighash: {e}"))?;
    let signature = secp.sign_ecdsa(&Message::from(sighash), &utxo.secret_key);
    let signature = lightning_core::bitcoin::ecdsa::Signature {
        signature,
        sighash_type: EcdsaSighashType::All,
    };
    if let Some(input) = tx.input.first_mut() {
        input.witness = Witness::p2wpkh(&signature, &pubkey.0);
    }
    Ok(tx)
}

/// Funds channel `temporary_channel_id` from `utxo`.
pub(crate) fn fund_with(
    node: &Node,
    temporary_channel_id: ChannelId,
    needed: &FundingNeeded,
    utxo: &Utxo,
) -> Result<Transaction, String> {
    let tx = build_funding_tx(needed, utxo)?;
    node.engine
        .funding_transaction_generated(temporary_channel_id, tx.clone())
        .map_err(|e| e.to_string())?;
    Ok(tx)
}
