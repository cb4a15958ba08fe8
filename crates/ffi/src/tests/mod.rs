//! Tests of the C entry points called from Rust. They live inside the crate (not in
//! `tests/`) because the crate builds no Rust library (`rlib`): only `liblnshard.a` and
//! `liblnshard.so`, so that its library name does not collide with the `lnshard` package's.

mod handles;
mod onchain;
mod refusals;
mod store_errors;
mod wallet;
