//! Fuzzes the BigSize decoder: any input either decodes to a value that re-encodes to the
//! same bytes, or returns a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightning_core::ser::{write_bigsize, BigSize};

fuzz_target!(|data: &[u8]| {
    if let Ok(BigSize(value)) = BigSize::decode(data) {
        let mut out = Vec::new();
        write_bigsize(&mut out, value);
        assert_eq!(out, data, "a decoded bigsize must re-encode to its input");
    }
});
