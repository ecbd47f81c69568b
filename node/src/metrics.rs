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
    /// Connected peers.
    pub peers: Gauge,
    /// Ledger height (distributor).
    pub ledger_height: Gauge,
    /// Request-response bytes, by `read` or `written`.
    pub wire_bytes: Family<Label, Gauge>,
    /// Bytes of proving key fetched (prover).
    pub key_bytes_fetched: Counter,
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
            peers: Gauge::default(),
            ledger_height: Gauge::default(),
            wire_bytes: Family::default(),
            key_bytes_fetched: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "jobs_assigned",
            "Job hand-outs, fresh or re-served",
            m.jobs_assigned.clone(),
        );
        registry.register(
            "jobs_completed",
            "Jobs completed by a first valid proof",
            m.jobs_completed.clone(),
        );
        registry.register(
            "batches_submitted",
            "Batches cut into jobs",
            m.batches_submitted.clone(),
        );
        registry.register(
            "batches_proven",
            "Batches fully proven and batch-verified",
            m.batches_proven.clone(),
        );
        registry.register("proofs", "Proof submissions by outcome", m.proofs.clone());
        registry.register(
            "rejected_messages",
            "Messages refused, by reason",
            m.rejected.clone(),
        );
        registry.register(
            "verify_seconds",
            "Time to verify one proof",
            m.verify_seconds.clone(),
        );
        registry.register(
            "prove_seconds",
            "Time to prove one job",
            m.prove_seconds.clone(),
        );
        registry.register(
            "prover_jobs",
            "Prover: assignments by how they ended",
            m.prover_jobs.clone(),
        );
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register(
            "ledger_height",
            "Height of the ledger's last block",
            m.ledger_height.clone(),
        );
        registry.register(
            "rpc_bytes",
            "Request-response bytes on the wire",
            m.wire_bytes.clone(),
        );
        registry.register(
            "key_bytes_fetched",
            "Proving-key bytes fetched from the distributor",
            m.key_bytes_fetched.clone(),
        );
        Self { registry, ..m }
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
}
