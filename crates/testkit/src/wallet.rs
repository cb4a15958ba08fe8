//! A test wallet for [`shard_engine::Wallet`]: a few P2WPKH coins paid by a made-up parent
//! transaction to keys derived from a tag, with real BIP 143 signatures (tests check them
//! with libbitcoinconsensus), atomic reservations, and a change key of its own.

use std::collections::{BTreeMap, HashMap};

use lightning_core::bitcoin::absolute::LockTime;
use lightning_core::bitcoin::ecdsa::Signature;
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::sighash::{EcdsaSighashType, SighashCache};
use lightning_core::bitcoin::transaction::Version;
use lightning_core::bitcoin::{
    Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use lightning_core::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use lightning_core::wallet::{WalletUtxo, P2WPKH_SATISFACTION_WEIGHT};
use parking_lot::Mutex;
use shard_engine::{Reservation, Wallet, WalletError};

/// A P2WPKH key of the wallet.
#[derive(Clone)]
struct Key {
    secret: SecretKey,
    public: PublicKey,
    script: ScriptBuf,
}

impl Key {
    fn derive(tag: &[u8], index: &[u8]) -> Key {
        let secret = crate::secret(&[tag, b"/", index].concat());
        let public = PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret);
        let script = ScriptBuf::new_p2wpkh(&CompressedPublicKey(public).wpubkey_hash());
        Key {
            secret,
            public,
            script,
        }
    }
}

/// The test wallet: its coins (by outpoint), which are reserved and for what, its keys by
/// script.
pub struct TestWallet {
    keys: HashMap<ScriptBuf, Key>,
    change: Key,
    coins: Mutex<BTreeMap<OutPoint, TxOut>>,
    reserved: Mutex<HashMap<OutPoint, Reservation>>,
    parent: Transaction,
}

impl TestWallet {
    /// A wallet with one P2WPKH coin of each of `values` (satoshis), each to its own key
    /// derived from `tag`, all paid by one made-up parent transaction ([`Self::parent`]).
    pub fn new(tag: &[u8], values: &[u64]) -> TestWallet {
        let keys: Vec<Key> = (0..values.len())
            .map(|i| Key::derive(tag, &(i as u32).to_be_bytes()))
            .collect();
        let parent = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array(crate::secret(tag).secret_bytes()),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: values
                .iter()
                .zip(&keys)
                .map(|(&v, k)| TxOut {
                    value: Amount::from_sat(v),
                    script_pubkey: k.script.clone(),
                })
                .collect(),
        };
        let txid = parent.compute_txid();
        let coins = parent
            .output
            .iter()
            .enumerate()
            .map(|(vout, o)| {
                (
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    o.clone(),
                )
            })
            .collect();
        let change = Key::derive(tag, b"change");
        let mut by_script: HashMap<ScriptBuf, Key> =
            keys.into_iter().map(|k| (k.script.clone(), k)).collect();
        by_script.insert(change.script.clone(), change.clone());
        TestWallet {
            keys: by_script,
            change,
            coins: Mutex::new(coins),
            reserved: Mutex::new(HashMap::new()),
            parent,
        }
    }

    /// The made-up transaction paying the wallet's first coins (its input spends nothing
    /// real: a validating chain must take it on trust).
    pub fn parent(&self) -> &Transaction {
        &self.parent
    }

    /// The coins reserved now, with what for.
    pub fn reserved(&self) -> HashMap<OutPoint, Reservation> {
        self.reserved.lock().clone()
    }

    /// Every coin the wallet holds (reserved or not).
    pub fn coins(&self) -> BTreeMap<OutPoint, TxOut> {
        self.coins.lock().clone()
    }

    /// The total value of the wallet's coins.
    pub fn balance_satoshis(&self) -> u64 {
        self.coins.lock().values().map(|o| o.value.to_sat()).sum()
    }

    /// `tx` confirmed: the wallet's coins it spends are gone (and no longer reserved), its
    /// outputs to the wallet's scripts are new coins.
    pub fn transaction_confirmed(&self, tx: &Transaction) {
        let mut coins = self.coins.lock();
        let mut reserved = self.reserved.lock();
        for input in &tx.input {
            coins.remove(&input.previous_output);
            reserved.remove(&input.previous_output);
        }
        let txid = tx.compute_txid();
        for (vout, o) in tx.output.iter().enumerate() {
            if self.keys.contains_key(&o.script_pubkey) {
                coins.insert(
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    o.clone(),
                );
            }
        }
    }
}

impl Wallet for TestWallet {
    fn list_spendable(&self) -> Result<Vec<WalletUtxo>, WalletError> {
        let coins = self.coins.lock();
        let reserved = self.reserved.lock();
        Ok(coins
            .iter()
            .filter(|(o, _)| !reserved.contains_key(o))
            .map(|(o, txout)| WalletUtxo {
                outpoint: *o,
                txout: txout.clone(),
                satisfaction_weight: P2WPKH_SATISFACTION_WEIGHT,
            })
            .collect())
    }

    fn reserve(&self, purpose: Reservation, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        let coins = self.coins.lock();
        let mut reserved = self.reserved.lock();
        for o in outpoints {
            if !coins.contains_key(o) {
                return Err(WalletError::UnknownUtxo(*o));
            }
            if reserved.contains_key(o) {
                return Err(WalletError::AlreadyReserved(*o));
            }
        }
        for o in outpoints {
            reserved.insert(*o, purpose);
        }
        Ok(())
    }

    fn release(&self, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        let mut reserved = self.reserved.lock();
        for o in outpoints {
            reserved.remove(o);
        }
        Ok(())
    }

    fn sign_inputs(&self, tx: &mut Transaction, prevouts: &[TxOut]) -> Result<(), WalletError> {
        if prevouts.len() != tx.input.len() {
            return Err(WalletError::Signing {
                input: prevouts.len().min(tx.input.len()),
                reason: format!("{} prevouts for {} inputs", prevouts.len(), tx.input.len()),
            });
        }
        let coins = self.coins.lock();
        let secp = Secp256k1::signing_only();
        let mut witnesses = Vec::new();
        {
            let mut cache = SighashCache::new(&*tx);
            for (input, (txin, prevout)) in tx.input.iter().zip(prevouts).enumerate() {
                let Some(coin) = coins.get(&txin.previous_output) else {
                    continue; // not ours
                };
                if coin != prevout {
                    return Err(WalletError::Signing {
                        input,
                        reason: "the prevout given is not the coin's".into(),
                    });
                }
                let key = self
                    .keys
                    .get(&coin.script_pubkey)
                    .ok_or(WalletError::Signing {
                        input,
                        reason: "no key for the coin's script".into(),
                    })?;
                let sighash = cache
                    .p2wpkh_signature_hash(
                        input,
                        &coin.script_pubkey,
                        coin.value,
                        EcdsaSighashType::All,
                    )
                    .map_err(|e| WalletError::Signing {
                        input,
                        reason: e.to_string(),
                    })?;
                let signature =
                    secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &key.secret);
                witnesses.push((
                    input,
                    Witness::p2wpkh(
                        &Signature {
                            signature,
                            sighash_type: EcdsaSighashType::All,
                        },
                        &key.public,
                    ),
                ));
            }
        }
        for (input, witness) in witnesses {
            if let Some(txin) = tx.input.get_mut(input) {
                txin.witness = witness;
            }
        }
        Ok(())
    }

    fn change_script(&self) -> Result<ScriptBuf, WalletError> {
        Ok(self.change.script.clone())
    }
}
