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
    let max = prover_core::circom::MAX_ZKEY_BYTES;
    let len = std::fs::metadata(zkey)
        .with_context(|| format!("cannot read {}", zkey.display()))?
        .len();
    if len > max {
        bail!(
            "{} is {len} bytes; a zkey may be at most {max}",
            zkey.display()
        );
    }
    let bytes = std::fs::read(zkey).with_context(|| format!("cannot read {}", zkey.display()))?;
    let key = prover_core::CircomKey::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable zkey", zkey.display()))?;
    let vk = key.to_verifying_key();
    let circom = Circom {
        key,
        bytes,
        vk,
        from: zkey.display().to_string(),
    };
    register(circom, r1cs, out, force, started)
}

/// Runs a Groth16 setup of the circom circuit `r1cs` (from `seed`, if
/// given: INSECURE) and registers the zkey it makes, as `--zkey` would.
pub(crate) fn setup_circom(
    r1cs: &Path,
    out: &Path,
    seed: Option<u64>,
    force: bool,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let constraints = prover_core::CircomR1cs::load(r1cs)?;
    let made = match seed {
        Some(seed) => {
            eprintln!(
                "running the INSECURE setup of {} from seed {seed} (testnets only) ...",
                r1cs.display()
            );
            prover_core::circom::setup::setup_insecure(&constraints, seed)?
        }
        None => {
            eprintln!(
                "running the setup of {} from the OS's randomness ...",
                r1cs.display()
            );
            prover_core::circom::setup::setup(&constraints)?
        }
    };
    let circom = Circom {
        key: made.key,
        bytes: made.zkey,
        vk: made.verifying_key,
        from: "the key set up from it".into(),
    };
    register(circom, r1cs, out, force, started)
}

/// A circom circuit's proving key, its bytes, its verifying key, and
/// where it came from (for errors).
struct Circom {
    key: prover_core::CircomKey,
    bytes: Vec<u8>,
    vk: prover_core::VerifyingKey,
    from: String,
}

/// Checks `circom` against its constraint system `r1cs` and writes the
/// zkey, the r1cs and the verifying key into `out`.
fn register(
    circom: Circom,
    r1cs: &Path,
    out: &Path,
    force: bool,
    started: std::time::Instant,
) -> anyhow::Result<()> {
    let Circom {
        key,
        bytes,
        vk,
        from,
    } = circom;
    let constraints = prover_core::CircomR1cs::load(r1cs)?;
    constraints
        .check_matches(&key)
        .with_context(|| format!("{} is not the circuit of {from}", r1cs.display()))?;
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
    let r1cs_bytes =
        std::fs::read(r1cs).with_context(|| format!("cannot read {}", r1cs.display()))?;
    for (body, to) in [(&bytes, &zkey_path), (&r1cs_bytes, &r1cs_path)] {
        let tmp = to.with_extension("tmp");
        std::fs::write(&tmp, body)
            .and_then(|_| std::fs::rename(&tmp, to))
            .with_context(|| format!("cannot write {}", to.display()))?;
    }
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
    println!("took           {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "run the distributor with --circuit {id} --keys-dir {}",
        out.display()
    );
    Ok(())
}
