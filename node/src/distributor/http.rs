//! The operator API's requests, answered on the run loop: batches in
//! (`POST /batch`, `POST /batch/witnesses`, checked here before intake
//! builds them), proofs out (`GET /proofs/<job>`, built off the run loop),
//! and the attempts log (the newest [`crate::api::MAX_ATTEMPTS`] at most).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol::{CircuitId, JobId};
use prover_core::VerifyingKey;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing::error;

use super::Distributor;
use super::intake::BatchInput;
use super::store::JobStore;
use crate::api::{ApiRequest, Rejection};

/// `GET /proofs/<job>` exports built at once; more are answered 503. The
/// API reads without a token, and an open job's record holds its witness
/// (up to a megabyte): a stranger asking for proofs in a loop costs at most this
/// many store reads at a time, none of them on the run loop.
const EXPORTS_AT_ONCE: usize = 2;

impl Distributor {
    pub(super) fn on_api(&mut self, request: ApiRequest) {
        match request {
            ApiRequest::Attempts { last, reply } => {
                // Bounded whoever asks: one winner lookup per row at most.
                let last = last.min(crate::api::MAX_ATTEMPTS);
                let scheduler = &self.core.scheduler;
                let store = &self.core.store;
                let doc = scheduler
                    .history()
                    .attempts_json(Some(last), |job| scheduler.is_done(job, store));
                let _ = reply.send(doc);
            }
            ApiRequest::SubmitBatch(body, reply) => {
                match parse_batch_body(&body, self.core.max_batch_txs) {
                    Ok(input) => self.new_batch(input, Some(reply)),
                    Err(rejection) => {
                        let _ = reply.send(Err(rejection));
                    }
                }
            }
            ApiRequest::Proof(job, reply) => self.export_proof(job, reply),
            ApiRequest::SubmitWitnesses(body, reply) => {
                let max = protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT;
                match parse_witness_body(&body, max) {
                    Ok(input) => self.new_batch(input, Some(reply)),
                    Err(rejection) => {
                        let _ = reply.send(Err(rejection));
                    }
                }
            }
        }
    }

    /// `GET /proofs/<job>`: a job not done is answered from its small
    /// winner record; a done one's export is built on a blocking thread, at
    /// most [`EXPORTS_AT_ONCE`] at a time.
    fn export_proof(&mut self, job: JobId, reply: oneshot::Sender<Result<Value, Rejection>>) {
        let refusal = match self.core.store.winner(job) {
            Ok(Some(_)) => None,
            Ok(None) => Some(self.not_proven(job)),
            Err(e) => Some(export_failed(job, e.to_string())),
        };
        if let Some(refusal) = refusal {
            let _ = reply.send(Err(refusal));
            return;
        }
        let Some(slot) = ExportSlot::take(&self.counters.exports) else {
            let _ = reply.send(Err(Rejection::new(
                503,
                "busy: other proof exports are being built; try again in a moment",
            )));
            return;
        };
        let store = self.core.store.clone();
        let key = self.core.verifying_key.clone();
        let circuit = self.core.circuit.clone();
        tokio::task::spawn_blocking(move || {
            let _ = reply.send(proof_bundle(&store, &key, circuit, job));
            drop(slot);
        });
    }

    /// Why a job with no winner has no export: no such job, or not proven
    /// yet (its batch's small record says which).
    fn not_proven(&self, job: JobId) -> Rejection {
        match self.core.store.batch(job.batch) {
            Ok(Some(batch)) if job.index < batch.jobs => {
                Rejection::new(404, format!("job {job} has no accepted proof yet"))
            }
            Ok(_) => Rejection::new(404, format!("there is no job {job}")),
            Err(e) => export_failed(job, e.to_string()),
        }
    }
}

/// One of the [`EXPORTS_AT_ONCE`] places, given back when dropped.
struct ExportSlot(Arc<AtomicUsize>);

impl ExportSlot {
    fn take(in_flight: &Arc<AtomicUsize>) -> Option<Self> {
        let taken = in_flight.fetch_add(1, Ordering::SeqCst);
        let slot = Self(in_flight.clone());
        (taken < EXPORTS_AT_ONCE).then_some(slot)
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn export_failed(job: JobId, e: String) -> Rejection {
    error!(target: "distributor", %job, error = %e, "cannot export a stored proof");
    Rejection::new(503, format!("cannot read job {job}: {e}"))
}

/// A done job's accepted proof in snarkjs JSON, with its public signals and
/// the circuit's verification key.
fn proof_bundle(
    store: &JobStore,
    key: &VerifyingKey,
    circuit: CircuitId,
    job: JobId,
) -> Result<Value, Rejection> {
    let internal = |e: String| export_failed(job, e);
    let record = store
        .job(job)
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| Rejection::new(404, format!("there is no job {job}")))?;
    let done = record
        .done
        .ok_or_else(|| Rejection::new(404, format!("job {job} has no accepted proof yet")))?;
    let proof = prover_core::Proof::from_bytes(&done.proof).map_err(|e| internal(e.to_string()))?;
    let mut bundle = prover_core::snarkjs::proof_bundle(key, &record.public, &proof)
        .map_err(|e| internal(e.to_string()))?;
    bundle["job"] = json!(job.to_string());
    bundle["circuit"] = json!(circuit.as_str());
    bundle["prover"] = json!(done.prover.to_hex());
    Ok(bundle)
}

/// `POST /batch` bodies: empty (generate a batch of the configured size) or
/// a JSON array of at most `max` signed transfers (more would make an
/// announcement over the jobs limit that every prover refuses).
fn parse_batch_body(body: &[u8], max: usize) -> Result<BatchInput, Rejection> {
    let bad = |message: String| Rejection::new(400, message);
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(BatchInput::Generated);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    match value {
        Value::Array(ref txs) if txs.len() > max => Err(Rejection::new(
            413,
            format!(
                "{} transfers is over the {max} one batch may hold ({} jobs); split them into batches",
                txs.len(),
                protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT,
            ),
        )),
        Value::Array(_) => serde_json::from_value(value)
            .map(BatchInput::Transfers)
            .map_err(|e| bad(format!("not an array of signed transfers: {e}"))),
        _ => Err(bad(
            "expected an empty body or a JSON array of signed transfers".into(),
        )),
    }
}

/// `POST /batch/witnesses` bodies: circom `.wtns` files, concatenated, at
/// most `max` of them. Each file is checked against the circuit by intake.
fn parse_witness_body(body: &[u8], max: usize) -> Result<BatchInput, Rejection> {
    let files = prover_core::circom::split_witness_files(body).map_err(|e| match e {
        prover_core::Error::Wtns(reason) => Rejection::new(400, reason),
        other => Rejection::new(400, other.to_string()),
    })?;
    if files.is_empty() {
        return Err(Rejection::new(400, "the body holds no witness files"));
    }
    if files.len() > max {
        return Err(Rejection::new(
            413,
            format!(
                "{} witnesses is over the {max} one batch may hold; split them into batches",
                files.len()
            ),
        ));
    }
    Ok(BatchInput::Witnesses(
        files.into_iter().map(<[u8]>::to_vec).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_two_exports_are_built_at_once() {
        let in_flight = Arc::default();
        let first = ExportSlot::take(&in_flight).unwrap();
        let second = ExportSlot::take(&in_flight).unwrap();
        assert!(ExportSlot::take(&in_flight).is_none(), "a third waits");
        drop(first);
        let third = ExportSlot::take(&in_flight).unwrap();
        drop((second, third));
        assert_eq!(
            in_flight.load(Ordering::SeqCst),
            0,
            "every place given back"
        );
    }

    #[test]
    fn batch_bodies_are_checked_before_anything_is_built() {
        assert_eq!(parse_batch_body(b"  ", 4).unwrap(), BatchInput::Generated);
        let too_many = parse_batch_body(b"[{},{},{},{},{}]", 4).unwrap_err();
        assert_eq!(too_many.status, 413, "{too_many:?}");
        assert!(too_many.message.contains("5 transfers is over the 4"));
        for (body, says) in [
            (&b"{}"[..], "expected an empty body"),
            (b"[{}]", "not an array of signed transfers"),
            (b"[1,", "invalid JSON"),
            (b"\xff", "not UTF-8"),
        ] {
            let refused = parse_batch_body(body, 4).unwrap_err();
            assert_eq!(refused.status, 400);
            assert!(refused.message.contains(says), "{refused:?}");
        }
    }
}
