//! Ping/pong liveness, driven by the host's clock ticks: when the node pings a peer, when a
//! pong clears it, and when a silent peer is warned and disconnected.

mod node_support;

use lightning_core::node::{Liveness, Output};
use lightning_core::secp256k1::PublicKey;
use lightning_core::wire::{Message, Pong};
use node_support::Net;

const LIVENESS: Liveness = Liveness {
    ping_interval_ms: 30_000,
    pong_timeout_ms: 15_000,
};

/// Node 0 connected to node 1 (both `init`s exchanged), with the test's liveness parameters.
fn connected() -> (Net, PublicKey) {
    let mut net = Net::new(2, 60);
    net.nodes[0].core.set_liveness(LIVENESS);
    net.connect(0, 1);
    let peer = net.id(1);
    (net, peer)
}

/// Ticks node 0's clock to `now_ms` and returns what it wants to do.
fn tick(net: &mut Net, now_ms: u64) -> Vec<Output> {
    net.nodes[0].core.timer_tick(now_ms);
    net.nodes[0].core.drain_outputs()
}

fn is_ping_to(outputs: &[Output], peer: PublicKey) -> bool {
    outputs.iter().any(|o| {
        matches!(o, Output::SendMessage { node_id, msg: Message::Ping(p) } if *node_id == peer && p.num_pong_bytes == 0)
    })
}

#[test]
fn the_first_ping_comes_one_interval_after_the_first_tick_since_init() {
    let (mut net, peer) = connected();
    // The first tick after `init` starts the interval: the peer just showed it is alive.
    let start = 1_000_000;
    assert_eq!(tick(&mut net, start), vec![]);
    assert_eq!(
        tick(&mut net, start + LIVENESS.ping_interval_ms - 1),
        vec![]
    );
    let out = tick(&mut net, start + LIVENESS.ping_interval_ms);
    assert!(is_ping_to(&out, peer), "{out:?}");
    assert_eq!(out.len(), 1, "only the ping: {out:?}");
}

#[test]
fn a_peer_that_pongs_stays_connected_and_is_pinged_every_interval() {
    let (mut net, peer) = connected();
    let mut now = 5_000;
    tick(&mut net, now);
    for _ in 0..5 {
        now += LIVENESS.ping_interval_ms;
        assert!(is_ping_to(&tick(&mut net, now), peer));
        // Ticks while the pong is due do not ping again.
        assert_eq!(tick(&mut net, now + 1_000), vec![]);
        let pong = Message::Pong(Pong { ignored: vec![] }).encode();
        net.nodes[0].core.handle_message(peer, &pong);
        assert_eq!(net.nodes[0].core.drain_outputs(), vec![]);
        // Long past the pong timeout: nothing, the pong came.
        assert_eq!(tick(&mut net, now + LIVENESS.pong_timeout_ms + 1), vec![]);
    }
}

#[test]
fn a_peer_whose_pong_is_late_is_warned_and_disconnected() {
    let (mut net, peer) = connected();
    tick(&mut net, 0);
    let pinged_at = LIVENESS.ping_interval_ms;
    assert!(is_ping_to(&tick(&mut net, pinged_at), peer));
    assert_eq!(
        tick(&mut net, pinged_at + LIVENESS.pong_timeout_ms - 1),
        vec![]
    );
    let out = tick(&mut net, pinged_at + LIVENESS.pong_timeout_ms);
    assert!(
        matches!(out.as_slice(), [
            Output::SendMessage { node_id: w, msg: Message::Warning(_) },
            Output::Disconnect { node_id: d },
        ] if *w == peer && *d == peer),
        "{out:?}"
    );
}

#[test]
fn a_peer_that_has_not_sent_init_is_not_pinged() {
    let mut net = Net::new(2, 61);
    net.nodes[0].core.set_liveness(LIVENESS);
    let peer = net.id(1);
    net.nodes[0].core.peer_connected(peer);
    net.nodes[0].core.drain_outputs();
    for now in [0, LIVENESS.ping_interval_ms, 10 * LIVENESS.ping_interval_ms] {
        assert_eq!(tick(&mut net, now), vec![]);
    }
}

#[test]
fn a_reconnection_starts_the_interval_again() {
    let (mut net, peer) = connected();
    tick(&mut net, 0);
    assert!(is_ping_to(&tick(&mut net, LIVENESS.ping_interval_ms), peer));
    // The ping is never answered: the connection drops and comes back.
    net.disconnect(0, 1);
    net.connect(0, 1);
    let back = 2 * LIVENESS.ping_interval_ms;
    // The unanswered ping of the old connection does not count against the new one.
    assert_eq!(tick(&mut net, back), vec![]);
    assert_eq!(tick(&mut net, back + LIVENESS.ping_interval_ms - 1), vec![]);
    assert!(is_ping_to(
        &tick(&mut net, back + LIVENESS.ping_interval_ms),
        peer
    ));
}

/// The node says when it next needs a tick (`poll_timeout`), and ticking only then gives the
/// same pings and disconnections as ticking every second: the engine relies on it to leave
/// idle shards asleep.
#[test]
fn poll_timeout_names_the_next_deadline_and_ticks_at_it_suffice() {
    let mut net = Net::new(2, 61);
    net.nodes[0].core.set_liveness(LIVENESS);
    assert_eq!(net.nodes[0].core.poll_timeout(), None, "no peer: no timer");
    net.connect(0, 1);
    let peer = net.id(1);
    // `init` arrived: the interval starts at the next tick, whatever the time.
    assert_eq!(net.nodes[0].core.poll_timeout(), Some(0));
    let start = 2_000_000;
    assert_eq!(tick(&mut net, start), vec![]);
    let ping_at = start + LIVENESS.ping_interval_ms;
    assert_eq!(net.nodes[0].core.poll_timeout(), Some(ping_at));
    // Ticking at the deadline pings; the pong's deadline comes next.
    assert!(is_ping_to(&tick(&mut net, ping_at), peer));
    let pong_due = ping_at + LIVENESS.pong_timeout_ms;
    assert_eq!(net.nodes[0].core.poll_timeout(), Some(pong_due));
    // No pong: the tick at that deadline disconnects the peer.
    let out = tick(&mut net, pong_due);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Disconnect { node_id } if *node_id == peer)),
        "{out:?}"
    );
    net.nodes[0].core.peer_disconnected(peer);
    tick(&mut net, pong_due + 1);
    assert_eq!(
        net.nodes[0].core.poll_timeout(),
        None,
        "no live peer: no timer"
    );
}
