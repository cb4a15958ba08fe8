//! LDK's own networking: a `PeerManager` (BOLT 8, init, ping/pong) over `lightning-net-tokio`
//! sockets, in front of an [`LdkNode`](super::LdkNode)'s `ChannelManager`.
//!
//! With a `PeerManager` the harness moves no messages itself: never call
//! `LdkNode::drain_messages` on a node that has one (it would take the manager's messages).

use std::net::SocketAddr;
use std::sync::Arc;

use bitcoin::secp256k1::PublicKey;
use lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler, PeerManager};
use lightning::sign::KeysManager;
use lightning_net_tokio::SocketDescriptor;

use super::{LdkChannelManager, LdkNode, TestLogger};

/// The `PeerManager` type of the harness.
pub type LdkPeerManager = PeerManager<
    SocketDescriptor,
    Arc<LdkChannelManager>,
    Arc<IgnoringMessageHandler>,
    Arc<IgnoringMessageHandler>,
    Arc<TestLogger>,
    Arc<IgnoringMessageHandler>,
    Arc<KeysManager>,
    Arc<IgnoringMessageHandler>,
>;

/// A `PeerManager` for `node` (channel messages to its `ChannelManager`; gossip, onion and
/// custom messages ignored).
pub fn peer_manager(node: &LdkNode) -> Arc<LdkPeerManager> {
    let ignore = Arc::new(IgnoringMessageHandler {});
    let handler = MessageHandler {
        chan_handler: node.manager.clone(),
        route_handler: Arc::clone(&ignore),
        onion_message_handler: Arc::clone(&ignore),
        custom_message_handler: Arc::clone(&ignore),
        send_only_message_handler: ignore,
    };
    let mut random = [0u8; 32];
    random.copy_from_slice(&node.node_id.serialize()[1..33]);
    Arc::new(PeerManager::new(
        handler,
        1_700_000_000,
        &random,
        node.logger.clone(),
        node.keys.clone(),
    ))
}

/// Dials `their_node_id` at `addr` through LDK's `lightning-net-tokio` (inside a tokio
/// runtime); the connection runs on a spawned task. False if the TCP connect failed.
pub async fn connect(pm: &Arc<LdkPeerManager>, their_node_id: PublicKey, addr: SocketAddr) -> bool {
    match lightning_net_tokio::connect_outbound(pm.clone(), their_node_id, addr).await {
        Some(run) => {
            tokio::spawn(run);
            true
        }
        None => false,
    }
}
