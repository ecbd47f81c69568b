//! `crowdprove setup`: a circuit's keys, from a setup or a circom zkey.

use std::path::Path;

use anyhow::{Context, bail};
use protocol::CircuitId;

/// Runs the setup of `circuit` (from `seed`, if given: INSECURE) and writes
/// its keys into `out`.
pub(crate) fn setup(
    circuit: &str,
    out: &Path,
    seed: Option<u64>,
    force: bool,
) -> anyhow::Result<()> {
    let id =
        CircuitId::new(circuit).map_err(|e| anyhow::anyhow!("invalid circuit {circuit:?}: {e}"))?;
    let config = prover_core::CircuitConfig::from_circuit_id(&id)
        .with_context(|| format!("unsupported circuit {id}"))?;
    let (pk_path, vk_path) = node::distributor::key_paths(out, &id);
    if !force && (pk_path.exists() || vk_path.exists()) {
        bail!(
            "{} already has keys for {id}; pass --force to replace them (provers holding the old key must fetch the new one)",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let started = std::time::Instant::now();
    let (pk, vk) = match seed {
        Some(seed) => {
            eprintln!("running the INSECURE setup for {id} from seed {seed} (testnets only) ...");
            prover_core::setup_insecure(config, seed)?
        }
        None => {
            eprintln!("running the setup for {id} from the OS's randomness ...");
            prover_core::setup(prover_core::Circuit::Transfer(config))?
        }
    };
    pk.save(&pk_path)?;
    vk.save(&vk_path)?;
    println!("circuit        {id}");
    println!(
        "proving key    {}  {} ({} bytes)",
        pk.hash(),
        pk_path.display(),
        pk.size()
    );
    println!("verifying key  {}  {}", vk.hash(), vk_path.display());
    println!("setup          {}", pk.setup());
    println!("setup took     {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Checks the circom `zkey` (with its constraint system, `r1cs`, which it
/// needs) and registers both, with the verifying key, in `out`.
pub(crate) fn register_zkey(
    zkey: &Path,
    r1cs: Option<&Path>,
    out: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let r1cs =
        r1cs.context("--zkey needs --r1cs: the circuit's constraint system, from `circom --r1cs`")?;
    let started = std::time::Instant::now();
    eprintln!(
        "checking {} (every point; large keys take a while) ...",
        zkey.display()
    );
    let key = prover_core::CircomKey::load(zkey)?;
    let constraints = prover_core::CircomR1cs::load(r1cs)?;
    constraints.check_matches(&key).with_context(|| {
        format!(
            "{} is not the circuit of {}",
            r1cs.display(),
            zkey.display()
        )
    })?;
    let id = key.circuit().id();
    let (zkey_path, vk_path) = node::distributor::key_paths(out, &id);
    let r1cs_path = node::distributor::r1cs_path(out, &id);
    if !force && (zkey_path.exists() || vk_path.exists()) {
        bail!(
            "{} already has keys for {id}; pass --force to replace them",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (from, to) in [(zkey, &zkey_path), (r1cs, &r1cs_path)] {
        let tmp = to.with_extension("tmp");
        std::fs::copy(from, &tmp)
            .and_then(|_| std::fs::rename(&tmp, to))
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    let vk = key.to_verifying_key();
    vk.save(&vk_path)?;
    println!("circuit        {id}");
    println!(
        "zkey           {}  {} ({} constraints, {} public signals)",
        key.hash(),
        zkey_path.display(),
        key.num_constraints(),
        key.num_public()
    );
    println!(
        "r1cs           {}  {}",
        constraints.hash(),
        r1cs_path.display()
    );
    println!("verifying key  {}  {}", vk.hash(), vk_path.display());
    println!("setup          {}", vk.setup());
    println!("checked in     {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "run the distributor with --circuit {id} --keys-dir {}",
        out.display()
    );
    Ok(())
}
