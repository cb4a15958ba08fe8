//! The validating test chain (`lnshard_testkit::chain`): what it accepts, what it refuses and
//! why, mining, and reorgs. Every signature here is real (secp256k1, BIP 143 sighashes) and
//! every script is checked by libbitcoinconsensus.

use lightning_core::bitcoin::absolute::LockTime;
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::opcodes::all::{OP_CHECKSIG, OP_CSV, OP_DROP};
use lightning_core::bitcoin::script::Builder;
use lightning_core::bitcoin::sighash::{EcdsaSighashType, SighashCache};
use lightning_core::bitcoin::transaction::Version;
use lightning_core::bitcoin::{
    Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use lightning_core::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use lnshard_testkit::chain::{DropReason, Policy, Reject, ReorgError, ValidatingChain};
use lnshard_testkit::secret;

/// A P2WPKH key and its script.
struct Wallet {
    key: SecretKey,
    pubkey: PublicKey,
    script: ScriptBuf,
}

fn wallet(tag: &[u8]) -> Wallet {
    let secp = Secp256k1::new();
    let key = secret(tag);
    let pubkey = PublicKey::from_secret_key(&secp, &key);
    let script = ScriptBuf::new_p2wpkh(&CompressedPublicKey(pubkey).wpubkey_hash());
    Wallet {
        key,
        pubkey,
        script,
    }
}

/// A transaction spending `inputs` (with `sequence`) to `outputs`, unsigned.
fn unsigned(
    inputs: &[OutPoint],
    sequence: Sequence,
    lock_time: LockTime,
    outputs: Vec<TxOut>,
) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time,
        input: inputs
            .iter()
            .map(|o| TxIn {
                previous_output: *o,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    }
}

fn out(script: &ScriptBuf, value: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(value),
        script_pubkey: script.clone(),
    }
}

/// Signs input `index` of `tx`, a P2WPKH output of `value` owned by `signer`.
fn sign_p2wpkh(tx: &mut Transaction, index: usize, value: u64, signer: &Wallet) {
    let secp = Secp256k1::new();
    let sighash = SighashCache::new(&*tx)
        .p2wpkh_signature_hash(
            index,
            &signer.script,
            Amount::from_sat(value),
            EcdsaSighashType::All,
        )
        .expect("input exists");
    let sig = secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &signer.key);
    let mut der = sig.serialize_der().to_vec();
    der.push(EcdsaSighashType::All as u8);
    tx.input[index].witness = Witness::from_slice(&[der, signer.pubkey.serialize().to_vec()]);
}

/// A signed spend of `coin` (P2WPKH of `value` owned by `from`) paying `value - fee` to `to`.
fn spend(coin: OutPoint, value: u64, from: &Wallet, to: &ScriptBuf, fee: u64) -> Transaction {
    let mut tx = unsigned(
        &[coin],
        Sequence::ENABLE_RBF_NO_LOCKTIME,
        LockTime::ZERO,
        vec![out(to, value - fee)],
    );
    sign_p2wpkh(&mut tx, 0, value, from);
    tx
}

const VALUE: u64 = 100_000;

#[test]
fn signed_spend_is_accepted_and_mined() {
    let mut chain = ValidatingChain::new();
    assert_eq!(chain.height(), 0);
    let alice = wallet(b"alice");
    let bob = wallet(b"bob");
    let coin = chain.fund(alice.script.clone(), VALUE);
    assert_eq!(chain.height(), 1);
    assert!(chain.is_funding(&coin.txid));
    assert_eq!(chain.confirmations(&coin.txid), 1);
    assert_eq!(chain.utxo(&coin).map(|o| o.value.to_sat()), Some(VALUE));

    let tx = spend(coin, VALUE, &alice, &bob.script, 1_000);
    let txid = chain
        .submit(tx.clone())
        .expect("a correctly signed spend is accepted");
    assert!(chain.in_mempool(&txid));
    assert_eq!(chain.mempool_fee(&txid), Some(1_000));
    assert_eq!(chain.mempool_spender_of(&coin), Some(txid));
    // Submitting it again is not a refusal.
    assert_eq!(chain.submit(tx.clone()), Ok(txid));

    let blocks = chain.mine(1);
    assert_eq!(blocks.len(), 1);
    let block = &blocks[0];
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    // BIP 34, encoded as Bitcoin Core does (`CScript() << height`: OP_2 here).
    let height_push = Builder::new().push_int(2).into_script();
    assert!(block.txdata[0].is_coinbase());
    assert!(block.txdata[0].input[0]
        .script_sig
        .as_bytes()
        .starts_with(height_push.as_bytes()));
    assert_eq!(
        block.header.prev_blockhash,
        chain.block(1).unwrap().block_hash()
    );
    assert_eq!(block.block_hash(), chain.tip());
    assert!(block.header.validate_pow(block.header.target()).is_ok());
    assert_eq!(block.txdata[1], tx);
    assert_eq!(chain.confirmed_at(&txid), Some((2, 1)));
    assert_eq!(chain.confirmations(&txid), 1);
    assert!(!chain.in_mempool(&txid));
    assert!(chain.is_spent(&coin));
    assert_eq!(chain.spender_of(&coin), Some(txid));
    assert_eq!(chain.utxo(&coin), None);
    let paid = OutPoint { txid, vout: 0 };
    assert_eq!(
        chain.utxo(&paid).map(|o| o.value.to_sat()),
        Some(VALUE - 1_000)
    );
    assert_eq!(chain.get_tx(&txid), Some(&tx));
    chain.mine(2);
    assert_eq!(chain.confirmations(&txid), 3);
    // Rebroadcasting a confirmed transaction is refused, harmlessly.
    assert_eq!(
        chain.submit(tx),
        Err(Reject::AlreadyConfirmed { height: 2 })
    );
    assert!(chain.refused().is_empty(), "{:?}", chain.rejected());
}

#[test]
fn wrongly_signed_spend_is_refused_by_consensus() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let mallory = wallet(b"mallory");
    let coin = chain.fund(alice.script.clone(), VALUE);

    // Signed by the wrong key (its pubkey does not hash to the output's).
    let mut wrong_key = unsigned(
        &[coin],
        Sequence::MAX,
        LockTime::ZERO,
        vec![out(&mallory.script, VALUE - 1_000)],
    );
    sign_p2wpkh(&mut wrong_key, 0, VALUE, &mallory);
    assert!(matches!(
        chain.submit(wrong_key.clone()),
        Err(Reject::Script { input: 0, .. })
    ));

    // The right key, but the signature commits to another amount (BIP 143).
    let mut wrong_amount = unsigned(
        &[coin],
        Sequence::MAX,
        LockTime::ZERO,
        vec![out(&mallory.script, VALUE - 1_000)],
    );
    sign_p2wpkh(&mut wrong_amount, 0, VALUE + 1, &alice);
    assert!(matches!(
        chain.submit(wrong_amount),
        Err(Reject::Script { input: 0, .. })
    ));

    // A valid signature, then the outputs changed.
    let mut tampered = spend(coin, VALUE, &alice, &alice.script, 1_000);
    tampered.output[0].script_pubkey = mallory.script.clone();
    assert!(matches!(
        chain.submit(tampered),
        Err(Reject::Script { input: 0, .. })
    ));

    // Not even a miner can include it.
    let wrong_txid = wrong_key.compute_txid();
    assert!(matches!(
        chain.mine_block_with(vec![wrong_key]),
        Err((txid, Reject::Script { .. })) if txid == wrong_txid
    ));
    assert_eq!(chain.height(), 1);
    assert_eq!(chain.rejected().len(), 3);
    assert!(chain.mempool().is_empty());
    assert!(chain.utxo(&coin).is_some());
}

#[test]
fn double_spends_are_refused() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let bob = wallet(b"bob");
    let carol = wallet(b"carol");
    let coin = chain.fund(alice.script.clone(), VALUE);

    let first = spend(coin, VALUE, &alice, &bob.script, 1_000);
    let first_txid = chain.submit(first).unwrap();
    // Same fee: not a replacement.
    let same_fee = spend(coin, VALUE, &alice, &carol.script, 1_000);
    assert_eq!(
        chain.submit(same_fee),
        Err(Reject::ReplacementFeerateTooLow {
            conflict: first_txid
        })
    );
    chain.mine(1);
    // Once confirmed, any other spend of the coin is refused whatever its fee.
    let late = spend(coin, VALUE, &alice, &carol.script, 50_000);
    assert_eq!(
        chain.submit(late),
        Err(Reject::InputSpent {
            outpoint: coin,
            by: first_txid
        })
    );
    // A spend of a coin that never existed.
    let ghost = OutPoint {
        txid: Txid::all_zeros(),
        vout: 7,
    };
    let made_up = spend(ghost, VALUE, &alice, &carol.script, 1_000);
    assert_eq!(chain.submit(made_up), Err(Reject::MissingInput(ghost)));
    // Two inputs naming the same coin.
    let mut twice = unsigned(
        &[OutPoint {
            txid: first_txid,
            vout: 0,
        }; 2],
        Sequence::MAX,
        LockTime::ZERO,
        vec![out(&carol.script, 10_000)],
    );
    sign_p2wpkh(&mut twice, 0, VALUE - 1_000, &bob);
    assert_eq!(
        chain.submit(twice),
        Err(Reject::Malformed("duplicate input"))
    );
    assert_eq!(chain.rejected().len(), 4);
}

#[test]
fn replacement_paying_more_is_accepted() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let bob = wallet(b"bob");
    let carol = wallet(b"carol");
    let coin = chain.fund(alice.script.clone(), VALUE);

    let original = spend(coin, VALUE, &alice, &bob.script, 1_000);
    let original_txid = chain.submit(original.clone()).unwrap();
    // A child of the original (CPFP-style), spending its unconfirmed output.
    let child = spend(
        OutPoint {
            txid: original_txid,
            vout: 0,
        },
        VALUE - 1_000,
        &bob,
        &carol.script,
        1_000,
    );
    let child_txid = chain.submit(child).unwrap();

    // A higher feerate but not paying for both evicted transactions plus its own relay.
    let stingy = spend(coin, VALUE, &alice, &carol.script, 1_500);
    assert!(matches!(
        chain.submit(stingy),
        Err(Reject::ReplacementFeeTooLow { fee: 1_500, needed, .. }) if needed > 2_000
    ));
    // Enough: the original and its child go.
    let bumped = spend(coin, VALUE, &alice, &carol.script, 3_000);
    let bumped_txid = chain.submit(bumped).expect("a replacement paying more");
    assert!(chain.in_mempool(&bumped_txid));
    assert!(!chain.in_mempool(&original_txid));
    assert!(!chain.in_mempool(&child_txid));
    assert_eq!(
        chain.dropped(),
        &[
            (original_txid, DropReason::Replaced { by: bumped_txid }),
            (child_txid, DropReason::Replaced { by: bumped_txid }),
        ]
    );
    // The original cannot come back at its old fee.
    assert!(matches!(
        chain.submit(original),
        Err(Reject::ReplacementFeerateTooLow { conflict }) if conflict == bumped_txid
    ));
    chain.mine(1);
    assert_eq!(chain.spender_of(&coin), Some(bumped_txid));
}

#[test]
fn child_and_parent_confirm_in_one_block() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let bob = wallet(b"bob");
    let coin = chain.fund(alice.script.clone(), VALUE);
    let parent = spend(coin, VALUE, &alice, &bob.script, 1_000);
    let parent_txid = chain.submit(parent).unwrap();
    let child = spend(
        OutPoint {
            txid: parent_txid,
            vout: 0,
        },
        VALUE - 1_000,
        &bob,
        &alice.script,
        1_000,
    );
    let child_txid = chain.submit(child).unwrap();
    let block = &chain.mine(1)[0];
    let order: Vec<Txid> = block.txdata[1..].iter().map(|t| t.compute_txid()).collect();
    assert_eq!(order, vec![parent_txid, child_txid]);
}

/// `<blocks> OP_CSV OP_DROP <key> OP_CHECKSIG`.
fn csv_script(blocks: u16, key: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_int(i64::from(blocks))
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_slice(key.serialize())
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// Spends a P2WSH `csv_script` coin with `sequence`.
fn spend_csv(
    coin: OutPoint,
    value: u64,
    witness_script: &ScriptBuf,
    owner: &Wallet,
    sequence: Sequence,
    to: &ScriptBuf,
) -> Transaction {
    let secp = Secp256k1::new();
    let mut tx = unsigned(
        &[coin],
        sequence,
        LockTime::ZERO,
        vec![out(to, value - 1_000)],
    );
    let sighash = SighashCache::new(&tx)
        .p2wsh_signature_hash(
            0,
            witness_script,
            Amount::from_sat(value),
            EcdsaSighashType::All,
        )
        .unwrap();
    let sig = secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &owner.key);
    let mut der = sig.serialize_der().to_vec();
    der.push(EcdsaSighashType::All as u8);
    tx.input[0].witness = Witness::from_slice(&[der, witness_script.to_bytes()]);
    tx
}

#[test]
fn csv_locked_output_waits_for_its_confirmations() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    const DELAY: u16 = 5;
    let witness_script = csv_script(DELAY, &alice.pubkey);
    let coin = chain.fund(witness_script.to_p2wsh(), VALUE);
    let coin_height = chain.height();

    // A sequence too small for the script: the script itself (OP_CSV) fails.
    let short = spend_csv(
        coin,
        VALUE,
        &witness_script,
        &alice,
        Sequence::from_height(DELAY - 1),
        &alice.script,
    );
    chain.mine(u32::from(DELAY));
    assert!(matches!(
        chain.submit(short),
        Err(Reject::Script { input: 0, .. })
    ));

    // Let a fresh coin be: the right sequence, too early (BIP 68).
    let coin = chain.fund(witness_script.to_p2wsh(), VALUE);
    let coin_height2 = chain.height();
    assert!(coin_height2 > coin_height);
    let tx = spend_csv(
        coin,
        VALUE,
        &witness_script,
        &alice,
        Sequence::from_height(DELAY),
        &alice.script,
    );
    // Confirmed at h, spendable in block h + DELAY: the next block is h + 1 .. h + DELAY - 1.
    for _ in 1..DELAY {
        let next = chain.height() + 1;
        assert_eq!(
            chain.submit(tx.clone()),
            Err(Reject::RelativeLockTime {
                input: 0,
                sequence: Sequence::from_height(DELAY),
                coin_height: coin_height2,
                height: next,
            })
        );
        chain.mine(1);
    }
    assert_eq!(chain.height() + 1, coin_height2 + u32::from(DELAY));
    let txid = chain.submit(tx).expect("CSV delay reached");
    chain.mine(1);
    assert_eq!(
        chain.confirmed_at(&txid).map(|c| c.0),
        Some(coin_height2 + u32::from(DELAY))
    );
    assert_eq!(chain.rejected().len(), DELAY as usize);
}

#[test]
fn future_locktime_waits() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let coin = chain.fund(alice.script.clone(), VALUE);
    let unlock = chain.height() + 3;
    let mut tx = unsigned(
        &[coin],
        Sequence::ENABLE_RBF_NO_LOCKTIME,
        LockTime::from_height(unlock).unwrap(),
        vec![out(&alice.script, VALUE - 1_000)],
    );
    sign_p2wpkh(&mut tx, 0, VALUE, &alice);
    // The next block (height() + 1) must be above the locktime.
    while chain.height() < unlock {
        assert_eq!(
            chain.submit(tx.clone()),
            Err(Reject::NonFinal {
                lock_time: tx.lock_time,
                height: chain.height() + 1
            })
        );
        chain.mine(1);
    }
    let txid = chain.submit(tx).expect("locktime reached");
    chain.mine(1);
    assert_eq!(chain.confirmations(&txid), 1);

    // A time-based locktime in the past (a commitment's obscured locktime) is final.
    let coin = chain.fund(alice.script.clone(), VALUE);
    let mut commitment_like = unsigned(
        &[coin],
        Sequence::from_consensus(0x8000_1234),
        LockTime::from_consensus(0x2012_3456),
        vec![out(&alice.script, VALUE - 1_000)],
    );
    sign_p2wpkh(&mut commitment_like, 0, VALUE, &alice);
    chain
        .submit(commitment_like)
        .expect("a past time lock is final");
}

#[test]
fn dust_and_low_fees_are_refused() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let coin = chain.fund(alice.script.clone(), VALUE);

    // P2WPKH dust threshold is 294 sat.
    let mut dusty = unsigned(
        &[coin],
        Sequence::MAX,
        LockTime::ZERO,
        vec![out(&alice.script, VALUE - 2_000), out(&alice.script, 293)],
    );
    sign_p2wpkh(&mut dusty, 0, VALUE, &alice);
    assert_eq!(
        chain.submit(dusty),
        Err(Reject::Dust {
            vout: 1,
            value: 293,
            threshold: 294
        })
    );

    // A 330-sat anchor (P2WSH) is not dust.
    let anchor_script = Builder::new()
        .push_slice(alice.pubkey.serialize())
        .push_opcode(OP_CHECKSIG)
        .into_script()
        .to_p2wsh();
    let mut with_anchor = unsigned(
        &[coin],
        Sequence::MAX,
        LockTime::ZERO,
        vec![out(&alice.script, VALUE - 2_000), out(&anchor_script, 330)],
    );
    sign_p2wpkh(&mut with_anchor, 0, VALUE, &alice);
    assert_eq!(anchor_script.minimal_non_dust().to_sat(), 330);

    // Below 1 sat/vB.
    let mut cheap = spend(coin, VALUE, &alice, &alice.script, 1);
    let cheap_vsize = cheap.vsize() as u64;
    assert!(matches!(
        chain.submit(cheap.clone()),
        Err(Reject::FeeTooLow { fee: 1, needed }) if needed == cheap_vsize
    ));
    // Exactly 1 sat/vB is enough.
    cheap = spend(coin, VALUE, &alice, &alice.script, cheap_vsize);
    // No fee at all: refused unless the policy allows it.
    let free = spend(coin, VALUE, &alice, &alice.script, 0);
    assert_eq!(chain.submit(free.clone()), Err(Reject::ZeroFee));
    let mut lenient = chain.clone();
    lenient.set_policy(Policy {
        allow_zero_fee: true,
        ..Policy::default()
    });
    let free_txid = lenient
        .submit(free)
        .expect("zero fee allowed by the policy");
    lenient.mine(1);
    assert_eq!(lenient.confirmations(&free_txid), 1);

    chain.submit(cheap).expect("1 sat/vB");
    let anchor_txid = chain
        .submit(with_anchor)
        .expect("replaces the 1 sat/vB spend: the anchor output is not dust");
    chain.mine(1);
    assert_eq!(
        chain
            .utxo(&OutPoint {
                txid: anchor_txid,
                vout: 1
            })
            .map(|o| o.value.to_sat()),
        Some(330)
    );

    // Outputs above the inputs.
    let coin = chain.fund(alice.script.clone(), VALUE);
    let mut greedy = unsigned(
        &[coin],
        Sequence::MAX,
        LockTime::ZERO,
        vec![out(&alice.script, VALUE + 1)],
    );
    sign_p2wpkh(&mut greedy, 0, VALUE, &alice);
    assert_eq!(
        chain.submit(greedy),
        Err(Reject::OutputsExceedInputs {
            inputs: VALUE,
            outputs: VALUE + 1
        })
    );
    // A bare script output is non-standard.
    let mut bare = unsigned(
        &[coin],
        Sequence::MAX,
        LockTime::ZERO,
        vec![out(&csv_script(1, &alice.pubkey), VALUE - 1_000)],
    );
    sign_p2wpkh(&mut bare, 0, VALUE, &alice);
    assert_eq!(
        chain.submit(bare),
        Err(Reject::NonStandardOutput { vout: 0 })
    );
    // Heavier than 400 000 weight units.
    let data = Builder::new()
        .push_opcode(lightning_core::bitcoin::opcodes::all::OP_RETURN)
        .push_slice([7u8; 75])
        .into_script();
    let mut outputs = vec![out(&alice.script, VALUE - 10_000)];
    outputs.extend((0..1_200).map(|_| out(&data, 0)));
    let mut heavy = unsigned(&[coin], Sequence::MAX, LockTime::ZERO, outputs);
    sign_p2wpkh(&mut heavy, 0, VALUE, &alice);
    let weight = heavy.weight().to_wu();
    assert!(weight > 400_000);
    assert_eq!(chain.submit(heavy), Err(Reject::TooHeavy { weight }));
}

#[test]
fn disconnect_returns_spends_to_the_mempool_and_rolls_back_utxos() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let bob = wallet(b"bob");
    let coin = chain.fund(alice.script.clone(), VALUE);
    let tip_before = chain.tip();
    let tx = spend(coin, VALUE, &alice, &bob.script, 1_000);
    let txid = chain.submit(tx).unwrap();
    chain.mine(1);
    let paid = OutPoint { txid, vout: 0 };
    assert!(chain.utxo(&paid).is_some());

    let gone = chain.disconnect(1);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].txdata[1].compute_txid(), txid);
    assert_eq!(chain.height(), 1);
    assert_eq!(chain.tip(), tip_before);
    assert!(chain.in_mempool(&txid), "back in the mempool");
    assert_eq!(chain.confirmations(&txid), 0);
    assert_eq!(chain.utxo(&coin).map(|o| o.value.to_sat()), Some(VALUE));
    assert!(chain.utxo(&paid).is_none());
    assert!(!chain.is_spent(&coin));
    assert_eq!(chain.spender_of(&coin), None);

    // Mining again confirms it again, in a block with the same hash (deterministic).
    let again = chain.mine(1);
    assert_eq!(again[0].block_hash(), gone[0].block_hash());
    assert_eq!(chain.confirmations(&txid), 1);
}

#[test]
fn a_conflicting_spend_on_the_new_branch_replaces_the_confirmed_one() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let bob = wallet(b"bob");
    let carol = wallet(b"carol");
    let coin = chain.fund(alice.script.clone(), VALUE);
    // "Our commitment" confirms at h, with a child spending it.
    let ours = spend(coin, VALUE, &alice, &bob.script, 1_000);
    let ours_txid = chain.submit(ours).unwrap();
    chain.mine(1);
    let h = chain.height();
    let child = spend(
        OutPoint {
            txid: ours_txid,
            vout: 0,
        },
        VALUE - 1_000,
        &bob,
        &bob.script,
        1_000,
    );
    let child_txid = chain.submit(child).unwrap();
    chain.mine(2);
    let old_tip = chain.height();
    let old_tip_hash = chain.tip();
    assert_eq!(chain.confirmations(&ours_txid), 3);

    // "Theirs" confirms at h instead, on a longer branch.
    let theirs = spend(coin, VALUE, &alice, &carol.script, 500);
    let theirs_txid = theirs.compute_txid();
    let branch = chain
        .reorg_replacing(ours_txid, Some(theirs))
        .expect("a valid conflicting branch");
    assert_eq!(branch.len() as u32, old_tip - h + 2);
    assert_eq!(chain.height(), old_tip + 1);
    assert_ne!(chain.block(old_tip).unwrap().block_hash(), old_tip_hash);
    assert_eq!(chain.confirmed_at(&theirs_txid), Some((h, 1)));
    assert_eq!(chain.confirmations(&ours_txid), 0);
    assert!(!chain.in_mempool(&ours_txid));
    assert!(!chain.in_mempool(&child_txid));
    assert_eq!(chain.spender_of(&coin), Some(theirs_txid));
    assert!(chain
        .utxo(&OutPoint {
            txid: ours_txid,
            vout: 0
        })
        .is_none());
    // Broadcasting ours again is refused: its input is spent.
    assert_eq!(
        chain.submit(spend(coin, VALUE, &alice, &bob.script, 1_000)),
        Err(Reject::InputSpent {
            outpoint: coin,
            by: theirs_txid
        })
    );

    // The same through `reorg`: replace theirs by a third spend, by explicit blocks.
    let third = spend(coin, VALUE, &alice, &alice.script, 2_000);
    let third_txid = third.compute_txid();
    let depth = chain.height() - h + 1;
    let mut blocks = vec![vec![third]];
    blocks.resize(depth as usize + 1, Vec::new());
    assert_eq!(
        chain.reorg(depth, blocks[..depth as usize].to_vec()),
        Err(ReorgError::NotLonger {
            depth,
            blocks: depth as usize
        })
    );
    chain.reorg(depth, blocks).expect("a longer branch");
    assert_eq!(chain.confirmed_at(&third_txid), Some((h, 1)));
    assert_eq!(chain.spender_of(&coin), Some(third_txid));
    // Theirs went back to the mempool, then was dropped when the third confirmed.
    assert!(!chain.in_mempool(&theirs_txid));
    assert!(chain.dropped().iter().any(|(t, why)| *t == theirs_txid
        && *why
            == DropReason::Conflicted {
                outpoint: coin,
                by: third_txid
            }));

    // An invalid branch changes nothing.
    let before = chain.tip();
    let bogus = spend(coin, VALUE, &alice, &alice.script, 3_000);
    let bogus_txid = bogus.compute_txid();
    let err = chain.reorg(1, vec![vec![], vec![bogus]]).unwrap_err();
    assert!(matches!(err, ReorgError::Invalid { txid, .. } if txid == bogus_txid));
    assert_eq!(chain.tip(), before);
    assert_eq!(chain.spender_of(&coin), Some(third_txid));
}

#[test]
fn a_reorged_out_locktime_spend_waits_again() {
    // A transaction valid only from height h (nLockTime h - 1) confirmed at h: disconnecting
    // two blocks makes it non-final at the new tip, so it is dropped from the mempool.
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    let coin = chain.fund(alice.script.clone(), VALUE);
    chain.mine(3);
    let lock = chain.height();
    let mut tx = unsigned(
        &[coin],
        Sequence::ENABLE_RBF_NO_LOCKTIME,
        LockTime::from_height(lock).unwrap(),
        vec![out(&alice.script, VALUE - 1_000)],
    );
    sign_p2wpkh(&mut tx, 0, VALUE, &alice);
    let txid = chain.submit(tx).unwrap();
    chain.mine(1);
    chain.disconnect(2);
    assert!(!chain.in_mempool(&txid));
    assert!(matches!(
        chain.dropped().last(),
        Some((t, DropReason::Invalid(Reject::NonFinal { .. }))) if *t == txid
    ));
    assert!(chain.utxo(&coin).is_some());
}

#[test]
fn time_based_relative_locktime_uses_median_time_past() {
    let mut chain = ValidatingChain::new();
    let alice = wallet(b"alice");
    chain.mine(20);
    let coin = chain.fund(alice.script.clone(), VALUE);
    let c = chain.height();
    // 2 * 512 s: more than one 600 s block interval of median time past, less than two.
    let sequence = Sequence::from_512_second_intervals(2);
    let mut tx = unsigned(
        &[coin],
        sequence,
        LockTime::ZERO,
        vec![out(&alice.script, VALUE - 1_000)],
    );
    sign_p2wpkh(&mut tx, 0, VALUE, &alice);
    assert!(matches!(
        chain.submit(tx.clone()),
        Err(Reject::RelativeLockTime { height, .. }) if height == c + 1
    ));
    chain.mine(1);
    let txid = chain
        .submit(tx)
        .expect("1024 s of median time past have passed");
    chain.mine(1);
    assert_eq!(chain.confirmed_at(&txid).map(|c| c.0), Some(c + 2));
    assert_eq!(
        chain.median_time_past(c + 1) - chain.median_time_past(c - 1),
        1_200
    );
}
