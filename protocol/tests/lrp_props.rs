//! Property tests for the LRP scheduler: random logs of requests, valid,
//! misdirected and forged completions, invalid proofs, releases and time
//! advances, from a crowd with at least one honest prover, checked against an
//! independent model of which (job, request) pairs were issued.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use protocol::codec;
use protocol::lrp::{
    Completion, Decision, HeartbeatOutcome, JobView, Lrp, LrpConfig, LrpEvent, LrpOutcome, Refusal,
    ReleaseOutcome, ReservePolicy, StrikeOutcome,
};
use protocol::{BatchId, JobId, PublicKey, RequestId, Timestamp};

/// Prover 0 is honest: it never lies, and in the drain phase it keeps asking
/// and completes what it holds.
const HONEST: u8 = 0;
/// How long the honest prover takes to prove a job, in the drain phase.
const PROVE_MS: u64 = 30;

thread_local! {
    /// The policy the current case runs under (each case runs under both).
    static POLICY: std::cell::Cell<ReservePolicy> = const { std::cell::Cell::new(ReservePolicy::Adaptive) };
}

fn config() -> LrpConfig {
    LrpConfig {
        policy: POLICY.with(|p| p.get()),
        job_time_prior_ms: 40,
        heartbeat_silence_ms: 120,
        min_reserve_age_ms: 50,
        lease_ms: 400,
        max_live_holders: 2,
        max_held_per_prover: 2,
        strike_cooldown_ms: 100,
        max_strikes: 3,
        max_reserve_scan: 8,
        idle_retry_ms: 50,
        first_request_id: 1,
        ..LrpConfig::default()
    }
}

fn key(n: u8) -> PublicKey {
    PublicKey([n + 1; 32])
}

#[derive(Debug, Clone)]
enum Op {
    Request(u8),
    /// A prover submits a valid proof for one of the pairs issued to it.
    CompleteOwn(u8, usize),
    /// A prover submits a proof for a pair issued to someone else.
    CompleteOthers(u8, usize),
    /// A submission naming a request id that may never have been issued.
    CompleteForged(u8, u32, u64),
    /// A dishonest prover's proof for one of its pairs fails verification.
    Invalid(u8, usize),
    Release(u8, usize),
    /// A prover says it still works on one of its pairs (or someone else's).
    Heartbeat(u8, usize, bool),
    /// The distributor restarts.
    Resume,
    Advance(u64),
    /// A lease runs out, then a prover asks: a slow prover's second worker
    /// may get the job its first one still proves.
    Linger(u8),
    SubmitBatch(u32),
}

fn op(provers: u8) -> impl Strategy<Value = Op> {
    let p = 0..provers;
    let liar = 1..provers;
    prop_oneof![
        6 => p.clone().prop_map(Op::Request),
        3 => (p.clone(), any::<usize>()).prop_map(|(p, k)| Op::CompleteOwn(p, k)),
        1 => (p.clone(), any::<usize>()).prop_map(|(p, k)| Op::CompleteOthers(p, k)),
        1 => (p.clone(), 0..40u32, 0..80u64).prop_map(|(p, j, r)| Op::CompleteForged(p, j, r)),
        2 => (liar, any::<usize>()).prop_map(|(p, k)| Op::Invalid(p, k)),
        1 => (p.clone(), any::<usize>()).prop_map(|(p, k)| Op::Release(p, k)),
        3 => (p.clone(), any::<usize>(), any::<bool>()).prop_map(|(p, k, own)| Op::Heartbeat(p, k, own)),
        1 => Just(Op::Resume),
        3 => (0..200u64).prop_map(Op::Advance),
        1 => p.prop_map(Op::Linger),
        1 => (1..6u32).prop_map(Op::SubmitBatch),
    ]
}

/// Drives an [`Lrp`], logs every event, and checks each outcome against a
/// model of issued pairs kept independently of the scheduler's internals.
struct Harness {
    lrp: Lrp,
    now: Timestamp,
    log: Vec<LrpEvent>,
    outcomes: Vec<LrpOutcome>,
    next_batch: u64,
    jobs: Vec<JobId>,
    /// Jobs never handed out, in submit order.
    fresh: VecDeque<JobId>,
    /// Every issued pair: request → (job, prover), in issue order.
    issued: BTreeMap<RequestId, (JobId, PublicKey)>,
    /// When each pair was issued.
    handed_at: BTreeMap<RequestId, Timestamp>,
    /// Pairs voided by a release or an invalid proof.
    voided: BTreeSet<RequestId>,
    /// Completed jobs and their winning request.
    done: BTreeMap<JobId, RequestId>,
    strikes: BTreeMap<PublicKey, u32>,
    /// Accepted proofs per prover.
    proven: BTreeMap<PublicKey, u32>,
    /// Hand-outs that moved their job to the back of the queue.
    moved: BTreeSet<RequestId>,
    next_request: u64,
}

impl Harness {
    fn new() -> Self {
        Self {
            lrp: Lrp::new(config()).unwrap(),
            now: Timestamp(1_000),
            log: Vec::new(),
            outcomes: Vec::new(),
            next_batch: 1,
            jobs: Vec::new(),
            fresh: VecDeque::new(),
            issued: BTreeMap::new(),
            handed_at: BTreeMap::new(),
            voided: BTreeSet::new(),
            done: BTreeMap::new(),
            strikes: BTreeMap::new(),
            proven: BTreeMap::new(),
            moved: BTreeSet::new(),
            next_request: config().first_request_id,
        }
    }

    fn submit_batch(&mut self, n: u32) {
        let batch = BatchId(self.next_batch);
        self.next_batch += 1;
        let jobs: Vec<JobId> = (0..n).map(|i| JobId::new(batch, i)).collect();
        self.jobs.extend(&jobs);
        self.fresh.extend(&jobs);
        self.step(LrpEvent::Submit { jobs });
    }

    /// Pairs issued to `prover`, oldest first.
    fn pairs_of(&self, prover: PublicKey) -> Vec<(RequestId, JobId)> {
        self.issued
            .iter()
            .filter(|(_, (_, p))| *p == prover)
            .map(|(r, (j, _))| (*r, *j))
            .collect()
    }

    /// Pairs `prover` still holds: issued, not voided, job not done.
    fn held_by(&self, prover: PublicKey) -> Vec<(RequestId, JobId)> {
        self.pairs_of(prover)
            .into_iter()
            .filter(|(r, j)| !self.voided.contains(r) && !self.done.contains_key(j))
            .collect()
    }

    /// Past probation: a proof accepted and no strike.
    fn trusted(&self, prover: PublicKey) -> bool {
        self.proven.get(&prover).is_some_and(|n| *n > 0)
            && self.strikes.get(&prover).is_none_or(|n| *n == 0)
    }

    /// Whether the hand-out `request` is still within its lease.
    fn live(&self, request: &RequestId) -> bool {
        self.now.millis_since(self.handed_at[request]) < config().lease_ms
    }

    /// How many live hand-outs `prover` may hold: one, plus its accepted
    /// proofs, less its strikes and the jobs it holds only past their lease
    /// (a job handed to it again counts once), capped.
    fn allowance(&self, prover: PublicKey) -> usize {
        let proven = self.proven.get(&prover).copied().unwrap_or(0) as usize;
        let strikes = self.strikes.get(&prover).copied().unwrap_or(0) as usize;
        let held = self.held_by(prover);
        let jobs: BTreeSet<JobId> = held.iter().map(|(_, j)| *j).collect();
        let expired = jobs
            .iter()
            .filter(|job| !held.iter().any(|(r, j)| j == *job && self.live(r)))
            .count();
        (1 + proven)
            .saturating_sub(strikes + expired)
            .min(config().max_held_per_prover as usize)
    }

    fn live_held_by(&self, prover: PublicKey) -> usize {
        self.held_by(prover)
            .iter()
            .filter(|(r, _)| self.live(r))
            .count()
    }

    fn pick(pairs: &[(RequestId, JobId)], k: usize) -> Option<(RequestId, JobId)> {
        (!pairs.is_empty()).then(|| pairs[k % pairs.len()])
    }

    fn run(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Request(p) => {
                self.step(LrpEvent::Request {
                    prover: key(p),
                    now,
                });
            }
            Op::CompleteOwn(p, k) => {
                if let Some((request, job)) = Self::pick(&self.pairs_of(key(p)), k) {
                    self.step(LrpEvent::Complete {
                        job,
                        request,
                        prover: key(p),
                        now,
                    });
                }
            }
            Op::CompleteOthers(p, k) => {
                let others: Vec<(RequestId, JobId)> = self
                    .issued
                    .iter()
                    .filter(|(_, (_, q))| *q != key(p))
                    .map(|(r, (j, _))| (*r, *j))
                    .collect();
                if let Some((request, job)) = Self::pick(&others, k) {
                    self.step(LrpEvent::Complete {
                        job,
                        request,
                        prover: key(p),
                        now,
                    });
                }
            }
            Op::CompleteForged(p, j, r) => {
                if let Some(&job) = self.jobs.get(j as usize % self.jobs.len().max(1)) {
                    let request = RequestId(r);
                    self.step(LrpEvent::Complete {
                        job,
                        request,
                        prover: key(p),
                        now,
                    });
                }
            }
            Op::Invalid(..) | Op::Release(..) | Op::Heartbeat(..) => self.run_on_own_pair(op),
            Op::Resume => {
                self.step(LrpEvent::Resume { now });
            }
            Op::Advance(ms) => self.now = self.now.plus_millis(ms),
            Op::Linger(p) => {
                self.now = self.now.plus_millis(config().lease_ms);
                self.run(&Op::Request(p));
            }
            Op::SubmitBatch(n) => self.submit_batch(n),
        }
    }

    /// The ops that name a pair the prover holds (or, for a heartbeat,
    /// maybe someone else's).
    fn run_on_own_pair(&mut self, op: &Op) {
        let now = self.now;
        let (p, k, all) = match *op {
            Op::Invalid(p, k) | Op::Release(p, k) => (p, k, false),
            Op::Heartbeat(p, k, own) => (p, k, !own),
            _ => unreachable!("not a pair op: {op:?}"),
        };
        let pairs: Vec<(RequestId, JobId)> = if all {
            self.issued.iter().map(|(r, (j, _))| (*r, *j)).collect()
        } else {
            self.pairs_of(key(p))
        };
        let Some((request, job)) = Self::pick(&pairs, k) else {
            return;
        };
        let prover = key(p);
        self.step(match op {
            Op::Invalid(..) => LrpEvent::Invalid {
                job,
                request,
                prover,
                now,
            },
            Op::Release(..) => LrpEvent::Release {
                job,
                request,
                prover,
                now,
            },
            _ => LrpEvent::Heartbeat {
                job,
                request,
                prover,
                now,
            },
        });
    }

    /// The honest prover alone: every round it completes what it has held for
    /// at least `PROVE_MS`, then asks until it gets no more work.
    fn drain(&mut self) {
        let honest = key(HONEST);
        for _ in 0..2_000 {
            if self.lrp.is_all_finished() {
                return;
            }
            self.now = self.now.plus_millis(2 * PROVE_MS);
            let now = self.now;
            let ready: Vec<(RequestId, JobId)> =
                self.held_by(honest)
                    .into_iter()
                    .filter(|(r, _)| {
                        let at = self.lrp.prover(&honest).and_then(|v| {
                            v.holdings.iter().find(|h| h.request == *r).map(|h| h.at)
                        });
                        at.is_some_and(|at| now.millis_since(at) >= PROVE_MS)
                    })
                    .collect();
            for (request, job) in ready {
                self.step(LrpEvent::Complete {
                    job,
                    request,
                    prover: honest,
                    now,
                });
            }
            while let LrpOutcome::Decided(Decision::Assign(_)) = self.step(LrpEvent::Request {
                prover: honest,
                now,
            }) {}
        }
    }

    /// Applies one event, logs it, and checks the outcome and the invariants.
    fn step(&mut self, event: LrpEvent) -> LrpOutcome {
        let fresh_before = self.lrp.counts().fresh;
        let outcome = self.lrp.apply(&event);
        self.check(&event, &outcome, fresh_before);
        self.check_holders();
        self.log.push(event);
        self.outcomes.push(outcome.clone());
        outcome
    }

    fn check(&mut self, event: &LrpEvent, outcome: &LrpOutcome, fresh_before: u64) {
        match (event, outcome) {
            (LrpEvent::Submit { .. }, LrpOutcome::Submitted(_)) => {}
            (LrpEvent::Request { prover, .. }, LrpOutcome::Decided(decision)) => {
                self.check_request(*prover, decision, fresh_before)
            }
            (
                LrpEvent::Complete {
                    job,
                    request,
                    prover,
                    ..
                },
                LrpOutcome::Completed(verdict),
            ) => {
                let expected = match self.issued_for(*job, *request) {
                    None => Completion::Unknown,
                    Some(_) if self.voided.contains(request) => Completion::Unknown,
                    Some(owner) if owner != *prover => Completion::WrongProver,
                    Some(_) => match self.done.get(job) {
                        Some(won) if won == request => Completion::Duplicate,
                        Some(_) => Completion::Late,
                        None => Completion::Accepted {
                            superseded: 0,
                            batch_finished: false,
                        },
                    },
                };
                if let Completion::Accepted { superseded, .. } = verdict {
                    assert!(
                        matches!(expected, Completion::Accepted { .. }),
                        "{event:?}: accepted, model says {expected:?}"
                    );
                    // No job completes twice.
                    assert!(self.done.insert(*job, *request).is_none());
                    *self.proven.entry(*prover).or_default() += 1;
                    let others = self
                        .issued
                        .iter()
                        .filter(|(r, (j, _))| j == job && *r != request && !self.voided.contains(r))
                        .count();
                    assert_eq!(*superseded as usize, others);
                    assert!(matches!(self.lrp.job(*job), Some(JobView::Done { .. })));
                } else {
                    assert_eq!(*verdict, expected, "{event:?}");
                }
            }
            (
                LrpEvent::Invalid {
                    job,
                    request,
                    prover,
                    ..
                },
                LrpOutcome::Invalidated(result),
            ) => {
                let expected = match self.issued_for(*job, *request) {
                    None => StrikeOutcome::Unknown,
                    Some(_) if self.voided.contains(request) => StrikeOutcome::Unknown,
                    Some(owner) if self.done.get(job) == Some(request) => {
                        if owner == *prover {
                            StrikeOutcome::AlreadyAccepted
                        } else {
                            StrikeOutcome::WrongProver
                        }
                    }
                    Some(owner) if owner != *prover => StrikeOutcome::WrongProver,
                    Some(_) => {
                        let strikes = self.strikes.entry(*prover).or_default();
                        *strikes += 1;
                        self.voided.insert(*request);
                        let strikes = *strikes;
                        assert!(matches!(
                            result,
                            StrikeOutcome::Struck { strikes: s, banned, .. }
                                if *s == strikes && *banned == (strikes >= config().max_strikes)
                        ));
                        // A new key holding nothing more is forgotten: it
                        // comes back as a new key.
                        let proven = self.proven.get(prover).copied().unwrap_or(0);
                        if config().forget_struck_newcomers
                            && proven == 0
                            && self.held_by(*prover).is_empty()
                        {
                            self.strikes.remove(prover);
                        }
                        return;
                    }
                };
                assert_eq!(*result, expected, "{event:?}");
            }
            (
                LrpEvent::Release {
                    job,
                    request,
                    prover,
                    ..
                },
                LrpOutcome::Released(result),
            ) => {
                let expected = if self.done.contains_key(job) {
                    ReleaseOutcome::AlreadyDone
                } else {
                    match self.issued_for(*job, *request) {
                        None => ReleaseOutcome::Unknown,
                        Some(_) if self.voided.contains(request) => ReleaseOutcome::Unknown,
                        Some(owner) if owner != *prover => ReleaseOutcome::WrongProver,
                        Some(_) => {
                            self.voided.insert(*request);
                            let left = self
                                .issued
                                .iter()
                                .any(|(r, (j, _))| j == job && !self.voided.contains(r));
                            ReleaseOutcome::Released { orphaned: !left }
                        }
                    }
                };
                assert_eq!(*result, expected, "{event:?}");
            }
            (
                LrpEvent::Heartbeat {
                    job,
                    request,
                    prover,
                    ..
                },
                LrpOutcome::Heard(result),
            ) => {
                let expected = if self.done.contains_key(job) {
                    Some(HeartbeatOutcome::AlreadyDone)
                } else {
                    match self.issued_for(*job, *request) {
                        None => Some(HeartbeatOutcome::Unknown),
                        Some(_) if self.voided.contains(request) => Some(HeartbeatOutcome::Unknown),
                        Some(owner) if owner != *prover => Some(HeartbeatOutcome::WrongProver),
                        // Noted, or too soon after the last: either way no
                        // other outcome.
                        Some(_) => None,
                    }
                };
                match expected {
                    Some(expected) => assert_eq!(*result, expected, "{event:?}"),
                    None => assert!(
                        matches!(result, HeartbeatOutcome::Noted | HeartbeatOutcome::TooSoon),
                        "{event:?}: {result:?}"
                    ),
                }
            }
            (LrpEvent::Resume { .. }, LrpOutcome::Resumed) => {}
            other => panic!("outcome does not answer its event: {other:?}"),
        }
    }

    fn issued_for(&self, job: JobId, request: RequestId) -> Option<PublicKey> {
        self.issued
            .get(&request)
            .filter(|(j, _)| *j == job)
            .map(|(_, p)| *p)
    }

    fn check_request(&mut self, prover: PublicKey, decision: &Decision, fresh_before: u64) {
        let strikes = self.strikes.get(&prover).copied().unwrap_or(0);
        match *decision {
            Decision::Assign(h) => {
                assert!(strikes < config().max_strikes, "a banned prover got work");
                assert!(
                    self.live_held_by(prover) < self.allowance(prover),
                    "{prover:?} got work past its allowance"
                );
                // A prover on probation is re-served only a job that no one
                // on probation got within the minimum age.
                if h.reserve && !self.trusted(prover) {
                    let raced = self.issued.iter().any(|(r, (j, p))| {
                        *j == h.job
                            && !self.voided.contains(r)
                            && self.now.millis_since(self.handed_at[r])
                                < config().min_reserve_age_ms
                            && !self.trusted(*p)
                    });
                    assert!(!raced, "{} re-served on probation too soon", h.job);
                }
                assert_eq!(
                    h.request,
                    RequestId(self.next_request),
                    "ids are consecutive"
                );
                self.next_request += 1;
                let seen_before = self.issued.values().any(|(j, _)| *j == h.job);
                // Fresh jobs always go before re-serves.
                assert_eq!(h.reserve, seen_before);
                assert_eq!(
                    h.reserve,
                    fresh_before == 0,
                    "re-serve while fresh jobs wait"
                );
                if !h.reserve {
                    assert_eq!(
                        Some(h.job),
                        self.fresh.pop_front(),
                        "fresh jobs in submit order"
                    );
                }
                assert!(!self.done.contains_key(&h.job), "handed out a done job");
                // A job still held is re-served only past the minimum age of
                // its latest hand-out that moved it in the queue (fresh, or to
                // a trusted prover); an orphan (no holder left) at once.
                let latest = self
                    .issued
                    .iter()
                    .filter(|(r, (j, _))| {
                        *j == h.job && !self.voided.contains(r) && self.moved.contains(r)
                    })
                    .map(|(r, _)| self.handed_at[r])
                    .max();
                if let Some(at) = latest {
                    assert!(
                        self.now.millis_since(at) >= config().min_reserve_age_ms,
                        "{} re-served {} ms after its latest hand-out",
                        h.job,
                        self.now.millis_since(at)
                    );
                }
                // A prover gets a job it holds again only once its lease on
                // it ran out; the old hand-out stays valid for its proof.
                for (r, j) in self.held_by(prover) {
                    if j == h.job {
                        assert!(
                            self.now.millis_since(self.handed_at[&r]) >= config().lease_ms,
                            "{prover:?} already holds {} within its lease",
                            h.job
                        );
                    }
                }
                if !h.reserve || self.trusted(prover) || config().policy == ReservePolicy::Adaptive
                {
                    self.moved.insert(h.request);
                }
                self.issued.insert(h.request, (h.job, prover));
                self.handed_at.insert(h.request, self.now);
            }
            Decision::Refused(Refusal::Banned { strikes: s }) => {
                assert_eq!(s, strikes);
                assert!(s >= config().max_strikes);
            }
            Decision::Refused(Refusal::Cooldown { until, .. }) => {
                assert!(strikes > 0 && until > self.now);
            }
            Decision::Refused(Refusal::AtCapacity { held, retry_at }) => {
                assert_eq!(held as usize, self.live_held_by(prover));
                assert!(held as usize >= self.allowance(prover));
                assert!(retry_at > self.now);
            }
            Decision::Refused(Refusal::RequestIdsExhausted) => panic!("ids cannot run out here"),
            Decision::NoWork { retry_at } => {
                assert_eq!(fresh_before, 0, "no work while fresh jobs wait");
                assert!(retry_at > self.now);
            }
        }
    }

    /// No pending job ever has more live trusted holders than the cap, and
    /// holders match the model's live pairs.
    fn check_holders(&self) {
        let cfg = config();
        let now = self.lrp.clock();
        for &job in &self.jobs {
            match self.lrp.job(job) {
                Some(JobView::Pending { holders }) => {
                    let live = holders
                        .iter()
                        .filter(|h| now.millis_since(h.at) < cfg.lease_ms && self.trusted(h.prover))
                        .count();
                    assert!(
                        live <= cfg.max_live_holders as usize,
                        "{job}: {live} live holders"
                    );
                    let mut expected: Vec<RequestId> = self
                        .issued
                        .iter()
                        .filter(|(r, (j, _))| *j == job && !self.voided.contains(r))
                        .map(|(r, _)| *r)
                        .collect();
                    expected.sort();
                    let got: Vec<RequestId> = holders.iter().map(|h| h.request).collect();
                    assert_eq!(got, expected, "{job} holders");
                    // A prover may keep expired hand-outs of a job it got
                    // again, but holds it live at most once.
                    let live: Vec<&protocol::lrp::Holder> = holders
                        .iter()
                        .filter(|h| now.millis_since(h.at) < cfg.lease_ms)
                        .collect();
                    let provers: BTreeSet<PublicKey> = live.iter().map(|h| h.prover).collect();
                    assert_eq!(provers.len(), live.len(), "{job} held live twice");
                }
                Some(JobView::Fresh) => {
                    assert!(!self.issued.values().any(|(j, _)| *j == job));
                }
                Some(JobView::Done { request, .. }) => {
                    assert_eq!(self.done.get(&job), Some(&request));
                }
                None => panic!("{job} lost"),
            }
        }
    }
}

proptest! {
    // A fixed seed: CI runs the same 96 logs every time.
    #![proptest_config(ProptestConfig {
        cases: 96,
        rng_seed: RngSeed::Fixed(0x4c52_5031),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn lrp_invariants_hold_and_replay_is_identical(
        (provers, first, ops) in (2u8..6).prop_flat_map(|n| {
            (Just(n), 1u32..12, prop::collection::vec(op(n), 0..160))
        })
    ) {
      for policy in [ReservePolicy::Adaptive, ReservePolicy::Lrp] {
        POLICY.with(|p| p.set(policy));
        let mut h = Harness::new();
        h.submit_batch(first);
        for op in &ops {
            h.run(op);
        }
        h.drain();

        // Every job eventually completes, exactly once.
        prop_assert!(h.lrp.is_all_finished(), "not finished: {:?}", h.lrp.counts());
        prop_assert_eq!(h.done.len(), h.jobs.len());
        for batch in 1..h.next_batch {
            prop_assert!(h.lrp.is_finished(BatchId(batch)));
        }
        let accepted = h
            .outcomes
            .iter()
            .filter(|o| matches!(o, LrpOutcome::Completed(Completion::Accepted { .. })))
            .count();
        prop_assert_eq!(accepted, h.jobs.len());
        // Only provers that lied have strikes.
        prop_assert_eq!(h.lrp.strikes(&key(HONEST)), 0);
        prop_assert!(provers >= 2);

        // Replaying the persisted log gives identical outcomes.
        let bytes = codec::encode(&h.log);
        let log: Vec<LrpEvent> = codec::decode(&bytes, bytes.len()).unwrap();
        let (again, outcomes) = Lrp::replay(config(), &log).unwrap();
        prop_assert_eq!(&outcomes, &h.outcomes);
        prop_assert_eq!(again.counts(), h.lrp.counts());
        prop_assert_eq!(again.next_request_id(), h.lrp.next_request_id());

        // A snapshot taken anywhere in the log, encoded, restored and fed the
        // rest of the log gives the same outcomes and the same end state: a
        // compacted log replays like the whole one.
        for cut in [0, log.len() / 3, log.len() / 2, log.len()] {
            let (head, _) = Lrp::replay(config(), &log[..cut]).unwrap();
            let snap = head.snapshot();
            let bytes = codec::encode(&snap);
            let snap: protocol::lrp::LrpSnapshot = codec::decode(&bytes, bytes.len()).unwrap();
            let mut restored = Lrp::restore(config(), &snap).unwrap();
            prop_assert_eq!(restored.snapshot(), head.snapshot());
            let tail: Vec<LrpOutcome> = log[cut..].iter().map(|e| restored.apply(e)).collect();
            prop_assert_eq!(&tail[..], &h.outcomes[cut..]);
            prop_assert_eq!(restored.snapshot(), h.lrp.snapshot());
        }
      }
    }
}
