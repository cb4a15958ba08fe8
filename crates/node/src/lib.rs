//! The TCP daemon `lnshard node`: the shard engine on its filesystem store, BOLT 8 peers over
//! TCP, and a JSON-RPC control interface on loopback.
//!
//! # Shape
//! * **Network** ([`net`]): one tokio runtime (event-driven, no thread per connection)
//!   accepts on `listen` and dials peers. Each connection's BOLT 8 handshake runs on its IO
//!   task: an inbound connection belongs to no shard until act three reveals the peer's node
//!   id. Then the connection's cipher states move into the peer's shard
//!   ([`Engine::attach_connection`](shard_engine::Engine::attach_connection)); the IO task
//!   only moves ciphertext: bytes read go to the shard still encrypted, and the shard writes
//!   encrypted frames into the connection's write queue, bounded in bytes, after the state
//!   they commit to is durable. A peer that does not read is not read from (backpressure)
//!   and is disconnected when its queue overflows or stays full; connection slots bound the
//!   handshaking, per-address, general inbound and outbound connections apart (see [`net`]
//!   and the limits in [`DaemonConfig`]).
//! * **Liveness**: a ticker hands the monotonic time to the shards every `tick`; the core
//!   pings each peer every `ping_interval` and disconnects one whose `pong` is late.
//! * **Reconnection**: a peer added with `connect` is redialled with backoff whenever no
//!   connection to it is up; reconnecting resumes its channels with `channel_reestablish`.
//!   The peers we have channels with and their last good addresses are kept in `peers` and
//!   redialled after a restart ([`net`], [`peers`]).
//! * **Chain**: no chain backend. Blocks arrive through the control method `block_connected`
//!   (reorgs through `block_disconnected`) and transactions the node wants broadcast are
//!   collected by `broadcasts`. The zero-fee ones (anchor channels) get their fees from the
//!   node's own wallet ([`shard_engine::Bumper`]: a commitment with its CPFP child goes out
//!   under `packages`, to relay together; re-bumped each block with the same coins, never
//!   above the value at stake); only those the wallet cannot pay are listed as
//!   `bump_needed`. Each channel's on-chain monitor claims what is ours to the sweep
//!   script (`--sweep-address`) and reports through `events` and `list_balances`.
//! * **Control** ([`control`]): JSON-RPC 2.0 over HTTP (axum), bound to loopback only,
//!   authenticated with HTTP basic auth against a random secret written at start to
//!   `<data-dir>/.cookie` (mode 0600, as bitcoind's), as `__cookie__:<hex>`. The methods
//!   and their parameters are one table ([`control::METHOD_TABLE`]): the server dispatches
//!   from it and `lnshard cli help` prints it. Errors are typed JSON ([`control::RpcError`]).
//! * **Payments to us**: a payment to an invoice of ours (`new_invoice`) is claimed with its
//!   preimage as it arrives; a hold invoice's (`hold=true`) waits for `claim` or `fail`.
//!
//! # Files in the data directory
//! `node_secret` and `seed` (hex, mode 0600: the node's identity and the seed of every
//! channel key; protect them like a wallet), `invoices` (mode 0600: the preimages of the
//! payments `new_invoice` created and whether each is a hold invoice, synced before it
//! answers, so a restart can still claim them and a hold invoice stays one), `wallet` (mode 0600, replaced atomically: the on-chain wallet's BDK change sets;
//! its keys are derived from `seed`, see [`wallet`]), `peers` (mode 0600, written
//! atomically: the peers we have channels with and the address of our last successful dial
//! of each), the engine's store (`data/`), `.cookie` and
//! `control.addr` (the bound control address), both removed at a clean stop, and `LOCK` (the
//! running node's exclusive lock, with its pid: a second node on the directory is refused,
//! naming it). The directory is 0700 and every file 0600 from creation; a node refuses to
//! start on a directory or file that gives group or others any access ([`files`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod cmd;
pub mod control;
pub mod files;
pub mod funding;
pub mod net;
pub mod peers;
mod rpc_errors;
mod state;
pub mod sweep;
pub mod wallet;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::{BlockHash, Network, ScriptBuf};
use lightning_core::keys::ChannelKeys;
use lightning_core::node::{Liveness, NodeConfig};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use shard_engine::store::{FsStore, FsStoreOptions};
use shard_engine::{Engine, EngineConfig, NodeApi};

pub use state::NodeState;

/// How a node is started.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Where peers connect (TCP).
    pub listen: SocketAddr,
    /// Where the control interface listens: must be a loopback address.
    pub control_listen: SocketAddr,
    /// The node's directory: identity, store, cookie.
    pub data_dir: PathBuf,
    /// The chain.
    pub network: Network,
    /// Shards (worker threads) of the engine.
    pub shards: usize,
    /// Ping/pong liveness.
    pub liveness: Liveness,
    /// How long a connection may take to complete its handshake (inbound: it holds a
    /// handshaking slot meanwhile). Default 10 s.
    pub handshake_timeout: Duration,
    /// How often the shards are given the time.
    pub tick: Duration,
    /// The most inbound connections still in the BOLT 8 handshake. Default 256. When all are
    /// taken, a new connection closes the oldest one still handshaking.
    pub max_handshaking: usize,
    /// The most inbound connections from one IP address, handshaking or established without
    /// a channel (peers we have channels with do not count). Default 16. One more is reset at
    /// accept.
    pub max_inbound_per_ip: usize,
    /// The most established inbound peers we have no channel with (general slots). Default
    /// 1,024. Peers we have a channel with are admitted beyond it; any other peer is
    /// disconnected after its handshake when all are taken.
    pub max_inbound_peers: usize,
    /// The most of our own dials open at once (`connect` and redials), apart from every
    /// inbound limit. Default 1,024. One more dial fails with an error.
    pub max_outbound: usize,
    /// The most bytes queued for one connection's socket. Default 1 MiB (at least 128 KiB).
    /// A write that would exceed it (onto a non-empty queue) disconnects the peer. Above half
    /// of it we stop reading the peer until the queue drains below a quarter.
    pub write_queue_bytes: usize,
    /// How long a connection's queue may stay above half of `write_queue_bytes` (its peer not
    /// reading) before we disconnect it. Default 30 s.
    pub write_stall_timeout: Duration,
    /// Messages each shard's inbox holds: API calls, cross-shard forwards and results, new
    /// connections (peers' bytes do not travel through it: each shard reads its own sockets).
    /// Default 64: when it is full, callers wait for room (the RPC) or retry later.
    pub shard_inbox: usize,
    /// Where on-chain claims of channels funded from now on pay (`--sweep-address`): a
    /// standard output script ([`sweep::is_standard_destination`]). Default: an address of
    /// the node's wallet ([`wallet`]), so claims land in it. Not stored: given to
    /// the engine at every start.
    pub sweep_script: Option<ScriptBuf>,
    /// The feerate on-chain claims start from, in sat per 1000 weight
    /// (`--claim-feerate-per-kw`; [`sweep::MIN_CLAIM_FEERATE_PER_KW`] to
    /// [`sweep::MAX_CLAIM_FEERATE_PER_KW`]); the monitors raise it as a deadline nears.
    /// Default: the engine's (2,500). The control method `set_claim_feerate` changes it.
    pub claim_feerate_per_kw: Option<u32>,
    /// Regtest test mode: forced keys (refused on any other network).
    pub test_mode: Option<TestMode>,
}

impl DaemonConfig {
    /// Defaults: listen on 127.0.0.1:9735, control on 127.0.0.1:9835, regtest.
    pub fn new(data_dir: PathBuf) -> Self {
        DaemonConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9735)),
            control_listen: SocketAddr::from(([127, 0, 0, 1], 9835)),
            data_dir,
            network: Network::Regtest,
            shards: 2,
            liveness: Liveness::default(),
            handshake_timeout: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            max_handshaking: 256,
            max_inbound_per_ip: 16,
            max_inbound_peers: 1024,
            max_outbound: 1024,
            write_queue_bytes: 1 << 20,
            write_stall_timeout: Duration::from_secs(30),
            shard_inbox: 64,
            sweep_script: None,
            claim_feerate_per_kw: None,
            test_mode: None,
        }
    }
}

/// Regtest test mode, as Core Lightning's `--dev-force-channel-secrets`: the node key and
/// every channel's keys are the ones given, so a conformance harness can predict our keys
/// and signatures. Never for real funds.
#[derive(Debug, Clone)]
pub struct TestMode {
    /// The node key (instead of `node_secret` in the data directory).
    pub node_secret: Option<SecretKey>,
    /// Every channel's funding key, basepoint secrets and per-commitment seed.
    pub channel_keys: Option<ChannelKeys>,
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration is refused (the message says which setting and why).
    Config(String),
    /// A file or socket operation failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// The engine or its store failed.
    Engine(String),
}

impl core::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DaemonError::Config(m) => write!(f, "configuration refused: {m}"),
            DaemonError::Io { what, error } => write!(f, "{what}: {error}"),
            DaemonError::Engine(m) => write!(f, "engine: {m}"),
        }
    }
}

impl std::error::Error for DaemonError {}

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |error| DaemonError::Io { what, error }
}

/// Everything the daemon's tasks share.
pub struct Node {
    /// The engine.
    pub engine: Engine,
    /// Our node id.
    pub node_id: PublicKey,
    /// The node secret (BOLT 8 static key).
    pub(crate) node_secret: SecretKey,
    /// The configuration.
    pub config: DaemonConfig,
    /// The address peers connect to (after binding).
    pub listen_addr: parking_lot::Mutex<Option<SocketAddr>>,
    /// The daemon's own bookkeeping (connections, funding, payments, broadcasts).
    pub state: NodeState,
    /// The on-chain wallet ([`wallet`]): funds channels, receives sweeps.
    pub wallet: wallet::NodeWallet,
    /// Set by `stop`.
    pub stopping: AtomicBool,
    /// Wakes the main task on `stop`.
    pub(crate) stop: tokio::sync::Notify,
    /// When the node started: the origin of the time given to the shards.
    pub(crate) started: Instant,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Milliseconds since the node started (its monotonic clock for the shards).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Asks the daemon to stop.
    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        self.stop.notify_one();
    }
}

/// The genesis block hash of `network`: the best block of a new node until blocks arrive.
fn genesis_hash(network: Network) -> BlockHash {
    lightning_core::bitcoin::constants::genesis_block(network).block_hash()
}

/// The least `write_queue_bytes`: room for two of the largest encrypted messages.
pub const MIN_WRITE_QUEUE_BYTES: usize = 128 * 1024;

/// Checks the configuration before anything is opened.
pub fn check_config(config: &DaemonConfig) -> Result<(), DaemonError> {
    if !config.control_listen.ip().is_loopback() {
        return Err(DaemonError::Config(format!(
            "the control interface must bind a loopback address (127.0.0.1 or ::1), not {}",
            config.control_listen
        )));
    }
    if config.test_mode.is_some() && config.network != Network::Regtest {
        return Err(DaemonError::Config(format!(
            "test mode (forced keys) runs on regtest only, not on {}",
            config.network
        )));
    }
    if config.shards == 0 {
        return Err(DaemonError::Config("--shards must be at least 1".into()));
    }
    if config.max_handshaking == 0 || config.max_inbound_per_ip == 0 {
        return Err(DaemonError::Config(
            "--max-handshaking and --max-inbound-per-ip must be at least 1".into(),
        ));
    }
    if let Some(script) = &config.sweep_script {
        sweep::check_sweep_script(script).map_err(DaemonError::Config)?;
    }
    if let Some(feerate) = config.claim_feerate_per_kw {
        sweep::check_claim_feerate(u64::from(feerate)).map_err(DaemonError::Config)?;
    }
    if config.write_queue_bytes < MIN_WRITE_QUEUE_BYTES {
        return Err(DaemonError::Config(format!(
            "--write-queue-bytes must be at least {MIN_WRITE_QUEUE_BYTES} (two of the largest messages), not {}",
            config.write_queue_bytes
        )));
    }
    Ok(())
}

/// Runs a node until `stop` (control method) or Ctrl-C. Blocks the calling thread.
pub fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    check_config(&config)?;
    // The data directory's lock before anything is written there: a second node on it stops
    // here, naming the holder, and leaves the first node's files alone.
    let lock = files::lock_data_dir(&config.data_dir)?;
    files::check_private_files(&config.data_dir)?;
    let stored_secret = files::load_or_create_secret(&config.data_dir.join("node_secret"))?;
    let seed = files::load_or_create_seed(&config.data_dir.join("seed"))?;
    let node_secret = config
        .test_mode
        .as_ref()
        .and_then(|t| t.node_secret)
        .unwrap_or(stored_secret);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    let store = FsStore::open_locked(lock, FsStoreOptions::default())
        .map_err(|e| DaemonError::Engine(format!("store in {}: {e}", config.data_dir.display())))?;
    let engine_config = EngineConfig {
        shards: config.shards,
        store: Some(Arc::new(store)),
        node: NodeConfig::for_network(config.network),
        liveness: config.liveness,
        inbox_capacity: config.shard_inbox,
        peer_outbox_bytes: config.write_queue_bytes,
        write_stall_timeout: config.write_stall_timeout,
        forced_channel_keys: config
            .test_mode
            .as_ref()
            .and_then(|t| t.channel_keys.clone()),
        ..EngineConfig::default()
    };
    let engine = Engine::open(
        engine_config,
        node_secret,
        seed,
        0,
        genesis_hash(config.network),
    )
    .map_err(|e| DaemonError::Engine(e.to_string()))?;
    let wallet = wallet::NodeWallet::open(&config.data_dir, &seed, config.network)?;
    // Before any peer connects, so every channel funded from now on claims to it: the
    // `--sweep-address`, or else an address of the wallet.
    let sweep_script = match &config.sweep_script {
        Some(script) => script.clone(),
        None => wallet.sweep_script()?,
    };
    engine
        .set_sweep_script(sweep_script.clone())
        .map_err(|e| DaemonError::Engine(format!("setting the sweep script: {e}")))?;
    tracing::info!(script = %sweep_script.to_hex_string(), "on-chain claims pay the sweep script");
    if let Some(feerate) = config.claim_feerate_per_kw {
        engine
            .set_claim_feerate(feerate)
            .map_err(|e| DaemonError::Engine(format!("setting the claim feerate: {e}")))?;
    }
    let state = NodeState::default();
    let invoices = files::load_invoices(&files::invoices_path(&config.data_dir))?;
    tracing::info!(
        invoices = invoices.len(),
        "preimages of our invoices loaded"
    );
    *state.preimages.lock() = invoices;
    let secp = Secp256k1::signing_only();
    let node = Arc::new(Node {
        node_id: PublicKey::from_secret_key(&secp, &node_secret),
        engine,
        node_secret,
        config,
        listen_addr: parking_lot::Mutex::new(None),
        state,
        wallet,
        stopping: AtomicBool::new(false),
        stop: tokio::sync::Notify::new(),
        started: Instant::now(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("lnshard-io")
        .build()
        .map_err(io_error("starting the IO runtime"))?;
    let events = state::spawn_event_pump(node.clone());
    let result = runtime.block_on(serve(node.clone()));
    node.request_stop();
    runtime.shutdown_timeout(Duration::from_secs(2));
    let _ = events.join();
    files::remove_control_files(&node.config.data_dir);
    let node = match Arc::try_unwrap(node) {
        Ok(node) => node,
        Err(node) => {
            tracing::warn!(
                refs = Arc::strong_count(&node),
                "node still referenced at exit"
            );
            return result;
        }
    };
    let report = node.engine.shutdown(Duration::from_secs(5));
    tracing::info!(parked = report.parked.len(), "engine stopped");
    result
}

async fn serve(node: Arc<Node>) -> Result<(), DaemonError> {
    let listener = net::listen(node.config.listen)
        .map_err(io_error(format!("binding {}", node.config.listen)))?;
    let listen_addr = listener
        .local_addr()
        .map_err(io_error("reading the bound address"))?;
    *node.listen_addr.lock() = Some(listen_addr);
    let control = control::bind(&node).await?;
    tracing::info!(
        node_id = %node.node_id,
        listen = %listen_addr,
        control = %control.addr,
        network = %node.config.network,
        "lnshard node running"
    );
    let accept = tokio::spawn(net::accept_loop(node.clone(), listener));
    net::start_redialling(&node).await;
    let ticker = tokio::spawn(ticker(node.clone()));
    let control_task = tokio::spawn(control.serve(node.clone()));
    tokio::select! {
        _ = node.stop.notified() => {}
        _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted"); }
    }
    node.request_stop();
    accept.abort();
    ticker.abort();
    let _ = control_task.await;
    net::close_all(&node);
    Ok(())
}

async fn ticker(node: Arc<Node>) {
    let mut interval = tokio::time::interval(node.config.tick);
    loop {
        interval.tick().await;
        let now = node.now_ms();
        let n = node.clone();
        let _ = tokio::task::spawn_blocking(move || n.engine.timer_tick(now)).await;
    }
}

/// A block hash from an 80-byte header.
pub(crate) fn header_hash(header: &[u8]) -> Option<BlockHash> {
    if header.len() != 80 {
        return None;
    }
    Some(BlockHash::from_byte_array(
        lightning_core::bitcoin::hashes::sha256d::Hash::hash(header).to_byte_array(),
    ))
}
