//! Runs the `two_engines` example (crates/lnshard/examples/two_engines.rs): two engines, a
//! channel funded with the library's helper, a payment each way.

#[allow(dead_code)] // its `main` is the example's, not the test's
#[path = "../examples/two_engines.rs"]
mod two_engines;

#[test]
fn the_two_engines_example_runs_to_the_end() {
    let summary = two_engines::run().expect("the example runs");
    assert_eq!(summary.payments_sent, 2, "{summary:?}");
    assert_eq!(summary.payments_claimed, 2, "{summary:?}");
    // Bob is not the funder: his balance is exactly what he received minus what he paid.
    assert_eq!(
        summary.bob_msat,
        two_engines::ALICE_PAYS_MSAT - two_engines::BOB_PAYS_MSAT
    );
    // Alice holds the rest of the channel (the commitment fee is not in a balance).
    assert_eq!(
        summary.alice_msat,
        two_engines::CHANNEL_SAT * 1000 - summary.bob_msat
    );
}
