//! HTLC and fee updates, both directions: `update_add_htlc`, `update_fulfill_htlc`,
//! `update_fail_htlc`, `update_fail_malformed_htlc`, `update_fee`, and the holding cell.

use super::error::{close, ignore};
use super::spec::{reduce, CommitmentSpec, ReduceError, Update};
use super::{Channel, ChannelError, ChannelEvent, ChannelPhase, Connection};
use crate::types::{PaymentHash, PaymentPreimage};
use crate::wire::{
    UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc, UpdateFee, UpdateFulfillHtlc,
    ONION_PACKET_LEN,
};

/// `cltv_expiry` values from here on are timestamps, which BOLT 2 forbids.
pub const MAX_CLTV_EXPIRY: u32 = 500_000_000;
/// The funder must afford its commitment at this multiple of the current feerate (plus one
/// more HTLC) when it adds an HTLC: LDK's fee-spike buffer.
pub const FEE_SPIKE_BUFFER_MULTIPLE: u32 = 2;

impl Channel {
    /// All our updates not yet in our own latest commitment (holding cell included when
    /// `with_holding` is set).
    fn local_pending(&self, with_holding: bool) -> Vec<Update> {
        let mut all = self.local_changes.acked.clone();
        all.extend(self.local_changes.signed.iter().cloned());
        all.extend(self.local_changes.proposed.iter().cloned());
        if with_holding {
            all.extend(self.holding_cell.iter().cloned());
        }
        all
    }

    /// The peer's next commitment as it would be if we signed now, with the holding cell and
    /// `extra` (one more update of ours) released.
    fn projected_remote_spec(&self, extra: Option<&Update>) -> Result<CommitmentSpec, ReduceError> {
        let base = match &self.next_remote_commit {
            Some(n) => &n.commit.spec,
            None => &self.remote_commit.spec,
        };
        let mut ours = self.local_changes.proposed.clone();
        ours.extend(self.holding_cell.iter().cloned());
        ours.extend(extra.cloned());
        reduce(base, &self.remote_changes.acked, &ours)
    }

    /// Our next commitment with everything either side has proposed.
    fn projected_local_spec(
        &self,
        extra_local: Option<&Update>,
        extra_remote: Option<&Update>,
        with_holding: bool,
    ) -> Result<CommitmentSpec, ReduceError> {
        let mut ours = self.local_pending(with_holding);
        ours.extend(extra_local.cloned());
        let mut theirs = self.remote_changes.proposed.clone();
        theirs.extend(extra_remote.cloned());
        reduce(&self.local_commit.spec, &ours, &theirs)
    }

    /// The latest remote spec with every pending update of ours (for capacity figures).
    pub(crate) fn latest_remote_spec_with_pending(&self) -> Result<CommitmentSpec, ReduceError> {
        self.projected_remote_spec(None)
    }

    fn check_open_for_updates(&self) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::Normal {
            return Err(ignore("the channel is not open"));
        }
        if self.closing.last_sent.is_some() || self.closing.last_received.is_some() {
            return Err(ignore("closing negotiation has started"));
        }
        Ok(())
    }

    /// Queues an HTLC to the peer and returns its id. Checks every sender-side rule: the
    /// peer's `htlc_minimum_msat`, `max_accepted_htlcs` and `max_htlc_value_in_flight_msat`,
    /// our balance above the peer's reserve and, as funder, the commitment fee at
    /// [`FEE_SPIKE_BUFFER_MULTIPLE`] times the feerate with one more HTLC, and our dust
    /// exposure limit. Refusals are [`ChannelError::Ignore`] and change nothing.
    pub fn send_htlc(
        &mut self,
        amount_msat: u64,
        payment_hash: PaymentHash,
        cltv_expiry: u32,
        onion: Box<[u8; ONION_PACKET_LEN]>,
    ) -> Result<u64, ChannelError> {
        self.check_open_for_updates()?;
        if self.is_shutting_down() {
            return Err(ignore("the channel is shutting down"));
        }
        if amount_msat == 0 || amount_msat < self.remote_params.htlc_minimum_msat {
            return Err(ignore(format!(
                "amount_msat {amount_msat} is below the peer's htlc_minimum_msat {}",
                self.remote_params.htlc_minimum_msat.max(1)
            )));
        }
        if cltv_expiry >= MAX_CLTV_EXPIRY {
            return Err(ignore(format!(
                "cltv_expiry {cltv_expiry} is not below {MAX_CLTV_EXPIRY}"
            )));
        }
        let id = self.local_next_htlc_id;
        let add = Update::Add(UpdateAddHtlc {
            channel_id: self.channel_id,
            id,
            amount_msat,
            payment_hash,
            cltv_expiry,
            onion_routing_packet: onion,
            path_key: None,
        });
        let ct = self.channel_type;
        let remote = self
            .projected_remote_spec(Some(&add))
            .map_err(|e| ignore(format!("cannot add htlc: {e}")))?;
        // In the peer's commitment our HTLCs are the ones it received.
        let count = remote.htlc_count(false);
        if count > usize::from(self.remote_params.max_accepted_htlcs) {
            return Err(ignore(format!(
                "{count} htlcs would be above the peer's max_accepted_htlcs {}",
                self.remote_params.max_accepted_htlcs
            )));
        }
        let in_flight = remote.htlc_total_msat(false);
        if in_flight > self.remote_params.max_htlc_value_in_flight_msat {
            return Err(ignore(format!(
                "{in_flight} msat in flight would be above the peer's \
                 max_htlc_value_in_flight_msat {}",
                self.remote_params.max_htlc_value_in_flight_msat
            )));
        }
        let reserve = self
            .remote_params
            .channel_reserve_satoshis
            .saturating_mul(1000);
        let remote_dust = self.remote_params.dust_limit_satoshis;
        let local_dust = self.local_params.dust_limit_satoshis;
        let our_fee = if self.is_funder {
            remote.funder_cost_msat_at(
                remote
                    .feerate_per_kw
                    .saturating_mul(FEE_SPIKE_BUFFER_MULTIPLE),
                1,
                remote_dust,
                ct,
            )
        } else {
            0
        };
        let needed = reserve.saturating_add(our_fee);
        if remote.to_remote_msat < needed {
            return Err(ignore(format!(
                "our balance {} msat after the htlc is below the reserve plus fees {needed} msat",
                remote.to_remote_msat
            )));
        }
        let local = self
            .projected_local_spec(Some(&add), None, true)
            .map_err(|e| ignore(format!("cannot add htlc: {e}")))?;
        if self.is_funder {
            let fee = local.funder_cost_msat(local_dust, ct);
            if local.to_local_msat < reserve.saturating_add(fee) {
                return Err(ignore(format!(
                    "our balance {} msat cannot pay our commitment fee {fee} msat above reserve",
                    local.to_local_msat
                )));
            }
        } else {
            // The peer pays the fee: it must still afford both updated commitments while
            // keeping the reserve we chose (BOLT 2 SHOULD NOT).
            let their_reserve = self
                .local_params
                .channel_reserve_satoshis
                .saturating_mul(1000);
            let fee_remote = remote.funder_cost_msat(remote_dust, ct);
            let fee_local = local.funder_cost_msat(local_dust, ct);
            let needed = their_reserve.saturating_add(fee_remote.max(fee_local));
            if remote.to_local_msat.min(local.to_remote_msat) < needed {
                return Err(ignore(format!(
                    "the funder's balance {} msat could not pay the commitment fee above its \
                     reserve ({needed} msat) with this htlc",
                    remote.to_local_msat.min(local.to_remote_msat)
                )));
            }
        }
        let dust = self.dust_exposure_msat(&local, &remote);
        if dust > self.config.max_dust_htlc_exposure_msat {
            return Err(ignore(format!(
                "dust htlc exposure {dust} msat would be above our maximum {}",
                self.config.max_dust_htlc_exposure_msat
            )));
        }
        self.holding_cell.push(add);
        self.local_next_htlc_id = id.saturating_add(1);
        Ok(id)
    }

    /// The total of HTLCs trimmed in either commitment.
    fn dust_exposure_msat(&self, local: &CommitmentSpec, remote: &CommitmentSpec) -> u64 {
        let ct = self.channel_type;
        let l: u64 = local
            .htlcs
            .values()
            .filter(|h| local.is_trimmed(h, self.local_params.dust_limit_satoshis, ct))
            .map(|h| h.amount_msat)
            .sum();
        let r: u64 = remote
            .htlcs
            .values()
            .filter(|h| remote.is_trimmed(h, self.remote_params.dust_limit_satoshis, ct))
            .map(|h| h.amount_msat)
            .sum();
        l.max(r)
    }

    /// Receiver-side dust exposure (BOLT 2's `max_dust_htlc_exposure_msat`, as LDK applies
    /// it): whether the peer's irrevocably committed HTLC `id` must be failed back because it
    /// is trimmed (BOLT 3) in our commitment or the peer's, and the trimmed HTLCs of that
    /// commitment, each at its own dust limit and feerate, total more than
    /// [`ChannelConfig::max_dust_htlc_exposure_msat`](super::ChannelConfig::max_dust_htlc_exposure_msat).
    /// A receiver cannot refuse
    /// `update_add_htlc` without failing the channel, so the HTLC is committed and then failed
    /// back (`temporary_channel_failure`) instead of forwarded or claimed: dust is lost to fees
    /// if the channel goes on chain.
    ///
    /// Counted: our HTLCs, and the peer's up to `id` that we are not already removing, so
    /// HTLCs committed together are taken in id order: those within the limit are kept.
    /// Returns the exposure that exceeds the limit.
    pub fn inbound_dust_exposure_exceeded(&self, id: u64) -> Option<u64> {
        let ct = self.channel_type;
        let remote = self
            .next_remote_commit
            .as_ref()
            .map_or(&self.remote_commit.spec, |n| &n.commit.spec);
        let mut is_dust = false;
        let mut worst: u64 = 0;
        // In each spec an HTLC is keyed by (offered by the spec's owner, id): the peer's HTLCs
        // are (false, id) in ours and (true, id) in the peer's.
        for (spec, dust_limit, peer_offers) in [
            (
                &self.local_commit.spec,
                self.local_params.dust_limit_satoshis,
                false,
            ),
            (remote, self.remote_params.dust_limit_satoshis, true),
        ] {
            let mut total: u64 = 0;
            for (&(offered_by_owner, htlc_id), htlc) in &spec.htlcs {
                if !spec.is_trimmed(htlc, dust_limit, ct) {
                    continue;
                }
                let theirs = offered_by_owner == peer_offers;
                if theirs && htlc_id == id {
                    is_dust = true;
                }
                if !theirs || (htlc_id <= id && self.our_removal_of(htlc_id).is_none()) {
                    total = total.saturating_add(htlc.amount_msat);
                }
            }
            worst = worst.max(total);
        }
        (is_dust && worst > self.config.max_dust_htlc_exposure_msat).then_some(worst)
    }

    /// Our removal already queued or sent for the peer's HTLC `id`, if any.
    fn our_removal_of(&self, id: u64) -> Option<&Update> {
        self.holding_cell
            .iter()
            .chain(&self.local_changes.proposed)
            .chain(&self.local_changes.signed)
            .chain(&self.local_changes.acked)
            .find(|u| u.removed_htlc_id() == Some(id))
    }

    /// The peer's HTLC `id`, if it is irrevocably committed (in both latest commitments).
    fn committed_inbound(&self, id: u64) -> Result<super::SpecHtlc, ChannelError> {
        let in_remote = self.remote_commit.spec.htlcs.contains_key(&(true, id));
        match self.local_commit.spec.htlcs.get(&(false, id)) {
            Some(h) if in_remote => Ok(*h),
            _ => Err(ignore(format!("no committed inbound htlc with id {id}"))),
        }
    }

    /// Claims the peer's HTLC `id` with `preimage` (queued for the next signature).
    /// Idempotent: claiming an HTLC already being claimed with the same preimage succeeds;
    /// once the removal is irrevocably complete the HTLC is gone and a repeated claim is
    /// [`ChannelError::Ignore`] (nothing to do).
    pub fn fulfill_htlc(&mut self, id: u64, preimage: PaymentPreimage) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::Normal {
            return Err(ignore("the channel is not open"));
        }
        if let Some(existing) = self.our_removal_of(id) {
            return match existing {
                Update::Fulfill(f) if f.payment_preimage == preimage => Ok(()),
                _ => Err(ignore(format!("htlc {id} is already being removed"))),
            };
        }
        let htlc = self.committed_inbound(id)?;
        if preimage.payment_hash() != htlc.payment_hash {
            return Err(ignore(format!(
                "preimage does not match the hash of htlc {id}"
            )));
        }
        self.holding_cell.push(Update::Fulfill(UpdateFulfillHtlc {
            channel_id: self.channel_id,
            id,
            payment_preimage: preimage,
            attribution_data: None,
        }));
        Ok(())
    }

    /// Fails the peer's HTLC `id` with an encrypted onion failure `reason`.
    /// Failing an HTLC already failed succeeds without queuing anything.
    pub fn fail_htlc(&mut self, id: u64, reason: Vec<u8>) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::Normal {
            return Err(ignore("the channel is not open"));
        }
        if let Some(existing) = self.our_removal_of(id) {
            return match existing {
                Update::Fail(_) | Update::FailMalformed(_) => Ok(()),
                _ => Err(ignore(format!("htlc {id} is already being fulfilled"))),
            };
        }
        self.committed_inbound(id)?;
        if reason.len() > usize::from(u16::MAX) {
            return Err(ignore(format!(
                "failure reason of {} bytes is above 65535",
                reason.len()
            )));
        }
        self.holding_cell.push(Update::Fail(UpdateFailHtlc {
            channel_id: self.channel_id,
            id,
            reason,
            attribution_data: None,
        }));
        Ok(())
    }

    /// Fails the peer's HTLC `id` as malformed: `failure_code` must have the BADONION bit.
    pub fn fail_malformed_htlc(
        &mut self,
        id: u64,
        sha256_of_onion: [u8; 32],
        failure_code: u16,
    ) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::Normal {
            return Err(ignore("the channel is not open"));
        }
        if failure_code & UpdateFailMalformedHtlc::BADONION == 0 {
            return Err(ignore(format!(
                "failure_code {failure_code:#06x} lacks the BADONION bit"
            )));
        }
        if let Some(existing) = self.our_removal_of(id) {
            return match existing {
                Update::Fail(_) | Update::FailMalformed(_) => Ok(()),
                _ => Err(ignore(format!("htlc {id} is already being fulfilled"))),
            };
        }
        self.committed_inbound(id)?;
        self.holding_cell
            .push(Update::FailMalformed(UpdateFailMalformedHtlc {
                channel_id: self.channel_id,
                id,
                sha256_of_onion,
                failure_code,
            }));
        Ok(())
    }

    /// Funder only: queues an `update_fee` (replacing one not yet sent). Checks that we can
    /// afford it in both next commitments above the peer's reserve.
    pub fn update_fee(&mut self, feerate_per_kw: u32) -> Result<(), ChannelError> {
        self.check_open_for_updates()?;
        if !self.is_funder {
            return Err(ignore("only the funder sends update_fee"));
        }
        let shutting_down = self.shutdown.local_sent || self.shutdown.remote_script.is_some();
        let latest_remote = match &self.next_remote_commit {
            Some(n) => &n.commit.spec,
            None => &self.remote_commit.spec,
        };
        if shutting_down
            && self.local_commit.spec.htlcs.is_empty()
            && latest_remote.htlcs.is_empty()
        {
            return Err(ignore("no update_fee once shutting down without htlcs"));
        }
        if feerate_per_kw < self.config.min_feerate_per_kw
            || feerate_per_kw > self.config.max_feerate_per_kw
        {
            return Err(ignore(format!(
                "feerate_per_kw {feerate_per_kw} is outside {}..={}",
                self.config.min_feerate_per_kw, self.config.max_feerate_per_kw
            )));
        }
        let fee = Update::Fee(UpdateFee {
            channel_id: self.channel_id,
            feerate_per_kw,
        });
        let mut next = self.clone();
        next.holding_cell.retain(|u| !matches!(u, Update::Fee(_)));
        let ct = self.channel_type;
        let reserve = self
            .remote_params
            .channel_reserve_satoshis
            .saturating_mul(1000);
        let remote = next
            .projected_remote_spec(Some(&fee))
            .map_err(|e| ignore(format!("cannot update fee: {e}")))?;
        let remote_fee = remote.funder_cost_msat(self.remote_params.dust_limit_satoshis, ct);
        let local = next
            .projected_local_spec(Some(&fee), None, true)
            .map_err(|e| ignore(format!("cannot update fee: {e}")))?;
        let local_fee = local.funder_cost_msat(self.local_params.dust_limit_satoshis, ct);
        if remote.to_remote_msat < reserve.saturating_add(remote_fee)
            || local.to_local_msat < reserve.saturating_add(local_fee)
        {
            return Err(ignore(format!(
                "we cannot afford feerate_per_kw {feerate_per_kw} above the reserve"
            )));
        }
        next.holding_cell.push(fee);
        *self = next;
        Ok(())
    }

    /// Whether a peer update, `commitment_signed` or `revoke_and_ack` may arrive now: only
    /// on an open, reestablished channel outside closing negotiation.
    pub(crate) fn check_can_receive_update(&self, what: &str) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::Normal {
            return Err(close(format!(
                "unexpected {what} before the channel is open"
            )));
        }
        if self.connection != Connection::Connected {
            return Err(close(format!(
                "unexpected {what} before channel_reestablish"
            )));
        }
        if self.closing.last_sent.is_some() || self.closing.last_received.is_some() {
            return Err(close(format!(
                "unexpected {what} during closing negotiation"
            )));
        }
        Ok(())
    }

    /// The peer's `update_add_htlc`, checked against every receiver MUST of BOLT 2.
    pub fn handle_update_add_htlc(&mut self, msg: &UpdateAddHtlc) -> Result<(), ChannelError> {
        self.check_can_receive_update("update_add_htlc")?;
        if msg.channel_id != self.channel_id {
            return Err(close("update_add_htlc for another channel_id"));
        }
        if self.shutdown.remote_script.is_some() {
            return Err(close("update_add_htlc after the peer's shutdown"));
        }
        if msg.id != self.remote_next_htlc_id {
            return Err(close(format!(
                "update_add_htlc id {} is not the expected {}",
                msg.id, self.remote_next_htlc_id
            )));
        }
        if msg.amount_msat == 0 || msg.amount_msat < self.local_params.htlc_minimum_msat {
            return Err(close(format!(
                "amount_msat {} is below our htlc_minimum_msat {}",
                msg.amount_msat,
                self.local_params.htlc_minimum_msat.max(1)
            )));
        }
        if msg.cltv_expiry >= MAX_CLTV_EXPIRY {
            return Err(close(format!(
                "cltv_expiry {} is not below {MAX_CLTV_EXPIRY}",
                msg.cltv_expiry
            )));
        }
        let add = Update::Add(msg.clone());
        let spec = self
            .projected_local_spec(None, Some(&add), false)
            .map_err(|e| close(format!("update_add_htlc: {e}")))?;
        let count = spec.htlc_count(false);
        if count > usize::from(self.local_params.max_accepted_htlcs) {
            return Err(close(format!(
                "{count} htlcs from the peer are above our max_accepted_htlcs {}",
                self.local_params.max_accepted_htlcs
            )));
        }
        let in_flight = spec.htlc_total_msat(false);
        if in_flight > self.local_params.max_htlc_value_in_flight_msat {
            return Err(close(format!(
                "{in_flight} msat in flight from the peer is above our \
                 max_htlc_value_in_flight_msat {}",
                self.local_params.max_htlc_value_in_flight_msat
            )));
        }
        let fee = if self.is_funder {
            0
        } else {
            spec.funder_cost_msat(self.local_params.dust_limit_satoshis, self.channel_type)
        };
        let needed = self
            .local_params
            .channel_reserve_satoshis
            .saturating_mul(1000)
            .saturating_add(fee);
        if spec.to_remote_msat < needed {
            return Err(close(format!(
                "the peer's balance {} msat after amount_msat {} is below our reserve plus \
                 fees {needed} msat",
                spec.to_remote_msat, msg.amount_msat
            )));
        }
        self.remote_changes.proposed.push(add);
        self.remote_next_htlc_id = msg.id.saturating_add(1);
        Ok(())
    }

    /// Our HTLC `id` as the peer may remove it: in our current commitment and not already
    /// being removed.
    fn removable_outbound(&self, id: u64, what: &str) -> Result<super::SpecHtlc, ChannelError> {
        let Some(htlc) = self.local_commit.spec.htlcs.get(&(true, id)) else {
            return Err(close(format!("{what} for unknown htlc id {id}")));
        };
        Ok(*htlc)
    }

    fn peer_removal_of(&self, id: u64) -> Option<&Update> {
        self.remote_changes
            .proposed
            .iter()
            .find(|u| u.removed_htlc_id() == Some(id))
    }

    /// The peer's `update_fulfill_htlc`: the preimage must hash to the HTLC's payment hash.
    /// Emits [`ChannelEvent::OutboundHtlcFulfilled`] at once (once per HTLC).
    pub fn handle_update_fulfill_htlc(
        &mut self,
        msg: &UpdateFulfillHtlc,
    ) -> Result<(), ChannelError> {
        self.check_can_receive_update("update_fulfill_htlc")?;
        if msg.channel_id != self.channel_id {
            return Err(close("update_fulfill_htlc for another channel_id"));
        }
        let htlc = self.removable_outbound(msg.id, "update_fulfill_htlc")?;
        if msg.payment_preimage.payment_hash() != htlc.payment_hash {
            return Err(close(format!(
                "update_fulfill_htlc preimage does not hash to the payment_hash of htlc {}",
                msg.id
            )));
        }
        if let Some(existing) = self.peer_removal_of(msg.id) {
            return match existing {
                Update::Fulfill(_) => Err(ChannelError::Ignore(format!(
                    "duplicate update_fulfill_htlc for htlc {}",
                    msg.id
                ))),
                _ => Err(close(format!("htlc {} is already being failed", msg.id))),
            };
        }
        self.remote_changes
            .proposed
            .push(Update::Fulfill(msg.clone()));
        if self.fulfilled_notified.insert(msg.id) {
            self.events.push(ChannelEvent::OutboundHtlcFulfilled {
                id: msg.id,
                payment_preimage: msg.payment_preimage,
            });
        }
        Ok(())
    }

    /// The peer's `update_fail_htlc`.
    pub fn handle_update_fail_htlc(&mut self, msg: &UpdateFailHtlc) -> Result<(), ChannelError> {
        self.check_can_receive_update("update_fail_htlc")?;
        if msg.channel_id != self.channel_id {
            return Err(close("update_fail_htlc for another channel_id"));
        }
        self.removable_outbound(msg.id, "update_fail_htlc")?;
        if self.peer_removal_of(msg.id).is_some() {
            return Err(close(format!("htlc {} is already being removed", msg.id)));
        }
        self.remote_changes.proposed.push(Update::Fail(msg.clone()));
        Ok(())
    }

    /// The peer's `update_fail_malformed_htlc`: the BADONION bit must be set.
    pub fn handle_update_fail_malformed_htlc(
        &mut self,
        msg: &UpdateFailMalformedHtlc,
    ) -> Result<(), ChannelError> {
        self.check_can_receive_update("update_fail_malformed_htlc")?;
        if msg.channel_id != self.channel_id {
            return Err(close("update_fail_malformed_htlc for another channel_id"));
        }
        if !msg.has_badonion_bit() {
            return Err(close(format!(
                "update_fail_malformed_htlc failure_code {:#06x} lacks the BADONION bit",
                msg.failure_code
            )));
        }
        self.removable_outbound(msg.id, "update_fail_malformed_htlc")?;
        if self.peer_removal_of(msg.id).is_some() {
            return Err(close(format!("htlc {} is already being removed", msg.id)));
        }
        self.remote_changes
            .proposed
            .push(Update::FailMalformed(msg.clone()));
        Ok(())
    }

    /// The peer's `update_fee`: only from the funder, within our feerate bounds, and
    /// affordable by the funder in our next commitment.
    pub fn handle_update_fee(&mut self, msg: &UpdateFee) -> Result<(), ChannelError> {
        self.check_can_receive_update("update_fee")?;
        if msg.channel_id != self.channel_id {
            return Err(close("update_fee for another channel_id"));
        }
        if self.is_funder {
            return Err(close("update_fee from the non-funder"));
        }
        if msg.feerate_per_kw < self.config.min_feerate_per_kw
            || msg.feerate_per_kw > self.config.max_feerate_per_kw
        {
            return Err(close(format!(
                "update_fee feerate_per_kw {} is outside {}..={}",
                msg.feerate_per_kw, self.config.min_feerate_per_kw, self.config.max_feerate_per_kw
            )));
        }
        let fee = Update::Fee(msg.clone());
        let mut next = self.clone();
        next.remote_changes
            .proposed
            .retain(|u| !matches!(u, Update::Fee(_)));
        let spec = next
            .projected_local_spec(None, Some(&fee), false)
            .map_err(|e| close(format!("update_fee: {e}")))?;
        let cost = spec.funder_cost_msat(self.local_params.dust_limit_satoshis, self.channel_type);
        let needed = self
            .local_params
            .channel_reserve_satoshis
            .saturating_mul(1000)
            .saturating_add(cost);
        if spec.to_remote_msat < needed {
            return Err(close(format!(
                "the funder cannot afford feerate_per_kw {}: balance {} msat, needs {needed} msat",
                msg.feerate_per_kw, spec.to_remote_msat
            )));
        }
        next.remote_changes.proposed.push(fee);
        *self = next;
        Ok(())
    }
}
