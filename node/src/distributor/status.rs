//! The distributor's `/status` document, built by the run loop twice a
//! second from what it holds in memory and the newest batch records (its
//! cost does not grow with uptime) and published on a [`StatusBoard`] the HTTP API reads without
//! asking anyone: a busy run loop never delays the status, and the status
//! never delays the run loop.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use protocol::{CircuitId, ContentHash, Timestamp};
use prover_core::KeySetup;
use serde_json::{Value, json};

use super::payout::SharedLedger;
use super::scheduler::Scheduler;
use super::store::JobStore;
use crate::config::DistributorSection;
use crate::network::NetStats;
use crate::node_info::NodeInfo;

/// How often the snapshot is rebuilt.
pub const REFRESH: Duration = Duration::from_millis(500);

/// Batches listed in the status, newest last; older ones are counted only.
const LISTED_BATCHES: usize = 200;

/// The latest status document, shared with the HTTP API.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<RwLock<Arc<Value>>>);

impl StatusBoard {
    /// Replaces the document.
    pub fn publish(&self, doc: Value) {
        *self.0.write().expect("status lock") = Arc::new(doc);
    }

    /// The latest document.
    pub fn read(&self) -> Arc<Value> {
        self.0.read().expect("status lock").clone()
    }
}

/// One internal queue's fill, for `/status` and the metrics.
#[derive(Debug, Clone, Copy)]
pub struct QueueDepth {
    /// The queue's name (the metrics' `queue` label).
    pub name: &'static str,
    /// Items waiting.
    pub depth: usize,
    /// Most items it holds; 0 for a queue bounded only by its producers.
    pub capacity: usize,
}

impl QueueDepth {
    /// A bounded queue.
    pub fn new(name: &'static str, depth: usize, capacity: usize) -> Self {
        Self {
            name,
            depth,
            capacity,
        }
    }

    /// A queue bounded by what feeds it (the journal, the payout writer).
    pub fn unbounded(name: &'static str, depth: usize) -> Self {
        Self::new(name, depth, 0)
    }
}

/// What the document is made of.
pub(crate) struct Parts<'a> {
    pub(crate) info: &'a NodeInfo,
    pub(crate) settings: &'a DistributorSection,
    pub(crate) circuit: &'a CircuitId,
    pub(crate) proving_key: ContentHash,
    pub(crate) verifying_key: ContentHash,
    pub(crate) key_setup: KeySetup,
    pub(crate) store: &'a JobStore,
    pub(crate) scheduler: &'a Scheduler,
    pub(crate) ledger: &'a SharedLedger,
    pub(crate) net: NetStats,
    pub(crate) queues: &'a [QueueDepth],
    pub(crate) verify_count: u64,
    pub(crate) verify_seconds: f64,
    pub(crate) uptime_ms: u64,
    pub(crate) batches_stored: u64,
    pub(crate) batches_proven: u64,
}

/// Builds the `/status` document.
pub(crate) fn document(p: &Parts<'_>) -> Value {
    let lrp = p.scheduler.lrp();
    let counts = lrp.counts();
    let latest = p.store.latest_batches(LISTED_BATCHES).unwrap_or_default();
    let batches: Vec<Value> = latest
        .iter()
        .map(|b| {
            let done = match lrp.batch(b.id) {
                Some(progress) => progress.done,
                None if b.proven.is_some() => u64::from(b.jobs),
                None => 0,
            };
            json!({
                "id": b.id.0,
                "jobs": b.jobs,
                "txs": b.txs,
                "done": done,
                "created_ms": b.created.0,
                "proven_ms": b.proven.map(|t| t.0),
                "latency_ms": b.proven.map(|t| t.millis_since(b.created)),
            })
        })
        .collect();
    let ledger = p.ledger.read().expect("ledger lock");
    let provers: Vec<Value> = p
        .scheduler
        .history()
        .provers
        .iter()
        .map(|(key, s)| {
            let view = lrp.prover(key);
            json!({
                "public_key": key.to_hex(),
                "node_id": key.node_id().to_string(),
                "assigned": s.assigned,
                "reserved": s.reserved,
                "accepted": s.accepted,
                "late": s.late,
                "invalid": s.invalid,
                "not_issued": s.not_issued,
                "released": s.released,
                "earned": s.earned,
                "balance": ledger.balance(key),
                "strikes": view.as_ref().map_or(0, |v| v.strikes),
                "holding": view.as_ref().map_or(0, |v| v.holdings.len()),
                "mean_prove_ms": s.mean_prove_ms(),
                "last_seen_ms": s.last_seen.map(|t| t.0),
            })
        })
        .collect();
    let tip = ledger.tip();
    json!({
        "role": "distributor",
        "node": p.info.to_json(),
        "peers": p.net.peers,
        "circuit": p.circuit.as_str(),
        "proving_key": p.proving_key.to_hex(),
        "verifying_key": p.verifying_key.to_hex(),
        "key_setup": {
            "kind": p.key_setup.label(),
            "secure": p.key_setup.is_secure(),
            "about": p.key_setup.to_string(),
        },
        "centralized": p.settings.centralized,
        "now_ms": Timestamp::now().0,
        "uptime_ms": p.uptime_ms,
        "batches": {
            "total": p.batches_stored,
            "proven": p.batches_proven,
            "open": p.batches_stored.saturating_sub(p.batches_proven),
            "list": batches,
        },
        "jobs": {
            "fresh": counts.fresh,
            "pending": counts.pending,
            "done": counts.done,
            "next_request_id": lrp.next_request_id().0,
        },
        "provers": provers,
        "verification": {
            "proofs": p.verify_count,
            "total_ms": p.verify_seconds * 1e3,
            "mean_ms": if p.verify_count == 0 { 0.0 } else { p.verify_seconds * 1e3 / p.verify_count as f64 },
        },
        "wire": {
            "rpc_bytes_read": p.net.rpc_bytes_read,
            "rpc_bytes_written": p.net.rpc_bytes_written,
        },
        "queues": p.queues.iter().map(|q| {
            (q.name.to_string(), json!({ "depth": q.depth, "capacity": q.capacity }))
        }).collect::<serde_json::Map<_, _>>(),
        "ledger": {
            "height": ledger.height(),
            "pending": ledger.pending_len(),
            "last_block": {
                "height": tip.header.height,
                "hash": tip.hash().to_hex(),
                "txs": tip.header.tx_count,
                "time_ms": tip.header.timestamp.0,
            },
        },
    })
}
