//! `lnshard node`: the TCP daemon (see the [crate documentation](crate)).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{DaemonConfig, TestMode};
use lightning_core::bitcoin::Network;
use lightning_core::keys::ChannelKeys;
use lightning_core::node::Liveness;
use lightning_core::secp256k1::SecretKey;

/// Options of `lnshard node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's directory: identity, seed, store, control cookie.
    #[arg(long, default_value = "lnshard-data")]
    pub data_dir: PathBuf,
    /// Where peers connect.
    #[arg(long, default_value = "127.0.0.1:9735")]
    pub listen: SocketAddr,
    /// Where the control interface listens (loopback only).
    #[arg(long, default_value = "127.0.0.1:9835")]
    pub control: SocketAddr,
    /// The chain: regtest (default), testnet, signet or bitcoin.
    #[arg(long, default_value = "regtest")]
    pub network: Network,
    /// Shards (worker threads).
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
    /// Seconds between pings to a peer.
    #[arg(long, default_value_t = 30)]
    pub ping_interval_secs: u64,
    /// Seconds a peer has to answer a ping.
    #[arg(long, default_value_t = 15)]
    pub pong_timeout_secs: u64,
    /// Milliseconds between clock ticks given to the shards.
    #[arg(long, default_value_t = 1000)]
    pub tick_ms: u64,
    /// Seconds a connection has to complete the BOLT 8 handshake.
    #[arg(long, default_value_t = 10)]
    pub handshake_timeout_secs: u64,
    /// The most inbound connections in the handshake at once (a new one closes the oldest).
    #[arg(long, default_value_t = 256)]
    pub max_handshaking: usize,
    /// The most inbound connections from one IP address (peers with channels not counted).
    #[arg(long, default_value_t = 16)]
    pub max_inbound_per_ip: usize,
    /// The most established inbound peers without a channel with us.
    #[arg(long, default_value_t = 1024)]
    pub max_inbound_peers: usize,
    /// The most of our own dials open at once.
    #[arg(long, default_value_t = 1024)]
    pub max_outbound: usize,
    /// The most bytes queued for one connection's socket (at least 131072).
    #[arg(long, default_value_t = 1 << 20)]
    pub write_queue_bytes: usize,
    /// Seconds a peer may leave its queue over half full (not reading) before it is
    /// disconnected.
    #[arg(long, default_value_t = 30)]
    pub write_stall_timeout_secs: u64,
    /// Messages each shard's inbox holds (API calls, cross-shard work, new connections).
    #[arg(long, default_value_t = 64)]
    pub shard_inbox: usize,
    /// Where on-chain claims (sweeps, HTLC claims, justice transactions) of channels funded
    /// from now on pay: a Bitcoin address of --network, or an output script in hex (P2PKH,
    /// P2SH, P2WPKH, P2WSH or P2TR). Default: a key derived from the node's seed.
    #[arg(long, value_name = "ADDRESS|HEX")]
    pub sweep_address: Option<String>,
    /// The feerate on-chain claims start from, in sat per 1000 weight (253 to 250000;
    /// raised as a claim's deadline nears). Default 2500.
    #[arg(long, value_name = "SAT_PER_KW")]
    pub claim_feerate_per_kw: Option<u64>,
    /// Regtest test mode: the node key (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub dev_force_node_key: Option<String>,
    /// Regtest test mode: every channel's secrets, as Core Lightning's
    /// --dev-force-channel-secrets: funding/revocation/payment/delayed_payment/htlc/shaseed,
    /// six 64-hex-digit values separated by '/'.
    #[arg(long, value_name = "SECRETS")]
    pub dev_force_channel_secrets: Option<String>,
}

fn secret(hex_str: &str, what: &str) -> Result<SecretKey, String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut bytes)
        .map_err(|e| format!("{what} {hex_str:?} is not 64 hex digits: {e}"))?;
    SecretKey::from_slice(&bytes).map_err(|e| format!("{what}: {e}"))
}

fn channel_secrets(s: &str) -> Result<ChannelKeys, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let [funding, revocation, payment, delayed, htlc, shaseed] = parts.as_slice() else {
        return Err(format!(
            "--dev-force-channel-secrets needs six values separated by '/', got {}",
            parts.len()
        ));
    };
    let mut commitment_seed = [0u8; 32];
    hex::decode_to_slice(shaseed, &mut commitment_seed)
        .map_err(|e| format!("shaseed {shaseed:?} is not 64 hex digits: {e}"))?;
    Ok(ChannelKeys {
        funding_key: secret(funding, "funding secret")?,
        revocation_base_key: secret(revocation, "revocation secret")?,
        payment_base_key: secret(payment, "payment secret")?,
        delayed_payment_base_key: secret(delayed, "delayed_payment secret")?,
        htlc_base_key: secret(htlc, "htlc secret")?,
        commitment_seed,
    })
}

fn config(args: NodeArgs) -> Result<DaemonConfig, String> {
    let mut config = DaemonConfig::new(args.data_dir);
    config.listen = args.listen;
    config.control_listen = args.control;
    config.network = args.network;
    config.shards = args.shards;
    config.liveness = Liveness {
        ping_interval_ms: args.ping_interval_secs.saturating_mul(1000),
        pong_timeout_ms: args.pong_timeout_secs.saturating_mul(1000),
    };
    config.tick = Duration::from_millis(args.tick_ms.max(1));
    config.handshake_timeout = Duration::from_secs(args.handshake_timeout_secs.max(1));
    config.max_handshaking = args.max_handshaking;
    config.max_inbound_per_ip = args.max_inbound_per_ip;
    config.max_inbound_peers = args.max_inbound_peers;
    config.max_outbound = args.max_outbound;
    config.write_queue_bytes = args.write_queue_bytes;
    config.write_stall_timeout = Duration::from_secs(args.write_stall_timeout_secs.max(1));
    config.shard_inbox = args.shard_inbox.max(1);
    config.sweep_script = args
        .sweep_address
        .as_deref()
        .map(|s| crate::sweep::parse_sweep(s, args.network))
        .transpose()?;
    config.claim_feerate_per_kw = args
        .claim_feerate_per_kw
        .map(crate::sweep::check_claim_feerate)
        .transpose()?;
    if args.dev_force_node_key.is_some() || args.dev_force_channel_secrets.is_some() {
        config.test_mode = Some(TestMode {
            node_secret: args
                .dev_force_node_key
                .as_deref()
                .map(|k| secret(k, "--dev-force-node-key"))
                .transpose()?,
            channel_keys: args
                .dev_force_channel_secrets
                .as_deref()
                .map(channel_secrets)
                .transpose()?,
        });
    }
    Ok(config)
}

/// Runs `lnshard node`.
pub fn run(args: NodeArgs) -> ExitCode {
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
