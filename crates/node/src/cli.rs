//! `lnshard cli METHOD [PARAMS]`: calls a running node's control interface.
//!
//! Parameters are either one JSON object (`'{"node_id": "02.."}'`) or `key=value` pairs
//! (a value that parses as JSON is taken as such, anything else as a string). The cookie
//! and the control address are read from the node's data directory.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Options of `lnshard cli`.
#[derive(Debug, clap::Args)]
pub struct CliArgs {
    /// The node's data directory (for the cookie and the control address).
    #[arg(long, default_value = "lnshard-data")]
    pub data_dir: PathBuf,
    /// The control address (default: the one the node wrote to its data directory).
    #[arg(long)]
    pub control: Option<String>,
    /// The method, e.g. getinfo.
    pub method: String,
    /// Parameters: one JSON object, or key=value pairs.
    pub params: Vec<String>,
}

fn params(args: &[String]) -> Result<Value, String> {
    if let [one] = args {
        if one.trim_start().starts_with('{') {
            return serde_json::from_str(one).map_err(|e| format!("params are not JSON: {e}"));
        }
    }
    let mut map = Map::new();
    for arg in args {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| format!("parameter {arg:?} is not key=value"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        map.insert(k.to_string(), value);
    }
    Ok(Value::Object(map))
}

fn call(args: &CliArgs) -> Result<Value, String> {
    let cookie = crate::files::read_cookie(&args.data_dir).map_err(|e| e.to_string())?;
    let addr = match &args.control {
        Some(a) => a.clone(),
        None => {
            let path = crate::files::control_addr_path(&args.data_dir);
            std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e} (is the node running?)", path.display()))?
                .trim()
                .to_string()
        }
    };
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": args.method, "params": params(&args.params)?});
    let size = body.to_string().len();
    let limit = crate::control::MAX_REQUEST;
    if size > limit {
        return Err(format!(
            "the request is {size} bytes: the control interface takes at most {limit} bytes"
        ));
    }
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(cookie)
    );
    let mut response = ureq::post(&format!("http://{addr}/"))
        .header("Authorization", &auth)
        .send_json(&body)
        .map_err(|e| format!("calling {addr}: {e}"))?;
    let reply: Value = response
        .body_mut()
        .read_json()
        .map_err(|e| format!("reading the answer: {e}"))?;
    if let Some(error) = reply.get("error") {
        return Err(format!("{}: {}", args.method, error));
    }
    Ok(reply.get("result").cloned().unwrap_or(Value::Null))
}

/// Runs `lnshard cli`.
#[allow(clippy::print_stdout)] // The answer is the command's output.
pub fn run(args: CliArgs) -> ExitCode {
    match call(&args) {
        Ok(result) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&result).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lnshard cli: {e}");
            ExitCode::FAILURE
        }
    }
}
