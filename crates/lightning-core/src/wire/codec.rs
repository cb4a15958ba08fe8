//! Field readers and writers shared by the message modules: points, signatures, txids,
//! channel ids, and a message's extension TLV stream.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{ecdsa::Signature, PublicKey};
use bitcoin::Txid;

use crate::ser::{DecodeError, Reader};
use crate::tlv::{decode_stream, TlvRecord};
use crate::types::ChannelId;

/// Appends a 33-byte compressed point.
pub(crate) fn write_pubkey(out: &mut Vec<u8>, key: &PublicKey) {
    out.extend_from_slice(&key.serialize());
}

/// Appends a 64-byte compact signature.
pub(crate) fn write_signature(out: &mut Vec<u8>, sig: &Signature) {
    out.extend_from_slice(&sig.serialize_compact());
}

/// Appends a txid in its internal byte order (the order of the transaction's serialization,
/// which is how BOLT 2 carries `funding_txid`).
pub(crate) fn write_txid(out: &mut Vec<u8>, txid: &Txid) {
    out.extend_from_slice(txid.as_byte_array());
}

/// Reads a 32-byte channel id.
pub(crate) fn read_channel_id(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<ChannelId, DecodeError> {
    reader.read_array(field).map(ChannelId)
}

/// Reads a txid in internal byte order.
pub(crate) fn read_txid(reader: &mut Reader<'_>, field: &'static str) -> Result<Txid, DecodeError> {
    reader.read_array(field).map(Txid::from_byte_array)
}

/// Reads the rest of `reader` as a message extension: a TLV stream whose understood types are
/// `known`. Unknown odd records are dropped, an unknown even record fails with
/// [`DecodeError::UnknownEvenTlv`], and bytes that are not a valid TLV stream fail (BOLT 1:
/// "if the `extension` is invalid: MUST close the connection").
///
/// Returns the known records in increasing type order.
pub(crate) fn read_extension<'a>(
    reader: &mut Reader<'a>,
    known: &[u64],
) -> Result<Vec<TlvRecord<'a>>, DecodeError> {
    let records = decode_stream(reader.rest(), |t| known.contains(&t))?;
    Ok(records
        .into_iter()
        .filter(|r| known.contains(&r.tlv_type))
        .collect())
}

/// Reads a TLV value that must be exactly `N` bytes.
pub(crate) fn tlv_array<const N: usize>(
    record: &TlvRecord<'_>,
    field: &'static str,
) -> Result<[u8; N], DecodeError> {
    let mut reader = record.reader();
    let value = reader.read_array(field)?;
    reader.finish(field)?;
    Ok(value)
}

/// Reads a TLV value that must be exactly one valid point.
pub(crate) fn tlv_pubkey(
    record: &TlvRecord<'_>,
    field: &'static str,
) -> Result<PublicKey, DecodeError> {
    let mut reader = record.reader();
    let value = reader.read_pubkey(field)?;
    reader.finish(field)?;
    Ok(value)
}
