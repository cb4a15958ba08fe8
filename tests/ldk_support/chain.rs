//! A fake regtest chain: real block headers linked by hash, with a coinbase and the mined
//! transactions, a real merkle root, and no proof of work (LDK checks none).

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::blockdata::constants::genesis_block;
use bitcoin::hashes::Hash;
use bitcoin::script::Builder;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, Network, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxMerkleNode, TxOut, Txid, Witness,
};

/// A chain of blocks starting at the regtest genesis block (height 0).
///
/// Mining is explicit: [`FakeChain::mine`] appends one block holding the given transactions,
/// [`FakeChain::mine_empty`] appends empty blocks. Nodes learn about blocks through
/// `LdkNode::sync_to(&chain)`, which feeds them every block they have not seen yet.
pub struct FakeChain {
    blocks: Vec<Block>,
}

impl Default for FakeChain {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeChain {
    /// A chain holding only the regtest genesis block.
    pub fn new() -> FakeChain {
        FakeChain {
            blocks: vec![genesis_block(Network::Regtest)],
        }
    }

    /// The height of the tip.
    pub fn height(&self) -> u32 {
        u32::try_from(self.blocks.len() - 1).expect("fewer than 2^32 blocks")
    }

    /// The tip's hash.
    pub fn tip_hash(&self) -> BlockHash {
        self.tip().block_hash()
    }

    /// The tip.
    pub fn tip(&self) -> &Block {
        self.blocks
            .last()
            .expect("the genesis block is always there")
    }

    /// The block at `height`, if mined.
    pub fn block(&self, height: u32) -> Option<&Block> {
        self.blocks.get(height as usize)
    }

    /// Mines one block holding a coinbase then `txs`, returning its height.
    pub fn mine(&mut self, txs: Vec<Transaction>) -> u32 {
        let height = self.height() + 1;
        let prev = self.tip_hash();
        let prev_time = self.tip().header.time;
        let mut txdata = vec![coinbase(height)];
        txdata.extend(txs);
        let mut block = Block {
            header: Header {
                version: BlockVersion::TWO,
                prev_blockhash: prev,
                merkle_root: TxMerkleNode::all_zeros(),
                time: prev_time + 600,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: height,
            },
            txdata,
        };
        block.header.merkle_root = block
            .compute_merkle_root()
            .expect("a block with a coinbase has a merkle root");
        self.blocks.push(block);
        height
    }

    /// Mines `n` blocks holding only a coinbase, returning the new tip height.
    pub fn mine_empty(&mut self, n: u32) -> u32 {
        for _ in 0..n {
            self.mine(Vec::new());
        }
        self.height()
    }

    /// The height of the block confirming `txid`, if any.
    pub fn confirmation_height(&self, txid: Txid) -> Option<u32> {
        self.blocks.iter().enumerate().find_map(|(h, b)| {
            b.txdata
                .iter()
                .any(|tx| tx.compute_txid() == txid)
                .then(|| u32::try_from(h).expect("fewer than 2^32 blocks"))
        })
    }
}

/// A coinbase paying 50 BTC to `OP_TRUE`, unique per height (BIP 34 height push).
fn coinbase(height: u32) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: Builder::new().push_int(i64::from(height)).into_script(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(50 * 100_000_000),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    }
}
