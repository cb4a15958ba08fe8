//! Wire bytes to and from LDK's own message structs, using only LDK's serialization
//! (`LengthReadable::read_from_fixed_length_buffer` to decode a payload, `Writeable::encode`
//! and `ln::wire::Type::type_id` to encode). A message here is always the 2-byte big-endian
//! type followed by the payload, as BOLT 1 frames it inside a BOLT 8 transport message.

use lightning::ln::msgs::{self, ErrorAction, MessageSendEvent};
use lightning::ln::wire::Type;
use lightning::util::ser::LengthReadable;

use bitcoin::secp256k1::PublicKey;

/// The marker [`super::LdkNode::drain_messages`] returns instead of message bytes when LDK
/// wants the connection to the peer closed (after any error or warning it queued before).
/// No real message is empty: every message has at least its 2-byte type.
pub const DISCONNECT: &[u8] = &[];

/// Whether `bytes` (from [`super::LdkNode::drain_messages`]) is the [`DISCONNECT`] marker.
pub fn is_disconnect(bytes: &[u8]) -> bool {
    bytes.is_empty()
}

/// LDK's own encoding of `msg`: its type, then its payload.
pub fn ldk_frame<M: Type>(msg: &M) -> Vec<u8> {
    let mut out = msg.type_id().to_be_bytes().to_vec();
    out.extend_from_slice(&msg.encode());
    out
}

/// Splits a message into its type and payload.
pub fn split_type(bytes: &[u8]) -> Result<(u16, &[u8]), String> {
    match bytes {
        [hi, lo, payload @ ..] => Ok((u16::from_be_bytes([*hi, *lo]), payload)),
        _ => Err(format!(
            "a message needs a 2-byte type, got {} bytes",
            bytes.len()
        )),
    }
}

/// Decodes `payload` as LDK's `T`, requiring LDK to consume every byte.
pub fn ldk_decode<T: LengthReadable>(payload: &[u8], what: &str) -> Result<T, String> {
    let mut reader: &[u8] = payload;
    let msg = T::read_from_fixed_length_buffer(&mut reader)
        .map_err(|e| format!("LDK cannot decode {what} payload: {e:?}"))?;
    if !reader.is_empty() {
        return Err(format!(
            "LDK left {} of {} {what} payload bytes unread",
            reader.len(),
            payload.len()
        ));
    }
    Ok(msg)
}

/// Decodes a whole message (type + payload) with LDK, if it is one of the 20 BOLT 1/2 types
/// `lightning_core::wire` types, and re-encodes it with LDK. Used to check our encoder's
/// output against LDK's reading of it. Unknown types are an error.
pub fn ldk_reencode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (t, payload) = split_type(bytes)?;
    macro_rules! go {
        ($ty:ty, $name:literal) => {
            ldk_frame(&ldk_decode::<$ty>(payload, $name)?)
        };
    }
    Ok(match t {
        1 => go!(msgs::WarningMessage, "warning"),
        16 => go!(msgs::Init, "init"),
        17 => go!(msgs::ErrorMessage, "error"),
        18 => go!(msgs::Ping, "ping"),
        19 => go!(msgs::Pong, "pong"),
        32 => go!(msgs::OpenChannel, "open_channel"),
        33 => go!(msgs::AcceptChannel, "accept_channel"),
        34 => go!(msgs::FundingCreated, "funding_created"),
        35 => go!(msgs::FundingSigned, "funding_signed"),
        36 => go!(msgs::ChannelReady, "channel_ready"),
        38 => go!(msgs::Shutdown, "shutdown"),
        39 => go!(msgs::ClosingSigned, "closing_signed"),
        128 => go!(msgs::UpdateAddHTLC, "update_add_htlc"),
        130 => go!(msgs::UpdateFulfillHTLC, "update_fulfill_htlc"),
        131 => go!(msgs::UpdateFailHTLC, "update_fail_htlc"),
        132 => go!(msgs::CommitmentSigned, "commitment_signed"),
        133 => go!(msgs::RevokeAndACK, "revoke_and_ack"),
        134 => go!(msgs::UpdateFee, "update_fee"),
        135 => go!(msgs::UpdateFailMalformedHTLC, "update_fail_malformed_htlc"),
        136 => go!(msgs::ChannelReestablish, "channel_reestablish"),
        other => {
            return Err(format!(
                "message type {other} is not one of the 20 BOLT 1/2 types"
            ))
        }
    })
}

/// Turns LDK's queued `MessageSendEvent`s into `(destination, bytes)` pairs, in the order
/// LDK's own `PeerManager` would write them. `HandleError` becomes the error or warning it
/// carries and/or [`DISCONNECT`]. Gossip broadcasts (no destination) and the messages of
/// features LDK does not negotiate with a BOLT 2 v1 peer (splicing, interactive tx) are
/// returned in `skipped` by name.
pub fn events_to_bytes(
    events: Vec<MessageSendEvent>,
    out: &mut Vec<(PublicKey, Vec<u8>)>,
    skipped: &mut Vec<String>,
) {
    for event in events {
        match event {
            MessageSendEvent::SendAcceptChannel { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendOpenChannel { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendFundingCreated { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendFundingSigned { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendChannelReady { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendAnnouncementSignatures { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::UpdateHTLCs {
                node_id, updates, ..
            } => {
                // PeerManager's order: fulfills, fails, malformed fails, adds, fee, then the
                // commitment_signed (a start_batch first when there are several, for splices).
                let msgs::CommitmentUpdate {
                    update_add_htlcs,
                    update_fulfill_htlcs,
                    update_fail_htlcs,
                    update_fail_malformed_htlcs,
                    update_fee,
                    commitment_signed,
                } = updates;
                for m in &update_fulfill_htlcs {
                    out.push((node_id, ldk_frame(m)));
                }
                for m in &update_fail_htlcs {
                    out.push((node_id, ldk_frame(m)));
                }
                for m in &update_fail_malformed_htlcs {
                    out.push((node_id, ldk_frame(m)));
                }
                for m in &update_add_htlcs {
                    out.push((node_id, ldk_frame(m)));
                }
                if let Some(m) = &update_fee {
                    out.push((node_id, ldk_frame(m)));
                }
                if commitment_signed.len() > 1 {
                    skipped.push(format!(
                        "start_batch of {} commitment_signed",
                        commitment_signed.len()
                    ));
                }
                for m in &commitment_signed {
                    out.push((node_id, ldk_frame(m)));
                }
            }
            MessageSendEvent::SendRevokeAndACK { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendClosingSigned { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendShutdown { node_id, msg } => out.push((node_id, ldk_frame(&msg))),
            MessageSendEvent::SendChannelReestablish { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendChannelUpdate { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendChannelAnnouncement {
                node_id,
                msg,
                update_msg,
            } => {
                out.push((node_id, ldk_frame(&msg)));
                out.push((node_id, ldk_frame(&update_msg)));
            }
            MessageSendEvent::SendPeerStorage { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::SendPeerStorageRetrieval { node_id, msg } => {
                out.push((node_id, ldk_frame(&msg)))
            }
            MessageSendEvent::HandleError { node_id, action } => match action {
                ErrorAction::DisconnectPeer { msg } => {
                    if let Some(msg) = msg {
                        out.push((node_id, ldk_frame(&msg)));
                    }
                    out.push((node_id, DISCONNECT.to_vec()));
                }
                ErrorAction::DisconnectPeerWithWarning { msg } => {
                    out.push((node_id, ldk_frame(&msg)));
                    out.push((node_id, DISCONNECT.to_vec()));
                }
                ErrorAction::SendErrorMessage { msg } => out.push((node_id, ldk_frame(&msg))),
                ErrorAction::SendWarningMessage { msg, .. } => out.push((node_id, ldk_frame(&msg))),
                ErrorAction::IgnoreError
                | ErrorAction::IgnoreAndLog(_)
                | ErrorAction::IgnoreDuplicateGossip => {}
            },
            other => skipped.push(format!("{other:?}")),
        }
    }
}
