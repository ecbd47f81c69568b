//! Proves one small job and writes it in snarkjs's formats, for checking with
//! the ecosystem's tools:
//!
//! ```text
//! cargo run -p prover-core --example export -- /tmp/out [depth] [k]
//! snarkjs groth16 verify /tmp/out/verification_key.json /tmp/out/public.json /tmp/out/proof.json
//! ```

use prover_core::*;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "snarkjs-out".into());
    let depth = args.next().map_or(4, |a| a.parse().expect("depth"));
    let k = args.next().map_or(2, |a| a.parse().expect("k"));
    let config = CircuitConfig::new(depth, k)?;
    let (pk, vk) = setup_insecure(config, 1)?;
    let mut generator = TxGenerator::new(1, 16);
    let mut state = generator.genesis(config, 1_000)?;
    let batch = state.apply_batch(&generator.batch(&state, k as usize))?;
    let job = &batch.jobs[0];
    let proof = prove(&pk, &job.to_bytes())?;
    verify(&vk, &job.public, &proof)?;
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone().into(),
        source,
    })?;
    export_snarkjs(&dir, &vk, &job.public, &proof)?;
    println!("wrote {dir}/verification_key.json, proof.json, public.json for {config}");
    Ok(())
}
