//! Proof submissions, from arrival to the prover's ear.
//!
//! On arrival ([`Distributor::on_submission`]) the cheap checks answer at
//! once, unverified: a hand-out that already won, a late proof, a hand-out
//! never issued (or a job that does not exist), a store that cannot be
//! read, a full pool. The rest go to the verification pool; its verdict
//! comes back to [`Distributor::judge`], which strikes an invalid proof or
//! asks the scheduler to complete the job. Only when the scheduler has
//! decided the proof won is a [`Settlement`] built; it then moves through
//! named stages on the service threads: stored (the journal), paid (the
//! payout writer), told (the prover hears `Accepted`). Nothing is said
//! before it is true.
//!
//! Every answer tells the truth about the ledger: a submission for a
//! hand-out that already won its job — its prover and request, whatever
//! the bytes, whenever they arrive (before verification, after it, after a
//! restart) — is told `Accepted` with the hash of the proof that was
//! credited, once the credit is durable, and `busy` until then; a copy
//! judged while the winning copy's settlement is still on its way follows
//! it as a [`Repeat`] and is told when it is paid. It is never struck,
//! never told `Late`, and never paid twice.

use protocol::lrp::{Completion, LrpEvent, LrpOutcome};
use protocol::messages::{InvalidReason, Outcome, ProofSubmission, Verdict};
use protocol::{ContentHash, JobId, PayoutBinding, PublicKey, RequestId};
use tracing::{debug, error, info, warn};

use super::Distributor;
use super::centralized::LocalProof;
use super::courier::Durable;
use super::scheduler::Log;
use super::store::{Change, DoneRecord, JobRecord, WinnerRecord};
use super::verify::{self, ProofCheck};
use super::wire::ReplyTo;

/// A proof on its way through the verification pool.
#[derive(Debug)]
pub struct Submission {
    job: JobId,
    request: RequestId,
    prover: PublicKey,
    proof: Vec<u8>,
    /// The prover's signed payout address, if it sent one.
    payout: Option<PayoutBinding>,
    record: JobRecord,
    /// Where the verdict goes; `None` for the baseline's own proofs.
    reply: Option<ReplyTo>,
}

impl Submission {
    /// What its prover is told when the outcome is not a win.
    fn verdict(&self, outcome: Outcome) -> Verdict {
        Verdict {
            job: self.job,
            request: self.request,
            prover: self.prover,
            proof_hash: ContentHash::of(&self.proof),
            outcome,
        }
    }
}

/// How far a winning proof has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Verified and chosen by the scheduler: the job's winner.
    Verified,
    /// The proof and the completion are in the job store.
    Stored,
    /// The credit is in the ledger.
    Paid,
    /// The prover was sent `Accepted`.
    Told,
}

/// A winning proof's settlement: stored, then paid, then told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The job won.
    pub job: JobId,
    /// The hand-out that won it.
    pub request: RequestId,
    /// Who is paid.
    pub prover: PublicKey,
    /// The winning proof's hash, in the credit and the verdict.
    pub proof_hash: ContentHash,
    /// What it is paid.
    pub reward: u64,
    /// The prover's signed payout address, recorded with the credit if it
    /// is newer than the ledger's.
    pub payout: Option<PayoutBinding>,
    /// Who to tell: `None` for the baseline's own proofs and for credits
    /// recovered after a crash.
    pub reply: Option<ReplyTo>,
    /// The job was its batch's last: check the batch once it is paid.
    pub batch_finished: bool,
    /// How far it has come.
    pub stage: Stage,
}

impl Settlement {
    /// A job completed before a crash but never paid: to be paid now.
    pub fn recovered(job: JobId, done: &DoneRecord, reward: u64) -> Self {
        Self {
            job,
            request: done.request,
            prover: done.prover,
            proof_hash: ContentHash::of(&done.proof),
            reward,
            payout: None,
            reply: None,
            batch_finished: false,
            stage: Stage::Stored,
        }
    }

    /// The ledger credit it pays.
    pub fn credit(&self) -> ledger::Credit {
        ledger::Credit::new(self.prover, self.job, self.reward, self.proof_hash)
    }

    /// The `Accepted` verdict its prover is told.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            job: self.job,
            request: self.request,
            prover: self.prover,
            proof_hash: self.proof_hash,
            outcome: Outcome::Accepted {
                reward: self.reward,
            },
        }
    }

    /// The settlement, now at `stage`.
    pub fn reached(mut self, stage: Stage) -> Self {
        debug!(target: "distributor", job = %self.job, ?stage, "settlement");
        self.stage = stage;
        self
    }
}

/// A copy of a winning submission judged before the winner's credit was
/// durable: told `Accepted`, with the credited proof's hash, once it is.
#[derive(Debug)]
pub struct Repeat {
    /// The job won.
    pub job: JobId,
    /// The hand-out that won it, and sent this copy.
    pub request: RequestId,
    /// Its prover.
    pub prover: PublicKey,
    /// What the winner is paid.
    pub reward: u64,
    /// Who to tell.
    pub reply: ReplyTo,
}

impl Repeat {
    /// The winner's settlement, told to this copy's sender once paid:
    /// `winner` is the stored winner (its proof hash is the credit's); the
    /// credit it carries is the winner's own, so the payout writer finds it
    /// paid and pays nothing twice.
    pub fn settlement(self, winner: &WinnerRecord) -> Settlement {
        Settlement {
            job: self.job,
            request: winner.request,
            prover: winner.prover,
            proof_hash: winner.proof_hash,
            reward: self.reward,
            payout: None,
            reply: Some(self.reply),
            batch_finished: false,
            stage: Stage::Stored,
        }
    }
}

/// What a valid proof's prover is told, by the scheduler's answer to its
/// completion: the job may have changed while the proof was verified, and
/// each change has its own truth. Only a hand-out that lost to another
/// proof is `Late`; one the scheduler no longer holds for this prover was
/// voided meanwhile (released, or shed as one of a job's too many expired
/// probation hand-outs) and is answered as on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterVerification {
    /// It won the job: settle it.
    Won,
    /// Its hand-out was this prover's and another proof won first.
    Late,
    /// This very hand-out had already won: the credit's answer.
    AlreadyWon,
    /// The hand-out is not this prover's (any more): `Invalid(NotIssued)`,
    /// no strike.
    NotIssued,
}

impl AfterVerification {
    fn of(outcome: &LrpOutcome) -> Self {
        match outcome {
            LrpOutcome::Completed(Completion::Accepted { .. }) => Self::Won,
            LrpOutcome::Completed(Completion::Late) => Self::Late,
            // `judge` sends a winner's copies to `repeat` first; should
            // one still come here, the credit is its answer all the same.
            LrpOutcome::Completed(Completion::Duplicate) => Self::AlreadyWon,
            LrpOutcome::Completed(Completion::WrongProver | Completion::Unknown) => Self::NotIssued,
            // A completion is answered with `Completed`; anything else
            // would mean the scheduler knows nothing of this hand-out.
            _ => Self::NotIssued,
        }
    }
}

impl Distributor {
    /// A proof submission: the checks that need no verification answer at
    /// once; the rest queue for the verification pool.
    pub(super) fn on_submission(
        &mut self,
        prover: PublicKey,
        submission: ProofSubmission,
        reply: Option<ReplyTo>,
    ) {
        let ProofSubmission {
            job,
            request,
            proof,
            payout,
        } = submission;
        let (core, outbox) = (&mut self.core, &self.services.outbox);
        let metrics = &self.services.metrics;
        let answer = |outcome| {
            let verdict = Verdict {
                job,
                request,
                prover,
                proof_hash: ContentHash::of(&proof),
                outcome,
            };
            if let Some(reply) = reply {
                outbox.answer("submission", reply, &verdict);
            }
        };
        match core.scheduler.winner(job, &core.store) {
            // Its own hand-out won already (its `Accepted` was lost, it
            // restarted, or it sent again): whatever these bytes are, the
            // answer is the credit's.
            Some(won) if won == (prover, request) => {
                if self.tell_winner(job, request, prover, reply) {
                    self.services.metrics.proof("again");
                }
                return;
            }
            // Its hand-out lost to another proof: late. Told only to whom
            // the hand-out went (anyone else is told it was never theirs,
            // and leaves no record).
            Some(_) if core.scheduler.was_superseded(job, request, &prover) => {
                metrics.proof("late");
                core.scheduler.late(prover, request, core.scheduler.now());
                debug!(target: "distributor", prover = %prover.node_id(), %job, "late proof");
                return answer(Outcome::Late);
            }
            Some(_) | None => {}
        }
        if !core.scheduler.holds(job, request, &prover) {
            // Never issued to this prover, or no such job at all.
            info!(
                target: "distributor",
                prover = %prover.node_id(),
                %job,
                request = request.0,
                "proof for a hand-out never issued to this prover; dropped unverified"
            );
            let proof_hash = ContentHash::of(&proof);
            return self.not_issued(job, request, prover, proof_hash, reply);
        }
        let record = match core.store.job(job) {
            Ok(Some(record)) => record,
            other => {
                error!(target: "distributor", %job, found = ?other.map(|_| ()), "job scheduled but not readable from the store");
                return reply.into_iter().for_each(|r| outbox.refuse(r, "busy"));
            }
        };
        self.verify(Submission {
            job,
            request,
            prover,
            proof,
            payout,
            record,
            reply,
        });
    }

    /// Queues `submission` for the verification pool, or answers `busy`.
    fn verify(&mut self, submission: Submission) {
        let check = ProofCheck {
            public: submission.record.public.clone(),
            proof: submission.proof.clone(),
            context: submission,
        };
        if let Err(check) = self.services.pool.submit(check) {
            self.services.metrics.proof("busy");
            if let Some(reply) = check.context.reply {
                self.services.outbox.refuse(reply, "busy");
            }
        }
    }

    /// A submission for a hand-out that already won its job, whatever its
    /// bytes: `Accepted`, with the credited proof's hash, once the credit
    /// is durable; `busy` until then (the prover asks again). Returns
    /// whether it was told `Accepted`.
    fn tell_winner(
        &self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        reply: Option<ReplyTo>,
    ) -> bool {
        let Some(reply) = reply else { return false };
        let outbox = &self.services.outbox;
        match self.credited(job) {
            Some(credit) => {
                // The credit's own figures: the reward may have changed
                // since (allowed once no batch is open).
                let verdict = Verdict {
                    job,
                    request,
                    prover,
                    proof_hash: credit.proof_hash,
                    outcome: Outcome::Accepted {
                        reward: credit.amount,
                    },
                };
                outbox.answer("submission", reply, &verdict);
                true
            }
            None => {
                outbox.refuse(reply, "busy");
                false
            }
        }
    }

    /// `job`'s credit, once it is durable in the ledger.
    fn credited(&self, job: JobId) -> Option<ledger::Credit> {
        match self.core.ledger.read().expect("ledger lock").credit(job) {
            Ok(credit) => credit,
            Err(e) => {
                error!(target: "distributor", %job, error = %e, "cannot read a job's credit");
                None
            }
        }
    }

    /// A verdict from the pool: strike an invalid proof; ask the scheduler
    /// to complete the job with a valid one, and if it won, settle it.
    pub(super) fn judge(&mut self, verdict: verify::Verdict<Submission>) {
        let verify::Verdict {
            result,
            seconds,
            context,
        } = verdict;
        self.services.metrics.verify_seconds.observe(seconds);
        self.counters.verify_count += 1;
        self.counters.verify_seconds += seconds;
        let core = &self.core;
        let won = core.scheduler.winner(context.job, &core.store);
        match result {
            _ if won == Some((context.prover, context.request)) => {
                self.repeat(context, result.is_ok());
            }
            Err(reason) => self.strike(context, reason),
            Ok(()) => self.complete(context, seconds),
        }
    }

    /// A copy of a submission whose hand-out won while this copy was
    /// verified (sent twice, or again after a timeout), valid or not: not
    /// struck, not paid again, told `Accepted` with the credited proof's
    /// hash. If the winning copy's settlement is still on its way, this
    /// copy's event is logged with a [`Repeat`] that follows it through
    /// the journal and the payout writer, so it is told once that is paid.
    fn repeat(&mut self, submission: Submission, valid: bool) {
        let Submission {
            job,
            request,
            prover,
            reply,
            ..
        } = submission;
        self.services.metrics.proof("repeat");
        let paid = self.credited(job).is_some();
        let Some(reply) = reply.filter(|_| !paid) else {
            self.tell_winner(job, request, prover, reply);
            return;
        };
        let now = self.core.scheduler.now();
        let event = if valid {
            LrpEvent::Complete {
                job,
                request,
                prover,
                now,
            }
        } else {
            LrpEvent::Invalid {
                job,
                request,
                prover,
                now,
            }
        };
        let repeat = Repeat {
            job,
            request,
            prover,
            reward: self.core.settings.reward_per_job,
            reply,
        };
        let outcome = self
            .core
            .scheduler
            .apply(event, |_| Log::then(Durable::Repeat(repeat)));
        debug!(target: "distributor", prover = %prover.node_id(), %job, ?outcome, "the winner's submission again, before its credit");
    }

    /// An invalid proof: counted against its prover, who is told why.
    fn strike(&mut self, submission: Submission, reason: InvalidReason) {
        let told = submission.verdict(Outcome::Invalid(reason));
        let Submission {
            job,
            request,
            prover,
            reply,
            ..
        } = submission;
        self.services.metrics.proof("invalid");
        let now = self.core.scheduler.now();
        let event = LrpEvent::Invalid {
            job,
            request,
            prover,
            now,
        };
        let outcome = self.core.scheduler.apply(event, |_| Log::plain());
        warn!(target: "distributor", prover = %prover.node_id(), %job, ?reason, ?outcome, "invalid proof");
        if let Some(reply) = reply {
            self.services.outbox.answer("submission", reply, &told);
        }
    }

    /// A valid proof: the scheduler decides whether it won. A winner's
    /// record and [`Settlement`] go to the journal together. Anything else
    /// changed while it was verified, and is told what
    /// [`AfterVerification`] says is true now.
    fn complete(&mut self, submission: Submission, seconds: f64) {
        crate::crash::at(crate::crash::Point::Verified);
        let late = submission.verdict(Outcome::Late);
        let Submission {
            job,
            request,
            prover,
            proof,
            payout,
            record,
            reply,
        } = submission;
        let core = &mut self.core;
        let now = core.scheduler.now();
        let proof_hash = late.proof_hash;
        let reward = core.settings.reward_per_job;
        let event = LrpEvent::Complete {
            job,
            request,
            prover,
            now,
        };
        let outcome = core.scheduler.apply(event, |outcome| {
            let LrpOutcome::Completed(Completion::Accepted { batch_finished, .. }) = outcome else {
                return Log::plain();
            };
            let settlement = Settlement {
                job,
                request,
                prover,
                proof_hash,
                reward,
                payout,
                reply,
                batch_finished: *batch_finished,
                stage: Stage::Verified,
            };
            let done = DoneRecord {
                prover,
                request,
                proof,
                at: now,
            };
            let stored = Change::Job(
                job,
                JobRecord {
                    done: Some(done),
                    ..record
                },
            );
            Log {
                records: vec![stored],
                then: Some(Durable::Settlement(settlement)),
            }
        });
        self.tell_verified(&outcome, late, reply, seconds);
    }

    /// Tells a valid proof's prover what [`AfterVerification`] says of the
    /// scheduler's `outcome`; `late` is its `Late` verdict.
    fn tell_verified(
        &mut self,
        outcome: &LrpOutcome,
        late: Verdict,
        reply: Option<ReplyTo>,
        seconds: f64,
    ) {
        let Verdict {
            job,
            request,
            prover,
            proof_hash,
            ..
        } = late;
        let metrics = &self.services.metrics;
        match AfterVerification::of(outcome) {
            AfterVerification::Won => {
                metrics.proof("valid");
                metrics.jobs_completed.inc();
                info!(target: "distributor", prover = %prover.node_id(), %job, verify_ms = seconds * 1e3, "proof accepted");
            }
            AfterVerification::Late => {
                metrics.proof("late");
                let now = self.core.scheduler.now();
                self.core.scheduler.late(prover, request, now);
                if let Some(reply) = reply {
                    self.services.outbox.answer("submission", reply, &late);
                }
            }
            AfterVerification::AlreadyWon => {
                self.tell_winner(job, request, prover, reply);
            }
            AfterVerification::NotIssued => {
                info!(
                    target: "distributor",
                    prover = %prover.node_id(),
                    %job,
                    request = request.0,
                    ?outcome,
                    "valid proof for a hand-out voided while it was verified"
                );
                self.not_issued(job, request, prover, proof_hash, reply);
            }
        }
    }

    /// A proof for a hand-out the scheduler does not hold for its sender:
    /// never issued to it, released, voided (by an invalid proof, or shed
    /// as one of a job's too many expired probation hand-outs), or of no
    /// such job. One rule whether that is found on arrival or after
    /// verification: counted, told `Invalid(NotIssued)`, and never struck,
    /// as the docs' verdict table says. A hand-out the scheduler's own
    /// bookkeeping voided is no fault of its prover's, and a sender the
    /// history has no record of gets none made.
    fn not_issued(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        proof_hash: ContentHash,
        reply: Option<ReplyTo>,
    ) {
        self.services.metrics.proof("not_issued");
        self.core.scheduler.not_issued(prover);
        if let Some(reply) = reply {
            let verdict = Verdict {
                job,
                request,
                prover,
                proof_hash,
                outcome: Outcome::Invalid(InvalidReason::NotIssued),
            };
            self.services.outbox.answer("submission", reply, &verdict);
        }
    }

    /// The baseline proved a job: submit it like any prover's, then keep
    /// its slots busy.
    pub(super) fn on_local_proof(&mut self, local: LocalProof) {
        if let Some(prover) = self.services.local.as_mut() {
            prover.finished(local.slot);
        }
        self.services.metrics.prove_seconds.observe(local.seconds);
        let job = local.assignment.job;
        match local.proof {
            Ok(proof) => {
                let submission = ProofSubmission {
                    job,
                    request: local.assignment.request,
                    proof,
                    payout: None,
                };
                self.on_submission(self.core.public, submission, None);
            }
            Err(e) => error!(target: "distributor", %job, error = %e, "local proving failed"),
        }
        self.fill_local();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each completion is answered with its own truth: `Late` only for a
    /// hand-out of this prover's that another proof beat; a hand-out voided
    /// while its proof was verified (the scheduler answers `Unknown`, or
    /// `WrongProver`) is `NotIssued`, as on arrival.
    #[test]
    fn each_completion_gets_its_own_answer() {
        let cases = [
            (
                Completion::Accepted {
                    superseded: 0,
                    batch_finished: false,
                },
                AfterVerification::Won,
            ),
            (Completion::Late, AfterVerification::Late),
            (Completion::Duplicate, AfterVerification::AlreadyWon),
            (Completion::WrongProver, AfterVerification::NotIssued),
            (Completion::Unknown, AfterVerification::NotIssued),
        ];
        for (completion, told) in cases {
            let outcome = LrpOutcome::Completed(completion);
            assert_eq!(AfterVerification::of(&outcome), told, "{completion:?}");
        }
    }
}
