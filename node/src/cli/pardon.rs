//! `crowdprove pardon`: lift a prover's ban in a stopped distributor's log.

use std::path::Path;

use node::config::parse_public_key;

/// Clears the strikes of `prover` (hex public key) in the distributor's
/// log under `data_dir`.
pub(crate) fn pardon(data_dir: &Path, prover: &str) -> anyhow::Result<()> {
    let key = parse_public_key(prover)?;
    match node::distributor::pardon::pardon(data_dir, key)? {
        0 => println!("prover {} has no strikes; nothing written", key.node_id()),
        n => println!(
            "prover {}: {n} strike(s) cleared; it may take work again once the distributor restarts",
            key.node_id()
        ),
    }
    Ok(())
}
