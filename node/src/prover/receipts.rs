//! Receipts: after an accepted proof the prover asks for the signed receipt
//! of its credit once the block holding it is cut, checks it against the
//! distributor's key and keeps it on disk, where `crowdprove ledger
//! check-receipt` can verify it offline.

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
            }
            Err(e) => warn!(target: "prover", %job, error = %format!("{e:#}"), "receipt not kept"),
        }
    }
}

/// Checks and keeps one receipt; returns the height of its block.
fn save(shared: &Shared, job: JobId, bytes: &[u8]) -> anyhow::Result<u64> {
    let receipt = ledger::Receipt::decode(bytes).context("receipt does not decode")?;
    let credit = ledger::verify_receipt(&receipt, &shared.client.distributor())
        .context("receipt does not verify against the distributor's key")?;
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
    Ok(receipt.header.header.height)
}

/// Where a prover keeps the receipt of `job`.
pub fn receipt_path(dir: &Path, job: JobId) -> PathBuf {
    dir.join(format!("b{}-j{}.receipt", job.batch.0, job.index))
}
