//! The daemon's own bookkeeping beside the engine: connections, channels waiting for their
//! funding transaction, preimages of the payments we created, transactions to broadcast and
//! the recent events.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use lightning_core::bitcoin::{ScriptBuf, Transaction};
use lightning_core::node::Event;
use lightning_core::secp256k1::PublicKey;
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage};
use parking_lot::Mutex;

use super::funding::Utxo;
use super::net::Connections;
use super::Node;

/// The most events kept for `events`; older ones are dropped (and counted).
const EVENT_LOG: usize = 10_000;

/// A channel whose peer accepted it: what its funding output must be.
#[derive(Debug, Clone)]
pub struct FundingNeeded {
    /// The peer.
    pub node_id: PublicKey,
    /// The 2-of-2 output script.
    pub output_script: ScriptBuf,
    /// The channel's value.
    pub value_sat: u64,
}

/// The daemon's bookkeeping (see the [module documentation](self)).
#[derive(Debug, Default)]
pub struct NodeState {
    /// Open connections and persistent peers.
    pub connections: Connections,
    /// Channels accepted by their peer, waiting for `fund`.
    pub(crate) funding_needed: Mutex<HashMap<ChannelId, FundingNeeded>>,
    /// UTXOs named by `fund` before the peer accepted: used as soon as it does.
    pub(crate) funding_utxos: Mutex<HashMap<ChannelId, Utxo>>,
    /// Preimages of payments created with `new_invoice`.
    pub(crate) preimages: Mutex<HashMap<PaymentHash, PaymentPreimage>>,
    /// Transactions to broadcast, since the last `broadcasts`.
    pub(crate) broadcasts: Mutex<Vec<Transaction>>,
    /// Recent events, oldest first, and how many were dropped.
    pub(crate) events: Mutex<(VecDeque<serde_json::Value>, u64)>,
}

/// Runs the event pump on its own thread until the node stops: events become the daemon's
/// bookkeeping (funding, broadcasts) and the `events` log.
pub(crate) fn spawn_event_pump(node: Arc<Node>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("lnshard-events".into())
        .spawn(move || loop {
            if node.stopping.load(Ordering::SeqCst) {
                return;
            }
            if let Some(event) = node.engine.wait_event(Duration::from_millis(100)) {
                on_event(&node, event);
            }
        })
        .expect("spawning the event thread (the OS refused a thread)")
}

fn on_event(node: &Node, event: Event) {
    let json = super::control::event_json(&event);
    tracing::info!(event = %json, "event");
    match event {
        Event::FundingGenerationReady {
            temporary_channel_id,
            counterparty_node_id,
            channel_value_satoshis,
            output_script,
            ..
        } => {
            let needed = FundingNeeded {
                node_id: counterparty_node_id,
                output_script,
                value_sat: channel_value_satoshis,
            };
            let utxo = node
                .state
                .funding_utxos
                .lock()
                .remove(&temporary_channel_id);
            match utxo {
                Some(utxo) => {
                    if let Err(error) =
                        super::funding::fund_with(node, temporary_channel_id, &needed, &utxo)
                    {
                        tracing::warn!(%temporary_channel_id, error, "funding failed");
                    }
                }
                None => {
                    node.state
                        .funding_needed
                        .lock()
                        .insert(temporary_channel_id, needed);
                }
            }
        }
        Event::BroadcastTransaction { ref tx } => {
            node.state.broadcasts.lock().push(tx.clone());
        }
        _ => {}
    }
    let mut log = node.state.events.lock();
    log.0.push_back(json);
    if log.0.len() > EVENT_LOG {
        log.0.pop_front();
        log.1 += 1;
    }
}
