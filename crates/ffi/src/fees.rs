//! A fee estimator implemented by the application (`lnshard_fee_estimator`), which the
//! engine asks itself: once in `lnshard_engine_new` and on every
//! `lnshard_engine_best_block_updated`.

use std::ffi::c_void;

use lightning_core::node::FeeEstimates;
use shard_engine::FeeEstimator;

use crate::engine::{LNSHARD_MAX_CLAIM_FEERATE_PER_KW, LNSHARD_MIN_CLAIM_FEERATE_PER_KW};

/// Fee estimates, in sat per 1000 weight, as the estimator callback writes them: each from
/// `LNSHARD_MIN_CLAIM_FEERATE_PER_KW` to `LNSHARD_MAX_CLAIM_FEERATE_PER_KW` (the targets of
/// `lnshard_engine_fee_estimates_updated`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct lnshard_fee_estimates {
    /// Confirmation within a few blocks.
    pub urgent: u32,
    /// Confirmation within about a day.
    pub normal: u32,
    /// Confirmation whenever the chain is quiet.
    pub background: u32,
}

/// Writes the current estimates to `*out` and returns 0; any other number means "no
/// estimate now": the engine keeps what it had and asks again at the next block. Estimates
/// outside `LNSHARD_MIN_CLAIM_FEERATE_PER_KW` to `LNSHARD_MAX_CLAIM_FEERATE_PER_KW` are
/// ignored the same way (and logged).
pub type lnshard_fee_estimator_callback =
    Option<extern "C" fn(userdata: *mut c_void, out: *mut lnshard_fee_estimates) -> i32>;

/// A fee estimator the engine asks (`lnshard_engine_config.fee_estimator`): once when
/// `lnshard_engine_new` starts it and on every `lnshard_engine_best_block_updated`, applying
/// the answer exactly as `lnshard_engine_fee_estimates_updated` does (which stays available).
/// The struct is copied by `lnshard_engine_new`.
///
/// Thread-safety: the callback runs on the thread calling `lnshard_engine_new` or
/// `lnshard_engine_best_block_updated` (never on a shard thread), during that call; it must
/// be thread-safe if those are called from several threads, must not call back into the
/// engine, and must stay callable until `lnshard_engine_free` returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_fee_estimator {
    /// Passed back to the callback.
    pub userdata: *mut c_void,
    /// Gives the estimates (required).
    pub estimate: lnshard_fee_estimator_callback,
}

type EstimateFn = extern "C" fn(*mut c_void, *mut lnshard_fee_estimates) -> i32;

/// The engine's `FeeEstimator` over a C callback.
pub(crate) struct CallbackFeeEstimator {
    userdata: *mut c_void,
    estimate: EstimateFn,
}

// SAFETY: the documented contract: the callback and its userdata may be used from any
// thread calling the engine, and stay valid until the engine is freed.
unsafe impl Send for CallbackFeeEstimator {}
// SAFETY: as above.
unsafe impl Sync for CallbackFeeEstimator {}

impl CallbackFeeEstimator {
    pub(crate) fn new(
        c: &lnshard_fee_estimator,
        name: &str,
    ) -> Result<Self, crate::error::lnshard_result> {
        Ok(CallbackFeeEstimator {
            userdata: c.userdata,
            estimate: c
                .estimate
                .ok_or_else(|| crate::error::null_parameter(&format!("{name}.estimate")))?,
        })
    }
}

impl FeeEstimator for CallbackFeeEstimator {
    fn estimates(&self) -> Option<FeeEstimates> {
        let mut out = lnshard_fee_estimates::default();
        let code = (self.estimate)(self.userdata, &mut out);
        if code != 0 {
            tracing::debug!(target: "lnshard_ffi", code, "the fee estimator has no answer");
            return None;
        }
        let range = LNSHARD_MIN_CLAIM_FEERATE_PER_KW..=LNSHARD_MAX_CLAIM_FEERATE_PER_KW;
        for (name, value) in [
            ("urgent", out.urgent),
            ("normal", out.normal),
            ("background", out.background),
        ] {
            if !range.contains(&value) {
                tracing::warn!(
                    target: "lnshard_ffi",
                    "the fee estimator's {name} {value} is outside \
                     {LNSHARD_MIN_CLAIM_FEERATE_PER_KW}..={LNSHARD_MAX_CLAIM_FEERATE_PER_KW}: ignored"
                );
                return None;
            }
        }
        Some(FeeEstimates {
            urgent: out.urgent,
            normal: out.normal,
            background: out.background,
        })
    }
}
