//! A slow prover's own expired hand-outs: when its lease runs out and the
//! job comes back to it (a second worker asks), the first hand-out stays
//! valid for its proof; and the bounds on what it holds still hold.

use super::*;

/// Knobs under which a job goes round again once its lease of 1 s has run
/// out, under either policy (adaptive: overdue at 2 × 100 ms).
fn slow(policy: ReservePolicy) -> LrpConfig {
    LrpConfig {
        policy,
        lease_ms: 1_000,
        job_time_prior_ms: 100,
        heartbeat_silence_ms: 0,
        backup_percent: 0,
        ..open()
    }
}

const POLICIES: [ReservePolicy; 2] = [ReservePolicy::Lrp, ReservePolicy::Adaptive];

#[test]
fn a_slow_provers_first_handout_still_wins_after_the_job_came_back_to_it() {
    for policy in POLICIES {
        let config = slow(policy);
        let mut lrp = lrp_with(config.clone(), 1);
        let first = assigned(lrp.request(p(1), t(0)));
        // Its first worker outlasts the lease; its second worker asks and
        // gets the same job under a new request id.
        let second = assigned(lrp.request(p(1), t(1_000)));
        assert_eq!(
            (second.job, second.reserve),
            (first.job, true),
            "{policy:?}"
        );
        // Both hand-outs are the job's holders: what the distributor's
        // `holds` reads before it verifies a proof.
        let Some(JobView::Pending { holders }) = lrp.job(first.job) else {
            panic!("{policy:?}: job not pending");
        };
        let requests: Vec<RequestId> = holders.iter().map(|h| h.request).collect();
        assert_eq!(requests, [first.request, second.request], "{policy:?}");
        assert!(holders.iter().all(|h| h.prover == p(1)));
        assert_eq!(lrp.prover(&p(1)).unwrap().holdings.len(), 2);
        // Pairs never issued to it are still told apart.
        assert_eq!(
            lrp.complete(first.job, RequestId(99), p(1), t(1_100)),
            Completion::Unknown
        );
        assert_eq!(
            lrp.complete(first.job, first.request, p(2), t(1_100)),
            Completion::WrongProver
        );
        let heard = lrp.apply(&LrpEvent::Heartbeat {
            job: first.job,
            request: first.request,
            prover: p(1),
            now: t(1_100),
        });
        assert_eq!(heard, LrpOutcome::Heard(HeartbeatOutcome::Noted));
        // A snapshot keeps both: restored, the first proof wins the same.
        let mut restored = Lrp::restore(config, &lrp.snapshot()).unwrap();
        for lrp in [&mut lrp, &mut restored] {
            // The first worker's valid proof wins; the second's is late.
            assert_eq!(
                lrp.complete(first.job, first.request, p(1), t(1_200)),
                Completion::Accepted {
                    superseded: 1,
                    batch_finished: true
                },
                "{policy:?}"
            );
            assert_eq!(
                lrp.complete(second.job, second.request, p(1), t(1_300)),
                Completion::Late
            );
            let view = lrp.prover(&p(1)).unwrap();
            assert_eq!((view.strikes, view.holdings.len()), (0, 0));
        }
    }
}

#[test]
fn a_slow_provers_first_handout_is_late_when_another_prover_won() {
    for policy in POLICIES {
        let mut lrp = lrp_with(slow(policy), 1);
        let first = assigned(lrp.request(p(1), t(0)));
        let again = assigned(lrp.request(p(1), t(1_000)));
        let other = assigned(lrp.request(p(2), t(1_500)));
        assert_eq!([again.job, other.job], [first.job; 2], "{policy:?}");
        assert_eq!(
            lrp.complete(other.job, other.request, p(2), t(1_600)),
            Completion::Accepted {
                superseded: 2,
                batch_finished: true
            },
            "{policy:?}"
        );
        // Judged late, not taken for a pair never issued; and a liar's
        // invalid proof for it still earns the one strike it is owed.
        assert_eq!(
            lrp.complete(first.job, first.request, p(1), t(1_700)),
            Completion::Late
        );
        assert!(matches!(
            lrp.invalid(again.job, again.request, p(1), t(1_800)),
            StrikeOutcome::Struck { strikes: 1, .. }
        ));
        assert_eq!(
            lrp.invalid(again.job, again.request, p(1), t(1_900)),
            StrikeOutcome::Unknown
        );
    }
}

#[test]
fn expired_handouts_kept_for_their_proof_never_count_as_live() {
    for (policy, max_held) in [2, 3].into_iter().flat_map(|n| POLICIES.map(|p| (p, n))) {
        let config = LrpConfig {
            max_live_holders: 1,
            max_held_per_prover: max_held,
            ..slow(policy)
        };
        let mut lrp = lrp_with(config, 2);
        let a = assigned(lrp.request(p(1), t(0)));
        let b = assigned(lrp.request(p(1), t(0)));
        // Both leases run out; the jobs come back to it, one per request.
        let a2 = assigned(lrp.request(p(1), t(1_000)));
        let b2 = assigned(lrp.request(p(1), t(1_000)));
        assert_eq!([a2.job, b2.job], [a.job, b.job], "{policy:?}");
        assert_eq!(lrp.prover(&p(1)).unwrap().holdings.len(), 4);
        // Its cap counts the live hand-outs alone; below the cap, it still
        // never holds a job live twice.
        let expected = if max_held == 2 {
            Decision::Refused(Refusal::AtCapacity {
                held: 2,
                retry_at: t(2_000),
            })
        } else {
            Decision::NoWork { retry_at: t(1_500) }
        };
        assert_eq!(lrp.request(p(1), t(1_000)), expected, "{policy:?}");
        // Each job has one live trusted holder: full, for anyone else.
        assert!(matches!(
            lrp.request(p(2), t(1_500)),
            Decision::NoWork { .. }
        ));
        // Its first hand-out of `a` is still its own to prove.
        assert_eq!(
            lrp.complete(a.job, a.request, p(1), t(1_600)),
            Completion::Accepted {
                superseded: 1,
                batch_finished: false
            }
        );
        assert_eq!(lrp.prover(&p(1)).unwrap().holdings.len(), 2);
    }
}

#[test]
fn a_job_handed_out_again_counts_once_against_the_allowance() {
    for policy in POLICIES {
        let mut lrp = lrp_with(slow(policy), 1);
        // One accepted proof: an allowance of two, less each open job it
        // holds only past its lease.
        lrp.vouch(p(30), 1);
        let first = assigned(lrp.request(p(30), t(0)));
        // It crashes twice on the same job. Each time its lease runs out it
        // may have the job again (a restarted machine is not locked out:
        // counted per hand-out, its two stale ones would leave it none),
        // and its older hand-outs stay valid for their proofs.
        let second = assigned(lrp.request(p(30), t(1_000)));
        let third = assigned(lrp.request(p(30), t(2_000)));
        assert_eq!([second.job, third.job], [first.job; 2], "{policy:?}");
        // The job it holds live is not held past its lease: a second job
        // fits its allowance, a third does not. A restored snapshot, which
        // lists holdings alone, counts the same.
        let mut restored = Lrp::restore(slow(policy), &lrp.snapshot()).unwrap();
        for lrp in [&mut lrp, &mut restored] {
            lrp.submit([j(2, 0), j(2, 1)]);
            assigned(lrp.request(p(30), t(2_000)));
            assert_eq!(
                lrp.request(p(30), t(2_000)),
                Decision::Refused(Refusal::AtCapacity {
                    held: 2,
                    retry_at: t(3_000)
                }),
                "{policy:?}"
            );
            // Past both leases it sits on two open jobs: no place left.
            assert!(matches!(
                lrp.request(p(30), t(3_000)),
                Decision::Refused(Refusal::AtCapacity { held: 0, .. })
            ));
        }
        // Once the job's newer hand-out goes (released, or struck), the
        // older one is the job it sits on again: it counts.
        let mut lrp = lrp_with(slow(policy), 1);
        lrp.vouch(p(30), 1);
        let first = assigned(lrp.request(p(30), t(0)));
        let again = assigned(lrp.request(p(30), t(1_000)));
        assert_eq!(
            lrp.release(again.job, again.request, p(30), t(1_000)),
            ReleaseOutcome::Released { orphaned: false },
            "{policy:?}: its older hand-out still holds the job"
        );
        lrp.submit([j(2, 0)]);
        assert_eq!(assigned(lrp.request(p(30), t(1_000))).job, j(2, 0));
        assert_eq!(
            lrp.request(p(30), t(1_000)),
            Decision::Refused(Refusal::AtCapacity {
                held: 1,
                retry_at: t(2_000)
            }),
            "{policy:?}"
        );
        assert!(matches!(
            lrp.complete(first.job, first.request, p(30), t(1_100)),
            Completion::Accepted { .. }
        ));
        // A new identity that sits on its one job is still refused more.
        let mut lrp = lrp_with(slow(policy), 2);
        assigned(lrp.request(p(20), t(0)));
        assert!(matches!(
            lrp.request(p(20), t(1_000)),
            Decision::Refused(Refusal::AtCapacity { held: 0, .. })
        ));
    }
}
