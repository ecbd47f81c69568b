//! Sign+encode and decode+verify cost per message kind.
//!
//! Times are the bench thread's on-CPU time (see `support`), so a busy
//! shared machine does not inflate them.
//!
//! `cargo bench -p protocol --bench envelope -- --warm-up-time 1 --measurement-time 3`

mod support;
use support::Stopwatch;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::envelope::{Freshness, Verifier, open, seal};
use protocol::messages::*;
use protocol::{BatchId, CircuitId, ContentHash, JobId, RequestId, SecretKey, Timestamp};
use std::hint::black_box;
use std::time::Duration;

/// Runs `op` `iters` times and returns the on-CPU time it took.
fn timed<T>(iters: u64, mut op: impl FnMut() -> T) -> Duration {
    let watch = Stopwatch::start();
    for _ in 0..iters {
        black_box(op());
    }
    watch.elapsed()
}

const NOW: Timestamp = Timestamp(1_750_000_000_000);

fn bench_kind<M: Message>(c: &mut Criterion, message: M) {
    let key = SecretKey::from_seed([1; 32]);
    let bytes = seal(&message, &key, NOW, 1);
    let mut group = c.benchmark_group(M::KIND.name());
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign+encode", |b| {
        b.iter_custom(|iters| timed(iters, || seal(black_box(&message), &key, NOW, 1)))
    });
    group.bench_function("decode+verify", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                open::<M>(black_box(&bytes), NOW, Freshness::default()).unwrap()
            })
        })
    });
    group.finish();
}

/// Long because it is one list: a message of each kind, then one bench
/// group over them.
fn messages(c: &mut Criterion) {
    let job = JobId::new(BatchId(12), 3);
    let circuit = CircuitId::new("transfer-d20-k8").unwrap();
    let hash = ContentHash::of(b"key");
    let prover = SecretKey::from_seed([2; 32]).public();

    bench_kind(
        c,
        JobRequest {
            circuits: vec![circuit.clone()],
        },
    );
    bench_kind(
        c,
        JobAnnouncement {
            batch: BatchId(12),
            jobs: (0..64).map(|i| JobId::new(BatchId(12), i)).collect(),
            circuit: circuit.clone(),
            proving_key: hash,
            verifying_key: hash,
            reward_per_job: 100,
        },
    );
    bench_kind(
        c,
        Assignment {
            job,
            request: RequestId(77),
            prover,
            circuit: circuit.clone(),
            proving_key: hash,
            witness: protocol::messages::Witness::Inline(vec![7; 8 << 10]),
            reward: 100,
        },
    );
    bench_kind(
        c,
        NoWork {
            reason: NoWorkReason::Idle,
            retry_after_ms: 500,
        },
    );
    bench_kind(
        c,
        ProofSubmission {
            job,
            request: RequestId(77),
            proof: vec![9; 128],
            payout: None,
        },
    );
    bench_kind(
        c,
        Verdict {
            job,
            request: RequestId(77),
            prover,
            proof_hash: hash,
            outcome: Outcome::Accepted { reward: 100 },
        },
    );
    bench_kind(
        c,
        Release {
            job,
            request: RequestId(77),
        },
    );
    bench_kind(
        c,
        BatchProven {
            batch: BatchId(12),
            jobs: 32,
            old_root: [1; 32],
            new_root: [2; 32],
            proofs: hash,
        },
    );
    bench_kind(
        c,
        KeyRequest {
            key: hash,
            chunk: 5,
        },
    );
    bench_kind(
        c,
        KeyChunk {
            key: hash,
            chunk: 0,
            total_len: KEY_CHUNK_BYTES as u64 * 4,
            data: vec![3; KEY_CHUNK_BYTES],
        },
    );
}

/// The distributor's real path for a job request: envelope, signature and
/// the replay guard, each request with a fresh nonce.
fn verifier_with_replay_guard(c: &mut Criterion) {
    let key = SecretKey::from_seed([1; 32]);
    let request = JobRequest {
        circuits: vec![CircuitId::new("transfer-d20-k8").unwrap()],
    };
    let envelopes: Vec<Vec<u8>> = (0..100_000).map(|n| seal(&request, &key, NOW, n)).collect();
    let mut group = c.benchmark_group("job-request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verifier (replay guard)", |b| {
        let mut verifier = Verifier::default();
        let mut next = 0;
        b.iter_custom(|iters| {
            timed(iters, || {
                if next == envelopes.len() {
                    verifier = Verifier::default();
                    next = 0;
                }
                let opened = verifier.open::<JobRequest>(&envelopes[next], NOW);
                next += 1;
                opened.unwrap()
            })
        })
    });
    group.finish();
}

/// The floor under every figure above: one bare ed25519 signature and strict
/// verification of a message the size of a job request, in the same run.
fn ed25519_baseline(c: &mut Criterion) {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::from_bytes(&[1; 32]);
    let message = [5u8; 140];
    let signature = key.sign(&message);
    let public = key.verifying_key();
    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519 sign", |b| {
        b.iter_custom(|iters| timed(iters, || key.sign(black_box(&message))))
    });
    group.bench_function("ed25519 verify_strict", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                public
                    .verify_strict(black_box(&message), &signature)
                    .unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    ed25519_baseline,
    messages,
    verifier_with_replay_guard
);
criterion_main!(benches);
