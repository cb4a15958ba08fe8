//! The TCP daemon `lnshard node` and its control interface (being built).
