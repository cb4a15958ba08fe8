//! The control interface: JSON-RPC 2.0 over HTTP (axum), on loopback only, authenticated
//! with HTTP basic auth against the cookie (`__cookie__:<secret>`, written at start to
//! `<data-dir>/.cookie`, mode 0600). A request without the secret gets HTTP 401 and a
//! warning in the log (at most one line per second; the rest are counted).
//!
//! # Limits
//! * The credentials are checked from the headers before any of the body is read: a refused
//!   request costs no more than its headers.
//! * A request's body is at most [`MAX_REQUEST`] bytes: a larger one (by its
//!   `Content-Length`, or as it arrives) gets HTTP 413.
//! * At most [`MAX_CONNECTIONS`] control connections are served at once; more wait in the
//!   listen backlog until one closes.
//! * A connection must send its whole request (headers and body) within
//!   [`REQUEST_TIMEOUT`] of its first byte, and is closed when idle for [`IDLE_TIMEOUT`] (no
//!   request after connecting or after its last answer), so slow or silent connections cannot
//!   hold the slots.
//! * Once the engine has stopped (a store failure or a shard's panic), `getinfo` answers
//!   `"state": "stopped"` with `"stopped_reason"`; `stop`, `broadcasts` and `events` still
//!   work (they do not touch the engine, and a transaction waiting to be broadcast may protect
//!   funds); every other method answers a JSON-RPC error (code [`NODE_STOPPED`]) naming the
//!   reason.
//!
//! A request's parameters are parsed and checked first, by [`parse_request`] (a pure function,
//! fuzzed by `fuzz/fuzz_targets/control_params.rs`), into a typed [`Request`] that
//! [`execute`] then carries out. Besides the sizes below: a `connect` address is at most
//! [`MAX_ADDRESS_LEN`] bytes, a `pay` route 1 to [`MAX_ROUTE_HOPS`] hops, a `block_connected`
//! height at most [`MAX_BLOCK_HEIGHT`] with at most [`MAX_BLOCK_TRANSACTIONS`] transactions
//! (every index below it), and a `BLOCKxTXxOUT` short channel id's parts within their 24 bits.
//!
//! Every method takes its parameters as a JSON object (named). Hex is lower-case; node ids
//! are 33-byte compressed keys; channel ids, payment hashes, secrets and preimages 32 bytes;
//! short channel ids `BLOCKxTXxOUT` strings (answers give them so; a number, or a decimal
//! string, is taken too: a JSON number above 2^53 loses digits in many JSON readers, jq's
//! among them).
//!
//! The methods and their parameters are one table, [`METHOD_TABLE`]: [`parse_request`]
//! dispatches from it, the `help` method answers it as JSON and `lnshard cli help [METHOD]`
//! prints it.
//!
//! # Errors
//! An error answer is a JSON-RPC error object: `code` (JSON-RPC's number), `message` (for
//! people; for a refusal by the engine, the engine error's text) and `data`, whose `kind` is
//! a stable snake-case name ([`RpcError::kind`]) beside typed fields (`parameter`, `method`,
//! `channel_id`, `node_id`, ...; see [`RpcError`]). A payment's failure in `events` is typed
//! the same way ([`payment_failure_json`]).

use shard_engine::NodeApi;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request as HttpRequest, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use base64::Engine as _;
use lightning_core::bitcoin::address::NetworkUnchecked;
use lightning_core::bitcoin::consensus::encode::{deserialize, serialize_hex};
use lightning_core::bitcoin::{Address, Amount, BlockHash, Network, OutPoint, Transaction};
use lightning_core::chain::{Balance, FundingSpendKind, MonitorEvent};
use lightning_core::node::{
    ChannelDetails, ClosureReason, Event, PaymentFailure, PaymentId, Route, RouteHop,
};
use lightning_core::onion::FailureMessage;
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::types::{
    ChannelId, PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId,
};
use serde_json::{json, Map, Value};
use shard_engine::EngineError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::files::{self, COOKIE_USER};
use super::funding::Utxo;
use super::state::{log_suppressed, truncate_text, LogLimiter};
use super::{io_error, DaemonError, Node};

/// The most bytes one request's body may carry. `block_connected` needs only the
/// transactions that matter to the node, each with its index in the block.
pub const MAX_REQUEST: usize = 256 << 10;
/// The most control connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send a whole request, from its first byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay idle (before its first request, or after an answer).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound control interface, not yet serving.
pub struct Control {
    /// The bound address.
    pub addr: SocketAddr,
    listener: TcpListener,
    secret: String,
}

impl core::fmt::Debug for Control {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Control").field("addr", &self.addr).finish()
    }
}

/// Binds the control interface (loopback only), writes the cookie (mode 0600) and the bound
/// address.
pub async fn bind(node: &Arc<Node>) -> Result<Control, DaemonError> {
    let want = node.config.control_listen;
    if !want.ip().is_loopback() {
        return Err(DaemonError::Config(format!(
            "the control interface must bind a loopback address, not {want}"
        )));
    }
    let listener = tokio::net::TcpListener::bind(want)
        .await
        .map_err(io_error(format!("binding the control interface on {want}")))?;
    let addr = listener
        .local_addr()
        .map_err(io_error("reading the control address"))?;
    let secret = files::random_hex()?;
    let dir = &node.config.data_dir;
    files::write_private(
        &files::cookie_path(dir),
        format!("{COOKIE_USER}:{secret}").as_bytes(),
    )?;
    files::write_private(&files::control_addr_path(dir), addr.to_string().as_bytes())?;
    Ok(Control {
        addr,
        listener,
        secret,
    })
}

#[derive(Clone)]
struct Ctx {
    node: Arc<Node>,
    expected: Arc<String>,
    /// Refusals logged: one line per second, the rest counted.
    refusals: Arc<LogLimiter<()>>,
}

/// The control listener: a connection is accepted only with one of [`MAX_CONNECTIONS`]
/// permits, held until it closes.
struct ControlListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
}

/// What a connection's handler shares with its socket.
#[derive(Debug, Default)]
struct ConnShared {
    /// A request is being executed: the socket's request deadline is suspended.
    busy: AtomicBool,
}

/// An accepted control connection: its permit, and the deadlines of [`REQUEST_TIMEOUT`] and
/// [`IDLE_TIMEOUT`], enforced when a read waits.
struct ControlIo {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    shared: Arc<ConnShared>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    in_request: bool,
}

/// The connection's peer address and what its handler shares with its socket.
#[derive(Debug, Clone)]
struct ControlPeer {
    addr: SocketAddr,
    shared: Arc<ConnShared>,
}

impl Listener for ControlListener {
    type Io = ControlIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ControlIo, SocketAddr) {
        loop {
            // Wait for a free slot before taking a connection from the backlog.
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                std::future::pending::<()>().await;
                continue;
            };
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let io = ControlIo {
                        stream,
                        _slot: slot,
                        shared: Arc::default(),
                        deadline: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
                        in_request: false,
                    };
                    return (io, addr);
                }
                Err(error) => {
                    tracing::warn!(%error, "control interface: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl Connected<IncomingStream<'_, ControlListener>> for ControlPeer {
    fn connect_info(stream: IncomingStream<'_, ControlListener>) -> Self {
        ControlPeer {
            addr: *stream.remote_addr(),
            shared: stream.io().shared.clone(),
        }
    }
}

impl AsyncRead for ControlIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && !this.in_request {
                    this.in_request = true;
                    let at = tokio::time::Instant::now() + REQUEST_TIMEOUT;
                    this.deadline.as_mut().reset(at);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.shared.busy.load(Ordering::SeqCst) {
                    return Poll::Pending;
                }
                match this.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        if this.in_request {
                            "control request not received in time"
                        } else {
                            "control connection idle"
                        },
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for ControlIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            // An answer: the next request starts from idle.
            this.in_request = false;
            let at = tokio::time::Instant::now() + IDLE_TIMEOUT;
            this.deadline.as_mut().reset(at);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Marks a connection busy (its request deadline suspended) while a request executes.
struct Busy(Arc<ConnShared>);

impl Busy {
    fn new(shared: &Arc<ConnShared>) -> Busy {
        shared.busy.store(true, Ordering::SeqCst);
        Busy(shared.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::SeqCst);
    }
}

impl Control {
    /// Serves requests until the node stops.
    pub async fn serve(self, node: Arc<Node>) {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{COOKIE_USER}:{}", self.secret))
        );
        let ctx = Ctx {
            node: node.clone(),
            expected: Arc::new(expected),
            refusals: Arc::new(LogLimiter::new(1, 1)),
        };
        let app = Router::new()
            .route("/", post(handle))
            .layer(DefaultBodyLimit::max(MAX_REQUEST))
            .with_state(ctx);
        let stopping = node.clone();
        let listener = ControlListener {
            listener: self.listener,
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        };
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<ControlPeer>(),
        )
        .with_graceful_shutdown(async move {
            while !stopping.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        if let Err(error) = served {
            tracing::error!(%error, "control interface failed");
        }
    }
}

/// Constant-time comparison of the presented credentials with the expected ones.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a body was not read.
enum BodyRefused {
    TooLarge,
    Broken(String),
}

/// Reads `body`, refusing it as soon as it passes `limit` bytes.
async fn read_limited(mut body: Body, limit: usize) -> Result<Vec<u8>, BodyRefused> {
    let mut out = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(out),
            Some(Err(e)) => return Err(BodyRefused::Broken(e.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > limit {
                        return Err(BodyRefused::TooLarge);
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("a control request's body is at most {MAX_REQUEST} bytes\n"),
    )
        .into_response()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn handle(
    State(ctx): State<Ctx>,
    ConnectInfo(peer): ConnectInfo<ControlPeer>,
    request: HttpRequest,
) -> Response {
    let (parts, body) = request.into_parts();
    // The credentials come from the headers: nothing of the body is read before they pass.
    let presented = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same(presented, ctx.expected.as_bytes()) {
        let decision = ctx.refusals.check((), Instant::now());
        log_suppressed(decision.suppressed, "control requests refused");
        if decision.log {
            tracing::warn!(peer = %peer.addr, "control request refused: missing or wrong credentials");
        }
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Basic realm=\"lnshard\""),
                (header::CONNECTION, "close"),
            ],
            "authentication required: use the cookie in the data directory\n",
        )
            .into_response();
    }
    if content_length(&parts.headers).is_some_and(|n| n > MAX_REQUEST as u64) {
        return too_large();
    }
    let body = match read_limited(body, MAX_REQUEST).await {
        Ok(b) => b,
        Err(BodyRefused::TooLarge) => return too_large(),
        Err(BodyRefused::Broken(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("reading the request: {e}\n"),
            )
                .into_response()
        }
    };
    let _busy = Busy::new(&peer.shared);
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return reply(
                Value::Null,
                Err(rpc_error(
                    -32700,
                    "parse_error",
                    format!("parse error: {e}"),
                )),
            )
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return reply(
            id,
            Err(rpc_error(
                -32600,
                "invalid_request",
                "request has no method".into(),
            )),
        );
    };
    // Absent parameters read as an object without keys.
    let params = request.get("params").unwrap_or(&Value::Null);
    tracing::debug!(method, "control request");
    let parsed = parse_request(method, params);
    // A stopped engine answers nothing but what it is and why, what it still has to
    // broadcast (a closing transaction may protect funds) and its events, and stops.
    if let Err(reason) = ctx.node.engine.health() {
        if !parsed.as_ref().is_ok_and(Request::served_when_stopped) {
            return reply(id, Err(stopped(&reason)));
        }
    }
    let mut result = match parsed {
        Ok(request) => execute(&ctx.node, request).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        // The engine stopped during the call: say so, as for the calls after it.
        if let Err(reason) = ctx.node.engine.health() {
            result = Err(stopped(&reason));
        }
    }
    reply(id, result)
}

/// A JSON-RPC error: its `code` (JSON-RPC's number), a stable snake-case `kind`, a
/// `message` for people and typed fields. On the wire:
/// `{"code": -32602, "message": "...", "data": {"kind": "invalid_params", "parameter": "node_id"}}`.
///
/// Kinds: `parse_error` (-32700), `invalid_request` (-32600), `unknown_method` (-32601, with
/// `method` and `methods`, the known ones), `invalid_params` (-32602, with `parameter` when one
/// is to blame), `node_stopped` ([`NODE_STOPPED`], with `reason`), -32000 when the node could
/// not do it: `connect_failed` (`node_id`, `address`), `funding_failed`
/// (`temporary_channel_id`), `wallet`, `unknown_payment_hash` (`claim` of a hash we made no
/// invoice for, `payment_hash`), `failed` (anything else: a file, a task); and for a refusal
/// by the engine (-32000) the engine error's own name, from a match on the typed error
/// (never its text), with the ids it names and the value and the limit it broke as fields,
/// and `reason`, the name of its more precise error, when there is one:
/// * `peer_not_connected` (`node_id`), `unknown_channel` (`channel_id`),
///   `unknown_short_channel_id` (`short_channel_id`), `duplicate_payment` (`payment_id`),
///   `not_claimable` (`payment_hash`), `payment_id_recently_used` (`payment_id`,
///   `completed_height`, `retained_until_height`);
/// * `first_hop` (`short_channel_id`; `reason` `wrong_peer` with `channel_node_id`,
///   `not_ready` with `phase`, `shutting_down`, `peer_disconnected` with `node_id`,
///   `below_htlc_minimum` with `amount_msat` and `htlc_minimum_msat`,
///   `above_outbound_capacity` with `amount_msat` and `outbound_capacity_msat`);
/// * `channel_value` (`reason` `below_minimum`, `above_maximum`, `above_peer_maximum`,
///   `push_above_value`, `feerate_out_of_range`, `cannot_pay_first_fee`, `both_at_reserve`,
///   each with the value and the limit under the engine's field names: `funding_satoshis`
///   and `min_satoshis`, ...);
/// * `limit_reached` (`reason` `pending_payments` or `channels_per_peer` with `node_id`;
///   `max`), `invalid_route` (`reason` `empty_route`, `overflow`, `onion`),
///   `bad_funding_transaction` (`reason` `no_funding_output` with `value_satoshis`,
///   `too_many_outputs` with `outputs`), `channel` (`reason` `ignore`, `warn`, `close` or
///   `close_no_broadcast`: what was done with the channel; the numbers of the channel's
///   refusal, such as `amount_msat` and `htlc_minimum_msat`);
/// * `full` (`shard`, `capacity`), `timeout` (`shard`, `waited_ms`), `shutting_down`,
///   `unknown_connection`, `duplicate_connection`, `handshake`, `transport` (`conn`),
///   `store` (`reason` `io`, `locked`, ...), `record`, `wrong_node`, `no_store`, `stopped`;
///   `refused` or `engine` for a refusal this build does not know.
///
/// Its message is the engine error's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    code: i64,
    kind: String,
    message: String,
    data: Map<String, Value>,
}

impl RpcError {
    /// The JSON-RPC error code: -32700 not JSON, -32600 no method, -32601 unknown method,
    /// -32602 bad parameters, -32000 the node refused or failed, [`NODE_STOPPED`].
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The stable name of the error (see [`RpcError`]).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The message, naming the parameter and its value.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The typed fields beside `kind`.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// Adds a typed field.
    fn with(mut self, key: &str, value: impl Into<Value>) -> RpcError {
        self.data.insert(key.to_owned(), value.into());
        self
    }

    /// The JSON-RPC error object: `code`, `message` and `data` (`kind` and the fields).
    pub fn to_json(&self) -> Value {
        let mut data = Map::new();
        data.insert("kind".into(), Value::String(self.kind.clone()));
        data.extend(self.data.clone());
        json!({"code": self.code, "message": self.message, "data": data})
    }
}

impl core::fmt::Display for RpcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

/// The JSON-RPC error code of every method but `getinfo` once the engine has stopped.
pub const NODE_STOPPED: i64 = -32001;

fn rpc_error(code: i64, kind: &str, message: String) -> RpcError {
    RpcError {
        code,
        kind: kind.to_owned(),
        message,
        data: Map::new(),
    }
}

fn invalid(message: impl Into<String>) -> RpcError {
    rpc_error(-32602, "invalid_params", message.into())
}

/// A bad value of parameter `name`.
fn invalid_param(name: &str, message: impl Into<String>) -> RpcError {
    invalid(message).with("parameter", name)
}

fn failed(message: impl core::fmt::Display) -> RpcError {
    failed_as("failed", message)
}

/// The node could not do it (-32000), for the reason `kind` names.
fn failed_as(kind: &str, message: impl core::fmt::Display) -> RpcError {
    rpc_error(-32000, kind, message.to_string())
}

fn stopped(reason: &impl core::fmt::Display) -> RpcError {
    rpc_error(
        NODE_STOPPED,
        "node_stopped",
        format!("the node is stopped: {reason}"),
    )
    .with("reason", reason.to_string())
}

fn unknown_method(method: &str) -> RpcError {
    rpc_error(
        -32601,
        "unknown_method",
        format!(
            "unknown method {method:?}: `lnshard cli help` (or the method help) lists them: {}",
            METHODS.join(", ")
        ),
    )
    .with("method", method)
    .with("methods", METHODS.to_vec())
}

/// An engine error as an RPC error: code -32000, its `kind` and typed fields from a match on
/// the typed error ([`crate::rpc_errors`]; never from its text), its text as `message`.
fn engine_error(e: EngineError) -> RpcError {
    let (kind, fields) = crate::rpc_errors::engine_refusal(&e);
    let mut err = rpc_error(-32000, kind, e.to_string());
    err.data = fields;
    err
}

fn reply(id: Value, result: Result<Value, RpcError>) -> Response {
    let body = match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_json()}),
    };
    axum::Json(body).into_response()
}

/// A parameter of a control method (see [`METHOD_TABLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name: the key in the params object (or of `key=value` in `lnshard cli`).
    pub name: &'static str,
    /// Whether the method refuses a call without it.
    pub required: bool,
    /// What it takes, and its default when optional.
    pub doc: &'static str,
}

/// A method of the control interface (see [`METHOD_TABLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// Its name.
    pub name: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// What it does and answers.
    pub doc: &'static str,
}

const fn req(name: &'static str, doc: &'static str) -> Param {
    Param {
        name,
        required: true,
        doc,
    }
}

const fn opt(name: &'static str, doc: &'static str) -> Param {
    Param {
        name,
        required: false,
        doc,
    }
}

const FEERATE: &str = "sat per 1000 weight, 253 to 250,000";

/// Every method of the control interface with its parameters: the one table
/// [`parse_request`] dispatches from (a name not in it is `unknown_method`), that the `help`
/// method answers and `lnshard cli help` prints.
pub const METHOD_TABLE: &[Method] = &[
    Method {
        name: "getinfo",
        params: &[],
        doc: "the node: `node_id`, `listen`, `network`, the best block (`block_height`, `block_hash`), `peers`, `channels`; `state` is `running`, or `stopped` with `stopped_reason`",
    },
    Method {
        name: "connect",
        params: &[
            req("node_id", "the peer's node id (33 bytes, hex)"),
            req("address", "host:port (at most 259 bytes)"),
        ],
        doc: "connects to a peer; answers after the handshake; redialled when lost",
    },
    Method {
        name: "open_channel",
        params: &[
            req("node_id", "the peer's node id (33 bytes, hex)"),
            req("amount_sat", "the channel's value"),
            opt("push_msat", "given to the peer at opening (default 0)"),
            opt("feerate_per_kw", "the commitment's feerate (default 1,000)"),
            opt("funding_feerate_per_kw", "the funding transaction's feerate (253 to 250,000, default 1,000)"),
        ],
        doc: "`temporary_channel_id`; once the peer accepts, the wallet funds the channel (its transaction goes to `broadcasts` once the peer signed), unless `fund` named a UTXO; a wallet that cannot pay leaves the channel waiting for `fund`",
    },
    Method {
        name: "fund",
        params: &[
            req("temporary_channel_id", "the channel (32 bytes, hex)"),
            req("outpoint", "the P2WPKH UTXO that pays, txid:vout"),
            req("amount_sat", "the UTXO's value"),
            req("secret_key", "the UTXO's key (32 bytes, hex)"),
            opt("fee_sat", "the funding transaction's fee (default 1,000)"),
        ],
        doc: "regtest only (refused on other networks): funds the channel from that UTXO; answers the funding transaction (now, or `waiting_for_accept_channel` until the peer accepts)",
    },
    Method {
        name: "new_invoice",
        params: &[
            opt("amount_msat", "the amount expected (default: any)"),
            opt("hold", "true: a payment to it waits for `claim` or `fail` (default false: claimed as soon as it arrives)"),
        ],
        doc: "`payment_hash`, `payment_secret`; the node keeps the preimage (in <data-dir>/invoices) and claims a payment to it by itself, unless `hold=true`",
    },
    Method {
        name: "pay",
        params: &[
            req("route", "[{node_id, short_channel_id, fee_msat, cltv_expiry_delta}], 1 to 20 hops; the last hop's fee_msat is the amount"),
            req("payment_hash", "32 bytes, hex"),
            req("payment_secret", "32 bytes, hex"),
            opt("payment_id", "32 bytes, hex (default: the payment hash)"),
        ],
        doc: "sends a payment along the route; answers `payment_id`; `payment_sent` or `payment_failed` (with a typed `failure`) follows in `events`",
    },
    Method {
        name: "claim",
        params: &[
            opt("payment_hash", "the payment to claim, with the preimage the node keeps (32 bytes, hex)"),
            opt("payment_preimage", "or the preimage itself (32 bytes, hex)"),
        ],
        doc: "claims a payment that is waiting (a hold invoice's, or one the node has no preimage for)",
    },
    Method {
        name: "fail",
        params: &[req("payment_hash", "32 bytes, hex")],
        doc: "fails a waiting payment back to its payer",
    },
    Method {
        name: "close",
        params: &[req("channel_id", "32 bytes, hex")],
        doc: "closes the channel cooperatively",
    },
    Method {
        name: "force_close",
        params: &[req("channel_id", "32 bytes, hex")],
        doc: "force-closes the channel: our commitment goes to `broadcasts`",
    },
    Method {
        name: "list_peers",
        params: &[],
        doc: "the connected peers: `node_id`, `address`, `inbound`",
    },
    Method {
        name: "list_channels",
        params: &[],
        doc: "the channels: `channel_id`, `node_id`, `value_sat`, `phase`, `usable`, `short_channel_id` (BLOCKxTXxOUT), balances",
    },
    Method {
        name: "block_connected",
        params: &[
            req("height", "at most 16,777,215"),
            req("header", "the block's 80-byte header, hex"),
            opt("transactions", "hex, in block order; or {index, tx} objects naming only the block's transactions that matter"),
        ],
        doc: "a new best block; answers its `height` and `hash`",
    },
    Method {
        name: "block_disconnected",
        params: &[
            req("height", "1 to 16,777,215: blocks from it up left the best chain"),
            req("hash", "the hash of the block at height - 1, the fork point (as block_connected answers it)"),
        ],
        doc: "a reorg: the best block is now the fork point (stored); the monitors forget what they confirmed; then block_connected the new branch",
    },
    Method {
        name: "list_balances",
        params: &[],
        doc: "per channel, what its on-chain state owes us, typed amounts and totals",
    },
    Method {
        name: "set_claim_feerate",
        params: &[req("feerate_per_kw", FEERATE)],
        doc: "the feerate on-chain claims start from",
    },
    Method {
        name: "set_fee_estimates",
        params: &[
            req("urgent", FEERATE),
            req("normal", FEERATE),
            req("background", FEERATE),
        ],
        doc: "the chain's feerates (kept in memory: give them after every start): channels we funded follow them with update_fee (`normal` without anchors, `background` with); a peer's update_fee far outside them is refused",
    },
    Method {
        name: "new_address",
        params: &[],
        doc: "`address`: a new receiving address of the node's wallet",
    },
    Method {
        name: "wallet_balance",
        params: &[],
        doc: "`confirmed_sat`, `trusted_pending_sat` (our own unconfirmed change), `untrusted_pending_sat`, `immature_sat`",
    },
    Method {
        name: "list_utxos",
        params: &[],
        doc: "`utxos`: the wallet's coins (`outpoint`, `amount_sat`, `script_pubkey`, `confirmation_height`, `change`, `reserved`)",
    },
    Method {
        name: "send",
        params: &[
            req("address", "an address of the node's network"),
            req("amount_sat", "at least 1"),
            req("feerate_per_kw", FEERATE),
        ],
        doc: "`txid`, `transaction`, `fee_sat`: signed from the wallet's confirmed coins, change to the wallet, queued for `broadcasts`",
    },
    Method {
        name: "broadcasts",
        params: &[],
        doc: "what to broadcast since the last call: `transactions` (hex); `packages` (`parent`, `child`: relay each pair together); `bump_needed` (zero-fee transactions the wallet could not bump, with `error`)",
    },
    Method {
        name: "events",
        params: &[],
        doc: "the events since the last call, and how many were `dropped`",
    },
    Method {
        name: "stop",
        params: &[],
        doc: "stops the node",
    },
    Method {
        name: "help",
        params: &[opt("method", "one method to describe (default: all)")],
        doc: "this table: every method with its parameters",
    },
];

const fn method_names() -> [&'static str; METHOD_TABLE.len()] {
    let mut names = [""; METHOD_TABLE.len()];
    let mut i = 0;
    while i < METHOD_TABLE.len() {
        names[i] = METHOD_TABLE[i].name;
        i += 1;
    }
    names
}

/// The names of [`METHOD_TABLE`]'s methods, in its order.
pub const METHODS: [&str; METHOD_TABLE.len()] = method_names();

/// The method called `name` in [`METHOD_TABLE`].
pub fn method(name: &str) -> Option<&'static Method> {
    METHOD_TABLE.iter().find(|m| m.name == name)
}

/// A method of [`METHOD_TABLE`] as JSON: `name`, `doc`, `params` (`name`, `required`, `doc`).
pub fn method_json(m: &Method) -> Value {
    json!({
        "name": m.name,
        "doc": m.doc,
        "params": m.params.iter().map(|p| json!({
            "name": p.name,
            "required": p.required,
            "doc": p.doc,
        })).collect::<Vec<_>>(),
    })
}

/// The longest `address` `connect` takes: a DNS name (at most 253 bytes), `:` and a port.
pub const MAX_ADDRESS_LEN: usize = 259;
/// The most hops of a `pay` route (what a 1,300-byte onion can carry).
pub const MAX_ROUTE_HOPS: usize = 20;
/// The most transactions of a block (4,000,000 weight units over the 240 of the smallest
/// transaction): `block_connected` takes at most this many, and every index below it.
pub const MAX_BLOCK_TRANSACTIONS: u32 = 16_666;
/// The highest block a short channel id can name (24 bits): `block_connected`'s bound on
/// `height`, and the bound on the block part of a `BLOCKxTXxOUT` short channel id.
pub const MAX_BLOCK_HEIGHT: u32 = 0xff_ffff;
/// The highest transaction index a short channel id can name (24 bits).
pub const MAX_SCID_TX_INDEX: u32 = 0xff_ffff;

/// How `claim` names the payment to claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimBy {
    /// By its preimage.
    Preimage(PaymentPreimage),
    /// By its hash: the node claims with the preimage it keeps for it.
    Hash(PaymentHash),
}

/// A control request, parsed and validated by [`parse_request`] (a pure function of the
/// method and its parameters), executed by [`execute`]. Every field is within its documented
/// bound: a variant's fields need no further checking before they reach the engine.
#[derive(Debug, Clone)]
pub enum Request {
    /// `getinfo` (parameters ignored).
    GetInfo,
    /// `connect`.
    Connect {
        /// The peer's node id.
        node_id: PublicKey,
        /// `host:port`, at most [`MAX_ADDRESS_LEN`] bytes; resolved when executed.
        address: String,
    },
    /// `open_channel`.
    OpenChannel {
        /// The peer's node id.
        node_id: PublicKey,
        /// The channel's value.
        amount_sat: u64,
        /// Given to the peer at opening (default 0).
        push_msat: u64,
        /// The commitment feerate (default 1000).
        feerate_per_kw: u32,
        /// The feerate of the funding transaction when the wallet funds the channel
        /// (`funding_feerate_per_kw`, default
        /// [`DEFAULT_FUNDING_FEERATE_PER_KW`](crate::wallet::DEFAULT_FUNDING_FEERATE_PER_KW)),
        /// within [`crate::sweep::MIN_CLAIM_FEERATE_PER_KW`] and
        /// [`crate::sweep::MAX_CLAIM_FEERATE_PER_KW`].
        funding_feerate_per_kw: u32,
    },
    /// `fund` (regtest only: the caller hands the node a secret key).
    Fund {
        /// The channel to fund.
        temporary_channel_id: ChannelId,
        /// The output that funds it, its key and the fee (default 1000 sat).
        utxo: Utxo,
    },
    /// `new_invoice`.
    NewInvoice {
        /// The amount expected, if any.
        amount_msat: Option<u64>,
        /// A payment to it waits for `claim` or `fail` (otherwise the node claims it).
        hold: bool,
    },
    /// `pay`.
    Pay {
        /// 1 to [`MAX_ROUTE_HOPS`] hops.
        route: Route,
        /// The payment's hash.
        payment_hash: PaymentHash,
        /// The recipient's secret.
        payment_secret: PaymentSecret,
        /// The payment's id (by default its hash).
        payment_id: PaymentId,
    },
    /// `claim`.
    Claim(ClaimBy),
    /// `fail`.
    Fail {
        /// The payment to fail back.
        payment_hash: PaymentHash,
    },
    /// `close`.
    Close {
        /// The channel to close cooperatively.
        channel_id: ChannelId,
    },
    /// `force_close`.
    ForceClose {
        /// The channel to force-close.
        channel_id: ChannelId,
    },
    /// `list_peers` (parameters ignored).
    ListPeers,
    /// `list_channels` (parameters ignored).
    ListChannels,
    /// `block_connected`.
    BlockConnected {
        /// At most [`MAX_BLOCK_HEIGHT`].
        height: u32,
        /// The hash of the block's 80-byte header.
        hash: BlockHash,
        /// At most [`MAX_BLOCK_TRANSACTIONS`] transactions, each with its index in the block
        /// (below [`MAX_BLOCK_TRANSACTIONS`]).
        transactions: Vec<(u32, Transaction)>,
    },
    /// `block_disconnected`: blocks from `height` up were disconnected.
    BlockDisconnected {
        /// 1 to [`MAX_BLOCK_HEIGHT`] (the genesis block is never disconnected).
        height: u32,
        /// The hash of the block at `height - 1`, the new best block (the fork point).
        hash: BlockHash,
    },
    /// `list_balances` (parameters ignored).
    ListBalances,
    /// `set_claim_feerate`.
    SetClaimFeerate {
        /// Within [`crate::sweep::MIN_CLAIM_FEERATE_PER_KW`] and
        /// [`crate::sweep::MAX_CLAIM_FEERATE_PER_KW`].
        feerate_per_kw: u32,
    },
    /// `set_fee_estimates`: the host's estimates, each within
    /// [`crate::sweep::MIN_CLAIM_FEERATE_PER_KW`] and [`crate::sweep::MAX_CLAIM_FEERATE_PER_KW`].
    SetFeeEstimates(lightning_core::node::FeeEstimates),
    /// `new_address` (parameters ignored): a new receiving address of the wallet.
    NewAddress,
    /// `wallet_balance` (parameters ignored).
    WalletBalance,
    /// `list_utxos` (parameters ignored): the wallet's unspent coins.
    ListUtxos,
    /// `send`: pays `amount_sat` to `address` from the wallet's confirmed coins.
    Send {
        /// The destination (its network is checked against the node's when executed).
        address: Address<NetworkUnchecked>,
        /// At least 1.
        amount_sat: u64,
        /// Within [`crate::sweep::MIN_CLAIM_FEERATE_PER_KW`] and
        /// [`crate::sweep::MAX_CLAIM_FEERATE_PER_KW`].
        feerate_per_kw: u32,
    },
    /// `broadcasts` (parameters ignored).
    Broadcasts,
    /// `events` (parameters ignored).
    Events,
    /// `stop` (parameters ignored).
    Stop,
    /// `help`: [`METHOD_TABLE`], or one method of it.
    Help {
        /// The method to describe (one of [`METHODS`]); all when `None`.
        method: Option<&'static Method>,
    },
}

impl Request {
    /// The method's name.
    pub fn method(&self) -> &'static str {
        match self {
            Request::GetInfo => "getinfo",
            Request::Connect { .. } => "connect",
            Request::OpenChannel { .. } => "open_channel",
            Request::Fund { .. } => "fund",
            Request::NewInvoice { .. } => "new_invoice",
            Request::Pay { .. } => "pay",
            Request::Claim(_) => "claim",
            Request::Fail { .. } => "fail",
            Request::Close { .. } => "close",
            Request::ForceClose { .. } => "force_close",
            Request::ListPeers => "list_peers",
            Request::ListChannels => "list_channels",
            Request::BlockConnected { .. } => "block_connected",
            Request::BlockDisconnected { .. } => "block_disconnected",
            Request::ListBalances => "list_balances",
            Request::SetClaimFeerate { .. } => "set_claim_feerate",
            Request::SetFeeEstimates(_) => "set_fee_estimates",
            Request::NewAddress => "new_address",
            Request::WalletBalance => "wallet_balance",
            Request::ListUtxos => "list_utxos",
            Request::Send { .. } => "send",
            Request::Broadcasts => "broadcasts",
            Request::Events => "events",
            Request::Stop => "stop",
            Request::Help { .. } => "help",
        }
    }

    /// Whether a stopped engine still serves it: `getinfo` (it reports the stop), and
    /// `stop`, `broadcasts`, `events` and `help`, which do not touch the engine (a
    /// transaction waiting to be broadcast may protect funds).
    pub fn served_when_stopped(&self) -> bool {
        matches!(
            self,
            Request::GetInfo
                | Request::Stop
                | Request::Broadcasts
                | Request::Events
                | Request::Help { .. }
        )
    }
}

/// Parses and validates a method's parameters (a JSON object; `null` reads as one without
/// keys) into a [`Request`], checking every bound the engine relies on: hex sizes (node ids
/// 33 bytes, ids, hashes, secrets and keys 32, headers 80), integer ranges, the lengths and
/// counts of the `MAX_*` constants of this module. Pure: no I/O, no node. A method not in
/// [`METHOD_TABLE`] is JSON-RPC error -32601 (`unknown_method`, listing the known ones), bad
/// parameters -32602 (`invalid_params`), with a message naming the parameter.
pub fn parse_request(method: &str, p: &Value) -> Result<Request, RpcError> {
    let Some(entry) = self::method(method) else {
        return Err(unknown_method(method));
    };
    Ok(match entry.name {
        "getinfo" => Request::GetInfo,
        "connect" => {
            let node_id = pubkey(str_param(p, "node_id")?, "node_id")?;
            let address = str_param(p, "address")?;
            if address.len() > MAX_ADDRESS_LEN {
                return Err(invalid(format!(
                    "address of {} bytes is longer than {MAX_ADDRESS_LEN}",
                    address.len()
                )));
            }
            Request::Connect {
                node_id,
                address: address.to_owned(),
            }
        }
        "open_channel" => Request::OpenChannel {
            node_id: pubkey(str_param(p, "node_id")?, "node_id")?,
            amount_sat: u64_param(p, "amount_sat")?,
            push_msat: opt_u64(p, "push_msat", 0)?,
            feerate_per_kw: u32::try_from(opt_u64(p, "feerate_per_kw", 1000)?)
                .map_err(|_| invalid("feerate_per_kw too large"))?,
            funding_feerate_per_kw: super::sweep::check_claim_feerate(opt_u64(
                p,
                "funding_feerate_per_kw",
                u64::from(super::wallet::DEFAULT_FUNDING_FEERATE_PER_KW),
            )?)
            .map_err(|e| invalid(format!("funding_feerate_per_kw: {e}")))?,
        },
        "fund" => {
            let temporary_channel_id = ChannelId(hex32(p, "temporary_channel_id")?);
            let outpoint: OutPoint = str_param(p, "outpoint")?
                .parse()
                .map_err(|e| invalid(format!("outpoint is not txid:vout: {e}")))?;
            let secret_key = SecretKey::from_slice(&hex32(p, "secret_key")?)
                .map_err(|e| invalid(format!("secret_key: {e}")))?;
            Request::Fund {
                temporary_channel_id,
                utxo: Utxo {
                    outpoint,
                    amount_sat: u64_param(p, "amount_sat")?,
                    secret_key,
                    fee_sat: opt_u64(p, "fee_sat", 1000)?,
                },
            }
        }
        "new_invoice" => Request::NewInvoice {
            amount_msat: match p.get("amount_msat") {
                None | Some(Value::Null) => None,
                Some(_) => Some(u64_param(p, "amount_msat")?),
            },
            hold: match p.get("hold") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(invalid_param("hold", "hold must be true or false")),
            },
        },
        "pay" => {
            let hops = p
                .get("route")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("missing array parameter route"))?;
            if hops.is_empty() || hops.len() > MAX_ROUTE_HOPS {
                return Err(invalid(format!(
                    "route has {} hops, not 1 to {MAX_ROUTE_HOPS}",
                    hops.len()
                )));
            }
            let mut route = Route {
                hops: Vec::with_capacity(hops.len()),
            };
            for h in hops {
                route.hops.push(RouteHop {
                    node_id: pubkey(str_param(h, "node_id")?, "route node_id")?,
                    short_channel_id: scid(h.get("short_channel_id").unwrap_or(&Value::Null))?,
                    fee_msat: u64_param(h, "fee_msat")?,
                    cltv_expiry_delta: u32::try_from(u64_param(h, "cltv_expiry_delta")?)
                        .map_err(|_| invalid("cltv_expiry_delta too large"))?,
                });
            }
            let payment_hash = PaymentHash(hex32(p, "payment_hash")?);
            let payment_secret = PaymentSecret(hex32(p, "payment_secret")?);
            let payment_id = match p.get("payment_id") {
                Some(Value::String(_)) => PaymentId(hex32(p, "payment_id")?),
                _ => PaymentId(payment_hash.0),
            };
            Request::Pay {
                route,
                payment_hash,
                payment_secret,
                payment_id,
            }
        }
        "claim" => Request::Claim(match p.get("payment_preimage") {
            Some(_) => ClaimBy::Preimage(PaymentPreimage(hex32(p, "payment_preimage")?)),
            None => ClaimBy::Hash(PaymentHash(hex32(p, "payment_hash")?)),
        }),
        "fail" => Request::Fail {
            payment_hash: PaymentHash(hex32(p, "payment_hash")?),
        },
        "close" => Request::Close {
            channel_id: ChannelId(hex32(p, "channel_id")?),
        },
        "force_close" => Request::ForceClose {
            channel_id: ChannelId(hex32(p, "channel_id")?),
        },
        "list_peers" => Request::ListPeers,
        "list_channels" => Request::ListChannels,
        "block_connected" => {
            let height = u64_param(p, "height")?;
            let height = u32::try_from(height)
                .ok()
                .filter(|h| *h <= MAX_BLOCK_HEIGHT)
                .ok_or_else(|| {
                    invalid(format!(
                        "height {height} too large (a short channel id holds at most {MAX_BLOCK_HEIGHT})"
                    ))
                })?;
            let header = hex::decode(str_param(p, "header")?)
                .map_err(|e| invalid(format!("header is not hex: {e}")))?;
            let hash = super::header_hash(&header)
                .ok_or_else(|| invalid(format!("header is {} bytes, not 80", header.len())))?;
            let txs = match p.get("transactions").and_then(Value::as_array) {
                Some(txs) => txs.as_slice(),
                None => &[],
            };
            if txs.len() > MAX_BLOCK_TRANSACTIONS as usize {
                return Err(invalid(format!(
                    "{} transactions, more than a block holds ({MAX_BLOCK_TRANSACTIONS})",
                    txs.len()
                )));
            }
            let mut transactions = Vec::with_capacity(txs.len());
            for (i, t) in (0u32..).zip(txs) {
                // A hex string (its index in the block is its position in the list), or
                // {"index", "tx"} to pass only the block's transactions that matter.
                let (index, s) = match t {
                    Value::String(s) => (i, s.as_str()),
                    Value::Object(_) => {
                        let index = u64_param(t, "index")?;
                        let index = u32::try_from(index)
                            .ok()
                            .filter(|i| *i < MAX_BLOCK_TRANSACTIONS)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "transaction index {index} too large (a block holds at most {MAX_BLOCK_TRANSACTIONS})"
                                ))
                            })?;
                        (index, str_param(t, "tx")?)
                    }
                    _ => {
                        return Err(invalid(
                            "transactions must be hex strings or {\"index\", \"tx\"} objects",
                        ))
                    }
                };
                transactions.push((index, tx_from_hex(s)?));
            }
            Request::BlockConnected {
                height,
                hash,
                transactions,
            }
        }
        "block_disconnected" => {
            let height = u64_param(p, "height")?;
            let height = u32::try_from(height)
                .ok()
                .filter(|h| (1..=MAX_BLOCK_HEIGHT).contains(h))
                .ok_or_else(|| {
                    invalid(format!(
                        "height {height} outside 1..={MAX_BLOCK_HEIGHT} (the genesis block is never disconnected)"
                    ))
                })?;
            let hash = block_hash_param(p, "hash")?;
            Request::BlockDisconnected { height, hash }
        }
        "list_balances" => Request::ListBalances,
        "set_claim_feerate" => Request::SetClaimFeerate {
            feerate_per_kw: super::sweep::check_claim_feerate(u64_param(p, "feerate_per_kw")?)
                .map_err(invalid)?,
        },
        "set_fee_estimates" => {
            let target = |name: &str| -> Result<u32, RpcError> {
                super::sweep::check_claim_feerate(u64_param(p, name)?)
                    .map_err(|e| invalid(format!("{name}: {e}")))
            };
            Request::SetFeeEstimates(lightning_core::node::FeeEstimates {
                urgent: target("urgent")?,
                normal: target("normal")?,
                background: target("background")?,
            })
        }
        "new_address" => Request::NewAddress,
        "wallet_balance" => Request::WalletBalance,
        "list_utxos" => Request::ListUtxos,
        "send" => {
            let s = str_param(p, "address")?;
            let address = s
                .parse::<Address<NetworkUnchecked>>()
                .map_err(|e| invalid(format!("address {s:?}: {e}")))?;
            let amount_sat = u64_param(p, "amount_sat")?;
            if amount_sat == 0 {
                return Err(invalid("amount_sat must be at least 1"));
            }
            Request::Send {
                address,
                amount_sat,
                feerate_per_kw: super::sweep::check_claim_feerate(u64_param(p, "feerate_per_kw")?)
                    .map_err(|e| invalid(format!("feerate_per_kw: {e}")))?,
            }
        }
        "broadcasts" => Request::Broadcasts,
        "events" => Request::Events,
        "stop" => Request::Stop,
        "help" => Request::Help {
            method: match p.get("method") {
                None | Some(Value::Null) => None,
                Some(_) => {
                    let name = str_param(p, "method")?;
                    Some(self::method(name).ok_or_else(|| {
                        let e = unknown_method(name);
                        invalid_param("method", e.message().to_owned())
                            .with("methods", METHODS.to_vec())
                    })?)
                }
            },
        },
        other => return Err(unknown_method(other)),
    })
}

fn str_param<'a>(p: &'a Value, name: &str) -> Result<&'a str, RpcError> {
    p.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_param(name, format!("missing string parameter {name}")))
}

fn u64_param(p: &Value, name: &str) -> Result<u64, RpcError> {
    p.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid_param(name, format!("missing integer parameter {name}")))
}

fn opt_u64(p: &Value, name: &str, default: u64) -> Result<u64, RpcError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| {
            invalid_param(
                name,
                format!("parameter {name} must be a non-negative integer"),
            )
        }),
    }
}

fn hex32(p: &Value, name: &str) -> Result<[u8; 32], RpcError> {
    let s = str_param(p, name)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|e| invalid_param(name, format!("{name} {s:?} is not 32 bytes of hex: {e}")))?;
    Ok(out)
}

/// A block hash as explorers and `block_connected` show it (64 hex digits, display order).
fn block_hash_param(p: &Value, name: &str) -> Result<BlockHash, RpcError> {
    let s = str_param(p, name)?;
    s.parse::<BlockHash>()
        .map_err(|e| invalid_param(name, format!("{name} {s:?} is not a block hash: {e}")))
}

fn pubkey(s: &str, name: &str) -> Result<PublicKey, RpcError> {
    s.parse::<PublicKey>()
        .map_err(|e| invalid_param(name, format!("{name} {s:?} is not a node id: {e}")))
}

/// A short channel id: `BLOCKxTXxOUT` with the block and transaction index within their 24
/// bits (never silently masked to another channel), as answers give it; or its 64 bits as a
/// number or a string of decimal digits.
fn scid(v: &Value) -> Result<ShortChannelId, RpcError> {
    if let Some(n) = v.as_u64() {
        return Ok(ShortChannelId(n));
    }
    let s = v.as_str().ok_or_else(|| {
        invalid_param(
            "short_channel_id",
            "short_channel_id must be BLOCKxTXxOUT (or a number)",
        )
    })?;
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map(ShortChannelId).map_err(|_| {
            invalid_param(
                "short_channel_id",
                format!("short_channel_id {s:?} is more than 64 bits"),
            )
        });
    }
    let bad = || {
        invalid_param(
            "short_channel_id",
            format!("short_channel_id {s:?} is not BLOCKxTXxOUT"),
        )
    };
    let mut parts = s.split('x');
    let (Some(b), Some(t), Some(o), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let block: u32 = b.parse().map_err(|_| bad())?;
    let tx_index: u32 = t.parse().map_err(|_| bad())?;
    if block > MAX_BLOCK_HEIGHT || tx_index > MAX_SCID_TX_INDEX {
        return Err(bad());
    }
    Ok(ShortChannelId::new(
        block,
        tx_index,
        o.parse().map_err(|_| bad())?,
    ))
}

fn tx_from_hex(s: &str) -> Result<Transaction, RpcError> {
    let bytes = hex::decode(s).map_err(|e| invalid(format!("transaction is not hex: {e}")))?;
    deserialize(&bytes).map_err(|e| invalid(format!("transaction does not decode: {e}")))
}

/// Runs a blocking engine call off the IO threads.
async fn blocking<T: Send + 'static>(
    node: &Arc<Node>,
    f: impl FnOnce(&Node) -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    let n = node.clone();
    tokio::task::spawn_blocking(move || f(&n))
        .await
        .map_err(|e| failed(format!("internal task failed: {e}")))?
}

/// Executes a parsed request against the node: only acts, every parameter was checked by
/// [`parse_request`]. The caller refuses what a stopped engine does not serve
/// ([`Request::served_when_stopped`]).
pub async fn execute(node: &Arc<Node>, request: Request) -> Result<Value, RpcError> {
    match request {
        Request::GetInfo => {
            let listen = node.listen_addr.lock().map(|a| a.to_string());
            blocking(node, move |n| {
                let (height, hash) = n.engine.coordinator().best_block();
                // The engine may stop between two calls: its health after the listing decides.
                let listed = n.engine.list_channels();
                let (state, stopped_reason, channels) = match (n.engine.health(), listed) {
                    (Ok(()), Ok(channels)) => ("running", None, Some(channels.len())),
                    (Ok(()), Err(e)) => return Err(engine_error(e)),
                    (Err(reason), _) => ("stopped", Some(reason.to_string()), None),
                };
                Ok(json!({
                    "state": state,
                    "stopped_reason": stopped_reason,
                    "node_id": n.node_id.to_string(),
                    "listen": listen,
                    "network": n.config.network.to_string(),
                    "block_height": height,
                    "block_hash": hash.to_string(),
                    "shards": n.engine.shard_count(),
                    "peers": n.state.connections.established().len(),
                    "open_connections": n.state.connections.open_count(),
                    "channels": channels,
                    "test_mode": n.config.test_mode.is_some(),
                }))
            })
            .await
        }
        Request::Connect { node_id, address } => {
            let addr = tokio::net::lookup_host(address.as_str())
                .await
                .map_err(|e| invalid(format!("address {address:?}: {e}")))?
                .next()
                .ok_or_else(|| invalid(format!("address {address:?} resolves to nothing")))?;
            // The address of the connection in use (an existing one's, if connected already).
            let in_use = super::net::connect(node.clone(), node_id, addr)
                .await
                .map_err(|e| {
                    failed_as("connect_failed", e)
                        .with("node_id", node_id.to_string())
                        .with("address", addr.to_string())
                })?;
            Ok(
                json!({"connected": true, "node_id": node_id.to_string(), "address": in_use.to_string()}),
            )
        }
        Request::OpenChannel {
            node_id,
            amount_sat,
            push_msat,
            feerate_per_kw,
            funding_feerate_per_kw,
        } => {
            blocking(node, move |n| {
                let user_channel_id = u128::from(n.now_ms());
                let temp = n
                    .engine
                    .create_channel(
                        node_id,
                        amount_sat,
                        push_msat,
                        user_channel_id,
                        feerate_per_kw,
                    )
                    .map_err(engine_error)?;
                n.state
                    .wallet_funding_feerates
                    .lock()
                    .insert(temp, funding_feerate_per_kw);
                Ok(json!({"temporary_channel_id": temp.to_string()}))
            })
            .await
        }
        Request::Fund {
            temporary_channel_id: temp,
            utxo,
        } => {
            if node.config.network != Network::Regtest {
                return Err(invalid(format!(
                    "fund takes a secret key and is refused on {}: open_channel funds from the wallet",
                    node.config.network
                )));
            }
            blocking(node, move |n| {
                let mut waits = n.state.funding.lock();
                match waits.needed.remove(&temp) {
                    Some(needed) => {
                        drop(waits);
                        let tx = super::funding::fund_with(n, temp, &needed, &utxo).map_err(|e| {
                            failed_as("funding_failed", e)
                                .with("temporary_channel_id", temp.to_string())
                        })?;
                        Ok(json!({"status": "funded", "txid": tx.compute_txid().to_string(), "transaction": serialize_hex(&tx)}))
                    }
                    None => {
                        // Validate early what can be validated without the peer's answer.
                        waits.utxos.insert(temp, utxo);
                        Ok(json!({"status": "waiting_for_accept_channel"}))
                    }
                }
            })
            .await
        }
        Request::NewInvoice { amount_msat, hold } => {
            blocking(node, move |n| {
                let mut preimage = PaymentPreimage([0; 32]);
                hex::decode_to_slice(files::random_hex().map_err(failed)?, &mut preimage.0)
                    .map_err(failed)?;
                let (hash, secret) = n
                    .engine
                    .create_inbound_payment(preimage, amount_msat)
                    .map_err(engine_error)?;
                let invoice = files::Invoice { preimage, hold };
                // Durable before the invoice leaves: a restart can still claim it (or hold it).
                files::append_invoice(&files::invoices_path(&n.config.data_dir), &hash, &invoice)
                    .map_err(failed)?;
                n.state.preimages.lock().insert(hash, invoice);
                Ok(json!({
                    "payment_hash": hash.to_string(),
                    "payment_secret": secret.to_string(),
                    "hold": hold,
                }))
            })
            .await
        }
        Request::Pay {
            route,
            payment_hash,
            payment_secret,
            payment_id,
        } => {
            blocking(node, move |n| {
                n.engine
                    .send_payment(&route, payment_hash, payment_secret, payment_id)
                    .map_err(engine_error)?;
                Ok(json!({"payment_id": hex::encode(payment_id.0)}))
            })
            .await
        }
        Request::Claim(by) => {
            let preimage = match by {
                ClaimBy::Preimage(preimage) => preimage,
                ClaimBy::Hash(hash) => node
                    .state
                    .preimages
                    .lock()
                    .get(&hash)
                    .map(|invoice| invoice.preimage)
                    .ok_or_else(|| {
                        rpc_error(
                            -32000,
                            "unknown_payment_hash",
                            format!("no preimage known for payment_hash {hash}"),
                        )
                        .with("payment_hash", hash.to_string())
                    })?,
            };
            blocking(node, move |n| {
                n.engine.claim_funds(preimage).map_err(engine_error)?;
                Ok(json!({}))
            })
            .await
        }
        Request::Fail { payment_hash } => {
            blocking(node, move |n| {
                n.engine.fail_htlc_backwards(payment_hash).map_err(engine_error)?;
                Ok(json!({}))
            })
            .await
        }
        Request::Close { channel_id } => {
            blocking(node, move |n| {
                n.engine.close_channel(channel_id).map_err(engine_error)?;
                Ok(json!({}))
            })
            .await
        }
        Request::ForceClose { channel_id } => {
            blocking(node, move |n| {
                n.engine.force_close_channel(channel_id).map_err(engine_error)?;
                Ok(json!({}))
            })
            .await
        }
        Request::ListPeers => {
            let peers: Vec<Value> = node
                .state
                .connections
                .established()
                .into_iter()
                .map(|c| {
                    json!({
                        "node_id": c.node_id.map(|n| n.to_string()),
                        "address": c.addr.to_string(),
                        "inbound": c.inbound,
                        "connection": c.conn,
                    })
                })
                .collect();
            Ok(Value::Array(peers))
        }
        Request::ListChannels => {
            blocking(node, |n| {
                let channels = n.engine.list_channels().map_err(engine_error)?;
                Ok(Value::Array(channels.iter().map(channel_json).collect()))
            })
            .await
        }
        Request::BlockConnected {
            height,
            hash,
            transactions,
        } => {
            blocking(node, move |n| {
                if !transactions.is_empty() {
                    n.engine
                        .transactions_confirmed(height, &transactions)
                        .map_err(engine_error)?;
                }
                n.engine.best_block_updated(height, hash).map_err(engine_error)?;
                n.wallet
                    .block_connected(height, hash, &transactions)
                    .map_err(|e| failed_as("wallet", e))?;
                // The fee bumps whose spend is deep release their coins.
                let txs: Vec<&lightning_core::bitcoin::Transaction> =
                    transactions.iter().map(|(_, tx)| tx).collect();
                n.state
                    .bumper
                    .lock()
                    .block_connected(&n.wallet, height, &txs);
                Ok(json!({"height": height, "hash": hash.to_string()}))
            })
            .await
        }
        Request::BlockDisconnected { height, hash } => {
            blocking(node, move |n| {
                n.engine.block_disconnected(height, hash).map_err(engine_error)?;
                n.state.bumper.lock().blocks_disconnected(height);
                Ok(json!({"disconnected_from": height, "best_height": height - 1, "best_hash": hash.to_string()}))
            })
            .await
        }
        Request::ListBalances => {
            blocking(node, |n| {
                let all = n.engine.claimable_balances().map_err(engine_error)?;
                Ok(balances_json(&all))
            })
            .await
        }
        Request::SetClaimFeerate { feerate_per_kw } => {
            blocking(node, move |n| {
                n.engine.set_claim_feerate(feerate_per_kw).map_err(engine_error)?;
                Ok(json!({"feerate_per_kw": feerate_per_kw}))
            })
            .await
        }
        Request::SetFeeEstimates(estimates) => {
            blocking(node, move |n| {
                n.engine.fee_estimates_updated(estimates).map_err(engine_error)?;
                Ok(json!({
                    "urgent": estimates.urgent,
                    "normal": estimates.normal,
                    "background": estimates.background,
                }))
            })
            .await
        }
        Request::NewAddress => {
            blocking(node, |n| {
                let address = n
                    .wallet
                    .new_address()
                    .map_err(|e| failed_as("wallet", e))?;
                Ok(json!({"address": address.to_string()}))
            })
            .await
        }
        Request::WalletBalance => {
            blocking(node, |n| {
                let b = n.wallet.balance();
                Ok(json!({
                    "confirmed_sat": b.confirmed_sat,
                    "trusted_pending_sat": b.trusted_pending_sat,
                    "untrusted_pending_sat": b.untrusted_pending_sat,
                    "immature_sat": b.immature_sat,
                }))
            })
            .await
        }
        Request::ListUtxos => {
            blocking(node, |n| {
                let utxos: Vec<Value> = n
                    .wallet
                    .coins()
                    .iter()
                    .map(|c| {
                        json!({
                            "outpoint": c.outpoint.to_string(),
                            "amount_sat": c.amount_sat,
                            "script_pubkey": c.script_pubkey.to_hex_string(),
                            "confirmation_height": c.confirmation_height,
                            "change": c.change,
                            "reserved": c.reserved,
                        })
                    })
                    .collect();
                Ok(json!({"utxos": utxos}))
            })
            .await
        }
        Request::Send {
            address,
            amount_sat,
            feerate_per_kw,
        } => {
            blocking(node, move |n| {
                let address = address
                    .require_network(n.config.network)
                    .map_err(|e| invalid(format!("address: {e}")))?;
                let (tx, fee) = n
                    .wallet
                    .send(
                        address.script_pubkey(),
                        Amount::from_sat(amount_sat),
                        u64::from(feerate_per_kw),
                        super::state::unix_now(),
                    )
                    .map_err(|e| failed_as("wallet", e))?;
                n.state.broadcasts.lock().push(tx.clone());
                Ok(json!({
                    "txid": tx.compute_txid().to_string(),
                    "transaction": serialize_hex(&tx),
                    "fee_sat": fee.to_sat(),
                }))
            })
            .await
        }
        Request::Broadcasts => {
            let txs: Vec<Value> = std::mem::take(&mut *node.state.broadcasts.lock())
                .iter()
                .map(|tx| Value::String(serialize_hex(tx)))
                .collect();
            let bumps: Vec<Value> = std::mem::take(&mut *node.state.bumps.lock())
                .into_values()
                .collect();
            let packages: Vec<Value> = std::mem::take(&mut *node.state.packages.lock())
                .into_values()
                .map(|(parent, child)| {
                    json!({"parent": serialize_hex(&parent), "child": serialize_hex(&child)})
                })
                .collect();
            Ok(json!({"transactions": txs, "packages": packages, "bump_needed": bumps}))
        }
        Request::Events => {
            let (events, dropped) = node.state.events.lock().drain();
            Ok(json!({"events": events, "dropped": dropped}))
        }
        Request::Stop => {
            node.request_stop();
            Ok(json!({"stopping": true}))
        }
        Request::Help { method } => Ok(match method {
            Some(m) => method_json(m),
            None => json!({"methods": METHOD_TABLE.iter().map(method_json).collect::<Vec<_>>()}),
        }),
    }
}

/// One amount of `list_balances`: its `type` (`claimable_on_channel_close`,
/// `claimable_awaiting_confirmations` with `confirmation_height`, `contentious_claimable`
/// with `timeout_height`, `payment_hash` and `ours_after_timeout`,
/// `counterparty_revoked_output_claimable`) and `amount_sat`.
pub fn balance_json(b: &Balance) -> Value {
    match b {
        Balance::ClaimableOnChannelClose { amount_sat } => {
            json!({"type": "claimable_on_channel_close", "amount_sat": amount_sat})
        }
        Balance::ClaimableAwaitingConfirmations {
            amount_sat,
            confirmation_height,
        } => json!({
            "type": "claimable_awaiting_confirmations",
            "amount_sat": amount_sat,
            "confirmation_height": confirmation_height,
        }),
        Balance::ContentiousClaimable {
            amount_sat,
            timeout_height,
            payment_hash,
            ours_after_timeout,
        } => json!({
            "type": "contentious_claimable",
            "amount_sat": amount_sat,
            "timeout_height": timeout_height,
            "payment_hash": payment_hash.to_string(),
            "ours_after_timeout": ours_after_timeout,
        }),
        Balance::CounterpartyRevokedOutputClaimable { amount_sat } => json!({
            "type": "counterparty_revoked_output_claimable",
            "amount_sat": amount_sat,
        }),
    }
}

/// `list_balances`' answer: `{"total_sat", "channels": [{"channel_id", "total_sat",
/// "balances": [...]}]}`, channels in the order the engine listed them.
fn balances_json(all: &[(ChannelId, Balance)]) -> Value {
    let mut channels: Vec<(ChannelId, Vec<Value>, u64)> = Vec::new();
    for (id, b) in all {
        let amount = match b {
            Balance::ClaimableOnChannelClose { amount_sat }
            | Balance::ClaimableAwaitingConfirmations { amount_sat, .. }
            | Balance::ContentiousClaimable { amount_sat, .. }
            | Balance::CounterpartyRevokedOutputClaimable { amount_sat } => *amount_sat,
        };
        match channels.iter_mut().find(|(c, _, _)| c == id) {
            Some((_, list, total)) => {
                list.push(balance_json(b));
                *total = total.saturating_add(amount);
            }
            None => channels.push((*id, vec![balance_json(b)], amount)),
        }
    }
    let total: u64 = channels
        .iter()
        .fold(0u64, |acc, (_, _, t)| acc.saturating_add(*t));
    json!({
        "total_sat": total,
        "channels": channels
            .into_iter()
            .map(|(id, balances, total)| json!({
                "channel_id": id.to_string(),
                "total_sat": total,
                "balances": balances,
            }))
            .collect::<Vec<_>>(),
    })
}

/// A monitor event as the fields of an `on_chain` event.
fn monitor_event_json(event: &MonitorEvent) -> Value {
    match event {
        MonitorEvent::FundingSpent { txid, kind } => {
            let (spend, number) = match kind {
                FundingSpendKind::Cooperative => ("cooperative", None),
                FundingSpendKind::Holder { index } => ("holder", Some(*index)),
                FundingSpendKind::Counterparty { index } => ("counterparty", Some(*index)),
                FundingSpendKind::Revoked { index } => ("revoked", Some(*index)),
                FundingSpendKind::Future { index } => ("future", Some(*index)),
                FundingSpendKind::Unknown => ("unknown", None),
            };
            json!({"kind": "funding_spent", "txid": txid.to_string(), "spend": spend,
                "commitment_number": number})
        }
        MonitorEvent::OutboundHtlcFulfilled { htlc_id, preimage } => json!({
            "kind": "outbound_htlc_fulfilled",
            "htlc_id": htlc_id,
            "payment_hash": preimage.payment_hash().to_string(),
            "payment_preimage": preimage.to_string(),
        }),
        MonitorEvent::OutboundHtlcFailed {
            htlc_id,
            payment_hash,
        } => json!({
            "kind": "outbound_htlc_failed",
            "htlc_id": htlc_id,
            "payment_hash": payment_hash.to_string(),
        }),
        MonitorEvent::InboundHtlcClaimed {
            htlc_id,
            amount_msat,
            payment_hash,
        } => json!({
            "kind": "inbound_htlc_claimed",
            "htlc_id": htlc_id,
            "amount_msat": amount_msat,
            "payment_hash": payment_hash.to_string(),
        }),
        MonitorEvent::InboundHtlcLost {
            htlc_id,
            amount_msat,
            payment_hash,
        } => json!({
            "kind": "inbound_htlc_lost",
            "htlc_id": htlc_id,
            "amount_msat": amount_msat,
            "payment_hash": payment_hash.to_string(),
        }),
        MonitorEvent::ClaimConfirmed { txid, value_sat } => json!({
            "kind": "claim_confirmed",
            "txid": txid.to_string(),
            "value_sat": value_sat,
        }),
        MonitorEvent::RevokedCommitmentSeen { txid, index } => json!({
            "kind": "revoked_commitment_seen",
            "txid": txid.to_string(),
            "commitment_number": index,
        }),
        MonitorEvent::FutureCommitmentSeen { txid, index } => json!({
            "kind": "future_commitment_seen",
            "txid": txid.to_string(),
            "commitment_number": index,
        }),
        MonitorEvent::BumpNeeded {
            tx,
            anchor,
            deadline,
            feerate_per_kw,
            ..
        } => bump_json(tx, anchor.as_ref(), *deadline, *feerate_per_kw, false),
    }
}

/// A `bump_needed` entry: the transaction's id, the anchor, the deadline and the feerate;
/// with the transaction itself (hex) when `with_tx` (in `broadcasts`; an event names it
/// by its id only, to keep the events log small).
pub(crate) fn bump_json(
    tx: &Transaction,
    anchor: Option<&OutPoint>,
    deadline: u32,
    feerate_per_kw: u32,
    with_tx: bool,
) -> Value {
    let mut v = json!({
        "kind": "bump_needed",
        "txid": tx.compute_txid().to_string(),
        "anchor": anchor.map(|a| a.to_string()),
        "deadline": deadline,
        "feerate_per_kw": feerate_per_kw,
    });
    if with_tx {
        v["transaction"] = Value::String(serialize_hex(tx));
    }
    v
}

fn channel_json(c: &ChannelDetails) -> Value {
    json!({
        "channel_id": c.channel_id.to_string(),
        "node_id": c.counterparty_node_id.to_string(),
        "value_sat": c.channel_value_satoshis,
        "outbound": c.is_outbound,
        "phase": crate::rpc_errors::phase_name(c.phase),
        "usable": c.is_usable,
        "short_channel_id": c.short_channel_id.map(|s| s.to_string()),
        "to_local_msat": c.balances.to_local_msat,
        "to_remote_msat": c.balances.to_remote_msat,
    })
}

/// An event as JSON (what `events` returns).
pub fn event_json(event: &Event) -> Value {
    match event {
        Event::FundingGenerationReady {
            temporary_channel_id,
            counterparty_node_id,
            channel_value_satoshis,
            output_script,
            ..
        } => json!({
            "type": "funding_generation_ready",
            "temporary_channel_id": temporary_channel_id.to_string(),
            "node_id": counterparty_node_id.to_string(),
            "value_sat": channel_value_satoshis,
            "output_script": hex::encode(output_script.as_bytes()),
        }),
        Event::ChannelPending {
            channel_id,
            counterparty_node_id,
            funding_txo,
            ..
        } => json!({
            "type": "channel_pending",
            "channel_id": channel_id.to_string(),
            "node_id": counterparty_node_id.to_string(),
            "funding_txo": funding_txo.to_string(),
        }),
        Event::ChannelReady {
            channel_id,
            counterparty_node_id,
            short_channel_id,
            alias,
            ..
        } => json!({
            "type": "channel_ready",
            "channel_id": channel_id.to_string(),
            "node_id": counterparty_node_id.to_string(),
            "short_channel_id": short_channel_id.map(|s| s.to_string()),
            "alias": alias.map(|s| s.to_string()),
        }),
        Event::PaymentClaimable {
            payment_hash,
            amount_msat,
            via_channel_id,
            ..
        } => json!({
            "type": "payment_claimable",
            "payment_hash": payment_hash.to_string(),
            "amount_msat": amount_msat,
            "channel_id": via_channel_id.to_string(),
        }),
        Event::PaymentClaimed {
            payment_hash,
            amount_msat,
            ..
        } => json!({
            "type": "payment_claimed",
            "payment_hash": payment_hash.to_string(),
            "amount_msat": amount_msat,
        }),
        Event::PaymentSent {
            payment_id,
            payment_hash,
            payment_preimage,
            fee_paid_msat,
            ..
        } => json!({
            "type": "payment_sent",
            "payment_id": hex::encode(payment_id.0),
            "payment_hash": payment_hash.to_string(),
            "payment_preimage": payment_preimage.to_string(),
            "fee_paid_msat": fee_paid_msat,
        }),
        Event::PaymentFailed {
            payment_id,
            payment_hash,
            failure,
            ..
        } => json!({
            "type": "payment_failed",
            "payment_id": hex::encode(payment_id.0),
            "payment_hash": payment_hash.to_string(),
            "failure": payment_failure_json(failure),
        }),
        Event::ChannelClosed {
            channel_id,
            counterparty_node_id,
            reason,
            ..
        } => json!({
            "type": "channel_closed",
            "channel_id": channel_id.to_string(),
            "node_id": counterparty_node_id.to_string(),
            "reason": closure_text(reason),
            "reason_kind": crate::rpc_errors::closure_kind(reason),
        }),
        Event::BroadcastTransaction { tx } => json!({
            "type": "broadcast_transaction",
            "txid": tx.compute_txid().to_string(),
        }),
        Event::OnChain {
            channel_id,
            counterparty_node_id,
            event,
        } => {
            let mut v = monitor_event_json(event);
            v["type"] = Value::from("on_chain");
            v["channel_id"] = Value::from(channel_id.to_string());
            v["node_id"] = Value::from(counterparty_node_id.to_string());
            v
        }
        other => {
            json!({"type": "other", "debug": truncate_text(&format!("{other:?}"), EVENT_TEXT)})
        }
    }
}

/// The most bytes of a text field of an event (a peer's error text among them).
const EVENT_TEXT: usize = 256;

/// The most bytes of a `channel_update` a payment failure shows in hex (a channel_update is
/// about 136 bytes; a longer one is given by its length only).
const FAILURE_UPDATE_BYTES: usize = 300;

/// Why a payment failed, typed: `local` (it failed before leaving this node), `failing_hop`
/// (its index in the route, 0 our peer) and `failing_node` when known; and the BOLT 4
/// failure when it was readable: `code` (its name, `temporary_channel_failure`, or
/// `unknown` for a code BOLT 4 does not define), `code_number` (`0x1007` as 4103), and its
/// data as fields (`htlc_msat`, `cltv_expiry`, `height`, `incoming_htlc_amt`,
/// `disabled_flags`, `channel_update` in hex with `channel_update_len`, `sha256_of_onion`,
/// the payload failure's `tlv_type` and `offset`). Without a readable failure `code` is
/// null.
pub fn payment_failure_json(f: &PaymentFailure) -> Value {
    let mut v = json!({
        "local": f.local,
        "failing_hop": f.failing_hop,
        "failing_node": f.failing_node.map(|n| n.to_string()),
        "code": Value::Null,
        "code_number": Value::Null,
    });
    let Some(failure) = &f.failure else {
        return v;
    };
    let code = failure.code();
    v["code"] = Value::from(code.name().unwrap_or("unknown"));
    v["code_number"] = Value::from(code.0);
    let mut update = |bytes: &[u8]| {
        v["channel_update_len"] = Value::from(bytes.len());
        if bytes.len() <= FAILURE_UPDATE_BYTES {
            v["channel_update"] = Value::from(hex::encode(bytes));
        }
    };
    let mut fields: Vec<(&str, Value)> = Vec::new();
    match failure {
        FailureMessage::InvalidOnionVersion { sha256_of_onion }
        | FailureMessage::InvalidOnionHmac { sha256_of_onion }
        | FailureMessage::InvalidOnionKey { sha256_of_onion }
        | FailureMessage::InvalidOnionBlinding { sha256_of_onion } => {
            fields.push(("sha256_of_onion", hex::encode(sha256_of_onion).into()));
        }
        FailureMessage::TemporaryChannelFailure { channel_update }
        | FailureMessage::ExpiryTooSoon { channel_update } => update(channel_update),
        FailureMessage::AmountBelowMinimum {
            htlc_msat,
            channel_update,
        }
        | FailureMessage::FeeInsufficient {
            htlc_msat,
            channel_update,
        } => {
            fields.push(("htlc_msat", (*htlc_msat).into()));
            update(channel_update);
        }
        FailureMessage::IncorrectCltvExpiry {
            cltv_expiry,
            channel_update,
        } => {
            fields.push(("cltv_expiry", (*cltv_expiry).into()));
            update(channel_update);
        }
        FailureMessage::ChannelDisabled {
            disabled_flags,
            channel_update,
        } => {
            fields.push(("disabled_flags", (*disabled_flags).into()));
            update(channel_update);
        }
        FailureMessage::IncorrectOrUnknownPaymentDetails { htlc_msat, height } => {
            fields.push(("htlc_msat", (*htlc_msat).into()));
            fields.push(("height", (*height).into()));
        }
        FailureMessage::FinalIncorrectCltvExpiry { cltv_expiry } => {
            fields.push(("cltv_expiry", (*cltv_expiry).into()));
        }
        FailureMessage::FinalIncorrectHtlcAmount { incoming_htlc_amt } => {
            fields.push(("incoming_htlc_amt", (*incoming_htlc_amt).into()));
        }
        FailureMessage::InvalidOnionPayload { location: Some(at) } => {
            fields.push(("tlv_type", at.tlv_type.into()));
            fields.push(("offset", at.offset.into()));
        }
        FailureMessage::Unknown { data, .. } => {
            fields.push(("data_len", data.len().into()));
        }
        _ => {}
    }
    for (k, value) in fields {
        v[k] = value;
    }
    v
}

fn closure_text(r: &ClosureReason) -> String {
    match r {
        // The peer's text as it is (already made printable by the core), not escaped again.
        ClosureReason::CounterpartyForceClosed { peer_msg } => format!(
            "counterparty force-closed: {}",
            truncate_text(peer_msg, EVENT_TEXT)
        ),
        ClosureReason::ProcessingError { err } => {
            format!("processing error: {}", truncate_text(err, EVENT_TEXT))
        }
        other => truncate_text(&format!("{other:?}"), EVENT_TEXT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_core::node::ApiError;

    const NODE: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    /// Version 2, one input (null outpoint, empty script), one output of 0 (empty script).
    const TX: &str = concat!(
        "0200000001",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000ffffffff01",
        "0000000000000000",
        "0000000000",
    );

    fn hex32s(byte: u8) -> String {
        hex::encode([byte; 32])
    }

    fn err(method: &str, params: Value) -> RpcError {
        parse_request(method, &params).expect_err("refused")
    }

    fn hop(scid: Value) -> Value {
        json!({"node_id": NODE, "short_channel_id": scid, "fee_msat": 1000, "cltv_expiry_delta": 40})
    }

    fn pay(hops: usize, scid: Value) -> Value {
        json!({"route": vec![hop(scid); hops], "payment_hash": hex32s(1), "payment_secret": hex32s(2)})
    }

    fn block(height: Value, transactions: Value) -> Value {
        json!({"height": height, "header": "00".repeat(80), "transactions": transactions})
    }

    #[test]
    fn every_method_parses_to_its_own_variant() {
        let valid = |method: &str| -> Value {
            match method {
                "connect" => json!({"node_id": NODE, "address": "127.0.0.1:9735"}),
                "open_channel" => json!({"node_id": NODE, "amount_sat": 100_000}),
                "fund" => json!({"temporary_channel_id": hex32s(3),
                    "outpoint": format!("{}:1", hex32s(4)), "amount_sat": 200_000,
                    "secret_key": hex32s(5)}),
                "pay" => pay(1, json!("1x2x3")),
                "claim" | "fail" => json!({"payment_hash": hex32s(6)}),
                "close" | "force_close" => json!({"channel_id": hex32s(7)}),
                "block_connected" => block(json!(100), json!([TX])),
                "block_disconnected" => json!({"height": 100, "hash": hex32s(8)}),
                "set_claim_feerate" => json!({"feerate_per_kw": 1000}),
                "set_fee_estimates" => {
                    json!({"urgent": 5000, "normal": 2000, "background": 1000})
                }
                "send" => json!({"address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
                    "amount_sat": 10_000, "feerate_per_kw": 1000}),
                "help" => json!({"method": "pay"}),
                "new_invoice" => json!({"amount_msat": 1000, "hold": true}),
                _ => Value::Null,
            }
        };
        for method in METHODS {
            let entry = self::method(method).expect("in the table");
            let params = valid(method);
            let request = parse_request(method, &params).expect(method);
            assert_eq!(request.method(), method);
            assert_eq!(
                request.served_when_stopped(),
                matches!(
                    method,
                    "getinfo" | "stop" | "broadcasts" | "events" | "help"
                ),
                "{method}"
            );
            // The table names every parameter a valid call gives, and each required one is
            // refused when absent, naming it.
            let given: Vec<&str> = params
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            for key in &given {
                assert!(
                    entry.params.iter().any(|p| p.name == *key),
                    "{method}: {key} is not in the table"
                );
            }
            for p in entry.params.iter().filter(|p| p.required) {
                let mut without = params.clone();
                if let Some(o) = without.as_object_mut() {
                    o.remove(p.name);
                }
                let e = err(method, without);
                assert_eq!(e.kind(), "invalid_params", "{method} without {}", p.name);
                assert!(e.message().contains(p.name), "{method}: {}", e.message());
            }
        }
        let Ok(Request::NewInvoice { hold: true, .. }) =
            parse_request("new_invoice", &valid("new_invoice"))
        else {
            panic!("new_invoice hold")
        };
        let Ok(Request::NewInvoice { hold: false, .. }) = parse_request("new_invoice", &json!({}))
        else {
            panic!("new_invoice's default")
        };
        assert_eq!(
            err("new_invoice", json!({"hold": "yes"})).data()["parameter"],
            "hold"
        );
        // help: one method, or all; an unknown one is refused listing the known ones.
        let Ok(Request::Help { method: Some(m) }) = parse_request("help", &valid("help")) else {
            panic!("help pay")
        };
        assert_eq!(m.name, "pay");
        let e = err("help", json!({"method": "nope"}));
        assert_eq!(
            (e.code(), e.data()["parameter"].as_str()),
            (-32602, Some("method"))
        );
        assert_eq!(e.data()["methods"], json!(METHODS));
        let Ok(Request::Help { method: None }) = parse_request("help", &Value::Null) else {
            panic!("help")
        };
        // Defaults.
        let Ok(Request::OpenChannel {
            push_msat: 0,
            feerate_per_kw: 1000,
            funding_feerate_per_kw: 1000,
            ..
        }) = parse_request("open_channel", &valid("open_channel"))
        else {
            panic!("open_channel defaults")
        };
        let Ok(Request::Pay {
            payment_id,
            payment_hash,
            ..
        }) = parse_request("pay", &pay(1, json!(5)))
        else {
            panic!("pay")
        };
        assert_eq!(payment_id.0, payment_hash.0);
    }

    #[test]
    fn wallet_methods_check_their_parameters() {
        const ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        let send = |address: &str, amount: u64, feerate: u64| json!({"address": address, "amount_sat": amount, "feerate_per_kw": feerate});
        let Ok(Request::Send {
            address,
            amount_sat: 10_000,
            feerate_per_kw: 2_000,
        }) = parse_request("send", &send(ADDRESS, 10_000, 2_000))
        else {
            panic!("send parses")
        };
        assert!(address.is_valid_for_network(Network::Regtest));
        assert!(!address.is_valid_for_network(Network::Bitcoin));
        assert!(err("send", send("not an address", 1, 1000))
            .message
            .starts_with("address \"not an address\""));
        assert_eq!(
            err("send", send(ADDRESS, 0, 1000)).message,
            "amount_sat must be at least 1"
        );
        assert!(err("send", send(ADDRESS, 1, 252))
            .message
            .starts_with("feerate_per_kw: "));
        assert_eq!(
            err("send", json!({"address": ADDRESS, "amount_sat": 1})).message,
            "missing integer parameter feerate_per_kw"
        );
        let open = |feerate: u64| json!({"node_id": NODE, "amount_sat": 100_000, "funding_feerate_per_kw": feerate});
        let Ok(Request::OpenChannel {
            funding_feerate_per_kw: 5_000,
            ..
        }) = parse_request("open_channel", &open(5_000))
        else {
            panic!("open_channel's funding feerate")
        };
        assert!(err("open_channel", open(250_001))
            .message
            .starts_with("funding_feerate_per_kw: "));
    }

    #[test]
    fn refusals_keep_their_codes_and_messages() {
        let unknown = err("nope", json!({}));
        assert_eq!((unknown.code(), unknown.kind()), (-32601, "unknown_method"));
        assert!(unknown
            .message()
            .starts_with("unknown method \"nope\": `lnshard cli help`"));
        assert_eq!(unknown.data()["method"], "nope");
        assert_eq!(unknown.data()["methods"], json!(METHODS));
        let missing = err("connect", json!({}));
        assert_eq!(missing.message(), "missing string parameter node_id");
        assert_eq!(
            missing.to_json(),
            json!({"code": -32602, "message": "missing string parameter node_id",
                   "data": {"kind": "invalid_params", "parameter": "node_id"}})
        );
        assert_eq!(
            err("connect", json!({"node_id": "02"})).message(),
            "node_id \"02\" is not a node id: malformed public key"
        );
        assert_eq!(
            err("open_channel", json!({"node_id": NODE, "amount_sat": -1})).message(),
            "missing integer parameter amount_sat"
        );
        assert_eq!(
            err(
                "open_channel",
                json!({"node_id": NODE, "amount_sat": 1, "push_msat": 1.5})
            )
            .message(),
            "parameter push_msat must be a non-negative integer"
        );
        assert_eq!(
            err(
                "open_channel",
                json!({"node_id": NODE, "amount_sat": 1, "feerate_per_kw": 1u64 << 32})
            )
            .message(),
            "feerate_per_kw too large"
        );
        assert_eq!(
            err("close", json!({"channel_id": "ab"})).message(),
            "channel_id \"ab\" is not 32 bytes of hex: Invalid string length"
        );
        assert_eq!(
            err("pay", json!({})).message(),
            "missing array parameter route"
        );
        assert_eq!(
            err("pay", pay(1, json!("1x2"))).message(),
            "short_channel_id \"1x2\" is not BLOCKxTXxOUT"
        );
        // A short channel id as answers give it (BLOCKxTXxOUT), as a number, or as a decimal
        // string: one channel; a number past 64 bits is refused.
        let big = ShortChannelId::new(900_000, 1234, 1);
        assert_eq!(big.0, 989_560_465_079_271_425);
        for given in [
            json!("900000x1234x1"),
            json!(big.0),
            json!(big.0.to_string()),
        ] {
            let Ok(Request::Pay { route, .. }) = parse_request("pay", &pay(1, given.clone()))
            else {
                panic!("{given}")
            };
            assert_eq!(route.hops[0].short_channel_id, big, "{given}");
        }
        assert_eq!(
            err("pay", pay(1, json!("18446744073709551616"))).data()["parameter"],
            "short_channel_id"
        );
        assert_eq!(
            err("block_connected", json!({"height": 1, "header": "00"})).message(),
            "header is 1 bytes, not 80"
        );
        assert_eq!(
            err("block_connected", block(json!(1), json!([7]))).message(),
            "transactions must be hex strings or {\"index\", \"tx\"} objects"
        );
        assert!(err("block_connected", block(json!(1), json!(["00"])))
            .message()
            .starts_with("transaction does not decode"));
        for h in [0, u64::from(MAX_BLOCK_HEIGHT) + 1] {
            assert_eq!(
                err("block_disconnected", json!({ "height": h, "hash": hex32s(8) })).message(),
                format!(
                    "height {h} outside 1..={MAX_BLOCK_HEIGHT} (the genesis block is never disconnected)"
                )
            );
        }
        // The fork point's hash is required and must be a block hash.
        assert_eq!(
            err("block_disconnected", json!({ "height": 5 })).message(),
            "missing string parameter hash"
        );
        assert!(
            err("block_disconnected", json!({ "height": 5, "hash": "00" }))
                .message()
                .starts_with("hash \"00\" is not a block hash")
        );
        match parse_request(
            "block_disconnected",
            &json!({ "height": 5, "hash": hex32s(8) }),
        ) {
            Ok(Request::BlockDisconnected { height, hash }) => {
                assert_eq!((height, hash.to_string()), (5, hex32s(8)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err("set_claim_feerate", json!({"feerate_per_kw": 100})).message(),
            "claim feerate_per_kw 100 outside 253..=250000"
        );
        assert_eq!(
            err("set_claim_feerate", json!({})).message(),
            "missing integer parameter feerate_per_kw"
        );
        assert_eq!(
            err(
                "set_fee_estimates",
                json!({"urgent": 5000, "normal": 2000, "background": 100})
            )
            .message(),
            "background: claim feerate_per_kw 100 outside 253..=250000"
        );
        assert_eq!(
            err("set_fee_estimates", json!({"urgent": 5000, "normal": 2000})).message(),
            "missing integer parameter background"
        );
        match parse_request(
            "set_fee_estimates",
            &json!({"urgent": 5000, "normal": 2000, "background": 1000}),
        ) {
            Ok(Request::SetFeeEstimates(e)) => {
                assert_eq!((e.urgent, e.normal, e.background), (5000, 2000, 1000));
            }
            other => panic!("{other:?}"),
        }
        for e in [err("connect", json!([])), err("fund", Value::Null)] {
            assert_eq!(e.code(), -32602);
        }
    }

    #[test]
    fn engine_errors_keep_their_text_and_get_a_kind_and_fields() {
        let node: PublicKey = NODE.parse().expect("a key");
        let e = engine_error(EngineError::Api(ApiError::PeerNotConnected(node)));
        assert_eq!((e.code(), e.kind()), (-32000, "peer_not_connected"));
        assert_eq!(
            e.message(),
            EngineError::Api(ApiError::PeerNotConnected(node)).to_string()
        );
        assert_eq!(e.data()["node_id"], NODE);
        assert!(e.data().get("reason").is_none(), "a key is no reason");
        let scid = ShortChannelId::new(900_000, 1, 1);
        let e = engine_error(EngineError::Api(ApiError::UnknownShortChannelId(scid)));
        assert_eq!(e.kind(), "unknown_short_channel_id");
        assert_eq!(e.data()["short_channel_id"], "900000x1x1");
        let e = engine_error(EngineError::UnknownChannel(ChannelId([1; 32])));
        assert_eq!(
            (e.kind(), e.data()["channel_id"].as_str()),
            ("unknown_channel", Some(hex32s(1).as_str()))
        );
        let e = engine_error(EngineError::Timeout {
            shard: 1,
            waited_ms: 5,
        });
        assert_eq!(e.kind(), "timeout");
        assert_eq!(e.message(), "shard 1 did not answer within 5 ms");
        let e = engine_error(EngineError::Api(ApiError::LimitReached(
            lightning_core::node::ApiLimit::PendingPayments { max: 3 },
        )));
        assert_eq!(
            (e.kind(), e.data()["reason"].as_str()),
            ("limit_reached", Some("pending_payments"))
        );
        let e = engine_error(EngineError::Api(ApiError::LimitReached(
            lightning_core::node::ApiLimit::ChannelsPerPeer {
                node_id: node,
                max: 64,
            },
        )));
        assert_eq!(e.data()["max"], 64);
    }

    #[test]
    fn closure_reasons_have_a_kind_beside_their_text() {
        let node: PublicKey = NODE.parse().expect("a key");
        let closed = |reason| {
            event_json(&Event::ChannelClosed {
                channel_id: ChannelId([1; 32]),
                counterparty_node_id: node,
                reason,
            })
        };
        let v = closed(ClosureReason::CounterpartyForceClosed {
            peer_msg: "bye".into(),
        });
        assert_eq!(v["reason_kind"], "counterparty_force_closed");
        assert_eq!(v["reason"], "counterparty force-closed: bye");
        let v = closed(ClosureReason::CooperativeClosure);
        assert_eq!(v["reason_kind"], "cooperative_closure");
    }

    #[test]
    fn payment_failures_are_typed() {
        let node: PublicKey = NODE.parse().expect("a key");
        let v = payment_failure_json(&PaymentFailure {
            failing_hop: Some(0),
            failing_node: Some(node),
            failure: Some(FailureMessage::TemporaryChannelFailure {
                channel_update: vec![7; 3],
            }),
            local: true,
        });
        assert_eq!(
            v,
            json!({"local": true, "failing_hop": 0, "failing_node": NODE,
                   "code": "temporary_channel_failure", "code_number": 0x1007,
                   "channel_update_len": 3, "channel_update": "070707"})
        );
        let v = payment_failure_json(&PaymentFailure {
            failing_hop: Some(1),
            failing_node: None,
            failure: Some(FailureMessage::IncorrectOrUnknownPaymentDetails {
                htlc_msat: 5000,
                height: 120,
            }),
            local: false,
        });
        assert_eq!(v["code"], "incorrect_or_unknown_payment_details");
        assert_eq!(v["code_number"], 0x400f);
        assert_eq!(
            (v["htlc_msat"].as_u64(), v["height"].as_u64()),
            (Some(5000), Some(120))
        );
        assert_eq!(v["failing_node"], Value::Null);
        let v = payment_failure_json(&PaymentFailure {
            failing_hop: None,
            failing_node: None,
            failure: Some(FailureMessage::TemporaryChannelFailure {
                channel_update: vec![0; 70_000],
            }),
            local: true,
        });
        assert_eq!(v["channel_update_len"], 70_000);
        assert!(v.get("channel_update").is_none(), "too long to show");
        let v = payment_failure_json(&PaymentFailure {
            failing_hop: None,
            failing_node: None,
            failure: None,
            local: true,
        });
        assert_eq!(
            (v["code"].clone(), v["local"].clone()),
            (Value::Null, json!(true))
        );
        let event = Event::PaymentFailed {
            payment_id: PaymentId([1; 32]),
            payment_hash: PaymentHash([2; 32]),
            failure: PaymentFailure {
                failing_hop: None,
                failing_node: None,
                failure: Some(FailureMessage::UnknownNextPeer),
                local: false,
            },
        };
        assert_eq!(event_json(&event)["failure"]["code"], "unknown_next_peer");
    }

    #[test]
    fn balances_are_grouped_per_channel_with_typed_amounts() {
        let (a, b) = (ChannelId([1; 32]), ChannelId([2; 32]));
        let all = [
            (
                a,
                Balance::ClaimableAwaitingConfirmations {
                    amount_sat: 10,
                    confirmation_height: 150,
                },
            ),
            (b, Balance::ClaimableOnChannelClose { amount_sat: 5 }),
            (
                a,
                Balance::ContentiousClaimable {
                    amount_sat: 7,
                    timeout_height: 200,
                    payment_hash: PaymentHash([3; 32]),
                    ours_after_timeout: false,
                },
            ),
            (
                a,
                Balance::CounterpartyRevokedOutputClaimable { amount_sat: 1 },
            ),
        ];
        let v = balances_json(&all);
        assert_eq!(v["total_sat"], 23);
        let channels = v["channels"].as_array().expect("channels");
        assert_eq!(channels.len(), 2);
        assert_eq!(channels[0]["channel_id"], a.to_string());
        assert_eq!(channels[0]["total_sat"], 18);
        let kinds: Vec<&str> = channels[0]["balances"]
            .as_array()
            .expect("balances")
            .iter()
            .filter_map(|b| b["type"].as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "claimable_awaiting_confirmations",
                "contentious_claimable",
                "counterparty_revoked_output_claimable"
            ]
        );
        assert_eq!(channels[0]["balances"][0]["confirmation_height"], 150);
        assert_eq!(channels[0]["balances"][1]["payment_hash"], hex32s(3));
        assert_eq!(channels[0]["balances"][1]["ours_after_timeout"], false);
        assert_eq!(
            channels[1]["balances"][0]["type"],
            "claimable_on_channel_close"
        );
        assert_eq!(balances_json(&[]), json!({"total_sat": 0, "channels": []}));
    }

    #[test]
    fn on_chain_events_name_their_kind_and_fields() {
        let node: PublicKey = NODE.parse().expect("a key");
        let event = |e| Event::OnChain {
            channel_id: ChannelId([1; 32]),
            counterparty_node_id: node,
            event: e,
        };
        let txid: lightning_core::bitcoin::Txid = hex32s(9).parse().expect("a txid");
        let v = event_json(&event(MonitorEvent::FundingSpent {
            txid,
            kind: FundingSpendKind::Revoked { index: 4 },
        }));
        assert_eq!(v["type"], "on_chain");
        assert_eq!(v["kind"], "funding_spent");
        assert_eq!(v["spend"], "revoked");
        assert_eq!(v["commitment_number"], 4);
        assert_eq!(v["channel_id"], hex32s(1));
        assert_eq!(v["node_id"], NODE);
        let preimage = PaymentPreimage([5; 32]);
        let v = event_json(&event(MonitorEvent::OutboundHtlcFulfilled {
            htlc_id: 2,
            preimage,
        }));
        assert_eq!(v["kind"], "outbound_htlc_fulfilled");
        assert_eq!(v["payment_preimage"], hex32s(5));
        assert_eq!(v["payment_hash"], preimage.payment_hash().to_string());
        let v = event_json(&event(MonitorEvent::ClaimConfirmed {
            txid,
            value_sat: 99,
        }));
        assert_eq!(
            (v["kind"].as_str(), v["value_sat"].as_u64()),
            (Some("claim_confirmed"), Some(99))
        );
        let tx: Transaction = deserialize(&hex::decode(TX).expect("hex")).expect("a transaction");
        let v = event_json(&event(MonitorEvent::BumpNeeded {
            tx: tx.clone(),
            anchor: None,
            deadline: 300,
            feerate_per_kw: 2500,
            max_fee_sat: 40_000,
        }));
        assert_eq!(v["kind"], "bump_needed");
        assert_eq!(v["txid"], tx.compute_txid().to_string());
        assert_eq!(v["deadline"], 300);
        assert!(
            v.get("transaction").is_none(),
            "the log names it, broadcasts carries it"
        );
    }

    /// A `BLOCKxTXxOUT` part past 24 bits used to be masked by `ShortChannelId::new` into
    /// another channel's id ("16777217x0x0" paid through block 1's channel).
    #[test]
    fn scid_parts_past_24_bits_are_refused_not_masked() {
        assert_eq!(
            ShortChannelId::new(16_777_217, 0, 0),
            ShortChannelId::new(1, 0, 0)
        );
        for s in [
            "16777216x0x0",
            "0x16777216x0",
            "1x1x65536",
            "1x1x1x1",
            "x1x1",
        ] {
            assert_eq!(
                err("pay", pay(1, json!(s))).message(),
                format!("short_channel_id {s:?} is not BLOCKxTXxOUT")
            );
        }
        let Ok(Request::Pay { route, .. }) =
            parse_request("pay", &pay(1, json!("16777215x16777215x65535")))
        else {
            panic!("largest scid")
        };
        assert_eq!(route.hops[0].short_channel_id, ShortChannelId(u64::MAX));
    }

    #[test]
    fn counts_lengths_and_ranges_are_bounded() {
        // Route hops.
        assert!(parse_request("pay", &pay(MAX_ROUTE_HOPS, json!(1))).is_ok());
        for n in [0, MAX_ROUTE_HOPS + 1] {
            assert_eq!(
                err("pay", pay(n, json!(1))).message(),
                format!("route has {n} hops, not 1 to {MAX_ROUTE_HOPS}")
            );
        }
        // Address length.
        let address = |len: usize| json!({"node_id": NODE, "address": "a".repeat(len)});
        assert!(parse_request("connect", &address(MAX_ADDRESS_LEN)).is_ok());
        assert_eq!(err("connect", address(MAX_ADDRESS_LEN + 1)).code(), -32602);
        // Block height: what a short channel id can carry.
        assert!(parse_request(
            "block_connected",
            &block(json!(MAX_BLOCK_HEIGHT), json!([]))
        )
        .is_ok());
        for h in [u64::from(MAX_BLOCK_HEIGHT) + 1, 1 << 32] {
            assert!(err("block_connected", block(json!(h), json!([])))
                .message()
                .starts_with(&format!("height {h} too large")));
        }
        // Transaction indexes and counts: within a block.
        let at = |index: u64| block(json!(1), json!([{"index": index, "tx": TX}]));
        let Ok(Request::BlockConnected { transactions, .. }) = parse_request(
            "block_connected",
            &at(u64::from(MAX_BLOCK_TRANSACTIONS) - 1),
        ) else {
            panic!("last index")
        };
        assert_eq!(transactions[0].0, MAX_BLOCK_TRANSACTIONS - 1);
        for index in [u64::from(MAX_BLOCK_TRANSACTIONS), 1 << 32] {
            assert!(err("block_connected", at(index))
                .message()
                .starts_with(&format!("transaction index {index} too large")));
        }
        let many = vec![Value::Null; MAX_BLOCK_TRANSACTIONS as usize + 1];
        assert!(err("block_connected", block(json!(1), json!(many)))
            .message()
            .contains("more than a block holds"));
    }
}
