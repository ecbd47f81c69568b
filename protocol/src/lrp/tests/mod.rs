//! The scheduler's unit tests, by the rule they check; the helpers here
//! set up a scheduler so that each test sees only its own rule.

mod adaptive;
mod bookkeeping;
mod lrp_rule;
mod probation;
mod slow_provers;
mod verdicts;

use super::*;

fn p(n: u8) -> PublicKey {
    PublicKey([n; 32])
}

fn j(batch: u64, index: u32) -> JobId {
    JobId::new(BatchId(batch), index)
}

fn t(ms: u64) -> Timestamp {
    Timestamp(ms)
}

/// Knobs that make each test's rule visible: no min age, generous caps.
fn open() -> LrpConfig {
    LrpConfig {
        min_reserve_age_ms: 0,
        lease_ms: 1_000_000,
        max_live_holders: 100,
        max_held_per_prover: 100,
        strike_cooldown_ms: 100,
        max_strikes: 3,
        max_reserve_scan: 64,
        idle_retry_ms: 500,
        first_request_id: 1,
        policy: ReservePolicy::Lrp,
        ..LrpConfig::default()
    }
}

/// Provers `p(1)` to `p(TRUSTED)` start past probation in [`lrp_with`];
/// higher numbers are new identities.
const TRUSTED: u8 = 9;

/// A scheduler with `jobs` fresh jobs of batch 1 and provers up to
/// [`TRUSTED`] past probation, so each test sees only its own rule.
fn lrp_with(config: LrpConfig, jobs: u32) -> Lrp {
    let mut lrp = Lrp::new(config).unwrap();
    for n in 1..=TRUSTED {
        lrp.vouch(p(n), 1_000);
    }
    lrp.submit((0..jobs).map(|i| j(1, i)));
    lrp
}

#[track_caller]
fn assigned(d: Decision) -> Handout {
    match d {
        Decision::Assign(h) => h,
        other => panic!("expected a hand-out, got {other:?}"),
    }
}
