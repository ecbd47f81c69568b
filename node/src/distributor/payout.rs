//! The payout writer: the one thread that writes the ledger. Credits come in
//! with the prover's payout binding, if it sent one, and a follow-up, a plain value (the [`super::submission::Settlement`]
//! whose prover is told `Accepted` once paid); the thread appends every
//! credit waiting as one atomic, fsynced ledger write — a group commit —
//! and hands the follow-ups to its `paid` function once it is durable. Between groups it cuts
//! blocks when they are due.
//!
//! Readers (receipts, balances in the status) share the ledger through a
//! read lock, held only while they read; the writer holds the write lock
//! only for the append itself.
//!
//! A credit the ledger already holds counts as paid: its follow-up is
//! delivered. A binding newer than the ledger's, for another address, and
//! signed by its prover, is recorded right after its credit; any other is
//! ignored (the prover sends it again with its next proof). A failed write is fatal: the thread reports it and stops
//! without delivering the group's follow-ups, so no prover is told it was paid when it
//! was not; on restart, recovery pays every proven job the ledger misses.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use protocol::{PayoutAddress, PayoutBinding, PublicKey, Timestamp};
use tracing::{debug, error, info, warn};

use super::queue::{self, Depth, ServiceThread, Unbounded};
use super::scheduler::Clock;
use crate::disk::Space;
use crate::metrics::Metrics;

/// The ledger, shared: one writer (this thread), many readers.
pub type SharedLedger = Arc<RwLock<ledger::Ledger>>;

/// Most credits in one group commit.
const MAX_GROUP: usize = 4096;
/// How often the thread checks whether a block is due.
const BLOCK_CHECK: Duration = Duration::from_millis(250);

struct Order<T> {
    credit: ledger::Credit,
    payout: Option<PayoutBinding>,
    then: T,
}

/// The handle to the payout thread, whose follow-ups are `T`s. Dropping
/// every handle lets the thread write what is queued, cut a last block and
/// stop.
pub struct Payout<T> {
    queue: Unbounded<Order<T>>,
    clock: Clock,
}

impl<T: Send + 'static> Payout<T> {
    /// Starts the payout thread over `ledger`. `paid` takes each follow-up
    /// once its credit is durable; `fatal` hears of a failed write.
    pub fn start(
        ledger: SharedLedger,
        metrics: Arc<Metrics>,
        space: Space,
        paid: impl Fn(T) + Send + 'static,
        fatal: impl Fn(String) + Send + 'static,
    ) -> std::io::Result<(Self, ServiceThread)> {
        let (queue, rx, depth) = queue::unbounded();
        // Block ages are measured on the monotonic clock from the ledger's
        // latest time: a wall clock stepped back (or one that was ahead when
        // a credit was appended) neither stops blocks nor dates one before
        // the last.
        let clock = Clock::resume(ledger.read().expect("ledger lock").latest_time());
        let thread = ServiceThread::spawn("payout", move || {
            let sinks = Sinks {
                paid: &paid,
                fatal: &fatal,
            };
            run(&ledger, &space, &rx, &depth, &metrics, &sinks, clock)
        })?;
        Ok((Self { queue, clock }, thread))
    }

    /// The clock blocks are dated by: how long ago one was cut is its
    /// `now()` less the block's timestamp, whatever the wall clock did.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Queues `credit` (and `payout`, the prover's binding, if it is new);
    /// `then` goes to `paid` once it is durable.
    pub fn credit(&self, credit: ledger::Credit, payout: Option<PayoutBinding>, then: T) {
        let order = Order {
            credit,
            payout,
            then,
        };
        if self.queue.push(order).is_err() {
            error!(target: "ledger", "the payout writer has stopped; credit not queued");
        }
    }

    /// Credits queued and not yet durable.
    pub fn depth(&self) -> usize {
        self.queue.depth()
    }

    /// Lets the thread stop once every handle is closed or gone.
    pub fn close(&mut self) {
        self.queue.close();
    }

    /// A second handle to the same thread.
    pub fn handle(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            clock: self.clock,
        }
    }
}

/// Where the payout thread's results go.
struct Sinks<'a, T> {
    paid: &'a dyn Fn(T),
    fatal: &'a dyn Fn(String),
}

fn run<T>(
    ledger: &SharedLedger,
    space: &Space,
    rx: &std::sync::mpsc::Receiver<Order<T>>,
    depth: &Depth,
    metrics: &Metrics,
    sinks: &Sinks<'_, T>,
    clock: Clock,
) {
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        let first = match rx.recv_timeout(BLOCK_CHECK) {
            Ok(order) => Some(order),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(first) = first {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(order) => group.push(order),
                    Err(_) => break,
                }
            }
            let n = group.len();
            space.check_or_exit();
            let written = write_group(ledger, &group, clock.now());
            depth.done(n);
            if let Err(e) = written {
                metrics.ledger_write_errors.inc();
                error!(target: "ledger", error = %e, credits = n, "credits not written; stopping");
                (sinks.fatal)(format!(
                    "cannot write the ledger ({e}); stopping: restart to pay the proven jobs it misses"
                ));
                return;
            }
            debug!(target: "ledger", credits = n, "credits committed");
            crate::crash::at(crate::crash::Point::Credited);
            for order in group {
                (sinks.paid)(order.then);
            }
        }
        if space.check().is_ok() {
            cut_due_blocks(ledger, metrics, clock.now());
        }
    }
    cut_last_block(ledger, space, clock.now());
}

/// At shutdown: whatever is pending goes into one last block.
fn cut_last_block(ledger: &SharedLedger, space: &Space, now: Timestamp) {
    if let Err(full) = space.check() {
        warn!(target: "ledger", error = %full, "no last block cut at shutdown");
        return;
    }
    let mut ledger = ledger.write().expect("ledger lock");
    match ledger.cut_block_at(now) {
        Ok(Some(block)) => {
            info!(target: "ledger", height = block.header.height, txs = block.header.tx_count, "last block cut")
        }
        Ok(None) => {}
        Err(e) => warn!(target: "ledger", error = %e, "could not cut a last block at shutdown"),
    }
}

/// Appends the group's new credits, each followed by its prover's new
/// binding, in one write; credits already in the ledger (or twice in the
/// group) are paid already and skipped.
fn write_group<T>(
    ledger: &SharedLedger,
    group: &[Order<T>],
    now: Timestamp,
) -> Result<(), ledger::Error> {
    let mut ledger = ledger.write().expect("ledger lock");
    let mut seen = HashSet::new();
    let mut bound = HashMap::new();
    let mut txs = Vec::with_capacity(group.len());
    for order in group {
        let job = order.credit.job;
        if !seen.insert(job) || ledger.is_credited(job)? {
            debug!(target: "ledger", %job, "already credited");
            continue;
        }
        txs.push(ledger::Tx::Credit(order.credit.clone()));
        if let Some(binding) = &order.payout {
            let prover = order.credit.prover;
            let recorded = bound.entry(prover).or_insert_with(|| {
                let account = ledger.account(&prover);
                (account.payout, account.payout_seq)
            });
            if let Some(tx) = new_binding(prover, binding, recorded) {
                txs.push(tx);
            }
        }
    }
    ledger.append_at(&txs, now).map(|_| ())
}

/// The ledger transaction recording `binding`, if it moves `prover`'s pay
/// from `recorded` (address, sequence number; updated) and is the
/// prover's: the ledger would refuse an older or forged one, failing the
/// whole group's write.
fn new_binding(
    prover: PublicKey,
    binding: &PayoutBinding,
    recorded: &mut (PayoutAddress, u64),
) -> Option<ledger::Tx> {
    if binding.address == recorded.0 || binding.seq <= recorded.1 {
        return None;
    }
    if let Err(why) = binding.check(&prover) {
        warn!(target: "ledger", prover = %prover.node_id(), why, "payout binding not recorded");
        return None;
    }
    *recorded = (binding.address, binding.seq);
    info!(target: "ledger", prover = %prover.node_id(), address = %binding.address, "payout address bound");
    Some(ledger::Tx::BindPayout(ledger::BindPayout {
        prover,
        binding: binding.clone(),
    }))
}

fn cut_due_blocks(ledger: &SharedLedger, metrics: &Metrics, now: Timestamp) {
    if !ledger.read().expect("ledger lock").block_due(now) {
        return;
    }
    let mut ledger = ledger.write().expect("ledger lock");
    match ledger.maybe_cut_blocks(now) {
        Ok(blocks) => {
            for block in &blocks {
                info!(target: "ledger", height = block.header.height, txs = block.header.tx_count, "block cut");
            }
            if !blocks.is_empty() {
                crate::crash::at(crate::crash::Point::BlockCut);
            }
        }
        Err(e) => {
            metrics.ledger_write_errors.inc();
            error!(target: "ledger", error = %e, "cannot cut a block");
        }
    }
    metrics.ledger_height.set(ledger.height() as i64);
    metrics.ledger_pending_txs.set(ledger.pending_len() as i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{BatchId, ContentHash, JobId, SecretKey};
    use std::sync::Mutex;

    #[test]
    fn credits_are_durable_before_their_follow_up_and_paid_once() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::from_seed([8; 32]);
        let prover = SecretKey::from_seed([9; 32]).public();
        let opened =
            ledger::Ledger::open(dir.path(), &secret, ledger::LedgerConfig::default()).unwrap();
        let shared: SharedLedger = Arc::new(RwLock::new(opened));
        let metrics = Arc::new(Metrics::new());
        let paid = Arc::new(Mutex::new(Vec::new()));
        let on_paid = {
            let (paid, shared) = (paid.clone(), shared.clone());
            move |job: JobId| {
                assert!(shared.read().unwrap().is_credited(job).unwrap());
                paid.lock().unwrap().push(job);
            }
        };
        let (payout, thread) = Payout::start(
            shared.clone(),
            metrics,
            Space::floor(dir.path(), 0),
            on_paid,
            |e| panic!("{e}"),
        )
        .unwrap();
        for index in 0..300u32 {
            // Every job twice: the second is already paid.
            for _ in 0..2 {
                let job = JobId::new(BatchId(1), index);
                let credit = ledger::Credit::new(prover, job, 100, ContentHash::of(b"p"));
                payout.credit(credit, None, job);
            }
        }
        drop(payout);
        thread.join();
        assert_eq!(paid.lock().unwrap().len(), 600);
        let ledger = shared.read().unwrap();
        assert_eq!(ledger.balance(&prover), 300 * 100);
        assert_eq!(ledger.pending_len(), 0, "a last block was cut at shutdown");
    }

    #[test]
    fn blocks_are_cut_on_time_after_the_wall_clock_was_ahead() {
        // A credit appended while the wall clock was an hour ahead (then
        // stepped back): measured on the wall clock its block would not be
        // due for an hour.
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::from_seed([8; 32]);
        let config = ledger::LedgerConfig {
            max_block_age_ms: 200,
            ..ledger::LedgerConfig::default()
        };
        let mut opened = ledger::Ledger::open(dir.path(), &secret, config).unwrap();
        let prover = SecretKey::from_seed([9; 32]).public();
        let ahead = Timestamp::now().plus_millis(3_600_000);
        let job = JobId::new(BatchId(1), 0);
        let credit = ledger::Credit::new(prover, job, 100, ContentHash::of(b"p"));
        opened
            .append_at(&[ledger::Tx::Credit(credit)], ahead)
            .unwrap();
        let shared: SharedLedger = Arc::new(RwLock::new(opened));
        let (payout, thread) = Payout::start(
            shared.clone(),
            Arc::new(Metrics::new()),
            Space::floor(dir.path(), 0),
            |()| {},
            |e| panic!("{e}"),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while shared.read().unwrap().height() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no block cut within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let block = shared.read().unwrap().tip().header.clone();
        assert!(block.timestamp >= ahead, "never dated before its credit");
        drop(payout);
        thread.join();
    }
}
