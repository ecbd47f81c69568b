//! Request ids, the scan bound, the clock, forgetting batches, sparse job
//! indices, holdings, which provers are kept, config validation and replay.

use super::*;
use crate::codec;

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
    // So is a strike of a prover with an accepted proof; a new key struck
    // and holding nothing more leaves nothing (it comes back a new key).
    let h = assigned(lrp.request(p(22), t(4)));
    lrp.invalid(h.job, h.request, p(22), t(5));
    assert!(lrp.prover(&p(22)).is_none());
    let h = assigned(lrp.request(p(21), t(6)));
    lrp.invalid(h.job, h.request, p(21), t(7));
    let view = lrp.prover(&p(21)).unwrap();
    assert_eq!((view.strikes, view.proven, view.holdings.len()), (1, 1, 0));
    assert_eq!(lrp.provers().count(), 1);
}

#[test]
fn a_crowd_that_only_polls_or_names_others_hand_outs_leaves_no_prover_state() {
    let stranger = |i: u32| {
        let mut key = [0xee; 32];
        key[..4].copy_from_slice(&i.to_be_bytes());
        PublicKey(key)
    };
    // A held job is not re-served within the test.
    let config = LrpConfig {
        min_reserve_age_ms: 1_000_000,
        ..open()
    };
    let mut lrp = Lrp::new(config).unwrap();
    // Nothing to do: a thousand identities poll, twice.
    for i in 0..2_000 {
        let d = lrp.request(stranger(i % 1_000), t(u64::from(i)));
        assert!(matches!(d, Decision::NoWork { .. }), "{d:?}");
    }
    assert_eq!(lrp.prover_count(), 0);
    // One job, held by p(20) (so asking again is refused: at capacity).
    lrp.submit([j(1, 0)]);
    let h = assigned(lrp.request(p(20), t(3_000)));
    assert!(matches!(
        lrp.request(p(20), t(3_001)),
        Decision::Refused(Refusal::AtCapacity { .. })
    ));
    let before = lrp.snapshot();
    for i in 0..1_000 {
        let (who, at) = (stranger(i), t(3_002));
        lrp.release(h.job, h.request, who, at);
        lrp.release(j(7, i), RequestId(u64::from(i)), who, at);
        lrp.apply(&LrpEvent::Heartbeat {
            job: h.job,
            request: h.request,
            prover: who,
            now: at,
        });
        lrp.complete(h.job, h.request, who, at);
        lrp.invalid(h.job, h.request, who, at);
        let d = lrp.request(who, at);
        assert!(matches!(d, Decision::NoWork { .. }), "{d:?}");
    }
    assert_eq!(lrp.prover_count(), 1, "only the holder");
    // Nothing but the clock moved.
    let mut after = lrp.snapshot();
    assert_eq!(after.clock, t(3_002));
    after.clock = before.clock;
    assert_eq!(after, before);
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
