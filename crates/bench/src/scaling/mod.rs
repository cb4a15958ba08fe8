//! The routing-node scaling workload: how many payments per second one routing node forwards
//! when it, and not its peers, is the bottleneck, on 1..=N shards, and the same payments on
//! LDK's two lock designs built from the same `NodeCore`.
//!
//! **Lanes.** Lane k is peer A_k → the routing node → peer B_k; A_k and B_k sit on different
//! shards of a 2-shard engine, half the lanes each way, so with 2 shards every forward crosses
//! shards (with more shards, placement decides; the cross-shard forwards are counted).
//!
//! **Record once, replay cheaply.** The payments are made once with real peer `NodeCore`s
//! around a 1-shard engine, lane by lane in lockstep (a lane's next payment starts when its
//! previous one completed), keeping every message each peer sent with the routing node's
//! message counts on both lane connections when it was produced, and every message the
//! routing node sent. Each replay starts a fresh routing node set up identically (same keys,
//! same channels), each peer connection a socket its shard owns (`Engine::attach_socket`,
//! in memory): a lane's recorded peer messages are released onto its sockets as soon as the
//! routing node has sent what they answer, by the shard's own write that sends it, and the
//! shard that owns the socket reads them itself, as each baseline thread reads its own lanes
//! (no driver thread moves bytes). Every message the routing node sends is compared with the
//! recording byte for byte after the clock stops ([`Error::Diverged`] otherwise). The peers
//! now cost a memcpy; the routing node still verifies every signature it receives and signs
//! everything it sends. The calling thread only waits for the lanes to finish; its CPU time
//! over the process's is reported (`driver_cpu_share`).
//!
//! **Configurations** (each replays the same recording; `N` = threads doing the routing work):
//! * `engine_N`: the shard engine with N shards, each reading its own peers' sockets;
//! * `global_mutex_N`: one `NodeCore` for every peer behind one `Mutex`, driven by N threads
//!   (LDK's shape before per-peer storage);
//! * `per_peer_mutex_N`: one `NodeCore` per peer, each behind its own `Mutex`, in a `RwLock`'d
//!   map, driven by N threads; a forward locks the next peer's mutex (LDK's shape after it).
//!
//! Lane k of a baseline is driven by thread k mod N. Each figure is the median of
//! [`Options::runs`] runs; `ratio_2_vs_1` is the median of the per-run ratios. A run replays
//! every configuration once, a design's thread counts back to back, starting with the design
//! after the one the run before started with, and every other run from the largest thread
//! count down, so that no configuration always runs first or always right after the same one.
//!
//! [`durable`] replays the same kind of recording on the engine with its stores (no store,
//! in-memory, filesystem with group commit on and off).

mod baseline;
pub mod durable;
pub mod plot;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lnshard_testkit::{
    engine_config, genesis, hub_secret, hub_seed, secret, Hub, Link, MemoryWire, Net, Recorder,
    Sockets, Threaded, Who,
};
use serde::Serialize;
use shard_engine::lightning_core::secp256k1::{PublicKey, Secp256k1};
use shard_engine::store::Store;
use shard_engine::{Engine, EngineConfig, EngineError, PeerOutput, Placement};

use baseline::{BaselineHub, Crypto, Locked, Sink};

/// The cores this process may use (`std::thread::available_parallelism`, 1 if unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The default lane count for a run up to `max_shards` shards: 32, or 8 per shard when more,
/// so that hashing peers to shards leaves every shard with several lanes.
pub fn default_lanes(max_shards: usize) -> usize {
    (8 * max_shards).max(32)
}

/// What [`run`] measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The largest shard count (and baseline thread count): configurations run 1..=this.
    pub max_shards: usize,
    /// Lanes: pairs of peers paying each other through the routing node.
    pub lanes: usize,
    /// Payments per lane (every lane pays the same count).
    pub payments_per_lane: usize,
    /// Runs of every configuration; each figure is the median.
    pub runs: usize,
    /// Also replay, on 2 shards, lanes whose two ends sit on the same shard (no cross-shard
    /// traffic at all), as `engine_2_within_shard`.
    pub within_shard: bool,
}

impl Default for Options {
    /// Up to [`cores`] shards, [`default_lanes`] lanes of 40 payments, 3 runs.
    fn default() -> Self {
        let max_shards = cores();
        Options {
            max_shards,
            lanes: default_lanes(max_shards),
            payments_per_lane: 40,
            runs: 3,
            within_shard: false,
        }
    }
}

/// Why a workload could not be measured.
#[derive(Debug)]
pub enum Error {
    /// An option is out of range.
    Options(String),
    /// The recording run broke a rule of the ledger (funds, HTLC fates): an engine bug.
    Recording(String),
    /// A replay diverged from the recording: the routing node sent other bytes, or fewer
    /// messages, than when recorded (its output is not a function of each lane's inputs).
    Diverged {
        /// The configuration that diverged.
        configuration: String,
        /// Messages that differed from the recording.
        mismatches: usize,
    },
    /// The engine refused to start or to take a replayed message.
    Engine {
        /// The configuration being replayed.
        configuration: String,
        /// The engine's error.
        error: EngineError,
    },
    /// A store could not be created, or reported a failure.
    Store(String),
    /// The plot could not be drawn or written.
    Plot(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Options(why) => write!(f, "bad option: {why}"),
            Error::Recording(why) => write!(f, "the recording run is unsound: {why}"),
            Error::Diverged {
                configuration,
                mismatches,
            } => write!(
                f,
                "{configuration}: the replay diverged from the recording ({mismatches} messages differ)"
            ),
            Error::Engine {
                configuration,
                error,
            } => write!(f, "{configuration}: engine error: {error}"),
            Error::Store(why) => write!(f, "store: {why}"),
            Error::Plot(why) => write!(f, "plot: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// The design a configuration measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// The shard engine.
    Engine,
    /// The shard engine, both ends of every lane on one shard.
    EngineWithinShard,
    /// One global `Mutex<NodeCore>`.
    GlobalMutex,
    /// Per-peer `Mutex<NodeCore>` under a `RwLock`'d map.
    PerPeerMutex,
}

impl Design {
    /// The configuration's name for `threads` threads, as in the JSON report.
    pub fn configuration(self, threads: usize) -> String {
        match self {
            Design::Engine => format!("engine_{threads}"),
            Design::EngineWithinShard => format!("engine_{threads}_within_shard"),
            Design::GlobalMutex => format!("global_mutex_{threads}"),
            Design::PerPeerMutex => format!("per_peer_mutex_{threads}"),
        }
    }

    fn describe(self, threads: usize) -> String {
        let s = if threads == 1 { "" } else { "s" };
        match self {
            Design::Engine => format!("engine, {threads} shard{s}"),
            Design::EngineWithinShard => {
                format!("engine, {threads} shard{s}, lanes within a shard")
            }
            Design::GlobalMutex => format!("global Mutex, {threads} thread{s}"),
            Design::PerPeerMutex => format!("per-peer Mutex + RwLock map, {threads} thread{s}"),
        }
    }
}

/// One replay of the recording on one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// The configuration's name (`engine_2`, `global_mutex_1`, ...).
    pub configuration: String,
    /// Its design.
    pub design: Design,
    /// Shards (engine) or driving threads (baselines).
    pub threads: usize,
    /// Which run (0-based).
    pub run: usize,
    /// Payments replayed.
    pub payments: usize,
    /// Wall time of the replay, seconds.
    pub wall_secs: f64,
    /// Payments per second.
    pub payments_per_sec: f64,
    /// CPU time of the whole process during the replay, seconds (None where `/proc` is not
    /// readable).
    pub cpu_secs: Option<f64>,
    /// The engine driver thread's CPU time over the process's (engine only).
    pub driver_cpu_share: Option<f64>,
    /// Forwards handed from one shard to another (engine only).
    pub cross_shard_forwards: u64,
    /// Each shard's busy time over the wall time (engine only).
    pub shard_busy: Vec<f64>,
}

impl Measurement {
    /// Process CPU per payment, microseconds.
    pub fn cpu_us_per_payment(&self) -> Option<f64> {
        self.cpu_secs.map(|c| c * 1e6 / self.payments as f64)
    }
}

/// What [`run`] measured. Serialized as one flat JSON object: a field per configuration
/// (its median payments/s), the ratios, and the details.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Median payments/s of every configuration, by name (`engine_1`, `engine_2`, ...,
    /// `global_mutex_1`, ..., `per_peer_mutex_1`, ...).
    #[serde(flatten)]
    pub medians: BTreeMap<String, f64>,
    /// Engine with 2 shards over engine with 1 shard: the median of the per-run ratios
    /// (None when fewer than 2 shards were measured).
    pub ratio_2_vs_1: Option<f64>,
    /// The same ratio for the global-Mutex baseline (2 threads over 1).
    pub global_mutex_ratio_2_vs_1: Option<f64>,
    /// The same ratio for the per-peer-Mutex baseline (2 threads over 1).
    pub per_peer_mutex_ratio_2_vs_1: Option<f64>,
    /// The engine driver thread's share of the process CPU: the largest of the engine
    /// configurations' medians (None where `/proc` is not readable).
    pub driver_cpu_share: Option<f64>,
    /// [`cores`] on the machine that ran it.
    pub cores: usize,
    /// The largest shard count measured.
    pub max_shards: usize,
    /// Lanes.
    pub lanes: usize,
    /// Payments per lane.
    pub payments_per_lane: usize,
    /// Payments per replay (lanes × payments per lane), every one forwarded.
    pub payments: usize,
    /// Runs per configuration.
    pub runs: usize,
    /// Peer messages in the recording (what the driver feeds per replay).
    pub recorded_messages: usize,
    /// Seconds the recording with real peers took.
    pub record_secs: f64,
    /// Every replay, in the order run.
    pub measurements: Vec<Measurement>,
}

impl Report {
    /// The median payments/s of a configuration, if measured.
    pub fn median(&self, design: Design, threads: usize) -> Option<f64> {
        self.medians.get(&design.configuration(threads)).copied()
    }

    fn runs_of(&self, design: Design, threads: usize) -> impl Iterator<Item = &Measurement> {
        self.measurements
            .iter()
            .filter(move |m| m.design == design && m.threads == threads)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scaling: {} lanes x {} payments = {} forwarded payments per replay; {} cores; median of {} runs",
            self.lanes, self.payments_per_lane, self.payments, self.cores, self.runs
        )?;
        writeln!(
            f,
            "{:<46} {:>10}  {:<24} {:>12} {:>10} {:>12}",
            "configuration", "payments/s", "runs", "CPU/payment", "driver CPU", "cross-shard"
        )?;
        let mut designs = vec![Design::Engine, Design::GlobalMutex, Design::PerPeerMutex];
        if self
            .measurements
            .iter()
            .any(|m| m.design == Design::EngineWithinShard)
        {
            designs.push(Design::EngineWithinShard);
        }
        for design in designs {
            for threads in 1..=self.max_shards {
                let Some(median) = self.median(design, threads) else {
                    continue;
                };
                let runs: Vec<&Measurement> = self.runs_of(design, threads).collect();
                let rates = runs
                    .iter()
                    .map(|m| format!("{:.0}", m.payments_per_sec))
                    .collect::<Vec<_>>()
                    .join(" ");
                let cpu = median_of(runs.iter().filter_map(|m| m.cpu_us_per_payment()))
                    .map_or("-".to_string(), |us| format!("{:.2} ms", us / 1000.0));
                let driver = median_of(runs.iter().filter_map(|m| m.driver_cpu_share))
                    .map_or("-".to_string(), |s| format!("{:.1}%", s * 100.0));
                let cross = match design {
                    Design::Engine | Design::EngineWithinShard => runs
                        .first()
                        .map_or("-".to_string(), |m| m.cross_shard_forwards.to_string()),
                    _ => "-".to_string(),
                };
                writeln!(
                    f,
                    "{:<46} {:>10.0}  {:<24} {:>12} {:>10} {:>12}",
                    design.describe(threads),
                    median,
                    rates,
                    cpu,
                    driver,
                    cross
                )?;
            }
        }
        let ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}x"));
        writeln!(
            f,
            "2 vs 1 (median of per-run ratios): engine {}, global Mutex {}, per-peer Mutex {}",
            ratio(self.ratio_2_vs_1),
            ratio(self.global_mutex_ratio_2_vs_1),
            ratio(self.per_peer_mutex_ratio_2_vs_1)
        )?;
        write!(
            f,
            "driver CPU share (largest engine median): {}; recording: {} peer messages in {:.1} s",
            self.driver_cpu_share
                .map_or("-".to_string(), |s| format!("{:.1}%", s * 100.0)),
            self.recorded_messages,
            self.record_secs
        )
    }
}

/// The median of some values (the mean of the two middle ones for an even count); None if
/// empty.
pub fn median_of(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(crate::two_node::median_sorted(&v))
}

/// Runs the scaling workload.
pub fn run(options: &Options) -> Result<Report, Error> {
    run_with_progress(options, |_| {})
}

/// [`run`], calling `progress` after each replay (for a progress display).
pub fn run_with_progress(
    options: &Options,
    mut progress: impl FnMut(&Measurement),
) -> Result<Report, Error> {
    let Options {
        max_shards,
        lanes: lanes_n,
        payments_per_lane,
        runs,
        within_shard,
    } = *options;
    check_options(lanes_n, payments_per_lane, runs)?;
    if max_shards == 0 {
        return Err(Error::Options("max shards must be at least 1".into()));
    }
    let t = Instant::now();
    let (peers, lanes) = choose_lanes(lanes_n, true);
    let rec = record(peers, &lanes, payments_per_lane)?;
    let within = if within_shard {
        let (p, l) = choose_lanes(lanes_n, false);
        let r = record(p, &l, payments_per_lane)?;
        Some((p, l, r))
    } else {
        None
    };
    let record_secs = t.elapsed().as_secs_f64();
    tracing::info!(
        lanes = lanes_n,
        payments_per_lane,
        record_secs,
        "recorded the scaling workload"
    );

    // A design's thread counts run back to back (its 2-vs-1 ratio compares neighbours).
    let mut blocks: Vec<(Design, Vec<usize>)> =
        [Design::Engine, Design::GlobalMutex, Design::PerPeerMutex]
            .into_iter()
            .map(|design| (design, (1..=max_shards).collect()))
            .collect();
    if within.is_some() {
        blocks.push((Design::EngineWithinShard, vec![2]));
    }
    let mut measurements = Vec::new();
    let mut ratios: [Vec<f64>; 3] = Default::default();
    for run in 0..runs {
        let mut this_run: Vec<Measurement> = Vec::new();
        // Each run starts with the design after the one the run before started with, and
        // every other run takes the thread counts from the largest down: no configuration
        // always runs first, or always right after the same one.
        let mut order = blocks.clone();
        order.rotate_left(run % blocks.len());
        let order = order.into_iter().flat_map(|(design, mut counts)| {
            if run % 2 == 1 {
                counts.reverse();
            }
            counts.into_iter().map(move |threads| (design, threads))
        });
        for (design, threads) in order {
            let o = match (design, &within) {
                (Design::Engine, _) => replay_engine(
                    engine_config(threads),
                    None,
                    peers,
                    &lanes,
                    &rec,
                    &design.configuration(threads),
                )?,
                (Design::EngineWithinShard, Some((p, l, r))) => replay_engine(
                    engine_config(threads),
                    None,
                    *p,
                    l,
                    r,
                    &design.configuration(threads),
                )?,
                (Design::EngineWithinShard, None) => continue,
                (Design::GlobalMutex | Design::PerPeerMutex, _) => {
                    replay_locked(design, threads, peers, &lanes, &rec)?
                }
            };
            this_run.push(o.measurement(design, threads, run));
            progress(this_run.last().expect("just pushed"));
        }
        for (i, design) in [Design::Engine, Design::GlobalMutex, Design::PerPeerMutex]
            .into_iter()
            .enumerate()
        {
            let rate = |threads: usize| {
                this_run
                    .iter()
                    .find(|m| m.design == design && m.threads == threads)
                    .map(|m| m.payments_per_sec)
            };
            if let (Some(two), Some(one)) = (rate(2), rate(1)) {
                ratios[i].push(two / one);
            }
        }
        measurements.extend(this_run);
    }

    let mut medians = BTreeMap::new();
    let mut driver_shares = Vec::new();
    for m in &measurements {
        if medians.contains_key(&m.configuration) {
            continue;
        }
        let same = || {
            measurements
                .iter()
                .filter(|x| x.configuration == m.configuration)
        };
        if let Some(rate) = median_of(same().map(|x| x.payments_per_sec)) {
            medians.insert(m.configuration.clone(), rate);
        }
        if let Some(share) = median_of(same().filter_map(|x| x.driver_cpu_share)) {
            driver_shares.push(share);
        }
    }
    let [engine, global, per_peer] = ratios;
    Ok(Report {
        medians,
        ratio_2_vs_1: median_of(engine),
        global_mutex_ratio_2_vs_1: median_of(global),
        per_peer_mutex_ratio_2_vs_1: median_of(per_peer),
        driver_cpu_share: driver_shares.into_iter().reduce(f64::max),
        cores: cores(),
        max_shards,
        lanes: lanes_n,
        payments_per_lane,
        payments: lanes_n * payments_per_lane,
        runs,
        recorded_messages: rec.scripts.iter().map(Vec::len).sum(),
        record_secs,
        measurements,
    })
}

fn check_options(lanes: usize, payments_per_lane: usize, runs: usize) -> Result<(), Error> {
    if lanes == 0 || payments_per_lane == 0 || runs == 0 {
        return Err(Error::Options(
            "lanes, payments per lane and runs must each be at least 1".into(),
        ));
    }
    // Each lane needs two peers; the recording holds every message in memory.
    if lanes > 100_000 {
        return Err(Error::Options("at most 100,000 lanes".into()));
    }
    if payments_per_lane > MAX_PAYMENTS_PER_LANE {
        return Err(Error::Options(format!(
            "at most {MAX_PAYMENTS_PER_LANE} payments per lane: each lane's channels hold \
             500,000 sat a side, and its payments (10,000 sat and up) all go one way"
        )));
    }
    Ok(())
}

/// The most payments a lane makes: its payments (10,000,000 msat plus 1,000 per payment
/// before it, and the routing fee) all flow from A_k through the routing node to B_k, over
/// channels of 1,000,000 sat whose opener pushed half to the other side; the 49th no longer
/// fits A_k's outbound capacity (reserve and commitment fee kept).
pub const MAX_PAYMENTS_PER_LANE: usize = 48;

/// Lane k: (peer index of A_k, peer index of B_k), on different shards of 2 when `cross`,
/// else on the same shard (half the lanes on each). Returns the peer count too.
fn choose_lanes(lanes: usize, cross: bool) -> (usize, Vec<(usize, usize)>) {
    let placement = Placement::new(&hub_secret(), 2);
    let secp = Secp256k1::signing_only();
    let (mut s0, mut s1) = (Vec::new(), Vec::new());
    let mut i = 0;
    while s0.len() < 2 * lanes || s1.len() < 2 * lanes {
        let id = PublicKey::from_secret_key(&secp, &secret(format!("peer-{i}").as_bytes()));
        if placement.shard_of(&id) == 0 {
            s0.push(i);
        } else {
            s1.push(i);
        }
        i += 1;
    }
    let pairs = (0..lanes)
        .map(|k| match (cross, k % 2 == 0) {
            (true, true) => (s0[k], s1[k]),
            (true, false) => (s1[k], s0[k]),
            (false, true) => (s0[k], s0[k + lanes]),
            (false, false) => (s1[k], s1[k + lanes]),
        })
        .collect();
    (i, pairs)
}

/// Connects the peers and opens each lane's two channels (funded by the peers, half pushed
/// to the routing node so it can forward). Deterministic: the same for every configuration.
fn setup<H: Hub>(hub: H, peers: usize, lanes: &[(usize, usize)]) -> Net<H> {
    let mut net = Net::new(hub, peers);
    let specs: Vec<(usize, bool)> = lanes
        .iter()
        .flat_map(|&(a, b)| [(a, false), (b, false)])
        .collect();
    net.open_channels(&specs);
    net
}

/// One peer message of a lane: send it once the routing node has sent `need[0]` messages
/// to A and `need[1]` to B.
struct Step {
    side: usize,
    bytes: Vec<u8>,
    need: [usize; 2],
}

/// The recorded traffic of every lane.
struct Recording {
    /// Per lane, the peers' messages in order.
    scripts: Vec<Vec<Step>>,
    /// Per lane and side, what the routing node sent.
    expected: Vec<[Vec<Vec<u8>>; 2]>,
    /// Per lane, the node ids of A and B.
    ids: Vec<[PublicKey; 2]>,
    /// Payments per lane.
    payments: usize,
}

impl Recording {
    fn where_is(&self) -> HashMap<PublicKey, (usize, usize)> {
        let mut where_is = HashMap::new();
        for (k, ids) in self.ids.iter().enumerate() {
            where_is.insert(ids[0], (k, 0));
            where_is.insert(ids[1], (k, 1));
        }
        where_is
    }

    fn payments(&self) -> usize {
        self.scripts.len() * self.payments
    }
}

/// Makes the payments with real peers around a 1-shard engine and keeps the wire traffic.
fn record(peers: usize, lanes: &[(usize, usize)], payments: usize) -> Result<Recording, Error> {
    let engine = Engine::new(engine_config(1), hub_secret(), hub_seed(), 100, genesis());
    let mut net = setup(Threaded { engine }, peers, lanes);
    net.eager_claims = true;
    let chan_of: HashMap<usize, usize> = net
        .channels
        .iter()
        .enumerate()
        .map(|(k, c)| (c.peer, k))
        .collect();
    let mut partner = vec![None; peers];
    for &(a, b) in lanes {
        partner[a] = Some(b);
        partner[b] = Some(a);
    }
    net.recorder = Some(Recorder {
        partner,
        delivered: vec![0; peers],
        to_hub: Vec::new(),
        from_hub: vec![Vec::new(); peers],
    });
    let initial = net.balances();
    for p in 0..payments {
        for &(a, b) in lanes {
            let amount = 10_000_000 + p as u64 * 1000;
            net.start_payment(
                Who::Peer(a),
                Who::Peer(b),
                Some(chan_of[&a]),
                Some(chan_of[&b]),
                amount,
                true,
            );
        }
        net.run();
    }
    let errors = net.check(&initial);
    if !errors.is_empty() {
        return Err(Error::Recording(errors.join("; ")));
    }
    if net.forwarded_count as usize != payments * lanes.len() {
        return Err(Error::Recording(format!(
            "{} payments forwarded, {} made",
            net.forwarded_count,
            payments * lanes.len()
        )));
    }
    let ids = lanes
        .iter()
        .map(|&(a, b)| [net.peer_id(a), net.peer_id(b)])
        .collect();
    let Some(rec) = net.recorder.take() else {
        return Err(Error::Recording("the recorder is gone".into()));
    };
    let Net {
        hub: Threaded { engine },
        ..
    } = net;
    engine.shutdown(Duration::from_secs(5));
    let mut lane_of = HashMap::new();
    for (k, &(a, b)) in lanes.iter().enumerate() {
        lane_of.insert(a, (k, 0));
        lane_of.insert(b, (k, 1));
    }
    let mut scripts: Vec<Vec<Step>> = lanes.iter().map(|_| Vec::new()).collect();
    for (peer, bytes, mine, theirs) in rec.to_hub {
        let Some(&(k, side)) = lane_of.get(&peer) else {
            return Err(Error::Recording(format!("peer {peer} is in no lane")));
        };
        let need = if side == 0 {
            [mine, theirs]
        } else {
            [theirs, mine]
        };
        scripts[k].push(Step { side, bytes, need });
    }
    let mut from_hub = rec.from_hub;
    let expected = lanes
        .iter()
        .map(|&(a, b)| {
            [
                std::mem::take(&mut from_hub[a]),
                std::mem::take(&mut from_hub[b]),
            ]
        })
        .collect();
    Ok(Recording {
        scripts,
        expected,
        ids,
        payments,
    })
}

/// CPU time of the calling thread (ns), from the kernel's schedstat (Linux).
/// What the routing node wrote to a lane's two connections, still encrypted (one frame per
/// message).
type LaneFrames = [Vec<Vec<u8>>; 2];

fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
}

/// CPU time of the whole process (ns), from /proc/self/stat (utime + stime in clock ticks of
/// 10 ms, Linux's USER_HZ).
fn process_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit(')').next()?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

fn elapsed_ns(before: Option<u64>, after: Option<u64>) -> Option<Duration> {
    Some(Duration::from_nanos(after?.checked_sub(before?)?))
}

/// What one replay measured.
struct Outcome {
    /// The store's syncs when the timed replay started (engine with a store only).
    setup_syncs: u64,
    payments: usize,
    wall: Duration,
    process_cpu: Option<Duration>,
    driver_cpu: Option<Duration>,
    cross_shard: u64,
    /// Each shard's busy share of the wall time (engine only).
    shard_busy: Vec<f64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.payments as f64 / self.wall.as_secs_f64()
    }

    fn measurement(&self, design: Design, threads: usize, run: usize) -> Measurement {
        let driver_cpu_share = match (self.driver_cpu, self.process_cpu) {
            (Some(d), Some(p)) if !p.is_zero() => Some(d.as_secs_f64() / p.as_secs_f64()),
            _ => None,
        };
        Measurement {
            configuration: design.configuration(threads),
            design,
            threads,
            run,
            payments: self.payments,
            wall_secs: self.wall.as_secs_f64(),
            payments_per_sec: self.rate(),
            cpu_secs: self.process_cpu.map(|c| c.as_secs_f64()),
            driver_cpu_share,
            cross_shard_forwards: self.cross_shard,
            shard_busy: self.shard_busy.clone(),
        }
    }
}

/// Per lane: how far its script got and how many messages each side has received.
#[derive(Default)]
struct LaneState {
    pos: usize,
    got: [usize; 2],
}

fn lane_done(rec: &Recording, k: usize, st: &LaneState) -> bool {
    st.pos == rec.scripts[k].len()
        && st.got[0] == rec.expected[k][0].len()
        && st.got[1] == rec.expected[k][1].len()
}

/// One lane during an engine replay, shared by the shards that own its two sockets: the
/// recorded peer messages (encrypted), how far they are released, and what the shards wrote.
/// A shard's write to one side may release the next messages of either side onto that
/// side's wire, which rings the shard that owns it: each shard reads its own peers' bytes,
/// as each baseline thread reads its own lanes, and no driver thread moves them.
struct ReplayLane {
    k: usize,
    /// Per recorded step: its side and what the routing node must have sent first.
    steps: Vec<(usize, [usize; 2])>,
    frames: Vec<Vec<u8>>,
    /// Messages the routing node sends each side in all.
    expected: [usize; 2],
    wires: [Arc<MemoryWire>; 2],
    state: std::sync::Mutex<ReplayState>,
    done: std::sync::mpsc::Sender<usize>,
}

#[derive(Default)]
struct ReplayState {
    /// Steps released onto their wire.
    pos: usize,
    /// Messages the routing node wrote to each side.
    got: [usize; 2],
    /// What it wrote to each side, still encrypted (compared after the clock stops).
    written: [Vec<Vec<u8>>; 2],
    /// The routing node closed a side.
    closed: usize,
    finished: bool,
}

impl ReplayLane {
    /// Releases every step whose messages the routing node has sent, then rings the wires
    /// that got bytes. Called with the state lock held by the caller's write, or at the start.
    fn release(&self, st: &mut ReplayState) -> [bool; 2] {
        let mut ring = [false; 2];
        while let Some(&(side, need)) = self.steps.get(st.pos) {
            if st.got[0] < need[0] || st.got[1] < need[1] {
                break;
            }
            if let (Some(wire), Some(frame)) = (self.wires.get(side), self.frames.get(st.pos)) {
                wire.push_quietly(frame);
            }
            ring[side] = true;
            st.pos += 1;
        }
        if !st.finished
            && st.pos == self.steps.len()
            && st.got[0] >= self.expected[0]
            && st.got[1] >= self.expected[1]
        {
            st.finished = true;
            let _ = self.done.send(self.k);
        }
        ring
    }

    fn ring(&self, ring: [bool; 2]) {
        for (wire, ring) in self.wires.iter().zip(ring) {
            if ring {
                wire.wake();
            }
        }
    }
}

/// Where the routing node's writes to one side of a lane go during the replay.
struct ReplaySide {
    lane: Arc<ReplayLane>,
    side: usize,
}

impl shard_engine::ConnectionWriter for ReplaySide {
    fn write(&mut self, bytes: Vec<u8>) -> bool {
        // One write per message (the shard's socket never holds bytes back here).
        let ring = {
            let mut st = self.lane.state.lock().unwrap_or_else(|p| p.into_inner());
            st.got[self.side] += 1;
            st.written[self.side].push(bytes);
            self.lane.release(&mut st)
        };
        self.lane.ring(ring);
        true
    }

    fn close(&mut self) {
        let mut st = self.lane.state.lock().unwrap_or_else(|p| p.into_inner());
        st.closed += 1;
    }
}

/// Replays `rec` on a fresh engine with `config` (persisting to `store` when given). Every
/// peer connection is a socket its shard owns ([`Engine::attach_socket`], through the
/// testkit's in-memory [`Sockets`] hub); the recorded peer messages are released onto a
/// lane's wires as the shards' own writes satisfy them (see [`ReplayLane`]), so the shards
/// read and answer their peers with no driver thread between: the calling thread only
/// waits for the lanes to finish.
fn replay_engine(
    mut config: EngineConfig,
    store: Option<Arc<dyn Store>>,
    peers: usize,
    lanes: &[(usize, usize)],
    rec: &Recording,
    name: &str,
) -> Result<Outcome, Error> {
    let engine_error = |error| Error::Engine {
        configuration: name.to_string(),
        error,
    };
    config.store = store.clone();
    let probe = store.clone();
    let engine = match store {
        Some(_) => {
            Engine::open(config, hub_secret(), hub_seed(), 100, genesis()).map_err(engine_error)?
        }
        None => Engine::new(config, hub_secret(), hub_seed(), 100, genesis()),
    };
    let mut net = setup(Sockets::new(engine), peers, lanes);
    let mut links = lane_links(&mut net, lanes)?;
    let hub = net.hub;
    let n = rec.scripts.len();
    // Every peer message, encrypted before the clock starts, in the order it will be read
    // (BOLT 8 nonces run in order on each connection): the shards decrypt and encrypt in
    // the timed section.
    let mut frames = seal_scripts(rec, &mut links);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
    let mut replay = Vec::with_capacity(n);
    for (k, pair) in links.iter().enumerate() {
        let wire = |side: usize| {
            pair.get(side)
                .and_then(|l| hub.wire(l.conn))
                .ok_or_else(|| Error::Recording(format!("lane {k} has no wire")))
        };
        let lane = Arc::new(ReplayLane {
            k,
            steps: rec.scripts[k].iter().map(|s| (s.side, s.need)).collect(),
            frames: std::mem::take(&mut frames[k]),
            expected: [rec.expected[k][0].len(), rec.expected[k][1].len()],
            wires: [wire(0)?, wire(1)?],
            state: Default::default(),
            done: done_tx.clone(),
        });
        for side in 0..2 {
            lane.wires[side].redirect(Box::new(ReplaySide {
                lane: lane.clone(),
                side,
            }));
        }
        replay.push(lane);
    }
    let engine = hub.engine();
    let busy0: Vec<u64> = engine.shard_stats().iter().map(|s| s.busy_nanos).collect();
    let forwards0: u64 = engine.shard_stats().iter().map(|s| s.forwards_out).sum();
    let setup_syncs = probe.as_ref().map_or(0, |s| s.syncs());
    let (cpu0, proc0, t0) = (thread_cpu_ns(), process_cpu_ns(), Instant::now());
    for lane in &replay {
        let ring = {
            let mut st = lane.state.lock().unwrap_or_else(|p| p.into_inner());
            lane.release(&mut st)
        };
        lane.ring(ring);
    }
    let mut done = 0;
    let mut idle_waits = 0u32;
    while done < n {
        match done_rx.recv_timeout(Duration::from_millis(2)) {
            Ok(_) => {
                done += 1;
                idle_waits = 0;
            }
            Err(_) => {
                idle_waits += 1;
                let unread = replay.iter().any(|l| l.wires.iter().any(|w| w.unread()));
                if idle_waits > 5_000 && engine.is_idle() && !unread {
                    let missing: usize = replay
                        .iter()
                        .map(|l| {
                            let st = l.state.lock().unwrap_or_else(|p| p.into_inner());
                            l.steps.len() - st.pos
                        })
                        .sum();
                    return Err(Error::Diverged {
                        configuration: name.to_string(),
                        mismatches: missing.max(1),
                    });
                }
            }
        }
    }
    let wall = t0.elapsed();
    let (cpu1, proc1) = (thread_cpu_ns(), process_cpu_ns());
    let stats = engine.shard_stats();
    let shard_busy = stats
        .iter()
        .zip(&busy0)
        .map(|(s, b0)| s.busy_nanos.saturating_sub(*b0) as f64 / wall.as_nanos() as f64)
        .collect();
    let cross_shard = stats.iter().map(|s| s.forwards_out).sum::<u64>() - forwards0;
    // What the replay wrote and closed, taken before the shutdown closes every socket.
    let mut closed = 0;
    let written: Vec<LaneFrames> = replay
        .iter()
        .map(|l| {
            let mut st = l.state.lock().unwrap_or_else(|p| p.into_inner());
            closed += st.closed;
            std::mem::take(&mut st.written)
        })
        .collect();
    for lane in &replay {
        // The lanes' writers hold their lane: let them go.
        for wire in &lane.wires {
            wire.redirect(Box::new(Closed));
        }
    }
    hub.into_engine().shutdown(Duration::from_secs(5));
    let mismatches = closed + compare(rec, &mut links, &written);
    if mismatches > 0 {
        return Err(Error::Diverged {
            configuration: name.to_string(),
            mismatches,
        });
    }
    Ok(Outcome {
        setup_syncs,
        payments: rec.payments(),
        wall,
        process_cpu: elapsed_ns(proc0, proc1),
        driver_cpu: elapsed_ns(cpu0, cpu1),
        cross_shard,
        shard_busy,
    })
}

/// A writer for a wire after its replay: takes nothing.
struct Closed;

impl shard_engine::ConnectionWriter for Closed {
    fn write(&mut self, _bytes: Vec<u8>) -> bool {
        false
    }
    fn close(&mut self) {}
}

/// The peers' ends of each lane's two connections, taken from the set-up network.
fn lane_links<H: Hub>(net: &mut Net<H>, lanes: &[(usize, usize)]) -> Result<Vec<[Link; 2]>, Error> {
    let mut links = net.take_links();
    lanes
        .iter()
        .map(|&(a, b)| {
            let mut take = |i: usize| {
                links
                    .get_mut(i)
                    .and_then(Option::take)
                    .ok_or_else(|| Error::Recording(format!("peer {i} has no connection")))
            };
            Ok([take(a)?, take(b)?])
        })
        .collect()
}

/// Each lane's recorded peer messages, encrypted on their connections in script order.
fn seal_scripts(rec: &Recording, links: &mut [[Link; 2]]) -> Vec<Vec<Vec<u8>>> {
    rec.scripts
        .iter()
        .zip(links.iter_mut())
        .map(|(script, pair)| {
            script
                .iter()
                .map(|step| pair[step.side].seal(&step.bytes))
                .collect()
        })
        .collect()
}

/// Decrypts what the routing node wrote to each lane's connections and compares it with the
/// recording byte for byte: the messages that differ or are missing (or extra).
fn compare(rec: &Recording, links: &mut [[Link; 2]], written: &[LaneFrames]) -> usize {
    let mut mismatches = 0;
    for (k, pair) in links.iter_mut().enumerate() {
        for (side, link) in pair.iter_mut().enumerate() {
            let expected = &rec.expected[k][side];
            let Some(got) = link.open_frames(&written[k][side]) else {
                mismatches += expected.len().max(1);
                continue;
            };
            mismatches += got.iter().zip(expected).filter(|(g, e)| g != e).count();
            mismatches += got.len().abs_diff(expected.len());
        }
    }
    mismatches
}

/// Replays `rec` on a lock-based baseline driven by `threads` threads (lane k on thread
/// k mod `threads`), each handling its lanes' messages on the calling thread under the locks.
fn replay_locked(
    design: Design,
    threads: usize,
    peers: usize,
    lanes: &[(usize, usize)],
    rec: &Recording,
) -> Result<Outcome, Error> {
    let name = design.configuration(threads);
    let locked = Arc::new(match design {
        Design::PerPeerMutex => Locked::per_peer(hub_secret(), hub_seed(), 100, genesis()),
        _ => Locked::global(hub_secret(), hub_seed(), 100, genesis()),
    });
    let secp = Secp256k1::signing_only();
    let hub = BaselineHub {
        locked: locked.clone(),
        node_id: PublicKey::from_secret_key(&secp, &hub_secret()),
        sink: Sink::default(),
        links: HashMap::new(),
    };
    let mut net = setup(hub, peers, lanes);
    let mut links = lane_links(&mut net, lanes)?;
    let crypto = Crypto::from_hub(net.hub);
    // Encrypted before the clock starts, as for the engine; the threads decrypt each message
    // and encrypt each answer (outside the node's locks) in the timed section.
    let frames = seal_scripts(rec, &mut links);
    let where_is = rec.where_is();
    let (proc0, t0) = (process_cpu_ns(), Instant::now());
    let drivers: Vec<(usize, Vec<(usize, LaneFrames)>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let locked = locked.clone();
                let (where_is, crypto, frames) = (&where_is, &crypto, &frames);
                scope
                    .spawn(move || drive_locked(&locked, crypto, rec, frames, where_is, t, threads))
            })
            .collect();
        handles
            .into_iter()
            // A driver thread that panicked counts as a divergence of its lanes.
            .map(|h| h.join().unwrap_or((1, Vec::new())))
            .collect()
    });
    let wall = t0.elapsed();
    let proc1 = process_cpu_ns();
    let mut written: Vec<LaneFrames> = (0..rec.scripts.len()).map(|_| Default::default()).collect();
    let mut mismatches = 0;
    for (m, lanes_written) in drivers {
        mismatches += m;
        for (k, w) in lanes_written {
            written[k] = w;
        }
    }
    mismatches += compare(rec, &mut links, &written);
    if mismatches > 0 {
        return Err(Error::Diverged {
            configuration: name,
            mismatches,
        });
    }
    Ok(Outcome {
        setup_syncs: 0,
        payments: rec.payments(),
        wall,
        process_cpu: elapsed_ns(proc0, proc1),
        driver_cpu: None,
        cross_shard: 0,
        shard_busy: Vec::new(),
    })
}

/// One baseline driver thread: lanes `t`, `t + threads`, ... in turn, one step each: it
/// decrypts the step's frame, handles its messages and encrypts the answers. Returns the
/// messages that were missing or out of place, and what it wrote to each of its lanes'
/// connections (to compare with the recording after the clock stops).
fn drive_locked(
    locked: &Locked,
    crypto: &Crypto,
    rec: &Recording,
    frames: &[Vec<Vec<u8>>],
    where_is: &HashMap<PublicKey, (usize, usize)>,
    t: usize,
    threads: usize,
) -> (usize, Vec<(usize, LaneFrames)>) {
    let mine: Vec<usize> = (0..rec.scripts.len())
        .filter(|k| k % threads == t)
        .collect();
    let mut state: Vec<LaneState> = mine.iter().map(|_| LaneState::default()).collect();
    let mut written: Vec<LaneFrames> = mine.iter().map(|_| Default::default()).collect();
    let mut mismatches = 0;
    let mut sink = Sink::default();
    loop {
        let mut progressed = false;
        for (x, &k) in mine.iter().enumerate() {
            let st = &mut state[x];
            let Some(step) = rec.scripts[k].get(st.pos) else {
                continue;
            };
            if st.got[0] < step.need[0] || st.got[1] < step.need[1] {
                // The baseline handles each message synchronously: what the step answers
                // should have been sent already. It was not: the lane cannot go on.
                mismatches += rec.scripts[k].len() - st.pos;
                st.pos = rec.scripts[k].len();
                continue;
            }
            let from = rec.ids[k][step.side];
            let Some(messages) = crypto.open(&from, &frames[k][st.pos]) else {
                mismatches += 1;
                st.pos += 1;
                continue;
            };
            for m in messages {
                locked.handle_decrypted(from, &m, &mut sink);
            }
            st.pos += 1;
            progressed = true;
            for (peer, o) in sink.messages.drain(..) {
                let Some(&(k2, side)) = where_is.get(&peer).filter(|(k2, _)| *k2 == k) else {
                    // An output outside this lane.
                    mismatches += 1;
                    continue;
                };
                debug_assert_eq!(k2, k);
                match o {
                    PeerOutput::Message(b) => match crypto.seal(&peer, &b) {
                        Some(frame) => written[x][side].push(frame),
                        None => mismatches += 1,
                    },
                    PeerOutput::Disconnect => mismatches += 1,
                }
                st.got[side] += 1;
            }
            sink.events.clear();
        }
        if !progressed {
            for (x, &k) in mine.iter().enumerate() {
                if !lane_done(rec, k, &state[x]) {
                    mismatches += 1;
                }
            }
            return (mismatches, mine.into_iter().zip(written).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny run: every configuration replays the recording byte for byte, and the JSON
    /// report carries a field per configuration and the ratios.
    #[test]
    fn a_small_run_replays_every_configuration_exactly() {
        let options = Options {
            max_shards: 2,
            lanes: 2,
            payments_per_lane: 2,
            runs: 2,
            within_shard: true,
        };
        let report = run(&options).expect("the replays match the recording");
        assert_eq!(report.payments, 4);
        assert_eq!(report.measurements.len(), 14);
        // The second run starts with the next design, from its largest thread count down;
        // each configuration is measured once a run.
        let first = |r: usize| {
            report
                .measurements
                .iter()
                .find(|m| m.run == r)
                .map(|m| m.configuration.clone())
        };
        assert_eq!(first(0).as_deref(), Some("engine_1"));
        assert_eq!(first(1).as_deref(), Some("global_mutex_2"));
        for m in &report.measurements {
            let same = report
                .measurements
                .iter()
                .filter(|x| x.configuration == m.configuration && x.run == m.run)
                .count();
            assert_eq!(same, 1, "{}", m.configuration);
        }
        for m in &report.measurements {
            assert_eq!(m.payments, 4, "{}", m.configuration);
            assert!(m.payments_per_sec > 0.0, "{}", m.configuration);
        }
        // With 2 shards every lane crosses shards; with 1 none does.
        let engine = |t| {
            report
                .measurements
                .iter()
                .find(|m| m.design == Design::Engine && m.threads == t)
                .expect("measured")
        };
        assert_eq!(engine(1).cross_shard_forwards, 0);
        assert_eq!(engine(2).cross_shard_forwards, 4);
        let within = report
            .measurements
            .iter()
            .find(|m| m.design == Design::EngineWithinShard)
            .expect("measured");
        assert_eq!(within.cross_shard_forwards, 0);
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&report).expect("serializes"))
                .expect("parses");
        for field in [
            "engine_1",
            "engine_2",
            "global_mutex_1",
            "global_mutex_2",
            "per_peer_mutex_1",
            "per_peer_mutex_2",
            "engine_2_within_shard",
            "ratio_2_vs_1",
            "global_mutex_ratio_2_vs_1",
            "per_peer_mutex_ratio_2_vs_1",
            "cores",
            "payments",
        ] {
            assert!(json[field].is_number(), "{field} in {json}");
        }
        let ratio = json["ratio_2_vs_1"].as_f64().expect("a number");
        let rate = |run: usize, threads: usize| {
            report
                .measurements
                .iter()
                .find(|m| m.run == run && m.design == Design::Engine && m.threads == threads)
                .map(|m| m.payments_per_sec)
                .expect("measured")
        };
        let expected =
            median_of([rate(0, 2) / rate(0, 1), rate(1, 2) / rate(1, 1)]).expect("two ratios");
        assert!(
            (ratio - expected).abs() < 1e-9 * expected,
            "two runs: the median of their ratios"
        );
        // The plot reads the same curves back from the JSON as from the report.
        // (serde_json's float parsing may differ from the printed value in the last bit.)
        let from_json = plot::Curves::from_json(&json).expect("curves");
        let from_report = plot::Curves::from_report(&report);
        assert_eq!(from_json.title, from_report.title);
        for (a, b) in [
            (&from_json.engine, &from_report.engine),
            (&from_json.global_mutex, &from_report.global_mutex),
            (&from_json.per_peer_mutex, &from_report.per_peer_mutex),
        ] {
            assert_eq!(a.len(), b.len());
            for (p, q) in a.iter().zip(b) {
                assert!(
                    p.0 == q.0 && (p.1 - q.1).abs() <= 1e-9 * q.1,
                    "{p:?} vs {q:?}"
                );
            }
        }
        assert_eq!(from_json.engine.len(), 2);
        let svg = plot::svg(&from_json).expect("drawn");
        assert!(svg.starts_with("<svg") && svg.contains("lnshard shard engine"));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_its_middle_values() {
        assert_eq!(median_of([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median_of([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_of(std::iter::empty()), None);
    }

    #[test]
    fn out_of_range_options_are_errors() {
        let bad = Options {
            runs: 0,
            ..Options::default()
        };
        assert!(matches!(run(&bad), Err(Error::Options(_))));
        let bad = Options {
            max_shards: 0,
            ..Options::default()
        };
        assert!(matches!(run(&bad), Err(Error::Options(_))));
        // More payments than a lane's channels hold: refused before anything is recorded
        // (it was a panic in the recording).
        let bad = Options {
            payments_per_lane: MAX_PAYMENTS_PER_LANE + 1,
            ..Options::default()
        };
        assert!(matches!(run(&bad), Err(Error::Options(_))));
        assert!(matches!(
            durable::run(&durable::Options {
                payments_per_lane: MAX_PAYMENTS_PER_LANE + 1,
                ..durable::Options::default()
            }),
            Err(Error::Options(_))
        ));
    }

    #[test]
    fn a_lane_holds_its_most_payments() {
        // The bound is the channels' capacity, not lower: a lane records its most payments.
        let (peers, lanes) = choose_lanes(1, true);
        let rec = record(peers, &lanes, MAX_PAYMENTS_PER_LANE).expect("every payment fits");
        assert_eq!(rec.payments(), MAX_PAYMENTS_PER_LANE);
    }

    #[test]
    fn the_durable_workload_counts_syncs_per_store_mode() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let options = durable::Options {
            shards: 2,
            lanes: 2,
            payments_per_lane: 2,
            runs: 1,
            dir: Some(dir.path().to_path_buf()),
        };
        let report = durable::run(&options).expect("the replays match the recording");
        let field = |k: &str| report.fields[k];
        assert_eq!(field("no_store_fsyncs_per_payment"), 0.0);
        assert!(field("memory_store_fsyncs_per_payment") > 0.0);
        // Group commit off: one write per message the routing node handles (several per
        // payment); the two shards' writes may share an fdatasync (FsStore groups concurrent
        // writes), so at least half of them each sync.
        let off = field("fs_group_commit_off_fsyncs_per_payment");
        assert!(off >= 1.0, "{off}");
        assert!(field("fs_pipelined_fsyncs_per_payment") > 0.0);
        assert_eq!(report.payments_per_sec, field("fs_pipelined"));

        // With one shard nothing writes concurrently, so a sync is a batch: group commit
        // off syncs at least as often as on.
        let one = durable::run(&durable::Options {
            shards: 1,
            ..options
        })
        .expect("the replays match the recording");
        let field = |k: &str| one.fields[k];
        let off = field("fs_group_commit_off_fsyncs_per_payment");
        let on = field("fs_group_commit_on_fsyncs_per_payment");
        assert!(off >= on, "{off} < {on}");
        assert!(off >= 1.0, "{off}");
    }
}
