//! `crowdprove proof`: a job's accepted proof, in snarkjs JSON.

use std::path::Path;

use anyhow::Context;

use super::ApiAt;

/// Writes the proof bundle of `job` from the node at `at` into `out`.
pub(crate) fn download_proof(job: &str, out: &Path, at: &ApiAt) -> anyhow::Result<()> {
    let job: protocol::JobId = job.parse()?;
    let bundle = tokio::runtime::Runtime::new()?
        .block_on(node::api::get_json(at.addr()?, &format!("/proofs/{job}")))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    prover_core::snarkjs::write_bundle(out, &bundle)?;
    println!(
        "wrote proof.json, public.json and verification_key.json of {job} (circuit {}) to {}",
        bundle["circuit"].as_str().unwrap_or("?"),
        out.display()
    );
    Ok(())
}
