//! How each event changes the state: the handlers [`Lrp::apply`] dispatches
//! to. Which job a re-serve picks, and who may have work at all, is
//! [`super::policy`]'s.

use super::hash::ProverKey;
use super::state::{Holders, Lane, QueueEntry, QueueKey, Slot, remove_holding};
use super::{
    Completion, Decision, ForgetOutcome, Handout, HeartbeatOutcome, Holder, Holding, Lrp, Refusal,
    ReleaseOutcome, ReservePolicy, StrikeOutcome, SubmitOutcome,
};
use crate::identity::PublicKey;
use crate::ids::{BatchId, JobId, RequestId, Timestamp};

impl Lrp {
    pub(super) fn on_submit(&mut self, jobs: &[JobId]) -> SubmitOutcome {
        let mut outcome = SubmitOutcome {
            added: 0,
            duplicates: Vec::new(),
        };
        for &job in jobs {
            let state = self.batches.entry(job.batch).or_default();
            if state.slot(job.index).is_some() {
                outcome.duplicates.push(job);
                continue;
            }
            state.add(job.index, Slot::Fresh);
            state.progress.total += 1;
            self.fresh.push_back(job);
            outcome.added += 1;
        }
        outcome
    }

    pub(super) fn on_request(&mut self, prover: PublicKey, now: Timestamp) -> Decision {
        let now = self.tick(now);
        if let Some(refusal) = self.refusal(&prover, now) {
            return Decision::Refused(refusal);
        }
        let request = RequestId(self.next_request);
        let Some(next) = self.next_request.checked_add(1) else {
            return Decision::Refused(Refusal::RequestIdsExhausted);
        };
        let holder = Holder {
            prover,
            request,
            at: now,
        };
        let key = QueueKey {
            lane: Lane::Held,
            request,
        };
        let (job, reserve, moves) = if let Some(job) = self.fresh.pop_front() {
            if let Some(slot) = self.slot_mut(job) {
                *slot = Slot::Pending {
                    key,
                    holders: Holders::One(holder),
                };
            }
            self.pending += 1;
            self.job_times.first_handouts += 1;
            (job, false, true)
        } else {
            match self.hand_out_again(holder, key) {
                Ok((job, moves)) => (job, true, moves),
                Err(retry_at) => return Decision::NoWork { retry_at },
            }
        };
        if moves {
            self.queue.insert(key, QueueEntry { job, at: now });
        }
        self.next_request = next;
        self.provers
            .entry(ProverKey::of(&prover))
            .or_default()
            .holdings
            .push(Holding {
                request,
                job,
                at: now,
            });
        Decision::Assign(Handout {
            job,
            request,
            reserve,
        })
    }

    /// Re-serves a pending job to `holder`'s prover under `key`, the new
    /// hand-out's queue place: the job, and whether it moved there (see
    /// [`Self::pick_reserve`]); or, when nothing may go to it, when to ask
    /// again.
    fn hand_out_again(
        &mut self,
        holder: Holder,
        key: QueueKey,
    ) -> std::result::Result<(JobId, bool), Timestamp> {
        let prover = holder.prover;
        let (old_key, job, backup) = self.pick_reserve(&prover, holder.at)?;
        if backup {
            self.job_times.backups += 1;
        }
        // Under the paper's rule a hand-out on probation does not move
        // the job (see [Probation](super#probation)); under the adaptive
        // one it does, as its holder is judged by its own evidence.
        let moves = self.is_trusted(&prover) || self.config.policy == ReservePolicy::Adaptive;
        if moves {
            self.queue.remove(&old_key);
        }
        let mut renewed = None;
        if let Some(Slot::Pending { key: k, holders }) = self.slot_mut(job) {
            if moves {
                *k = key;
            }
            // The prover's own expired hand-outs of this job, if any, stay:
            // one of its workers may still be proving it, and its proof
            // must be judged, not taken for one never issued. The scan let
            // the job come here only if none of them is live, so a prover
            // holds a job live at most once.
            renewed = newest_of(holders.as_slice(), &prover).map(|h| h.request);
            holders.push(holder);
        }
        if let Some(older) = renewed
            && let Some(state) = self.provers.get_mut(&ProverKey::of(&prover))
        {
            state.renewed.push(older);
        }
        if !self.is_trusted(&prover) {
            self.shed_stale_probation_holders(job, holder.at);
        }
        Ok((job, moves))
    }

    /// Voids the oldest hand-outs of pending `job` to provers on probation
    /// that are past their lease, beyond
    /// [`super::LrpConfig::max_stale_probation_holders`] of them. Each new
    /// such holder costs at most one minimum re-serve age of the job's
    /// time, so without this bound a job no trusted prover finishes would
    /// gather one per minimum age, and a prover state each, for as long
    /// as it stays open.
    fn shed_stale_probation_holders(&mut self, job: JobId, now: Timestamp) {
        let keep = self.config.max_stale_probation_holders as usize;
        let Some(Slot::Pending { holders, .. }) = self.slot(job) else {
            return;
        };
        if keep == 0 || holders.as_slice().len() <= keep {
            return;
        }
        let lease = self.config.lease_ms;
        // Oldest first, as the holders are.
        let stale: Vec<(RequestId, PublicKey)> = holders
            .as_slice()
            .iter()
            .filter(|h| now.millis_since(h.at) >= lease && !self.is_trusted(&h.prover))
            .map(|h| (h.request, h.prover))
            .collect();
        for (request, prover) in &stale[..stale.len().saturating_sub(keep)] {
            let _ = self.take_holder(job, *request, prover);
        }
    }

    pub(super) fn on_complete(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> Completion {
        let now = self.tick(now);
        let Some(batch) = self.batches.get_mut(&job.batch) else {
            return Completion::Unknown;
        };
        let Some(slot) = batch.slot_mut(job.index) else {
            return Completion::Unknown;
        };
        match slot {
            Slot::Fresh => Completion::Unknown,
            Slot::Done {
                prover: winner,
                request: won,
                late,
                ..
            } => {
                if *won == request {
                    if *winner == prover {
                        Completion::Duplicate
                    } else {
                        Completion::WrongProver
                    }
                } else {
                    match late.iter().find(|p| p.request == request) {
                        Some(p) if p.prover == prover => Completion::Late,
                        Some(_) => Completion::WrongProver,
                        None => Completion::Unknown,
                    }
                }
            }
            Slot::Pending { key, holders } => {
                let took = match holders.as_slice().iter().find(|h| h.request == request) {
                    None => return Completion::Unknown,
                    Some(h) if h.prover != prover => return Completion::WrongProver,
                    Some(h) => now.millis_since(h.at),
                };
                let key = *key;
                let holders = std::mem::take(holders);
                let winner = self.provers.entry(ProverKey::of(&prover)).or_default();
                // Judged before this proof counts: a new key's first win
                // must not vouch for its own time.
                let learnt_by_crowd = winner.is_trusted() || !self.config.median_from_trusted_only;
                winner.proven = winner.proven.saturating_add(1);
                winner.learn(took);
                if learnt_by_crowd {
                    self.job_times.learn(took);
                }
                for h in holders.as_slice() {
                    remove_holding(&mut self.provers, &h.prover, h.request);
                    self.heard.remove(&h.request);
                }
                let late = holders.into_others(request);
                let superseded = u32::try_from(late.len()).unwrap_or(u32::MAX);
                *slot = Slot::Done {
                    prover,
                    request,
                    at: now,
                    late,
                };
                self.queue.remove(&key);
                self.pending -= 1;
                self.done += 1;
                let progress = &mut batch.progress;
                progress.done += 1;
                Completion::Accepted {
                    superseded,
                    batch_finished: progress.is_finished(),
                }
            }
        }
    }

    pub(super) fn on_invalid(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> StrikeOutcome {
        let now = self.tick(now);
        match self.slot_mut(job) {
            None | Some(Slot::Fresh) => StrikeOutcome::Unknown,
            Some(Slot::Done {
                prover: winner,
                request: won,
                late,
                ..
            }) => {
                if *won == request {
                    return if *winner == prover {
                        StrikeOutcome::AlreadyAccepted
                    } else {
                        StrikeOutcome::WrongProver
                    };
                }
                let Some(i) = late.iter().position(|p| p.request == request) else {
                    return StrikeOutcome::Unknown;
                };
                if late[i].prover != prover {
                    return StrikeOutcome::WrongProver;
                }
                // One issued pair earns at most one strike.
                late.remove(i);
                self.strike(prover, now)
            }
            Some(Slot::Pending { .. }) => match self.take_holder(job, request, &prover) {
                Ok(_) => self.strike(prover, now),
                Err(HolderMiss::WrongProver) => StrikeOutcome::WrongProver,
                Err(HolderMiss::Unknown) => StrikeOutcome::Unknown,
            },
        }
    }

    pub(super) fn on_release(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> ReleaseOutcome {
        self.tick(now);
        match self.slot(job) {
            None | Some(Slot::Fresh) => ReleaseOutcome::Unknown,
            Some(Slot::Done { .. }) => ReleaseOutcome::AlreadyDone,
            Some(Slot::Pending { .. }) => match self.take_holder(job, request, &prover) {
                Ok(orphaned) => ReleaseOutcome::Released { orphaned },
                Err(HolderMiss::WrongProver) => ReleaseOutcome::WrongProver,
                Err(HolderMiss::Unknown) => ReleaseOutcome::Unknown,
            },
        }
    }

    /// Voids `prover`'s hand-out `request` of pending `job`, keeping the job's
    /// queue place at its latest remaining hand-out (or among the orphans when
    /// none is left). Returns whether the job is now orphaned.
    fn take_holder(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: &PublicKey,
    ) -> std::result::Result<bool, HolderMiss> {
        let Some(Slot::Pending { key, holders }) = self
            .batches
            .get_mut(&job.batch)
            .and_then(|b| b.slot_mut(job.index))
        else {
            return Err(HolderMiss::Unknown);
        };
        let i = holders
            .as_slice()
            .iter()
            .position(|h| h.request == request)
            .ok_or(HolderMiss::Unknown)?;
        if holders.as_slice()[i].prover != *prover {
            return Err(HolderMiss::WrongProver);
        }
        let gone = holders.remove(i);
        if key.lane == Lane::Held && key.request == gone.request {
            let (new_key, at) = match holders.as_slice().last() {
                Some(last) => (
                    QueueKey {
                        lane: Lane::Held,
                        request: last.request,
                    },
                    last.at,
                ),
                None => (
                    QueueKey {
                        lane: Lane::Orphan,
                        request: gone.request,
                    },
                    gone.at,
                ),
            };
            self.queue.remove(key);
            self.queue.insert(new_key, QueueEntry { job, at });
            *key = new_key;
        }
        let orphaned = holders.as_slice().is_empty();
        // Its older hand-out of the job, if any, is its newest again.
        let older = newest_of(holders.as_slice(), prover)
            .filter(|h| h.request < request)
            .map(|h| h.request);
        if let Some(older) = older
            && let Some(state) = self.provers.get_mut(&ProverKey::of(prover))
        {
            state.unmark_renewed(older);
        }
        remove_holding(&mut self.provers, prover, request);
        self.heard.remove(&request);
        Ok(orphaned)
    }

    fn strike(&mut self, prover: PublicKey, now: Timestamp) -> StrikeOutcome {
        let key = ProverKey::of(&prover);
        let state = self.provers.entry(key).or_default();
        state.strikes = state.strikes.saturating_add(1);
        let doublings = (state.strikes - 1).min(32);
        let cooldown = self
            .config
            .strike_cooldown_ms
            .saturating_mul(1u64 << doublings);
        state.cooldown_until = now.plus_millis(cooldown);
        let outcome = StrikeOutcome::Struck {
            strikes: state.strikes,
            cooldown_until: state.cooldown_until,
            banned: state.strikes >= self.config.max_strikes,
        };
        // A new key that holds nothing more is not worth a record kept for
        // good ([`super::LrpConfig::forget_struck_newcomers`]).
        if self.config.forget_struck_newcomers && state.proven == 0 && state.held().is_empty() {
            self.provers.remove(&key);
        }
        outcome
    }

    pub(super) fn on_heartbeat(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> HeartbeatOutcome {
        let now = self.tick(now);
        let holders = match self.slot(job) {
            None | Some(Slot::Fresh) => return HeartbeatOutcome::Unknown,
            Some(Slot::Done { .. }) => return HeartbeatOutcome::AlreadyDone,
            Some(Slot::Pending { holders, .. }) => holders.as_slice(),
        };
        match holders.iter().find(|h| h.request == request) {
            None => return HeartbeatOutcome::Unknown,
            Some(h) if h.prover != prover => return HeartbeatOutcome::WrongProver,
            Some(_) => {}
        }
        let gap = self.config.heartbeat_silence_ms / 6;
        if let Some(last) = self.heard.get(&request)
            && now.millis_since(*last) < gap
        {
            return HeartbeatOutcome::TooSoon;
        }
        self.heard.insert(request, now);
        HeartbeatOutcome::Noted
    }

    pub(super) fn on_pardon(&mut self, prover: PublicKey) -> u32 {
        let key = ProverKey::of(&prover);
        let Some(state) = self.provers.get_mut(&key) else {
            return 0;
        };
        let cleared = std::mem::take(&mut state.strikes);
        state.cooldown_until = Timestamp(0);
        if state.is_blank() {
            self.provers.remove(&key);
        }
        cleared
    }

    pub(super) fn on_forget(&mut self, batch: BatchId) -> ForgetOutcome {
        let Some(state) = self.batches.get(&batch) else {
            return ForgetOutcome::Unknown;
        };
        let progress = state.progress;
        if !progress.is_finished() {
            return ForgetOutcome::NotFinished {
                remaining: progress.total - progress.done,
            };
        }
        // A finished batch's jobs are all done: no queue entries, no holdings.
        let Some(state) = self.batches.remove(&batch) else {
            return ForgetOutcome::Unknown;
        };
        self.done -= progress.done;
        ForgetOutcome::Forgotten {
            jobs: state.job_count(),
        }
    }
}

enum HolderMiss {
    WrongProver,
    Unknown,
}

/// `prover`'s latest hand-out among a job's `holders`, if any.
fn newest_of<'a>(holders: &'a [Holder], prover: &PublicKey) -> Option<&'a Holder> {
    holders.iter().rev().find(|h| h.prover == *prover)
}

/// Shorthands for the unit tests: each runs exactly what [`Lrp::apply`]
/// runs for its event. Outside tests `apply` is the only way state changes.
#[cfg(test)]
impl Lrp {
    /// [`LrpEvent::Submit`].
    pub(crate) fn submit(&mut self, jobs: impl IntoIterator<Item = JobId>) -> SubmitOutcome {
        let jobs: Vec<JobId> = jobs.into_iter().collect();
        self.on_submit(&jobs)
    }

    /// [`LrpEvent::Request`].
    pub(crate) fn request(&mut self, prover: PublicKey, now: Timestamp) -> Decision {
        self.on_request(prover, now)
    }

    /// [`LrpEvent::Complete`].
    pub(crate) fn complete(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> Completion {
        self.on_complete(job, request, prover, now)
    }

    /// [`LrpEvent::Invalid`].
    pub(crate) fn invalid(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> StrikeOutcome {
        self.on_invalid(job, request, prover, now)
    }

    /// [`LrpEvent::Release`].
    pub(crate) fn release(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> ReleaseOutcome {
        self.on_release(job, request, prover, now)
    }

    /// [`LrpEvent::Pardon`]; returns the strikes cleared.
    pub(crate) fn pardon(&mut self, prover: PublicKey) -> u32 {
        self.on_pardon(prover)
    }

    /// [`LrpEvent::Forget`].
    pub(crate) fn forget_batch(&mut self, batch: BatchId) -> ForgetOutcome {
        self.on_forget(batch)
    }

    /// Credits `prover` with `proven` accepted proofs, as if it had earned
    /// them, so a test of another rule starts past probation.
    pub(crate) fn vouch(&mut self, prover: PublicKey, proven: u32) {
        self.provers
            .entry(ProverKey::of(&prover))
            .or_default()
            .proven = proven;
    }
}
