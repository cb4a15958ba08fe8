//! The committed `include/lnshard.h` is exactly what the pinned cbindgen generates from this
//! crate. `LNSHARD_BLESS=1 cargo test -p lnshard-ffi --test header` rewrites it.

use std::path::PathBuf;

fn generate() -> String {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("crates/ffi/cbindgen.toml parses");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
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
