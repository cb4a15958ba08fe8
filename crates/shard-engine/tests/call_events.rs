//! An API call's events are queued by the time the call returns: a host that drains its
//! events right after `force_close_channel` finds the commitment to broadcast, before it
//! moves any byte to the peer (whose answer, an error, makes the peer broadcast its own).

use lnshard_testkit as support;

use lightning_core::node::Event;
use shard_engine::{Engine, NodeApi};
use support::{engine_config, hub_secret, hub_seed, Net, Threaded};

const PEERS: usize = 16;

#[test]
fn a_force_close_broadcast_is_queued_when_the_call_returns() {
    let engine = Engine::new(
        engine_config(4),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    let mut net = Net::new(Threaded { engine }, PEERS);
    let specs: Vec<(usize, bool)> = (0..PEERS).map(|i| (i, i % 2 == 0)).collect();
    net.open_channels(&specs);
    net.run();
    net.hub_events.clear();
    for chan in net.channels.clone() {
        net.hub
            .engine
            .force_close_channel(chan.channel_id)
            .expect("force-close");
        let events = net.hub.engine.drain_events();
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::BroadcastTransaction { tx } if tx.input.len() == 1
            )),
            "the commitment of {} is queued when the call returns: {events:?}",
            chan.channel_id
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::ChannelClosed { channel_id, .. } if *channel_id == chan.channel_id)),
            "and so is the closure: {events:?}"
        );
    }
}
