//! The operator API's requests, answered on the run loop: batches in
//! (`POST /batch`, `POST /batch/witnesses`, checked here before intake
//! builds them), proofs out (`GET /proofs/<job>`), and the attempts log
//! (the newest [`crate::api::MAX_ATTEMPTS`] at most).

use protocol::JobId;
use serde_json::{Value, json};
use tracing::error;

use super::Distributor;
use super::intake::BatchInput;
use crate::api::{ApiRequest, Rejection};

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
            ApiRequest::Proof(job, reply) => {
                let _ = reply.send(self.proof_bundle(job));
            }
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

    /// `GET /proofs/<job>`: the job's accepted proof in snarkjs JSON, with
    /// its public signals and the circuit's verification key.
    fn proof_bundle(&self, job: JobId) -> Result<Value, Rejection> {
        let internal = |e: String| {
            error!(target: "distributor", %job, error = %e, "cannot export a stored proof");
            Rejection::new(503, format!("cannot read job {job}: {e}"))
        };
        let record = self
            .core
            .store
            .job(job)
            .map_err(|e| internal(e.to_string()))?
            .ok_or_else(|| Rejection::new(404, format!("there is no job {job}")))?;
        let done = record
            .done
            .ok_or_else(|| Rejection::new(404, format!("job {job} has no accepted proof yet")))?;
        let proof =
            prover_core::Proof::from_bytes(&done.proof).map_err(|e| internal(e.to_string()))?;
        let mut bundle =
            prover_core::snarkjs::proof_bundle(&self.core.verifying_key, &record.public, &proof)
                .map_err(|e| internal(e.to_string()))?;
        bundle["job"] = json!(job.to_string());
        bundle["circuit"] = json!(self.core.circuit.as_str());
        bundle["prover"] = json!(done.prover.to_hex());
        Ok(bundle)
    }
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
