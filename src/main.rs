//! The lnshard main job. Until the shard engine lands it demonstrates the protocol core.

fn main() {
    println!("lnshard {}", env!("CARGO_PKG_VERSION"));
}
