//! The daemon's on-chain wallet: BDK's [`bdk_wallet::Wallet`] over BIP 84 descriptors
//! (`wpkh`, external `…/0/*` and internal `…/1/*`) derived from the node's `seed` file
//! through a domain-separated key (never the node key), persisted as BDK's change sets
//! (JSON) in `<data-dir>/wallet` (mode 0600, replaced atomically), fed by every
//! `block_connected`. It implements [`shard_engine::Wallet`], so the engine's
//! [`shard_engine::fund_channel`] funds channels from it.
//!
//! Blocks need not link by header: each one is connected onto the wallet's highest block
//! below its height, so a block at a height the wallet already has replaces that block and
//! every one above it (a reorg takes effect at the new branch's first `block_connected`, after
//! `block_disconnected`); transactions only in replaced blocks stop counting as confirmed.
//! Reservations are kept in memory only; a coin spent by a transaction the node broadcast is
//! recorded as spent when the broadcast is queued.
//!
//! Who signs what: this wallet signs its own inputs only (with the BIP 32 key its
//! descriptors derive from); the engine signs the channels' transactions.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use bdk_wallet::bitcoin::bip32::{DerivationPath, Xpriv};
use bdk_wallet::bitcoin::hashes::{sha256, Hash, HashEngine};
use bdk_wallet::bitcoin::psbt::Psbt;
use bdk_wallet::bitcoin::secp256k1::Secp256k1;
use bdk_wallet::bitcoin::{
    Address, Amount, BlockHash, FeeRate, Network, OutPoint, ScriptBuf, Transaction, TxOut, Witness,
};
use bdk_wallet::chain::{BlockId, ConfirmationBlockTime, Merge, TxUpdate};
use bdk_wallet::{ChangeSet, KeychainKind, LocalOutput, Update};
use lightning_core::wallet::{WalletUtxo, P2WPKH_SATISFACTION_WEIGHT};
use parking_lot::Mutex;
use shard_engine::{Reservation, WalletError};

use super::DaemonError;

/// The tag hashed with the seed into the wallet's BIP 32 seed: the wallet's keys are
/// independent of the node key and of every channel key derived from the same `seed`.
const WALLET_SEED_TAG: &[u8] = b"lnshard/onchain-wallet/bip32-seed/v1";

/// The funding feerate of a channel whose `open_channel` named none (sat per 1000 weight).
pub const DEFAULT_FUNDING_FEERATE_PER_KW: u32 = 1000;

/// The wallet's file in the data directory.
pub fn wallet_path(data_dir: &Path) -> PathBuf {
    data_dir.join("wallet")
}

/// The wallet's BIP 32 master key for `seed` on `network`: SHA-256 of a fixed tag and the
/// seed.
fn master_key(seed: &[u8; 32], network: Network) -> Xpriv {
    let mut engine = sha256::Hash::engine();
    engine.input(WALLET_SEED_TAG);
    engine.input(seed);
    let bip32_seed = sha256::Hash::from_engine(engine).to_byte_array();
    // 32 bytes are always a valid BIP 32 seed length; an invalid key is a 2^-127 event.
    Xpriv::new_master(network, &bip32_seed).expect("BIP 32 master key from 32 bytes")
}

/// The BIP 84 account path's coin type: 0 on mainnet, 1 on the test networks.
fn coin_type(network: Network) -> u32 {
    if network == Network::Bitcoin {
        0
    } else {
        1
    }
}

/// The wallet's two descriptors (external, internal) for `seed` on `network`, with their
/// private keys: `wpkh(xprv/84'/coin'/0'/0/*)` and `wpkh(xprv/84'/coin'/0'/1/*)`.
pub fn descriptors(seed: &[u8; 32], network: Network) -> (String, String) {
    let master = master_key(seed, network);
    let coin = coin_type(network);
    (
        format!("wpkh({master}/84'/{coin}'/0'/0/*)"),
        format!("wpkh({master}/84'/{coin}'/0'/1/*)"),
    )
}

/// The wallet's balance, in satoshis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletBalance {
    /// In blocks.
    pub confirmed_sat: u64,
    /// Unconfirmed, from the wallet's own transactions (change).
    pub trusted_pending_sat: u64,
    /// Unconfirmed, from others.
    pub untrusted_pending_sat: u64,
    /// Coinbase outputs not yet mature.
    pub immature_sat: u64,
}

/// One coin of the wallet, as `list_utxos` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletCoin {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount_sat: u64,
    /// Its script.
    pub script_pubkey: ScriptBuf,
    /// The height of the block that confirmed it, if any.
    pub confirmation_height: Option<u32>,
    /// Whether it is change (internal keychain).
    pub change: bool,
    /// Whether it is reserved (a channel's funding being built).
    pub reserved: bool,
}

struct Inner {
    wallet: bdk_wallet::Wallet,
    /// Everything persisted so far (the file holds exactly this).
    stored: ChangeSet,
    /// Coins set aside, in memory only.
    reserved: HashMap<OutPoint, Reservation>,
}

/// The daemon's wallet (see the [module documentation](self)).
pub struct NodeWallet {
    inner: Mutex<Inner>,
    master: Xpriv,
    path: PathBuf,
}

impl core::fmt::Debug for NodeWallet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeWallet")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn bdk_error(what: &str) -> impl FnOnce(String) -> DaemonError + '_ {
    move |e| DaemonError::Engine(format!("wallet: {what}: {e}"))
}

impl NodeWallet {
    /// Opens the wallet in `data_dir` (creating it on first use) for `seed` on `network`.
    /// A stored wallet of other descriptors or another network is refused.
    pub fn open(data_dir: &Path, seed: &[u8; 32], network: Network) -> Result<Self, DaemonError> {
        let path = wallet_path(data_dir);
        let (external, internal) = descriptors(seed, network);
        let master = master_key(seed, network);
        let (wallet, stored) = match std::fs::read(&path) {
            Ok(bytes) => {
                let stored: ChangeSet = serde_json::from_slice(&bytes).map_err(|e| {
                    DaemonError::Engine(format!("wallet file {} unreadable: {e}", path.display()))
                })?;
                let wallet = bdk_wallet::Wallet::load()
                    .descriptor(KeychainKind::External, Some(external))
                    .descriptor(KeychainKind::Internal, Some(internal))
                    .check_network(network)
                    .load_wallet_no_persist(stored.clone())
                    .map_err(|e| bdk_error("loading")(e.to_string()))?
                    .ok_or_else(|| bdk_error("loading")("the wallet file is empty".into()))?;
                (wallet, stored)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let wallet = bdk_wallet::Wallet::create(external, internal)
                    .network(network)
                    .create_wallet_no_persist()
                    .map_err(|e| bdk_error("creating")(e.to_string()))?;
                (wallet, ChangeSet::default())
            }
            Err(error) => {
                return Err(DaemonError::Io {
                    what: format!("reading {}", path.display()),
                    error,
                })
            }
        };
        let wallet = NodeWallet {
            inner: Mutex::new(Inner {
                wallet,
                stored,
                reserved: HashMap::new(),
            }),
            master,
            path,
        };
        wallet.persist(&mut wallet.inner.lock())?;
        Ok(wallet)
    }

    /// Writes what changed (the whole change set, to a temporary file, synced, renamed).
    fn persist(&self, inner: &mut Inner) -> Result<(), DaemonError> {
        let Some(staged) = inner.wallet.take_staged() else {
            return Ok(());
        };
        inner.stored.merge(staged);
        let bytes = serde_json::to_vec(&inner.stored)
            .map_err(|e| DaemonError::Engine(format!("wallet: encoding: {e}")))?;
        let tmp = self.path.with_extension("tmp");
        let what = format!("writing {}", tmp.display());
        let _ = std::fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(super::io_error(what.clone()))?;
        file.write_all(&bytes)
            .map_err(super::io_error(what.clone()))?;
        file.sync_all().map_err(super::io_error(what))?;
        std::fs::rename(&tmp, &self.path).map_err(super::io_error(format!(
            "renaming to {}",
            self.path.display()
        )))?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// A new receiving address (revealed and persisted before it is returned).
    pub fn new_address(&self) -> Result<Address, DaemonError> {
        let mut inner = self.inner.lock();
        let info = inner.wallet.reveal_next_address(KeychainKind::External);
        self.persist(&mut inner)?;
        Ok(info.address)
    }

    /// The block at `height` with hash `hash` and (some of) its transactions: the ones that
    /// pay or spend the wallet are recorded as confirmed there.
    pub fn block_connected(
        &self,
        height: u32,
        hash: BlockHash,
        transactions: &[(u32, Transaction)],
    ) -> Result<(), DaemonError> {
        let mut inner = self.inner.lock();
        let block_id = BlockId { height, hash };
        let tip = inner.wallet.latest_checkpoint();
        // Blocks are fed by the operator: connect this one onto our highest block below it
        // (headers are not required to link), replacing what we had at and above it.
        let chain = tip
            .iter()
            .find(|cp| cp.height() < height)
            .and_then(|base| base.push(block_id).ok());
        let mut tx_update = TxUpdate::<ConfirmationBlockTime>::default();
        for (_, tx) in transactions {
            let pays = tx
                .output
                .iter()
                .any(|o| inner.wallet.is_mine(o.script_pubkey.clone()));
            let spends = tx.input.iter().any(|i| {
                inner
                    .wallet
                    .tx_graph()
                    .get_txout(i.previous_output)
                    .is_some_and(|o| inner.wallet.is_mine(o.script_pubkey.clone()))
            });
            if pays || spends {
                let txid = tx.compute_txid();
                tx_update.txs.push(Arc::new(tx.clone()));
                tx_update.anchors.insert((
                    ConfirmationBlockTime {
                        block_id,
                        confirmation_time: u64::from(height),
                    },
                    txid,
                ));
            }
        }
        let update = Update {
            last_active_indices: BTreeMap::new(),
            tx_update,
            chain,
        };
        inner
            .wallet
            .apply_update(update)
            .map_err(|e| bdk_error("applying a block")(e.to_string()))?;
        for (_, tx) in transactions {
            for input in &tx.input {
                inner.reserved.remove(&input.previous_output);
            }
        }
        self.persist(&mut inner)
    }

    /// The wallet's balance.
    pub fn balance(&self) -> WalletBalance {
        let b = self.inner.lock().wallet.balance();
        WalletBalance {
            confirmed_sat: b.confirmed.to_sat(),
            trusted_pending_sat: b.trusted_pending.to_sat(),
            untrusted_pending_sat: b.untrusted_pending.to_sat(),
            immature_sat: b.immature.to_sat(),
        }
    }

    /// Every unspent coin of the wallet.
    pub fn coins(&self) -> Vec<WalletCoin> {
        let inner = self.inner.lock();
        inner
            .wallet
            .list_unspent()
            .map(|u: LocalOutput| WalletCoin {
                outpoint: u.outpoint,
                amount_sat: u.txout.value.to_sat(),
                script_pubkey: u.txout.script_pubkey.clone(),
                confirmation_height: u.chain_position.confirmation_height_upper_bound(),
                change: u.keychain == KeychainKind::Internal,
                reserved: inner.reserved.contains_key(&u.outpoint),
            })
            .collect()
    }

    /// Records a transaction of ours that is about to be broadcast (its inputs are spent,
    /// its change ours, unconfirmed) and persists it.
    pub fn record_unconfirmed(&self, tx: &Transaction, seen_at: u64) -> Result<(), DaemonError> {
        let mut inner = self.inner.lock();
        inner
            .wallet
            .apply_unconfirmed_txs([(Arc::new(tx.clone()), seen_at)]);
        self.persist(&mut inner)
    }

    /// Builds and signs a transaction paying `amount` to `script` at `feerate_per_kw` (sat
    /// per 1000 weight) from confirmed, unreserved coins, with change to the internal
    /// keychain; records it as ours (unconfirmed). Returns it and its fee.
    pub fn send(
        &self,
        script: ScriptBuf,
        amount: Amount,
        feerate_per_kw: u64,
        seen_at: u64,
    ) -> Result<(Transaction, Amount), String> {
        let mut inner = self.inner.lock();
        let reserved: Vec<OutPoint> = inner.reserved.keys().copied().collect();
        let mut psbt = {
            let mut builder = inner.wallet.build_tx();
            builder
                .add_recipient(script, amount)
                .fee_rate(FeeRate::from_sat_per_kwu(feerate_per_kw))
                .exclude_unconfirmed()
                .unspendable(reserved);
            builder.finish().map_err(|e| e.to_string())?
        };
        let secp = Secp256k1::new();
        psbt.sign(&self.master, &secp)
            .map_err(|(_, errors)| format!("signing: {errors:?}"))?;
        finalize_p2wpkh(&mut psbt);
        let fee = psbt.fee().map_err(|e| e.to_string())?;
        let tx = psbt.extract_tx().map_err(|e| e.to_string())?;
        inner
            .wallet
            .apply_unconfirmed_txs([(Arc::new(tx.clone()), seen_at)]);
        self.persist(&mut inner).map_err(|e| e.to_string())?;
        Ok((tx, fee))
    }

    /// A script of the wallet's external keychain (the first unused one, revealed and
    /// persisted): where sweeps pay when no `--sweep-address` is given.
    pub fn sweep_script(&self) -> Result<ScriptBuf, DaemonError> {
        let mut inner = self.inner.lock();
        let info = inner.wallet.next_unused_address(KeychainKind::External);
        self.persist(&mut inner)?;
        Ok(info.address.script_pubkey())
    }
}

/// Sets the witness of every input with one partial signature and one key (P2WPKH).
fn finalize_p2wpkh(psbt: &mut Psbt) {
    for input in &mut psbt.inputs {
        if input.final_script_witness.is_some() || input.partial_sigs.len() != 1 {
            continue;
        }
        if let Some((pk, sig)) = input.partial_sigs.iter().next() {
            input.final_script_witness = Some(Witness::p2wpkh(sig, &pk.inner));
            input.partial_sigs.clear();
            input.bip32_derivation.clear();
        }
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> WalletError {
    WalletError::Unavailable(std::sync::Arc::new(e))
}

impl shard_engine::Wallet for NodeWallet {
    fn list_spendable(&self) -> Result<Vec<WalletUtxo>, WalletError> {
        let inner = self.inner.lock();
        Ok(inner
            .wallet
            .list_unspent()
            .filter(|u| u.chain_position.is_confirmed())
            .filter(|u| !inner.reserved.contains_key(&u.outpoint))
            .map(|u| WalletUtxo {
                outpoint: u.outpoint,
                txout: u.txout,
                satisfaction_weight: P2WPKH_SATISFACTION_WEIGHT,
            })
            .collect())
    }

    fn reserve(&self, purpose: Reservation, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        let mut inner = self.inner.lock();
        for op in outpoints {
            if inner.reserved.contains_key(op) {
                return Err(WalletError::AlreadyReserved(*op));
            }
            if inner.wallet.get_utxo(*op).is_none() {
                return Err(WalletError::UnknownUtxo(*op));
            }
        }
        for op in outpoints {
            inner.reserved.insert(*op, purpose);
        }
        Ok(())
    }

    fn release(&self, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        let mut inner = self.inner.lock();
        for op in outpoints {
            inner.reserved.remove(op);
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
        let inner = self.inner.lock();
        let mut unsigned = tx.clone();
        for input in &mut unsigned.input {
            input.script_sig = ScriptBuf::new();
            input.witness = Witness::new();
        }
        let mut psbt = Psbt::from_unsigned_tx(unsigned).map_err(unavailable)?;
        let coin = coin_type(inner.wallet.network());
        let fingerprint = self.master.fingerprint(&Secp256k1::signing_only());
        let mut ours = Vec::new();
        for (i, (input, prevout)) in psbt.inputs.iter_mut().zip(prevouts).enumerate() {
            input.witness_utxo = Some(prevout.clone());
            let Some((keychain, index)) = inner
                .wallet
                .derivation_of_spk(prevout.script_pubkey.clone())
            else {
                continue;
            };
            let change = u32::from(keychain == KeychainKind::Internal);
            let path = DerivationPath::from_str(&format!("m/84'/{coin}'/0'/{change}/{index}"))
                .map_err(|e| WalletError::Signing {
                    input: i,
                    reason: e.to_string(),
                })?;
            let secp = Secp256k1::new();
            let key = self
                .master
                .derive_priv(&secp, &path)
                .map_err(|e| WalletError::Signing {
                    input: i,
                    reason: e.to_string(),
                })?;
            let pubkey = key.private_key.public_key(&secp);
            input.bip32_derivation.insert(pubkey, (fingerprint, path));
            ours.push(i);
        }
        drop(inner);
        let secp = Secp256k1::new();
        // Inputs not ours have no derivation: nothing to sign there, and no error.
        if let Err((_, errors)) = psbt.sign(&self.master, &secp) {
            if let Some((&input, e)) = errors.iter().find(|(i, _)| ours.contains(i)) {
                return Err(WalletError::Signing {
                    input,
                    reason: e.to_string(),
                });
            }
        }
        finalize_p2wpkh(&mut psbt);
        for i in ours {
            let witness = psbt.inputs[i].final_script_witness.clone().ok_or_else(|| {
                WalletError::Signing {
                    input: i,
                    reason: "no signature produced".into(),
                }
            })?;
            tx.input[i].witness = witness;
        }
        Ok(())
    }

    fn change_script(&self) -> Result<ScriptBuf, WalletError> {
        let mut inner = self.inner.lock();
        let info = inner.wallet.next_unused_address(KeychainKind::Internal);
        self.persist(&mut inner).map_err(unavailable)?;
        Ok(info.address.script_pubkey())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lnshard-wallet-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn descriptors_are_stable_for_a_seed_and_differ_between_seeds_and_networks() {
        let seed = [7u8; 32];
        let (ext, int) = descriptors(&seed, Network::Regtest);
        assert_eq!(
            descriptors(&seed, Network::Regtest),
            (ext.clone(), int.clone())
        );
        assert!(
            ext.starts_with("wpkh(tprv") && ext.ends_with("/84'/1'/0'/0/*)"),
            "{ext}"
        );
        assert!(int.ends_with("/84'/1'/0'/1/*)"), "{int}");
        assert_ne!(descriptors(&[8u8; 32], Network::Regtest).0, ext);
        let (main_ext, _) = descriptors(&seed, Network::Bitcoin);
        assert!(main_ext.starts_with("wpkh(xprv") && main_ext.ends_with("/84'/0'/0'/0/*)"));
        // The wallet's key is not the seed used raw as a BIP 32 seed.
        let raw = Xpriv::new_master(Network::Regtest, &seed).expect("master");
        assert!(!ext.contains(&raw.to_string()));
        // The same addresses after reopening, and the file is 0600.
        let dir = temp_dir("stable");
        let first = NodeWallet::open(&dir, &seed, Network::Regtest).expect("open");
        let a0 = first.new_address().expect("address");
        drop(first);
        let mode = std::fs::metadata(wallet_path(&dir))
            .expect("wallet file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = NodeWallet::open(&dir, &seed, Network::Regtest).expect("reopen");
        let a1 = again.new_address().expect("address");
        assert_ne!(a0, a1, "the revealed index was persisted");
        let fresh_dir = temp_dir("stable2");
        let fresh = NodeWallet::open(&fresh_dir, &seed, Network::Regtest).expect("open");
        assert_eq!(fresh.new_address().expect("address"), a0);
        // Another seed's wallet file is refused.
        assert!(NodeWallet::open(&dir, &[9u8; 32], Network::Regtest).is_err());
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(fresh_dir);
    }

    fn paying(script: ScriptBuf, sat: u64, tag: u8) -> Transaction {
        use bdk_wallet::bitcoin::{absolute::LockTime, transaction::Version, Sequence, TxIn};
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: bdk_wallet::bitcoin::Txid::from_byte_array([tag; 32]),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(sat),
                script_pubkey: script,
            }],
        }
    }

    #[test]
    fn sign_inputs_signs_the_wallets_inputs_only_and_they_pass_libbitcoinconsensus() {
        use bdk_wallet::bitcoin::{absolute::LockTime, transaction::Version, Sequence, TxIn};
        use shard_engine::Wallet as _;
        let dir = temp_dir("sign");
        let wallet = NodeWallet::open(&dir, &[4u8; 32], Network::Regtest).expect("open");
        let external = wallet.new_address().expect("address").script_pubkey();
        let change = wallet.change_script().expect("change");
        let funding_a = paying(external.clone(), 40_000, 5);
        let funding_b = paying(change.clone(), 60_000, 6);
        let foreign = paying(ScriptBuf::new_op_return([7u8; 4]), 1_000, 7);
        let hash = BlockHash::from_byte_array([1; 32]);
        wallet
            .block_connected(
                1,
                hash,
                &[
                    (1, funding_a.clone()),
                    (2, funding_b.clone()),
                    (3, foreign.clone()),
                ],
            )
            .expect("block");
        let coins = wallet.list_spendable().expect("list");
        assert_eq!(coins.len(), 2, "external and change coins: {coins:?}");
        let input = |txid, vout| TxIn {
            previous_output: OutPoint { txid, vout },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        };
        let foreign_witness = Witness::from_slice(&[vec![1u8, 2, 3]]);
        let mut foreign_input = input(foreign.compute_txid(), 0);
        foreign_input.witness = foreign_witness.clone();
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![
                input(funding_a.compute_txid(), 0),
                foreign_input,
                input(funding_b.compute_txid(), 0),
            ],
            output: vec![TxOut {
                value: Amount::from_sat(99_000),
                script_pubkey: ScriptBuf::new_op_return([0u8; 4]),
            }],
        };
        let prevouts = vec![
            funding_a.output[0].clone(),
            foreign.output[0].clone(),
            funding_b.output[0].clone(),
        ];
        assert!(matches!(
            wallet.sign_inputs(&mut tx.clone(), &prevouts[..2]),
            Err(WalletError::Signing { .. })
        ));
        wallet.sign_inputs(&mut tx, &prevouts).expect("signed");
        assert_eq!(tx.input[1].witness, foreign_witness, "not ours: untouched");
        let bytes = bdk_wallet::bitcoin::consensus::encode::serialize(&tx);
        for i in [0usize, 2] {
            bitcoin::consensus::verify_script(
                &prevouts[i].script_pubkey,
                i,
                prevouts[i].value,
                &bytes,
            )
            .unwrap_or_else(|e| panic!("input {i} passes libbitcoinconsensus: {e:?}"));
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn blocks_confirm_coins_and_a_new_branch_replaces_the_old_one() {
        let dir = temp_dir("reorg");
        let wallet = NodeWallet::open(&dir, &[3u8; 32], Network::Regtest).expect("open");
        let script = wallet.new_address().expect("address").script_pubkey();
        let hash = |h: u32, branch: u8| {
            let mut bytes = [branch; 32];
            bytes[..4].copy_from_slice(&h.to_le_bytes());
            BlockHash::from_byte_array(bytes)
        };
        let tx = paying(script.clone(), 50_000, 1);
        let other = paying(ScriptBuf::new_op_return([1u8; 4]), 70_000, 2);
        wallet
            .block_connected(1, hash(1, 0), &[(1, other.clone()), (2, tx.clone())])
            .expect("block 1");
        wallet.block_connected(2, hash(2, 0), &[]).expect("block 2");
        assert_eq!(wallet.balance().confirmed_sat, 50_000);
        let coins = wallet.coins();
        assert_eq!(coins.len(), 1, "only the wallet's output: {coins:?}");
        assert_eq!(coins[0].confirmation_height, Some(1));
        let spendable = shard_engine::Wallet::list_spendable(&wallet).expect("list");
        assert_eq!(spendable.len(), 1);
        // Reserved coins are not spendable until released; a coin not ours is refused.
        let op = spendable[0].outpoint;
        let purpose = Reservation::ChannelFunding(lightning_core::types::ChannelId([9; 32]));
        shard_engine::Wallet::reserve(&wallet, purpose, &[op]).expect("reserve");
        assert_eq!(
            shard_engine::Wallet::reserve(&wallet, purpose, &[op]),
            Err(WalletError::AlreadyReserved(op))
        );
        assert!(shard_engine::Wallet::list_spendable(&wallet)
            .expect("list")
            .is_empty());
        shard_engine::Wallet::release(&wallet, &[op]).expect("release");
        assert_eq!(
            shard_engine::Wallet::list_spendable(&wallet)
                .expect("list")
                .len(),
            1
        );
        let stranger = OutPoint {
            txid: other.compute_txid(),
            vout: 0,
        };
        assert_eq!(
            shard_engine::Wallet::reserve(&wallet, purpose, &[stranger]),
            Err(WalletError::UnknownUtxo(stranger))
        );
        // A new branch from height 1 without the transaction: no longer confirmed.
        wallet
            .block_connected(1, hash(1, 1), &[])
            .expect("branch 1");
        assert_eq!(wallet.balance().confirmed_sat, 0);
        // It confirms again at height 2 of the new branch; the file keeps it.
        wallet
            .block_connected(2, hash(2, 1), &[(1, tx)])
            .expect("branch 1, block 2");
        assert_eq!(wallet.balance().confirmed_sat, 50_000);
        drop(wallet);
        let again = NodeWallet::open(&dir, &[3u8; 32], Network::Regtest).expect("reopen");
        assert_eq!(again.balance().confirmed_sat, 50_000);
        assert_eq!(again.coins()[0].confirmation_height, Some(2));
        let _ = std::fs::remove_dir_all(dir);
    }
}
