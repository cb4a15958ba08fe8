//! `NodeCore`: the ChannelManager logic for the peers one shard owns.
//!
//! * [`route`]: caller-given routes and the payment onion built along them.
//! * [`htlc_policy`]: what to do with an HTLC a peer committed to us (forward, receive, fail).

pub mod htlc_policy;
pub mod route;

#[cfg(test)]
mod tests;
