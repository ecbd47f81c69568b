//! Ledger throughput: durable credits appended per second (1,000 per call
//! and one per call), and receipts generated and verified per second.
//!
//! `cargo bench -p ledger --bench ledger -- --warm-up-time 1 --measurement-time 3`

use std::cell::Cell;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ledger::{Credit, FsyncPolicy, Ledger, LedgerConfig, Tx, verify_receipt};
use protocol::{BatchId, ContentHash, JobId, PublicKey, SecretKey};

const BLOCK: usize = 1000;
const PROVERS: u64 = 100;

fn provers() -> Vec<PublicKey> {
    (0..PROVERS)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            SecretKey::from_seed(seed).public()
        })
        .collect()
}

/// `count` credits for fresh jobs, numbered on from `next`.
fn credits(provers: &[PublicKey], next: &Cell<u64>, count: usize) -> Vec<Tx> {
    (0..count)
        .map(|_| {
            let n = next.get();
            next.set(n + 1);
            let job = JobId::new(BatchId(n / 1000), (n % 1000) as u32);
            let prover = provers[(n % PROVERS) as usize];
            Tx::Credit(Credit::new(
                prover,
                job,
                100,
                ContentHash::of(&n.to_le_bytes()),
            ))
        })
        .collect()
}

fn open(dir: &tempfile::TempDir, sync: FsyncPolicy) -> Ledger {
    let config = LedgerConfig {
        sync,
        max_block_txs: BLOCK,
        max_block_age_ms: u64::MAX,
    };
    Ledger::open(
        dir.path().join("ledger"),
        &SecretKey::from_seed([1; 32]),
        config,
    )
    .unwrap()
}

fn append(c: &mut Criterion) {
    let provers = provers();
    let mut group = c.benchmark_group("append");
    for (name, sync) in [
        ("fsync", FsyncPolicy::EveryWrite),
        ("no_fsync", FsyncPolicy::Never),
    ] {
        // What the node does: one append call per block's worth, then the cut.
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = open(&dir, sync);
        let next = Cell::new(0);
        group.throughput(Throughput::Elements(BLOCK as u64));
        group.bench_function(format!("1000_credits_per_call_and_cut/{name}"), |b| {
            b.iter_batched(
                || credits(&provers, &next, BLOCK),
                |txs| {
                    ledger.append(&txs).unwrap();
                    black_box(ledger.cut_block().unwrap());
                },
                BatchSize::SmallInput,
            )
        });
        drop(ledger);

        // One credit per call: one durable write per credit, a cut every 1,000.
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = open(&dir, sync);
        let next = Cell::new(0);
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("1_credit_per_call/{name}"), |b| {
            b.iter_batched(
                || credits(&provers, &next, 1),
                |txs| {
                    ledger.append(&txs).unwrap();
                    black_box(ledger.maybe_cut_blocks(protocol::Timestamp::now()).unwrap());
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn receipts(c: &mut Criterion) {
    let provers = provers();
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(&dir, FsyncPolicy::Never);
    let next = Cell::new(0);
    for _ in 0..20 {
        ledger.append(&credits(&provers, &next, BLOCK)).unwrap();
        ledger.cut_block().unwrap();
    }
    let total = next.get();
    let job = |n: u64| JobId::new(BatchId(n / 1000), (n % 1000) as u32);
    let distributor = SecretKey::from_seed([1; 32]).public();

    let mut group = c.benchmark_group("receipt");
    group.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    group.bench_function("generate", |b| {
        b.iter(|| {
            n = (n + 7919) % total;
            black_box(ledger.receipt(job(n)).unwrap())
        })
    });
    let all: Vec<_> = (0..total)
        .step_by(97)
        .map(|n| ledger.receipt(job(n)).unwrap())
        .collect();
    let mut i = 0;
    group.bench_function("verify", |b| {
        b.iter(|| {
            i = (i + 1) % all.len();
            black_box(verify_receipt(&all[i], &distributor).unwrap());
        })
    });
    group.finish();
}

criterion_group!(benches, append, receipts);
criterion_main!(benches);
