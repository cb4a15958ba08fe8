//! The BOLT 3 witness scripts and output scripts.
//!
//! Witness scripts are returned as-is (they go in the spending witness and in the segwit
//! sighash); `*_script_pubkey` functions and [`funding_output`] give the P2WSH/P2WPKH output
//! scripts paying to them.

use bitcoin::blockdata::opcodes::all::{
    OP_CHECKMULTISIG, OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CLTV, OP_CSV, OP_DROP, OP_DUP, OP_ELSE,
    OP_ENDIF, OP_EQUAL, OP_EQUALVERIFY, OP_HASH160, OP_IF, OP_IFDUP, OP_NOTIF, OP_SIZE, OP_SWAP,
};
use bitcoin::hashes::{hash160, ripemd160, Hash};
use bitcoin::script::Builder;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, CompressedPublicKey, ScriptBuf, TxOut};

use super::{ChannelType, Htlc, HtlcDirection};
use crate::keys::HtlcKeys;
use crate::types::PaymentHash;

/// The 2-of-2 funding witness script `2 <pubkey1> <pubkey2> 2 OP_CHECKMULTISIG`, with
/// `pubkey1` the lexicographically lesser of the two compressed keys.
pub fn funding_script(a: &PublicKey, b: &PublicKey) -> ScriptBuf {
    let (a, b) = (a.serialize(), b.serialize());
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    Builder::new()
        .push_int(2)
        .push_slice(first)
        .push_slice(second)
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .into_script()
}

/// The funding output: `funding_satoshis` to the P2WSH of [`funding_script`].
pub fn funding_output(a: &PublicKey, b: &PublicKey, funding_satoshis: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(funding_satoshis),
        script_pubkey: funding_script(a, b).to_p2wsh(),
    }
}

/// The `to_local` witness script, also the output script of HTLC-timeout and HTLC-success
/// transactions:
///
/// ```text
/// OP_IF <revocationpubkey> OP_ELSE `to_self_delay` OP_CHECKSEQUENCEVERIFY OP_DROP
/// <local_delayedpubkey> OP_ENDIF OP_CHECKSIG
/// ```
pub fn to_local_script(
    revocation_key: &PublicKey,
    to_self_delay: u16,
    local_delayed_key: &PublicKey,
) -> ScriptBuf {
    Builder::new()
        .push_opcode(OP_IF)
        .push_slice(revocation_key.serialize())
        .push_opcode(OP_ELSE)
        .push_int(i64::from(to_self_delay))
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_slice(local_delayed_key.serialize())
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// The `to_remote` witness script with `option_anchors`:
/// `<remotepubkey> OP_CHECKSIGVERIFY 1 OP_CHECKSEQUENCEVERIFY`.
pub fn to_remote_anchors_script(remote_payment_key: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_slice(remote_payment_key.serialize())
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(1)
        .push_opcode(OP_CSV)
        .into_script()
}

/// The `to_remote` output script: P2WPKH to `remotepubkey`, or with `option_anchors` the
/// P2WSH of [`to_remote_anchors_script`].
pub fn to_remote_script_pubkey(
    remote_payment_key: &PublicKey,
    channel_type: ChannelType,
) -> ScriptBuf {
    if channel_type.has_anchors() {
        to_remote_anchors_script(remote_payment_key).to_p2wsh()
    } else {
        ScriptBuf::new_p2wpkh(&CompressedPublicKey(*remote_payment_key).wpubkey_hash())
    }
}

/// The `to_local_anchor` / `to_remote_anchor` witness script:
///
/// ```text
/// <funding_pubkey> OP_CHECKSIG OP_IFDUP OP_NOTIF OP_16 OP_CHECKSEQUENCEVERIFY OP_ENDIF
/// ```
pub fn anchor_script(funding_pubkey: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_slice(funding_pubkey.serialize())
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_IFDUP)
        .push_opcode(OP_NOTIF)
        .push_int(16)
        .push_opcode(OP_CSV)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// The common head of both HTLC scripts, up to and including `OP_SIZE 32 OP_EQUAL`.
fn htlc_script_head(revocation_key: &PublicKey, remote_htlc_key: &PublicKey) -> Builder {
    Builder::new()
        .push_opcode(OP_DUP)
        .push_opcode(OP_HASH160)
        .push_slice(hash160::Hash::hash(&revocation_key.serialize()).to_byte_array())
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_slice(remote_htlc_key.serialize())
        .push_opcode(OP_SWAP)
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
}

/// The common tail: `[1 OP_CHECKSEQUENCEVERIFY OP_DROP] OP_ENDIF` (the CSV with anchors).
fn htlc_script_tail(builder: Builder, channel_type: ChannelType) -> ScriptBuf {
    let builder = if channel_type.has_anchors() {
        builder.push_int(1).push_opcode(OP_CSV).push_opcode(OP_DROP)
    } else {
        builder
    };
    builder.push_opcode(OP_ENDIF).into_script()
}

fn payment_hash160(payment_hash: &PaymentHash) -> [u8; 20] {
    ripemd160::Hash::hash(&payment_hash.0).to_byte_array()
}

/// The offered-HTLC witness script (BOLT 3, "Offered HTLC Outputs").
pub fn offered_htlc_script(
    revocation_key: &PublicKey,
    local_htlc_key: &PublicKey,
    remote_htlc_key: &PublicKey,
    payment_hash: &PaymentHash,
    channel_type: ChannelType,
) -> ScriptBuf {
    let builder = htlc_script_head(revocation_key, remote_htlc_key)
        .push_opcode(OP_NOTIF)
        .push_opcode(OP_DROP)
        .push_int(2)
        .push_opcode(OP_SWAP)
        .push_slice(local_htlc_key.serialize())
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    htlc_script_tail(builder, channel_type)
}

/// The received-HTLC witness script (BOLT 3, "Received HTLC Outputs").
pub fn received_htlc_script(
    revocation_key: &PublicKey,
    local_htlc_key: &PublicKey,
    remote_htlc_key: &PublicKey,
    payment_hash: &PaymentHash,
    cltv_expiry: u32,
    channel_type: ChannelType,
) -> ScriptBuf {
    let builder = htlc_script_head(revocation_key, remote_htlc_key)
        .push_opcode(OP_IF)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_int(2)
        .push_opcode(OP_SWAP)
        .push_slice(local_htlc_key.serialize())
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_DROP)
        .push_int(i64::from(cltv_expiry))
        .push_opcode(OP_CLTV)
        .push_opcode(OP_DROP)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    htlc_script_tail(builder, channel_type)
}

/// The witness script of `htlc`'s output in the commitment with `revocation_key` and
/// `htlc_keys` (see [`CommitmentKeys`](crate::keys::CommitmentKeys)).
pub fn htlc_script(
    htlc: &Htlc,
    revocation_key: &PublicKey,
    htlc_keys: &HtlcKeys,
    channel_type: ChannelType,
) -> ScriptBuf {
    let keys = htlc_keys;
    match htlc.direction {
        HtlcDirection::Offered => offered_htlc_script(
            revocation_key,
            &keys.local_htlc_key,
            &keys.remote_htlc_key,
            &htlc.payment_hash,
            channel_type,
        ),
        HtlcDirection::Received => received_htlc_script(
            revocation_key,
            &keys.local_htlc_key,
            &keys.remote_htlc_key,
            &htlc.payment_hash,
            htlc.cltv_expiry,
            channel_type,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::SecretKey;

    fn pk(byte: u8) -> PublicKey {
        let secp = crate::secp::ctx();
        PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[byte; 32]).expect("valid"))
    }

    #[test]
    fn funding_script_sorts_keys() {
        let (a, b) = (pk(1), pk(2));
        assert_eq!(funding_script(&a, &b), funding_script(&b, &a));
        let script = funding_script(&a, &b);
        let bytes = script.as_bytes();
        assert_eq!(
            bytes.len(),
            71,
            "the expected weight's multi_sig is 71 bytes"
        );
        let (lesser, greater) = if a.serialize() < b.serialize() {
            (a, b)
        } else {
            (b, a)
        };
        assert_eq!(bytes.get(2..35), Some(&lesser.serialize()[..]));
        assert_eq!(bytes.get(36..69), Some(&greater.serialize()[..]));
    }

    #[test]
    fn htlc_script_sizes_match_appendix_a() {
        // Appendix A: accepted 140 bytes (143 with anchors), offered 133 (136 with anchors);
        // it counts 4 bytes for cltv_expiry, as a minimal push of 10_000_000 takes.
        let hash = PaymentHash([7; 32]);
        let (r, l, rr) = (pk(1), pk(2), pk(3));
        for (channel_type, extra) in [
            (ChannelType::StaticRemoteKey, 0),
            (ChannelType::AnchorsZeroFeeHtlcTx, 3),
        ] {
            let offered = offered_htlc_script(&r, &l, &rr, &hash, channel_type);
            assert_eq!(offered.len(), 133 + extra);
            let received = received_htlc_script(&r, &l, &rr, &hash, 10_000_000, channel_type);
            assert_eq!(received.len(), 140 + extra);
        }
    }

    #[test]
    fn to_remote_depends_on_channel_type() {
        let key = pk(9);
        let plain = to_remote_script_pubkey(&key, ChannelType::StaticRemoteKey);
        assert!(plain.is_p2wpkh());
        let anchors = to_remote_script_pubkey(&key, ChannelType::AnchorsZeroFeeHtlcTx);
        assert!(anchors.is_p2wsh());
        assert_eq!(anchors, to_remote_anchors_script(&key).to_p2wsh());
    }

    #[test]
    fn anchor_script_layout() {
        let key = pk(4);
        let script = anchor_script(&key);
        let mut expected = vec![0x21];
        expected.extend_from_slice(&key.serialize());
        // OP_CHECKSIG OP_IFDUP OP_NOTIF OP_16 OP_CHECKSEQUENCEVERIFY OP_ENDIF
        expected.extend_from_slice(&[0xac, 0x73, 0x64, 0x60, 0xb2, 0x68]);
        assert_eq!(script.as_bytes(), &expected[..]);
    }
}
