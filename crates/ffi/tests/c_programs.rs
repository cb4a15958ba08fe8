//! The C and C++ programs, compiled warning-free against the library this `cargo test` just
//! built (`liblnshard.a` next to this test binary) and run: the examples in `examples/c/`,
//! the C example under valgrind, the handle checks of `examples/c/handles.c` (also under
//! valgrind: no call reads freed memory), and the misuse checks in `tests/c/misuse.c`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const C_FLAGS: &[&str] = &[
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-g",
];
const CXX_FLAGS: &[&str] = &[
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-g",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The static library, built for this test run. The crate builds no Rust library (its name
/// would collide with the `lnshard` package's), so cargo does not build the C library
/// before its tests: the first caller builds it (`cargo build -p lnshard-ffi`, same profile
/// and target directory), once per test process. It sits one directory above this test
/// binary's `deps`.
fn static_lib() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary path");
            let deps = exe.parent().expect("the test binary's directory");
            let profile_dir = deps.parent().expect("the profile directory");
            let target_dir = profile_dir.parent().expect("the target directory");
            let mut build = Command::new(env!("CARGO"));
            build
                .args(["build", "--quiet", "-p", "lnshard-ffi"])
                .env("CARGO_TARGET_DIR", target_dir)
                .current_dir(root());
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "cargo build -p lnshard-ffi: {status}");
            let lib = profile_dir.join("liblnshard.a");
            assert!(lib.exists(), "{} after the build", lib.display());
            lib
        })
        .clone()
}

/// A directory of this test process's own, removed when the test passes (kept for a look
/// when it fails): two `cargo test` runs sharing a target directory must not rebuild a
/// program while the other runs it (ETXTBSY).
struct OutDir(PathBuf);

impl std::ops::Deref for OutDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn out_dir(name: &str) -> OutDir {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("lnshard-ffi")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test's output directory");
    OutDir(dir)
}

/// Compiles `source` with `compiler` and `flags` into `exe`, failing on any diagnostic.
fn compile(compiler: &str, flags: &[&str], source: &Path, exe: &Path) {
    let output = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .arg("-o")
        .arg(exe)
        .arg(source)
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm"])
        .output()
        .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{compiler} printed diagnostics:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run(cmd: &mut Command) -> (Output, String) {
    let output = cmd.output().expect("run the program");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (output, stdout)
}

fn build_two_nodes(dir: &Path) -> PathBuf {
    let exe = dir.join("two_nodes");
    compile("gcc", C_FLAGS, &root().join("examples/c/two_nodes.c"), &exe);
    exe
}

#[test]
fn c_example_two_nodes_builds_warning_free_and_pays_both_ways() {
    let dir = out_dir("c-example");
    let exe = build_two_nodes(&dir);
    let (output, stdout) = run(&mut Command::new(&exe));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[log 3] lnshard_ffi: engine started node_id="),
        "the log callback received tracing's events: {stderr}"
    );
    for needle in [
        "alice: channel ready",
        "bob: channel ready",
        "bob: received 30000000 msat",
        "alice: received 7000000 msat",
        // 1,000,000 sat funded by alice; 60,000 sat to bob, 18,000 sat back.
        "balance alice: 958000000 msat",
        "balance bob: 42000000 msat",
        "alice: channel closed (cooperative)",
        "bob: channel closed (cooperative)",
        // The second channel, 500,000 sat, 100,000 sat paid to bob, force-closed by bob:
        // the monitors' balances, their classification of the spend, and the sweeps.
        "claimable alice: 400000 sat on close",
        "claimable bob: 100000 sat on close",
        "chain: refused a transaction spending an output already spent",
        "bob: on chain: funding spent by our commitment",
        "alice: on chain: funding spent by the peer's commitment",
        "claimable bob: 100000 sat awaiting confirmations",
        "bob: on chain: claim confirmed",
        "alice: on chain: claim confirmed",
        "claimable bob: nothing",
        "done",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn cpp_example_pay_builds_warning_free_and_pays_over_bolt8() {
    let dir = out_dir("cpp-example");
    let exe = dir.join("pay");
    compile("g++", CXX_FLAGS, &root().join("examples/c/pay.cpp"), &exe);
    let (_, stdout) = run(&mut Command::new(&exe));
    for needle in [
        "balance alice: 475000000 msat",
        "balance bob: 25000000 msat",
        // 0x400f: incorrect_or_unknown_payment_details, from fail_htlc_backwards.
        "alice: payment failed back (failure code 0x400f)",
        "alice: channel closed (reason 2)",
        "bob: channel closed (reason 3)",
        "done",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn c_example_runs_under_valgrind_without_leaks_or_errors() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("NOTICE: valgrind is not installed: the valgrind run of examples/c is skipped");
        return;
    }
    let dir = out_dir("c-example-valgrind");
    let exe = build_two_nodes(&dir);
    let supp = root().join("examples/c/valgrind.supp");
    let (output, _) = run(Command::new("valgrind")
        .args(["--leak-check=full", "--error-exitcode=1"])
        .arg(format!("--suppressions={}", supp.display()))
        .arg(&exe));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors") && stderr.contains("definitely lost: 0 bytes")
            || stderr.contains("All heap blocks were freed"),
        "{stderr}"
    );
}

#[test]
fn c_example_runs_clean_under_address_and_undefined_behaviour_sanitizers() {
    let dir = out_dir("c-example-asan");
    let flags: Vec<&str> = C_FLAGS
        .iter()
        .copied()
        .chain(["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])
        .collect();
    // Only a toolchain without the sanitizer runtimes skips this test.
    let probe = dir.join("probe.c");
    std::fs::write(&probe, "int main(void) { return 0; }\n").expect("write probe");
    let probed = Command::new("gcc")
        .args(["-fsanitize=address,undefined", "-o"])
        .arg(dir.join("probe"))
        .arg(&probe)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !probed {
        println!("NOTICE: gcc cannot build with -fsanitize=address,undefined: ASan run skipped");
        return;
    }
    let exe = dir.join("two_nodes");
    compile("gcc", &flags, &root().join("examples/c/two_nodes.c"), &exe);
    let (output, stdout) = run(Command::new(&exe)
        .env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("ERROR: AddressSanitizer"), "{stderr}");
    assert!(!stderr.contains("runtime error"), "{stderr}");
    assert!(stdout.contains("done"), "{stdout}");
}

fn build_handles(dir: &Path) -> PathBuf {
    let exe = dir.join("handles");
    compile("gcc", C_FLAGS, &root().join("examples/c/handles.c"), &exe);
    exe
}

#[test]
fn c_handles_used_after_free_or_as_another_type_are_invalid_handles() {
    let dir = out_dir("c-handles");
    let exe = build_handles(&dir);
    let (_, stdout) = run(&mut Command::new(&exe));
    for needle in [
        "parameter engine is a lnshard_bytes, not a lnshard_engine",
        "parameter engine is not a live lnshard_engine",
        "all handle checks passed",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn c_handle_misuse_reads_no_freed_memory_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("NOTICE: valgrind is not installed: the valgrind run of handles.c is skipped");
        return;
    }
    let dir = out_dir("c-handles-valgrind");
    let exe = build_handles(&dir);
    let supp = root().join("examples/c/valgrind.supp");
    let (output, stdout) = run(Command::new("valgrind")
        .args(["--leak-check=full", "--error-exitcode=1"])
        .arg(format!("--suppressions={}", supp.display()))
        .arg(&exe));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "{stderr}");
    assert!(stdout.contains("all handle checks passed"), "{stdout}");
}

#[test]
fn misuse_from_c_returns_the_right_codes_and_names_the_parameter() {
    let dir = out_dir("misuse");
    let exe = dir.join("misuse");
    compile(
        "gcc",
        C_FLAGS,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/misuse.c"),
        &exe,
    );
    let store = dir.join("store");
    std::fs::create_dir_all(&store).expect("store directory");
    let (_, stdout) = run(Command::new(&exe).arg(&store));
    assert!(stdout.contains("all misuse checks passed"), "{stdout}");
}

/// The libbitcoinconsensus flags of every soft fork it knows (P2SH, DERSIG, NULLDUMMY,
/// CLTV, CSV, WITNESS).
const VERIFY_FLAGS: u32 = (1 << 0) | (1 << 2) | (1 << 4) | (1 << 9) | (1 << 10) | (1 << 11);
/// What `examples/c/bump.c` asks the bump to reach, and its estimator's background target.
const BUMP_FEERATE_PER_KW: u64 = 5_000;
const ESTIMATE_BACKGROUND: u64 = 1_000;
/// BOLT 3: the weight an anchor commitment without HTLC outputs pays fees for, and what
/// each HTLC output adds.
const ANCHOR_COMMITMENT_WEIGHT: u64 = 1_124;
const HTLC_OUTPUT_WEIGHT: u64 = 172;

fn build_bump(dir: &Path) -> PathBuf {
    let exe = dir.join("bump");
    compile("gcc", C_FLAGS, &root().join("examples/c/bump.c"), &exe);
    exe
}

/// The value after `label: ` on the line that starts with it.
fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    let prefix = format!("{label}: ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("{label:?} missing from:\n{stdout}"))
}

fn tx_field(stdout: &str, label: &str) -> bitcoin::Transaction {
    bitcoin::consensus::encode::deserialize_hex(field(stdout, label))
        .unwrap_or_else(|e| panic!("{label} is not a transaction: {e}"))
}

/// Every input of `tx` passes libbitcoinconsensus against the output it spends, found among
/// `parents`; returns the prevouts.
fn verify_every_input(
    tx: &bitcoin::Transaction,
    parents: &[&bitcoin::Transaction],
) -> Vec<bitcoin::TxOut> {
    let serialized = bitcoin::consensus::serialize(tx);
    tx.input
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let parent = parents
                .iter()
                .find(|p| p.compute_txid() == input.previous_output.txid)
                .unwrap_or_else(|| {
                    panic!("input {i} of {} spends no known parent", tx.compute_txid())
                });
            let prevout = parent.output[input.previous_output.vout as usize].clone();
            bitcoin::consensus::verify_script_with_flags(
                &prevout.script_pubkey,
                i,
                prevout.value,
                &serialized,
                VERIFY_FLAGS,
            )
            .unwrap_or_else(|e| panic!("input {i} of {}: {e:?}", tx.compute_txid()));
            prevout
        })
        .collect()
}

fn fee(tx: &bitcoin::Transaction, prevouts: &[bitcoin::TxOut]) -> u64 {
    let input: u64 = prevouts.iter().map(|o| o.value.to_sat()).sum();
    let output: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    input
        .checked_sub(output)
        .expect("outputs within the inputs")
}

#[test]
fn c_wallet_bumps_an_anchor_commitment_whose_every_input_passes_libbitcoinconsensus() {
    let dir = out_dir("c-bump");
    let exe = build_bump(&dir);
    let (_, stdout) = run(&mut Command::new(&exe));
    assert!(stdout.contains("done"), "{stdout}");
    let wallet_funding = tx_field(&stdout, "wallet funding");
    let channel_funding = tx_field(&stdout, "channel funding");
    let commitment = tx_field(&stdout, "bump commitment");
    let child = tx_field(&stdout, "bump child");
    let change = bitcoin::ScriptBuf::from_hex(field(&stdout, "wallet change script"))
        .expect("the change script in hex");
    let feerate: u64 = field(&stdout, "bump feerate").parse().expect("a number");
    assert_eq!(feerate, BUMP_FEERATE_PER_KW);

    // The channel funded from the C wallet: its OP_TRUE input passes, change to the wallet.
    let funding_prevouts = verify_every_input(&channel_funding, &[&wallet_funding]);
    assert!(
        channel_funding
            .output
            .iter()
            .any(|o| o.script_pubkey == change),
        "the funding's change pays the wallet's change script"
    );
    assert!(fee(&channel_funding, &funding_prevouts) > 0);

    // The commitment (signed by both engines) spends the channel's funding output; it pays
    // the feerate the estimator's background target made the funder set by update_fee
    // (an anchor channel follows `background`; it opened at 2500 sat/kw). It holds the
    // HTLC Bob held: two anchors, both balances, one HTLC.
    let commitment_prevouts = verify_every_input(&commitment, &[&channel_funding]);
    let commitment_fee = fee(&commitment, &commitment_prevouts);
    assert_eq!(commitment.output.len(), 5, "{commitment:?}");
    assert_eq!(
        commitment
            .output
            .iter()
            .filter(|o| o.value.to_sat() == 330)
            .count(),
        2,
        "two anchors: an option_anchors_zero_fee_htlc_tx commitment"
    );
    assert_eq!(
        commitment_fee,
        (ANCHOR_COMMITMENT_WEIGHT + HTLC_OUTPUT_WEIGHT) * ESTIMATE_BACKGROUND / 1000,
        "the commitment pays the estimator's background feerate"
    );

    // The child: the anchor (signed by the engine) and the wallet's OP_TRUE coin (signed by
    // the C wallet), each verified against the output it spends.
    let child_prevouts = verify_every_input(&child, &[&commitment, &wallet_funding]);
    assert_eq!(child.input.len(), 2, "the anchor and one wallet coin");
    assert_eq!(
        child.input[0].previous_output.txid,
        commitment.compute_txid()
    );
    assert_eq!(
        child_prevouts[0].value.to_sat(),
        330,
        "input 0 is an anchor"
    );
    assert_eq!(
        child.input[1].previous_output.txid,
        wallet_funding.compute_txid()
    );
    assert_eq!(child.output.len(), 1);
    assert_eq!(
        child.output[0].script_pubkey, change,
        "change to the wallet"
    );
    let child_fee = fee(&child, &child_prevouts);
    let package_weight = commitment.weight().to_wu() + child.weight().to_wu();
    assert!(
        (commitment_fee + child_fee) * 1000 >= BUMP_FEERATE_PER_KW * package_weight,
        "package: {} sat over {package_weight} weight, below {BUMP_FEERATE_PER_KW} sat/kw",
        commitment_fee + child_fee
    );
    assert!(
        child_fee < 100_000,
        "no runaway fee: {child_fee} sat for a {package_weight}-weight package"
    );

    // The HTLC-timeout (zero fee, the peer's signature SIGHASH_SINGLE|ANYONECANPAY),
    // completed with the wallet's last coin and change: every input passes (ours signed
    // again over the whole transaction by the engine, the coin by the C wallet), and it
    // pays the feerate asked on its own.
    let htlc = tx_field(&stdout, "htlc bump");
    let htlc_prevouts = verify_every_input(&htlc, &[&commitment, &wallet_funding]);
    assert_eq!(htlc.input.len(), 2, "the HTLC output and one wallet coin");
    assert_eq!(
        htlc.input[0].previous_output.txid,
        commitment.compute_txid()
    );
    assert_eq!(
        htlc.input[1].previous_output.txid,
        wallet_funding.compute_txid()
    );
    assert!(
        htlc.lock_time.to_consensus_u32() > 100,
        "an HTLC-timeout: its expiry"
    );
    assert_eq!(htlc.output.len(), 2);
    assert_eq!(htlc.output[1].script_pubkey, change, "change to the wallet");
    let htlc_fee = fee(&htlc, &htlc_prevouts);
    assert!(
        htlc_fee * 1000 >= BUMP_FEERATE_PER_KW * htlc.weight().to_wu(),
        "{htlc_fee} sat over {} weight",
        htlc.weight().to_wu()
    );
    let coins_spent: std::collections::BTreeSet<_> = [&channel_funding, &child, &htlc]
        .iter()
        .flat_map(|t| t.input.iter().map(|i| i.previous_output))
        .filter(|o| o.txid == wallet_funding.compute_txid())
        .collect();
    assert_eq!(coins_spent.len(), 3, "each wallet coin spent once");

    // The estimator was asked at each engine's start and on every block.
    let calls = field(&stdout, "estimator calls");
    let numbers: Vec<u64> = calls
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a number"))
        .collect();
    let [alice, bob, blocks] = <[u64; 3]>::try_from(numbers).expect("three numbers");
    assert!(blocks > 0);
    assert_eq!((alice, bob), (blocks + 1, blocks + 1), "{calls}");
    for needle in [
        "chain: alice's commitment alone is below the mempool floor: refused",
        "anchor to spend",
        "alice: on chain: funding spent (spend kind 2)",
        "bob: on chain: funding spent (spend kind 3)",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn c_bump_runs_under_valgrind_without_leaks_or_errors() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("NOTICE: valgrind is not installed: the valgrind run of bump.c is skipped");
        return;
    }
    let dir = out_dir("c-bump-valgrind");
    let exe = build_bump(&dir);
    let supp = root().join("examples/c/valgrind.supp");
    for (mode, last) in [(None, "done"), (Some("rebump"), "bumper: in flight 0")] {
        let (output, stdout) = run(Command::new("valgrind")
            .args(["--leak-check=full", "--error-exitcode=1"])
            .arg(format!("--suppressions={}", supp.display()))
            .arg(&exe)
            .args(mode));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("ERROR SUMMARY: 0 errors")
                && stderr.contains("definitely lost: 0 bytes")
                || stderr.contains("All heap blocks were freed"),
            "{mode:?}: {stderr}"
        );
        assert!(stdout.contains(last), "{mode:?}: {stdout}");
    }
}

/// `bump rebump`: the chain's floor in `examples/c/bump.c`.
const MEMPOOL_FLOOR_PER_KW: u64 = 5_000;

#[test]
fn c_bumper_replaces_the_child_with_the_same_coins_until_the_package_gets_in() {
    let dir = out_dir("c-rebump");
    let exe = build_bump(&dir);
    let (_, stdout) = run(Command::new(&exe).arg("rebump"));
    assert!(stdout.contains("done"), "{stdout}");
    let wallet_funding = tx_field(&stdout, "wallet funding");
    let channel_funding = tx_field(&stdout, "channel funding");
    let commitment = tx_field(&stdout, "rebump commitment");
    let change = bitcoin::ScriptBuf::from_hex(field(&stdout, "wallet change script"))
        .expect("the change script in hex");
    let commitment_prevouts = verify_every_input(&commitment, &[&channel_funding]);
    let commitment_fee = fee(&commitment, &commitment_prevouts);
    let children: Vec<bitcoin::Transaction> = (0..)
        .map_while(|i| {
            let label = format!("rebump child {i}: ");
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(label.as_str()))
                .map(|hex| bitcoin::consensus::encode::deserialize_hex(hex).expect("a child"))
        })
        .collect();
    assert!(
        children.len() >= 2,
        "the first child and a replacement:\n{stdout}"
    );
    let refused = stdout.matches("below the floor").count();
    assert_eq!(
        refused,
        children.len() - 1,
        "every child but the last refused"
    );
    let mut last_fee = 0;
    for (i, child) in children.iter().enumerate() {
        // Every child: each input passes libbitcoinconsensus; all spend the same anchor and
        // wallet coin (BIP 125 replacements of each other), each paying more; change to the
        // wallet.
        let prevouts = verify_every_input(child, &[&commitment, &wallet_funding]);
        let spent: Vec<_> = child.input.iter().map(|i| i.previous_output).collect();
        let first: Vec<_> = children[0]
            .input
            .iter()
            .map(|i| i.previous_output)
            .collect();
        assert_eq!(spent, first, "child {i} spends the first child's inputs");
        assert_eq!(child.output[0].script_pubkey, change);
        let child_fee = fee(child, &prevouts);
        assert!(
            child_fee > last_fee,
            "child {i} pays more than the one it replaces"
        );
        // BIP 125: at least the incremental relay fee (1 sat/vB) over its own size more.
        assert!(
            child_fee >= last_fee + child.weight().to_wu().div_ceil(4),
            "child {i}: {child_fee} sat after {last_fee}"
        );
        last_fee = child_fee;
        let package_weight = commitment.weight().to_wu() + child.weight().to_wu();
        let reaches_floor =
            (commitment_fee + child_fee) * 1000 >= MEMPOOL_FLOOR_PER_KW * package_weight;
        assert_eq!(
            reaches_floor,
            i == children.len() - 1,
            "only the last package reaches the floor (child {i})"
        );
    }
    for needle in [
        "chain: package at",
        "accepted",
        "alice: on chain: funding spent (spend kind 2)",
        "bumper: 1 bump(s) settled 6 deep: coins released",
        "bumper: in flight 0",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
    let bumps = format!("bumper: {} bumps", children.len());
    assert!(stdout.contains(&bumps), "{bumps:?} missing from:\n{stdout}");
}

/// The ABI version of this crate's version: the major version from 1.0 on, `0.MINOR`
/// before (crates/ffi/build.rs and examples/c/Makefile name the library after it).
fn abi_version() -> String {
    match env!("CARGO_PKG_VERSION_MAJOR") {
        "0" => format!("0.{}", env!("CARGO_PKG_VERSION_MINOR")),
        major => major.to_owned(),
    }
}

fn shared_lib() -> PathBuf {
    let lib = static_lib().with_file_name("liblnshard.so");
    assert!(lib.exists(), "{} after the build", lib.display());
    lib
}

/// The output of a tool that must be installed (binutils, pkg-config, make): missing is a
/// failure, not a skip (.ci/run installs pkg-config when it is absent).
fn tool(cmd: &mut Command) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e} (is it installed?)"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[cfg(target_os = "linux")]
#[test]
fn shared_library_exports_only_lnshard_symbols_and_names_its_abi_in_its_soname() {
    let lib = shared_lib();
    let symbols = tool(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib));
    let names: Vec<&str> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert!(
        names.contains(&"lnshard_version") && names.contains(&"lnshard_engine_new"),
        "the C ABI is exported:\n{symbols}"
    );
    let foreign: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !n.starts_with("lnshard_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "liblnshard.so exports symbols outside the C ABI: {foreign:?} (keep them local in \
         crates/ffi/liblnshard.map)"
    );
    let dynamic = tool(Command::new("readelf").arg("-d").arg(&lib));
    let soname = format!("Library soname: [liblnshard.so.{}]", abi_version());
    assert!(
        dynamic.contains(&soname),
        "{soname} missing from:\n{dynamic}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn installed_library_links_through_pkg_config_and_runs_without_ld_library_path() {
    let dir = out_dir("install");
    let prefix = dir.join("prefix");
    let profile_dir = static_lib()
        .parent()
        .expect("the profile directory")
        .to_path_buf();
    shared_lib();
    // Install what this test run built (a real install builds the release library).
    tool(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(root().join("examples/c"))
            .arg("install")
            .arg(format!("PREFIX={}", prefix.display()))
            .arg(format!("INSTALL_LIB_DIR={}", profile_dir.display())),
    );
    let lib = prefix.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    let abi = abi_version();
    for (link, target) in [
        ("liblnshard.so", format!("liblnshard.so.{abi}")),
        (
            &format!("liblnshard.so.{abi}"),
            format!("liblnshard.so.{version}"),
        ),
    ] {
        let read = std::fs::read_link(lib.join(link))
            .unwrap_or_else(|e| panic!("{link} is a symlink: {e}"));
        assert_eq!(read, Path::new(&target), "{link}");
    }
    for file in [
        lib.join(format!("liblnshard.so.{version}")),
        lib.join("liblnshard.a"),
        prefix.join("include/lnshard.h"),
    ] {
        assert!(file.is_file(), "{} installed", file.display());
    }

    // pkg-config finds the prefix through PKG_CONFIG_PATH, as for any non-system prefix.
    let pkg_config = |args: &[&str]| {
        tool(
            Command::new("pkg-config")
                .args(args)
                .arg("lnshard")
                .env("PKG_CONFIG_PATH", lib.join("pkgconfig")),
        )
    };
    assert_eq!(pkg_config(&["--modversion"]).trim(), version);
    let flags = pkg_config(&["--cflags", "--libs"]);
    assert!(
        flags.contains(&format!("-I{}", prefix.join("include").display()))
            && flags.contains(&format!("-L{}", lib.display()))
            && flags.contains("-llnshard"),
        "pkg-config --cflags --libs lnshard: {flags}"
    );
    let libdir = pkg_config(&["--variable=libdir"]);

    // A program built with only those flags links the shared library (not the static one
    // beside it); an rpath to the prefix's lib directory lets it run without
    // LD_LIBRARY_PATH (a prefix the dynamic loader searches, such as /usr/local on most
    // systems after ldconfig, needs none).
    let exe = dir.join("installed");
    let output = Command::new("gcc")
        .args(C_FLAGS)
        .arg("-o")
        .arg(&exe)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/installed.c"))
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", libdir.trim()))
        .output()
        .expect("run gcc");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "gcc installed.c {flags}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dynamic = tool(Command::new("readelf").arg("-d").arg(&exe));
    let needed = format!("Shared library: [liblnshard.so.{abi}]");
    assert!(
        dynamic.contains(&needed),
        "{needed} missing from:\n{dynamic}"
    );
    let (_, stdout) = run(Command::new(&exe).env_remove("LD_LIBRARY_PATH"));
    assert!(
        stdout.contains(&format!("installed lnshard {version} (header {version})")),
        "{stdout}"
    );
    assert!(stdout.contains("all install checks passed"), "{stdout}");
}
