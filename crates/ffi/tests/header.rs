//! The committed `include/lnshard.h` is exactly what the pinned cbindgen generates from this
//! crate. `LNSHARD_BLESS=1 cargo test -p lnshard-ffi --test header` rewrites it.
//!
//! The version macros (`LNSHARD_VERSION_MAJOR` and friends) come from this crate's version
//! (the workspace's), so a version bump fails this test until the header is regenerated.

use std::path::PathBuf;

fn generate() -> String {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("crates/ffi/cbindgen.toml parses");
    config.after_includes = Some(version_macros());
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

/// The version macros: the version this header was generated for, compared with the
/// library's at run time (`lnshard_version`, `lnshard_version_number`).
fn version_macros() -> String {
    let part = |s: &str| -> u32 { s.parse().expect("a numeric version part") };
    let major = part(env!("CARGO_PKG_VERSION_MAJOR"));
    let minor = part(env!("CARGO_PKG_VERSION_MINOR"));
    let patch = part(env!("CARGO_PKG_VERSION_PATCH"));
    assert!(
        minor < 1000 && patch < 1000,
        "LNSHARD_VERSION_NUMBER's encoding"
    );
    format!(
        "\n\
         // The version of lnshard this header belongs to. lnshard_version() and\n\
         // lnshard_version_number() give the version of the library linked at run time.\n\
         #define LNSHARD_VERSION_MAJOR {major}\n\
         #define LNSHARD_VERSION_MINOR {minor}\n\
         #define LNSHARD_VERSION_PATCH {patch}\n\
         #define LNSHARD_VERSION \"{version}\"\n\
         // MAJOR * 1000000 + MINOR * 1000 + PATCH: compare with lnshard_version_number().\n\
         #define LNSHARD_VERSION_NUMBER {number}",
        version = env!("CARGO_PKG_VERSION"),
        number = major * 1_000_000 + minor * 1_000 + patch,
    )
}

#[test]
fn header_matches_what_cbindgen_generates() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../include/lnshard.h");
    let generated = generate();
    if std::env::var_os("LNSHARD_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/lnshard.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/lnshard.h is stale (first difference at line {}): regenerate it with \
             `LNSHARD_BLESS=1 cargo test -p lnshard-ffi --test header`",
            first + 1
        );
    }
}
