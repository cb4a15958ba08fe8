//! Both sides' broadcasts through one [`ValidatingChain`]: every transaction our node or an
//! LDK node broadcasts is submitted to a mempool that checks every input with
//! libbitcoinconsensus, locktimes (absolute and BIP 68) and relay policy; blocks are mined
//! from that mempool and fed to both sides.
//!
//! A broadcast refused for a reason that time or another block can cure (a locktime not yet
//! reached, a parent not yet seen) waits and is submitted again before each block. So does one
//! paying too little alone for the mempool's floor (nothing, or less than
//! `Policy::mempool_min_sat_per_kvb`): a child paying for it may come. A waiting child whose
//! parent waits for one goes in with it as a package ([`ValidatingChain::submit_package`], as
//! a node relaying its broadcast batch `[parent, child]` would); [`ValidatingFeed::broadcast_package`]
//! submits one explicitly. One that lost a race (its input already spent, or a conflicting mempool transaction paying more)
//! is set aside in [`ValidatingFeed::lost`]. Every other refusal (a script failure, a fee
//! below the relay minimum, dust, a malformed transaction) is a defect of whoever signed it
//! and is kept in [`ValidatingFeed::refused`], which tests assert is empty.

use std::collections::BTreeSet;

use bitcoin::{Block, OutPoint, ScriptBuf, Transaction, Txid};
use lnshard::core::node::NodeCore;
use lnshard_testkit::chain::{Reject, ValidatingChain};

/// Who broadcast a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    /// Our `NodeCore`.
    Us,
    /// The LDK node (its `ChannelManager`/`ChainMonitor`, or a restored monitor of its).
    Ldk,
}

/// A [`ValidatingChain`] with the broadcasts of both sides flowing into it.
pub struct ValidatingFeed {
    /// The chain.
    pub chain: ValidatingChain,
    /// Every distinct transaction broadcast, first broadcast first, with who broadcast it.
    pub broadcasts: Vec<(Who, Transaction)>,
    /// Refusals that are a signer's defect (see the module documentation).
    pub refused: Vec<(Who, Txid, Reject)>,
    /// Broadcasts that lost a race, with the refusal.
    pub lost: Vec<(Who, Txid, Reject)>,
    waiting: Vec<(Who, Transaction)>,
    seen: BTreeSet<Txid>,
    fundings: BTreeSet<Txid>,
}

impl Default for ValidatingFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ValidatingFeed {
    /// A chain at height 101 (Core's default policy).
    pub fn new() -> ValidatingFeed {
        let mut chain = ValidatingChain::new();
        chain.mine(101);
        ValidatingFeed {
            chain,
            broadcasts: Vec::new(),
            refused: Vec::new(),
            lost: Vec::new(),
            waiting: Vec::new(),
            seen: BTreeSet::new(),
            fundings: BTreeSet::new(),
        }
    }

    /// Marks `tx` as a funding transaction whose inputs are made up: when broadcast, it
    /// enters the mempool on trust ([`ValidatingChain::submit_funding`]).
    pub fn expect_funding(&mut self, tx: &Transaction) {
        self.fundings.insert(tx.compute_txid());
    }

    /// `who` broadcast `tx`: submitted now (a repeat of a known transaction is ignored).
    pub fn broadcast(&mut self, who: Who, tx: Transaction) {
        let txid = tx.compute_txid();
        if !self.seen.insert(txid) {
            return;
        }
        self.broadcasts.push((who, tx.clone()));
        if self.fundings.contains(&txid) {
            self.chain.submit_funding(tx);
            return;
        }
        self.waiting.push((who, tx));
        self.submit_waiting();
    }

    /// `who` broadcast `parent` and `child` (spending one of `parent`'s outputs) together:
    /// submitted now as a package ([`ValidatingChain::submit_package`]), so a parent paying
    /// too little alone enters with the child paying for both. Repeats of known transactions
    /// are not recorded twice; a child replacing an earlier one of the same parent is a
    /// BIP 125 replacement.
    pub fn broadcast_package(&mut self, who: Who, parent: Transaction, child: Transaction) {
        let txids = [parent.compute_txid(), child.compute_txid()];
        for tx in [&parent, &child] {
            if self.seen.insert(tx.compute_txid()) {
                self.broadcasts.push((who, tx.clone()));
            }
        }
        self.waiting
            .retain(|(_, t)| !txids.contains(&t.compute_txid()));
        if let Err(r) = self.chain.submit_package(parent.clone(), child.clone()) {
            if Self::curable(&r) {
                self.waiting.push((who, parent));
                self.waiting.push((who, child));
            } else {
                self.classify(who, txids[1], r);
            }
        }
    }

    /// Whether a refusal may be cured by time, a block or a child paying for it.
    fn curable(r: &Reject) -> bool {
        matches!(
            r,
            Reject::NonFinal { .. }
                | Reject::RelativeLockTime { .. }
                | Reject::MissingInput(_)
                | Reject::ZeroFee
                | Reject::MempoolMinFee { .. }
        )
    }

    /// Files a refusal that time cannot cure: a lost race or a signer's defect.
    fn classify(&mut self, who: Who, txid: Txid, r: Reject) {
        match r {
            Reject::AlreadyConfirmed { .. }
            | Reject::InputSpent { .. }
            | Reject::ReplacementFeeTooLow { .. }
            | Reject::ReplacementFeerateTooLow { .. }
            | Reject::ReplacementSpendsConflict { .. } => self.lost.push((who, txid, r)),
            r => self.refused.push((who, txid, r)),
        }
    }

    /// Submits every waiting broadcast again, in broadcast order, until none more enters. A
    /// waiting transaction missing a parent that itself waits (paying too little alone) is
    /// submitted with it as a package.
    pub fn submit_waiting(&mut self) {
        loop {
            let mut progress = false;
            let pending: Vec<Transaction> = self.waiting.iter().map(|(_, t)| t.clone()).collect();
            for (who, tx) in std::mem::take(&mut self.waiting) {
                let txid = tx.compute_txid();
                let result = match self.chain.submit(tx.clone()) {
                    Err(Reject::MissingInput(o)) => {
                        match pending.iter().find(|p| p.compute_txid() == o.txid) {
                            Some(parent) => self
                                .chain
                                .submit_package(parent.clone(), tx.clone())
                                .map(|_| txid),
                            None => Err(Reject::MissingInput(o)),
                        }
                    }
                    other => other,
                };
                match result {
                    Ok(_) => progress = true,
                    Err(r) if Self::curable(&r) => self.waiting.push((who, tx)),
                    Err(r) => self.classify(who, txid, r),
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Broadcasts still waiting (a locktime or a parent).
    pub fn waiting(&self) -> Vec<(Who, Txid)> {
        self.waiting
            .iter()
            .map(|(w, t)| (*w, t.compute_txid()))
            .collect()
    }

    /// Mines one block from the mempool (after submitting what waits); returns its height
    /// and the block.
    pub fn mine_one(&mut self) -> (u32, Block) {
        self.submit_waiting();
        let block = self.chain.mine(1).pop().expect("one block");
        (self.chain.height(), block)
    }

    /// Who broadcast `txid`, if anyone did.
    pub fn broadcaster_of(&self, txid: &Txid) -> Option<Who> {
        self.broadcasts
            .iter()
            .find(|(_, t)| t.compute_txid() == *txid)
            .map(|(w, _)| *w)
    }

    /// The confirmed transactions `who` broadcast.
    pub fn confirmed_from(&self, who: Who) -> Vec<Transaction> {
        self.broadcasts
            .iter()
            .filter(|(w, t)| *w == who && self.chain.confirmations(&t.compute_txid()) > 0)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// The value of the output `outpoint` (of a confirmed or mempool transaction).
    pub fn value_of(&self, outpoint: &OutPoint) -> u64 {
        self.chain
            .get_tx(&outpoint.txid)
            .and_then(|tx| tx.output.get(outpoint.vout as usize))
            .unwrap_or_else(|| panic!("unknown output {outpoint}"))
            .value
            .to_sat()
    }

    /// What `tx`'s inputs are worth.
    pub fn input_value(&self, tx: &Transaction) -> u64 {
        tx.input
            .iter()
            .map(|i| self.value_of(&i.previous_output))
            .sum()
    }

    /// The fee `tx` pays.
    pub fn fee(&self, tx: &Transaction) -> u64 {
        let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        self.input_value(tx) - outputs
    }

    /// The confirmed transaction spending `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Transaction> {
        let txid = self.chain.spender_of(outpoint)?;
        self.chain.get_tx(&txid).cloned()
    }
}

/// What `tx` pays to `script`.
pub fn paid_to(tx: &Transaction, script: &ScriptBuf) -> u64 {
    tx.output
        .iter()
        .filter(|o| o.script_pubkey == *script)
        .map(|o| o.value.to_sat())
        .sum()
}

/// Feeds `block` at `height` to our node: its transactions, then the new best block.
pub fn feed_core(us: &mut NodeCore, height: u32, block: &Block) {
    let txdata: Vec<(u32, &Transaction)> = block
        .txdata
        .iter()
        .enumerate()
        .map(|(i, tx)| (i as u32, tx))
        .collect();
    us.transactions_confirmed(height, &txdata);
    us.best_block_updated(height, block.block_hash());
}
