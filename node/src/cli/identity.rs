//! `crowdprove identity`: the public key and node id of a key file.

use std::path::Path;

use protocol::SecretKey;

/// Prints the identity of the key file at `key`.
pub(crate) fn identity(key: &Path) -> anyhow::Result<()> {
    let secret = SecretKey::load(key)?;
    print_identity(&secret, key, "loaded");
    Ok(())
}

/// Prints the key file's path (after `verb`), node id and public key.
pub(crate) fn print_identity(secret: &SecretKey, path: &Path, verb: &str) {
    let public = secret.public();
    println!("{verb} key file {}", path.display());
    println!("node id     {}", public.node_id());
    println!("public key  {public}");
}
