//! The routing-node scaling workload (being built).
