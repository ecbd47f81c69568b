//! Batch intake, off the run loop: one thread owns the distributor's
//! workload and turns each request into a batch of jobs. For the transfer
//! rollup it applies the batch's transactions to the rollup state (seconds
//! for a large batch), cuts the result into jobs and encodes the state
//! after it; for a circom circuit it checks each witness file against the
//! circuit, and each becomes one job. The run loop then schedules the jobs
//! and the journal stores the batch whole. Batches are built one at a time,
//! in order; ids run 1, 2, 3, ...
//!
//! A circom job's statement is its public signals: a proof of one job is a
//! proof of every job with the same signals, and accepted proofs are public
//! (`GET /proofs/<job>`). So a statement is proven once ([`Statements`]): a
//! batch whose witnesses repeat one, or repeat any stored job's, is refused
//! whole, naming both. A circuit with no public signals has one statement,
//! so it has one job, ever.

use super::queue::ServiceThread;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, mpsc};

use anyhow::{Context, bail};
use protocol::{BatchId, ContentHash, JobId, Timestamp};
use prover_core::{
    CircomKey, CircomR1cs, CircomWitness, PublicSignals, Rollup, Root, SignedTransfer, TxGenerator,
};
use tracing::debug;

use super::store::{BatchRecord, JobRecord, JobStore, statement_of};

/// A built batch, ready to schedule and store.
pub struct NewBatch {
    /// Its record.
    pub record: BatchRecord,
    /// Its jobs, in index order.
    pub jobs: Vec<JobRecord>,
    /// The rollup state after it, encoded (none for a circom circuit).
    pub state_after: Option<Vec<u8>>,
    /// Transactions refused.
    pub rejected: usize,
}

/// What a distributor's batches are made of.
#[allow(clippy::large_enum_variant)] // one per distributor, owned by intake
pub enum Workload {
    /// The transfer rollup: transactions applied to its state.
    Rollup {
        /// The state after the last stored batch.
        rollup: Rollup,
        /// Makes the generated batches.
        generator: TxGenerator,
        /// Transactions in a generated batch.
        batch_txs: usize,
    },
    /// A circom circuit: each witness is one job, checked against the
    /// circuit's constraints before it is scheduled.
    Circom {
        /// The zkey provers prove with.
        key: Arc<CircomKey>,
        /// Its constraint system.
        r1cs: Arc<CircomR1cs>,
        /// The statements already taken.
        statements: Statements,
        /// The longest witness a job may have (`max_witness_mb`).
        max_witness_bytes: u64,
    },
}

/// The statements (public signals) already taken: every stored job's, by
/// the store's index ([`JobStore::statement`], one point read each), and
/// those of the batches built since and not yet stored.
pub struct Statements {
    store: Arc<JobStore>,
    /// Batches built and not yet seen stored, oldest first, each with its
    /// jobs by statement.
    unstored: VecDeque<(BatchId, HashMap<ContentHash, u32>)>,
}

impl Statements {
    /// The statements of `store`'s jobs, and of none built since.
    pub fn new(store: Arc<JobStore>) -> Self {
        Self {
            store,
            unstored: VecDeque::new(),
        }
    }

    /// Checks that `jobs`, to be batch `id`, repeat no statement, among
    /// themselves or of any job before; if so, theirs are taken from now on.
    fn admit(&mut self, id: BatchId, jobs: &[JobRecord]) -> anyhow::Result<()> {
        self.forget_stored()?;
        let mut batch: HashMap<ContentHash, u32> = HashMap::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let statement = statement_of(&job.public);
            if let Some(first) = batch.insert(statement, i as u32) {
                bail!(
                    "witness {i}: its public signals are witness {first}'s, so one proof would \
                     prove both jobs; submit each statement once"
                );
            }
            if let Some(job) = self.taken(&statement)? {
                bail!(
                    "witness {i}: its public signals are those of job {job}, so one proof would \
                     prove both jobs: a statement is proven once (job {job}'s proof, once \
                     accepted: GET /proofs/{job})"
                );
            }
        }
        self.unstored.push_back((id, batch));
        Ok(())
    }

    /// The job that took `statement`, if one did.
    fn taken(&self, statement: &ContentHash) -> anyhow::Result<Option<JobId>> {
        for (batch, jobs) in &self.unstored {
            if let Some(&index) = jobs.get(statement) {
                return Ok(Some(JobId::new(*batch, index)));
            }
        }
        self.store
            .statement(statement)
            .context("cannot read the stored statements")
    }

    /// Drops the built batches the store now holds (stored in order).
    fn forget_stored(&mut self) -> anyhow::Result<()> {
        while let Some((id, _)) = self.unstored.front() {
            let stored = self
                .store
                .batch(*id)
                .context("cannot read the stored batches")?;
            if stored.is_none() {
                break;
            }
            self.unstored.pop_front();
        }
        Ok(())
    }
}

/// What one batch is to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchInput {
    /// A generated set of transactions (the transfer rollup only).
    Generated,
    /// Given transactions (the transfer rollup).
    Transfers(Vec<SignedTransfer>),
    /// circom `.wtns` files, one per job (a circom circuit).
    Witnesses(Vec<Vec<u8>>),
}

/// One batch to build.
pub struct BuildRequest<R> {
    /// What it holds.
    pub input: BatchInput,
    /// Carried back with the result (e.g. the API caller's reply).
    pub context: R,
}

/// The handle to the intake thread.
pub struct Intake<R> {
    tx: Option<mpsc::SyncSender<BuildRequest<R>>>,
}

impl<R: Send + 'static> Intake<R> {
    /// Starts the thread; `last` is the id of the last stored batch, and
    /// results go to `out`. At most `queue` requests wait.
    pub fn start(
        workload: Workload,
        last: BatchId,
        queue: usize,
        out: impl Fn(anyhow::Result<NewBatch>, R) + Send + 'static,
    ) -> std::io::Result<(Self, ServiceThread)> {
        let (tx, rx) = mpsc::sync_channel::<BuildRequest<R>>(queue.max(1));
        let thread = ServiceThread::spawn("intake", move || {
            let mut builder = Builder {
                workload,
                next: BatchId(last.0 + 1),
            };
            while let Ok(request) = rx.recv() {
                let built = builder.build(request.input);
                out(built, request.context);
            }
        })?;
        Ok((Self { tx: Some(tx) }, thread))
    }

    /// Queues a batch; a full queue gives the request back.
    pub fn submit(&self, request: BuildRequest<R>) -> Result<(), BuildRequest<R>> {
        let Some(tx) = &self.tx else {
            return Err(request);
        };
        tx.try_send(request).map_err(|e| match e {
            mpsc::TrySendError::Full(r) | mpsc::TrySendError::Disconnected(r) => r,
        })
    }

    /// Takes no more batches; the thread stops after the one it builds.
    pub fn close(&mut self) {
        self.tx = None;
    }
}

struct Builder {
    workload: Workload,
    next: BatchId,
}

impl Builder {
    fn build(&mut self, input: BatchInput) -> anyhow::Result<NewBatch> {
        let built = match (&mut self.workload, input) {
            (
                Workload::Rollup {
                    rollup,
                    generator,
                    batch_txs,
                },
                input,
            ) => {
                let txs = match input {
                    BatchInput::Generated => generator.batch(rollup, *batch_txs),
                    BatchInput::Transfers(txs) => txs,
                    BatchInput::Witnesses(_) => bail!(
                        "this distributor proves the transfer rollup; witness files are for a \
                         circom circuit's distributor"
                    ),
                };
                build_transfers(self.next, rollup, &txs)?
            }
            (
                Workload::Circom {
                    key,
                    r1cs,
                    statements,
                    max_witness_bytes,
                },
                BatchInput::Witnesses(witnesses),
            ) => {
                let built = build_witnesses(self.next, key, r1cs, *max_witness_bytes, witnesses)?;
                statements.admit(self.next, &built.jobs)?;
                built
            }
            (Workload::Circom { key, .. }, _) => bail!(
                "this distributor proves circom circuit {}; submit witness files \
                 (`crowdprove submit`, or POST /batch/witnesses)",
                key.circuit().id()
            ),
        };
        self.next = BatchId(self.next.0 + 1);
        Ok(built)
    }
}

/// Applies `txs` to the rollup; on success the rollup moves to the state
/// after them.
fn build_transfers(
    id: BatchId,
    rollup: &mut Rollup,
    txs: &[SignedTransfer],
) -> anyhow::Result<NewBatch> {
    anyhow::ensure!(!txs.is_empty(), "the batch has no transactions");
    let mut next = rollup.clone();
    let built = next
        .apply_batch(txs)
        .context("no transaction in the batch is valid")?;
    let record = BatchRecord {
        id,
        old_root: built.old_root,
        new_root: built.new_root,
        jobs: built.jobs.len() as u32,
        txs: (txs.len() - built.rejected.len()) as u32,
        created: Timestamp::now(),
        proven: None,
    };
    let jobs = built
        .jobs
        .iter()
        .map(|j| JobRecord {
            public: PublicSignals::Transfer(j.public),
            witness: j.to_bytes(),
            done: None,
        })
        .collect();
    for rejection in &built.rejected {
        debug!(target: "distributor", batch = %id, %rejection, "transaction refused");
    }
    let state_after = next.to_bytes();
    *rollup = next;
    Ok(NewBatch {
        record,
        jobs,
        state_after: Some(state_after),
        rejected: built.rejected.len(),
    })
}

/// Checks every witness against the circuit (its length, its field, every
/// constraint): one bad witness refuses the whole batch, naming it, so
/// nothing of a bad submission is scheduled and no prover is handed a job
/// no one can prove. (Then [`Statements::admit`] checks their
/// statements.)
fn build_witnesses(
    id: BatchId,
    key: &CircomKey,
    r1cs: &CircomR1cs,
    max: u64,
    witnesses: Vec<Vec<u8>>,
) -> anyhow::Result<NewBatch> {
    anyhow::ensure!(!witnesses.is_empty(), "the batch has no witnesses");
    let mut jobs = Vec::with_capacity(witnesses.len());
    for (i, bytes) in witnesses.into_iter().enumerate() {
        let checked = (|| {
            if bytes.len() as u64 > max {
                bail!(
                    "{} bytes is over the {max} a job's witness may have here \
                     ([distributor] max_witness_mb)",
                    bytes.len()
                );
            }
            let witness = CircomWitness::from_bytes(&bytes, key.num_public())
                .and_then(|w| r1cs.check_satisfied(&w).map(|()| w))
                .map_err(|e| match e {
                    prover_core::Error::Wtns(reason) => anyhow::anyhow!(reason),
                    other => other.into(),
                })?;
            Ok(JobRecord {
                public: PublicSignals::circom(witness.public()),
                witness: witness.to_bytes(),
                done: None,
            })
        })();
        jobs.push(checked.with_context(|| format!("witness {i}"))?);
    }
    let record = BatchRecord {
        id,
        // A circom batch has no state to chain.
        old_root: Root([0; 32]),
        new_root: Root([0; 32]),
        jobs: jobs.len() as u32,
        txs: jobs.len() as u32,
        created: Timestamp::now(),
        proven: None,
    };
    Ok(NewBatch {
        record,
        jobs,
        state_after: None,
        rejected: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prover_core::CircuitConfig;

    #[test]
    fn batches_come_out_in_order_with_their_jobs_and_bad_input_is_an_error() {
        let config = CircuitConfig::new(4, 1).unwrap();
        let mut generator = TxGenerator::new(5, 8);
        let rollup = generator.genesis(config, 1_000_000).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (mut intake, thread) = Intake::start(
            Workload::Rollup {
                rollup,
                generator,
                batch_txs: 3,
            },
            BatchId(4),
            2,
            move |built: anyhow::Result<NewBatch>, tag: u32| {
                let _ = tx.send((tag, built));
            },
        )
        .unwrap();
        intake
            .submit(BuildRequest {
                input: BatchInput::Generated,
                context: 1,
            })
            .ok()
            .unwrap();
        let (tag, first) = rx.recv().unwrap();
        let first = first.unwrap();
        assert_eq!(
            (tag, first.record.id),
            (1, BatchId(5)),
            "ids go on from the last stored"
        );
        assert_eq!(first.record.jobs as usize, first.jobs.len());
        assert_eq!(first.record.txs, 3);
        intake
            .submit(BuildRequest {
                input: BatchInput::Transfers(Vec::new()),
                context: 2,
            })
            .ok()
            .unwrap();
        let (_, empty) = rx.recv().unwrap();
        assert!(empty.is_err(), "an empty batch is refused");
        intake
            .submit(BuildRequest {
                input: BatchInput::Generated,
                context: 3,
            })
            .ok()
            .unwrap();
        let (_, second) = rx.recv().unwrap();
        let second = second.unwrap();
        assert_eq!(second.record.id, BatchId(6), "a refused batch takes no id");
        assert_eq!(
            second.record.old_root, first.record.new_root,
            "states chain"
        );
        intake.close();
        thread.join();
    }

    fn fixtures() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../prover-core/tests/fixtures/circom")
    }

    /// A builder of the multiplier circuit's batches over `store`.
    fn multiplier(store: &Arc<JobStore>) -> Builder {
        let dir = fixtures();
        let key = Arc::new(CircomKey::load(dir.join("multiplier/circuit.zkey")).unwrap());
        let r1cs = Arc::new(CircomR1cs::load(dir.join("multiplier/circuit.r1cs")).unwrap());
        let statements = Statements::new(store.clone());
        Builder {
            workload: Workload::Circom {
                key,
                r1cs,
                statements,
                max_witness_bytes: 300,
            },
            next: BatchId(1),
        }
    }

    #[test]
    fn circom_batches_are_checked_witness_by_witness() {
        let dir = fixtures();
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(JobStore::open(tmp.path()).unwrap());
        let mut builder = multiplier(&store);
        let good = vec![
            read("multiplier/witness-1.wtns"),
            read("multiplier/witness-2.wtns"),
        ];
        let built = builder.build(BatchInput::Witnesses(good.clone())).unwrap();
        assert_eq!((built.record.id, built.record.jobs), (BatchId(1), 2));
        assert!(built.state_after.is_none());
        let w = CircomWitness::from_bytes(&good[1], 1).unwrap();
        assert_eq!(built.jobs[1].public, PublicSignals::circom(w.public()));
        assert_eq!(built.jobs[1].witness, good[1]);

        let mixed = vec![good[0].clone(), read("chain/witness-1.wtns")];
        let err = format!(
            "{:#}",
            builder.build(BatchInput::Witnesses(mixed)).err().unwrap()
        );
        assert!(err.starts_with("witness 1: "), "{err}");
        let mut cut = good[0].clone();
        cut.truncate(cut.len() - 5);
        let err = format!(
            "{:#}",
            builder
                .build(BatchInput::Witnesses(vec![cut]))
                .err()
                .unwrap()
        );
        assert!(err.starts_with("witness 0: "), "{err}");
        // Past the operator's max_witness_mb (300 bytes here), before it is read.
        let mut long = good[0].clone();
        long.resize(301, 0);
        let err = format!(
            "{:#}",
            builder
                .build(BatchInput::Witnesses(vec![good[1].clone(), long]))
                .err()
                .unwrap()
        );
        assert!(
            err.starts_with("witness 1: 301 bytes is over the 300")
                && err.contains("max_witness_mb"),
            "{err}"
        );
        for input in [BatchInput::Generated, BatchInput::Witnesses(Vec::new())] {
            assert!(builder.build(input).is_err());
        }
        let others = vec![read("multiplier/witness-3.wtns")];
        let next = builder.build(BatchInput::Witnesses(others)).unwrap();
        assert_eq!(next.record.id, BatchId(2), "a refused batch takes no id");
    }

    #[test]
    fn a_circom_statement_is_proven_once() {
        let dir = fixtures();
        let read =
            |i: u32| std::fs::read(dir.join(format!("multiplier/witness-{i}.wtns"))).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(JobStore::open(tmp.path()).unwrap());
        let mut builder = multiplier(&store);
        let store_batch = |built: NewBatch, proven: Option<Timestamp>| {
            let record = BatchRecord {
                proven,
                ..built.record
            };
            let jobs = built.jobs;
            let change = super::super::store::Change::NewBatch {
                record,
                jobs,
                state_after: None,
            };
            store.commit(&[change], true).unwrap();
        };
        // Within a batch: the same witness twice, named.
        let twice = vec![read(1), read(2), read(1)];
        let err = format!(
            "{:#}",
            builder.build(BatchInput::Witnesses(twice)).err().unwrap()
        );
        assert!(
            err.starts_with("witness 2: its public signals are witness 0's"),
            "{err}"
        );
        // Against an open batch's job, stored before a restart.
        let first = builder
            .build(BatchInput::Witnesses(vec![read(1), read(2)]))
            .unwrap();
        assert_eq!(first.record.id, BatchId(1));
        store_batch(first, None);
        let mut builder = Builder {
            next: BatchId(2),
            ..multiplier(&store)
        };
        let again = vec![read(3), read(2)];
        let err = format!(
            "{:#}",
            builder.build(BatchInput::Witnesses(again)).err().unwrap()
        );
        assert!(
            err.starts_with("witness 1: its public signals are those of job b1/j1"),
            "{err}"
        );
        // Against a batch built since (and not yet stored).
        let second = builder.build(BatchInput::Witnesses(vec![read(3)])).unwrap();
        assert_eq!(second.record.id, BatchId(2));
        let err = format!(
            "{:#}",
            builder
                .build(BatchInput::Witnesses(vec![read(3)]))
                .err()
                .unwrap()
        );
        assert!(err.contains("those of job b2/j0"), "{err}");
        // Once batch 1 is proven, its statements stay taken: its proofs
        // are public, and would be paid again.
        let proven = builder.build(BatchInput::Witnesses(vec![read(4)])).unwrap();
        let built_first = BatchRecord {
            id: BatchId(1),
            proven: Some(Timestamp(1)),
            ..proven.record.clone()
        };
        store
            .commit(&[super::super::store::Change::Batch(built_first)], true)
            .unwrap();
        let err = format!(
            "{:#}",
            builder
                .build(BatchInput::Witnesses(vec![read(1)]))
                .err()
                .unwrap()
        );
        assert!(
            err.starts_with("witness 0: its public signals are those of job b1/j0")
                && err.contains("GET /proofs/b1/j0"),
            "{err}"
        );
    }
}
