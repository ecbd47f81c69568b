//! `crowdprove submit`: circom witness files to a distributor, as one batch.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::ApiAt;

/// Sends `witnesses` to the distributor at `at` as one batch.
pub(crate) fn submit(witnesses: &[PathBuf], at: &ApiAt) -> anyhow::Result<()> {
    // Sizes first, so a huge file is refused before it is read.
    let mut total = 0u64;
    for path in witnesses {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        total = total.saturating_add(meta.len());
    }
    if total > node::api::MAX_WITNESS_BODY as u64 {
        bail!(
            "{} witness files are {total} bytes, over the API's {}-byte limit; submit them in smaller batches",
            witnesses.len(),
            node::api::MAX_WITNESS_BODY
        );
    }
    let mut body = Vec::with_capacity(total as usize);
    for path in witnesses {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        body.extend_from_slice(&bytes);
    }
    if body.len() > node::api::MAX_WITNESS_BODY {
        bail!(
            "the witness files grew to {} bytes while being read, over the API's {}-byte limit",
            body.len(),
            node::api::MAX_WITNESS_BODY
        );
    }
    let addr = at.addr()?;
    let token = node::api::Token::read(&at.data_dir)?;
    let (code, answer) = tokio::runtime::Runtime::new()?.block_on(node::api::request_with(
        addr,
        "POST",
        "/batch/witnesses",
        &body,
        Some(&token),
    ))?;
    if code != 200 {
        bail!(
            "the distributor refused the batch ({code}): {}",
            node::api::error_text(&answer)
        );
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&answer).context("the distributor's answer is not JSON")?;
    println!(
        "batch {}: {} jobs, one per witness file; `crowdprove status` follows it",
        answer["batch"], answer["jobs"]
    );
    Ok(())
}
