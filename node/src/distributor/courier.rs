//! What happens once a write is durable. The journal and the payout writer
//! run no code they are handed: they are handed values, and pass each on
//! once its write is on disk — the journal to [`Courier::durable`], the
//! payout writer to [`Teller::paid`] — which send it the rest of its way.
//! A log line, a test or a debugger sees each follow-up for what it is.

use std::sync::Arc;

use protocol::messages::{Assignment, BatchProven, JobAnnouncement, Witness};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, error};

use super::payout::Payout;
use super::store::JobStore;
use super::submission::{Repeat, Settlement, Stage};
use super::wire::{Outbox, ReplyTo};
use super::{BatchReply, Internal};

/// A follow-up the journal holds until its entry is durable.
#[derive(Debug)]
pub enum Durable {
    /// A hand-out is logged: send the assignment.
    HandOut(HandOut),
    /// A winning proof is stored: pay it.
    Settlement(Settlement),
    /// A copy of a winning submission, logged after the winner: tell it
    /// once the winner is paid.
    Repeat(Repeat),
    /// A new batch is stored: announce it and answer whoever submitted it.
    BatchStored {
        /// The gossip that tells provers of its jobs.
        announcement: JobAnnouncement,
        /// The `POST /batch` caller, if any, and its answer.
        reply: BatchReply,
        /// The answer's document.
        answer: Value,
    },
    /// A batch is proven and its scheduler state forgotten: gossip it and
    /// count it.
    BatchProven(BatchProven),
}

/// A logged hand-out on its way to its prover.
#[derive(Debug)]
pub struct HandOut {
    /// The assignment, its witness still empty: it is read from the store
    /// once the hand-out is durable (and with it, a batch stored a moment
    /// before), and goes inline or by hash ([`Witness::of`]).
    pub assignment: Assignment,
    /// Who gets it.
    pub to: Recipient,
}

/// Where an assignment goes.
#[derive(Debug, Clone, Copy)]
pub enum Recipient {
    /// A prover that asked over the network.
    Prover(ReplyTo),
    /// A slot of the distributor's own baseline prover.
    Local(usize),
}

/// Sends journal follow-ups on: assignments to their provers, settlements
/// to the payout writer, announcements to the network.
pub struct Courier {
    /// Signs and sends answers and gossip.
    pub outbox: Outbox,
    /// Pays settlements.
    pub payout: Payout<Settlement>,
    /// Holds the witnesses assignments carry.
    pub store: Arc<JobStore>,
    /// The run loop, for the baseline's assignments and proven batches.
    pub to_loop: mpsc::UnboundedSender<Internal>,
}

impl Courier {
    /// Sends `durable` on; its write is on disk.
    pub fn durable(&self, durable: Durable) {
        match durable {
            Durable::HandOut(handout) => self.hand_out(handout),
            Durable::Settlement(settlement) => {
                let settlement = settlement.reached(Stage::Stored);
                self.payout
                    .credit(settlement.credit(), settlement.payout.clone(), settlement);
            }
            Durable::BatchStored {
                announcement,
                reply,
                answer,
            } => {
                crate::crash::at(crate::crash::Point::BatchStored);
                self.outbox.publish(&announcement);
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(answer));
                }
            }
            Durable::BatchProven(message) => {
                self.outbox.publish(&message);
                let _ = self.to_loop.send(Internal::BatchRecorded(message.batch));
            }
            Durable::Repeat(repeat) => self.repeat(repeat),
        }
    }

    /// The winner's settlement was queued to the payout writer before this:
    /// the repeat goes after it with the stored winner's credit (already
    /// paid by then, so skipped), and is told `Accepted` when it is paid.
    fn repeat(&self, repeat: Repeat) {
        let job = repeat.job;
        match self.store.winner(job) {
            Ok(Some(winner))
                if (winner.prover, winner.request) == (repeat.prover, repeat.request) =>
            {
                let settlement = repeat.settlement(&winner);
                self.payout
                    .credit(settlement.credit(), settlement.payout.clone(), settlement);
            }
            other => {
                error!(target: "distributor", %job, found = ?other, "a repeat of a winner whose record is not in the store");
                self.outbox.refuse(repeat.reply, "busy");
            }
        }
    }

    fn hand_out(&self, HandOut { mut assignment, to }: HandOut) {
        let job = assignment.job;
        let witness = match self.store.job(job) {
            Ok(Some(record)) => record.witness,
            other => {
                error!(target: "distributor", %job, found = ?other.map(|_| ()), "job scheduled but not readable from the store");
                // Answered, so the prover backs off instead of waiting out
                // its request; the hand-out lapses like any unproven one.
                if let Recipient::Prover(reply) = to {
                    self.outbox.refuse(reply, "busy");
                }
                return;
            }
        };
        match to {
            Recipient::Prover(reply) => {
                assignment.witness = Witness::of(witness);
                self.outbox.answer("job_request", reply, &assignment)
            }
            Recipient::Local(slot) => {
                let _ = self
                    .to_loop
                    .send(Internal::LocalAssigned(slot, assignment, witness));
            }
        }
    }
}

/// Tells provers they were paid, once they were.
pub struct Teller {
    /// Signs and sends the `Accepted` verdicts.
    pub outbox: Outbox,
    /// The run loop, told when a batch's last credit is durable.
    pub to_loop: mpsc::UnboundedSender<Internal>,
}

impl Teller {
    /// `settlement` is paid: tell its prover, and check its batch if it
    /// was the last.
    pub fn paid(&self, settlement: Settlement) {
        let settlement = settlement.reached(Stage::Paid);
        let (batch, last) = (settlement.job.batch, settlement.batch_finished);
        match settlement.reply {
            Some(reply) => {
                self.outbox
                    .answer("submission", reply, &settlement.verdict());
                settlement.reached(Stage::Told);
            }
            None => debug!(target: "distributor", job = %settlement.job, "paid; nobody to tell"),
        }
        if last {
            let _ = self.to_loop.send(Internal::Credited(batch));
        }
    }
}
