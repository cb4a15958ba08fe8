//! A minimal on-chain wallet for an LDK node, so that LDK can close anchor channels: its
//! `BumpTransactionEventHandlerSync` asks a wallet for confirmed coins to CPFP a commitment
//! through its anchor and to pay the fees of its zero-fee HTLC transactions.
//!
//! The wallet owns P2WPKH coins of one key. Which of its coins are unspent is the test's
//! knowledge (the chain's): call [`TestWallet::set_utxos`] before handing LDK's events to the
//! handler. It signs its own inputs (BIP 143, `SIGHASH_ALL`) and leaves the others to LDK.

use std::sync::{Arc, Mutex};

use bitcoin::ecdsa::Signature as EcdsaSignature;
use bitcoin::hashes::Hash as _;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, CompressedPublicKey, OutPoint, ScriptBuf, Transaction, Witness};
use lightning::events::bump_transaction::sync::{
    BumpTransactionEventHandlerSync, WalletSourceSync, WalletSync,
};
use lightning::events::bump_transaction::Utxo;
use lightning::sign::KeysManager;

use super::{RecordingBroadcaster, TestLogger};

/// The handler type: LDK's own, over a [`TestWallet`].
pub type LdkBumpHandler = BumpTransactionEventHandlerSync<
    Arc<RecordingBroadcaster>,
    Arc<WalletSync<Arc<TestWallet>, Arc<TestLogger>>>,
    Arc<KeysManager>,
    Arc<TestLogger>,
>;

/// P2WPKH coins of one key.
pub struct TestWallet {
    secret: SecretKey,
    utxos: Mutex<Vec<Utxo>>,
}

impl TestWallet {
    /// A wallet of the key `secret`, with no coins yet.
    pub fn new(secret: SecretKey) -> TestWallet {
        TestWallet {
            secret,
            utxos: Mutex::new(Vec::new()),
        }
    }

    /// The script its coins pay to (and its change).
    pub fn script(&self) -> ScriptBuf {
        let secp = Secp256k1::signing_only();
        let key = CompressedPublicKey(self.secret.public_key(&secp));
        ScriptBuf::new_p2wpkh(&key.wpubkey_hash())
    }

    /// Its confirmed unspent coins, as the test reads them from the chain.
    pub fn set_utxos(&self, coins: &[(OutPoint, u64)]) {
        let secp = Secp256k1::signing_only();
        let hash = CompressedPublicKey(self.secret.public_key(&secp)).wpubkey_hash();
        *self.utxos.lock().expect("not poisoned") = coins
            .iter()
            .map(|(o, v)| Utxo::new_v0_p2wpkh(*o, Amount::from_sat(*v), &hash))
            .collect();
    }

    /// LDK's bump handler over this wallet, broadcasting to `broadcaster`.
    pub fn handler(
        self: &Arc<Self>,
        broadcaster: Arc<RecordingBroadcaster>,
        keys: Arc<KeysManager>,
        logger: Arc<TestLogger>,
    ) -> LdkBumpHandler {
        let coins = Arc::new(WalletSync::new(Arc::clone(self), Arc::clone(&logger)));
        BumpTransactionEventHandlerSync::new(broadcaster, coins, keys, logger)
    }
}

impl WalletSourceSync for TestWallet {
    fn list_confirmed_utxos(&self) -> Result<Vec<Utxo>, ()> {
        Ok(self.utxos.lock().expect("not poisoned").clone())
    }

    fn get_change_script(&self) -> Result<ScriptBuf, ()> {
        Ok(self.script())
    }

    fn sign_psbt(&self, psbt: Psbt) -> Result<Transaction, ()> {
        let secp = Secp256k1::signing_only();
        let public = CompressedPublicKey(self.secret.public_key(&secp));
        let script = self.script();
        let utxos = self.utxos.lock().expect("not poisoned").clone();
        let mut tx = psbt.unsigned_tx.clone();
        let mut signatures = Vec::new();
        {
            let mut cache = SighashCache::new(&tx);
            for (i, input) in psbt.unsigned_tx.input.iter().enumerate() {
                let Some(utxo) = utxos.iter().find(|u| u.outpoint == input.previous_output) else {
                    continue;
                };
                let sighash = cache
                    .p2wpkh_signature_hash(i, &script, utxo.output.value, EcdsaSighashType::All)
                    .map_err(|_| ())?;
                let msg = Message::from_digest(sighash.to_byte_array());
                let sig = EcdsaSignature::sighash_all(secp.sign_ecdsa(&msg, &self.secret));
                signatures.push((i, sig));
            }
        }
        for (i, sig) in signatures {
            tx.input[i].witness = Witness::p2wpkh(&sig, &public.0);
        }
        Ok(tx)
    }
}
