//! Work derived ahead of need: our per-commitment points and the public keys of the next
//! commitments, each a few point multiplications.
//!
//! A commitment's keys (its revocation key, delayed key and two HTLC keys) cost about five
//! point multiplications, more than the signature made or checked over it; one commitment of
//! each side is built at every step of the commitment dance. Derived ahead: the revocation
//! and delayed keys (three of the five), and our points; the two HTLC keys only when a
//! commitment with an untrimmed HTLC is built, since whether the next one holds an HTLC is
//! not known yet. They depend only on the
//! channel's basepoints, the commitment's number and its per-commitment point, all known
//! before the message that needs them arrives: our next commitment's as soon as the previous
//! one is signed, the peer's as soon as its `revoke_and_ack` gave its next point. So a node
//! with nothing else to do (a shard whose inbox is empty, a node waiting for its store's
//! sync) derives them ahead ([`Channel::derive_ahead`]), and the message that needs them
//! finds them here. Everything here is derived from the channel's state: it is never stored,
//! compares equal to any other [`Ahead`], and a stale entry is simply not used (each is keyed
//! by the commitment's number and point).

use bitcoin::secp256k1::PublicKey;

use crate::keys::CommitmentKeys;

/// The keys of one commitment, derived ahead (without the HTLC keys: see the module
/// documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeysAhead {
    pub(crate) index: u64,
    pub(crate) point: PublicKey,
    pub(crate) keys: CommitmentKeys,
}

/// What a channel derived ahead: see the [module documentation](self). Boxed keys, so that a
/// channel that derived nothing carries two null pointers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ahead {
    /// Our per-commitment points by commitment number, the two latest derived: the point of
    /// commitment `n + 1` goes out in the `revoke_and_ack` for `n` and is needed again to
    /// check the peer's signature of `n + 1`.
    points: [Option<(u64, PublicKey)>; 2],
    /// The keys of our next commitment.
    pub(crate) local: Option<Box<KeysAhead>>,
    /// The keys of the peer's next commitment.
    pub(crate) remote: Option<Box<KeysAhead>>,
}

impl PartialEq for Ahead {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Ahead {}

impl Ahead {
    /// Our point of commitment `index`, if derived.
    pub(crate) fn point(&self, index: u64) -> Option<PublicKey> {
        self.points
            .iter()
            .flatten()
            .find(|(i, _)| *i == index)
            .map(|(_, p)| *p)
    }

    /// Remembers our point of commitment `index`, in place of the older of the two.
    pub(crate) fn remember_point(&mut self, index: u64, point: PublicKey) {
        if self.point(index).is_some() {
            return;
        }
        let [first, second] = &mut self.points;
        let slot = match (&first, &second) {
            (None, _) => first,
            (_, None) => second,
            (Some((a, _)), Some((b, _))) if b < a => second,
            _ => first,
        };
        *slot = Some((index, point));
    }

    /// Takes the keys derived ahead for commitment `index` at `point` from `slot`, if they are
    /// those (a stale entry is dropped).
    pub(crate) fn take(
        slot: &mut Option<Box<KeysAhead>>,
        index: u64,
        point: &PublicKey,
    ) -> Option<CommitmentKeys> {
        let k = slot.take()?;
        (k.index == index && k.point == *point).then_some(k.keys)
    }

    /// Whether `slot` holds the keys of commitment `index` at `point`.
    pub(crate) fn holds(slot: &Option<Box<KeysAhead>>, index: u64, point: &PublicKey) -> bool {
        slot.as_ref()
            .is_some_and(|k| k.index == index && k.point == *point)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_utils::*;
    use super::super::{Channel, Connection};
    use super::*;
    use crate::types::PaymentPreimage;
    use crate::wire::Message;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    /// Delivers everything both ways until quiet, as `settle`, recording every message;
    /// with `ahead`, each side derives ahead before every delivery (its keys used when the
    /// next message comes: the debug build checks each against a fresh derivation).
    fn exchange(a: &mut Channel, b: &mut Channel, ahead: bool, log: &mut Vec<Message>) -> usize {
        let mut derived = 0;
        for _ in 0..50 {
            a.maybe_sign().expect("sign");
            b.maybe_sign().expect("sign");
            let (ma, mb) = (a.drain_messages(), b.drain_messages());
            if ma.is_empty() && mb.is_empty() {
                return derived;
            }
            if ahead {
                derived += usize::from(a.derive_ahead()) + usize::from(b.derive_ahead());
            }
            for m in &ma {
                b.handle_message(m).expect("honest");
            }
            for m in &mb {
                a.handle_message(m).expect("honest");
            }
            log.extend(ma.into_iter().chain(mb));
        }
        panic!("did not settle");
    }

    /// Payments both ways (one with an HTLC above dust, whose HTLC keys the commitments
    /// use), returning every message and the times derive_ahead did work.
    fn payments(ahead: bool, anchors: bool) -> (Vec<Message>, usize, Channel, Channel) {
        let (mut a, mut b) = ready_pair_of(anchors);
        a.connection = Connection::Connected;
        b.connection = Connection::Connected;
        let mut log = Vec::new();
        let mut derived = 0;
        for (i, amount) in [5_000_000u64, 1_000, 7_000_000].into_iter().enumerate() {
            let p = PaymentPreimage([i as u8 + 1; 32]);
            let (from, to) = if i % 2 == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            let id = from
                .send_htlc(amount, p.payment_hash(), 100, Box::new([0; 1366]))
                .expect("send");
            derived += exchange(from, to, ahead, &mut log);
            to.fulfill_htlc(id, p).expect("fulfill");
            derived += exchange(to, from, ahead, &mut log);
        }
        (log, derived, a, b)
    }

    #[test]
    fn deriving_ahead_changes_no_message_and_its_keys_are_used() {
        for anchors in [false, true] {
            let (plain, none, pa, pb) = payments(false, anchors);
            let (ahead, derived, aa, ab) = payments(true, anchors);
            assert_eq!(none, 0);
            assert!(derived >= 6, "derive_ahead worked {derived} times");
            assert_eq!(plain.len(), ahead.len());
            for (x, y) in plain.iter().zip(&ahead) {
                assert_eq!(
                    x.encode(),
                    y.encode(),
                    "the same bytes with keys derived ahead"
                );
            }
            assert_eq!((pa, pb), (aa, ab), "the same channels");
        }
    }

    #[test]
    fn keys_derived_ahead_are_taken_by_the_next_commitment() {
        let (mut a, mut b) = ready_pair();
        a.connection = Connection::Connected;
        b.connection = Connection::Connected;
        assert!(b.derive_ahead());
        let local = b.ahead.local.as_ref().map(|k| k.index);
        assert_eq!(local, Some(b.local_commit.index + 1));
        assert!(!b.derive_ahead(), "nothing more to derive");
        assert!(a.derive_ahead());
        assert!(a.ahead.remote.is_some(), "the peer's next point is known");
        let p = PaymentPreimage([9; 32]);
        a.send_htlc(5_000_000, p.payment_hash(), 100, Box::new([0; 1366]))
            .expect("send");
        a.maybe_sign().expect("sign");
        assert!(a.ahead.remote.is_none(), "taken by the commitment A signed");
        for m in &a.drain_messages() {
            b.handle_message(m).expect("honest");
        }
        assert!(b.ahead.local.is_none(), "taken by the commitment B checked");
    }

    fn point(i: u8) -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[i; 32]).unwrap())
    }

    #[test]
    fn the_two_latest_points_are_kept() {
        let mut a = Ahead::default();
        a.remember_point(5, point(5));
        a.remember_point(6, point(6));
        a.remember_point(7, point(7));
        assert_eq!(a.point(5), None);
        assert_eq!(a.point(6), Some(point(6)));
        assert_eq!(a.point(7), Some(point(7)));
        a.remember_point(7, point(7));
        assert_eq!(
            a.point(6),
            Some(point(6)),
            "remembering a known point evicts nothing"
        );
    }

    #[test]
    fn keys_are_taken_only_for_their_commitment() {
        let keys = CommitmentKeys {
            per_commitment_point: point(1),
            revocation_key: point(2),
            local_delayed_key: point(3),
            htlc_keys: None,
            remote_payment_key: point(4),
        };
        let mut slot = Some(Box::new(KeysAhead {
            index: 9,
            point: point(1),
            keys,
        }));
        assert!(Ahead::holds(&slot, 9, &point(1)));
        assert!(!Ahead::holds(&slot, 10, &point(1)));
        assert_eq!(Ahead::take(&mut slot, 9, &point(5)), None, "another point");
        assert!(slot.is_none(), "a stale entry is dropped");
        slot = Some(Box::new(KeysAhead {
            index: 9,
            point: point(1),
            keys,
        }));
        assert_eq!(Ahead::take(&mut slot, 9, &point(1)), Some(keys));
    }
}
