//! Fuzzes the stored-record readers: arbitrary bytes read as a channel or node record either
//! fail with a typed `PersistError` or decode to a value whose own record reads back equal.
//!
//! The first byte chooses the mode: even, the rest is read as a whole record (envelope
//! included); odd, the rest is sealed in a valid envelope first, so the fuzzer reaches the
//! postcard payload decoders past the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightning_core::persist::envelope::{self, RecordKind};
use lightning_core::persist::{ChannelRecord, NodeRecord};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let (channel_bytes, node_bytes) = if mode % 2 == 0 {
        (rest.to_vec(), rest.to_vec())
    } else {
        (
            envelope::encode(RecordKind::Channel, rest).expect("fuzz inputs are small"),
            envelope::encode(RecordKind::Node, rest).expect("fuzz inputs are small"),
        )
    };
    if let Ok(record) = ChannelRecord::from_bytes(&channel_bytes) {
        let again = record.to_bytes().expect("a decoded record encodes");
        assert_eq!(ChannelRecord::from_bytes(&again).as_ref(), Ok(&record));
    }
    if let Ok(record) = NodeRecord::from_bytes(&node_bytes) {
        let again = record.to_bytes().expect("a decoded record encodes");
        assert_eq!(NodeRecord::from_bytes(&again).as_ref(), Ok(&record));
    }
});
