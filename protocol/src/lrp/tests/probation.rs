//! Probation: a new key's allowance, claiming and sitting, and a crowd of
//! sitters against trusted provers.

use super::*;

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

/// A job no trusted prover finishes, raced by new keys for a long time:
/// it keeps the newest few of their expired hand-outs (each still valid
/// for its proof), not one per minimum age forever.
#[test]
fn new_keys_racing_an_unfinished_job_leave_a_bounded_trail() {
    for policy in [ReservePolicy::Lrp, ReservePolicy::Adaptive] {
        let config = LrpConfig {
            policy,
            min_reserve_age_ms: 1_000,
            lease_ms: 5_000,
            heartbeat_silence_ms: 1_000,
            probation_lag_ms: 0,
            max_stale_probation_holders: 4,
            ..open()
        };
        let mut lrp = lrp_with(config, 1);
        let key = |n: u32| {
            let mut key = [0xee; 32];
            key[..4].copy_from_slice(&n.to_le_bytes());
            PublicKey(key)
        };
        let mut handed = Vec::new();
        for n in 0..1_000u32 {
            let now = u64::from(n) * 1_000;
            handed.push((key(n), assigned(lrp.request(key(n), t(now)))));
            let Some(JobView::Pending { holders }) = lrp.job(j(1, 0)) else {
                panic!("{policy:?}: the job is open");
            };
            // Four expired ones and the live ones (a lease is 5 s).
            assert!(
                holders.len() <= 4 + 5,
                "{policy:?}: {} holders",
                holders.len()
            );
            assert!(lrp.prover_count() <= 4 + 5 + usize::from(TRUSTED));
        }
        // The oldest were voided: unknown, no strike. The newest stale one
        // still wins.
        let (first, h) = handed[0];
        assert_eq!(
            lrp.complete(h.job, h.request, first, t(1_000_000)),
            Completion::Unknown
        );
        let (kept, h) = handed[handed.len() - 9];
        assert!(matches!(
            lrp.complete(h.job, h.request, kept, t(1_000_000)),
            Completion::Accepted { .. }
        ));
    }
}

/// A new key struck for an invalid proof, holding nothing more, leaves no
/// record (a throwaway identity each); one with accepted proofs keeps its
/// strikes. The format-5 rule kept every struck key.
#[test]
fn a_struck_new_key_is_forgotten_and_a_trusted_one_is_not() {
    for forget in [true, false] {
        let config = LrpConfig {
            forget_struck_newcomers: forget,
            ..open()
        };
        let mut lrp = lrp_with(config, 4);
        let known = lrp.prover_count();
        let (newcomer, trusted) = (p(20), p(1));
        let h = assigned(lrp.request(newcomer, t(0)));
        assert!(matches!(
            lrp.invalid(h.job, h.request, newcomer, t(10)),
            StrikeOutcome::Struck { strikes: 1, .. }
        ));
        assert_eq!(
            lrp.prover_count(),
            known + usize::from(!forget),
            "forget: {forget}"
        );
        assert_eq!(lrp.strikes(&newcomer), u32::from(!forget));
        let h = assigned(lrp.request(trusted, t(20)));
        lrp.invalid(h.job, h.request, trusted, t(30));
        assert_eq!(lrp.strikes(&trusted), 1, "a trusted prover's strike stays");
    }
}
