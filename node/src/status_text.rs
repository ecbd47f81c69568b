//! `crowdprove status` for a person: the `/status` document as a few
//! aligned lines and tables (the JSON stays behind `--json`). Reads the
//! document leniently: a field a node does not report shows as `-`.

use std::fmt::Write;

use serde_json::Value;

/// How many batches and recent jobs the text lists.
const LIST: usize = 8;

/// Renders a `/status` document; `now_ms` (Unix ms) dates "ago" columns.
pub fn render(status: &Value, now_ms: u64) -> String {
    let mut out = String::new();
    let node = &status["node"];
    let role = text(&status["role"]);
    let _ = writeln!(
        out,
        "{role} {}   up {}   dashboard http://{}/",
        text(&node["node_id"]),
        duration(status["uptime_ms"].as_u64()),
        text(&node["api"]),
    );
    let _ = writeln!(out, "public key  {}", text(&node["public_key"]));
    let _ = writeln!(out, "peer id     {}", text(&node["peer_id"]));
    for addr in node["listen"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "listening   {}", text(addr));
    }
    if role == "distributor" {
        distributor(&mut out, status, now_ms);
    } else {
        prover(&mut out, status, now_ms);
    }
    out
}

fn distributor(out: &mut String, s: &Value, now_ms: u64) {
    let (b, j, v, l) = (&s["batches"], &s["jobs"], &s["verification"], &s["ledger"]);
    let _ = writeln!(
        out,
        "circuit {}   peers {}{}",
        text(&s["circuit"]),
        text(&s["peers"]),
        if s["centralized"] == true {
            "   centralized baseline"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "\nbatches  {} proven / {} total ({} open)",
        text(&b["proven"]),
        text(&b["total"]),
        text(&b["open"])
    );
    let _ = writeln!(
        out,
        "jobs     {} done, {} pending, {} fresh (batches not yet proven)",
        text(&j["done"]),
        text(&j["pending"]),
        text(&j["fresh"])
    );
    let _ = writeln!(
        out,
        "verified {} proofs, mean {:.2} ms",
        text(&v["proofs"]),
        v["mean_ms"].as_f64().unwrap_or(0.0)
    );
    let block = &l["last_block"];
    let _ = writeln!(
        out,
        "ledger   height {}, {} pending; last block {} ({} txs, {}, hash {})",
        text(&l["height"]),
        text(&l["pending"]),
        text(&block["height"]),
        text(&block["txs"]),
        ago(block["time_ms"].as_u64(), now_ms),
        short(&block["hash"]),
    );
    if let Some(queues) = s["queues"].as_object() {
        let line: Vec<String> = queues
            .iter()
            .map(|(name, q)| format!("{name} {}/{}", text(&q["depth"]), text(&q["capacity"])))
            .collect();
        let _ = writeln!(out, "queues   {}", line.join(", "));
    }
    let list = b["list"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !list.is_empty() {
        let _ = writeln!(
            out,
            "\n{:>6}  {:<22} {:>5}  {:>10}",
            "batch", "progress", "txs", "latency"
        );
        for batch in list.iter().rev().take(LIST) {
            let (done, jobs) = (
                batch["done"].as_u64().unwrap_or(0),
                batch["jobs"].as_u64().unwrap_or(0),
            );
            let latency = batch["latency_ms"]
                .as_u64()
                .map_or("proving".to_string(), |ms| {
                    format!("{:.1} s", ms as f64 / 1e3)
                });
            let _ = writeln!(
                out,
                "{:>6}  {} {:>3}/{:<3} {:>5}  {:>10}",
                text(&batch["id"]),
                bar(done, jobs, 12),
                done,
                jobs,
                text(&batch["txs"]),
                latency
            );
        }
        if list.len() > LIST {
            let _ = writeln!(out, "        … {} older", list.len() - LIST);
        }
    }
    let provers = s["provers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !provers.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<13}{:>8}{:>9}{:>6}{:>8}{:>9}{:>8}{:>8}{:>10}",
            "prover", "speed", "assigned", "won", "late", "invalid", "strikes", "earned", "seen"
        );
        for p in provers {
            let speed = p["mean_prove_ms"]
                .as_f64()
                .map_or("-".to_string(), |ms| format!("{:.1}s", ms / 1e3));
            let _ = writeln!(
                out,
                "{:<13}{:>8}{:>9}{:>6}{:>8}{:>9}{:>8}{:>8}{:>10}",
                text(&p["node_id"]),
                speed,
                text(&p["assigned"]),
                text(&p["accepted"]),
                text(&p["late"]),
                text(&p["invalid"]),
                text(&p["strikes"]),
                text(&p["earned"]),
                ago(p["last_seen_ms"].as_u64(), now_ms),
            );
        }
    }
}

fn prover(out: &mut String, s: &Value, now_ms: u64) {
    let j = &s["jobs"];
    let _ = writeln!(
        out,
        "distributor {} ({})",
        text(&s["distributor_node_id"]),
        text(&s["distributor"])
    );
    let _ = writeln!(
        out,
        "\njobs     {} active, {} accepted, {} late, {} invalid, {} released, {} failed",
        text(&j["active"]),
        text(&j["accepted"]),
        text(&j["late"]),
        text(&j["invalid"]),
        text(&j["released"]),
        text(&j["failed"])
    );
    let _ = writeln!(
        out,
        "earned   {}   receipts {} kept, {} awaited",
        text(&s["earned"]),
        text(&s["receipts"]),
        text(&s["awaiting_receipts"])
    );
    if s["workers_stopped"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(out, "workers stopped: {}", text(&s["workers_stopped"]));
    }
    if let Some(e) = s["last_error"].as_str() {
        let _ = writeln!(out, "last error: {e}");
    }
    let recent = s["recent_jobs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !recent.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<12}{:<10}{:>9}{:>8}{:>10}",
            "job", "outcome", "proving", "reward", "ended"
        );
        for r in recent.iter().take(LIST) {
            let proving = r["prove_ms"]
                .as_u64()
                .map_or("-".to_string(), |ms| format!("{:.1}s", ms as f64 / 1e3));
            let _ = writeln!(
                out,
                "{:<12}{:<10}{:>9}{:>8}{:>10}",
                text(&r["job"]),
                text(&r["outcome"]),
                proving,
                text(&r["reward"]),
                ago(r["ended_ms"].as_u64(), now_ms),
            );
        }
    }
}

/// A value as plain text: strings unquoted, missing as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn short(value: &Value) -> String {
    value
        .as_str()
        .map_or("-".into(), |h| h.chars().take(12).collect())
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
        let status = json!({
            "role": "distributor",
            "node": {"node_id": "abc123", "api": "127.0.0.1:8100", "public_key": "00ff", "listen": ["/ip4/127.0.0.1/tcp/1"]},
            "uptime_ms": 125_000, "peers": 2, "circuit": "transfer-d4-k1",
            "batches": {"total": 2, "proven": 1, "open": 1, "list": [
                {"id": 1, "jobs": 4, "txs": 4, "done": 4, "latency_ms": 2500},
                {"id": 2, "jobs": 4, "txs": 4, "done": 1, "latency_ms": null}]},
            "jobs": {"done": 1, "pending": 2, "fresh": 1},
            "verification": {"proofs": 5, "mean_ms": 4.5},
            "queues": {"network_events": {"depth": 3, "capacity": 1024}},
            "ledger": {"height": 3, "pending": 0, "last_block": {"height": 3, "txs": 2, "time_ms": 90_000, "hash": "aabbccddeeff00112233"}},
            "provers": [{"node_id": "p1", "mean_prove_ms": 1500.0, "assigned": 5, "accepted": 4, "late": 1, "invalid": 0, "strikes": 0, "earned": 400, "last_seen_ms": 99_000}],
        });
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
        });
        let text = render(&status, 3000);
        for expected in [
            "prover p1   up -",
            "distributor d1 (-)",
            "- active, 2 accepted",
            "last error: distributor unreachable",
            "b1/j0       accepted       2.0s     100    2s ago",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }
}
