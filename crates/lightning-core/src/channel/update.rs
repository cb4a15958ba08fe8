//! HTLC and fee updates, both directions: `update_add_htlc`, `update_fulfill_htlc`,
//! `update_fail_htlc`, `update_fail_malformed_htlc`, `update_fee`, and the holding cell.

use super::error::{close, ignore, ChannelErrorReason as R, Removal};
use super::spec::{reduce, CommitmentSpec, ReduceError, Update};
use super::{Channel, ChannelError, ChannelEvent, ChannelPhase, Connection};
use crate::transactions::Side;
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
            return Err(ignore(R::NotOpen));
        }
        if self.closing.last_sent.is_some() || self.closing.last_received.is_some() {
            return Err(ignore(R::ClosingNegotiationStarted));
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
            return Err(ignore(R::ShuttingDown));
        }
        if amount_msat == 0 || amount_msat < self.remote_params.htlc_minimum_msat {
            return Err(ignore(R::HtlcBelowMinimum {
                side: Side::Remote,
                amount_msat,
                htlc_minimum_msat: self.remote_params.htlc_minimum_msat.max(1),
            }));
        }
        if cltv_expiry >= MAX_CLTV_EXPIRY {
            return Err(ignore(R::CltvExpiryTooLarge {
                cltv_expiry,
                limit: MAX_CLTV_EXPIRY,
            }));
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
        let remote = self.projected_remote_spec(Some(&add)).map_err(|error| {
            ignore(R::Spec {
                during: "cannot add htlc",
                error,
            })
        })?;
        // In the peer's commitment our HTLCs are the ones it received.
        let count = remote.htlc_count(false);
        if count > usize::from(self.remote_params.max_accepted_htlcs) {
            return Err(ignore(R::WouldExceedMaxAcceptedHtlcs {
                count,
                max: self.remote_params.max_accepted_htlcs,
            }));
        }
        let in_flight = remote.htlc_total_msat(false);
        if in_flight > self.remote_params.max_htlc_value_in_flight_msat {
            return Err(ignore(R::WouldExceedMaxInFlight {
                in_flight_msat: in_flight,
                max_msat: self.remote_params.max_htlc_value_in_flight_msat,
            }));
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
            return Err(ignore(R::BalanceBelowReserve {
                balance_msat: remote.to_remote_msat,
                needed_msat: needed,
            }));
        }
        let local = self
            .projected_local_spec(Some(&add), None, true)
            .map_err(|error| {
                ignore(R::Spec {
                    during: "cannot add htlc",
                    error,
                })
            })?;
        if self.is_funder {
            let fee = local.funder_cost_msat(local_dust, ct);
            if local.to_local_msat < reserve.saturating_add(fee) {
                return Err(ignore(R::CannotPayCommitmentFee {
                    balance_msat: local.to_local_msat,
                    fee_msat: fee,
                }));
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
                return Err(ignore(R::FunderCannotPayWithHtlc {
                    balance_msat: remote.to_local_msat.min(local.to_remote_msat),
                    needed_msat: needed,
                }));
            }
        }
        let dust = self.dust_exposure_msat(&local, &remote);
        if dust > self.config.max_dust_htlc_exposure_msat {
            return Err(ignore(R::DustExposure {
                exposure_msat: dust,
                max_msat: self.config.max_dust_htlc_exposure_msat,
            }));
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
            _ => Err(ignore(R::NoCommittedInboundHtlc { id })),
        }
    }

    /// Claims the peer's HTLC `id` with `preimage` (queued for the next signature).
    /// Idempotent: claiming an HTLC already being claimed with the same preimage succeeds;
    /// once the removal is irrevocably complete the HTLC is gone and a repeated claim is
    /// [`ChannelError::Ignore`] (nothing to do).
    pub fn fulfill_htlc(&mut self, id: u64, preimage: PaymentPreimage) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::Normal {
            return Err(ignore(R::NotOpen));
        }
        if let Some(existing) = self.our_removal_of(id) {
            return match existing {
                Update::Fulfill(f) if f.payment_preimage == preimage => Ok(()),
                _ => Err(ignore(R::HtlcAlreadyRemoved {
                    id,
                    removal: Removal::Removed,
                })),
            };
        }
        let htlc = self.committed_inbound(id)?;
        if preimage.payment_hash() != htlc.payment_hash {
            return Err(ignore(R::PreimageMismatch { id }));
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
            return Err(ignore(R::NotOpen));
        }
        if let Some(existing) = self.our_removal_of(id) {
            return match existing {
                Update::Fail(_) | Update::FailMalformed(_) => Ok(()),
                _ => Err(ignore(R::HtlcAlreadyRemoved {
                    id,
                    removal: Removal::Fulfilled,
                })),
            };
        }
        self.committed_inbound(id)?;
        if reason.len() > usize::from(u16::MAX) {
            return Err(ignore(R::FailureReasonTooLong {
                len: reason.len(),
                max: usize::from(u16::MAX),
            }));
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
            return Err(ignore(R::NotOpen));
        }
        if failure_code & UpdateFailMalformedHtlc::BADONION == 0 {
            return Err(ignore(R::FailureCodeLacksBadonion { failure_code }));
        }
        if let Some(existing) = self.our_removal_of(id) {
            return match existing {
                Update::Fail(_) | Update::FailMalformed(_) => Ok(()),
                _ => Err(ignore(R::HtlcAlreadyRemoved {
                    id,
                    removal: Removal::Fulfilled,
                })),
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
            return Err(ignore(R::NotFunder));
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
            return Err(ignore(R::UpdateFeeWhileShuttingDown));
        }
        if feerate_per_kw < self.config.min_feerate_per_kw
            || feerate_per_kw > self.config.max_feerate_per_kw
        {
            return Err(ignore(R::OutsideRange {
                field: "feerate_per_kw",
                value: u64::from(feerate_per_kw),
                min: u64::from(self.config.min_feerate_per_kw),
                max: u64::from(self.config.max_feerate_per_kw),
            }));
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
        let remote = next.projected_remote_spec(Some(&fee)).map_err(|error| {
            ignore(R::Spec {
                during: "cannot update fee",
                error,
            })
        })?;
        let remote_fee = remote.funder_cost_msat(self.remote_params.dust_limit_satoshis, ct);
        let local = next
            .projected_local_spec(Some(&fee), None, true)
            .map_err(|error| {
                ignore(R::Spec {
                    during: "cannot update fee",
                    error,
                })
            })?;
        let local_fee = local.funder_cost_msat(self.local_params.dust_limit_satoshis, ct);
        if remote.to_remote_msat < reserve.saturating_add(remote_fee)
            || local.to_local_msat < reserve.saturating_add(local_fee)
        {
            return Err(ignore(R::CannotAffordFeerate { feerate_per_kw }));
        }
        next.holding_cell.push(fee);
        *self = next;
        Ok(())
    }

    /// Funder only: whether both next commitments at `feerate_per_kw`, with everything
    /// pending and `extra_htlcs` more untrimmed HTLCs, leave our balance above the peer's
    /// reserve. With `extra_htlcs` > 0 this is headroom: a raise that leaves none lets the
    /// peer add no HTLC (it must not make us pay a fee we cannot afford).
    pub fn affords_feerate(&self, feerate_per_kw: u32, extra_htlcs: usize) -> bool {
        if !self.is_funder {
            return false;
        }
        let fee = Update::Fee(UpdateFee {
            channel_id: self.channel_id,
            feerate_per_kw,
        });
        let mut next = self.clone();
        next.holding_cell.retain(|u| !matches!(u, Update::Fee(_)));
        let reserve = self
            .remote_params
            .channel_reserve_satoshis
            .saturating_mul(1000);
        let ct = self.channel_type;
        let (Ok(remote), Ok(local)) = (
            next.projected_remote_spec(Some(&fee)),
            next.projected_local_spec(Some(&fee), None, true),
        ) else {
            return false;
        };
        let remote_fee = remote.funder_cost_msat_at(
            feerate_per_kw,
            extra_htlcs,
            self.remote_params.dust_limit_satoshis,
            ct,
        );
        let local_fee = local.funder_cost_msat_at(
            feerate_per_kw,
            extra_htlcs,
            self.local_params.dust_limit_satoshis,
            ct,
        );
        remote.to_remote_msat >= reserve.saturating_add(remote_fee)
            && local.to_local_msat >= reserve.saturating_add(local_fee)
    }

    /// Whether a peer update, `commitment_signed` or `revoke_and_ack` may arrive now: only
    /// on an open, reestablished channel outside closing negotiation.
    pub(crate) fn check_can_receive_update(
        &self,
        message: &'static str,
    ) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::Normal {
            return Err(close(R::BeforeOpen { message }));
        }
        if self.connection != Connection::Connected {
            return Err(close(R::BeforeReestablish { message }));
        }
        if self.closing.last_sent.is_some() || self.closing.last_received.is_some() {
            return Err(close(R::DuringClosingNegotiation { message }));
        }
        Ok(())
    }

    /// The peer's `update_add_htlc`, checked against every receiver MUST of BOLT 2.
    pub fn handle_update_add_htlc(&mut self, msg: &UpdateAddHtlc) -> Result<(), ChannelError> {
        self.check_can_receive_update("update_add_htlc")?;
        if msg.channel_id != self.channel_id {
            return Err(close(R::WrongChannelId {
                message: "update_add_htlc",
            }));
        }
        if self.shutdown.remote_script.is_some() {
            return Err(close(R::AddAfterShutdown));
        }
        if msg.id != self.remote_next_htlc_id {
            return Err(close(R::UnexpectedHtlcId {
                id: msg.id,
                expected: self.remote_next_htlc_id,
            }));
        }
        if msg.amount_msat == 0 || msg.amount_msat < self.local_params.htlc_minimum_msat {
            return Err(close(R::HtlcBelowMinimum {
                side: Side::Local,
                amount_msat: msg.amount_msat,
                htlc_minimum_msat: self.local_params.htlc_minimum_msat.max(1),
            }));
        }
        if msg.cltv_expiry >= MAX_CLTV_EXPIRY {
            return Err(close(R::CltvExpiryTooLarge {
                cltv_expiry: msg.cltv_expiry,
                limit: MAX_CLTV_EXPIRY,
            }));
        }
        let add = Update::Add(msg.clone());
        let spec = self
            .projected_local_spec(None, Some(&add), false)
            .map_err(|error| {
                close(R::Spec {
                    during: "update_add_htlc",
                    error,
                })
            })?;
        let count = spec.htlc_count(false);
        if count > usize::from(self.local_params.max_accepted_htlcs) {
            return Err(close(R::PeerExceedsMaxAcceptedHtlcs {
                count,
                max: self.local_params.max_accepted_htlcs,
            }));
        }
        let in_flight = spec.htlc_total_msat(false);
        if in_flight > self.local_params.max_htlc_value_in_flight_msat {
            return Err(close(R::PeerExceedsMaxInFlight {
                in_flight_msat: in_flight,
                max_msat: self.local_params.max_htlc_value_in_flight_msat,
            }));
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
            return Err(close(R::PeerBalanceBelowReserve {
                balance_msat: spec.to_remote_msat,
                amount_msat: msg.amount_msat,
                needed_msat: needed,
            }));
        }
        self.remote_changes.proposed.push(add);
        self.remote_next_htlc_id = msg.id.saturating_add(1);
        Ok(())
    }

    /// Our HTLC `id` as the peer may remove it: in our current commitment and not already
    /// being removed.
    fn removable_outbound(
        &self,
        id: u64,
        message: &'static str,
    ) -> Result<super::SpecHtlc, ChannelError> {
        let Some(htlc) = self.local_commit.spec.htlcs.get(&(true, id)) else {
            return Err(close(R::UnknownHtlc { message, id }));
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
            return Err(close(R::WrongChannelId {
                message: "update_fulfill_htlc",
            }));
        }
        let htlc = self.removable_outbound(msg.id, "update_fulfill_htlc")?;
        if msg.payment_preimage.payment_hash() != htlc.payment_hash {
            return Err(close(R::PeerPreimageMismatch { id: msg.id }));
        }
        if let Some(existing) = self.peer_removal_of(msg.id) {
            return match existing {
                Update::Fulfill(_) => Err(ignore(R::DuplicateFulfill { id: msg.id })),
                _ => Err(close(R::HtlcAlreadyRemoved {
                    id: msg.id,
                    removal: Removal::Failed,
                })),
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
            return Err(close(R::WrongChannelId {
                message: "update_fail_htlc",
            }));
        }
        self.removable_outbound(msg.id, "update_fail_htlc")?;
        if self.peer_removal_of(msg.id).is_some() {
            return Err(close(R::HtlcAlreadyRemoved {
                id: msg.id,
                removal: Removal::Removed,
            }));
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
            return Err(close(R::WrongChannelId {
                message: "update_fail_malformed_htlc",
            }));
        }
        if !msg.has_badonion_bit() {
            return Err(close(R::PeerFailureCodeLacksBadonion {
                failure_code: msg.failure_code,
            }));
        }
        self.removable_outbound(msg.id, "update_fail_malformed_htlc")?;
        if self.peer_removal_of(msg.id).is_some() {
            return Err(close(R::HtlcAlreadyRemoved {
                id: msg.id,
                removal: Removal::Removed,
            }));
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
            return Err(close(R::WrongChannelId {
                message: "update_fee",
            }));
        }
        if self.is_funder {
            return Err(close(R::UpdateFeeFromNonFunder));
        }
        if msg.feerate_per_kw < self.config.min_feerate_per_kw
            || msg.feerate_per_kw > self.config.max_feerate_per_kw
        {
            return Err(close(R::OutsideRange {
                field: "update_fee feerate_per_kw",
                value: u64::from(msg.feerate_per_kw),
                min: u64::from(self.config.min_feerate_per_kw),
                max: u64::from(self.config.max_feerate_per_kw),
            }));
        }
        let fee = Update::Fee(msg.clone());
        let mut next = self.clone();
        next.remote_changes
            .proposed
            .retain(|u| !matches!(u, Update::Fee(_)));
        let spec = next
            .projected_local_spec(None, Some(&fee), false)
            .map_err(|error| {
                close(R::Spec {
                    during: "update_fee",
                    error,
                })
            })?;
        let cost = spec.funder_cost_msat(self.local_params.dust_limit_satoshis, self.channel_type);
        let needed = self
            .local_params
            .channel_reserve_satoshis
            .saturating_mul(1000)
            .saturating_add(cost);
        if spec.to_remote_msat < needed {
            return Err(close(R::FunderCannotAffordFeerate {
                feerate_per_kw: msg.feerate_per_kw,
                balance_msat: spec.to_remote_msat,
                needed_msat: needed,
            }));
        }
        next.remote_changes.proposed.push(fee);
        *self = next;
        Ok(())
    }
}
