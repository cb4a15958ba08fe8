//! The API calls, routed to shards: written once over [`Backend`], which the threaded
//! [`Engine`](crate::Engine) and the simulator [`Sim`](crate::Sim) both implement.

use std::sync::Arc;

use lightning_core::bitcoin::{BlockHash, Transaction};
use lightning_core::channel::Channel;
use lightning_core::node::{ApiError, ChannelDetails, PaymentId, Route};
use lightning_core::secp256k1::PublicKey;
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};

use crate::coordinator::Coordinator;
use crate::error::EngineError;
use crate::msg::{ApiCall, ApiReply, ShardMsg};
use crate::placement::Placement;

/// How API calls reach shards.
pub(crate) trait Backend {
    fn placement(&self) -> &Placement;
    fn coordinator(&self) -> &Coordinator;
    /// Queues `msg` for `shard`. A `control` message (chain updates, registrations that
    /// every shard must see) waits for room; any other gets `Full`.
    fn enqueue(&mut self, shard: usize, msg: ShardMsg, control: bool) -> Result<(), EngineError>;
    /// Runs `call` on `shard` and waits for its answer.
    fn call(&mut self, shard: usize, call: ApiCall) -> Result<ApiReply, EngineError>;
}

fn done(reply: ApiReply) -> Result<(), EngineError> {
    match reply {
        ApiReply::Done(r) => r.map_err(EngineError::Api),
        _ => Ok(()),
    }
}

fn peer_of(b: &impl Backend, channel_id: &ChannelId) -> Result<PublicKey, EngineError> {
    b.coordinator()
        .peer_of_channel(channel_id)
        .ok_or(EngineError::UnknownChannel(*channel_id))
}

pub(crate) fn peer_connected(b: &mut impl Backend, node_id: PublicKey) -> Result<(), EngineError> {
    let shard = b.placement().shard_of(&node_id);
    b.enqueue(shard, ShardMsg::PeerConnected(node_id), false)
}

pub(crate) fn peer_disconnected(
    b: &mut impl Backend,
    node_id: PublicKey,
) -> Result<(), EngineError> {
    let shard = b.placement().shard_of(&node_id);
    b.enqueue(shard, ShardMsg::PeerDisconnected(node_id), false)
}

pub(crate) fn handle_message(
    b: &mut impl Backend,
    node_id: PublicKey,
    bytes: &[u8],
) -> Result<(), EngineError> {
    let shard = b.placement().shard_of(&node_id);
    let msg = ShardMsg::Message {
        node_id,
        bytes: bytes.to_vec(),
    };
    b.enqueue(shard, msg, false)
}

pub(crate) fn create_channel(
    b: &mut impl Backend,
    node_id: PublicKey,
    funding_satoshis: u64,
    push_msat: u64,
    user_channel_id: u128,
    feerate_per_kw: u32,
) -> Result<ChannelId, EngineError> {
    let shard = b.placement().shard_of(&node_id);
    let call = ApiCall::CreateChannel {
        node_id,
        funding_satoshis,
        push_msat,
        user_channel_id,
        feerate_per_kw,
    };
    match b.call(shard, call)? {
        ApiReply::ChannelCreated(r) => r.map_err(EngineError::Api),
        _ => Err(EngineError::Api(ApiError::PeerNotConnected(node_id))),
    }
}

pub(crate) fn funding_transaction_generated(
    b: &mut impl Backend,
    temporary_channel_id: ChannelId,
    funding_tx: Transaction,
) -> Result<(), EngineError> {
    let node_id = peer_of(b, &temporary_channel_id)?;
    let shard = b.placement().shard_of(&node_id);
    let call = ApiCall::FundingTransactionGenerated {
        temporary_channel_id,
        node_id,
        funding_tx,
    };
    done(b.call(shard, call)?)
}

pub(crate) fn send_payment(
    b: &mut impl Backend,
    route: &Route,
    payment_hash: PaymentHash,
    payment_secret: PaymentSecret,
    payment_id: PaymentId,
) -> Result<(), EngineError> {
    // The shard owning the first hop's channel; with no such channel, any shard (shard 0)
    // refuses or fails it exactly as a lone NodeCore would.
    let shard = route
        .hops
        .first()
        .and_then(|hop| b.coordinator().channel_of_scid(&hop.short_channel_id))
        .map_or(0, |(node_id, _)| b.placement().shard_of(&node_id));
    let call = ApiCall::SendPayment {
        route: route.clone(),
        payment_hash,
        payment_secret,
        payment_id,
    };
    done(b.call(shard, call)?)
}

pub(crate) fn create_inbound_payment(
    b: &mut impl Backend,
    payment_preimage: PaymentPreimage,
    amount_msat: Option<u64>,
) -> Result<(PaymentHash, PaymentSecret), EngineError> {
    // Shard 0 derives the secret (from the node seed: the same on every shard); every other
    // shard registers it before this returns, so an HTLC for it finds it on any shard (a
    // peer's later messages queue behind the registration in its shard's FIFO inbox).
    let call = ApiCall::CreateInboundPayment {
        payment_preimage,
        amount_msat,
    };
    let (hash, secret) = match b.call(0, call)? {
        ApiReply::Inbound(h, s) => (h, s),
        _ => {
            return Err(EngineError::Api(ApiError::NotClaimable(
                payment_preimage.payment_hash(),
            )))
        }
    };
    register_on(b, 1, hash, secret, amount_msat)?;
    Ok((hash, secret))
}

pub(crate) fn register_inbound_payment(
    b: &mut impl Backend,
    payment_hash: PaymentHash,
    payment_secret: PaymentSecret,
    amount_msat: Option<u64>,
) -> Result<(), EngineError> {
    register_on(b, 0, payment_hash, payment_secret, amount_msat)
}

fn register_on(
    b: &mut impl Backend,
    from: usize,
    payment_hash: PaymentHash,
    payment_secret: PaymentSecret,
    amount_msat: Option<u64>,
) -> Result<(), EngineError> {
    for shard in from..b.placement().shards() {
        let msg = ShardMsg::Api {
            call: ApiCall::RegisterInboundPayment {
                payment_hash,
                payment_secret,
                amount_msat,
            },
            reply: None,
        };
        b.enqueue(shard, msg, true)?;
    }
    Ok(())
}

/// Runs `make()` on every shard holding claimable HTLCs of `hash`.
fn on_claimable(
    b: &mut impl Backend,
    hash: PaymentHash,
    make: impl Fn() -> ApiCall,
) -> Result<(), EngineError> {
    let shards = b.coordinator().claimable_shards(&hash);
    let mut result = Err(EngineError::Api(ApiError::NotClaimable(hash)));
    for shard in shards {
        // A shard that refused with `Full` keeps its entry: the caller may retry.
        let answer = done(b.call(shard, make())?);
        b.coordinator().claim_done(&hash, shard);
        if answer.is_ok() {
            result = Ok(());
        }
    }
    result
}

pub(crate) fn claim_funds(
    b: &mut impl Backend,
    payment_preimage: PaymentPreimage,
) -> Result<(), EngineError> {
    on_claimable(b, payment_preimage.payment_hash(), || {
        ApiCall::ClaimFunds(payment_preimage)
    })
}

pub(crate) fn fail_htlc_backwards(
    b: &mut impl Backend,
    payment_hash: PaymentHash,
) -> Result<(), EngineError> {
    on_claimable(b, payment_hash, || ApiCall::FailHtlcBackwards(payment_hash))
}

pub(crate) fn close_channel(
    b: &mut impl Backend,
    channel_id: ChannelId,
    force: bool,
) -> Result<(), EngineError> {
    let node_id = peer_of(b, &channel_id)?;
    let shard = b.placement().shard_of(&node_id);
    let call = if force {
        ApiCall::ForceCloseChannel {
            channel_id,
            node_id,
        }
    } else {
        ApiCall::CloseChannel {
            channel_id,
            node_id,
        }
    };
    done(b.call(shard, call)?)
}

pub(crate) fn list_channels(b: &mut impl Backend) -> Result<Vec<ChannelDetails>, EngineError> {
    let mut all = Vec::new();
    for shard in 0..b.placement().shards() {
        if let ApiReply::Channels(mut c) = b.call(shard, ApiCall::ListChannels)? {
            all.append(&mut c);
        }
    }
    Ok(all)
}

pub(crate) fn channel(
    b: &mut impl Backend,
    node_id: PublicKey,
    channel_id: ChannelId,
) -> Result<Option<Channel>, EngineError> {
    let shard = b.placement().shard_of(&node_id);
    match b.call(
        shard,
        ApiCall::Channel {
            node_id,
            channel_id,
        },
    )? {
        ApiReply::Channel(c) => Ok(c.map(|c| *c)),
        _ => Ok(None),
    }
}

pub(crate) fn best_block_updated(
    b: &mut impl Backend,
    height: u32,
    hash: BlockHash,
) -> Result<(), EngineError> {
    b.coordinator().set_best_block(height, hash);
    for shard in 0..b.placement().shards() {
        b.enqueue(shard, ShardMsg::BestBlock { height, hash }, true)?;
    }
    Ok(())
}

pub(crate) fn transactions_confirmed(
    b: &mut impl Backend,
    height: u32,
    txdata: &[(u32, Transaction)],
) -> Result<(), EngineError> {
    let shared = Arc::new(txdata.to_vec());
    for shard in 0..b.placement().shards() {
        let msg = ShardMsg::TransactionsConfirmed {
            height,
            txdata: shared.clone(),
        };
        b.enqueue(shard, msg, true)?;
    }
    Ok(())
}
