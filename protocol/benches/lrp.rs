//! LRP decision throughput with 10,000 provers and 100,000 pending jobs.
//!
//! Each case builds its crowd untimed for every sample, then times only the
//! decisions; criterion's throughput line (elem/s) is decisions per second.
//!
//! - `request/reserve`: every job already handed out once, no fresh job left,
//!   so each request re-serves the queue head and moves it to the tail.
//! - `request/fresh`: 100,000 pending jobs plus fresh ones; each request hands
//!   out a fresh job.
//! - `complete`: every job held by two provers; each completion accepts the
//!   later hand-out and supersedes the other (seeded random job order). The
//!   crowd has 100,000 jobs more than are completed, so at least 100,000 stay
//!   pending throughout.
//!
//! Run: `cargo bench -p protocol --bench lrp -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::lrp::{Decision, Handout, Lrp, LrpConfig};
use protocol::{BatchId, JobId, PublicKey, Timestamp};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

const PROVERS: u64 = 10_000;
const PENDING: u64 = 100_000;
/// Time between two timed decisions: 100,000 of them span 100 s, past the
/// default minimum re-serve age, so the head of the queue is always ready.
const TICK_MS: u64 = 1;

/// Default knobs, except per-prover and per-job caps high enough that the
/// timed loop measures hand-outs rather than refusals (each prover asks every
/// 10,000 decisions, i.e. every 10 s of simulated time).
fn config() -> LrpConfig {
    LrpConfig {
        max_held_per_prover: 64,
        max_live_holders: 16,
        ..LrpConfig::default()
    }
}

/// Ed25519-like keys: uniformly spread bytes, as real public keys are.
fn prover(i: u64) -> PublicKey {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    key[8..16].copy_from_slice(&i.to_le_bytes());
    PublicKey(key)
}

/// A scheduler with `jobs` jobs submitted and `handed` of them handed out once
/// at time 0, round-robin over the crowd.
fn crowd(jobs: u64, handed: u64) -> (Lrp, Vec<(PublicKey, Handout)>) {
    let mut lrp = Lrp::new(config()).expect("bench config is valid");
    lrp.submit((0..jobs).map(|i| JobId::new(BatchId(1 + i / 1_000_000), (i % 1_000_000) as u32)));
    let handouts = (0..handed)
        .map(|i| {
            let p = prover(i % PROVERS);
            match lrp.request(p, Timestamp(0)) {
                Decision::Assign(h) => (p, h),
                other => panic!("setup hand-out refused: {other:?}"),
            }
        })
        .collect();
    (lrp, handouts)
}

fn bench_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);

    group.bench_function("reserve", |b| {
        b.iter_custom(|iters| {
            let (mut lrp, _) = crowd(PENDING, PENDING);
            let start_ms = 3_600_000;
            let start = Instant::now();
            for i in 0..iters {
                let now = Timestamp(start_ms + i * TICK_MS);
                let d = lrp.request(prover(i % PROVERS), now);
                debug_assert!(matches!(d, Decision::Assign(h) if h.reserve));
                black_box(d);
            }
            start.elapsed()
        })
    });

    group.bench_function("fresh", |b| {
        b.iter_custom(|iters| {
            let (mut lrp, _) = crowd(PENDING + iters, PENDING);
            let start_ms = 3_600_000;
            let start = Instant::now();
            for i in 0..iters {
                let now = Timestamp(start_ms + i * TICK_MS);
                let d = lrp.request(prover(i % PROVERS), now);
                debug_assert!(matches!(d, Decision::Assign(h) if !h.reserve));
                black_box(d);
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn bench_complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("complete");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.bench_function("accept", |b| {
        b.iter_custom(|iters| {
            let jobs = PENDING + iters;
            let (mut lrp, _) = crowd(jobs, jobs);
            // A second round of hand-outs, a minute later, so every job has two
            // holders from different provers.
            let mut second: Vec<(PublicKey, Handout)> = (0..jobs)
                .map(|i| {
                    let p = prover((i + 1) % PROVERS);
                    match lrp.request(p, Timestamp(60_000)) {
                        Decision::Assign(h) => (p, h),
                        other => panic!("setup re-serve refused: {other:?}"),
                    }
                })
                .collect();
            second.shuffle(&mut StdRng::seed_from_u64(7));
            second.truncate(usize::try_from(iters).expect("iters fit in memory"));
            let now = Timestamp(120_000);
            let start = Instant::now();
            for (p, h) in &second {
                black_box(lrp.complete(h.job, h.request, *p, now));
            }
            let elapsed = start.elapsed();
            assert_eq!(
                lrp.counts().pending,
                PENDING,
                "every completion was accepted"
            );
            elapsed.max(Duration::from_nanos(1))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_request, bench_complete);
criterion_main!(benches);
