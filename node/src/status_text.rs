//! `crowdprove status` for a person: the `/status` document as a few
//! aligned lines and tables (the JSON stays behind `--json`). A
//! distributor's document is read as a [`DistributorStatus`]; a prover's
//! leniently, as a [`ProverStatus`]: a field it does not report shows as `-`.

use std::fmt::{Display, Write};

use serde::Deserialize;
use serde_json::Value;

use crate::status_doc::{BatchStatus, DistributorStatus, NodeView, ProverRow, ProverStatus};

/// How many batches and recent jobs the text lists.
const LIST: usize = 8;

/// What every role's document starts with, read leniently.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Header {
    role: Option<String>,
    uptime_ms: Option<u64>,
    node: NodeView,
}

/// Renders a `/status` document; `now_ms` (Unix ms) dates "ago" columns.
pub fn render(status: &Value, now_ms: u64) -> String {
    let mut out = String::new();
    let head: Header = serde_json::from_value(status.clone()).unwrap_or_default();
    let node = &head.node;
    let role = text(&head.role);
    let _ = writeln!(
        out,
        "{role} {}   up {}   dashboard http://{}/",
        text(&node.node_id),
        duration(head.uptime_ms),
        text(&node.api),
    );
    let _ = writeln!(out, "public key  {}", text(&node.public_key));
    let _ = writeln!(out, "peer id     {}", text(&node.peer_id));
    for addr in &node.listen {
        let _ = writeln!(out, "listening   {addr}");
    }
    if role == "distributor" {
        match serde_json::from_value::<DistributorStatus>(status.clone()) {
            Ok(s) => distributor(&mut out, &s, now_ms),
            Err(e) => {
                let _ = writeln!(
                    out,
                    "\ncannot read this distributor's status ({e}); --json shows it whole"
                );
            }
        }
    } else {
        let s: ProverStatus = serde_json::from_value(status.clone()).unwrap_or_default();
        prover(&mut out, &s, now_ms);
    }
    out
}

fn distributor(out: &mut String, s: &DistributorStatus, now_ms: u64) {
    let (b, j, v, l) = (&s.batches, &s.jobs, &s.verification, &s.ledger);
    let _ = writeln!(
        out,
        "circuit {}   peers {}{}",
        s.circuit,
        s.peers,
        if s.centralized {
            "   centralized baseline"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "\nbatches  {} proven / {} total ({} open)",
        b.proven, b.total, b.open
    );
    let _ = writeln!(
        out,
        "jobs     {} done, {} pending, {} fresh (batches not yet proven)",
        j.done, j.pending, j.fresh
    );
    let _ = writeln!(
        out,
        "verified {} proofs, mean {:.2} ms",
        v.proofs, v.mean_ms
    );
    let block = &l.last_block;
    let _ = writeln!(
        out,
        "ledger   height {}, {} pending; last block {} ({} txs, {}, hash {})",
        l.height,
        l.pending,
        block.height,
        block.txs,
        ago(Some(block.time_ms), now_ms),
        block.hash.chars().take(12).collect::<String>(),
    );
    let line: Vec<String> = s
        .queues
        .iter()
        .map(|(name, q)| format!("{name} {}/{}", q.depth, q.capacity))
        .collect();
    let _ = writeln!(out, "queues   {}", line.join(", "));
    if let Some(chain) = &s.chain {
        chain_line(out, chain);
    }
    batches(out, &b.list);
    provers(out, &s.provers, now_ms);
}

/// Where settlement on L1 stands.
fn chain_line(out: &mut String, c: &crate::status_doc::ChainView) {
    let _ = writeln!(
        out,
        "chain    batch {} settled ({} waiting), block {} anchored ({} waiting), {} tx pending, {} gas used",
        c.settled_batch,
        c.batches_unsettled,
        c.anchored_height,
        c.blocks_unanchored,
        c.pending_txs,
        c.gas_used
    );
    if c.replaced > 0 {
        let _ = writeln!(
            out,
            "chain    {} transaction(s) replaced with higher fees after pending too long",
            c.replaced
        );
    }
    if let Some(error) = &c.last_error {
        let _ = writeln!(out, "chain    last error: {error}");
    }
}

/// The newest batches, newest first.
fn batches(out: &mut String, list: &[BatchStatus]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:>6}  {:<22} {:>5}  {:>10}",
        "batch", "progress", "txs", "latency"
    );
    for batch in list.iter().rev().take(LIST) {
        let (done, jobs) = (batch.done, u64::from(batch.jobs));
        let latency = batch.latency_ms.map_or("proving".to_string(), |ms| {
            format!("{:.1} s", ms as f64 / 1e3)
        });
        let _ = writeln!(
            out,
            "{:>6}  {} {:>3}/{:<3} {:>5}  {:>10}",
            batch.id,
            bar(done, jobs, 12),
            done,
            jobs,
            batch.txs,
            latency
        );
    }
    if list.len() > LIST {
        let _ = writeln!(out, "        … {} older", list.len() - LIST);
    }
}

/// One line per prover.
fn provers(out: &mut String, provers: &[ProverRow], now_ms: u64) {
    if provers.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<13}{:>8}{:>9}{:>6}{:>8}{:>9}{:>8}{:>8}{:>10}",
        "prover", "speed", "assigned", "won", "late", "invalid", "strikes", "earned", "seen"
    );
    for p in provers {
        let speed = p
            .mean_prove_ms
            .map_or("-".to_string(), |ms| format!("{:.1}s", ms / 1e3));
        let _ = writeln!(
            out,
            "{:<13}{:>8}{:>9}{:>6}{:>8}{:>9}{:>8}{:>8}{:>10}",
            p.node_id,
            speed,
            p.assigned,
            p.accepted,
            p.late,
            p.invalid,
            p.strikes,
            p.earned,
            ago(p.last_seen_ms, now_ms),
        );
    }
}

/// The prover's claim on chain: its kept balance proof and, when it watches
/// the chain, how far the distributor has anchored.
fn claimable(out: &mut String, s: &ProverStatus) {
    if let Some(proof) = &s.balance_proof {
        let _ = writeln!(
            out,
            "claim    balance {} at block {} (<data-dir>/balance-proof)",
            proof.balance, proof.height
        );
    }
    let Some(a) = &s.anchoring else { return };
    let anchored = a.anchored_height.map_or("-".to_string(), |h| h.to_string());
    let waiting = match (a.oldest_unanchored_height, a.oldest_unanchored_ms) {
        (Some(height), Some(ms)) => format!(", block {height} waiting {}s", ms / 1000),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "{} anchored to block {anchored} on {}{waiting}{}",
        if a.overdue { "UNANCHORED" } else { "chain   " },
        a.payouts,
        a.error
            .as_ref()
            .map_or(String::new(), |e| format!(" (cannot read it: {e})"))
    );
    if let Some(forged) = &a.forged_anchor {
        let _ = writeln!(
            out,
            "FORGED   the distributor anchored a root it did not sign: {forged}"
        );
    }
}

fn prover(out: &mut String, s: &ProverStatus, now_ms: u64) {
    let j = &s.jobs;
    let _ = writeln!(
        out,
        "distributor {} ({})",
        text(&s.distributor_node_id),
        text(&s.distributor)
    );
    let payout = s.payout_address.as_deref();
    let _ = writeln!(
        out,
        "payout   {}",
        payout.unwrap_or("no address set: credits cannot be claimed on chain")
    );
    let _ = writeln!(
        out,
        "\njobs     {} active, {} accepted, {} late, {} invalid, {} released, {} failed",
        text(&j.active),
        text(&j.accepted),
        text(&j.late),
        text(&j.invalid),
        text(&j.released),
        text(&j.failed)
    );
    let _ = writeln!(
        out,
        "earned   {}   receipts {} kept, {} awaited",
        text(&s.earned),
        text(&s.receipts),
        text(&s.awaiting_receipts)
    );
    if !s.receipts_overdue.is_empty() {
        let jobs: Vec<&str> = s
            .receipts_overdue
            .iter()
            .filter_map(|o| o.job.as_deref())
            .collect();
        let _ = writeln!(
            out,
            "UNPAID   the distributor has not paid for {} accepted job(s): {}",
            jobs.len(),
            jobs.join(", ")
        );
    }
    claimable(out, s);
    if s.receipts_refused.unwrap_or(0) > 0 || s.bad_verdicts.unwrap_or(0) > 0 {
        let _ = writeln!(
            out,
            "refused  {} receipt(s) that were not the promised credit, {} verdict(s) naming another proof",
            text(&s.receipts_refused),
            text(&s.bad_verdicts)
        );
    }
    if let Some(diverted) = &s.payout_diverted {
        let _ = writeln!(out, "PAYOUT DIVERTED  {diverted}");
    }
    if s.workers_stopped.unwrap_or(0) > 0 {
        let _ = writeln!(out, "workers stopped: {}", text(&s.workers_stopped));
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(out, "last error: {e}");
    }
    now_doing(out, s);
    recent_jobs(out, &s.recent_jobs, now_ms);
}

/// What the prover's workers and key cache are doing, and how long its
/// first job took.
fn now_doing(out: &mut String, s: &ProverStatus) {
    let workers: Vec<String> = s
        .workers
        .iter()
        .map(|w| {
            let job = w
                .job
                .as_deref()
                .map(|j| format!(" {j}"))
                .unwrap_or_default();
            format!("{} {}{job} ({})", w.slot, w.doing, duration(Some(w.for_ms)))
        })
        .collect();
    if !workers.is_empty() {
        let _ = writeln!(out, "workers  {}", workers.join(", "));
    }
    if let Some(k) = &s.key {
        let of = k
            .total_bytes
            .map_or("?".into(), |t| format!("{:.1}", mb(t)));
        let _ = writeln!(
            out,
            "key      {}: {} {:.1} of {of} MB",
            k.key.get(..12).unwrap_or(&k.key),
            k.doing,
            mb(k.bytes)
        );
    }
    let f = &s.first_job;
    if f.assigned_ms.is_some() {
        let seconds =
            |ms: Option<u64>| ms.map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1e3));
        let _ = writeln!(
            out,
            "first job  assigned after {}, key ready after {} (download {}, load {}), accepted after {}",
            seconds(f.assigned_ms),
            seconds(f.key_ready_ms),
            seconds(f.key_download_ms),
            seconds(f.key_load_ms),
            seconds(f.accepted_ms)
        );
    }
}

/// Bytes in MB (10^6).
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// A prover's newest finished jobs, newest first.
fn recent_jobs(out: &mut String, jobs: &[crate::status_doc::RecentJobStatus], now_ms: u64) {
    if jobs.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<12}{:<10}{:>9}{:>8}{:>10}",
        "job", "outcome", "proving", "reward", "ended"
    );
    for r in jobs.iter().take(LIST) {
        let proving = r
            .prove_ms
            .map_or("-".to_string(), |ms| format!("{:.1}s", ms as f64 / 1e3));
        let _ = writeln!(
            out,
            "{:<12}{:<10}{:>9}{:>8}{:>10}",
            text(&r.job),
            text(&r.outcome),
            proving,
            text(&r.reward),
            ago(r.ended_ms, now_ms),
        );
    }
}

/// A field as plain text, missing as `-`.
fn text<T: Display>(value: &Option<T>) -> String {
    value.as_ref().map_or("-".into(), ToString::to_string)
}

fn duration(ms: Option<u64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn ago(then_ms: Option<u64>, now_ms: u64) -> String {
    then_ms.map_or("-".into(), |t| {
        duration(Some(now_ms.saturating_sub(t))) + " ago"
    })
}

fn bar(done: u64, total: u64, width: u64) -> String {
    let filled = (width * done).checked_div(total).unwrap_or(0).min(width);
    format!(
        "[{}{}]",
        "#".repeat(filled as usize),
        ".".repeat((width - filled) as usize)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_distributor_reads_as_lines_and_tables() {
        let status = crate::status_doc::tests::sample_distributor_json();
        let text = render(&status, 100_000);
        for expected in [
            "distributor abc123   up 2m05s   dashboard http://127.0.0.1:8100/",
            "batches  1 proven / 2 total (1 open)",
            "ledger   height 3, 0 pending; last block 3 (2 txs, 10s ago, hash aabbccddeeff)",
            "queues   network_events 3/1024",
            "[############]   4/4",
            "proving",
            "1.5s",
            "1s ago",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn a_prover_and_missing_fields() {
        let status = json!({
            "role": "prover", "node": {"node_id": "p1"},
            "distributor_node_id": "d1", "jobs": {"accepted": 2},
            "earned": 200, "last_error": "distributor unreachable",
            "recent_jobs": [{"job": "b1/j0", "outcome": "accepted", "prove_ms": 2000, "reward": 100, "ended_ms": 1000}],
            "receipts_overdue": [{"job": "b1/j0", "owed_ms": 700000, "refused": null}],
            "receipts_refused": 1,
            "balance_proof": {"height": 4, "balance": 300},
            "workers": [{"slot": 0, "doing": "proving", "job": "b1/j1", "for_ms": 1500},
                {"slot": 1, "doing": "asking", "job": null, "for_ms": 0}],
            "key": {"key": "0de074ed41a81df1eb145af0", "doing": "downloading",
                "bytes": 19000000, "total_bytes": 45000000},
            "first_job": {"assigned_ms": 300, "key_download_ms": 20100, "key_bytes": 45000000,
                "key_load_ms": 5600, "key_ready_ms": 26000, "accepted_ms": null},
            "anchoring": {"payouts": "0xab", "anchored_height": 2, "unanchored_blocks": 1,
                "oldest_unanchored_height": 3, "oldest_unanchored_ms": 700000,
                "deadline_ms": 600000, "overdue": true, "error": null,
                "forged_anchor": "block 2: anchored balance root 06, signed 05"},
        });
        let text = render(&status, 3000);
        for expected in [
            "claim    balance 300 at block 4",
            "UNANCHORED anchored to block 2 on 0xab, block 3 waiting 700s",
            "FORGED   the distributor anchored a root it did not sign: block 2: anchored",
            "prover p1   up -",
            "distributor d1 (-)",
            "- active, 2 accepted",
            "last error: distributor unreachable",
            "b1/j0       accepted       2.0s     100    2s ago",
            "UNPAID   the distributor has not paid for 1 accepted job(s): b1/j0",
            "refused  1 receipt(s) that were not the promised credit, - verdict(s)",
            "workers  0 proving b1/j1 (1s), 1 asking (0s)",
            "key      0de074ed41a8: downloading 19.0 of 45.0 MB",
            "first job  assigned after 0.3s, key ready after 26.0s (download 20.1s, load 5.6s), accepted after -",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }
}
