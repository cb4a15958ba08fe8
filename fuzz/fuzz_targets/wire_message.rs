//! Decodes arbitrary bytes as a framed Lightning message. Whatever decodes to a typed message
//! must re-encode to bytes that decode to the same value (unknown odd TLV records are dropped
//! on decoding, so the bytes themselves may differ from the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightning_core::wire::Message;

fuzz_target!(|data: &[u8]| {
    match Message::decode(data) {
        Ok(Message::Unknown { message_type }) => {
            assert_eq!(message_type % 2, 1, "only odd types may be ignored");
        }
        Ok(message) => {
            assert_eq!(
                Some(&message.message_type().to_be_bytes()[..]),
                data.get(..2),
                "the decoded type is the input's type"
            );
            let encoded = message.encode();
            let again = Message::decode(&encoded).expect("a re-encoded message decodes");
            assert_eq!(again, message, "re-encoding changed the value");
            assert_eq!(again.encode(), encoded, "encoding is not stable");
        }
        Err(_) => {}
    }
});
