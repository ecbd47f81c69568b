//! The prover's payout binding: the address its pay goes to, signed with its
//! node key once per address and kept in `<data_dir>/payout-binding`, sent
//! with every proof. The distributor records it in the ledger with the
//! prover's first credit after it changes.

use std::path::Path;

use anyhow::Context;
use protocol::{PayoutAddress, PayoutBinding, SecretKey, Timestamp, codec};
use tracing::{info, warn};

/// The file under the data dir that keeps the binding.
pub const BINDING_FILE: &str = "payout-binding";

/// The binding to send for `address` (`[prover] payout_address`; empty:
/// none). The kept binding is reused while it names the same address; a new
/// address gets a new binding whose sequence number is above the kept one
/// (and is the time it was signed, so it also outranks one lost with the
/// data dir).
pub fn binding(
    secret: &SecretKey,
    address: &str,
    data_dir: &Path,
) -> anyhow::Result<Option<PayoutBinding>> {
    if address.is_empty() {
        warn!(target: "prover", "no payout address: credits are earned but cannot be claimed on chain until [prover] payout_address is set");
        return Ok(None);
    }
    let address: PayoutAddress = address
        .parse()
        .context("[prover] payout_address (--payout-address)")?;
    let path = data_dir.join(BINDING_FILE);
    let kept = read(&path, secret);
    if let Some(kept) = kept.as_ref().filter(|k| k.address == address) {
        return Ok(Some(kept.clone()));
    }
    let seq = kept
        .map_or(0, |k| k.seq.saturating_add(1))
        .max(Timestamp::now().0);
    let binding = PayoutBinding::signed(secret, address, seq);
    crate::disk::write_durably(data_dir, &path, |file| {
        use std::io::Write;
        file.write_all(&codec::encode(&binding))
    })
    .with_context(|| format!("cannot write {}", path.display()))?;
    info!(target: "prover", %address, seq, "payout address bound (recorded in the ledger with the next credit)");
    Ok(Some(binding))
}

/// The kept binding, if there is a sound one signed by `secret`.
fn read(path: &Path, secret: &SecretKey) -> Option<PayoutBinding> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(target: "prover", path = %path.display(), error = %e, "cannot read the kept payout binding; signing a new one");
            return None;
        }
    };
    let binding: Option<PayoutBinding> = codec::decode(&bytes, 256).ok();
    let sound = binding.filter(|b| b.check(&secret.public()).is_ok());
    if sound.is_none() {
        warn!(target: "prover", path = %path.display(), "the kept payout binding is damaged or another key's; signing a new one");
    }
    sound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_is_kept_per_address_and_a_new_address_outranks_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_seed([4; 32]);
        let a = format!("0x{}", "aa".repeat(20));
        let b = format!("0x{}", "bb".repeat(20));
        assert_eq!(binding(&key, "", dir.path()).unwrap(), None);
        let first = binding(&key, &a, dir.path()).unwrap().unwrap();
        assert_eq!(first.check(&key.public()), Ok(()));
        assert_eq!(binding(&key, &a, dir.path()).unwrap(), Some(first.clone()));
        let second = binding(&key, &b, dir.path()).unwrap().unwrap();
        assert!(second.seq > first.seq);
        assert_eq!(second.address.to_string(), b);
        // Back to the first address: a new binding again, above the second.
        let third = binding(&key, &a, dir.path()).unwrap().unwrap();
        assert!(third.seq > second.seq);
        // A damaged file, or another key's binding, is replaced.
        std::fs::write(dir.path().join(BINDING_FILE), b"junk").unwrap();
        let fresh = binding(&key, &a, dir.path()).unwrap().unwrap();
        assert_eq!(fresh.check(&key.public()), Ok(()));
        let other = SecretKey::from_seed([5; 32]);
        let theirs = binding(&other, &a, dir.path()).unwrap().unwrap();
        assert_eq!(theirs.check(&other.public()), Ok(()));
        let err = binding(&key, "0x12", dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("payout_address"), "{err:#}");
    }
}
