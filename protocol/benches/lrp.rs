//! LRP decision throughput with 10,000 provers and 100,000 pending jobs.
//!
//! Each case keeps one crowd for the whole run and, around every timed loop,
//! does untimed work that puts the crowd back into the same shape, so every
//! sample measures the same steady state. Criterion's throughput line
//! (elem/s) is decisions per second.
//!
//! - `request/reserve`: 100,000 pending jobs, each already handed out, no
//!   fresh job, so each request re-serves the head of the queue and moves it to
//!   the tail. Untimed afterwards: the hand-outs are released again.
//! - `request/fresh`: the same crowd plus fresh jobs submitted untimed; each
//!   request hands out a fresh one. Untimed afterwards: they are completed and
//!   their batch forgotten.
//! - `complete/accept_1_holder`, `complete/accept_2_holders`: 100,000 pending
//!   jobs with one (or about two) holders each; each completion accepts the
//!   latest hand-out of a job picked at random (seeded) among the 1,024 oldest
//!   pending ones, as provers finish roughly in the order they started, and
//!   supersedes its other hand-outs. Untimed afterwards: as many new jobs are
//!   submitted and handed out once (or twice), and finished batches forgotten.
//!
//! The time measured is the bench thread's on-CPU time (from
//! `/proc/thread-self/schedstat`): the machines this runs on are shared, and
//! wall time would count the time the thread sat descheduled. Set
//! `BENCH_WALL=1` to measure wall time instead.
//!
//! `LRP_BENCH_PROVERS` and `LRP_BENCH_PENDING` change the crowd's size.
//!
//! Run: `cargo bench -p protocol --bench lrp -- --warm-up-time 1 --measurement-time 3`

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::OnceLock;

mod support;
use support::Stopwatch;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::lrp::{
    Completion, Decision, Handout, JobView, Lrp, LrpConfig, LrpEvent, LrpOutcome, ReleaseOutcome,
    ReservePolicy,
};
use protocol::{BatchId, JobId, PublicKey, RequestId, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Crowd size: `LRP_BENCH_PROVERS`, default 10,000.
fn provers() -> u64 {
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| knob("LRP_BENCH_PROVERS", 10_000))
}

/// Pending jobs: `LRP_BENCH_PENDING`, default 100,000.
fn pending_jobs() -> u64 {
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| knob("LRP_BENCH_PENDING", 100_000))
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Default knobs, except caps high enough that the loops measure hand-outs
/// rather than refusals: a prover asks about once per 10,000 decisions, one
/// simulated millisecond apart, so it holds ~30 live hand-outs at a time.
fn config() -> LrpConfig {
    LrpConfig {
        max_held_per_prover: 256,
        max_live_holders: 16,
        policy: ReservePolicy::Lrp,
        ..LrpConfig::default()
    }
}

/// Accepted proofs each prover earns before the timed loops, so that its
/// allowance (one plus its proofs, see the probation rule) is not what binds.
const TRUST_PROOFS: u64 = 64;

/// Ed25519-like keys: uniformly spread bytes, as real public keys are.
fn prover(i: u64) -> PublicKey {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    key[8..16].copy_from_slice(&i.to_le_bytes());
    PublicKey(key)
}

/// A crowd driven one step of simulated time per decision: 1 ms for 100,000
/// pending jobs, longer for fewer, so a job comes round the queue no sooner
/// than 100 s (past the default minimum re-serve age) after its hand-out.
struct Crowd {
    lrp: Lrp,
    /// Decisions so far: the clock in ms, and whose turn it is.
    tick: u64,
    next_batch: u64,
    /// Submitted batches not yet forgotten.
    open_batches: Vec<BatchId>,
}

impl Crowd {
    /// `pending_jobs()` jobs, each handed out once.
    fn new() -> Self {
        let mut crowd = Self {
            lrp: Lrp::new(config()).expect("bench config is valid"),
            tick: 0,
            next_batch: 1,
            open_batches: Vec::new(),
        };
        crowd.earn_trust();
        crowd.submit(pending_jobs());
        for _ in 0..pending_jobs() {
            crowd.ask();
        }
        crowd
    }

    /// Every prover proves [`TRUST_PROOFS`] jobs of a warm-up batch, which is
    /// then forgotten: the crowd is past probation, as a working one is.
    fn earn_trust(&mut self) {
        let batch = self.submit(provers() * TRUST_PROOFS);
        let at = Timestamp(0);
        for _ in 0..TRUST_PROOFS {
            for i in 0..provers() {
                let prover = prover(i);
                let Decision::Assign(h) = decide(&mut self.lrp, prover, at) else {
                    panic!("warm-up job refused");
                };
                self.lrp.apply(&LrpEvent::Complete {
                    job: h.job,
                    request: h.request,
                    prover,
                    now: at,
                });
            }
        }
        self.forget_finished();
        assert!(self.lrp.batch(batch).is_none(), "warm-up batch finished");
    }

    fn submit(&mut self, n: u64) -> BatchId {
        let batch = BatchId(self.next_batch);
        self.next_batch += 1;
        let n = u32::try_from(n).expect("batch fits in u32");
        let jobs = (0..n).map(|i| JobId::new(batch, i)).collect();
        self.lrp.apply(&LrpEvent::Submit { jobs });
        self.open_batches.push(batch);
        batch
    }

    /// The next asking prover (a scrambled turn, so no prover is in lock-step
    /// with the queue) and the time it asks.
    fn next(&mut self) -> (PublicKey, Timestamp) {
        self.tick += 1;
        let turn = (self.tick.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % provers();
        (prover(turn), self.now())
    }

    fn ask(&mut self) -> (PublicKey, Handout) {
        let (p, now) = self.next();
        match decide(&mut self.lrp, p, now) {
            Decision::Assign(h) => (p, h),
            other => panic!("bench crowd was refused work: {other:?}"),
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp(self.tick * 100_000u64.div_ceil(pending_jobs()).max(1))
    }

    fn forget_finished(&mut self) {
        let lrp = &mut self.lrp;
        self.open_batches.retain(|&b| {
            if lrp.is_finished(b) {
                lrp.apply(&LrpEvent::Forget { batch: b });
                false
            } else {
                true
            }
        });
    }
}

/// Runs `iters` timed decisions in rounds of at most half the pending jobs,
/// so that the untimed work after each round restores the crowd before the
/// queue comes round again; returns the total timed duration.
/// One request through `apply`, the scheduler's only mutator.
fn decide(lrp: &mut Lrp, prover: PublicKey, now: Timestamp) -> Decision {
    match lrp.apply(&LrpEvent::Request { prover, now }) {
        LrpOutcome::Decided(decision) => decision,
        other => unreachable!("a request is answered by a decision: {other:?}"),
    }
}

fn in_rounds(iters: u64, mut round: impl FnMut(u64) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min((pending_jobs() / 2).max(1));
        left -= n;
        total += round(n);
    }
    total
}

fn bench_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);

    let mut crowd = Crowd::new();
    group.bench_function("reserve", |b| {
        b.iter_custom(|iters| {
            in_rounds(iters, |n| {
                let mut handed = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
                let watch = Stopwatch::start();
                for _ in 0..n {
                    let (p, now) = crowd.next();
                    handed.push((p, black_box(decide(&mut crowd.lrp, p, now))));
                }
                let elapsed = watch.elapsed();
                let now = crowd.now();
                for (p, d) in handed {
                    let Decision::Assign(h) = d else {
                        panic!("re-serve refused: {d:?}")
                    };
                    assert!(h.reserve);
                    let released = crowd.lrp.apply(&LrpEvent::Release {
                        job: h.job,
                        request: h.request,
                        prover: p,
                        now,
                    });
                    assert!(matches!(
                        released,
                        LrpOutcome::Released(ReleaseOutcome::Released { .. })
                    ));
                }
                elapsed
            })
        })
    });

    group.bench_function("fresh", |b| {
        b.iter_custom(|iters| {
            in_rounds(iters, |n| {
                crowd.submit(n);
                let mut handed = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
                let watch = Stopwatch::start();
                for _ in 0..n {
                    let (p, now) = crowd.next();
                    handed.push((p, black_box(decide(&mut crowd.lrp, p, now))));
                }
                let elapsed = watch.elapsed();
                let now = crowd.now();
                for (p, d) in handed {
                    let Decision::Assign(h) = d else {
                        panic!("fresh hand-out refused: {d:?}")
                    };
                    assert!(!h.reserve);
                    let done = crowd.lrp.apply(&LrpEvent::Complete {
                        job: h.job,
                        request: h.request,
                        prover: p,
                        now,
                    });
                    assert!(matches!(
                        done,
                        LrpOutcome::Completed(Completion::Accepted { .. })
                    ));
                }
                crowd.forget_finished();
                assert_eq!(crowd.lrp.counts().pending, pending_jobs());
                elapsed
            })
        })
    });
    group.finish();
}

fn bench_complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("complete");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    complete_with_holders(&mut group, "accept_1_holder", 1);
    complete_with_holders(&mut group, "accept_2_holders", 2);
    group.finish();
}

/// Completions of jobs that each have `holders` hand-outs (1 or 2).
fn complete_with_holders(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    holders: u64,
) {
    let mut crowd = Crowd::new();
    for _ in 0..(holders - 1) * pending_jobs() {
        crowd.ask();
    }
    let mut pending: VecDeque<JobId> = VecDeque::new();
    for b in &crowd.open_batches {
        pending.extend((0..pending_jobs() as u32).map(|i| JobId::new(*b, i)));
    }
    let mut rng = StdRng::seed_from_u64(7);

    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            in_rounds(iters, |n| {
                let targets: Vec<(JobId, RequestId, PublicKey)> = (0..n)
                    .map(|_| {
                        let pick = rng.gen_range(0..pending.len().min(1_024));
                        let job = pending.swap_remove_front(pick).expect("pick is in range");
                        match crowd.lrp.job(job) {
                            Some(JobView::Pending { holders }) => {
                                let h = holders.last().expect("bench jobs keep a holder");
                                (job, h.request, h.prover)
                            }
                            other => panic!("{job} is not pending: {other:?}"),
                        }
                    })
                    .collect();
                let now = crowd.now();
                let watch = Stopwatch::start();
                for &(job, request, p) in &targets {
                    black_box(crowd.lrp.apply(&LrpEvent::Complete {
                        job,
                        request,
                        prover: p,
                        now,
                    }));
                }
                let elapsed = watch.elapsed();
                // Back to `pending_jobs()` jobs with about `holders` each.
                let batch = crowd.submit(n);
                pending.extend((0..n as u32).map(|i| JobId::new(batch, i)));
                for _ in 0..holders * n {
                    crowd.ask();
                }
                crowd.forget_finished();
                assert_eq!(crowd.lrp.counts().pending, pending_jobs());
                elapsed
            })
        })
    });
}

criterion_group!(benches, bench_request, bench_complete);
criterion_main!(benches);
