//! Criterion benchmarks: proving through our API against ark-groth16 directly,
//! single against batch verification, a prover's key load (the fetched file
//! against the expanded copy it keeps), and the native hash.
//!
//! `cargo bench -p prover-core --bench prover -- --warm-up-time 1 --measurement-time 3`
//! (`KEY_LOAD_CIRCUIT=transfer-d20-k8` for the key load of another circuit
//! than the default `transfer-d8-k2`).

use ark_bn254::{Bn254, Fr};
use ark_groth16::Groth16;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prover_core::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn job(config: CircuitConfig, n_jobs: usize) -> BuiltBatch {
    let mut generator = TxGenerator::new(1, 200);
    let mut state = generator.genesis(config, 1_000_000).unwrap();
    let k = config.transfers_per_job as usize;
    let txs = generator.batch(&state, n_jobs * k);
    state.apply_batch(&txs).unwrap()
}

fn proving(c: &mut Criterion) {
    // One transfer at full depth: the per-transfer cost without a long setup.
    let config = CircuitConfig::new(20, 1).unwrap();
    let (pk, _) = setup_insecure(config, 1).unwrap();
    let batch = job(config, 1);
    let job = &batch.jobs[0];
    let bytes = job.to_bytes();
    let mut g = c.benchmark_group("prove-d20-k1");
    g.sample_size(10);
    g.bench_function("our-api", |b| b.iter(|| prove(&pk, &bytes).unwrap()));
    g.bench_function("ark-groth16-direct", |b| {
        b.iter_batched(
            || TransferCircuit::with_witness(&job.witness, &job.public).unwrap(),
            |circuit| {
                Groth16::<Bn254>::create_random_proof_with_reduction(
                    circuit,
                    pk.as_ark(),
                    &mut rand::rngs::OsRng,
                )
                .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn verification(c: &mut Criterion) {
    // Verification cost does not depend on the circuit's size (4 public inputs).
    let config = CircuitConfig::new(8, 1).unwrap();
    let (pk, vk) = setup_insecure(config, 2).unwrap();
    let pvk = vk.prepare();
    let batch = job(config, 8);
    let proved: Vec<(PublicInputs, Proof)> = batch
        .jobs
        .iter()
        .map(|j| (j.public, prove(&pk, &j.to_bytes()).unwrap()))
        .collect();
    let items: Vec<(PublicInputs, Proof)> =
        (0..64).map(|i| proved[i % proved.len()].clone()).collect();
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(64));
    g.bench_function("64-one-by-one", |b| {
        b.iter(|| {
            for (p, pr) in &items {
                verify(&pvk, p, pr).unwrap();
            }
        })
    });
    let mut rng = StdRng::seed_from_u64(9);
    g.bench_function("64-batched", |b| {
        b.iter(|| batch_verify(&pvk, &items, &mut rng).unwrap())
    });
    g.finish();
}

fn key_loading(c: &mut Criterion) {
    let id = std::env::var("KEY_LOAD_CIRCUIT").unwrap_or_else(|_| "transfer-d8-k2".into());
    let id = protocol::ids::CircuitId::new(&id).unwrap();
    let (pk, _) = setup_insecure(CircuitConfig::from_circuit_id(&id).unwrap(), 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (fetched, expanded) = (dir.path().join("key.pk"), dir.path().join("key.expanded"));
    pk.save(&fetched).unwrap();
    pk.save_expanded(&expanded).unwrap();
    let mut g = c.benchmark_group(format!("key-load-{id}"));
    g.sample_size(10);
    g.bench_function("fetched-file-by-hash", |b| {
        b.iter(|| ProvingKey::load(&fetched, Some(pk.hash())).unwrap())
    });
    g.bench_function("expanded-copy", |b| {
        b.iter(|| ProvingKey::load_expanded(&expanded, &id, pk.hash()).unwrap())
    });
    // What the first load adds: writing the copy (synced) for the next.
    g.bench_function("writing-the-expanded-copy", |b| {
        b.iter(|| pk.save_expanded(&expanded).unwrap())
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let x = [Fr::from(1u64), Fr::from(2u64)];
    c.bench_function("poseidon-2-to-1-native", |b| b.iter(|| poseidon::hash(&x)));
}

criterion_group!(benches, verification, proving, key_loading, hashing);
criterion_main!(benches);
