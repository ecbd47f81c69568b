//! The adaptive rule: learnt job times, overdue holders, tail backups,
//! heartbeats and silence, and trusted provers first.

use super::*;
use crate::codec;

/// Knobs for the adaptive rule's tests: a 10 s prior, overdue at 2×,
/// no minimum age, no backups and no heartbeat rule unless a test
/// allows them.
fn adaptive() -> LrpConfig {
    LrpConfig {
        policy: ReservePolicy::Adaptive,
        job_time_prior_ms: 10_000,
        overdue_percent: 200,
        backup_percent: 0,
        heartbeat_silence_ms: 0,
        idle_retry_ms: 60_000,
        ..open()
    }
}

/// Each prover takes a job at 0 and proves it in its time (listed in
/// increasing time: the clock never runs back).
fn learn_times(lrp: &mut Lrp, times: &[(PublicKey, u64)]) {
    let held: Vec<_> = times
        .iter()
        .map(|&(q, _)| assigned(lrp.request(q, t(0))))
        .collect();
    for (&(q, took), h) in times.iter().zip(held) {
        assert!(matches!(
            lrp.complete(h.job, h.request, q, t(took)),
            Completion::Accepted { .. }
        ));
    }
}

#[test]
fn adaptive_reserves_a_job_only_once_its_holder_is_overdue() {
    let mut lrp = lrp_with(adaptive(), 2);
    let a = assigned(lrp.request(p(1), t(0)));
    let b = assigned(lrp.request(p(2), t(0)));
    // Before any proof, the prior: overdue at 2 × 10 s.
    assert_eq!(
        lrp.request(p(3), t(3_000)),
        Decision::NoWork {
            retry_at: t(20_000)
        }
    );
    // p(2) proves in 4 s: the crowd's typical time is now 4 s, so p(1),
    // with no history of its own, is overdue at 8 s.
    assert!(matches!(
        lrp.complete(b.job, b.request, p(2), t(4_000)),
        Completion::Accepted { .. }
    ));
    assert_eq!(
        lrp.request(p(3), t(7_999)),
        Decision::NoWork { retry_at: t(8_000) }
    );
    let again = assigned(lrp.request(p(3), t(8_000)));
    assert_eq!((again.job, again.reserve), (a.job, true));
}

#[test]
fn adaptive_gives_a_slow_holder_its_own_time_and_a_fast_one_the_crowds() {
    let mut lrp = lrp_with(adaptive(), 5);
    // p(2) proves in 2 s, p(3) in 4 s, p(1) in 20 s: the crowd's median
    // is 4 s.
    learn_times(&mut lrp, &[(p(2), 2_000), (p(3), 4_000), (p(1), 20_000)]);
    let slow = assigned(lrp.request(p(1), t(20_000)));
    let fast = assigned(lrp.request(p(2), t(20_000)));
    // The fast holder is judged by the crowd's 4 s (its own 2 s would
    // race it as soon as it queues work): overdue at 28 s. The slow one
    // by its own 20 s: overdue at 60 s, though handed out first.
    assert_eq!(
        lrp.request(p(4), t(27_999)),
        Decision::NoWork {
            retry_at: t(28_000)
        }
    );
    assert_eq!(assigned(lrp.request(p(4), t(28_000))).job, fast.job);
    // (The fast job's new holder, p(4), with no history, is due at 36 s.)
    assert_eq!(
        lrp.request(p(5), t(30_000)),
        Decision::NoWork {
            retry_at: t(36_000)
        }
    );
    assert_eq!(assigned(lrp.request(p(5), t(60_000))).job, slow.job);
}

#[test]
fn adaptive_backs_up_the_longest_job_left_to_a_faster_prover_within_budget() {
    let config = LrpConfig {
        backup_percent: 50,
        ..adaptive()
    };
    let mut lrp = lrp_with(config, 4);
    // p(1) takes 20 s a job, p(2) 2 s.
    learn_times(&mut lrp, &[(p(2), 2_000), (p(1), 20_000)]);
    let slow = assigned(lrp.request(p(1), t(20_000)));
    let fast = assigned(lrp.request(p(2), t(20_000)));
    lrp.complete(fast.job, fast.request, p(2), t(22_000));
    // The slow holder has 18 s left: the fast prover (2 s) gets a backup
    // copy at once, though the holder is not overdue.
    let backup = assigned(lrp.request(p(2), t(22_000)));
    assert_eq!((backup.job, backup.reserve), (slow.job, true));
    // A prover as slow as the holder would not beat it: no backup.
    let mut lrp = lrp_with(
        LrpConfig {
            backup_percent: 50,
            ..adaptive()
        },
        2,
    );
    learn_times(&mut lrp, &[(p(1), 20_000), (p(3), 20_000)]);
    lrp.submit([j(2, 0)]);
    let _held = assigned(lrp.request(p(1), t(20_000)));
    let asked = lrp.request(p(3), t(21_000));
    assert!(matches!(asked, Decision::NoWork { .. }), "{asked:?}");
}

#[test]
fn backups_stay_within_their_share_of_hand_outs() {
    let config = LrpConfig {
        backup_percent: 10,
        ..adaptive()
    };
    let mut lrp = lrp_with(config, 40);
    // One fast prover (1 s a job) and seven slow ones (20 s) that then
    // hold the other 32 jobs: 40 first hand-outs allow 4 backups.
    let slow = || (2..9u8).map(p);
    let fast = assigned(lrp.request(p(1), t(0)));
    let first: Vec<_> = slow()
        .map(|q| (q, assigned(lrp.request(q, t(0)))))
        .collect();
    lrp.complete(fast.job, fast.request, p(1), t(1_000));
    for (q, h) in first {
        lrp.complete(h.job, h.request, q, t(20_000));
    }
    for i in 0..32u8 {
        let _ = assigned(lrp.request(p(2 + i % 7), t(20_000)));
    }
    let mut backups = 0;
    for s in 0..20u64 {
        match lrp.request(p(1), t(20_000 + s)) {
            Decision::Assign(h) => {
                assert!(h.reserve);
                backups += 1;
            }
            Decision::NoWork { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(backups, 4);
}

#[test]
fn learnt_job_times_survive_a_snapshot_and_a_format_3_snapshot_still_restores() {
    let mut lrp = lrp_with(adaptive(), 3);
    let h = assigned(lrp.request(p(1), t(0)));
    lrp.complete(h.job, h.request, p(1), t(3_000));
    let held = assigned(lrp.request(p(2), t(3_000)));
    let snap = lrp.snapshot();
    let mut restored = Lrp::restore(adaptive(), &snap).unwrap();
    assert_eq!(restored.snapshot(), snap);
    // Overdue at 2 × 3 s after its hand-out, in both.
    let probe = |l: &mut Lrp| l.clone().request(p(3), t(4_000));
    assert_eq!(probe(&mut lrp), probe(&mut restored));
    let third = assigned(lrp.request(p(3), t(4_000)));
    assert!(!third.reserve);
    assert_eq!(assigned(lrp.request(p(4), t(9_000))).job, held.job);

    // The bytes a format-3 store holds decode as the old layout and
    // restore with no job times learnt.
    let old = LrpSnapshotV3 {
        clock: snap.clock,
        next_request: snap.next_request,
        fresh: snap.fresh.clone(),
        queue: snap.queue.clone(),
        provers: snap.provers.clone(),
        batches: snap.batches.clone(),
        pending: snap.pending,
        done: snap.done,
    };
    let bytes = codec::encode(&old);
    let decoded: LrpSnapshotV3 = codec::decode(&bytes, bytes.len()).unwrap();
    let migrated = LrpSnapshot::from(decoded);
    assert!(migrated.job_times.is_empty() && migrated.recent.is_empty());
    let restored = Lrp::restore(adaptive(), &migrated).unwrap();
    assert_eq!(restored.snapshot(), migrated);
}

fn heartbeat(lrp: &mut Lrp, h: Handout, prover: PublicKey, ms: u64) -> HeartbeatOutcome {
    match lrp.apply(&LrpEvent::Heartbeat {
        job: h.job,
        request: h.request,
        prover,
        now: t(ms),
    }) {
        LrpOutcome::Heard(outcome) => outcome,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_silent_holder_is_overdue_however_long_its_job_should_take() {
    let config = LrpConfig {
        job_time_prior_ms: 600_000,
        heartbeat_silence_ms: 30_000,
        ..adaptive()
    };
    let mut lrp = lrp_with(config.clone(), 2);
    let talks = assigned(lrp.request(p(1), t(0)));
    let quiet = assigned(lrp.request(p(2), t(0)));
    assert_eq!(
        heartbeat(&mut lrp, talks, p(1), 10_000),
        HeartbeatOutcome::Noted
    );
    assert_eq!(
        heartbeat(&mut lrp, talks, p(1), 14_000),
        HeartbeatOutcome::TooSoon
    );
    assert_eq!(
        heartbeat(&mut lrp, talks, p(1), 20_000),
        HeartbeatOutcome::Noted
    );
    // The quiet hand-out is silent 30 s after it was made; the one that
    // talks, 30 s after its last heartbeat.
    let first = assigned(lrp.request(p(3), t(30_000)));
    assert_eq!(first.job, quiet.job);
    assert_eq!(
        lrp.request(p(4), t(45_000)),
        Decision::NoWork {
            retry_at: t(50_000)
        }
    );
    assert_eq!(assigned(lrp.request(p(4), t(50_000))).job, talks.job);

    // Heartbeats for what is not a live hand-out of the sender.
    assert_eq!(
        heartbeat(&mut lrp, talks, p(2), 51_000),
        HeartbeatOutcome::WrongProver
    );
    let forged = Handout {
        request: RequestId(999),
        ..talks
    };
    assert_eq!(
        heartbeat(&mut lrp, forged, p(1), 51_000),
        HeartbeatOutcome::Unknown
    );
    lrp.complete(first.job, first.request, p(3), t(52_000));
    assert_eq!(
        heartbeat(&mut lrp, quiet, p(2), 53_000),
        HeartbeatOutcome::AlreadyDone
    );

    // The paper's rule ignores heartbeats.
    let mut lrp = lrp_with(
        LrpConfig {
            policy: ReservePolicy::Lrp,
            min_reserve_age_ms: 100_000,
            ..config
        },
        1,
    );
    let _ = assigned(lrp.request(p(1), t(0)));
    assert!(matches!(
        lrp.request(p(2), t(60_000)),
        Decision::NoWork { .. }
    ));
}

#[test]
fn a_restart_does_not_count_its_own_downtime_as_silence() {
    let config = LrpConfig {
        job_time_prior_ms: 600_000,
        heartbeat_silence_ms: 30_000,
        ..adaptive()
    };
    let mut lrp = lrp_with(config, 1);
    let h = assigned(lrp.request(p(1), t(0)));
    heartbeat(&mut lrp, h, p(1), 10_000);
    // Down from 10 s to 100 s: no heartbeat could arrive.
    assert_eq!(
        lrp.apply(&LrpEvent::Resume { now: t(100_000) }),
        LrpOutcome::Resumed
    );
    assert_eq!(
        lrp.request(p(2), t(110_000)),
        Decision::NoWork {
            retry_at: t(130_000)
        }
    );
    heartbeat(&mut lrp, h, p(1), 120_000);
    assert_eq!(
        lrp.request(p(2), t(140_000)),
        Decision::NoWork {
            retry_at: t(150_000)
        }
    );
    // Heartbeats and the resume survive a snapshot.
    let restored = Lrp::restore(lrp.config().clone(), &lrp.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), lrp.snapshot());
    assert_eq!(assigned(lrp.request(p(2), t(150_000))).job, h.job);
}

#[test]
fn adaptive_serves_trusted_provers_first_and_judges_a_new_keys_copy_like_any() {
    let config = LrpConfig {
        job_time_prior_ms: 600_000,
        heartbeat_silence_ms: 10_000,
        probation_lag_ms: 5_000,
        ..adaptive()
    };
    let mut lrp = lrp_with(config, 1);
    let first = assigned(lrp.request(p(1), t(0)));
    // Silent at 10 s: a trusted prover could have it now, a new key
    // (p(20)) only a minimum age later.
    assert_eq!(
        lrp.request(p(20), t(10_000)),
        Decision::NoWork {
            retry_at: t(15_000)
        }
    );
    let copy = assigned(lrp.request(p(20), t(15_000)));
    assert_eq!((copy.job, copy.reserve), (first.job, true));
    // The new key's copy talks: nobody races it until it falls silent.
    assert_eq!(
        heartbeat(&mut lrp, copy, p(20), 20_000),
        HeartbeatOutcome::Noted
    );
    assert_eq!(
        lrp.request(p(2), t(26_000)),
        Decision::NoWork {
            retry_at: t(30_000)
        }
    );
    assert_eq!(assigned(lrp.request(p(2), t(30_000))).job, first.job);
}

#[test]
fn a_new_key_that_heartbeats_without_proving_holds_a_job_from_a_trusted_prover_briefly() {
    let config = LrpConfig {
        job_time_prior_ms: 100_000,
        heartbeat_silence_ms: 30_000,
        min_reserve_age_ms: 5_000,
        ..adaptive()
    };
    // Bounded: the trusted p(1) takes it after the hold. Unbounded (the
    // format-5 rule): after two expected job times.
    for (hold, taken_at) in [(20_000, 20_000), (0, 200_000)] {
        let config = LrpConfig {
            probation_hold_ms: hold,
            ..config.clone()
        };
        let mut lrp = lrp_with(config.clone(), 1);
        let sat = assigned(lrp.request(p(20), t(0)));
        let mut now = 0;
        let taken = loop {
            assert!(now <= taken_at, "hold {hold}: still held at {now} ms");
            if now % 10_000 == 0 {
                heartbeat(&mut lrp, sat, p(20), now);
            }
            if let Decision::Assign(h) = lrp.request(p(1), t(now)) {
                break (h.job, now);
            }
            now += 1_000;
        };
        assert_eq!(taken, (sat.job, taken_at));

        // Another new key is held off as before: the bound is for trusted
        // provers only.
        let mut lrp = lrp_with(config, 1);
        let sat = assigned(lrp.request(p(20), t(0)));
        for now in (0..=taken_at).step_by(10_000) {
            heartbeat(&mut lrp, sat, p(20), now);
            assert!(
                matches!(lrp.request(p(21), t(now + 1)), Decision::NoWork { .. }),
                "hold {hold}: a new key took a talking new key's job at {now} ms"
            );
        }
    }
}

/// The crowd's typical job time at `now`, as a decision shows it: on a
/// copy of `lrp`, a trusted prover with no history of its own (judged by
/// the crowd's time) takes every job not yet handed out, and another is
/// told to come back when they are overdue, at twice that time (under
/// [`adaptive`]'s idle retry of 60 s). Nothing else may be held at `now`.
fn crowd_ms(lrp: &Lrp, now: u64) -> u64 {
    let mut probe = lrp.clone();
    let (holder, asker) = (p(7), p(8));
    probe.vouch(holder, 1_000);
    probe.vouch(asker, 1_000);
    probe.submit([j(99, 0)]);
    while assigned(probe.request(holder, t(now))).job != j(99, 0) {}
    match probe.request(asker, t(now)) {
        Decision::NoWork { retry_at } => retry_at.millis_since(t(now)) / 2,
        other => panic!("the probe's job was not held: {other:?}"),
    }
}

/// A crowd of new keys that each hold a job to just before its lease and
/// then prove it teach the crowd's typical time nothing: every holder
/// would otherwise be re-served that much later. (Under the rule of job
/// stores of format 6, `median_from_trusted_only = false`, they did.)
#[test]
fn slow_proofs_from_new_keys_leave_the_crowds_typical_time_unchanged() {
    for trusted_only in [true, false] {
        let config = LrpConfig {
            median_from_trusted_only: trusted_only,
            ..adaptive()
        };
        let mut lrp = lrp_with(config, 6);
        learn_times(&mut lrp, &[(p(2), 4_000)]);
        assert_eq!(crowd_ms(&lrp, 4_000), 4_000);
        // Five new keys each hold a job 25 s, then prove it: valid, paid.
        let newcomers: Vec<_> = (20..25).map(p).collect();
        let held: Vec<_> = newcomers
            .iter()
            .map(|&q| assigned(lrp.request(q, t(4_000))))
            .collect();
        for (&q, h) in newcomers.iter().zip(held) {
            assert!(matches!(
                lrp.complete(h.job, h.request, q, t(29_000)),
                Completion::Accepted { .. }
            ));
        }
        let learnt = if trusted_only { 4_000 } else { 25_000 };
        assert_eq!(
            crowd_ms(&lrp, 29_000),
            learnt,
            "median_from_trusted_only = {trusted_only}"
        );
    }
}

/// Trusted provers' proofs still move the crowd's time, and on a fresh
/// network, where every key starts on probation, the prior stands only
/// until a prover's first accepted proof has made it trusted: its next
/// proof is learnt.
#[test]
fn a_trusted_provers_proofs_move_the_crowds_typical_time() {
    let mut lrp = Lrp::new(adaptive()).unwrap();
    lrp.submit((0..2).map(|i| j(1, i)));
    let newcomer = p(20);
    let first = assigned(lrp.request(newcomer, t(0)));
    assert!(matches!(
        lrp.complete(first.job, first.request, newcomer, t(4_000)),
        Completion::Accepted { .. }
    ));
    // Its first win made it trusted; it taught only its own average.
    assert_eq!(crowd_ms(&lrp, 4_000), 10_000, "the prior");
    let second = assigned(lrp.request(newcomer, t(4_000)));
    assert!(matches!(
        lrp.complete(second.job, second.request, newcomer, t(10_000)),
        Completion::Accepted { .. }
    ));
    assert_eq!(crowd_ms(&lrp, 10_000), 6_000);
}
