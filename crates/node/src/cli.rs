//! `lnshard cli METHOD [PARAMS]`: calls a running node's control interface.
//!
//! Parameters are either one JSON object (`'{"node_id": "02.."}'`) or `key=value` pairs
//! (a value that parses as JSON is taken as such, anything else as a string). The cookie
//! and the control address are read from the node's data directory.
//!
//! `lnshard cli help` lists the methods and `lnshard cli help METHOD` one method's
//! parameters, from the table the node dispatches from
//! ([`crate::control::METHOD_TABLE`]); no running node is needed. An error
//! answer is printed to stderr as its JSON error object (`code`, `message`, `data.kind` and
//! typed fields), and the command exits with a failure.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::control::{self, Method, METHOD_TABLE};

/// Options of `lnshard cli`.
#[derive(Debug, clap::Args)]
#[command(after_help = methods_help())]
pub struct CliArgs {
    /// The node's data directory (for the cookie and the control address).
    #[arg(long, default_value = "lnshard-data")]
    pub data_dir: PathBuf,
    /// The control address (default: the one the node wrote to its data directory).
    #[arg(long)]
    pub control: Option<String>,
    /// The method, e.g. getinfo; `help` lists them, `help METHOD` gives one's parameters.
    pub method: String,
    /// Parameters: one JSON object, or key=value pairs.
    pub params: Vec<String>,
}

/// Every method with its parameters, one line each (what `lnshard cli --help` ends with).
pub fn methods_help() -> String {
    let mut out = String::from(
        "Methods (`lnshard cli help METHOD` for one's parameters; `?` marks an optional one):\n",
    );
    for m in METHOD_TABLE {
        let params: Vec<String> = m
            .params
            .iter()
            .map(|p| format!("{}{}", p.name, if p.required { "" } else { "?" }))
            .collect();
        let line = format!("  {:<20} {}", m.name, params.join(" "));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One method's description: what it does, then each parameter.
pub fn method_help(m: &Method) -> String {
    let mut out = format!("{}: {}\n", m.name, m.doc);
    if m.params.is_empty() {
        out.push_str("  (no parameters)\n");
    }
    for p in m.params {
        let need = if p.required { "required" } else { "optional" };
        out.push_str(&format!("  {:<24} {need}: {}\n", p.name, p.doc));
    }
    out
}

/// What `lnshard cli help [METHOD]` prints: the method list, or one method's parameters.
pub fn help(args: &[String]) -> Result<String, String> {
    match args {
        [] => Ok(methods_help()),
        [name] => match control::method(name) {
            Some(m) => Ok(method_help(m)),
            None => Err(format!(
                "unknown method {name:?}: the methods are {}",
                control::METHODS.join(", ")
            )),
        },
        _ => Err("help takes at most one method".into()),
    }
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
    if reply.get("result").is_none() {
        return Err(format!(
            "{}: the answer has no result: {reply}",
            args.method
        ));
    }
    Ok(reply.get("result").cloned().unwrap_or(Value::Null))
}

/// Runs `lnshard cli`.
#[allow(clippy::print_stdout)] // The answer is the command's output.
pub fn run(args: CliArgs) -> ExitCode {
    if args.method == "help" {
        return match help(&args.params) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lnshard cli: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if control::method(&args.method).is_none() {
        eprintln!(
            "lnshard cli: unknown method {:?}: `lnshard cli help` lists them: {}",
            args.method,
            control::METHODS.join(", ")
        );
        return ExitCode::FAILURE;
    }
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
