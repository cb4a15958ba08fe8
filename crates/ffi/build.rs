//! Link arguments of the shared library `liblnshard.so` on Linux (GNU ld and compatible
//! linkers): its SONAME, and a version script exporting only the `lnshard_*` symbols.
//!
//! The SONAME names the ABI version: `liblnshard.so.<major>` from 1.0 on, and
//! `liblnshard.so.0.<minor>` before it, since a 0.x release may break the ABI at every
//! minor version (Cargo's semver rule for 0.x). `examples/c/Makefile`'s install target
//! installs the library under that name with the usual symlinks.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=liblnshard.map");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets the version");
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    let map = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("liblnshard.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,liblnshard.so.{abi}");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
}
