//! The paper's rule: fresh jobs first, re-serves least recently handed out
//! first, the minimum age, and the holder and prover caps.

use super::*;

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
