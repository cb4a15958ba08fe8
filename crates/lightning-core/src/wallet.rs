//! Coin selection and the funding transaction, sans-IO: the host's wallet owns the coins
//! and signs its inputs; this module only chooses among the coins it is shown and lays out
//! the unsigned transaction ([`build_funding_transaction`]).
//!
//! Selection is largest-first: the spendable segwit coins, largest value first (ties by
//! outpoint, so the answer is deterministic), are added until they pay the output and the
//! fee of the transaction as it stands. A change output is added when what is left after
//! its own weight's fee is above the change script's dust limit; otherwise the remainder
//! goes to the fee. The fee is computed from the transaction's real weight (each input's
//! satisfaction weight as the wallet states it), rounded up, so the feerate asked for is a
//! floor.

use crate::transactions::claims::varint_len;
use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

/// A coin the wallet may spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletUtxo {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it is: its value and script.
    pub txout: TxOut,
    /// The weight its spending input adds beyond the [`INPUT_BASE_WEIGHT`] every input has
    /// (outpoint, sequence, the scriptSig's length byte): the scriptSig's bytes times four
    /// plus the witness (item count included). 108 for P2WPKH with a 72-byte signature
    /// ([`P2WPKH_SATISFACTION_WEIGHT`]).
    pub satisfaction_weight: u64,
}

/// The satisfaction weight of a P2WPKH input: the witness item count (1), a signature of at
/// most 72 bytes with its length (73) and a compressed key with its length (34).
pub const P2WPKH_SATISFACTION_WEIGHT: u64 = 1 + 73 + 34;

/// Weight of an input before its satisfaction: outpoint (36), sequence (4) and the
/// scriptSig's length byte (1), times four.
pub const INPUT_BASE_WEIGHT: u64 = (36 + 4 + 1) * 4;

/// Why no funding transaction could be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoinSelectionError {
    /// The spendable segwit coins do not pay the output and the fee.
    InsufficientFunds {
        /// What the output and the fee of spending every coin would need.
        needed_satoshis: u64,
        /// What the spendable segwit coins hold.
        available_satoshis: u64,
    },
    /// The output to fund is below its own script's dust limit.
    OutputBelowDust {
        /// The output's value.
        value_satoshis: u64,
    },
    /// The feerate is below the relay minimum (253 sat per 1000 weight).
    FeerateTooLow {
        /// The feerate asked for.
        feerate_per_kw: u32,
    },
}

impl std::fmt::Display for CoinSelectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoinSelectionError::InsufficientFunds {
                needed_satoshis,
                available_satoshis,
            } => write!(
                f,
                "insufficient funds: need {needed_satoshis} sat, have {available_satoshis} sat"
            ),
            CoinSelectionError::OutputBelowDust { value_satoshis } => {
                write!(f, "output of {value_satoshis} sat is below dust")
            }
            CoinSelectionError::FeerateTooLow { feerate_per_kw } => {
                write!(
                    f,
                    "feerate {feerate_per_kw} sat/kw is below the relay minimum"
                )
            }
        }
    }
}

impl std::error::Error for CoinSelectionError {}

/// A funding transaction laid out, unsigned: the wallet signs `tx`'s inputs (the coins in
/// `inputs`, in the same order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingPlan {
    /// The unsigned transaction: version 2, the funding output at index 0, change (if any)
    /// at index 1, every input signalling replaceability (BIP 125).
    pub tx: Transaction,
    /// The coins spent, in input order: their `txout`s are the prevouts to sign with.
    pub inputs: Vec<WalletUtxo>,
    /// The fee paid (inputs minus outputs).
    pub fee_satoshis: u64,
    /// The change output's index, when there is one.
    pub change_vout: Option<u32>,
    /// The weight of the signed transaction, as the fee was computed for (an upper bound:
    /// a shorter signature only makes it lighter).
    pub weight: u64,
}

impl FundingPlan {
    /// The prevouts of `tx`'s inputs, in order: what signing needs.
    pub fn prevouts(&self) -> Vec<TxOut> {
        self.inputs.iter().map(|u| u.txout.clone()).collect()
    }
}

/// The weight of a serialized output with `script`.
fn output_weight(script: &ScriptBuf) -> u64 {
    let len = script.len() as u64;
    (8 + varint_len(len) + len) * 4
}

/// The weight of a segwit transaction with `inputs` (their satisfaction weights) and
/// `outputs` (their scripts).
fn tx_weight(inputs: &[&WalletUtxo], outputs: &[&ScriptBuf]) -> u64 {
    // version, locktime, input and output counts; the segwit marker and flag (2).
    let header =
        (4 + 4 + varint_len(inputs.len() as u64) + varint_len(outputs.len() as u64)) * 4 + 2;
    header
        + inputs
            .iter()
            .map(|u| INPUT_BASE_WEIGHT + u.satisfaction_weight)
            .sum::<u64>()
        + outputs.iter().map(|s| output_weight(s)).sum::<u64>()
}

/// The fee of `weight` at `feerate_per_kw`, rounded up.
pub fn fee_for_weight(feerate_per_kw: u32, weight: u64) -> u64 {
    (u64::from(feerate_per_kw) * weight).div_ceil(1000)
}

/// The coins a selection may take, largest first (ties by outpoint, so the choice is
/// deterministic): segwit outputs only, since a non-segwit input would make the
/// transaction's id malleable before it confirms (a funding transaction, a CPFP child).
pub fn largest_first(utxos: &[WalletUtxo]) -> Vec<&WalletUtxo> {
    let mut candidates: Vec<&WalletUtxo> = utxos
        .iter()
        .filter(|u| u.txout.script_pubkey.is_witness_program())
        .collect();
    candidates.sort_by(|a, b| {
        b.txout
            .value
            .cmp(&a.txout.value)
            .then(a.outpoint.cmp(&b.outpoint))
    });
    candidates
}

/// Chooses coins among `utxos` (largest first; coins that are not segwit outputs are
/// skipped, since a funding transaction must not be malleable) to pay `output` at
/// `feerate_per_kw`, with change to `change_script` when it is above dust, and lays out the
/// unsigned transaction. `utxos` should already leave out coins reserved for anything else.
pub fn build_funding_transaction(
    utxos: &[WalletUtxo],
    output: TxOut,
    change_script: ScriptBuf,
    feerate_per_kw: u32,
) -> Result<FundingPlan, CoinSelectionError> {
    if feerate_per_kw < crate::node::MIN_RELAY_FEERATE_PER_KW {
        return Err(CoinSelectionError::FeerateTooLow { feerate_per_kw });
    }
    let value = output.value.to_sat();
    if value < output.script_pubkey.minimal_non_dust().to_sat() {
        return Err(CoinSelectionError::OutputBelowDust {
            value_satoshis: value,
        });
    }
    let candidates = largest_first(utxos);
    let available: u64 = candidates.iter().map(|u| u.txout.value.to_sat()).sum();
    let change_dust = change_script.minimal_non_dust().to_sat();
    let mut chosen: Vec<&WalletUtxo> = Vec::new();
    let mut total: u64 = 0;
    for utxo in &candidates {
        chosen.push(utxo);
        total = total.saturating_add(utxo.txout.value.to_sat());
        let weight_without = tx_weight(&chosen, &[&output.script_pubkey]);
        let fee_without = fee_for_weight(feerate_per_kw, weight_without);
        let Some(left) = total.checked_sub(value.saturating_add(fee_without)) else {
            continue;
        };
        let weight_with = tx_weight(&chosen, &[&output.script_pubkey, &change_script]);
        let fee_with = fee_for_weight(feerate_per_kw, weight_with);
        let change = total
            .checked_sub(value.saturating_add(fee_with))
            .filter(|&c| c >= change_dust);
        let mut outputs = vec![output.clone()];
        let (fee, weight) = match change {
            Some(change) => {
                outputs.push(TxOut {
                    value: Amount::from_sat(change),
                    script_pubkey: change_script.clone(),
                });
                (fee_with, weight_with)
            }
            // Dust change (or none) goes to the fee.
            None => (fee_without + left, weight_without),
        };
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: chosen
                .iter()
                .map(|u| TxIn {
                    previous_output: u.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        return Ok(FundingPlan {
            tx,
            inputs: chosen.into_iter().cloned().collect(),
            fee_satoshis: fee,
            change_vout: change.map(|_| 1),
            weight,
        });
    }
    let weight_all = tx_weight(&candidates, &[&output.script_pubkey]);
    Err(CoinSelectionError::InsufficientFunds {
        needed_satoshis: value.saturating_add(fee_for_weight(feerate_per_kw, weight_all)),
        available_satoshis: available,
    })
}

/// The funding transaction of a channel paid from ONE coin the caller names: `utxo`, worth
/// `utxo_value_satoshis`, spent whole into one output paying `channel_value_satoshis` to
/// `funding_script` (the
/// [`Event::FundingGenerationReady`](crate::node::Event::FundingGenerationReady) fields
/// `channel_value_satoshis` and `output_script`); what the coin holds beyond the channel
/// value is the fee (no change output). Version 2, no lock time, the input signalling
/// replaceability (BIP 125).
///
/// The input is NOT signed (its witness and scriptSig are empty): the wallet that owns the
/// coin signs it, then hands the signed transaction to `funding_transaction_generated`
/// (signing changes no txid: the input is segwit). Do NOT broadcast it yourself: the node
/// emits [`Event::BroadcastTransaction`](crate::node::Event::BroadcastTransaction) for this
/// transaction once the peer's `funding_signed` has arrived (never before: until then the
/// channel has no signed way back), and a host relays that event like any other. For a
/// channel funded from a wallet's coins with coin selection, change and signing, see
/// `shard_engine::fund_channel` and [`build_funding_transaction`].
///
/// Errors: [`CoinSelectionError::InsufficientFunds`] when the coin is worth less than the
/// channel value (`needed_satoshis` is the channel value).
///
/// ```
/// use lightning_core::bitcoin::hashes::Hash;
/// use lightning_core::bitcoin::{OutPoint, ScriptBuf, Txid};
/// use lightning_core::wallet::funding_transaction_from_utxo;
///
/// let utxo = OutPoint { txid: Txid::from_byte_array([0xab; 32]), vout: 0 };
/// let script = ScriptBuf::from_bytes(vec![0x00, 0x20, 7, 7]); // from the event
/// let tx = funding_transaction_from_utxo(utxo, 1_100_000, script.clone(), 1_000_000)?;
/// assert_eq!(tx.input[0].previous_output, utxo);
/// assert_eq!(tx.output[0].value.to_sat(), 1_000_000);
/// assert_eq!(tx.output[0].script_pubkey, script);
/// assert!(funding_transaction_from_utxo(utxo, 999_999, script, 1_000_000).is_err());
/// # Ok::<(), lightning_core::wallet::CoinSelectionError>(())
/// ```
pub fn funding_transaction_from_utxo(
    utxo: OutPoint,
    utxo_value_satoshis: u64,
    funding_script: ScriptBuf,
    channel_value_satoshis: u64,
) -> Result<Transaction, CoinSelectionError> {
    if utxo_value_satoshis < channel_value_satoshis {
        return Err(CoinSelectionError::InsufficientFunds {
            needed_satoshis: channel_value_satoshis,
            available_satoshis: utxo_value_satoshis,
        });
    }
    Ok(Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: utxo,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(channel_value_satoshis),
            script_pubkey: funding_script,
        }],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::{Txid, WPubkeyHash, WScriptHash};

    /// A P2WPKH script of a made-up key hash `[tag; 20]`.
    pub(crate) fn p2wpkh(tag: u8) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([tag; 20]))
    }

    /// A made-up P2WPKH coin of `sats` at outpoint `[n; 32]:0`.
    pub(crate) fn coin(n: u8, sats: u64) -> WalletUtxo {
        WalletUtxo {
            outpoint: OutPoint {
                txid: Txid::from_byte_array([n; 32]),
                vout: 0,
            },
            txout: TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: p2wpkh(n),
            },
            satisfaction_weight: P2WPKH_SATISFACTION_WEIGHT,
        }
    }

    fn funding(sats: u64) -> TxOut {
        TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([7; 32])),
        }
    }

    /// The weight of `plan.tx` once each input carries a 72-byte signature and a key.
    fn signed_weight(plan: &FundingPlan) -> u64 {
        let mut tx = plan.tx.clone();
        for input in &mut tx.input {
            input.witness = Witness::from_slice(&[vec![0u8; 72], vec![2u8; 33]]);
        }
        tx.weight().to_wu()
    }

    fn fee_of(plan: &FundingPlan) -> u64 {
        let ins: u64 = plan.inputs.iter().map(|u| u.txout.value.to_sat()).sum();
        let outs: u64 = plan.tx.output.iter().map(|o| o.value.to_sat()).sum();
        ins - outs
    }

    #[test]
    fn change_above_dust_is_returned_and_the_fee_follows_the_weight() {
        let utxos = [coin(1, 50_000), coin(2, 300_000), coin(3, 120_000)];
        let plan = build_funding_transaction(&utxos, funding(200_000), p2wpkh(9), 1_000).unwrap();
        // Largest first: the 300k coin alone pays.
        assert_eq!(plan.inputs, vec![utxos[1].clone()]);
        assert_eq!(plan.change_vout, Some(1));
        assert_eq!(plan.tx.output[0], funding(200_000));
        assert_eq!(plan.tx.output[1].script_pubkey, p2wpkh(9));
        assert_eq!(plan.weight, signed_weight(&plan));
        assert_eq!(plan.fee_satoshis, fee_for_weight(1_000, plan.weight));
        assert_eq!(plan.fee_satoshis, fee_of(&plan));
        assert_eq!(plan.prevouts(), vec![utxos[1].txout.clone()]);
    }

    #[test]
    fn several_coins_when_one_is_not_enough() {
        let utxos = [coin(1, 50_000), coin(2, 100_000), coin(3, 120_000)];
        let plan = build_funding_transaction(&utxos, funding(200_000), p2wpkh(9), 2_000).unwrap();
        assert_eq!(plan.inputs, vec![utxos[2].clone(), utxos[1].clone()]);
        assert_eq!(plan.weight, signed_weight(&plan));
        assert_eq!(plan.fee_satoshis, fee_of(&plan));
        assert!(plan.fee_satoshis >= fee_for_weight(2_000, plan.weight));
    }

    #[test]
    fn an_exact_match_has_no_change() {
        let feerate = 1_000;
        // One input, the funding output only.
        let weight = tx_weight(&[&coin(1, 0)], &[&funding(0).script_pubkey]);
        let fee = fee_for_weight(feerate, weight);
        let plan = build_funding_transaction(
            &[coin(1, 100_000 + fee)],
            funding(100_000),
            p2wpkh(9),
            feerate,
        )
        .unwrap();
        assert_eq!(plan.change_vout, None);
        assert_eq!(plan.tx.output, vec![funding(100_000)]);
        assert_eq!(plan.fee_satoshis, fee);
        assert_eq!(plan.weight, signed_weight(&plan));
    }

    #[test]
    fn dust_change_goes_to_the_fee() {
        let feerate = 1_000;
        let weight = tx_weight(&[&coin(1, 0)], &[&funding(0).script_pubkey]);
        let fee = fee_for_weight(feerate, weight);
        // 200 sat over: less than a P2WPKH change output's fee plus its dust limit (294).
        let plan = build_funding_transaction(
            &[coin(1, 100_000 + fee + 200)],
            funding(100_000),
            p2wpkh(9),
            feerate,
        )
        .unwrap();
        assert_eq!(plan.change_vout, None);
        assert_eq!(plan.tx.output.len(), 1);
        assert_eq!(plan.fee_satoshis, fee + 200);
        assert_eq!(plan.fee_satoshis, fee_of(&plan));
    }

    #[test]
    fn insufficient_funds_is_refused() {
        let utxos = [coin(1, 60_000), coin(2, 60_000)];
        let err = build_funding_transaction(&utxos, funding(120_000), p2wpkh(9), 253).unwrap_err();
        match err {
            CoinSelectionError::InsufficientFunds {
                needed_satoshis,
                available_satoshis,
            } => {
                assert_eq!(available_satoshis, 120_000);
                assert!(needed_satoshis > 120_000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn coins_left_out_by_the_wallet_or_not_segwit_are_never_chosen() {
        // The wallet lists only unreserved coins; a legacy coin is skipped even if listed.
        let legacy = WalletUtxo {
            txout: TxOut {
                value: Amount::from_sat(10_000_000),
                script_pubkey: ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_byte_array([4; 20])),
            },
            ..coin(4, 0)
        };
        let utxos = [legacy, coin(2, 300_000)];
        let plan = build_funding_transaction(&utxos, funding(200_000), p2wpkh(9), 1_000).unwrap();
        assert_eq!(plan.inputs, vec![utxos[1].clone()]);
        let err =
            build_funding_transaction(&utxos[..1], funding(200_000), p2wpkh(9), 1_000).unwrap_err();
        assert!(matches!(
            err,
            CoinSelectionError::InsufficientFunds {
                available_satoshis: 0,
                ..
            }
        ));
    }

    #[test]
    fn a_dust_output_or_a_feerate_below_relay_is_refused() {
        let utxos = [coin(1, 300_000)];
        assert_eq!(
            build_funding_transaction(&utxos, funding(100), p2wpkh(9), 1_000),
            Err(CoinSelectionError::OutputBelowDust {
                value_satoshis: 100
            })
        );
        assert_eq!(
            build_funding_transaction(&utxos, funding(100_000), p2wpkh(9), 252),
            Err(CoinSelectionError::FeerateTooLow {
                feerate_per_kw: 252
            })
        );
    }
}
