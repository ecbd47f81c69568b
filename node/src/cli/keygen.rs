//! `crowdprove keygen`: a new node identity.

use std::path::Path;

use anyhow::Context;
use protocol::SecretKey;

/// Writes a new key file at `key` (never over an existing one) and prints
/// its identity.
pub(crate) fn keygen(key: &Path) -> anyhow::Result<()> {
    let secret = SecretKey::generate();
    secret
        .save(key)
        .context("could not create the node identity")?;
    super::identity::print_identity(&secret, key, "created");
    Ok(())
}
