//! Receipts: after an accepted proof the prover asks for the signed receipt
//! of its credit once the block holding it is cut, checks it against the
//! distributor's key and keeps it on disk, where `crowdprove ledger
//! check-receipt` can verify it offline.
//!
//! The jobs whose receipts are still owed are kept on disk too
//! (`<receipts dir>/owed`, one job per line, replaced atomically), so a
//! prover that restarts — or is killed — between `Accepted` and its receipt
//! still asks for it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use protocol::JobId;
use protocol::messages::{AnyMessage, ReceiptRequest};
use tracing::{debug, warn};

use super::Shared;
use super::client::CallError;

/// Asks for the receipts of paid jobs whose block has been cut, checks each
/// and keeps it on disk.
pub async fn fetch(shared: &Shared) {
    let waiting = shared.tally().awaiting_receipts.clone();
    for job in waiting {
        let saved = match shared.client.call(&ReceiptRequest { job }).await {
            Ok(AnyMessage::ReceiptReply(reply)) if reply.receipt.is_empty() => continue,
            Ok(AnyMessage::ReceiptReply(reply)) => save(shared, job, &reply.receipt),
            Ok(other) => Err(anyhow!("asked for a receipt, got a {}", other.kind())),
            Err(CallError::Network(_) | CallError::Busy(_)) => return,
            Err(e) => Err(anyhow!("{e}")),
        };
        let mut t = shared.tally();
        match saved {
            Ok(height) => {
                t.receipts += 1;
                t.awaiting_receipts.retain(|j| *j != job);
                t.kept_receipt(job, height);
                if let Err(e) = save_owed(&shared.receipts_dir, &t.awaiting_receipts) {
                    warn!(target: "prover", error = %format!("{e:#}"), "the owed-receipts list is not saved");
                }
            }
            Err(e) => warn!(target: "prover", %job, error = %format!("{e:#}"), "receipt not kept"),
        }
    }
}

/// Decodes a receipt and checks it against the distributor's key: the
/// credit it proves and its block's height.
pub fn check(
    bytes: &[u8],
    distributor: &protocol::PublicKey,
) -> anyhow::Result<(ledger::Credit, u64)> {
    let receipt = ledger::Receipt::decode(bytes).context("not a receipt: it does not decode")?;
    let credit = ledger::verify_receipt(&receipt, distributor)
        .context("the receipt does not verify against the distributor's key")?;
    Ok((credit.clone(), receipt.header.header.height))
}

/// Checks and keeps one receipt; returns the height of its block.
fn save(shared: &Shared, job: JobId, bytes: &[u8]) -> anyhow::Result<u64> {
    let (credit, height) = check(bytes, &shared.client.distributor())?;
    let me = shared.client.me();
    if credit.job != job || credit.prover != me {
        bail!(
            "receipt is for job {} of {}, not ours",
            credit.job,
            credit.prover.node_id()
        );
    }
    std::fs::create_dir_all(&shared.receipts_dir)?;
    let path = receipt_path(&shared.receipts_dir, job);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    debug!(target: "prover", %job, path = %path.display(), "receipt kept");
    Ok(height)
}

/// The file listing the jobs whose receipts are owed.
fn owed_path(dir: &Path) -> PathBuf {
    dir.join("owed")
}

/// The jobs whose receipts were owed when the prover last ran.
pub fn load_owed(dir: &Path) -> anyhow::Result<Vec<JobId>> {
    let path = owed_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse()
                .with_context(|| format!("{}: {l:?} is not a job id", path.display()))
        })
        .collect()
}

/// Replaces the owed list with `owed`: written to a temporary file, synced,
/// renamed over the old one.
pub fn save_owed(dir: &Path, owed: &[JobId]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = owed_path(dir);
    let tmp = dir.join("owed.tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    for job in owed {
        writeln!(file, "{job}")?;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// What a prover's receipts folder shows: the receipts it holds (each
/// checked against the distributor's key), the files that do not check,
/// and the jobs whose receipts it is still owed.
#[derive(Debug, Default)]
pub struct Audit {
    /// Checked receipts: the credit and its block's height, by job.
    pub held: Vec<(ledger::Credit, u64)>,
    /// Receipt files that do not check, with the reason.
    pub bad: Vec<(PathBuf, String)>,
    /// Jobs accepted whose receipts are not yet fetched.
    pub owed: Vec<JobId>,
}

/// Reads and checks every receipt in `dir` against `distributor`.
pub fn audit(dir: &Path, distributor: &protocol::PublicKey) -> anyhow::Result<Audit> {
    let mut audit = Audit {
        owed: load_owed(dir)?,
        ..Audit::default()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(audit),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "receipt") {
            continue;
        }
        let checked = std::fs::read(&path)
            .context("cannot read")
            .and_then(|bytes| check(&bytes, distributor))
            .and_then(|(credit, height)| {
                if receipt_path(dir, credit.job) != path {
                    bail!(
                        "it is the receipt of job {}, filed under another name",
                        credit.job
                    );
                }
                Ok((credit, height))
            });
        match checked {
            Ok(held) => audit.held.push(held),
            Err(e) => audit.bad.push((path, format!("{e:#}"))),
        }
    }
    audit.held.sort_by_key(|(credit, _)| credit.job);
    audit.bad.sort();
    Ok(audit)
}

/// Where a prover keeps the receipt of `job`.
pub fn receipt_path(dir: &Path, job: JobId) -> PathBuf {
    dir.join(format!("b{}-j{}.receipt", job.batch.0, job.index))
}
