//! The distributor's `/status` document, built by the run loop twice a
//! second from what it holds in memory and the newest batch records (its
//! cost does not grow with uptime) and published on a [`StatusBoard`] the HTTP API reads without
//! asking anyone: a busy run loop never delays the status, and the status
//! never delays the run loop.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use protocol::lrp::Lrp;
use protocol::{CircuitId, ContentHash, PublicKey, Timestamp};
use prover_core::KeySetup;
use serde::Serialize;
use serde_json::Value;

use super::history::{History, ProverStats};
use super::payout::SharedLedger;
use super::scheduler::Scheduler;
use super::store::{BatchRecord, JobStore};
use crate::config::{DistributorSection, Role};
use crate::network::NetStats;
use crate::node_info::NodeInfo;
use crate::status_doc::{
    BatchStatus, BatchesStatus, BlockStatus, ChainView, DistributorStatus, JobsStatus,
    KeySetupStatus, LedgerStatus, ProverRow, QueueStatus, VerificationStatus, WireStatus,
};

/// How often the snapshot is rebuilt.
pub const REFRESH: Duration = Duration::from_millis(500);

/// Batches listed in the status, newest last; older ones are counted only.
const LISTED_BATCHES: usize = 200;

/// Provers listed in the status (the most recently seen, in key order); the
/// rest are counted only, so the document's cost follows this, not the
/// crowd.
pub const LISTED_PROVERS: usize = 200;

/// The latest status document, shared with the HTTP API: either role's
/// (a [`DistributorStatus`], a prover's), kept serialized so the API serves
/// it as it is.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<RwLock<Arc<Value>>>);

impl StatusBoard {
    /// Replaces the document with `doc`, serialized.
    pub fn publish(&self, doc: impl Serialize) {
        let doc = serde_json::to_value(doc).expect("a status document serializes");
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
    pub(crate) chain: Option<ChainView>,
}

/// Builds the `/status` document.
pub(crate) fn document(p: &Parts<'_>) -> DistributorStatus {
    let lrp = p.scheduler.lrp();
    let counts = lrp.counts();
    let list = batch_list(p);
    let (listed, provers_unlisted) = listed_provers(p.scheduler.history());
    let ledger = p.ledger.read().expect("ledger lock");
    let provers = prover_rows(p, &listed, &ledger);
    let tip = ledger.tip();
    DistributorStatus {
        role: Role::Distributor,
        node: p.info.clone(),
        peers: p.net.peers,
        circuit: p.circuit.as_str().to_string(),
        proving_key: p.proving_key.to_hex(),
        verifying_key: p.verifying_key.to_hex(),
        key_setup: KeySetupStatus {
            kind: p.key_setup.label().to_string(),
            secure: p.key_setup.is_secure(),
            about: p.key_setup.to_string(),
        },
        centralized: p.settings.centralized,
        now_ms: Timestamp::now().0,
        uptime_ms: p.uptime_ms,
        batches: BatchesStatus {
            total: p.batches_stored,
            proven: p.batches_proven,
            open: p.batches_stored.saturating_sub(p.batches_proven),
            list,
        },
        jobs: JobsStatus {
            fresh: counts.fresh,
            pending: counts.pending,
            done: counts.done,
            next_request_id: lrp.next_request_id().0,
        },
        provers,
        provers_unlisted,
        verification: VerificationStatus {
            proofs: p.verify_count,
            total_ms: p.verify_seconds * 1e3,
            mean_ms: if p.verify_count == 0 {
                0.0
            } else {
                p.verify_seconds * 1e3 / p.verify_count as f64
            },
        },
        wire: WireStatus {
            rpc_bytes_read: p.net.rpc_bytes_read,
            rpc_bytes_written: p.net.rpc_bytes_written,
        },
        queues: p
            .queues
            .iter()
            .map(|q| {
                let (depth, capacity) = (q.depth as u64, q.capacity as u64);
                (q.name.to_string(), QueueStatus { depth, capacity })
            })
            .collect(),
        ledger: LedgerStatus {
            height: ledger.height(),
            pending: ledger.pending_len() as u64,
            last_block: BlockStatus {
                height: tip.header.height,
                hash: tip.hash().to_hex(),
                txs: tip.header.tx_count,
                time_ms: tip.header.timestamp.0,
            },
        },
        chain: p.chain.clone(),
    }
}

/// The newest batches, newest last, with their progress.
fn batch_list(p: &Parts<'_>) -> Vec<BatchStatus> {
    let lrp = p.scheduler.lrp();
    let latest = p.store.latest_batches(LISTED_BATCHES).unwrap_or_default();
    latest
        .iter()
        .map(|b| BatchStatus {
            id: b.id.0,
            jobs: b.jobs,
            txs: b.txs,
            done: jobs_done(lrp, b),
            created_ms: b.created.0,
            proven_ms: b.proven.map(|t| t.0),
            latency_ms: b.proven.map(|t| t.millis_since(b.created)),
        })
        .collect()
}

/// How many of `batch`'s jobs are done. The scheduler learns of a batch
/// before its record is stored and forgets it only once its batch proof
/// checked, so a stored batch it does not know is proven: its jobs are all
/// done, though the record saying so may still be on its way to disk.
fn jobs_done(lrp: &Lrp, batch: &BatchRecord) -> u64 {
    lrp.batch(batch.id)
        .map_or(u64::from(batch.jobs), |progress| progress.done)
}

/// The [`LISTED_PROVERS`] most recently seen provers of `history`, in key
/// order, and how many others it has.
fn listed_provers(history: &History) -> (Vec<(&PublicKey, &ProverStats)>, u64) {
    let mut all: Vec<(&PublicKey, &ProverStats)> = history.provers.iter().collect();
    let unlisted = all.len().saturating_sub(LISTED_PROVERS);
    if unlisted > 0 {
        // Newest first: the listed ones end up in front.
        all.select_nth_unstable_by(LISTED_PROVERS - 1, |a, b| {
            b.1.last_seen.cmp(&a.1.last_seen).then(a.0.cmp(b.0))
        });
        all.truncate(LISTED_PROVERS);
        all.sort_unstable_by_key(|(key, _)| **key);
    }
    (all, unlisted as u64)
}

/// The `listed` provers' rows, with their balances in `ledger`.
fn prover_rows(
    p: &Parts<'_>,
    listed: &[(&PublicKey, &ProverStats)],
    ledger: &ledger::Ledger,
) -> Vec<ProverRow> {
    let lrp = p.scheduler.lrp();
    listed
        .iter()
        .map(|&(key, s)| {
            let view = lrp.prover(key);
            ProverRow {
                public_key: key.to_hex(),
                node_id: key.node_id().to_string(),
                assigned: s.assigned,
                reserved: s.reserved,
                accepted: s.accepted,
                late: s.late,
                invalid: s.invalid,
                not_issued: s.not_issued,
                released: s.released,
                earned: s.earned,
                balance: ledger.balance(key),
                strikes: view.as_ref().map_or(0, |v| v.strikes),
                holding: view.as_ref().map_or(0, |v| v.holdings.len() as u64),
                mean_prove_ms: s.mean_prove_ms(),
                last_seen_ms: s.last_seen.map(|t| t.0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::Space;
    use crate::distributor::journal::Journal;
    use crate::distributor::scheduler::Log;
    use crate::distributor::store::Change;
    use protocol::lrp::{LrpConfig, LrpEvent};
    use protocol::{BatchId, JobId, SecretKey};
    use prover_core::witness::Root;
    use serde_json::json;

    /// The document as it was built before it was typed, a `json!` tree:
    /// the struct must serialize to the very same JSON.
    fn untyped(p: &Parts<'_>) -> Value {
        let lrp = p.scheduler.lrp();
        let counts = lrp.counts();
        let batches = untyped_batches(p);
        let ledger = p.ledger.read().expect("ledger lock");
        let provers = untyped_provers(p, &ledger);
        let tip = ledger.tip();
        let mean_ms = if p.verify_count == 0 {
            0.0
        } else {
            p.verify_seconds * 1e3 / p.verify_count as f64
        };
        let queues = p.queues.iter().map(|q| {
            let fill = json!({ "depth": q.depth, "capacity": q.capacity });
            (q.name.to_string(), fill)
        });
        json!({
            "role": "distributor", "node": p.info.to_json(), "peers": p.net.peers,
            "circuit": p.circuit.as_str(),
            "proving_key": p.proving_key.to_hex(), "verifying_key": p.verifying_key.to_hex(),
            "key_setup": {
                "kind": p.key_setup.label(), "secure": p.key_setup.is_secure(),
                "about": p.key_setup.to_string(),
            },
            "centralized": p.settings.centralized,
            "now_ms": Timestamp::now().0, "uptime_ms": p.uptime_ms,
            "batches": {
                "total": p.batches_stored, "proven": p.batches_proven,
                "open": p.batches_stored.saturating_sub(p.batches_proven), "list": batches,
            },
            "jobs": {
                "fresh": counts.fresh, "pending": counts.pending, "done": counts.done,
                "next_request_id": lrp.next_request_id().0,
            },
            "provers": provers,
            "provers_unlisted": p.scheduler.history().provers.len().saturating_sub(LISTED_PROVERS),
            "verification": {
                "proofs": p.verify_count, "total_ms": p.verify_seconds * 1e3, "mean_ms": mean_ms,
            },
            "wire": {
                "rpc_bytes_read": p.net.rpc_bytes_read,
                "rpc_bytes_written": p.net.rpc_bytes_written,
            },
            "queues": queues.collect::<serde_json::Map<_, _>>(),
            "ledger": {
                "height": ledger.height(), "pending": ledger.pending_len(),
                "last_block": {
                    "height": tip.header.height, "hash": tip.hash().to_hex(),
                    "txs": tip.header.tx_count, "time_ms": tip.header.timestamp.0,
                },
            },
        })
    }

    fn untyped_batches(p: &Parts<'_>) -> Vec<Value> {
        let lrp = p.scheduler.lrp();
        let latest = p.store.latest_batches(LISTED_BATCHES).unwrap_or_default();
        latest
            .iter()
            .map(|b| {
                let done = jobs_done(lrp, b);
                json!({
                    "id": b.id.0, "jobs": b.jobs, "txs": b.txs, "done": done,
                    "created_ms": b.created.0,
                    "proven_ms": b.proven.map(|t| t.0),
                    "latency_ms": b.proven.map(|t| t.millis_since(b.created)),
                })
            })
            .collect()
    }

    fn untyped_provers(p: &Parts<'_>, ledger: &ledger::Ledger) -> Vec<Value> {
        let lrp = p.scheduler.lrp();
        p.scheduler
            .history()
            .provers
            .iter()
            .map(|(key, s)| {
                let view = lrp.prover(key);
                json!({
                    "public_key": key.to_hex(), "node_id": key.node_id().to_string(),
                    "assigned": s.assigned, "reserved": s.reserved, "accepted": s.accepted,
                    "late": s.late, "invalid": s.invalid, "not_issued": s.not_issued,
                    "released": s.released, "earned": s.earned, "balance": ledger.balance(key),
                    "strikes": view.as_ref().map_or(0, |v| v.strikes),
                    "holding": view.as_ref().map_or(0, |v| v.holdings.len()),
                    "mean_prove_ms": s.mean_prove_ms(),
                    "last_seen_ms": s.last_seen.map(|t| t.0),
                })
            })
            .collect()
    }

    /// Three stored batches (one proven, one open, one proven but not yet
    /// recorded so), a prover holding a job, a ledger,
    /// and the journal's thread (joined before the folder goes: a RocksDB
    /// still writing into a removed folder as the process exits aborts it).
    fn scene(
        dir: &std::path::Path,
    ) -> (
        Arc<JobStore>,
        Scheduler,
        SharedLedger,
        super::super::queue::ServiceThread,
    ) {
        let store = Arc::new(JobStore::open(dir.join("store")).unwrap());
        let record = |id: u64, proven: Option<Timestamp>| BatchRecord {
            id: BatchId(id),
            old_root: Root([0; 32]),
            new_root: Root([1; 32]),
            jobs: 2,
            txs: 2,
            created: Timestamp(1000 * id),
            proven,
        };
        // Batch 3 stands for one whose batch proof just checked: the
        // scheduler forgot it, its proven record is not yet written.
        let batches = [
            Change::Batch(record(1, Some(Timestamp(1500)))),
            Change::Batch(record(2, None)),
            Change::Batch(record(3, None)),
        ];
        store.commit(&batches, false).unwrap();
        let (journal, thread) = Journal::start(
            store.clone(),
            Space::floor(dir, 0),
            |_: super::super::courier::Durable| {},
            |e| panic!("{e}"),
        )
        .unwrap();
        let mut scheduler =
            Scheduler::replay(LrpConfig::default(), None, &[], 100, journal).unwrap();
        let jobs = vec![JobId::new(BatchId(2), 0), JobId::new(BatchId(2), 1)];
        scheduler.apply(LrpEvent::Submit { jobs }, |_| Log::plain());
        let prover = SecretKey::from_seed([11; 32]).public();
        let now = scheduler.now();
        scheduler.apply(LrpEvent::Request { prover, now }, |_| Log::plain());
        let secret = SecretKey::from_seed([8; 32]);
        let config = ledger::LedgerConfig::default();
        let ledger = ledger::Ledger::open(dir.join("ledger"), &secret, config).unwrap();
        (store, scheduler, Arc::new(RwLock::new(ledger)), thread)
    }

    #[test]
    fn the_typed_document_serializes_as_the_untyped_one_did() {
        let dir = tempfile::tempdir().unwrap();
        let (store, scheduler, ledger, journal) = scene(dir.path());
        let public = SecretKey::from_seed([8; 32]).public();
        let info = NodeInfo {
            role: Role::Distributor,
            public_key: public.to_hex(),
            node_id: public.node_id().to_string(),
            peer_id: "12D3KooW".into(),
            listen: vec!["/ip4/127.0.0.1/tcp/1".into()],
            api: "127.0.0.1:8100".parse().unwrap(),
            pid: 7,
        };
        let queues = [
            QueueDepth::new("network_events", 3, 1024),
            QueueDepth::unbounded("journal", 1),
        ];
        let mut parts = Parts {
            info: &info,
            settings: &DistributorSection::default(),
            circuit: &CircuitId::new("transfer-d4-k1").unwrap(),
            proving_key: ContentHash::of(b"pk"),
            verifying_key: ContentHash::of(b"vk"),
            key_setup: KeySetup::Random,
            store: &store,
            scheduler: &scheduler,
            ledger: &ledger,
            net: NetStats {
                peers: 3,
                rpc_bytes_read: 10,
                rpc_bytes_written: 20,
            },
            queues: &queues,
            verify_count: 4,
            verify_seconds: 0.018,
            uptime_ms: 125_000,
            batches_stored: 3,
            batches_proven: 1,
            chain: None,
        };
        for verify_count in [4, 0] {
            parts.verify_count = verify_count;
            let mut typed = serde_json::to_value(document(&parts)).unwrap();
            let mut before = untyped(&parts);
            // The clock moved between the two.
            typed["now_ms"] = json!(0);
            before["now_ms"] = json!(0);
            assert_eq!(typed.to_string(), before.to_string());
            let back: DistributorStatus = serde_json::from_value(typed.clone()).unwrap();
            assert_eq!(serde_json::to_value(back).unwrap(), typed);
        }
        let doc = document(&parts);
        let done: Vec<u64> = doc.batches.list.iter().map(|b| b.done).collect();
        assert_eq!(done, [2, 0, 2], "{doc:#?}");
        assert_eq!(doc.provers.len(), 1, "{doc:#?}");
        assert_eq!(doc.provers[0].holding, 1, "{doc:#?}");
        assert_eq!(doc.queues.len(), 2);
        drop(scheduler);
        journal.join();
    }

    #[test]
    fn only_the_most_recently_seen_provers_are_listed_and_the_rest_counted() {
        let mut history = History::default();
        for i in 0..(LISTED_PROVERS as u64 + 100) {
            // Keys in the reverse order of their last sighting.
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(u64::MAX - i).to_be_bytes());
            let handout = protocol::lrp::Handout {
                job: JobId::new(BatchId(1), 0),
                request: protocol::RequestId(i),
                reserve: false,
            };
            let event = LrpEvent::Request {
                prover: PublicKey(key),
                now: Timestamp(i),
            };
            let outcome =
                protocol::lrp::LrpOutcome::Decided(protocol::lrp::Decision::Assign(handout));
            history.record(&event, &outcome, 10);
        }
        let (listed, unlisted) = listed_provers(&history);
        assert_eq!((listed.len(), unlisted), (LISTED_PROVERS, 100));
        assert!(
            listed
                .iter()
                .all(|(_, s)| s.last_seen >= Some(Timestamp(100)))
        );
        assert!(listed.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
        history
            .provers
            .retain(|_, s| s.last_seen < Some(Timestamp(5)));
        let (listed, unlisted) = listed_provers(&history);
        assert_eq!((listed.len(), unlisted), (5, 0));
    }

    #[test]
    fn the_board_keeps_the_serialized_document() {
        let board = StatusBoard::default();
        assert!(board.read().is_null());
        board.publish(json!({"role": "prover"}));
        assert_eq!(board.read()["role"], "prover");
    }
}
