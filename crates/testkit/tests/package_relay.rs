//! The validating test chain's mempool minimum feerate and 1-parent-1-child package relay
//! (`ValidatingChain::submit_package`, `Policy::mempool_min_sat_per_kvb`): a zero-fee parent
//! enters and is mined only with a child paying for both, and a child is replaced only by one
//! paying more by BIP 125's rules. Every signature is real (secp256k1 over BIP 143 sighashes)
//! and every input is checked by libbitcoinconsensus.

use lightning_core::bitcoin::absolute::LockTime;
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::opcodes::all::OP_CHECKSIG;
use lightning_core::bitcoin::script::Builder;
use lightning_core::bitcoin::sighash::{EcdsaSighashType, SighashCache};
use lightning_core::bitcoin::transaction::Version;
use lightning_core::bitcoin::{
    Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use lightning_core::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use lnshard_testkit::chain::{DropReason, Policy, Reject, ValidatingChain};
use lnshard_testkit::secret;

/// A key, its P2WPKH script, and a P2WSH `<key> OP_CHECKSIG` script.
struct Wallet {
    key: SecretKey,
    pubkey: PublicKey,
    script: ScriptBuf,
    witness_script: ScriptBuf,
}

impl Wallet {
    fn new(tag: &[u8]) -> Wallet {
        let secp = Secp256k1::new();
        let key = secret(tag);
        let pubkey = PublicKey::from_secret_key(&secp, &key);
        let script = ScriptBuf::new_p2wpkh(&CompressedPublicKey(pubkey).wpubkey_hash());
        let witness_script = Builder::new()
            .push_slice(pubkey.serialize())
            .push_opcode(OP_CHECKSIG)
            .into_script();
        Wallet {
            key,
            pubkey,
            script,
            witness_script,
        }
    }

    fn p2wsh(&self) -> ScriptBuf {
        ScriptBuf::new_p2wsh(&self.witness_script.wscript_hash())
    }

    fn sign(&self, sighash: [u8; 32]) -> Vec<u8> {
        let sig = Secp256k1::new().sign_ecdsa(&Message::from_digest(sighash), &self.key);
        let mut der = sig.serialize_der().to_vec();
        der.push(EcdsaSighashType::All as u8);
        der
    }
}

/// How an input is signed.
enum Spend<'a> {
    /// A P2WPKH output of this value owned by this wallet.
    P2wpkh(u64, &'a Wallet),
    /// A P2WSH `<key> OP_CHECKSIG` output of this value owned by this wallet.
    P2wsh(u64, &'a Wallet),
}

fn out(script: &ScriptBuf, value: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(value),
        script_pubkey: script.clone(),
    }
}

/// A version 2 transaction spending `inputs` (signed as each says, SIGHASH_ALL) to `outputs`.
fn signed(inputs: &[(OutPoint, Spend)], outputs: Vec<TxOut>) -> Transaction {
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: inputs
            .iter()
            .map(|(o, _)| TxIn {
                previous_output: *o,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    };
    for (index, (_, how)) in inputs.iter().enumerate() {
        let witness = match how {
            Spend::P2wpkh(value, w) => {
                let sighash = SighashCache::new(&tx)
                    .p2wpkh_signature_hash(
                        index,
                        &w.script,
                        Amount::from_sat(*value),
                        EcdsaSighashType::All,
                    )
                    .expect("input exists");
                Witness::from_slice(&[
                    w.sign(sighash.to_byte_array()),
                    w.pubkey.serialize().to_vec(),
                ])
            }
            Spend::P2wsh(value, w) => {
                let sighash = SighashCache::new(&tx)
                    .p2wsh_signature_hash(
                        index,
                        &w.witness_script,
                        Amount::from_sat(*value),
                        EcdsaSighashType::All,
                    )
                    .expect("input exists");
                Witness::from_slice(&[w.sign(sighash.to_byte_array()), w.witness_script.to_bytes()])
            }
        };
        tx.input[index].witness = witness;
    }
    tx
}

const VALUE: u64 = 100_000;
const ANCHOR: u64 = 10_000;
/// The mempool floor of these tests: 5 sat/vB.
const FLOOR: u64 = 5_000;

fn floor_policy() -> Policy {
    Policy {
        mempool_min_sat_per_kvb: Some(FLOOR),
        ..Policy::default()
    }
}

/// The scene: a chain with the floor, a P2WSH coin of Alice's (the "commitment" input) and a
/// P2WPKH coin of Carol's (her wallet's fee input).
struct Scene {
    chain: ValidatingChain,
    alice: Wallet,
    bob: Wallet,
    carol: Wallet,
    commitment_coin: OutPoint,
    wallet_coin: OutPoint,
}

fn scene(policy: Policy) -> Scene {
    let mut chain = ValidatingChain::with_policy(policy);
    let alice = Wallet::new(b"pkg-alice");
    let bob = Wallet::new(b"pkg-bob");
    let carol = Wallet::new(b"pkg-carol");
    let commitment_coin = chain.fund(alice.p2wsh(), VALUE);
    let wallet_coin = chain.fund(carol.script.clone(), VALUE);
    Scene {
        chain,
        alice,
        bob,
        carol,
        commitment_coin,
        wallet_coin,
    }
}

impl Scene {
    /// A parent spending Alice's P2WSH coin, paying `fee`: to Bob, and an anchor-like P2WPKH
    /// output (vout 1) of Carol's.
    fn parent(&self, fee: u64) -> Transaction {
        signed(
            &[(self.commitment_coin, Spend::P2wsh(VALUE, &self.alice))],
            vec![
                out(&self.bob.script, VALUE - ANCHOR - fee),
                out(&self.carol.script, ANCHOR),
            ],
        )
    }

    /// A child spending `parent`'s anchor and Carol's wallet coin, paying `fee`.
    fn child(&self, parent: &Transaction, fee: u64) -> Transaction {
        let anchor = OutPoint {
            txid: parent.compute_txid(),
            vout: 1,
        };
        signed(
            &[
                (anchor, Spend::P2wpkh(ANCHOR, &self.carol)),
                (self.wallet_coin, Spend::P2wpkh(VALUE, &self.carol)),
            ],
            vec![out(&self.carol.script, ANCHOR + VALUE - fee)],
        )
    }
}

/// The least fee meeting `sat_per_kvb` on `vsize` virtual bytes (the chain's rounding).
fn fee_for(sat_per_kvb: u64, vsize: usize) -> u64 {
    sat_per_kvb * vsize as u64 / 1000
}

fn package_vsize(parent: &Transaction, child: &Transaction) -> usize {
    parent.vsize() + child.vsize()
}

fn block_txids(chain: &ValidatingChain, height: u32) -> Vec<Txid> {
    chain.block(height).expect("block").txdata[1..]
        .iter()
        .map(|t| t.compute_txid())
        .collect()
}

#[test]
fn a_zero_fee_parent_alone_is_refused() {
    let mut s = scene(floor_policy());
    let parent = s.parent(0);
    assert_eq!(s.chain.submit(parent.clone()), Err(Reject::ZeroFee));
    // Even where zero-fee transactions relay, the floor refuses one submitted alone.
    s.chain.set_policy(Policy {
        allow_zero_fee: true,
        ..floor_policy()
    });
    let needed = fee_for(FLOOR, parent.vsize());
    assert_eq!(
        s.chain.submit(parent.clone()),
        Err(Reject::MempoolMinFee { fee: 0, needed })
    );
    // Its child alone has no parent to spend.
    let child = s.child(&parent, 5_000);
    assert!(matches!(
        s.chain.submit(child),
        Err(Reject::MissingInput(o)) if o.txid == parent.compute_txid()
    ));
    assert!(s.chain.mempool().is_empty());
    // Mining takes nothing.
    s.chain.mine(1);
    assert!(block_txids(&s.chain, s.chain.height()).is_empty());
}

#[test]
fn a_package_is_accepted_and_mined_together() {
    let mut s = scene(floor_policy());
    let parent = s.parent(0);
    let child = s.child(&parent, 5_000);
    assert!(5_000 >= fee_for(FLOOR, package_vsize(&parent, &child)));
    let (ptxid, ctxid) = s
        .chain
        .submit_package(parent.clone(), child.clone())
        .expect("the child pays for both");
    assert_eq!(ptxid, parent.compute_txid());
    assert_eq!(ctxid, child.compute_txid());
    assert!(s.chain.in_mempool(&ptxid) && s.chain.in_mempool(&ctxid));
    assert!(s.chain.needs_child(&ptxid));
    assert!(!s.chain.needs_child(&ctxid));
    assert_eq!(s.chain.mempool_fee(&ptxid), Some(0));
    assert_eq!(s.chain.mempool_fee(&ctxid), Some(5_000));
    // Submitting it again changes nothing.
    assert_eq!(
        s.chain.submit_package(parent.clone(), child.clone()),
        Ok((ptxid, ctxid))
    );
    assert!(s.chain.refused().is_empty());

    s.chain.mine(1);
    let height = s.chain.height();
    assert_eq!(block_txids(&s.chain, height), vec![ptxid, ctxid]);
    assert_eq!(s.chain.confirmed_at(&ptxid), Some((height, 1)));
    assert_eq!(s.chain.confirmed_at(&ctxid), Some((height, 2)));
    assert!(s.chain.mempool().is_empty());
    assert!(s.chain.is_spent(&s.commitment_coin));
    assert!(s.chain.is_spent(&s.wallet_coin));
}

#[test]
fn a_child_too_cheap_for_the_package_is_refused() {
    let mut s = scene(floor_policy());
    let parent = s.parent(0);
    // 1 sat/vB on its own size: enough to relay alone, not enough for both at 5 sat/vB.
    let cheap_fee = 300;
    let child = s.child(&parent, cheap_fee);
    assert!(cheap_fee >= fee_for(1_000, child.vsize()));
    let needed = fee_for(FLOOR, package_vsize(&parent, &child));
    assert!(cheap_fee < needed);
    assert_eq!(
        s.chain.submit_package(parent.clone(), child.clone()),
        Err(Reject::PackageFeerateTooLow {
            fee: cheap_fee,
            needed
        })
    );
    assert!(s.chain.mempool().is_empty());
    assert_eq!(
        s.chain.rejected().last(),
        Some(&(
            child.compute_txid(),
            Reject::PackageFeerateTooLow {
                fee: cheap_fee,
                needed
            }
        ))
    );
    // Exactly the floor is enough.
    let child = s.child(&parent, needed);
    s.chain
        .submit_package(parent, child)
        .expect("the package meets the floor exactly");
}

#[test]
fn a_child_is_replaced_only_by_one_paying_more() {
    let mut s = scene(floor_policy());
    let parent = s.parent(0);
    let ptxid = parent.compute_txid();
    let first = s.child(&parent, 3_000);
    let first_txid = first.compute_txid();
    s.chain
        .submit_package(parent.clone(), first.clone())
        .expect("package");

    // Lower fee: a lower feerate than the child it would replace (BIP 125 rule 6).
    let lower = s.child(&parent, 2_500);
    assert_eq!(
        s.chain.submit_package(parent.clone(), lower.clone()),
        Err(Reject::ReplacementFeerateTooLow {
            conflict: first_txid
        })
    );
    // Ten satoshis more: a higher feerate (signatures may differ by a byte), but not the
    // incremental relay fee on its own size on top (rules 3 and 4).
    let barely = s.child(&parent, 3_010);
    assert_eq!(
        s.chain.submit(barely.clone()),
        Err(Reject::ReplacementFeeTooLow {
            conflicts: vec![first_txid],
            fee: 3_010,
            needed: 3_000 + fee_for(1_000, barely.vsize()),
        })
    );
    assert!(s.chain.in_mempool(&first_txid));

    // Another child, of the parent's other output, paying its own way but not the parent's:
    // counted with the parent it spends, it is below the floor.
    let bob_out = OutPoint {
        txid: ptxid,
        vout: 0,
    };
    let bob_value = VALUE - ANCHOR;
    let probe = signed(
        &[(bob_out, Spend::P2wpkh(bob_value, &s.bob))],
        vec![out(&s.bob.script, bob_value - 1_000)],
    );
    let own_fee = fee_for(FLOOR, probe.vsize());
    let sibling = signed(
        &[(bob_out, Spend::P2wpkh(bob_value, &s.bob))],
        vec![out(&s.bob.script, bob_value - own_fee)],
    );
    assert_eq!(
        s.chain.submit(sibling.clone()),
        Err(Reject::MempoolMinFee {
            fee: own_fee,
            needed: fee_for(FLOOR, parent.vsize() + sibling.vsize()),
        })
    );

    // Enough more: the CPFP re-bump, as a package whose parent the mempool already has.
    let bumped_fee = 3_000 + fee_for(1_000, first.vsize()) + 100;
    let bumped = s.child(&parent, bumped_fee);
    let bumped_txid = bumped.compute_txid();
    assert_eq!(
        s.chain.submit_package(parent.clone(), bumped.clone()),
        Ok((ptxid, bumped_txid))
    );
    assert!(!s.chain.in_mempool(&first_txid));
    assert!(s
        .chain
        .dropped()
        .contains(&(first_txid, DropReason::Replaced { by: bumped_txid })));
    // The parent stays, with its new child.
    assert!(s.chain.needs_child(&ptxid));
    assert_eq!(
        s.chain.mempool_spender_of(&OutPoint {
            txid: ptxid,
            vout: 1
        }),
        Some(bumped_txid)
    );
    // A re-bump by plain `submit` follows the same rules.
    let again_fee = bumped_fee + fee_for(1_000, bumped.vsize()) + 100;
    let again = s.child(&parent, again_fee);
    let again_txid = s.chain.submit(again).expect("pays more again");
    assert!(!s.chain.in_mempool(&bumped_txid));

    s.chain.mine(1);
    assert_eq!(
        block_txids(&s.chain, s.chain.height()),
        vec![ptxid, again_txid]
    );
}

#[test]
fn a_parent_whose_child_is_replaced_away_leaves_with_it() {
    let mut s = scene(floor_policy());
    let parent = s.parent(0);
    let ptxid = parent.compute_txid();
    let child = s.child(&parent, 3_000);
    let ctxid = child.compute_txid();
    s.chain.submit_package(parent, child).expect("package");

    // Carol double-spends her wallet coin elsewhere, paying more: the child is replaced by a
    // transaction that does not spend the parent, so nothing pays for the parent any more.
    let elsewhere = signed(
        &[(s.wallet_coin, Spend::P2wpkh(VALUE, &s.carol))],
        vec![out(&s.bob.script, VALUE - 10_000)],
    );
    let etxid = s.chain.submit(elsewhere).expect("pays more than the child");
    assert!(!s.chain.in_mempool(&ctxid));
    assert!(!s.chain.in_mempool(&ptxid));
    assert!(s.chain.dropped().contains(&(ptxid, DropReason::Unpaid)));
    s.chain.mine(1);
    assert_eq!(block_txids(&s.chain, s.chain.height()), vec![etxid]);
    assert!(!s.chain.is_spent(&s.commitment_coin));
}

#[test]
fn a_parent_whose_child_a_block_conflicts_is_not_mined() {
    let mut s = scene(floor_policy());
    let parent = s.parent(0);
    let ptxid = parent.compute_txid();
    let child = s.child(&parent, 3_000);
    s.chain.submit_package(parent, child).expect("package");

    // A miner confirms a conflicting spend of Carol's wallet coin (sent to it privately).
    let conflicting = signed(
        &[(s.wallet_coin, Spend::P2wpkh(VALUE, &s.carol))],
        vec![out(&s.bob.script, VALUE - 1_000)],
    );
    s.chain
        .mine_block_with(vec![conflicting])
        .expect("consensus-valid");
    assert!(!s.chain.in_mempool(&ptxid));
    assert!(s.chain.dropped().contains(&(ptxid, DropReason::Unpaid)));
    s.chain.mine(1);
    assert!(block_txids(&s.chain, s.chain.height()).is_empty());
    assert!(!s.chain.is_spent(&s.commitment_coin));
}

#[test]
fn a_standalone_transaction_below_the_floor_is_refused() {
    let mut s = scene(floor_policy());
    // 2 sat/vB: above the relay floor, below the mempool's.
    let probe = s.parent(1_000);
    let low_fee = fee_for(2_000, probe.vsize());
    let low = s.parent(low_fee);
    assert_eq!(
        s.chain.submit(low.clone()),
        Err(Reject::MempoolMinFee {
            fee: low_fee,
            needed: fee_for(FLOOR, low.vsize())
        })
    );
    // At the floor it is accepted alone, and needs no child.
    let ok_fee = fee_for(FLOOR, probe.vsize());
    let ok = s.parent(ok_fee);
    let txid = s.chain.submit(ok).expect("meets the floor");
    assert!(!s.chain.needs_child(&txid));
    s.chain.mine(1);
    assert_eq!(s.chain.confirmations(&txid), 1);
}

#[test]
fn a_package_replaces_a_conflict_only_paying_more() {
    let mut s = scene(floor_policy());
    // Alice's coin is already spent in the mempool, at 20 sat/vB.
    let probe = s.parent(1_000);
    let old_fee = fee_for(20_000, probe.vsize());
    let old = s.parent(old_fee);
    let old_txid = s.chain.submit(old).expect("meets the floor");
    // A zero-fee version of it with a child: the package must pay the old fee plus the relay
    // fee on the package's size, at a higher feerate. Above the floor but at a lower feerate
    // than the transaction it would replace: refused.
    let parent = s.parent(0);
    let cheap_child = s.child(&parent, old_fee + 500);
    assert!(old_fee + 500 >= fee_for(FLOOR, package_vsize(&parent, &cheap_child)));
    assert_eq!(
        s.chain.submit_package(parent.clone(), cheap_child),
        Err(Reject::ReplacementFeerateTooLow { conflict: old_txid })
    );
    assert!(s.chain.in_mempool(&old_txid));
    let child = s.child(&parent, 4 * old_fee);
    let (ptxid, ctxid) = s
        .chain
        .submit_package(parent, child)
        .expect("the package pays more");
    assert!(!s.chain.in_mempool(&old_txid));
    assert!(s
        .chain
        .dropped()
        .contains(&(old_txid, DropReason::Replaced { by: ctxid })));
    s.chain.mine(1);
    assert_eq!(block_txids(&s.chain, s.chain.height()), vec![ptxid, ctxid]);
}

#[test]
fn without_a_mempool_floor_the_old_rules_hold() {
    let mut s = scene(Policy::default());
    let parent = s.parent(0);
    assert_eq!(s.chain.submit(parent.clone()), Err(Reject::ZeroFee));
    // 1 sat/vB alone is enough.
    let probe = s.parent(1_000);
    let low = s.parent(fee_for(1_000, probe.vsize()));
    let mut plain = s.chain.clone();
    plain
        .submit(low)
        .expect("1 sat/vB relays without a mempool floor");
    // With zero-fee relay, the zero-fee parent enters and is mined alone, as before.
    s.chain.set_policy(Policy {
        allow_zero_fee: true,
        ..Policy::default()
    });
    let ptxid = s.chain.submit(parent).expect("zero fee allowed");
    assert!(!s.chain.needs_child(&ptxid));
    s.chain.mine(1);
    assert_eq!(block_txids(&s.chain, s.chain.height()), vec![ptxid]);
}

#[test]
fn package_relay_works_without_a_mempool_floor() {
    // No mempool floor and no zero-fee relay: the package meets the relay floor together.
    let mut s = scene(Policy::default());
    let parent = s.parent(0);
    let child = s.child(
        &parent,
        fee_for(1_000, package_vsize(&parent, &s.child(&parent, 1))),
    );
    let (ptxid, ctxid) = s.chain.submit_package(parent, child).expect("1 sat/vB");
    assert!(s.chain.needs_child(&ptxid));
    s.chain.mine(1);
    assert_eq!(block_txids(&s.chain, s.chain.height()), vec![ptxid, ctxid]);
}

#[test]
fn a_reorg_returns_a_package_to_the_mempool_whole() {
    let mut s = scene(floor_policy());
    let parent = s.parent(0);
    let child = s.child(&parent, 5_000);
    let (ptxid, ctxid) = s.chain.submit_package(parent, child).expect("package");
    s.chain.mine(1);
    let height = s.chain.height();
    assert_eq!(block_txids(&s.chain, height), vec![ptxid, ctxid]);

    s.chain.disconnect(1);
    assert!(s.chain.in_mempool(&ptxid) && s.chain.in_mempool(&ctxid));
    assert!(s.chain.needs_child(&ptxid));
    assert!(s.chain.dropped().is_empty());
    s.chain.mine(1);
    assert_eq!(block_txids(&s.chain, height), vec![ptxid, ctxid]);

    // A longer branch without them: back in the mempool, then mined together again.
    s.chain.reorg(1, vec![vec![], vec![]]).expect("reorg");
    assert!(s.chain.in_mempool(&ptxid) && s.chain.in_mempool(&ctxid));
    s.chain.mine(1);
    assert_eq!(block_txids(&s.chain, s.chain.height()), vec![ptxid, ctxid]);
}

#[test]
fn malformed_packages_are_refused() {
    let mut s = scene(floor_policy());
    let parent = s.parent(0);
    // A "child" that does not spend the parent.
    let unrelated = signed(
        &[(s.wallet_coin, Spend::P2wpkh(VALUE, &s.carol))],
        vec![out(&s.bob.script, VALUE - 10_000)],
    );
    assert_eq!(
        s.chain.submit_package(parent.clone(), unrelated),
        Err(Reject::NotParentChild)
    );
    // The parent as its own child.
    assert_eq!(
        s.chain.submit_package(parent.clone(), parent.clone()),
        Err(Reject::NotParentChild)
    );
    // A child spending the parent and the parent's own input.
    let anchor = OutPoint {
        txid: parent.compute_txid(),
        vout: 1,
    };
    let double = signed(
        &[
            (anchor, Spend::P2wpkh(ANCHOR, &s.carol)),
            (s.commitment_coin, Spend::P2wsh(VALUE, &s.alice)),
        ],
        vec![out(&s.bob.script, VALUE)],
    );
    assert_eq!(
        s.chain.submit_package(parent.clone(), double),
        Err(Reject::NotParentChild)
    );
    // A child spending a parent output that does not exist.
    let missing = OutPoint {
        txid: parent.compute_txid(),
        vout: 7,
    };
    let ghost = signed(
        &[(missing, Spend::P2wpkh(ANCHOR, &s.carol))],
        vec![out(&s.bob.script, 5_000)],
    );
    assert_eq!(
        s.chain.submit_package(parent.clone(), ghost),
        Err(Reject::MissingInput(missing))
    );
    // A wrongly signed child: consensus refuses it, and the parent with it.
    let mut forged = s.child(&parent, 5_000);
    forged.input[1].witness = Witness::from_slice(&[vec![0x30; 71], vec![0x02; 33]]);
    assert!(matches!(
        s.chain.submit_package(parent.clone(), forged),
        Err(Reject::Script { input: 1, .. })
    ));
    // A wrongly signed parent.
    let mut bad_parent = parent.clone();
    bad_parent.output[0].value = Amount::from_sat(VALUE - ANCHOR - 1);
    let child = s.child(&bad_parent, 5_000);
    assert!(matches!(
        s.chain.submit_package(bad_parent, child),
        Err(Reject::Script { input: 0, .. })
    ));
    assert!(s.chain.mempool().is_empty());
}

#[test]
fn an_absurd_floor_refuses_everything_without_overflow() {
    let mut s = scene(Policy {
        mempool_min_sat_per_kvb: Some(u64::MAX),
        ..Policy::default()
    });
    let parent = s.parent(1_000);
    assert!(matches!(
        s.chain.submit(parent.clone()),
        Err(Reject::MempoolMinFee { fee: 1_000, .. })
    ));
    let parent = s.parent(0);
    let child = s.child(&parent, 5_000);
    assert!(matches!(
        s.chain.submit_package(parent, child),
        Err(Reject::PackageFeerateTooLow { fee: 5_000, .. })
    ));
    assert!(s.chain.mempool().is_empty());
}
