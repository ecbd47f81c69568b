//! The `/status` documents, typed: [`DistributorStatus`] (built by
//! `distributor::status::document`) and [`ProverStatus`] (what a prover
//! publishes, read leniently). `crowdprove status`, the tests and the
//! dashboard read these fields; the JSON is the structs' serde form, field
//! for field (a renamed field here renames it on the wire).
//!
//! The dashboard (`node/dashboard/dashboard.js`) reads, from a
//! distributor's document: `role`, `now_ms`, `uptime_ms`, `circuit`,
//! `centralized`, `proving_key`, `verifying_key`, `node.{role, node_id,
//! public_key, api}`, `batches.{proven, total, open, list}`, each batch's
//! `{id, done, jobs, txs, created_ms, latency_ms, proven_ms}`,
//! `jobs.{fresh, pending, done}`, `verification.{proofs, mean_ms}`,
//! `wire.{rpc_bytes_read, rpc_bytes_written}`, `queues` (each `{depth,
//! capacity}`), `ledger.{height, pending, last_block}`, the last block's
//! `{height, hash, txs, time_ms}`, each prover's `{node_id, public_key,
//! mean_prove_ms, assigned, accepted, late, invalid, released, earned,
//! balance, strikes, holding, last_seen_ms}` and `provers_unlisted`. The
//! tests below check every one exists in a serialized document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Role;
use crate::node_info::NodeInfo;

/// A distributor's `/status` document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DistributorStatus {
    /// Always [`Role::Distributor`].
    pub role: Role,
    /// Who and where the node is.
    pub node: NodeInfo,
    /// Peers with at least one connection.
    pub peers: u64,
    /// The circuit it proves.
    pub circuit: String,
    /// The proving key's content hash (hex).
    pub proving_key: String,
    /// The verifying key's content hash (hex).
    pub verifying_key: String,
    /// Where the keys came from.
    pub key_setup: KeySetupStatus,
    /// Whether it runs the centralized baseline.
    pub centralized: bool,
    /// When the document was built (Unix ms).
    pub now_ms: u64,
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
    /// Batches counted, and the newest listed.
    pub batches: BatchesStatus,
    /// Jobs of batches not yet proven.
    pub jobs: JobsStatus,
    /// The most recently seen provers (at most 200), in key order.
    pub provers: Vec<ProverRow>,
    /// Provers the distributor keeps counters for beyond those listed (0
    /// from a distributor that listed every one).
    #[serde(default)]
    pub provers_unlisted: u64,
    /// Proof checks.
    pub verification: VerificationStatus,
    /// Request-response traffic.
    pub wire: WireStatus,
    /// Internal queues by name.
    pub queues: BTreeMap<String, QueueStatus>,
    /// The payout ledger.
    pub ledger: LedgerStatus,
    /// The L1 chain client; absent when no chain is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainView>,
}

/// `chain`: where proven batches and ledger blocks stand on L1.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChainView {
    /// The chain's JSON-RPC URL.
    pub rpc: String,
    /// Its chain id, once reached.
    pub chain_id: Option<u64>,
    /// The operator's account, which sends every transaction.
    pub account: String,
    /// The Settlement contract, once deployed or found.
    pub settlement: Option<String>,
    /// The Payouts contract, once deployed or found.
    pub payouts: Option<String>,
    /// The last batch settled on chain (0: none).
    pub settled_batch: u64,
    /// Proven batches not yet settled.
    pub batches_unsettled: u64,
    /// The last ledger block anchored on chain (0: none).
    pub anchored_height: u64,
    /// Ledger blocks not yet anchored.
    pub blocks_unanchored: u64,
    /// The operator's transactions sent and not yet mined.
    pub pending_txs: u64,
    /// Transactions this process saw mined.
    pub txs_sent: u64,
    /// Gas they used.
    pub gas_used: u64,
    /// Transactions replaced (same nonce, higher fees) after pending too
    /// long.
    #[serde(default)]
    pub replaced: u64,
    /// The newest one's hash.
    pub last_tx: Option<String>,
    /// Why the last step failed, while it keeps failing.
    pub last_error: Option<String>,
}

/// `key_setup`: where the proving and verifying keys came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeySetupStatus {
    /// A short label (`random`, `insecure-seed`, …).
    pub kind: String,
    /// Whether the setup is safe for real money.
    pub secure: bool,
    /// A sentence about it.
    pub about: String,
}

/// `batches`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchesStatus {
    /// Batches stored.
    pub total: u64,
    /// Batches proven.
    pub proven: u64,
    /// Batches not yet proven.
    pub open: u64,
    /// The newest batches, newest last.
    pub list: Vec<BatchStatus>,
}

/// One batch in `batches.list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchStatus {
    /// Its id.
    pub id: u64,
    /// Jobs it was cut into.
    pub jobs: u32,
    /// Transactions in it.
    pub txs: u32,
    /// Jobs done.
    pub done: u64,
    /// When it was cut (Unix ms).
    pub created_ms: u64,
    /// When it was proven (Unix ms), `null` until then.
    pub proven_ms: Option<u64>,
    /// Cut to proven, `null` until proven.
    pub latency_ms: Option<u64>,
}

/// `jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobsStatus {
    /// Never handed out.
    pub fresh: u64,
    /// Handed out, not done.
    pub pending: u64,
    /// Done and not yet forgotten.
    pub done: u64,
    /// The next hand-out's request id.
    pub next_request_id: u64,
}

/// One prover in `provers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProverRow {
    /// Its public key (hex).
    pub public_key: String,
    /// Its short node id.
    pub node_id: String,
    /// Jobs assigned.
    pub assigned: u64,
    /// Of those, re-served jobs.
    pub reserved: u64,
    /// Proofs accepted.
    pub accepted: u64,
    /// Proofs too late.
    pub late: u64,
    /// Proofs that failed to check.
    pub invalid: u64,
    /// Proofs for requests never issued to it.
    pub not_issued: u64,
    /// Jobs it gave back.
    pub released: u64,
    /// Rewards credited.
    pub earned: u64,
    /// Its ledger balance.
    pub balance: u64,
    /// Strikes against it.
    pub strikes: u32,
    /// Jobs it holds now.
    pub holding: u64,
    /// Mean proving time, `null` before its first timed proof.
    pub mean_prove_ms: Option<f64>,
    /// Last heard from (Unix ms), `null` if never.
    pub last_seen_ms: Option<u64>,
}

/// `verification`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerificationStatus {
    /// Proofs checked.
    pub proofs: u64,
    /// Time spent checking.
    pub total_ms: f64,
    /// Mean per proof, 0 before the first.
    pub mean_ms: f64,
}

/// `wire`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireStatus {
    /// Request-response bytes read.
    pub rpc_bytes_read: u64,
    /// Request-response bytes written.
    pub rpc_bytes_written: u64,
}

/// One queue in `queues`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueueStatus {
    /// Items waiting.
    pub depth: u64,
    /// Most items it holds; 0 for a queue bounded by its producers.
    pub capacity: u64,
}

/// `ledger`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LedgerStatus {
    /// Its height.
    pub height: u64,
    /// Transactions waiting for a block.
    pub pending: u64,
    /// The newest block.
    pub last_block: BlockStatus,
}

/// `ledger.last_block`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockStatus {
    /// Its height.
    pub height: u64,
    /// Its hash (hex).
    pub hash: String,
    /// Transactions in it.
    pub txs: u32,
    /// Its timestamp (Unix ms).
    pub time_ms: u64,
}

/// A prover's `/status` document as readers see it (the prover builds it in
/// `prover::Shared::status`). Read leniently: a field the node does not
/// report is `None` (or empty), so `crowdprove status` shows it as `-`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProverStatus {
    /// `prover`.
    pub role: Option<String>,
    /// Who and where the node is.
    pub node: NodeView,
    /// When the document was built (Unix ms).
    pub now_ms: Option<u64>,
    /// Milliseconds since the node started.
    pub uptime_ms: Option<u64>,
    /// This identity's public key (hex).
    pub public_key: Option<String>,
    /// The distributor's public key (hex).
    pub distributor: Option<String>,
    /// The distributor's short node id.
    pub distributor_node_id: Option<String>,
    /// The payout address this prover binds (null: none set).
    pub payout_address: Option<String>,
    /// The fault it was told to show (`none` when honest).
    pub fault: Option<String>,
    /// Job counters.
    pub jobs: ProverJobs,
    /// Rewards earned.
    pub earned: Option<u64>,
    /// Receipts kept.
    pub receipts: Option<u64>,
    /// Jobs still owed a receipt.
    pub awaiting_receipts: Option<u64>,
    /// The alarm: accepted jobs the distributor has not paid for in time.
    pub receipts_overdue: Vec<OverdueReceiptStatus>,
    /// Receipts refused: not signed by the distributor, or not the credit
    /// its `Accepted` promised.
    pub receipts_refused: Option<u64>,
    /// Why the last balance proof that pays someone other than this prover
    /// was refused.
    pub payout_diverted: Option<String>,
    /// `Accepted` verdicts naming another proof, job or prover.
    pub bad_verdicts: Option<u64>,
    /// Workers that stopped for good.
    pub workers_stopped: Option<u64>,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// The newest finished jobs, newest first.
    pub recent_jobs: Vec<RecentJobStatus>,
    /// The newest receipts kept, newest first.
    pub recent_receipts: Vec<RecentReceiptStatus>,
    /// The newest balance proof kept (`<data-dir>/balance-proof`), what
    /// `crowdprove claim` pays out once its block is anchored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_proof: Option<BalanceProofView>,
    /// The newest balance proof whose block the prover saw anchored with
    /// the signed root (`<data-dir>/balance-proof-anchored`): what it claims
    /// with while newer blocks wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchored_balance_proof: Option<BalanceProofView>,
    /// The anchoring watch; absent when the prover watches no chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchoring: Option<AnchoringView>,
    /// What each worker is doing now, by slot.
    pub workers: Vec<WorkerView>,
    /// The proving key on its way in (downloading or loading), while one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyWorkView>,
    /// How long this prover's first job took, from its start.
    pub first_job: FirstJobView,
}

/// `workers`: what one worker slot is doing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerView {
    /// The slot, from 0.
    pub slot: usize,
    /// `asking`, `waiting`, `getting key`, `getting witness`, `queued` (for a
    /// proving thread), `proving` or `submitting`.
    pub doing: String,
    /// The job it works on, if any.
    pub job: Option<String>,
    /// Milliseconds since it started doing this.
    pub for_ms: u64,
}

/// `key`: a proving key being downloaded or loaded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeyWorkView {
    /// The key's content hash (hex).
    pub key: String,
    /// `downloading` or `loading`.
    pub doing: String,
    /// Bytes on disk so far (a resumed download counts what it had).
    pub bytes: u64,
    /// The key's length, once the first chunk told it.
    pub total_bytes: Option<u64>,
}

/// `first_job`: a newcomer's wait for its first paid job, in milliseconds
/// from the prover's start (`null` until it happens; a key already cached
/// takes no download).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FirstJobView {
    /// The first job handed to it.
    pub assigned_ms: Option<u64>,
    /// How long downloading its proving key took.
    pub key_download_ms: Option<u64>,
    /// The proving key's bytes downloaded for it.
    pub key_bytes: Option<u64>,
    /// How long loading and checking the key took.
    pub key_load_ms: Option<u64>,
    /// The key ready to prove with.
    pub key_ready_ms: Option<u64>,
    /// The first proof accepted.
    pub accepted_ms: Option<u64>,
}

/// `balance_proof`: a prover's newest kept balance proof.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct BalanceProofView {
    /// The ledger block it is of.
    pub height: u64,
    /// The cumulative balance it proves.
    pub balance: u64,
}

/// `anchoring`: whether the blocks holding a prover's credits are anchored
/// on chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AnchoringView {
    /// The Payouts contract watched.
    pub payouts: String,
    /// Its last anchored height, once read.
    pub anchored_height: Option<u64>,
    /// Blocks holding this prover's credits not anchored yet.
    pub unanchored_blocks: u64,
    /// The oldest of them, and how long it has waited.
    pub oldest_unanchored_height: Option<u64>,
    /// Milliseconds the oldest has waited.
    pub oldest_unanchored_ms: Option<u64>,
    /// How long one may wait before the alarm.
    pub deadline_ms: u64,
    /// The alarm: the oldest has waited past the deadline.
    pub overdue: bool,
    /// Why the last read of the contract failed, while it fails.
    pub error: Option<String>,
    /// The alarm: an anchored balance root that is not the one the
    /// distributor signed for that block (which, and both roots).
    pub forged_anchor: Option<String>,
}

/// A node's [`NodeInfo`], read leniently.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NodeView {
    /// `distributor` or `prover`.
    pub role: Option<String>,
    /// Public key (hex).
    pub public_key: Option<String>,
    /// Short node id.
    pub node_id: Option<String>,
    /// libp2p peer id.
    pub peer_id: Option<String>,
    /// Listen addresses.
    pub listen: Vec<String>,
    /// The HTTP API address.
    pub api: Option<String>,
    /// The process id.
    pub pid: Option<u32>,
}

impl From<&NodeInfo> for NodeView {
    fn from(info: &NodeInfo) -> Self {
        Self {
            role: Some(
                match info.role {
                    Role::Distributor => "distributor",
                    Role::Prover => "prover",
                }
                .to_string(),
            ),
            public_key: Some(info.public_key.clone()),
            node_id: Some(info.node_id.clone()),
            peer_id: Some(info.peer_id.clone()),
            listen: info.listen.clone(),
            api: Some(info.api.to_string()),
            pid: Some(info.pid),
        }
    }
}

/// A prover's `jobs` counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProverJobs {
    /// Held now.
    pub active: Option<u64>,
    /// Proofs accepted.
    pub accepted: Option<u64>,
    /// Proofs too late.
    pub late: Option<u64>,
    /// Proofs refused.
    pub invalid: Option<u64>,
    /// Jobs given back.
    pub released: Option<u64>,
    /// Jobs dropped because their batch was proven meanwhile.
    pub dropped: Option<u64>,
    /// Jobs that failed to prove.
    pub failed: Option<u64>,
}

/// One of a prover's `recent_jobs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RecentJobStatus {
    /// The job (`b1/j0`).
    pub job: Option<String>,
    /// The hand-out's request id.
    pub request: Option<u64>,
    /// `accepted`, `late`, `invalid`, `released`, `dropped` or `failed`.
    pub outcome: Option<String>,
    /// Reward credited.
    pub reward: Option<u64>,
    /// Proving time, `null` if it did not prove.
    pub prove_ms: Option<u64>,
    /// When it ended (Unix ms).
    pub ended_ms: Option<u64>,
}

/// One of a prover's `receipts_overdue`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OverdueReceiptStatus {
    /// The job.
    pub job: Option<String>,
    /// How long since its `Accepted`, ms.
    pub owed_ms: Option<u64>,
    /// Why the last receipt offered was refused, if one was.
    pub refused: Option<String>,
}

/// One of a prover's `recent_receipts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RecentReceiptStatus {
    /// The job.
    pub job: Option<String>,
    /// The block its payment is in.
    pub height: Option<u64>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A distributor document with every list non-empty and every optional
    /// field set, as JSON.
    pub(crate) fn sample_distributor_json() -> Value {
        json!({
            "role": "distributor",
            "node": {
                "role": "distributor", "public_key": "00ff", "node_id": "abc123",
                "peer_id": "12D3Koo", "listen": ["/ip4/127.0.0.1/tcp/1"],
                "api": "127.0.0.1:8100", "pid": 42,
            },
            "peers": 2,
            "circuit": "transfer-d4-k1",
            "proving_key": "aa", "verifying_key": "bb",
            "key_setup": {"kind": "random", "secure": true, "about": "a random setup"},
            "centralized": false,
            "now_ms": 100_000, "uptime_ms": 125_000,
            "batches": {"total": 2, "proven": 1, "open": 1, "list": [
                {"id": 1, "jobs": 4, "txs": 4, "done": 4, "created_ms": 1000, "proven_ms": 3500, "latency_ms": 2500},
                {"id": 2, "jobs": 4, "txs": 4, "done": 1, "created_ms": 4000, "proven_ms": null, "latency_ms": null}]},
            "jobs": {"fresh": 1, "pending": 2, "done": 1, "next_request_id": 9},
            "provers": [{
                "public_key": "00ee", "node_id": "p1", "assigned": 5, "reserved": 1,
                "accepted": 4, "late": 1, "invalid": 0, "not_issued": 0, "released": 0,
                "earned": 400, "balance": 400, "strikes": 0, "holding": 1,
                "mean_prove_ms": 1500.0, "last_seen_ms": 99_000,
            }],
            "provers_unlisted": 3,
            "verification": {"proofs": 5, "total_ms": 22.5, "mean_ms": 4.5},
            "wire": {"rpc_bytes_read": 10, "rpc_bytes_written": 20},
            "queues": {"network_events": {"depth": 3, "capacity": 1024}},
            "ledger": {"height": 3, "pending": 0, "last_block": {
                "height": 3, "hash": "aabbccddeeff00112233", "txs": 2, "time_ms": 90_000}},
        })
    }

    /// Every path (`a.b`, `a[].b` for a list's items, `a{}.b` for a map's
    /// values) in `value`, leaves and inner nodes alike.
    fn paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
        let mut child = |key: &str, v: &Value| {
            let path = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            out.push(path.clone());
            paths(v, &path, out);
        };
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| child(k, v)),
            Value::Array(items) => {
                if let Some(first) = items.first() {
                    paths(first, &format!("{prefix}[]"), out);
                }
            }
            _ => {}
        }
    }

    fn path_set(value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        paths(value, "", &mut out);
        out.sort();
        out
    }

    #[test]
    fn a_distributor_document_round_trips_field_for_field() {
        let json = sample_distributor_json();
        let typed: DistributorStatus = serde_json::from_value(json.clone()).unwrap();
        let back = serde_json::to_value(&typed).unwrap();
        // Same keys, nesting, number kinds (floats stay floats) and nulls.
        assert_eq!(back, json);
        assert_eq!(path_set(&back), path_set(&json));
        assert!(back["verification"]["mean_ms"].is_f64());
        assert!(back["provers"][0]["mean_prove_ms"].is_f64());
        assert!(back["batches"]["list"][1]["latency_ms"].is_null());
        // A missing field is an error, not a silent default.
        let mut partial = json;
        partial.as_object_mut().unwrap().remove("wire");
        assert!(serde_json::from_value::<DistributorStatus>(partial).is_err());
    }

    #[test]
    fn a_prover_document_round_trips_and_reads_leniently() {
        let mut tally = crate::prover::status::Tally::default();
        tally.earned = 7;
        let kept = crate::prover::anchoring::Kept {
            height: 4,
            balance: 70,
            root: protocol::ContentHash([0; 32]),
        };
        tally.kept_proof = Some(kept);
        tally.anchored_proof = Some(crate::prover::anchoring::Kept { height: 3, ..kept });
        let mut watching = crate::prover::anchoring::Anchoring::new(
            alloy::primitives::Address::ZERO,
            std::time::Duration::from_secs(600),
        );
        watching.credited(4, protocol::Timestamp::now());
        tally.anchoring = Some(watching);
        let mut json = tally.to_json();
        for (key, value) in [
            ("role", json!("prover")),
            ("now_ms", json!(1)),
            ("uptime_ms", json!(2)),
            ("public_key", json!("00ee")),
            ("distributor", json!("00ff")),
            ("distributor_node_id", json!("abc123")),
            ("fault", json!("none")),
            (
                "payout_address",
                json!("0x00000000000000000000000000000000000000a1"),
            ),
            ("node", sample_distributor_json()["node"].clone()),
        ] {
            json[key] = value;
        }
        json["recent_jobs"] = json!([{"job": "b1/j0", "request": 3, "outcome": "accepted", "reward": 100, "prove_ms": 7, "ended_ms": 1}]);
        json["recent_receipts"] = json!([{"job": "b1/j0", "height": 2}]);
        json["node"]["role"] = json!("prover");
        let typed: ProverStatus = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), json);
        assert_eq!(typed.earned, Some(7));
        assert_eq!(typed.jobs.accepted, Some(0));
        assert_eq!(
            typed.balance_proof,
            Some(BalanceProofView {
                height: 4,
                balance: 70
            })
        );
        let anchoring = typed.anchoring.expect("watched");
        assert_eq!(
            (anchoring.oldest_unanchored_height, anchoring.overdue),
            (Some(4), false)
        );
        let sparse: ProverStatus = serde_json::from_value(json!({"jobs": {"late": 1}})).unwrap();
        assert_eq!((sparse.jobs.late, sparse.jobs.active), (Some(1), None));
    }

    /// The paths the dashboard's script reads from a document with `get(x,
    /// "path")` or `view.field("path", …)`.
    fn dashboard_paths() -> Vec<String> {
        let js = include_str!("../dashboard/dashboard.js");
        let mut out = Vec::new();
        for opener in ["get(x, \"", "get(st, \"", "view.field(\""] {
            for (at, _) in js.match_indices(opener) {
                let rest = &js[at + opener.len()..];
                let end = rest.find('"').expect("a closing quote");
                out.push(rest[..end].to_string());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn every_field_the_dashboard_reads_is_in_a_document() {
        let mut typed: DistributorStatus =
            serde_json::from_value(sample_distributor_json()).unwrap();
        typed.chain = Some(ChainView::default());
        let distributor = path_set(&serde_json::to_value(&typed).unwrap());
        let prover = {
            let mut doc = crate::prover::status::Tally::default().to_json();
            let typed = ProverStatus {
                balance_proof: Some(BalanceProofView::default()),
                anchored_balance_proof: Some(BalanceProofView::default()),
                anchoring: Some(AnchoringView::default()),
                key: Some(KeyWorkView::default()),
                ..ProverStatus::default()
            };
            for (key, value) in serde_json::to_value(&typed).unwrap().as_object().unwrap() {
                if doc.get(key).is_none() {
                    doc[key] = value.clone();
                }
            }
            path_set(&doc)
        };
        let read = dashboard_paths();
        assert!(read.len() > 20, "the script's reads not found: {read:?}");
        for path in &read {
            // The script reads the document of either role with one `get`;
            // `node.*` is the node info both share.
            assert!(
                distributor.contains(path) || prover.contains(path),
                "the dashboard reads {path:?}, which no /status document has"
            );
        }
        // What it reads from the items of the lists and maps, by hand.
        let items: &[(&str, &[&str])] = &[
            (
                "batches.list[]",
                &[
                    "id",
                    "done",
                    "jobs",
                    "txs",
                    "created_ms",
                    "latency_ms",
                    "proven_ms",
                ],
            ),
            (
                "provers[]",
                &[
                    "node_id",
                    "public_key",
                    "mean_prove_ms",
                    "assigned",
                    "accepted",
                    "late",
                    "invalid",
                    "released",
                    "earned",
                    "balance",
                    "strikes",
                    "holding",
                    "last_seen_ms",
                ],
            ),
            ("queues.network_events", &["depth", "capacity"]),
            ("ledger.last_block", &["height", "hash", "txs", "time_ms"]),
        ];
        for (parent, fields) in items {
            for field in *fields {
                let path = format!("{parent}.{field}");
                assert!(distributor.contains(&path), "no {path:?} in a document");
            }
        }
    }
}
