//! Prometheus metrics, served as text at `/metrics`. One set for both roles;
//! a role leaves the other's at zero.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// One `name="value"` label, e.g. `reason="bad_signature"`.
pub type Label = Vec<(&'static str, String)>;

/// A counter family keyed by one label.
pub type Counted = Family<Label, Counter>;

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Hand-outs, by `fresh` or `reserve`.
    pub jobs_assigned: Counted,
    /// Jobs completed by a first valid proof.
    pub jobs_completed: Counter,
    /// Batches cut into jobs.
    pub batches_submitted: Counter,
    /// Batches whose every job is proven and whose batch proof checked.
    pub batches_proven: Counter,
    /// Proof submissions by outcome: `valid`, `invalid`, `late`, `not-issued`.
    pub proofs: Counted,
    /// Messages refused before reaching the role's logic, by reason.
    pub rejected: Counted,
    /// Seconds to verify one proof.
    pub verify_seconds: Histogram,
    /// Seconds to prove one job (prover) or one job locally (centralized).
    pub prove_seconds: Histogram,
    /// Prover: jobs by how they ended: `accepted`, `late`, `invalid`,
    /// `released`, `failed`.
    pub prover_jobs: Counted,
    /// Prover: the distributor's answers that asked it to back off, by
    /// reason (`busy`, `rate_limited`).
    pub pushed_back: Counted,
    /// Prover: receipts refused, by `reason`: `unverified` (does not
    /// decode or verify against the distributor's key) or `differs` (not
    /// the credit its `Accepted` promised). Each job counted once.
    pub receipts_refused: Counted,
    /// Prover: accepted jobs whose receipt is overdue (the distributor has
    /// not paid for them).
    pub receipts_overdue: Gauge,
    /// Prover: seconds the oldest ledger block holding its credits has
    /// waited to be anchored on chain (0: none waiting, or no chain watched).
    pub unanchored_credit_seconds: Gauge,
    /// Prover: 1 once an anchored balance root differs from the one the
    /// distributor signed for that block.
    pub anchor_mismatch: Gauge,
    /// Prover: `Accepted` verdicts naming another `proof_hash`, `job` or
    /// `prover` than the submission's, by `what`.
    pub bad_verdicts: Counted,
    /// Connected peers.
    pub peers: Gauge,
    /// Ledger height (distributor).
    pub ledger_height: Gauge,
    /// Request-response bytes, by `read` or `written`.
    pub wire_bytes: Family<Label, Gauge>,
    /// Bytes of proving key fetched (prover).
    pub key_bytes_fetched: Counter,
    /// Bytes of proving key served (distributor).
    pub key_bytes_served: Counter,
    /// Bytes of witnesses fetched by hash (prover).
    pub witness_bytes_fetched: Counter,
    /// Bytes of witnesses served by hash (distributor).
    pub witness_bytes_served: Counter,
    /// Always 1, labelled with the binary's version and the node's role.
    pub build_info: Family<Label, Gauge>,
    /// Distributor: 1, labelled with where its keys' setup randomness came
    /// from (`random` or `insecure-seed`).
    pub key_setup: Family<Label, Gauge>,
    /// Jobs of unproven batches still waiting for a valid proof (distributor).
    pub jobs_open: Gauge,
    /// Items waiting in each of the node's internal queues, by `queue`.
    pub queue_depth: Family<Label, Gauge>,
    /// Each internal queue's capacity, by `queue`.
    pub queue_capacity: Family<Label, Gauge>,
    /// Ledger writes that failed (credits not yet durable, blocks not cut).
    pub ledger_write_errors: Counter,
    /// Distributor: the last batch settled on chain.
    pub chain_settled_batch: Gauge,
    /// Distributor: proven batches not yet settled on chain.
    pub chain_batches_unsettled: Gauge,
    /// Distributor: the last ledger block anchored on chain.
    pub chain_anchored_height: Gauge,
    /// Distributor: ledger blocks not yet anchored on chain.
    pub chain_blocks_unanchored: Gauge,
    /// Distributor: gas used by its chain transactions.
    pub chain_gas_used: Counter,
    /// Distributor: chain steps that failed (the chain unreachable, a
    /// transaction refused); each is retried.
    pub chain_errors: Counter,
    /// Distributor: transactions replaced (same nonce, higher fees) after
    /// pending past `[chain] replace_after_secs`.
    pub chain_replaced: Counter,
    /// Ledger transactions waiting for the next block.
    pub ledger_pending_txs: Gauge,
    /// Distributor: seconds from a request's arrival at the network task to
    /// its answer leaving for the network, by `kind` (`job_request`,
    /// `submission`): queueing, admission, scheduling, verification and the
    /// fsyncs the answer waits for.
    pub request_seconds: Family<Label, Histogram>,
    /// What the network loop did when a queue to the role was full, by
    /// `policy`: `gossip_dropped`, `request_busy` (answered `busy`),
    /// `event_dropped`.
    pub overflow: Counted,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `crowdprove` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("crowdprove");
        let seconds = || Histogram::new(exponential_buckets(0.0005, 2.0, 20));
        let m = Self {
            jobs_assigned: Counted::default(),
            jobs_completed: Counter::default(),
            batches_submitted: Counter::default(),
            batches_proven: Counter::default(),
            proofs: Counted::default(),
            rejected: Counted::default(),
            verify_seconds: seconds(),
            prove_seconds: seconds(),
            prover_jobs: Counted::default(),
            pushed_back: Counted::default(),
            receipts_refused: Counted::default(),
            receipts_overdue: Gauge::default(),
            unanchored_credit_seconds: Gauge::default(),
            anchor_mismatch: Gauge::default(),
            bad_verdicts: Counted::default(),
            peers: Gauge::default(),
            ledger_height: Gauge::default(),
            wire_bytes: Family::default(),
            key_bytes_fetched: Counter::default(),
            key_bytes_served: Counter::default(),
            witness_bytes_fetched: Counter::default(),
            witness_bytes_served: Counter::default(),
            build_info: Family::default(),
            key_setup: Family::default(),
            jobs_open: Gauge::default(),
            queue_depth: Family::default(),
            queue_capacity: Family::default(),
            ledger_write_errors: Counter::default(),
            chain_settled_batch: Gauge::default(),
            chain_batches_unsettled: Gauge::default(),
            chain_anchored_height: Gauge::default(),
            chain_blocks_unanchored: Gauge::default(),
            chain_gas_used: Counter::default(),
            chain_errors: Counter::default(),
            chain_replaced: Counter::default(),
            ledger_pending_txs: Gauge::default(),
            overflow: Counted::default(),
            request_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 18))
            }),
            registry: Registry::default(),
        };
        m.register_work(&mut registry);
        m.register_prover(&mut registry);
        m.register_node(&mut registry);
        m.register_load(&mut registry);
        Self { registry, ..m }
    }

    /// Registers the distributor's work: hand-outs, jobs, batches, proofs
    /// and the time to prove and verify one.
    fn register_work(&self, registry: &mut Registry) {
        registry.register(
            "jobs_assigned",
            "Job hand-outs, fresh or re-served",
            self.jobs_assigned.clone(),
        );
        registry.register(
            "jobs_completed",
            "Jobs completed by a first valid proof",
            self.jobs_completed.clone(),
        );
        registry.register(
            "batches_submitted",
            "Batches cut into jobs",
            self.batches_submitted.clone(),
        );
        registry.register(
            "batches_proven",
            "Batches fully proven and batch-verified",
            self.batches_proven.clone(),
        );
        registry.register(
            "proofs",
            "Proof submissions by outcome",
            self.proofs.clone(),
        );
        registry.register(
            "rejected_messages",
            "Messages refused, by reason",
            self.rejected.clone(),
        );
        registry.register(
            "verify_seconds",
            "Time to verify one proof",
            self.verify_seconds.clone(),
        );
        registry.register(
            "prove_seconds",
            "Time to prove one job",
            self.prove_seconds.clone(),
        );
    }

    /// Registers the prover's own jobs and the back-offs asked of it.
    fn register_prover(&self, registry: &mut Registry) {
        registry.register(
            "prover_jobs",
            "Prover: assignments by how they ended",
            self.prover_jobs.clone(),
        );
        registry.register(
            "pushed_back",
            "Prover: answers that asked it to back off, by reason",
            self.pushed_back.clone(),
        );
        registry.register(
            "receipts_refused",
            "Prover: receipts refused (not verifying, or not the credit promised), by reason",
            self.receipts_refused.clone(),
        );
        registry.register(
            "receipts_overdue",
            "Prover: accepted jobs whose receipt is overdue",
            self.receipts_overdue.clone(),
        );
        registry.register(
            "unanchored_credit_seconds",
            "Prover: seconds the oldest ledger block holding its credits has waited to be anchored on chain",
            self.unanchored_credit_seconds.clone(),
        );
        registry.register(
            "anchor_mismatch",
            "Prover: 1 once an anchored balance root differs from the one the distributor signed",
            self.anchor_mismatch.clone(),
        );
        registry.register(
            "bad_verdicts",
            "Prover: Accepted verdicts that do not match the submission, by what differs",
            self.bad_verdicts.clone(),
        );
    }

    /// Registers the node's own: peers, ledger height, wire and key bytes,
    /// build and key setup.
    fn register_node(&self, registry: &mut Registry) {
        registry.register("peers", "Connected peers", self.peers.clone());
        registry.register(
            "ledger_height",
            "Height of the ledger's last block",
            self.ledger_height.clone(),
        );
        registry.register(
            "rpc_bytes",
            "Request-response bytes on the wire",
            self.wire_bytes.clone(),
        );
        registry.register(
            "key_bytes_fetched",
            "Proving-key bytes fetched from the distributor",
            self.key_bytes_fetched.clone(),
        );
        registry.register(
            "key_bytes_served",
            "Proving-key bytes served to provers",
            self.key_bytes_served.clone(),
        );
        registry.register(
            "witness_bytes_fetched",
            "Witness bytes fetched by hash from the distributor",
            self.witness_bytes_fetched.clone(),
        );
        registry.register(
            "witness_bytes_served",
            "Witness bytes served by hash to the holders of their jobs",
            self.witness_bytes_served.clone(),
        );
        registry.register(
            "build_info",
            "Always 1: the binary's version and the node's role",
            self.build_info.clone(),
        );
        registry.register(
            "key_setup",
            "Always 1: where the distributor's keys' setup randomness came from",
            self.key_setup.clone(),
        );
    }

    /// Registers the chain client's: settlement and anchoring progress,
    /// gas, errors.
    fn register_chain(&self, registry: &mut Registry) {
        registry.register(
            "chain_settled_batch",
            "The last batch settled on chain",
            self.chain_settled_batch.clone(),
        );
        registry.register(
            "chain_batches_unsettled",
            "Proven batches not yet settled on chain",
            self.chain_batches_unsettled.clone(),
        );
        registry.register(
            "chain_anchored_height",
            "The last ledger block anchored on chain",
            self.chain_anchored_height.clone(),
        );
        registry.register(
            "chain_blocks_unanchored",
            "Ledger blocks not yet anchored on chain",
            self.chain_blocks_unanchored.clone(),
        );
        registry.register(
            "chain_gas_used",
            "Gas used by the distributor's chain transactions",
            self.chain_gas_used.clone(),
        );
        registry.register(
            "chain_errors",
            "Chain steps that failed and are retried",
            self.chain_errors.clone(),
        );
        registry.register(
            "chain_replaced",
            "Chain transactions replaced with higher fees after pending too long",
            self.chain_replaced.clone(),
        );
    }

    /// Registers backlog and load: open jobs, queues, ledger writes,
    /// request times and overflow.
    fn register_load(&self, registry: &mut Registry) {
        registry.register(
            "jobs_open",
            "Jobs of unproven batches still waiting for a valid proof",
            self.jobs_open.clone(),
        );
        registry.register(
            "queue_depth",
            "Items waiting in an internal queue",
            self.queue_depth.clone(),
        );
        registry.register(
            "queue_capacity",
            "Capacity of an internal queue",
            self.queue_capacity.clone(),
        );
        registry.register(
            "ledger_write_errors",
            "Ledger writes that failed",
            self.ledger_write_errors.clone(),
        );
        registry.register(
            "ledger_pending_txs",
            "Ledger transactions waiting for the next block",
            self.ledger_pending_txs.clone(),
        );
        self.register_chain(registry);
        registry.register(
            "request_seconds",
            "Time from a request's arrival to its answer, by kind",
            self.request_seconds.clone(),
        );
        registry.register(
            "overflow",
            "Network events not queued to the role because its queue was full, by policy",
            self.overflow.clone(),
        );
    }

    /// Sets `build_info` for a node of `role`.
    pub fn set_role(&self, role: &str) {
        self.build_info
            .get_or_create(&vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("role", role.to_string()),
            ])
            .set(1);
    }

    /// Sets `key_setup` for the distributor's keys.
    pub fn set_key_setup(&self, setup: prover_core::KeySetup) {
        self.key_setup.clear();
        self.key_setup
            .get_or_create(&label("setup", setup.label()))
            .set(1);
    }

    /// Publishes one internal queue's depth and capacity.
    pub fn queue(&self, queue: &str, depth: usize, capacity: usize) {
        let key = label("queue", queue);
        self.queue_depth.get_or_create(&key).set(depth as i64);
        self.queue_capacity.get_or_create(&key).set(capacity as i64);
    }

    /// Times one answered request of `kind` that arrived at `received`.
    pub fn answered(&self, kind: &str, received: std::time::Instant) {
        self.request_seconds
            .get_or_create(&label("kind", kind))
            .observe(received.elapsed().as_secs_f64());
    }

    /// Counts one event the network could not queue, under `policy`.
    pub fn overflowed(&self, policy: &str) {
        self.overflow.get_or_create(&label("policy", policy)).inc();
    }

    /// Counts one refused message under `reason`.
    pub fn reject(&self, reason: &str) {
        self.rejected.get_or_create(&label("reason", reason)).inc();
    }

    /// Counts one proof submission under `outcome`.
    pub fn proof(&self, outcome: &str) {
        self.proofs.get_or_create(&label("outcome", outcome)).inc();
    }

    /// Counts one hand-out, `fresh` or `reserve`.
    pub fn assigned(&self, kind: &str) {
        self.jobs_assigned.get_or_create(&label("kind", kind)).inc();
    }

    /// Counts one prover assignment by how it ended.
    pub fn prover_job(&self, outcome: &str) {
        self.prover_jobs
            .get_or_create(&label("outcome", outcome))
            .inc();
    }

    /// Counts one receipt refused, for `reason`.
    pub fn receipt_refused(&self, reason: &str) {
        self.receipts_refused
            .get_or_create(&label("reason", reason))
            .inc();
    }

    /// Counts one `Accepted` verdict whose `what` differs from the submission.
    pub fn bad_verdict(&self, what: &str) {
        self.bad_verdicts.get_or_create(&label("what", what)).inc();
    }

    /// Counts one answer that asked this prover to back off.
    pub fn pushed_back(&self, reason: &str) {
        self.pushed_back
            .get_or_create(&label("reason", reason))
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// A one-pair label set.
pub fn label(name: &'static str, value: &str) -> Label {
    vec![(name, value.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counted_reasons() {
        let m = Metrics::new();
        m.reject("bad_signature");
        m.reject("bad_signature");
        m.proof("valid");
        let text = m.render();
        assert!(
            text.contains("crowdprove_rejected_messages_total{reason=\"bad_signature\"} 2"),
            "{text}"
        );
        assert!(text.contains("crowdprove_proofs_total{outcome=\"valid\"} 1"));
    }

    /// Every metric family and sample name the node exports, from a render
    /// with each labelled family touched once.
    fn exported_names() -> std::collections::BTreeSet<String> {
        let m = Metrics::new();
        m.reject("r");
        m.proof("valid");
        m.assigned("fresh");
        m.prover_job("accepted");
        m.queue("network_events", 0, 1);
        m.set_role("distributor");
        m.wire_bytes
            .get_or_create(&label("direction", "read"))
            .set(0);
        let mut names = std::collections::BTreeSet::new();
        for line in m.render().lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.insert(name.to_string());
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        }
        names
    }

    #[test]
    fn the_monitoring_files_use_only_exported_metrics() {
        let exported = exported_names();
        assert!(
            exported.contains("crowdprove_jobs_completed_total"),
            "{exported:?}"
        );
        assert!(
            exported.contains("crowdprove_verify_seconds_bucket"),
            "{exported:?}"
        );
        let files = [
            (
                "alerts.yml",
                include_str!("../../docs/monitoring/alerts.yml"),
            ),
            (
                "alerts.test.yml",
                include_str!("../../docs/monitoring/alerts.test.yml"),
            ),
            (
                "grafana-dashboard.json",
                include_str!("../../docs/monitoring/grafana-dashboard.json"),
            ),
        ];
        for (file, text) in files {
            let mut used = 0;
            for (i, _) in text.match_indices("crowdprove_") {
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                // Alert names and job labels (crowdprove-distributor) are not metrics.
                if name.len() > "crowdprove_".len() {
                    assert!(
                        exported.contains(&name),
                        "docs/monitoring/{file} uses {name}, which the node does not export"
                    );
                    used += 1;
                }
            }
            assert!(used > 0, "docs/monitoring/{file} uses no metric");
        }
        serde_json::from_str::<serde_json::Value>(files[2].1).expect("the dashboard is JSON");
    }
}
