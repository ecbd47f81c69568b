//! Verified and credited submissions per second: the distributor's
//! verification pool and payout writer (batched verification, group
//! commits) against one-by-one verification with an fsync per credit, in
//! the same run on the same proofs. Run through `scripts/bench-distributor`,
//! which prints the table docs/benchmarks.md keeps.
//!
//! Usage: bench_distributor [SUBMISSIONS] [DISTINCT_PROOFS]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::Instant;

use node::disk::Space;
use node::distributor::payout::Payout;
use node::distributor::verify::{Checked, PoolConfig, ProofCheck, VerifyPool};
use node::metrics::Metrics;
use protocol::{BatchId, CircuitId, ContentHash, JobId, SecretKey};
use prover_core::{CircuitConfig, Proof, PublicInputs, TxGenerator};

// Long on purpose: one benchmark read top to bottom, each measured stage
// (verify, pay, the pipeline) beside the baseline it is compared with.
fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let submissions: usize = args.next().map_or(Ok(2048), |a| a.parse())?;
    let distinct: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let circuit = CircuitId::new("transfer-d4-k1").expect("valid id");
    let config = CircuitConfig::from_circuit_id(&circuit)?;
    eprintln!("setting up {circuit} and proving {distinct} jobs ...");
    let (pk, vk) = prover_core::setup_insecure(config, 1)?;
    let pvk = Arc::new(vk.prepare());
    let mut generator = TxGenerator::new(3, 16);
    let mut rollup = generator.genesis(config, 1_000_000)?;
    let txs = generator.batch(&rollup, distinct);
    let built = rollup.apply_batch(&txs)?;
    let proofs: Vec<(PublicInputs, Vec<u8>)> = built
        .jobs
        .iter()
        .map(|j| {
            let proof = prover_core::prove(&pk, &j.to_bytes()).expect("proves");
            (j.public, proof.to_bytes().to_vec())
        })
        .collect();
    let item = |i: usize| &proofs[i % proofs.len()];
    let prover = SecretKey::from_seed([2; 32]).public();
    let hashes: Arc<Vec<ContentHash>> =
        Arc::new(proofs.iter().map(|(_, p)| ContentHash::of(p)).collect());
    let credit = move |i: usize| {
        ledger::Credit::new(
            prover,
            JobId::new(BatchId(1), i as u32),
            100,
            hashes[i % hashes.len()],
        )
    };
    let secret = SecretKey::from_seed([1; 32]);
    let open_ledger =
        |dir: &std::path::Path| ledger::Ledger::open(dir, &secret, ledger::LedgerConfig::default());

    // One by one: verify, then append the credit with its own fsync.
    let dir = tempfile::tempdir()?;
    let mut ledger = open_ledger(dir.path())?;
    let started = Instant::now();
    for i in 0..submissions {
        let (public, bytes) = item(i);
        let proof = Proof::from_bytes(bytes)?;
        prover_core::verify(pvk.as_ref(), public, &proof)?;
        ledger.append(&[ledger::Tx::Credit(credit(i))])?;
    }
    let one_by_one = started.elapsed().as_secs_f64();

    // Verification alone, one by one on one core, for the breakdown.
    let started = Instant::now();
    for i in 0..submissions {
        let (public, bytes) = item(i);
        prover_core::verify(pvk.as_ref(), public, &Proof::from_bytes(bytes)?)?;
    }
    let verify_only = started.elapsed().as_secs_f64();

    // The distributor's services: the pool verifies in batches on every
    // core, the payout writer credits in group commits.
    let dir = tempfile::tempdir()?;
    let shared = Arc::new(RwLock::new(open_ledger(dir.path())?));
    let metrics = Arc::new(Metrics::new());
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let credited = Arc::new(AtomicUsize::new(0));
    let paid = {
        let credited = credited.clone();
        move |()| {
            if credited.fetch_add(1, Ordering::Relaxed) + 1 == submissions {
                let _ = done_tx.send(());
            }
        }
    };
    let (payout, payout_thread) = Payout::start(
        shared.clone(),
        metrics,
        Space::floor(dir.path(), 0),
        paid,
        |e| panic!("{e}"),
    )?;
    let payout = Arc::new(std::sync::Mutex::new(payout));
    let sink = {
        let (payout, credit) = (payout.clone(), credit.clone());
        move |checked: Checked<usize, ()>| {
            let Checked::Proofs(verdicts) = checked else {
                return;
            };
            let payout = payout.lock().expect("payout lock");
            for verdict in verdicts {
                assert!(verdict.result.is_ok(), "every benchmark proof is valid");
                payout.credit(credit(verdict.context), None, ());
            }
        }
    };
    let (mut pool, pool_thread) = VerifyPool::<usize, ()>::start(
        pvk.clone(),
        PoolConfig {
            threads: cores,
            queue: submissions,
            max_batch: 256,
        },
        sink,
    )?;
    let started = Instant::now();
    for i in 0..submissions {
        let (public, bytes) = item(i);
        let check = ProofCheck {
            public: (*public).into(),
            proof: bytes.clone(),
            context: i,
        };
        if pool.submit(check).is_err() {
            anyhow::bail!("the verification queue is full");
        }
    }
    done_rx.recv()?;
    let batched = started.elapsed().as_secs_f64();
    pool.close();
    pool_thread.join();
    payout.lock().expect("payout lock").close();
    drop(payout);
    payout_thread.join();
    assert_eq!(
        shared.read().expect("ledger lock").balance(&prover),
        100 * submissions as u64
    );

    let rate = |s: f64| submissions as f64 / s;
    println!("| mode | submissions | seconds | per second | vs one-by-one |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| one by one: verify, then an fsync per credit | {submissions} | {one_by_one:.2} | {:.0} | 1.00 |",
        rate(one_by_one)
    );
    println!(
        "| verification alone, one by one | {submissions} | {verify_only:.2} | {:.0} | {:.2} |",
        rate(verify_only),
        one_by_one / verify_only
    );
    println!(
        "| pool ({cores} threads, batches ≤ 256) + group-commit payout | {submissions} | {batched:.2} | {:.0} | {:.2} |",
        rate(batched),
        one_by_one / batched
    );
    Ok(())
}
