//! Where on-chain claims pay (`--sweep-address`) and the feerate they start from
//! (`--claim-feerate-per-kw`).

use std::str::FromStr;

use lightning_core::bitcoin::address::NetworkUnchecked;
use lightning_core::bitcoin::{Address, Network, ScriptBuf, WitnessVersion};

/// The least claim feerate (sat per 1000 weight): the relay floor.
pub const MIN_CLAIM_FEERATE_PER_KW: u32 = 253;
/// The most claim feerate taken (sat per 1000 weight: 1,000 sat/vB).
pub const MAX_CLAIM_FEERATE_PER_KW: u32 = 250_000;
/// The longest sweep script (a 40-byte witness program with its version and push).
pub const MAX_SWEEP_SCRIPT_LEN: usize = 42;

/// Whether `script` is a destination a claim can pay and relay: P2PKH, P2SH, P2WPKH,
/// P2WSH, or a witness program of version 1 or above (P2TR).
pub fn is_standard_destination(script: &ScriptBuf) -> bool {
    script.len() <= MAX_SWEEP_SCRIPT_LEN
        && (script.is_p2pkh()
            || script.is_p2sh()
            || script.is_p2wpkh()
            || script.is_p2wsh()
            || (script.is_witness_program()
                && script
                    .witness_version()
                    .is_some_and(|v| v != WitnessVersion::V0)))
}

/// The output script of `--sweep-address`: a Bitcoin address of `network`, or an output
/// script in hex; either must be a standard destination ([`is_standard_destination`]).
pub fn parse_sweep(s: &str, network: Network) -> Result<ScriptBuf, String> {
    let script = match Address::<NetworkUnchecked>::from_str(s) {
        Ok(address) => {
            if !address.is_valid_for_network(network) {
                return Err(format!(
                    "--sweep-address {s:?} is not an address of the node's network ({network})"
                ));
            }
            address.assume_checked().script_pubkey()
        }
        Err(address_error) => {
            let bytes = hex::decode(s).map_err(|_| {
                format!(
                    "--sweep-address {s:?} is neither an address ({address_error}) nor a hex \
                     output script"
                )
            })?;
            ScriptBuf::from_bytes(bytes)
        }
    };
    check_sweep_script(&script)?;
    Ok(script)
}

/// Refuses a script a claim could not pay and relay, naming it.
pub fn check_sweep_script(script: &ScriptBuf) -> Result<(), String> {
    if is_standard_destination(script) {
        Ok(())
    } else {
        Err(format!(
            "sweep script {} is not a P2PKH, P2SH, P2WPKH, P2WSH or P2TR output script",
            script.to_hex_string()
        ))
    }
}

/// Refuses a claim feerate outside [`MIN_CLAIM_FEERATE_PER_KW`]..=[`MAX_CLAIM_FEERATE_PER_KW`].
pub fn check_claim_feerate(feerate_per_kw: u64) -> Result<u32, String> {
    u32::try_from(feerate_per_kw)
        .ok()
        .filter(|f| (MIN_CLAIM_FEERATE_PER_KW..=MAX_CLAIM_FEERATE_PER_KW).contains(f))
        .ok_or_else(|| {
            format!(
                "claim feerate_per_kw {feerate_per_kw} outside \
                 {MIN_CLAIM_FEERATE_PER_KW}..={MAX_CLAIM_FEERATE_PER_KW}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_the_network_and_standard_scripts_are_taken() {
        // BIP 173's regtest and mainnet P2WPKH examples.
        let regtest = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        let main = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
        let script = parse_sweep(regtest, Network::Regtest).expect("a regtest address");
        assert!(script.is_p2wpkh());
        assert_eq!(
            parse_sweep(main, Network::Bitcoin).expect("a mainnet address"),
            script,
            "the same key hash"
        );
        let e = parse_sweep(main, Network::Regtest).expect_err("another network");
        assert!(
            e.contains("--sweep-address") && e.contains("network"),
            "{e}"
        );
        // Hex scripts: standard ones only.
        let p2tr = format!("5120{}", "ab".repeat(32));
        assert!(parse_sweep(&p2tr, Network::Regtest).is_ok());
        for bad in ["6a0100", "0010ababababababababababababababababab", ""] {
            let e = parse_sweep(bad, Network::Regtest).expect_err(bad);
            assert!(e.contains("is not a P2PKH"), "{e}");
        }
        let e = parse_sweep("not hex, not an address", Network::Regtest).expect_err("garbage");
        assert!(e.contains("neither an address"), "{e}");
    }

    #[test]
    fn claim_feerates_are_bounded() {
        assert_eq!(check_claim_feerate(253), Ok(253));
        assert_eq!(check_claim_feerate(250_000), Ok(250_000));
        for bad in [0, 252, 250_001, 1 << 32] {
            assert!(check_claim_feerate(bad)
                .expect_err("refused")
                .contains(&format!("feerate_per_kw {bad} outside 253..=250000")));
        }
    }
}
