//! The collaborators a `ChannelManager` needs, in their simplest honest test form: a fixed
//! fee estimator, a recording broadcaster, an in-memory monitor persister, a logger that keeps
//! lines, a `Router` returning a caller-given route, and a `MessageRouter` that finds none.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bitcoin::Transaction;
use lightning::blinded_path::message::{BlindedMessagePath, MessageContext, MessageForwardNode};
use lightning::blinded_path::payment::{BlindedPaymentPath, ReceiveTlvs};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::Persist;
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::ChannelMonitorUpdateStatus;
use lightning::ln::channel_state::ChannelDetails;
use lightning::onion_message::messenger::{Destination, MessageRouter, OnionMessagePath};
use lightning::routing::router::{InFlightHtlcs, Path, Route, RouteHop, RouteParameters, Router};
use lightning::sign::{InMemorySigner, ReceiveAuthKey};
use lightning::util::logger::{Level, Logger, Record};
use lightning::util::persist::MonitorName;
use lightning::util::ser::Writeable;

/// The lowest feerate LDK accepts (sat per 1000 weight units).
pub const MIN_FEERATE_PER_KW: u32 = 253;

/// A fee estimator answering the same feerate for every confirmation target; the test may
/// change it (e.g. to provoke `update_fee`).
pub struct FixedFeeEstimator {
    sat_per_kw: AtomicU32,
}

impl FixedFeeEstimator {
    /// An estimator answering `sat_per_kw` (at least [`MIN_FEERATE_PER_KW`]).
    pub fn new(sat_per_kw: u32) -> FixedFeeEstimator {
        assert!(
            sat_per_kw >= MIN_FEERATE_PER_KW,
            "LDK floors feerates at 253 sat/kw"
        );
        FixedFeeEstimator {
            sat_per_kw: AtomicU32::new(sat_per_kw),
        }
    }

    /// Changes the answer.
    pub fn set(&self, sat_per_kw: u32) {
        assert!(
            sat_per_kw >= MIN_FEERATE_PER_KW,
            "LDK floors feerates at 253 sat/kw"
        );
        self.sat_per_kw.store(sat_per_kw, Ordering::SeqCst);
    }

    /// The current answer.
    pub fn get(&self) -> u32 {
        self.sat_per_kw.load(Ordering::SeqCst)
    }
}

impl FeeEstimator for FixedFeeEstimator {
    fn get_est_sat_per_1000_weight(&self, _target: ConfirmationTarget) -> u32 {
        self.get()
    }
}

/// A broadcaster that only records what it is asked to broadcast.
#[derive(Default)]
pub struct RecordingBroadcaster {
    txs: Mutex<Vec<Transaction>>,
}

impl RecordingBroadcaster {
    /// Every transaction broadcast so far, oldest first (kept).
    pub fn all(&self) -> Vec<Transaction> {
        self.txs.lock().expect("not poisoned").clone()
    }

    /// Every transaction broadcast since the last call, oldest first.
    pub fn take(&self) -> Vec<Transaction> {
        std::mem::take(&mut *self.txs.lock().expect("not poisoned"))
    }
}

impl BroadcasterInterface for RecordingBroadcaster {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        self.txs
            .lock()
            .expect("not poisoned")
            .extend(txs.iter().map(|tx| (*tx).clone()));
    }
}

/// Keeps each channel monitor's latest serialization in memory; every write completes at once.
#[derive(Default)]
pub struct MemoryPersister {
    monitors: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryPersister {
    /// How many monitors are stored.
    pub fn len(&self) -> usize {
        self.monitors.lock().expect("not poisoned").len()
    }
}

impl Persist<InMemorySigner> for MemoryPersister {
    fn persist_new_channel(
        &self,
        monitor_name: MonitorName,
        monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        self.monitors
            .lock()
            .expect("not poisoned")
            .insert(monitor_name.to_string(), monitor.encode());
        ChannelMonitorUpdateStatus::Completed
    }

    fn update_persisted_channel(
        &self,
        monitor_name: MonitorName,
        _monitor_update: Option<&ChannelMonitorUpdate>,
        monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        self.persist_new_channel(monitor_name, monitor)
    }

    fn archive_persisted_channel(&self, monitor_name: MonitorName) {
        self.monitors
            .lock()
            .expect("not poisoned")
            .remove(&monitor_name.to_string());
    }
}

/// A logger keeping `[name] LEVEL module: message` lines; set `LDK_LOG=1` to also print them
/// to stderr as they come.
pub struct TestLogger {
    name: String,
    lines: Mutex<Vec<String>>,
    echo: bool,
}

impl TestLogger {
    /// A logger for the node called `name`.
    pub fn new(name: &str) -> TestLogger {
        TestLogger {
            name: name.to_owned(),
            lines: Mutex::new(Vec::new()),
            echo: std::env::var_os("LDK_LOG").is_some(),
        }
    }

    /// Every line logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("not poisoned").clone()
    }
}

impl Logger for TestLogger {
    fn log(&self, record: Record) {
        if record.level < Level::Debug {
            return;
        }
        let line = format!(
            "[{}] {} {}: {}",
            self.name, record.level, record.module_path, record.args
        );
        if self.echo {
            eprintln!("{line}");
        }
        self.lines.lock().expect("not poisoned").push(line);
    }
}

/// A `Router` that returns the route the test set with [`FixedRouter::set_route`]: one path
/// of the given hops. With no route set it fails, so a payment is never sent by accident.
#[derive(Default)]
pub struct FixedRouter {
    hops: Mutex<Option<Vec<RouteHop>>>,
}

impl FixedRouter {
    /// The hops of the route the next `find_route` returns (kept until changed).
    pub fn set_route(&self, hops: Vec<RouteHop>) {
        *self.hops.lock().expect("not poisoned") = Some(hops);
    }
}

impl Router for FixedRouter {
    fn find_route(
        &self,
        _payer: &PublicKey,
        route_params: &RouteParameters,
        _first_hops: Option<&[&ChannelDetails]>,
        _inflight_htlcs: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        let hops = self
            .hops
            .lock()
            .expect("not poisoned")
            .clone()
            .ok_or("FixedRouter: no route set")?;
        Ok(Route {
            paths: vec![Path {
                hops,
                blinded_tail: None,
            }],
            route_params: Some(route_params.clone()),
        })
    }

    fn create_blinded_payment_paths<
        T: bitcoin::secp256k1::Signing + bitcoin::secp256k1::Verification,
    >(
        &self,
        _recipient: PublicKey,
        _first_hops: Vec<ChannelDetails>,
        _tlvs: ReceiveTlvs,
        _amount_msats: Option<u64>,
        _secp_ctx: &Secp256k1<T>,
    ) -> Result<Vec<BlindedPaymentPath>, ()> {
        Err(())
    }
}

/// A `MessageRouter` that routes no onion message (the harness does not carry them).
pub struct NoMessageRouter;

impl MessageRouter for NoMessageRouter {
    fn find_path(
        &self,
        _sender: PublicKey,
        _peers: Vec<PublicKey>,
        _destination: Destination,
    ) -> Result<OnionMessagePath, ()> {
        Err(())
    }

    fn create_blinded_paths<T: bitcoin::secp256k1::Signing + bitcoin::secp256k1::Verification>(
        &self,
        _recipient: PublicKey,
        _local_node_receive_key: ReceiveAuthKey,
        _context: MessageContext,
        _peers: Vec<MessageForwardNode>,
        _secp_ctx: &Secp256k1<T>,
    ) -> Result<Vec<BlindedMessagePath>, ()> {
        Err(())
    }
}
