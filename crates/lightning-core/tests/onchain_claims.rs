//! Claim transactions (BOLT 5) on real commitments, every one checked by libbitcoinconsensus.
//!
//! Two channels, `static_remotekey` and `anchors_zero_fee_htlc_tx`, between Alice ("us", the
//! funder) and Bob, with real keys from seeds and HTLCs both ways. Each commitment is signed
//! with both funding keys and verified against the funding output; then every
//! [`SpendPath`] claims the output it is meant for, and the claim is verified against the
//! outputs it spends, checked for standardness (weight, at least 1 sat/vbyte, no dust) and
//! for its expected weight (an upper bound, within a few bytes). Tampered claims (a wrong
//! key, a wrong preimage, an early locktime, a short sequence) are refused by consensus, and
//! inconsistent inputs by the builder with a typed error.

#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{
    CompressedPublicKey, EcdsaSighashType, OutPoint, ScriptBuf, Sequence, Transaction, TxOut, Txid,
    Witness,
};
use lightning_core::keys::{ChannelKeys, ChannelPublicKeys, CommitmentKeys};
use lightning_core::secrets::FIRST_INDEX;
use lightning_core::transactions::claims::{
    build_claim_tx, claim_weight, preimage_from_witness, ClaimError, ClaimInput, SpendPath,
    MAX_STANDARD_TX_WEIGHT,
};
use lightning_core::transactions::scripts::{
    funding_output, to_local_script, to_remote_anchors_script, to_remote_script_pubkey,
};
use lightning_core::transactions::sign::sign_segwit_v0_input;
use lightning_core::transactions::{
    build_commitment_tx, ChannelType, CommitmentParams, CommitmentTx, Htlc, HtlcDirection,
    HtlcOutput, HtlcTx, Side,
};
use lightning_core::types::PaymentPreimage;

// libbitcoinconsensus flags (bitcoinconsensus's constants, copied: the crate is reached only
// through `bitcoin`).
const VERIFY_P2SH: u32 = 1 << 0;
const VERIFY_DERSIG: u32 = 1 << 2;
const VERIFY_NULLDUMMY: u32 = 1 << 4;
const VERIFY_CHECKLOCKTIMEVERIFY: u32 = 1 << 9;
const VERIFY_CHECKSEQUENCEVERIFY: u32 = 1 << 10;
const VERIFY_WITNESS: u32 = 1 << 11;
const FLAGS: u32 = VERIFY_P2SH
    | VERIFY_DERSIG
    | VERIFY_NULLDUMMY
    | VERIFY_CHECKLOCKTIMEVERIFY
    | VERIFY_CHECKSEQUENCEVERIFY
    | VERIFY_WITNESS;

const CHANNEL_TYPES: [ChannelType; 2] = [
    ChannelType::StaticRemoteKey,
    ChannelType::AnchorsZeroFeeHtlcTx,
];
const FUNDING_SATOSHIS: u64 = 1_000_000;
/// The CSV on Alice's outputs (Bob's `to_self_delay`) and on Bob's.
const ALICE_DELAY: u16 = 144;
const BOB_DELAY: u16 = 120;
const COMMITMENT_FEERATE: u32 = 2500;
const CLAIM_FEERATE: u32 = 1000;
/// The current height a claim is built at (its anti-fee-sniping locktime).
const HEIGHT: u32 = 400;

fn hash(data: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(data).to_byte_array()
}

fn channel_keys(seed: u8) -> ChannelKeys {
    let key = |tag: u8| SecretKey::from_slice(&hash(&[seed, tag])).expect("a hash is a valid key");
    ChannelKeys {
        funding_key: key(1),
        revocation_base_key: key(2),
        payment_base_key: key(3),
        delayed_payment_base_key: key(4),
        htlc_base_key: key(5),
        commitment_seed: hash(&[seed, 6]),
    }
}

fn preimage(n: u8) -> PaymentPreimage {
    PaymentPreimage(hash(&[0xee, n]))
}

/// The HTLCs from Alice's point of view: two she offered, two she received.
fn alice_htlcs() -> Vec<Htlc> {
    let htlc = |direction, sat: u64, cltv_expiry, n| Htlc {
        direction,
        amount_msat: sat * 1000,
        cltv_expiry,
        payment_hash: preimage(n).payment_hash(),
    };
    vec![
        htlc(HtlcDirection::Offered, 50_000, 600, 1),
        htlc(HtlcDirection::Offered, 30_000, 610, 2),
        htlc(HtlcDirection::Received, 70_000, 620, 3),
        htlc(HtlcDirection::Received, 40_000, 630, 4),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Alice,
    Bob,
}

struct Channel {
    secp: Secp256k1<bitcoin::secp256k1::All>,
    channel_type: ChannelType,
    alice: ChannelKeys,
    bob: ChannelKeys,
    alice_pub: ChannelPublicKeys,
    bob_pub: ChannelPublicKeys,
    funding_outpoint: OutPoint,
    funding_txout: TxOut,
}

/// A built and signed commitment.
struct Commit {
    tx: CommitmentTx,
    signed: Transaction,
    owner: Who,
    per_commitment_point: PublicKey,
    per_commitment_secret: [u8; 32],
    to_self_delay: u16,
}

impl Commit {
    fn keys(&self) -> &CommitmentKeys {
        self.tx.keys()
    }

    fn txid(&self) -> Txid {
        self.signed.compute_txid()
    }

    fn outpoint(&self, vout: u32) -> OutPoint {
        OutPoint {
            txid: self.txid(),
            vout,
        }
    }

    fn value(&self, vout: u32) -> u64 {
        self.signed.output[vout as usize].value.to_sat()
    }

    fn to_local_script(&self) -> ScriptBuf {
        let keys = self.keys();
        to_local_script(
            &keys.revocation_key,
            self.to_self_delay,
            &keys.local_delayed_key,
        )
    }

    fn vout_of(&self, script_pubkey: &ScriptBuf) -> u32 {
        let index = self
            .signed
            .output
            .iter()
            .position(|o| &o.script_pubkey == script_pubkey)
            .expect("the output exists");
        u32::try_from(index).expect("few outputs")
    }

    fn to_local_vout(&self) -> u32 {
        self.vout_of(&self.to_local_script().to_p2wsh())
    }

    /// The HTLC output holding the HTLC with `preimage(n)`.
    fn htlc_output(&self, n: u8) -> &HtlcOutput {
        let hash = preimage(n).payment_hash();
        self.tx
            .htlc_outputs()
            .iter()
            .find(|o| o.htlc.payment_hash == hash)
            .expect("the htlc is untrimmed")
    }
}

impl Channel {
    fn new(channel_type: ChannelType) -> Channel {
        let secp = Secp256k1::new();
        let (alice, bob) = (channel_keys(1), channel_keys(2));
        let (alice_pub, bob_pub) = (alice.public_keys(&secp), bob.public_keys(&secp));
        let funding_txout = funding_output(
            &alice_pub.funding_pubkey,
            &bob_pub.funding_pubkey,
            FUNDING_SATOSHIS,
        );
        Channel {
            secp,
            channel_type,
            alice,
            bob,
            alice_pub,
            bob_pub,
            funding_outpoint: OutPoint {
                txid: Txid::from_byte_array(hash(b"funding")),
                vout: 1,
            },
            funding_txout,
        }
    }

    fn keys(&self, who: Who) -> &ChannelKeys {
        match who {
            Who::Alice => &self.alice,
            Who::Bob => &self.bob,
        }
    }

    /// `owner`'s commitment number `number`, with [`alice_htlcs`] and Alice holding 600,000
    /// sat, signed by both funding keys and verified against the funding output.
    fn commitment(&self, owner: Who, number: u64) -> Commit {
        let secp = &self.secp;
        let (owner_keys, owner_pub, other_pub, other_keys) = match owner {
            Who::Alice => (&self.alice, &self.alice_pub, &self.bob_pub, &self.bob),
            Who::Bob => (&self.bob, &self.bob_pub, &self.alice_pub, &self.alice),
        };
        let index = FIRST_INDEX - number;
        let per_commitment_secret = owner_keys.per_commitment_secret(index).expect("secret");
        let per_commitment_point = owner_keys.per_commitment_point(secp, index).expect("point");
        let keys = CommitmentKeys::derive(secp, &per_commitment_point, owner_pub, other_pub)
            .expect("keys");
        let mut htlcs = alice_htlcs();
        let (alice_msat, bob_msat) = (600_000_000, 210_000_000);
        let (to_local_msat, to_remote_msat, funder, to_self_delay) = match owner {
            Who::Alice => (alice_msat, bob_msat, Side::Local, ALICE_DELAY),
            Who::Bob => {
                for h in &mut htlcs {
                    h.direction = match h.direction {
                        HtlcDirection::Offered => HtlcDirection::Received,
                        HtlcDirection::Received => HtlcDirection::Offered,
                    };
                }
                (bob_msat, alice_msat, Side::Remote, BOB_DELAY)
            }
        };
        let tx = build_commitment_tx(&CommitmentParams {
            channel_type: self.channel_type,
            funding_outpoint: self.funding_outpoint,
            funding_satoshis: FUNDING_SATOSHIS,
            local_funding_pubkey: owner_pub.funding_pubkey,
            remote_funding_pubkey: other_pub.funding_pubkey,
            local_payment_basepoint: owner_pub.payment_basepoint,
            remote_payment_basepoint: other_pub.payment_basepoint,
            funder,
            commitment_number: number,
            to_local_msat,
            to_remote_msat,
            feerate_per_kw: COMMITMENT_FEERATE,
            dust_limit_satoshis: 546,
            to_self_delay,
            keys,
            htlcs: &htlcs,
        })
        .expect("commitment");
        assert_eq!(tx.htlc_outputs().len(), 4, "no htlc is trimmed");
        let signed = tx.finalize(
            &tx.sign(secp, &owner_keys.funding_key),
            &tx.sign(secp, &other_keys.funding_key),
        );
        let mut chain = Chain::default();
        chain.add_output(self.funding_outpoint, self.funding_txout.clone());
        chain
            .verify(&signed)
            .expect("the commitment spends the funding output");
        Commit {
            tx,
            signed,
            owner,
            per_commitment_point,
            per_commitment_secret,
            to_self_delay,
        }
    }

    /// `who`'s HTLC private key on `commit`.
    fn htlc_key(&self, who: Who, commit: &Commit) -> SecretKey {
        self.keys(who)
            .htlc_key(&self.secp, &commit.per_commitment_point)
            .expect("htlc key")
    }

    /// The second-stage transaction of `commit`'s HTLC `n`, signed by both sides (the owner
    /// with the preimage for an HTLC-success).
    fn second_stage(&self, commit: &Commit, n: u8) -> (HtlcTx, Transaction) {
        let output = commit.htlc_output(n);
        let htlc_tx = commit
            .tx
            .htlc_txs()
            .into_iter()
            .find(|t| t.commitment_output() == output)
            .expect("an htlc tx per untrimmed htlc");
        let other = match commit.owner {
            Who::Alice => Who::Bob,
            Who::Bob => Who::Alice,
        };
        let local = htlc_tx.sign_local(&self.secp, &self.htlc_key(commit.owner, commit));
        let remote = htlc_tx.sign_remote(&self.secp, &self.htlc_key(other, commit));
        let preimage = htlc_tx.is_success().then(|| preimage(n));
        let signed = htlc_tx
            .finalize(&remote, &local, preimage.as_ref())
            .expect("signed htlc tx");
        (htlc_tx, signed)
    }
}

/// The outputs claims may spend, by outpoint: the verifier's UTXO view.
#[derive(Default)]
struct Chain {
    utxos: HashMap<OutPoint, TxOut>,
}

impl Chain {
    fn add_output(&mut self, outpoint: OutPoint, txout: TxOut) {
        self.utxos.insert(outpoint, txout);
    }

    fn add_tx(&mut self, tx: &Transaction) {
        let txid = tx.compute_txid();
        for (vout, txout) in tx.output.iter().enumerate() {
            let vout = u32::try_from(vout).expect("few outputs");
            self.add_output(OutPoint { txid, vout }, txout.clone());
        }
    }

    fn with(txs: &[&Transaction]) -> Chain {
        let mut chain = Chain::default();
        for tx in txs {
            chain.add_tx(tx);
        }
        chain
    }

    /// libbitcoinconsensus's verdict on every input of `tx`.
    fn verify(
        &self,
        tx: &Transaction,
    ) -> Result<(), bitcoin::consensus::validation::TxVerifyError> {
        tx.verify_with_flags(|outpoint| self.utxos.get(outpoint).cloned(), FLAGS)
    }

    fn input_value(&self, tx: &Transaction) -> u64 {
        tx.input
            .iter()
            .map(|i| self.utxos[&i.previous_output].value.to_sat())
            .sum()
    }

    /// Verifies a claim built from `inputs` and checks it for standardness and against its
    /// expected weight.
    fn check_claim(&self, tx: &Transaction, inputs: &[ClaimInput], destination: &ScriptBuf) {
        self.verify(tx).expect("consensus accepts the claim");
        assert_eq!(tx.input.len(), inputs.len());
        for (txin, input) in tx.input.iter().zip(inputs) {
            assert_eq!(txin.previous_output, input.outpoint);
            assert_eq!(txin.sequence, input.path.sequence());
            assert_eq!(
                self.utxos[&input.outpoint].value.to_sat(),
                input.value_sat,
                "value_sat is the spent output's"
            );
        }
        assert_eq!(tx.output.len(), 1);
        let output = &tx.output[0];
        assert_eq!(&output.script_pubkey, destination);
        assert!(output.value >= destination.minimal_non_dust(), "not dust");
        let actual = tx.weight().to_wu();
        assert!(actual <= MAX_STANDARD_TX_WEIGHT);
        let fee = self.input_value(tx) - output.value.to_sat();
        let vsize = actual.div_ceil(4);
        assert!(fee >= vsize, "fee {fee} below 1 sat/vbyte of vsize {vsize}");
        assert!(
            fee >= 253 * actual / 1000,
            "fee {fee} below 253 sat/kw of {actual}"
        );
        let expected = claim_weight(inputs, destination);
        assert!(
            expected >= actual,
            "expected weight {expected} below the actual {actual}"
        );
        let slack = expected - actual;
        let n = inputs.len() as u64;
        assert!(
            slack <= 2 * n && slack * 50 <= actual,
            "expected weight {expected} too far above the actual {actual}"
        );
        let per_input: u64 = inputs.iter().map(ClaimInput::expected_weight).sum();
        assert!(per_input < expected);
    }
}

fn destination() -> ScriptBuf {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&hash(b"wallet")).expect("valid");
    ScriptBuf::new_p2wpkh(
        &CompressedPublicKey(PublicKey::from_secret_key(&secp, &key)).wpubkey_hash(),
    )
}

/// Replaces the signature (witness element 0) of input `index` with one by `key` over the
/// (possibly modified) `tx`.
fn resign(
    secp: &Secp256k1<bitcoin::secp256k1::All>,
    tx: &mut Transaction,
    index: usize,
    input: &ClaimInput,
    key: &SecretKey,
) {
    let signature = sign_segwit_v0_input(
        secp,
        tx,
        index,
        &input.witness_script,
        input.value_sat,
        EcdsaSighashType::All,
        key,
    )
    .expect("input exists");
    let mut elements: Vec<Vec<u8>> = tx.input[index].witness.iter().map(<[u8]>::to_vec).collect();
    elements[0] = bitcoin::ecdsa::Signature::sighash_all(signature)
        .serialize()
        .to_vec();
    tx.input[index].witness = Witness::from_slice(&elements);
}

/// Replaces witness element `element` of input `index`.
fn replace_witness_element(tx: &mut Transaction, index: usize, element: usize, data: &[u8]) {
    let mut elements: Vec<Vec<u8>> = tx.input[index].witness.iter().map(<[u8]>::to_vec).collect();
    elements[element] = data.to_vec();
    tx.input[index].witness = Witness::from_slice(&elements);
}

fn build(ch: &Channel, inputs: &[ClaimInput]) -> Transaction {
    build_claim_tx(&ch.secp, inputs, destination(), CLAIM_FEERATE, HEIGHT).expect("claim builds")
}

// --- Our commitment: to_local after the CSV, the second stage and its CSV outputs ---------

#[test]
fn our_to_local_is_swept_after_the_csv() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        let ours = ch.commitment(Who::Alice, 10);
        let vout = ours.to_local_vout();
        let input = ClaimInput {
            outpoint: ours.outpoint(vout),
            value_sat: ours.value(vout),
            witness_script: ours.to_local_script(),
            path: SpendPath::Delayed {
                to_self_delay: ALICE_DELAY,
            },
            signing_key: ch
                .alice
                .delayed_payment_key(&ch.secp, &ours.per_commitment_point)
                .expect("delayed key"),
        };
        assert_eq!(
            input.script_pubkey(&ch.secp),
            ours.signed.output[vout as usize].script_pubkey
        );
        let tx = build(&ch, std::slice::from_ref(&input));
        let chain = Chain::with(&[&ours.signed]);
        chain.check_claim(&tx, std::slice::from_ref(&input), &destination());
        assert_eq!(tx.input[0].sequence, Sequence(u32::from(ALICE_DELAY)));
        assert_eq!(tx.lock_time.to_consensus_u32(), HEIGHT);

        // A sequence one block short of the CSV is refused.
        let mut early = tx.clone();
        early.input[0].sequence = Sequence(u32::from(ALICE_DELAY) - 1);
        resign(&ch.secp, &mut early, 0, &input, &input.signing_key);
        assert!(
            chain.verify(&early).is_err(),
            "{channel_type:?}: sequence below the csv"
        );
        // The same delay through the revocation branch needs the revocation key.
        let mut wrong = tx.clone();
        let bob_revocation_base = ch.bob.revocation_base_key;
        resign(&ch.secp, &mut wrong, 0, &input, &bob_revocation_base);
        assert!(chain.verify(&wrong).is_err(), "{channel_type:?}: wrong key");
        // The builder refuses a key that is not in the script.
        let bad = ClaimInput {
            signing_key: ch.alice.delayed_payment_base_key,
            ..input.clone()
        };
        assert_eq!(
            build_claim_tx(&ch.secp, &[bad], destination(), CLAIM_FEERATE, HEIGHT),
            Err(ClaimError::KeyNotInScript { index: 0 })
        );
    }
}

#[test]
fn our_second_stage_outputs_are_swept_after_the_csv() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        let ours = ch.commitment(Who::Alice, 10);
        // HTLC 1 we offered: HTLC-timeout. HTLC 3 we received: HTLC-success.
        let (timeout_htlc, timeout) = ch.second_stage(&ours, 1);
        let (success_htlc, success) = ch.second_stage(&ours, 3);
        assert!(!timeout_htlc.is_success());
        assert!(success_htlc.is_success());
        let chain = Chain::with(&[&ours.signed, &timeout, &success]);
        chain
            .verify(&timeout)
            .expect("htlc-timeout spends our offered htlc");
        chain
            .verify(&success)
            .expect("htlc-success spends our received htlc");
        assert_eq!(timeout.lock_time.to_consensus_u32(), 600);

        // Both CSV outputs in one sweep, with our delayed key.
        let key = ch
            .alice
            .delayed_payment_key(&ch.secp, &ours.per_commitment_point)
            .expect("delayed key");
        let inputs: Vec<ClaimInput> = [&timeout, &success]
            .iter()
            .map(|tx| ClaimInput {
                outpoint: OutPoint {
                    txid: tx.compute_txid(),
                    vout: 0,
                },
                value_sat: tx.output[0].value.to_sat(),
                witness_script: ours.to_local_script(),
                path: SpendPath::Delayed {
                    to_self_delay: ALICE_DELAY,
                },
                signing_key: key,
            })
            .collect();
        let sweep = build(&ch, &inputs);
        chain.check_claim(&sweep, &inputs, &destination());

        // One input short of its CSV: refused.
        let mut early = sweep.clone();
        early.input[1].sequence = Sequence(1);
        resign(&ch.secp, &mut early, 0, &inputs[0], &key);
        resign(&ch.secp, &mut early, 1, &inputs[1], &key);
        assert!(chain.verify(&early).is_err());
    }
}

// --- Their commitment: to_remote, their offered HTLCs by preimage, ours after timeout ------

#[test]
fn our_to_remote_on_their_commitment() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        let theirs = ch.commitment(Who::Bob, 10);
        let spk = to_remote_script_pubkey(&ch.alice_pub.payment_basepoint, channel_type);
        let vout = theirs.vout_of(&spk);
        let (path, witness_script) = if channel_type.has_anchors() {
            (
                SpendPath::ToRemoteAnchors,
                to_remote_anchors_script(&ch.alice_pub.payment_basepoint),
            )
        } else {
            (SpendPath::ToRemoteP2wpkh, ScriptBuf::new())
        };
        let input = ClaimInput {
            outpoint: theirs.outpoint(vout),
            value_sat: theirs.value(vout),
            witness_script,
            path,
            signing_key: ch.alice.payment_base_key,
        };
        assert_eq!(input.script_pubkey(&ch.secp), spk);
        let tx = build(&ch, std::slice::from_ref(&input));
        let chain = Chain::with(&[&theirs.signed]);
        chain.check_claim(&tx, std::slice::from_ref(&input), &destination());
        if channel_type.has_anchors() {
            assert_eq!(tx.input[0].sequence, Sequence(1));
            let mut early = tx.clone();
            early.input[0].sequence = Sequence(0);
            resign(&ch.secp, &mut early, 0, &input, &input.signing_key);
            assert!(chain.verify(&early).is_err(), "the 1-block csv is enforced");
            let mut wrong = tx.clone();
            resign(&ch.secp, &mut wrong, 0, &input, &ch.bob.payment_base_key);
            assert!(chain.verify(&wrong).is_err(), "wrong key");
        } else {
            assert_eq!(tx.input[0].sequence, Sequence::ENABLE_RBF_NO_LOCKTIME);
            // Bob's key over a P2WPKH of Alice's: the builder signs for the key it is given,
            // so the output spent must be the key's own.
            let wrong = ClaimInput {
                signing_key: ch.bob.payment_base_key,
                ..input.clone()
            };
            let tx = build(&ch, &[wrong]);
            assert!(chain.verify(&tx).is_err(), "wrong key");
        }
    }
}

fn their_offered_input(ch: &Channel, theirs: &Commit, n: u8) -> ClaimInput {
    let output = theirs.htlc_output(n);
    assert_eq!(output.htlc.direction, HtlcDirection::Offered);
    ClaimInput {
        outpoint: theirs.outpoint(output.output_index),
        value_sat: theirs.value(output.output_index),
        witness_script: output.witness_script.clone(),
        path: SpendPath::TheirOfferedHtlcPreimage {
            preimage: preimage(n),
            channel_type: ch.channel_type,
        },
        signing_key: ch.htlc_key(Who::Alice, theirs),
    }
}

fn our_offered_input(ch: &Channel, theirs: &Commit, n: u8) -> ClaimInput {
    let output = theirs.htlc_output(n);
    assert_eq!(output.htlc.direction, HtlcDirection::Received);
    ClaimInput {
        outpoint: theirs.outpoint(output.output_index),
        value_sat: theirs.value(output.output_index),
        witness_script: output.witness_script.clone(),
        path: SpendPath::OurOfferedHtlcTimeout {
            cltv_expiry: output.htlc.cltv_expiry,
            channel_type: ch.channel_type,
        },
        signing_key: ch.htlc_key(Who::Alice, theirs),
    }
}

#[test]
fn their_offered_htlc_is_claimed_with_the_preimage() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        let theirs = ch.commitment(Who::Bob, 10);
        let chain = Chain::with(&[&theirs.signed]);
        // HTLC 3: Alice received it, so Bob offered it on his commitment.
        let input = their_offered_input(&ch, &theirs, 3);
        let tx = build(&ch, std::slice::from_ref(&input));
        chain.check_claim(&tx, std::slice::from_ref(&input), &destination());
        let expected_sequence = if channel_type.has_anchors() {
            Sequence(1)
        } else {
            Sequence::ENABLE_RBF_NO_LOCKTIME
        };
        assert_eq!(tx.input[0].sequence, expected_sequence);
        assert_eq!(tx.lock_time.to_consensus_u32(), HEIGHT);

        // A wrong preimage in the witness: refused by consensus (the signature does not cover
        // the witness, so only the script can catch it).
        let mut wrong = tx.clone();
        replace_witness_element(&mut wrong, 0, 1, &preimage(4).0);
        assert!(
            chain.verify(&wrong).is_err(),
            "{channel_type:?}: wrong preimage"
        );
        // And by the builder, before signing.
        let bad = ClaimInput {
            path: SpendPath::TheirOfferedHtlcPreimage {
                preimage: preimage(4),
                channel_type,
            },
            ..input.clone()
        };
        assert_eq!(
            build_claim_tx(&ch.secp, &[bad], destination(), CLAIM_FEERATE, HEIGHT),
            Err(ClaimError::PreimageNotInScript { index: 0 })
        );
        // A key not ours (Bob's own HTLC key) is refused by consensus.
        let mut wrong = tx.clone();
        resign(
            &ch.secp,
            &mut wrong,
            0,
            &input,
            &ch.htlc_key(Who::Bob, &theirs),
        );
        assert!(chain.verify(&wrong).is_err(), "{channel_type:?}: wrong key");
        if channel_type.has_anchors() {
            let mut early = tx.clone();
            early.input[0].sequence = Sequence(0);
            resign(&ch.secp, &mut early, 0, &input, &input.signing_key);
            assert!(chain.verify(&early).is_err(), "the anchors csv is enforced");
        }
    }
}

#[test]
fn our_offered_htlc_is_claimed_after_its_expiry() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        let theirs = ch.commitment(Who::Bob, 10);
        let chain = Chain::with(&[&theirs.signed]);
        // HTLC 1: Alice offered it (expiry 600), Bob received it on his commitment.
        let input = our_offered_input(&ch, &theirs, 1);
        let tx = build(&ch, std::slice::from_ref(&input));
        chain.check_claim(&tx, std::slice::from_ref(&input), &destination());
        assert_eq!(
            tx.lock_time.to_consensus_u32(),
            600,
            "max(height, cltv_expiry)"
        );
        // A later height wins over the expiry.
        let later = build_claim_tx(
            &ch.secp,
            std::slice::from_ref(&input),
            destination(),
            CLAIM_FEERATE,
            700,
        )
        .expect("builds");
        assert_eq!(later.lock_time.to_consensus_u32(), 700);
        chain.verify(&later).expect("a later locktime is fine");

        // One block early: refused by CHECKLOCKTIMEVERIFY.
        let mut early = tx.clone();
        early.lock_time = bitcoin::absolute::LockTime::from_consensus(599);
        resign(&ch.secp, &mut early, 0, &input, &input.signing_key);
        assert!(
            chain.verify(&early).is_err(),
            "{channel_type:?}: locktime before expiry"
        );
        // A final sequence disables nLockTime: refused too.
        let mut final_seq = tx.clone();
        final_seq.input[0].sequence = Sequence::MAX;
        resign(&ch.secp, &mut final_seq, 0, &input, &input.signing_key);
        assert!(chain.verify(&final_seq).is_err(), "final sequence");
        if channel_type.has_anchors() {
            assert_eq!(tx.input[0].sequence, Sequence(1));
            let mut early = tx.clone();
            early.input[0].sequence = Sequence(0);
            resign(&ch.secp, &mut early, 0, &input, &input.signing_key);
            assert!(chain.verify(&early).is_err(), "the anchors csv is enforced");
        }
        // The timeout branch needs our key, not Bob's.
        let mut wrong = tx.clone();
        resign(
            &ch.secp,
            &mut wrong,
            0,
            &input,
            &ch.htlc_key(Who::Bob, &theirs),
        );
        assert!(chain.verify(&wrong).is_err(), "wrong key");
        // The preimage path with a timeout-style witness (an empty element) fails as well:
        // the received script's preimage branch is the 2-of-2.
        let mut no_timeout = tx.clone();
        replace_witness_element(&mut no_timeout, 0, 1, &preimage(1).0);
        assert!(
            chain.verify(&no_timeout).is_err(),
            "no preimage branch for us here"
        );
    }
}

#[test]
fn everything_ours_on_their_commitment_in_one_claim() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        let theirs = ch.commitment(Who::Bob, 10);
        let chain = Chain::with(&[&theirs.signed]);
        let spk = to_remote_script_pubkey(&ch.alice_pub.payment_basepoint, channel_type);
        let vout = theirs.vout_of(&spk);
        let to_remote = ClaimInput {
            outpoint: theirs.outpoint(vout),
            value_sat: theirs.value(vout),
            witness_script: if channel_type.has_anchors() {
                to_remote_anchors_script(&ch.alice_pub.payment_basepoint)
            } else {
                ScriptBuf::new()
            },
            path: if channel_type.has_anchors() {
                SpendPath::ToRemoteAnchors
            } else {
                SpendPath::ToRemoteP2wpkh
            },
            signing_key: ch.alice.payment_base_key,
        };
        let inputs = vec![
            to_remote,
            their_offered_input(&ch, &theirs, 3),
            their_offered_input(&ch, &theirs, 4),
            our_offered_input(&ch, &theirs, 1),
            our_offered_input(&ch, &theirs, 2),
        ];
        let tx = build(&ch, &inputs);
        chain.check_claim(&tx, &inputs, &destination());
        assert_eq!(tx.lock_time.to_consensus_u32(), 610, "the latest expiry");
    }
}

// --- Preimages revealed on chain -------------------------------------------------------------

#[test]
fn preimages_are_learned_from_their_spends() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        // Bob claims HTLC 1 (Alice offered it) on Alice's commitment directly with the
        // preimage: from his side that is "their offered HTLC".
        let ours = ch.commitment(Who::Alice, 10);
        let output = ours.htlc_output(1);
        let bob_claim = ClaimInput {
            outpoint: ours.outpoint(output.output_index),
            value_sat: ours.value(output.output_index),
            witness_script: output.witness_script.clone(),
            path: SpendPath::TheirOfferedHtlcPreimage {
                preimage: preimage(1),
                channel_type,
            },
            signing_key: ch.htlc_key(Who::Bob, &ours),
        };
        let tx = build(&ch, std::slice::from_ref(&bob_claim));
        Chain::with(&[&ours.signed]).check_claim(
            &tx,
            std::slice::from_ref(&bob_claim),
            &destination(),
        );
        let hash = output.htlc.payment_hash;
        assert_eq!(
            preimage_from_witness(&tx.input[0].witness, &hash),
            Some(preimage(1))
        );
        assert_eq!(
            preimage_from_witness(&tx.input[0].witness, &preimage(2).payment_hash()),
            None,
            "the hash decides, not the shape"
        );

        // Bob's HTLC-success on his own commitment for HTLC 2 (Alice offered it).
        let theirs = ch.commitment(Who::Bob, 10);
        let (_, success) = ch.second_stage(&theirs, 2);
        Chain::with(&[&theirs.signed])
            .verify(&success)
            .expect("bob's htlc-success");
        let hash = preimage(2).payment_hash();
        assert_eq!(
            preimage_from_witness(&success.input[0].witness, &hash),
            Some(preimage(2))
        );
        // A timeout witness reveals nothing; neither does a 32-byte element of the wrong hash.
        let (_, timeout) = ch.second_stage(&theirs, 3);
        assert_eq!(
            preimage_from_witness(&timeout.input[0].witness, &preimage(3).payment_hash()),
            None
        );
        let mut fake = Witness::new();
        fake.push([0u8; 32]);
        fake.push(preimage(2).payment_hash().0);
        assert_eq!(preimage_from_witness(&fake, &hash), None);
        assert_eq!(preimage_from_witness(&Witness::new(), &hash), None);
    }
}

// --- A revoked commitment: one justice transaction, then the cheater's second stage ------------

fn revoked_inputs(revoked: &Commit, key: SecretKey) -> Vec<ClaimInput> {
    let vout = revoked.to_local_vout();
    let mut inputs = vec![ClaimInput {
        outpoint: revoked.outpoint(vout),
        value_sat: revoked.value(vout),
        witness_script: revoked.to_local_script(),
        path: SpendPath::RevokedDelayed,
        signing_key: key,
    }];
    for output in revoked.tx.htlc_outputs() {
        inputs.push(ClaimInput {
            outpoint: revoked.outpoint(output.output_index),
            value_sat: revoked.value(output.output_index),
            witness_script: output.witness_script.clone(),
            path: SpendPath::RevokedHtlc,
            signing_key: key,
        });
    }
    inputs
}

#[test]
fn justice_takes_to_local_and_every_htlc_in_one_transaction() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        let revoked = ch.commitment(Who::Bob, 9);
        let _current = ch.commitment(Who::Bob, 10);
        // Bob revealed the secret of commitment 9 in revoke_and_ack.
        let key = ch
            .alice
            .revocation_key(&ch.secp, &revoked.per_commitment_secret)
            .expect("revocation key");
        assert_eq!(
            PublicKey::from_secret_key(&ch.secp, &key),
            revoked.keys().revocation_key
        );
        let inputs = revoked_inputs(&revoked, key);
        assert_eq!(inputs.len(), 5, "to_local and four htlcs");
        let tx = build(&ch, &inputs);
        let chain = Chain::with(&[&revoked.signed]);
        chain.check_claim(&tx, &inputs, &destination());
        for txin in &tx.input {
            assert_eq!(
                txin.sequence,
                Sequence::ENABLE_RBF_NO_LOCKTIME,
                "no csv on revocation"
            );
        }
        let claimed: u64 = inputs.iter().map(|i| i.value_sat).sum();
        let htlcs: u64 = alice_htlcs().iter().map(|h| h.amount_satoshis()).sum();
        assert_eq!(
            claimed,
            210_000 + htlcs,
            "bob's whole balance and every htlc"
        );

        // The revocation key of another commitment (Bob's current secret is not known; use
        // a secret of an older one) does not fit: the builder refuses it...
        let other_secret = ch
            .bob
            .per_commitment_secret(FIRST_INDEX - 8)
            .expect("secret");
        let wrong_key = ch
            .alice
            .revocation_key(&ch.secp, &other_secret)
            .expect("key");
        let wrong_inputs = revoked_inputs(&revoked, wrong_key);
        for (index, input) in wrong_inputs.iter().enumerate() {
            assert_eq!(
                build_claim_tx(
                    &ch.secp,
                    std::slice::from_ref(input),
                    destination(),
                    CLAIM_FEERATE,
                    HEIGHT
                ),
                Err(ClaimError::KeyNotInScript { index: 0 }),
                "input {index}"
            );
        }
        // ...and consensus refuses its signature on every input.
        for (index, input) in inputs.iter().enumerate() {
            let mut wrong = tx.clone();
            resign(&ch.secp, &mut wrong, index, input, &wrong_key);
            assert!(
                chain.verify(&wrong).is_err(),
                "{channel_type:?}: input {index}"
            );
        }
        // The to_local revocation branch needs the `1`: an empty element takes the delayed
        // branch, whose CSV and key both fail.
        let mut else_branch = tx.clone();
        replace_witness_element(&mut else_branch, 0, 1, &[]);
        assert!(chain.verify(&else_branch).is_err());
    }
}

#[test]
fn cheaters_second_stage_outputs_are_punished() {
    for channel_type in CHANNEL_TYPES {
        let ch = Channel::new(channel_type);
        let revoked = ch.commitment(Who::Bob, 9);
        // Bob publishes HTLC-timeout for HTLC 3 (he offered it) and HTLC-success for HTLC 1
        // (he received it, knows the preimage), both signed back when commitment 9 was live.
        let (_, timeout) = ch.second_stage(&revoked, 3);
        let (_, success) = ch.second_stage(&revoked, 1);
        let chain = Chain::with(&[&revoked.signed, &timeout, &success]);
        chain
            .verify(&timeout)
            .expect("the cheater's htlc-timeout is valid");
        chain
            .verify(&success)
            .expect("the cheater's htlc-success is valid");
        // We learn the preimage from it too.
        assert_eq!(
            preimage_from_witness(&success.input[0].witness, &preimage(1).payment_hash()),
            Some(preimage(1))
        );

        let key = ch
            .alice
            .revocation_key(&ch.secp, &revoked.per_commitment_secret)
            .expect("revocation key");
        let inputs: Vec<ClaimInput> = [&timeout, &success]
            .iter()
            .map(|tx| ClaimInput {
                outpoint: OutPoint {
                    txid: tx.compute_txid(),
                    vout: 0,
                },
                value_sat: tx.output[0].value.to_sat(),
                // The second-stage output is the to_local script of Bob's commitment.
                witness_script: revoked.to_local_script(),
                path: SpendPath::RevokedDelayed,
                signing_key: key,
            })
            .collect();
        assert_eq!(
            inputs[0].script_pubkey(&ch.secp),
            timeout.output[0].script_pubkey
        );
        let tx = build(&ch, &inputs);
        chain.check_claim(&tx, &inputs, &destination());

        // Single-input punishment of the timeout output works too, and with the remaining
        // HTLC outputs of the commitment in the same transaction.
        let mut mixed = vec![inputs[0].clone()];
        for n in [2, 4] {
            let output = revoked.htlc_output(n);
            mixed.push(ClaimInput {
                outpoint: revoked.outpoint(output.output_index),
                value_sat: revoked.value(output.output_index),
                witness_script: output.witness_script.clone(),
                path: SpendPath::RevokedHtlc,
                signing_key: key,
            });
        }
        let tx = build(&ch, &mixed);
        chain.check_claim(&tx, &mixed, &destination());

        // Bob's own key on the delayed branch, before his CSV, is refused.
        let bob_delayed = ch
            .bob
            .delayed_payment_key(&ch.secp, &revoked.per_commitment_point)
            .expect("key");
        let bob_sweep = ClaimInput {
            path: SpendPath::Delayed {
                to_self_delay: BOB_DELAY,
            },
            signing_key: bob_delayed,
            ..inputs[0].clone()
        };
        let mut early = build(&ch, std::slice::from_ref(&bob_sweep));
        chain.check_claim(&early, std::slice::from_ref(&bob_sweep), &destination());
        early.input[0].sequence = Sequence(u32::from(BOB_DELAY) - 1);
        resign(&ch.secp, &mut early, 0, &bob_sweep, &bob_delayed);
        assert!(chain.verify(&early).is_err(), "bob's csv is enforced");
    }
}

// --- Fees, dust, weight ----------------------------------------------------------------------

#[test]
fn fees_dust_and_weight_limits() {
    let ch = Channel::new(ChannelType::StaticRemoteKey);
    let theirs = ch.commitment(Who::Bob, 10);
    let chain = Chain::with(&[&theirs.signed]);
    let input = our_offered_input(&ch, &theirs, 2); // 30,000 sat
    let inputs = std::slice::from_ref(&input);
    // The floor feerate and a feerate below it still pay 1 sat/vbyte.
    for feerate in [0, 1, 253, 254, 5000] {
        let tx = build_claim_tx(&ch.secp, inputs, destination(), feerate, HEIGHT).expect("builds");
        chain.check_claim(&tx, inputs, &destination());
        let fee = 30_000 - tx.output[0].value.to_sat();
        let expected = claim_weight(inputs, &destination());
        assert_eq!(
            fee,
            (u64::from(feerate.max(253)) * expected / 1000).max(expected.div_ceil(4))
        );
    }
    // A feerate whose fee leaves dust: a typed error, never a dust output.
    let weight = claim_weight(inputs, &destination());
    let feerate = u32::try_from(((30_000 - 293) * 1000u64).div_ceil(weight)).expect("fits");
    match build_claim_tx(&ch.secp, inputs, destination(), feerate, HEIGHT) {
        Err(ClaimError::BelowDust {
            value, dust_limit, ..
        }) => {
            assert!(value < dust_limit);
            assert_eq!(dust_limit, 294);
        }
        other => panic!("expected BelowDust, got {other:?}"),
    }
    assert!(matches!(
        build_claim_tx(&ch.secp, inputs, destination(), u32::MAX, HEIGHT),
        Err(ClaimError::BelowDust { value: 0, .. })
    ));
    // Too many inputs for one standard transaction: the caller must split.
    let many: Vec<ClaimInput> = (0..2000)
        .map(|vout| ClaimInput {
            outpoint: OutPoint {
                txid: Txid::from_byte_array(hash(b"many")),
                vout,
            },
            ..input.clone()
        })
        .collect();
    assert!(matches!(
        build_claim_tx(&ch.secp, &many, destination(), CLAIM_FEERATE, HEIGHT),
        Err(ClaimError::TooHeavy { max: 400_000, .. })
    ));
    // Deterministic: the same inputs give the same transaction.
    assert_eq!(
        build_claim_tx(&ch.secp, inputs, destination(), CLAIM_FEERATE, HEIGHT),
        build_claim_tx(&ch.secp, inputs, destination(), CLAIM_FEERATE, HEIGHT)
    );
}
