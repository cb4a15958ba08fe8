//! Fuzzes the control interface's parameter parsing: `lnshard_node::control::parse_request`,
//! the pure step between a JSON-RPC request and the node.
//!
//! The first byte chooses how the parameters are made (its low bit) and the method: the
//! second byte picks one of `METHODS`, or (from 240 up) an arbitrary name read from the input.
//! - low bit 0: the rest of the input is parsed as JSON (`serde_json::from_slice`; inputs
//!   that are not JSON are skipped);
//! - low bit 1: the rest drives a builder that makes a JSON object with the method's own keys
//!   (nested ones too: route hops, `{index, tx}` transactions), each absent or given a fuzzed
//!   value: hex of a chosen size, node ids, `BLOCKxTXxOUT`, `txid:vout`, huge, negative and
//!   fractional numbers, nested arrays and objects, raw text. So the fuzzer gets past key
//!   lookup to the value checks.
//!
//! Properties: no panic; parsing is deterministic; an unknown method is -32601 and any other
//! refusal -32602; an accepted request is the method's own variant and its fields are within
//! the documented bounds (`MAX_*`), equal to the parameters they came from (hex ids decode to
//! the given hex, numbers are not truncated, a `BLOCKxTXxOUT` short channel id keeps its
//! parts, a block's hash is the double SHA-256 of its header, defaults apply when absent).
//!
//! Seeds (fuzz/seeds/control_params): a valid request of every method taking parameters, as
//! JSON (first byte 0, second the method's index in `METHODS`), an unknown method, and two
//! structured inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightning_core::bitcoin::consensus::encode::serialize;
use lightning_core::bitcoin::hashes::{sha256d, Hash};
use lightning_core::secp256k1::PublicKey;
use lnshard_node::control::{
    parse_request, ClaimBy, Request, MAX_ADDRESS_LEN, MAX_BLOCK_HEIGHT, MAX_BLOCK_TRANSACTIONS,
    MAX_ROUTE_HOPS, METHODS,
};
use serde_json::{Map, Number, Value};

/// The keys each method reads (nested objects are built by `hop` and `tx_entry`).
fn keys(method: &str) -> &'static [&'static str] {
    match method {
        "connect" => &["node_id", "address"],
        "open_channel" => &[
            "node_id",
            "amount_sat",
            "push_msat",
            "feerate_per_kw",
            "funding_feerate_per_kw",
        ],
        "send" => &["address", "amount_sat", "feerate_per_kw"],
        "fund" => &[
            "temporary_channel_id",
            "outpoint",
            "secret_key",
            "amount_sat",
            "fee_sat",
        ],
        "new_invoice" => &["amount_msat", "hold"],
        "help" => &["method"],
        "pay" => &["route", "payment_hash", "payment_secret", "payment_id"],
        "claim" => &["payment_preimage", "payment_hash"],
        "fail" => &["payment_hash"],
        "close" | "force_close" => &["channel_id"],
        "block_connected" => &["height", "header", "transactions"],
        "block_disconnected" => &["height", "hash"],
        _ => &["x"],
    }
}

/// Reads the fuzzer's bytes; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let got = self.take(8);
        b[..got.len()].copy_from_slice(got);
        u64::from_le_bytes(b)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A hex size the parser cares about, or any.
fn hex_len(b: &mut Bytes) -> usize {
    match b.u8() % 8 {
        0 => 32,
        1 => 33,
        2 => 80,
        3 => 31,
        4 => 0,
        n => usize::from(b.u8()) + usize::from(n == 7) * 100,
    }
}

/// A fuzzed JSON value for `key`, `depth` levels deep.
fn value(b: &mut Bytes, key: &str, depth: u8) -> Value {
    match b.u8() % 20 {
        0 => Value::Null,
        1 => Value::Bool(b.u8() & 1 == 1),
        2 => Value::from(b.u64()),
        3 => Value::from(b.u64() as i64),
        4 => Number::from_f64(f64::from_bits(b.u64()))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        5 => Value::from(u64::from(b.u8())),
        6 => Value::from((1u64 << (b.u8() % 64)).wrapping_add(u64::from(b.u8() % 3)) - 1),
        7 => {
            let n = hex_len(b);
            Value::String(hex::encode(b.take(n)))
        }
        8 => {
            // A node id: a prefix byte and 32 more.
            let mut key = vec![2 + (b.u8() & 1)];
            key.extend_from_slice(b.take(32));
            Value::String(hex::encode(key))
        }
        9 => Value::String(format!(
            "{}x{}x{}",
            b.u64() >> (b.u8() % 64),
            b.u64() >> (b.u8() % 64),
            b.u64() >> (b.u8() % 64)
        )),
        10 => {
            let txid = hex::encode(b.take(32));
            Value::String(format!("{txid}:{}", b.u64() >> (b.u8() % 64)))
        }
        11 => {
            let n = usize::from(b.u8());
            Value::String(String::from_utf8_lossy(b.take(n)).into_owned())
        }
        12 if depth < 3 => {
            let n = b.u8() % 8;
            Value::Array((0..n).map(|_| value(b, key, depth + 1)).collect())
        }
        13 if depth < 3 => {
            let n = usize::from(b.u8() % (MAX_ROUTE_HOPS as u8 + 3));
            Value::Array((0..n).map(|_| hop(b, depth + 1)).collect())
        }
        14 if depth < 3 => {
            let n = b.u8() % 8;
            Value::Array((0..n).map(|_| tx_entry(b, depth + 1)).collect())
        }
        15 if depth < 3 => object(b, &["x", "index", "tx", key], depth + 1),
        16 => Value::String("a".repeat(MAX_ADDRESS_LEN + usize::from(b.u8() % 3) - 1)),
        17 => {
            let n = usize::from(b.u8() % 32);
            let host = String::from_utf8_lossy(b.take(n));
            Value::String(format!("{host}:{}", b.u8()))
        }
        _ => {
            // What the parser wants here, more often than not.
            match key {
                "route" if depth < 3 => {
                    let n = usize::from(b.u8() % (MAX_ROUTE_HOPS as u8 + 2));
                    Value::Array((0..n).map(|_| hop(b, depth + 1)).collect())
                }
                "transactions" if depth < 3 => {
                    let n = b.u8() % 6;
                    Value::Array((0..n).map(|_| tx_entry(b, depth + 1)).collect())
                }
                "header" => Value::String(hex::encode(b.take(80))),
                "hash" => Value::String(hex::encode(b.take(32))),
                _ => Value::from(u64::from(b.u8()) << (b.u8() % 40)),
            }
        }
    }
}

fn object(b: &mut Bytes, keys: &[&str], depth: u8) -> Value {
    let mut map = Map::new();
    for &key in keys {
        if b.u8() % 8 != 0 {
            map.insert(key.to_owned(), value(b, key, depth));
        }
    }
    Value::Object(map)
}

fn hop(b: &mut Bytes, depth: u8) -> Value {
    object(
        b,
        &[
            "node_id",
            "short_channel_id",
            "fee_msat",
            "cltv_expiry_delta",
        ],
        depth,
    )
}

/// A transaction of a block: hex of fuzzed bytes (so the transaction decoder is reached),
/// alone or as `{index, tx}`.
fn tx_entry(b: &mut Bytes, depth: u8) -> Value {
    let n = usize::from(b.u8());
    let tx = Value::String(hex::encode(b.take(n)));
    match b.u8() % 4 {
        0 => tx,
        1 => {
            let index = b.u64() >> (b.u8() % 64);
            serde_json::json!({"index": index, "tx": tx})
        }
        _ => object(b, &["index", "tx"], depth),
    }
}

fn hex_of(params: &Value, key: &str) -> String {
    params[key]
        .as_str()
        .expect("accepted: a string")
        .to_ascii_lowercase()
}

/// A node id is the key given (in its compressed or, also accepted, uncompressed form).
fn assert_key(key: &PublicKey, given: &str) {
    assert!(
        hex::encode(key.serialize()) == given || hex::encode(key.serialize_uncompressed()) == given,
        "{key} from {given:?}"
    );
}

/// The bounds and provenance of an accepted request.
fn check_ok(method: &str, params: &Value, request: &Request) {
    assert_eq!(request.method(), method);
    assert_eq!(
        request.served_when_stopped(),
        matches!(method, "getinfo" | "stop" | "broadcasts" | "events")
    );
    let u64_of = |v: &Value, key: &str| v[key].as_u64().expect("accepted: an integer");
    let default = |key: &str, d: u64| match &params[key] {
        Value::Null => d,
        v => v.as_u64().expect("accepted: an integer"),
    };
    match request {
        Request::Connect { node_id, address } => {
            assert!(address.len() <= MAX_ADDRESS_LEN);
            assert_eq!(address, params["address"].as_str().expect("a string"));
            assert_key(node_id, &hex_of(params, "node_id"));
        }
        Request::OpenChannel {
            node_id,
            amount_sat,
            push_msat,
            feerate_per_kw,
            funding_feerate_per_kw,
        } => {
            assert_key(node_id, &hex_of(params, "node_id"));
            assert_eq!(*amount_sat, u64_of(params, "amount_sat"));
            assert_eq!(*push_msat, default("push_msat", 0));
            assert_eq!(u64::from(*feerate_per_kw), default("feerate_per_kw", 1000));
            assert!((253..=250_000).contains(funding_feerate_per_kw));
            assert_eq!(
                u64::from(*funding_feerate_per_kw),
                default("funding_feerate_per_kw", 1000)
            );
        }
        Request::Fund {
            temporary_channel_id,
            utxo,
        } => {
            assert_eq!(
                hex::encode(temporary_channel_id.0),
                hex_of(params, "temporary_channel_id")
            );
            assert_eq!(
                hex::encode(utxo.secret_key.secret_bytes()),
                hex_of(params, "secret_key")
            );
            assert_eq!(utxo.amount_sat, u64_of(params, "amount_sat"));
            assert_eq!(utxo.fee_sat, default("fee_sat", 1000));
            let given = params["outpoint"].as_str().expect("a string");
            assert_eq!(
                given.rsplit(':').next().and_then(|v| v.parse::<u32>().ok()),
                Some(utxo.outpoint.vout)
            );
        }
        Request::NewInvoice { amount_msat, hold } => {
            assert_eq!(*amount_msat, params["amount_msat"].as_u64());
            assert_eq!(*hold, params["hold"].as_bool().unwrap_or(false));
        }
        Request::Help { method } => {
            assert_eq!(method.map(|m| m.name), params["method"].as_str());
        }
        Request::Pay {
            route,
            payment_hash,
            payment_secret,
            payment_id,
        } => {
            let hops = params["route"].as_array().expect("an array");
            assert!((1..=MAX_ROUTE_HOPS).contains(&route.hops.len()));
            assert_eq!(route.hops.len(), hops.len());
            for (hop, given) in route.hops.iter().zip(hops) {
                assert_eq!(hop.fee_msat, u64_of(given, "fee_msat"));
                assert_eq!(
                    u64::from(hop.cltv_expiry_delta),
                    u64_of(given, "cltv_expiry_delta")
                );
                assert_key(&hop.node_id, &hex_of(given, "node_id"));
                let scid = hop.short_channel_id;
                match &given["short_channel_id"] {
                    // The 64 bits in decimal.
                    Value::String(s) if !s.contains('x') => {
                        assert_eq!(Some(scid.0), s.parse().ok());
                    }
                    Value::String(s) => {
                        let parts: Vec<u64> =
                            s.split('x').map(|p| p.parse().expect("a number")).collect();
                        assert_eq!(
                            parts,
                            [
                                u64::from(scid.block()),
                                u64::from(scid.tx_index()),
                                u64::from(scid.output())
                            ]
                        );
                    }
                    v => assert_eq!(Some(scid.0), v.as_u64()),
                }
            }
            assert_eq!(hex::encode(payment_hash.0), hex_of(params, "payment_hash"));
            assert_eq!(
                hex::encode(payment_secret.0),
                hex_of(params, "payment_secret")
            );
            match &params["payment_id"] {
                Value::String(s) => assert_eq!(hex::encode(payment_id.0), s.to_ascii_lowercase()),
                _ => assert_eq!(payment_id.0, payment_hash.0),
            }
        }
        Request::Claim(by) => match (by, params.get("payment_preimage")) {
            (ClaimBy::Preimage(p), Some(_)) => {
                assert_eq!(hex::encode(p.0), hex_of(params, "payment_preimage"))
            }
            (ClaimBy::Hash(h), None) => {
                assert_eq!(hex::encode(h.0), hex_of(params, "payment_hash"))
            }
            other => panic!("claim by the wrong key: {other:?}"),
        },
        Request::Fail { payment_hash } => {
            assert_eq!(hex::encode(payment_hash.0), hex_of(params, "payment_hash"))
        }
        Request::Close { channel_id } | Request::ForceClose { channel_id } => {
            assert_eq!(hex::encode(channel_id.0), hex_of(params, "channel_id"))
        }
        Request::BlockConnected {
            height,
            hash,
            transactions,
        } => {
            assert!(*height <= MAX_BLOCK_HEIGHT);
            assert_eq!(u64::from(*height), u64_of(params, "height"));
            let header = hex::decode(params["header"].as_str().expect("a string")).expect("hex");
            assert_eq!(
                hash.to_byte_array(),
                sha256d::Hash::hash(&header).to_byte_array()
            );
            let given = params["transactions"]
                .as_array()
                .map_or(&[][..], |t| t.as_slice());
            assert!(transactions.len() <= MAX_BLOCK_TRANSACTIONS as usize);
            assert_eq!(transactions.len(), given.len());
            for (position, ((index, tx), given)) in transactions.iter().zip(given).enumerate() {
                assert!(*index < MAX_BLOCK_TRANSACTIONS);
                let hex_tx = match given {
                    Value::String(s) => {
                        assert_eq!(*index as usize, position);
                        s
                    }
                    object => {
                        assert_eq!(u64::from(*index), u64_of(object, "index"));
                        object["tx"].as_str().expect("a string")
                    }
                };
                // Decoding consumed exactly the given bytes, which encode the transaction
                // again (a witness-less transaction with the segwit marker is refused).
                let bytes = hex::decode(hex_tx).expect("hex");
                assert_eq!(serialize(tx), bytes);
            }
        }
        Request::BlockDisconnected { height, hash } => {
            assert!((1..=MAX_BLOCK_HEIGHT).contains(height));
            assert_eq!(u64::from(*height), u64_of(params, "height"));
            // The fork point's hash, as given (display order, either case).
            assert_eq!(hash.to_string(), hex_of(params, "hash"));
        }
        Request::SetClaimFeerate { feerate_per_kw } => {
            assert!((253..=250_000).contains(feerate_per_kw));
            assert_eq!(u64::from(*feerate_per_kw), u64_of(params, "feerate_per_kw"));
        }
        Request::Send {
            address,
            amount_sat,
            feerate_per_kw,
        } => {
            assert!(*amount_sat >= 1);
            assert_eq!(*amount_sat, u64_of(params, "amount_sat"));
            assert!((253..=250_000).contains(feerate_per_kw));
            assert_eq!(u64::from(*feerate_per_kw), u64_of(params, "feerate_per_kw"));
            let given = params["address"].as_str().expect("a string");
            assert_eq!(
                address.clone().assume_checked().to_string().to_lowercase(),
                given.to_lowercase()
            );
        }
        Request::SetFeeEstimates(estimates) => {
            for (name, value) in [
                ("urgent", estimates.urgent),
                ("normal", estimates.normal),
                ("background", estimates.background),
            ] {
                assert!((253..=250_000).contains(&value));
                assert_eq!(u64::from(value), u64_of(params, name));
            }
        }
        Request::NewAddress | Request::WalletBalance | Request::ListUtxos => {}
        Request::GetInfo
        | Request::ListPeers
        | Request::ListChannels
        | Request::ListBalances
        | Request::Broadcasts
        | Request::Events
        | Request::Stop => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mode = b.u8();
    let pick = b.u8();
    let method = if pick >= 240 {
        let n = usize::from(pick - 240);
        String::from_utf8_lossy(b.take(n)).into_owned()
    } else {
        METHODS[usize::from(pick) % METHODS.len()].to_owned()
    };
    let params: Value = if mode & 1 == 0 {
        match serde_json::from_slice(b.0) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else if b.is_empty() {
        Value::Null
    } else {
        object(&mut b, keys(&method), 0)
    };
    let parsed = parse_request(&method, &params);
    // Pure: the same answer twice.
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", parse_request(&method, &params))
    );
    match parsed {
        Ok(request) => check_ok(&method, &params, &request),
        Err(e) => {
            let known = METHODS.contains(&method.as_str());
            assert_eq!(e.code(), if known { -32602 } else { -32601 }, "{e:?}");
            assert!(!e.message().is_empty());
        }
    }
});
