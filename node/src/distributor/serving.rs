//! The serving thread: proving-key chunks, witness chunks and receipts,
//! answered from read-only views (the key bytes in memory, the job store,
//! the ledger under a read lock) off the run loop, behind a bounded queue.
//! A full queue is answered `busy` by the caller. Who may fetch is checked
//! by the run loop before a request is queued: key bytes against its
//! [`KeyBudget`], witness chunks against the hand-outs the asker holds;
//! here each hand-out may fetch its witness twice ([`Witnesses`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use protocol::messages::{
    KEY_CHUNK_BYTES, KeyChunk, KeyRequest, MAX_INLINE_WITNESS_BYTES, ReceiptReply, ReceiptRequest,
    WITNESS_CHUNK_BYTES, WitnessChunk, WitnessRequest,
};
use protocol::{ContentHash, JobId, PublicKey, RequestId, Timestamp};
use tracing::error;

use super::payout::SharedLedger;
use super::queue::{self, Bounded, ServiceThread};
use super::store::JobStore;
use super::wire::{Outbox, ReplyTo};
use crate::metrics::Metrics;

/// A request the serving thread answers.
pub enum Serve {
    /// A chunk of the proving key.
    Key(KeyRequest, ReplyTo),
    /// A chunk of a job's witness, for the holder of the hand-out it names.
    Witness(WitnessRequest, ReplyTo),
    /// A job's receipt.
    Receipt(ReceiptRequest, ReplyTo),
}

impl Serve {
    /// Where its answer goes.
    pub fn reply_to(&self) -> ReplyTo {
        match self {
            Serve::Key(_, reply) | Serve::Witness(_, reply) | Serve::Receipt(_, reply) => *reply,
        }
    }
}

/// What the thread serves from.
pub struct Sources {
    /// The proving key file's bytes.
    pub proving_key: Arc<Vec<u8>>,
    /// Their content hash.
    pub proving_key_hash: ContentHash,
    /// The ledger.
    pub ledger: SharedLedger,
    /// The jobs, with their witnesses.
    pub store: Arc<JobStore>,
    /// Where served key bytes are counted.
    pub metrics: Arc<Metrics>,
}

/// Proving-key bytes each prover may still fetch: a bucket per prover that
/// holds two copies of the key (one for a prover on probation: an identity
/// costs nothing) and refills at `downloads_per_hour` copies an hour. A
/// ~100-byte request buys up to a 512 KiB chunk, so without it a key
/// request would be a 5,000-fold amplifier for anyone.
pub struct KeyBudget {
    key_len: u64,
    capacity: u64,
    downloads_per_hour: u64,
    /// Prover → (bytes left, when last topped up).
    buckets: HashMap<PublicKey, (u64, Timestamp)>,
}

impl KeyBudget {
    /// Buckets past which full ones are dropped (a full bucket is what a
    /// prover never seen gets anyway).
    const PRUNE_AT: usize = 1 << 16;

    /// A budget for a key of `key_len` bytes.
    pub fn new(key_len: u64, downloads_per_hour: u32) -> Self {
        Self {
            key_len,
            capacity: key_len.saturating_mul(2),
            downloads_per_hour: downloads_per_hour.into(),
            buckets: HashMap::new(),
        }
    }

    /// The bytes chunk `chunk` of the key holds (0 past its end).
    pub fn chunk_bytes(&self, chunk: u32) -> u64 {
        let start = u64::from(chunk).saturating_mul(KEY_CHUNK_BYTES as u64);
        self.key_len
            .saturating_sub(start)
            .min(KEY_CHUNK_BYTES as u64)
    }

    /// Takes `bytes` from `prover`'s bucket (of two copies if it is
    /// `trusted`, else one), or says no and takes nothing.
    pub fn charge(&mut self, prover: PublicKey, trusted: bool, now: Timestamp, bytes: u64) -> bool {
        if self.buckets.len() >= Self::PRUNE_AT {
            // A bucket that would have refilled to two copies is what
            // anyone gets anew.
            let (capacity, refill) = (self.capacity, self.refill_fn(self.capacity));
            self.buckets
                .retain(|_, (left, at)| refill(*left, now.millis_since(*at)) < capacity);
        }
        let capacity = if trusted { self.capacity } else { self.key_len };
        let refill = self.refill_fn(capacity);
        let (left, at) = self.buckets.entry(prover).or_insert((capacity, now));
        let topped = refill((*left).min(capacity), now.millis_since(*at));
        if topped < bytes {
            return false;
        }
        *left = topped - bytes;
        *at = now;
        true
    }

    /// Gives back a charge whose chunk was not sent.
    pub fn refund(&mut self, prover: PublicKey, bytes: u64) {
        if let Some((left, _)) = self.buckets.get_mut(&prover) {
            *left = left.saturating_add(bytes).min(self.capacity);
        }
    }

    /// `(bytes left, ms since)` → bytes left now, at most `capacity`.
    fn refill_fn(&self, capacity: u64) -> impl Fn(u64, u64) -> u64 + use<> {
        let (key_len, per_hour) = (self.key_len, self.downloads_per_hour);
        move |left, elapsed_ms| {
            let gained =
                u128::from(key_len) * u128::from(per_hour) * u128::from(elapsed_ms) / 3_600_000;
            let gained = u64::try_from(gained).unwrap_or(u64::MAX);
            left.saturating_add(gained).min(capacity)
        }
    }
}

/// The handle to the serving thread.
pub struct Server {
    queue: Bounded<Serve>,
}

impl Server {
    /// Starts the thread; at most `queue` requests wait.
    pub fn start(
        sources: Sources,
        outbox: Outbox,
        queue: usize,
    ) -> std::io::Result<(Self, ServiceThread)> {
        let (queue, rx, depth) = queue::bounded(queue);
        let thread = ServiceThread::spawn("serving", move || {
            let mut witnesses = Witnesses::default();
            while let Ok(request) = rx.recv() {
                serve(&sources, &mut witnesses, &outbox, request);
                depth.done(1);
            }
        })?;
        Ok((Self { queue }, thread))
    }

    /// Queues a request; a full queue gives it back.
    pub fn submit(&self, request: Serve) -> Result<(), Serve> {
        self.queue.push(request)
    }

    /// Takes no more requests; the thread stops once the queue is empty.
    pub fn close(&mut self) {
        self.queue.close();
    }

    /// Requests waiting.
    pub fn depth(&self) -> usize {
        self.queue.depth()
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

fn serve(sources: &Sources, witnesses: &mut Witnesses, outbox: &Outbox, request: Serve) {
    match request {
        Serve::Witness(request, channel) => {
            let chunk = witnesses.chunk(&sources.store, &request);
            let served = chunk.as_ref().map_or(0, |c| c.data.len());
            sources.metrics.witness_bytes_served.inc_by(served as u64);
            answer(outbox, channel, chunk)
        }
        Serve::Key(request, channel) => {
            let chunk = key_chunk(sources, &request);
            let served = chunk.as_ref().map_or(0, |c| c.data.len());
            sources.metrics.key_bytes_served.inc_by(served as u64);
            answer(outbox, channel, chunk)
        }
        Serve::Receipt(request, channel) => {
            let ledger = sources.ledger.read().expect("ledger lock");
            let (receipt, balance_proof) = match ledger.receipt(request.job) {
                Ok(receipt) => {
                    let balance = ledger.balance_proof(&receipt.credit.prover);
                    (
                        receipt.encode(),
                        balance.map(|b| b.encode()).unwrap_or_default(),
                    )
                }
                // Paid, but its block is not cut yet: ask again later.
                Err(ledger::Error::NotYetInBlock { .. }) => Default::default(),
                Err(ledger::Error::NotCredited { .. }) => {
                    return outbox.refuse(channel, "not_credited");
                }
                Err(e) => {
                    error!(target: "ledger", error = %e, "receipt failed");
                    return outbox.refuse(channel, "ledger_error");
                }
            };
            drop(ledger);
            let reply = ReceiptReply {
                job: request.job,
                receipt,
                balance_proof,
            };
            outbox.reply(channel, &reply);
        }
    }
}

/// Sends `answer`, or refuses with its reason.
fn answer<M: protocol::messages::Message>(
    outbox: &Outbox,
    channel: ReplyTo,
    answer: Result<M, &'static str>,
) {
    match answer {
        Ok(message) => outbox.reply(channel, &message),
        Err(reason) => outbox.refuse(channel, reason),
    }
}

/// The chunk `request` asks for, or why not.
fn key_chunk(sources: &Sources, request: &KeyRequest) -> Result<KeyChunk, &'static str> {
    if request.key != sources.proving_key_hash {
        return Err("unknown_key");
    }
    let bytes = &sources.proving_key;
    let total = bytes.len() as u64;
    let start = u64::from(request.chunk) * KEY_CHUNK_BYTES as u64;
    if start >= total {
        return Err("chunk_out_of_range");
    }
    let end = (start + KEY_CHUNK_BYTES as u64).min(total);
    Ok(KeyChunk {
        key: sources.proving_key_hash,
        chunk: request.chunk,
        total_len: total,
        data: bytes[start as usize..end as usize].to_vec(),
    })
}

/// The witnesses being fetched, and what each hand-out has fetched of its
/// own: the most recently asked witnesses stay in memory, up to 256 MiB
/// (a holder asks for its chunks one after another, and a job record is
/// read whole), and each hand-out may fetch its witness twice over (once,
/// and once again on a retry), however often it asks.
#[derive(Default)]
pub struct Witnesses {
    recent: VecDeque<(JobId, Arc<Vec<u8>>)>,
    /// Hand-out → (bytes it fetched, its witness's length).
    fetched: HashMap<RequestId, (u64, u64)>,
    /// `fetched`'s keys, oldest first, so it stays bounded.
    order: VecDeque<RequestId>,
}

impl Witnesses {
    /// Bytes of witnesses kept in memory (at least the last one asked).
    const RECENT_BYTES: usize = 256 << 20;
    /// Hand-outs whose fetched bytes are remembered; the oldest is
    /// forgotten past it (its holder could then fetch anew, but holding
    /// this many hand-outs at once takes this many admitted requests).
    const REMEMBERED: usize = 1 << 16;

    /// The chunk `request` asks for, or why not.
    fn chunk(
        &mut self,
        store: &JobStore,
        request: &WitnessRequest,
    ) -> Result<WitnessChunk, &'static str> {
        // A hand-out past its budget costs no read of the store.
        if let Some(&(fetched, total)) = self.fetched.get(&request.request)
            && fetched >= total.saturating_mul(2)
        {
            return Err("witness_budget");
        }
        let bytes = self.witness(store, request.job)?;
        let total = bytes.len() as u64;
        if total <= MAX_INLINE_WITNESS_BYTES as u64 {
            // It went inside the assignment; there is nothing to fetch.
            return Err("witness_inline");
        }
        let start = u64::from(request.chunk) * WITNESS_CHUNK_BYTES as u64;
        if start >= total {
            return Err("chunk_out_of_range");
        }
        let end = (start + WITNESS_CHUNK_BYTES as u64).min(total);
        let (fetched, _) = self.fetched_by(request.request, total);
        if *fetched + (end - start) > total.saturating_mul(2) {
            return Err("witness_budget");
        }
        *fetched += end - start;
        Ok(WitnessChunk {
            job: request.job,
            chunk: request.chunk,
            total_len: total,
            data: bytes[start as usize..end as usize].to_vec(),
        })
    }

    fn witness(&mut self, store: &JobStore, job: JobId) -> Result<Arc<Vec<u8>>, &'static str> {
        if let Some((_, bytes)) = self.recent.iter().find(|(j, _)| *j == job) {
            return Ok(bytes.clone());
        }
        let bytes = match store.job(job) {
            // Done and its batch proven since the hand-out was checked: its
            // witness is dropped.
            Ok(Some(record)) if record.witness.is_empty() => return Err("job_done"),
            Ok(Some(record)) => Arc::new(record.witness),
            Ok(None) => return Err("unknown_job"),
            Err(e) => {
                error!(target: "distributor", %job, error = %e, "witness unreadable");
                return Err("store_error");
            }
        };
        self.recent.push_back((job, bytes.clone()));
        let mut held: usize = self.recent.iter().map(|(_, b)| b.len()).sum();
        while held > Self::RECENT_BYTES && self.recent.len() > 1 {
            let (_, oldest) = self.recent.pop_front().expect("more than one");
            held -= oldest.len();
        }
        Ok(bytes)
    }

    fn fetched_by(&mut self, request: RequestId, total: u64) -> &mut (u64, u64) {
        if !self.fetched.contains_key(&request) {
            if self.order.len() == Self::REMEMBERED
                && let Some(oldest) = self.order.pop_front()
            {
                self.fetched.remove(&oldest);
            }
            self.order.push_back(request);
        }
        self.fetched.entry(request).or_insert((0, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SecretKey;
    use std::sync::RwLock;

    #[test]
    fn chunks_cover_the_key_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::from_seed([10; 32]);
        let ledger =
            ledger::Ledger::open(dir.path(), &secret, ledger::LedgerConfig::default()).unwrap();
        let key = vec![7u8; KEY_CHUNK_BYTES + 10];
        let hash = ContentHash::of(&key);
        let sources = Sources {
            proving_key: Arc::new(key),
            proving_key_hash: hash,
            ledger: Arc::new(RwLock::new(ledger)),
            store: Arc::new(JobStore::open(dir.path().join("jobs")).unwrap()),
            metrics: Arc::new(Metrics::new()),
        };
        let ask = |chunk| KeyRequest { key: hash, chunk };
        assert_eq!(
            key_chunk(&sources, &ask(0)).unwrap().data.len(),
            KEY_CHUNK_BYTES
        );
        let last = key_chunk(&sources, &ask(1)).unwrap();
        assert_eq!(
            (last.data.len(), last.total_len),
            (10, KEY_CHUNK_BYTES as u64 + 10)
        );
        assert_eq!(
            key_chunk(&sources, &ask(2)).unwrap_err(),
            "chunk_out_of_range"
        );
        let other = KeyRequest {
            key: ContentHash::of(b"other"),
            chunk: 0,
        };
        assert_eq!(key_chunk(&sources, &other).unwrap_err(), "unknown_key");
    }

    #[test]
    fn witness_chunks_cover_a_long_witness_twice_per_handout_and_nothing_else() {
        use super::super::store::{BatchRecord, Change, JobRecord};
        use prover_core::PublicSignals;
        use prover_core::witness::Root;
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        let long: Vec<u8> = (0..2 * WITNESS_CHUNK_BYTES + 3).map(|i| i as u8).collect();
        let record = |witness: Vec<u8>| JobRecord {
            public: PublicSignals::Circom(vec![Root([1; 32])]),
            witness,
            done: None,
        };
        let batch = BatchRecord {
            id: protocol::BatchId(1),
            old_root: Root([0; 32]),
            new_root: Root([0; 32]),
            jobs: 2,
            txs: 0,
            created: Timestamp(0),
            proven: None,
        };
        let change = Change::NewBatch {
            record: batch,
            jobs: vec![record(long.clone()), record(vec![9; 100])],
            state_after: None,
        };
        store.commit([&change], true).unwrap();
        let (long_job, short_job) = (
            JobId::new(protocol::BatchId(1), 0),
            JobId::new(protocol::BatchId(1), 1),
        );
        let ask = |job, request, chunk| WitnessRequest {
            job,
            request: RequestId(request),
            chunk,
        };
        let mut witnesses = Witnesses::default();
        let mut copy = Vec::new();
        for chunk in 0..3 {
            let got = witnesses.chunk(&store, &ask(long_job, 7, chunk)).unwrap();
            assert_eq!(
                (got.job, got.chunk, got.total_len),
                (long_job, chunk, long.len() as u64)
            );
            copy.extend(got.data);
        }
        assert_eq!(copy, long);
        let refused = |w: &mut Witnesses, request| w.chunk(&store, &request).unwrap_err();
        assert_eq!(
            refused(&mut witnesses, ask(long_job, 7, 3)),
            "chunk_out_of_range"
        );
        assert_eq!(
            refused(&mut witnesses, ask(short_job, 7, 0)),
            "witness_inline"
        );
        let nowhere = JobId::new(protocol::BatchId(2), 0);
        assert_eq!(refused(&mut witnesses, ask(nowhere, 7, 0)), "unknown_job");
        // A second copy for the same hand-out (a retry), then no more; another
        // hand-out has its own.
        for chunk in 0..3 {
            witnesses.chunk(&store, &ask(long_job, 7, chunk)).unwrap();
        }
        assert_eq!(
            refused(&mut witnesses, ask(long_job, 7, 0)),
            "witness_budget"
        );
        assert!(witnesses.chunk(&store, &ask(long_job, 8, 0)).is_ok());
    }

    #[test]
    fn the_key_budget_allows_two_copies_or_one_on_probation_then_refills_by_the_hour() {
        let len = 3 * KEY_CHUNK_BYTES as u64 + 5;
        let mut budget = KeyBudget::new(len, 4);
        assert_eq!(budget.chunk_bytes(0), KEY_CHUNK_BYTES as u64);
        assert_eq!(budget.chunk_bytes(3), 5);
        assert_eq!(budget.chunk_bytes(4), 0);
        let (a, b) = (
            SecretKey::from_seed([1; 32]).public(),
            SecretKey::from_seed([2; 32]).public(),
        );
        let t = Timestamp;
        // Two whole copies, chunk by chunk, then nothing.
        for _ in 0..2 {
            for chunk in 0..4 {
                assert!(budget.charge(a, true, t(0), budget.chunk_bytes(chunk)));
            }
        }
        assert!(!budget.charge(a, true, t(0), budget.chunk_bytes(0)));
        // Another prover has its own bucket.
        assert!(budget.charge(b, true, t(0), budget.chunk_bytes(0)));
        // Four copies an hour: a quarter hour buys one copy back.
        assert!(!budget.charge(a, true, t(60_000), KEY_CHUNK_BYTES as u64));
        assert!(budget.charge(a, true, t(900_000), len));
        assert!(!budget.charge(a, true, t(900_000), 1));
        // A refund returns what a chunk that was not sent took.
        budget.refund(a, 10);
        assert!(budget.charge(a, true, t(900_000), 10));

        // A prover on probation gets one copy; trusted later, its bucket
        // refills to two.
        let c = SecretKey::from_seed([3; 32]).public();
        assert!(budget.charge(c, false, t(0), len));
        assert!(!budget.charge(c, false, t(0), 1));
        assert!(
            !budget.charge(c, false, t(1_800_000), len + 1),
            "one copy at most"
        );
        assert!(budget.charge(c, true, t(1_800_000), len + 1));
    }
}
