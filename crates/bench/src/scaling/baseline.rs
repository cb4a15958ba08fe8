//! The two baselines, built from the same NodeCore: LDK's shapes before and after its
//! per-peer refactor (not public: the workload drives them).
//!
//! * [`Locked::global`]: one NodeCore for every peer behind one `Mutex`.
//! * [`Locked::per_peer`]: one NodeCore per peer, each behind its own `Mutex`, in a
//!   `RwLock`'d map; a forward locks the next peer's mutex (never two at once).
//!
//! Both take their peers' bytes as BOLT 8 ciphertext, as the engine does: [`Crypto`] holds
//! each peer's cipher states behind its own `Mutex` (LDK's `PeerManager` keeps each peer's
//! encryptor in its per-peer `Mutex<Peer>`), and the thread that handles a message decrypts
//! it, and encrypts what it sends, outside the node's locks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use shard_engine::lightning_core::bitcoin::{BlockHash, Transaction};
use shard_engine::lightning_core::channel::Channel;
use shard_engine::lightning_core::node::{
    ChannelDetails, Event, ForwardHtlc, ForwardResolution, HtlcSource, NodeConfig, NodeCore,
    Output, PaymentId, Route,
};
use shard_engine::lightning_core::secp256k1::{PublicKey, SecretKey};
use shard_engine::lightning_core::transport::Transport;
use shard_engine::lightning_core::types::{
    ChannelId, PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId,
};
use shard_engine::{ConnectionId, ConnectionWriter, EngineError, PeerOutput};

use lnshard_testkit::Hub;

/// An input for one NodeCore.
enum Input<'a> {
    Connected,
    Message(&'a [u8]),
    Forward(ForwardHtlc),
    Resolve(ForwardResolution),
}

/// What handling an input produced.
#[derive(Default)]
pub(crate) struct Sink {
    pub(crate) messages: Vec<(PublicKey, PeerOutput)>,
    pub(crate) events: Vec<Event>,
}

// One instance per run: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Locked {
    Global(Mutex<NodeCore>),
    PerPeer {
        secret: SecretKey,
        seed: [u8; 32],
        best: Mutex<(u32, BlockHash)>,
        cores: RwLock<HashMap<PublicKey, Arc<Mutex<NodeCore>>>>,
        scids: RwLock<HashMap<ShortChannelId, PublicKey>>,
        channels: RwLock<HashMap<ChannelId, PublicKey>>,
    },
}

impl Locked {
    pub(crate) fn global(secret: SecretKey, seed: [u8; 32], height: u32, hash: BlockHash) -> Self {
        Locked::Global(Mutex::new(NodeCore::new(
            secret,
            seed,
            NodeConfig::default(),
            height,
            hash,
        )))
    }

    pub(crate) fn per_peer(
        secret: SecretKey,
        seed: [u8; 32],
        height: u32,
        hash: BlockHash,
    ) -> Self {
        Locked::PerPeer {
            secret,
            seed,
            best: Mutex::new((height, hash)),
            cores: RwLock::new(HashMap::new()),
            scids: RwLock::new(HashMap::new()),
            channels: RwLock::new(HashMap::new()),
        }
    }

    fn core_of(&self, peer: &PublicKey) -> Option<Arc<Mutex<NodeCore>>> {
        match self {
            Locked::Global(_) => None,
            Locked::PerPeer {
                secret,
                seed,
                best,
                cores,
                ..
            } => {
                if let Some(c) = cores.read().get(peer) {
                    return Some(c.clone());
                }
                let (h, b) = *best.lock();
                let mut map = cores.write();
                Some(
                    map.entry(*peer)
                        .or_insert_with(|| {
                            Arc::new(Mutex::new(NodeCore::new(
                                *secret,
                                *seed,
                                NodeConfig::default(),
                                h,
                                b,
                            )))
                        })
                        .clone(),
                )
            }
        }
    }

    fn apply(core: &mut NodeCore, peer: PublicKey, input: Input<'_>) {
        match input {
            Input::Connected => core.peer_connected(peer),
            Input::Message(bytes) => core.handle_message(peer, bytes),
            Input::Forward(f) => core.handle_forward(f),
            Input::Resolve(r) => core.handle_resolution(r),
        }
    }

    /// Handles `input` for `peer` on the calling thread, following forwards and results to
    /// the NodeCore that owns them.
    fn process(&self, peer: PublicKey, input: Input<'_>, sink: &mut Sink) {
        match self {
            Locked::Global(core) => {
                let mut core = core.lock();
                Self::apply(&mut core, peer, input);
                while let Some(o) = core.poll_output() {
                    match o {
                        Output::SendMessage { node_id, msg } => sink
                            .messages
                            .push((node_id, PeerOutput::Message(msg.encode()))),
                        Output::Disconnect { node_id } => {
                            sink.messages.push((node_id, PeerOutput::Disconnect))
                        }
                        Output::Event(e) => sink.events.push(e),
                        Output::Forward(f) => core.handle_forward(f),
                        Output::Resolve(r) => core.handle_resolution(r),
                        _ => {}
                    }
                }
            }
            Locked::PerPeer {
                scids, channels, ..
            } => {
                let mut work: VecDeque<(PublicKey, Input<'_>)> = VecDeque::new();
                work.push_back((peer, input));
                while let Some((target, input)) = work.pop_front() {
                    let Some(core) = self.core_of(&target) else {
                        continue;
                    };
                    let mut outputs = Vec::new();
                    {
                        let mut core = core.lock();
                        Self::apply(&mut core, target, input);
                        while let Some(o) = core.poll_output() {
                            outputs.push(o);
                        }
                    }
                    for o in outputs {
                        match o {
                            Output::SendMessage { node_id, msg } => sink
                                .messages
                                .push((node_id, PeerOutput::Message(msg.encode()))),
                            Output::Disconnect { node_id } => {
                                sink.messages.push((node_id, PeerOutput::Disconnect))
                            }
                            Output::Event(e) => {
                                match &e {
                                    Event::ChannelPending {
                                        channel_id,
                                        counterparty_node_id,
                                        ..
                                    } => {
                                        channels.write().insert(*channel_id, *counterparty_node_id);
                                    }
                                    Event::ChannelReady {
                                        channel_id,
                                        counterparty_node_id,
                                        short_channel_id,
                                        alias,
                                        ..
                                    } => {
                                        channels.write().insert(*channel_id, *counterparty_node_id);
                                        let mut s = scids.write();
                                        for scid in short_channel_id.iter().chain(alias.iter()) {
                                            s.insert(*scid, *counterparty_node_id);
                                        }
                                    }
                                    _ => {}
                                }
                                sink.events.push(e)
                            }
                            Output::Forward(f) => {
                                let owner = scids.read().get(&f.short_channel_id).copied();
                                work.push_back((owner.unwrap_or(target), Input::Forward(f)));
                            }
                            Output::Resolve(r) => {
                                let owner = match r.source {
                                    HtlcSource::Forwarded { channel_id, .. } => {
                                        channels.read().get(&channel_id).copied()
                                    }
                                    HtlcSource::Local(_) => None,
                                };
                                work.push_back((owner.unwrap_or(target), Input::Resolve(r)));
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn handle_decrypted(&self, peer: PublicKey, bytes: &[u8], sink: &mut Sink) {
        self.process(peer, Input::Message(bytes), sink);
    }

    fn each_core(&self, mut f: impl FnMut(&mut NodeCore, &mut Sink), sink: &mut Sink) {
        match self {
            Locked::Global(core) => f(&mut core.lock(), sink),
            Locked::PerPeer { cores, .. } => {
                let all: Vec<_> = cores.read().values().cloned().collect();
                for c in all {
                    f(&mut c.lock(), sink);
                }
            }
        }
    }
}

/// A baseline as the setup phase's hub (the benchmark's replay calls `Locked` directly).
pub(crate) struct BaselineHub {
    pub(crate) locked: Arc<Locked>,
    pub(crate) node_id: PublicKey,
    pub(crate) sink: Sink,
    /// Each peer's attached connection: the hub's cipher states and the peer's writer.
    pub(crate) links: HashMap<PublicKey, (Transport, Box<dyn ConnectionWriter>)>,
}

/// Each peer's cipher states (the hub's end of its connection), each behind its own lock,
/// shared by the replay's threads.
pub(crate) struct Crypto {
    peers: HashMap<PublicKey, Mutex<Transport>>,
}

impl Crypto {
    /// The cipher states the setup phase left in `hub`'s connections.
    pub(crate) fn from_hub(hub: BaselineHub) -> Crypto {
        Crypto {
            peers: hub
                .links
                .into_iter()
                .map(|(peer, (transport, _))| (peer, Mutex::new(transport)))
                .collect(),
        }
    }

    /// Decrypts `frame` read from `peer` (`None`: unknown peer, or bytes that do not decrypt).
    pub(crate) fn open(&self, peer: &PublicKey, frame: &[u8]) -> Option<Vec<Vec<u8>>> {
        self.peers.get(peer)?.lock().decrypt(frame).ok()
    }

    /// Encrypts `message` for `peer`.
    pub(crate) fn seal(&self, peer: &PublicKey, message: &[u8]) -> Option<Vec<u8>> {
        self.peers.get(peer)?.lock().encrypt(message).ok()
    }
}

fn drain_into(core: &mut NodeCore, sink: &mut Sink) {
    while let Some(o) = core.poll_output() {
        match o {
            Output::SendMessage { node_id, msg } => sink
                .messages
                .push((node_id, PeerOutput::Message(msg.encode()))),
            Output::Event(e) => sink.events.push(e),
            _ => {}
        }
    }
}

const SETUP_ONLY: &str = "the baseline hub is driven only through channel setup";

impl Hub for BaselineHub {
    fn node_id(&self) -> PublicKey {
        self.node_id
    }
    fn shard_of(&self, _peer: &PublicKey) -> usize {
        0
    }
    fn attach_connection(
        &mut self,
        _conn: ConnectionId,
        peer: PublicKey,
        transport: Transport,
        writer: Box<dyn ConnectionWriter>,
    ) -> Result<(), EngineError> {
        self.links.insert(peer, (transport, writer));
        self.locked.process(peer, Input::Connected, &mut self.sink);
        self.flush();
        Ok(())
    }
    fn connection_ciphertext(
        &mut self,
        _conn: ConnectionId,
        peer: PublicKey,
        bytes: Vec<u8>,
    ) -> Result<(), EngineError> {
        let Some((transport, _)) = self.links.get_mut(&peer) else {
            panic!("{SETUP_ONLY}")
        };
        let messages = transport
            .decrypt(&bytes)
            .expect("a test peer's frames decrypt");
        for m in messages {
            self.locked.handle_decrypted(peer, &m, &mut self.sink);
        }
        self.flush();
        Ok(())
    }
    fn detach_connection(
        &mut self,
        _conn: ConnectionId,
        _peer: PublicKey,
    ) -> Result<(), EngineError> {
        panic!("{SETUP_ONLY}")
    }
    fn pump(&mut self) -> bool {
        false
    }
    fn is_idle(&self) -> bool {
        true
    }
    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.sink.events)
    }
    fn create_channel(&mut self, _: PublicKey, _: u64, _: u64) -> Result<ChannelId, EngineError> {
        panic!("{SETUP_ONLY}")
    }
    fn funding_transaction_generated(
        &mut self,
        _: ChannelId,
        _: Transaction,
    ) -> Result<(), EngineError> {
        panic!("{SETUP_ONLY}")
    }
    fn send_payment(
        &mut self,
        _: &Route,
        _: PaymentHash,
        _: PaymentSecret,
        _: PaymentId,
    ) -> Result<(), EngineError> {
        panic!("{SETUP_ONLY}")
    }
    fn create_inbound_payment(
        &mut self,
        _: PaymentPreimage,
        _: Option<u64>,
    ) -> Result<(PaymentHash, PaymentSecret), EngineError> {
        panic!("{SETUP_ONLY}")
    }
    fn claim_funds(&mut self, _: PaymentPreimage) -> Result<(), EngineError> {
        panic!("{SETUP_ONLY}")
    }
    fn fail_htlc_backwards(&mut self, _: PaymentHash) -> Result<(), EngineError> {
        panic!("{SETUP_ONLY}")
    }
    fn best_block_updated(&mut self, height: u32, hash: BlockHash) -> Result<(), EngineError> {
        if let Locked::PerPeer { best, .. } = &*self.locked {
            *best.lock() = (height, hash);
        }
        let locked = self.locked.clone();
        locked.each_core(
            |core, sink| {
                core.best_block_updated(height, hash);
                drain_into(core, sink);
            },
            &mut self.sink,
        );
        // Events may carry ChannelReady: let the per-peer maps learn from them.
        self.refresh_maps();
        self.flush();
        Ok(())
    }
    fn transactions_confirmed(
        &mut self,
        height: u32,
        txs: &[(u32, Transaction)],
    ) -> Result<(), EngineError> {
        let refs: Vec<(u32, &Transaction)> = txs.iter().map(|(i, t)| (*i, t)).collect();
        let locked = self.locked.clone();
        locked.each_core(
            |core, sink| {
                core.transactions_confirmed(height, &refs);
                drain_into(core, sink);
            },
            &mut self.sink,
        );
        self.refresh_maps();
        self.flush();
        Ok(())
    }
    fn list_channels(&mut self) -> Vec<ChannelDetails> {
        let mut all = Vec::new();
        let mut sink = Sink::default();
        self.locked
            .each_core(|core, _| all.extend(core.list_channels()), &mut sink);
        all
    }
    fn channel(&mut self, peer: PublicKey, id: ChannelId) -> Option<Channel> {
        match &*self.locked {
            Locked::Global(core) => core.lock().channel(&peer, &id).cloned(),
            Locked::PerPeer { cores, .. } => cores
                .read()
                .get(&peer)
                .and_then(|c| c.lock().channel(&peer, &id).cloned()),
        }
    }
    fn choose(&mut self, _n: usize) -> Option<usize> {
        None
    }
}

impl BaselineHub {
    /// Encrypts what the node sent into each peer's connection.
    fn flush(&mut self) {
        for (peer, o) in self.sink.messages.drain(..) {
            let Some((transport, writer)) = self.links.get_mut(&peer) else {
                continue;
            };
            match o {
                PeerOutput::Message(m) => {
                    let frame = transport.encrypt(&m).expect("a message fits one frame");
                    if !writer.write(frame) {
                        writer.close();
                    }
                }
                PeerOutput::Disconnect => writer.close(),
            }
        }
    }

    fn refresh_maps(&mut self) {
        if let Locked::PerPeer {
            scids, channels, ..
        } = &*self.locked
        {
            for e in &self.sink.events {
                if let Event::ChannelReady {
                    channel_id,
                    counterparty_node_id,
                    short_channel_id,
                    alias,
                    ..
                } = e
                {
                    channels.write().insert(*channel_id, *counterparty_node_id);
                    let mut s = scids.write();
                    for scid in short_channel_id.iter().chain(alias.iter()) {
                        s.insert(*scid, *counterparty_node_id);
                    }
                }
            }
        }
    }
}
