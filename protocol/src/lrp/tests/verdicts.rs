//! Strikes, completion verdicts and releases: what each answer to a proof
//! or a give-back does to the job and the prover.

use super::*;

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
