//! Hand-outs: a prover asks for work and gets an assignment or the reason
//! there is none; holders heartbeat and release; key chunks go only to
//! provers that hold work. The distributor's own baseline prover
//! (centralized mode) takes its hand-outs here too.
//!
//! An assignment leaves only once its hand-out is durable: the scheduler
//! logs the hand-out with a [`Durable::HandOut`], and the journal's courier
//! reads the witness and sends it.

use protocol::lrp::{Decision, HeartbeatOutcome, LrpEvent, LrpOutcome, Refusal};
use protocol::messages::{
    Assignment, Heartbeat, JobRequest, KeyRequest, NoWork, NoWorkReason, Release, Witness,
    WitnessRequest,
};
use protocol::{PublicKey, Timestamp};
use tracing::{debug, info};

use super::Distributor;
use super::Internal;
use super::centralized::LocalProof;
use super::courier::{Durable, HandOut, Recipient};
use super::scheduler::Log;
use super::serving::Serve;
use super::wire::ReplyTo;

impl Distributor {
    /// A prover asks for work.
    pub(super) fn on_job_request(
        &mut self,
        prover: PublicKey,
        request: JobRequest,
        reply: ReplyTo,
    ) {
        let no_work = |reason, retry_after_ms| NoWork {
            reason,
            retry_after_ms,
        };
        let outbox = &self.services.outbox;
        if self.core.settings.centralized {
            let refused = no_work(NoWorkReason::Refused, 60_000);
            return outbox.answer("job_request", reply, &refused);
        }
        if !request.circuits.is_empty() && !request.circuits.contains(&self.core.circuit) {
            let idle = no_work(NoWorkReason::Idle, 30_000);
            return outbox.answer("job_request", reply, &idle);
        }
        if let Err(no) = self.hand_out(prover, Recipient::Prover(reply)) {
            self.services.outbox.answer("job_request", reply, &no);
        }
    }

    /// One LRP decision for `prover`. An assignment goes to `to` once its
    /// hand-out is durable; otherwise the reason there is none.
    fn hand_out(&mut self, prover: PublicKey, to: Recipient) -> Result<(), NoWork> {
        let core = &mut self.core;
        let now = core.scheduler.now();
        let template = |handout: &protocol::lrp::Handout| Assignment {
            job: handout.job,
            request: handout.request,
            prover,
            circuit: core.circuit.clone(),
            proving_key: core.proving_key_hash,
            witness: Witness::Inline(Vec::new()),
            reward: core.settings.reward_per_job,
        };
        let outcome = core
            .scheduler
            .apply(LrpEvent::Request { prover, now }, |outcome| match outcome {
                LrpOutcome::Decided(Decision::Assign(handout)) => {
                    Log::then(Durable::HandOut(HandOut {
                        assignment: template(handout),
                        to,
                    }))
                }
                _ => Log::plain(),
            });
        let LrpOutcome::Decided(decision) = outcome else {
            unreachable!("a request is answered by a decision")
        };
        let retry = |at: Timestamp| at.millis_since(now).max(250);
        let (reason, retry_after_ms) = match decision {
            Decision::Assign(handout) => {
                let kind = if handout.reserve { "reserve" } else { "fresh" };
                self.services.metrics.assigned(kind);
                info!(
                    target: "lrp",
                    job = %handout.job,
                    request = handout.request.0,
                    prover = %prover.node_id(),
                    reserve = handout.reserve,
                    "assigned"
                );
                return Ok(());
            }
            Decision::NoWork { retry_at } => (NoWorkReason::Idle, retry(retry_at)),
            Decision::Refused(Refusal::AtCapacity { retry_at, .. }) => {
                (NoWorkReason::AtCapacity, retry(retry_at))
            }
            Decision::Refused(Refusal::Cooldown { until, .. }) => {
                (NoWorkReason::CoolingDown, retry(until))
            }
            Decision::Refused(Refusal::Banned { .. } | Refusal::RequestIdsExhausted) => {
                (NoWorkReason::Refused, 3_600_000)
            }
        };
        Err(NoWork {
            reason,
            retry_after_ms,
        })
    }

    /// A holder says it is still at work.
    pub(super) fn on_heartbeat(
        &mut self,
        prover: PublicKey,
        heartbeat: Heartbeat,
        reply: ReplyTo,
        now: Timestamp,
    ) {
        let event = LrpEvent::Heartbeat {
            job: heartbeat.job,
            request: heartbeat.request,
            prover,
            now,
        };
        let outbox = &self.services.outbox;
        match self.core.scheduler.apply(event, |_| Log::plain()) {
            LrpOutcome::Heard(HeartbeatOutcome::Noted | HeartbeatOutcome::TooSoon) => {
                outbox.reply(reply, &heartbeat)
            }
            LrpOutcome::Heard(HeartbeatOutcome::AlreadyDone) => outbox.refuse(reply, "job_done"),
            _ => outbox.refuse(reply, "not_issued"),
        }
    }

    /// A holder gives its hand-out back.
    pub(super) fn on_release(
        &mut self,
        prover: PublicKey,
        release: Release,
        reply: ReplyTo,
        now: Timestamp,
    ) {
        let event = LrpEvent::Release {
            job: release.job,
            request: release.request,
            prover,
            now,
        };
        let outcome = self.core.scheduler.apply(event, |_| Log::plain());
        debug!(target: "lrp", job = %release.job, ?outcome, "release");
        self.services.outbox.reply(reply, &release);
    }

    /// Key chunks go only to a prover that holds a job within its lease, or
    /// one it heartbeat within the heartbeat silence (it needs the key to
    /// prove it, and a download longer than the lease is still its work; a
    /// hand-out expired and silent is no reason), and within its
    /// [`super::serving::KeyBudget`]: one copy of the key for a prover on
    /// probation, two for a trusted one.
    pub(super) fn on_key_request(
        &mut self,
        prover: PublicKey,
        request: KeyRequest,
        reply: ReplyTo,
        now: Timestamp,
    ) {
        let core = &mut self.core;
        let lrp = core.scheduler.lrp();
        let Some(view) = lrp.prover(&prover) else {
            return self.services.outbox.refuse(reply, "no_handout");
        };
        let silence = lrp.config().heartbeat_silence_ms;
        let heard_lately = |request| {
            silence > 0
                && lrp
                    .heard(request)
                    .is_some_and(|at| now.millis_since(at) < silence)
        };
        if !view.holds_live(now, lrp.config().lease_ms)
            && !view.holdings.iter().any(|h| heard_lately(h.request))
        {
            return self.services.outbox.refuse(reply, "no_handout");
        }
        let trusted = view.is_trusted();
        let bytes = core.key_budget.chunk_bytes(request.chunk);
        if !core.key_budget.charge(prover, trusted, now, bytes) {
            return self.services.outbox.refuse(reply, "key_budget");
        }
        if let Err(refused) = self.services.server.submit(Serve::Key(request, reply)) {
            self.core.key_budget.refund(prover, bytes);
            self.services.outbox.refuse(refused.reply_to(), "busy");
        }
    }

    /// Witness chunks go only to the prover holding the hand-out the
    /// request names, while its job is pending; the serving thread holds
    /// each hand-out to two copies of its witness.
    pub(super) fn on_witness_request(
        &mut self,
        prover: PublicKey,
        request: WitnessRequest,
        reply: ReplyTo,
    ) {
        let holds = self
            .core
            .scheduler
            .lrp()
            .prover(&prover)
            .is_some_and(|view| {
                view.holdings
                    .iter()
                    .any(|h| (h.job, h.request) == (request.job, request.request))
            });
        if !holds {
            return self.services.outbox.refuse(reply, "no_handout");
        }
        self.serve(Serve::Witness(request, reply));
    }

    /// The centralized baseline: while jobs are open, keep every local slot
    /// proving.
    pub(super) fn fill_local(&mut self) {
        while self
            .services
            .local
            .as_ref()
            .is_some_and(|l| l.has_free_slot())
            && !self.core.scheduler.lrp().is_all_finished()
        {
            let slot = self.services.local.as_mut().expect("checked").reserve();
            if self
                .hand_out(self.core.public, Recipient::Local(slot))
                .is_err()
            {
                self.services
                    .local
                    .as_mut()
                    .expect("checked")
                    .finished(slot);
                break;
            }
        }
    }

    /// A baseline hand-out is durable: prove it on its slot.
    pub(super) fn start_local(&mut self, slot: usize, assignment: Assignment, witness: Vec<u8>) {
        let Some(local) = self.services.local.as_mut() else {
            return;
        };
        let to_loop = self.services.internal_tx.clone();
        local.start(slot, assignment, witness, move |proof: LocalProof| {
            let _ = to_loop.send(Internal::Local(proof));
        });
    }
}
