//! Fee estimates the engine asks for: a host that has an estimator gives it to the engine
//! ([`EngineConfig::fee_estimator`](crate::EngineConfig::fee_estimator)) instead of pushing
//! estimates itself. The engine consults it once when it starts and again on every
//! [`NodeApi::best_block_updated`](crate::NodeApi::best_block_updated), and applies its answer
//! exactly as [`NodeApi::fee_estimates_updated`](crate::NodeApi::fee_estimates_updated) does
//! (funded channels follow it with `update_fee`, a peer's `update_fee` far outside it is
//! refused). Pushing estimates stays possible, with or without an estimator: the latest
//! given, by either path, is what every shard holds.

pub use lightning_core::node::FeeEstimates;

/// The host's fee estimator, consulted by the engine (see the [module](self)).
///
/// It is called on the thread of the caller that starts the engine or gives it a block
/// (never on a shard thread), so it may block for a moment (a cached answer is best: it
/// runs once per block). It must not call back into the engine.
pub trait FeeEstimator: Send + Sync {
    /// The current estimates, in sat per 1000 weight, for the three targets of
    /// [`FeeEstimates`] (each is floored at 253 when applied); `None` when the estimator has
    /// no answer now: the engine keeps what it had and asks again at the next block.
    fn estimates(&self) -> Option<FeeEstimates>;
}

impl<F: Fn() -> Option<FeeEstimates> + Send + Sync> FeeEstimator for F {
    fn estimates(&self) -> Option<FeeEstimates> {
        self()
    }
}
