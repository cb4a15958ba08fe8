//! The facade package re-exports the workspace crates under short names.

#[test]
fn facade_reexports_core_and_engine() {
    let preimage = lnshard::core::types::PaymentPreimage([1; 32]);
    let hash = preimage.payment_hash();
    assert_ne!(hash.0, [0; 32]);
    // shard_engine re-exports the same core crate: the two paths name one type.
    let same: lnshard::engine::lightning_core::types::PaymentHash = hash;
    assert_eq!(same, hash);
}
