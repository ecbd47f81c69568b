//! Prints prover-core's size, time and memory figures as Markdown table rows.
//!
//! ```text
//! cargo run --release -p prover-core --example measure -- prove   [depth] [k] [threads]
//! cargo run --release -p prover-core --example measure -- builder [depth] [accounts] [txs]
//! cargo run --release -p prover-core --example measure -- keygen DIR [depth] [k]
//! cargo run --release -p prover-core --example measure -- prove-file DIR [threads]
//! cargo run --release -p prover-core --example measure -- circom ZKEY WTNS [threads] [reps] [by-hash]
//! ```
//! `circom` loads a snarkjs zkey and a witness and proves `reps` times on
//! `threads` threads; it prints one line of seconds (`scripts/bench-circom`
//! reads it): `load <s> prove <median s> verify <s> proof <bytes>`. With
//! `by-hash` the zkey is loaded as a prover loads one it fetched by content
//! hash: the layout checked, the points' curve checks skipped.
//! `keygen` writes a proving key and one job's witness to DIR; `prove-file`
//! loads them and proves twice (a prover's first job, then each after it),
//! which is a community prover's whole footprint.
//! Run each mode under `/usr/bin/time -v` for its peak memory: `prove` does
//! setup, one proof, verification and batch verification; `builder` builds a
//! funded state and applies one batch.

use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_groth16::Groth16;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem};
use prover_core::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map_or(default, |a| a.parse().expect("numeric argument"))
}

fn row(name: &str, value: String) {
    println!("| {name} | {value} |");
}

fn constraints(config: CircuitConfig, job: &JobWitness) -> usize {
    let cs = ConstraintSystem::<Fr>::new_ref();
    TransferCircuit::with_witness(&job.witness, &job.public)
        .unwrap()
        .generate_constraints(cs.clone())
        .unwrap();
    assert!(
        cs.is_satisfied().unwrap(),
        "{config}: job must satisfy the circuit"
    );
    cs.num_constraints()
}

/// Long because it is one report: setup, a proof, verification and batch
/// verification, each timed and printed as a table row in turn.
fn prove_mode() {
    let config = CircuitConfig::new(arg(2, 20) as u32, arg(3, 8) as u32).unwrap();
    let threads = arg(4, 1) as usize;
    let pool = ThreadPool::new(threads).unwrap();
    let k = config.transfers_per_job as usize;
    println!("| {config}, {threads} thread(s) | value |\n| --- | --- |");

    let mut generator = TxGenerator::new(1, 1_000);
    let mut state = generator.genesis(config, 1_000_000_000).unwrap();
    // Enough jobs for distinct proofs in the batch-verification figure.
    let txs = generator.batch(&state, 4 * k);
    let batch = state.apply_batch(&txs).unwrap();
    let job = &batch.jobs[0];
    let n = constraints(config, job);
    row("constraints per job", n.to_string());
    row("constraints per transfer", (n / k).to_string());

    let t = Instant::now();
    let (pk, vk) = pool.install(|| setup_insecure(config, 7)).unwrap();
    row(
        "setup (insecure, seeded)",
        format!("{:.2} s", t.elapsed().as_secs_f64()),
    );
    row(
        "proving key (compressed)",
        format!("{:.1} MB", pk.size() as f64 / 1e6),
    );
    row("verifying key file", format!("{} B", vk.to_bytes().len()));
    row(
        "witness bytes per job",
        format!("{} B", job.to_bytes().len()),
    );

    let dir = std::env::temp_dir().join(format!("crowdprove-measure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pk_path = dir.join("transfer.pk");
    let t = Instant::now();
    pk.save(&pk_path).unwrap();
    let saved = t.elapsed();
    let t = Instant::now();
    let pk = ProvingKey::load(&pk_path, Some(pk.hash())).unwrap();
    row(
        "proving key save / load (hash-checked)",
        format!(
            "{:.2} s / {:.2} s",
            saved.as_secs_f64(),
            t.elapsed().as_secs_f64()
        ),
    );
    std::fs::remove_dir_all(&dir).ok();

    // Our API against ark-groth16 on the same circuit, alternating to share noise.
    let bytes = job.to_bytes();
    let (mut api, mut direct) = (0.0, 0.0);
    let mut proofs = Vec::new();
    let rounds = 2;
    for _ in 0..rounds {
        let t = Instant::now();
        let p = pool.install(|| prove(&pk, &bytes)).unwrap();
        api += t.elapsed().as_secs_f64();
        proofs.push(p);
        let w = ChunkWitness::from_bytes(&bytes).unwrap();
        let circuit = TransferCircuit::with_witness(&w, &job.public).unwrap();
        let t = Instant::now();
        pool.install(|| {
            Groth16::<Bn254>::create_random_proof_with_reduction(
                circuit,
                pk.as_ark(),
                &mut rand::rngs::OsRng,
            )
            .unwrap()
        });
        direct += t.elapsed().as_secs_f64();
    }
    row(
        "prove one job (our API)",
        format!("{:.2} s", api / rounds as f64),
    );
    row(
        "prove one job (ark-groth16 directly)",
        format!("{:.2} s", direct / rounds as f64),
    );
    row(
        "API overhead",
        format!("{:+.1} %", (api / direct - 1.0) * 100.0),
    );
    row("proof bytes", proofs[0].to_bytes().len().to_string());

    // Distinct proofs for a few jobs, repeated to 64 items.
    let pvk = vk.prepare();
    let mut items: Vec<(PublicInputs, Proof)> = vec![(job.public, proofs[0].clone())];
    for j in batch.jobs.iter().skip(1).take(3) {
        items.push((
            j.public,
            pool.install(|| prove(&pk, &j.to_bytes())).unwrap(),
        ));
    }
    let distinct = items.len();
    while items.len() < 64 {
        items.push(items[items.len() % distinct].clone());
    }
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        for (p, pr) in &items {
            pool.install(|| verify(&pvk, p, pr)).unwrap();
        }
    }
    let one = t.elapsed().as_secs_f64() / (reps * 64) as f64;
    let mut rng = StdRng::seed_from_u64(3);
    let t = Instant::now();
    for _ in 0..reps {
        pool.install(|| batch_verify(&pvk, &items, &mut rng))
            .unwrap();
    }
    let batched = t.elapsed().as_secs_f64() / (reps * 64) as f64;
    row(
        "verify one proof (prepared key)",
        format!("{:.2} ms", one * 1e3),
    );
    row(
        "batch verify 64 proofs, per proof",
        format!("{:.3} ms", batched * 1e3),
    );
    row("batch speed-up per proof", format!("{:.1}x", one / batched));
}

fn builder_mode() {
    let depth = arg(2, 20) as u32;
    let accounts = arg(3, 100_000) as u32;
    let n_txs = arg(4, 1_000) as usize;
    let config = CircuitConfig::new(depth, 8).unwrap();
    println!("| builder, depth {depth}, {accounts} accounts | value |\n| --- | --- |");
    let mut generator = TxGenerator::new(2, accounts);
    let t = Instant::now();
    let mut state = generator.genesis(config, 1_000_000).unwrap();
    row(
        "genesis (keys + tree)",
        format!("{:.1} s", t.elapsed().as_secs_f64()),
    );
    row("stored tree nodes", state.stored_nodes().to_string());
    row(
        "state bytes (to_bytes)",
        format!("{:.1} MB", state.to_bytes().len() as f64 / 1e6),
    );
    let t = Instant::now();
    let restored = Rollup::from_bytes(&state.to_bytes()).unwrap();
    row(
        "state reload (tree rebuild)",
        format!("{:.1} s", t.elapsed().as_secs_f64()),
    );
    drop(restored);
    let txs = generator.batch(&state, n_txs);
    let t = Instant::now();
    let batch = state.apply_batch(&txs).unwrap();
    let el = t.elapsed().as_secs_f64();
    row(
        &format!("apply batch of {n_txs} transfers"),
        format!(
            "{:.2} s ({} jobs, {:.2} ms per transfer)",
            el,
            batch.jobs.len(),
            el * 1e3 / n_txs as f64
        ),
    );
}

fn keygen_mode() {
    let dir = std::path::PathBuf::from(std::env::args().nth(2).expect("DIR"));
    let config = CircuitConfig::new(arg(3, 20) as u32, arg(4, 8) as u32).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let (pk, _) = setup_insecure(config, 7).unwrap();
    pk.save(dir.join("transfer.pk")).unwrap();
    std::fs::write(dir.join("transfer.pk.hash"), pk.hash().to_hex()).unwrap();
    let mut generator = TxGenerator::new(1, 1_000);
    let mut state = generator.genesis(config, 1_000_000_000).unwrap();
    let txs = generator.batch(&state, config.transfers_per_job as usize);
    let batch = state.apply_batch(&txs).unwrap();
    std::fs::write(dir.join("job.witness"), batch.jobs[0].to_bytes()).unwrap();
    println!("wrote {} key {} and one witness", config, pk.hash().short());
}

fn prove_file_mode() {
    let dir = std::path::PathBuf::from(std::env::args().nth(2).expect("DIR"));
    let threads = arg(3, 1) as usize;
    let hash: protocol::ids::ContentHash = std::fs::read_to_string(dir.join("transfer.pk.hash"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let t = Instant::now();
    let pk = ProvingKey::load(dir.join("transfer.pk"), Some(hash)).unwrap();
    let loaded = t.elapsed().as_secs_f64();
    let witness = std::fs::read(dir.join("job.witness")).unwrap();
    let pool = ThreadPool::new(threads).unwrap();
    let t = Instant::now();
    let proof = pool.install(|| prove(&pk, &witness)).unwrap();
    let first = t.elapsed().as_secs_f64();
    let t = Instant::now();
    pool.install(|| prove(&pk, &witness)).unwrap();
    println!(
        "| {} | load {loaded:.1} s, prove {first:.1} s then {:.1} s on {threads} thread(s), proof {} B |",
        pk.circuit().id(),
        t.elapsed().as_secs_f64(),
        proof.to_bytes().len()
    );
}

fn circom_mode() {
    let zkey = std::env::args().nth(2).expect("ZKEY");
    let wtns = std::env::args().nth(3).expect("WTNS");
    let threads = arg(4, 1) as usize;
    let reps = arg(5, 3).max(1) as usize;
    let t = Instant::now();
    let key = match std::env::args().nth(6).as_deref() {
        Some("by-hash") => {
            let bytes = std::fs::read(&zkey).unwrap();
            let hash = protocol::ids::ContentHash::of(&bytes);
            CircomKey::from_bytes_named(&bytes, hash).unwrap()
        }
        None => CircomKey::load(&zkey).unwrap(),
        Some(other) => panic!("unknown load mode {other:?} (by-hash)"),
    };
    let witness = CircomWitness::load(&wtns, key.num_public()).unwrap();
    let loaded = t.elapsed().as_secs_f64();
    let pool = ThreadPool::new(threads).unwrap();
    let mut times = Vec::new();
    let mut proof = None;
    for _ in 0..reps {
        let t = Instant::now();
        proof = Some(pool.install(|| key.prove(&witness)).unwrap());
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let proof = proof.expect("at least one rep");
    let t = Instant::now();
    key.verify(witness.public(), &proof).unwrap();
    println!(
        "load {loaded:.4} prove {:.4} verify {:.4} proof {}",
        times[reps / 2],
        t.elapsed().as_secs_f64(),
        proof.to_bytes().len()
    );
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("keygen") => keygen_mode(),
        Some("prove-file") => prove_file_mode(),
        Some("builder") => builder_mode(),
        Some("circom") => circom_mode(),
        Some("prove") | None => prove_mode(),
        Some(other) => {
            panic!("unknown mode {other}: use prove, builder, keygen, prove-file or circom")
        }
    }
}
