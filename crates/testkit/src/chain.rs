//! A validating, reorg-capable test chain: a tiny `bitcoind -regtest` in memory.
//!
//! [`ValidatingChain`] keeps a header chain (from the real regtest genesis block), the blocks'
//! transactions, a UTXO set with an exact undo log per block, and a mempool. Everything that
//! enters the mempool ([`ValidatingChain::submit`]) is checked the way Bitcoin Core's
//! `sendrawtransaction` would check it: every input's script by libbitcoinconsensus (never by
//! our own reading of the script), absolute and relative (BIP 68) locktimes, amounts, the
//! standardness rules that make a transaction relayable (weight, dust, minimum relay feerate,
//! standard output scripts) and BIP 125-style replacement of conflicting transactions. Each
//! refusal is typed ([`Reject`]) and logged ([`ValidatingChain::rejected`]), so a test can
//! assert that nothing an honest node broadcast was refused.
//!
//! Opt-in, as Core with a full mempool: a mempool minimum feerate above the relay floor
//! ([`Policy::mempool_min_sat_per_kvb`]) and 1-parent-1-child package relay
//! ([`ValidatingChain::submit_package`], Core's `submitpackage`): a parent paying too little
//! (even nothing) enters with a child whose fee pays for both, is mined only in the same block
//! as a child paying for it, and leaves the mempool when no child does any more. A child is
//! re-bumped by a replacement paying more by BIP 125's rules.
//!
//! Blocks are mined on demand ([`ValidatingChain::mine`]); they can be disconnected
//! ([`ValidatingChain::disconnect`]) and replaced by another branch
//! ([`ValidatingChain::reorg`], [`ValidatingChain::reorg_replacing`]), with the UTXO set rolled
//! back exactly and the disconnected transactions returned to the mempool when still valid.
//!
//! Coins come from [`ValidatingChain::fund`] (or [`ValidatingChain::submit_funding`] for a
//! transaction whose inputs are made up, like [`crate::fake_funding_tx`]): their inputs are
//! taken on trust, as a coinbase's are, and their outputs are spendable at once (no coinbase
//! maturity).
//!
//! Everything is deterministic: no clock, no randomness. Block `h`'s header time is the regtest
//! genesis time plus `600 * h` seconds, its nonce the first that meets the regtest target.
//!
//! This module needs the testkit's `consensus` feature (libbitcoinconsensus): a dev-only
//! dependency, never part of a shipped binary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::blockdata::constants::genesis_block;
use bitcoin::consensus::validation::BitcoinconsensusError;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::opcodes::all::OP_RETURN;
use bitcoin::script::Builder;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, BlockHash, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Txid, Witness,
};

/// libbitcoinconsensus flag: evaluate P2SH (BIP 16) subscripts.
pub const VERIFY_P2SH: u32 = 1 << 0;
/// libbitcoinconsensus flag: strict DER signatures (BIP 66).
pub const VERIFY_DERSIG: u32 = 1 << 2;
/// libbitcoinconsensus flag: the CHECKMULTISIG dummy must be empty (BIP 147).
pub const VERIFY_NULLDUMMY: u32 = 1 << 4;
/// libbitcoinconsensus flag: OP_CHECKLOCKTIMEVERIFY (BIP 65).
pub const VERIFY_CHECKLOCKTIMEVERIFY: u32 = 1 << 9;
/// libbitcoinconsensus flag: OP_CHECKSEQUENCEVERIFY (BIP 112).
pub const VERIFY_CHECKSEQUENCEVERIFY: u32 = 1 << 10;
/// libbitcoinconsensus flag: segregated witness (BIP 141, 143, 147).
pub const VERIFY_WITNESS: u32 = 1 << 11;
/// The script flags every input is verified with: every soft fork libbitcoinconsensus knows.
pub const VERIFY_FLAGS: u32 = VERIFY_P2SH
    | VERIFY_DERSIG
    | VERIFY_NULLDUMMY
    | VERIFY_CHECKLOCKTIMEVERIFY
    | VERIFY_CHECKSEQUENCEVERIFY
    | VERIFY_WITNESS;

/// Seconds between two blocks' header times.
pub const BLOCK_INTERVAL_SECS: u32 = 600;
/// The largest weight of a block (consensus).
pub const MAX_BLOCK_WEIGHT: u64 = 4_000_000;
/// The largest weight of a standard transaction (Bitcoin Core's `MAX_STANDARD_TX_WEIGHT`).
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;
/// The smallest non-witness size of a standard transaction, in bytes.
pub const MIN_STANDARD_TX_NONWITNESS_SIZE: usize = 65;
/// The largest OP_RETURN output script that is standard, in bytes.
pub const MAX_OP_RETURN_RELAY: usize = 83;
/// Locktime values below this are block heights, at or above it UNIX times.
const LOCKTIME_THRESHOLD: u32 = 500_000_000;
/// The regtest target every header meets.
const REGTEST_BITS: u32 = 0x207f_ffff;
/// BIP 68: the sequence bit that disables the relative locktime.
const SEQUENCE_DISABLE_FLAG: u32 = 1 << 31;
/// BIP 68: the sequence bit that makes the relative locktime time-based.
const SEQUENCE_TYPE_FLAG: u32 = 1 << 22;
/// BIP 68: the sequence bits that hold the relative locktime's value.
const SEQUENCE_MASK: u32 = 0x0000_ffff;
/// BIP 68: time-based relative locktimes count units of 2^9 seconds.
const SEQUENCE_GRANULARITY: u32 = 9;
/// BIP 125: the most transactions one replacement may evict.
const MAX_REPLACEMENT_EVICTIONS: usize = 100;

/// The relay policy [`ValidatingChain::submit`] applies on top of consensus: Bitcoin Core's
/// defaults unless a test says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The minimum relay feerate, in satoshis per 1000 virtual bytes (Core: 1000, 1 sat/vB).
    /// It is also BIP 125's incremental relay feerate a replacement must add on top.
    pub min_relay_sat_per_kvb: u64,
    /// Accept transactions paying no fee at all (zero-fee second-stage HTLC transactions of
    /// anchor channels, which a child bumps); off by default, as in Core without package relay.
    pub allow_zero_fee: bool,
    /// The largest standard transaction weight.
    pub max_tx_weight: u64,
    /// The mempool's minimum feerate, in satoshis per 1000 virtual bytes, when it is above the
    /// relay floor (Core raises it when its mempool is full); `None`: no such floor (the
    /// default, and the behaviour before package relay). When set, a transaction submitted
    /// alone must pay at least this feerate (with any mempool parent it pays for, see
    /// [`ValidatingChain::needs_child`]), even when [`Policy::allow_zero_fee`] is on; one
    /// below it enters only in a package whose child pays for both
    /// ([`ValidatingChain::submit_package`]). Raising it does not evict what is already in the
    /// mempool.
    pub mempool_min_sat_per_kvb: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_relay_sat_per_kvb: 1000,
            allow_zero_fee: false,
            max_tx_weight: MAX_STANDARD_TX_WEIGHT,
            mempool_min_sat_per_kvb: None,
        }
    }
}

/// Why a transaction was refused (by the mempool or, for a block a test builds, by consensus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Structurally invalid (consensus `CheckTransaction`): the reason.
    Malformed(&'static str),
    /// A coinbase transaction cannot be broadcast.
    Coinbase,
    /// The transaction is already in the chain.
    AlreadyConfirmed {
        /// The height of the block holding it.
        height: u32,
    },
    /// An input spends an output that neither the chain nor the mempool has.
    MissingInput(OutPoint),
    /// An input spends an output a confirmed transaction already spent.
    InputSpent {
        /// The spent output.
        outpoint: OutPoint,
        /// The confirmed transaction that spent it.
        by: Txid,
    },
    /// The transaction conflicts with mempool transactions and does not pay enough more in
    /// absolute fee to replace them (BIP 125 rules 3 and 4).
    ReplacementFeeTooLow {
        /// The mempool transactions it conflicts with directly.
        conflicts: Vec<Txid>,
        /// Its fee.
        fee: u64,
        /// The least fee that would replace them (their fees and descendants' plus relay).
        needed: u64,
    },
    /// The transaction conflicts with a mempool transaction paying an equal or higher feerate
    /// (BIP 125 rule 6).
    ReplacementFeerateTooLow {
        /// The conflicting mempool transaction.
        conflict: Txid,
    },
    /// The transaction spends an output of a mempool transaction it would replace.
    ReplacementSpendsConflict {
        /// The conflicting mempool transaction it also spends from.
        conflict: Txid,
    },
    /// The transaction would evict more than 100 mempool transactions.
    TooManyReplacements {
        /// How many it would evict.
        count: usize,
    },
    /// Its outputs are worth more than its inputs.
    OutputsExceedInputs {
        /// The inputs' total value.
        inputs: u64,
        /// The outputs' total value.
        outputs: u64,
    },
    /// Its absolute locktime (nLockTime) is not reached in the next block.
    NonFinal {
        /// The locktime.
        lock_time: LockTime,
        /// The height of the block it would be in.
        height: u32,
    },
    /// An input's BIP 68 relative locktime (nSequence) is not reached in the next block.
    RelativeLockTime {
        /// The input.
        input: usize,
        /// Its sequence.
        sequence: Sequence,
        /// The height of the block that confirmed the output it spends (the next block's, for
        /// an output of a mempool transaction).
        coin_height: u32,
        /// The height of the block the transaction would be in.
        height: u32,
    },
    /// libbitcoinconsensus refused an input's script.
    Script {
        /// The input.
        input: usize,
        /// libbitcoinconsensus's error.
        error: BitcoinconsensusError,
    },
    /// Non-standard: weight above the standard maximum.
    TooHeavy {
        /// Its weight.
        weight: u64,
    },
    /// Non-standard: non-witness size below 65 bytes.
    TooSmall {
        /// Its non-witness size.
        base_size: usize,
    },
    /// Non-standard: a transaction version other than 1, 2 or 3.
    Version(i32),
    /// Non-standard: an input's scriptSig does more than push data.
    ScriptSigNotPushOnly {
        /// The input.
        input: usize,
    },
    /// Non-standard: an output script of no standard type.
    NonStandardOutput {
        /// The output.
        vout: usize,
    },
    /// Non-standard: an output below its dust threshold.
    Dust {
        /// The output.
        vout: usize,
        /// Its value.
        value: u64,
        /// Its script's dust threshold (Core's at 3 sat/vB).
        threshold: u64,
    },
    /// It pays no fee, and [`Policy::allow_zero_fee`] is off.
    ZeroFee,
    /// Its fee is below the minimum relay feerate.
    FeeTooLow {
        /// Its fee.
        fee: u64,
        /// The least fee it needs.
        needed: u64,
    },
    /// Submitted alone, it pays less than the mempool's minimum feerate
    /// ([`Policy::mempool_min_sat_per_kvb`]); counted with the mempool parents it pays for.
    MempoolMinFee {
        /// Its fee (plus those of the parents it pays for).
        fee: u64,
        /// The least fee that meets the floor on the same virtual size.
        needed: u64,
    },
    /// A package's combined fee over its combined virtual size is below the floor (the
    /// mempool minimum feerate, or the minimum relay feerate when there is none).
    PackageFeerateTooLow {
        /// The package's combined fee.
        fee: u64,
        /// The least combined fee that meets the floor.
        needed: u64,
    },
    /// [`ValidatingChain::submit_package`] was given a child that spends no output of the
    /// parent (or the parent twice, or both spend the same output).
    NotParentChild,
}

impl Reject {
    /// Whether this refusal is harmless for a broadcaster: the transaction is already
    /// confirmed (a node rebroadcasting what the chain already has).
    pub fn is_benign(&self) -> bool {
        matches!(self, Reject::AlreadyConfirmed { .. })
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Malformed(why) => write!(f, "malformed transaction: {why}"),
            Reject::Coinbase => write!(f, "a coinbase cannot be broadcast"),
            Reject::AlreadyConfirmed { height } => write!(f, "already confirmed at {height}"),
            Reject::MissingInput(o) => write!(f, "input {o} does not exist"),
            Reject::InputSpent { outpoint, by } => {
                write!(f, "input {outpoint} already spent by confirmed {by}")
            }
            Reject::ReplacementFeeTooLow { fee, needed, .. } => {
                write!(f, "replacement pays {fee} sat, needs {needed}")
            }
            Reject::ReplacementFeerateTooLow { conflict } => {
                write!(f, "replacement feerate not above {conflict}'s")
            }
            Reject::ReplacementSpendsConflict { conflict } => {
                write!(f, "replacement spends {conflict}, which it replaces")
            }
            Reject::TooManyReplacements { count } => {
                write!(f, "replacement would evict {count} transactions")
            }
            Reject::OutputsExceedInputs { inputs, outputs } => {
                write!(f, "outputs {outputs} sat exceed inputs {inputs} sat")
            }
            Reject::NonFinal { lock_time, height } => {
                write!(f, "locktime {lock_time} not final at height {height}")
            }
            Reject::RelativeLockTime {
                input,
                sequence,
                coin_height,
                height,
            } => write!(
                f,
                "input {input}'s sequence {sequence} not met at height {height} (coin at {coin_height})"
            ),
            Reject::Script { input, error } => write!(f, "input {input}: script failed: {error}"),
            Reject::TooHeavy { weight } => write!(f, "weight {weight} too heavy to relay"),
            Reject::TooSmall { base_size } => write!(f, "non-witness size {base_size} too small"),
            Reject::Version(v) => write!(f, "non-standard version {v}"),
            Reject::ScriptSigNotPushOnly { input } => {
                write!(f, "input {input}'s scriptSig is not push-only")
            }
            Reject::NonStandardOutput { vout } => write!(f, "output {vout} non-standard"),
            Reject::Dust {
                vout,
                value,
                threshold,
            } => write!(f, "output {vout} is dust: {value} sat < {threshold}"),
            Reject::ZeroFee => write!(f, "pays no fee"),
            Reject::FeeTooLow { fee, needed } => {
                write!(f, "fee {fee} sat below the minimum relay fee {needed} sat")
            }
            Reject::MempoolMinFee { fee, needed } => {
                write!(f, "fee {fee} sat below the mempool minimum fee {needed} sat")
            }
            Reject::PackageFeerateTooLow { fee, needed } => {
                write!(f, "package fee {fee} sat below the floor's {needed} sat")
            }
            Reject::NotParentChild => write!(f, "not a parent and a child spending it"),
        }
    }
}

impl std::error::Error for Reject {}

/// Why [`ValidatingChain::reorg`] or [`ValidatingChain::reorg_replacing`] refused; the chain
/// is left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReorgError {
    /// The reorg would disconnect the genesis block.
    TooDeep {
        /// The depth asked for.
        depth: u32,
        /// The tip's height.
        height: u32,
    },
    /// The new branch is not longer than the blocks it replaces (it has no more work).
    NotLonger {
        /// Blocks disconnected.
        depth: u32,
        /// Blocks in the new branch.
        blocks: usize,
    },
    /// A transaction of the new branch is invalid.
    Invalid {
        /// The height of its block.
        height: u32,
        /// The transaction.
        txid: Txid,
        /// Why.
        reject: Reject,
    },
    /// The transaction to reorg out is not confirmed.
    NotConfirmed(Txid),
}

impl fmt::Display for ReorgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReorgError::TooDeep { depth, height } => {
                write!(f, "cannot reorg {depth} blocks at height {height}")
            }
            ReorgError::NotLonger { depth, blocks } => {
                write!(f, "a branch of {blocks} blocks does not replace {depth}")
            }
            ReorgError::Invalid {
                height,
                txid,
                reject,
            } => write!(f, "block {height}: {txid} invalid: {reject}"),
            ReorgError::NotConfirmed(txid) => write!(f, "{txid} is not confirmed"),
        }
    }
}

impl std::error::Error for ReorgError {}

/// Why a mempool transaction left the mempool without being mined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// A transaction paying more replaced it (BIP 125).
    Replaced {
        /// The replacement.
        by: Txid,
    },
    /// A block confirmed a transaction spending the same output.
    Conflicted {
        /// The output both spend.
        outpoint: OutPoint,
        /// The confirmed transaction.
        by: Txid,
    },
    /// A transaction it spends from left the mempool.
    ParentGone {
        /// The mempool ancestor that was dropped.
        ancestor: Txid,
    },
    /// After a reorg it is no longer valid at the new tip.
    Invalid(Reject),
    /// [`ValidatingChain::reorg_replacing`] reorged it (or an ancestor) out and the new
    /// branch's miners never saw it.
    Forgotten,
    /// It entered in a package, below the relay floors alone, and no mempool transaction
    /// pays for it any more (its child was replaced or conflicted): a miner would not take it.
    Unpaid,
}

/// An unspent output and the height of the block that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Coin {
    output: TxOut,
    height: u32,
}

/// A connected block and what it takes to disconnect it.
#[derive(Debug, Clone)]
struct Connected {
    block: Block,
    /// Per transaction (in block order), the coins it spent.
    undo: Vec<Vec<(OutPoint, Coin)>>,
}

/// What mempool acceptance learnt about a transaction before its fee rules.
struct Checked {
    /// The coins it spends, per input.
    coins: Vec<Coin>,
    /// Its fee.
    fee: u64,
    /// The mempool transactions it conflicts with directly.
    conflicts: Vec<Txid>,
}

/// A mempool transaction.
#[derive(Debug, Clone)]
struct Entry {
    tx: Transaction,
    fee: u64,
    weight: u64,
    /// Arrival order: blocks take transactions in it.
    seq: u64,
    /// It entered in a package and pays less than the floors alone: it stays, and is mined,
    /// only with a child spending it.
    needs_child: bool,
}

/// A validating, reorg-capable in-memory chain with a mempool (see the module docs).
#[derive(Debug, Clone)]
pub struct ValidatingChain {
    policy: Policy,
    /// Block `h` at index `h`; index 0 is regtest's genesis block.
    blocks: Vec<Connected>,
    utxos: BTreeMap<OutPoint, Coin>,
    /// Confirmed transactions: (height, position in the block).
    tx_index: BTreeMap<Txid, (u32, u32)>,
    /// Confirmed spends: which confirmed transaction spent an output.
    spent_by: BTreeMap<OutPoint, Txid>,
    mempool: BTreeMap<Txid, Entry>,
    /// Which mempool transaction spends an output.
    mempool_spends: BTreeMap<OutPoint, Txid>,
    next_seq: u64,
    /// Transactions whose inputs are taken on trust ([`ValidatingChain::fund`]).
    funding: BTreeSet<Txid>,
    funded: u64,
    rejected: Vec<(Txid, Reject)>,
    dropped: Vec<(Txid, DropReason)>,
}

impl Default for ValidatingChain {
    fn default() -> Self {
        Self::new()
    }
}

/// The virtual size of a weight (rounded up).
fn vsize(weight: u64) -> u64 {
    weight.div_ceil(4)
}

/// The minimum fee at `sat_per_kvb` for a transaction of `weight`.
fn fee_at(sat_per_kvb: u64, weight: u64) -> u64 {
    fee_at_vsize(sat_per_kvb, vsize(weight))
}

/// The minimum fee at `sat_per_kvb` for `vsize` virtual bytes (saturating: a policy's rate
/// is a test's input).
fn fee_at_vsize(sat_per_kvb: u64, vsize: u64) -> u64 {
    sat_per_kvb.saturating_mul(vsize) / 1000
}

/// A refusal for paying too little alone, which a child paying for it may cure (package
/// relay).
fn is_fee_reject(reject: &Reject) -> bool {
    matches!(
        reject,
        Reject::ZeroFee | Reject::FeeTooLow { .. } | Reject::MempoolMinFee { .. }
    )
}

/// Whether `script` is of a standard output type: P2PKH, P2SH, P2PK, any witness program, or
/// an OP_RETURN of at most 83 bytes.
fn is_standard_output(script: &bitcoin::Script) -> bool {
    if script.is_op_return() {
        return script.len() <= MAX_OP_RETURN_RELAY;
    }
    script.is_p2pkh() || script.is_p2sh() || script.is_p2pk() || script.is_witness_program()
}

impl ValidatingChain {
    /// A chain holding only regtest's genesis block (height 0), with Core's default policy.
    pub fn new() -> Self {
        Self::with_policy(Policy::default())
    }

    /// A chain holding only regtest's genesis block (height 0), with `policy`.
    pub fn with_policy(policy: Policy) -> Self {
        let genesis = genesis_block(Network::Regtest);
        let coinbase = genesis.txdata[0].compute_txid();
        // The genesis coinbase's output is unspendable (as in Bitcoin): it is not in the UTXO
        // set, only in the index.
        let mut tx_index = BTreeMap::new();
        tx_index.insert(coinbase, (0, 0));
        ValidatingChain {
            policy,
            blocks: vec![Connected {
                block: genesis,
                undo: vec![Vec::new()],
            }],
            utxos: BTreeMap::new(),
            tx_index,
            spent_by: BTreeMap::new(),
            mempool: BTreeMap::new(),
            mempool_spends: BTreeMap::new(),
            next_seq: 0,
            funding: BTreeSet::new(),
            funded: 0,
            rejected: Vec::new(),
            dropped: Vec::new(),
        }
    }

    /// The relay policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Changes the relay policy (for transactions submitted from now on).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    // ---- funding ---------------------------------------------------------------------------

    /// Creates a spendable output paying `value` satoshis to `script_pubkey`: a funding
    /// transaction (a made-up input, taken on trust like a coinbase's) mined alone in a new
    /// block. Returns the output; [`ValidatingChain::get_tx`] gives its transaction. Other
    /// mempool transactions stay in the mempool.
    pub fn fund(&mut self, script_pubkey: ScriptBuf, value: u64) -> OutPoint {
        self.funded += 1;
        let mut tag = b"lnshard-validating-chain-fund".to_vec();
        tag.extend_from_slice(&self.funded.to_be_bytes());
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array(sha256::Hash::hash(&tag).to_byte_array()),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey,
            }],
        };
        let txid = tx.compute_txid();
        self.funding.insert(txid);
        self.mine_block_with(vec![tx])
            .expect("a funding transaction is taken on trust");
        OutPoint { txid, vout: 0 }
    }

    /// Takes `tx` into the mempool as a funding transaction: its inputs are taken on trust
    /// (not looked up, not script-checked, not recorded as spent), like a coinbase's, so a
    /// transaction spending made-up coins ([`crate::fake_funding_tx`]) can fund a channel.
    /// The next [`ValidatingChain::mine`] confirms it. Idempotent.
    pub fn submit_funding(&mut self, tx: Transaction) -> Txid {
        let txid = tx.compute_txid();
        self.funding.insert(txid);
        if !self.tx_index.contains_key(&txid) && !self.mempool.contains_key(&txid) {
            let weight = tx.weight().to_wu();
            self.insert_mempool(tx, 0, weight, false);
        }
        txid
    }

    /// Whether `txid` is a funding transaction ([`ValidatingChain::fund`],
    /// [`ValidatingChain::submit_funding`]).
    pub fn is_funding(&self, txid: &Txid) -> bool {
        self.funding.contains(txid)
    }

    // ---- the mempool -----------------------------------------------------------------------

    /// Submits `tx` to the mempool, as `sendrawtransaction` would: `Ok` with its txid when
    /// accepted (or already in the mempool), or the reason it was refused, which is also
    /// logged ([`ValidatingChain::rejected`]). A transaction conflicting with mempool ones
    /// replaces them when it pays more (BIP 125 rules, full RBF).
    pub fn submit(&mut self, tx: Transaction) -> Result<Txid, Reject> {
        let txid = tx.compute_txid();
        match self.accept(tx) {
            Ok(txid) => Ok(txid),
            Err(reject) => {
                self.rejected.push((txid, reject.clone()));
                Err(reject)
            }
        }
    }

    /// Submits a package of one parent and one child spending one of its outputs, as Core's
    /// `submitpackage` (1-parent-1-child package relay, BIP 331's shape): `Ok` with both
    /// txids when both are in the mempool, or the reason one was refused (logged under that
    /// transaction's txid, [`ValidatingChain::rejected`]).
    ///
    /// Each is tried alone first; a parent paying too little alone (no fee, below the relay
    /// or the mempool minimum feerate, or too little to replace what it conflicts with) is
    /// accepted with its child when the package's combined fee over its combined virtual
    /// size meets the floor ([`Policy::mempool_min_sat_per_kvb`], else the minimum relay
    /// feerate) and, if the package conflicts with mempool transactions, pays more than them
    /// by BIP 125's rules (as one). Every input of both is checked by libbitcoinconsensus.
    /// Such a parent is then mined only in the same block as a child paying for it, and
    /// leaves the mempool when no child does any more ([`DropReason::Unpaid`]).
    ///
    /// A parent already in the mempool or the chain leaves the child alone to check: a new
    /// child replacing the old one (same parent output, higher fee by BIP 125) is the CPFP
    /// re-bump. When the parent is accepted alone but the child refused, the parent stays.
    pub fn submit_package(
        &mut self,
        parent: Transaction,
        child: Transaction,
    ) -> Result<(Txid, Txid), Reject> {
        let ptxid = parent.compute_txid();
        let ctxid = child.compute_txid();
        match self.accept_package(parent, child) {
            Ok(()) => Ok((ptxid, ctxid)),
            Err((txid, reject)) => {
                self.rejected.push((txid, reject.clone()));
                Err(reject)
            }
        }
    }

    /// Whether mempool transaction `txid` entered in a package paying less than the floors
    /// alone: it is mined only with a child paying for it.
    pub fn needs_child(&self, txid: &Txid) -> bool {
        self.mempool.get(txid).is_some_and(|e| e.needs_child)
    }

    /// Every refusal of [`ValidatingChain::submit`] so far, in order.
    pub fn rejected(&self) -> &[(Txid, Reject)] {
        &self.rejected
    }

    /// The refusals that matter (not [`Reject::is_benign`]): what a test asserts is empty.
    pub fn refused(&self) -> Vec<&(Txid, Reject)> {
        self.rejected
            .iter()
            .filter(|(_, r)| !r.is_benign())
            .collect()
    }

    /// Mempool transactions dropped without being mined, in order: conflicted by a block,
    /// replaced (BIP 125), no longer valid after a reorg, or a package's parent no child pays
    /// for any more ([`DropReason::Unpaid`]).
    pub fn dropped(&self) -> &[(Txid, DropReason)] {
        &self.dropped
    }

    /// Whether `txid` is in the mempool.
    pub fn in_mempool(&self, txid: &Txid) -> bool {
        self.mempool.contains_key(txid)
    }

    /// The mempool's transactions, in arrival order.
    pub fn mempool(&self) -> Vec<&Transaction> {
        let mut entries: Vec<&Entry> = self.mempool.values().collect();
        entries.sort_by_key(|e| e.seq);
        entries.into_iter().map(|e| &e.tx).collect()
    }

    /// The fee a mempool transaction pays.
    pub fn mempool_fee(&self, txid: &Txid) -> Option<u64> {
        self.mempool.get(txid).map(|e| e.fee)
    }

    /// The mempool transaction spending `outpoint`, if any.
    pub fn mempool_spender_of(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.mempool_spends.get(outpoint).copied()
    }

    // ---- mining ----------------------------------------------------------------------------

    /// Mines `n` blocks, each with every mempool transaction valid at its height (re-checked
    /// by consensus; a child after its parent), in arrival order, up to the block weight. A
    /// parent that entered below the floors ([`ValidatingChain::needs_child`]) goes in only
    /// with, and just before, a child spending it. Returns the blocks.
    pub fn mine(&mut self, n: u32) -> Vec<Block> {
        (0..n)
            .map(|_| {
                self.build_block(Vec::new(), true)
                    .expect("no forced transactions")
            })
            .collect()
    }

    /// Mines one block holding exactly `txs` (after the coinbase), checked by consensus but
    /// not by relay policy (a miner may take a non-standard transaction, or one it was sent
    /// privately). Mempool transactions it conflicts with are dropped; the rest stay. On an
    /// invalid transaction nothing changes and the error names it.
    pub fn mine_block_with(&mut self, txs: Vec<Transaction>) -> Result<Block, (Txid, Reject)> {
        self.build_block(txs, false)
    }

    /// Mines block `height() + 1`: `first` in order (consensus-checked; on an invalid one
    /// nothing changes), then, with `fill`, every mempool transaction valid after them.
    fn build_block(
        &mut self,
        first: Vec<Transaction>,
        fill: bool,
    ) -> Result<Block, (Txid, Reject)> {
        let height = self.height() + 1;
        let mut undo = vec![Vec::new()];
        let mut body: Vec<Transaction> = Vec::with_capacity(first.len());
        // Room for the header and the coinbase.
        let mut weight = 4_000u64;
        for tx in first {
            let txid = tx.compute_txid();
            let tx_weight = tx.weight().to_wu();
            let checked = if weight + tx_weight > MAX_BLOCK_WEIGHT {
                Err(Reject::Malformed("block weight exceeded"))
            } else {
                self.check_in_block(&tx, height)
            };
            if let Err(reject) = checked {
                let spent_all: Vec<_> = undo.drain(1..).collect();
                for (tx, spent) in body.iter().zip(spent_all).rev() {
                    self.unapply(tx, spent);
                }
                return Err((txid, reject));
            }
            weight += tx_weight;
            undo.push(self.apply(&tx, height, body.len() as u32 + 1));
            body.push(tx);
        }
        if fill {
            // A transaction that entered below the floors goes in only with a child paying
            // for it, just before that child (block assembly keeps packages together).
            let mut queue: Vec<(u64, Txid)> = self
                .mempool
                .iter()
                .filter(|(_, e)| !e.needs_child)
                .map(|(txid, e)| (e.seq, *txid))
                .collect();
            queue.sort();
            // Passes in arrival order until nothing more fits: a child whose parent arrived
            // later goes in on the next pass.
            loop {
                let mut progressed = false;
                let mut waiting = Vec::new();
                for (seq, txid) in queue {
                    let mut group: Vec<Txid> = Vec::new();
                    for input in &self.mempool[&txid].tx.input {
                        let parent = input.previous_output.txid;
                        if self.mempool.get(&parent).is_some_and(|e| e.needs_child)
                            && !self.tx_index.contains_key(&parent)
                            && !group.contains(&parent)
                        {
                            group.push(parent);
                        }
                    }
                    group.push(txid);
                    let group_weight: u64 = group.iter().map(|t| self.mempool[t].weight).sum();
                    if weight + group_weight > MAX_BLOCK_WEIGHT {
                        waiting.push((seq, txid));
                        continue;
                    }
                    let mut applied: Vec<(Transaction, Vec<(OutPoint, Coin)>)> = Vec::new();
                    let mut fits = true;
                    for t in &group {
                        let entry = &self.mempool[t];
                        let ready = self.funding.contains(t)
                            || entry
                                .tx
                                .input
                                .iter()
                                .all(|i| self.utxos.contains_key(&i.previous_output));
                        if !ready || self.check_in_block(&entry.tx, height).is_err() {
                            fits = false;
                            break;
                        }
                        let tx = entry.tx.clone();
                        let pos = (body.len() + applied.len()) as u32 + 1;
                        let spent = self.apply(&tx, height, pos);
                        applied.push((tx, spent));
                    }
                    if !fits {
                        for (tx, spent) in applied.into_iter().rev() {
                            self.unapply(&tx, spent);
                        }
                        waiting.push((seq, txid));
                        continue;
                    }
                    weight += group_weight;
                    for (tx, spent) in applied {
                        undo.push(spent);
                        body.push(tx);
                    }
                    progressed = true;
                }
                queue = waiting;
                if !progressed || queue.is_empty() {
                    break;
                }
            }
        }
        Ok(self.connect(body, undo))
    }

    /// Builds block `height() + 1` from `body` (already applied to the UTXO set, `undo` per
    /// transaction with the coinbase's first), connects it and cleans the mempool.
    fn connect(&mut self, body: Vec<Transaction>, mut undo: Vec<Vec<(OutPoint, Coin)>>) -> Block {
        let height = self.height() + 1;
        let mut coinbase = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                // BIP 34: the height first.
                script_sig: Builder::new()
                    .push_int(i64::from(height))
                    .push_slice(b"lnshard")
                    .into_script(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            // Fees and subsidy go unclaimed: the coinbase pays nothing.
            output: vec![TxOut {
                value: Amount::ZERO,
                script_pubkey: Builder::new().push_opcode(OP_RETURN).into_script(),
            }],
        };
        let segwit = body
            .iter()
            .any(|tx| tx.input.iter().any(|i| !i.witness.is_empty()));
        let mut txdata = Vec::with_capacity(body.len() + 1);
        txdata.push(coinbase.clone());
        txdata.extend(body);
        let mut block = Block {
            header: Header {
                version: BlockVersion::from_consensus(0x2000_0000),
                prev_blockhash: self.tip(),
                merkle_root: bitcoin::TxMerkleNode::all_zeros(),
                time: self.time_at(height),
                bits: bitcoin::CompactTarget::from_consensus(REGTEST_BITS),
                nonce: 0,
            },
            txdata,
        };
        if segwit {
            // BIP 141: the witness commitment, with a zero reserved value.
            let reserved = [0u8; 32];
            let root = block.witness_root().expect("a block has a coinbase");
            let commitment = Block::compute_witness_commitment(&root, &reserved);
            let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
            script.extend_from_slice(commitment.as_byte_array());
            coinbase.output.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(script),
            });
            coinbase.input[0].witness = Witness::from_slice(&[reserved]);
            block.txdata[0] = coinbase;
        }
        block.header.merkle_root = block.compute_merkle_root().expect("a block has a coinbase");
        let target = block.header.target();
        while block.header.validate_pow(target).is_err() {
            block.header.nonce += 1;
        }
        // Index the coinbase (its outputs are unspendable: not in the UTXO set).
        self.tx_index
            .insert(block.txdata[0].compute_txid(), (height, 0));
        undo[0] = Vec::new();
        let mined: Vec<Txid> = block.txdata[1..]
            .iter()
            .map(|tx| tx.compute_txid())
            .collect();
        self.blocks.push(Connected {
            block: block.clone(),
            undo,
        });
        // Mined transactions leave the mempool; those conflicting with the block are dropped.
        for txid in &mined {
            if let Some(entry) = self.mempool.remove(txid) {
                self.forget_spends(txid, &entry.tx);
            }
        }
        let mut conflicted = Vec::new();
        for (tx, by) in block.txdata[1..].iter().zip(&mined) {
            if self.funding.contains(by) {
                continue;
            }
            for input in &tx.input {
                if let Some(spender) = self.mempool_spends.get(&input.previous_output) {
                    conflicted.push((*spender, input.previous_output, *by));
                }
            }
        }
        for (spender, outpoint, by) in conflicted {
            self.drop_with_descendants(spender, DropReason::Conflicted { outpoint, by });
        }
        self.evict_unpaid();
        block
    }

    // ---- reorgs ----------------------------------------------------------------------------

    /// Disconnects the last `n` blocks (newest first): the UTXO set is rolled back exactly,
    /// and their transactions (coinbases aside) go back to the mempool when still valid at the
    /// new tip (the others are [`ValidatingChain::dropped`]). With a mempool floor (or for a
    /// mempool parent that entered in a package), a transaction paying too little alone goes
    /// back as a package with the next one spending it. Returns the disconnected blocks,
    /// oldest first.
    ///
    /// # Panics
    ///
    /// If that would disconnect the genesis block.
    pub fn disconnect(&mut self, n: u32) -> Vec<Block> {
        assert!(
            n <= self.height(),
            "cannot disconnect {n} blocks at height {}",
            self.height()
        );
        let mut gone = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let connected = self.blocks.pop().expect("not the genesis block");
            let Connected { block, undo } = connected;
            for (tx, spent) in block.txdata.iter().zip(undo).skip(1).rev() {
                self.unapply(tx, spent);
            }
            self.tx_index.remove(&block.txdata[0].compute_txid());
            gone.push(block);
        }
        gone.reverse();
        // Disconnected transactions first (oldest block first: parents before children), then
        // the mempool as it was; everything re-checked at the new tip.
        let mut old: Vec<Entry> = std::mem::take(&mut self.mempool).into_values().collect();
        old.sort_by_key(|e| e.seq);
        self.mempool_spends.clear();
        // Package relay: with a mempool floor, or for a transaction that entered in a
        // package, one paying too little alone waits for a child to pay for it.
        let floor = self.policy.mempool_min_sat_per_kvb.is_some();
        let packaged: BTreeSet<Txid> = old
            .iter()
            .filter(|e| e.needs_child)
            .map(|e| e.tx.compute_txid())
            .collect();
        let again = gone
            .iter()
            .flat_map(|b| b.txdata.iter().skip(1).cloned())
            .chain(old.into_iter().map(|e| e.tx));
        let mut unpaid: Vec<(Txid, Transaction, Reject)> = Vec::new();
        for tx in again.collect::<Vec<_>>() {
            let txid = tx.compute_txid();
            if self.funding.contains(&txid) {
                self.submit_funding(tx);
                continue;
            }
            let parent = unpaid
                .iter()
                .position(|(p, _, _)| tx.input.iter().any(|i| i.previous_output.txid == *p));
            if let Some(k) = parent {
                let (ptxid, ptx, _) = unpaid.remove(k);
                if let Err((_, reject)) = self.accept_package(ptx, tx) {
                    self.dropped
                        .push((ptxid, DropReason::Invalid(reject.clone())));
                    self.dropped.push((txid, DropReason::Invalid(reject)));
                }
                continue;
            }
            match self.accept(tx.clone()) {
                Ok(_) => {}
                Err(reject) if is_fee_reject(&reject) && (floor || packaged.contains(&txid)) => {
                    unpaid.push((txid, tx, reject));
                }
                Err(reject) => self.dropped.push((txid, DropReason::Invalid(reject))),
            }
        }
        for (txid, _, reject) in unpaid {
            self.dropped.push((txid, DropReason::Invalid(reject)));
        }
        gone
    }

    /// Replaces the last `depth` blocks by a longer branch: disconnects them
    /// ([`ValidatingChain::disconnect`]) then mines one block per element of `blocks` holding
    /// exactly those transactions ([`ValidatingChain::mine_block_with`]); the disconnected
    /// transactions not in the new branch stay in the mempool when still valid. Returns the
    /// new blocks. On error nothing changes.
    pub fn reorg(
        &mut self,
        depth: u32,
        blocks: Vec<Vec<Transaction>>,
    ) -> Result<Vec<Block>, ReorgError> {
        if depth > self.height() {
            return Err(ReorgError::TooDeep {
                depth,
                height: self.height(),
            });
        }
        if blocks.len() <= depth as usize {
            return Err(ReorgError::NotLonger {
                depth,
                blocks: blocks.len(),
            });
        }
        let backup = self.clone();
        self.disconnect(depth);
        let mut mined = Vec::with_capacity(blocks.len());
        for txs in blocks {
            match self.mine_block_with(txs) {
                Ok(block) => mined.push(block),
                Err((txid, reject)) => {
                    let height = self.height() + 1;
                    *self = backup;
                    return Err(ReorgError::Invalid {
                        height,
                        txid,
                        reject,
                    });
                }
            }
        }
        Ok(mined)
    }

    /// Reorgs `txid` out: disconnects back to the block before the one confirming it, forgets
    /// it (and its mempool descendants: the new branch's miners never saw them), then mines a
    /// branch one block longer than the old chain whose first block holds `replacement` (a
    /// conflicting transaction, say the other party's commitment; checked by consensus only)
    /// and, like every block of the branch, the valid mempool. Returns the new blocks.
    ///
    /// "The commitment confirmed at height h is reorged out and a different commitment
    /// confirms instead": `chain.reorg_replacing(ours, Some(theirs))`. On error nothing
    /// changes.
    pub fn reorg_replacing(
        &mut self,
        txid: Txid,
        replacement: Option<Transaction>,
    ) -> Result<Vec<Block>, ReorgError> {
        let Some(&(height, _)) = self.tx_index.get(&txid) else {
            return Err(ReorgError::NotConfirmed(txid));
        };
        if height == 0 {
            return Err(ReorgError::TooDeep {
                depth: self.height() + 1,
                height: self.height(),
            });
        }
        let old_tip = self.height();
        let backup = self.clone();
        self.disconnect(old_tip - height + 1);
        if self.mempool.contains_key(&txid) {
            self.forget_with_descendants(txid);
        }
        let first = replacement.into_iter().collect();
        let mut mined = match self.build_block(first, true) {
            Ok(block) => vec![block],
            Err((txid, reject)) => {
                *self = backup;
                return Err(ReorgError::Invalid {
                    height,
                    txid,
                    reject,
                });
            }
        };
        while self.height() <= old_tip {
            mined.extend(self.mine(1));
        }
        Ok(mined)
    }

    // ---- queries ---------------------------------------------------------------------------

    /// The tip's block hash.
    pub fn tip(&self) -> BlockHash {
        self.blocks.last().expect("genesis").block.block_hash()
    }

    /// The tip's height (0: only the genesis block).
    pub fn height(&self) -> u32 {
        (self.blocks.len() - 1) as u32
    }

    /// The block at `height`, if the chain is that high.
    pub fn block(&self, height: u32) -> Option<&Block> {
        self.blocks.get(height as usize).map(|c| &c.block)
    }

    /// The header time of block `height` (regtest genesis time plus 600 s a block).
    pub fn time_at(&self, height: u32) -> u32 {
        self.blocks[0].block.header.time + BLOCK_INTERVAL_SECS * height
    }

    /// The median time past of block `height` (the median of its and its ten predecessors'
    /// times), which time-based locktimes are measured against.
    pub fn median_time_past(&self, height: u32) -> u32 {
        let first = height.saturating_sub(10);
        let count = height - first + 1;
        // Header times rise with height: the median is the middle one.
        self.time_at(first + count / 2)
    }

    /// The number of confirmations of `txid`: 1 in the tip, 0 when unconfirmed or unknown.
    pub fn confirmations(&self, txid: &Txid) -> u32 {
        self.tx_index
            .get(txid)
            .map_or(0, |(h, _)| self.height() - h + 1)
    }

    /// The height and position in its block of a confirmed transaction.
    pub fn confirmed_at(&self, txid: &Txid) -> Option<(u32, u32)> {
        self.tx_index.get(txid).copied()
    }

    /// The confirmed transaction that spent `outpoint`, if any.
    pub fn spender_of(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spent_by.get(outpoint).copied()
    }

    /// Whether a confirmed transaction spent `outpoint`.
    pub fn is_spent(&self, outpoint: &OutPoint) -> bool {
        self.spent_by.contains_key(outpoint)
    }

    /// The unspent confirmed output at `outpoint`, if any.
    pub fn utxo(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.utxos.get(outpoint).map(|c| &c.output)
    }

    /// A confirmed or mempool transaction.
    pub fn get_tx(&self, txid: &Txid) -> Option<&Transaction> {
        if let Some(&(h, pos)) = self.tx_index.get(txid) {
            return self.blocks[h as usize].block.txdata.get(pos as usize);
        }
        self.mempool.get(txid).map(|e| &e.tx)
    }

    // ---- validation ------------------------------------------------------------------------

    /// Mempool acceptance (without logging the refusal).
    fn accept(&mut self, tx: Transaction) -> Result<Txid, Reject> {
        let txid = tx.compute_txid();
        if self.mempool.contains_key(&txid) {
            return Ok(txid);
        }
        if let Some(&(height, _)) = self.tx_index.get(&txid) {
            return Err(Reject::AlreadyConfirmed { height });
        }
        let height = self.height() + 1;
        let Checked {
            coins,
            fee,
            conflicts,
        } = self.precheck(&tx, height, None)?;
        let weight = tx.weight().to_wu();
        if fee == 0 {
            if !self.policy.allow_zero_fee {
                return Err(Reject::ZeroFee);
            }
        } else {
            let needed = fee_at(self.policy.min_relay_sat_per_kvb, weight);
            if fee < needed {
                return Err(Reject::FeeTooLow { fee, needed });
            }
        }
        if let Some(floor) = self.mempool_floor() {
            // With the mempool parents it pays for (a CPFP re-bump of a package's parent).
            let (parents_fee, parents_vsize) = self.unpaid_parents(&[&tx]);
            let fee = fee + parents_fee;
            let needed = fee_at_vsize(floor, vsize(weight) + parents_vsize);
            if fee < needed {
                return Err(Reject::MempoolMinFee { fee, needed });
            }
        }
        let replaced = self.check_replacement(&[&tx], fee, weight, &conflicts)?;
        check_scripts(&tx, &coins)?;

        self.evict(&replaced, txid);
        self.insert_mempool(tx, fee, weight, false);
        self.evict_unpaid();
        Ok(txid)
    }

    /// The mempool minimum feerate in force (never below the relay floor), if any.
    fn mempool_floor(&self) -> Option<u64> {
        self.policy
            .mempool_min_sat_per_kvb
            .map(|f| f.max(self.policy.min_relay_sat_per_kvb))
    }

    /// Whether a transaction paying `fee` for `weight` meets the floors alone.
    fn pays_alone(&self, fee: u64, weight: u64) -> bool {
        let floor = self.mempool_floor();
        if fee == 0 {
            return self.policy.allow_zero_fee && floor.is_none();
        }
        fee >= fee_at(self.policy.min_relay_sat_per_kvb, weight)
            && floor.is_none_or(|f| fee >= fee_at(f, weight))
    }

    /// The combined fee and virtual size of the mempool transactions `txs` spend that entered
    /// below the floors ([`Entry::needs_child`]) and are not among `txs`.
    fn unpaid_parents(&self, txs: &[&Transaction]) -> (u64, u64) {
        let own: Vec<Txid> = txs.iter().map(|t| t.compute_txid()).collect();
        let mut seen: Vec<Txid> = Vec::new();
        let (mut fee, mut size) = (0u64, 0u64);
        for tx in txs {
            for input in &tx.input {
                let parent = input.previous_output.txid;
                if own.contains(&parent) || seen.contains(&parent) {
                    continue;
                }
                if let Some(entry) = self.mempool.get(&parent) {
                    if entry.needs_child {
                        seen.push(parent);
                        fee = fee.saturating_add(entry.fee);
                        size += vsize(entry.weight);
                    }
                }
            }
        }
        (fee, size)
    }

    /// Everything mempool acceptance checks before fees: structure, standardness, finality,
    /// inputs (confirmed, in the mempool, or outputs of `parent`, a package's parent not yet
    /// in the mempool), amounts and BIP 68. Returns the coins spent, the fee and the mempool
    /// transactions it conflicts with directly.
    fn precheck(
        &self,
        tx: &Transaction,
        height: u32,
        parent: Option<&Transaction>,
    ) -> Result<Checked, Reject> {
        check_structure(tx)?;
        self.check_standard(tx)?;
        self.check_final(tx, height)?;
        let parent_txid = parent.map(|p| p.compute_txid());
        // Inputs: confirmed coins, or outputs of mempool transactions (at the next height).
        let mut conflicts: Vec<Txid> = Vec::new();
        let mut coins: Vec<Coin> = Vec::with_capacity(tx.input.len());
        for input in &tx.input {
            let outpoint = input.previous_output;
            if let (Some(p), Some(ptxid)) = (parent, parent_txid) {
                if outpoint.txid == ptxid {
                    let output = p
                        .output
                        .get(outpoint.vout as usize)
                        .ok_or(Reject::MissingInput(outpoint))?;
                    coins.push(Coin {
                        output: output.clone(),
                        height,
                    });
                    continue;
                }
                if p.input.iter().any(|i| i.previous_output == outpoint) {
                    return Err(Reject::NotParentChild);
                }
            }
            if let Some(spender) = self.mempool_spends.get(&outpoint) {
                if !conflicts.contains(spender) {
                    conflicts.push(*spender);
                }
            }
            coins.push(self.mempool_coin(&outpoint, height)?);
        }
        let fee = check_amounts(tx, &coins)?;
        check_sequence_locks(tx, &coins, height, |h| self.median_time_past(h))?;
        Ok(Checked {
            coins,
            fee,
            conflicts,
        })
    }

    /// Removes the replaced transactions `victims` from the mempool, logging `by`.
    fn evict(&mut self, victims: &[Txid], by: Txid) {
        for victim in victims {
            if let Some(entry) = self.mempool.remove(victim) {
                self.forget_spends(victim, &entry.tx);
                self.dropped.push((*victim, DropReason::Replaced { by }));
            }
        }
    }

    /// Package acceptance (without logging): `Err` names the transaction refused.
    fn accept_package(
        &mut self,
        parent: Transaction,
        child: Transaction,
    ) -> Result<(), (Txid, Reject)> {
        let ptxid = parent.compute_txid();
        let ctxid = child.compute_txid();
        if ptxid == ctxid || !child.input.iter().any(|i| i.previous_output.txid == ptxid) {
            return Err((ctxid, Reject::NotParentChild));
        }
        // A parent the chain or the mempool already has: the child alone (it still pays for
        // the parent if that one entered below the floors: the CPFP re-bump).
        if self.tx_index.contains_key(&ptxid) || self.mempool.contains_key(&ptxid) {
            return self.accept(child).map(|_| ()).map_err(|r| (ctxid, r));
        }
        // As Core's submitpackage: each alone first; the package only for a parent paying
        // too little alone (to relay, or to replace what it conflicts with).
        match self.accept(parent.clone()) {
            Ok(_) => return self.accept(child).map(|_| ()).map_err(|r| (ctxid, r)),
            Err(
                Reject::ZeroFee
                | Reject::FeeTooLow { .. }
                | Reject::MempoolMinFee { .. }
                | Reject::ReplacementFeeTooLow { .. }
                | Reject::ReplacementFeerateTooLow { .. },
            ) => {}
            Err(r) => return Err((ptxid, r)),
        }
        if self.mempool.contains_key(&ctxid) {
            // The child is in the mempool without its parent: impossible, it spends it.
            return Err((ctxid, Reject::NotParentChild));
        }
        if let Some(&(height, _)) = self.tx_index.get(&ctxid) {
            return Err((ctxid, Reject::AlreadyConfirmed { height }));
        }
        let height = self.height() + 1;
        let p = self
            .precheck(&parent, height, None)
            .map_err(|r| (ptxid, r))?;
        let c = self
            .precheck(&child, height, Some(&parent))
            .map_err(|r| (ctxid, r))?;
        let pweight = parent.weight().to_wu();
        let cweight = child.weight().to_wu();
        // The package's feerate: both, with any mempool parent they pay for, against the
        // mempool floor (or the relay floor when there is none).
        let floor = self
            .mempool_floor()
            .unwrap_or(self.policy.min_relay_sat_per_kvb);
        let (parents_fee, parents_vsize) = self.unpaid_parents(&[&parent, &child]);
        let package_fee = p.fee.saturating_add(c.fee).saturating_add(parents_fee);
        let needed = fee_at_vsize(floor, vsize(pweight) + vsize(cweight) + parents_vsize);
        if package_fee < needed || c.fee == 0 {
            return Err((
                ctxid,
                Reject::PackageFeerateTooLow {
                    fee: package_fee,
                    needed,
                },
            ));
        }
        // BIP 125 for the package as one: it pays for everything both evict.
        let mut conflicts = p.conflicts.clone();
        for t in &c.conflicts {
            if !conflicts.contains(t) {
                conflicts.push(*t);
            }
        }
        let replaced = self
            .check_replacement(
                &[&parent, &child],
                p.fee + c.fee,
                pweight + cweight,
                &conflicts,
            )
            .map_err(|r| (ctxid, r))?;
        check_scripts(&parent, &p.coins).map_err(|r| (ptxid, r))?;
        check_scripts(&child, &c.coins).map_err(|r| (ctxid, r))?;

        self.evict(&replaced, ctxid);
        let needs_child = !self.pays_alone(p.fee, pweight);
        self.insert_mempool(parent, p.fee, pweight, needs_child);
        self.insert_mempool(child, c.fee, cweight, false);
        self.evict_unpaid();
        Ok(())
    }

    /// Drops every mempool transaction that entered below the floors and has no mempool child
    /// left to pay for it (with its descendants): a miner would never take it.
    fn evict_unpaid(&mut self) {
        loop {
            let unpaid = self
                .mempool
                .iter()
                .filter(|(_, e)| e.needs_child)
                .map(|(t, e)| (*t, e.tx.output.len()))
                .find(|(t, outputs)| {
                    !(0..*outputs).any(|vout| {
                        self.mempool_spends.contains_key(&OutPoint {
                            txid: *t,
                            vout: vout as u32,
                        })
                    })
                });
            match unpaid {
                Some((txid, _)) => self.drop_with_descendants(txid, DropReason::Unpaid),
                None => return,
            }
        }
    }

    /// The coin `outpoint` names for a mempool transaction going into block `height`.
    fn mempool_coin(&self, outpoint: &OutPoint, height: u32) -> Result<Coin, Reject> {
        if let Some(coin) = self.utxos.get(outpoint) {
            return Ok(coin.clone());
        }
        if let Some(parent) = self.mempool.get(&outpoint.txid) {
            if let Some(output) = parent.tx.output.get(outpoint.vout as usize) {
                return Ok(Coin {
                    output: output.clone(),
                    height,
                });
            }
        }
        match self.spent_by.get(outpoint) {
            Some(by) => Err(Reject::InputSpent {
                outpoint: *outpoint,
                by: *by,
            }),
            None => Err(Reject::MissingInput(*outpoint)),
        }
    }

    /// BIP 125 (full RBF): the mempool transactions `txs` (one transaction, or a package
    /// paying `fee` for `weight` together) evict, or why they may not.
    fn check_replacement(
        &self,
        txs: &[&Transaction],
        fee: u64,
        weight: u64,
        conflicts: &[Txid],
    ) -> Result<Vec<Txid>, Reject> {
        if conflicts.is_empty() {
            return Ok(Vec::new());
        }
        let mut replaced: Vec<Txid> = Vec::new();
        for conflict in conflicts {
            let entry = &self.mempool[conflict];
            // Rule 6: a strictly higher feerate than each direct conflict.
            if u128::from(fee) * u128::from(entry.weight)
                <= u128::from(entry.fee) * u128::from(weight)
            {
                return Err(Reject::ReplacementFeerateTooLow {
                    conflict: *conflict,
                });
            }
            for t in self.descendants(*conflict) {
                if !replaced.contains(&t) {
                    replaced.push(t);
                }
            }
        }
        if replaced.len() > MAX_REPLACEMENT_EVICTIONS {
            return Err(Reject::TooManyReplacements {
                count: replaced.len(),
            });
        }
        for input in txs.iter().flat_map(|tx| &tx.input) {
            if replaced.contains(&input.previous_output.txid) {
                return Err(Reject::ReplacementSpendsConflict {
                    conflict: input.previous_output.txid,
                });
            }
        }
        // Rules 3 and 4: pay for everything evicted, plus relay of itself.
        let evicted: u64 = replaced.iter().map(|t| self.mempool[t].fee).sum();
        let needed = evicted + fee_at(self.policy.min_relay_sat_per_kvb, weight);
        if fee < needed {
            return Err(Reject::ReplacementFeeTooLow {
                conflicts: conflicts.to_vec(),
                fee,
                needed,
            });
        }
        Ok(replaced)
    }

    /// Relay policy on the transaction alone (Core's `IsStandardTx`).
    fn check_standard(&self, tx: &Transaction) -> Result<(), Reject> {
        let version = tx.version.0;
        if !(1..=3).contains(&version) {
            return Err(Reject::Version(version));
        }
        let weight = tx.weight().to_wu();
        if weight > self.policy.max_tx_weight {
            return Err(Reject::TooHeavy { weight });
        }
        let base_size = tx.base_size();
        if base_size < MIN_STANDARD_TX_NONWITNESS_SIZE {
            return Err(Reject::TooSmall { base_size });
        }
        for (input, txin) in tx.input.iter().enumerate() {
            if !txin.script_sig.is_push_only() {
                return Err(Reject::ScriptSigNotPushOnly { input });
            }
        }
        for (vout, out) in tx.output.iter().enumerate() {
            if !is_standard_output(&out.script_pubkey) {
                return Err(Reject::NonStandardOutput { vout });
            }
            let threshold = out.script_pubkey.minimal_non_dust().to_sat();
            if out.value.to_sat() < threshold {
                return Err(Reject::Dust {
                    vout,
                    value: out.value.to_sat(),
                    threshold,
                });
            }
        }
        Ok(())
    }

    /// Absolute locktime: `tx` may go in block `height`, whose predecessor's median time past
    /// time-based locktimes are measured against (Core's `IsFinalTx`).
    fn check_final(&self, tx: &Transaction, height: u32) -> Result<(), Reject> {
        let lock = tx.lock_time.to_consensus_u32();
        if lock == 0 {
            return Ok(());
        }
        let reached = if lock < LOCKTIME_THRESHOLD {
            lock < height
        } else {
            lock < self.median_time_past(height - 1)
        };
        if reached || tx.input.iter().all(|i| i.sequence == Sequence::MAX) {
            Ok(())
        } else {
            Err(Reject::NonFinal {
                lock_time: tx.lock_time,
                height,
            })
        }
    }

    /// Consensus validity of `tx` in block `height` against the UTXO set as it stands (the
    /// block's earlier transactions applied). A funding transaction is taken on trust.
    fn check_in_block(&self, tx: &Transaction, height: u32) -> Result<(), Reject> {
        let txid = tx.compute_txid();
        if let Some(&(height, _)) = self.tx_index.get(&txid) {
            return Err(Reject::AlreadyConfirmed { height });
        }
        if self.funding.contains(&txid) {
            return Ok(());
        }
        check_structure(tx)?;
        self.check_final(tx, height)?;
        let mut coins = Vec::with_capacity(tx.input.len());
        for input in &tx.input {
            let outpoint = input.previous_output;
            match self.utxos.get(&outpoint) {
                Some(coin) => coins.push(coin.clone()),
                None => {
                    return Err(match self.spent_by.get(&outpoint) {
                        Some(by) => Reject::InputSpent { outpoint, by: *by },
                        None => Reject::MissingInput(outpoint),
                    })
                }
            }
        }
        check_amounts(tx, &coins)?;
        check_sequence_locks(tx, &coins, height, |h| self.median_time_past(h))?;
        check_scripts(tx, &coins)
    }

    // ---- state changes ---------------------------------------------------------------------

    /// Applies `tx` (valid) in block `height` at position `pos`: returns the coins it spent.
    fn apply(&mut self, tx: &Transaction, height: u32, pos: u32) -> Vec<(OutPoint, Coin)> {
        let txid = tx.compute_txid();
        let mut spent = Vec::new();
        if !self.funding.contains(&txid) {
            for input in &tx.input {
                let outpoint = input.previous_output;
                let coin = self.utxos.remove(&outpoint).expect("checked input");
                self.spent_by.insert(outpoint, txid);
                spent.push((outpoint, coin));
            }
        }
        for (vout, output) in tx.output.iter().enumerate() {
            if output.script_pubkey.is_op_return() {
                continue;
            }
            self.utxos.insert(
                OutPoint {
                    txid,
                    vout: vout as u32,
                },
                Coin {
                    output: output.clone(),
                    height,
                },
            );
        }
        self.tx_index.insert(txid, (height, pos));
        spent
    }

    /// Undoes [`ValidatingChain::apply`].
    fn unapply(&mut self, tx: &Transaction, spent: Vec<(OutPoint, Coin)>) {
        let txid = tx.compute_txid();
        for vout in 0..tx.output.len() {
            self.utxos.remove(&OutPoint {
                txid,
                vout: vout as u32,
            });
        }
        for (outpoint, coin) in spent {
            self.spent_by.remove(&outpoint);
            self.utxos.insert(outpoint, coin);
        }
        self.tx_index.remove(&txid);
    }

    fn insert_mempool(&mut self, tx: Transaction, fee: u64, weight: u64, needs_child: bool) {
        let txid = tx.compute_txid();
        if !self.funding.contains(&txid) {
            for input in &tx.input {
                self.mempool_spends.insert(input.previous_output, txid);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.mempool.insert(
            txid,
            Entry {
                tx,
                fee,
                weight,
                seq,
                needs_child,
            },
        );
    }

    fn forget_spends(&mut self, txid: &Txid, tx: &Transaction) {
        for input in &tx.input {
            if self.mempool_spends.get(&input.previous_output) == Some(txid) {
                self.mempool_spends.remove(&input.previous_output);
            }
        }
    }

    /// `txid` and every mempool transaction spending from it, transitively (parents first).
    fn descendants(&self, txid: Txid) -> Vec<Txid> {
        let mut out = vec![txid];
        let mut i = 0;
        while i < out.len() {
            let t = out[i];
            if let Some(entry) = self.mempool.get(&t) {
                for vout in 0..entry.tx.output.len() {
                    let op = OutPoint {
                        txid: t,
                        vout: vout as u32,
                    };
                    if let Some(child) = self.mempool_spends.get(&op) {
                        if !out.contains(child) {
                            out.push(*child);
                        }
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// Drops `txid` and its mempool descendants, logging why.
    fn drop_with_descendants(&mut self, txid: Txid, reason: DropReason) {
        for t in self.descendants(txid) {
            if let Some(entry) = self.mempool.remove(&t) {
                self.forget_spends(&t, &entry.tx);
                let why = if t == txid {
                    reason.clone()
                } else {
                    DropReason::ParentGone { ancestor: txid }
                };
                self.dropped.push((t, why));
            }
        }
    }

    /// Removes `txid` and its mempool descendants: the network forgot them.
    fn forget_with_descendants(&mut self, txid: Txid) {
        self.drop_with_descendants(txid, DropReason::Forgotten);
        self.evict_unpaid();
    }
}

/// Consensus `CheckTransaction`: inputs and outputs present, no duplicate input, amounts in
/// range, not a coinbase.
fn check_structure(tx: &Transaction) -> Result<(), Reject> {
    if tx.input.is_empty() {
        return Err(Reject::Malformed("no inputs"));
    }
    if tx.output.is_empty() {
        return Err(Reject::Malformed("no outputs"));
    }
    if tx.is_coinbase() {
        return Err(Reject::Coinbase);
    }
    let mut seen = BTreeSet::new();
    for input in &tx.input {
        if input.previous_output.is_null() {
            return Err(Reject::Malformed("null prevout"));
        }
        if !seen.insert(input.previous_output) {
            return Err(Reject::Malformed("duplicate input"));
        }
    }
    let mut total = 0u64;
    for out in &tx.output {
        total = total.saturating_add(out.value.to_sat());
        if out.value > Amount::MAX_MONEY || total > Amount::MAX_MONEY.to_sat() {
            return Err(Reject::Malformed("output value out of range"));
        }
    }
    Ok(())
}

/// The fee: inputs minus outputs, or why the outputs are worth more.
fn check_amounts(tx: &Transaction, coins: &[Coin]) -> Result<u64, Reject> {
    let inputs: u64 = coins.iter().map(|c| c.output.value.to_sat()).sum();
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    inputs
        .checked_sub(outputs)
        .ok_or(Reject::OutputsExceedInputs { inputs, outputs })
}

/// BIP 68 relative locktimes (version 2 and up) for block `height`; `mtp` gives a height's
/// median time past.
fn check_sequence_locks(
    tx: &Transaction,
    coins: &[Coin],
    height: u32,
    mtp: impl Fn(u32) -> u32,
) -> Result<(), Reject> {
    if tx.version.0 < 2 {
        return Ok(());
    }
    for (input, (txin, coin)) in tx.input.iter().zip(coins).enumerate() {
        let seq = txin.sequence.to_consensus_u32();
        if seq & SEQUENCE_DISABLE_FLAG != 0 {
            continue;
        }
        let value = i64::from(seq & SEQUENCE_MASK);
        let met = if seq & SEQUENCE_TYPE_FLAG != 0 {
            let coin_time = i64::from(mtp(coin.height.saturating_sub(1)));
            let min_time = coin_time + (value << SEQUENCE_GRANULARITY) - 1;
            min_time < i64::from(mtp(height - 1))
        } else {
            let min_height = i64::from(coin.height) + value - 1;
            min_height < i64::from(height)
        };
        if !met {
            return Err(Reject::RelativeLockTime {
                input,
                sequence: txin.sequence,
                coin_height: coin.height,
                height,
            });
        }
    }
    Ok(())
}

/// Checks every input of `tx` against `prevouts` (the outputs it spends, in input order) by
/// libbitcoinconsensus with [`VERIFY_FLAGS`], for tests of transactions the chain never sees.
///
/// # Panics
/// On a count mismatch or a failing input, naming it and the transaction.
pub fn verify_inputs(tx: &Transaction, prevouts: &[TxOut]) {
    assert_eq!(tx.input.len(), prevouts.len(), "one prevout per input");
    let serialized = bitcoin::consensus::serialize(tx);
    for (input, prevout) in prevouts.iter().enumerate() {
        bitcoin::consensus::verify_script_with_flags(
            &prevout.script_pubkey,
            input,
            prevout.value,
            &serialized,
            VERIFY_FLAGS,
        )
        .unwrap_or_else(|e| panic!("input {input} of {}: {e:?}", tx.compute_txid()));
    }
}

/// Every input's script, by libbitcoinconsensus with [`VERIFY_FLAGS`].
fn check_scripts(tx: &Transaction, coins: &[Coin]) -> Result<(), Reject> {
    let serialized = bitcoin::consensus::serialize(tx);
    for (input, coin) in coins.iter().enumerate() {
        bitcoin::consensus::verify_script_with_flags(
            &coin.output.script_pubkey,
            input,
            coin.output.value,
            &serialized,
            VERIFY_FLAGS,
        )
        .map_err(|error| Reject::Script { input, error })?;
    }
    Ok(())
}

/// A block's transactions after its coinbase, each with its index in the block: what
/// `transactions_confirmed` takes.
pub fn block_txdata(block: &Block) -> Vec<(u32, Transaction)> {
    block
        .txdata
        .iter()
        .enumerate()
        .skip(1)
        .map(|(k, tx)| (k as u32, tx.clone()))
        .collect()
}
