//! The rule's knobs ([`LrpConfig`], [`ReservePolicy`]), their production
//! defaults and the check that they let the rule make progress.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[cfg(doc)]
use super::{Decision, LrpEvent, Refusal};

/// Why the scheduler could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LrpError {
    /// A knob in [`LrpConfig`] has a value the rule cannot work with.
    #[error("invalid LRP setting `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field of [`LrpConfig`].
        field: &'static str,
        /// What it must be instead.
        reason: &'static str,
    },
}

/// The LRP module's result type.
pub type Result<T> = std::result::Result<T, LrpError>;

/// The knobs of the rule. `Default` gives the documented production values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LrpConfig {
    /// A pending job is re-served only once its latest hand-out is at least this
    /// old, so a healthy prover is not raced at once.
    pub min_reserve_age_ms: u64,
    /// A hand-out older than this stops counting as live: it no longer counts
    /// toward a job's holder cap or its prover's holding cap. Its request id
    /// stays valid, so a slow prover can still complete, even after the job
    /// was handed to it again.
    pub lease_ms: u64,
    /// At most this many live holders per job; a re-serve skips jobs at the cap.
    /// Only trusted holders count (see [Probation](super#probation)).
    pub max_live_holders: u32,
    /// At most this many live hand-outs per prover, for a trusted one; a
    /// prover on probation gets fewer. Beyond its allowance a request is
    /// refused with [`Refusal::AtCapacity`].
    pub max_held_per_prover: u32,
    /// A prover's first strike refuses it work for this long; each further
    /// strike doubles the cooldown.
    pub strike_cooldown_ms: u64,
    /// A prover with this many strikes is refused for good (until pardoned).
    pub max_strikes: u32,
    /// A re-serve looks at most this many queue entries from the head before
    /// answering [`Decision::NoWork`]; bounds the cost of one decision.
    pub max_reserve_scan: u32,
    /// How long a prover that got no work is told to wait before asking again,
    /// unless a pending job becomes ready for re-serve sooner.
    pub idle_retry_ms: u64,
    /// The first request id issued; a restarted distributor that does not
    /// replay its log sets it past every id it issued before.
    pub first_request_id: u64,
    /// When a held job may get another copy: on evidence ([`ReservePolicy::Adaptive`],
    /// the default) or at a fixed age (the paper's rule, [`ReservePolicy::Lrp`]).
    pub policy: ReservePolicy,
    /// Adaptive: the time a job is expected to take before any proof was
    /// accepted (afterwards the median of recent ones, and each prover's own
    /// history once it has one).
    pub job_time_prior_ms: u64,
    /// Adaptive: a hand-out is overdue, and its job eligible for another
    /// copy, once it is this many percent of its holder's expected time old
    /// (never sooner than [`Self::min_reserve_age_ms`]).
    pub overdue_percent: u32,
    /// Adaptive: backup copies of jobs that are not overdue (given, in a
    /// batch's tail, to a prover expected to finish before the holder) are at
    /// most this many percent of the jobs handed out.
    pub backup_percent: u32,
    /// Adaptive: a hand-out whose prover sent no [`LrpEvent::Heartbeat`]
    /// for this long (since its last one, or since the hand-out) is overdue
    /// whatever its expected time. 0: silence is not evidence.
    pub heartbeat_silence_ms: u64,
    /// Adaptive: overdue work goes to a trusted prover first; one on
    /// probation may have it only this much later. An idle trusted prover
    /// is told when the job comes due, so a round trip suffices.
    pub probation_lag_ms: u64,
    /// Adaptive: a hand-out to a prover on probation keeps its job from a
    /// trusted prover at most this long, whatever its expected time: a new
    /// key that claims and heartbeats without proving costs the crowd this
    /// much of a job, not two learnt job times (and learnt times that slow
    /// proofs have stretched lengthen no stranger's hold). An idle trusted
    /// prover then takes a copy; the new key may still win the race.
    /// 0: no such bound, its expected time decides as for any holder (the
    /// rule job stores of format 5 and earlier were written under).
    pub probation_hold_ms: u64,
    /// Per job, at most this many hand-outs to provers on probation are
    /// kept once past their lease (each stays valid for its proof); a newer
    /// one voids the oldest. So a crowd of new keys racing a job that no
    /// trusted prover finishes leaves a bounded trail on it, not one holder
    /// per minimum age for as long as the job stays open. 0: no bound (the
    /// rule of job stores of format 5 and earlier).
    pub max_stale_probation_holders: u32,
    /// A prover with no accepted proof is forgotten once struck, if it
    /// holds nothing more: its strikes would otherwise be kept for good, a
    /// record per throwaway identity, and forgetting costs nothing a new key
    /// would not (it comes back on probation). Provers with accepted proofs
    /// keep their strikes, cooldowns and bans. `false`: kept (the rule of
    /// job stores of format 5 and earlier).
    pub forget_struck_newcomers: bool,
    /// Adaptive: the crowd's typical job time (the median of recent
    /// accepted proofs' holding times) learns only from provers already
    /// trusted when they won (an accepted proof before, no strike), so
    /// throwaway keys that each hold a job to just before its lease and
    /// then prove it cannot stretch every holder's time. Until a trusted
    /// prover's proof is accepted, [`Self::job_time_prior_ms`] stands. A
    /// new key's proof still teaches its own average. `false`: every
    /// accepted proof is learnt (the rule of job stores of format 6 and
    /// earlier).
    pub median_from_trusted_only: bool,
}

/// How a held job becomes eligible for another copy (see `docs/lrp.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservePolicy {
    /// Re-serve a job once its holder is overdue for its own expected time,
    /// learnt from accepted proofs; in the tail, a bounded backup copy goes
    /// to a prover expected to finish sooner than the holder (LATE).
    #[default]
    Adaptive,
    /// The paper's LRP: re-serve the least recently handed-out job once its
    /// latest hand-out is [`LrpConfig::min_reserve_age_ms`] old.
    Lrp,
}

impl std::str::FromStr for ReservePolicy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "adaptive" => Ok(Self::Adaptive),
            "lrp" => Ok(Self::Lrp),
            other => Err(format!(
                "unknown scheduling policy `{other}` (expected `adaptive` or `lrp`)"
            )),
        }
    }
}

impl Default for LrpConfig {
    fn default() -> Self {
        Self {
            min_reserve_age_ms: 30_000,
            lease_ms: 300_000,
            max_live_holders: 3,
            max_held_per_prover: 2,
            strike_cooldown_ms: 60_000,
            max_strikes: 3,
            max_reserve_scan: 64,
            idle_retry_ms: 5_000,
            first_request_id: 1,
            policy: ReservePolicy::Adaptive,
            job_time_prior_ms: 60_000,
            overdue_percent: 200,
            backup_percent: 3,
            heartbeat_silence_ms: 30_000,
            probation_lag_ms: 2_000,
            probation_hold_ms: 30_000,
            max_stale_probation_holders: 8,
            forget_struck_newcomers: true,
            median_from_trusted_only: true,
        }
    }
}

/// [`LrpConfig`] as job stores of format 5 and earlier pinned it, before
/// [`LrpConfig::probation_hold_ms`] and
/// [`LrpConfig::max_stale_probation_holders`]: decode such bytes as this and
/// convert. The conversion turns both off, the rule those logs were written
/// under, so they replay to the decisions their provers were told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LrpConfigV5 {
    // The fields are format 5's encoding, in order: never change them.
    /// [`LrpConfig::min_reserve_age_ms`].
    pub min_reserve_age_ms: u64,
    /// [`LrpConfig::lease_ms`].
    pub lease_ms: u64,
    /// [`LrpConfig::max_live_holders`].
    pub max_live_holders: u32,
    /// [`LrpConfig::max_held_per_prover`].
    pub max_held_per_prover: u32,
    /// [`LrpConfig::strike_cooldown_ms`].
    pub strike_cooldown_ms: u64,
    /// [`LrpConfig::max_strikes`].
    pub max_strikes: u32,
    /// [`LrpConfig::max_reserve_scan`].
    pub max_reserve_scan: u32,
    /// [`LrpConfig::idle_retry_ms`].
    pub idle_retry_ms: u64,
    /// [`LrpConfig::first_request_id`].
    pub first_request_id: u64,
    /// [`LrpConfig::policy`].
    pub policy: ReservePolicy,
    /// [`LrpConfig::job_time_prior_ms`].
    pub job_time_prior_ms: u64,
    /// [`LrpConfig::overdue_percent`].
    pub overdue_percent: u32,
    /// [`LrpConfig::backup_percent`].
    pub backup_percent: u32,
    /// [`LrpConfig::heartbeat_silence_ms`].
    pub heartbeat_silence_ms: u64,
    /// [`LrpConfig::probation_lag_ms`].
    pub probation_lag_ms: u64,
}

impl From<LrpConfigV5> for LrpConfig {
    fn from(c: LrpConfigV5) -> Self {
        LrpConfigV6::from(c).into()
    }
}

/// [`LrpConfig`] as job stores of format 6 pinned it, before
/// [`LrpConfig::median_from_trusted_only`]: decode such bytes as this and
/// convert. The conversion turns it off, the rule those logs were written
/// under, so they replay to the decisions their provers were told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LrpConfigV6 {
    // The fields are format 6's encoding, in order: never change them.
    /// [`LrpConfig::min_reserve_age_ms`].
    pub min_reserve_age_ms: u64,
    /// [`LrpConfig::lease_ms`].
    pub lease_ms: u64,
    /// [`LrpConfig::max_live_holders`].
    pub max_live_holders: u32,
    /// [`LrpConfig::max_held_per_prover`].
    pub max_held_per_prover: u32,
    /// [`LrpConfig::strike_cooldown_ms`].
    pub strike_cooldown_ms: u64,
    /// [`LrpConfig::max_strikes`].
    pub max_strikes: u32,
    /// [`LrpConfig::max_reserve_scan`].
    pub max_reserve_scan: u32,
    /// [`LrpConfig::idle_retry_ms`].
    pub idle_retry_ms: u64,
    /// [`LrpConfig::first_request_id`].
    pub first_request_id: u64,
    /// [`LrpConfig::policy`].
    pub policy: ReservePolicy,
    /// [`LrpConfig::job_time_prior_ms`].
    pub job_time_prior_ms: u64,
    /// [`LrpConfig::overdue_percent`].
    pub overdue_percent: u32,
    /// [`LrpConfig::backup_percent`].
    pub backup_percent: u32,
    /// [`LrpConfig::heartbeat_silence_ms`].
    pub heartbeat_silence_ms: u64,
    /// [`LrpConfig::probation_lag_ms`].
    pub probation_lag_ms: u64,
    /// [`LrpConfig::probation_hold_ms`].
    pub probation_hold_ms: u64,
    /// [`LrpConfig::max_stale_probation_holders`].
    pub max_stale_probation_holders: u32,
    /// [`LrpConfig::forget_struck_newcomers`].
    pub forget_struck_newcomers: bool,
}

impl From<LrpConfigV6> for LrpConfig {
    fn from(c: LrpConfigV6) -> Self {
        Self {
            min_reserve_age_ms: c.min_reserve_age_ms,
            lease_ms: c.lease_ms,
            max_live_holders: c.max_live_holders,
            max_held_per_prover: c.max_held_per_prover,
            strike_cooldown_ms: c.strike_cooldown_ms,
            max_strikes: c.max_strikes,
            max_reserve_scan: c.max_reserve_scan,
            idle_retry_ms: c.idle_retry_ms,
            first_request_id: c.first_request_id,
            policy: c.policy,
            job_time_prior_ms: c.job_time_prior_ms,
            overdue_percent: c.overdue_percent,
            backup_percent: c.backup_percent,
            heartbeat_silence_ms: c.heartbeat_silence_ms,
            probation_lag_ms: c.probation_lag_ms,
            probation_hold_ms: c.probation_hold_ms,
            max_stale_probation_holders: c.max_stale_probation_holders,
            forget_struck_newcomers: c.forget_struck_newcomers,
            median_from_trusted_only: false,
        }
    }
}

impl From<LrpConfigV5> for LrpConfigV6 {
    fn from(c: LrpConfigV5) -> Self {
        Self {
            min_reserve_age_ms: c.min_reserve_age_ms,
            lease_ms: c.lease_ms,
            max_live_holders: c.max_live_holders,
            max_held_per_prover: c.max_held_per_prover,
            strike_cooldown_ms: c.strike_cooldown_ms,
            max_strikes: c.max_strikes,
            max_reserve_scan: c.max_reserve_scan,
            idle_retry_ms: c.idle_retry_ms,
            first_request_id: c.first_request_id,
            policy: c.policy,
            job_time_prior_ms: c.job_time_prior_ms,
            overdue_percent: c.overdue_percent,
            backup_percent: c.backup_percent,
            heartbeat_silence_ms: c.heartbeat_silence_ms,
            probation_lag_ms: c.probation_lag_ms,
            probation_hold_ms: 0,
            max_stale_probation_holders: 0,
            forget_struck_newcomers: false,
        }
    }
}

impl LrpConfig {
    /// Checks that every knob lets the rule make progress.
    pub fn validate(&self) -> Result<()> {
        let positive: [(&'static str, u64); 7] = [
            ("lease_ms", self.lease_ms),
            ("max_live_holders", self.max_live_holders.into()),
            ("max_held_per_prover", self.max_held_per_prover.into()),
            ("max_strikes", self.max_strikes.into()),
            ("max_reserve_scan", self.max_reserve_scan.into()),
            ("first_request_id", self.first_request_id),
            ("job_time_prior_ms", self.job_time_prior_ms),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(LrpError::InvalidConfig {
                    field,
                    reason: "must be at least 1",
                });
            }
        }
        if self.overdue_percent < 100 {
            return Err(LrpError::InvalidConfig {
                field: "overdue_percent",
                reason: "must be at least 100 (a holder is never overdue before its expected time)",
            });
        }
        Ok(())
    }
}
