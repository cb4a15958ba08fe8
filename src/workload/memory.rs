//! Resident memory per idle channel (being built).
