use super::*;
use crate::codec;

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

#[test]
fn fresh_jobs_go_first_in_submit_order() {
    let mut lrp = lrp_with(open(), 3);
    let a = assigned(lrp.request(p(1), t(0)));
    let b = assigned(lrp.request(p(1), t(0)));
    let c = assigned(lrp.request(p(2), t(0)));
    assert_eq!(
        [a.job, b.job, c.job],
        [j(1, 0), j(1, 1), j(1, 2)],
        "fresh jobs in submit order"
    );
    assert!(!a.reserve && !b.reserve && !c.reserve);
    assert_eq!(
        [a.request, b.request, c.request],
        [RequestId(1), RequestId(2), RequestId(3)]
    );
    // Re-serves start only once the fresh queue is empty.
    lrp.submit([j(2, 0)]);
    let d = assigned(lrp.request(p(3), t(1)));
    assert_eq!((d.job, d.reserve), (j(2, 0), false));
    let e = assigned(lrp.request(p(3), t(1)));
    assert!(e.reserve);
    assert_eq!(
        lrp.counts(),
        LrpCounts {
            fresh: 0,
            pending: 4,
            done: 0
        }
    );
}

#[test]
fn reserves_go_in_least_recently_handed_out_order_and_move_to_the_tail() {
    let mut lrp = lrp_with(open(), 3);
    for _ in 0..3 {
        assigned(lrp.request(p(1), t(0)));
    }
    // p2 re-serves j0, j1, j2 in order, each moving to the tail.
    let order: Vec<JobId> = (0..3)
        .map(|i| assigned(lrp.request(p(2), t(10 + i))).job)
        .collect();
    assert_eq!(order, [j(1, 0), j(1, 1), j(1, 2)]);
    // p3 again sees j0 first: it was handed out least recently (to p2 at 10).
    let next = assigned(lrp.request(p(3), t(20)));
    assert_eq!((next.job, next.reserve), (j(1, 0), true));
    // ...and it is now at the tail, so p4 gets j1.
    assert_eq!(assigned(lrp.request(p(4), t(21))).job, j(1, 1));
    match lrp.job(j(1, 0)) {
        Some(JobView::Pending { holders }) => {
            let who: Vec<PublicKey> = holders.iter().map(|h| h.prover).collect();
            assert_eq!(who, [p(1), p(2), p(3)]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_prover_never_gets_a_job_it_holds() {
    let mut lrp = lrp_with(open(), 3);
    assigned(lrp.request(p(1), t(0))); // j0
    assigned(lrp.request(p(1), t(0))); // j1
    assigned(lrp.request(p(2), t(0))); // j2
    // The queue is j0, j1, j2; p1 holds the first two, so it gets j2.
    let h = assigned(lrp.request(p(1), t(5)));
    assert_eq!((h.job, h.reserve), (j(1, 2), true));
    // Now p1 holds every job: nothing can go to it.
    assert_eq!(
        lrp.request(p(1), t(6)),
        Decision::NoWork { retry_at: t(506) }
    );
    // p2 holds only j2, so it takes the head.
    assert_eq!(assigned(lrp.request(p(2), t(7))).job, j(1, 0));
}

#[test]
fn min_age_holds_back_reserves_and_says_when_to_retry() {
    let config = LrpConfig {
        min_reserve_age_ms: 100,
        idle_retry_ms: 1_000,
        ..open()
    };
    let mut lrp = lrp_with(config, 2);
    assigned(lrp.request(p(1), t(0)));
    assigned(lrp.request(p(1), t(40)));
    assert_eq!(
        lrp.request(p(2), t(99)),
        Decision::NoWork { retry_at: t(100) }
    );
    let h = assigned(lrp.request(p(2), t(100)));
    assert_eq!((h.job, h.reserve), (j(1, 0), true));
    // j1 (handed out at 40) is ready at 140; j0 was just handed out again.
    assert_eq!(
        lrp.request(p(3), t(139)),
        Decision::NoWork { retry_at: t(140) }
    );
    assert_eq!(assigned(lrp.request(p(3), t(140))).job, j(1, 1));
    // A ready time further off than the idle retry is capped by it.
    let mut lrp = lrp_with(
        LrpConfig {
            min_reserve_age_ms: 10_000,
            idle_retry_ms: 1_000,
            ..open()
        },
        1,
    );
    assigned(lrp.request(p(1), t(0)));
    assert_eq!(
        lrp.request(p(2), t(5)),
        Decision::NoWork { retry_at: t(1_005) }
    );
}

#[test]
fn holder_cap_skips_full_jobs() {
    let config = LrpConfig {
        max_live_holders: 2,
        ..open()
    };
    let mut lrp = lrp_with(config, 2);
    assigned(lrp.request(p(1), t(0))); // j0 ← p1
    assigned(lrp.request(p(1), t(0))); // j1 ← p1
    assert_eq!(assigned(lrp.request(p(2), t(1))).job, j(1, 0)); // j0 full
    assert_eq!(assigned(lrp.request(p(3), t(2))).job, j(1, 1)); // j1 full
    assert_eq!(
        lrp.request(p(4), t(3)),
        Decision::NoWork { retry_at: t(503) }
    );
    // Releasing a holder frees a place on the job.
    assert_eq!(
        lrp.release(j(1, 0), RequestId(3), p(2), t(4)),
        ReleaseOutcome::Released { orphaned: false }
    );
    assert_eq!(assigned(lrp.request(p(4), t(5))).job, j(1, 0));
}

#[test]
fn expired_holders_stop_counting_toward_the_cap_but_may_still_complete() {
    let config = LrpConfig {
        max_live_holders: 1,
        lease_ms: 1_000,
        ..open()
    };
    let mut lrp = lrp_with(config, 1);
    let first = assigned(lrp.request(p(1), t(0)));
    assert_eq!(
        lrp.request(p(2), t(999)),
        Decision::NoWork { retry_at: t(1_499) }
    );
    let second = assigned(lrp.request(p(2), t(1_000)));
    assert!(second.reserve);
    // The stalled holder's id stays valid: a slow but honest proof wins.
    assert_eq!(
        lrp.complete(first.job, first.request, p(1), t(1_500)),
        Completion::Accepted {
            superseded: 1,
            batch_finished: true
        }
    );
    assert_eq!(
        lrp.complete(second.job, second.request, p(2), t(1_600)),
        Completion::Late
    );
}

#[test]
fn per_prover_cap_counts_live_holdings_only() {
    let config = LrpConfig {
        max_held_per_prover: 2,
        lease_ms: 1_000,
        ..open()
    };
    let mut lrp = lrp_with(config, 5);
    assigned(lrp.request(p(1), t(0)));
    assigned(lrp.request(p(1), t(300)));
    assert_eq!(
        lrp.request(p(1), t(400)),
        Decision::Refused(Refusal::AtCapacity {
            held: 2,
            retry_at: t(1_000)
        })
    );
    // Once the oldest hand-out's lease runs out, a crashed-and-restarted
    // prover is not locked out by its stale holdings.
    let h = assigned(lrp.request(p(1), t(1_000)));
    assert_eq!(h.job, j(1, 2));
    assert_eq!(lrp.prover(&p(1)).unwrap().holdings.len(), 3);
    // Completing frees a slot at once.
    assert!(matches!(
        lrp.complete(h.job, h.request, p(1), t(1_001)),
        Completion::Accepted { .. }
    ));
    assert!(matches!(lrp.request(p(1), t(1_002)), Decision::Assign(_)));
}

#[test]
fn a_new_identity_holds_one_job_until_a_proof_is_accepted() {
    let config = LrpConfig {
        max_held_per_prover: 3,
        lease_ms: 1_000,
        ..open()
    };
    let mut lrp = lrp_with(config, 6);
    let newcomer = p(20);
    let first = assigned(lrp.request(newcomer, t(0)));
    assert_eq!(
        lrp.request(newcomer, t(10)),
        Decision::Refused(Refusal::AtCapacity {
            held: 1,
            retry_at: t(1_000)
        })
    );
    assert!(matches!(
        lrp.complete(first.job, first.request, newcomer, t(20)),
        Completion::Accepted { .. }
    ));
    // One accepted proof: two at a time; the cap still binds above that.
    assigned(lrp.request(newcomer, t(30)));
    assigned(lrp.request(newcomer, t(30)));
    assert!(matches!(
        lrp.request(newcomer, t(30)),
        Decision::Refused(Refusal::AtCapacity { held: 2, .. })
    ));
    let view = lrp.prover(&newcomer).unwrap();
    assert_eq!((view.proven, view.holdings.len()), (1, 2));
}

#[test]
fn claiming_and_sitting_costs_the_allowance_until_the_job_is_done() {
    let config = LrpConfig {
        lease_ms: 1_000,
        ..open()
    };
    let mut lrp = lrp_with(config, 2);
    let sitter = p(20);
    let sat = assigned(lrp.request(sitter, t(0)));
    // Its lease ran out and the job is still open: no more work for it,
    // though nothing it holds is live.
    assert_eq!(
        lrp.request(sitter, t(1_000)),
        Decision::Refused(Refusal::AtCapacity {
            held: 0,
            retry_at: t(1_500)
        })
    );
    // Someone else proves the job; the sitter is back to a newcomer's one.
    let taken = assigned(lrp.request(p(1), t(1_100)));
    assert_eq!(taken.job, j(1, 1), "the fresh job goes first");
    let reserve = assigned(lrp.request(p(1), t(1_100)));
    assert_eq!(reserve.job, sat.job);
    lrp.complete(reserve.job, reserve.request, p(1), t(1_200));
    assigned(lrp.request(sitter, t(1_300)));
    assert!(matches!(
        lrp.request(sitter, t(1_300)),
        Decision::Refused(Refusal::AtCapacity { held: 1, .. })
    ));
    // A strike costs a trusted prover its standing too.
    let config = LrpConfig {
        max_held_per_prover: 2,
        ..open()
    };
    let mut lrp = lrp_with(config, 4);
    lrp.vouch(p(30), 1);
    let h = assigned(lrp.request(p(30), t(0)));
    lrp.invalid(h.job, h.request, p(30), t(1));
    assigned(lrp.request(p(30), t(1_000)));
    assert!(matches!(
        lrp.request(p(30), t(1_000)),
        Decision::Refused(Refusal::AtCapacity { held: 1, .. })
    ));
}

#[test]
fn provers_on_probation_never_keep_a_job_from_a_trusted_reserve() {
    let config = LrpConfig {
        max_live_holders: 1,
        min_reserve_age_ms: 100,
        ..open()
    };
    let mut lrp = lrp_with(config, 1);
    // A new key takes the fresh job; once it is old enough a second new
    // key races it, but a third must wait the minimum age again.
    assigned(lrp.request(p(20), t(0)));
    assert!(matches!(lrp.request(p(21), t(50)), Decision::NoWork { .. }));
    assert!(assigned(lrp.request(p(21), t(100))).reserve);
    assert!(matches!(
        lrp.request(p(22), t(150)),
        Decision::NoWork { .. }
    ));
    // Neither moved the job in the queue nor counts toward the holder
    // cap: a trusted prover gets it at once, and then the cap binds.
    assert!(assigned(lrp.request(p(1), t(150))).reserve);
    assert!(matches!(lrp.request(p(2), t(160)), Decision::NoWork { .. }));
    // A job with its trusted holders is covered, for new keys too.
    assert!(matches!(
        lrp.request(p(22), t(250)),
        Decision::NoWork { .. }
    ));
    match lrp.job(j(1, 0)) {
        Some(JobView::Pending { holders }) => assert_eq!(holders.len(), 3),
        other => panic!("{other:?}"),
    }
}

/// Many new keys poll fast and never submit; one honest prover takes
/// 500 ms a proof. With a trusted prover the batch finishes in a time set
/// by the prover and the minimum re-serve age, not by the size of the
/// crowd; a new honest key gets in once the sitters hold their one job
/// each.
#[test]
fn a_crowd_of_sitters_cannot_stall_a_batch() {
    for (sitters, honest, within) in [
        (24u32, p(1), 5_000),
        (2_000, p(1), 5_000),
        (24, p(40), 10_000),
    ] {
        let config = LrpConfig {
            min_reserve_age_ms: 1_000,
            lease_ms: 10_000,
            max_live_holders: 2,
            max_held_per_prover: 2,
            ..open()
        };
        let mut lrp = lrp_with(config, 8);
        let sitter = |n: u32| {
            let mut key = [0xee; 32];
            key[..4].copy_from_slice(&n.to_le_bytes());
            PublicKey(key)
        };
        let mut proving: Vec<(Handout, Timestamp)> = Vec::new();
        let mut sitter_handouts = 0u32;
        let mut now = 0;
        while !lrp.is_finished(BatchId(1)) {
            assert!(now < within, "{sitters} sitters: not done at {now} ms");
            for n in 0..sitters {
                if matches!(lrp.request(sitter(n), t(now)), Decision::Assign(_)) {
                    sitter_handouts += 1;
                }
            }
            while let Some(i) = proving.iter().position(|(_, at)| now >= at.0 + 500) {
                let (h, _) = proving.remove(i);
                lrp.complete(h.job, h.request, honest, t(now));
            }
            while let Decision::Assign(h) = lrp.request(honest, t(now)) {
                proving.push((h, t(now)));
            }
            now += 50;
        }
        // Sitters race each job at most once per minimum age, however
        // many they are.
        let bound = 8 * (1 + now / 1_000);
        assert!(
            u64::from(sitter_handouts) <= bound,
            "{sitters}: {sitter_handouts} hand-outs to sitters in {now} ms"
        );
        let proofs = lrp.prover(&honest).map_or(0, |v| v.proven);
        assert!(proofs >= 8, "the honest prover proved the batch");
    }
}

#[test]
fn strikes_cool_down_then_ban_and_only_count_for_issued_pairs() {
    let mut lrp = lrp_with(open(), 10);
    let h = assigned(lrp.request(p(1), t(0)));
    // Forged pairs, other provers' pairs and fresh jobs earn no strike.
    assert_eq!(
        lrp.invalid(h.job, RequestId(99), p(1), t(1)),
        StrikeOutcome::Unknown
    );
    assert_eq!(
        lrp.invalid(h.job, h.request, p(2), t(1)),
        StrikeOutcome::WrongProver
    );
    assert_eq!(
        lrp.invalid(j(1, 5), RequestId(1), p(1), t(1)),
        StrikeOutcome::Unknown
    );
    assert_eq!(
        lrp.invalid(j(9, 0), h.request, p(1), t(1)),
        StrikeOutcome::Unknown
    );
    assert_eq!(lrp.strikes(&p(1)), 0);
    assert_eq!(lrp.strikes(&p(2)), 0);

    assert_eq!(
        lrp.invalid(h.job, h.request, p(1), t(10)),
        StrikeOutcome::Struck {
            strikes: 1,
            cooldown_until: t(110),
            banned: false
        }
    );
    // The voided pair cannot strike twice, nor complete.
    assert_eq!(
        lrp.invalid(h.job, h.request, p(1), t(11)),
        StrikeOutcome::Unknown
    );
    assert_eq!(
        lrp.complete(h.job, h.request, p(1), t(11)),
        Completion::Unknown
    );
    assert_eq!(
        lrp.request(p(1), t(109)),
        Decision::Refused(Refusal::Cooldown {
            strikes: 1,
            until: t(110)
        })
    );
    let h = assigned(lrp.request(p(1), t(110)));
    // The cooldown doubles with each strike.
    assert!(matches!(
        lrp.invalid(h.job, h.request, p(1), t(120)),
        StrikeOutcome::Struck { strikes: 2, cooldown_until, banned: false } if cooldown_until == t(320)
    ));
    let h = assigned(lrp.request(p(1), t(320)));
    assert!(matches!(
        lrp.invalid(h.job, h.request, p(1), t(330)),
        StrikeOutcome::Struck {
            strikes: 3,
            banned: true,
            ..
        }
    ));
    assert_eq!(
        lrp.request(p(1), t(1_000_000)),
        Decision::Refused(Refusal::Banned { strikes: 3 })
    );
    // The operator can pardon.
    assert_eq!(lrp.pardon(p(1)), 3);
    assert!(matches!(
        lrp.request(p(1), t(1_000_001)),
        Decision::Assign(_)
    ));
}

#[test]
fn late_invalid_proofs_strike_but_the_winner_does_not() {
    let mut lrp = lrp_with(open(), 1);
    let a = assigned(lrp.request(p(1), t(0)));
    let b = assigned(lrp.request(p(2), t(0)));
    assert!(matches!(
        lrp.complete(a.job, a.request, p(1), t(1)),
        Completion::Accepted { .. }
    ));
    assert_eq!(
        lrp.invalid(a.job, a.request, p(1), t(2)),
        StrikeOutcome::AlreadyAccepted
    );
    assert_eq!(
        lrp.invalid(a.job, a.request, p(2), t(2)),
        StrikeOutcome::WrongProver
    );
    assert_eq!(
        lrp.invalid(b.job, b.request, p(1), t(2)),
        StrikeOutcome::WrongProver
    );
    assert!(matches!(
        lrp.invalid(b.job, b.request, p(2), t(2)),
        StrikeOutcome::Struck { strikes: 1, .. }
    ));
    assert_eq!(
        lrp.invalid(b.job, b.request, p(2), t(3)),
        StrikeOutcome::Unknown
    );
    assert_eq!(lrp.strikes(&p(1)), 0);
}

#[test]
fn struck_holders_do_not_block_the_holder_cap() {
    let config = LrpConfig {
        max_live_holders: 1,
        ..open()
    };
    let mut lrp = lrp_with(config, 2);
    let a = assigned(lrp.request(p(1), t(0))); // j0 ← p1
    let b = assigned(lrp.request(p(1), t(0))); // j1 ← p1
    assert_eq!(
        lrp.request(p(2), t(1)),
        Decision::NoWork { retry_at: t(501) }
    );
    // p1 lies about j1: p1 is struck, so its hold on j0 no longer counts.
    assert!(matches!(
        lrp.invalid(b.job, b.request, p(1), t(2)),
        StrikeOutcome::Struck { .. }
    ));
    // j1 is orphaned and goes first; then j0 is open despite p1's hold.
    assert_eq!(assigned(lrp.request(p(2), t(3))).job, j(1, 1));
    assert_eq!(assigned(lrp.request(p(3), t(3))).job, a.job);
}

#[test]
fn completion_verdicts_tell_late_from_unknown_and_wrong_prover() {
    let mut lrp = lrp_with(open(), 2);
    let a = assigned(lrp.request(p(1), t(0)));
    let b = assigned(lrp.request(p(2), t(0)));
    let c = assigned(lrp.request(p(3), t(0))); // re-serve of j0
    assert_eq!((a.job, c.job), (j(1, 0), j(1, 0)));
    // Before completion: forged ids, other provers and fresh/unknown jobs.
    assert_eq!(
        lrp.complete(a.job, RequestId(77), p(1), t(1)),
        Completion::Unknown
    );
    assert_eq!(
        lrp.complete(a.job, b.request, p(2), t(1)),
        Completion::Unknown
    );
    assert_eq!(
        lrp.complete(a.job, a.request, p(3), t(1)),
        Completion::WrongProver
    );
    assert_eq!(
        lrp.complete(j(5, 0), a.request, p(1), t(1)),
        Completion::Unknown
    );
    // First valid proof wins and supersedes the other hand-out.
    assert_eq!(
        lrp.complete(c.job, c.request, p(3), t(2)),
        Completion::Accepted {
            superseded: 1,
            batch_finished: false
        }
    );
    assert_eq!(lrp.complete(a.job, a.request, p(1), t(3)), Completion::Late);
    assert_eq!(
        lrp.complete(c.job, c.request, p(3), t(3)),
        Completion::Duplicate
    );
    assert_eq!(
        lrp.complete(c.job, c.request, p(1), t(3)),
        Completion::WrongProver
    );
    assert_eq!(
        lrp.complete(a.job, a.request, p(2), t(3)),
        Completion::WrongProver
    );
    assert_eq!(
        lrp.complete(a.job, RequestId(77), p(1), t(3)),
        Completion::Unknown
    );
    assert!(
        matches!(lrp.job(a.job), Some(JobView::Done { prover, request, .. }) if prover == p(3) && request == c.request)
    );
    // Superseded hand-outs leave their provers' holdings.
    assert!(lrp.prover(&p(1)).unwrap().holdings.is_empty());
    assert!(lrp.prover(&p(3)).unwrap().holdings.is_empty());
    assert_eq!(
        lrp.complete(b.job, b.request, p(2), t(4)),
        Completion::Accepted {
            superseded: 0,
            batch_finished: true
        }
    );
    assert_eq!(
        lrp.counts(),
        LrpCounts {
            fresh: 0,
            pending: 0,
            done: 2
        }
    );
    assert!(lrp.is_all_finished());
}

#[test]
fn release_voids_the_handout_and_an_orphan_goes_after_fresh_but_before_reserves() {
    let mut lrp = lrp_with(open(), 3);
    let a = assigned(lrp.request(p(1), t(0))); // j0
    assigned(lrp.request(p(1), t(1))); // j1
    assert_eq!(
        lrp.release(a.job, a.request, p(2), t(2)),
        ReleaseOutcome::WrongProver
    );
    assert_eq!(
        lrp.release(a.job, RequestId(50), p(1), t(2)),
        ReleaseOutcome::Unknown
    );
    assert_eq!(
        lrp.release(j(1, 2), RequestId(1), p(1), t(2)),
        ReleaseOutcome::Unknown,
        "a fresh job has no hand-outs"
    );
    assert_eq!(
        lrp.release(a.job, a.request, p(1), t(2)),
        ReleaseOutcome::Released { orphaned: true }
    );
    assert_eq!(
        lrp.complete(a.job, a.request, p(1), t(3)),
        Completion::Unknown
    );
    assert!(matches!(lrp.job(a.job), Some(JobView::Pending { holders }) if holders.is_empty()));
    // Fresh j2 still goes first.
    assert_eq!(assigned(lrp.request(p(2), t(4))).job, j(1, 2));
    // Then the orphan j0, even though j1 is older, and with no min age.
    let mut strict = lrp.clone();
    strict.config.min_reserve_age_ms = 1_000_000;
    let h = assigned(strict.request(p(2), t(5)));
    assert_eq!((h.job, h.reserve), (j(1, 0), true));
    assert_eq!(assigned(lrp.request(p(2), t(5))).job, j(1, 0));
    assert_eq!(assigned(lrp.request(p(3), t(6))).job, j(1, 1));
    // Releasing a done job's hand-out says so.
    let h = assigned(lrp.request(p(4), t(7)));
    assert!(matches!(
        lrp.complete(h.job, h.request, p(4), t(8)),
        Completion::Accepted { .. }
    ));
    assert_eq!(
        lrp.release(h.job, h.request, p(4), t(9)),
        ReleaseOutcome::AlreadyDone
    );
}

#[test]
fn releasing_the_latest_handout_moves_the_job_back_to_the_one_before() {
    let mut lrp = lrp_with(open(), 2);
    assigned(lrp.request(p(1), t(0))); // j0 r1
    assigned(lrp.request(p(1), t(1))); // j1 r2
    let late = assigned(lrp.request(p(2), t(2))); // j0 r3 → tail
    assert_eq!(late.job, j(1, 0));
    // Without the release, j1 (r2) is the head; releasing r3 puts j0 back at
    // r1's place, ahead of j1.
    assert_eq!(
        lrp.release(late.job, late.request, p(2), t(3)),
        ReleaseOutcome::Released { orphaned: false }
    );
    assert_eq!(assigned(lrp.request(p(3), t(4))).job, j(1, 0));
}

#[test]
fn request_ids_start_where_configured_and_run_out_without_panicking() {
    let mut lrp = lrp_with(
        LrpConfig {
            first_request_id: 1_000,
            ..open()
        },
        2,
    );
    assert_eq!(lrp.next_request_id(), RequestId(1_000));
    assert_eq!(assigned(lrp.request(p(1), t(0))).request, RequestId(1_000));
    assert_eq!(assigned(lrp.request(p(2), t(0))).request, RequestId(1_001));
    // Refusals and no-work answers consume no id.
    assert!(
        matches!(lrp.request(p(1), t(0)), Decision::Assign(h) if h.request == RequestId(1_002))
    );
    assert_eq!(lrp.next_request_id(), RequestId(1_003));

    let mut lrp = lrp_with(
        LrpConfig {
            first_request_id: u64::MAX - 1,
            ..open()
        },
        3,
    );
    assert_eq!(
        assigned(lrp.request(p(1), t(0))).request,
        RequestId(u64::MAX - 1)
    );
    assert_eq!(
        lrp.request(p(1), t(0)),
        Decision::Refused(Refusal::RequestIdsExhausted)
    );
}

#[test]
fn the_scan_is_bounded() {
    let config = LrpConfig {
        max_reserve_scan: 3,
        ..open()
    };
    let mut lrp = lrp_with(config, 5);
    for _ in 0..4 {
        assigned(lrp.request(p(1), t(0)));
    }
    assigned(lrp.request(p(2), t(0))); // j4
    // p1 holds the four jobs at the head; j4 is fifth, past the scan.
    assert_eq!(
        lrp.request(p(1), t(1)),
        Decision::NoWork { retry_at: t(501) }
    );
    let mut wider = lrp.clone();
    wider.config.max_reserve_scan = 5;
    assert_eq!(assigned(wider.request(p(1), t(1))).job, j(1, 4));
}

#[test]
fn time_never_runs_backwards() {
    let config = LrpConfig {
        min_reserve_age_ms: 100,
        ..open()
    };
    let mut lrp = lrp_with(config, 1);
    assigned(lrp.request(p(1), t(1_000)));
    // An event stamped earlier is taken as happening at the latest time.
    assert_eq!(
        lrp.request(p(2), t(5)),
        Decision::NoWork { retry_at: t(1_100) }
    );
    assert_eq!(lrp.clock(), t(1_000));
}

#[test]
fn finished_batches_can_be_forgotten() {
    let mut lrp = Lrp::new(open()).unwrap();
    let out = lrp.submit([j(1, 0), j(1, 1), j(2, 0), j(1, 0)]);
    assert_eq!(
        out,
        SubmitOutcome {
            added: 3,
            duplicates: vec![j(1, 0)]
        }
    );
    assert_eq!(lrp.forget_batch(BatchId(9)), ForgetOutcome::Unknown);
    assert_eq!(
        lrp.forget_batch(BatchId(1)),
        ForgetOutcome::NotFinished { remaining: 2 }
    );
    let mut done = 0;
    while !lrp.is_finished(BatchId(1)) {
        let h = assigned(lrp.request(p(1), t(0)));
        if h.job.batch == BatchId(1) {
            assert!(matches!(
                lrp.complete(h.job, h.request, p(1), t(0)),
                Completion::Accepted { .. }
            ));
            done += 1;
        }
    }
    assert_eq!(done, 2);
    assert_eq!(
        lrp.batch(BatchId(1)),
        Some(BatchProgress { total: 2, done: 2 })
    );
    assert!(!lrp.is_finished(BatchId(2)));
    assert_eq!(
        lrp.forget_batch(BatchId(1)),
        ForgetOutcome::Forgotten { jobs: 2 }
    );
    assert_eq!(lrp.batch(BatchId(1)), None);
    assert_eq!(lrp.job(j(1, 0)), None);
    assert_eq!(lrp.job(j(2, 0)), Some(JobView::Fresh));
    assert_eq!(
        lrp.counts(),
        LrpCounts {
            fresh: 1,
            pending: 0,
            done: 0
        }
    );
    // A proof for a forgotten job is unknown.
    assert_eq!(
        lrp.complete(j(1, 0), RequestId(1), p(1), t(1)),
        Completion::Unknown
    );
    assert_eq!(lrp.forget_batch(BatchId(1)), ForgetOutcome::Unknown);
}

#[test]
fn sparse_and_huge_job_indices_are_kept_apart_from_dense_ones() {
    let mut lrp = Lrp::new(open()).unwrap();
    // A huge index first, then a run that grows the dense part over it.
    let ids = [j(1, u32::MAX), j(1, 5_000), j(1, 0), j(1, 4_000)];
    assert_eq!(lrp.submit(ids).added, 4);
    assert_eq!(lrp.submit((0..5_001).map(|i| j(1, i))).added, 4_998);
    assert_eq!(
        lrp.submit([j(1, u32::MAX), j(1, 4_000)]).duplicates.len(),
        2
    );
    assert_eq!(lrp.job(j(1, u32::MAX)), Some(JobView::Fresh));
    assert_eq!(lrp.job(j(1, 5_001)), None);
    let first = assigned(lrp.request(p(1), t(0)));
    assert_eq!(first.job, j(1, u32::MAX));
    assert!(matches!(
        lrp.complete(first.job, first.request, p(1), t(1)),
        Completion::Accepted { .. }
    ));
    assert!(matches!(lrp.job(first.job), Some(JobView::Done { .. })));
    while !lrp.is_all_finished() {
        let h = assigned(lrp.request(p(1), t(2)));
        lrp.complete(h.job, h.request, p(1), t(2));
    }
    assert_eq!(
        lrp.forget_batch(BatchId(1)),
        ForgetOutcome::Forgotten { jobs: 5_002 }
    );
    assert_eq!(lrp.job(j(1, 4_000)), None);
}

#[test]
fn holdings_stay_in_order_whichever_goes_first() {
    let mut lrp = lrp_with(open(), 8);
    let mut held: Vec<Handout> = (0..6).map(|_| assigned(lrp.request(p(1), t(0)))).collect();
    // Oldest, middle, oldest again, then the rest; a new one in between.
    for pick in [0, 2, 0, 0] {
        let h = held.remove(pick);
        lrp.complete(h.job, h.request, p(1), t(1));
        if pick == 2 {
            held.push(assigned(lrp.request(p(1), t(1))));
        }
        let view: Vec<RequestId> = lrp
            .prover(&p(1))
            .unwrap()
            .holdings
            .iter()
            .map(|h| h.request)
            .collect();
        let want: Vec<RequestId> = held.iter().map(|h| h.request).collect();
        assert_eq!(view, want);
    }
    for h in held.drain(..) {
        lrp.complete(h.job, h.request, p(1), t(2));
    }
    assert!(lrp.prover(&p(1)).unwrap().holdings.is_empty());
}

#[test]
fn provers_are_kept_only_for_holdings_strikes_or_accepted_proofs() {
    let mut lrp = Lrp::new(open()).unwrap();
    lrp.submit((0..3).map(|i| j(1, i)));
    // A key that claims and gives back leaves nothing behind.
    let h = assigned(lrp.request(p(20), t(0)));
    assert_eq!(lrp.provers().count(), 1);
    lrp.release(h.job, h.request, p(20), t(1));
    assert_eq!(lrp.provers().count(), 0);
    // An accepted proof is remembered: it is what lifts probation.
    let h = assigned(lrp.request(p(21), t(2)));
    assert!(matches!(
        lrp.complete(h.job, h.request, p(21), t(3)),
        Completion::Accepted { .. }
    ));
    let view = lrp.prover(&p(21)).unwrap();
    assert_eq!((view.proven, view.holdings.len()), (1, 0));
    // So is a strike.
    let h = assigned(lrp.request(p(22), t(4)));
    lrp.invalid(h.job, h.request, p(22), t(5));
    let view = lrp.prover(&p(22)).unwrap();
    assert_eq!((view.strikes, view.holdings.len()), (1, 0));
    assert_eq!(lrp.provers().count(), 2);
}

#[test]
fn config_is_validated() {
    assert!(Lrp::new(LrpConfig::default()).is_ok());
    for broken in [
        LrpConfig {
            lease_ms: 0,
            ..LrpConfig::default()
        },
        LrpConfig {
            max_live_holders: 0,
            ..LrpConfig::default()
        },
        LrpConfig {
            max_held_per_prover: 0,
            ..LrpConfig::default()
        },
        LrpConfig {
            max_strikes: 0,
            ..LrpConfig::default()
        },
        LrpConfig {
            max_reserve_scan: 0,
            ..LrpConfig::default()
        },
        LrpConfig {
            first_request_id: 0,
            ..LrpConfig::default()
        },
    ] {
        let err = Lrp::new(broken).unwrap_err();
        assert!(err.to_string().contains("must be at least 1"), "{err}");
    }
}

#[test]
fn replaying_the_encoded_log_gives_the_same_outcomes() {
    let config = LrpConfig {
        min_reserve_age_ms: 10,
        max_live_holders: 2,
        ..open()
    };
    // A live run logs its events, answering each hand-out one of four ways
    // (and sometimes with a stranger's request id).
    let mut live = Lrp::new(config.clone()).unwrap();
    let mut events = vec![LrpEvent::Submit {
        jobs: (0..4).map(|i| j(1, i)).collect(),
    }];
    let mut live_outcomes = vec![live.apply(&events[0])];
    for i in 0..40u64 {
        let prover = p((i % 5) as u8);
        let now = t(i * 7);
        let asked = LrpEvent::Request { prover, now };
        let decision = live.apply(&asked);
        live_outcomes.push(decision.clone());
        events.push(asked);
        let (job, request) = match decision {
            LrpOutcome::Decided(Decision::Assign(h)) if i % 7 != 6 => (h.job, h.request),
            _ => (j(1, (i % 4) as u32), RequestId(i / 2 + 1)),
        };
        let answer = match i % 4 {
            0 => LrpEvent::Complete {
                job,
                request,
                prover,
                now,
            },
            1 => LrpEvent::Invalid {
                job,
                request,
                prover,
                now,
            },
            2 => LrpEvent::Release {
                job,
                request,
                prover,
                now,
            },
            _ => LrpEvent::Pardon { prover },
        };
        live_outcomes.push(live.apply(&answer));
        events.push(answer);
    }
    events.push(LrpEvent::Forget { batch: BatchId(1) });
    live_outcomes.push(live.apply(&events[events.len() - 1]));
    let (first, outcomes) = Lrp::replay(config.clone(), &events).unwrap();
    assert_eq!(outcomes, live_outcomes);
    let bytes = codec::encode(&events);
    let decoded: Vec<LrpEvent> = codec::decode(&bytes, bytes.len()).unwrap();
    let (second, again) = Lrp::replay(config, &decoded).unwrap();
    assert_eq!(outcomes, again);
    assert_eq!(first.counts(), second.counts());
    assert_eq!(first.next_request_id(), second.next_request_id());
    // The log exercised more than one kind of outcome.
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, LrpOutcome::Completed(Completion::Accepted { .. })))
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, LrpOutcome::Invalidated(StrikeOutcome::Struck { .. })))
    );
}

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
