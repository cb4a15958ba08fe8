//! Disconnection and `channel_reestablish` (BOLT 2 "Message Retransmission").

use super::error::{close, warn, ChannelErrorReason as R};
use super::spec::Update;
use super::{Channel, ChannelError, ChannelPhase, ClosingState, Connection};
use crate::wire::{ChannelReestablish, Message, Shutdown};

impl Channel {
    /// The peer disconnected: drops the peer's updates that no `commitment_signed` of its
    /// covered (rewinding its next HTLC id), drops unsent messages, and restarts closing
    /// negotiation. Our own signed updates are kept for retransmission.
    pub fn peer_disconnected(&mut self) {
        if self.phase == ChannelPhase::Closed {
            return;
        }
        let dropped_adds = self
            .remote_changes
            .proposed
            .iter()
            .filter(|u| matches!(u, Update::Add(_)))
            .count() as u64;
        // A dropped fulfill will be resent: its preimage was already reported, and
        // `fulfilled_notified` keeps it from being reported twice.
        self.remote_changes.proposed.clear();
        self.remote_next_htlc_id = self.remote_next_htlc_id.saturating_sub(dropped_adds);
        // Our proposals are only ever on the wire with their commitment_signed; any left
        // unsigned go back to the holding cell.
        let proposed = std::mem::take(&mut self.local_changes.proposed);
        let mut cell = proposed;
        cell.append(&mut self.holding_cell);
        self.holding_cell = cell;
        self.outbox.clear();
        self.closing = ClosingState::default();
        self.connection = Connection::Disconnected;
    }

    /// Our `channel_reestablish` for a reconnection; the channel then waits for the peer's
    /// (send nothing else on the channel before it arrives).
    pub fn get_reestablish(&mut self) -> Result<ChannelReestablish, ChannelError> {
        let secret = match self.remote_commit.index.checked_sub(1) {
            Some(n) => self
                .remote_secrets
                .get(crate::secrets::FIRST_INDEX.saturating_sub(n))
                .unwrap_or([0; 32]),
            None => [0; 32],
        };
        if self.phase != ChannelPhase::Closed {
            self.connection = Connection::AwaitingReestablish;
        }
        Ok(ChannelReestablish {
            channel_id: self.channel_id,
            next_commitment_number: self.local_commit.index.saturating_add(1),
            next_revocation_number: self.remote_commit.index,
            your_last_per_commitment_secret: secret,
            my_current_per_commitment_point: self.local_point(self.local_commit.index)?,
            next_funding: None,
            my_current_funding_locked: None,
        })
    }

    /// The peer's `channel_reestablish`: applies the BOLT 2 retransmission rules and queues
    /// what must be resent (`channel_ready`, `revoke_and_ack`, updates and
    /// `commitment_signed` in their original order, `shutdown`, a fresh `closing_signed`).
    ///
    /// Errors: [`ChannelError::Close`] when the peer asks to close (`next_commitment_number`
    /// 0), lies about our secrets, or claims commitments we never signed;
    /// [`ChannelError::Warn`] when the peer is behind (do not broadcast, wait for its
    /// `error`); [`ChannelError::CloseNoBroadcast`] when the peer proves we are behind.
    pub fn handle_channel_reestablish(
        &mut self,
        msg: &ChannelReestablish,
    ) -> Result<(), ChannelError> {
        if msg.channel_id != self.channel_id {
            return Err(close(R::WrongChannelId {
                message: "channel_reestablish",
            }));
        }
        match self.connection {
            Connection::AwaitingReestablish => {}
            Connection::Connected => {
                return Err(close(R::UnexpectedMessage {
                    message: "channel_reestablish",
                }))
            }
            Connection::Disconnected => return Err(close(R::ReestablishBeforeOurs)),
        }
        if !self.is_funded() {
            return Err(close(R::ReestablishBeforeFunding));
        }
        let nc = msg.next_commitment_number;
        let nr = msg.next_revocation_number;
        if nc == 0 {
            return Err(close(R::PeerAsksToClose));
        }
        let l = self.local_commit.index;
        // Row B: their view of our revocations.
        let resend_raa = if nr == l {
            if l > 0 && msg.your_last_per_commitment_secret != self.local_secret(l - 1)? {
                return Err(close(R::WrongLastSecret { index: l - 1 }));
            }
            false
        } else if nr.saturating_add(1) == l {
            if nr > 0 && msg.your_last_per_commitment_secret != self.local_secret(nr - 1)? {
                return Err(close(R::WrongLastSecret { index: nr - 1 }));
            }
            true
        } else if nr < l {
            return Err(warn(R::PeerRevocationBehind {
                next_revocation_number: nr,
                local_commitment: l,
            }));
        } else {
            // nr > l: the peer says we are behind; check its proof.
            let proof = self.local_secret(nr.saturating_sub(1));
            if matches!(proof, Ok(s) if s == msg.your_last_per_commitment_secret) {
                self.set_closed();
                return Err(ChannelError::CloseNoBroadcast(R::OurStateOutdated {
                    next_revocation_number: nr,
                    local_commitment: l,
                }));
            }
            return Err(close(R::PeerRevocationAheadWithoutProof {
                next_revocation_number: nr,
                local_commitment: l,
            }));
        };
        // Row C: their view of our signatures.
        let (r, awaiting) = match &self.next_remote_commit {
            Some(n) => (n.commit.index, true),
            None => (self.remote_commit.index, false),
        };
        let resend_cs = if nc == r.saturating_add(1) {
            false
        } else if awaiting && nc == r {
            true
        } else if nc <= r {
            return Err(warn(R::PeerCommitmentBehind {
                next_commitment_number: nc,
                remote_commitment: r,
            }));
        } else {
            return Err(close(R::PeerCommitmentAhead {
                next_commitment_number: nc,
                remote_commitment: r,
            }));
        };
        // All checks passed: queue the retransmissions.
        let mut out = Vec::new();
        if nc == 1 && l == 0 && self.channel_ready_sent {
            out.push(Message::ChannelReady(self.channel_ready_msg()?));
        }
        let raa = if resend_raa {
            Some(Message::RevokeAndAck(self.revoke_and_ack_for(l)?))
        } else {
            None
        };
        let mut cs = Vec::new();
        if resend_cs {
            if let Some(n) = &self.next_remote_commit {
                cs.extend(self.local_changes.signed.iter().map(Update::to_message));
                cs.push(Message::CommitmentSigned(n.sig.clone()));
            }
        }
        let cs_first = self
            .next_remote_commit
            .as_ref()
            .is_some_and(|n| l > n.sent_after_local_commit_index);
        if cs_first {
            out.extend(cs);
            out.extend(raa);
        } else {
            out.extend(raa);
            out.extend(cs);
        }
        if self.shutdown.local_sent {
            out.push(Message::Shutdown(Shutdown {
                channel_id: self.channel_id,
                scriptpubkey: self.local_shutdown_script.clone(),
            }));
        }
        self.outbox.extend(out);
        self.connection = Connection::Connected;
        self.after_state_change()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_utils::*;
    use super::*;
    use crate::types::PaymentPreimage;

    #[test]
    fn reestablish_numbers_follow_the_commitments() {
        let (mut a, mut b) = ready_pair();
        let r = a.get_reestablish().unwrap();
        assert_eq!((r.next_commitment_number, r.next_revocation_number), (1, 0));
        assert_eq!(r.your_last_per_commitment_secret, [0; 32]);
        a.connection = Connection::Connected;
        let p = PaymentPreimage([5; 32]);
        a.send_htlc(5_000_000, p.payment_hash(), 100, Box::new([0; 1366]))
            .unwrap();
        settle(&mut a, &mut b);
        // One commitment each way: A holds commitment 1, B revoked 0 and A knows its secret.
        let r = a.get_reestablish().unwrap();
        assert_eq!((r.next_commitment_number, r.next_revocation_number), (2, 1));
        assert_eq!(
            r.your_last_per_commitment_secret,
            b.local_secret(0).unwrap()
        );
        assert_eq!(r.my_current_per_commitment_point, a.local_point(1).unwrap());
        // A peer that disconnects drops the peer's unsigned add and rewinds its id.
        b.connection = Connection::Connected;
        a.connection = Connection::Connected;
        b.send_htlc(1_000_000, p.payment_hash(), 100, Box::new([0; 1366]))
            .unwrap();
        b.maybe_sign().unwrap();
        for m in b.drain_messages().iter().take(1) {
            a.handle_message(m).unwrap();
        }
        assert_eq!(a.remote_next_htlc_id, 1);
        a.peer_disconnected();
        assert_eq!(a.remote_next_htlc_id, 0);
        assert!(a.remote_changes.proposed.is_empty());
        assert_eq!(a.connection(), Connection::Disconnected);
    }
}
