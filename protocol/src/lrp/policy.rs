//! Who may have work ([`Refusal`]s: bans, cooldowns, the probation
//! allowance) and which pending job a re-serve hands out: the paper's
//! fixed-age rule or the adaptive one with its tail backups; see
//! [When a held job goes round again](super#when-a-held-job-goes-round-again).

#[cfg(doc)]
use super::LrpConfig;
use super::hash::ProverKey;
use super::state::{Lane, ProverState, QueueKey, Slot};
use super::{Holder, Lrp, Refusal, ReservePolicy};
use crate::identity::PublicKey;
use crate::ids::{JobId, RequestId, Timestamp};

/// A tail backup goes only to a prover expected to prove the job this many
/// times faster than its holder's expected time left: a backup costs a
/// duplicate, so it must cut the tail, not shave it (in simulation a 1.25×
/// margin spent the budget on marginal copies and left the slow machines'
/// jobs without one; `crowdprove simulate`, docs/lrp.md).
const BACKUP_SPEEDUP: u64 = 3;

impl Lrp {
    /// Why `prover` may not have work now, if it may not: banned, cooling
    /// down, or holding its allowance of live hand-outs.
    pub(super) fn refusal(&self, prover: &PublicKey, now: Timestamp) -> Option<Refusal> {
        let state = self.provers.get(&ProverKey::of(prover))?;
        if state.strikes >= self.config.max_strikes {
            return Some(Refusal::Banned {
                strikes: state.strikes,
            });
        }
        if now < state.cooldown_until {
            return Some(Refusal::Cooldown {
                strikes: state.strikes,
                until: state.cooldown_until,
            });
        }
        let max_held = self.config.max_held_per_prover as usize;
        let holdings = state.held();
        // Fewer holdings than the allowance could shrink to, expired or not:
        // no need to read them.
        if holdings.len() < state.allowance(holdings.len(), max_held) {
            return None;
        }
        let first_live = state.first_live(now, self.config.lease_ms);
        let held = holdings.len() - first_live;
        let expired = state.expired_jobs(first_live);
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            expired,
            state.expired_jobs_counted(held),
            "renewed holdings"
        );
        if held < state.allowance(expired, max_held) {
            return None;
        }
        let retry_at = match holdings.get(first_live) {
            Some(oldest) => oldest.at.plus_millis(self.config.lease_ms),
            None => now.plus_millis(self.config.idle_retry_ms),
        };
        Some(Refusal::AtCapacity {
            held: u32::try_from(held).unwrap_or(u32::MAX),
            retry_at,
        })
    }

    /// Whether `prover` is past probation.
    pub(super) fn is_trusted(&self, prover: &PublicKey) -> bool {
        self.provers
            .get(&ProverKey::of(prover))
            .is_some_and(ProverState::is_trusted)
    }

    /// The queue entry to re-serve to `prover` (and whether it is a tail
    /// backup), or when to ask again.
    ///
    /// Walks the queue from its head (orphans, then least recently handed out),
    /// skipping jobs the prover holds within its lease, jobs at the holder
    /// cap and, for a prover on probation, jobs handed out to one on
    /// probation less than the minimum age ago, for at most
    /// `max_reserve_scan` entries. It stops at the first held job younger
    /// than the minimum age: every job behind it is younger still (hand-outs
    /// on probation do not move a job, so they cannot break that order).
    ///
    /// Under [`ReservePolicy::Adaptive`] a held job qualifies only once its
    /// latest hand-out is overdue for that holder ([`Self::overdue_ms`]);
    /// failing that, the scanned job with the longest expected time left
    /// and a single live holder goes as a backup copy, if the asker is
    /// expected to finish it [`BACKUP_SPEEDUP`] times sooner than its holder
    /// and the backup budget allows (LATE's speculation).
    pub(super) fn pick_reserve(
        &self,
        prover: &PublicKey,
        now: Timestamp,
    ) -> std::result::Result<(QueueKey, JobId, bool), Timestamp> {
        let mut retry_at = now.plus_millis(self.config.idle_retry_ms);
        let scan = usize::try_from(self.config.max_reserve_scan).unwrap_or(usize::MAX);
        let on_probation = !self.is_trusted(prover);
        let adaptive = self.config.policy == ReservePolicy::Adaptive;
        let may_back_up = adaptive && !on_probation && self.backup_budget_allows();
        // The asker's expected time, once needed.
        let mut asker_ms = None;
        let mut backup: Option<(u64, QueueKey, JobId)> = None;
        for (key, entry) in self.queue.iter().take(scan) {
            if key.lane == Lane::Held {
                let ready_at = entry.at.plus_millis(self.config.min_reserve_age_ms);
                if now < ready_at {
                    retry_at = retry_at.min(ready_at);
                    break;
                }
            }
            let Some((holders, live)) = self.open_to(entry.job, prover, on_probation, now) else {
                continue;
            };
            if adaptive && key.lane == Lane::Held {
                let holder = holders.iter().find(|h| h.request == key.request);
                let due = self.due_at(key.request, entry.at, holder, on_probation);
                if now < due {
                    retry_at = retry_at.min(due);
                    if may_back_up && live == 1 {
                        let left = self.time_left(holder, entry.at, now);
                        let asker = *asker_ms.get_or_insert_with(|| self.expected_ms(prover));
                        let beats = asker.saturating_mul(BACKUP_SPEEDUP) < left;
                        if beats && backup.is_none_or(|(best, _, _)| left > best) {
                            backup = Some((left, *key, entry.job));
                        }
                    }
                    continue;
                }
            }
            return Ok((*key, entry.job, false));
        }
        match backup {
            Some((_, key, job)) => Ok((key, job, true)),
            None => Err(retry_at),
        }
    }

    /// Whether one more backup copy stays within
    /// [`LrpConfig::backup_percent`] of the first hand-outs.
    fn backup_budget_allows(&self) -> bool {
        let budget = u64::from(self.config.backup_percent);
        (self.job_times.backups + 1).saturating_mul(100)
            <= budget.saturating_mul(self.job_times.first_handouts)
    }

    /// The holders of pending `job` and how many of them count toward the
    /// holder cap, or `None` when the scan must pass it by for `prover`.
    fn open_to(
        &self,
        job: JobId,
        prover: &PublicKey,
        on_probation: bool,
        now: Timestamp,
    ) -> Option<(&[Holder], usize)> {
        let Some(Slot::Pending { holders, .. }) = self.slot(job) else {
            return None;
        };
        let holders = holders.as_slice();
        // Not to a prover still within its lease on this job; one whose
        // lease ran out (it crashed, lost its proof, or is slow) may have it
        // again, and its older hand-out stays valid for its proof.
        let lease = self.config.lease_ms;
        if holders
            .iter()
            .any(|h| h.prover == *prover && now.millis_since(h.at) < lease)
        {
            return None;
        }
        let live = self.live_trusted_holders(holders, now);
        if live >= self.config.max_live_holders as usize {
            return None;
        }
        if on_probation && self.probation_raced_recently(holders, now) {
            return None;
        }
        Some((holders, live))
    }

    /// Adaptive: when the latest hand-out `request` of a held job (made at
    /// `at` to `holder`) is overdue or silent enough for the asker to have
    /// the job.
    fn due_at(
        &self,
        request: RequestId,
        at: Timestamp,
        holder: Option<&Holder>,
        on_probation: bool,
    ) -> Timestamp {
        let yardstick = holder.map_or_else(|| self.typical_ms(), |h| self.holder_ms(&h.prover));
        let due = at
            .plus_millis(self.overdue_ms(yardstick))
            .min(self.silent_at(request, at));
        // Trusted provers first: one on probation waits a little
        // longer, so new keys only get the overdue work that no
        // trusted prover was there for.
        if on_probation {
            return due.plus_millis(self.config.probation_lag_ms);
        }
        // And a new key holds a job against a trusted prover only so long.
        let hold = self.config.probation_hold_ms;
        match holder {
            Some(h) if hold > 0 && !self.is_trusted(&h.prover) => due.min(at.plus_millis(hold)),
            _ => due,
        }
    }

    /// The time `holder` (of a hand-out made at `at`) has left at its own
    /// pace.
    fn time_left(&self, holder: Option<&Holder>, at: Timestamp, now: Timestamp) -> u64 {
        let pace = holder.map_or_else(|| self.typical_ms(), |h| self.expected_ms(&h.prover));
        at.plus_millis(pace).millis_since(now)
    }

    /// When the hand-out `request` (made at `at`) counts as silent: its
    /// last heartbeat, or the hand-out, or the last resume, whichever is
    /// latest, plus [`LrpConfig::heartbeat_silence_ms`]; never with
    /// heartbeats off.
    fn silent_at(&self, request: RequestId, at: Timestamp) -> Timestamp {
        let silence = self.config.heartbeat_silence_ms;
        if silence == 0 {
            return Timestamp(u64::MAX);
        }
        let heard = self.heard.get(&request).copied().unwrap_or(at);
        heard.max(at).max(self.resumed_at).plus_millis(silence)
    }

    /// How long `prover` takes to hold a job it wins, as far as is known:
    /// its own average once it has one, else the crowd's typical time.
    fn expected_ms(&self, prover: &PublicKey) -> u64 {
        match self.provers.get(&ProverKey::of(prover)) {
            Some(state) if state.samples > 0 => state.job_time_ms,
            _ => self.typical_ms(),
        }
    }

    /// How long a holder may take before it is overdue's yardstick: its own
    /// average or the crowd's typical time, whichever is longer. Its own
    /// history only ever lengthens it: a machine that once proved fast with
    /// nothing else to do is not raced when it queues work later (its
    /// silence catches it if it hangs).
    fn holder_ms(&self, prover: &PublicKey) -> u64 {
        self.expected_ms(prover).max(self.typical_ms())
    }

    /// The median holding time of recent accepted proofs, or the prior.
    fn typical_ms(&self) -> u64 {
        self.job_times
            .median
            .unwrap_or(self.config.job_time_prior_ms)
    }

    /// How old a hand-out expected to take `expected_ms` is when overdue.
    fn overdue_ms(&self, expected_ms: u64) -> u64 {
        let scaled = expected_ms.saturating_mul(u64::from(self.config.overdue_percent)) / 100;
        scaled.max(self.config.min_reserve_age_ms)
    }

    /// Holders within their lease and past probation. Trust is looked up
    /// only when the cap could bind.
    fn live_trusted_holders(&self, holders: &[Holder], now: Timestamp) -> usize {
        let lease = self.config.lease_ms;
        let unexpired = || {
            holders
                .iter()
                .filter(move |h| now.millis_since(h.at) < lease)
        };
        let count = unexpired().count();
        if count < self.config.max_live_holders as usize {
            return count;
        }
        unexpired().filter(|h| self.is_trusted(&h.prover)).count()
    }

    /// Whether a holder on probation got the job less than the minimum
    /// re-serve age ago.
    fn probation_raced_recently(&self, holders: &[Holder], now: Timestamp) -> bool {
        holders.iter().any(|h| {
            now.millis_since(h.at) < self.config.min_reserve_age_ms && !self.is_trusted(&h.prover)
        })
    }
}
