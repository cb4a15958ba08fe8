//! The daemon's own bookkeeping beside the engine: connections, channels waiting for their
//! funding transaction, preimages of the payments we created, transactions to broadcast and
//! the recent events.
//!
//! # What a peer can make the daemon keep or log
//! * The `events` log is bounded in bytes ([`EVENT_LOG_BYTES`]) and in count ([`EVENT_LOG`]);
//!   each event's JSON is at most [`EVENT_BYTES`] (longer text fields are cut). The oldest
//!   events are dropped first and counted (`dropped` in the `events` answer).
//! * Routine events (payments, broadcasts) are logged at debug; channel lifecycle events at
//!   info, at most [`LOG_PER_PEER`] lines per peer and [`LOG_TOTAL`] in all per second. The
//!   rest are counted and summarized in one line per second.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_core::bitcoin::{ScriptBuf, Transaction, Txid};
use lightning_core::chain::MonitorEvent;
use lightning_core::node::Event;
use lightning_core::secp256k1::PublicKey;
use lightning_core::types::{ChannelId, PaymentHash};
use parking_lot::Mutex;
use serde_json::Value;
use shard_engine::NodeApi;

use super::funding::Utxo;
use super::net::Connections;
use super::Node;

/// The most events kept for `events`; older ones are dropped (and counted).
pub const EVENT_LOG: usize = 10_000;
/// The most bytes (of JSON) the `events` log keeps; older events are dropped (and counted).
pub const EVENT_LOG_BYTES: usize = 4 << 20;
/// The most bytes of one event's JSON, in the `events` log and in a log line: longer text
/// fields are cut to fit.
pub const EVENT_BYTES: usize = 2048;
/// The most info lines about one peer's events per second.
pub const LOG_PER_PEER: u32 = 5;
/// The most info lines about events per second in all.
pub const LOG_TOTAL: u32 = 50;
/// The most fee-bump requests kept for `broadcasts`: past it, the least urgent (latest
/// deadline) is dropped, with a warning.
pub const MAX_BUMPS: usize = 4096;

/// The recent events for `events`: JSON text, oldest first, bounded in count and in bytes.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    events: VecDeque<Box<str>>,
    bytes: usize,
    dropped: u64,
}

impl EventLog {
    /// Appends `json` (already bounded by [`bounded_json`]), dropping the oldest events past
    /// the bounds.
    pub(crate) fn push(&mut self, json: String) {
        self.bytes += json.len();
        self.events.push_back(json.into_boxed_str());
        while self.events.len() > EVENT_LOG || self.bytes > EVENT_LOG_BYTES {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            self.dropped += 1;
        }
    }

    /// Takes every event and the count dropped since the last call.
    pub(crate) fn drain(&mut self) -> (Vec<Value>, u64) {
        let events = self
            .events
            .drain(..)
            .map(|e| serde_json::from_str(&e).unwrap_or(Value::Null))
            .collect();
        self.bytes = 0;
        (events, std::mem::take(&mut self.dropped))
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Cuts `s` to at most `max` bytes (at a character boundary), marking the cut.
pub(crate) fn truncate_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes cut)", &s[..end], s.len() - end)
}

/// `value` as JSON text of at most [`EVENT_BYTES`]: string fields are cut until it fits, and
/// if it still does not, only its `type` is kept with `"truncated": true`.
pub(crate) fn bounded_json(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= EVENT_BYTES {
        return text;
    }
    if let Value::Object(map) = value {
        let cut: serde_json::Map<String, Value> = map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k.clone(), Value::String(truncate_text(s, 256))),
                other => (k.clone(), other.clone()),
            })
            .collect();
        let text = Value::Object(cut).to_string();
        if text.len() <= EVENT_BYTES {
            return text;
        }
    }
    serde_json::json!({
        "type": value.get("type").cloned().unwrap_or(Value::Null),
        "truncated": true,
    })
    .to_string()
}

/// A log rate limit: at most `per_key` lines per key and `total` lines in all per one-second
/// window; the rest are counted, and the count of a finished window is handed back once so
/// the caller can log one summary line.
#[derive(Debug)]
pub(crate) struct LogLimiter<K> {
    per_key: u32,
    total: u32,
    inner: Mutex<LimiterWindow<K>>,
}

#[derive(Debug)]
struct LimiterWindow<K> {
    start: Option<Instant>,
    /// Lines allowed per key in this window (at most `total` keys: only allowed lines add one).
    counts: HashMap<K, u32>,
    allowed: u32,
    suppressed: u64,
}

/// What [`LogLimiter::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogDecision {
    /// Log this line.
    pub(crate) log: bool,
    /// Lines suppressed in the window that just ended (log a summary when non-zero).
    pub(crate) suppressed: u64,
}

const LOG_WINDOW: Duration = Duration::from_secs(1);

impl<K: Hash + Eq> LogLimiter<K> {
    pub(crate) fn new(per_key: u32, total: u32) -> Self {
        LogLimiter {
            per_key,
            total,
            inner: Mutex::new(LimiterWindow {
                start: None,
                counts: HashMap::new(),
                allowed: 0,
                suppressed: 0,
            }),
        }
    }

    /// Ends the window if it is over; the count it suppressed.
    fn roll(w: &mut LimiterWindow<K>, now: Instant) -> u64 {
        match w.start {
            Some(start) if now.saturating_duration_since(start) < LOG_WINDOW => 0,
            _ => {
                w.start = Some(now);
                w.counts.clear();
                w.allowed = 0;
                std::mem::take(&mut w.suppressed)
            }
        }
    }

    /// Whether a line about `key` may be logged now.
    pub(crate) fn check(&self, key: K, now: Instant) -> LogDecision {
        let mut w = self.inner.lock();
        let suppressed = Self::roll(&mut w, now);
        let log = if w.allowed >= self.total {
            false
        } else {
            let count = w.counts.entry(key).or_insert(0);
            if *count >= self.per_key {
                false
            } else {
                *count += 1;
                true
            }
        };
        if log {
            w.allowed += 1;
        } else {
            w.suppressed += 1;
        }
        LogDecision { log, suppressed }
    }

    /// Ends a finished window with no new line: the count it suppressed.
    pub(crate) fn flush(&self, now: Instant) -> u64 {
        let mut w = self.inner.lock();
        if w.suppressed == 0 {
            return 0;
        }
        Self::roll(&mut w, now)
    }
}

/// Logs `decision`'s summary, if any.
pub(crate) fn log_suppressed(suppressed: u64, what: &str) {
    if suppressed > 0 {
        tracing::info!(
            suppressed,
            "{what}: {suppressed} log lines suppressed in the last second (rate limit)"
        );
    }
}

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

/// Channels and UTXOs waiting for each other: a channel its peer accepted that the wallet
/// could not fund waits for `fund`; a UTXO `fund` named before the peer accepted waits for
/// the channel. Both sides decide under the one lock that holds both maps.
#[derive(Debug, Default)]
pub(crate) struct FundingWaits {
    /// Channels accepted by their peer, waiting for `fund`.
    pub(crate) needed: HashMap<ChannelId, FundingNeeded>,
    /// UTXOs named by `fund` before the peer accepted: used as soon as it does.
    pub(crate) utxos: HashMap<ChannelId, Utxo>,
}

/// The daemon's bookkeeping (see the module's documentation).
#[derive(Debug, Default)]
pub struct NodeState {
    /// Open connections and persistent peers.
    pub connections: Connections,
    /// Channels waiting for `fund`, and UTXOs `fund` named before their channel was ready:
    /// one lock, so a `fund` racing the peer's acceptance is never lost between the two.
    pub(crate) funding: Mutex<FundingWaits>,
    /// The feerate (sat per 1000 weight) of the funding transactions the wallet builds for
    /// channels opened with `open_channel`, by temporary channel id.
    pub(crate) wallet_funding_feerates: Mutex<HashMap<ChannelId, u32>>,
    /// The invoices created with `new_invoice`: their preimages, and whether they hold.
    pub(crate) preimages: Mutex<HashMap<PaymentHash, super::files::Invoice>>,
    /// Transactions to broadcast, since the last `broadcasts`.
    pub(crate) broadcasts: Mutex<Vec<Transaction>>,
    /// Zero-fee transactions a wallet must add fees to (anchor channels) that the node's
    /// own wallet could not bump, by txid, the latest request for each, since the last
    /// `broadcasts`; at most [`MAX_BUMPS`].
    pub(crate) bumps: Mutex<BTreeMap<Txid, Value>>,
    /// The fee bumps the node's wallet serves by itself ([`serve_bump`]): in flight until
    /// their spend is deep, re-bumped with the same coins each block.
    pub(crate) bumper: Mutex<shard_engine::Bumper>,
    /// Commitments with their CPFP child from the wallet, to relay as packages, by the
    /// commitment's txid: the latest child of each, since the last `broadcasts`.
    pub(crate) packages: Mutex<BTreeMap<Txid, (Transaction, Transaction)>>,
    /// Recent events, oldest first, and how many were dropped.
    pub(crate) events: Mutex<EventLog>,
    /// The rate limit of info lines about events, per peer.
    pub(crate) event_log_limit: EventLimiter,
    /// The engine's stop has been logged.
    pub(crate) stopped_logged: AtomicBool,
}

/// The rate limit of the info lines about events (per peer, or `None` for events of no peer).
#[derive(Debug)]
pub(crate) struct EventLimiter(pub(crate) LogLimiter<Option<PublicKey>>);

impl Default for EventLimiter {
    fn default() -> Self {
        EventLimiter(LogLimiter::new(LOG_PER_PEER, LOG_TOTAL))
    }
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
            let stopped = node.engine.health().err();
            if let Some(reason) = &stopped {
                if !node.state.stopped_logged.swap(true, Ordering::SeqCst) {
                    tracing::error!(
                        %reason,
                        "the node has stopped: it serves no peer and refuses every control \
                         method but getinfo; fix the cause and restart it"
                    );
                }
            }
            match node.engine.wait_event(Duration::from_millis(100)) {
                Some(event) => on_event(&node, event),
                None => {
                    log_suppressed(node.state.event_log_limit.0.flush(Instant::now()), "events");
                    if stopped.is_some() {
                        // The shards are gone: their event queue may answer at once.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .expect("spawning the event thread (the OS refused a thread)")
}

/// The peer an event is about, and whether it is worth an info line (channel lifecycle and
/// funding the operator must act on); the rest are routine and logged at debug.
fn event_peer_and_importance(event: &Event) -> (Option<PublicKey>, bool) {
    match event {
        Event::FundingGenerationReady {
            counterparty_node_id,
            ..
        }
        | Event::ChannelPending {
            counterparty_node_id,
            ..
        }
        | Event::ChannelReady {
            counterparty_node_id,
            ..
        }
        | Event::ChannelClosed {
            counterparty_node_id,
            ..
        }
        | Event::OnChain {
            counterparty_node_id,
            ..
        } => (Some(*counterparty_node_id), true),
        _ => (None, false),
    }
}

fn log_event(node: &Node, event: &Event, json: &str) {
    let (peer, important) = event_peer_and_importance(event);
    if !important {
        tracing::debug!(event = %json, "event");
        return;
    }
    let decision = node.state.event_log_limit.0.check(peer, Instant::now());
    log_suppressed(decision.suppressed, "events");
    if decision.log {
        tracing::info!(event = %json, "event");
    } else {
        tracing::debug!(event = %json, "event");
    }
}

fn on_event(node: &Node, event: Event) {
    super::net::on_event(node, &event);
    let json = bounded_json(&super::control::event_json(&event));
    log_event(node, &event, &json);
    match event {
        Event::FundingGenerationReady {
            temporary_channel_id,
            counterparty_node_id,
            channel_value_satoshis,
            ref output_script,
            ..
        } => {
            let needed = FundingNeeded {
                node_id: counterparty_node_id,
                output_script: output_script.clone(),
                value_sat: channel_value_satoshis,
            };
            // Held while the wallet tries: a `fund` arriving meanwhile waits, then finds the
            // channel in `needed` (the wallet could not pay) or funded.
            let mut waits = node.state.funding.lock();
            match waits.utxos.remove(&temporary_channel_id) {
                Some(utxo) => {
                    drop(waits);
                    if let Err(error) =
                        super::funding::fund_with(node, temporary_channel_id, &needed, &utxo)
                    {
                        tracing::warn!(%temporary_channel_id, error, "funding failed");
                    }
                }
                None => {
                    if let Some(needed) =
                        fund_from_wallet(node, &event, temporary_channel_id, needed)
                    {
                        waits.needed.insert(temporary_channel_id, needed);
                    }
                }
            }
        }
        Event::BroadcastTransaction { ref tx } => {
            // The wallet learns of its coins spent and its change (unconfirmed) now.
            if let Err(error) = node.wallet.record_unconfirmed(tx, unix_now()) {
                tracing::warn!(%error, "the wallet could not record a broadcast");
            }
            node.state.broadcasts.lock().push(tx.clone());
        }
        Event::OnChain {
            event: ref bump @ MonitorEvent::BumpNeeded { .. },
            ref channel_id,
            ..
        } => serve_bump(node, *channel_id, bump),
        _ => {}
    }
    node.state.events.lock().push(json);
    if let Event::PaymentClaimable {
        payment_hash,
        amount_msat,
        ..
    } = event
    {
        claim_own_payment(node, payment_hash, amount_msat);
    }
}

/// Claims a payment to one of our own invoices as it arrives: the node holds its preimage.
/// A hold invoice's payment (`new_invoice hold=true`), or one the node has no preimage for,
/// waits for `claim` or `fail`. (The engine has checked the payment secret and the amount
/// against the invoice before the payment became claimable.)
fn claim_own_payment(node: &Node, payment_hash: PaymentHash, amount_msat: u64) {
    let invoice = node.state.preimages.lock().get(&payment_hash).copied();
    match invoice {
        Some(invoice) if !invoice.hold => match node.engine.claim_funds(invoice.preimage) {
            Ok(()) => tracing::debug!(%payment_hash, amount_msat, "payment to our invoice claimed"),
            Err(error) => {
                tracing::warn!(%payment_hash, %error, "claiming a payment to our invoice failed")
            }
        },
        Some(_) => tracing::info!(
            %payment_hash,
            amount_msat,
            "payment to a hold invoice waits for claim or fail"
        ),
        None => {}
    }
}

/// Seconds since the Unix epoch (when the wallet saw a transaction of its own).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Funds a channel the peer accepted, for which no UTXO was named with `fund`, from the
/// wallet ([`shard_engine::fund_channel`]); when the wallet cannot pay it, returns what the
/// channel needs, to wait for `fund`.
fn fund_from_wallet(
    node: &Node,
    event: &Event,
    temporary_channel_id: ChannelId,
    needed: FundingNeeded,
) -> Option<FundingNeeded> {
    let feerate = node
        .state
        .wallet_funding_feerates
        .lock()
        .remove(&temporary_channel_id)
        .unwrap_or(super::wallet::DEFAULT_FUNDING_FEERATE_PER_KW);
    match shard_engine::fund_channel(&node.engine, &node.wallet, event, feerate) {
        Ok(funded) => {
            tracing::info!(
                %temporary_channel_id,
                txid = %funded.tx.compute_txid(),
                fee = funded.fee_satoshis,
                "channel funded from the wallet"
            );
            None
        }
        Err(shard_engine::FundingError::Selection(reason)) => {
            tracing::info!(
                %temporary_channel_id,
                %reason,
                "the wallet cannot fund the channel: waiting for fund"
            );
            Some(needed)
        }
        Err(error) => {
            tracing::warn!(%temporary_channel_id, %error, "funding from the wallet failed");
            None
        }
    }
}

/// Serves a fee-bump request from the node's wallet ([`shard_engine::Bumper`]): the first
/// request for a transaction bumps it (a CPFP child through our anchor for a commitment,
/// fee inputs for an HTLC transaction), each later one in a later block re-bumps it with the
/// same coins, never paying more than the request's cap. What to relay goes to
/// `broadcasts`: a commitment with its child under `packages` (relay them together), an
/// HTLC transaction under `transactions`. The wallet learns of the coins spent when the
/// bump confirms (they stay reserved meanwhile). When the wallet cannot serve it (no coins,
/// a cap below any bump), the request goes to `bump_needed` for the operator, with why.
fn serve_bump(node: &Node, channel_id: ChannelId, event: &MonitorEvent) {
    let MonitorEvent::BumpNeeded {
        tx,
        anchor,
        deadline,
        feerate_per_kw,
        ..
    } = event
    else {
        return;
    };
    let height = node.engine.coordinator().best_block().0;
    let served =
        node.state
            .bumper
            .lock()
            .handle(&node.engine, &node.wallet, channel_id, event, height);
    match served {
        Ok(relay) => {
            for b in relay {
                match b {
                    shard_engine::BumpBroadcast::Package { parent, child } => {
                        node.state
                            .packages
                            .lock()
                            .insert(parent.compute_txid(), (parent, child));
                    }
                    shard_engine::BumpBroadcast::Transaction(tx) => {
                        node.state.broadcasts.lock().push(tx);
                    }
                }
            }
        }
        Err(error) => {
            tracing::warn!(%channel_id, txid = %tx.compute_txid(), %error, "the wallet could not bump: listed in bump_needed");
            let mut entry =
                super::control::bump_json(tx, anchor.as_ref(), *deadline, *feerate_per_kw, true);
            if let Value::Object(map) = &mut entry {
                map.insert("error".into(), Value::String(error.to_string()));
            }
            add_bump(
                &mut node.state.bumps.lock(),
                tx.compute_txid(),
                entry,
                &channel_id,
            );
        }
    }
}

/// Keeps the latest fee-bump request for `txid`, dropping the least urgent past
/// [`MAX_BUMPS`].
fn add_bump(bumps: &mut BTreeMap<Txid, Value>, txid: Txid, entry: Value, channel: &ChannelId) {
    bumps.insert(txid, entry);
    if bumps.len() > MAX_BUMPS {
        let least_urgent = bumps
            .iter()
            .max_by_key(|(_, v)| v["deadline"].as_u64().unwrap_or(u64::MAX))
            .map(|(t, _)| *t);
        if let Some(t) = least_urgent {
            bumps.remove(&t);
            tracing::warn!(%channel, dropped = %t, "too many fee-bump requests pending: the least urgent dropped (call broadcasts)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_log_is_bounded_in_bytes_and_counts_what_it_drops() {
        let mut log = EventLog::default();
        let big = serde_json::json!({"type": "x", "text": "\u{ff}".repeat(100_000)});
        let one = bounded_json(&big);
        assert!(one.len() <= EVENT_BYTES, "{}", one.len());
        let n = 3 * EVENT_LOG_BYTES / one.len();
        for _ in 0..n {
            log.push(one.clone());
        }
        assert!(log.bytes() <= EVENT_LOG_BYTES);
        let (events, dropped) = log.drain();
        assert_eq!(events.len() as u64 + dropped, n as u64);
        assert!(dropped > 0);
        assert_eq!(events[0]["type"], "x");
        let (events, dropped) = log.drain();
        assert!(events.is_empty());
        assert_eq!(dropped, 0);
    }

    #[test]
    fn bounded_json_cuts_text_fields_and_keeps_short_events_whole() {
        let short = serde_json::json!({"type": "channel_closed", "reason": "bye"});
        assert_eq!(bounded_json(&short), short.to_string());
        let long = serde_json::json!({"type": "channel_closed", "reason": "e".repeat(65_000)});
        let cut: Value = serde_json::from_str(&bounded_json(&long)).expect("JSON");
        assert_eq!(cut["type"], "channel_closed");
        assert!(cut["reason"].as_str().is_some_and(|r| r.len() < 400));
        assert_eq!(truncate_text("\u{e9}\u{e9}", 3), "\u{e9}... (2 bytes cut)");
    }

    #[test]
    fn the_log_limiter_allows_a_few_lines_per_peer_and_summarizes_the_rest() {
        let limiter = LogLimiter::new(2, 3);
        let t0 = Instant::now();
        let logged = |k: u8, t: Instant| limiter.check(k, t).log;
        assert!(logged(1, t0));
        assert!(logged(1, t0));
        assert!(
            !logged(1, t0),
            "a third line for one key in a second is suppressed"
        );
        assert!(logged(2, t0));
        assert!(!logged(3, t0), "past the total");
        let later = t0 + Duration::from_millis(1001);
        let d = limiter.check(1, later);
        assert!(d.log, "a new window");
        assert_eq!(d.suppressed, 2);
        assert!(logged(1, later));
        assert!(!logged(1, later));
        assert_eq!(limiter.flush(later), 0, "the window is not over");
        assert_eq!(limiter.flush(later + Duration::from_secs(2)), 1);
        assert_eq!(
            limiter.flush(later + Duration::from_secs(4)),
            0,
            "summarized once"
        );
    }
}
